"""Each function's role in template.yaml is what its code needs: every call allowed, every action used.

The enforcement itself (local.iam, installed by the `aws` fixture and the local stack) fails any test
in which a function makes a call its role does not allow. Here a shop's whole story (connect, tracker,
payments, a link moved by a session, refunds, a subscription, reports) runs through the handlers, and
then each action of each role is removed in turn: some call of the story must be denied without it,
so removing any needed permission from template.yaml fails `make test`, and a permission no call
needs is reported as surplus (least privilege).
"""

from __future__ import annotations

import copy
import time
from typing import Any
from unittest import mock

import pytest

from functions.integration_api.app import lambda_handler as integration_handler
from functions.stripe_webhook.app import lambda_handler as webhook_handler
from local.iam import enforcement
from local.iam.policy import Decision, Role
from local.stack.runner import local_parameters
from local.stack.template import Template, load_template
from local.stripe_emulator.webhooks import sign
from shared import secrets
from shared.backfill import queue, runner
from shared.errors import ServiceUnavailable
from shared.integrations import store
from shared.revenue import keys
from tests import raw
from tests.apigw import http_event, response_json
from tests.backfill.harness import drain
from tests.conftest import FakeLambdaContext
from tests.reconcile.harness import reconcile
from tests.revenue_checks import ledger
from tests.scenarios.harness import WEBHOOK, Shop, Shops, event_object, event_type
from tests.scenarios.harness import shop_fixture as shop_fixture  # the `shop` fixture
from tests.scenarios.harness import shops_fixture as shops_fixture  # the `shops` fixture

INTEGRATION = "/projects/{project_id}/integrations/stripe"


def status(project: str) -> dict[str, Any]:
    event = http_event("GET", INTEGRATION, {"project_id": project}, projects=[project])
    response = integration_handler(event, FakeLambdaContext())
    assert response["statusCode"] == 200
    body: dict[str, Any] = response_json(response)
    return body


def connect_through_the_api(shops: Shops, project: str, expect: int = 201) -> None:
    body = {"api_key": shops.account.restricted_key}
    event = http_event("POST", INTEGRATION, {"project_id": project}, body=body, projects=[project])
    response = integration_handler(event, FakeLambdaContext())
    assert response["statusCode"] == expect, response_json(response)


def dashboard(method: str, project: str, path: str = "", query: dict[str, str] | None = None) -> tuple[int, Any]:
    event = http_event(method, INTEGRATION + path, {"project_id": project}, projects=[project], query=query)
    response = integration_handler(event, FakeLambdaContext())
    return response["statusCode"], response_json(response)


def story(shops: Shops, shop: Shop) -> None:
    """Every kind of call the functions make, through their handlers."""
    # The dashboard connects a second project and reads its status
    connect_through_the_api(shops, "shop-2")
    assert status("shop-2")["status"] == "connected"
    # A connect failing undoes the steps before it (the secret deleted; the record too, once saved)
    with mock.patch.object(store, "create", side_effect=ServiceUnavailable("down")):
        connect_through_the_api(shops, "shop-3", expect=503)
    with mock.patch.object(queue, "send", side_effect=ServiceUnavailable("down")):
        connect_through_the_api(shops, "shop-3", expect=503)
    assert status("shop-3")["status"] == "disconnected"
    # The tracker: a visitor identified by email, another anonymous
    shop.put_visitor("v-ann", email="ann@example.com", acquisition={"source": "google"})
    shop.put_visitor("v-bob", acquisition={"source": "newsletter"})
    # ann's customer pays (email match), then buys through a Checkout Session naming bob, then pays again
    customer = shop.client.v1.customers.create(params={"email": "ann@example.com"}).id
    shop.pay(4000, customer=customer)
    early = shop.new_events()
    shop.later(60)
    session = shop.checkout("payment", shop.one_time(1500), customer=customer, metadata={"ripples_visitor_id": "v-bob"})
    shop.complete_checkout(session)
    shop.later(60)
    shop.pay(700, customer=customer)
    # The later events arrive first: the session links the customer to bob, the last payment follows
    shop.deliver_all(shop.new_events())
    assert shop.lifetime("v-bob") == {"usd": 2200}
    # The earliest payment arrives late: the link moves to ann, and the last payment with it
    shop.deliver_all(early)
    assert (shop.lifetime("v-ann"), shop.lifetime("v-bob")) == ({"usd": 4700}, {"usd": 1500})
    # A refund of the first payment
    charges = [c.id for c in shop.client.v1.charges.list(params={"customer": customer}).data]
    shop.client.v1.refunds.create(params={"charge": charges[-1], "amount": 1000})
    shop.deliver_all(shop.new_events())
    # A subscription bought through Checkout by a new customer, renewed
    price = shop.monthly_price(900, "Pro")
    bought = shop.checkout("subscription", [{"price": price, "quantity": 1}], metadata={"ripples_visitor_id": "v-sub"})
    shop.complete_checkout(bought, email="sub@example.com")
    events = shop.new_events()
    shop.deliver_all(events)
    (subscription,) = {event_object(e)["id"] for e in events if event_type(e).startswith("customer.subscription")}
    shop.renew(subscription)
    shop.deliver_all(shop.new_events())
    # The visitor named by the session appears later: re-attribution moves its payments to it. Its
    # customer was stored before its facts were read from Stripe (as by an earlier version), so the
    # re-attribution reads them with the project's key.
    (subscriber,) = {event_object(e)["customer"] for e in events if event_type(e).startswith("customer.subscription")}
    raw.client().update_item(
        TableName=shop.aws.revenue_table,
        Key=keys.customer_link(shop.project, subscriber),
        UpdateExpression="SET fetched = :no",
        ExpressionAttributeValues={":no": {"BOOL": False}},
    )
    secrets.provider().clear_cache()  # (the webhook's cache: another process on AWS)
    shop.put_visitor("v-sub", email="sub@example.com")
    assert shop.lifetime("v-sub") == {"usd": 1800}
    # ann changes her email: re-attribution decides her customers again
    shop.put_visitor("v-ann", email="other@example.com")
    # The dashboard: timelines, a visitor, the revenue report
    assert shop.timeline("v-bob")
    assert shop.visitor("v-sub")["plan"]["status"] == "active"
    report = shop.revenue()
    assert report["totals"]
    # A project connected to the account after all this imports it from history: its visitors
    # first, so the import attributes; its charges before its sessions (phases may run in any
    # order), so the sessions move what the charges booked; one page refused by Stripe's rate limit
    imported = shops.open("shop-4")
    imported.put_visitor("v-ann", email="ann@example.com")
    imported.put_visitor("v-bob")
    drain(only=lambda message: message["project_id"] != "shop-4")
    shops.control.fault(shops.account.id, "GET /v1/charges", status=429, count=1)
    drain(only=lambda message: message["kind"] == "start" or message["phase"] == "charges")
    drain()
    assert status("shop-4")["backfill"]["status"] == "completed"
    assert imported.lifetime("v-ann")
    # The dashboard re-syncs it (its data removed in pages, then imported again), then disconnects
    # it removing the data, and shop-2 keeping its own
    assert dashboard("POST", "shop-4", "/resync")[0] == 202
    drain()
    assert status("shop-4")["backfill"] | {"run": 2, "status": "completed"} == status("shop-4")["backfill"]
    assert dashboard("DELETE", "shop-4", query={"keep_data": "false"}) == (
        200,
        {"status": "disconnected", "data_removed": True},
    )
    assert dashboard("DELETE", "shop-2")[0] == 200
    drain()
    assert imported.lifetime("v-ann") == {}
    # The scheduled reconcile: a project connected after all this, whose webhooks never arrived,
    # books the account's recent payments (its endpoint, disabled for the tests, enabled again);
    # shop-1's endpoint deleted meanwhile is recreated, its new secret stored; a lost payment booked
    late = shops.open("shop-5")
    late.put_visitor("v-ann", email="ann@example.com")
    shop.client.v1.webhook_endpoints.delete(status("shop-1")["webhook_endpoint_id"])
    _, lost = shop.pay(1200, customer=customer)
    # (a Checkout payment of which only the charge's webhooks arrived, booked on the visitor its
    # email names: the session, read by the reconcile, moves it to the one the session names)
    shop.put_visitor("v-mail", email="mail@example.com")
    shop.put_visitor("v-named")
    paid = shop.checkout("payment", shop.one_time(900), metadata={"ripples_visitor_id": "v-named"})
    shop.complete_checkout(paid, email="mail@example.com")
    shop.deliver_all([e for e in shop.new_events() if event_type(e).startswith("charge.")])
    assert shop.lifetime("v-mail") == {"usd": 900}
    assert reconcile()["swept"] == 2
    assert (shop.lifetime("v-mail"), shop.lifetime("v-named")) == ({}, {"usd": 900})
    assert status("shop-1")["reconcile"]["endpoint_recreated_at"]
    assert status("shop-5")["reconcile"]["endpoint_repaired_at"]
    assert ledger(shop.aws.revenue_table, lost) is not None
    assert late.lifetime("v-ann")
    shop.invariant()


@pytest.fixture
def observed(shops: Shops, shop: Shop, monkeypatch: pytest.MonkeyPatch) -> enforcement.Enforcer:
    monkeypatch.setattr(runner, "RETRY_DELAYS", (0,))
    active = enforcement.enforcer()
    assert active is not None, "the aws fixture installs the template's roles"
    story(shops, shop)
    return active


def needing(role: Role, allowed: set[tuple[str, str]]) -> list[str]:
    """The role's actions without which some of these calls would be denied."""
    surplus = []
    for index, statement in enumerate(role.statements):
        for action in statement.actions:
            mutated = role.without(index, action)
            if all(mutated.decide(a, r) is Decision.ALLOWED for a, r in allowed):
                surplus.append(f"{action} on {', '.join(statement.resources)}")
    return surplus


def test_every_permission_of_every_role_is_needed_and_enough(observed: enforcement.Enforcer) -> None:
    for function, role in sorted(observed.roles.items()):
        allowed = observed.allowed(function)
        if not role.statements:  # no AWS access of its own (OpenApiFunction): nothing to need or cover
            assert not allowed, f"{function} made AWS calls with a role that grants none"
            continue
        assert allowed, f"{function} made no AWS call in the story: it is not covered"
        assert not needing(role, allowed), (
            f"{function}'s role grants what no call of the story needs (remove it, or cover it): "
            f"{needing(role, allowed)}"
        )


def test_a_permission_deleted_from_the_template_fails_the_call_as_aws_would(shop: Shop) -> None:
    # Given template.yaml without the webhook's one Secrets Manager permission
    data = copy.deepcopy(load_template())
    policies = data["Resources"]["StripeWebhookFunction"]["Properties"]["Policies"]
    for policy in policies:
        policy["Statement"] = [s for s in policy["Statement"] if "secretsmanager" not in str(s["Action"])]
    parameters = local_parameters(data, public_base_url="https://hooks.ripples.test", stripe_api_base="", overrides={})
    enforcement.install(Template(data, parameters, stack_name="test"))
    # When Stripe delivers an event (the key is read before the signature is checked)
    customer = shop.client.v1.customers.create(params={"email": "ann@example.com"}).id
    shop.pay(4000, customer=customer)
    (body, *_) = shop.new_events()
    headers = {"Stripe-Signature": sign(body, shop.webhook_secret, int(time.time()))}
    event = http_event("POST", WEBHOOK, {"project_id": shop.project}, body=body.decode(), headers=headers)
    response = webhook_handler(event, FakeLambdaContext())
    # Then the call is denied before it is sent, the webhook answers 503 (Stripe retries), and the
    # denial names the function, the action and the secret
    assert response["statusCode"] == 503
    (denial,) = enforcement.enforcer().take_denials()  # type: ignore[union-attr]
    assert (denial.function, denial.action) == ("StripeWebhookFunction", "secretsmanager:GetSecretValue")
    assert ":secret:ripples-stripe/dev/projects/shop-1-" in denial.resource
