"""The package's shape: no import cycle, engines depend on verification and never the reverse, no module
much over 250 lines, importing the package configures no logging, and what has one home stays there."""

from __future__ import annotations

import ast
import logging
import re
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "pipeline"


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, set[str]]:
    """Every module's imports of the package's own modules (also those inside functions)."""
    modules = {_module(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                for alias in node.names:
                    target = f"{base}.{alias.name}"
                    found.add(target if target in modules else base)
            elif isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
        graph[name] = {m for m in found if m in modules and m != name}
    return graph


def test_the_import_graph_has_no_cycle():
    graph, done, path = _imports(), set(), []

    def visit(node: str) -> None:
        if node in path:
            raise AssertionError("import cycle: " + " -> ".join(path[path.index(node):] + [node]))
        if node in done:
            return
        path.append(node)
        for target in sorted(graph[node]):
            if target != node.rpartition(".")[0]:  # a module reaching its own package's __init__ is not a cycle
                visit(target)
        path.pop()
        done.add(node)

    for module in sorted(graph):
        visit(module)


def test_the_sub_packages_import_each_other_without_a_cycle():
    def room(module: str) -> str:  # pipeline.model.plan -> pipeline.model; pipeline.tasks stays itself
        return ".".join(module.split(".")[:2])

    graph: dict[str, set[str]] = {}
    for module, targets in _imports().items():
        if module != "pipeline":
            graph.setdefault(room(module), set()).update(room(t) for t in targets if room(t) not in (room(module),
                                                                                                    "pipeline"))
    done, path = set(), []

    def visit(node: str) -> None:
        if node in path:
            raise AssertionError("cycle between sub-packages: " + " -> ".join(path[path.index(node):] + [node]))
        if node not in done:
            path.append(node)
            for target in sorted(graph.get(node, ())):
                visit(target)
            path.pop()
            done.add(node)

    for node in sorted(graph):
        visit(node)


def test_lower_layers_never_import_higher_ones():
    below = {"pipeline.model": {"pipeline.postgres", "pipeline.engines", "pipeline.tasks", "pipeline.source"},
             "pipeline.types": {"pipeline.verification", "pipeline.engines", "pipeline.postgres", "pipeline.tasks"},
             "pipeline.verification": {"pipeline.engines", "pipeline.postgres", "pipeline.tasks", "pipeline.source"},
             "pipeline.engines": {"pipeline.postgres", "pipeline.tasks"},
             "pipeline.postgres": {"pipeline.engines", "pipeline.tasks"}}
    wrong = [f"{module} imports {target}" for module, targets in _imports().items() for layer, banned in below.items()
             if module.startswith(layer) for target in targets if any(target.startswith(b) for b in banned)]
    assert wrong == []


def test_no_module_is_much_over_250_lines():
    assert [p.name for p in PACKAGE.rglob("*.py") if len(p.read_text().splitlines()) > 260] == []


def test_importing_the_package_configures_no_logging():
    probe = ("import logging, pipeline; own = logging.getLogger('pipeline'); "
             "print(len(own.handlers), own.propagate, len(logging.getLogger('luigi-interface').filters))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["0", "True", "0"]
    assert logging.getLogger("pipeline").propagate


@pytest.mark.parametrize("snippet, home", [
    ("to_regclass(%s) IS NOT NULL", "postgres/client.py"),  # client.exists
    ("pg_advisory_xact_lock", "postgres/client.py"),  # client.lock
    ('.split("\\n"', "errors.py"),  # errors.first_line
    ("exc).splitlines()[0]", "errors.py"),
    ('"_pipeline_file"', "model/options.py"),  # the hidden columns' names
    ('"_pipeline_row"', "model/options.py"),
    ("CREATE TABLE IF NOT EXISTS {ledger}", "postgres/schema.py"),  # the state tables
    ("def export_options", "-"),  # the options' second shape, gone: ``LoadOptions`` is the one
])
def test_a_snippet_with_one_home_is_written_there_only(snippet, home):
    assert [str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")
            if snippet in p.read_text() and p.relative_to(PACKAGE) != Path(home)] == []


def test_the_postgres_side_tells_write_modes_apart_by_their_writer_not_by_name():
    compared = re.compile(r"""\bmode\s*[!=]=\s*["']""")
    assert [p.name for p in (PACKAGE / "postgres").rglob("*.py") if compared.search(p.read_text())] == []
