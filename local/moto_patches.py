"""Fixes to moto (5.2.5) for the local stack and the tests.

``DynamoDBBackend.transact_write_items`` deep-copies every table a transaction touches, once per
item of the transaction, so that it can roll back: a 100-item transaction costs ~20 ms on an empty
table but ~9 s at 11,000 items and ~37 s at 20,000, where real DynamoDB stays flat.

``patch_moto_transactions()`` replaces it, on the backend class (so in-process ``mock_aws`` and
``ThreadedMotoServer`` alike), with a copy of moto's own loop that differs only in what it saves for
the rollback: each touched item just before it is written, instead of whole tables. Everything else
is moto's: the same order of work, the same helpers to evaluate conditions and to apply Put, Update
and Delete, the same ValidationExceptions and the same CancellationReasons.

The loop checks each item's condition and then writes it, as moto does, rather than checking every
condition before any write: moto finds some invalid requests only while writing (a malformed
UpdateExpression raises ValidationException, an out-of-range number becomes a cancellation reason),
and checking first would change the answer to such a request when a condition also fails. Each
condition still sees the state from before the transaction, because no two items of a transaction
may share a key (MultipleTransactionsException), and a cancelled transaction leaves no trace.
"""

from __future__ import annotations

import copy
from typing import Any

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

__all__ = ["patch_moto_transactions", "unpatch_moto_transactions"]

# A cancellation reason as moto's TransactionCanceledException takes it: (code, message, item).
_Reason = tuple[str | None, str | None, dict[str, Any] | None]

_ORIGINAL = DynamoDBBackend.__dict__["transact_write_items"]


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


def patch_moto_transactions() -> None:
    """Make moto's TransactWriteItems cost the items it touches, not the tables; applying it twice is harmless."""
    DynamoDBBackend.transact_write_items = _transact_write_items  # type: ignore[method-assign]


def unpatch_moto_transactions() -> None:
    """Put moto's own TransactWriteItems back."""
    DynamoDBBackend.transact_write_items = _ORIGINAL  # type: ignore[method-assign]
