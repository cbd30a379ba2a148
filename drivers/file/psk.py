"""The pre-shared keys of TLS-PSK exports.

Every attachment gets its own key: a random identity and 256 random bits,
handed to the client once, in the reply to initialize_connection, and kept
by the worker in that attachment's connection_info. On this host a key
lives in exactly one file, ``keys.psk`` in a 0700 directory of the export's
own (qemu's ``tls-creds-psk`` reads ``DIR/keys.psk``, lines
``identity:hexkey``), which holds that one key only: the server of one
attachment knows no other attachment's key.

GnuTLS reads the file at every handshake, so removing it refuses the key at
once, before the server is even stopped, and writing it again (a restart
restoring an attachment) lets the same key in again.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import stat
from dataclasses import dataclass, field
from typing import Any

from volworker import exception

__all__ = ["KEY_FILE", "Psk", "from_data", "new", "read", "remove", "write"]

KEY_FILE = "keys.psk"
#: 32 bytes: 256 bits, the least the contract promises.
KEY_BYTES = 32

# Identities we make are hex; what is read back must at least be safe in a
# key file line and in qemu's and libnbd's option syntax.
_IDENTITY = re.compile(r"[A-Za-z0-9_.-]{16,128}")
_KEY = re.compile(rf"(?:[0-9a-fA-F]{{2}}){{{KEY_BYTES},256}}")


@dataclass(frozen=True)
class Psk:
    """One attachment's key; its repr shows neither part."""

    identity: str = field(repr=False)
    key: str = field(repr=False)

    def wire(self) -> dict[str, str]:
        """The ``tls`` member of the connection info."""
        return {"psk_identity": self.identity, "psk_key": self.key}

    def line(self) -> str:
        return f"{self.identity}:{self.key}\n"


def new() -> Psk:
    return Psk(secrets.token_hex(16), secrets.token_hex(KEY_BYTES))


def from_data(tls: Any) -> Psk | None:
    """The key in a connection info's ``tls`` member; None when it is not a
    well-formed one (the caller says where it came from, never its value)."""
    if not isinstance(tls, dict):
        return None
    identity, key = tls.get("psk_identity"), tls.get("psk_key")
    if not (
        isinstance(identity, str)
        and _IDENTITY.fullmatch(identity)
        and isinstance(key, str)
        and _KEY.fullmatch(key)
    ):
        return None
    return Psk(identity, key.lower())


def _private_dir(path: str) -> None:
    """``path`` as a directory only we can enter, made if missing."""
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, 0o700)
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid():
        raise exception.VolumeBackendAPIException(
            data=f"refusing to keep a key in {path}: it is not a directory "
            "of this worker's own"
        )
    if stat.S_IMODE(st.st_mode) != 0o700:
        os.chmod(path, 0o700)


def write(path: str, psk: Psk) -> None:
    """Make ``path/keys.psk`` hold ``psk`` (and nothing else), 0600 in a
    0700 directory, replaced atomically."""
    _private_dir(path)
    final = os.path.join(path, KEY_FILE)
    tmp = f"{final}.tmp"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        os.write(fd, psk.line().encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, final)


def read(path: str) -> Psk | None:
    """The key in ``path/keys.psk``; None when there is none (or no sound one)."""
    try:
        fd = os.open(os.path.join(path, KEY_FILE), os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    with os.fdopen(fd, encoding="ascii", errors="replace") as f:
        identity, _, key = f.read(1024).strip().partition(":")
    return from_data({"psk_identity": identity, "psk_key": key})


def remove(path: str) -> None:
    """Forget the key and its directory; nothing is left to refuse."""
    for name in (KEY_FILE, f"{KEY_FILE}.tmp"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(path, name))
    with contextlib.suppress(FileNotFoundError):
        os.rmdir(path)
