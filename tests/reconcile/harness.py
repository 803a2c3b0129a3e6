"""A merchant whose webhooks reach a recording endpoint: each delivery forwarded to the webhook
handler or dropped, as a test decides; the scheduled reconcile invoked as EventBridge would."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import boto3
import stripe

from functions.reconcile.app import lambda_handler as reconcile_handler
from functions.stripe_webhook.app import lambda_handler as webhook_handler
from functions.visitor_api.app import lambda_handler as visitor_handler
from local.iam.identity import acting_as
from local.stripe_emulator.control_client import EmulatorAccount, EmulatorControl
from local.stripe_emulator.webhooks import sign
from shared.integrations import store
from shared.integrations.connect import connect
from shared.integrations.models import Integration
from shared.revenue import keys
from tests.apigw import http_event, response_json
from tests.conftest import AwsEnv, FakeLambdaContext, Received, Receiver
from tests.revenue_checks import scan

WEBHOOK = "/webhooks/stripe/{project_id}"
VISITOR = "/projects/{project_id}/visitors/{visitor_id}"
TIMELINE = VISITOR + "/timeline"


class ReconcileContext(FakeLambdaContext):
    """The reconcile function's context: its whole timeout (template.yaml) ahead."""

    def __init__(self, remaining_seconds: float = 900.0) -> None:
        super().__init__(function_name="reconcile")
        self.remaining_seconds = remaining_seconds

    def get_remaining_time_in_millis(self) -> int:
        return int(self.remaining_seconds * 1000)


def reconcile(remaining_seconds: float = 900.0) -> dict[str, int]:
    """One scheduled invocation of the reconcile function; its summary."""
    event = {"detail-type": "Scheduled Event", "source": "aws.events", "time": "2026-11-30T12:00:00Z"}
    summary: dict[str, int] = reconcile_handler(event, ReconcileContext(remaining_seconds))  # type: ignore[arg-type]
    return summary


@dataclass
class Merchant:
    """A project connected to an emulator account whose endpoint is the test's receiver."""

    project: str
    account: EmulatorAccount
    client: stripe.StripeClient  # the merchant's own (secret key)
    control: EmulatorControl
    receiver: Receiver
    aws: AwsEnv

    # ---- Stripe, as the merchant and their customers use it --------------------------------------

    def pay(self, amount: int, email: str = "buyer@example.com") -> str:
        """A customer with `email` pays `amount` (usd): the charge's id."""
        customer = self.client.v1.customers.create(params={"email": email}).id
        pi = self.client.v1.payment_intents.create(
            params={
                "amount": amount,
                "currency": "usd",
                "customer": customer,
                "confirm": True,
                "payment_method": "pm_card_visa",
            }
        )
        assert isinstance(pi.latest_charge, str)
        return pi.latest_charge

    def refund(self, charge: str, amount: int) -> None:
        self.client.v1.refunds.create(params={"charge": charge, "amount": amount})

    def endpoint(self, endpoint_id: str) -> stripe.WebhookEndpoint:
        return self.client.v1.webhook_endpoints.retrieve(endpoint_id)

    # ---- webhooks: Stripe's deliveries, forwarded or dropped -----------------------------------

    def deliveries(self) -> list[Received]:
        """Every delivery so far, once the emulator has none pending."""
        self.control.wait_for_deliveries(self.account.id)
        with self.receiver.lock:
            return list(self.receiver.received)

    def deliveries_of(self, event_type: str, charge: str) -> list[Received]:
        return [
            d for d in self.deliveries() if d.event["type"] == event_type and d.event["data"]["object"]["id"] == charge
        ]

    def forward(self, delivery: Received, *, signed_now: bool = False) -> int:
        """The delivery to the webhook handler as Stripe sent it (body and signature), or signed
        again now with the stored secret (a delivery dated by a clock the test moved): the status."""
        signature = delivery.headers["Stripe-Signature"]
        if signed_now:
            signature = sign(delivery.body, self.webhook_secret(), int(time.time()))
        event = http_event(
            "POST",
            WEBHOOK,
            {"project_id": self.project},
            body=delivery.body.decode(),
            headers={"Stripe-Signature": signature},
        )
        response = webhook_handler(event, FakeLambdaContext(function_name="stripe-webhook"))
        status: int = response["statusCode"]
        return status

    # ---- what Ripples shows ----------------------------------------------------------------------

    def integration(self) -> Integration:
        integration = store.get(self.project)
        assert integration is not None
        return integration

    def webhook_secret(self) -> str:
        secret = boto3.client("secretsmanager").get_secret_value(
            SecretId=f"{self.aws.secrets_prefix}projects/{self.project}"
        )
        value: str = json.loads(secret["SecretString"])["webhook_secret"]
        return value

    def put_visitor(self, visitor_id: str, **body: Any) -> None:
        params = {"project_id": self.project, "visitor_id": visitor_id}
        event = http_event("PUT", VISITOR, params, body=body, projects=[self.project])
        response = visitor_handler(event, FakeLambdaContext())
        assert response["statusCode"] == 200, response_json(response)

    def timeline(self, visitor_id: str) -> list[dict[str, Any]]:
        params = {"project_id": self.project, "visitor_id": visitor_id}
        event = http_event("GET", TIMELINE, params, projects=[self.project], query={"limit": "100"})
        response = visitor_handler(event, FakeLambdaContext())
        assert response["statusCode"] == 200, response_json(response)
        events: list[dict[str, Any]] = response_json(response)["events"]
        return events

    def ledger(self) -> dict[str, dict[str, Any]]:
        """The project's ledger entries by charge id."""
        prefix = f"P#{self.project}#"
        return {
            item["charge_id"]: item
            for item in scan(self.aws.revenue_table)
            if item["sk"] == keys.LEDGER and item["pk"].startswith(prefix)
        }


def open_merchant(
    project: str,
    account: EmulatorAccount,
    api_key: str,
    control: EmulatorControl,
    receiver: Receiver,
    aws: AwsEnv,
) -> Merchant:
    """Connect `project` with `api_key` (PUBLIC_BASE_URL must be the receiver's)."""
    with acting_as("IntegrationApiFunction"):
        connect(project, api_key)
    control.delivery(account.id, retries=0)
    return Merchant(project, account, control.client(account.secret_key), control, receiver, aws)
