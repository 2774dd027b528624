"""Sphinx extension of the modularity docs: pages generated from the repository at build time, so none goes stale.

What it does, each part a few functions:

* **API pages**: ``api/modules.rst`` lists every module of the package (found with
  :mod:`pkgutil`, ``__main__`` left out because importing it runs the command line);
  autosummary then writes one page per module. Short class names used as types in
  numpydoc sections (``LayerResult``, ``ChannelGraph``) are mapped to their modules.
* **Repository pages**: ``README.md``, ``reports/**/*.md`` and ``docs/example.ipynb``
  are mirrored under ``docs/repo/`` with the repository's layout, so relative links
  between them keep working (a link to a page of this site, ``docs/method.rst``, points
  at that page). Local links and images are checked (a missing target fails
  the build), the files they name are copied beside the copy, and a code span naming a
  file of the repository (```reports/methods.md```, ```findings/clusterability.png```)
  becomes a link to its page, its download or, for a figure, the figure itself at the
  end of the page. The notebook becomes a Markdown page from its stored outputs (it is
  never executed here; ``tests/test_notebook.py`` executes it).
* **Schema tables**: the directives ``summary-schema``, ``settings-table``,
  ``column-table``, ``sweep-columns``, ``unit-columns`` and ``results-files`` build the
  tables of the results-folder page from the code (dataclass fields and their
  numpydoc descriptions, the ``Column`` lists, the report's list of files). A field
  without a description is a warning, so a new field cannot go undocumented.
* **Strictness**: references to other projects (numpy, torch, the standard library)
  are let through by name, since intersphinx would download inventories; references
  into ``modularity`` must resolve. Warnings located in the modules named by the
  ``modularity_docs_lenient_modules`` setting are recorded in
  ``<build>/excluded-warnings.txt`` instead of failing the build.
"""

from __future__ import annotations

import base64
import dataclasses
import importlib
import inspect
import logging
import pkgutil
import re
import shutil
import types
import typing
from pathlib import Path
from typing import Any

from docutils import nodes
from docutils.statemachine import StringList
from sphinx import addnodes
from sphinx.application import Sphinx
from sphinx.util import logging as sphinx_logging
from sphinx.util.docutils import SphinxDirective

LOG = sphinx_logging.getLogger(__name__)

PACKAGE = "modularity"
MIRROR = "repo"  # docs/<MIRROR>/ holds the generated copies of repository pages (ignored by git)
DOC_SUFFIXES = (".md",)
IMAGE_SUFFIXES = (".png", ".svg", ".jpg", ".jpeg", ".gif")

# Roots of names that belong to other projects. Without intersphinx (which downloads inventories) references to
# them cannot resolve; they are let through by name. Nothing under ``modularity`` is ever let through.
EXTERNAL = (
    "numpy", "np", "torch", "torchvision", "nn", "F", "scipy", "threadpoolctl", "efficientnet_lite_pytorch",
    "sklearn", "pandas", "pd", "networkx", "nx", "matplotlib", "PIL",
    "onnx", "safetensors", "jinja2", "dask", "distributed", "tqdm", "timm", "transformers", "pyarrow",
    "pathlib", "typing", "typing_extensions", "collections", "dataclasses", "enum", "os", "io", "re", "json",
    "csv", "zipfile", "gzip", "contextlib", "concurrent", "multiprocessing", "logging", "types", "abc", "numbers",
    "argparse", "datetime", "hashlib", "weakref", "functools", "itertools", "subprocess", "signal", "tempfile",
    "shutil", "threading", "queue", "warnings", "string", "math", "random", "builtins", "importlib", "inspect",
    "decimal", "fractions", "operator", "copy", "sys", "uuid", "socket", "textwrap", "pickle", "struct",
)
# Bare words numpydoc turns into references: builtins, typing names and the usual docstring type vocabulary.
EXTERNAL_WORDS = (
    "int", "float", "complex", "str", "bytes", "bool", "None", "NoneType", "list", "dict", "tuple", "set",
    "frozenset", "object", "type", "slice", "range", "callable", "Callable", "Any", "Iterable", "Iterator",
    "Sequence", "Mapping", "MutableMapping", "Generator", "Literal", "Optional", "Union", "ClassVar", "Self",
    "Exception", "BaseException", "ValueError", "KeyError", "TypeError", "RuntimeError", "OSError", "SystemExit",
    "KeyboardInterrupt", "NotImplementedError", "ImportError", "FileNotFoundError", "IndexError",
    "ndarray", "array", "array_like", "array-like", "tensor", "Tensor", "Module", "DataFrame", "Series",
    "Figure", "FigureBase", "Axes", "Path", "PathLike", "DiGraph", "Graph", "MultiDiGraph", "GraphModule",
    "Node", "Parameter", "dtype", "device", "scalar", "iterable", "sequence", "mapping", "function", "path",
    "file", "file-like", "module", "mappingproxy", "Namespace", "ArgumentParser", "Generic", "TypeVar",
    "generator", "matrix", "vector", "integer", "number", "string", "boolean", "numeric", "Future", "Client",
    "LocalCluster", "Executor", "ProcessPoolExecutor", "SeedSequence", "BitGenerator", "RandomState",
    "ModelProto", "NodeProto", "TensorProto", "GraphProto", "csr_matrix", "sparse", "LinearOperator", "Environment",
    "Template", "PdfPages", "Colormap", "Normalize", "tqdm", "Logger", "TextIO", "IO", "Match", "Pattern",
)


# ----------------------------------------------------------------------------------------------- the package

def package_modules() -> list[str]:
    """Every module of the package, dotted, sorted; ``__main__`` left out (importing it runs the CLI)."""
    pkg = importlib.import_module(PACKAGE)
    names = []
    for info in pkgutil.walk_packages(pkg.__path__, PACKAGE + "."):
        if info.name.rsplit(".", 1)[-1] == "__main__":
            continue
        names.append(info.name)
    return sorted(names)


def top_level_modules() -> list[str]:
    """The package's direct submodules and subpackages (autosummary recurses into the subpackages)."""
    pkg = importlib.import_module(PACKAGE)
    return sorted(f"{PACKAGE}.{m.name}" for m in pkgutil.iter_modules(pkg.__path__)
                  if not m.name.startswith("_"))


def class_aliases(modules: list[str]) -> dict[str, str]:
    """Short class name -> dotted name, for every public class defined in the package whose short name is unique."""
    seen: dict[str, set[str]] = {}
    for modname in modules:
        module = importlib.import_module(modname)
        for name, obj in vars(module).items():
            if name.startswith("_") or not inspect.isclass(obj) or obj.__module__ != modname:
                continue
            seen.setdefault(name, set()).add(f"{modname}.{name}")
    return {name: next(iter(full)) for name, full in seen.items() if len(full) == 1}


def write_if_changed(path: Path, text: str) -> None:
    """Write ``text`` only when it differs, so an unchanged page is not read again by an incremental build."""
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def write_api_modules(docs: Path) -> None:
    """``api/modules.rst``: an autosummary of every top-level module, recursive."""
    lines = [".. This file is generated by docs/_ext/modularity_docs.py at every build: do not edit.", "",
             "Modules", "=======", "",
             "Every module of the package, one page each (generated from the docstrings).", "",
             ".. autosummary::", "   :toctree: generated", "   :recursive:", ""]
    lines += [f"   {name}" for name in top_level_modules()]
    write_if_changed(docs / "api" / "modules.rst", "\n".join(lines) + "\n")


# ----------------------------------------------------------------------------------------------- repository pages

_FENCE = re.compile(r"^\s*(```+|~~~+)")
_LINK = re.compile(r"(!?)\[((?:[^\[\]]|\[[^\]]*\])*)\]\(([^()\s]+)(\s+\"[^\"]*\")?\)")
_CODE = re.compile(r"(?<![`\w])`([^`\s]+)`(?!`)")


def _is_local(target: str) -> bool:
    return not re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", target) and not target.startswith(("#", "/"))


class RepoPages:
    """Mirrors the repository's Markdown pages (and the notebook) under ``docs/<MIRROR>/`` with checked links."""

    def __init__(self, root: Path, docs: Path) -> None:
        self.root, self.docs, self.out = root, docs, docs / MIRROR
        self.sources = self._sources()
        self.linked_only: set[Path] = set()  # Markdown files that are pages only because a page links to them

    def _sources(self) -> list[Path]:
        pages = [self.root / name for name in ("README.md", "BENCHMARKS.md") if (self.root / name).is_file()]
        pages += sorted((self.root / "reports").rglob("*.md"))
        pages += sorted((self.root / "docs").glob("*.ipynb"))
        return pages

    def mirrored(self, path: Path) -> Path:
        """Where a repository file is mirrored (a notebook becomes a ``.md`` page)."""
        rel = path.relative_to(self.root)
        return self.out / (rel.with_suffix(".md") if rel.suffix == ".ipynb" else rel)

    def docname(self, path: Path) -> str:
        return self.mirrored(path).relative_to(self.docs).with_suffix("").as_posix()

    def build(self) -> list[str]:
        """Write every page; return their docnames. Files no longer in the repository are removed from the mirror."""
        keep: set[Path] = set()
        done: set[Path] = set()
        while len(done) < len(self.sources):  # a Markdown file a page links to becomes a page too (an orphan one)
            for src in [p for p in self.sources if p not in done]:
                done.add(src)
                dest = self.mirrored(src)
                if src.suffix == ".ipynb":
                    text, extra = notebook_markdown(src, dest)
                else:
                    text, extra = self.rewrite(src)
                    if src in self.linked_only:
                        text = "---\norphan: true\n---\n" + text
                keep |= extra
                write_if_changed(dest, text)
                keep.add(dest)
        if self.out.is_dir():
            for path in sorted(self.out.rglob("*"), reverse=True):
                if path.is_file() and path not in keep:
                    path.unlink()
                elif path.is_dir() and not any(path.iterdir()):
                    path.rmdir()
        return [self.docname(src) for src in self.sources]

    def _copy(self, path: Path) -> Path:
        dest = self.out / path.relative_to(self.root)
        if not dest.is_file() or dest.stat().st_size != path.stat().st_size \
                or dest.stat().st_mtime < path.stat().st_mtime:
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, dest)
        return dest

    def _resolve(self, src: Path, target: str, *, from_root: bool) -> Path | None:
        """An existing file of the repository that ``target`` names from ``src`` (also from the root if asked)."""
        bare = target.split("#", 1)[0]
        if not bare:
            return None
        bases = [src.parent] + ([self.root] if from_root else [])
        for base in bases:
            path = (base / bare).resolve()
            try:
                path.relative_to(self.root)
            except ValueError:
                continue
            if path.is_file():
                return path
        return None

    def _relative(self, src: Path, path: Path) -> str:
        """The link from the mirrored ``src`` to the mirrored ``path``."""
        here = self.mirrored(src).parent
        there = self.mirrored(path) if path in self.sources else self.out / path.relative_to(self.root)
        return Path(_relpath(there, here)).as_posix()

    def rewrite(self, src: Path) -> tuple[str, set[Path]]:
        """The mirrored text of one Markdown page and the files copied for it."""
        copied: set[Path] = set()
        figures: list[tuple[str, str]] = []
        out_lines = []
        fence = None
        for line in src.read_text(encoding="utf-8").splitlines():
            m = _FENCE.match(line)
            if fence is None and m:
                fence = m.group(1)[0] * 3
                out_lines.append(line)
                continue
            if fence is not None:
                if line.strip().startswith(fence):
                    fence = None
                out_lines.append(line)
                continue
            out_lines.append(self._rewrite_line(src, line, copied, figures))
        if figures:
            out_lines += ["", "```{rubric} Figures named on this page", "```", ""]
            for label, rel in figures:
                out_lines += [f"```{{figure}} {rel}", ":width: 90%", "", f"`{label}`", "```", ""]
        header = f"<!-- Generated from {src.relative_to(self.root).as_posix()} by docs/_ext/modularity_docs.py: " \
                 "edit the original. -->\n"
        return header + "\n".join(out_lines) + "\n", copied

    def _rewrite_line(self, src: Path, line: str, copied: set[Path], figures: list[tuple[str, str]]) -> str:
        def link(m: re.Match) -> str:
            bang, text, target, title = m.group(1), m.group(2), m.group(3), m.group(4) or ""
            if not _is_local(target):
                return m.group(0)
            path = self._resolve(src, target, from_root=False)
            folder = (src.parent / target.split("#", 1)[0]).resolve()
            if path is None and target and folder.is_dir() and folder.is_relative_to(self.root):
                readme = folder / "README.md"
                if not readme.is_file():  # a folder without a page: its name, as code
                    return f"{text} (`{folder.relative_to(self.root).as_posix()}/`)" if not bang else m.group(0)
                path = readme
            if path is None:  # left as it is: MyST reports the missing target, which fails the build
                return m.group(0)
            if path.parent == self.docs and path.suffix in (".rst", ".md") and not bang:
                # a page of this site (docs/method.rst): linked where it is, not mirrored
                anchor = "#" + target.split("#", 1)[1] if "#" in target else ""
                return f"[{text}]({_relpath(path, self.mirrored(src).parent)}{anchor}{title})"
            if path.suffix == ".md" and path not in self.sources:
                self.sources.append(path)
                self.linked_only.add(path)
            if path not in self.sources:
                copied.add(self._copy(path))
            anchor = "#" + target.split("#", 1)[1] if "#" in target else ""
            return f"{bang}[{text}]({self._relative(src, path)}{anchor}{title})"

        def code(m: re.Match) -> str:
            span = m.group(1)
            start, end = m.start(), m.end()
            if start > 0 and line[start - 1] == "[" and line[end:end + 2] == "](":
                return m.group(0)  # already a link's text
            if not re.search(r"\.[A-Za-z0-9]+$", span) or span.startswith("-"):
                return m.group(0)
            path = self._resolve(src, span, from_root=True)
            if path is None:
                return m.group(0)
            rel_root = path.relative_to(self.root)
            if path in self.sources:
                return f"[`{span}`]({self._relative(src, path)})"
            if rel_root.parts[0] != "reports":  # scripts, tests, sources: named, not copied
                return m.group(0)
            copied.add(self._copy(path))
            rel = self._relative(src, path)
            if path.suffix.lower() in IMAGE_SUFFIXES and (span, rel) not in figures:
                figures.append((span, rel))
            return f"[`{span}`]({rel})"

        parts = re.split(r"(`[^`]*`)", line)  # links are rewritten outside code spans only
        for i in range(0, len(parts), 2):
            parts[i] = _LINK.sub(link, parts[i])
        line = "".join(parts)
        return _CODE.sub(code, line)


def _relpath(target: Path, start: Path) -> str:
    import os

    return os.path.relpath(target, start)


def notebook_markdown(src: Path, dest: Path) -> tuple[str, set[Path]]:
    """A Markdown page of a notebook from its stored outputs (never executed here), and the images it wrote."""
    import nbformat

    nb = nbformat.read(src, as_version=4)
    written: set[Path] = set()
    out = [f"<!-- Generated from {src.name} by docs/_ext/modularity_docs.py from its stored outputs. -->", ""]
    images = dest.parent / f"{dest.stem}_files"
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown":
            out += [cell.source, ""]
            continue
        if cell.cell_type != "code":
            continue
        out += ["```python", cell.source, "```", ""]
        for j, output in enumerate(cell.get("outputs", [])):
            kind = output.get("output_type")
            if kind == "stream":
                if output.get("name") == "stdout" and output.get("text", "").strip():
                    out += ["```text", output["text"].rstrip("\n"), "```", ""]
                continue  # stderr: progress bars
            if kind == "error":
                out += ["```text", "\n".join(output.get("traceback", [])), "```", ""]
                continue
            data = output.get("data", {})
            if "image/png" in data:
                path = images / f"cell{i}_{j}.png"
                payload = base64.b64decode(data["image/png"])
                if not path.is_file() or path.read_bytes() != payload:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_bytes(payload)
                written.add(path)
                out += [f"![output of cell {i}]({images.name}/{path.name})", ""]
            elif "text/html" in data:
                out += ["```{raw} html", '<div class="nb-output">', data["text/html"].strip(), "</div>", "```", ""]
            elif "text/plain" in data:
                out += ["```text", data["text/plain"].rstrip("\n"), "```", ""]
    return "\n".join(out) + "\n", written


# ----------------------------------------------------------------------------------------------- schema tables

def _doc_entries(cls: type) -> dict[str, str]:
    """Field name -> description, from the numpydoc ``Attributes`` and ``Parameters`` sections of ``cls``."""
    from numpydoc.docscrape import NumpyDocString

    doc = NumpyDocString(inspect.getdoc(cls) or "")
    out: dict[str, str] = {}
    for section in ("Parameters", "Attributes"):
        for param in doc[section]:
            text = " ".join(line.strip() for line in param.desc).strip()
            for name in param.name.split(","):
                name = name.strip()
                if name and text and name not in out:
                    out[name] = text
    return out


def _type_text(f: dataclasses.Field) -> str:
    t = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
    return t.replace("typing.", "")


def _inner_dataclasses(hint: Any) -> list[type]:
    """The dataclasses inside a type hint (``Recovery | None``, ``dict[str, Control]``, ...)."""
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return [hint]
    found = []
    for arg in typing.get_args(hint):
        found += _inner_dataclasses(arg)
    return found


def _cell(text: str) -> list[str]:
    """A list-table cell: its first line starts with ``* -`` or ``  -``; continuation lines are indented."""
    return (text or "..").splitlines() or [".."]


def list_table(header: list[str], rows: list[list[str]], widths: list[int] | None = None,
               title: str = "") -> list[str]:
    lines = [f".. list-table:: {title}".rstrip(), "   :header-rows: 1", "   :class: schema"]
    if widths:
        lines.append("   :widths: " + " ".join(str(w) for w in widths))
    lines.append("")
    for row in [header] + rows:
        for j, cell in enumerate(row):
            first, *rest = _cell(cell)
            lines.append(("   * - " if j == 0 else "     - ") + first)
            lines += ["       " + r for r in rest]
    return lines + [""]


def _literal(text: str) -> str:
    return f"``{text}``" if text else ""


class _SchemaDirective(SphinxDirective):
    """Shared: parse generated reST in the context of a module, so unqualified references resolve there."""

    def parse(self, lines: list[str], module: str | None = None) -> list[nodes.Node]:
        if module:  # an incremental build reads this page again when the module it documents changes
            source = getattr(importlib.import_module(module), "__file__", None)
            if source:
                self.env.note_dependency(source)
        node = nodes.container(classes=["schema-tables"])
        ctx = self.env.ref_context
        before = ctx.get("py:module")
        if module:
            ctx["py:module"] = module
        try:
            self.state.nested_parse(StringList(lines, source=f"<{self.name} directive>"), self.content_offset, node)
        finally:
            if before is None:
                ctx.pop("py:module", None)
            else:
                ctx["py:module"] = before
        return [node]

    def undocumented(self, what: str) -> None:
        LOG.warning("%s has no description in its docstring: document it (numpydoc Attributes/Parameters) so that "
                    "the results schema page describes it", what, location=(self.env.docname, self.lineno),
                    type="modularity", subtype="schema")


def _import(dotted: str) -> Any:
    module, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(module), name)


class SummarySchema(_SchemaDirective):
    """Every key of ``summary.json``: the fields of :class:`AnalysisResult` and of every record nested in it.

    The records are found by walking the type hints from the root class, so a new nested record appears here by
    itself; fields marked transient (kept in memory only) are left out, as ``AnalysisResult.to_dict`` does.
    """

    required_arguments = 1
    option_spec = {"file": str}

    def run(self) -> list[nodes.Node]:
        root = _import(self.arguments[0])
        filename = self.options.get("file", "summary.json")
        settings_cls = _import("modularity.settings.AnalysisSettings")
        queue: list[tuple[type, str]] = [(root, "")]
        seen: set[type] = set()
        out: list[nodes.Node] = []
        while queue:
            cls, path = queue.pop(0)
            if cls in seen:
                continue
            seen.add(cls)
            hints = typing.get_type_hints(cls, localns={"Profile": _import("modularity.core.magnitude.Profile")})
            docs = _doc_entries(cls)
            rows = []
            where = path or filename
            for f in dataclasses.fields(cls):
                if f.metadata.get("transient"):
                    continue
                desc = docs.get(f.name, "")
                if not desc:
                    self.undocumented(f"{cls.__module__}.{cls.__qualname__}.{f.name}")
                key = f"{path}.{f.name}" if path else f.name
                inner = [c for c in _inner_dataclasses(hints[f.name]) if c is not cls]
                for c in inner:
                    if c is settings_cls:
                        desc += " The keys are in :ref:`settings-keys` below."
                        continue
                    if c is root:
                        continue
                    sub = key
                    origin = typing.get_origin(hints[f.name])
                    if origin is list or list in [typing.get_origin(a) for a in typing.get_args(hints[f.name])]:
                        sub = f"{key}[]"
                    elif origin is dict or dict in [typing.get_origin(a) for a in typing.get_args(hints[f.name])]:
                        sub = f"{key}.<name>"
                    queue.append((c, sub))
                    desc += f" See :ref:`{_anchor(c)}`."
                if root in _inner_dataclasses(hints[f.name]) and cls is root:
                    desc += " The same schema as the whole file (without its own ``control``)."
                rows.append([_literal(f.name), _literal(_type_text(f)), desc])
            title = f"``{where}``: :class:`~{cls.__module__}.{cls.__qualname__}`"
            lines = [f".. _{_anchor(cls)}:", "", f".. rubric:: {title}", ""]
            lines += list_table(["key", "type", "meaning"], rows, [18, 22, 60])
            out += self.parse(lines, cls.__module__)  # the descriptions' references resolve in their own module
        return out


def _anchor(cls: type) -> str:
    return "schema-" + cls.__qualname__.lower()


class SettingsTable(_SchemaDirective):
    """The analysis settings: field, command-line option, default, accepted values, recorded or not, meaning."""

    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        cls = _import(self.arguments[0])
        docs = _doc_entries(cls)
        rows = []
        for f in dataclasses.fields(cls):
            desc = docs.get(f.name, "")
            if not desc:
                self.undocumented(f"{cls.__module__}.{cls.__qualname__}.{f.name}")
            accepted = " or ".join(c.describe() if c is not None else "None" for c in cls.constraints[f.name])
            recorded = "yes" if f.metadata.get("recorded") else "no"
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore
            rows.append([_literal(f.name), _literal(f.metadata.get("option", "")), _literal(repr(default)),
                         accepted, recorded, desc])
        lines = list_table(["setting", "option", "default", "accepted", "in summary.json", "meaning"], rows,
                           [12, 12, 10, 20, 8, 38])
        return self.parse(lines, cls.__module__)


class ColumnTable(_SchemaDirective):
    """A table's columns from a list of ``Column`` records: key, label and meaning."""

    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        columns = _import(self.arguments[0])
        rows = [[_literal(c.key), c.label, c.help] for c in columns]
        return self.parse(list_table(["column", "label", "meaning"], rows, [20, 16, 64]),
                          self.arguments[0].rpartition(".")[0])


class SweepColumns(_SchemaDirective):
    """``sweep.csv``: the fields of :class:`SweepRow`, described by its docstring or by the per-layer column."""

    def run(self) -> list[nodes.Node]:
        results = importlib.import_module("modularity.results")
        docs = _doc_entries(results.SweepRow)
        helps = {c.key: c.help for c in results.COLUMNS}
        rows = []
        for key in results.SWEEP_COLUMNS:
            desc = docs.get(key) or helps.get(key, "")
            if not desc:
                self.undocumented(f"modularity.results.SweepRow.{key}")
            rows.append([_literal(key), desc])
        return self.parse(list_table(["column", "meaning"], rows, [25, 75]), "modularity.results")


class UnitColumns(_SchemaDirective):
    """``units.csv``: columns computed from a small result, each described by a ``pattern: meaning`` content line."""

    has_content = True

    def run(self) -> list[nodes.Node]:
        results = importlib.import_module("modularity.results")
        described = []
        for line in self.content:
            if line.strip():
                pattern, _, meaning = line.partition(":")
                described.append((re.compile(pattern.strip() + "$"), meaning.strip(), pattern.strip()))
        layer = _tiny_layer(results)
        rows, used = [], set()
        for key in layer.unit_rows()[0]:
            match = next(((m, p) for rx, m, p in described if rx.match(key)), None)
            if match is None:
                self.undocumented(f"units.csv column {key!r}")
                rows.append([_literal(key), ""])
                continue
            used.add(match[1])
            rows.append([_literal(key), match[0]])
        for _, _, pattern in described:
            if pattern not in used:
                LOG.warning("unit-columns: %r matches no column of units.csv any more", pattern,
                            location=(self.env.docname, self.lineno), type="modularity", subtype="schema")
        return self.parse(list_table(["column", "meaning"], rows, [25, 75]), "modularity.results")


def _tiny_layer(results: types.ModuleType) -> Any:
    """A two-unit :class:`LayerResult` with branches and every SVD variant, to list the unit-table columns."""
    from modularity.core.null_summary import NullSummary

    variants = ("raw", "centred", "normalised")
    return results.LayerResult(
        name="x", kind="conv", n_units=2, consumers=["y"], branches=[0, 1], branch_names=["a", "b"],
        branch_source="concat", k=2, k_source="branches", singular_values=[1.0, 0.5],
        spectra={v: [1.0, 0.5] for v in variants}, null_spectra={}, embedding={v: [[0.0] * 3] * 2 for v in variants},
        clusters=[0, 1], n_dead=0, recovery=None, structure=results.Structure(NullSummary(1.0, None, None, None,
                                                                                           None, 0, "less")),
        shape=[2, 2], blocks=[["y", 0, 2]])


class ResultsFiles(_SchemaDirective):
    """The files of a results folder as the report lists them (``modularity.output.report``)."""

    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        files = _import(self.arguments[0])
        rows = [[_literal(name), desc] for name, desc in files]
        return self.parse(list_table(["file", "what it holds"], rows, [30, 70]), "modularity.output.report")


class PublicApi(_SchemaDirective):
    """The names ``import modularity`` offers (its ``__all__``), each with its summary line and where it lives."""

    def run(self) -> list[nodes.Node]:
        pkg = importlib.import_module(PACKAGE)
        rows, modules = [], []
        for name in pkg.__all__:
            if name.startswith("__"):
                continue
            obj = getattr(pkg, name)
            full = f"{obj.__module__}.{obj.__qualname__}"
            doc = (inspect.getdoc(obj) or "").strip().split("\n\n")[0].replace("\n", " ")
            if not doc:
                self.undocumented(full)
            kind = "class" if inspect.isclass(obj) else "function"
            rows.append([f":py:obj:`modularity.{name} <{full}>`", kind, doc, f":py:mod:`{obj.__module__}`"])
            modules.append(obj.__module__)
        out = self.parse(list_table(["name", "kind", "what it is", "defined in"], rows, [24, 8, 48, 20]), PACKAGE)
        body = next(iter(out[0].findall(nodes.tbody)))
        for row, module in zip(body.children, modules):  # a summary's references resolve in its own module
            for ref in row.findall(addnodes.pending_xref):
                ref["py:module"] = module
        return out


# ----------------------------------------------------------------------------------------------- strictness

class LenientModules(logging.Filter):
    """Holds back warnings located in the lenient modules (their docstrings or their API pages) and records them."""

    def __init__(self, patterns: list[str]) -> None:
        super().__init__()
        self.rx = re.compile(r"(?<![\w])(?:" + "|".join(f"(?:{p})" for p in patterns) + r")(?![\w])") \
            if patterns else None
        self.held: list[str] = []

    def filter(self, record: logging.LogRecord) -> bool:
        if self.rx is None or record.levelno < logging.WARNING:
            return True
        where = _location(getattr(record, "location", None))
        if where and self.rx.search(where.replace("/", ".").replace("\\", ".")):
            self.held.append(f"{where}: {record.getMessage()}")
            return False
        return True


def _location(location: Any) -> str:
    if location is None:
        return ""
    if isinstance(location, nodes.Node):
        return sphinx_logging.get_node_location(location) or ""
    if isinstance(location, tuple):
        return ":".join(str(x) for x in location if x is not None)
    return str(location)


def external_ignores() -> list[tuple[str, str]]:
    """``nitpick_ignore_regex`` entries for names outside the package (never for ``modularity...``)."""
    roots = "|".join(re.escape(r) for r in EXTERNAL)
    words = "|".join(re.escape(w) for w in EXTERNAL_WORDS)
    return [
        (r"py:.*", rf"(?!modularity\b)(?:{roots})(?:\..*)?"),
        (r"py:.*", rf"(?:{words})"),
        (r"py:.*", r"(?:\{.*\}|'.*'|\".*\"|[0-9.+-]+(?:e[0-9+-]+)?|None,?|True|False)"),  # numpydoc value sets
        (r"py:.*", r"(?:.*\.)?_[A-Za-z]\w*"),  # private objects are not documented (signatures may name them)
        (r"py:class", r"\w+\[[^\]]*"),  # pieces of a generic annotation that autodoc split at a comma
    ]


# ----------------------------------------------------------------------------------------------- references

def _lookup(target: str, modname: str | None, clsname: str | None) -> tuple[Any, Any, str] | None:
    """``(object, parent, attribute name)`` that ``target`` names as Python would see it, or None.

    A dotted ``modularity...`` target is imported; any other is looked up in the namespace of the module (and
    class) the reference is written in, so ``LoadedModel`` in a docstring of :mod:`modularity.pipeline` is the
    class that module imports under that name.
    """
    target = target.lstrip(".~")
    parts = target.split(".")
    starts: list[tuple[Any, list[str]]] = []
    if parts[0] == PACKAGE:
        for i in range(len(parts), 0, -1):
            try:
                starts.append((importlib.import_module(".".join(parts[:i])), parts[i:]))
                break
            except ImportError:
                continue
    elif modname and modname.split(".")[0] == PACKAGE:
        try:
            module = importlib.import_module(modname)
        except ImportError:
            return None
        if clsname and hasattr(module, clsname.split(".")[0]):
            cls = module
            for piece in clsname.split("."):
                cls = getattr(cls, piece, None)
            if cls is not None:
                starts.append((cls, parts))
        starts.append((module, parts))
    for obj, rest in starts:
        parent, name = None, ""
        for piece in rest:
            parent, name = obj, piece
            if hasattr(obj, piece):
                obj = getattr(obj, piece)
            elif dataclasses.is_dataclass(obj) and piece in {f.name for f in dataclasses.fields(obj)}:
                obj = dataclasses.MISSING  # a field without a class-level default
            else:
                break
        else:
            return obj, parent, name
    return None


def _canonical(env: Any, obj: Any, parent: Any, name: str) -> str | None:
    """The documented dotted name of a looked-up object, or None (not documented, or not the package's)."""
    objects = env.get_domain("py").objects
    mod = getattr(obj, "__module__", None)
    qual = getattr(obj, "__qualname__", None)
    if isinstance(mod, str) and isinstance(qual, str) and (inspect.isclass(obj) or inspect.isroutine(obj)):
        full = f"{mod}.{qual}"
        if full in objects:
            return full
    if inspect.isclass(parent) or inspect.ismodule(parent):
        base = parent.__name__ if inspect.ismodule(parent) else f"{parent.__module__}.{parent.__qualname__}"
        if f"{base}.{name}" in objects:
            return f"{base}.{name}"
        if inspect.isclass(parent) and dataclasses.is_dataclass(parent) \
                and name in {f.name for f in dataclasses.fields(parent)} and base in objects:
            return base  # a dataclass field: its class documents it (numpydoc Attributes)
    for full, entry in objects.items():  # data re-exported under another module: the same object
        if entry.objtype == "data" and full.rsplit(".", 1)[-1] == name:
            module, _, attr = full.rpartition(".")
            try:
                if getattr(importlib.import_module(module), attr) is obj:
                    return full
            except ImportError:
                continue
    return None


def _missing_reference(app: Sphinx, env: Any, node: Any, contnode: Any) -> Any:
    """Resolve a reference to a package object through the name it is bound to where the reference is written."""
    if node.get("refdomain") != "py":
        return None
    found = _lookup(node["reftarget"], node.get("py:module"), node.get("py:class"))
    if found is None:
        return None
    full = _canonical(env, *found)
    if full is None or full.split(".")[0] != PACKAGE:
        return None
    return env.get_domain("py").resolve_xref(env, node["refdoc"], app.builder, "obj", full, node, contnode)


# ----------------------------------------------------------------------------------------------- events

def _config_inited(app: Sphinx, config: Any) -> None:
    docs = Path(app.srcdir)
    root = docs.parent
    modules = package_modules()
    aliases = class_aliases(modules)
    # numpydoc's own defaults point at the Python and NumPy inventories (intersphinx, not loaded here): plain names
    for word in ("None", "bool", "boolean", "True", "False", "list", "tuple", "str", "string", "dict", "float", "int",
                 "callable", "iterable", "sequence", "contextmanager", "namedtuple", "generator", "array", "ndarray",
                 "np.ndarray", "array-like", "array_like", "scalar", "RandomState", "matplotlib_axes"):
        aliases.setdefault(word, word.replace("np.", "numpy."))
    config.numpydoc_xref_aliases = {**aliases, **(config.numpydoc_xref_aliases or {})}
    config.nitpick_ignore_regex = list(config.nitpick_ignore_regex or []) + external_ignores()
    write_api_modules(docs)
    pages = RepoPages(root, docs)
    app.modularity_repo_pages = pages.build()  # type: ignore[attr-defined]


def _build_finished(app: Sphinx, exception: Exception | None) -> None:
    held = app.modularity_lenient.held  # type: ignore[attr-defined]
    out = Path(app.outdir).parent / "excluded-warnings.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(f"{line}\n" for line in held), encoding="utf-8")
    if held:
        LOG.info("%d warnings in the lenient modules (modularity_docs_lenient_modules), not counted: %s",
                 len(held), out)


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_config_value("modularity_docs_lenient_modules", [], "env", types=[list])
    # before numpydoc's own config-inited handler reads numpydoc_xref_aliases
    app.connect("config-inited", _config_inited, priority=400)
    app.connect("build-finished", _build_finished)
    app.connect("missing-reference", _missing_reference)
    lenient = LenientModules([])
    app.modularity_lenient = lenient  # type: ignore[attr-defined]

    def install_filter(app: Sphinx, config: Any) -> None:
        patterns = list(config.modularity_docs_lenient_modules)
        lenient.rx = re.compile(r"(?<![\w])(?:" + "|".join(f"(?:{p})" for p in patterns) + r")(?![\w])") \
            if patterns else None
        for handler in logging.getLogger("sphinx").handlers:
            if type(handler).__name__ == "WarningStreamHandler" and lenient not in handler.filters:
                handler.filters.insert(0, lenient)  # before Sphinx counts the warning

    app.connect("config-inited", install_filter, priority=300)
    app.add_directive("public-api", PublicApi)
    app.add_directive("summary-schema", SummarySchema)
    app.add_directive("settings-table", SettingsTable)
    app.add_directive("column-table", ColumnTable)
    app.add_directive("sweep-columns", SweepColumns)
    app.add_directive("unit-columns", UnitColumns)
    app.add_directive("results-files", ResultsFiles)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}


