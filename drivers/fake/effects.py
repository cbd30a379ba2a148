"""The fake backend's record of what it did, kept outside the worker.

With ``fake_effects_log`` set, every change the fake backend makes (an
object made, resized, reverted, adopted or removed; an export opened or
closed) is appended to that file as one JSON line. Two readers use it:

- the fault suite, which compares the effects with the requests sent: the
  worker's journal can never show one request done twice (its message id
  is unique), but a backend that was asked twice can;
- the fake backend itself, which restores its objects from the file at
  setup, so that they outlive the worker process as a real backend's do
  and a kill -9 test can run against it.

A line is one ``write`` to a file opened with O_APPEND, made before the
driver method returns: it is in the kernel's hands at once, so a kill -9 of
the worker loses no line (a power cut could; a fake backend needs no more),
and lines of concurrent calls never interleave.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

__all__ = ["EffectsLog", "read"]


class EffectsLog:
    """Appends effects to one file."""

    def __init__(self, path: str) -> None:
        self.path = path
        directory = os.path.dirname(os.path.abspath(path))
        os.makedirs(directory, exist_ok=True)
        self._fd = os.open(
            path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600
        )

    def record(self, method: str, effect: dict[str, Any]) -> None:
        """Append one effect of ``method``, with the process and the time."""
        entry = {"method": method, **effect, "pid": os.getpid(), "at": time.time()}
        line = (json.dumps(entry, sort_keys=True) + "\n").encode()
        if os.write(self._fd, line) != len(line):
            raise OSError(f"{self.path}: a short write; the effects log is cut")

    def close(self) -> None:
        os.close(self._fd)


def read(path: str) -> list[dict[str, Any]]:
    """Every effect recorded at ``path``, oldest first ([] if none).

    A last line without its newline was being written when its writer
    died; it is left out, as the effect it describes never completed.
    """
    try:
        with open(path, encoding="utf-8") as log:
            text = log.read()
    except FileNotFoundError:
        return []
    lines = text.split("\n")
    return [json.loads(line) for line in lines[:-1] if line]
