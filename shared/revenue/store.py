"""Revenue data access: batched reads of scopes, and one transaction per decision.

Every write that changes a ledger entry's money or owner changes the totals it feeds in the same
TransactWriteItems, with conditions on the state it was decided from (domain rule 4): the scope's
root (the customer item, or the ledger entry of a charge without customer) carries a version that
every decision on the scope checks and bumps, and the join items it read (PaymentIntents, email
heads, visitors not yet created) are checked unchanged, so concurrent decisions serialise.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from .. import dynamo
from ..settings import get_settings
from . import keys
from .errors import DuplicateEvent, StaleUpdate
from .models import ChargeFacts, CustomerRecord, SessionFacts
from .resolve import Link

EVENT_MARK_DAYS = 35  # Stripe retries for up to 3 days; the ledger guards money for ever
_BATCH_GET_LIMIT = 100


def batch_get(requests: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    """BatchGetItem over several tables, chunked by 100 keys, retrying unprocessed keys."""
    found: dict[str, list[dict[str, Any]]] = {table: [] for table in requests}
    pending = [(table, key) for table, table_keys in requests.items() for key in _unique(table_keys)]
    for start in range(0, len(pending), _BATCH_GET_LIMIT):
        chunk: dict[str, Any] = {}
        for table, key in pending[start : start + _BATCH_GET_LIMIT]:
            chunk.setdefault(table, {"Keys": [], "ConsistentRead": True})["Keys"].append(key)
        for attempt in range(8):
            response = dynamo.client().batch_get_item(RequestItems=chunk)
            for table, items in response.get("Responses", {}).items():
                found[table].extend(dynamo.from_item(item) for item in items)
            chunk = response.get("UnprocessedKeys") or {}
            if not chunk:
                break
            time.sleep(min(0.05 * 2**attempt, 1.0))
        else:
            raise StaleUpdate("DynamoDB left keys unprocessed after retries")
    return found


def _unique(items: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return list({json.dumps(k, sort_keys=True): k for k in items}.values())


def query_partition(pk: str) -> list[dict[str, Any]]:
    table = get_settings().revenue_table
    kwargs: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": "pk = :pk",
        "ExpressionAttributeValues": {":pk": {"S": pk}},
        "ConsistentRead": True,
    }
    items: list[dict[str, Any]] = []
    while True:
        page = dynamo.client().query(**kwargs)
        items.extend(dynamo.from_item(i) for i in page["Items"])
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def revenue_items(project_keys: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if not project_keys:
        return []
    table = get_settings().revenue_table
    return batch_get({table: project_keys})[table]


# ---- stored records ------------------------------------------------------------------------------


@dataclass
class LedgerRecord:
    """A booked charge: its evidence, its owner and the money booked so far."""

    facts: ChargeFacts
    visitor_id: str | None
    tier: int | None
    amount: int
    refunded: int
    refund_steps: list[tuple[int, int]]  # (cumulative refunded, when) of each booked refund delta
    version: int

    @property
    def net(self) -> int:
        return self.amount - self.refunded


def ledger_record(item: dict[str, Any]) -> LedgerRecord:
    facts = ChargeFacts(
        id=item["charge_id"],
        created=item["created"],
        currency=item["currency"],
        amount=item["amount"],
        amount_captured=item["amount"],
        amount_refunded=item["refunded"],
        captured=True,
        status="succeeded",
        customer_id=item.get("customer_id"),
        billing_email=item.get("billing_email"),
        receipt_email=item.get("receipt_email"),
        payment_intent=item.get("payment_intent"),
        meta_visitor=item.get("meta_visitor"),
    )
    return LedgerRecord(
        facts=facts,
        visitor_id=item.get("visitor_id"),
        tier=item.get("tier"),
        amount=item["amount"],
        refunded=item["refunded"],
        refund_steps=[(int(c), int(t)) for c, t in item.get("refund_steps", [])],
        version=item.get("version", 0),
    )


@dataclass
class CustomerRoot:
    record: CustomerRecord
    fetched: bool
    link: Link | None
    version: int | None  # None: no item yet


def customer_root(customer_id: str, item: dict[str, Any] | None) -> CustomerRoot:
    if item is None:
        return CustomerRoot(CustomerRecord(customer_id), False, None, None)
    link = None
    if item.get("visitor_id"):
        link = Link(item["visitor_id"], (item["link_created"], item["link_id"]), item["tier"])
    record = CustomerRecord(
        customer_id,
        email=item.get("email"),
        meta_visitor=item.get("meta_visitor"),
        visitor_id=item.get("visitor_id"),
        tier=item.get("tier"),
    )
    return CustomerRoot(record, bool(item.get("fetched")), link, item.get("version", 0))


@dataclass
class PaymentJoin:
    sessions: set[str] = field(default_factory=set)
    charges: set[str] = field(default_factory=set)
    version: int | None = None  # None: no item yet


def payment_join(item: dict[str, Any] | None) -> PaymentJoin:
    if item is None:
        return PaymentJoin()
    return PaymentJoin(set(item.get("sessions", ())), set(item.get("charges", ())), item.get("version", 0))


def session_facts(item: dict[str, Any]) -> SessionFacts:
    return SessionFacts(
        id=item["session_id"],
        created=item["created"],
        customer_id=item.get("customer_id"),
        payment_intents=tuple(item.get("payment_intents", ())),
        meta_visitor=item.get("meta_visitor"),
        client_reference_id=item.get("client_reference_id"),
        email=item.get("email"),
        completed=bool(item.get("completed")),
        mode=item.get("mode", "payment"),
        invoice=item.get("invoice"),
        subscription=item.get("subscription"),
        amount_total=item.get("amount_total"),
        currency=item.get("currency"),
    )


def iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


# ---- the transaction -----------------------------------------------------------------------------


@dataclass
class _OwnerChange:
    amounts: dict[str, int] = field(default_factory=dict)
    linked: set[str] = field(default_factory=set)
    unlinked: set[str] = field(default_factory=set)


class Transaction:
    """TransactWriteItems built item by item; each item's label says what a cancellation means.

    One operation per item (DynamoDB's rule): a second write to an item already written is a bug,
    a condition check on an item already written is dropped (the write carries its own condition).
    """

    def __init__(self, project: str) -> None:
        self.project = project
        self.table = get_settings().revenue_table
        self.items: list[dict[str, Any]] = []
        self.labels: list[str] = []
        self._keys: dict[str, int] = {}
        self._totals: dict[str | None, _OwnerChange] = {}

    def __len__(self) -> int:
        return len(self.items)

    def _add(self, label: str, key: dict[str, Any], operation: str, body: dict[str, Any]) -> None:
        identity = json.dumps(key, sort_keys=True)
        if identity in self._keys:
            index = self._keys[identity]
            if operation == "ConditionCheck":
                return
            if "ConditionCheck" in self.items[index]:  # a write supersedes a mere check
                self.items[index] = self._operation(operation, key, body)
                self.labels[index] = label
                return
            raise ValueError(f"two writes to one item in a transaction: {label}")
        self._keys[identity] = len(self.items)
        self.labels.append(label)
        self.items.append(self._operation(operation, key, body))

    def _operation(self, operation: str, key: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        if operation == "Put":
            rest = {k: v for k, v in body.items() if k != "Item"}
            return {"Put": {"TableName": self.table, "Item": {**key, **body["Item"]}, **rest}}
        return {operation: {"TableName": self.table, "Key": key, **body}}

    # -- conditions on what a decision read ------------------------------------------------------

    def expect_version(self, label: str, key: dict[str, Any], version: int | None) -> None:
        """The item is as read: absent, or at `version`."""
        if version is None:
            condition, values = "attribute_not_exists(pk)", {}
        elif version == 0:  # items written before they carried a version read as version 0
            condition = "attribute_exists(pk) AND (attribute_not_exists(version) OR version = :v)"
            values = {":v": {"N": "0"}}
        else:
            condition, values = "version = :v", {":v": {"N": str(version)}}
        body: dict[str, Any] = {"ConditionExpression": condition}
        if values:
            body["ExpressionAttributeValues"] = values
        self._add(label, key, "ConditionCheck", body)

    def expect_absent(self, label: str, key: dict[str, Any]) -> None:
        self._add(label, key, "ConditionCheck", {"ConditionExpression": "attribute_not_exists(pk)"})

    # -- ledger ----------------------------------------------------------------------------------

    def put_ledger(self, record: LedgerRecord) -> None:
        """A new ledger entry: refused if the charge is booked already (money once, rule 1)."""
        self._add(
            "ledger",
            keys.ledger(self.project, record.facts.id),
            "Put",
            {"Item": dynamo.to_item(self._ledger_values(record)), "ConditionExpression": "attribute_not_exists(pk)"},
        )

    def replace_ledger(self, record: LedgerRecord, expected_version: int) -> None:
        """The entry with a new owner or refunds, if nobody changed it since it was read."""
        self._add(
            "ledger",
            keys.ledger(self.project, record.facts.id),
            "Put",
            {
                "Item": dynamo.to_item(self._ledger_values(record)),
                "ConditionExpression": "version = :v",
                "ExpressionAttributeValues": {":v": {"N": str(expected_version)}},
            },
        )

    def _ledger_values(self, record: LedgerRecord) -> dict[str, Any]:
        f = record.facts
        return {
            "project_id": self.project,
            "charge_id": f.id,
            "created": f.created,
            "currency": f.currency,
            "amount": record.amount,
            "refunded": record.refunded,
            "refund_steps": [list(step) for step in record.refund_steps] or None,
            "visitor_id": record.visitor_id,
            "tier": record.tier,
            "customer_id": f.customer_id,
            "payment_intent": f.payment_intent,
            "meta_visitor": f.meta_visitor,
            "billing_email": f.billing_email,
            "receipt_email": f.receipt_email,
            "version": record.version,
            **keys.ledger_index(self.project, f.created, f.id),
        }

    # -- totals ------------------------------------------------------------------------------------

    def add_total(self, visitor_id: str | None, currency: str, amount: int) -> None:
        """Move an owner's total (None: the unattributed total); summed per owner until commit."""
        amounts = self._owner(visitor_id).amounts
        amounts[currency] = amounts.get(currency, 0) + amount

    def link_customer(self, visitor_id: str, customer_id: str, linked: bool) -> None:
        """A visitor's `stripe_customer_ids` are the customers linked to it (rule 2's memory)."""
        owner = self._owner(visitor_id)
        (owner.linked if linked else owner.unlinked).add(customer_id)

    def _owner(self, visitor_id: str | None) -> _OwnerChange:
        if visitor_id not in self._totals:
            self._totals[visitor_id] = _OwnerChange()
        return self._totals[visitor_id]

    def _flush_totals(self) -> None:
        """One update per owner item, every currency at once (a visitor must exist)."""
        for visitor_id, change in self._totals.items():
            amounts = {currency: amount for currency, amount in change.amounts.items() if amount}
            if not amounts and not change.linked and not change.unlinked:
                continue
            names = {f"#r{i}": keys.REVENUE_PREFIX + c for i, c in enumerate(amounts)}
            values: dict[str, Any] = {f":a{i}": {"N": str(a)} for i, a in enumerate(amounts.values())}
            adds = [f"#r{i} :a{i}" for i in range(len(amounts))]
            sets, removes = [], []
            for i, customer in enumerate(sorted(change.linked - change.unlinked)):
                names[f"#l{i}"] = keys.LINKED_PREFIX + customer
                sets.append(f"#l{i} = :linked")
                values[":linked"] = {"BOOL": True}
            for i, customer in enumerate(sorted(change.unlinked - change.linked)):
                names[f"#u{i}"] = keys.LINKED_PREFIX + customer
                removes.append(f"#u{i}")
            if visitor_id is None:
                sets.append("project_id = :project")
                values[":project"] = {"S": self.project}
            clauses = [
                f"{verb} {', '.join(parts)}"
                for verb, parts in (("SET", sets), ("ADD", adds), ("REMOVE", removes))
                if parts
            ]
            body: dict[str, Any] = {"UpdateExpression": " ".join(clauses)}
            if values:
                body["ExpressionAttributeValues"] = values
            if names:
                body["ExpressionAttributeNames"] = names
            if visitor_id is None:
                self._add("unattributed", keys.unattributed(self.project), "Update", body)
            else:
                body["ConditionExpression"] = "attribute_exists(pk)"
                self._add("visitor", keys.visitor(self.project, visitor_id), "Update", body)
        self._totals = {}

    # -- timeline ----------------------------------------------------------------------------------

    def put_timeline(self, visitor_id: str, event: dict[str, Any]) -> None:
        key = keys.timeline_event(self.project, visitor_id, event["at"], event["event_id"])
        values = {
            "project_id": self.project,
            "visitor_id": visitor_id,
            "event_id": event["event_id"],
            "type": event["type"],
            "occurred_at": iso(event["at"]),
            "amount": event.get("amount"),
            "currency": event.get("currency"),
            "revenue": event["revenue"],
            "stripe_object_id": event.get("stripe_object_id"),
            "attribution_tier": event.get("tier"),
        }
        self._add("timeline", key, "Put", {"Item": dynamo.to_item(values)})

    def delete_timeline(self, visitor_id: str, at: int, event_id: str) -> None:
        self._add("timeline", keys.timeline_event(self.project, visitor_id, at, event_id), "Delete", {})

    def delete_item(self, label: str, key: dict[str, Any]) -> None:
        self._add(label, key, "Delete", {})

    # -- evidence ----------------------------------------------------------------------------------

    def put_plain(self, label: str, key: dict[str, Any], values: dict[str, Any]) -> None:
        """An item written whole, unconditionally (membership, references, session evidence); writing
        the same one twice in a decision is writing it once."""
        if json.dumps(key, sort_keys=True) in self._keys and label in ("ref", "member"):
            return
        self._add(label, key, "Put", {"Item": dynamo.to_item({"project_id": self.project, **values})})

    def update_customer(self, root: CustomerRoot, link: Link | None) -> None:
        """The customer's facts and link, bumping the scope's version (refused if it moved)."""
        r = root.record
        values = {
            "project_id": self.project,
            "customer_id": r.customer_id,
            "email": r.email,
            "meta_visitor": r.meta_visitor,
            "fetched": root.fetched,
            "visitor_id": link.visitor_id if link else None,
            "tier": link.tier if link else None,
            "link_created": link.evidence[0] if link else None,
            "link_id": link.evidence[1] if link else None,
            "version": (root.version or 0) + 1,
        }
        if root.version is None:
            condition, expression_values = "attribute_not_exists(pk)", {}
        else:
            condition, expression_values = "version = :v", {":v": {"N": str(root.version)}}
        body: dict[str, Any] = {"Item": dynamo.to_item(values), "ConditionExpression": condition}
        if expression_values:
            body["ExpressionAttributeValues"] = expression_values
        self._add("customer", keys.customer_link(self.project, r.customer_id), "Put", body)

    def join_payment(self, payment_intent: str, join: PaymentJoin, *, session: str | None, charge: str | None) -> None:
        """Record a session or charge on its PaymentIntent's join item (refused if it moved)."""
        sessions = join.sessions | ({session} if session else set())
        charges = join.charges | ({charge} if charge else set())
        values = {
            "project_id": self.project,
            "payment_intent": payment_intent,
            "sessions": sessions or None,
            "charges": charges or None,
            "version": (join.version or 0) + 1,
        }
        if join.version is None:
            body: dict[str, Any] = {"Item": dynamo.to_item(values), "ConditionExpression": "attribute_not_exists(pk)"}
        else:
            body = {
                "Item": dynamo.to_item(values),
                "ConditionExpression": "version = :v",
                "ExpressionAttributeValues": {":v": {"N": str(join.version)}},
            }
        self._add("payment", keys.payment(self.project, payment_intent), "Put", body)

    def mark_event(self, event_id: str, now: int) -> None:
        values = {"event_id": event_id, "project_id": self.project, "expires_at": now + EVENT_MARK_DAYS * 86_400}
        self._add(
            "event",
            keys.event_mark(self.project, event_id),
            "Put",
            {"Item": dynamo.to_item(values), "ConditionExpression": "attribute_not_exists(pk)"},
        )

    def commit(self) -> None:
        """Write everything or nothing; a failed condition becomes the domain error it means."""
        self._flush_totals()
        if not self.items:
            return
        try:
            dynamo.client().transact_write_items(TransactItems=self.items)  # type: ignore[arg-type]
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "TransactionCanceledException":
                raise
            reasons = [r.get("Code", "None") for r in exc.response.get("CancellationReasons", [])]
            failed = {
                label for label, code in zip(self.labels, reasons, strict=False) if code == "ConditionalCheckFailed"
            }
            if "event" in failed:
                raise DuplicateEvent() from None
            raise StaleUpdate(",".join(sorted(failed)) or ",".join(reasons)) from None
