"""End to end on the local stack over HTTP: a history paid before connecting is imported by the
backfill (through the stack's SQS poller and the backfill function), re-synced to the same numbers,
and disconnected with and without its data (domain rule 7, api.md)."""

from __future__ import annotations

import time
from typing import Any

from tests.e2e.conftest import Stack
from tests.e2e.test_walking_skeleton import pay_as


def integration(stack: Stack, project: str) -> dict[str, Any]:
    status, body = stack.call("GET", f"/projects/{project}/integrations/stripe", project=project)
    assert status == 200
    return dict(body)


def settled(stack: Stack, project: str, run: int) -> dict[str, Any]:
    """The integration once the run's backfill and any data removal are finished."""
    deadline = time.monotonic() + 60
    while True:
        shown = integration(stack, project)
        backfill, removal = shown["backfill"], shown.get("data_removal") or {}
        finished = backfill["run"] == run and backfill["status"] not in ("queued", "running")
        if finished and removal.get("status") != "running":
            return shown
        assert time.monotonic() < deadline, shown
        time.sleep(0.2)


def revenue_of(stack: Stack, project: str, visitor: str) -> dict[str, int]:
    status, body = stack.call("GET", f"/projects/{project}/visitors/{visitor}", project=project)
    assert status == 200, body
    return dict(body["lifetime_revenue"])


def test_history_imported_resynced_and_disconnected(stack: Stack) -> None:
    project = "e2e-history"
    account = stack.control.create_account()
    merchant = stack.control.client(account.secret_key)
    # Given a visitor, and payments made before the project connected
    assert stack.call("PUT", f"/projects/{project}/visitors/v-1", {"email": "old@example.com"}, project)[0] == 200
    charges = [pay_as(merchant, "old@example.com", amount) for amount in (1000, 2500, 400)]
    merchant.v1.refunds.create(params={"charge": charges[0], "amount": 300})
    # When the project connects, the backfill imports them
    status, body = stack.call(
        "POST", f"/projects/{project}/integrations/stripe", {"api_key": account.restricted_key}, project
    )
    assert status == 201, body
    done = settled(stack, project, 1)
    assert done["backfill"]["status"] == "completed"
    assert done["backfill"]["charges_imported"] == 3
    assert revenue_of(stack, project, "v-1") == {"usd": 3600}
    # A re-sync clears and imports again: the same numbers, never twice
    status, body = stack.call("POST", f"/projects/{project}/integrations/stripe/resync", None, project)
    assert (status, body["backfill"]["run"], body["backfill"]["status"]) == (202, 2, "queued")
    done = settled(stack, project, 2)
    assert (done["backfill"]["status"], done["data_removal"]["status"]) == ("completed", "completed")
    assert revenue_of(stack, project, "v-1") == {"usd": 3600}
    status, timeline = stack.call("GET", f"/projects/{project}/visitors/v-1/timeline", project=project)
    assert sorted(e["revenue"] for e in timeline["events"]) == [-300, 400, 1000, 2500]
    # Disconnect removing the data: the endpoint is gone, then the revenue
    path = f"/projects/{project}/integrations/stripe?keep_data=false"
    assert stack.call("DELETE", path, None, project) == (200, {"status": "disconnected", "data_removed": True})
    assert merchant.v1.webhook_endpoints.list().data == []
    deadline = time.monotonic() + 30
    while revenue_of(stack, project, "v-1"):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    status, timeline = stack.call("GET", f"/projects/{project}/visitors/v-1/timeline", project=project)
    assert timeline["events"] == []
    assert stack.call("DELETE", path, None, project)[1]["error"]["code"] == "not_connected"
