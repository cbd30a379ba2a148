"""What drivers save per initiator between attachments."""

from __future__ import annotations

from typing import Any

from volworker.state import initiators


def test_nothing_saved_is_none(call: Any) -> None:
    assert call(initiators.load, "iqn.a", "h@b") is None


def test_set_replace_and_remove_per_initiator_and_namespace(call: Any) -> None:
    call(initiators.update, "iqn.a", "h@b", {"k1": "v1", "k2": "v2"}, [])
    call(initiators.update, "iqn.a", "h@other", {"k1": "elsewhere"}, [])
    call(initiators.update, "iqn.b", "h@b", {"k1": "b's"}, [])
    assert call(initiators.load, "iqn.a", "h@b") == {"k1": "v1", "k2": "v2"}
    call(initiators.update, "iqn.a", "h@b", {"k1": "new"}, ["k2", "never-set"])
    assert call(initiators.load, "iqn.a", "h@b") == {"k1": "new"}
    assert call(initiators.load, "iqn.a", "h@other") == {"k1": "elsewhere"}
    assert call(initiators.load, "iqn.b", "h@b") == {"k1": "b's"}
    call(initiators.update, "iqn.a", "h@b", {}, ["k1"])
    assert call(initiators.load, "iqn.a", "h@b") is None
