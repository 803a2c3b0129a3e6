"""Rebuilding a project's rollups from its ledger through the backfill queue (issue 11), as a
removal runs: an invocation checks days in a row (shared.revenue.rebuilding) while its time allows,
then queues itself again. `make rebuild-rollups` starts one in the local stack and prints its report.

The job's report item (`P#p#REBUILD` / `J#<job>`) says where it stands: each checked day moves its
`cursor` conditionally on the day before, with what the day found, so a redelivered or duplicated
message records each day once (the second invocation stops), and a day checked twice repairs
nothing twice (its repair made it equal to the ledger). Every difference is also logged.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from pynamodb.expressions.condition import Condition

from .. import dynamo, tables
from ..errors import StaleUpdate
from ..isotime import iso_now
from ..observability import logger
from ..revenue import rebuilding
from . import queue
from .items import RebuildItem, rebuild_sk, rebuilds_pk
from .slices import RebuildMessage

# Left when a day's check starts: its attempts' settle waits (rebuilding.SETTLE_SECONDS each) and
# reads (a busy day's ledger is a few pages of the index), with margin.
RESERVE_SECONDS = 60.0
MAX_LISTED = 500  # differences kept on the report item (all are logged and counted)


def start(project: str, *, repair: bool) -> int:
    """Create the job's report item and queue its first message; the job's id (epoch milliseconds).
    (A message sent without its item, e.g. by an operator with the AWS CLI, creates it.)"""
    job = time.time_ns() // 1_000_000
    message = RebuildMessage(project_id=project, run=job, repair=repair)
    _create(message)
    queue.send([message])
    return job


def _create(message: RebuildMessage) -> None:
    tables.bind()
    item = RebuildItem(rebuilds_pk(message.project_id), rebuild_sk(message.run), job=message.run)
    item.project_id, item.repair, item.started_at = message.project_id, message.repair, iso_now()
    try:
        with dynamo.translate_errors():
            item.save(RebuildItem.pk.does_not_exist())
    except StaleUpdate:
        pass  # created already (its first message delivered twice)


def report(project: str, job: int) -> dict[str, Any] | None:
    """The job's report (None: no such job)."""
    tables.bind()
    try:
        with dynamo.translate_errors():
            item = RebuildItem.get(rebuilds_pk(project), rebuild_sk(job), consistent_read=True)
    except RebuildItem.DoesNotExist:
        return None
    return {
        "job": int(item.job),
        "repair": bool(item.repair),
        "status": item.status,
        "last_day_checked": item.cursor,
        "days_checked": int(item.days_checked),
        "items_differing": int(item.items_differing),
        "items_repaired": int(item.items_repaired),
        "differences_found": int(item.differences_found),
        "differences": [_plain(d) for d in item.differences or []],
        "unsettled": list(item.unsettled or []),
        "started_at": item.started_at,
        "finished_at": item.finished_at,
        "error": item.error,
    }


def handle(message: RebuildMessage, remaining_seconds: Callable[[], float]) -> None:
    item = _get(message)
    if item is None:
        _create(message)
        item = _get(message)
    if item is None or item.status != "running":
        logger.info("rebuild message dropped: not a running rebuild", job=message.run)
        return
    deadline = time.time() + remaining_seconds() - RESERVE_SECONDS
    cursor, listed = item.cursor, len(item.differences or [])
    while time.time() < deadline:
        day = rebuilding.next_day(message.project_id, cursor)
        if day is None:
            _finish(message, cursor)
            return
        checked = rebuilding.check_day(message.project_id, day, repair=message.repair)
        for difference in checked.differences:
            logger.info("rollup difference", repaired=message.repair, **difference.as_dict())
        for shard in checked.unsettled:
            logger.warning("rollup item kept changing: not checked", day=day, shard=shard)
        if not _record(message, cursor, checked, listed):
            return  # another invocation of this job recorded the day first: it goes on
        cursor, listed = day, min(MAX_LISTED, listed + len(checked.differences))
    queue.send([message])


def fail(project: str, job: int, reason: str) -> None:
    actions = [RebuildItem.status.set("failed"), RebuildItem.error.set(reason), RebuildItem.finished_at.set(iso_now())]
    _update(project, job, actions, RebuildItem.status == "running")


def _get(message: RebuildMessage) -> RebuildItem | None:
    tables.bind()
    try:
        with dynamo.translate_errors():
            return RebuildItem.get(rebuilds_pk(message.project_id), rebuild_sk(message.run), consistent_read=True)
    except RebuildItem.DoesNotExist:
        return None


def _at(cursor: str | None) -> Condition:
    condition: Condition = (RebuildItem.status == "running") & (
        RebuildItem.cursor == cursor if cursor is not None else RebuildItem.cursor.does_not_exist()
    )
    return condition


def _record(message: RebuildMessage, cursor: str | None, checked: rebuilding.DayCheck, listed: int) -> bool:
    actions: list[Any] = [
        RebuildItem.cursor.set(checked.day),
        RebuildItem.days_checked.add(1),
        RebuildItem.items_differing.add(checked.items_differing),
        RebuildItem.items_repaired.add(checked.items_repaired),
        RebuildItem.differences_found.add(len(checked.differences)),
    ]
    shown = [d.as_dict() for d in checked.differences[: max(0, MAX_LISTED - listed)]]
    if shown:
        actions.append(RebuildItem.differences.set(RebuildItem.differences.append(shown)))
    if checked.unsettled:
        unsettled = [f"{checked.day}#{shard}" for shard in checked.unsettled]
        actions.append(RebuildItem.unsettled.set(RebuildItem.unsettled.append(unsettled)))
    return _update(message.project_id, message.run, actions, _at(cursor))


def _finish(message: RebuildMessage, cursor: str | None) -> None:
    actions = [RebuildItem.status.set("completed"), RebuildItem.finished_at.set(iso_now())]
    if _update(message.project_id, message.run, actions, _at(cursor)):
        logger.info("rollups rebuilt" if message.repair else "rollups checked", job=message.run)


def _update(project: str, job: int, actions: list[Any], condition: Condition) -> bool:
    tables.bind()
    try:
        with dynamo.translate_errors():
            RebuildItem(rebuilds_pk(project), rebuild_sk(job)).update(actions=actions, condition=condition)
    except StaleUpdate:
        return False
    return True


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if hasattr(value, "as_dict"):
        return _plain(value.as_dict())
    return value
