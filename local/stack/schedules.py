"""What an EventBridge schedule sends a function, for the local stack's on-demand schedules."""

from __future__ import annotations

import time
import uuid
from typing import Any

from .functions import FunctionSpec
from .template import REGION

SCHEDULES_PATH = "/_local/schedules/"  # POST <path><LogicalId>: the function's schedule fires now


def scheduled_event(spec: FunctionSpec, account_id: str, now: float | None = None) -> dict[str, Any]:
    at = time.time() if now is None else now
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account_id,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at)),
        "region": REGION,
        "resources": [f"arn:aws:events:{REGION}:{account_id}:rule/{spec.name}-{spec.schedules[0]}"],
        "detail": {},
    }
