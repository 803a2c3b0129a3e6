"""Webhook endpoints (the secret is shown by create only) and the Events API (last 30 days)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from ..core import API_VERSION, EVENT_RETENTION_SECONDS, Context
from ..listing import fetch, paginate
from ..routes import route
from ..store import new_id
from ..wire import StripeError, get_bool, get_dict, get_str, get_str_list, invalid_param, merge_metadata, missing_param

MAX_ENDPOINTS = 16

# Event types an endpoint may subscribe to (those the emulator emits, plus common ones).
EVENT_TYPES = frozenset(
    {
        "charge.captured",
        "charge.failed",
        "charge.pending",
        "charge.refunded",
        "charge.succeeded",
        "charge.updated",
        "charge.expired",
        "charge.refund.updated",
        "checkout.session.async_payment_failed",
        "checkout.session.async_payment_succeeded",
        "checkout.session.completed",
        "checkout.session.expired",
        "customer.created",
        "customer.deleted",
        "customer.updated",
        "customer.subscription.created",
        "customer.subscription.deleted",
        "customer.subscription.paused",
        "customer.subscription.resumed",
        "customer.subscription.trial_will_end",
        "customer.subscription.updated",
        "invoice.created",
        "invoice.finalized",
        "invoice.paid",
        "invoice.payment_failed",
        "invoice.payment_succeeded",
        "invoice.updated",
        "invoice_payment.paid",
        "payment_intent.amount_capturable_updated",
        "payment_intent.canceled",
        "payment_intent.created",
        "payment_intent.payment_failed",
        "payment_intent.processing",
        "payment_intent.succeeded",
        "price.created",
        "product.created",
        "refund.created",
        "refund.failed",
        "refund.updated",
    }
)


def _enabled_events(params: dict[str, Any]) -> list[str]:
    events = get_str_list(params, "enabled_events")
    if not events:
        raise missing_param("enabled_events")
    unknown = [e for e in events if e != "*" and e not in EVENT_TYPES]
    if unknown:
        raise invalid_param("enabled_events", f"Invalid event type(s): {', '.join(unknown)}")
    return events


def _url(ctx: Context, params: dict[str, Any]) -> str:
    url = get_str(params, "url", required=True)
    assert url is not None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise invalid_param("url", f"Invalid URL: {url}")
    if ctx.livemode and parts.scheme != "https":
        raise invalid_param("url", "Invalid URL: URL must be publicly accessible over HTTPS in live mode.")
    return url


@route("POST", "/v1/webhook_endpoints", "rak_webhook_write")
def create(ctx: Context) -> dict[str, Any]:
    p = ctx.params
    endpoints = ctx.collection("webhook_endpoints")
    if len(endpoints) >= MAX_ENDPOINTS:
        mode = "live" if ctx.livemode else "test"
        raise StripeError(
            400,
            f"You have reached the maximum of {MAX_ENDPOINTS} {mode} webhook endpoints on this account.",
            param="url",
        )
    api_version = get_str(p, "api_version") or API_VERSION
    if api_version != API_VERSION:
        raise invalid_param("api_version", f"Invalid API version: {api_version}. The emulator speaks {API_VERSION}.")
    endpoint = ctx.build(
        "webhook_endpoint",
        "we_",
        url=_url(ctx, p),
        enabled_events=_enabled_events(p),
        api_version=api_version,
        description=get_str(p, "description"),
        metadata=merge_metadata({}, get_dict(p, "metadata")),
        status="enabled",
        application=None,
    )
    endpoints.save(endpoint)
    secret = new_id("whsec_", 32)
    ctx.space.webhook_secrets[endpoint["id"]] = secret
    return dict(endpoint, secret=secret)


@route("GET", "/v1/webhook_endpoints/{id}", "rak_webhook_read")
def retrieve(ctx: Context) -> dict[str, Any]:
    return fetch(ctx, "webhook_endpoints", "webhook endpoint", ctx.path_args["id"])


@route("GET", "/v1/webhook_endpoints", "rak_webhook_read")
def list_(ctx: Context) -> dict[str, Any]:
    return paginate(ctx, "webhook_endpoints", "/v1/webhook_endpoints")


@route("POST", "/v1/webhook_endpoints/{id}", "rak_webhook_write")
def update(ctx: Context) -> dict[str, Any]:
    endpoint = fetch(ctx, "webhook_endpoints", "webhook endpoint", ctx.path_args["id"])
    p = ctx.params
    if "url" in p:
        endpoint["url"] = _url(ctx, p)
    if "enabled_events" in p:
        endpoint["enabled_events"] = _enabled_events(p)
    if "description" in p:
        endpoint["description"] = get_str(p, "description")
    if "metadata" in p:
        endpoint["metadata"] = merge_metadata(endpoint["metadata"], p["metadata"])
    if "disabled" in p:
        endpoint["status"] = "disabled" if get_bool(p, "disabled") else "enabled"
    ctx.collection("webhook_endpoints").save(endpoint)
    return endpoint


@route("DELETE", "/v1/webhook_endpoints/{id}", "rak_webhook_write")
def delete(ctx: Context) -> dict[str, Any]:
    endpoint = fetch(ctx, "webhook_endpoints", "webhook endpoint", ctx.path_args["id"])
    ctx.collection("webhook_endpoints").delete(endpoint["id"])
    ctx.space.webhook_secrets.pop(endpoint["id"], None)
    return {"id": endpoint["id"], "object": "webhook_endpoint", "deleted": True}


# ---- Events ----------------------------------------------------------------------------------


def _retained(ctx: Context, event: dict[str, Any]) -> bool:
    return bool(event["created"] >= ctx.now - EVENT_RETENTION_SECONDS)


@route("GET", "/v1/events/{id}", "rak_event_read")
def retrieve_event(ctx: Context) -> dict[str, Any]:
    event = fetch(ctx, "events", "event", ctx.path_args["id"])
    if not _retained(ctx, event):
        raise StripeError(404, f"No such event: '{event['id']}'", code="resource_missing", param="id")
    return event


@route("GET", "/v1/events", "rak_event_read")
def list_events(ctx: Context) -> dict[str, Any]:
    """Events of the last 30 days; `type` may end in `*` (`charge.*`), `types[]` lists several."""
    p = ctx.params
    types = set(get_str_list(p, "types"))
    single = get_str(p, "type")
    prefix = None
    if single and single.endswith("*"):
        prefix, single = single.rstrip("*"), None

    def keep(event: dict[str, Any]) -> bool:
        if not _retained(ctx, event):
            return False
        if prefix is not None:
            return bool(event["type"].startswith(prefix))
        return not types or event["type"] in types

    return paginate(ctx, "events", "/v1/events", where={"type": single}, predicate=keep)
