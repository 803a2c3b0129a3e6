"""template.yaml for the local stack: CloudFormation YAML loaded as plain data, intrinsics resolved.

The local stack creates its tables and queues, and builds its functions' environment, from the same
template that is deployed, so the two cannot drift. `load_template` reads the YAML with the short
tags (`!Ref`, `!Sub`, `!GetAtt`...) turned into their long forms (`{"Ref": ...}`, `{"Fn::Sub": ...}`);
`Template.resolve` evaluates them for a local stack: parameters (defaults plus local overrides),
pseudo parameters, conditions, and physical names and ARNs that look like the deployed ones.
Values are resolved on demand, so an intrinsic the stack cannot evaluate only fails where it is needed.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_TEMPLATE = REPO_ROOT / "template.yaml"
STACK_NAME = "ripples-local"
REGION = "us-east-1"
ACCOUNT_ID = "123456789012"  # moto's default account

# The property that names a resource, where the template may set the physical name itself.
_NAME_PROPERTIES = {
    "AWS::DynamoDB::Table": "TableName",
    "AWS::SQS::Queue": "QueueName",
    "AWS::Serverless::Function": "FunctionName",
    "AWS::Lambda::Function": "FunctionName",
    "AWS::SNS::Topic": "TopicName",
    "AWS::SecretsManager::Secret": "Name",
    "AWS::IAM::Role": "RoleName",
    "AWS::Logs::LogGroup": "LogGroupName",
}
_API_TYPES = {"AWS::Serverless::HttpApi", "AWS::Serverless::Api", "AWS::ApiGatewayV2::Api"}
_SUB_VARIABLE = re.compile(r"\$\{([^}]*)\}")


class TemplateError(ValueError):
    """The template asks for something the local stack cannot resolve or emulate."""


class _NoValue:
    """`AWS::NoValue`: the property or list item that holds it is removed."""

    def __repr__(self) -> str:
        return "AWS::NoValue"


NO_VALUE = _NoValue()


class CfnLoader(yaml.SafeLoader):
    """YAML as CloudFormation reads it: short-form intrinsics as data, dates left as strings."""


def _construct_intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    elif isinstance(node, yaml.MappingNode):
        value = loader.construct_mapping(node, deep=True)
    else:  # pragma: no cover - PyYAML has no other node kinds
        raise TemplateError(f"unexpected YAML node for !{suffix}")
    if suffix in ("Ref", "Condition"):
        return {suffix: value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


CfnLoader.add_multi_constructor("!", _construct_intrinsic)
# CloudFormation keeps unquoted dates (e.g. a version) as strings.
CfnLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load_template(path: Path | str = DEFAULT_TEMPLATE) -> dict[str, Any]:
    """The template as plain data (YAML or JSON), intrinsics in their long forms."""
    text = Path(path).read_text(encoding="utf-8")
    data = yaml.load(text, Loader=CfnLoader)  # noqa: S506 - CfnLoader is a SafeLoader
    if not isinstance(data, dict) or not isinstance(data.get("Resources"), dict):
        raise TemplateError(f"{path}: not a CloudFormation template (no Resources)")
    return data


def _as_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return bool(value)


class Template:
    """A loaded template and how its intrinsics resolve in the local stack.

    `parameters` override the template's defaults; every parameter must end up with a value.
    `sqs_endpoint` is the base of queue URLs (`Ref` of a queue), `api_endpoint` the local HTTP API's.
    """

    def __init__(
        self,
        data: Mapping[str, Any],
        parameters: Mapping[str, str] | None = None,
        *,
        stack_name: str = STACK_NAME,
        region: str = REGION,
        account_id: str = ACCOUNT_ID,
        sqs_endpoint: str | None = None,
        api_endpoint: str | None = None,
    ) -> None:
        self.data = data
        self.stack_name = stack_name
        self.region = region
        self.account_id = account_id
        self.sqs_endpoint = (sqs_endpoint or f"https://sqs.{region}.amazonaws.com").rstrip("/")
        self.api_endpoint = api_endpoint
        self.resources: dict[str, dict[str, Any]] = dict(data["Resources"])
        self.parameters = self._parameter_values(parameters or {})
        self._pseudo: dict[str, Any] = {
            "AWS::Region": region,
            "AWS::AccountId": account_id,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": stack_name,
            "AWS::StackId": f"arn:aws:cloudformation:{region}:{account_id}:stack/{stack_name}/local",
            "AWS::NotificationARNs": [],
            "AWS::NoValue": NO_VALUE,
        }
        self._conditions: dict[str, bool] = {}

    @classmethod
    def load(cls, path: Path | str = DEFAULT_TEMPLATE, **kwargs: Any) -> Template:
        return cls(load_template(path), **kwargs)

    # ---- sections ------------------------------------------------------------------------------

    @property
    def globals(self) -> dict[str, Any]:
        section: dict[str, Any] = self.data.get("Globals") or {}
        return section

    def _parameter_values(self, overrides: Mapping[str, str]) -> dict[str, Any]:
        declared: dict[str, Any] = self.data.get("Parameters") or {}
        unknown = sorted(set(overrides) - set(declared))
        if unknown:
            raise TemplateError(f"unknown parameters: {', '.join(unknown)}")
        values: dict[str, Any] = {}
        missing = []
        for name, spec in declared.items():
            if name in overrides:
                value: Any = overrides[name]
            elif "Default" in spec:
                value = spec["Default"]
            else:
                missing.append(name)
                continue
            value = "" if value is None else str(value)
            allowed = spec.get("AllowedValues")
            if allowed is not None and value not in [str(a) for a in allowed]:
                raise TemplateError(f"parameter {name}={value!r} is not one of {allowed}")
            kind = str(spec.get("Type", "String"))
            if kind == "CommaDelimitedList" or kind.startswith("List<"):
                values[name] = [item.strip() for item in value.split(",")] if value else []
            else:
                values[name] = value
        if missing:
            raise TemplateError(f"parameters without a default need a value: {', '.join(missing)}")
        return values

    def resource(self, logical_id: str) -> dict[str, Any]:
        try:
            return self.resources[logical_id]
        except KeyError:
            raise TemplateError(f"no resource {logical_id!r} in the template") from None

    def resource_type(self, logical_id: str) -> str:
        return str(self.resource(logical_id)["Type"])

    def is_active(self, logical_id: str) -> bool:
        """False for a resource whose `Condition` is false (it would not be created)."""
        condition = self.resource(logical_id).get("Condition")
        return condition is None or self.condition(str(condition))

    def resources_of_type(self, *types: str) -> list[str]:
        """Logical ids of the active resources of these types, in template order."""
        return [
            logical_id
            for logical_id, resource in self.resources.items()
            if resource.get("Type") in types and self.is_active(logical_id)
        ]

    def properties(self, logical_id: str) -> dict[str, Any]:
        """A resource's Properties, resolved."""
        resolved = self.resolve(self.resource(logical_id).get("Properties") or {})
        assert isinstance(resolved, dict)
        return resolved

    # ---- names, references, attributes -------------------------------------------------------------

    def physical_name(self, logical_id: str) -> str:
        """The name set in the template, else `<stack>-<LogicalId>` (`.fifo` for FIFO queues)."""
        resource = self.resource(logical_id)
        kind = str(resource["Type"])
        raw_properties = resource.get("Properties") or {}
        name_property = _NAME_PROPERTIES.get(kind)
        if name_property and raw_properties.get(name_property) is not None:
            return str(self.resolve(raw_properties[name_property]))
        name = f"{self.stack_name}-{logical_id}"
        if kind == "AWS::SQS::Queue" and _as_bool(self.resolve(raw_properties.get("FifoQueue", False))):
            name += ".fifo"
        return name

    def arn(self, logical_id: str) -> str:
        kind = self.resource_type(logical_id)
        name = self.physical_name(logical_id)
        region, account = self.region, self.account_id
        if kind == "AWS::DynamoDB::Table":
            return f"arn:aws:dynamodb:{region}:{account}:table/{name}"
        if kind in ("AWS::Serverless::Function", "AWS::Lambda::Function"):
            return f"arn:aws:lambda:{region}:{account}:function:{name}"
        if kind == "AWS::IAM::Role":
            return f"arn:aws:iam::{account}:role/{name}"
        if kind == "AWS::SecretsManager::Secret":
            return f"arn:aws:secretsmanager:{region}:{account}:secret:{name}"
        service = kind.split("::")[1].lower()
        return f"arn:aws:{service}:{region}:{account}:{name}"

    def queue_url(self, name: str) -> str:
        return f"{self.sqs_endpoint}/{self.account_id}/{name}"

    def api_id(self, logical_id: str) -> str:
        return logical_id.lower()

    def ref(self, name: str) -> Any:
        if name in self._pseudo:
            return self._pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        kind = self.resource_type(name)
        if kind == "AWS::SQS::Queue":
            return self.queue_url(self.physical_name(name))
        if kind in _API_TYPES:
            return self.api_id(name)
        if kind in ("AWS::SNS::Topic", "AWS::SecretsManager::Secret"):
            return self.arn(name)
        return self.physical_name(name)

    def get_att(self, logical_id: str, attribute: str) -> Any:
        kind = self.resource_type(logical_id)
        if attribute == "Arn":
            return self.arn(logical_id)
        if kind == "AWS::DynamoDB::Table" and attribute == "StreamArn":
            return f"{self.arn(logical_id)}/stream/1970-01-01T00:00:00.000"
        if kind == "AWS::SQS::Queue" and attribute == "QueueName":
            return self.physical_name(logical_id)
        if kind == "AWS::SQS::Queue" and attribute == "QueueUrl":
            return self.queue_url(self.physical_name(logical_id))
        if kind in _API_TYPES and attribute == "ApiEndpoint" and self.api_endpoint:
            return self.api_endpoint
        raise TemplateError(f"!GetAtt {logical_id}.{attribute} ({kind}) is not emulated locally")

    # ---- conditions --------------------------------------------------------------------------

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            conditions: dict[str, Any] = self.data.get("Conditions") or {}
            if name not in conditions:
                raise TemplateError(f"no condition {name!r} in the template")
            self._conditions[name] = self._evaluate_condition(conditions[name])
        return self._conditions[name]

    def _evaluate_condition(self, value: Any) -> bool:
        if isinstance(value, dict) and len(value) == 1:
            ((key, argument),) = value.items()
            if key == "Condition":
                return self.condition(str(argument))
            if key == "Fn::Equals":
                left, right = (self.resolve(item) for item in argument)
                return str(left) == str(right)
            if key == "Fn::And":
                return all(self._evaluate_condition(item) for item in argument)
            if key == "Fn::Or":
                return any(self._evaluate_condition(item) for item in argument)
            if key == "Fn::Not":
                return not self._evaluate_condition(argument[0])
        if isinstance(value, bool):
            return value
        raise TemplateError(f"not a condition: {value!r}")

    # ---- intrinsic functions -------------------------------------------------------------------

    def resolve(self, value: Any) -> Any:
        """`value` with every intrinsic function evaluated (`AWS::NoValue` items removed)."""
        if isinstance(value, dict):
            if len(value) == 1:
                ((key, argument),) = value.items()
                if key == "Ref" or key.startswith("Fn::"):
                    return self._intrinsic(key, argument)
            resolved = {key: self.resolve(item) for key, item in value.items()}
            return {key: item for key, item in resolved.items() if item is not NO_VALUE}
        if isinstance(value, list):
            items = [self.resolve(item) for item in value]
            return [item for item in items if item is not NO_VALUE]
        return value

    def _intrinsic(self, key: str, argument: Any) -> Any:
        if key == "Ref":
            return self.ref(str(argument))
        if key == "Fn::GetAtt":
            parts = argument.split(".", 1) if isinstance(argument, str) else list(self.resolve(argument))
            return self.get_att(str(parts[0]), str(parts[1]))
        if key == "Fn::Sub":
            return self._sub(argument)
        if key == "Fn::Join":
            delimiter, items = argument
            return str(delimiter).join(str(item) for item in self.resolve(items))
        if key == "Fn::If":
            name, when_true, when_false = argument
            return self.resolve(when_true if self.condition(str(name)) else when_false)
        if key == "Fn::Select":
            index, items = self.resolve(argument)
            return items[int(index)]
        if key == "Fn::Split":
            delimiter, text = self.resolve(argument)
            return str(text).split(str(delimiter))
        if key == "Fn::Base64":
            return base64.b64encode(str(self.resolve(argument)).encode()).decode()
        if key == "Fn::FindInMap":
            mapping, top, second = self.resolve(argument)
            return self.resolve(self.data["Mappings"][mapping][top][second])
        if key == "Fn::GetAZs":
            return [f"{self.region}{zone}" for zone in "abc"]
        if key == "Fn::ToJsonString":
            return json.dumps(self.resolve(argument), separators=(",", ":"))
        if key == "Fn::Length":
            return len(self.resolve(argument))
        if key in ("Fn::Equals", "Fn::And", "Fn::Or", "Fn::Not"):
            return self._evaluate_condition({key: argument})
        raise TemplateError(f"{key} is not emulated locally")

    def _sub(self, argument: Any) -> str:
        if isinstance(argument, list):
            text, variables = str(argument[0]), self.resolve(argument[1])
        else:
            text, variables = str(argument), {}

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return str(variables[name])
            if "." in name and name not in self._pseudo:
                logical_id, attribute = name.split(".", 1)
                return str(self.get_att(logical_id, attribute))
            return str(self.ref(name))

        return _SUB_VARIABLE.sub(replace, text)
