"""A window's reads: completed Checkout Sessions, charges, then the charges of refunds, each paged
newest first as raw JSON and booked as the backfill books its pages (shared.backfill.pages).

Stripe's charge list has no "refunded since" filter, so refunds are listed by their own `created`,
with their charge and its customer expanded (`data.charge.customer`): the charge as it stands now,
whose cumulative `amount_refunded` the engine books as a refund delta (a refund booked already, by
its webhook or an earlier sweep, books nothing). Listing refunds needs the key's Refunds: Read
permission; without it the rest is read, and the sweep says what it left out.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import stripe

from ..backfill import pages
from ..backfill.slices import Phase, SliceMessage
from .windows import Window

PAGE_COUNTS: dict[Phase, str] = {"checkout_sessions": "sessions_read", "charges": "charges_read"}


@dataclass
class Reading:
    """One project's sweep: how it reads and books, what it read so far."""

    project_id: str
    client: stripe.StripeClient
    lookups: pages.Lookups
    pace: Callable[[], None]  # waits for a place in the rate budget (raises when time runs out)
    refunds: bool = True  # False once the key turned out unable to list refunds
    counts: Counter[str] = field(default_factory=Counter)

    def read(self, window: Window) -> None:
        for phase in ("checkout_sessions", "charges"):
            slice_ = self._slice(phase, window)
            cursor: str | None = None
            while True:
                self.pace()
                page = pages.read(self.client, slice_, cursor)
                pages.book(slice_, page, self.lookups, int(time.time()))
                self.counts[PAGE_COUNTS[phase]] += len(page.objects)
                cursor = page.next_cursor
                if cursor is None:
                    break
        if self.refunds:
            self._read_refunds(window)

    def _slice(self, phase: Phase, window: Window) -> SliceMessage:
        """pages.read and pages.book take the slice they page: a window is one slice of a phase
        (of no run: a run names only the ids of read subscriptions, which a sweep does not read)."""
        return SliceMessage(
            project_id=self.project_id,
            run=0,
            phase=phase,
            index=0,
            gte=window.gte,
            lt=window.lt,
            slices=1,
        )

    def _read_refunds(self, window: Window) -> None:
        charges = self._slice("charges", window)
        cursor: str | None = None
        while True:
            self.pace()
            try:
                page = _refunds_page(self.client, window, cursor)
            except stripe.PermissionError:
                self.refunds = False
                return
            pages.book(charges, pages.Page(_charges_of(page), has_more=False), self.lookups, int(time.time()))
            self.counts["refunds_read"] += len(page.objects)
            cursor = page.next_cursor
            if cursor is None:
                return


def _refunds_page(client: stripe.StripeClient, window: Window, cursor: str | None) -> pages.Page:
    created = {"gte": window.gte} | ({"lt": window.lt} if window.lt is not None else {})
    params: dict[str, Any] = {"limit": pages.PAGE_SIZE, "created": created, "expand": ["data.charge.customer"]}
    if cursor:
        params["starting_after"] = cursor
    body: dict[str, Any] = client.raw_request("get", "/v1/refunds", **params).data
    return pages.Page(list(body.get("data") or []), bool(body.get("has_more")))


def _charges_of(refunds: pages.Page) -> list[dict[str, Any]]:
    """The refunds' charges, each once (several refunds of one charge carry the same charge)."""
    charges: dict[str, dict[str, Any]] = {}
    for refund in refunds.objects:
        charge = refund.get("charge")
        if isinstance(charge, dict):
            charges.setdefault(str(charge["id"]), charge)
    return list(charges.values())
