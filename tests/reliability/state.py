"""A project's final state, read straight from the stack's DynamoDB (moto), normalised and compared.

`read_items` takes every RevenueTable item whose pk starts with `P#<project>#` (one consistent Scan).
Items are told apart by `kind`, the discriminator of shared/revenue/items.py. `snapshot` keeps what
delivery order must not change (domain rule 3) and drops what it may: versions (`version`,
`plan_version`), event marks, processing times (`set_at`, `created_at`, ...), evidence bookkeeping
(references, sessions, PaymentIntent joins, memberships) and the project prefix. Categories:

- ledger: per charge, its owner (visitor, tier), amount (= amount_captured), refunded, currency,
  created, customer;
- totals: each visitor profile's `revenue` map, and the UNATTRIBUTED items (`TOTALS#<currency>`, one
  per currency) as one {currency: amount} (zeros dropped on both);
- links: per customer, its link (visitor, tier, the evidence `link_created`/`link_id`), and per
  visitor, the customers of its `linked` map;
- timelines: per visitor, its events (Charge Succeeded exact; a charge's Charge Refunded events as one
  net figure, since rule 1 books one event per refund delta *booked*, and how many deltas there are
  depends on the order refunds arrive in; context events exact);
- context: where each context event is placed: a customer's (X# items) and a guest checkout's
  (`guest_checkout` items: a customer-less session's Checkout Completed);
- plans: each visitor's `plan` and each entry of its `subscriptions` map, and each customer's
  subscription state (SUB# items in its partition) with the visitor it is placed on;
- visitors: email and acquisition of each visitor, and each email's holders in order (these come from
  the PUT chain alone: a difference here is the harness's fault, not the engine's).

`invariant_problems` checks one project against domain rule 4 (totals = net ledger per owner and
currency) and that each charge's timeline events sit with its owner, carry its tier and net to its
revenue, that `linked` maps and LINK items agree, that placed Checkout Completed events are shown
where placed (and shown only where some placement says), that each visitor's `subscriptions` map
holds exactly the subscription states placed on it and its `plan` is the one rule 6 picks among them,
and that nothing is left half done: no customer `dirty`, no profile with a `pending` re-attribution,
no item without a known `kind`.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, fields
from typing import Any

from shared.revenue import keys
from shared.revenue.items import RevenueItem
from shared.revenue.plans import SubscriptionState, visitor_plan
from tests import raw, revenue_checks

CATEGORIES = ("ledger", "totals", "links", "timelines", "context", "plans", "visitors")
UNATTRIBUTED = "(unattributed)"
CHARGE_EVENTS = ("Charge Succeeded", "Charge Refunded")
CONTEXT_KINDS = ("context", "guest_checkout")  # a placed context event: a customer's, a guest checkout's


def known_kinds() -> frozenset[str]:
    """The discriminator values of the revenue table's models (shared/revenue/items.py)."""
    return frozenset(RevenueItem.kind._discriminator_map)


def read_items(dynamodb: Any, table: str, project: str) -> list[dict[str, Any]]:
    """Every item of the project (pk `P#<project>#...`), as plain Python values."""
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {
        "TableName": table,
        "ConsistentRead": True,
        "FilterExpression": "begins_with(pk, :prefix)",
        "ExpressionAttributeValues": {":prefix": {"S": f"P#{project}#"}},
    }
    while True:
        page = dynamodb.scan(**kwargs)
        items.extend(raw.from_item(item) for item in page["Items"])
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _partition(item: dict[str, Any], project: str) -> str:
    """The pk without `P#<project>#`: `V#vis-1`, `CUS#cus_...`, `EM#a@b.c`."""
    pk: str = item["pk"]
    prefix = f"P#{project}#"
    assert pk.startswith(prefix), pk
    return pk.removeprefix(prefix)


def _id_of(part: str) -> str:
    """`V#vis-1` -> `vis-1`, `CUS#cus_1` -> `cus_1`."""
    return part.split("#", 1)[1]


def _context_key(item: dict[str, Any]) -> str:
    context = item.get("context") or {}
    return f"{context.get('type')} {context.get('event_key')}"


Snapshot = dict[str, dict[str, Any]]  # category -> key -> comparable value


def snapshot(items: list[dict[str, Any]], project: str) -> Snapshot:
    state: Snapshot = {category: {} for category in CATEGORIES}
    refunds: dict[tuple[str, str], dict[str, Any]] = {}
    members: dict[str, list[tuple[str, str]]] = defaultdict(list)
    unattributed: list[dict[str, Any]] = []
    for item in items:
        part, kind = _partition(item, project), item.get("kind")
        if kind == "ledger":
            state["ledger"][item["charge_id"]] = {
                "visitor": item.get("visitor_id"),
                "tier": item.get("tier"),
                "amount": item["amount"],
                "refunded": item["refunded"],
                "currency": item["currency"],
                "created": item.get("created"),
                "customer": item.get("customer_id"),
            }
        elif kind == "unattributed":
            unattributed.append(item)
        elif kind == "profile":
            visitor = item["visitor_id"]
            state["totals"][visitor] = revenue_checks.totals_of(item)
            state["links"][f"visitor {visitor}"] = list(revenue_checks.linked_customers_of(item))
            state["plans"][f"plan of {visitor}"] = item.get("plan")
            for subscription, placed in sorted((item.get("subscriptions") or {}).items()):
                state["plans"][f"subscription {subscription} on {visitor}"] = placed
            state["visitors"][visitor] = {
                "email": item.get("email"),
                "email_key": item.get("email_key"),
                "acquisition": item.get("acquisition"),
            }
        elif kind == "customer":
            link = None
            if item.get("visitor_id"):
                link = {
                    "visitor": item["visitor_id"],
                    "tier": item.get("tier"),
                    "evidence": (item.get("link_created"), item.get("link_id")),
                }
            state["links"][f"customer {item['customer_id']}"] = link
        elif kind == "timeline":
            visitor = _id_of(part)
            if item.get("type") == "Charge Refunded":
                net = refunds.setdefault(
                    (visitor, item["stripe_object_id"]),
                    {"revenue": 0, "tiers": set(), "currency": item.get("currency")},
                )
                net["revenue"] += item["revenue"]
                net["tiers"].add(item.get("attribution_tier"))
                continue
            key = f"{visitor}: {item.get('type')} {item.get('stripe_object_id')} ({item.get('event_id')})"
            state["timelines"][key] = {
                "occurred_at": item.get("occurred_at"),
                "amount": item.get("amount"),
                "currency": item.get("currency"),
                "revenue": item.get("revenue"),
                "tier": item.get("attribution_tier"),
            }
        elif kind == "subscription":
            customer, subscription = _id_of(part), item["sk"].removeprefix(keys.SUBSCRIPTION_PREFIX)
            state["plans"][f"subscription {subscription} of {customer}"] = {
                "state": item.get("state"),
                "placed_on": item.get("placed_visitor"),
            }
        elif kind in CONTEXT_KINDS:
            state["context"][_context_key(item)] = item.get("placed_visitor")
        elif kind == "email_member":
            members[_id_of(part)].append((str(item.get("set_at")), str(item.get("visitor_id"))))
    if unattributed:
        state["totals"][UNATTRIBUTED] = revenue_checks.unattributed_of(unattributed)
    for (visitor, charge), net in refunds.items():
        state["timelines"][f"{visitor}: Charge Refunded {charge} (net of its refund events)"] = {
            "currency": net["currency"],
            "revenue": net["revenue"],
            "tiers": sorted(net["tiers"], key=str),
        }
    for email, holders in members.items():
        state["visitors"][f"email {email}"] = [visitor for _, visitor in sorted(holders)]
    return state


@dataclass(frozen=True)
class Difference:
    category: str
    key: str
    expected: Any  # the reference (serial) run's value; None when missing there
    actual: Any

    def render(self, notes: dict[str, str] | None = None) -> str:
        """One line; `notes` (Stripe id -> what it is in the world) explain the ids in the key."""
        words = [w.strip("():,") for w in self.key.split()]
        explained = [f"{w}: {notes[w]}" for w in words if notes and w in notes]
        note = f" [{'; '.join(explained)}]" if explained else ""
        if self.category == "ledger":
            return f"ledger {self.key}{note}: serial {_owner(self.expected)}, parallel {_owner(self.actual)}"
        if isinstance(self.expected, dict) and isinstance(self.actual, dict):
            changes = "; ".join(
                f"{name}: serial {a!r}, parallel {b!r}" for name, a, b in _changes(self.expected, self.actual)
            )
            return f"{self.category} {self.key}{note}: {changes}"
        return f"{self.category} {self.key}{note}: serial {self.expected!r}, parallel {self.actual!r}"


def _changes(a: dict[str, Any], b: dict[str, Any], prefix: str = "") -> list[tuple[str, Any, Any]]:
    """The fields (dotted paths into nested dicts) whose values differ."""
    found = []
    for name in sorted(set(a) | set(b)):
        x, y = a.get(name), b.get(name)
        if isinstance(x, dict) and isinstance(y, dict):
            found.extend(_changes(x, y, f"{prefix}{name}."))
        elif x != y:
            found.append((f"{prefix}{name}", x, y))
    return found


def _owner(entry: Any) -> str:
    if not isinstance(entry, dict):
        return "(missing)"
    who = entry["visitor"] or "unattributed"
    tier = f" tier {entry['tier']}" if entry["tier"] else ""
    money = f"{entry['amount'] - entry['refunded']} {entry['currency']} net"
    if entry["refunded"]:
        money += f" ({entry['amount']} - {entry['refunded']} refunded)"
    return f"{who}{tier}, {money}, customer {entry['customer']}"


def compare(expected: Snapshot, actual: Snapshot) -> list[Difference]:
    """Every key of every category whose value differs (or exists on one side only)."""
    differences = []
    for category in CATEGORIES:
        want, got = expected.get(category, {}), actual.get(category, {})
        for key in sorted(set(want) | set(got)):
            if key in want and key in got and want[key] == got[key]:
                continue
            if _empty(want.get(key)) and _empty(got.get(key)):
                continue  # e.g. a visitor with no totals on one side and none recorded on the other
            differences.append(Difference(category, key, want.get(key), got.get(key)))
    return differences


def _empty(value: Any) -> bool:
    return value is None or value == {} or value == []


def invariant_problems(items: list[dict[str, Any]], project: str) -> list[str]:
    """Rule 4 and the consistency the engine promises between ledger, totals, timelines, links and
    plans, and no decision or re-attribution left half done."""
    problems: list[str] = []
    kinds = known_kinds()
    expected: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    actual: dict[str, dict[str, int]] = {}
    unattributed: list[dict[str, Any]] = []
    charge_events: dict[str, list[dict[str, Any]]] = defaultdict(list)
    context_shown: dict[str, set[str]] = defaultdict(set)
    linked_on_visitors: dict[str, set[str]] = {}
    links: dict[str, str] = {}
    ledger: list[dict[str, Any]] = []
    placed: list[dict[str, Any]] = []
    subscriptions_on_visitors: dict[str, dict[str, Any]] = {}
    plans: dict[str, Any] = {}
    placed_subscriptions: dict[str, dict[str, Any]] = defaultdict(dict)  # visitor -> subscription -> state
    for item in items:
        part, kind = _partition(item, project), item.get("kind")
        if kind not in kinds:
            problems.append(f"item {part} {item['sk']} has kind {kind!r}, not one of the revenue table's")
            continue
        if kind == "ledger":
            ledger.append(item)
            owner = item.get("visitor_id") or UNATTRIBUTED
            expected[owner][item["currency"]] += item["amount"] - item["refunded"]
        elif kind == "profile":
            visitor = item["visitor_id"]
            actual[visitor] = revenue_checks.totals_of(item)
            linked_on_visitors[visitor] = set(revenue_checks.linked_customers_of(item))
            subscriptions_on_visitors[visitor] = dict(item.get("subscriptions") or {})
            plans[visitor] = item.get("plan")
            if item.get("pending") is not None:
                problems.append(f"re-attribution: {visitor} still has pending {item['pending']!r}")
        elif kind == "unattributed":
            if item["sk"] != f"{keys.TOTALS}#{item.get('currency')}":
                problems.append(f"unattributed: item {item['sk']} says currency {item.get('currency')!r}")
            unattributed.append(item)
        elif kind == "customer":
            if item.get("dirty"):
                problems.append(f"links: customer {item['customer_id']} left dirty (a decision's chain unfinished)")
            if item.get("visitor_id"):
                links[item["customer_id"]] = item["visitor_id"]
        elif kind == "timeline":
            visitor = _id_of(part)
            if item.get("type") in CHARGE_EVENTS:
                charge_events[item["stripe_object_id"]].append({**item, "on": visitor})
            elif item.get("type") == "Checkout Completed":
                context_shown[str(item.get("event_id"))].add(visitor)
        elif kind in CONTEXT_KINDS:
            placed.append(item)
        elif kind == "subscription" and item.get("placed_visitor"):
            subscription = item["sk"].removeprefix(keys.SUBSCRIPTION_PREFIX)
            placed_subscriptions[item["placed_visitor"]][subscription] = item.get("state")
    if unattributed:
        actual[UNATTRIBUTED] = revenue_checks.unattributed_of(unattributed)

    for owner in sorted(set(expected) | set(actual)):
        want = {cur: amount for cur, amount in expected.get(owner, {}).items() if amount}
        if actual.get(owner, {}) != want:
            problems.append(f"rule 4: totals of {owner} are {actual.get(owner, {})}, its ledger entries net {want}")

    for entry in ledger:
        charge, owner = entry["charge_id"], entry.get("visitor_id")
        events = charge_events.pop(charge, [])
        if owner is None:
            if events:
                problems.append(f"timeline: unattributed {charge} has events on {sorted({e['on'] for e in events})}")
            continue
        where = {e["on"] for e in events}
        if where != {owner}:
            problems.append(f"timeline: {charge} belongs to {owner}, its events are on {sorted(where)}")
        tiers = {e.get("attribution_tier") for e in events}
        if tiers != {entry.get("tier")}:
            problems.append(f"timeline: {charge} is tier {entry.get('tier')}, its events say {sorted(tiers, key=str)}")
        net = sum(e["revenue"] for e in events)
        if net != entry["amount"] - entry["refunded"]:
            problems.append(f"timeline: {charge} nets {entry['amount'] - entry['refunded']}, its events {net}")
    for charge in sorted(charge_events):
        problems.append(f"timeline: events of {charge}, which has no ledger entry")

    for visitor, linked in sorted(linked_on_visitors.items()):
        want_linked = {customer for customer, v in links.items() if v == visitor}
        if linked != want_linked:
            problems.append(f"links: {visitor} lists {sorted(linked)}, LINK items say {sorted(want_linked)}")
    for customer, visitor in sorted(links.items()):
        if visitor not in linked_on_visitors:
            problems.append(f"links: {customer} is linked to {visitor}, which has no profile")

    placed_keys = set()
    for item in placed:
        context = item.get("context") or {}
        placed_keys.add(str(context.get("event_key")))
        if context.get("type") != "Checkout Completed":
            continue
        where = context_shown.get(str(context.get("event_key")), set())
        placed_on = item.get("placed_visitor")
        if where != ({placed_on} if placed_on else set()):
            problems.append(
                f"context: {context.get('event_key')} ({item['kind']}) placed on {placed_on}, shown on {sorted(where)}"
            )
    for event_key, where in sorted(context_shown.items()):
        if event_key not in placed_keys:
            problems.append(f"context: Checkout Completed {event_key} shown on {sorted(where)}, placed by no item")

    for visitor in sorted(set(subscriptions_on_visitors) | set(placed_subscriptions)):
        held = subscriptions_on_visitors.get(visitor, {})
        want_held = placed_subscriptions.get(visitor, {})
        if held != want_held:
            problems.append(
                f"plans: {visitor}'s subscriptions {_states(held)}, the SUB# items placed on it {_states(want_held)}"
            )
        if visitor in plans:
            chosen = visitor_plan(_state(state) for state in held.values() if state)
            if _without_nulls(plans[visitor]) != _without_nulls(chosen):
                problems.append(f"plans: {visitor}'s plan is {plans[visitor]!r}, rule 6 picks {chosen!r}")
    return problems


def _state(stored: dict[str, Any]) -> SubscriptionState:
    """A SubscriptionState from its stored map (a field stored as absent read as None)."""
    values: dict[str, Any] = {f.name: stored.get(f.name) for f in fields(SubscriptionState)}
    return SubscriptionState(**values)


def _without_nulls(plan: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if plan is None else {name: value for name, value in plan.items() if value is not None}


def _states(states: dict[str, Any]) -> str:
    """`{sub_1: active (event 1792450429)}`: enough to tell two states of a subscription apart."""
    shown = [
        f"{sub}: {(s or {}).get('status')} (event {(s or {}).get('event_created')})"
        for sub, s in sorted(states.items())
    ]
    return "{" + ", ".join(shown) + "}"
