"""The time budget: every outside call bounded, every function's timeout above its worst case.

Each client is built from the limits below (timeouts, attempts), so each call has a worst case:
attempts x (connect + read) + the backoff slept between them. A function's worst case is the sum
over the longest chain of calls an ordinary invocation makes (`PATHS`), and its Timeout in
template.yaml must exceed it (tests/deploy/test_template.py), so no dependency that answers within
its limits gets a function killed between steps.

DynamoDB requests count at their worst once and at DYNAMODB_TYPICAL for the others: a request that
exhausts its attempts ends the invocation (503, nothing half-written), so only one can in an
invocation. API Gateway answers a request after at most 30 s (503 if the function is still running);
a function that finishes later still commits its work, idempotently, and Stripe's retry finds it done.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CallLimit:
    connect_seconds: float
    read_seconds: float
    attempts: int
    backoff_seconds: float  # the most the client sleeps between its attempts, all together

    @property
    def worst_seconds(self) -> float:
        return self.attempts * (self.connect_seconds + self.read_seconds) + self.backoff_seconds


# stripe-python: one retry (409 locks, 5xx, connection errors), slept 0.5 s at most before it.
STRIPE = CallLimit(connect_seconds=1.0, read_seconds=4.0, attempts=2, backoff_seconds=0.5)
# botocore "standard" retries (throttling, 5xx): sleeps of at most 1 s, then 2 s.
SECRETS_MANAGER = CallLimit(connect_seconds=1.0, read_seconds=2.0, attempts=2, backoff_seconds=1.0)
DYNAMODB = CallLimit(connect_seconds=0.5, read_seconds=1.5, attempts=3, backoff_seconds=3.0)
DYNAMODB_TYPICAL_SECONDS = 0.05  # p99 of a DynamoDB request, a 100-item transaction included
DECISION_ATTEMPTS = 6  # a decision re-run after a conflicting write (shared.revenue.engine)
DECISION_JITTER_SECONDS = 0.02  # before re-run n (from 0): up to this x 2**n
DECISION_BACKOFF_SECONDS = sum(DECISION_JITTER_SECONDS * 2**attempt for attempt in range(DECISION_ATTEMPTS - 1))


@dataclass(frozen=True)
class Path:
    """The longest chain of outside calls an ordinary invocation of a function makes."""

    secrets: int = 0
    stripe: int = 0
    dynamodb: int = 0  # requests of one decision attempt
    decision_retries: bool = False

    @property
    def worst_seconds(self) -> float:
        seconds = self.secrets * SECRETS_MANAGER.worst_seconds + self.stripe * STRIPE.worst_seconds
        if self.dynamodb:
            seconds += DYNAMODB.worst_seconds + (self.dynamodb - 1) * DYNAMODB_TYPICAL_SECONDS
        if self.decision_retries:
            seconds += (DECISION_ATTEMPTS - 1) * self.dynamodb * DYNAMODB_TYPICAL_SECONDS + DECISION_BACKOFF_SECONDS
        return seconds


# Measured request budgets (docs/decisions.md "Request budget"): a customer's first event reads
# and writes up to 8 times; a link-moving session also lists its invoice's payments at Stripe.
PATHS = {
    # the cached key, then a fresh read after a signature mismatch; the customer and the invoice's payments
    "StripeWebhookFunction": Path(secrets=2, stripe=2, dynamodb=8, decision_retries=True),
    # a PUT's re-attribution: a customer read from Stripe when its facts were never stored
    "VisitorApiFunction": Path(secrets=1, stripe=1, dynamodb=8, decision_retries=True),
    # connect: the permission probes (in parallel), the endpoint; the secret; the record read and written
    "IntegrationApiFunction": Path(secrets=1, stripe=2, dynamodb=2),
    # a report: its index pages and profile batches (issue 11 bounds them by rollups)
    "ReportsApiFunction": Path(dynamodb=40),
    # the last page an invocation begins (shared.backfill.runner.RESERVE_SECONDS): the list, then a
    # decision over its 100 objects' scopes (or one per session: 100 x 8 requests)
    "BackfillFunction": Path(secrets=1, stripe=1, dynamodb=800, decision_retries=False),
    # the last page a sweep begins (shared.reconcile.sweep.RESERVE_SECONDS): the list, a decision
    # over its objects as the backfill's, the project's state written twice (its mark, its release);
    # the project's key, read when its sweep began
    "ReconcileFunction": Path(secrets=1, stripe=1, dynamodb=802, decision_retries=False),
}
