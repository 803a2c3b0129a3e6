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
