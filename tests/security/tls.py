"""A test certificate authority and a private RabbitMQ node that speaks AMQP
over TLS only."""

from __future__ import annotations

import pathlib
import subprocess
from dataclasses import dataclass

from tests.faults.broker import PrivateBroker

__all__ = ["Authority", "TLSBroker", "make_ca"]


@dataclass(frozen=True)
class Authority:
    """A CA and a server certificate it signed for 127.0.0.1 and localhost."""

    ca: pathlib.Path
    cert: pathlib.Path
    key: pathlib.Path


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


def make_ca(directory: pathlib.Path) -> Authority:
    directory.mkdir(parents=True, exist_ok=True)
    ca, ca_key = directory / "ca.pem", directory / "ca.key"
    cert, key = directory / "server.pem", directory / "server.key"
    csr, san = directory / "server.csr", directory / "san.cnf"
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl(
        "req", "-x509", *ec, "-keyout", str(ca_key), "-out", str(ca),
        "-days", "2", "-subj", "/CN=volworker test CA",
    )  # fmt: skip
    subject = ["-subj", "/CN=localhost"]
    _openssl("req", *ec, "-keyout", str(key), "-out", str(csr), *subject)
    san.write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    _openssl(
        "x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
        "-CAcreateserial", "-days", "2", "-out", str(cert), "-extfile", str(san),
    )  # fmt: skip
    return Authority(ca, cert, key)


class TLSBroker(PrivateBroker):
    """A private node whose one AMQP listener is TLS (no plain listener)."""

    def __init__(self, base: pathlib.Path, ca: Authority) -> None:
        super().__init__(base)
        self.ca = ca

    def config(self) -> str:
        return (
            "listeners.tcp = none\n"
            f"listeners.ssl.default = 127.0.0.1:{self.port}\n"
            f"ssl_options.cacertfile = {self.ca.ca}\n"
            f"ssl_options.certfile = {self.ca.cert}\n"
            f"ssl_options.keyfile = {self.ca.key}\n"
            "ssl_options.verify = verify_none\n"
            "ssl_options.fail_if_no_peer_cert = false\n"
            "loopback_users = none\n"
        )
