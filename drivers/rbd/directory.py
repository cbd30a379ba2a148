"""The pool's RBD directory, read directly: the one record of which name an
image has.

librbd renames an image in three writes: a new id object under the new name
(``rbd_id.<new>``), the directory, then the removal of the old id object. A
kill -9 between them leaves an id object the directory does not back: the
image then opens under a name it does not have (and ``rbd rm`` of that name
would remove it), and a rename or create to that name fails. So the driver
asks the directory whether a name is an image's, and removes such a stale id
object when it meets one.
"""

from __future__ import annotations

import logging
from typing import Any

__all__ = ["drop_stale_id", "listed_id", "unlist"]

LOG = logging.getLogger(__name__)

DIRECTORY = "rbd_directory"


def _encoded(text: str) -> bytes:
    """A string as Ceph encodes it: 32-bit little-endian length, then bytes."""
    raw = text.encode()
    return len(raw).to_bytes(4, "little") + raw


def listed_id(rados: Any, ioctx: Any, name: str) -> str | None:
    """The id of the image the directory lists under ``name``, or None."""
    with rados.ReadOpCtx() as op:
        found, _ = ioctx.get_omap_vals_by_keys(op, ("name_" + name,))
        try:
            ioctx.operate_read_op(op, DIRECTORY)
        except rados.ObjectNotFound:
            return None  # no image was ever made in the pool
        for _, value in found:
            # a Ceph-encoded string: 32-bit length, then the bytes
            return bytes(value[4:]).decode()
    return None


def drop_stale_id(
    rados: Any, ioctx: Any, name: str, listed: bool | None = None
) -> bool:
    """Remove ``rbd_id.<name>`` when the directory does not list ``name``
    (``listed``, when the caller has just asked); whether there was one."""
    if listed is None:
        listed = listed_id(rados, ioctx, name) is not None
    if listed:
        return False
    try:
        ioctx.remove_object("rbd_id." + name)
    except rados.ObjectNotFound:
        return False
    LOG.warning(
        "Removed the stale id object of %s, left by an interrupted rename", name
    )
    return True


def unlist(rados: Any, ioctx: Any, name: str) -> bool:
    """Take ``name`` out of the directory, when the image it lists is gone
    but for that entry: a removal cut short after the image's header and
    id object went (its data goes before them). Whether there was one."""
    image_id = listed_id(rados, ioctx, name)
    if image_id is None:
        return False
    ioctx.execute(
        DIRECTORY, "rbd", "dir_remove_image", _encoded(name) + _encoded(image_id)
    )
    LOG.warning("Removed %s from the directory, left by an interrupted removal", name)
    return True
