"""An NBD client without TLS, written from the protocol, that asks an export
for everything a plain client may ask before TLS: the export list, the
export's details, the export itself. It keeps every byte the server sent, so
a test can show that none of them names the export or holds its data.

The fixed newstyle handshake (NBD protocol, "Option haggling"): the server
greets with ``NBDMAGIC IHAVEOPT`` and its flags; each option is
``IHAVEOPT <option> <length> <data>`` and gets replies
``<reply magic> <option> <type> <length> <data>``; NBD_OPT_EXPORT_NAME gets no
reply, the server drops the connection when it refuses.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass, field

__all__ = ["ERR_TLS_REQD", "Probe", "probe"]

IHAVEOPT = 0x49484156454F5054
REPLY_MAGIC = 0x3E889045565A9
OPT_EXPORT_NAME, OPT_ABORT, OPT_LIST, OPT_INFO, OPT_GO = 1, 2, 3, 6, 7
FLAG_C_FIXED_NEWSTYLE, FLAG_C_NO_ZEROES = 1, 2
ERR_TLS_REQD = (1 << 31) + 5
TIMEOUT = 10.0


@dataclass
class Probe:
    """What a plain client got: every reply, and every byte received."""

    replies: dict[str, list[int]] = field(default_factory=dict)
    received: bytearray = field(default_factory=bytearray)
    export_name_answered: bool = False


class _Conn:
    def __init__(self, sock: socket.socket, probe: Probe) -> None:
        self.sock, self.probe = sock, probe

    def recv(self, size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = self.sock.recv(size - len(data))
            if not chunk:
                raise ConnectionError("the server closed the connection")
            data += chunk
        self.probe.received += data
        return data

    def option(self, option: int, data: bytes = b"") -> None:
        self.sock.sendall(struct.pack(">QII", IHAVEOPT, option, len(data)) + data)

    def replies(self, option: int) -> list[int]:
        """The reply types to ``option`` up to its final one."""
        types = []
        while True:
            magic, opt, rtype, length = struct.unpack(">QIII", self.recv(20))
            assert (magic, opt) == (REPLY_MAGIC, option), (hex(magic), opt)
            self.recv(length)
            types.append(rtype)
            # NBD_REP_SERVER (2) comes before the final reply of a list;
            # any other type (ack, error) ends the option.
            if rtype != 2:
                return types


def _name_request(export_name: str) -> bytes:
    name = export_name.encode()
    return struct.pack(">I", len(name)) + name + struct.pack(">H", 0)


def probe(host: str, port: int, export_name: str) -> Probe:
    """Ask for the list, the export's info, then the export, without TLS."""
    result = Probe()
    with socket.create_connection((host, port), timeout=TIMEOUT) as sock:
        conn = _Conn(sock, result)
        magic, opt_magic, _flags = struct.unpack(">QQH", conn.recv(18))
        assert (magic, opt_magic) == (int.from_bytes(b"NBDMAGIC"), IHAVEOPT)
        sock.sendall(struct.pack(">I", FLAG_C_FIXED_NEWSTYLE | FLAG_C_NO_ZEROES))
        conn.option(OPT_LIST)
        result.replies["list"] = conn.replies(OPT_LIST)
        for name, option in (("info", OPT_INFO), ("go", OPT_GO)):
            conn.option(option, _name_request(export_name))
            result.replies[name] = conn.replies(option)
        # The old way in: on success the server sends the export's size and
        # flags (10 bytes at least); on refusal it hangs up.
        conn.option(OPT_EXPORT_NAME, export_name.encode())
        try:
            conn.recv(10)
            result.export_name_answered = True
        except (ConnectionError, TimeoutError):
            pass
    return result
