"""Each function's execution role, as `sam deploy` would create it from template.yaml.

aws-sam-translator (the library `sam build`/`sam deploy` use) expands the SAM template into plain
CloudFormation: policy templates and Globals resolved, one AWS::IAM::Role per function. Its
intrinsics are then resolved with the local stack's `Template`, so ARNs name the same tables,
secrets and queues the stack created. AWS managed policies the translator attaches are read from
`MANAGED_POLICIES`; any other is refused rather than guessed.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from functools import cache
from typing import Any

import boto3
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator

from local.stack.template import Template, TemplateError

from .policy import Role, Statement, parse_document

_LOGS = Statement("Allow", ("logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"), ("*",))
# The AWS managed policies SAM attaches, with the statements AWS publishes for them.
MANAGED_POLICIES: dict[str, tuple[Statement, ...]] = {
    "service-role/AWSLambdaBasicExecutionRole": (_LOGS,),
    "AWSXrayWriteOnlyAccess": (
        Statement(
            "Allow",
            (
                "xray:PutTraceSegments",
                "xray:PutTelemetryRecords",
                "xray:GetSamplingRules",
                "xray:GetSamplingTargets",
                "xray:GetSamplingStatisticSummaries",
            ),
            ("*",),
        ),
    ),
    "service-role/AWSLambdaSQSQueueExecutionRole": (
        Statement(
            "Allow",
            ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"),
            ("*",),
        ),
        _LOGS,
    ),
}
_CODE_PROPERTIES = {"AWS::Serverless::Function": "CodeUri", "AWS::Serverless::LayerVersion": "ContentUri"}


def _packaged(data: Mapping[str, Any]) -> dict[str, Any]:
    """The template as `sam package` leaves it: local code locations replaced by S3 URIs."""
    packaged = copy.deepcopy(dict(data))
    function_globals = (packaged.get("Globals") or {}).get("Function") or {}
    if "CodeUri" in function_globals:
        function_globals["CodeUri"] = "s3://local-artifacts/code.zip"
    for logical_id, resource in packaged["Resources"].items():
        key = _CODE_PROPERTIES.get(resource.get("Type"))
        properties = resource.get("Properties") or {}
        if key and key in properties:
            properties[key] = f"s3://local-artifacts/{logical_id}.zip"
    return packaged


@cache
def _expanded(data_json: str, parameters_json: str, region: str) -> str:
    translator = Translator(None, Parser(), boto_session=boto3.session.Session(region_name=region))
    parameters = json.loads(parameters_json)
    expanded = translator.translate(
        _packaged(json.loads(data_json)), parameter_values=parameters, get_managed_policy_map=dict
    )
    return json.dumps(expanded)


def expand(template: Template) -> Template:
    """The CloudFormation that `template` deploys as, resolved the way `template` is."""
    parameters = dict(template.parameters)
    data = json.loads(
        _expanded(json.dumps(template.data, sort_keys=True), json.dumps(parameters, sort_keys=True), template.region)
    )
    return Template(
        data,
        {name: ",".join(v) if isinstance(v, list) else v for name, v in parameters.items()},
        stack_name=template.stack_name,
        region=template.region,
        account_id=template.account_id,
        sqs_endpoint=template.sqs_endpoint,
        api_endpoint=template.api_endpoint,
    )


def _managed(arn: str) -> tuple[Statement, ...]:
    name = arn.split(":policy/", 1)[-1]
    if name not in MANAGED_POLICIES:
        raise TemplateError(f"managed policy {arn} is not known locally: add its statements to MANAGED_POLICIES")
    return MANAGED_POLICIES[name]


def function_roles(template: Template) -> dict[str, Role]:
    """Logical id of each function -> its execution role."""
    deployed = expand(template)
    roles = {}
    for logical_id in deployed.resources_of_type("AWS::Lambda::Function"):
        role_ref = (deployed.resource(logical_id).get("Properties") or {}).get("Role")
        if not (isinstance(role_ref, dict) and "Fn::GetAtt" in role_ref):
            raise TemplateError(f"{logical_id}: its Role must be created by the template, not {role_ref!r}")
        role_id = role_ref["Fn::GetAtt"][0]
        properties = deployed.properties(role_id)
        statements = tuple(
            statement
            for policy in properties.get("Policies") or []
            for statement in parse_document(policy["PolicyDocument"])
        )
        managed = tuple(s for arn in properties.get("ManagedPolicyArns") or [] for s in _managed(str(arn)))
        roles[logical_id] = Role(deployed.physical_name(role_id), statements, managed)
    return roles
