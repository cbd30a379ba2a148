"""How a client uses an NBD attachment: the key file, a libnbd URI and
qemu's arguments, from the ``data`` of an NBD connection info.

With TLS (``data["tls"]``), the key is written to ``DIR/keys.psk``, 0600 in
a 0700 directory, the one file both clients read it from: qemu's
``tls-creds-psk`` takes the directory, libnbd's ``tls-psk-file`` the file.
The key never goes on a command line; the identity does (qemu's
``username=``, the user of an ``nbds://`` URI), as a user name would: it
lets nobody in without the key::

    nbdinfo "$(volworker-client attach ID --format uri)"
    qemu-io $(volworker-client attach ID --format qemu) -c 'read 0 1M'
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
import urllib.parse
from dataclasses import dataclass
from typing import Any

__all__ = ["KEY_FILE", "Access", "forget", "prepare"]

KEY_FILE = "keys.psk"
#: The id of the TLS credentials object on qemu's command line.
_CREDS = "tls0"


@dataclass(frozen=True)
class Access:
    """What a client needs for one attachment; ``psk_dir`` is None for a
    plain (``nbd_tls = none``) export."""

    host: str
    port: int
    export_name: str
    identity: str | None = None
    psk_dir: str | None = None

    @property
    def psk_file(self) -> str | None:
        return None if self.psk_dir is None else os.path.join(self.psk_dir, KEY_FILE)

    def uri(self) -> str:
        """A libnbd URI (nbdinfo, nbdcopy, nbdfuse, nbdsh)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        name = urllib.parse.quote(self.export_name, safe="")
        if self.psk_file is None:
            return f"nbd://{host}:{self.port}/{name}"
        user = urllib.parse.quote(self.identity or "", safe="")
        query = urllib.parse.urlencode({"tls-psk-file": self.psk_file})
        return f"nbds://{user}@{host}:{self.port}/{name}?{query}"

    def qemu_args(self) -> list[str]:
        """Arguments for qemu-io or qemu-img (``--image-opts``) that open the
        export as a raw image."""
        opts = [
            "driver=raw",
            "file.driver=nbd",
            f"file.host={_qemu_value(self.host)}",
            f"file.port={self.port}",
            f"file.export={_qemu_value(self.export_name)}",
        ]
        if self.psk_dir is None:
            return ["--image-opts", ",".join(opts)]
        creds = (
            f"tls-creds-psk,id={_CREDS},endpoint=client,"
            f"dir={_qemu_value(self.psk_dir)},username={_qemu_value(self.identity)}"
        )
        opts.append(f"file.tls-creds={_CREDS}")
        return ["--object", creds, "--image-opts", ",".join(opts)]


def _qemu_value(value: str | None) -> str:
    # Qemu's option syntax doubles a comma that belongs to a value.
    return (value or "").replace(",", ",,")


def _write_key(psk_dir: str, identity: str, key: str) -> None:
    os.makedirs(psk_dir, mode=0o700, exist_ok=True)
    st = os.lstat(psk_dir)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid():
        raise OSError(f"{psk_dir} is not a directory of this user's own")
    os.chmod(psk_dir, 0o700)
    # Mkstemp makes the file 0600 before a byte is in it; the rename
    # swaps an older key for the new one in one step.
    fd, tmp = tempfile.mkstemp(prefix=".keys-", dir=psk_dir)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(f"{identity}:{key}\n")
        os.replace(tmp, os.path.join(psk_dir, KEY_FILE))
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def prepare(data: dict[str, Any], psk_dir: str) -> Access:
    """The access to the export ``data`` describes; with TLS, its key is
    written to ``psk_dir/keys.psk`` first (replacing an older one)."""
    access = Access(str(data["host"]), int(data["port"]), str(data["export_name"]))
    tls = data.get("tls")
    if not tls:
        return access
    identity, key = str(tls["psk_identity"]), str(tls["psk_key"])
    _write_key(psk_dir, identity, key)
    return Access(access.host, access.port, access.export_name, identity, psk_dir)


def forget(psk_dir: str) -> None:
    """Remove a key file ``prepare`` wrote, and its directory."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(os.path.join(psk_dir, KEY_FILE))
    # A directory someone put more in stays, with what they put there.
    with contextlib.suppress(OSError):
        os.rmdir(psk_dir)
