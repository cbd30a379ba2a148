"""How groups of subcommands plug into the client.

A group is a module with ``register(commands: Commands) -> None`` that adds
its subcommands, each with a handler ``(session, args) -> exit code``; the
groups are listed in :data:`volworker.cmd._client.GROUPS`.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any, Protocol

from volworker.cmd._client.output import FORMATS
from volworker.cmd._client.session import Session

__all__ = ["Commands", "Group", "Handler"]

Handler = Callable[[Session, argparse.Namespace], int]
#: Adds the global options to a subcommand's parser (or a group of it).
AddCommon = Callable[[Any], None]


class Commands:
    """The client's subcommands, as groups add them."""

    def __init__(
        self,
        subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
        add_common: AddCommon,
    ) -> None:
        self._subparsers = subparsers
        self._add_common = add_common
        self._parsers: list[argparse.ArgumentParser] = []

    def add(
        self,
        name: str,
        handler: Handler,
        summary: str,
        formats: tuple[str, ...] = (),
    ) -> argparse.ArgumentParser:
        """A new subcommand; the caller adds its arguments to what it returns.
        ``formats`` are output formats it takes besides the common ones."""
        parser = self._subparsers.add_parser(name, help=summary, description=summary)
        parser.set_defaults(handler=handler, formats=FORMATS + formats)
        self._parsers.append(parser)
        return parser

    def nested(self, name: str, summary: str) -> Commands:
        """A subcommand with subcommands of its own (``group create``)."""
        parser = self._subparsers.add_parser(name, help=summary, description=summary)
        sub = parser.add_subparsers(
            dest=f"{name}_command", metavar="COMMAND", required=True
        )
        inner = Commands(sub, self._add_common)
        inner._parsers = self._parsers  # one list: finish() covers them all
        return inner

    def finish(self) -> None:
        """Give every subcommand the global options, kept out of its usage."""
        for parser in self._parsers:
            own = " ".join(parser.format_usage().split())
            own = own.removeprefix(f"usage: {parser.prog}").strip()
            parser.usage = f"%(prog)s {own} [global options]"
            self._add_common(
                parser.add_argument_group("global options (also before COMMAND)")
            )


class Group(Protocol):
    def register(self, commands: Commands) -> None: ...
