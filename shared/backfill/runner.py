"""One backfill message: pages of its slice read and committed in a row while the invocation's time
allows, then the continuation queued (domain rule 7).

Each page waits for a place in the account's rate budget, is read, booked by the engine, and its
progress recorded; only then is the next read. A 429 or a Stripe failure queues the continuation
with a delay (the page is read again then); a revoked key or a missing permission fails the run
with a reason the dashboard shows. A message of a run that is no longer current is dropped.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import stripe

from .. import secrets
from ..errors import ServiceUnavailable
from ..integrations import store as integrations
from ..integrations.models import Integration
from ..observability import logger
from ..settings import get_settings
from ..stripe_api.client import stripe_client
from . import pages, progress, queue, rebuild_job, removal, slices
from .rate import RateBudget, paced_lookups
from .slices import AnyMessage, RebuildMessage, RemoveMessage, SliceMessage, StartMessage

# Left when a page starts, for its booking and the continuation: a page's worst case (shared.budget).
RESERVE_SECONDS = 90.0
RETRY_DELAYS = (5, 15, 60, 300, 900)  # a slice Stripe refused for the n-th time in a row goes on after
MAX_BACKOFFS = 8  # a slice DynamoDB refused this often in a row (about 50 minutes) fails its message


def handle(message: AnyMessage, remaining_seconds: Callable[[], float], receive_count: int) -> None:
    if isinstance(message, RemoveMessage):
        removal.handle(message, remaining_seconds)
        return
    if isinstance(message, RebuildMessage):
        rebuild_job.handle(message, remaining_seconds)
        return
    integration = _current(message)
    if integration is None:
        return
    if isinstance(message, StartMessage):
        # a duplicate start queues the slices twice: harmless, each resumes from its item or stops
        queue.send(slices.plan(message.project_id, message.run, int(time.time()), message.per_phase))
        return
    try:
        _run_slice(integration, message, remaining_seconds, receive_count)
    except ServiceUnavailable:  # DynamoDB throttled or slow, or decisions outraced by other slices
        # The slice's item says where it stands, so the message can go again soon rather than wait out
        # the queue's visibility timeout (6 x the function's); a page not recorded is read again.
        # Past MAX_BACKOFFS in a row the message fails as any other (and the run, after its retries).
        if message.backoffs >= MAX_BACKOFFS:
            raise
        delay = RETRY_DELAYS[min(message.backoffs, len(RETRY_DELAYS) - 1)]
        logger.info("backfill slice backs off", delay_seconds=delay, cause="dynamodb")
        queue.send([message.model_copy(update={"backoffs": message.backoffs + 1})], delay_seconds=delay)


def _current(message: StartMessage | SliceMessage) -> Integration | None:
    """The integration, if the message's run is its current one and still queued or running."""
    integration = integrations.get(message.project_id)
    backfill = integration.backfill if integration else None
    if integration is None or integration.status != "connected" or not backfill or backfill["run"] != message.run:
        logger.info("backfill message dropped: not the current run", run=message.run)
        return None
    return integration if backfill["status"] in progress.ACTIVE else None


def _run_slice(
    integration: Integration, message: SliceMessage, remaining_seconds: Callable[[], float], receive_count: int
) -> None:
    state = progress.slice_state(message)
    if state is not None:
        message = message.model_copy(update={"gte": state.gte})  # (a first page may have split its range)
        if state.children and not state.children_queued:  # the invocation that split it stopped before
            _queue_children(message, [_child(message, c) for c in state.children])
    if state is not None and state.done:
        progress.complete_if_done(message)  # the invocation that finished it may have stopped before
        return
    try:
        keys = secrets.load(message.project_id)
    except secrets.SecretNotFound:
        return  # disconnected meanwhile
    rate = get_settings().rate_budget(integration.mode)
    budget = RateBudget(message.project_id, rate)
    deadline = time.time() + remaining_seconds() - RESERVE_SECONDS
    paced = paced_lookups(keys.api_key, budget, deadline + RESERVE_SECONDS)
    client = stripe_client(keys.api_key)
    cursor = state.cursor if state is not None else None
    while True:
        if time.time() >= deadline or not budget.acquire(deadline):
            queue.send([message.model_copy(update={"cursor": cursor, "backoffs": 0})])
            return
        asked = time.monotonic()
        try:
            page = pages.read(client, message, cursor)
        except (stripe.AuthenticationError, stripe.PermissionError) as exc:
            reason = _refusal(exc)
            if progress.fail(message.project_id, message.run, reason):
                logger.warning("backfill failed", reason=reason)
            return
        except stripe.StripeError:  # 429 (not retried by the SDK), 5xx or unreachable after its retry
            _back_off(message, cursor, receive_count, "stripe")
            return
        children: list[SliceMessage] = []
        if cursor is None and page.next_cursor:
            children = _split(message, page, slices.heads(rate, time.monotonic() - asked, _max_heads()))
            if children:  # the slice keeps its page's newest part and is done
                page = page.handed_on(children[0].lt or 0)
        charges = pages.book(message, page, paced, int(time.time()))
        oldest = page.oldest if message.phase == "charges" else None  # api.md: the oldest charge's
        done = progress.page_done(message, cursor, page.next_cursor, len(page.objects), charges, oldest, children)
        if not done:
            return  # another invocation of this slice recorded the page first: it goes on
        if children:
            _queue_children(message, children)
        if page.next_cursor is None:
            if progress.complete_if_done(message):
                logger.info("backfill completed", run=message.run)
            return
        cursor = page.next_cursor


def _back_off(message: SliceMessage, cursor: str | None, receive_count: int, cause: str) -> None:
    """The slice goes on later from the page it could not finish (read again then: booking is
    idempotent), instead of its message waiting out the queue's visibility timeout."""
    delay = RETRY_DELAYS[min(receive_count - 1, len(RETRY_DELAYS) - 1)]
    logger.info("backfill slice backs off", delay_seconds=delay, cause=cause)
    queue.send([message.model_copy(update={"cursor": cursor})], delay_seconds=delay)


def _max_heads() -> int:
    return get_settings().backfill_max_heads


def _split(message: SliceMessage, page: pages.Page, heads: int) -> list[SliceMessage]:
    created = [int(o["created"]) for o in page.objects]
    return slices.split(message, max(created), min(created), heads)


def _child(message: SliceMessage, stored: list[Any]) -> SliceMessage:
    index, gte, lt, depth = (int(v) for v in stored)
    return message.model_copy(update={"index": index, "gte": gte, "lt": lt, "cursor": None, "depth": depth})


def _queue_children(message: SliceMessage, children: list[SliceMessage]) -> None:
    queue.send(children)  # (sent twice after a crash: a child's page is recorded once, see progress)
    progress.children_queued(message)
    logger.info("dense slice split", children=len(children))


def _refusal(exc: stripe.StripeError) -> str:
    if isinstance(exc, stripe.AuthenticationError):
        return "Stripe rejected the key (revoked, rolled or expired): reconnect with a new restricted key."
    return "The key lost a permission the import needs: " + (
        exc.user_message or "reconnect with the permissions listed."
    )
