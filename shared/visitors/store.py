"""Visitors in the revenue table: profiles, the email index, timelines (keys: shared.revenue.keys).

The profile is shared with the booking code, which keeps `rev_<currency>`, `stripe_customer_ids` and
`plan` on it: a PUT therefore updates only the attributes it owns (UpdateItem SET/REMOVE), never
replaces the item. Failed conditions become `StaleUpdate`, throttling `ServiceUnavailable`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import dynamo
from ..errors import StaleUpdate
from ..isotime import iso_seconds
from ..revenue import keys
from ..settings import get_settings
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

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

_ACQUISITION_FIELDS = ("source", "medium", "campaign", "referrer", "landing_page")
_VERSION_NAME = {"ExpressionAttributeNames": {"#version": "version"}}


class DynamoVisitorStore:
    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._client = client
        self._table = table

    @classmethod
    def default(cls) -> DynamoVisitorStore:
        """The process's client and the configured table (created lazily, never at import)."""
        return cls(dynamo.client(), get_settings().revenue_table)

    # ---- profiles ---------------------------------------------------------------------------------

    def get(self, project_id: str, visitor_id: str, *, consistent: bool = False) -> Visitor | None:
        with dynamo.translate_errors():
            response = self._client.get_item(
                TableName=self._table, Key=keys.visitor(project_id, visitor_id), ConsistentRead=consistent
            )
        item = response.get("Item")
        return _visitor(project_id, visitor_id, dynamo.from_item(item)) if item else None

    def exists(self, project_id: str, visitor_id: str) -> bool:
        with dynamo.translate_errors():
            response = self._client.get_item(
                TableName=self._table, Key=keys.visitor(project_id, visitor_id), ProjectionExpression="pk"
            )
        return "Item" in response

    def save(self, write: VisitorWrite) -> None:
        update = self._profile_update(write)
        with dynamo.translate_errors():
            if not write.index:
                self._client.update_item(**update)
            else:
                items = [{"Update": update}, *(self._index_item(write.visitor.project_id, w) for w in write.index)]
                self._client.transact_write_items(TransactItems=items)  # type: ignore[arg-type]

    def _profile_update(self, write: VisitorWrite) -> dict[str, Any]:
        """SET/REMOVE of the attributes this PUT owns, conditioned on the version it was decided from."""
        visitor = write.visitor
        attributes: dict[str, Any] = {
            "project_id": visitor.project_id,
            "visitor_id": visitor.visitor_id,
            "updated_at": visitor.updated_at,
        }
        if write.pending_changed and visitor.pending is not None:
            pending = visitor.pending
            attributes["pending"] = {"token": pending.token, "created": pending.created, "emails": list(pending.emails)}
        for name in sorted(write.fields):
            if name == "email":
                attributes.update(email=visitor.email, email_key=visitor.email_key, email_set_at=visitor.email_set_at)
            elif name == "acquisition":
                attributes["acquisition"] = _acquisition_map(visitor.acquisition)
            else:
                attributes[name] = getattr(visitor, name)
        names = {"#version": "version"}
        values: dict[str, Any] = {":version": _value(visitor.version)}
        sets = ["#version = :version"]
        removes = []
        if visitor.created_at is not None:  # set once, by the PUT that creates the profile
            names["#created_at"] = "created_at"
            values[":created_at"] = _value(visitor.created_at)
            sets.append("#created_at = if_not_exists(#created_at, :created_at)")
        for i, (name, value) in enumerate(attributes.items()):
            names[f"#a{i}"] = name
            if value is None:
                removes.append(f"#a{i}")
            else:
                values[f":a{i}"] = _value(value)
                sets.append(f"#a{i} = :a{i}")
        expression = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
        if write.expected_version is None:
            condition = "attribute_not_exists(#version)"
        else:
            condition = "#version = :expected_version"
            values[":expected_version"] = _value(write.expected_version)
        return {
            "TableName": self._table,
            "Key": keys.visitor(visitor.project_id, visitor.visitor_id),
            "UpdateExpression": expression,
            "ConditionExpression": condition,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }

    def clear_pending(self, project_id: str, visitor_id: str, token: int) -> bool:
        """Remove the re-attribution a PUT started once it has run, unless a later PUT added to it
        (that PUT, or its retry, runs it again). True if removed."""
        try:
            with dynamo.translate_errors():
                self._client.update_item(
                    TableName=self._table,
                    Key=keys.visitor(project_id, visitor_id),
                    UpdateExpression="REMOVE #pending",
                    ConditionExpression="#pending.#token = :token",
                    ExpressionAttributeNames={"#pending": "pending", "#token": "token"},
                    ExpressionAttributeValues={":token": {"N": str(token)}},
                )
        except StaleUpdate:
            return False
        return True

    # ---- the email index --------------------------------------------------------------------------

    def email_head(self, project_id: str, email_key: str) -> EmailHead | None:
        with dynamo.translate_errors():
            response = self._client.get_item(
                TableName=self._table, Key=keys.email_head(project_id, email_key), ConsistentRead=True
            )
        item = response.get("Item")
        if not item:
            return None
        head = dynamo.from_item(item)
        return EmailHead(head["visitor_id"], head["set_at"], int(head.get("version", 0)))

    def first_members(self, project_id: str, email_key: str, limit: int) -> list[EmailMember]:
        with dynamo.translate_errors():
            response = self._client.query(
                TableName=self._table,
                KeyConditionExpression="pk = :pk AND begins_with(sk, :members)",
                ExpressionAttributeValues={
                    ":pk": {"S": keys.email_pk(project_id, email_key)},
                    ":members": {"S": keys.MEMBER_PREFIX},
                },
                ConsistentRead=True,
                Limit=limit,
            )
        members = [dynamo.from_item(item) for item in response.get("Items", [])]
        return [EmailMember(m["set_at"], m["visitor_id"]) for m in members]

    def _index_item(self, project_id: str, write: IndexWrite) -> dict[str, Any]:
        table = self._table
        match write:
            case PutMember(key, member):
                item = {
                    **keys.email_member(project_id, key, member.set_at, member.visitor_id),
                    **dynamo.to_item({"visitor_id": member.visitor_id, "set_at": member.set_at}),
                }
                return {"Put": {"TableName": table, "Item": item}}
            case DeleteMember(key, member):
                return {
                    "Delete": {
                        "TableName": table,
                        "Key": keys.email_member(project_id, key, member.set_at, member.visitor_id),
                    }
                }
            case PutHead(key, head, expected):
                item = {
                    **keys.email_head(project_id, key),
                    **dynamo.to_item({"visitor_id": head.visitor_id, "set_at": head.set_at, "version": head.version}),
                }
                return {"Put": {"TableName": table, "Item": item, **_head_condition(expected)}}
            case DeleteHead(key, expected):
                head_key = keys.email_head(project_id, key)
                return {"Delete": {"TableName": table, "Key": head_key, **_head_condition(expected)}}
        raise TypeError(f"unknown index write {write!r}")  # pragma: no cover - the match is exhaustive

    # ---- timelines --------------------------------------------------------------------------------

    def timeline(self, project_id: str, visitor_id: str, limit: int, after_sk: str | None) -> TimelinePage:
        """Newest first. One more item than asked is read, so a full last page has no next cursor."""
        pk = keys.visitor_pk(project_id, visitor_id)
        query: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :timeline)",
            "ExpressionAttributeValues": {":pk": {"S": pk}, ":timeline": {"S": keys.TIMELINE_PREFIX}},
            "ScanIndexForward": False,
            "Limit": limit + 1,
        }
        if after_sk:
            query["ExclusiveStartKey"] = {"pk": {"S": pk}, "sk": {"S": after_sk}}
        with dynamo.translate_errors():
            response = self._client.query(**query)
        items = [dynamo.from_item(item) for item in response.get("Items", [])]
        page = items[:limit]
        if len(items) > limit:
            last_sk: str | None = page[-1]["sk"]
        else:  # DynamoDB stopped early (1 MB read) or not at all
            last_sk = response.get("LastEvaluatedKey", {}).get("sk", {}).get("S")
        return TimelinePage(tuple(_event(item) for item in page), last_sk)


def _head_condition(expected: int | None) -> dict[str, Any]:
    """The head is as it was read: absent (None), or at that version (0: written without one)."""
    if expected is None:
        return {"ConditionExpression": "attribute_not_exists(pk)"}
    if expected == 0:
        return {"ConditionExpression": "attribute_exists(pk) AND attribute_not_exists(#version)", **_VERSION_NAME}
    return {
        "ConditionExpression": "#version = :expected_version",
        "ExpressionAttributeValues": {":expected_version": {"N": str(expected)}},
        **_VERSION_NAME,
    }


def _value(value: Any) -> dict[str, Any]:
    """One Python value as a DynamoDB attribute value."""
    return dynamo.to_item({"value": value})["value"]  # type: ignore[no-any-return]


def _acquisition_map(acquisition: Acquisition | None) -> dict[str, str] | None:
    if acquisition is None:
        return None
    return {name: value for name, value in vars(acquisition).items() if value is not None}


def _visitor(project_id: str, visitor_id: str, item: dict[str, Any]) -> Visitor:
    acquisition = item.get("acquisition")
    plan = item.get("plan")
    return Visitor(
        project_id=project_id,
        visitor_id=visitor_id,
        user_id=item.get("user_id"),
        email=item.get("email"),
        email_key=item.get("email_key"),
        email_set_at=item.get("email_set_at"),
        name=item.get("name"),
        acquisition=Acquisition(**{name: acquisition.get(name) for name in _ACQUISITION_FIELDS})
        if isinstance(acquisition, dict)
        else None,
        first_seen_at=item.get("first_seen_at"),
        created_at=item.get("created_at"),
        updated_at=item.get("updated_at"),
        version=int(item["version"]) if "version" in item else None,
        lifetime_revenue=keys.totals_of(item),
        plan=plan if isinstance(plan, dict) else None,
        stripe_customer_ids=keys.linked_customers_of(item),
        pending=_pending(item.get("pending")),
    )


def _pending(value: Any) -> Reattribution | None:
    if not isinstance(value, dict):
        return None
    return Reattribution(int(value["token"]), bool(value.get("created")), tuple(value.get("emails") or ()))


def _event(item: dict[str, Any]) -> TimelineEvent:
    """A timeline item as booking wrote it; the sort key (T#<epoch>#<event_key>) fills what is missing."""
    _, epoch, event_key = str(item["sk"]).split("#", 2)
    amount, tier = item.get("amount"), item.get("attribution_tier")
    return TimelineEvent(
        id=item.get("event_id") or event_key,
        type=item.get("type", ""),
        occurred_at=item.get("occurred_at") or iso_seconds(int(epoch)),
        amount=int(amount) if amount is not None else None,
        currency=item.get("currency"),
        revenue=int(item.get("revenue", 0)),
        stripe_object_id=item.get("stripe_object_id"),
        attribution_tier=int(tier) if tier is not None else None,
    )
