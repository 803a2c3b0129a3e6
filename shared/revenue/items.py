"""The revenue table's items as pynamodb models, one per item type (docs/data-model.md).

All share one polymorphic base, `RevenueItem`, discriminated by `kind`: one BatchGetItem or Query
returns the customer item, its charges and its placements as their own classes. The table name is
bound from configuration at first use (shared.dynamo.bind), never at import. Versions that
decisions check and bump are `VersionAttribute`s; a visitor's lifetime revenue, linked customers and
subscriptions are maps keyed by currency, customer and subscription (DynamoDB updates one key of a
map in place, so a booking adds to a currency the visitor never had).
"""

from __future__ import annotations

from typing import Any

from pynamodb.attributes import (
    BinaryAttribute,
    BooleanAttribute,
    DiscriminatorAttribute,
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    TTLAttribute,
    UnicodeAttribute,
    UnicodeSetAttribute,
    VersionAttribute,
)
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from . import keys


class RevenueItem(Model):
    class Meta:
        table_name: str | None = None  # bound from settings at first use
        region: str | None = None

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    kind = DiscriminatorAttribute()
    project_id = UnicodeAttribute(null=True)


class ByCreated(GlobalSecondaryIndex["LedgerItem"]):
    """Ledger entries by Stripe `created`, for reports."""

    class Meta:
        index_name = keys.LEDGER_INDEX
        projection = AllProjection()

    gsi1pk = UnicodeAttribute(hash_key=True)
    gsi1sk = UnicodeAttribute(range_key=True)


class LedgerItem(RevenueItem, discriminator="ledger"):
    charge_id = UnicodeAttribute()
    created = NumberAttribute()
    currency = UnicodeAttribute()
    amount = NumberAttribute()
    refunded = NumberAttribute()
    refund_steps = ListAttribute[Any](null=True)  # [cumulative refunded, when] per booked delta
    visitor_id = UnicodeAttribute(null=True)
    tier = NumberAttribute(null=True)
    source = UnicodeAttribute(null=True)  # the owner's acquisition.source (rollups): kept current
    customer_id = UnicodeAttribute(null=True)
    payment_intent = UnicodeAttribute(null=True)
    meta_visitor = UnicodeAttribute(null=True)
    billing_email = UnicodeAttribute(null=True)
    receipt_email = UnicodeAttribute(null=True)
    gsi1pk = UnicodeAttribute()
    gsi1sk = UnicodeAttribute()
    version = VersionAttribute()
    by_created = ByCreated()


class CustomerItem(RevenueItem, discriminator="customer"):
    """The scope's root: every transaction writing into the customer's partition bumps `version`."""

    customer_id = UnicodeAttribute()
    email = UnicodeAttribute(null=True)  # "": fetched, none
    meta_visitor = UnicodeAttribute(null=True)
    fetched = BooleanAttribute(default=False)
    visitor_id = UnicodeAttribute(null=True)
    tier = NumberAttribute(null=True)
    link_created = NumberAttribute(null=True)
    link_id = UnicodeAttribute(null=True)
    dirty = BooleanAttribute(null=True)
    gsi1pk = UnicodeAttribute(null=True)  # keys.scope_index
    gsi1sk = UnicodeAttribute(null=True)
    version = VersionAttribute()


class ChargeMemberItem(RevenueItem, discriminator="charge_member"):
    charge_id = UnicodeAttribute()


class SessionMemberItem(RevenueItem, discriminator="session_member"):
    session_id = UnicodeAttribute()


class ContextItem(RevenueItem, discriminator="context"):
    context = MapAttribute[str, Any]()
    placed_visitor = UnicodeAttribute(null=True)


class SubscriptionItem(RevenueItem, discriminator="subscription"):
    state = MapAttribute[str, Any]()
    placed_visitor = UnicodeAttribute(null=True)


class SessionItem(RevenueItem, discriminator="session"):
    session_id = UnicodeAttribute()
    created = NumberAttribute()
    customer_id = UnicodeAttribute(null=True)
    payment_intents = ListAttribute[Any](null=True)
    meta_visitor = UnicodeAttribute(null=True)
    client_reference_id = UnicodeAttribute(null=True)
    email = UnicodeAttribute(null=True)
    completed = BooleanAttribute(default=False)
    mode = UnicodeAttribute(null=True)
    invoice = UnicodeAttribute(null=True)
    subscription = UnicodeAttribute(null=True)
    amount_total = NumberAttribute(null=True)
    currency = UnicodeAttribute(null=True)
    gsi1pk = UnicodeAttribute(null=True)  # keys.scope_index
    gsi1sk = UnicodeAttribute(null=True)


class GuestCheckoutItem(RevenueItem, discriminator="guest_checkout"):
    """A customer-less session's Checkout Completed event and the visitor it shows on (re-decided
    when a visitor its evidence names appears or its email's head changes)."""

    context = MapAttribute[str, Any]()
    placed_visitor = UnicodeAttribute(null=True)
    version = VersionAttribute()


class PaymentItem(RevenueItem, discriminator="payment"):
    payment_intent = UnicodeAttribute()
    sessions = UnicodeSetAttribute(null=True)
    charges = UnicodeSetAttribute(null=True)
    version = VersionAttribute()


class RefItem(RevenueItem, discriminator="ref"):
    scope = UnicodeAttribute()


class EventMarkItem(RevenueItem, discriminator="event"):
    event_id = UnicodeAttribute()
    expires_at = TTLAttribute()


class UnattributedItem(RevenueItem, discriminator="unattributed"):
    """The project's unattributed total in one currency (sk `TOTALS#<currency>`)."""

    currency = UnicodeAttribute(null=True)
    amount = NumberAttribute(default=0)


class RollupItem(RevenueItem, discriminator="rollup"):
    """One shard of a day's rollup (shared.revenue.rollups): its money, payments and visitors are
    top-level number attributes whose names say what they count, so they are not declared here."""

    day = UnicodeAttribute(null=True)
    writes = NumberAttribute(default=0)  # bumped by every update: a removal deletes only what it read


class RollupMonthItem(RevenueItem, discriminator="rollup_month"):
    """The version of one shard of a month's rollups (shared.revenue.rollups.month_versions):
    bumped in every transaction that changes one of its day items, what the report's cache of the
    month is checked against. `generation` is set when the item is created."""

    writes = NumberAttribute(default=0)
    generation = UnicodeAttribute(null=True)


class ReportCacheItem(RevenueItem, discriminator="report_cache"):
    """One part of the report's cache of a month's rollups (shared.reports.cache), derived from the
    day items at the month's version `basis`; `parts` of them make the month."""

    basis = UnicodeAttribute()
    parts = NumberAttribute()
    data = BinaryAttribute(legacy_encoding=False)


class TimelineItem(RevenueItem, discriminator="timeline"):
    visitor_id = UnicodeAttribute()
    event_id = UnicodeAttribute()
    type = UnicodeAttribute()
    occurred_at = UnicodeAttribute()
    amount = NumberAttribute(null=True)
    currency = UnicodeAttribute(null=True)
    revenue = NumberAttribute(default=0)
    stripe_object_id = UnicodeAttribute(null=True)
    attribution_tier = NumberAttribute(null=True)


class EmailHeadItem(RevenueItem, discriminator="email_head"):
    """The visitor identified first with an email; `version` bumped by every member change."""

    visitor_id = UnicodeAttribute()
    set_at = UnicodeAttribute()
    version = VersionAttribute()


class EmailMemberItem(RevenueItem, discriminator="email_member"):
    visitor_id = UnicodeAttribute()
    set_at = UnicodeAttribute()


class AcquisitionMap(MapAttribute[str, Any]):
    source = UnicodeAttribute(null=True)
    medium = UnicodeAttribute(null=True)
    campaign = UnicodeAttribute(null=True)
    referrer = UnicodeAttribute(null=True)
    landing_page = UnicodeAttribute(null=True)


class ProfileItem(RevenueItem, discriminator="profile"):
    """A visitor: what the tracker sets (its PUTs check and bump `version`) and what booking keeps
    (the attributes of ProfileBooking below)."""

    visitor_id = UnicodeAttribute()
    user_id = UnicodeAttribute(null=True)
    email = UnicodeAttribute(null=True)
    email_key = UnicodeAttribute(null=True)
    email_set_at = UnicodeAttribute(null=True)
    name = UnicodeAttribute(null=True)
    acquisition = AcquisitionMap(null=True)
    first_seen_at = UnicodeAttribute(null=True)
    created_at = UnicodeAttribute(null=True)
    updated_at = UnicodeAttribute(null=True)
    pending = MapAttribute[str, Any](null=True)  # re-attribution a PUT started: token, created, emails
    version = VersionAttribute()
    revenue = MapAttribute[str, Any](default=dict)
    linked = MapAttribute[str, Any](default=dict)
    subscriptions = MapAttribute[str, Any](default=dict)
    plan = MapAttribute[str, Any](null=True)
    plan_version = NumberAttribute(null=True)


class ProfileBooking(Model):
    """The same profile item as booking updates it: its totals, links and plan, never the PUT's
    `version` (a booking and a PUT own different attributes and must not conflict)."""

    class Meta:
        table_name: str | None = None
        region: str | None = None

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    revenue = MapAttribute[str, Any](default=dict)  # currency -> lifetime revenue (minor units)
    linked = MapAttribute[str, Any](default=dict)  # customer id -> True: the visitor's stripe_customer_ids
    subscriptions = MapAttribute[str, Any](default=dict)  # subscription id -> newest state placed here
    plan = MapAttribute[str, Any](null=True)  # chosen among them (rule 6)
    plan_version = NumberAttribute(null=True)  # checked and bumped by every decision setting the plan
    acquisition = AcquisitionMap(null=True)  # never written here: a booking checks the source it rolled up


MODELS: tuple[type[Model], ...] = (RevenueItem, ProfileBooking)
