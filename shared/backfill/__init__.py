"""Importing a Stripe account's history (domain rule 7): slices of Stripe `created`, paged side by side
through the backfill queue within the account's rate budget, booked by the attribution engine."""
