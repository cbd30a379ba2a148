"""Identifiers that must be unique, not secret, made without a system call.

``uuid.uuid4()`` reads ``os.urandom``, and that system call lets go of the
GIL. Under load, the thread that made the id then waits for the GIL behind
the worker's other busy threads: in a profile of figure 1 the
notification publisher spent more than three times as long there as in
encoding its messages. A notification's
``message_id`` and ``_unique_id`` and a request id the worker makes up need
only be unique, so they come from :mod:`random` (Mersenne Twister, seeded
from ``os.urandom`` at start and again in a forked child). Nothing that
guards anything (a key, a token, a reply queue's name) may come from here.
"""

from __future__ import annotations

import random

__all__ = ["hex32", "uuid4_text"]

_bits = random.getrandbits

#: the version (4) and variant (RFC 4122) bits of a random UUID
_CLEAR = ~((0xF << 76) | (0x3 << 62))
_SET = (0x4 << 76) | (0x2 << 62)


def hex32() -> str:
    """128 random bits as 32 hexadecimal digits (oslo's ``_unique_id``)."""
    return f"{_bits(128):032x}"


def uuid4_text() -> str:
    """A random (version 4) UUID in its canonical text form, as
    ``str(uuid.uuid4())`` gives."""
    h = f"{(_bits(128) & _CLEAR) | _SET:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
