"""Hypothesis strategies for malformed requests, each with the error the
contract promises for it.

Every :class:`Case` is one request with exactly one defect: an unknown
method, a version this worker does not speak, a missing or extra argument,
or one argument made wrong (wrong type, huge or negative size, an id that
is no UUID such as ``../../etc/passwd``, a host of another backend, control
or odd unicode characters, nested junk). ``expected`` names the error the
worker must answer with. Envelope junk that names no method or whose body
is not a request at all is in :func:`envelopes`.
"""

from __future__ import annotations

import copy
import inspect
import uuid
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from volworker.rpc.endpoint import CONTRACT_VERSION, METHODS, Endpoint

__all__ = ["EDGE_CREATES", "Case", "cases", "envelopes", "junk", "odd_creates"]

INVALID = "InvalidInput"
UNSUPPORTED = "NotSupported"
MAX_GB = 65536

#: Characters a name may not hold, and odd ones it may.
ODD = (
    "\x00",
    "\x1b[31m",
    "\n",
    "\ud800",
    "\udfff",
    "\u202e",
    "\ufeff",
    "\u200b",
    "\U0010ffff",
    "e\u0301",
    "\U0001d518",
)
TRAVERSAL = (
    "../../etc/passwd",
    "..",
    "/",
    "/etc/shadow",
    "volume-../../x",
    "..\\..\\windows",
    "%2e%2e%2f",
    "a/../../b",
    "",
    " ",
)

#: Every parameter name of the contract's methods.
PARAMETERS = frozenset(
    name
    for method in METHODS
    for name in inspect.signature(getattr(Endpoint, method)).parameters
)

odd_text = st.text(
    st.characters(categories=["Cs", "Cc", "Cf", "Zs", "Lo", "So", "Mn", "Co"]),
    min_size=1,
    max_size=24,
)
junk: st.SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from(TRAVERSAL + ODD)
    | odd_text,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def _is_uuid(value: Any) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


bad_ids = (
    st.sampled_from(TRAVERSAL + ODD)
    | odd_text
    | st.text(max_size=80)
    | st.just("x" * 100_000)
    | junk
).filter(lambda v: not _is_uuid(v))
bad_sizes = (
    st.integers(max_value=0)
    | st.integers(min_value=MAX_GB + 1, max_value=2**80)
    | st.sampled_from([1.5, "1", "2", True, False, None, [1], {"gb": 1}, 2.0])
)
required_text = st.sampled_from(["\x00", "\x1b", "a\nb", "x" * 300]) | st.just(None)


@dataclass(frozen=True)
class Case:
    """One malformed request and the error it must get."""

    method: Any
    args: Any
    expected: str
    version: Any = "1.0"
    defect: str = ""

    def __repr__(self) -> str:
        args = repr(self.args)
        short = args if len(args) < 300 else args[:300] + "..."
        return f"Case({self.defect}: {self.method!r} v{self.version!r} {short})"


def templates(server: str) -> dict[str, dict[str, Any]]:
    """A well-formed argument set for each method (about unknown objects)."""
    vid, sid = str(uuid.uuid4()), str(uuid.uuid4())
    volume = {"id": vid, "size": 1, "host": server}
    snapshot = {"id": sid, "volume_id": vid}
    return {
        "create_volume": {"volume": volume},
        "delete_volume": {"volume": volume},
        "extend_volume": {"volume": volume, "new_size": 2},
        "create_snapshot": {"snapshot": snapshot},
        "delete_snapshot": {"snapshot": snapshot},
        "revert_to_snapshot": {"volume": volume, "snapshot": snapshot},
        "manage_existing": {"volume": volume, "ref": {"source-name": "v"}},
        "manage_existing_snapshot": {"snapshot": snapshot, "ref": {"source-id": "s"}},
        "copy_volume_to_image": {"volume": volume, "image_meta": {"id": sid}},
        "initialize_connection": {"volume": volume, "connector": {"host": "c"}},
        "terminate_connection": {"volume": volume, "connector": {"host": "c"}},
        "get_volume": {"volume_id": vid},
        "get_snapshot": {"snapshot_id": sid},
        "list_volumes": {"limit": 5},
        "get_capabilities": {"discover": False},
        "get_manageable_volumes": {"limit": 5},
        "get_manageable_snapshots": {"offset": 0},
    }


#: The fields whose wrong value must always be refused, per path.
def _breakers(server: str) -> dict[str, st.SearchStrategy[Any]]:
    backend = server.partition("@")[2]
    bad_hosts = st.sampled_from(
        [
            f"otherhost@{backend}",
            f"{server.partition('@')[0]}@elsewhere",
            f"{server}#nopool",
            f"{server}#../../etc",
            server.partition("@")[0],
            f"{server}\x00",
            "",
        ]
    ) | junk.filter(lambda v: not isinstance(v, str))
    return {
        "volume.id": bad_ids,
        "volume.size": bad_sizes,
        "volume.host": bad_hosts,
        "volume.name": st.sampled_from(["\x00", "a\x1fb", "x" * 256])
        | junk.filter(lambda v: v is not None and not isinstance(v, str)),
        "volume.metadata": st.sampled_from(
            [
                [1],
                "m",
                {"k": {"nested": 1}},
                {"k": "\x00"},
                {str(i): i for i in range(65)},
            ]
        ),
        "volume.snapshot_id": bad_ids.filter(bool),
        "volume.source_volid": bad_ids.filter(bool),
        "volume.volume_type": st.sampled_from(
            [[], "t", {"name": None}, {"name": "t", "extra_specs": {"k": 1}}]
        ),
        "snapshot.id": bad_ids,
        "snapshot.volume_id": bad_ids,
        "new_size": bad_sizes,
        "connector": junk.filter(lambda v: not isinstance(v, dict) and v is not None)
        | st.sampled_from([{}, {"host": ""}, {"host": 5}, {"host": "a\x00"}]),
        "ref": st.sampled_from([{}, [], "name", {"source-name": 7}, {"x": "y"}]),
        "image_meta": st.sampled_from([{}, [], {"id": "../x"}, {"id": None}]),
        "volume_id": bad_ids,
        "snapshot_id": bad_ids,
        "limit": st.sampled_from([-1, 1001, 10**20, "5", 1.5, True, [5]]),
        "offset": st.sampled_from([-1, "0", 0.5, [0]]),
        "discover": st.sampled_from(["yes", 1, None, [True]]),
    }


def _set(args: dict[str, Any], path: str, value: Any) -> dict[str, Any] | None:
    """``args`` with ``path`` set (None when the method has no such field)."""
    args = copy.deepcopy(args)
    head, _, leaf = path.partition(".")
    if not leaf:
        if head not in args:
            return None
        args[head] = value
        return args
    inner = args.get(head)
    if not isinstance(inner, dict):
        return None
    inner[leaf] = value
    return args


REQUIRED = {
    "volume": ("id", "size", "host"),
    "snapshot": ("id", "volume_id"),
    "connector": ("host",),
}


@st.composite
def _bad_field(draw: st.DrawFn, server: str) -> Case:
    breakers = _breakers(server)
    method = draw(st.sampled_from(sorted(templates(server))))
    args = templates(server)[method]
    paths = [p for p in breakers if _set(args, p, None) is not None]
    if not paths:
        return Case(method, dict(args, colour="red"), INVALID, defect="extra kwarg")
    path = draw(st.sampled_from(paths))
    value = draw(breakers[path])
    broken = _set(args, path, value)
    assert broken is not None
    return Case(method, broken, INVALID, defect=f"bad {path}")


@st.composite
def _missing(draw: st.DrawFn, server: str) -> Case:
    method = draw(
        st.sampled_from([m for m, a in templates(server).items() if len(a) > 0])
    )
    args = templates(server)[method]
    fields: list[tuple[str, str | None]] = [
        (k, None) for k in args if k not in ("limit", "offset", "discover")
    ]
    fields += [
        (k, sub)
        for k, v in args.items()
        if isinstance(v, dict)
        for sub in REQUIRED.get(k, ())
    ]
    if not fields:
        return Case(method, dict(args, colour="red"), INVALID, defect="extra kwarg")
    key, sub = draw(st.sampled_from(fields))
    broken = copy.deepcopy(args)
    if sub is None:
        del broken[key]
    else:
        del broken[key][sub]
    return Case(method, broken, INVALID, defect=f"missing {key}.{sub or ''}")


@st.composite
def _extra(draw: st.DrawFn, server: str) -> Case:
    method = draw(st.sampled_from(sorted(templates(server))))
    name = draw(st.text(min_size=1, max_size=12).filter(lambda n: n.isidentifier()))
    args = templates(server)[method]
    # NOTE: self, ctxt and method would clash with the client's own call().
    if name in PARAMETERS | {"self", "ctxt", "method"}:
        name = f"{name}_x"
    return Case(method, dict(args, **{name: draw(junk)}), INVALID, defect="extra kwarg")


@st.composite
def _unknown_method(draw: st.DrawFn, server: str) -> Case:
    method = draw(
        (st.text(max_size=40) | odd_text | st.just("x" * 5000)).filter(
            lambda m: m not in METHODS and m != ""
        )
    )
    return Case(method, {"volume_id": str(uuid.uuid4())}, UNSUPPORTED, defect="method")


@st.composite
def _wrong_version(draw: st.DrawFn, server: str) -> Case:
    method = draw(st.sampled_from(sorted(templates(server))))
    major = draw(st.integers(min_value=0, max_value=99))
    minor = draw(st.integers(min_value=0, max_value=99))
    ours_major, ours_minor = (int(part) for part in CONTRACT_VERSION.split("."))
    if major == ours_major and minor <= ours_minor:
        minor = ours_minor + 1 + minor  # a minor this worker does not speak yet
    return Case(
        method,
        templates(server)[method],
        UNSUPPORTED,
        version=f"{major}.{minor}",
        defect="version",
    )


def cases(server: str) -> st.SearchStrategy[Case]:
    """Malformed requests for the worker serving ``server``, each with the
    error it must get."""
    return st.one_of(
        _bad_field(server),
        _bad_field(server),
        _missing(server),
        _extra(server),
        _unknown_method(server),
        _wrong_version(server),
    )


def envelopes() -> st.SearchStrategy[tuple[str, Any]]:
    """Request bodies with a broken envelope or none: (what, body).

    What they must get is no crash: some name nothing to answer, so the
    worker can only log and drop them.
    """
    messages = st.fixed_dictionaries(
        {},
        optional={
            "method": junk,
            "args": junk,
            "version": junk,
            "namespace": junk,
            "_unique_id": junk,
            "_context_request_id": junk,
            "_msg_id": st.just(None),
        },
    )
    return st.one_of(
        st.tuples(st.just("not an envelope"), junk),
        st.tuples(
            st.just("envelope of junk"),
            st.fixed_dictionaries(
                {"oslo.version": st.just("2.0"), "oslo.message": st.text(max_size=60)}
            ),
        ),
        st.tuples(st.just("message of junk"), messages),
        st.tuples(
            st.just("wrong envelope version"),
            st.fixed_dictionaries(
                {
                    "oslo.version": st.sampled_from(["1.0", "3.0", "", None]),
                    "oslo.message": st.just('{"method": "get_volume"}'),
                }
            ),
        ),
    )


@st.composite
def odd_creates(draw: st.DrawFn, server: str) -> tuple[dict[str, Any], Any]:
    """A create_volume with odd (maybe valid) text in its name or metadata,
    sent under an odd ``_unique_id``, or under a fine one."""
    volume = {"id": str(uuid.uuid4()), "size": 1, "host": server}
    if draw(st.booleans()):
        volume["name"] = draw(odd_text | st.sampled_from(ODD))
        volume["metadata"] = {draw(odd_text): draw(odd_text)}
        return volume, None
    unique_id = draw(
        junk.filter(lambda v: not isinstance(v, str) and v is not None)
        | st.text(min_size=65, max_size=300)
        | st.sampled_from(["", "\ud800", "x" * 100_000])
    )
    return volume, unique_id


#: Creates every fuzz run sends, whatever hypothesis draws: (fields added
#: to a well-formed volume, the message's ``_unique_id``; None: a fine one).
EDGE_CREATES: list[tuple[dict[str, Any], Any]] = [
    ({"name": "\ud800"}, None),
    ({"name": "ok\udfff"}, None),
    ({"metadata": {"\ud800": "\udfff"}}, None),
    ({}, ""),
    ({}, ""),
    ({}, {}),
    ({}, ["x"]),
    ({}, 12345),
    ({}, "x" * 65),
    ({}, "\ud800"),
]
