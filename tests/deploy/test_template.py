"""template.yaml as AWS would deploy it (expanded by aws-sam-translator): timeouts that add up, logs
kept for a bounded time, the unauthenticated route bounded, alarms where money could be delayed."""

from __future__ import annotations

from functools import cache
from typing import Any

import pytest

from local.iam.roles import expand
from local.stack.runner import local_parameters
from local.stack.template import Template, load_template
from shared import budget
from shared.observability import Metric

WEBHOOK_ROUTE = "POST /webhooks/stripe/{project_id}"
API_GATEWAY_SECONDS = 30  # the most an HTTP API waits for its integration
# Functions that call nothing outside (no AWS permission, no Stripe): no chain of calls to budget.
NO_OUTSIDE_CALLS = {"OpenApiFunction"}


@cache
def deployed() -> Template:
    data = load_template()
    parameters = local_parameters(data, public_base_url="https://hooks.example", stripe_api_base="", overrides={})
    return expand(Template(data, parameters, stack_name="prod"))


def functions() -> dict[str, dict[str, Any]]:
    template = deployed()
    return {name: template.properties(name) for name in template.resources_of_type("AWS::Lambda::Function")}


def of_type(kind: str) -> dict[str, dict[str, Any]]:
    template = deployed()
    return {name: template.properties(name) for name in template.resources_of_type(kind)}


def test_every_function_has_a_budget_and_a_timeout_above_its_worst_case() -> None:
    assert functions().keys() == budget.PATHS.keys() | NO_OUTSIDE_CALLS
    for name, properties in functions().items():
        worst = budget.PATHS[name].worst_seconds if name in budget.PATHS else 0.0
        assert properties["Timeout"] >= worst, f"{name}: Timeout {properties['Timeout']} s < worst case {worst:.1f} s"


def test_the_budget_counts_what_the_clients_are_built_with() -> None:
    from shared import tables
    from shared.revenue import engine

    assert engine.MAX_ATTEMPTS == budget.DECISION_ATTEMPTS
    assert {
        "max_retry_attempts": budget.DYNAMODB.attempts - 1,
        "connect_timeout_seconds": budget.DYNAMODB.connect_seconds,
        "read_timeout_seconds": budget.DYNAMODB.read_seconds,
    } == tables._META
    # a Stripe call's worst case: its attempts at the SDK's backoff (0.5 s, then doubling, at most 5 s)
    assert budget.STRIPE.backoff_seconds >= sum(min(0.5 * 2**n, 5) for n in range(budget.STRIPE.attempts - 1))


def test_a_queue_consumer_leaves_a_message_invisible_for_six_of_its_timeouts() -> None:
    template = deployed()
    queues = of_type("AWS::SQS::Queue")
    for name, properties in of_type("AWS::Lambda::EventSourceMapping").items():
        arn = properties["EventSourceArn"]
        (queue,) = [q for q in queues if template.arn(q) == arn]
        function = next(f for f, p in functions().items() if template.physical_name(f) == properties["FunctionName"])
        visibility = int(queues[queue].get("VisibilityTimeout", 30))
        assert visibility >= 6 * functions()[function]["Timeout"], f"{name}: {queue} visibility {visibility} s"
        assert properties.get("FunctionResponseTypes") == ["ReportBatchItemFailures"], name


def test_every_dead_letter_queue_is_alarmed() -> None:
    queues = of_type("AWS::SQS::Queue")
    dead_letters = {
        str(properties["RedrivePolicy"]["deadLetterTargetArn"])
        for properties in queues.values()
        if "RedrivePolicy" in properties
    }
    watched = {
        dimension["Value"]
        for alarm in of_type("AWS::CloudWatch::Alarm").values()
        if alarm["Namespace"] == "AWS/SQS"
        for dimension in alarm.get("Dimensions", [])
        if dimension["Name"] == "QueueName"
    }
    for arn in dead_letters:
        assert arn.rsplit(":", 1)[1] in watched, f"no alarm on the dead-letter queue {arn}"


def test_every_function_logs_to_its_own_group_kept_for_a_bounded_time() -> None:
    groups = of_type("AWS::Logs::LogGroup")
    named = {properties["LogGroupName"]: properties for properties in groups.values()}
    for name, properties in functions().items():
        group = properties["LoggingConfig"]["LogGroup"]
        assert group in named, f"{name} logs to {group}, which the template does not create"
        assert int(named[group]["RetentionInDays"]) <= 365


def test_the_unauthenticated_route_is_bounded() -> None:
    (stage,) = of_type("AWS::ApiGatewayV2::Stage").values()
    webhook = stage["RouteSettings"][WEBHOOK_ROUTE]
    assert int(webhook["ThrottlingRateLimit"]) > 0
    assert int(webhook["ThrottlingBurstLimit"]) > 0
    default = stage["DefaultRouteSettings"]
    assert int(default["ThrottlingRateLimit"]) > 0
    assert int(default["ThrottlingBurstLimit"]) > 0
    webhook_function = functions()["StripeWebhookFunction"]
    assert int(webhook_function["ReservedConcurrentExecutions"]) >= 1


@pytest.mark.parametrize(
    ("namespace", "metric"),
    [("RipplesStripe", Metric.WEBHOOK_SERVER_ERRORS.value), ("AWS/Lambda", "Errors"), ("AWS/Lambda", "Throttles")],
)
def test_every_5xx_of_the_webhook_route_is_alarmed(namespace: str, metric: str) -> None:
    template = deployed()
    alarms = [
        a
        for a in of_type("AWS::CloudWatch::Alarm").values()
        if (a["Namespace"], a["MetricName"]) == (namespace, metric)
    ]
    assert alarms, f"no alarm on {namespace} {metric}"
    (alarm,) = alarms
    dimensions = {d["Name"]: d["Value"] for d in alarm["Dimensions"]}
    webhook = functions()["StripeWebhookFunction"]
    if namespace == "AWS/Lambda":
        assert dimensions == {"FunctionName": template.physical_name("StripeWebhookFunction")}
    else:  # Powertools' EMF metrics: the function's namespace, the service as their one dimension
        variables = webhook["Environment"]["Variables"]
        assert namespace == variables["POWERTOOLS_METRICS_NAMESPACE"]
        assert dimensions == {"service": variables["POWERTOOLS_SERVICE_NAME"]}


def test_the_backfill_marks_its_run_failed_on_the_queues_last_receive() -> None:
    from functions.backfill import app

    template = deployed()
    queue = of_type("AWS::SQS::Queue")["BackfillQueue"]
    assert int(queue["RedrivePolicy"]["maxReceiveCount"]) == app.MAX_RECEIVES
    assert template.physical_name("BackfillDeadLetterQueue") in queue["RedrivePolicy"]["deadLetterTargetArn"]


def test_the_backfill_keeps_a_page_worth_of_time_when_it_begins_one() -> None:
    from shared.backfill import runner

    assert budget.PATHS["BackfillFunction"].worst_seconds <= runner.RESERVE_SECONDS
    assert functions()["BackfillFunction"]["Timeout"] >= 2 * runner.RESERVE_SECONDS  # room for pages in a row
