"""Where each connected integration's reconcile stands: the `reconcile` map on its IntegrationsTable
item (api.md allows extra fields; GET shows it).

Fields: `last_sweep_at` (the high-water mark: objects created before it have been read),
`checked_at` (when the last sweep ended), `error` (why it could not finish: a revoked key, a lost
permission, Stripe unavailable), `warning` (what it had to leave out), `endpoint_recreated_at`,
`endpoint_repaired_at`, the counts of the last sweep (`sessions_read`, `charges_read`,
`refunds_read`), the last sweep to claim the project (`sweep`) and until when it holds it
(`lease_until`, null once released).

Only the reconcile writes the map, whole, and only while it holds the project: a sweep claims it
with a new `sweep` token, conditioned on the token it read and on no other sweep's lease running,
so two sweeps of one project (a schedule delivered twice, `make reconcile` beside it) never work
side by side, and a sweep working from a stale read writes nothing. Every write also requires the
connection that was read (connected, same `connected_at`): a disconnect or a reconnect meanwhile
ends the sweep (`LostClaim`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action

from .. import dynamo, tables
from ..errors import StaleUpdate
from ..integrations.items import IntegrationItem
from ..isotime import iso_now, iso_seconds

COUNTS = ("sessions_read", "charges_read", "refunds_read")
_FRESH: dict[str, Any] = {
    "last_sweep_at": None,
    "checked_at": None,
    "error": None,
    "warning": None,
    "endpoint_recreated_at": None,
    "endpoint_repaired_at": None,
}


class LostClaim(Exception):
    """The project changed hands: disconnected, reconnected, or taken over by another sweep."""


def epoch(iso: str) -> int:
    return int(datetime.fromisoformat(iso).timestamp())


@dataclass(frozen=True)
class Candidate:
    """A connected integration as the Scan read it."""

    project_id: str
    mode: str
    webhook_endpoint_id: str
    connected_at: str
    state: dict[str, Any] | None  # the `reconcile` map (None: never swept)

    @property
    def checked_at(self) -> str:
        return str((self.state or {}).get("checked_at") or "")

    @property
    def mark(self) -> int | None:
        swept = (self.state or {}).get("last_sweep_at")
        return epoch(swept) if swept else None


def connected() -> list[Candidate]:
    """Every connected integration, the longest unchecked first (the never checked before all).

    A Scan in pages of 1 MB: one item of about 1 KB per project, so 10,000 projects cost about ten
    requests and a few hundred milliseconds, once per invocation.
    """
    tables.bind()
    with dynamo.translate_errors():
        items = list(IntegrationItem.scan(IntegrationItem.status == "connected"))
    found = [
        Candidate(
            project_id=item.project_id,
            mode=item.mode,
            webhook_endpoint_id=item.webhook_endpoint_id,
            connected_at=item.connected_at,
            state=item.reconcile.as_dict() if item.reconcile is not None else None,  # type: ignore[no-untyped-call]
        )
        for item in items
    ]
    return sorted(found, key=lambda candidate: candidate.checked_at)


@dataclass
class Claim:
    candidate: Candidate
    state: dict[str, Any]  # the map as this sweep last wrote it


def claim(candidate: Candidate, now: int, lease_until: int) -> Claim | None:
    """Hold the project until `lease_until` (epoch seconds); None if another sweep holds it or it
    changed since the Scan read it."""
    read = candidate.state
    if read is not None and str(read.get("lease_until") or "") > iso_seconds(now):
        return None
    state = {**_FRESH, **(read or {}), **dict.fromkeys(COUNTS, 0)}
    state |= {"sweep": uuid.uuid4().hex, "lease_until": iso_seconds(lease_until)}
    held = IntegrationItem.reconcile.does_not_exist() if read is None else _field("sweep") == read.get("sweep")
    if not _write(candidate, state, held):
        return None
    return Claim(candidate, state)


def save(claim: Claim, changes: dict[str, Any], endpoint_id: str | None = None) -> None:
    """Record the sweep's progress (and a recreated endpoint's id); LostClaim if it changed hands."""
    state = {**claim.state, **changes}
    if not _write(claim.candidate, state, _field("sweep") == claim.state["sweep"], endpoint_id):
        raise LostClaim(claim.candidate.project_id)
    claim.state = state


def release(claim: Claim, changes: dict[str, Any]) -> None:
    """End the sweep: what it found, and the project free for the next one."""
    save(claim, {**changes, "checked_at": iso_now(), "lease_until": None})


def _field(name: str) -> Any:
    return IntegrationItem.reconcile[name]


def _write(candidate: Candidate, state: dict[str, Any], held: Condition, endpoint_id: str | None = None) -> bool:
    tables.bind()
    actions: list[Action] = [IntegrationItem.reconcile.set(state)]
    if endpoint_id is not None:
        actions.append(IntegrationItem.webhook_endpoint_id.set(endpoint_id))
    same_connection = (IntegrationItem.status == "connected") & (IntegrationItem.connected_at == candidate.connected_at)
    try:
        with dynamo.translate_errors():
            IntegrationItem(candidate.project_id).update(actions, condition=same_connection & held)
    except StaleUpdate:
        return False
    return True
