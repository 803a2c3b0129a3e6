"""Unix seconds as the ISO 8601 UTC strings of the HTTP contract ("2026-11-27T14:00:00Z")."""

from __future__ import annotations

from datetime import UTC, datetime


def iso_seconds(epoch: int | float) -> str:
    return datetime.fromtimestamp(int(epoch), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_now() -> str:
    """Now, to the second, as the contract's ISO 8601 UTC string."""
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
