"""The floors of DESIGN.md hold: no import runs back up a floor and no modules import each other
in a circle. Every import counts, also one inside a function (a lazy import is still an arrow).

    tools (0) <- settings (1) <- network, encoders, data (2) <- pipeline (3) <- experiment (4)
    <- analysis (5) <- main.py (6)

A package imports only its own floor and the floors below. analysis reads through the store and
run artifacts only: of the floors above settings it imports ``experiment.store`` (the store
interface and its records), ``experiment.run_folder`` (what a run folder holds) and
``experiment.trained_run`` (a trained run read back from its folder), nothing else.
benchmarks/ and tests/ stand outside the floors and may import anything.
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FLOORS = {"tools": 0, "settings": 1, "network": 2, "encoders": 2, "data": 2, "pipeline": 3, "experiment": 4,
          "analysis": 5, "main": 6}
ANALYSIS_READS = ("experiment.store", "experiment.run_folder", "experiment.trained_run")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> dict[str, Path]:
    files = [ROOT / "main.py"] + [p for package in FLOORS if package != "main" for p in (ROOT / package).rglob("*.py")]
    return {module_name(p): p for p in files}


def imported(path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules ``path`` imports anywhere in it (``from pkg import sub`` names ``pkg.sub``
    when that is a module)."""
    found = set()
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # a relative import: from the package, one level up per extra dot
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([base] if base else []))
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
        else:
            continue
        found |= {name for name in names if name in modules}
    return found


def import_graph() -> dict[str, set[str]]:
    modules = project_modules()
    return {name: imported(path, modules) - {name} for name, path in modules.items()}


def floor_problems(graph: dict[str, set[str]]) -> list[str]:
    problems = []
    for source, targets in sorted(graph.items()):
        here = source.split(".")[0]
        for target in sorted(targets):
            there = target.split(".")[0]
            if here == there:
                continue
            if FLOORS[there] > FLOORS[here]:
                problems.append(f"{source} imports {target}: {there} is above {here}")
            elif here == "analysis" and FLOORS[there] > FLOORS["settings"] and \
                    not any(target == m or target.startswith(m + ".") for m in ANALYSIS_READS):
                problems.append(f"{source} imports {target}: analysis reads through "
                                f"{', '.join(ANALYSIS_READS)} only")
    return problems


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_graph_is_read():
    graph = import_graph()
    assert "experiment.store.sql" in graph["experiment.store"]
    assert "settings.registry" in graph["settings.registries"]
    assert "pipeline.callbacks.run_plots" in graph["experiment.worker"]  # imported inside a function


def test_the_checks_catch_what_they_are_for():
    graph = {"tools.a": {"settings.b"}, "settings.b": set(), "analysis.c": {"pipeline.d", "experiment.store.e"},
             "pipeline.d": {"pipeline.f"}, "pipeline.f": {"pipeline.d"}, "experiment.store.e": set()}
    assert floor_problems(graph) == ["analysis.c imports pipeline.d: analysis reads through "
                                     f"{', '.join(ANALYSIS_READS)} only",
                                     "tools.a imports settings.b: settings is above tools"]
    assert circles(graph) == [["pipeline.d", "pipeline.f"]]


def test_no_import_runs_back_up_a_floor():
    problems = floor_problems(import_graph())
    assert not problems, "\n".join(problems)


def test_no_import_circle():
    found = circles(import_graph())
    assert not found, "\n".join(" <-> ".join(c) for c in found)


def test_network_encoders_data_and_pipeline_never_import_the_database_or_mlflow():
    for name, path in sorted(project_modules().items()):
        if FLOORS[name.split(".")[0]] <= FLOORS["pipeline"]:
            roots = set()
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    roots |= {alias.name.split(".")[0] for alias in node.names}
                elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                    roots.add(node.module.split(".")[0])
            assert not roots & {"sqlalchemy", "alembic", "mlflow"}, f"{name} imports {roots & {'sqlalchemy', 'mlflow'}}"
