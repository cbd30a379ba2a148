"""``volworker-client``: drive a volworker from a shell, over RabbitMQ.

    volworker-client --host node1@file create --size 10 --name data --wait
    volworker-client --host node1@file list
    volworker-client --host node1@file attach VOLUME_ID --format json

Each subcommand is one request of the wire contract (through
:class:`volworker.rpc.rpcapi.VolumeAPI`), with the record it needs fetched
first. Exit codes: 0 done, 1 the worker refused or failed it, 2 bad usage or
no answer (timeout, no broker).
"""

from __future__ import annotations

import warnings

# Oslo.messaging imports eventlet only to check for it; its deprecation
# banner on every run would only confuse people.
warnings.filterwarnings("ignore", message="\\s*Eventlet is deprecated")

import argparse  # noqa: E402
import functools  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from typing import Any  # noqa: E402

import amqp.exceptions  # noqa: E402
import oslo_messaging  # noqa: E402

from volworker import exception  # noqa: E402
from volworker.cmd._client import GROUPS  # noqa: E402
from volworker.cmd._client.arguments import seconds_arg, server_arg  # noqa: E402
from volworker.cmd._client.errors import (  # noqa: E402
    EXIT_FAILED,
    EXIT_UNREACHED,
    ClientError,
    remote_error_line,
)
from volworker.cmd._client.output import ALL_FORMATS, Output  # noqa: E402
from volworker.cmd._client.registry import Commands  # noqa: E402
from volworker.cmd._client.session import Session  # noqa: E402
from volworker.cmd._client.settings import (  # noqa: E402
    DEFAULT_TOPIC,
    DEFAULT_URL,
    HOST_ENV,
    URL_ENV,
    Settings,
    resolve,
)

__all__ = ["build_parser", "main"]

LOG = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 30.0
EXIT_INTERRUPTED = 130


def _global_options(parser: Any, *, suppress: bool) -> None:
    """The options every subcommand takes, before or after its name.

    After the name (``suppress``), an option left out must not overwrite
    what was given before the name, so its default is SUPPRESS there.
    """

    def default(value: object) -> object:
        return argparse.SUPPRESS if suppress else value

    parser.add_argument(
        "--url",
        default=default(None),
        help=f"transport URL (default: ${URL_ENV}, the config file's, "
        f"or {DEFAULT_URL})",
    )
    parser.add_argument(
        "--config-file",
        default=default(None),
        metavar="PATH",
        help="read transport_url, volume_topic and host from a worker's config",
    )
    parser.add_argument(
        "--topic",
        default=default(None),
        help=f"the workers' volume_topic (default: {DEFAULT_TOPIC})",
    )
    parser.add_argument(
        "--host",
        type=server_arg,
        default=default(None),
        metavar="HOST@BACKEND",
        help=f"the worker's server (default: ${HOST_ENV})",
    )
    parser.add_argument(
        "--timeout",
        type=seconds_arg,
        default=default(DEFAULT_TIMEOUT),
        metavar="SECONDS",
        help=f"how long to wait for each reply (default: {DEFAULT_TIMEOUT:g})",
    )
    parser.add_argument(
        "--format",
        choices=ALL_FORMATS,
        default=default("table"),
        help="output format (uri and qemu: attach only)",
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=default(0),
        help="log to stderr (-vv: debug)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="volworker-client",
        description="Manage the volumes of a volworker over RabbitMQ.",
        epilog="Exit codes: 0 done; 1 the worker refused or failed the request; "
        "2 bad usage, no reply in time, or no broker.",
    )
    _global_options(parser, suppress=False)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    commands = Commands(subparsers, functools.partial(_global_options, suppress=True))
    for group in GROUPS:
        group.register(commands)
    commands.finish()
    return parser


def _setup_logging(verbosity: int) -> None:
    levels = {0: logging.CRITICAL, 1: logging.INFO}
    logging.basicConfig(
        level=levels.get(verbosity, logging.DEBUG),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def _explain(exc: Exception, settings: Settings) -> ClientError | None:
    """The line and exit code for an error a person can act on; None for bugs."""
    if isinstance(exc, ClientError):
        return exc
    if isinstance(exc, exception.VolworkerError | oslo_messaging.RemoteError):
        return ClientError(remote_error_line(exc), EXIT_FAILED)
    if isinstance(exc, oslo_messaging.MessagingTimeout):
        return ClientError(
            f"no reply from {settings.host} on topic {settings.topic!r} within "
            f"{settings.timeout:g}s: is a worker serving it, and ready?",
            EXIT_UNREACHED,
        )
    if isinstance(exc, oslo_messaging.MessagingException | amqp.exceptions.AMQPError):
        first = (str(exc).splitlines() or [""])[0]
        return ClientError(
            f"messaging failed: {type(exc).__name__}: {first}", EXIT_UNREACHED
        )
    return None


def _fail(error: ClientError) -> int:
    print(f"error: {error.message}", file=sys.stderr)
    return error.code


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.format not in args.formats:
        parser.error(f"{args.command} has no --format {args.format}")
    _setup_logging(args.verbose)
    try:
        settings = resolve(args, os.environ)
    except ClientError as exc:
        return _fail(exc)
    session = Session(settings, Output(args.format))
    try:
        code: int = args.handler(session, args)
        return code
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader (``| head``) left; the exit must not try to flush
        # to it again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:
        error = _explain(exc, settings)
        if error is None:
            raise
        LOG.debug("Request failed", exc_info=True)
        return _fail(error)
    finally:
        session.close()


if __name__ == "__main__":
    sys.exit(main())
