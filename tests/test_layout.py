"""The package's layer contract: imports flow one way, and no module imports another that imports it back.

The layers, lowest first (a module may import its own layer and those below):

0. leaves: errors, settings, the defaults (no numpy, no torch: the command line checks arguments with them)
1. core: the measurement kernels (graph, magnitudes, spectral methods, nulls, tests)
2. sources and where work runs: zoo, backends, folders (and reading .npz files without trusting them)
3. results: the typed records of a run, their rows and JSON form, and the arrays the figures need
4. analysis and studies: what fills the records (and loading a model with the command line's defaults)
5. output: tables, graph files, figures, reports
6. pipeline and sweep: every command's work (and the checks that run before torch is imported; rebuilding a
   folder's reports, which needs no torch)
7. cli: parses, calls the pipeline, prints

So output reads results and never the analysis (it is handed the profiles and arrays it draws, and never
recomputes them); the analysis fills the records that output reads; the command line only talks to the
pipeline.
"""

from __future__ import annotations

import ast
import fnmatch
from pathlib import Path

import networkx as nx
import pytest

import modularity

PACKAGE = Path(modularity.__file__).resolve().parent

LAYERS: list[tuple[str, ...]] = [
    ("modularity.errors", "modularity.settings", "modularity.core.defaults"),
    ("modularity.core", "modularity.core.*"),
    ("modularity.zoo", "modularity.zoo.*", "modularity.backends", "modularity.folders", "modularity.npzfile"),
    ("modularity.results", "modularity.arrays"),
    ("modularity.analysis", "modularity.analysis.*", "modularity.studies", "modularity.studies.*",
     "modularity.loading"),
    ("modularity.output", "modularity.output.*"),
    ("modularity.pipeline", "modularity.sweep", "modularity.preflight", "modularity.rebuilding"),
    ("modularity.cli", "modularity.__main__"),
]

# Within the layers' order, imports that are still not allowed.
FORBIDDEN: list[tuple[str, str]] = [
    ("modularity.output*", "modularity.analysis*"),  # output reads results only
    ("modularity.output*", "modularity.studies*"),
    ("modularity.output*", "modularity.loading"),
    ("modularity.output*", "modularity.core.magnitude"),  # profiles are handed over, never rebuilt
    ("modularity.output*", "modularity.core.spectral"),
    ("modularity.output*", "modularity.core.methods"),
    ("modularity.output*", "modularity.core.nulls"),
    ("modularity.cli", "modularity.analysis*"),  # the command line calls the pipeline
    ("modularity.cli", "modularity.output*"),
    ("modularity.cli", "modularity.zoo*"),
    ("modularity.cli", "modularity.sweep"),
]
# The few names output may take from the core: data types, not computations.
ALLOWED_NAMES = {("modularity.output*", "modularity.core.magnitude"): {"Profile"}}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, name: str) -> dict[str, set[str]]:
    """Every modularity module ``path`` imports, at the top or inside functions, with the names taken from it."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out: dict[str, set[str]] = {}
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("modularity"):
                    out.setdefault(a.name, set())
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            if base.startswith("modularity"):
                out.setdefault(base, set()).update(a.name for a in node.names)
                for a in node.names:
                    out.setdefault(f"{base}.{a.name}", set())
    return out


MODULES = {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _edges() -> list[tuple[str, str, set[str]]]:
    edges = []
    for name, path in MODULES.items():
        for target, names in _imports(path, name).items():
            if target in MODULES and target != name and not name.startswith(target + "."):
                edges.append((name, target, names))
    return edges


def _layer(module: str) -> int:
    for i, patterns in enumerate(LAYERS):
        if any(fnmatch.fnmatchcase(module, p) for p in patterns):
            return i
    raise AssertionError(f"{module} belongs to no layer of the contract: add it to LAYERS")


def test_every_module_has_a_layer():
    for module in MODULES:
        if module != "modularity":  # the package imports its names lazily, by string
            _layer(module)


def test_no_import_cycles_between_modules():
    graph = nx.DiGraph([(a, b) for a, b, _ in _edges()])
    assert list(nx.simple_cycles(graph)) == []


def _upward(edges: list[tuple[str, str, set[str]]]) -> list[str]:
    return [f"{a} (layer {_layer(a)}) imports {b} (layer {_layer(b)})" for a, b, _ in edges
            if a != "modularity" and _layer(b) > _layer(a)]


def _forbidden(edges: list[tuple[str, str, set[str]]]) -> list[str]:
    broken = []
    for a, b, names in edges:
        for src, dst in FORBIDDEN:
            if fnmatch.fnmatchcase(a, src) and fnmatch.fnmatchcase(b, dst):
                allowed = next((v for (s, d), v in ALLOWED_NAMES.items()
                                if fnmatch.fnmatchcase(a, s) and fnmatch.fnmatchcase(b, d)), set())
                if not names or not names <= allowed:
                    broken.append(f"{a} imports {sorted(names - allowed) or b} from {b}")
    return broken


def test_imports_flow_down_the_layers():
    assert _upward(_edges()) == []


def test_output_reads_results_and_the_cli_calls_the_pipeline():
    assert _forbidden(_edges()) == []


@pytest.mark.parametrize("edge, check", [
    (("modularity.core.graph", "modularity.results", {"AnalysisResult"}), _upward),
    (("modularity.output.figures", "modularity.core.magnitude", {"downstream_profile"}), _forbidden),
    (("modularity.output.report", "modularity.analysis.layer", {"analyze_layer"}), _forbidden),
    (("modularity.cli", "modularity.analysis", {"analyze_model"}), _forbidden),
])
def test_the_contract_catches_a_broken_import(edge, check):
    """Each check reports an import that breaks the contract (so it cannot pass by checking nothing)."""
    assert check([edge]) != [] and check([("modularity.output.figures", "modularity.core.magnitude",
                                           {"Profile"})]) == []


def _top_level_names_from(path: Path, name: str) -> dict[str, set[str]]:
    """Names each top-level ``from X import ...`` of ``path`` takes, by the module X resolves to."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out: dict[str, set[str]] = {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            out.setdefault(base, set()).update(a.name for a in node.names)
    return out


def test_no_module_takes_names_from_a_package_it_belongs_to():
    """A submodule imported while its package's ``__init__`` runs sees that package half-built: a name the
    ``__init__`` defines later is missing. The module graph above leaves out imports of one's own package, so
    it cannot see this; submodules of the package are safe to import from it (Python imports them)."""
    bad = []
    for name, path in MODULES.items():
        for target, names in _top_level_names_from(path, name).items():
            if target in MODULES and name.startswith(target + ".") and MODULES[target].name == "__init__.py":
                taken = sorted(n for n in names if f"{target}.{n}" not in MODULES)
                if taken:
                    bad.append(f"{name} takes {', '.join(taken)} from its own package {target}")
    assert bad == []
