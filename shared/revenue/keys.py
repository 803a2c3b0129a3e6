"""Keys of the revenue table. Every partition key starts with the project id (domain rule 8)."""

from __future__ import annotations

from typing import Any

PROFILE = "PROFILE"
LEDGER = "LEDGER"
LINK = "LINK"
HEAD = "HEAD"
TOTALS = "TOTALS"
EVENT = "EVENT"
TIMELINE_PREFIX = "T#"
MEMBER_PREFIX = "M#"


def _key(pk: str, sk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def visitor_pk(project: str, visitor: str) -> str:
    return f"P#{project}#V#{visitor}"


def visitor(project: str, visitor_id: str) -> dict[str, Any]:
    return _key(visitor_pk(project, visitor_id), PROFILE)


def timeline_sk(occurred_at: int, event_key: str) -> str:
    """Sorts by time (zero-padded epoch seconds), then by a key unique to the event."""
    return f"{TIMELINE_PREFIX}{occurred_at:012d}#{event_key}"


def timeline_event(project: str, visitor_id: str, occurred_at: int, event_key: str) -> dict[str, Any]:
    return _key(visitor_pk(project, visitor_id), timeline_sk(occurred_at, event_key))


def ledger(project: str, charge_id: str) -> dict[str, Any]:
    return _key(f"P#{project}#CH#{charge_id}", LEDGER)


LEDGER_INDEX = "ByCreated"  # GSI over ledger entries: gsi1pk = project, gsi1sk = created + charge


def ledger_index(project: str, created: int, charge_id: str) -> dict[str, str]:
    """The GSI attributes of a ledger entry (plain strings: merged into the item's values)."""
    return {"gsi1pk": f"P#{project}#LEDGER", "gsi1sk": f"{created:012d}#{charge_id}"}


SCOPES = "SCOPES"


def scope_index(project: str, scope: str) -> dict[str, Any]:
    """The GSI attributes of a scope's root item (a customer, a Checkout Session): the registry that
    removing a project's Stripe data pages through (ledger entries are in the index already)."""
    return {"gsi1pk": f"P#{project}#{SCOPES}", "gsi1sk": scope}


ROLLUP_PREFIX = "D#"


def rollup_pk(project: str) -> str:
    return f"P#{project}#ROLLUP"


def rollup_sk(day: str, shard: int) -> str:
    """Sorts by day (YYYY-MM-DD), so a Query between two days reads every shard of each."""
    return f"{ROLLUP_PREFIX}{day}#{shard}"


def rollup(project: str, day: str, shard: int) -> dict[str, Any]:
    """One shard of the project's rollup of a UTC day (shared.revenue.rollups)."""
    return _key(rollup_pk(project), rollup_sk(day, shard))


MONTH_PREFIX = "VM#"  # (not M#, C#: the email members and charge members sort keys)


def month_sk(month: str, shard: int) -> str:
    return f"{MONTH_PREFIX}{month}#{shard}"


def rollup_month(project: str, month: str, shard: int) -> dict[str, Any]:
    """The version of one shard of a UTC month's rollups (YYYY-MM; shared.revenue.rollups)."""
    return _key(rollup_pk(project), month_sk(month, shard))


REPORT_CACHE_PREFIX = "RC#"


def report_cache_sk(month: str, part: int) -> str:
    return f"{REPORT_CACHE_PREFIX}{month}#{part}"


def report_cache(project: str, month: str, part: int) -> dict[str, Any]:
    """One part of the report's cache of a UTC month's rollups (shared.reports.cache)."""
    return _key(rollup_pk(project), report_cache_sk(month, part))


def unattributed(project: str, currency: str) -> dict[str, Any]:
    """The project's unattributed total in one currency (one item each: created by its first ADD)."""
    return _key(f"P#{project}#UNATTRIBUTED", f"{TOTALS}#{currency}")


def customer_pk(project: str, customer_id: str) -> str:
    return f"P#{project}#CUS#{customer_id}"


def customer_link(project: str, customer_id: str) -> dict[str, Any]:
    """The customer's root item: its facts (email, metadata visitor), its link and the scope's version."""
    return _key(customer_pk(project, customer_id), LINK)


CHARGE_MEMBER_PREFIX = "C#"
SESSION_MEMBER_PREFIX = "S#"


def customer_charge(project: str, customer_id: str, charge_id: str) -> dict[str, Any]:
    return _key(customer_pk(project, customer_id), f"{CHARGE_MEMBER_PREFIX}{charge_id}")


def customer_session(project: str, customer_id: str, session_id: str) -> dict[str, Any]:
    return _key(customer_pk(project, customer_id), f"{SESSION_MEMBER_PREFIX}{session_id}")


CONTEXT_PREFIX = "X#"  # a context event (Checkout Completed, Invoice Paid, Subscription ...) of the customer
SUBSCRIPTION_PREFIX = "SUB#"


def customer_context(project: str, customer_id: str, event_key: str) -> dict[str, Any]:
    return _key(customer_pk(project, customer_id), f"{CONTEXT_PREFIX}{event_key}")


def customer_subscription(project: str, customer_id: str, subscription_id: str) -> dict[str, Any]:
    """The newest known state of a subscription, and the visitor it is placed on."""
    return _key(customer_pk(project, customer_id), f"{SUBSCRIPTION_PREFIX}{subscription_id}")


SESSION = "SESSION"
PAYMENT = "PI"
REF_PREFIX = "R#"


def session(project: str, session_id: str) -> dict[str, Any]:
    return _key(f"P#{project}#CS#{session_id}", SESSION)


GUEST_CHECKOUT = "PLACED"


def guest_checkout(project: str, session_id: str) -> dict[str, Any]:
    """Where a session without customer shows its Checkout Completed event (its own scope: CS#<id>)."""
    return _key(f"P#{project}#CS#{session_id}", GUEST_CHECKOUT)


def payment(project: str, payment_intent: str) -> dict[str, Any]:
    """Joins a PaymentIntent's charges and the sessions that paid it (either may arrive first)."""
    return _key(f"P#{project}#PI#{payment_intent}", PAYMENT)


def email_ref(project: str, email_key: str, scope: str) -> dict[str, Any]:
    """A scope whose attribution depends on this email (re-resolved when the email's head changes)."""
    return _key(email_pk(project, email_key), f"{REF_PREFIX}{scope}")


def visitor_ref_pk(project: str, visitor_id: str) -> str:
    return f"P#{project}#VR#{visitor_id}"


def visitor_ref(project: str, visitor_id: str, scope: str) -> dict[str, Any]:
    """A scope naming this visitor id (re-resolved when a visitor with this id is created)."""
    return _key(visitor_ref_pk(project, visitor_id), f"{REF_PREFIX}{scope}")


def email_pk(project: str, email_key: str) -> str:
    return f"P#{project}#EM#{email_key}"


def email_head(project: str, email_key: str) -> dict[str, Any]:
    """The visitor identified first with an email: one item, so batch reads can find it."""
    return _key(email_pk(project, email_key), HEAD)


def email_member(project: str, email_key: str, set_at: str, visitor_id: str) -> dict[str, Any]:
    """One item per visitor currently identified with the email, sorted by when it was set."""
    return _key(email_pk(project, email_key), f"{MEMBER_PREFIX}{set_at}#{visitor_id}")


def event_mark(project: str, event_id: str) -> dict[str, Any]:
    return _key(f"P#{project}#EV#{event_id}", EVENT)
