"""A run's progress: on the integration (what the dashboard shows, api.md) and per slice.

A page's progress is one transaction over the slice's item (its cursor moves from the one the page
was read at, so a page read twice counts once) and the integration (counters of the run, only while
the run is the integration's current one and still queued or running). Completion is a conditional
update that only the first invocation to see every slice done can make.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action
from pynamodb.transactions import TransactWrite

from .. import dynamo, tables
from ..errors import StaleUpdate
from ..integrations.items import IntegrationItem
from ..isotime import iso_now, iso_seconds
from .items import SliceItem, slice_sk, slices_pk
from .slices import SliceMessage

ACTIVE = ("queued", "running")


def new_run(run: int, slices: int) -> dict[str, Any]:
    """The integration's `backfill` for a run just queued (api.md's fields, `progress` extras)."""
    return {
        "run": run,
        "status": "queued",
        "phase": None,
        "charges_imported": 0,
        "oldest_imported_at": None,
        "started_at": iso_now(),
        "finished_at": None,
        "error": None,
        "progress": {"slices": slices, "slices_done": 0, "pages": 0},
    }


def _backfill(name: str) -> Any:
    return IntegrationItem.backfill[name]


def _progress(name: str) -> Any:
    return IntegrationItem.backfill["progress"][name]


def _current(run: int) -> Condition:
    condition: Condition = (
        (_backfill("run") == run) & _backfill("status").is_in(*ACTIVE) & (IntegrationItem.status == "connected")
    )
    return condition


def slice_state(message: SliceMessage) -> SliceItem | None:
    tables.bind()
    with dynamo.translate_errors():
        try:
            return SliceItem.get(
                slices_pk(message.project_id), slice_sk(message.run, message.phase, message.index), consistent_read=True
            )
        except SliceItem.DoesNotExist:
            return None


def page_done(
    message: SliceMessage,
    read_at: str | None,
    next_cursor: str | None,
    objects: int,
    charges: int,
    oldest: int | None,
    children: Sequence[SliceMessage] = (),
) -> bool:
    """Record a page read at cursor `read_at` (None: the slice's first); `next_cursor` None ends the slice.
    A first page may split the rest of the slice off to `children` (slices.split): the slice then
    keeps what they leave (it ends with that page) and the run counts them, in the same transaction.
    False if another invocation recorded it first or the run is no longer current (nothing written)."""
    tables.bind()
    item = SliceItem(slices_pk(message.project_id), slice_sk(message.run, message.phase, message.index))
    # (a done slice has no cursor left to match)
    where = SliceItem.pk.does_not_exist() if read_at is None else SliceItem.cursor == read_at
    slice_actions: list[Action] = []
    if read_at is None:  # the slice's first page creates its item: what it is, once
        slice_actions += [
            SliceItem.kind.set(SliceItem),
            SliceItem.project_id.set(message.project_id),
            SliceItem.run.set(message.run),
            SliceItem.phase.set(message.phase),
            SliceItem.index.set(message.index),
            # (split: the slice keeps what its children leave, newer than all of them)
            SliceItem.gte.set(max(c.lt or 0 for c in children) if children else message.gte),
        ]
        if children:
            slice_actions.append(SliceItem.children.set([[c.index, c.gte, c.lt, c.depth] for c in children]))
        if message.lt is not None:
            slice_actions.append(SliceItem.lt.set(message.lt))
    slice_actions += [
        SliceItem.cursor.set(next_cursor) if next_cursor else SliceItem.cursor.remove(),
        SliceItem.done.set(next_cursor is None),
        SliceItem.pages.add(1),
        SliceItem.objects.add(objects),
    ]
    integration_actions: list[Action] = [
        _backfill("status").set("running"),
        _backfill("phase").set(message.phase),
        _backfill("charges_imported").add(charges),
        _progress("pages").add(1),
    ]
    if next_cursor is None:
        integration_actions.append(_progress("slices_done").add(1))
    if children:
        integration_actions.append(_progress("slices").add(len(children)))
    try:
        with dynamo.translate_errors(), TransactWrite(connection=tables.revenue_connection()) as transaction:
            transaction.update(item, slice_actions, condition=where)
            transaction.update(
                IntegrationItem(message.project_id), integration_actions, condition=_current(message.run)
            )
    except StaleUpdate:
        return False
    if oldest is not None:
        _lower_oldest(message, iso_seconds(oldest))
    return True


def children_queued(message: SliceMessage) -> None:
    tables.bind()
    item = SliceItem(slices_pk(message.project_id), slice_sk(message.run, message.phase, message.index))
    with dynamo.translate_errors():
        item.update([SliceItem.children_queued.set(True)])


def _lower_oldest(message: SliceMessage, oldest: str) -> None:
    """`oldest_imported_at` only moves back (ISO strings of one format compare as times)."""
    older = _backfill("oldest_imported_at").does_not_exist() | (_backfill("oldest_imported_at") > oldest)
    unset = _backfill("oldest_imported_at") == None  # noqa: E711 - a null the run started with
    try:
        with dynamo.translate_errors():
            IntegrationItem(message.project_id).update(
                [_backfill("oldest_imported_at").set(oldest)], condition=_current(message.run) & (older | unset)
            )
    except StaleUpdate:
        pass


def complete_if_done(message: SliceMessage) -> bool:
    """Mark the run completed if every slice is done; True only for the one call that does."""
    tables.bind()
    done = _progress("slices_done") >= _progress("slices")  # the planned ones and their children
    try:
        with dynamo.translate_errors():
            IntegrationItem(message.project_id).update(
                [_backfill("status").set("completed"), _backfill("finished_at").set(iso_now())],
                condition=_current(message.run) & done,
            )
    except StaleUpdate:
        return False
    return True


def fail(project_id: str, run: int, reason: str) -> bool:
    """Mark the run failed with a reason the dashboard shows; False if it was not current any more."""
    tables.bind()
    try:
        with dynamo.translate_errors():
            IntegrationItem(project_id).update(
                [
                    _backfill("status").set("failed"),
                    _backfill("error").set(reason),
                    _backfill("finished_at").set(iso_now()),
                ],
                condition=_current(run),
            )
    except StaleUpdate:
        return False
    return True
