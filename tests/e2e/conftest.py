"""The real local stack (`python -m local.stack`, as `make run` starts it), once for all e2e tests."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from local.stack.auth import issue_token
from local.stripe_emulator.control_client import EmulatorControl
from tests.stack_process import stack_process

JWT_SECRET = "e2e-secret-of-at-least-thirty-two-bytes"


@dataclass
class Stack:
    base_url: str
    control: EmulatorControl

    def call(self, method: str, path: str, body: Any = None, project: str | None = None) -> tuple[int, Any]:
        headers = {"Content-Type": "application/json"}
        if project:
            headers["Authorization"] = f"Bearer {issue_token([project], JWT_SECRET)}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base_url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with stack_process(tmp_path_factory.mktemp("stack"), JWT_SECRET) as running:
        yield Stack(running.base_url, EmulatorControl(running.stripe_url))
