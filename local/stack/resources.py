"""Creates the template's DynamoDB tables and SQS queues in moto, from their CloudFormation properties."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .template import Template

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_sqs import SQSClient

logger = logging.getLogger("local.stack")

TABLE = "AWS::DynamoDB::Table"
QUEUE = "AWS::SQS::Queue"
# Types that need nothing created locally: the gateway and the functions are the stack itself; roles are
# enforced by local.iam, log groups, alarms and schedules have nothing to do here.
NOT_NEEDED_LOCALLY = frozenset(
    {
        "AWS::Serverless::Function",
        "AWS::Serverless::HttpApi",
        "AWS::Serverless::Api",
        "AWS::Serverless::LayerVersion",
        "AWS::Lambda::Permission",
        "AWS::Lambda::EventSourceMapping",
        "AWS::IAM::Role",
        "AWS::IAM::Policy",
        "AWS::IAM::ManagedPolicy",
        "AWS::Logs::LogGroup",
        "AWS::CloudWatch::Alarm",
        "AWS::CloudWatch::Dashboard",
        "AWS::Events::Rule",
        "AWS::Scheduler::Schedule",
        "AWS::SQS::QueuePolicy",
    }
)

# CloudFormation queue properties that are SQS attributes of the same name.
_QUEUE_ATTRIBUTES = (
    "DelaySeconds",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "ReceiveMessageWaitTimeSeconds",
    "VisibilityTimeout",
    "FifoQueue",
    "ContentBasedDeduplication",
    "DeduplicationScope",
    "FifoThroughputLimit",
    "KmsMasterKeyId",
    "KmsDataKeyReusePeriodSeconds",
    "SqsManagedSseEnabled",
    "RedriveAllowPolicy",
)


@dataclass
class CreatedResources:
    tables: dict[str, str] = field(default_factory=dict)  # logical id -> table name
    queues: dict[str, str] = field(default_factory=dict)  # logical id -> queue URL


def _attribute(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


def _enabled(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _tags(properties: dict[str, Any]) -> list[dict[str, str]]:
    return [{"Key": str(tag["Key"]), "Value": str(tag["Value"])} for tag in properties.get("Tags") or []]


def table_request(name: str, properties: dict[str, Any]) -> dict[str, Any]:
    """CreateTable's arguments for an AWS::DynamoDB::Table's properties."""
    request: dict[str, Any] = {
        "TableName": name,
        "KeySchema": properties["KeySchema"],
        "AttributeDefinitions": properties["AttributeDefinitions"],
        "BillingMode": properties.get("BillingMode", "PROVISIONED"),
    }
    for key in ("ProvisionedThroughput", "TableClass", "DeletionProtectionEnabled", "OnDemandThroughput"):
        if key in properties:
            request[key] = properties[key]
    index_keys = ("IndexName", "KeySchema", "Projection", "ProvisionedThroughput", "OnDemandThroughput")
    for section in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
        if properties.get(section):
            request[section] = [{k: v for k, v in index.items() if k in index_keys} for index in properties[section]]
    if stream := properties.get("StreamSpecification"):
        request["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": stream["StreamViewType"]}
    if (sse := properties.get("SSESpecification")) and _enabled(sse.get("SSEEnabled")):
        request["SSESpecification"] = {"Enabled": True} | {k: sse[k] for k in ("SSEType", "KMSMasterKeyId") if k in sse}
    if tags := _tags(properties):
        request["Tags"] = tags
    return request


def create_table(client: DynamoDBClient, name: str, properties: dict[str, Any]) -> None:
    client.create_table(**table_request(name, properties))
    ttl = properties.get("TimeToLiveSpecification")
    if ttl and _enabled(ttl.get("Enabled")):
        client.update_time_to_live(
            TableName=name, TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True}
        )
    pitr = properties.get("PointInTimeRecoverySpecification")
    if pitr and _enabled(pitr.get("PointInTimeRecoveryEnabled")):
        client.update_continuous_backups(
            TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
        )


def queue_attributes(properties: dict[str, Any]) -> dict[str, str]:
    """SQS attributes for an AWS::SQS::Queue's properties, without its RedrivePolicy."""
    return {key: _attribute(properties[key]) for key in _QUEUE_ATTRIBUTES if key in properties}


def create_resources(template: Template, dynamodb: DynamoDBClient, sqs: SQSClient) -> CreatedResources:
    """Every table and queue of the template; queues' redrive policies once all queues exist."""
    created = CreatedResources()
    redrive: dict[str, Any] = {}
    for logical_id, resource in template.resources.items():
        kind = str(resource.get("Type"))
        if not template.is_active(logical_id) or kind in NOT_NEEDED_LOCALLY:
            continue
        if kind == TABLE:
            name = template.physical_name(logical_id)
            create_table(dynamodb, name, template.properties(logical_id))
            created.tables[logical_id] = name
            logger.info("table created: %s (%s)", name, logical_id)
        elif kind == QUEUE:
            name = template.physical_name(logical_id)
            properties = template.properties(logical_id)
            tags = {tag["Key"]: tag["Value"] for tag in _tags(properties)}
            url = sqs.create_queue(QueueName=name, Attributes=queue_attributes(properties), tags=tags)["QueueUrl"]  # type: ignore[arg-type]
            created.queues[logical_id] = url
            if "RedrivePolicy" in properties:
                redrive[url] = properties["RedrivePolicy"]
            logger.info("queue created: %s (%s)", name, logical_id)
        else:
            logger.warning("resource not created locally: %s (%s)", logical_id, kind)
    for url, policy in redrive.items():
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"RedrivePolicy": _attribute(policy)})
    return created
