"""The typed stubs match the native module (checked with mypy's stubtest when installed)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import pytest

import iris


@pytest.mark.skipif(importlib.util.find_spec("mypy") is None, reason="mypy is not installed")
def test_stubtest_passes():
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    r = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "iris._iris"],
        cwd=here,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stdout + r.stderr


def test_stub_and_marker_ship_with_the_package():
    pkg = os.path.dirname(iris.__file__)
    assert os.path.exists(os.path.join(pkg, "_iris.pyi"))
    assert os.path.exists(os.path.join(pkg, "py.typed"))
    for name in iris.__all__:
        assert hasattr(iris, name), name
