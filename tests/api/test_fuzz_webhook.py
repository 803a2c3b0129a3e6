"""The unauthenticated webhook route under generated requests (headers, bodies, sizes, encodings),
against the real local stack and a connected project: it only ever answers 200, 400, 404 or 413, and
a request it refuses writes nothing (every table read before and after)."""

from __future__ import annotations

import gzip
import json
import time
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from local.stripe_emulator.webhooks import sign
from shared.webhook_receiver import MAX_BODY_BYTES
from tests.api.conftest import ApiStack, Request, send

PROJECT = "hooked"
UNKNOWN = "never-connected"
MAX_EXAMPLES = 120
ALLOWED = {200, 400, 404, 413}


@dataclass(frozen=True)
class Connected:
    project: str
    secret: str  # the endpoint's signing secret, as Stripe (the emulator) holds it


@pytest.fixture(scope="module")
def connected(api_stack: ApiStack) -> Connected:
    """A project connected to an empty Stripe account, its history import finished (nothing else
    writes while the fuzz runs)."""
    account = api_stack.control.create_account()
    status, _ = call(api_stack, "POST", f"/projects/{PROJECT}/integrations/stripe", {"api_key": account.restricted_key})
    assert status == 201
    deadline = time.monotonic() + 30
    while True:
        _, integration = call(api_stack, "GET", f"/projects/{PROJECT}/integrations/stripe")
        if integration["backfill"]["status"] == "completed":
            break
        assert time.monotonic() < deadline, integration
        time.sleep(0.2)
    secrets = api_stack.client("secretsmanager")
    (name,) = [s["Name"] for s in secrets.list_secrets()["SecretList"] if s["Name"].endswith(f"projects/{PROJECT}")]
    stored = json.loads(secrets.get_secret_value(SecretId=name)["SecretString"])
    return Connected(PROJECT, stored["webhook_secret"])


def call(stack: ApiStack, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    request = Request(method, path, json.dumps(body).encode() if body is not None else b"")
    request.headers["Authorization"] = f"Bearer {stack.token(PROJECT)}"
    status, data = send(stack, request)
    return status, json.loads(data)


# ---- requests ----------------------------------------------------------------------------------


# Types the receiver books (shared.webhook_receiver.HANDLERS) and others, which it acknowledges only
BOOKED_TYPES = ["charge.succeeded", "charge.refunded", "invoice.paid", "customer.subscription.updated"]
IGNORED_TYPES = ["customer.created", "payment_intent.created", "ping", ""]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)


@st.composite
def events(draw: st.DrawFn, booked: bool = True) -> dict[str, Any]:
    """Something shaped like a Stripe event, its parts generated (or missing). Types that are booked
    only when `booked`: a genuinely signed one whose object is malformed is a known 500
    (test_a_signed_event_whose_object_is_malformed_is_refused)."""
    types = st.sampled_from(BOOKED_TYPES + IGNORED_TYPES if booked else IGNORED_TYPES)
    event: dict[str, Any] = {
        "id": draw(st.sampled_from(["evt_", "evt_fuzz_", ""])) + draw(st.text("abcdef0123456789", max_size=16)),
        "object": draw(st.sampled_from(["event", "event", "charge", None])),
        "type": draw(types | st.text(max_size=30).filter(lambda t: t not in BOOKED_TYPES)),
        "created": draw(st.integers(min_value=-(2**40), max_value=2**40)),
        "livemode": draw(st.booleans()),
        "data": {"object": draw(st.dictionaries(st.text(max_size=12), json_values, max_size=6))},
    }
    for key in draw(st.sets(st.sampled_from(sorted(event)), max_size=2)):
        del event[key]
    return event


@st.composite
def bodies(draw: st.DrawFn, booked: bool) -> bytes:
    kind = draw(st.sampled_from(["event", "event", "json", "bytes", "large", "encoded"]))
    if kind == "event":
        return json.dumps(draw(events(booked))).encode()
    if kind == "json":
        return json.dumps(draw(json_values)).encode()
    if kind == "bytes":
        return draw(st.binary(max_size=2048))
    event = json.dumps(draw(events(booked)))
    if kind == "large":  # around the 1 MiB limit, and well over it
        size = draw(st.sampled_from([MAX_BODY_BYTES - 1, MAX_BODY_BYTES, MAX_BODY_BYTES + 1, 3 * MAX_BODY_BYTES]))
        padded = event[:-1] + ', "padding": "' + "x" * size + '"}'
        return padded.encode()[:size] if draw(st.booleans()) else padded.encode()
    encoding = draw(st.sampled_from(["utf-16", "utf-8-sig", "latin-1", "gzip", "utf-32"]))
    text = event.replace('"type"', '"t\u00ffpe"') if encoding == "latin-1" else event
    return gzip.compress(text.encode()) if encoding == "gzip" else text.encode(encoding)


header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=80)


@st.composite
def deliveries(draw: st.DrawFn, secret: str) -> tuple[Request, str]:
    """A webhook request; what its signature is (for the expectations)."""
    project = draw(st.sampled_from([PROJECT, PROJECT, PROJECT, UNKNOWN, "bad%20id", "x" * 129, "%E2%9C%93"]))
    signing = draw(st.sampled_from(["valid", "valid", "none", "garbage", "shape", "old", "future", "other", "wrong"]))
    body = draw(bodies(booked=signing != "valid"))
    now = int(time.time())
    signature: str | None
    if signing == "valid":
        signature = sign(body, secret, now)
        if draw(st.booleans()):  # Stripe lists several v1 signatures while a secret rolls
            signature += ",v1=" + "0" * 64 + ",v0=" + draw(header_text.filter(lambda t: "," not in t))
    elif signing == "none":
        signature = None
    elif signing == "garbage":
        signature = draw(header_text)
    elif signing == "shape":
        signature = f"t={now},v1=" + draw(st.text("0123456789abcdef", min_size=64, max_size=64))
    elif signing == "old":
        signature = sign(body, secret, now - draw(st.integers(min_value=301, max_value=10**6)))
    elif signing == "future":
        signature = sign(body, secret, now + draw(st.integers(min_value=301, max_value=10**6)))
    elif signing == "other":
        signature = sign(body + b" ", secret, now)
    else:
        signature = sign(body, "whsec_" + "x" * 32, now)
    headers: dict[str, str] = {}
    if signature is not None:
        headers[draw(st.sampled_from(["Stripe-Signature", "stripe-signature", "STRIPE-SIGNATURE"]))] = signature
    headers["Content-Type"] = draw(
        st.sampled_from(
            ["application/json", "application/json; charset=utf-16", "text/plain", "application/x-www-form-urlencoded"]
        )
    )
    if draw(st.booleans()):
        headers["Content-Encoding"] = draw(st.sampled_from(["gzip", "identity", "br"]))
    for name, value in draw(
        st.dictionaries(st.sampled_from(["X-Forwarded-For", "User-Agent", "Accept"]), header_text)
    ).items():
        headers[name] = value
    return Request("POST", f"/webhooks/stripe/{project}", body, headers), signing


# ---- the fuzz ----------------------------------------------------------------------------------


def test_the_webhook_route_answers_only_its_documented_codes_and_a_refusal_writes_nothing(
    api_stack: ApiStack, connected: Connected
) -> None:
    seen: dict[int, int] = {}

    @settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        request, signing = data.draw(deliveries(connected.secret))
        before = api_stack.tables()
        status, answer = send(api_stack, request)
        seen[status] = seen.get(status, 0) + 1
        assert status in ALLOWED, (status, answer[:300], signing, request.path, len(request.body))
        body = json.loads(answer)
        if status != 200:
            assert set(body) == {"error"}, body
            assert {"code", "message"} <= set(body["error"]), body
            assert api_stack.tables() == before, f"a refused request ({status} {body['error']['code']}) wrote"
        project = request.path.rsplit("/", 1)[1]
        if project in ("bad%20id", "x" * 129, "%E2%9C%93"):
            assert (status, body["error"]["code"]) == (400, "invalid_request")
        elif len(request.body) > MAX_BODY_BYTES:
            assert (status, body["error"]["code"]) == (413, "payload_too_large")
        elif project == UNKNOWN:
            assert (status, body["error"]["code"]) == (404, "not_found")
        elif signing != "valid":
            assert (status, body["error"]["code"]) == (400, "invalid_signature")
        else:
            assert status in (200, 400), body

    run()
    # the generated requests reached every answer, not only the cheap refusals
    assert {200, 400, 404, 413} <= seen.keys(), seen


def test_a_signed_event_whose_object_is_malformed_is_refused(api_stack: ApiStack, connected: Connected) -> None:
    # Given an event the project's secret signs (only Stripe could send it) whose charge has no fields
    body = json.dumps(
        {"id": "evt_malformed", "object": "event", "type": "charge.succeeded", "data": {"object": {}}}
    ).encode()
    request = Request(
        "POST",
        f"/webhooks/stripe/{PROJECT}",
        body,
        {"Stripe-Signature": sign(body, connected.secret, int(time.time()))},
    )
    before = api_stack.tables()
    # When it is delivered
    status, answer = send(api_stack, request)
    # Then it is refused as not a Stripe event (api.md: 5xx only for a transient failure), writing nothing
    assert (status, json.loads(answer)["error"]["code"]) == (400, "invalid_payload")
    assert api_stack.tables() == before
