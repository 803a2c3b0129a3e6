"""A project's Stripe key and webhook secret, kept only in Secrets Manager (domain rule 8).

Reads go through Powertools' SecretsProvider with a TTL cache, so the webhook's hot path does not
fetch the secret on every request.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

import boto3
from aws_lambda_powertools.utilities.parameters import SecretsProvider
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError
from botocore.exceptions import BotoCoreError, ClientError

from .errors import ServiceUnavailable
from .settings import get_settings

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient


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
    return boto3.client("secretsmanager")


@cache
def provider() -> SecretsProvider:
    return SecretsProvider(boto3_client=client())


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


def load(project_id: str, *, fresh: bool = False) -> StripeSecrets:
    """The project's secrets, from the cache unless `fresh` (e.g. after a signature mismatch)."""
    try:
        value = provider().get(
            secret_name(project_id),
            transform="json",
            max_age=get_settings().secret_cache_seconds,
            force_fetch=fresh,
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
    provider().clear_cache()  # type: ignore[no-untyped-call]
