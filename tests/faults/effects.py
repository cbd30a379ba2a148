"""Done twice: the fake backend's effects against the requests sent.

The worker's journal keys a request by its message id, so it can never
show one request done twice; the backend can. With ``fake_effects_log``,
the fake driver appends every change it makes to a file outside the
worker's reach (see ``drivers/fake/effects.py``). Each cast of the load asks
for exactly one effect, identified by the ids and size it names (a create
for volume V, an extend of V to N GiB, a snapshot S, ...).

- duplicated: an effect seen more often than it was asked for, beyond one
  redo for each kill that found its request unfinished in the journal
  (accepted or running: the worker may have touched the backend before it
  could record the end, and recovery does the work again). A request that
  had finished before a kill, or a cast delivered twice, gets no redo;
- mismatched: a request the journal says is done whose effect never
  happened, or an effect of a kind the load asks for that no request asked.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from tests.faults.audit import Findings
from tests.faults.load import Op

__all__ = ["EFFECTS", "audit_effects", "effect_key", "request_key"]

#: The fake driver's method -> the cast that asks for it, and the fields
#: (of the effect, and of the request) that say which request it serves.
EFFECTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "create_volume": ("create_volume", ("volume",)),
    "create_cloned_volume": ("create_volume", ("volume",)),
    "create_volume_from_snapshot": ("create_volume", ("volume",)),
    "delete_volume": ("delete_volume", ("volume",)),
    "extend_volume": ("extend_volume", ("volume", "size")),
    "create_snapshot": ("create_snapshot", ("snapshot",)),
    "delete_snapshot": ("delete_snapshot", ("snapshot",)),
    "revert_to_snapshot": ("revert_to_snapshot", ("volume", "snapshot")),
}
_FIELDS = {cast: fields for cast, fields in EFFECTS.values()}

Key = tuple[Any, ...]


def _request_fields(op: Op) -> dict[str, Any]:
    kwargs = op.kwargs
    fields: dict[str, Any] = {}
    if "snapshot" in kwargs:
        fields["snapshot"] = kwargs["snapshot"]["id"]
    if "volume" in kwargs:
        fields["volume"] = kwargs["volume"]["id"]
    if "new_size" in kwargs:
        fields["size"] = kwargs["new_size"]
    return fields


def request_key(op: Op) -> Key | None:
    """What effect ``op`` asks for; None for what makes none (calls)."""
    fields = _FIELDS.get(op.method)
    if fields is None:
        return None
    values = _request_fields(op)
    return (op.method, *(values[name] for name in fields))


def effect_key(effect: dict[str, Any]) -> Key | None:
    """Which request an effect serves; None for exports and the like."""
    found = EFFECTS.get(effect["method"])
    if found is None:
        return None
    cast, fields = found
    return (cast, *(effect[name] for name in fields))


def audit_effects(
    effects: Iterable[dict[str, Any]],
    casts: Iterable[Op],
    done: set[str],
    in_flight: Counter[str],
) -> Findings:
    """Compare the backend's effects with the casts sent.

    ``done``: the request ids the journal finished as done; ``in_flight``:
    for each request id, how many kills found it accepted or running.
    """
    asked: dict[Key, list[Op]] = {}
    for op in casts:
        key = request_key(op)
        if key is not None:
            asked.setdefault(key, []).append(op)
    seen = Counter(k for k in map(effect_key, effects) if k is not None)
    findings = Findings()
    for key, ops in asked.items():
        redos = sum(in_flight[op.request_id] for op in ops)
        if seen[key] > len(ops) + redos:
            findings.duplicated.append(
                f"{_describe(key)}: done {seen[key]} times for {len(ops)} "
                f"request(s) {[op.request_id for op in ops]}, {redos} redo(s) "
                "allowed (unfinished at a kill)"
            )
        finished = sum(1 for op in ops if op.request_id in done)
        if seen[key] < finished:
            findings.mismatched.append(
                f"{_describe(key)}: done in the journal {finished} time(s), "
                f"by the backend {seen[key]}"
            )
    findings.mismatched.extend(
        f"{_describe(key)}: done by the backend {count} time(s), never asked"
        for key, count in seen.items()
        if key not in asked
    )
    return findings


def _describe(key: Key) -> str:
    cast, *values = key
    return f"{cast} {' '.join(map(str, values))}"
