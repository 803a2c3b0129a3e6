"""The demo account: a seeded Stripe history with matching visitors (`make run`), and its story (`make demo`)."""
