"""Shared helpers of the deployment tests: the checkout and its tools."""

from __future__ import annotations

import pathlib
import shutil

import pytest

from tests.conftest import IN_CI

ROOT = pathlib.Path(__file__).resolve().parents[2]


def require_tool(name: str, package: str) -> str:
    """The path of ``name``; skip on a laptop without it, fail under CI."""
    path = shutil.which(name)
    if path:
        return path
    message = f"{name} is not installed (apt-get install {package})"
    if IN_CI:
        pytest.fail(message + "; CI=true needs it")
    pytest.skip(message)
