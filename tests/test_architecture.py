"""The architecture as a rule the code keeps (docs/architecture.md).

- import-linter's contracts in ``pyproject.toml``: the layers, lowest first
  core < hardware < calibration < signal < protocols | drills | live <
  scoring | storage < clinic < webui | screen < commands;
- no import cycles between any two modules, function-level imports included
  (the layers contract alone does not see a cycle inside one package);
- every module belongs to a layer, and the shared vocabulary
  (``station.core``) imports nothing of the project but itself;
- ruff, configured in ``pyproject.toml``, finds nothing.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import grimp
import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("station", "hardware", "calibration", "webui")


def _config() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]


def _layers() -> list[str]:
    contract = next(c for c in _config()["contracts"] if c["id"] == "layers")
    return [name.strip() for layer in contract["layers"] for name in layer.split("|")]


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph(*PACKAGES, include_external_packages=False)


def _strongly_connected(graph: grimp.ImportGraph) -> list[list[str]]:
    """Tarjan's algorithm, iterative: the groups of modules that import each other."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    groups: list[list[str]] = []
    counter = 0
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.find_modules_directly_imported_by(child)))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    group = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.append(member)
                        if member == node:
                            break
                    if len(group) > 1:
                        groups.append(sorted(group))
    return groups


def test_the_cycle_finder_finds_a_cycle():
    g = grimp.ImportGraph()
    for m in ("a", "a.x", "a.y", "a.z"):
        g.add_module(m)
    g.add_import(importer="a.x", imported="a.y")
    g.add_import(importer="a.y", imported="a.z")
    g.add_import(importer="a.z", imported="a.x")
    assert _strongly_connected(g) == [["a.x", "a.y", "a.z"]]


def test_no_import_cycles(graph):
    cycles = _strongly_connected(graph)
    assert cycles == [], "modules that import each other (function-level imports included): " + "; ".join(
        " <-> ".join(group) for group in cycles)


def test_every_module_belongs_to_a_layer(graph):
    layers = _layers()
    # the package faces hold a docstring and, for station, the version: they import nothing
    faces = {"station", "hardware", "calibration", "webui"}
    outside = sorted(m for m in graph.modules if m not in faces
                     and not any(m == layer or m.startswith(layer + ".") for layer in layers))
    assert outside == [], f"modules in no layer of pyproject.toml's contract: {outside}"
    for face in faces:
        assert graph.find_modules_directly_imported_by(face) == set(), f"{face}/__init__.py imports the project"


def test_the_shared_vocabulary_imports_nothing_of_the_project(graph):
    core = {m for m in graph.modules if m == "station.core" or m.startswith("station.core.")}
    for module in sorted(core):
        outside = graph.find_modules_directly_imported_by(module) - core
        assert not outside, f"{module} imports {sorted(outside)}: station.core may import only itself"


def _tool(name: str) -> str:
    path = Path(sys.executable).with_name(name)
    found = str(path) if path.exists() else shutil.which(name)
    assert found, f"{name} is not installed: pip install -e '.[test]'"
    return found


def test_import_linter_contracts_are_kept():
    proc = subprocess.run([_tool("lint-imports"), "--no-cache"], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "0 broken" in proc.stdout


def test_ruff_finds_nothing():
    proc = subprocess.run([_tool("ruff"), "check", "--no-cache", "."], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]


def test_view_models_charts_and_the_report_need_no_web_framework():
    """webui/views holds what the pages show (view models, SVG charts, the PDF report): plain Python,
    testable without FastAPI; the routes alone speak HTTP."""
    g = grimp.build_graph("webui", include_external_packages=True)
    for module in sorted(m for m in g.modules if m.startswith("webui.views")):
        web = {m for m in g.find_modules_directly_imported_by(module) if m.split(".")[0] in ("fastapi", "starlette")}
        assert not web, f"{module} imports {sorted(web)}"


def test_the_pages_read_the_app_through_dependencies():
    """Routes take the station's parts as Annotated dependencies (webui/deps.py), never from app.state."""
    for path in sorted((REPO / "webui" / "routes").glob("*.py")):
        assert "app.state" not in path.read_text(), f"{path.name} reads request.app.state: use webui.deps"
