"""Stripe's wire format: nested form parameters in, JSON objects and error bodies out."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

_KEY_PART = re.compile(r"\[([^\]]*)\]")


class StripeError(Exception):
    """An error answered the way Stripe answers it: status code plus `{"error": {...}}`."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",  # noqa: A002 - Stripe's field name
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.headers = headers or {}
        self.extra = extra or {}

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"type": self.type, "message": self.message}
        if self.code is not None:
            error["code"] = self.code
            error["doc_url"] = f"https://stripe.com/docs/error-codes/{self.code.replace('_', '-')}"
        if self.param is not None:
            error["param"] = self.param
        error.update(self.extra)
        return {"error": error}


def not_found(kind: str, object_id: str, param: str = "id") -> StripeError:
    return StripeError(404, f"No such {kind}: '{object_id}'", code="resource_missing", param=param)


def missing_param(param: str) -> StripeError:
    return StripeError(400, f"Missing required param: {param}.", code="parameter_missing", param=param)


def invalid_param(param: str, message: str) -> StripeError:
    return StripeError(400, message, code="parameter_invalid_string", param=param)


def _split_key(key: str) -> list[str]:
    head, bracket, _ = key.partition("[")
    if not bracket:
        return [key]
    return [head, *_KEY_PART.findall(key[len(head) :])]


def decode_params(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Turn `metadata[k]=v`, `items[0][price]=p`, `expand[]=x` pairs into nested dicts and lists.

    Indexed keys (`a[0]`, `a[1]`) and empty brackets (`a[]`) both become lists, as Stripe accepts both.
    """
    root: dict[str, Any] = {}
    for key, value in pairs:
        parts = _split_key(key)
        node: Any = root
        for i, part in enumerate(parts):
            if not isinstance(node, dict):  # `a=x` and `a[k]=y` in one request
                raise StripeError(400, f"Invalid value for {parts[0]}: it was sent both as a string and as an object.")
            last = i == len(parts) - 1
            if part == "":  # `a[]`: append a new element
                if last:
                    node.setdefault("\0list", []).append(value)
                    break
                part = str(len(node.get("\0list", [])))
            if last:
                node[part] = value
            else:
                node = node.setdefault(part, {})
    decoded: dict[str, Any] = _listify(root)
    return decoded


def _listify(node: Any, is_hash: bool = False) -> Any:
    """Indexed nodes become lists, except inside `metadata`, a hash whose keys may be digits."""
    if not isinstance(node, dict):
        return node
    if "\0list" in node:
        return [_listify(v) for v in node["\0list"]]
    if node and not is_hash and all(k.isdigit() for k in node):
        return [_listify(node[k]) for k in sorted(node, key=int)]
    return {k: _listify(v, k == "metadata") for k, v in node.items()}


# ---- typed readers for decoded parameters -------------------------------------------------


def get_int(params: dict[str, Any], name: str, *, required: bool = False, minimum: int | None = None) -> int | None:
    raw = params.get(name)
    if raw is None or raw == "":
        if required:
            raise missing_param(name)
        return None
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise StripeError(400, f"Invalid integer: {raw}", code="parameter_invalid_integer", param=name) from None
    if minimum is not None and value < minimum:
        raise StripeError(
            400,
            f"This value must be greater than or equal to {minimum}.",
            code="parameter_invalid_integer",
            param=name,
        )
    return value


def get_bool(params: dict[str, Any], name: str, default: bool = False) -> bool:
    raw = params.get(name)
    if raw is None:
        return default
    if raw in ("true", True):
        return True
    if raw in ("false", False):
        return False
    raise StripeError(400, f"Invalid boolean: {raw}", code="parameter_invalid_boolean", param=name)


def get_str(params: dict[str, Any], name: str, *, required: bool = False) -> str | None:
    raw = params.get(name)
    if raw is None or raw == "":
        if required:
            raise missing_param(name)
        return None
    if not isinstance(raw, str):
        raise invalid_param(name, f"Invalid string: {raw!r}")
    return raw


def get_str_list(params: dict[str, Any], name: str) -> list[str]:
    raw = params.get(name)
    if raw is None:
        return []
    if isinstance(raw, str):
        return [raw]
    if isinstance(raw, list) and all(isinstance(v, str) for v in raw):
        return raw
    raise invalid_param(name, f"Invalid array: {name}")


def get_dict(params: dict[str, Any], name: str) -> dict[str, Any]:
    raw = params.get(name)
    if raw is None or raw == "":
        return {}
    if not isinstance(raw, dict):
        raise StripeError(400, f"Invalid object: {name}", code="parameter_invalid_object", param=name)
    return raw


def merge_metadata(current: dict[str, str], update: Any) -> dict[str, str]:
    """Stripe's metadata semantics: keys merge, an empty value deletes a key, `metadata=""` clears all."""
    if update == "":
        return {}
    if not isinstance(update, dict):
        raise StripeError(400, "Invalid metadata: must be an object", param="metadata")
    merged = dict(current)
    for key, value in update.items():
        if not isinstance(value, str):
            raise StripeError(400, f"Invalid metadata value for {key}", param=f"metadata[{key}]")
        if len(key) > 40:
            raise StripeError(400, "Metadata keys can have up to 40 characters.", param=f"metadata[{key}]")
        if len(value) > 500:
            raise StripeError(400, "Metadata values can have up to 500 characters.", param=f"metadata[{key}]")
        if value == "":
            merged.pop(key, None)
        else:
            merged[key] = value
    if len(merged) > 50:
        raise StripeError(400, "You can have up to 50 metadata keys.", param="metadata")
    return merged
