"""The package's shape: imports go one way, from the CLI down to the errors.

Every top-level module or subpackage of `skillmix` sits in a layer of `LAYERS`. A module
may import from its own layer or any layer below, never from a layer above, and the
units of one layer must not import each other in a circle. Imports inside functions
count too: a lazy import is still a dependency, only a cheaper one.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "skillmix"

# Bottom first. A name is a top-level module or subpackage of skillmix ("__init__" is the
# package's own __init__.py); names not written yet (scoring, math) keep their place.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("__init__", "errors", "jsonsafe", "terminal", "userfiles"),
    ("catalog",),
    ("models", "store"),
    ("prompts", "runtime"),
    ("protocol", "config"),
    ("scoring",),
    ("report", "export"),
    ("review", "data", "analytics", "reference", "math", "image"),
    ("cli",),
)

# Known upward imports, each with what it needs and where that should live instead.
# Remove an entry when its import is gone (test_allowed_violations_still_exist says so).
ALLOWED: dict[tuple[str, str], str] = {}

RANK = {name: rank for rank, layer in enumerate(LAYERS) for name in layer}


@dataclass(frozen=True)
class Import:
    importer: str  # skillmix.report.build
    imported: str  # skillmix.store.db (or a name inside a module: skillmix.store.Store)
    line: int
    in_function: bool

    def __str__(self) -> str:
        where = " (inside a function)" if self.in_function else ""
        return f"{self.importer}:{self.line} imports {self.imported}{where}"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def unit(module: str) -> str:
    """The top-level module or subpackage a module belongs to: skillmix.report.build -> report."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def imports_of(path: Path) -> Iterator[Import]:
    """Every import of a skillmix module in the file at `path`, at any depth."""
    module = module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]

    def walk(node: ast.AST, in_function: bool) -> Iterator[Import]:
        for child in ast.iter_child_nodes(node):
            nested = in_function or isinstance(
                child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda
            )
            if isinstance(child, ast.Import):
                for alias in child.names:
                    yield Import(module, alias.name, child.lineno, in_function)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".")[: len(package.split(".")) - child.level + 1]
                    source = ".".join([*base, *([child.module] if child.module else [])])
                else:
                    source = child.module or ""
                if source == "skillmix":  # from skillmix import prompts
                    for alias in child.names:
                        yield Import(module, f"skillmix.{alias.name}", child.lineno, in_function)
                else:
                    yield Import(module, source, child.lineno, in_function)
            yield from walk(child, nested)

    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    yield from walk(tree, False)


def all_imports() -> list[Import]:
    return [imp for path in sorted(PACKAGE.rglob("*.py")) for imp in imports_of(path)]


def skillmix_imports() -> list[Import]:
    """Imports from one top-level unit of skillmix into another."""
    return [
        imp
        for imp in all_imports()
        if imp.imported.split(".")[0] == "skillmix" and unit(imp.imported) != unit(imp.importer)
    ]


def matches(imp: Import, entry: tuple[str, str]) -> bool:
    importer, imported = entry
    return imp.importer == importer and (
        imp.imported == imported or imp.imported.startswith(imported + ".")
    )


def allowed(imp: Import) -> bool:
    return any(matches(imp, entry) for entry in ALLOWED)


# --- the tests --------------------------------------------------------------------------------


def test_the_parser_sees_the_package():
    imports = skillmix_imports()
    assert len(imports) > 100, "found too few imports: is PACKAGE right?"
    assert any(imp.importer.startswith("skillmix.cli") for imp in imports)
    assert any(imp.in_function for imp in imports)


def test_every_unit_has_a_layer():
    units = {unit(module_name(path)) for path in PACKAGE.rglob("*.py")}
    missing = sorted(units - RANK.keys())
    assert not missing, f"add {missing} to LAYERS in {Path(__file__).name}"


def test_imports_go_down_or_sideways():
    upward = [
        f"{imp}: layer {RANK[unit(imp.importer)]} ({unit(imp.importer)}) imports layer "
        f"{RANK[unit(imp.imported)]} ({unit(imp.imported)})"
        for imp in skillmix_imports()
        if RANK.get(unit(imp.imported), -1) > RANK.get(unit(imp.importer), -1) and not allowed(imp)
    ]
    assert not upward, "imports that go up a layer:\n  " + "\n  ".join(upward)


def test_allowed_violations_still_exist():
    seen = {entry for imp in skillmix_imports() for entry in ALLOWED if matches(imp, entry)}
    stale = sorted(set(ALLOWED) - seen)
    assert not stale, f"fixed, so remove from ALLOWED: {stale}"


def test_no_cycle_between_units():
    graph: dict[str, set[str]] = {}
    for imp in skillmix_imports():
        if not allowed(imp):
            graph.setdefault(unit(imp.importer), set()).add(unit(imp.imported))
    cycles = find_cycles(graph)
    assert not cycles, "import cycles between units:\n  " + "\n  ".join(
        " -> ".join(cycle) for cycle in cycles
    )


def test_only_the_cli_imports_the_cli_or_click():
    offenders = [
        str(imp)
        for imp in all_imports()
        if unit(imp.importer) != "cli"
        and (imp.imported.startswith("skillmix.cli") or imp.imported.split(".")[0] == "click")
    ]
    assert not offenders, "\n".join(offenders)


def test_importing_the_cli_leaves_heavy_modules_unloaded():
    """`skillmix --help` loads the command modules only: the library loads with a command."""
    heavy = ["numpy", "aiohttp", "llama_cpp", "rich.progress", "pydantic", "skillmix.store"]
    code = f"import sys, skillmix.cli; print([m for m in {heavy!r} if m in sys.modules])"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "[]"


def test_cycle_finder_finds_a_cycle():
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (as a path that ends where it starts) per circle found by depth-first search."""
    cycles: list[list[str]] = []
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> None:
        if node in path:
            cycles.append([*path[path.index(node) :], node])
            return
        if node in done:
            return
        for nxt in sorted(graph.get(node, ())):
            visit(nxt, [*path, node])
        done.add(node)

    for node in sorted(graph):
        visit(node, [])
    return cycles
