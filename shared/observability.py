"""Logger, tracer and metrics shared by every function (Powertools; service name from the env).

Every metric's name is here: dashboards and the alarms in template.yaml refer to these names.
"""

from enum import StrEnum

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

logger = Logger()
tracer = Tracer()
metrics = Metrics()


class Metric(StrEnum):
    CHARGES_BOOKED = "ChargesBooked"
    CHARGES_REATTRIBUTED = "ChargesReattributed"
    REFUNDS_BOOKED = "RefundsBooked"
    DUPLICATE_EVENTS = "DuplicateEvents"
    STRIPE_CUSTOMER_FETCHES = "StripeCustomerFetches"
    STRIPE_INVOICE_PAYMENT_FETCHES = "StripeInvoicePaymentFetches"
    VISITORS_CREATED = "VisitorsCreated"
    VISITOR_EMAILS_SET = "VisitorEmailsSet"
    INTEGRATIONS_CONNECTED = "IntegrationsConnected"
    WEBHOOK_SERVER_ERRORS = "WebhookServerErrors"  # alarmed: WebhookServerErrorsAlarm
    ATTRIBUTION_TIER_0 = "AttributionTier0"  # unattributed
    ATTRIBUTION_TIER_1 = "AttributionTier1"
    ATTRIBUTION_TIER_2 = "AttributionTier2"
    ATTRIBUTION_TIER_3 = "AttributionTier3"

    @classmethod
    def tier(cls, tier: int | None) -> "Metric":
        return cls(f"AttributionTier{tier or 0}")


def count(metric: Metric, value: int = 1) -> None:
    metrics.add_metric(name=metric, unit=MetricUnit.Count, value=value)
