"""Which options a config file sets that volworker does not have.

oslo.config ignores an option it does not know, so a misspelt one in a
shipped or generated config would go unnoticed; the checked-in sample lists
every option there is.
"""

from __future__ import annotations

import configparser
import pathlib
import re

from tests.deploy.conftest import ROOT

SAMPLE = ROOT / "etc" / "volworker" / "volworker.conf.sample"
BACKEND_DEFAULTS = "backend_defaults"
_SAMPLE_OPTION = re.compile(r"^#([a-z0-9_]+) =(?: |$)", re.MULTILINE)


def known_options() -> dict[str, set[str]]:
    """Section -> option names, from the sample."""
    known: dict[str, set[str]] = {}
    for block in re.split(r"^\[", SAMPLE.read_text(), flags=re.MULTILINE)[1:]:
        name, _, body = block.partition("]\n")
        known.setdefault(name, set()).update(_SAMPLE_OPTION.findall(body))
    return known


def read_config(path: pathlib.Path) -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(
        default_section="__none__", interpolation=None, strict=True
    )
    # NOTE: oslo.config option names are case-sensitive.
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(path)
    return parser


def unknown_options(path: pathlib.Path) -> list[str]:
    """``section.option`` for every option of ``path`` the sample lacks;
    a section the sample does not have is a backend (``[backend_defaults]``)."""
    known = known_options()
    parser = read_config(path)
    unknown = []
    for section in parser.sections():
        allowed = known.get(section, known[BACKEND_DEFAULTS])
        unknown += [
            f"{section}.{o}" for o in parser.options(section) if o not in allowed
        ]
    return unknown
