"""The pynamodb models bound to the configured tables: lazily, once per process (never at import).

Every model of a table shares one connection, so one botocore client carries all of its requests
(its retries, timeouts and the hooks tests count requests with). The endpoint comes from the
environment like any AWS client's (AWS_ENDPOINT_URL locally, AWS's own when deployed).
"""

from __future__ import annotations

import os
from functools import cache

from botocore.client import BaseClient
from pynamodb.connection import Connection
from pynamodb.models import Model

from .backfill import items as _backfill_items  # noqa: F401 - its models are RevenueItems bound below
from .budget import DYNAMODB
from .integrations.items import IntegrationItem
from .revenue.items import LedgerItem, ProfileBooking, RevenueItem
from .settings import get_settings

# Throttling and 5xx are retried by botocore itself ("standard" mode), within the time budget.
_META = {
    "max_retry_attempts": DYNAMODB.attempts - 1,
    "connect_timeout_seconds": DYNAMODB.connect_seconds,
    "read_timeout_seconds": DYNAMODB.read_seconds,
}


@cache
def bind() -> None:
    settings = get_settings()
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    # (models of one table, the one whose schema names the table's indexes)
    tables: list[tuple[list[type[Model]], type[Model], str]] = [
        ([*_family(RevenueItem), ProfileBooking], LedgerItem, settings.revenue_table),
        ([IntegrationItem], IntegrationItem, settings.integrations_table),
    ]
    for models, with_indexes, table in tables:
        for model in models:
            model.Meta.table_name = table
            model.Meta.region = region
            for name, value in _META.items():
                setattr(model.Meta, name, value)
            model._connection = None
        connection = with_indexes._get_connection()
        for model in models:
            model._connection = connection


def _family(model: type[Model]) -> list[type[Model]]:
    family, pending = [], [model]
    while pending:
        cls = pending.pop()
        family.append(cls)
        pending.extend(cls.__subclasses__())
    return family


def revenue_connection() -> Connection:
    """The connection transactions on the revenue table are sent with."""
    bind()
    return RevenueItem._get_connection().connection


def clients() -> list[BaseClient]:
    """The botocore clients that carry every DynamoDB request of the functions."""
    bind()
    return [RevenueItem._get_connection().connection.client, IntegrationItem._get_connection().connection.client]
