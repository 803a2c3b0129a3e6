"""How visitors are named in Stripe objects and how emails match (domain rule 2), in one place."""

from __future__ import annotations

from typing import Any

VISITOR_METADATA_KEY = "ripples_visitor_id"  # metadata key on sessions, charges, customers, subscriptions


def email_key(email: str | None) -> str | None:
    """Emails match trimmed and case-insensitively; None for no email (or only blanks)."""
    if not email:
        return None
    key = email.strip().lower()
    return key or None


def visitor_hint(value: Any) -> str | None:
    """A visitor id named by metadata or client_reference_id, if it could be one (trimmed)."""
    if not isinstance(value, str):
        return None
    value = value.strip()
    return value if 0 < len(value) <= 128 else None
