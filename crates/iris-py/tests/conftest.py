"""Shared fixtures: a runtime per test, shut down afterwards, and a polling helper."""

from __future__ import annotations

import time
from typing import Callable, Iterator

import pytest

import iris


@pytest.fixture
def rt() -> Iterator[iris.Runtime]:
    runtime = iris.Runtime()
    try:
        yield runtime
    finally:
        runtime.shutdown()


def wait_for(cond: Callable[[], bool], timeout: float = 10.0, step: float = 0.002) -> bool:
    """Polls `cond` until it holds or `timeout` seconds pass (never a blind sleep)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(step)
    return cond()


@pytest.fixture
def until() -> Callable[..., bool]:
    return wait_for
