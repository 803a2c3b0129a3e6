"""Visitors at each boundary: the API's request and views, the domain objects and the domain errors.

The request model checks everything a PUT can get wrong (so a bad body is a 400 before the project is
even looked at); the domain objects are plain dataclasses the service and the store exchange; the views
are the JSON the contract promises. Conversions between them are explicit functions here.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..errors import InvalidRequest

MAX_EMAIL_LENGTH = 254
MAX_TEXT = 1024  # user_id, name, source, medium, campaign
MAX_URL = 8192  # referrer, landing_page
DEFAULT_LIMIT, MAX_LIMIT = 50, 100
PLAN_FIELDS = (
    "name",
    "status",
    "price_id",
    "amount",
    "currency",
    "interval",
    "current_period_end",
    "cancel_at_period_end",
)

# ---- values: times, emails ---------------------------------------------------------------------


def utc_stamp(moment: datetime) -> str:
    """A UTC time with microseconds, fixed width so that strings sort as times: 2026-11-27T14:00:00.123456Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def iso_utc(value: str) -> str:
    """An ISO 8601 time as UTC ("...Z"); a time without offset is taken as UTC. ValueError if unparsable."""
    moment = datetime.fromisoformat(value.strip())
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def normalise_email(raw: str) -> str:
    """The email as stored: trimmed. ValueError unless it looks like an address."""
    email = raw.strip()
    local, at, domain = email.partition("@")
    if not at or not local or not domain or "@" in domain or len(email) > MAX_EMAIL_LENGTH:
        raise ValueError(f"must look like an email address (one @, at most {MAX_EMAIL_LENGTH} characters)")
    return email


# ---- domain ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Acquisition:
    source: str | None = None
    medium: str | None = None
    campaign: str | None = None
    referrer: str | None = None
    landing_page: str | None = None


@dataclass(frozen=True)
class Visitor:
    """A visitor's profile: what the tracker sets, and what booking keeps on it (read-only here)."""

    project_id: str
    visitor_id: str
    user_id: str | None = None
    email: str | None = None
    email_key: str | None = None
    email_set_at: str | None = None  # when this email (by email_key) was set: utc_stamp
    name: str | None = None
    acquisition: Acquisition | None = None
    first_seen_at: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    version: int | None = None  # bumped by every PUT; None before the first
    # Written by the booking code only:
    lifetime_revenue: Mapping[str, int] = field(default_factory=dict)
    plan: Mapping[str, Any] | None = None
    stripe_customer_ids: tuple[str, ...] = ()
    pending: Reattribution | None = None  # re-attribution a PUT started and that has not finished


@dataclass(frozen=True)
class Reattribution:
    """What a PUT asks to be re-attributed (rule 3), kept on the profile in the PUT's own write until
    it has run: a crash or a 503 between the two leaves it there, and the client's retry of the PUT
    finishes it. Later PUTs add to it; `token` (the profile version that last added) lets the one
    that ran it remove it only if nothing was added meanwhile."""

    token: int
    created: bool  # the visitor appeared: scopes naming its id
    emails: tuple[str, ...]  # email keys whose "identified first" may have changed
    source: bool = False  # acquisition.source changed: its ledger entries and rollups follow

    def merged(self, token: int, created: bool, emails: tuple[str, ...], source: bool = False) -> Reattribution:
        return Reattribution(
            token, self.created or created, tuple(sorted({*self.emails, *emails})), self.source or source
        )


class _Unset(Enum):
    UNSET = "unset"


UNSET = _Unset.UNSET
PROFILE_FIELDS = ("user_id", "email", "name", "acquisition", "first_seen_at")


@dataclass(frozen=True)
class VisitorChanges:
    """The fields a PUT gives (None removes the stored value); UNSET fields keep theirs."""

    user_id: str | _Unset | None = UNSET
    email: str | _Unset | None = UNSET  # normalised (trimmed) already
    name: str | _Unset | None = UNSET
    acquisition: Acquisition | _Unset | None = UNSET
    first_seen_at: str | _Unset | None = UNSET  # iso_utc already

    def given(self) -> frozenset[str]:
        return frozenset(name for name in PROFILE_FIELDS if getattr(self, name) is not UNSET)


@dataclass(frozen=True, order=True)
class EmailMember:
    """A visitor currently identified with an email, since `set_at`; members sort as the index does."""

    set_at: str
    visitor_id: str


@dataclass(frozen=True)
class EmailHead:
    """The visitor identified first with an email. `version` changes with every change of its members."""

    visitor_id: str
    set_at: str
    version: int

    @property
    def member(self) -> EmailMember:
        return EmailMember(self.set_at, self.visitor_id)


@dataclass(frozen=True)
class PutMember:
    email_key: str
    member: EmailMember


@dataclass(frozen=True)
class DeleteMember:
    email_key: str
    member: EmailMember


@dataclass(frozen=True)
class PutHead:
    """Write the head; only if it is still as read (`expected_version` None: there was none)."""

    email_key: str
    head: EmailHead
    expected_version: int | None


@dataclass(frozen=True)
class DeleteHead:
    email_key: str
    expected_version: int


IndexWrite = PutMember | DeleteMember | PutHead | DeleteHead


@dataclass(frozen=True)
class VisitorWrite:
    """One PUT's writes, all or nothing: the profile's given fields and the email index changes."""

    visitor: Visitor  # the new state; its version is the one to write
    fields: frozenset[str]  # PROFILE_FIELDS to write (a None value removes); others stay untouched
    expected_version: int | None  # the profile's version as read (None: no PUT before)
    index: tuple[IndexWrite, ...] = ()
    pending_changed: bool = False  # visitor.pending is to be written


@dataclass(frozen=True)
class VisitorSaved:
    visitor: Visitor
    created: bool
    email_changed: bool  # an email was set that the visitor did not have (case aside)
    emails_moved: tuple[str, ...] = ()  # email keys whose "identified first" may have changed

    @property
    def evidence_changed(self) -> bool:
        """Rule 3: a new visitor or a moved email can change who owns pending revenue (also when an
        earlier PUT's re-attribution was interrupted)."""
        return self.visitor.pending is not None


@dataclass(frozen=True)
class TimelineEvent:
    id: str
    type: str
    occurred_at: str
    amount: int | None
    currency: str | None
    revenue: int
    stripe_object_id: str | None
    attribution_tier: int | None


@dataclass(frozen=True)
class TimelinePage:
    events: tuple[TimelineEvent, ...]
    last_sk: str | None  # sort key of the page's last event when more follow, else None


# ---- API: request ------------------------------------------------------------------------------


class AcquisitionBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    source: str | None = Field(default=None, max_length=MAX_TEXT)
    medium: str | None = Field(default=None, max_length=MAX_TEXT)
    campaign: str | None = Field(default=None, max_length=MAX_TEXT)
    referrer: str | None = Field(default=None, max_length=MAX_URL)
    landing_page: str | None = Field(default=None, max_length=MAX_URL)


class VisitorBody(BaseModel):
    """PUT body: every field optional; an absent field keeps its value, null removes it. Unknown fields are ignored."""

    model_config = ConfigDict(extra="ignore")

    user_id: str | None = Field(default=None, max_length=MAX_TEXT)
    email: str | None = None
    name: str | None = Field(default=None, max_length=MAX_TEXT)
    acquisition: AcquisitionBody | None = None
    first_seen_at: str | None = None

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        return None if value is None else normalise_email(value)

    @field_validator("first_seen_at")
    @classmethod
    def _first_seen_at(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return iso_utc(value)
        except ValueError:
            raise ValueError("must be an ISO 8601 time") from None

    def to_changes(self) -> VisitorChanges:
        given = self.model_fields_set
        values: dict[str, Any] = {name: getattr(self, name) for name in PROFILE_FIELDS if name in given}
        if "acquisition" in values and self.acquisition is not None:
            values["acquisition"] = Acquisition(**self.acquisition.model_dump())
        return VisitorChanges(**values)


@dataclass(frozen=True)
class TimelineQuery:
    limit: int
    after_sk: str | None


_CURSOR_CHARS = re.compile(r"[A-Za-z0-9_-]{1,2048}")
_TIMELINE_SK = re.compile(r"T#\d{12}#.{1,1024}", re.DOTALL)
_LIMIT = re.compile(r"\d{1,3}")


def encode_cursor(sk: str) -> str:
    return base64.urlsafe_b64encode(sk.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    """The timeline sort key a cursor stands for; InvalidRequest unless it is one of ours."""
    invalid = InvalidRequest("cursor is not a cursor this API returned")
    if not _CURSOR_CHARS.fullmatch(cursor):
        raise invalid
    try:
        sk = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise invalid from None
    if not _TIMELINE_SK.fullmatch(sk):
        raise invalid
    return sk


def parse_timeline_query(limit: str | None, cursor: str | None) -> TimelineQuery:
    """`?limit=1..100` (default 50) and `cursor` (empty: the first page); InvalidRequest otherwise."""
    if limit is None or limit == "":
        size = DEFAULT_LIMIT
    elif _LIMIT.fullmatch(limit) and 1 <= int(limit) <= MAX_LIMIT:
        size = int(limit)
    else:
        raise InvalidRequest(f"limit must be an integer from 1 to {MAX_LIMIT}")
    return TimelineQuery(size, decode_cursor(cursor) if cursor else None)


# ---- API: views --------------------------------------------------------------------------------


class AcquisitionView(BaseModel):
    source: str | None
    medium: str | None
    campaign: str | None
    referrer: str | None
    landing_page: str | None


class VisitorView(BaseModel):
    visitor_id: str
    user_id: str | None
    email: str | None
    name: str | None
    acquisition: AcquisitionView | None
    first_seen_at: str | None
    lifetime_revenue: dict[str, int]
    plan: dict[str, Any] | None
    stripe_customer_ids: list[str]

    @classmethod
    def of(cls, visitor: Visitor) -> VisitorView:
        acquisition = visitor.acquisition
        return cls(
            visitor_id=visitor.visitor_id,
            user_id=visitor.user_id,
            email=visitor.email,
            name=visitor.name,
            acquisition=AcquisitionView(**vars(acquisition)) if acquisition else None,
            first_seen_at=visitor.first_seen_at,
            lifetime_revenue=dict(visitor.lifetime_revenue),
            plan={name: visitor.plan.get(name) for name in PLAN_FIELDS} if visitor.plan else None,
            stripe_customer_ids=sorted(visitor.stripe_customer_ids),
        )


class EventView(BaseModel):
    id: str
    type: str
    occurred_at: str
    amount: int | None
    currency: str | None
    revenue: int
    stripe_object_id: str | None
    attribution_tier: int | None


class TimelineView(BaseModel):
    events: list[EventView]
    next_cursor: str | None

    @classmethod
    def of(cls, page: TimelinePage) -> TimelineView:
        return cls(
            events=[EventView(**vars(event)) for event in page.events],
            next_cursor=encode_cursor(page.last_sk) if page.last_sk else None,
        )
