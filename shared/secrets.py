"""A project's Stripe key and webhook secret, kept only in Secrets Manager (domain rule 8).

Reads go through Powertools' SecretsProvider with a TTL cache, so the webhook's hot path does not
fetch the secret on every request. The webhook is unauthenticated and its caller chooses the project
id, so for it this container also remembers, for a bounded time and number, which projects have no
secret, and re-reads a secret by force at most once per REFRESH_EVERY_SECONDS per project.
"""

from __future__ import annotations

import json
import math
from collections import OrderedDict
from dataclasses import dataclass
from functools import cache
from time import monotonic
from typing import TYPE_CHECKING

import boto3
from aws_lambda_powertools.utilities.parameters import SecretsProvider
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from .budget import SECRETS_MANAGER
from .errors import ServiceUnavailable
from .settings import get_settings

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

MAX_UNKNOWN_REMEMBERED = 10_000  # a few MB at most, however many project ids callers make up
REFRESH_EVERY_SECONDS = 10


@dataclass(frozen=True)
class StripeSecrets:
    api_key: str
    webhook_secret: str

    def __repr__(self) -> str:  # never print the values
        return "StripeSecrets(api_key=***, webhook_secret=***)"


class SecretNotFound(Exception):
    pass


@cache
def client() -> SecretsManagerClient:
    limit = SECRETS_MANAGER  # the time budget's
    config = Config(
        connect_timeout=limit.connect_seconds,
        read_timeout=limit.read_seconds,
        retries={"mode": "standard", "total_max_attempts": limit.attempts},
    )
    return boto3.client("secretsmanager", config=config)


class _RecentlyMissing:
    """Project ids found without a secret, each for `unknown_project_cache_seconds`. Every entry
    lives as long, so insertion order is expiry order and the oldest is the one evicted when full."""

    def __init__(self) -> None:
        self._until: OrderedDict[str, float] = OrderedDict()

    def add(self, project_id: str) -> None:
        self._until.pop(project_id, None)
        self._until[project_id] = monotonic() + get_settings().unknown_project_cache_seconds
        if len(self._until) > MAX_UNKNOWN_REMEMBERED:
            self._until.popitem(last=False)

    def __contains__(self, project_id: str) -> bool:
        until = self._until.get(project_id)
        if until is None:
            return False
        if monotonic() < until:
            return True
        del self._until[project_id]
        return False

    def clear(self) -> None:
        self._until.clear()


class _Provider(SecretsProvider):
    """Powertools' provider, with the webhook's memory beside its cache: cleared with it (a new
    environment in tests, `delete`), as both describe the same secrets."""

    def __init__(self, boto3_client: SecretsManagerClient) -> None:
        super().__init__(boto3_client=boto3_client)
        self.missing = _RecentlyMissing()
        # One entry per project that has (had) a secret: bounded by the projects connected.
        self.refreshed_at: dict[str, float] = {}

    def clear_cache(self) -> None:
        super().clear_cache()  # type: ignore[no-untyped-call]
        self.missing.clear()
        self.refreshed_at.clear()


@cache
def provider() -> _Provider:
    return _Provider(client())


def secret_name(project_id: str) -> str:
    return f"{get_settings().secrets_prefix}projects/{project_id}"


def store(project_id: str, secrets: StripeSecrets) -> None:
    body = json.dumps({"api_key": secrets.api_key, "webhook_secret": secrets.webhook_secret})
    client().create_secret(
        Name=secret_name(project_id),
        SecretString=body,
        Description="Ripples: Stripe restricted key and webhook signing secret of one project",
        Tags=[{"Key": "ripples:project", "Value": project_id}],
    )


def load(project_id: str, *, remember_missing: bool = False) -> StripeSecrets:
    """The project's secrets, from the cache while fresh. With `remember_missing` (the webhook), a
    project without a secret is answered from memory for a while instead of by Secrets Manager."""
    return _load(project_id, force=False, remember_missing=remember_missing)


def refresh(project_id: str) -> StripeSecrets:
    """The webhook's secrets after a signature mismatch: read again, since a reconnect may have
    replaced them, unless this project's were read again less than REFRESH_EVERY_SECONDS ago (then
    the cached ones). A flood of bad signatures costs one read per interval; a rotation is still
    seen by the first mismatch after the interval (or when the cache expires)."""
    refreshed_at = provider().refreshed_at
    now = monotonic()
    force = now - refreshed_at.get(project_id, -math.inf) >= REFRESH_EVERY_SECONDS
    if force:
        refreshed_at[project_id] = now  # before reading: a failed read is not retried at once either
    return _load(project_id, force=force, remember_missing=True)


def _load(project_id: str, *, force: bool, remember_missing: bool) -> StripeSecrets:
    missing = provider().missing
    if remember_missing and project_id in missing:
        raise SecretNotFound(project_id)
    try:
        return _read(project_id, force=force)
    except SecretNotFound:
        # Only a secret that does not exist is remembered, never a transient failure (503s are
        # retried by Stripe and must reach Secrets Manager again). A project connected meanwhile is
        # reached once the entry expires: Stripe retries the 404s it got until then.
        if remember_missing:
            missing.add(project_id)
        raise


def _read(project_id: str, *, force: bool) -> StripeSecrets:
    try:
        value = provider().get(
            secret_name(project_id),
            transform="json",
            max_age=get_settings().secret_cache_seconds,
            force_fetch=force,
        )
    except GetParameterError as exc:
        # Powertools wraps every failure: only a missing secret means "not connected"; throttling or
        # an unreachable Secrets Manager is transient (503, so Stripe retries rather than gives up).
        cause = exc.__cause__ or exc.__context__
        if (
            isinstance(cause, ClientError)
            and cause.response.get("Error", {}).get("Code") != "ResourceNotFoundException"
        ):
            raise ServiceUnavailable("Secrets Manager is unavailable; retry.") from exc
        if isinstance(cause, BotoCoreError):
            raise ServiceUnavailable("Secrets Manager could not be reached; retry.") from exc
        raise SecretNotFound(project_id) from exc
    if not isinstance(value, dict):
        raise SecretNotFound(project_id)
    return StripeSecrets(api_key=value["api_key"], webhook_secret=value["webhook_secret"])


def delete(project_id: str) -> None:
    """Delete at once (no recovery window): a reconnect must be able to create the name again."""
    try:
        client().delete_secret(SecretId=secret_name(project_id), ForceDeleteWithoutRecovery=True)
    except client().exceptions.ResourceNotFoundException:
        pass
    provider().clear_cache()
