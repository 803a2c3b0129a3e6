"""The reconcile's time: a page's worst case kept in reserve, room for many pages, an hourly schedule."""

from __future__ import annotations

from shared import budget
from shared.reconcile import sweep
from tests.deploy.test_template import deployed, functions


def test_a_sweep_keeps_a_pages_worth_of_time_when_it_begins_one() -> None:
    assert budget.PATHS["ReconcileFunction"].worst_seconds <= sweep.RESERVE_SECONDS
    timeout = functions()["ReconcileFunction"]["Timeout"]
    assert timeout >= sweep.RESERVE_SECONDS + 2 * sweep.PROJECT_SECONDS  # room for projects in a row


def test_the_reconcile_runs_on_its_schedule() -> None:
    template = deployed()
    (rule,) = template.resources_of_type("AWS::Events::Rule")
    properties = template.properties(rule)
    assert properties["ScheduleExpression"] == "rate(1 hour)"
    (target,) = properties["Targets"]
    assert target["Arn"] == template.arn("ReconcileFunction")
