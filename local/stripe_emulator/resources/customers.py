"""Customers: create, retrieve, update, list (with `email`)."""

from __future__ import annotations

from typing import Any

from ..core import Context
from ..listing import fetch, paginate
from ..routes import route
from ..wire import get_dict, get_str, merge_metadata

_UPDATABLE = ("email", "name", "description", "phone")


def create_customer(
    ctx: Context, email: str | None = None, name: str | None = None, metadata: dict[str, str] | None = None
) -> dict[str, Any]:
    """A new customer, with its `customer.created` event (also used by Checkout and the seeder)."""
    customer = ctx.build(
        "customer",
        "cus_",
        email=email,
        name=name,
        metadata=metadata or {},
        invoice_prefix=None,
    )
    ctx.collection("customers").save(customer)
    ctx.emit("customer.created", customer)
    return customer


@route("POST", "/v1/customers", "rak_customer_write")
def create(ctx: Context) -> dict[str, Any]:
    p = ctx.params
    customer = create_customer(
        ctx,
        email=get_str(p, "email"),
        name=get_str(p, "name"),
        metadata=merge_metadata({}, get_dict(p, "metadata")),
    )
    for field in ("description", "phone"):
        if get_str(p, field) is not None:
            customer[field] = p[field]
    return customer


@route("GET", "/v1/customers/{id}", "rak_customer_read")
def retrieve(ctx: Context) -> dict[str, Any]:
    return fetch(ctx, "customers", "customer", ctx.path_args["id"])


@route("POST", "/v1/customers/{id}", "rak_customer_write")
def update(ctx: Context) -> dict[str, Any]:
    customer = fetch(ctx, "customers", "customer", ctx.path_args["id"])
    previous: dict[str, Any] = {}
    for field in _UPDATABLE:
        if field in ctx.params:
            value = ctx.params[field] or None
            if customer[field] != value:
                previous[field] = customer[field]
                customer[field] = value
    if "metadata" in ctx.params:
        metadata = merge_metadata(customer["metadata"], ctx.params["metadata"])
        if metadata != customer["metadata"]:
            previous["metadata"] = customer["metadata"]
            customer["metadata"] = metadata
    ctx.collection("customers").save(customer)
    if previous:
        ctx.emit("customer.updated", customer, previous)
    return customer


@route("GET", "/v1/customers", "rak_customer_read")
def list_(ctx: Context) -> dict[str, Any]:
    return paginate(ctx, "customers", "/v1/customers", where={"email": get_str(ctx.params, "email")})
