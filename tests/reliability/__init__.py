"""Reliability harness: generated Stripe worlds delivered one at a time and in parallel to the real local stack.

`stack` runs `python -m local.stack` as a subprocess (with a known moto port), `world` generates a
history in the Stripe emulator, `delivery` sends it as signed webhooks (serially, or shuffled and
duplicated from many threads with Stripe-like retries), `state` reads the resulting projects back from
moto and compares them, and `harness` ties these together for tests/e2e/test_concurrency.py and
bench/reliability.py.
"""
