"""List endpoints' shared parameters: limit, cursors and `created` ranges."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .core import Context
from .expand import list_object
from .wire import StripeError, get_int, get_str, not_found

_RANGE_OPS = ("gt", "gte", "lt", "lte")


def created_filter(params: dict[str, Any], name: str = "created") -> dict[str, int]:
    raw = params.get(name)
    if raw is None or raw == "":
        return {}
    if isinstance(raw, str):
        exact = get_int(params, name)
        assert exact is not None
        return {"gte": exact, "lte": exact}
    if not isinstance(raw, dict) or set(raw) - set(_RANGE_OPS):
        raise StripeError(400, f"Invalid {name}: use an integer or gt, gte, lt, lte.", param=name)
    return {op: int(get_int(raw, op) or 0) for op in raw}


def paginate(
    ctx: Context,
    collection: str,
    url: str,
    where: dict[str, Any] | None = None,
    predicate: Callable[[dict[str, Any]], bool] | None = None,
) -> dict[str, Any]:
    """One page of `collection` as Stripe lists it, after the common list parameters."""
    params = ctx.params
    limit = get_int(params, "limit", minimum=1)
    if limit is None:
        limit = 10
    if limit > 100:
        raise StripeError(
            400, "This value must be less than or equal to 100.", code="parameter_invalid_integer", param="limit"
        )
    page = ctx.collection(collection).page(
        limit=limit,
        where={k: v for k, v in (where or {}).items() if v is not None},
        created=created_filter(params),
        starting_after=get_str(params, "starting_after"),
        ending_before=get_str(params, "ending_before"),
        predicate=predicate,
    )
    return list_object(page.data, page.has_more, url)


def fetch(ctx: Context, collection: str, kind: str, object_id: str | None, param: str = "id") -> dict[str, Any]:
    """The object `object_id` of `collection`, or Stripe's 404 naming it as `kind`."""

    obj = ctx.collection(collection).get(object_id) if object_id else None
    if obj is None:
        raise not_found(kind, object_id or "", param)
    return obj
