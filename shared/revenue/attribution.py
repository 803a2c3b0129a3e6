"""Rule 2 of domain.md, the part that needs no late evidence: which visitor a charge belongs to.

Plain functions over what the data layer loaded; no I/O.
"""

from __future__ import annotations

from .models import UNATTRIBUTED, Attribution, ChargeFacts, CustomerRecord, email_key


def candidate_emails(charge: ChargeFacts, customer: CustomerRecord | None) -> list[str]:
    """The payment's emails in rule 2's order, normalised, without repeats."""
    ordered = [customer.email if customer else None, charge.billing_email, charge.receipt_email]
    keys = [email_key(e) for e in ordered]
    return list(dict.fromkeys(k for k in keys if k))


def attribute(charge: ChargeFacts, customer: CustomerRecord | None, heads: dict[str, str]) -> Attribution:
    """Tier 3 when the customer is linked, else tier 2 by the first email a visitor identified with.

    `heads` maps an email key to the visitor identified first with it.
    """
    if customer is not None and customer.visitor_id is not None:
        return Attribution(customer.visitor_id, 3)
    for key in candidate_emails(charge, customer):
        if key in heads:
            return Attribution(heads[key], 2)
    return UNATTRIBUTED
