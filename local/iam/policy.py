"""IAM statements and their evaluation: an explicit Deny wins, then any Allow, else denied.

Wildcards follow IAM: `*` and `?` in actions (case-insensitive) and in each ARN segment (resource
ids may contain `/` and `:`, which `*` spans within the last segment). Conditions, NotAction and
NotResource are not evaluated: a statement that uses them is refused when the role is read, so a
template that needs them fails loudly instead of being checked wrongly.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from functools import cache
from typing import Any

_SUPPORTED_KEYS = {"Sid", "Effect", "Action", "Resource"}


class PolicyError(ValueError):
    """A statement the local evaluation cannot judge faithfully."""


class Decision(StrEnum):
    ALLOWED = "allowed"
    EXPLICIT_DENY = "explicitly denied"
    IMPLICIT_DENY = "not allowed by any statement"


@cache
def _wildcard(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(body, (re.IGNORECASE | re.DOTALL) if ignore_case else re.DOTALL)


def action_matches(pattern: str, action: str) -> bool:
    return _wildcard(pattern, True).fullmatch(action) is not None


def resource_matches(pattern: str, arn: str) -> bool:
    if pattern == "*":
        return True
    wanted, actual = pattern.split(":", 5), arn.split(":", 5)
    if len(wanted) != 6 or len(actual) != 6:
        return False
    return all(_wildcard(w, False).fullmatch(a) is not None for w, a in zip(wanted, actual, strict=True))


def _strings(value: Any, what: str) -> tuple[str, ...]:
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(item, str) for item in items):
        raise PolicyError(f"{what} must be a string or a list of strings, not {value!r}")
    return tuple(items)


@dataclass(frozen=True)
class Statement:
    effect: str  # "Allow" or "Deny"
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    sid: str | None = None

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> Statement:
        unsupported = set(raw) - _SUPPORTED_KEYS
        if unsupported:
            raise PolicyError(f"statement keys not evaluated locally: {sorted(unsupported)} in {dict(raw)!r}")
        effect = raw.get("Effect")
        if effect not in ("Allow", "Deny"):
            raise PolicyError(f"Effect must be Allow or Deny, not {effect!r}")
        actions, resources = _strings(raw.get("Action"), "Action"), _strings(raw.get("Resource"), "Resource")
        return cls(effect, actions, resources, raw.get("Sid"))

    def matches(self, action: str, resource: str) -> bool:
        return any(action_matches(a, action) for a in self.actions) and any(
            resource_matches(r, resource) for r in self.resources
        )


@dataclass(frozen=True)
class Role:
    """A function's execution role: its own statements and those of its AWS managed policies."""

    name: str
    statements: tuple[Statement, ...]  # from the template (inline policies)
    managed: tuple[Statement, ...] = ()  # from AWS managed policies (logs, X-Ray, SQS polling)

    def decide(self, action: str, resource: str) -> Decision:
        statements = self.statements + self.managed
        if any(s.effect == "Deny" and s.matches(action, resource) for s in statements):
            return Decision.EXPLICIT_DENY
        if any(s.effect == "Allow" and s.matches(action, resource) for s in statements):
            return Decision.ALLOWED
        return Decision.IMPLICIT_DENY

    def without(self, index: int, action: str) -> Role:
        """This role with `action` removed from its statement `index` (the statement dropped if empty)."""
        statement = self.statements[index]
        actions = tuple(a for a in statement.actions if a != action)
        kept = (replace(statement, actions=actions),) if actions else ()
        return replace(self, statements=self.statements[:index] + kept + self.statements[index + 1 :])


def parse_document(document: Mapping[str, Any]) -> Iterable[Statement]:
    raw = document.get("Statement") or []
    for item in raw if isinstance(raw, list) else [raw]:
        yield Statement.parse(item)
