"""The shape of the code (issue 15): no import cycle, renderers at the edge, the validator without the solver,
no function over 80 lines."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "planner"
MAX_FUNCTION_LINES = 80
RENDERERS = {
    "planner.maps",
    "planner.report",
    "planner.documents",
    "planner.outputs",
    "planner.contingency_report",
}
CORE = {
    "planner.pipeline",
    "planner.dispatch",
    "planner.model",
    "planner.search",
    "planner.validate",
    "planner.replan",
    "planner.kpis",
    "planner.goods",
    "planner.vehicles",
    "planner.paths",
    "planner.network",
    "planner.demand",
    "planner.scenario",
    "planner.execution",
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    return isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def _runtime_imports(tree: ast.Module) -> set[str]:
    """planner modules a module imports when it runs (also inside functions), not under `if TYPE_CHECKING`."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("planner"):
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("planner"))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def _graph() -> dict[str, set[str]]:
    trees = {_module_name(p): ast.parse(p.read_text(encoding="utf-8")) for p in PACKAGE.rglob("*.py")}
    return {
        name: {m for m in _runtime_imports(tree) if m in trees and m != name} for name, tree in trees.items()
    }


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected group of modules that import each other."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                out.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return out


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for nxt in graph[todo.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_planner_module_imports_itself_back():
    assert _cycles(_graph()) == []


def test_the_core_never_imports_a_renderer():
    graph = _graph()
    offenders = {m: sorted(_reachable(graph, m) & RENDERERS) for m in sorted(CORE) if m in graph}
    assert {m: r for m, r in offenders.items() if r} == {}


def test_no_function_is_longer_than_80_lines():
    long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(
                        f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.name} ({lines} lines)"
                    )
    assert long == []


def test_importing_the_validator_loads_neither_ortools_nor_pyvrp():
    """`python -X importtime -c "import planner.validate"` lists every module the import loads."""
    run = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import planner.validate"],
        capture_output=True,
        text=True,
        check=True,
    )
    loaded = {line.split("|")[-1].strip().split(".")[0] for line in run.stderr.splitlines() if "|" in line}
    assert "planner" in loaded  # the report lists the planner's own modules, so it would list the solver's
    assert not loaded & {"ortools", "pyvrp"}
