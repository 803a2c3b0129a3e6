"""A stateful Stripe API emulator that the official `stripe` SDK talks to unchanged.

A development tool (never deployed): see local/stripe_emulator/README.md.
"""
