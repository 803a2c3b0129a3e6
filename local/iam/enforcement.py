"""Every AWS request of a function checked against that function's role before it is sent.

On Lambda a process runs one function, with that function's credentials. Locally several functions
share a process, so the identity is the invocation's: set by the local runtime around each handler
call (`acting_as`), or, for a handler a test calls directly, the handler module found on the call
stack. Requests made outside any function (the stack's own setup, tests' fixtures) are not checked,
as an administrator's would not be.

A request its role does not allow fails as AWS fails it, with AccessDenied(Exception) before it is
sent, and is recorded in `denials` (tests fail on any; `make run` logs it).
"""

from __future__ import annotations

import logging
import sys
import threading
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

import botocore.session
from botocore.client import BaseClient
from botocore.exceptions import ClientError

from local.stack.functions import read_functions
from local.stack.template import Template

from .identity import acting
from .policy import Decision, Role
from .requests import Location, needs
from .roles import function_roles

logger = logging.getLogger("local.iam")


@dataclass(frozen=True)
class Check:
    function: str
    operation: str
    action: str
    resource: str
    decision: Decision

    def message(self, role: str) -> str:
        return (
            f"User: arn:aws:sts::123456789012:assumed-role/{role}/{self.function} is not authorized to perform: "
            f"{self.action} on resource: {self.resource} because no identity-based policy allows the "
            f"{self.action} action"
        )


@dataclass
class Enforcer:
    roles: dict[str, Role]
    handler_modules: dict[str, str]  # module of a function's handler -> the function's logical id
    account_id: str
    checked: set[Check] = field(default_factory=set)
    denials: list[Check] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def current_function(self) -> str | None:
        function = acting()
        if function is not None:
            return function
        frame: FrameType | None = sys._getframe(2)
        while frame is not None:
            found = self.handler_modules.get(frame.f_globals.get("__name__", ""))
            if found is not None:
                return found
            frame = frame.f_back
        return None

    def authorize(self, service: str, operation: str, params: dict[str, Any], region: str) -> None:
        function = self.current_function()
        if function is None:
            return
        role = self.roles.get(function)
        if role is None:
            raise LookupError(f"no role for function {function!r}: it is not in the template the stack runs")
        for action, resource in needs(service, operation, params, Location(region, self.account_id)):
            check = Check(function, operation, action, resource, role.decide(action, resource))
            with self.lock:
                self.checked.add(check)
                if check.decision is not Decision.ALLOWED:
                    self.denials.append(check)
            if check.decision is not Decision.ALLOWED:
                message = check.message(role.name)
                logger.error("AccessDenied (add it to the function's role in template.yaml): %s", message)
                code = "AccessDenied" if service == "sqs" else "AccessDeniedException"
                error = {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": 400}}
                raise ClientError(error, operation)  # type: ignore[arg-type]

    def allowed(self, function: str) -> set[tuple[str, str]]:
        """The (action, resource) pairs the function's requests were allowed so far."""
        with self.lock:
            checked = [c for c in self.checked if c.function == function]
        return {(c.action, c.resource) for c in checked if c.decision is Decision.ALLOWED}

    def take_denials(self) -> list[Check]:
        with self.lock:
            taken, self.denials = self.denials, []
        return taken


_enforcer: Enforcer | None = None
_original_create_client = botocore.session.Session.create_client


def _hook(client: BaseClient) -> Any:
    service = client.meta.service_model.signing_name
    region = client.meta.region_name

    def before_parameter_build(params: dict[str, Any], model: Any, **_: Any) -> None:
        enforcer = _enforcer
        if enforcer is not None:
            enforcer.authorize(service, model.name, params, region)

    return before_parameter_build


def _create_client(self: botocore.session.Session, *args: Any, **kwargs: Any) -> BaseClient:
    client: BaseClient = _original_create_client(self, *args, **kwargs)
    client.meta.events.register("before-parameter-build", _hook(client))
    return client


def install(template: Template) -> Enforcer:
    """Enforce `template`'s roles on every client created from now on (in this process)."""
    global _enforcer
    handlers = {spec.handler.rpartition(".")[0]: spec.logical_id for spec in read_functions(template)}
    _enforcer = Enforcer(function_roles(template), handlers, template.account_id)
    botocore.session.Session.create_client = _create_client  # type: ignore[method-assign]
    return _enforcer


def uninstall() -> None:
    global _enforcer
    _enforcer = None


def enforcer() -> Enforcer | None:
    return _enforcer
