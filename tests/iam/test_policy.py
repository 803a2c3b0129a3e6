"""The local IAM evaluation follows AWS's rules: what a request needs, how statements match."""

from __future__ import annotations

from typing import Any

import pytest

from local.iam.policy import Decision, PolicyError, Role, Statement, action_matches, resource_matches
from local.iam.requests import Location, needs

HERE = Location("eu-west-1", "111122223333")
TABLE = "arn:aws:dynamodb:eu-west-1:111122223333:table/Revenue"


def test_a_transaction_needs_each_items_own_action_on_its_table() -> None:
    items: list[dict[str, Any]] = [
        {"Put": {"TableName": "Revenue"}},
        {"Update": {"TableName": "Revenue"}},
        {"Delete": {"TableName": "Revenue"}},
        {"ConditionCheck": {"TableName": "Integrations"}},
    ]
    assert needs("dynamodb", "TransactWriteItems", {"TransactItems": items}, HERE) == [
        ("dynamodb:PutItem", TABLE),
        ("dynamodb:UpdateItem", TABLE),
        ("dynamodb:DeleteItem", TABLE),
        ("dynamodb:ConditionCheckItem", "arn:aws:dynamodb:eu-west-1:111122223333:table/Integrations"),
    ]
    gets = [{"Get": {"TableName": "Revenue"}}, {"Get": {"TableName": TABLE}}]
    assert needs("dynamodb", "TransactGetItems", {"TransactItems": gets}, HERE) == [("dynamodb:GetItem", TABLE)] * 2


def test_batches_need_their_action_on_every_table_and_index_queries_the_index_arn() -> None:
    request = {"RequestItems": {"Revenue": {}, "Integrations": {}}}
    assert {r for _, r in needs("dynamodb", "BatchGetItem", request, HERE)} == {
        TABLE,
        "arn:aws:dynamodb:eu-west-1:111122223333:table/Integrations",
    }
    assert needs("dynamodb", "Query", {"TableName": "Revenue", "IndexName": "ByCreated"}, HERE) == [
        ("dynamodb:Query", f"{TABLE}/index/ByCreated")
    ]
    assert needs("dynamodb", "Query", {"TableName": "Revenue"}, HERE) == [("dynamodb:Query", TABLE)]
    assert needs("dynamodb", "ListTables", {}, HERE) == [("dynamodb:ListTables", "*")]


def test_secrets_are_named_by_arn_with_a_random_suffix_and_tags_need_tagging() -> None:
    ((action, arn),) = needs("secretsmanager", "GetSecretValue", {"SecretId": "app/dev/p1"}, HERE)
    assert action == "secretsmanager:GetSecretValue"
    assert arn.startswith("arn:aws:secretsmanager:eu-west-1:111122223333:secret:app/dev/p1-")
    assert len(arn.rsplit("-", 1)[1]) == 6
    created = needs("secretsmanager", "CreateSecret", {"Name": "app/dev/p1", "Tags": [{"Key": "k"}]}, HERE)
    assert [a for a, _ in created] == ["secretsmanager:CreateSecret", "secretsmanager:TagResource"]
    assert [a for a, _ in needs("secretsmanager", "CreateSecret", {"Name": "app/dev/p1"}, HERE)] == [
        "secretsmanager:CreateSecret"
    ]


def test_queues_are_named_by_arn_and_batches_by_their_single_action() -> None:
    url = "http://127.0.0.1:5000/111122223333/backfill"
    assert needs("sqs", "SendMessageBatch", {"QueueUrl": url}, HERE) == [
        ("sqs:SendMessage", "arn:aws:sqs:eu-west-1:111122223333:backfill")
    ]


@pytest.mark.parametrize(
    ("pattern", "arn", "matches"),
    [
        ("*", TABLE, True),
        (TABLE, TABLE, True),
        (TABLE, f"{TABLE}/index/ByCreated", False),  # a table's statement does not cover its indexes
        (f"{TABLE}/index/*", f"{TABLE}/index/ByCreated", True),
        (f"{TABLE}*", f"{TABLE}/index/ByCreated", True),
        ("arn:aws:dynamodb:*:*:table/Revenue", TABLE, True),
        ("arn:aws:dynamodb:*:*:table/Rev?nue", TABLE, True),
        ("arn:aws:dynamodb:*:*:table/revenue", TABLE, False),  # resources are case-sensitive
        (
            "arn:aws:secretsmanager:eu-west-1:111122223333:secret:app/dev/*",
            "arn:aws:secretsmanager:eu-west-1:111122223333:secret:app/dev/p1-AbCdEf",
            True,
        ),
        (
            "arn:aws:secretsmanager:eu-west-1:111122223333:secret:app/dev/*",
            "arn:aws:secretsmanager:eu-west-1:111122223333:secret:app/prod/p1-AbCdEf",
            False,
        ),
        ("arn:aws:dynamodb:eu-west-1:999999999999:table/Revenue", TABLE, False),
    ],
)
def test_resources_match_segment_by_segment_with_wildcards(pattern: str, arn: str, matches: bool) -> None:
    assert resource_matches(pattern, arn) is matches


def test_actions_match_case_insensitively_with_wildcards() -> None:
    assert action_matches("dynamodb:GetItem", "dynamodb:getitem")
    assert action_matches("dynamodb:Get*", "dynamodb:GetItem")
    assert action_matches("dynamodb:*", "dynamodb:TransactWriteItems")
    assert not action_matches("dynamodb:Get*", "dynamodb:BatchGetItem")


def test_an_explicit_deny_wins_and_nothing_is_allowed_by_default() -> None:
    role = Role(
        "r",
        (
            Statement("Allow", ("dynamodb:*",), ("*",)),
            Statement("Deny", ("dynamodb:DeleteItem",), (TABLE,)),
        ),
    )
    assert role.decide("dynamodb:PutItem", TABLE) is Decision.ALLOWED
    assert role.decide("dynamodb:DeleteItem", TABLE) is Decision.EXPLICIT_DENY
    assert role.decide("secretsmanager:GetSecretValue", "*") is Decision.IMPLICIT_DENY
    assert role.without(0, "dynamodb:*").decide("dynamodb:PutItem", TABLE) is Decision.IMPLICIT_DENY


def test_statements_the_local_evaluation_cannot_judge_are_refused() -> None:
    with pytest.raises(PolicyError, match="Condition"):
        Statement.parse({"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Condition": {}})
    with pytest.raises(PolicyError, match="NotAction"):
        Statement.parse({"Effect": "Allow", "NotAction": "s3:*", "Resource": "*"})
