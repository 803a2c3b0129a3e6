"""The route table: each Stripe endpoint with the permission it needs and the function serving it."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from werkzeug.routing import Map, Rule

if TYPE_CHECKING:
    from .core import Context

Handler = Callable[["Context"], dict[str, Any]]


@dataclass(frozen=True)
class Route:
    method: str
    template: str  # Stripe style, e.g. /v1/charges/{id}
    permission: str
    handler: Handler


ROUTES: dict[str, Route] = {}
_url_map = Map(strict_slashes=False, merge_slashes=False)


def route(method: str, template: str, permission: str) -> Callable[[Handler], Handler]:
    """Register `handler` for `method template`; `permission` is the rak_* name a restricted key needs."""

    def register(handler: Handler) -> Handler:
        name = f"{method} {template}"
        ROUTES[name] = Route(method, template, permission, handler)
        werkzeug_path = re.sub(r"\{(\w+)\}", r"<\1>", template)
        _url_map.add(Rule(werkzeug_path, endpoint=name, methods=[method]))
        return handler

    return register


def bind(server_name: str = "localhost") -> Any:
    return _url_map.bind(server_name)
