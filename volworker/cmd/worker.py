"""``volworker``: serve the configured backends.

    volworker --config-file /etc/volworker/volworker.conf [--backend NAME]

With ``--backend`` the process serves that one backend (one systemd unit per
backend) and exits non-zero when it cannot be set up; without it, every
backend in ``enabled_backends``, failing only when none can start.
"""

from __future__ import annotations

import os
import warnings

# Oslo.messaging and tooz import eventlet only to check for it; its
# deprecation banner on every start would only confuse operators.
warnings.filterwarnings("ignore", message="\\s*Eventlet is deprecated")
# That import would also load eventlet's green DNS resolver (dnspython,
# about 7 MiB of resident memory) for a process that never runs a green
# thread; eventlet reads this before it is first imported.
os.environ.setdefault("EVENTLET_NO_GREENDNS", "yes")

import asyncio  # noqa: E402
import logging  # noqa: E402
import sys  # noqa: E402
from collections.abc import Sequence  # noqa: E402

from oslo_config import cfg  # noqa: E402
from oslo_log import log as oslo_logging  # noqa: E402

from volworker import log_thread, logs, opts  # noqa: E402
from volworker.service import Service  # noqa: E402

__all__ = ["main"]

LOG = logging.getLogger(__name__)

cli_opts = [
    cfg.StrOpt(
        "backend",
        metavar="NAME",
        help="Serve only this backend (a section of the configuration).",
    ),
]


def parse_args(argv: Sequence[str], conf: cfg.ConfigOpts = cfg.CONF) -> cfg.ConfigOpts:
    """Register every option on ``conf`` and parse the command line."""
    conf.register_cli_opts(cli_opts)
    opts.register_all(conf)
    oslo_logging.register_options(conf)
    conf(list(argv), project="volworker", prog="volworker")
    return conf


#: Libraries whose routine chatter an operator does not need at INFO.
QUIET_LOGGERS = ["alembic=WARN", "amqp=ERROR", "stevedore=WARN", "tooz=WARN"]


def main(argv: Sequence[str] | None = None) -> int:
    # The global CONF, because oslo.messaging registers some of its
    # options only there (see design.md, measured facts).
    try:
        conf = parse_args(sys.argv[1:] if argv is None else argv)
    except cfg.Error as exc:
        # Exit 2 (usage) so that systemd does not restart in vain.
        print(f"volworker: configuration error: {exc}", file=sys.stderr)
        return 2
    oslo_logging.set_defaults(
        default_log_levels=oslo_logging.get_default_log_levels() + QUIET_LOGGERS
    )
    oslo_logging.setup(conf, "volworker")
    logs.watch(conf)
    backends = [conf.backend] if conf.backend else list(conf.enabled_backends)
    if not backends:
        LOG.error("No backend to serve: set enabled_backends or --backend")
        return 2
    service = Service(conf, backends, strict=bool(conf.backend))
    log_thread.start()
    try:
        code = asyncio.run(service.run())
    finally:
        log_thread.stop()
    # The service has stopped and saved everything; a driver call that
    # hangs (a dead backend) must not keep the process from exiting, as the
    # interpreter would wait for its thread.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
