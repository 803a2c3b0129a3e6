"""What IAM checks for one API request: the (action, resource ARN) pairs AWS authorises it by.

Most requests need `<service>:<Operation>` on the resource they name. The exceptions are AWS's own
(../shared/design/aws.md): a DynamoDB transaction is authorised item by item with each item's own
action, a batch needs its action on every table it touches, a Query or Scan of an index needs it on
`<table>/index/<name>`, and creating a secret with tags also needs `secretsmanager:TagResource`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlparse

Need = tuple[str, str]  # (action, resource ARN)

# TransactWriteItems: each item's key -> the action it needs.
_TRANSACT_WRITE_ACTIONS = {
    "Put": "dynamodb:PutItem",
    "Update": "dynamodb:UpdateItem",
    "Delete": "dynamodb:DeleteItem",
    "ConditionCheck": "dynamodb:ConditionCheckItem",
}
# Batch operations authorised as their single-message action.
_SQS_BATCH_ACTIONS = {
    "SendMessageBatch": "sqs:SendMessage",
    "DeleteMessageBatch": "sqs:DeleteMessage",
    "ChangeMessageVisibilityBatch": "sqs:ChangeMessageVisibility",
}


class Location:
    """The region and account requests are made in: the parts of an ARN a name does not carry."""

    def __init__(self, region: str, account_id: str) -> None:
        self.region = region
        self.account_id = account_id

    def table(self, name: str) -> str:
        return name if name.startswith("arn:") else f"arn:aws:dynamodb:{self.region}:{self.account_id}:table/{name}"

    def secret(self, name: str) -> str:
        """A secret's ARN ends in `-` and six random characters: policies must allow for them."""
        if name.startswith("arn:"):
            return name
        suffix = hashlib.sha256(name.encode()).hexdigest()[:6]
        return f"arn:aws:secretsmanager:{self.region}:{self.account_id}:secret:{name}-{suffix}"

    def queue(self, url: str) -> str:
        account, name = urlparse(url).path.strip("/").split("/")[-2:]
        return f"arn:aws:sqs:{self.region}:{account}:{name}"


def _dynamodb(operation: str, params: Mapping[str, Any], where: Location) -> list[Need]:
    if operation == "TransactWriteItems":
        needs = []
        for item in params.get("TransactItems", []):
            ((kind, body),) = item.items()
            needs.append((_TRANSACT_WRITE_ACTIONS[kind], where.table(body["TableName"])))
        return needs
    if operation == "TransactGetItems":
        return [("dynamodb:GetItem", where.table(item["Get"]["TableName"])) for item in params.get("TransactItems", [])]
    if operation in ("BatchGetItem", "BatchWriteItem"):
        return [(f"dynamodb:{operation}", where.table(table)) for table in params.get("RequestItems", {})]
    if "TableName" not in params:
        return [(f"dynamodb:{operation}", "*")]
    resource = where.table(params["TableName"])
    if operation in ("Query", "Scan") and params.get("IndexName"):
        resource += f"/index/{params['IndexName']}"
    return [(f"dynamodb:{operation}", resource)]


def _secretsmanager(operation: str, params: Mapping[str, Any], where: Location) -> list[Need]:
    name = params.get("SecretId") or params.get("Name")
    if name is None:
        return [(f"secretsmanager:{operation}", "*")]
    needs = [(f"secretsmanager:{operation}", where.secret(name))]
    if operation == "CreateSecret" and params.get("Tags"):
        needs.append(("secretsmanager:TagResource", where.secret(name)))
    return needs


def _sqs(operation: str, params: Mapping[str, Any], where: Location) -> list[Need]:
    action = _SQS_BATCH_ACTIONS.get(operation, f"sqs:{operation}")
    if "QueueUrl" in params:
        return [(action, where.queue(params["QueueUrl"]))]
    if operation == "GetQueueUrl":
        account = params.get("QueueOwnerAWSAccountId", where.account_id)
        return [(action, f"arn:aws:sqs:{where.region}:{account}:{params['QueueName']}")]
    return [(action, "*")]


_SERVICES: dict[str, Callable[[str, Mapping[str, Any], Location], list[Need]]] = {
    "dynamodb": _dynamodb,
    "secretsmanager": _secretsmanager,
    "sqs": _sqs,
}


def needs(service: str, operation: str, params: Mapping[str, Any], where: Location) -> list[Need]:
    """The (action, resource) pairs IAM checks for this request; `*` where it names no resource."""
    reader = _SERVICES.get(service)
    if reader is None:
        return [(f"{service}:{operation}", "*")]
    return reader(operation, params, where)
