"""Removing a project's imported data through the backfill queue (domain rule 7: re-sync, and
disconnect without keeping data), never inside the API request.

The integration's `data_removal` names the removal's run; a message of another run, or of a removal
stopped or finished, is dropped. An invocation removes steps in a row (shared.revenue.purge) while
its time allows, then queues itself again. The one call that marks the removal completed starts the
re-sync's backfill.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from pynamodb.expressions.condition import Condition

from ..integrations import store as integrations
from ..integrations.items import IntegrationItem
from ..isotime import iso_now
from ..observability import logger
from ..revenue import purge
from . import queue
from .slices import RemoveMessage, StartMessage

# Left when a step starts: a step removes SCOPES_PER_STEP scopes, a large customer in a chain of
# transactions (each within shared.budget's DynamoDB limits).
RESERVE_SECONDS = 90.0


def begin(run: int) -> dict[str, Any]:
    """The integration's `data_removal` for a removal just queued."""
    return {
        "run": run,
        "status": "running",
        "started_at": iso_now(),
        "finished_at": None,
        "charges_removed": 0,
        "scopes_removed": 0,
    }


def _field(name: str) -> Any:
    return IntegrationItem.data_removal[name]


def _current(run: int) -> Condition:
    condition: Condition = (_field("run") == run) & (_field("status") == "running")
    return condition


def handle(message: RemoveMessage, remaining_seconds: Callable[[], float]) -> None:
    integration = integrations.get(message.project_id)
    removal = integration.data_removal if integration else None
    if not removal or removal.get("run") != message.run or removal.get("status") != "running":
        logger.info("removal message dropped: not the current removal", run=message.run)
        return
    deadline = time.time() + remaining_seconds() - RESERVE_SECONDS
    while time.time() < deadline:
        removed = purge.step(message.project_id)
        still_current = integrations.update(
            message.project_id,
            [_field("charges_removed").add(removed.charges), _field("scopes_removed").add(removed.scopes)],
            _current(message.run),
        )
        if still_current is None:
            return  # stopped (a disconnect keeping the data) or replaced (another re-sync)
        if removed.done:
            _finish(message)
            return
    queue.send([message])


def _finish(message: RemoveMessage) -> None:
    finished = integrations.update(
        message.project_id,
        [_field("status").set("completed"), _field("finished_at").set(iso_now())],
        _current(message.run),
    )
    if finished is None:
        return  # another invocation of this removal finished it
    logger.info("imported data removed", run=message.run)
    if message.then_backfill:
        per_phase = message.then_backfill
        queue.send([StartMessage(project_id=message.project_id, run=message.run, per_phase=per_phase)])


def fail(project_id: str, run: int, reason: str) -> None:
    integrations.update(
        project_id,
        [_field("status").set("failed"), _field("error").set(reason), _field("finished_at").set(iso_now())],
        _current(run),
    )
