"""The unauthenticated webhook route, bounded: what a caller without the secret can make us spend.

AWS requests are counted with botocore's before-call hook on the clients the functions use (the
tables' and Secrets Manager's); time is the secrets module's clock, moved by the tests.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from local.stripe_emulator.control_client import EmulatorAccount, EmulatorControl
from local.stripe_emulator.webhooks import sign
from shared import secrets
from shared.integrations.connect import connect
from shared.settings import get_settings
from tests.conftest import AwsEnv
from tests.functions.test_stripe_webhook import PROJECT, deliver, event_of
from tests.revenue_checks import dynamodb_hook

UNKNOWN = "nobody"
SOME_SECRET = "whsec_" + "1" * 32  # signs well-formed headers for projects whose secret we lack
BODY = b'{"object": "event"}'


@dataclass
class FakeClock:
    now: float = 1_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(secrets, "monotonic", fake)
    return fake


@pytest.fixture
def aws_requests(stripe_env: None) -> Iterator[Counter[str]]:
    """AWS requests by service (after stripe_env, whose reset would drop hooked clients)."""
    calls: Counter[str] = Counter()

    def count(model: Any, **_: Any) -> None:
        calls[model.service_model.service_name] += 1

    events = secrets.client().meta.events
    events.register("before-call.secretsmanager", count)
    try:
        with dynamodb_hook("before-call.dynamodb", count):
            yield calls
    finally:
        events.unregister("before-call.secretsmanager", count)


@dataclass
class Project:
    webhook_secret: str
    event: bytes  # genuine, of a type acknowledged without work (customer.created)


@pytest.fixture
def project(stripe_env: None, aws: AwsEnv, control: EmulatorControl, account: EmulatorAccount) -> Project:
    control.delivery(account.id, retries=0)  # hooks.ripples.test is not reachable from here
    connect(PROJECT, account.restricted_key)
    client = control.client(account.secret_key)
    customer = client.v1.customers.create(params={"email": "someone@example.com"})
    return Project(_stored(aws)["webhook_secret"], event_of(client, "customer.created", customer.id))


def _stored(aws: AwsEnv) -> dict[str, str]:
    name = f"{aws.secrets_prefix}projects/{PROJECT}"
    value: dict[str, str] = json.loads(boto3.client("secretsmanager").get_secret_value(SecretId=name)["SecretString"])
    return value


def rotate(aws: AwsEnv) -> str:
    """Another container reconnects the project: a new webhook secret in Secrets Manager."""
    value = {**_stored(aws), "webhook_secret": "whsec_" + "9" * 32}
    boto3.client("secretsmanager").put_secret_value(
        SecretId=f"{aws.secrets_prefix}projects/{PROJECT}", SecretString=json.dumps(value)
    )
    return value["webhook_secret"]


def error_code(answer: tuple[int, Any]) -> tuple[int, str]:
    status, body = answer
    return status, body["error"]["code"]


# ---- checks that cost nothing ------------------------------------------------------------------

V1 = "a" * 64
Header = Callable[[bytes, str, int], str]
CANNOT_VERIFY: dict[str, Header] = {
    "no v1 signature": lambda _body, _secret, now: f"t={now}",
    "no timestamp": lambda _body, _secret, _now: f"v1={V1}",
    "not key=value": lambda _body, _secret, _now: "garbage",
    "two timestamps": lambda _body, _secret, now: f"t={now},t={now},v1={V1}",
    "timestamp not a number": lambda _body, _secret, _now: f"t=12ab,v1={V1}",
    "v1 too short": lambda _body, _secret, now: f"t={now},v1=deadbeef",
    "v1 not hex": lambda _body, _secret, now: f"t={now},v1={'g' * 64}",
    "stale, correctly signed": lambda body, secret, now: sign(body, secret, now - 301),
    "from the future, correctly signed": lambda body, secret, now: sign(body, secret, now + 301),
}


@pytest.mark.parametrize("make_header", CANNOT_VERIFY.values(), ids=CANNOT_VERIFY.keys())
def test_a_header_that_cannot_verify_costs_nothing_beyond_the_cached_secret(
    project: Project, aws_requests: Counter[str], make_header: Header
) -> None:
    # Given the project's secret in this container's cache (a genuine delivery read it)
    assert deliver(project.event, project.webhook_secret)[0] == 200
    aws_requests.clear()
    # When headers that cannot verify arrive, again and again
    for _ in range(3):
        header = make_header(project.event, project.webhook_secret, int(time.time()))
        answer = deliver(project.event, project.webhook_secret, header=header)
        # Then each is refused without an AWS request (no forced re-read of the secret either)
        assert error_code(answer) == (400, "invalid_signature")
    assert aws_requests == {}


def test_a_missing_header_costs_nothing_beyond_the_cached_secret(project: Project, aws_requests: Counter[str]) -> None:
    assert deliver(project.event, project.webhook_secret)[0] == 200
    aws_requests.clear()
    for _ in range(3):
        assert error_code(deliver(project.event, project.webhook_secret, header="")) == (400, "invalid_signature")
    assert aws_requests == {}


def test_an_unknown_project_is_not_found_whatever_its_headers(
    stripe_env: None, aws_requests: Counter[str], clock: FakeClock
) -> None:
    # api.md: 404 for an unknown project (before judging a signature it could not have)
    for header in ("", "garbage", None):
        answer = deliver(BODY, SOME_SECRET, project=UNKNOWN, header=header)
        assert error_code(answer) == (404, "not_found")
    assert aws_requests == {"secretsmanager": 1}  # remembered after the first


def test_bad_ids_and_oversized_bodies_are_refused_before_any_aws_request(
    project: Project, aws_requests: Counter[str]
) -> None:
    assert error_code(deliver(project.event, project.webhook_secret, project="bad%20id")) == (400, "invalid_request")
    too_large = b'{"pad": "' + b"x" * (1024 * 1024) + b'"}'
    assert error_code(deliver(too_large, project.webhook_secret)) == (413, "payload_too_large")
    assert aws_requests == {}


def test_a_genuine_header_with_other_schemes_still_verifies(project: Project) -> None:
    # Stripe adds a v0 signature in test mode; like Stripe's library, the check ignores it
    header = sign(project.event, project.webhook_secret, int(time.time())) + ",v0=" + "0" * 64
    status, body = deliver(project.event, project.webhook_secret, header=header)
    assert (status, body["result"]) == (200, "ignored")


# ---- unknown projects --------------------------------------------------------------------------


@pytest.mark.parametrize("ttl", [None, 5], ids=["default 60 s", "UNKNOWN_PROJECT_CACHE_SECONDS=5"])
def test_an_unknown_project_costs_one_secrets_manager_read_per_ttl(
    aws_requests: Counter[str], clock: FakeClock, monkeypatch: pytest.MonkeyPatch, ttl: int | None
) -> None:
    if ttl is not None:
        monkeypatch.setenv("UNKNOWN_PROJECT_CACHE_SECONDS", str(ttl))
        get_settings.cache_clear()
    expires = get_settings().unknown_project_cache_seconds
    assert expires == (ttl or 60)
    # When many deliveries for a project without a secret arrive within the TTL
    for _ in range(20):
        assert error_code(deliver(BODY, SOME_SECRET, project=UNKNOWN)) == (404, "not_found")
        clock.advance((expires - 1) / 20)
    # Then Secrets Manager was asked once
    assert aws_requests == {"secretsmanager": 1}
    # And once more after the TTL, for as many deliveries
    clock.advance(1)
    for _ in range(20):
        assert error_code(deliver(BODY, SOME_SECRET, project=UNKNOWN)) == (404, "not_found")
    assert aws_requests == {"secretsmanager": 2}


def test_unknown_projects_are_remembered_up_to_a_bound_oldest_forgotten_first(
    aws_requests: Counter[str], clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(secrets, "MAX_UNKNOWN_REMEMBERED", 3)
    for project_id in ("u1", "u2", "u3", "u4", "u2", "u3", "u4"):
        assert deliver(BODY, SOME_SECRET, project=project_id)[0] == 404
    assert aws_requests == {"secretsmanager": 4}
    assert deliver(BODY, SOME_SECRET, project="u1")[0] == 404  # evicted by u4: asked again
    assert aws_requests == {"secretsmanager": 5}


def test_a_transient_secrets_manager_failure_is_not_remembered(project: Project, aws_requests: Counter[str]) -> None:
    # Given Secrets Manager failing once
    with Stubber(secrets.client()) as stubber:
        stubber.add_client_error("get_secret_value", service_error_code="ServiceUnavailable", http_status_code=503)
        answer = deliver(project.event, project.webhook_secret)
    assert error_code(answer) == (503, "service_unavailable")
    # Then the retry reads the secret again and is processed (not 404 from memory)
    aws_requests.clear()
    status, body = deliver(project.event, project.webhook_secret)
    assert (status, body["result"]) == (200, "ignored")
    assert aws_requests == {"secretsmanager": 1}


def test_a_project_connected_after_a_404_is_reached_once_the_ttl_passed(
    stripe_env: None, aws: AwsEnv, control: EmulatorControl, account: EmulatorAccount, clock: FakeClock
) -> None:
    # Given a delivery for the project before it connected
    assert error_code(deliver(BODY, SOME_SECRET)) == (404, "not_found")
    # When it connects (in another container) and Stripe retries within the TTL: still 404
    control.delivery(account.id, retries=0)
    connect(PROJECT, account.restricted_key)
    client = control.client(account.secret_key)
    customer = client.v1.customers.create(params={"email": "late@example.com"})
    event = event_of(client, "customer.created", customer.id)
    secret = _stored(aws)["webhook_secret"]
    assert error_code(deliver(event, secret)) == (404, "not_found")
    # Then once the TTL passed, Stripe's next retry is processed
    clock.advance(get_settings().unknown_project_cache_seconds)
    status, body = deliver(event, secret)
    assert (status, body["result"]) == (200, "ignored")


# ---- bad signatures for a known project --------------------------------------------------------


def test_bad_signatures_force_at_most_one_secret_read_per_interval(
    project: Project, aws_requests: Counter[str], clock: FakeClock
) -> None:
    # Given the project's secret cached by a genuine delivery
    assert deliver(project.event, project.webhook_secret)[0] == 200
    aws_requests.clear()
    tampered = project.event.replace(b"someone@example.com", b"attacker@example.com")
    header = sign(project.event, project.webhook_secret, int(time.time()))

    def flood() -> None:
        for _ in range(10):
            assert error_code(deliver(project.event, SOME_SECRET)) == (400, "invalid_signature")
            assert error_code(deliver(tampered, project.webhook_secret, header=header)) == (400, "invalid_signature")

    # When bad signatures flood in: one forced re-read, then none within the interval
    flood()
    clock.advance(secrets.REFRESH_EVERY_SECONDS - 1)
    flood()
    assert aws_requests == {"secretsmanager": 1}
    # Then after the interval, one more
    clock.advance(1)
    flood()
    assert aws_requests == {"secretsmanager": 2}


def test_a_rotated_secret_is_picked_up_by_the_first_mismatch(
    project: Project, aws: AwsEnv, aws_requests: Counter[str], clock: FakeClock
) -> None:
    assert deliver(project.event, project.webhook_secret)[0] == 200
    rotated = rotate(aws)
    aws_requests.clear()
    status, body = deliver(project.event, rotated)
    assert (status, body["result"]) == (200, "ignored")
    assert aws_requests == {"secretsmanager": 1}
    # And the replaced secret no longer verifies
    assert error_code(deliver(project.event, project.webhook_secret)) == (400, "invalid_signature")


def test_a_rotation_during_a_flood_is_picked_up_after_the_interval(
    project: Project, aws: AwsEnv, clock: FakeClock
) -> None:
    # Given a bad signature that just forced a re-read
    assert deliver(project.event, project.webhook_secret)[0] == 200
    assert deliver(project.event, SOME_SECRET)[0] == 400
    # When the project is reconnected and Stripe sends with the new secret within the interval
    rotated = rotate(aws)
    clock.advance(1)
    assert error_code(deliver(project.event, rotated)) == (400, "invalid_signature")
    # Then Stripe's retry after the interval is processed
    clock.advance(secrets.REFRESH_EVERY_SECONDS)
    status, body = deliver(project.event, rotated)
    assert (status, body["result"]) == (200, "ignored")
