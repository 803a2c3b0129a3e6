"""One run of the scheduled reconcile: every connected integration, the longest unchecked first,
while the invocation's time allows (those left are first the next time).

Per project: claim it (shared.reconcile.state), check its webhook endpoint (.endpoint), then read
its windows from the high-water mark (.windows, .reading), raising the mark after each. Every
Stripe request first takes a place in the account's rate budget, which the backfill shares
(shared.backfill.rate). A project's refusal (a revoked key, a lost permission, Stripe unavailable)
or failure is recorded on its integration, and the sweep goes on with the next project.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable
from typing import Literal, get_args

import stripe

from .. import secrets
from ..backfill.rate import RateBudget, paced_lookups
from ..errors import ServiceUnavailable
from ..isotime import iso_seconds
from ..observability import logger
from ..settings import get_settings
from ..stripe_api.client import stripe_client
from ..stripe_api.permissions import DASHBOARD_NAMES
from . import endpoint, state, windows
from .reading import Reading

# Left when a page starts, for its booking and the project's last writes (shared.budget's path).
RESERVE_SECONDS = 90.0
# A project catching up on a long gap yields to the others after this long (between its windows).
PROJECT_SECONDS = 120.0

NO_KEY = "No Stripe key is stored for this integration: disconnect and connect again."
REJECTED_KEY = "Stripe rejected the key (revoked, rolled or expired): reconnect with a new restricted key."
UNAVAILABLE = "Stripe or AWS could not be reached or limited the requests: the next sweep tries again."
INTERNAL = "The check failed unexpectedly: the next sweep tries again."
NO_REFUNDS = (
    "The key cannot list refunds (Refunds: Read): a refund whose webhook was lost is found only when "
    "its charge is. Add the permission to the restricted key in Stripe."
)
_PERMISSION = re.compile(r"'(rak_[a-z_]+)'")


# What became of each project: read up to now; begun and left for the next sweep (time, or its
# share of it); refused or failed (its integration's reconcile.error says why); held by another
# sweep, changed meanwhile, or not reached in time.
Outcome = Literal["swept", "unfinished", "failed", "skipped"]
OUTCOMES: tuple[Outcome, ...] = get_args(Outcome)


class _OutOfTime(Exception):
    pass


def run(remaining_seconds: Callable[[], float]) -> dict[str, int]:
    """Sweep the connected integrations; how many there are, and how many had each outcome."""
    deadline = time.time() + remaining_seconds() - RESERVE_SECONDS
    candidates = state.connected()
    outcomes: Counter[str] = Counter(dict.fromkeys(OUTCOMES, 0))
    for candidate in candidates:
        if time.time() >= deadline:
            outcomes["skipped"] += 1
            continue
        logger.append_keys(project_id=candidate.project_id)
        outcomes[_sweep(candidate, deadline)] += 1
    logger.remove_keys(["project_id"])
    return {"projects": len(candidates), **outcomes}


def _sweep(candidate: state.Candidate, deadline: float) -> Outcome:
    claim = state.claim(candidate, int(time.time()), int(deadline + RESERVE_SECONDS))
    if claim is None:
        logger.info("reconcile skipped: another sweep holds the project, or it changed")
        return "skipped"
    try:
        return _sweep_claimed(claim, deadline)
    except state.LostClaim:
        logger.info("reconcile stopped: the integration was disconnected or reconnected meanwhile")
        return "skipped"
    except Exception:  # one project's failure must not stop the sweep of the others
        logger.exception("reconcile failed")
        try:
            state.release(claim, {"error": INTERNAL})
        except Exception:  # (the lease lapses by itself)
            logger.exception("reconcile failure not recorded")
        return "failed"


def _sweep_claimed(claim: state.Claim, deadline: float) -> Outcome:
    candidate = claim.candidate
    try:
        api_key = secrets.load(candidate.project_id).api_key
    except (secrets.SecretNotFound, ServiceUnavailable) as exc:
        return _refused(claim, exc, Counter())
    budget = RateBudget(candidate.project_id, get_settings().rate_budget(candidate.mode))

    def pace() -> None:
        if not budget.acquire(deadline):
            raise _OutOfTime

    reading = Reading(
        candidate.project_id, stripe_client(api_key), paced_lookups(api_key, budget, deadline + RESERVE_SECONDS), pace
    )
    try:
        endpoint.ensure(claim, reading.client, api_key, pace)
        complete = _read_windows(claim, reading)
    except _OutOfTime:
        complete = False
    except (stripe.StripeError, ServiceUnavailable) as exc:
        return _refused(claim, exc, reading.counts)
    state.release(claim, {**reading.counts, "error": None, "warning": None if reading.refunds else NO_REFUNDS})
    logger.info("reconcile done", complete=complete, read=dict(reading.counts))
    return "swept" if complete else "unfinished"


def _read_windows(claim: state.Claim, reading: Reading) -> bool:
    """Read the windows oldest first, raising the mark after each; False if the project's share
    of time ran out first."""
    started = int(time.time())
    share_ends = time.time() + PROJECT_SECONDS
    planned = windows.plan(claim.candidate.mark, state.epoch(claim.candidate.connected_at), started)
    for number, window in enumerate(planned):
        if number and time.time() >= share_ends:
            return False
        reading.read(window)
        state.save(claim, {**reading.counts, "last_sweep_at": iso_seconds(window.reached(started))})
    return True


def _refused(claim: state.Claim, exc: Exception, read: Counter[str]) -> Outcome:
    reason = _refusal(exc)
    state.release(claim, {**read, "error": reason})
    logger.warning("reconcile refused", reason=reason)
    return "failed"


def _refusal(exc: Exception) -> str:
    if isinstance(exc, secrets.SecretNotFound):
        return NO_KEY
    if isinstance(exc, stripe.AuthenticationError):
        return REJECTED_KEY
    if isinstance(exc, stripe.PermissionError):
        found = _PERMISSION.search(exc.user_message or str(exc))
        name = DASHBOARD_NAMES.get(found.group(1), found.group(1)) if found else "unknown"
        return f"The key lacks a permission the reconcile needs ({name}): add it to the restricted key in Stripe."
    return UNAVAILABLE
