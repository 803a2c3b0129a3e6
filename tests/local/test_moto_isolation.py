"""local.moto_patches: DynamoDB requests on many threads are isolated as AWS isolates them.

Races, run for real: readers and writers on many threads, on in-process ``mock_aws`` and on a
``ThreadedMotoServer`` (what the local stack runs). Without the patch's lock moto fails each of them
within a few hundred requests: readers see transactions half applied and writes that are then rolled
back, and rollbacks undo updates committed meanwhile. With the lock every one of them must stay clean.
"""

from __future__ import annotations

import random
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.server import ThreadedMotoServer

from local import moto_patches
from local.moto_patches import patch_moto_transactions

REGION = "us-east-1"
TABLE = "things"
PK = {"S": "acct#1"}
COUNTERS = 40  # items a transaction writes: many, so that a transaction spans thread switches
MOVED = 25  # the counters transfers move amounts between: as many as moto's TransactGetItems reads
POISON = 999_999  # written only by transactions that are always cancelled

# Backend methods the patch must lock. batch_get_item, batch_write_item and transact_get_items are stubs
# there: moto does their work in DynamoHandler, whose every request the patch locks as well.
ITEM_OPERATIONS = [
    "transact_write_items",
    "transact_get_items",
    "put_item",
    "update_item",
    "delete_item",
    "get_item",
    "batch_get_item",
    "batch_write_item",
    "query",
    "scan",
]


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials, the patch applied, and every method it replaces put back afterwards."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    for cls, name in moto_patches._ORIGINALS:
        monkeypatch.setattr(cls, name, getattr(cls, name))
    patch_moto_transactions()


def client_config() -> Config:
    # No retries: a request that failed must show as failed, and is never applied twice.
    return Config(max_pool_connections=32, retries={"total_max_attempts": 1})


@pytest.fixture
def in_process() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("dynamodb", region_name=REGION, config=client_config())


@pytest.fixture
def server() -> Iterator[Any]:
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    try:
        yield boto3.client("dynamodb", region_name=REGION, endpoint_url=endpoint, config=client_config())
    finally:
        urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")).close()
        moto.stop()


@pytest.fixture(params=["in-process", "server"])
def dynamodb(request: pytest.FixtureRequest) -> Any:
    """A DynamoDB client on patched moto, in-process or over HTTP, with one table of counters."""
    client = request.getfixturevalue("in_process" if request.param == "in-process" else "server")
    client.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a in ("pk", "sk")],
        BillingMode="PAY_PER_REQUEST",
    )
    for i in range(COUNTERS):
        client.put_item(TableName=TABLE, Item={**key(counter(i)), "n": {"N": "0"}})
    client.put_item(TableName=TABLE, Item={**key("total"), "n": {"N": "0"}})
    client.put_item(TableName=TABLE, Item=key("guard"))
    return client


# ---- helpers ---------------------------------------------------------------------------------


def counter(i: int) -> str:
    return f"c{i:02}"


def key(sk: str) -> dict[str, Any]:
    return {"pk": PK, "sk": {"S": sk}}


def add(sk: str, amount: int) -> dict[str, Any]:
    return {
        "Update": {
            "TableName": TABLE,
            "Key": key(sk),
            "UpdateExpression": "ADD n :d",
            "ExpressionAttributeValues": {":d": {"N": str(amount)}},
        }
    }


def guard(holds: bool) -> dict[str, Any]:
    """A ConditionCheck on the guard item, which exists: it holds or fails as asked."""
    condition = "attribute_exists(pk)" if holds else "attribute_not_exists(pk)"
    return {"ConditionCheck": {"TableName": TABLE, "Key": key("guard"), "ConditionExpression": condition}}


def transact(client: Any, items: list[dict[str, Any]]) -> bool:
    """True when the transaction is written, False when it is cancelled; any other error is raised."""
    try:
        client.transact_write_items(TransactItems=items)
    except ClientError as e:
        if e.response["Error"]["Code"] != "TransactionCanceledException":
            raise
        return False
    return True


def values(items: list[dict[str, Any]]) -> dict[str, int]:
    return {item["sk"]["S"]: int(item["n"]["N"]) for item in items if "n" in item}


def race(writers: list[Callable[[], None]], readers: list[Callable[[], None]], *, budget: float) -> None:
    """Each writer once, and each reader over and over until the writers are done, all on their own
    threads; an error on any thread is raised here, and so is a race that overruns its budget."""
    done = threading.Event()
    errors: list[BaseException] = []

    def run(work: Callable[[], None], repeat: bool) -> None:
        try:
            work()
            while repeat and not done.is_set():
                work()
        except BaseException as e:
            errors.append(e)
            done.set()

    writing = [threading.Thread(target=run, args=(w, False)) for w in writers]
    reading = [threading.Thread(target=run, args=(r, True)) for r in readers]
    for thread in writing + reading:
        thread.start()
    deadline = time.monotonic() + budget
    for thread in writing:
        thread.join(max(0.0, deadline - time.monotonic()))
    done.set()
    for thread in reading + writing:
        thread.join(5)
    if errors:
        raise errors[0]
    assert not any(thread.is_alive() for thread in writing + reading), f"the race took over {budget} s"


# ---- reads -----------------------------------------------------------------------------------


def test_readers_see_no_partial_or_cancelled_transaction(dynamodb: Any) -> None:
    """Writers move amounts between MOVED counters (their sum stays 0) or write POISON into all of them
    and are cancelled by a failing ConditionCheck. GetItem, BatchGetItem, Query and Scan must never
    see POISON, and TransactGetItems must also never see a transfer half made (serialisable in AWS;
    BatchGetItem, Query and Scan are only read-committed per item there, so their sums are not checked).
    """
    names = [counter(i) for i in range(COUNTERS)]
    moved = names[:MOVED]
    seen: Counter[str] = Counter()
    bad: list[tuple[str, str, dict[str, int]]] = []

    def transfers() -> None:
        rng = random.Random(1)
        for _ in range(25):
            amounts = [rng.randint(-5, 5) for _ in range(MOVED - 1)]
            items = [add(name, a) for name, a in zip(moved, [*amounts, -sum(amounts)], strict=True)]
            assert transact(dynamodb, items)

    def cancelled() -> None:
        for _ in range(25):
            items = [
                {
                    "Update": {
                        "TableName": TABLE,
                        "Key": key(name),
                        "UpdateExpression": "SET n = :poison",
                        "ExpressionAttributeValues": {":poison": {"N": str(POISON)}},
                    }
                }
                for name in names
            ]
            assert not transact(dynamodb, [*items, guard(holds=False)])

    def check(operation: str, found: dict[str, int], *, whole: bool = False) -> None:
        seen[operation] += 1
        if POISON in found.values():
            bad.append((operation, "read a cancelled write", found))
        elif whole and sum(found.values()) != 0:
            bad.append((operation, "read a transfer half made", found))

    def get_item() -> None:
        name = random.choice(names)
        check("GetItem", values([dynamodb.get_item(TableName=TABLE, Key=key(name))["Item"]]))

    def batch_get_item() -> None:
        request = {TABLE: {"Keys": [key(name) for name in names]}}
        check("BatchGetItem", values(dynamodb.batch_get_item(RequestItems=request)["Responses"][TABLE]))

    def query() -> None:
        found = dynamodb.query(
            TableName=TABLE,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :c)",
            ExpressionAttributeValues={":pk": PK, ":c": {"S": "c"}},
        )["Items"]
        check("Query", values(found))

    def scan() -> None:
        found = dynamodb.scan(TableName=TABLE, FilterExpression="attribute_exists(n)")["Items"]
        check("Scan", values(found))

    def transact_get_items() -> None:
        response = dynamodb.transact_get_items(
            TransactItems=[{"Get": {"TableName": TABLE, "Key": key(name)}} for name in moved]
        )
        check("TransactGetItems", values([r["Item"] for r in response["Responses"]]), whole=True)

    race(
        [transfers, cancelled, cancelled],
        [get_item, batch_get_item, query, scan, transact_get_items],
        budget=30,
    )

    assert bad == [], (Counter((operation, what) for operation, what, _ in bad), bad[:2], seen)
    assert min(seen.values()) >= 5, seen  # every kind of read ran while the writers wrote
    final = values(
        dynamodb.query(TableName=TABLE, KeyConditionExpression="pk = :pk", ExpressionAttributeValues={":pk": PK})[
            "Items"
        ]
    )
    assert sum(final[name] for name in moved) == 0


# ---- writes ----------------------------------------------------------------------------------


def test_no_committed_update_is_lost(dynamodb: Any) -> None:
    """Transactions (half of them cancelled) and single UpdateItem ADDs on the same item from many
    threads: the item ends at the sum of what was committed, however they interleave."""
    spread = [counter(i) for i in range(COUNTERS - 5)]
    committed: list[int] = []
    transactions: list[int] = []

    def transactions_thread(seed: int) -> Callable[[], None]:
        def work() -> None:
            rng = random.Random(seed)
            written = 0
            for _ in range(25):
                # The item first, then many more, so that the transaction holds its saved copy a while.
                items = [add("total", 1), *(add(name, 1) for name in spread), guard(holds=rng.random() < 0.5)]
                written += transact(dynamodb, items)
            committed.append(written)
            transactions.append(written)

        return work

    def updates_thread() -> None:
        for _ in range(150):
            dynamodb.update_item(
                TableName=TABLE,
                Key=key("total"),
                UpdateExpression="ADD n :one",
                ExpressionAttributeValues={":one": {"N": "1"}},
            )
        committed.append(150)

    race([*(transactions_thread(seed) for seed in range(3)), *([updates_thread] * 3)], [], budget=30)

    final = values(
        dynamodb.query(TableName=TABLE, KeyConditionExpression="pk = :pk", ExpressionAttributeValues={":pk": PK})[
            "Items"
        ]
    )
    assert 0 < sum(transactions) < 75, transactions  # some were cancelled, some written
    assert final["total"] == sum(committed), (final["total"], sum(committed))
    assert {final[name] for name in spread} == {sum(transactions)}


# ---- what the lock covers --------------------------------------------------------------------


def test_every_item_operation_waits_for_the_lock(in_process: Any) -> None:
    """Deterministic where the races are statistical: each operation, on its own thread, waits while
    another thread holds the lock, and finishes once it is released."""
    dynamodb = in_process
    dynamodb.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a in ("pk", "sk")],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.put_item(TableName=TABLE, Item={**key("a"), "n": {"N": "1"}})
    calls: dict[str, Callable[[], Any]] = {
        "TransactWriteItems": lambda: dynamodb.transact_write_items(TransactItems=[add("a", 1)]),
        "TransactGetItems": lambda: dynamodb.transact_get_items(
            TransactItems=[{"Get": {"TableName": TABLE, "Key": key("a")}}]
        ),
        "PutItem": lambda: dynamodb.put_item(TableName=TABLE, Item=key("b")),
        "UpdateItem": lambda: dynamodb.update_item(
            TableName=TABLE,
            Key=key("a"),
            UpdateExpression="ADD n :one",
            ExpressionAttributeValues={":one": {"N": "1"}},
        ),
        "DeleteItem": lambda: dynamodb.delete_item(TableName=TABLE, Key=key("c")),
        "GetItem": lambda: dynamodb.get_item(TableName=TABLE, Key=key("a")),
        "BatchGetItem": lambda: dynamodb.batch_get_item(RequestItems={TABLE: {"Keys": [key("a")]}}),
        "BatchWriteItem": lambda: dynamodb.batch_write_item(RequestItems={TABLE: [{"PutRequest": {"Item": key("d")}}]}),
        "Query": lambda: dynamodb.query(
            TableName=TABLE, KeyConditionExpression="pk = :pk", ExpressionAttributeValues={":pk": PK}
        ),
        "Scan": lambda: dynamodb.scan(TableName=TABLE),
    }
    finished: list[str] = []
    errors: list[BaseException] = []

    def run(name: str, call: Callable[[], Any]) -> None:
        try:
            call()
            finished.append(name)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=run, args=item) for item in calls.items()]
    with moto_patches._LOCK:
        for thread in threads:
            thread.start()
        time.sleep(1.0)
        waiting = sorted(set(calls) - set(finished))
    for thread in threads:
        thread.join(10)

    assert errors == []
    assert waiting == sorted(calls), f"ran without the lock: {sorted(finished)}"
    assert sorted(finished) == sorted(calls)


def test_patch_wraps_the_item_operations_and_unpatch_restores_moto() -> None:
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.responses import DynamoHandler

    patched = {name: vars(DynamoDBBackend)[name] for name in ITEM_OPERATIONS}
    handler = vars(DynamoHandler)["call_action"]
    moto_patches.unpatch_moto_transactions()

    for (cls, name), original in moto_patches._ORIGINALS.items():
        assert getattr(cls, name) is original
        assert original.__module__.startswith("moto."), (cls, name)
    for name in ITEM_OPERATIONS:
        assert patched[name] is not vars(DynamoDBBackend)[name], name
    assert handler is not vars(DynamoHandler)["call_action"]
    assert patched["transact_write_items"] is moto_patches._transact_write_items
