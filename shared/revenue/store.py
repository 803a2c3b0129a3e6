"""Revenue data access: one BatchGetItem to load what booking needs, one transaction to write it.

Every write that changes a ledger entry's money changes the totals it feeds in the same
TransactWriteItems, with conditions on the state it was decided from (domain rule 4).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from .. import dynamo
from ..settings import get_settings
from . import keys
from .errors import AlreadyBooked, DuplicateEvent, StaleUpdate
from .models import CustomerRecord, LedgerEntry

EVENT_MARK_DAYS = 35  # Stripe retries for up to 3 days; the ledger guards money for ever
_BATCH_GET_LIMIT = 100


@dataclass
class Snapshot:
    """What one booking decision reads, fetched together."""

    integration: dict[str, Any] | None = None
    seen_events: set[str] = field(default_factory=set)
    ledger: dict[str, LedgerEntry] = field(default_factory=dict)
    customers: dict[str, CustomerRecord] = field(default_factory=dict)
    heads: dict[str, str] = field(default_factory=dict)


def batch_get(requests: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    """BatchGetItem over several tables, chunked by 100 keys, retrying unprocessed keys."""
    found: dict[str, list[dict[str, Any]]] = {table: [] for table in requests}
    pending = [(table, key) for table, table_keys in requests.items() for key in table_keys]
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


def load(
    project: str,
    *,
    event_ids: Iterable[str] = (),
    charge_ids: Iterable[str] = (),
    customer_ids: Iterable[str] = (),
    email_keys: Iterable[str] = (),
    with_integration: bool = False,
) -> Snapshot:
    settings = get_settings()
    revenue_keys = (
        [keys.event_mark(project, e) for e in event_ids]
        + [keys.ledger(project, c) for c in charge_ids]
        + [keys.customer_link(project, c) for c in customer_ids]
        + [keys.email_head(project, e) for e in email_keys]
    )
    requests: dict[str, list[dict[str, Any]]] = {settings.revenue_table: revenue_keys}
    if with_integration:
        requests[settings.integrations_table] = [{"project_id": {"S": project}}]
    found = batch_get({table: table_keys for table, table_keys in requests.items() if table_keys})
    snapshot = Snapshot()
    for item in found.get(settings.integrations_table, []):
        snapshot.integration = item
    for item in found.get(settings.revenue_table, []):
        kind = item["sk"]
        if kind == keys.EVENT:
            snapshot.seen_events.add(item["event_id"])
        elif kind == keys.LEDGER:
            entry = ledger_entry(item)
            snapshot.ledger[entry.charge_id] = entry
        elif kind == keys.LINK:
            record = CustomerRecord(item["customer_id"], item.get("email"), item.get("visitor_id"), item.get("tier"))
            snapshot.customers[record.customer_id] = record
        elif kind == keys.HEAD:
            snapshot.heads[item["pk"].split("#EM#", 1)[1]] = item["visitor_id"]
    return snapshot


def ledger_entry(item: dict[str, Any]) -> LedgerEntry:
    return LedgerEntry(
        charge_id=item["charge_id"],
        created=item["created"],
        currency=item["currency"],
        amount=item["amount"],
        refunded=item["refunded"],
        visitor_id=item.get("visitor_id"),
        tier=item.get("tier"),
        customer_id=item.get("customer_id"),
        emails=tuple(item.get("emails", ())),
    )


def _iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


class Transaction:
    """TransactWriteItems built item by item; each item's label says what a cancellation means."""

    def __init__(self, project: str) -> None:
        self.project = project
        self.table = get_settings().revenue_table
        self.items: list[dict[str, Any]] = []
        self.labels: list[str] = []

    def _add(self, label: str, item: dict[str, Any]) -> None:
        self.labels.append(label)
        self.items.append(item)

    def put_ledger(self, entry: LedgerEntry) -> None:
        """A new ledger entry: refused if the charge is booked already (money once, rule 1)."""
        values = {
            "project_id": self.project,
            "charge_id": entry.charge_id,
            "created": entry.created,
            "currency": entry.currency,
            "amount": entry.amount,
            "refunded": entry.refunded,
            "visitor_id": entry.visitor_id,
            "tier": entry.tier,
            "customer_id": entry.customer_id,
            "emails": list(entry.emails) or None,
            **keys.ledger_index(self.project, entry.created, entry.charge_id),
        }
        item = {**keys.ledger(self.project, entry.charge_id), **dynamo.to_item(values)}
        self._add(
            "ledger",
            {"Put": {"TableName": self.table, "Item": item, "ConditionExpression": "attribute_not_exists(pk)"}},
        )

    def add_to_visitor(self, visitor_id: str, currency: str, amount: int, customer_id: str | None) -> None:
        """The visitor's lifetime revenue moves by `amount`; the visitor must exist."""
        update = "ADD #rev :amount"
        values: dict[str, Any] = {":amount": {"N": str(amount)}}
        if customer_id:
            update += ", stripe_customer_ids :customer"
            values[":customer"] = {"SS": [customer_id]}
        self._add(
            "visitor",
            {
                "Update": {
                    "TableName": self.table,
                    "Key": keys.visitor(self.project, visitor_id),
                    "UpdateExpression": update,
                    "ConditionExpression": "attribute_exists(pk)",
                    "ExpressionAttributeNames": {"#rev": keys.REVENUE_PREFIX + currency},
                    "ExpressionAttributeValues": values,
                }
            },
        )

    def add_to_unattributed(self, currency: str, amount: int) -> None:
        self._add(
            "unattributed",
            {
                "Update": {
                    "TableName": self.table,
                    "Key": keys.unattributed(self.project),
                    "UpdateExpression": "SET project_id = :project ADD #rev :amount",
                    "ExpressionAttributeNames": {"#rev": keys.REVENUE_PREFIX + currency},
                    "ExpressionAttributeValues": {":amount": {"N": str(amount)}, ":project": {"S": self.project}},
                }
            },
        )

    def put_timeline(
        self,
        visitor_id: str,
        *,
        event_key: str,
        event_type: str,
        occurred_at: int,
        amount: int | None,
        currency: str | None,
        revenue: int,
        stripe_object_id: str,
        tier: int | None,
    ) -> None:
        values = {
            "project_id": self.project,
            "visitor_id": visitor_id,
            "event_id": event_key,
            "type": event_type,
            "occurred_at": _iso(occurred_at),
            "amount": amount,
            "currency": currency,
            "revenue": revenue,
            "stripe_object_id": stripe_object_id,
            "attribution_tier": tier,
        }
        item = {**keys.timeline_event(self.project, visitor_id, occurred_at, event_key), **dynamo.to_item(values)}
        self._add("timeline", {"Put": {"TableName": self.table, "Item": item}})

    def link_customer(self, customer_id: str, visitor_id: str, tier: int, email: str | None) -> None:
        """Remember the customer's visitor; refused if another writer linked it first."""
        values: dict[str, Any] = {
            ":visitor": {"S": visitor_id},
            ":tier": {"N": str(tier)},
            ":customer": {"S": customer_id},
            ":project": {"S": self.project},
        }
        update = "SET visitor_id = :visitor, tier = :tier, customer_id = :customer, project_id = :project"
        if email:
            update += ", email = :email"
            values[":email"] = {"S": email}
        self._add(
            "link",
            {
                "Update": {
                    "TableName": self.table,
                    "Key": keys.customer_link(self.project, customer_id),
                    "UpdateExpression": update,
                    "ConditionExpression": "attribute_not_exists(visitor_id)",
                    "ExpressionAttributeValues": values,
                }
            },
        )

    def remember_customer_email(self, customer_id: str, email: str) -> None:
        """Keep a fetched customer email so the next charge of that customer needs no Stripe call."""
        self._add(
            "customer",
            {
                "Update": {
                    "TableName": self.table,
                    "Key": keys.customer_link(self.project, customer_id),
                    "UpdateExpression": "SET email = :email, customer_id = :customer, project_id = :project",
                    "ExpressionAttributeValues": {
                        ":email": {"S": email},
                        ":customer": {"S": customer_id},
                        ":project": {"S": self.project},
                    },
                }
            },
        )

    def mark_event(self, event_id: str, now: int) -> None:
        values = {"event_id": event_id, "project_id": self.project, "expires_at": now + EVENT_MARK_DAYS * 86_400}
        item = {**keys.event_mark(self.project, event_id), **dynamo.to_item(values)}
        self._add(
            "event", {"Put": {"TableName": self.table, "Item": item, "ConditionExpression": "attribute_not_exists(pk)"}}
        )

    def commit(self) -> None:
        """Write everything or nothing; a failed condition becomes the domain error it means."""
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
            if failed == {"ledger"}:
                raise AlreadyBooked() from None
            raise StaleUpdate(",".join(sorted(failed)) or ",".join(reasons)) from None
