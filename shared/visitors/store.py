"""Visitors in the revenue table: profiles, the email index, timelines, through the pynamodb models
of shared.revenue.items (keys: shared.revenue.keys).

The profile is shared with the booking code, which keeps `revenue`, `linked`, `subscriptions` and
`plan` on it: a PUT therefore updates only the attributes it owns (UpdateItem SET/REMOVE), never
replaces the item, and checks and bumps its own `version` (a `VersionAttribute`). Failed conditions
become `StaleUpdate`, throttling `ServiceUnavailable`.
"""

from __future__ import annotations

from typing import Any

from pynamodb.attributes import Attribute
from pynamodb.expressions.update import Action
from pynamodb.transactions import TransactWrite

from .. import dynamo, tables
from ..errors import StaleUpdate
from ..isotime import iso_seconds
from ..revenue import keys
from ..revenue.items import EmailHeadItem, EmailMemberItem, ProfileItem, TimelineItem
from ..revenue.records import plain
from ..revenue.store import pk_sk
from .models import (
    Acquisition,
    DeleteHead,
    DeleteMember,
    EmailHead,
    EmailMember,
    IndexWrite,
    PutHead,
    PutMember,
    Reattribution,
    TimelineEvent,
    TimelinePage,
    Visitor,
    VisitorWrite,
)

_ACQUISITION_FIELDS = ("source", "medium", "campaign", "referrer", "landing_page")
_OWNED = ("user_id", "name", "first_seen_at")  # given fields stored as they are


class DynamoVisitorStore:
    @classmethod
    def default(cls) -> DynamoVisitorStore:
        """The models bound to the configured table (lazily, never at import)."""
        tables.bind()
        return cls()

    # ---- profiles ---------------------------------------------------------------------------------

    def get(self, project_id: str, visitor_id: str, *, consistent: bool = False) -> Visitor | None:
        pk, sk = pk_sk(keys.visitor(project_id, visitor_id))
        with dynamo.translate_errors():
            try:
                item = ProfileItem.get(pk, sk, consistent_read=consistent)
            except ProfileItem.DoesNotExist:
                return None
        return _visitor(project_id, visitor_id, item)

    def exists(self, project_id: str, visitor_id: str) -> bool:
        pk, sk = pk_sk(keys.visitor(project_id, visitor_id))
        with dynamo.translate_errors():
            return ProfileItem.count(pk, ProfileItem.sk == sk) > 0

    def save(self, write: VisitorWrite) -> None:
        profile, actions = self._profile_update(write)
        with dynamo.translate_errors():
            if not write.index:
                profile.update(actions)
                return
            with TransactWrite(connection=tables.revenue_connection()) as tx:
                tx.update(profile, actions)
                for index_write in write.index:
                    self._index_write(tx, write.visitor.project_id, index_write)

    def _profile_update(self, write: VisitorWrite) -> tuple[ProfileItem, list[Action]]:
        """SET/REMOVE of the attributes this PUT owns; the profile carries the version it was decided
        from, which pynamodb checks and bumps."""
        visitor = write.visitor
        p = ProfileItem
        values: list[tuple[Attribute[Any], Any]] = [
            (p.kind, ProfileItem),
            (p.project_id, visitor.project_id),
            (p.visitor_id, visitor.visitor_id),
            (p.updated_at, visitor.updated_at),
        ]
        if write.pending_changed and visitor.pending is not None:
            pending = visitor.pending
            stored = {"token": pending.token, "created": pending.created, "emails": list(pending.emails)}
            values.append((p.pending, stored | ({"source": True} if pending.source else {})))
        for name in sorted(write.fields):
            if name == "email":
                values += [
                    (p.email, visitor.email),
                    (p.email_key, visitor.email_key),
                    (p.email_set_at, visitor.email_set_at),
                ]
            elif name == "acquisition":
                values.append((p.acquisition, _acquisition_map(visitor.acquisition)))
            elif name in _OWNED:
                values.append((getattr(p, name), getattr(visitor, name)))
        actions: list[Action] = [a.remove() if v is None else a.set(v) for a, v in values]
        if visitor.created_at is not None:  # set once, by the PUT that creates the profile
            actions.append(p.created_at.set(p.created_at | visitor.created_at))
        # booking adds to keys of these maps: they exist from the first PUT on
        actions += [m.set(m | {}) for m in (p.revenue, p.linked, p.subscriptions)]
        pk, sk = pk_sk(keys.visitor(visitor.project_id, visitor.visitor_id))
        profile = ProfileItem(pk, sk)
        if write.expected_version is not None:
            profile.version = write.expected_version
        return profile, actions

    def clear_pending(self, project_id: str, visitor_id: str, token: int) -> bool:
        """Remove the re-attribution a PUT started once it has run, unless a later PUT added to it
        (that PUT, or its retry, runs it again). True if removed."""
        pk, sk = pk_sk(keys.visitor(project_id, visitor_id))
        try:
            with dynamo.translate_errors():
                ProfileItem(pk, sk).update(
                    [ProfileItem.pending.remove()], ProfileItem.pending["token"] == token, add_version_condition=False
                )
        except StaleUpdate:
            return False
        return True

    # ---- the email index --------------------------------------------------------------------------

    def email_head(self, project_id: str, email_key: str) -> EmailHead | None:
        pk, sk = pk_sk(keys.email_head(project_id, email_key))
        with dynamo.translate_errors():
            try:
                head = EmailHeadItem.get(pk, sk, consistent_read=True)
            except EmailHeadItem.DoesNotExist:
                return None
        return EmailHead(head.visitor_id, head.set_at, int(head.version or 0))

    def first_members(self, project_id: str, email_key: str, limit: int) -> list[EmailMember]:
        pk = keys.email_pk(project_id, email_key)
        with dynamo.translate_errors():
            members = EmailMemberItem.query(
                pk, EmailMemberItem.sk.startswith(keys.MEMBER_PREFIX), consistent_read=True, limit=limit
            )
            return [EmailMember(m.set_at, m.visitor_id) for m in members]

    def _index_write(self, tx: TransactWrite, project_id: str, write: IndexWrite) -> None:
        match write:
            case PutMember(key, member):
                pk, sk = pk_sk(keys.email_member(project_id, key, member.set_at, member.visitor_id))
                tx.save(
                    EmailMemberItem(pk, sk, project_id=project_id, visitor_id=member.visitor_id, set_at=member.set_at)
                )
            case DeleteMember(key, member):
                pk, sk = pk_sk(keys.email_member(project_id, key, member.set_at, member.visitor_id))
                tx.delete(EmailMemberItem(pk, sk))
            case PutHead(key, head, expected):  # saved only if still at the version read, as one higher
                pk, sk = pk_sk(keys.email_head(project_id, key))
                item = EmailHeadItem(pk, sk, project_id=project_id, visitor_id=head.visitor_id, set_at=head.set_at)
                if expected is not None:
                    item.version = expected
                tx.save(item)
            case DeleteHead(key, expected):
                pk, sk = pk_sk(keys.email_head(project_id, key))
                tx.delete(EmailHeadItem(pk, sk, version=expected))

    # ---- timelines --------------------------------------------------------------------------------

    def timeline(self, project_id: str, visitor_id: str, limit: int, after_sk: str | None) -> TimelinePage:
        """Newest first. One more item than asked is read, so a full last page has no next cursor."""
        pk = keys.visitor_pk(project_id, visitor_id)
        start = {"pk": {"S": pk}, "sk": {"S": after_sk}} if after_sk else None
        with dynamo.translate_errors():
            result = TimelineItem.query(
                pk,
                TimelineItem.sk.startswith(keys.TIMELINE_PREFIX),
                scan_index_forward=False,
                limit=limit + 1,
                page_size=limit + 1,
                last_evaluated_key=start,
            )
            items = list(result)
        page = items[:limit]
        if len(items) > limit:
            last_sk: str | None = page[-1].sk
        else:  # DynamoDB stopped early (1 MB read) or not at all
            last_sk = (result.last_evaluated_key or {}).get("sk", {}).get("S")
        return TimelinePage(tuple(_event(item) for item in page), last_sk)


def _acquisition_map(acquisition: Acquisition | None) -> dict[str, str] | None:
    if acquisition is None:
        return None
    return {name: value for name, value in vars(acquisition).items() if value is not None}


def _visitor(project_id: str, visitor_id: str, item: ProfileItem) -> Visitor:
    acquisition = plain(item.acquisition) if item.acquisition is not None else None
    plan = plain(item.plan) if item.plan is not None else None
    return Visitor(
        project_id=project_id,
        visitor_id=visitor_id,
        user_id=item.user_id,
        email=item.email,
        email_key=item.email_key,
        email_set_at=item.email_set_at,
        name=item.name,
        acquisition=Acquisition(**{name: acquisition.get(name) for name in _ACQUISITION_FIELDS})
        if isinstance(acquisition, dict)
        else None,
        first_seen_at=item.first_seen_at,
        created_at=item.created_at,
        updated_at=item.updated_at,
        version=int(item.version) if item.version is not None else None,
        lifetime_revenue={c: int(a) for c, a in plain(item.revenue).items() if int(a) != 0},
        plan=plan if isinstance(plan, dict) else None,
        stripe_customer_ids=tuple(sorted(plain(item.linked))),
        pending=_pending(plain(item.pending) if item.pending is not None else None),
    )


def _pending(value: Any) -> Reattribution | None:
    if not isinstance(value, dict):
        return None
    return Reattribution(
        int(value["token"]), bool(value.get("created")), tuple(value.get("emails") or ()), bool(value.get("source"))
    )


def _event(item: TimelineItem) -> TimelineEvent:
    """A timeline item as booking wrote it; the sort key (T#<epoch>#<event_key>) fills what is missing."""
    _, epoch, event_key = str(item.sk).split("#", 2)
    return TimelineEvent(
        id=item.event_id or event_key,
        type=item.type or "",
        occurred_at=item.occurred_at or iso_seconds(int(epoch)),
        amount=int(item.amount) if item.amount is not None else None,
        currency=item.currency,
        revenue=int(item.revenue or 0),
        stripe_object_id=item.stripe_object_id,
        attribution_tier=int(item.attribution_tier) if item.attribution_tier is not None else None,
    )
