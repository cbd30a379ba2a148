"""Imports go one way: no module of volworker imports one that imports it
back, and the layers of design.md hold (drivers see only the driver
interface and its helpers; the manager never sees the RPC layer; the state
store never sees the manager)."""

from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _module_name(path: pathlib.Path, package: str, base: pathlib.Path) -> str:
    parts = list(path.relative_to(base).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join([package, *parts])


def _modules() -> dict[str, pathlib.Path]:
    found = {}
    for package, base in (
        ("volworker", ROOT / "volworker"),
        ("drivers", ROOT / "drivers"),
    ):
        for path in base.rglob("*.py"):
            if "migrations" not in path.parts:
                found[_module_name(path, package, base)] = path
    return found


def _imports(name: str, path: pathlib.Path, known: set[str]) -> set[str]:
    """The project modules ``name`` imports (TYPE_CHECKING imports too)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = (
                    package.rsplit(".", node.level - 1)[0]
                    if node.level > 1
                    else package
                )
                base = f"{anchor}.{base}" if base else anchor
            # ``from pkg import module`` imports the module, not the package.
            targets = [
                f"{base}.{alias.name}"
                if f"{base}.{alias.name}".replace("volworker_drivers", "drivers", 1)
                in known
                else base
                for alias in node.names
            ]
        for target in targets:
            target = target.replace("volworker_drivers", "drivers", 1)
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: _imports(name, path, known) for name, path in modules.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            # A package's __init__ re-exporting its own modules is no circle.
            if node.startswith(nxt + "."):
                continue
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_module_imports_one_that_imports_it_back() -> None:
    cycle = _cycle(_graph())
    assert cycle is None, " -> ".join(cycle or [])


@pytest.mark.parametrize(
    ("layer", "allowed"),
    [
        (
            "drivers",
            (
                "drivers",
                "volworker.context",
                "volworker.driver",
                "volworker.exception",
                "volworker.image",
                "volworker.objects",
            ),
        ),
        (
            "volworker.manager",
            (
                "volworker.manager",
                "volworker.context",
                "volworker.driver",
                "volworker.exception",
                "volworker.handback",
                "volworker.image",
                "volworker.coordination",
                "volworker.metrics",
                "volworker.notify",
                "volworker.objects",
                "volworker.ordering",
                "volworker.senders",
                "volworker.state",
            ),
        ),
        (
            "volworker.state",
            (
                "volworker.state",
                "volworker.batches",
                "volworker.exception",
                "volworker.handback",
                "volworker.objects",
            ),
        ),
    ],
)
def test_layers_import_downward_only(layer: str, allowed: tuple[str, ...]) -> None:
    wrong = sorted(
        f"{module} imports {target}"
        for module, targets in _graph().items()
        if module == layer or module.startswith(layer + ".")
        for target in targets
        if not any(target == a or target.startswith(a + ".") for a in allowed)
    )
    assert wrong == []
