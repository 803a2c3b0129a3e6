"""Unit tests of the emulator's wire format: Stripe's nested form parameters and metadata semantics."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import pytest

from local.stripe_emulator.wire import StripeError, decode_params, merge_metadata


def decode(query: str) -> dict[str, Any]:
    """Decode a query string the way the emulator decodes a request's form or query parameters."""
    return decode_params(parse_qsl(query, keep_blank_values=True))


# ---- decode_params ---------------------------------------------------------------------------


def test_plain_keys_stay_strings() -> None:
    # Given flat parameters, When decoded, Then each is a string under its own name
    assert decode("amount=1000&currency=usd&confirm=true") == {"amount": "1000", "currency": "usd", "confirm": "true"}


def test_bracketed_keys_become_a_dict() -> None:
    # Given metadata sent as metadata[k]=v, When decoded, Then it is one dict
    assert decode("metadata[order_id]=42&metadata[visitor]=v_1") == {"metadata": {"order_id": "42", "visitor": "v_1"}}


def test_indexed_dicts_become_a_list_of_dicts() -> None:
    # Given items[0][price]=p (how the SDK sends a list of objects), When decoded
    params = decode("items[0][price]=price_a&items[0][quantity]=2&items[1][price]=price_b")

    # Then the items are a list in index order, each a dict
    assert params == {"items": [{"price": "price_a", "quantity": "2"}, {"price": "price_b"}]}


def test_indices_are_ordered_numerically_not_as_text() -> None:
    # Given eleven indexed values sent out of order, When decoded
    query = "&".join(f"expand[{i}]=f{i}" for i in (10, 2, 0, 1, 3, 4, 5, 6, 7, 8, 9))

    # Then index 10 comes last, not after index 1
    assert decode(query)["expand"] == [f"f{i}" for i in range(11)]


def test_empty_brackets_append_to_a_list() -> None:
    # Given expand[]=a&expand[]=b, When decoded, Then both are kept, in order
    assert decode("expand[]=data.customer&expand[]=data.payment_intent") == {
        "expand": ["data.customer", "data.payment_intent"]
    }


def test_single_indexed_value_is_a_list() -> None:
    # Given expand[0]=x (the SDK's encoding of a one-element list), When decoded, Then it is a list
    assert decode("expand[0]=data.customer") == {"expand": ["data.customer"]}


def test_nested_object_parameter() -> None:
    # Given payment[payment_intent]=pi (invoice payments' filter), When decoded, Then it is a nested dict
    assert decode("payment[payment_intent]=pi_123&payment[type]=payment_intent") == {
        "payment": {"payment_intent": "pi_123", "type": "payment_intent"}
    }


def test_deeply_nested_parameters() -> None:
    # Given a list of objects holding objects, When decoded
    params = decode(
        "line_items[0][price_data][currency]=usd&line_items[0][price_data][recurring][interval]=month"
        "&line_items[0][quantity]=1"
    )

    # Then every level keeps its shape
    assert params == {
        "line_items": [{"price_data": {"currency": "usd", "recurring": {"interval": "month"}}, "quantity": "1"}]
    }


def test_metadata_keys_made_of_digits_stay_keys() -> None:
    # Given metadata whose keys are digits (metadata is a hash: "0" is a valid key), When decoded
    params = decode("metadata[0]=first&metadata[7]=seventh&payment_intent_data[metadata][1]=one")

    # Then metadata is still a dict, at the top level and nested
    assert params == {
        "metadata": {"0": "first", "7": "seventh"},
        "payment_intent_data": {"metadata": {"1": "one"}},
    }


def test_blank_value_is_kept() -> None:
    # Given metadata= (Stripe's way of clearing all metadata), When decoded, Then the empty string is kept
    assert decode("metadata=") == {"metadata": ""}


def test_a_value_sent_both_as_string_and_object_is_a_400() -> None:
    # Given metadata= followed by metadata[k]=v, When decoded, Then a 400 (not an emulator crash)
    with pytest.raises(StripeError) as caught:
        decode("metadata=&metadata[k]=v")
    assert caught.value.status == 400


# ---- merge_metadata --------------------------------------------------------------------------


def test_metadata_keys_merge() -> None:
    # Given metadata {a, b}, When {b: new, c} is sent, Then keys merge and b is replaced
    assert merge_metadata({"a": "1", "b": "2"}, {"b": "new", "c": "3"}) == {"a": "1", "b": "new", "c": "3"}


def test_empty_metadata_value_deletes_the_key() -> None:
    # Given metadata {a, b}, When b is sent empty, Then b is removed and a kept
    assert merge_metadata({"a": "1", "b": "2"}, {"b": ""}) == {"a": "1"}


def test_empty_metadata_string_clears_everything() -> None:
    # Given metadata {a, b}, When metadata="" is sent, Then nothing is left
    assert merge_metadata({"a": "1", "b": "2"}, "") == {}


def test_merge_does_not_mutate_the_current_metadata() -> None:
    # Given stored metadata, When merged with changes, Then the stored dict is unchanged
    current = {"a": "1"}
    merge_metadata(current, {"a": "", "b": "2"})
    assert current == {"a": "1"}


@pytest.mark.parametrize(
    ("update", "message"),
    [
        (["a"], "must be an object"),
        ({"nested": {"x": "y"}}, "Invalid metadata value"),
        ({"k" * 41: "v"}, "up to 40 characters"),
        ({"k": "v" * 501}, "up to 500 characters"),
        ({f"k{i}": "v" for i in range(51)}, "up to 50 metadata keys"),
    ],
)
def test_invalid_metadata_is_refused(update: Any, message: str) -> None:
    # Given metadata breaking one of Stripe's limits, When merged, Then a 400 names the problem
    with pytest.raises(StripeError) as caught:
        merge_metadata({}, update)
    assert caught.value.status == 400
    assert message in caught.value.message


def test_metadata_limits_are_inclusive() -> None:
    # Given exactly 50 keys of 40 characters with values of 500, When merged, Then all are accepted
    update = {f"{i:040d}": "v" * 500 for i in range(50)}
    assert merge_metadata({}, update) == update
