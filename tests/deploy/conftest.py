"""Shared helpers of the deployment tests: the checkout and its tools."""

from __future__ import annotations

import pathlib

from tests.conftest import require_tool

__all__ = ["ROOT", "require_tool"]

ROOT = pathlib.Path(__file__).resolve().parents[2]
