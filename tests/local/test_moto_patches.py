"""local.moto_patches: TransactWriteItems answers as moto's own does, at a cost that does not grow with the tables."""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID as ACCOUNT_ID
from moto.dynamodb.models import DynamoDBBackend, dynamodb_backends
from moto.server import ThreadedMotoServer

from local import moto_patches
from local.moto_patches import patch_moto_transactions, unpatch_moto_transactions

REGION = "us-east-1"
TABLE = "things"
T = TypeVar("T")


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials, and every method the patch replaces put back as the test found it."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    for cls, name in moto_patches._ORIGINALS:
        monkeypatch.setattr(cls, name, getattr(cls, name))


@pytest.fixture
def dynamodb() -> Iterator[Any]:
    """A DynamoDB client on in-process moto, patched."""
    patch_moto_transactions()
    with mock_aws():
        yield boto3.client("dynamodb", region_name=REGION)


def in_moto(scenario: Callable[[Any], T], *, patched: bool) -> T:
    """The scenario on a fresh in-process moto, with or without the patch."""
    patch_moto_transactions() if patched else unpatch_moto_transactions()
    with mock_aws():
        return scenario(boto3.client("dynamodb", region_name=REGION))


# ---- helpers ---------------------------------------------------------------------------------


def create_table(client: Any, name: str = TABLE, *, composite: bool = False, **extra: Any) -> None:
    keys = [("pk", "HASH"), ("sk", "RANGE")] if composite else [("pk", "HASH")]
    client.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": a, "KeyType": t} for a, t in keys],
        AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a, _ in keys],
        BillingMode="PAY_PER_REQUEST",
        **extra,
    )


def key(name: str, composite: bool) -> dict[str, Any]:
    return {"pk": {"S": "acct#1"}, "sk": {"S": name}} if composite else {"pk": {"S": name}}


def put(client: Any, name: str, composite: bool, **attrs: Any) -> None:
    client.put_item(TableName=TABLE, Item={**key(name, composite), **attrs})


def all_items(client: Any, table: str = TABLE) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = client.scan(TableName=table)["Items"]
    return sorted(items, key=lambda i: (i["pk"]["S"], i.get("sk", {}).get("S", "")))


def transact(client: Any, items: list[dict[str, Any]]) -> dict[str, Any] | None:
    """None when the transaction is written, else moto's error response (with CancellationReasons)."""
    try:
        client.transact_write_items(TransactItems=items)
    except ClientError as e:
        response: dict[str, Any] = e.response
        response.pop("ResponseMetadata", None)
        return response
    return None


def codes(error: dict[str, Any] | None) -> list[str]:
    assert error is not None
    return [r["Code"] for r in error["CancellationReasons"]]


# ---- a cancelled transaction -----------------------------------------------------------------


def cancelled_scenario(composite: bool) -> Callable[[Any], tuple[Any, ...]]:
    def scenario(client: Any) -> tuple[Any, ...]:
        create_table(client, composite=composite)
        put(client, "a", composite, n={"N": "1"})
        put(client, "b", composite, n={"N": "5"}, tags={"SS": ["x"]})
        put(client, "c", composite)
        put(client, "d", composite, status={"S": "locked"})
        before = all_items(client)
        error = transact(
            client,
            [
                {
                    "Put": {
                        "TableName": TABLE,
                        "Item": {**key("new", composite), "v": {"N": "1"}},
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
                {"Put": {"TableName": TABLE, "Item": {**key("a", composite), "n": {"N": "100"}}}},
                {
                    "Update": {
                        "TableName": TABLE,
                        "Key": key("b", composite),
                        "UpdateExpression": "SET #s = if_not_exists(#s, :open) ADD n :one, tags :t",
                        "ExpressionAttributeNames": {"#s": "status"},
                        "ExpressionAttributeValues": {":open": {"S": "open"}, ":one": {"N": "1"}, ":t": {"SS": ["y"]}},
                    }
                },
                {
                    "Update": {
                        "TableName": TABLE,
                        "Key": key("fresh", composite),
                        "UpdateExpression": "ADD n :one",
                        "ExpressionAttributeValues": {":one": {"N": "1"}},
                    }
                },
                {
                    "Delete": {
                        "TableName": TABLE,
                        "Key": key("c", composite),
                        "ConditionExpression": "attribute_exists(pk)",
                    }
                },
                {
                    "Update": {
                        "TableName": TABLE,
                        "Key": key("d", composite),
                        "UpdateExpression": "SET #s = :open",
                        "ConditionExpression": "#s = :open",
                        "ExpressionAttributeNames": {"#s": "status"},
                        "ExpressionAttributeValues": {":open": {"S": "open"}},
                        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                    }
                },
            ],
        )
        return before, error, all_items(client)

    return scenario


@pytest.mark.parametrize("composite", [False, True], ids=["hash-key", "hash-and-range-key"])
def test_failed_last_condition_cancels_every_item(composite: bool) -> None:
    before, error, after = in_moto(cancelled_scenario(composite), patched=True)

    assert after == before
    assert error is not None
    assert error["Error"]["Code"] == "TransactionCanceledException"
    assert codes(error) == ["None"] * 5 + ["ConditionalCheckFailed"]
    assert error["CancellationReasons"][-1]["Item"] == {**key("d", composite), "status": {"S": "locked"}}
    # Word for word what moto itself answers.
    assert (before, error, after) == in_moto(cancelled_scenario(composite), patched=False)


def test_cancelled_transaction_writes_no_stream_records() -> None:
    def scenario(client: Any) -> int:
        create_table(client, StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"})
        put(client, "a", False, n={"N": "1"})
        put(client, "guard", False, n={"N": "1"})
        error = transact(
            client,
            [
                {"Put": {"TableName": TABLE, "Item": {"pk": {"S": "new"}}}},
                {
                    "Update": {
                        "TableName": TABLE,
                        "Key": {"pk": {"S": "a"}},
                        "UpdateExpression": "ADD n :one",
                        "ExpressionAttributeValues": {":one": {"N": "1"}},
                    }
                },
                {
                    "ConditionCheck": {
                        "TableName": TABLE,
                        "Key": {"pk": {"S": "guard"}},
                        "ConditionExpression": "n > :one",
                        "ExpressionAttributeValues": {":one": {"N": "1"}},
                    }
                },
            ],
        )
        assert codes(error) == ["None", "None", "ConditionalCheckFailed"]
        # Read from the backend: botocore 1.44's DescribeStream does not reach moto 5.2.5's streams.
        shard = dynamodb_backends[ACCOUNT_ID][REGION].get_table(TABLE).stream_shard
        assert shard is not None
        return len(shard.items)

    assert in_moto(scenario, patched=True) == in_moto(scenario, patched=False) == 2  # the seeding puts only


# ---- a successful transaction ----------------------------------------------------------------


def mixed_scenario(client: Any) -> list[dict[str, Any]]:
    create_table(client)
    put(client, "ctr", False, n={"N": "5"}, meta={"M": {"plan": {"S": "free"}}})
    put(client, "old", False, created={"S": "2020"})
    put(client, "gone", False)
    put(client, "guard", False, status={"S": "open"})
    values = {":now": {"S": "2025"}, ":inc": {"N": "2"}}
    error = transact(
        client,
        [
            {
                "Put": {
                    "TableName": TABLE,
                    "Item": {"pk": {"S": "new"}, "v": {"N": "1"}},
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
            {
                "Update": {
                    "TableName": TABLE,
                    "Key": {"pk": {"S": "ctr"}},
                    "UpdateExpression": "SET created = if_not_exists(created, :now), meta.#plan = :pro ADD #n :inc",
                    "ConditionExpression": "attribute_exists(pk)",
                    "ExpressionAttributeNames": {"#n": "n", "#plan": "plan"},
                    "ExpressionAttributeValues": {**values, ":pro": {"S": "pro"}},
                }
            },
            {
                "Update": {
                    "TableName": TABLE,
                    "Key": {"pk": {"S": "old"}},
                    "UpdateExpression": "SET created = if_not_exists(created, :now)",
                    "ExpressionAttributeValues": {":now": values[":now"]},
                }
            },
            {
                "Update": {
                    "TableName": TABLE,
                    "Key": {"pk": {"S": "fresh"}},
                    "UpdateExpression": "SET created = if_not_exists(created, :now) ADD #n :inc",
                    "ExpressionAttributeNames": {"#n": "n"},
                    "ExpressionAttributeValues": values,
                }
            },
            {
                "Delete": {
                    "TableName": TABLE,
                    "Key": {"pk": {"S": "gone"}},
                    "ConditionExpression": "attribute_exists(pk)",
                }
            },
            {
                "ConditionCheck": {
                    "TableName": TABLE,
                    "Key": {"pk": {"S": "guard"}},
                    "ConditionExpression": "#s = :open",
                    "ExpressionAttributeNames": {"#s": "status"},
                    "ExpressionAttributeValues": {":open": {"S": "open"}},
                }
            },
        ],
    )
    assert error is None
    return all_items(client)


def test_mixed_transaction_writes_what_moto_writes() -> None:
    items = in_moto(mixed_scenario, patched=True)

    assert items == [
        {
            "pk": {"S": "ctr"},
            "n": {"N": "7"},
            "created": {"S": "2025"},
            "meta": {"M": {"plan": {"S": "pro"}}},
        },
        {"pk": {"S": "fresh"}, "n": {"N": "2"}, "created": {"S": "2025"}},
        {"pk": {"S": "guard"}, "status": {"S": "open"}},
        {"pk": {"S": "new"}, "v": {"N": "1"}},
        {"pk": {"S": "old"}, "created": {"S": "2020"}},
    ]
    assert items == in_moto(mixed_scenario, patched=False)


# ---- validation ------------------------------------------------------------------------------


def duplicate_key_scenario(client: Any) -> tuple[Any, ...]:
    create_table(client)
    put(client, "a", False, n={"N": "1"})
    error = transact(
        client,
        [
            {"Put": {"TableName": TABLE, "Item": {"pk": {"S": "other"}}}},
            {"Put": {"TableName": TABLE, "Item": {"pk": {"S": "a"}, "n": {"N": "9"}}}},
            {
                "Update": {
                    "TableName": TABLE,
                    "Key": {"pk": {"S": "a"}},
                    "UpdateExpression": "ADD n :one",
                    "ExpressionAttributeValues": {":one": {"N": "1"}},
                }
            },
        ],
    )
    return error, all_items(client)


def test_two_items_on_one_key_is_a_validation_error() -> None:
    error, items = in_moto(duplicate_key_scenario, patched=True)

    assert error is not None
    assert error["Error"] == {
        "Code": "ValidationException",
        "Message": "Transaction request cannot include multiple operations on one item",
    }
    assert items == [{"pk": {"S": "a"}, "n": {"N": "1"}}]
    assert (error, items) == in_moto(duplicate_key_scenario, patched=False)


def test_more_than_100_items_is_a_validation_error(dynamodb: Any) -> None:
    create_table(dynamodb)
    error = transact(dynamodb, [{"Put": {"TableName": TABLE, "Item": {"pk": {"S": f"k{i}"}}}} for i in range(101)])

    assert error is not None
    assert error["Error"]["Code"] == "ValidationException"
    assert "less than or equal to 100" in error["Error"]["Message"]
    assert all_items(dynamodb) == []


def test_item_with_two_operations_is_rejected_without_writing(dynamodb: Any) -> None:
    # The one deliberate difference: moto raises the same ValidationException but keeps the items before it.
    create_table(dynamodb)
    error = transact(
        dynamodb,
        [
            {"Put": {"TableName": TABLE, "Item": {"pk": {"S": "x"}}}},
            {
                "Put": {"TableName": TABLE, "Item": {"pk": {"S": "y"}}},
                "Delete": {"TableName": TABLE, "Key": {"pk": {"S": "z"}}},
            },
        ],
    )

    assert error is not None
    assert error["Error"]["Code"] == "ValidationException"
    assert all_items(dynamodb) == []


def test_patching_twice_is_harmless(dynamodb: Any) -> None:
    patch_moto_transactions()
    patch_moto_transactions()
    create_table(dynamodb)

    assert DynamoDBBackend.transact_write_items is moto_patches._transact_write_items
    assert transact(dynamodb, [{"Put": {"TableName": TABLE, "Item": {"pk": {"S": "a"}}}}]) is None
    assert all_items(dynamodb) == [{"pk": {"S": "a"}}]


# ---- cost ------------------------------------------------------------------------------------


def timed_transaction(client: Any, table: str, run: str) -> float:
    """100 items: 50 conditional Puts of new keys and 50 Updates with ADD."""
    items: list[dict[str, Any]] = []
    for i in range(50):
        items.append(
            {
                "Put": {
                    "TableName": table,
                    "Item": {"pk": {"S": f"{run}#new#{i}"}, "v": {"N": "1"}},
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            }
        )
        items.append(
            {
                "Update": {
                    "TableName": table,
                    "Key": {"pk": {"S": f"{run}#counter#{i}"}},
                    "UpdateExpression": "ADD n :one",
                    "ExpressionAttributeValues": {":one": {"N": "1"}},
                }
            }
        )
    start = time.perf_counter()
    assert transact(client, items) is None
    return time.perf_counter() - start


def test_transaction_cost_does_not_grow_with_the_table(dynamodb: Any) -> None:
    # Unpatched moto 5.2.5 takes ~37 s for this transaction on the full table.
    create_table(dynamodb, "empty")
    create_table(dynamodb, "full")
    with boto3.resource("dynamodb", region_name=REGION).Table("full").batch_writer() as batch:
        for i in range(20_000):
            batch.put_item(Item={"pk": f"fill#{i}", "n": i, "pad": "x" * 50})
    timed_transaction(dynamodb, "empty", "warm-up")  # first-call costs (parsers, botocore)

    on_empty = min(timed_transaction(dynamodb, "empty", f"run{r}") for r in range(3))
    on_full = min(timed_transaction(dynamodb, "full", f"run{r}") for r in range(3))

    assert on_full < 5 * on_empty, (on_empty, on_full)
    assert on_full < 0.5, on_full


# ---- server mode -----------------------------------------------------------------------------


@pytest.fixture
def moto_server() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    yield endpoint
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")).close()
    server.stop()


def test_patch_serves_moto_server(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []
    write_item = moto_patches._write_item

    def spy(backend: DynamoDBBackend, item: dict[str, Any], *args: Any) -> Any:
        calls.append(item)
        return write_item(backend, item, *args)

    monkeypatch.setattr(moto_patches, "_write_item", spy)
    patch_moto_transactions()
    client = boto3.client("dynamodb", region_name=REGION, endpoint_url=moto_server)
    create_table(client)
    put(client, "a", False, n={"N": "1"})
    put(client, "guard", False)

    error = transact(
        client,
        [
            {"Put": {"TableName": TABLE, "Item": {"pk": {"S": "new"}}}},
            {
                "Update": {
                    "TableName": TABLE,
                    "Key": {"pk": {"S": "a"}},
                    "UpdateExpression": "ADD n :one",
                    "ExpressionAttributeValues": {":one": {"N": "1"}},
                }
            },
            {
                "ConditionCheck": {
                    "TableName": TABLE,
                    "Key": {"pk": {"S": "guard"}},
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
        ],
    )

    assert codes(error) == ["None", "None", "ConditionalCheckFailed"]
    assert all_items(client) == [{"pk": {"S": "a"}, "n": {"N": "1"}}, {"pk": {"S": "guard"}}]
    assert len(calls) == 3  # the server ran the patched transaction


# ---- Query: the partition only ------------------------------------------------------------------


def _queries(client: Any) -> list[Any]:
    """Items in 40 partitions (every kind of value), then base-table Queries of every kind moto
    answers: conditions on the sort key, both orders, pages, filters, projections."""
    create_table(client, composite=True)
    for p in range(40):
        for s in range(25):
            client.put_item(
                TableName=TABLE,
                Item={
                    "pk": {"S": f"p{p % 7}-{p}"},
                    "sk": {"S": f"s{s:03d}"},
                    "n": {"N": str(p * s % 11)},
                    "m": {"M": {"a": {"L": [{"N": "1.5"}, {"BOOL": True}, {"NULL": True}]}, "r|x|usd": {"N": "-7"}}},
                    "ss": {"SS": ["a", "b"]},
                    "b": {"B": bytes([p, s])},
                },
            )
    answers = []
    asks: list[dict[str, Any]] = [
        {"KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": {"S": "p3-10"}}},
        {
            "KeyConditionExpression": "pk = :p AND sk BETWEEN :a AND :b",
            "ExpressionAttributeValues": {":p": {"S": "p5-12"}, ":a": {"S": "s003"}, ":b": {"S": "s017"}},
            "ScanIndexForward": False,
        },
        {
            "KeyConditionExpression": "pk = :p AND begins_with(sk, :a)",
            "FilterExpression": "n > :z",
            "ExpressionAttributeValues": {":p": {"S": "p0-21"}, ":a": {"S": "s01"}, ":z": {"N": "3"}},
            "ProjectionExpression": "sk, n",
        },
        {"KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": {"S": "nobody"}}},
    ]
    for ask in asks:
        kwargs: dict[str, Any] = {"TableName": TABLE, "Limit": 7, **ask}
        while True:
            page = client.query(**kwargs)
            answers.append((page["Items"], page["Count"], page.get("LastEvaluatedKey")))
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return answers


def test_a_query_walks_only_its_partition_and_answers_as_moto_does(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given moto's own answers to base-table Queries over a table of 40 partitions
    expected = in_moto(_queries, patched=False)
    # When the same Queries run patched, counting the items moto's query loop is handed
    walked: list[int] = []
    original = moto_patches._all_items

    def counting(self: Any) -> Any:
        items = list(original(self))
        walked.append(len(items))
        return iter(items)

    monkeypatch.setitem(moto_patches._PATCHED, (moto_patches.Table, "all_items"), counting)
    actual = in_moto(_queries, patched=True)
    # Then the answers are the same, pages included (their bodies written by json.dumps), and each
    # Query walked one partition (25 items)
    assert actual == expected
    assert walked
    assert max(walked) <= 25
