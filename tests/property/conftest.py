"""One moto per module for the property tests: each example empties the tables instead of starting a
new moto (which costs a new boto3 session, ~0.1 s)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .harness import Stack, moto_stack


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with moto_stack() as created:
        yield created
