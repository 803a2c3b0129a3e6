"""Integration records in DynamoDB (IntegrationsTable, one item per project)."""

from __future__ import annotations

from dataclasses import asdict

from botocore.exceptions import ClientError

from .. import dynamo
from ..errors import AlreadyConnected
from ..settings import get_settings
from .models import Integration


def _table() -> str:
    return get_settings().integrations_table


def _key(project_id: str) -> dict[str, dict[str, str]]:
    return {"project_id": {"S": project_id}}


def get(project_id: str) -> Integration | None:
    item = dynamo.client().get_item(TableName=_table(), Key=_key(project_id), ConsistentRead=True).get("Item")
    return Integration.from_item(dynamo.from_item(item)) if item else None


def create(integration: Integration) -> None:
    """Save a new connection; refused when the project is already connected (a racing connect)."""
    try:
        dynamo.client().put_item(
            TableName=_table(),
            Item=dynamo.to_item(asdict(integration)),
            ConditionExpression="attribute_not_exists(project_id) OR #status = :disconnected",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={":disconnected": {"S": "disconnected"}},
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
            raise AlreadyConnected("This project is already connected to Stripe.") from None
        raise


def touch_last_event(project_id: str, at: str) -> None:
    """Record when the last webhook event arrived (only moves forward)."""
    try:
        dynamo.client().update_item(
            TableName=_table(),
            Key=_key(project_id),
            UpdateExpression="SET last_event_at = :at",
            ConditionExpression="attribute_exists(project_id) AND (attribute_not_exists(last_event_at) "
            "OR last_event_at < :at)",
            ExpressionAttributeValues={":at": {"S": at}},
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
            raise
