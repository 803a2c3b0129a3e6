"""Configuration, read once from the environment into a typed object (validated at first use)."""

from __future__ import annotations

import os
from functools import cache

from pydantic import BaseModel, ConfigDict, Field, field_validator


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True)

    integrations_table: str = Field(min_length=1)
    revenue_table: str = Field(min_length=1)
    secrets_prefix: str = Field(min_length=1)
    public_base_url: str = Field(min_length=1)
    stripe_api_base: str | None = None  # None: Stripe's own API
    secret_cache_seconds: int = 300
    # How long the webhook answers 404 for a project without a secret before asking Secrets Manager
    # again (per container): the cost of a made-up project id vs. the delay before a new one is reached.
    unknown_project_cache_seconds: int = Field(default=60, ge=0)
    backfill_queue_url: str = ""  # the functions that queue backfill pages have it
    # Stripe requests/s the backfill and reconcile may spend per account (all slices together):
    # None is the default share (10 live, 5 test), 0 unpaced (benchmarks only).
    stripe_rate_budget: float | None = Field(default=None, ge=0)
    backfill_slices_per_phase: int = Field(default=1, ge=1, le=8)  # planned; dense ones split (slices.FANOUT)
    # Slices of a phase side by side at most: a split makes no more children than this (slices.heads).
    backfill_max_heads: int = Field(default=8, ge=1, le=8)

    def rate_budget(self, mode: str) -> float:
        if self.stripe_rate_budget is not None:
            return self.stripe_rate_budget
        return 10.0 if mode == "live" else 5.0

    @field_validator("public_base_url", "stripe_api_base")
    @classmethod
    def _no_trailing_slash(cls, value: str | None) -> str | None:
        return value.rstrip("/") if value else None


@cache
def get_settings() -> Settings:
    env = os.environ
    return Settings(
        integrations_table=env.get("INTEGRATIONS_TABLE", ""),
        revenue_table=env.get("REVENUE_TABLE", ""),
        secrets_prefix=env.get("SECRETS_PREFIX", ""),
        public_base_url=env.get("PUBLIC_BASE_URL", ""),
        stripe_api_base=env.get("STRIPE_API_BASE") or None,
        secret_cache_seconds=int(env.get("SECRET_CACHE_SECONDS", "300")),
        unknown_project_cache_seconds=int(env.get("UNKNOWN_PROJECT_CACHE_SECONDS", "60")),
        backfill_queue_url=env.get("BACKFILL_QUEUE_URL", ""),
        stripe_rate_budget=float(env["STRIPE_RATE_BUDGET"]) if env.get("STRIPE_RATE_BUDGET") else None,
        backfill_slices_per_phase=int(env.get("BACKFILL_SLICES_PER_PHASE", "1")),
        backfill_max_heads=int(env.get("BACKFILL_MAX_HEADS", "8")),
    )
