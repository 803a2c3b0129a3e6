"""Visitor rules: what a PUT changes, when an email counts as set, and how the email index follows.

Plain Python over a `VisitorStore` port (DynamoDB in production, an in-memory fake in unit tests).

The email index answers "which visitor was identified first with this email" (domain rule 2, tier 2)
with one read: per email a head item (that visitor and its `email_set_at`) and one member item per
visitor whose current email it is. The head carries a version that every member change bumps, and
each PUT writes its profile and index changes in one transaction conditioned on the profile's and
the heads' versions as read; a PUT that raced another is decided again from fresh reads.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from ..errors import NotFound, ServiceUnavailable, StaleUpdate
from ..identity import email_key
from ..observability import logger
from .models import (
    UNSET,
    DeleteHead,
    DeleteMember,
    EmailHead,
    EmailMember,
    IndexWrite,
    PutHead,
    PutMember,
    Reattribution,
    TimelinePage,
    TimelineQuery,
    Visitor,
    VisitorChanges,
    VisitorSaved,
    VisitorWrite,
    utc_stamp,
)

MAX_ATTEMPTS = 5


class VisitorStore(Protocol):
    """Data access the visitor rules need (shared.visitors.store.DynamoVisitorStore in production)."""

    def get(self, project_id: str, visitor_id: str, *, consistent: bool = False) -> Visitor | None: ...

    def exists(self, project_id: str, visitor_id: str) -> bool: ...

    def email_head(self, project_id: str, email_key: str) -> EmailHead | None: ...

    def first_members(self, project_id: str, email_key: str, limit: int) -> list[EmailMember]: ...

    def save(self, write: VisitorWrite) -> None:
        """Write all of it or nothing; StaleUpdate when a version differs from the one expected."""
        ...

    def timeline(self, project_id: str, visitor_id: str, limit: int, after_sk: str | None) -> TimelinePage: ...


@dataclass(frozen=True)
class EmailMove:
    """The email index entries a PUT gives up and takes: (email_key, member) each, or None."""

    left: tuple[str, EmailMember] | None = None
    joined: tuple[str, EmailMember] | None = None


def apply_changes(
    current: Visitor | None, project_id: str, visitor_id: str, changes: VisitorChanges, now: datetime
) -> tuple[Visitor, EmailMove]:
    """The visitor after a PUT, and its email index move.

    An email whose key (trimmed, lower-cased) is the visitor's already keeps its `email_set_at`, so a
    repeated identify never makes a visitor look newer; any other email is set now.
    """
    base = current or Visitor(project_id, visitor_id)
    stamp = utc_stamp(now)
    values: dict[str, Any] = {name: getattr(changes, name) for name in changes.given() if name != "email"}
    move = EmailMove()
    if changes.email is not UNSET:
        new_key = email_key(changes.email) if changes.email is not None else None
        values["email"] = changes.email
        if new_key != base.email_key or (new_key is not None and base.email_set_at is None):
            values["email_key"] = new_key
            values["email_set_at"] = stamp if new_key else None
            move = EmailMove(
                left=(base.email_key, EmailMember(base.email_set_at, visitor_id))
                if base.email_key and base.email_set_at
                else None,
                joined=(new_key, EmailMember(stamp, visitor_id)) if new_key else None,
            )
    visitor = replace(
        base,
        **values,
        created_at=base.created_at or stamp,
        updated_at=stamp,
        version=(base.version or 0) + 1,
    )
    return visitor, move


def joining(key: str, member: EmailMember, head: EmailHead | None) -> tuple[IndexWrite, ...]:
    """A visitor takes an email: its member item, and the head if no one had the email earlier."""
    if head is None:
        new_head = EmailHead(member.visitor_id, member.set_at, 1)
    elif member < head.member:
        new_head = EmailHead(member.visitor_id, member.set_at, head.version + 1)
    else:
        new_head = replace(head, version=head.version + 1)  # stays, but the members changed
    return PutMember(key, member), PutHead(key, new_head, head.version if head else None)


def leaving(
    key: str, member: EmailMember, head: EmailHead | None, remaining: Sequence[EmailMember]
) -> tuple[IndexWrite, ...]:
    """A visitor gives an email up: its member item goes; when it was the head, the next member is.

    `remaining` are the first members of the email as read (they may include the one leaving); they
    are only needed when the head is this visitor (or missing).
    """
    writes: list[IndexWrite] = [DeleteMember(key, member)]
    expected = head.version if head else None
    others = sorted(m for m in remaining if m.visitor_id != member.visitor_id)
    if head is not None and head.visitor_id != member.visitor_id:
        writes.append(PutHead(key, replace(head, version=head.version + 1), expected))
    elif others:
        writes.append(PutHead(key, EmailHead(others[0].visitor_id, others[0].set_at, (expected or 0) + 1), expected))
    elif head is not None:
        writes.append(DeleteHead(key, head.version))
    return tuple(writes)


def _source(visitor: Visitor) -> str | None:
    return visitor.acquisition.source if visitor.acquisition is not None else None


class VisitorService:
    def __init__(self, store: VisitorStore, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._store = store
        self._clock = clock

    def get(self, project_id: str, visitor_id: str) -> Visitor:
        visitor = self._store.get(project_id, visitor_id)
        if visitor is None:
            raise NotFound("No such visitor.")
        return visitor

    def timeline(self, project_id: str, visitor_id: str, query: TimelineQuery) -> TimelinePage:
        if not self._store.exists(project_id, visitor_id):
            raise NotFound("No such visitor.")
        return self._store.timeline(project_id, visitor_id, query.limit, query.after_sk)

    def save(self, project_id: str, visitor_id: str, changes: VisitorChanges) -> VisitorSaved:
        """Create or update the visitor with the given fields, keeping the email index exact."""
        for attempt in range(1, MAX_ATTEMPTS + 1):
            current = self._store.get(project_id, visitor_id, consistent=True)
            visitor, move = apply_changes(current, project_id, visitor_id, changes, self._clock())
            moved = tuple(entry[0] for entry in (move.left, move.joined) if entry is not None)
            resourced = current is not None and _source(current) != _source(visitor)
            pending_changed = current is None or bool(moved) or resourced
            if pending_changed:
                token, base = visitor.version or 0, visitor.pending or Reattribution(0, False, ())
                visitor = replace(visitor, pending=base.merged(token, current is None, moved, resourced))
            write = VisitorWrite(
                visitor=visitor,
                fields=changes.given(),
                expected_version=current.version if current else None,
                index=self._index_writes(project_id, move),
                pending_changed=pending_changed,
            )
            try:
                self._store.save(write)
            except StaleUpdate:
                logger.info("visitor update raced, retrying", attempt=attempt)
                continue
            return VisitorSaved(
                visitor, created=current is None, email_changed=move.joined is not None, emails_moved=moved
            )
        raise ServiceUnavailable("The visitor is being changed by other requests; retry.")

    def _index_writes(self, project_id: str, move: EmailMove) -> tuple[IndexWrite, ...]:
        writes: list[IndexWrite] = []
        if move.left:
            key, member = move.left
            head = self._store.email_head(project_id, key)
            needs_next = head is None or head.visitor_id == member.visitor_id
            remaining = self._store.first_members(project_id, key, 2) if needs_next else []
            writes += leaving(key, member, head, remaining)
        if move.joined:
            key, member = move.joined
            writes += joining(key, member, self._store.email_head(project_id, key))
        return tuple(writes)
