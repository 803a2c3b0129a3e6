"""The account's rate budget, shared by every slice of a project's backfill (domain rule 7).

Each Stripe request first takes a place in the current window of WINDOW_SECONDS: one conditional
ADD on the window's item (at most `rate x WINDOW_SECONDS` places), whichever invocation asks. A full
window means waiting for the next one, so all slices together stay within the budget in every
window, however many run at once. One DynamoDB write buys a page of up to 100 objects.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

from .. import dynamo, tables
from ..errors import StaleUpdate
from ..revenue.models import CustomerRecord
from ..stripe_api import lookups
from .items import RateWindowItem, rate_pk
from .pages import Lookups

WINDOW_SECONDS = 2
KEEP_SECONDS = 3600  # windows expire (TTL) an hour after they end


class RateBudget:
    def __init__(
        self,
        project_id: str,
        requests_per_second: float,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.project_id = project_id
        self.places = max(1, int(requests_per_second * WINDOW_SECONDS))
        self.unpaced = requests_per_second <= 0  # benchmarks only
        self._clock = clock
        self._sleep = sleep

    def acquire(self, deadline: float) -> bool:
        """Wait for a place for one request; False if none is free before `deadline` (epoch seconds)."""
        if self.unpaced:
            return True
        while True:
            now = self._clock()
            window = int(now // WINDOW_SECONDS) * WINDOW_SECONDS
            if self._take(window):
                return True
            next_window = window + WINDOW_SECONDS
            if next_window >= deadline:
                return False
            self._sleep(next_window - now)

    def _take(self, window: int) -> bool:
        tables.bind()
        item = RateWindowItem(rate_pk(self.project_id), f"W#{window}")
        condition = RateWindowItem.requests.does_not_exist() | (RateWindowItem.requests < self.places)
        try:
            with dynamo.translate_errors():
                item.update(
                    [
                        RateWindowItem.kind.set(RateWindowItem),
                        RateWindowItem.requests.add(1),
                        RateWindowItem.expires_at.set(
                            datetime.fromtimestamp(window + WINDOW_SECONDS + KEEP_SECONDS, UTC)
                        ),
                        RateWindowItem.project_id.set(self.project_id),
                    ],
                    condition=condition,
                )
        except StaleUpdate:
            return False
        return True


def paced_lookups(api_key: str, budget: RateBudget, until: float) -> Lookups:
    """The Stripe reads a booking may need (a customer, an invoice's PaymentIntents), each taking a
    place in the budget like a page (waiting at most until `until`)."""

    def customer(customer_id: str) -> CustomerRecord:
        budget.acquire(until)
        return lookups.fetch_customer(api_key, customer_id)

    def payment_intents(invoice_id: str) -> tuple[str, ...]:
        budget.acquire(until)
        return lookups.invoice_payment_intents(api_key, invoice_id)

    return Lookups(customer, payment_intents)
