"""The Integration: a project's connection to one Stripe account (no secrets: those live apart)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict

from ..errors import InvalidKeyFormat

_KEY = re.compile(r"(rk|sk)_(live|test)_[A-Za-z0-9]{8,}")


class ConnectRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    api_key: str


@dataclass(frozen=True)
class StripeKey:
    value: str
    kind: str  # rk | sk
    mode: str  # live | test

    @property
    def hint(self) -> str:
        """`rk_test_...a1b2`: the prefix through its second underscore and the last four characters."""
        prefix = self.value[: self.value.index("_", 3) + 1]
        return f"{prefix}...{self.value[-4:]}"

    def __repr__(self) -> str:
        return f"StripeKey({self.hint})"


def parse_key(value: str) -> StripeKey:
    value = value.strip()
    if value.startswith("pk_"):
        raise InvalidKeyFormat(
            "This is a publishable key (pk_): it cannot read payments. Paste a restricted key (rk_live_/rk_test_)."
        )
    if not _KEY.fullmatch(value):
        raise InvalidKeyFormat("Expected a Stripe restricted key (rk_live_... or rk_test_...).")
    return StripeKey(value, value[:2], value[3 : value.index("_", 3)])


@dataclass
class Integration:
    project_id: str
    status: str  # connected | disconnected | error
    mode: str
    key_hint: str
    webhook_endpoint_id: str
    connected_at: str
    last_event_at: str | None = None
    backfill: dict[str, Any] | None = None  # the current run's progress (shared.backfill.progress)
    data_removal: dict[str, Any] | None = None  # shared.backfill.removal: run, status, counts
    reconcile: dict[str, Any] | None = None  # shared.reconcile.state: last sweep, errors, endpoint
    warnings: list[str] = field(default_factory=list)

    def view(self) -> dict[str, Any]:
        return {"provider": "stripe", **self.__dict__}


DISCONNECTED_VIEW = {"provider": "stripe", "status": "disconnected"}
FULL_ACCESS_KEY_WARNING = (
    "This is a secret key (sk_) with access to everything in the Stripe account. "
    "Create a restricted key with only the permissions Ripples needs and reconnect with it."
)
