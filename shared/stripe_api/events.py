"""The Stripe event types Ripples processes: what webhook endpoints subscribe to."""

PROCESSED_EVENT_TYPES = (
    "charge.succeeded",
    "charge.captured",
    "charge.refunded",
    "checkout.session.completed",
    "checkout.session.async_payment_succeeded",
    "invoice.paid",
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
)
# Never `invoice.created`: Stripe waits for a 2xx to it before charging the merchant's customers.

# What the engine reads of each processed object without a default: a signed event whose object
# lacks one (or has it of another type) is not a Stripe event we can book (400, never a 500 that
# Stripe would retry for three days).
REQUIRED_FIELDS: dict[str, dict[str, type]] = {
    "charge.": {"id": str, "created": int, "currency": str, "amount": int},
    "checkout.session.": {"id": str, "created": int},
    "invoice.": {"id": str},
    "customer.subscription.": {"id": str, "created": int, "status": str},
}
