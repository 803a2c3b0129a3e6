"""Fixes to moto (5.2.5) for the local stack and the tests.

Query. moto walks and sorts the whole table for every Query; a base-table Query here walks only the
key range of its partition (``_partition_query``), as DynamoDB does, so the local stack stays fast as history is
imported. Index queries are moto's own. A Query's response is written with json.dumps
(``_execute_result``): moto's serializer walks it value by value, seconds for a report's rollups.

Isolation. Real DynamoDB serialises a transaction against every other write, and no read ever sees a
partial transaction or the writes of one that was cancelled. moto does nothing of the kind: it
applies a transaction item by item, in place, and undoes it by putting back saved copies. While
``ThreadedMotoServer`` serves other requests on other threads (or threads share in-process
``mock_aws``), a GetItem, BatchGetItem, Query or Scan can read a transaction half applied, or read
a write that is then rolled back; and the rollback, restoring the copies it saved, silently undoes
an UpdateItem committed in between (a lost update). ``patch_moto_transactions()`` therefore runs
every DynamoDB operation under one process-wide re-entrant lock (``_LOCK``), at two levels:

* every public method of ``DynamoDBBackend`` (and of ``DynamoDBStreamsBackend``, which reads the
  tables' stream records), so that each backend call is atomic against every other;
* ``DynamoHandler.call_action``, so that a whole request is: BatchGetItem, BatchWriteItem and
  TransactGetItems loop over the backend in moto's request handler, PutItem and UpdateItem read the
  old item there for ReturnValues, and every handler turns the stored items (live objects, which
  UpdateItem changes in place) into its response after the backend call has returned.

So DynamoDB requests are served one at a time, which is stronger than AWS asks (BatchGetItem, Query
and Scan are only read-committed per item there) and costs nothing that matters for a dev tool. The
lock is re-entrant because backend methods call one another. A DynamoDB stream mapped to a Lambda
function through moto's own event source mappings would invoke the function with the lock held;
the local stack maps none.

Cost. ``DynamoDBBackend.transact_write_items`` deep-copies every table a transaction touches, once
per item of the transaction, so that it can roll back: a 100-item transaction costs ~20 ms on an
empty table but ~9 s at 11,000 items and ~37 s at 20,000, where real DynamoDB stays flat.

``patch_moto_transactions()`` replaces it with a copy of moto's own loop that differs only in what
it saves for the rollback: each touched item just before it is written, instead of whole tables.
Everything else is moto's: the same order of work, the same helpers to evaluate conditions and to
apply Put, Update and Delete, the same ValidationExceptions and the same CancellationReasons.

The loop checks each item's condition and then writes it, as moto does, rather than checking every
condition before any write: moto finds some invalid requests only while writing (a malformed
UpdateExpression raises ValidationException, an out-of-range number becomes a cancellation reason),
and checking first would change the answer to such a request when a condition also fails. Each
condition still sees the state from before the transaction, because no two items of a transaction
may share a key (MultipleTransactionsException), and a cancelled transaction leaves no trace: the
lock keeps anyone from seeing it meanwhile.

Both patches go on the classes, so they serve in-process ``mock_aws`` and ``ThreadedMotoServer``
alike; ``unpatch_moto_transactions()`` puts back exactly what moto had.
"""

from __future__ import annotations

import base64
import copy
import functools
import inspect
import json
import threading
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from moto.dynamodb.comparisons import get_filter_expression
from moto.dynamodb.exceptions import (
    ConditionalCheckFailed,
    MockValidationException,
    MultipleTransactionsException,
    TooManyTransactionsException,
    TransactionCanceledException,
    TransactWriteSingleOpException,
)
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType, Item
from moto.dynamodb.models.table import StreamShard, Table
from moto.dynamodb.responses import DynamoHandler, DynamoResult
from moto.dynamodbstreams.models import DynamoDBStreamsBackend

__all__ = ["patch_moto_transactions", "unpatch_moto_transactions"]

# A cancellation reason as moto's TransactionCanceledException takes it: (code, message, item).
_Reason = tuple[str | None, str | None, dict[str, Any] | None]

_P = ParamSpec("_P")
_R = TypeVar("_R")

# Held by every DynamoDB request and backend call while patched; re-entrant, as they nest.
_LOCK = threading.RLock()


def _locked(method: Callable[_P, _R]) -> Callable[_P, _R]:
    """The method, run under ``_LOCK``."""

    @functools.wraps(method)
    def locked(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        with _LOCK:
            return method(*args, **kwargs)

    return locked


def _backend_methods(cls: type) -> dict[tuple[type, str], Any]:
    """The public methods the class itself defines (not static or class methods, not generators)."""
    return {
        (cls, name): value
        for name, value in vars(cls).items()
        if not name.startswith("_") and inspect.isfunction(value) and not inspect.isgeneratorfunction(value)
    }


# What moto has, as found at import, and what the patch puts in its place.
_ORIGINALS: dict[tuple[type, str], Any] = {
    **_backend_methods(DynamoDBBackend),
    **_backend_methods(DynamoDBStreamsBackend),
    (DynamoHandler, "call_action"): vars(DynamoHandler)["call_action"],
    (Table, "query"): vars(Table)["query"],
    (Table, "all_items"): vars(Table)["all_items"],
    (DynamoResult, "execute_result"): DynamoResult.execute_result,  # (ActionResult's, inherited)
}
_QUERY_ARGUMENTS = inspect.signature(vars(Table)["query"])

# The partition a base-table Query walks (set under _LOCK while it runs): moto walks and sorts the
# whole table for every Query (~100 ms at 80,000 items, growing with the table), where DynamoDB
# reads the partition only. The items found, their order, conditions and pages are moto's own.
_partition: tuple[Table, list[Item]] | None = None


def _partition_query(self: Table, *args: Any, **kwargs: Any) -> Any:
    global _partition
    given = _QUERY_ARGUMENTS.bind(self, *args, **kwargs).arguments
    hash_key = given.get("hash_key")
    if given.get("index_name") is not None or hash_key is None or not self.range_key_attr:
        return _ORIGINALS[(Table, "query")](self, *args, **kwargs)  # an index: moto walks the table
    comparison, values = given.get("range_comparison"), given.get("range_objs")
    with _LOCK:
        items = list(self.items.get(hash_key, {}).values())
        if comparison and values:
            # Only the key range, as DynamoDB reads it: moto sizes every item it walks before
            # comparing its key (~1 ms a rollup item: a month's report paid for the whole partition).
            items = [i for i in items if i.range_key is not None and i.range_key.compare(comparison, values)]
        _partition = (self, items)
        try:
            return _ORIGINALS[(Table, "query")](self, *args, **kwargs)
        finally:
            _partition = None


def _execute_result(self: DynamoResult, context: Any) -> Any:
    """A Query's response body as json.dumps of the DynamoDB JSON moto built: its serializer walks the
    response shape value by value (~1 ms a 100-attribute item, seconds for a report's rollups, past
    the functions' read timeout). Anything else, or a result JSON cannot hold, is moto's own."""
    if context.operation_model.name == "Query":
        try:
            return 200, {"Content-Type": "application/x-amz-json-1.0"}, json.dumps(self.result, default=_base64)
        except (TypeError, ValueError):
            pass
    return _ORIGINALS[(DynamoResult, "execute_result")](self, context)


def _base64(value: Any) -> str:
    """A binary value as the wire carries it (moto's result holds it as bytes)."""
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    raise TypeError(f"{type(value).__name__} is not JSON")


def _all_items(self: Table) -> Any:
    if _partition is not None and _partition[0] is self:
        return iter(_partition[1])
    return _ORIGINALS[(Table, "all_items")](self)


class _Undo:
    """The items a transaction is about to write, as they were, and how long the table streams were."""

    def __init__(self) -> None:
        self.items: list[tuple[Table, DynamoType, DynamoType | None, Item | None]] = []
        self.streams: dict[int, tuple[StreamShard, int]] = {}

    def save(self, backend: DynamoDBBackend, table_name: str, key: dict[str, Any], current: Item | None) -> None:
        table = backend.get_table(table_name)
        hash_value, range_value = backend.get_keys_value(table, key)
        # A copy, since UpdateItem changes the stored Item in place.
        self.items.append((table, hash_value, range_value, copy.deepcopy(current)))
        if (shard := table.stream_shard) is not None:
            # A cancelled transaction writes no stream records: restoring whole tables dropped them too.
            self.streams.setdefault(id(shard), (shard, len(shard.items)))

    def restore(self) -> None:
        for table, hash_value, range_value, old in reversed(self.items):
            slot: dict[Any, Any] = table.items if range_value is None else table.items[hash_value]
            slot_key = hash_value if range_value is None else range_value
            if old is None:
                slot.pop(slot_key, None)
            else:
                slot[slot_key] = old
        for shard, length in self.streams.values():
            del shard.items[length:]


def _transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    with _LOCK:  # as every other patched method; taken here too, so that this one needs no wrapper
        undo = _Undo()
        seen: set[tuple[str, str]] = set()
        try:
            errors = [_write_item(self, item, seen, undo) for item in transact_items]
        except BaseException:
            # moto restored the tables on a ValidationException (but left the writes of a request it
            # found to have an item with two operations): restore on any error that escapes.
            undo.restore()
            raise
        if any(code is not None for code, _, _ in errors):
            undo.restore()
            raise TransactionCanceledException(errors)


def _write_item(backend: DynamoDBBackend, item: dict[str, Any], seen: set[tuple[str, str]], undo: _Undo) -> _Reason:
    """One item of the transaction, as in moto's loop: its reason, or raise for a ValidationException."""
    if len(item) > 1:
        raise TransactWriteSingleOpException
    original_item: dict[str, Any] | None = None
    try:
        op_type, op = next(iter(item.items()))
        if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
            raise ValueError("Unsupported transaction operation")

        table_name = op["TableName"]
        condition_expression = op.get("ConditionExpression")
        expression_attribute_names = op.get("ExpressionAttributeNames")
        expression_attribute_values = op.get("ExpressionAttributeValues")

        if op_type == "Put":
            attrs = op["Item"]
            table = backend.get_table(table_name)
            key = {table.hash_key_attr: attrs[table.hash_key_attr]}
            if table.range_key_attr is not None:
                key[table.range_key_attr] = attrs[table.range_key_attr]
        else:
            key = op["Key"]

        unique_id = (str(table_name), str(dict(sorted(key.items()))))
        if unique_id in seen:
            raise MultipleTransactionsException()
        seen.add(unique_id)

        current = backend.get_item(table_name, key)
        if condition_expression is not None:
            condition_op = get_filter_expression(
                condition_expression, expression_attribute_names, expression_attribute_values
            )
            if not condition_op.expr(current):
                if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current:
                    original_item = current.to_json()["Attributes"]
                raise ConditionalCheckFailed(item=original_item)

        if op_type != "ConditionCheck":
            undo.save(backend, table_name, key, current)
        if op_type == "Put":
            backend.put_item(
                table_name,
                op["Item"],
                condition_expression=condition_expression,
                expression_attribute_names=expression_attribute_names,
                expression_attribute_values=expression_attribute_values,
            )
        elif op_type == "Delete":
            backend.delete_item(
                table_name,
                key,
                condition_expression=condition_expression,
                expression_attribute_names=expression_attribute_names,
                expression_attribute_values=expression_attribute_values,
            )
        elif op_type == "Update":
            backend.update_item(
                table_name,
                key,
                update_expression=op["UpdateExpression"],
                condition_expression=condition_expression,
                expression_attribute_names=expression_attribute_names,
                expression_attribute_values=expression_attribute_values,
            )
        return (None, None, None)
    except (MultipleTransactionsException, MockValidationException):
        raise
    except ConditionalCheckFailed as e:
        return ("ConditionalCheckFailed", str(e.message), original_item)
    except Exception as e:  # moto reports any other error as that item's cancellation reason
        return (type(e).__name__, str(e), original_item)


_PATCHED: dict[tuple[type, str], Any] = {
    **{key: _locked(method) for key, method in _ORIGINALS.items()},
    (DynamoDBBackend, "transact_write_items"): _transact_write_items,
    (Table, "query"): _partition_query,
    (Table, "all_items"): _all_items,
    (DynamoResult, "execute_result"): _execute_result,
}


def patch_moto_transactions() -> None:
    """Serialise moto's DynamoDB and make its TransactWriteItems cost the items it touches; idempotent."""
    for (cls, name), method in _PATCHED.items():
        setattr(cls, name, method)


def unpatch_moto_transactions() -> None:
    """Put moto's own methods back, unlocked."""
    for (cls, name), method in _ORIGINALS.items():
        setattr(cls, name, method)
