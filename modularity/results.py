"""Plain result objects of an analysis, and their JSON form (``summary.json``).

Everything downstream (exports, figures, reports) reads these objects, never
the model, so a results folder can be re-rendered without recomputing.
"""

from __future__ import annotations

import json
import math
import types
import typing
from dataclasses import MISSING as _MISSING
from dataclasses import asdict, dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from .core.magnitude import Profile
from .core.nulls import NullSummary
from .errors import ModularityError

__all__ = ["SCHEMA_VERSION", "ALPHA", "COLUMNS", "COMPARISON", "Column", "Control", "NullSummary", "Recovery", "Structure",
           "LayerResult", "AnalysisResult", "load_summary", "significant"]

SCHEMA_VERSION = 1
TRANSIENT = {"transient": True}  # dataclass field metadata: kept in memory, never in summary.json
ALPHA = 0.05
"""Significance level of every verdict the tool states (reports, summaries, figures)."""


def significant(p: float | None, alpha: float = ALPHA) -> bool:
    """True for a finite p-value below ``alpha``."""
    return p is not None and math.isfinite(p) and p < alpha


@dataclass
class Control:
    """Recovery repeated on a scale control of the profile (see :class:`Recovery`)."""

    ari: float | None
    p_value: float | None = None
    null_mean: float | None = None
    method: str | None = None


@dataclass
class Structure:
    """Structure statistics of a layer that need no true branches.

    ``ncut``: the co-clustering's normalised cut against the null (lower is
    more clusterable; ``alternative="less"``).
    """

    ncut: NullSummary


@dataclass
class Recovery:
    """How well clusters found from weights match the true branches.

    ``p_value`` is the empirical probability ``(r + 1) / (n + 1)``, over null
    draws of every consumer's weights, of an ARI at least as high as the
    observed one; ``p_value_bh`` adjusts it across the analysed layers
    (Benjamini-Hochberg). ``controls``
    repeats the test on profiles whose producer columns are scaled to unit
    norm (pattern without scale) and on the column norms alone (scale without
    pattern), each a :class:`Control`, keyed ``unit_norm_columns`` and
    ``column_norms_only``.

    ``method`` says how the p-values were obtained (``label-permutation``,
    ``exact`` or ``weight-shuffle``; see :class:`~modularity.core.nulls.NullSummary`),
    and ``n_permutations`` how many null draws or permutations they used.
    ``effect`` is the ARI above its null mean, with ``effect_ci`` the ARI
    above the null's 97.5 and 2.5 percentiles.
    """

    ari: float
    nmi: float
    p_value: float
    n_permutations: int
    null_ari_mean: float | None = None
    null_ari_sd: float | None = None
    z: float | None = None
    nmi_p_value: float | None = None
    controls: dict[str, Control] = field(default_factory=dict)
    p_value_bh: float | None = None
    method: str = "weight-shuffle"
    effect: float | None = None
    effect_ci: list[float] | None = None


@dataclass
class LayerResult:
    """Everything computed for one producer layer.

    Attributes
    ----------
    name : str
        Dotted name of the producer (a module, or the block performing a concatenation).
    kind : str
        ``conv``, ``linear`` or ``concat``.
    n_units : int
    consumers : list of str
        Layers whose weights form the downstream profile (``"d <- c"`` when expanded through ``c``).
    branches : list of int or None
        True branch label per unit.
    branch_names : list of str or None
    branch_source : str or None
    k : int
        Number of co-clusters used.
    k_source : str
        ``branches`` (number of true branches), ``eigengap`` or ``user``.
    singular_values : list of float
        Raw ``|W|`` spectrum, descending.
    spectra : dict of str to list of float
        Spectrum of every SVD variant (``raw``, ``centred``, ``normalised``).
    null_spectra : dict of str to dict
        For the ``normalised`` variant (the one clustering uses), the leading 20
        singular values of null profiles: ``{"mean": [...], "lo": [...], "hi": [...]}``
        (2.5 and 97.5 percentiles).
    embedding : dict of str to list of list of float
        Per variant, each unit's coordinates on the three leading right singular vectors.
    clusters : list of int
        Co-cluster label per unit; ``-1`` for a dead unit (no outgoing weight).
    n_dead : int
    recovery : Recovery or None
        None where the layer has no true branches.
    structure : Structure
        ``structure.ncut``: the co-clustering's normalised cut against the null.
    shape : list of int
        Shape of the profile matrix (rows, units).
    blocks : list of [str, int, int]
        Consumer row blocks of the profile matrix.
    row_clusters : list of int
        Co-cluster label of each profile row (consumer unit).
    null_draws : dict of str to list of float
        The statistic of every null draw: ``ncut`` always; ``ari`` and ``nmi``
        where the layer has true branches.
    profile : Profile or None
        The downstream profile the analysis measured, kept in memory so that the
        outputs (figures, unit graph) need not rebuild it; not written to
        ``summary.json`` (None after :func:`load_summary`).
    """

    name: str
    kind: str
    n_units: int
    consumers: list[str]
    branches: list[int] | None
    branch_names: list[str] | None
    branch_source: str | None
    k: int
    k_source: str
    singular_values: list[float]
    spectra: dict[str, list[float]]
    null_spectra: dict[str, dict[str, list[float]]]
    embedding: dict[str, list[list[float]]]
    clusters: list[int]
    n_dead: int
    recovery: Recovery | None
    structure: Structure
    shape: list[int]
    blocks: list[list[Any]]
    row_clusters: list[int] = field(default_factory=list)
    null_draws: dict[str, list[float]] = field(default_factory=dict)
    profile: Profile | None = field(default=None, repr=False, compare=False, metadata=TRANSIENT)

    def __repr__(self) -> str:
        row = self.row()
        parts = [f"{self.name!r}", self.kind, f"{self.n_units} units", f"k={self.k}"]
        if row["ari"] is not None:
            parts.append(f"ARI={row['ari']:.3f} (p={row['p']:.2g})" if row["p"] is not None else f"ARI={row['ari']:.3f}")
        parts.append(f"n-cut={row['ncut']:.3f}" + (f" (p={row['ncut_p']:.2g})" if row["ncut_p"] is not None else ""))
        return f"LayerResult({', '.join(parts)})"

    def unit_rows(self) -> list[dict[str, Any]]:
        """One row per unit: layer, unit, branch, branch name, cluster and the leading singular-vector coordinates."""
        coords = {v: np.asarray(e, dtype=float) for v, e in self.embedding.items()}
        rows = []
        for i in range(self.n_units):
            row: dict[str, Any] = {"layer": self.name, "unit": i,
                                   "branch": None if self.branches is None else int(self.branches[i]),
                                   "branch_name": None, "cluster": self.clusters[i] if i < len(self.clusters) else None}
            if self.branches is not None and self.branch_names:
                row["branch_name"] = self.branch_names[int(self.branches[i])]
            for variant in sorted(coords):
                v = coords[variant]
                for j in range(3):
                    ok = v.ndim == 2 and i < v.shape[0] and j < v.shape[1]
                    row[f"sv{j + 1}_{variant}"] = float(v[i, j]) if ok else None
            rows.append(row)
        return rows

    def row(self, n_permutations: int | None = None) -> dict[str, Any]:
        """The layer's row of the per-layer table (keys of :data:`COLUMNS`; None where not applicable)."""
        ncut, rec = self.structure.ncut, self.recovery
        controls = rec.controls if rec is not None else {}
        unit, norms = controls.get("unit_norm_columns"), controls.get("column_norms_only")
        row = {
            "name": self.name, "kind": self.kind, "n_units": self.n_units,
            "n_branches": 0 if self.branches is None else len(set(self.branches)),
            "k": self.k, "k_source": self.k_source,
            "ari": rec.ari if rec else None, "nmi": rec.nmi if rec else None,
            "ari_effect": rec.effect if rec else None,
            "p": rec.p_value if rec else None, "p_method": rec.method if rec else None,
            "p_bh": rec.p_value_bh if rec else None,
            "ari_unit_norm_columns": unit.ari if unit else None, "ari_column_norms_only": norms.ari if norms else None,
            "ncut": ncut.observed, "ncut_null_mean": ncut.null_mean, "ncut_null_sd": ncut.null_sd,
            "ncut_effect": ncut.effect, "ncut_z": ncut.z, "ncut_p": ncut.p_value, "ncut_p_bh": ncut.p_value_bh,
            "n_dead": self.n_dead, "n_permutations": ncut.n if n_permutations is None else n_permutations,
            "consumers": ";".join(self.consumers),
        }
        return {k: _scalar(v) for k, v in row.items()}


@dataclass
class AnalysisResult:
    """The result of analysing one model."""

    model: str
    weights: str
    seed: int
    n_permutations: int
    reduction: str
    expand: str
    layers: list[LayerResult]
    null: str = "shuffle"
    n_label_permutations: int = 0
    sequential_h: int = 0
    method: str = "current"
    weights_sha256: str | None = None
    provenance: str = ""
    input_size: list[int] = field(default_factory=lambda: [224, 224])
    versions: dict[str, str] = field(default_factory=dict)
    command: str = ""
    runtime_s: float = 0.0
    schema_version: int = SCHEMA_VERSION
    control: "AnalysisResult | None" = None
    """The same architecture analysed at random initialisation with the same settings
    (``--control random-init``), or None."""

    def layer(self, name: str) -> LayerResult:
        """The result for one producer layer by name."""
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)

    def to_dict(self) -> dict:
        """A JSON-ready dict (the content of ``summary.json``; in-memory fields such as profiles left out)."""
        slim = replace(self, layers=[replace(layer, profile=None) for layer in self.layers], control=None)
        data = asdict(slim)
        for layer in data["layers"]:
            layer.pop("profile", None)
        data["control"] = None if self.control is None else self.control.to_dict()
        return _jsonable(data)

    def save(self, path: str | Path) -> None:
        """Write ``summary.json``: objects indented, lists of numbers on one line, floats to 7 digits."""
        Path(path).write_text(_dumps(self.to_dict()) + "\n", encoding="utf-8")

    @classmethod
    def from_dict(cls, data: Any) -> "AnalysisResult":
        """Rebuild a result from its ``summary.json`` dict, checking every field against the schema.

        Raises
        ------
        ModularityError
            Naming the first field that is missing or of the wrong type, or a
            schema version this modularity does not read.
        """
        if not isinstance(data, dict):
            raise ModularityError(f"summary.json: expected an object at the top level, got {_kind(data)}")
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise ModularityError(
                f"summary.json has schema version {version}, this modularity reads version {SCHEMA_VERSION}; "
                "re-run 'python -m modularity analyze' to regenerate it"
            )
        return _build(cls, data, "summary.json")

    def to_frame(self):
        """One row per analysed layer as a pandas DataFrame, indexed by layer name.

        Columns are :data:`COLUMNS` (``ari``, ``p``, ``p_bh``, ``ncut``,
        ``ncut_effect``, ``ncut_z``, ...; see each :class:`Column`'s ``help``);
        missing values (no branches, no null) are NaN or None.
        """
        import pandas as pd

        frame = pd.DataFrame([layer.row(self.n_permutations) for layer in self.layers],
                             columns=[c.key for c in COLUMNS])
        return frame.set_index("name")

    def comparison_rows(self) -> list[dict[str, Any]]:
        """Trained against the random-init control, one row per layer analysed in both (keys of :data:`COMPARISON`).

        Empty without a control. ``*_control`` values come from the control
        result; ``ncut_effect_gap`` is the trained n-cut effect minus the
        control's (how much more clusterable training made the layer, beyond
        what the architecture gives at initialisation).
        """
        if self.control is None:
            return []
        control = {layer.name: layer.row() for layer in self.control.layers}
        rows = []
        for layer in self.layers:
            if layer.name not in control:
                continue
            mine, theirs = layer.row(), control[layer.name]
            row = {"name": layer.name}
            for key in _COMPARED:
                row[key], row[f"{key}_control"] = mine[key], theirs[key]
            a, b = mine["ncut_effect"], theirs["ncut_effect"]
            row["ncut_effect_gap"] = None if a is None or b is None else a - b
            rows.append({c.key: row[c.key] for c in COMPARISON})
        return rows

    def comparison_frame(self):
        """:meth:`comparison_rows` as a pandas DataFrame indexed by layer name (empty without a control)."""
        import pandas as pd

        return pd.DataFrame(self.comparison_rows(), columns=[c.key for c in COMPARISON]).set_index("name")

    def units_frame(self):
        """One row per unit of every analysed layer as a pandas DataFrame.

        Columns: ``layer``, ``unit`` (channel index), ``branch`` and
        ``branch_name`` (true branch, or None), ``cluster`` (-1: dead) and
        ``sv{1,2,3}_{raw,centred,normalised}`` (coordinates on the leading
        right singular vectors of each SVD variant).
        """
        import pandas as pd

        return pd.DataFrame([row for layer in self.layers for row in layer.unit_rows()])

    def __repr__(self) -> str:
        n_sig = sum(significant(r.structure.ncut.p_value_bh) or (r.recovery is not None
                                                                 and significant(r.recovery.p_value_bh))
                    for r in self.layers)
        return (f"AnalysisResult(model={self.model!r}, weights={self.weights!r}, {len(self.layers)} layers, "
                f"{n_sig} with BH p < {ALPHA}, null={self.null!r}, seed={self.seed})")

    def _repr_html_(self) -> str:
        """A notebook summary: the header line and the per-layer table (first 30 layers)."""
        import html

        frame = self.to_frame()[["kind", "n_units", "k", "ari", "ari_effect", "p_bh", "ncut", "ncut_effect",
                                 "ncut_p_bh"]]
        more = f"<p>... and {len(frame) - 30} more layers: use .to_frame()</p>" if len(frame) > 30 else ""
        return (f"<p><b>{html.escape(repr(self))}</b></p>" + frame.head(30).to_html(float_format="{:.3g}".format,
                                                                                   na_rep="-") + more)


@dataclass(frozen=True)
class Column:
    """A column of the per-layer table: its key in rows and CSV, its short label and what it means."""

    key: str
    label: str
    help: str


COLUMNS: list[Column] = [
    Column("name", "layer", "producer layer (dotted name from named_modules)"),
    Column("kind", "kind", "conv, linear or concat"),
    Column("n_units", "units", "number of units"),
    Column("n_branches", "branches", "number of true branches (0: none)"),
    Column("k", "k", "number of co-clusters"),
    Column("k_source", "k from", "branches, eigengap or user"),
    Column("ari", "ARI", "adjusted Rand index of clusters vs true branches"),
    Column("nmi", "NMI", "normalised mutual information of clusters vs true branches"),
    Column("ari_effect", "ARI effect", "ARI above its null mean"),
    Column("p", "p (ARI)", "p-value of the ARI against the null"),
    Column("p_method", "p method", "label-permutation, exact, sequential or weight-shuffle"),
    Column("p_bh", "p BH (ARI)", "Benjamini-Hochberg adjusted"),
    Column("ari_unit_norm_columns", "ARI unit-norm", "ARI with every unit's column scaled to unit norm"),
    Column("ari_column_norms_only", "ARI norms only", "ARI from the units' column norms alone"),
    Column("ncut", "n-cut", "normalised cut of the co-clustering (lower: more clusterable)"),
    Column("ncut_null_mean", "null n-cut", "mean n-cut of the null"),
    Column("ncut_null_sd", "null n-cut sd", "standard deviation of the null n-cut"),
    Column("ncut_effect", "n-cut effect", "n-cut reduction relative to the null mean (0.05: 5% lower)"),
    Column("ncut_z", "z", "n-cut z-score against the null"),
    Column("ncut_p", "p (n-cut)", "p-value of the n-cut (lower tail)"),
    Column("ncut_p_bh", "p BH (n-cut)", "Benjamini-Hochberg adjusted"),
    Column("n_dead", "dead", "units with no outgoing weight"),
    Column("n_permutations", "null draws", "draws of the null model"),
    Column("consumers", "consumers", "layers whose weights form the profile"),
]
"""The per-layer table, in order: ``layers.csv``, the HTML and PDF tables, the overview and the CLI summary."""

_COMPARED = ("ari", "ari_effect", "p_bh", "ncut_effect", "ncut_p_bh")
_LABELS = {c.key: c for c in COLUMNS}
COMPARISON: list[Column] = [Column("name", "layer", "producer layer (dotted name from named_modules)")]
for _key in _COMPARED:
    COMPARISON += [Column(_key, f"{_LABELS[_key].label} trained", f"{_LABELS[_key].help}; trained weights"),
                   Column(f"{_key}_control", f"{_LABELS[_key].label} control",
                          f"{_LABELS[_key].help}; the same architecture at random initialisation")]
COMPARISON.append(Column("ncut_effect_gap", "n-cut effect gap",
                         "trained n-cut effect minus the control's: clusterability that training added"))
"""Trained against the random-init control (:meth:`AnalysisResult.comparison_rows`): ``comparison.csv``, the
report's comparison table and figure."""


def _jsonable(obj: Any) -> Any:
    """Convert numpy scalars and arrays, and non-finite floats (to None), for strict JSON."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        f = float(obj)
        return float(f"{f:.7g}") if np.isfinite(f) else None
    return obj


def _dumps(obj: Any, indent: int = 0) -> str:
    """Compact, readable JSON: dicts and lists of dicts indented, lists of scalars on one line."""
    pad, inner = " " * indent, " " * (indent + 1)
    if isinstance(obj, dict) and obj:
        items = [f"{inner}{json.dumps(k)}: {_dumps(v, indent + 1)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(obj, list) and any(isinstance(v, (dict, list)) for v in obj):
        return "[\n" + ",\n".join(inner + _dumps(v, indent + 1) for v in obj) + "\n" + pad + "]"
    return json.dumps(obj, allow_nan=False, separators=(",", ":"))


def load_summary(folder: str | Path) -> AnalysisResult:
    """Read ``summary.json`` from a results folder, checking its form and its meaning.

    Beyond the schema (every field's type), the file is refused when it is
    larger than any analysis writes, nests deeper than the schema, holds
    integers too long to convert or outside 64 bits, strings that are not
    valid Unicode (lone surrogates), or numbers that contradict each other
    (see :func:`_check_consistency`: k, labels, shapes, spectra, p-values).

    Raises
    ------
    ModularityError
        If the folder or file is missing, unreadable, from another schema
        version, or fails a check; one line naming the field.
    """
    path = Path(folder) / "summary.json"
    if not Path(folder).is_dir():
        raise ModularityError(f"results folder not found: {folder}")
    if not path.is_file():
        raise ModularityError(f"{folder} has no summary.json; it is not a results folder written by "
                              "'python -m modularity analyze'")
    size = path.stat().st_size
    if size > MAX_SUMMARY_BYTES:
        raise ModularityError(f"{path} is {size / 1e6:.0f} MB, more than any analysis writes "
                              f"({MAX_SUMMARY_BYTES / 1e6:.0f} MB); it is damaged or not from modularity")
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except RecursionError:
        raise ModularityError(f"{path} nests lists or objects more than {MAX_SUMMARY_DEPTH} deep (thousands: the "
                              "schema needs 9); it is damaged or not from modularity") from None
    except UnicodeDecodeError as exc:
        raise ModularityError(f"{path} is not valid UTF-8 ({exc.reason} at byte {exc.start})") from None
    except ValueError as exc:  # JSONDecodeError, and integers beyond sys.get_int_max_str_digits()
        if "integer string conversion" in str(exc):
            raise ModularityError(f"{path} holds an integer with thousands of digits; it is damaged or not from "
                                  "modularity") from None
        raise ModularityError(f"{path} is not valid JSON ({exc})") from None
    _check_limits(data, "summary.json")
    return AnalysisResult.from_dict(data)


MAX_SUMMARY_BYTES = 1 << 30
"""Largest summary.json read (efficientnet_lite0's whole network: 3 MB)."""
MAX_SUMMARY_DEPTH = 16
"""Deepest nesting summary.json may have (the schema needs 8, with a control 9)."""


def _check_limits(data: Any, where: str) -> None:
    """Refuse nesting deeper than :data:`MAX_SUMMARY_DEPTH`, integers beyond 64 bits and lone surrogates.

    Iterative (no recursion, whatever the depth) and linear in the size of ``data``.
    """
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_SUMMARY_DEPTH:
            raise ModularityError(f"{where} nests lists or objects more than {MAX_SUMMARY_DEPTH} deep (the schema "
                                  "needs 9); it is damaged or not from modularity")
        items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
        for key, item in items:
            for x in (key, item):
                if isinstance(x, str):
                    try:
                        x.encode("utf-8")
                    except UnicodeEncodeError:
                        raise ModularityError(f"{where} holds a string with a lone surrogate "
                                              f"({x.encode('utf-8', 'backslashreplace').decode()[:60]!r}), which "
                                              "is not text; it is damaged or not from modularity") from None
            if type(item) is int and not -(2**63) <= item < 2**63:
                raise ModularityError(f"{where} holds the integer {str(item)[:20]}... ({len(str(item))} digits), "
                                      "beyond 64 bits; it is damaged or not from modularity")
            if isinstance(item, (list, dict)):
                stack.append((item, depth + 1))


def _scalar(x: Any) -> Any:
    """A plain Python scalar; non-finite floats become None."""
    if isinstance(x, (np.integer, np.floating)):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def _kind(x: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null",
            int: "an integer", float: "a number"}.get(type(x), type(x).__name__)


def _check(hint: Any, value: Any, path: str) -> Any:
    """Check ``value`` (parsed JSON) against a type hint and build dataclasses; raise naming ``path``."""
    origin = typing.get_origin(hint)
    if hint is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _check(option, value, path)
            except ModularityError as exc:
                errors.append(exc)
        raise errors[0]
    if is_dataclass(hint):
        return _build(hint, value, path)
    if origin is list:
        if not isinstance(value, list):
            raise ModularityError(f"{path}: expected a list, got {_kind(value)}")
        (inner,) = typing.get_args(hint) or (Any,)
        return [_check(inner, v, f"{path}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ModularityError(f"{path}: expected an object, got {_kind(value)}")
        _, inner = typing.get_args(hint) or (str, Any)
        return {k: _check(inner, v, f"{path}.{k}") for k, v in value.items()}
    if hint is float:
        if value is None:  # non-finite floats are written as null
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ModularityError(f"{path}: expected a number, got {_kind(value)}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ModularityError(f"{path}: expected an integer, got {_kind(value)}")
        return value
    if hint in (str, bool):
        if not isinstance(value, hint):
            raise ModularityError(f"{path}: expected {'a string' if hint is str else 'a boolean'}, got {_kind(value)}")
        return value
    return value


def _build(cls: type, data: Any, path: str) -> Any:
    """Build dataclass ``cls`` from a JSON object, checking every field; unknown keys are ignored."""
    if not isinstance(data, dict):
        raise ModularityError(f"{path}: expected an object, got {_kind(data)}")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for f in fields(cls):
        if f.metadata.get("transient"):
            continue
        where = f"{path}.{f.name}" if path != "summary.json" else f"summary.json: {f.name}"
        if f.name not in data:
            if f.default is not _MISSING or f.default_factory is not _MISSING:
                continue
            raise ModularityError(f"{where} is missing")
        kwargs[f.name] = _check(hints[f.name], data[f.name], where)
    obj = cls(**kwargs)
    _check_consistency(obj, path)
    return obj


def _check_consistency(obj: Any, path: str) -> None:
    """Relations between fields that types alone do not express: ranges, lengths, labels against k.

    Everything the figures and reports index with (k, labels, shapes, blocks)
    is checked against the others, so that a tampered file is refused with one
    line instead of drawing garbage, failing deep in plotting, or allocating
    what a number declares.
    """
    if isinstance(obj, NullSummary):
        _range(obj.n, 0, None, f"{path}.n")
        for name in ("p_value", "p_value_bh", "p_value_tail"):
            _probability(getattr(obj, name), f"{path}.{name}")
        if obj.alternative not in ("greater", "less"):
            raise ModularityError(f"{path}.alternative: '{obj.alternative}' is neither 'greater' nor 'less'")
        _pair(obj.effect_ci, f"{path}.effect_ci")
    if isinstance(obj, Control):
        _probability(obj.p_value, f"{path}.p_value")
        _interval(obj.ari, -1.0, 1.0, f"{path}.ari")
    if isinstance(obj, Recovery):
        _interval(obj.ari, -1.0, 1.0, f"{path}.ari")
        _interval(obj.nmi, 0.0, 1.0, f"{path}.nmi")
        _range(obj.n_permutations, 0, None, f"{path}.n_permutations")
        for name in ("p_value", "nmi_p_value", "p_value_bh"):
            _probability(getattr(obj, name), f"{path}.{name}")
        _pair(obj.effect_ci, f"{path}.effect_ci")
    if isinstance(obj, LayerResult):
        _check_layer(obj, path)
    if isinstance(obj, AnalysisResult):
        if not obj.layers:
            raise ModularityError("summary.json: layers: the list is empty; an analysis has at least one layer")
        names = [layer.name for layer in obj.layers]
        if len(set(names)) != len(names):
            raise ModularityError("summary.json: layers: a layer name appears twice")
        for name in ("seed", "n_permutations", "n_label_permutations", "sequential_h"):
            _range(getattr(obj, name), 0, None, f"summary.json: {name}")
        if len(obj.input_size) != 2 or not all(1 <= s <= 1 << 16 for s in obj.input_size):
            raise ModularityError(f"summary.json: input_size: {obj.input_size[:4]} is not a height and width "
                                  "from 1 to 65536")


def _check_layer(layer: LayerResult, path: str) -> None:
    n, k = layer.n_units, layer.k
    _range(n, 1, None, f"{path}.n_units")
    _range(k, 1, max(2, n), f"{path}.k")
    if len(layer.clusters) != n:
        raise ModularityError(f"{path}.clusters: {len(layer.clusters)} labels for {n} units")
    _labels(layer.clusters, -1, k - 1, f"{path}.clusters", f"k = {k} (-1: a dead unit)")
    dead = sum(c == -1 for c in layer.clusters)
    if layer.n_dead != dead:
        raise ModularityError(f"{path}.n_dead: {layer.n_dead}, but {dead} units have the dead label -1")
    if layer.branches is not None:
        if len(layer.branches) != n:
            raise ModularityError(f"{path}.branches: {len(layer.branches)} labels for {n} units")
        top = len(layer.branch_names) - 1 if layer.branch_names else n - 1
        _labels(layer.branches, 0, top, f"{path}.branches",
                f"{top + 1} branch names" if layer.branch_names else f"{n} units")
    if len(layer.shape) != 2:
        raise ModularityError(f"{path}.shape: {layer.shape[:4]} is not (consumer units, units)")
    rows = layer.shape[0]
    _range(rows, 1, 2**31, f"{path}.shape[0]")
    if layer.shape[1] != n:
        raise ModularityError(f"{path}.shape: {layer.shape[1]} columns for {n} units")
    if len(layer.row_clusters) not in (0, rows):
        raise ModularityError(f"{path}.row_clusters: {len(layer.row_clusters)} labels for {rows} rows")
    _labels(layer.row_clusters, -1, k - 1, f"{path}.row_clusters", f"k = {k}")
    for i, block in enumerate(layer.blocks):
        ok = (len(block) == 3 and isinstance(block[0], str)
              and all(type(b) is int for b in block[1:]) and 0 <= block[1] <= block[2] <= rows)
        if not ok:
            raise ModularityError(f"{path}.blocks[{i}]: {str(block)[:80]} is not [consumer, start, end] within the "
                                  f"{rows} rows")
    if not layer.singular_values:
        raise ModularityError(f"{path}.singular_values: the spectrum is empty")
    for name, values in [("singular_values", layer.singular_values),
                         *((f"spectra.{v}", vals) for v, vals in layer.spectra.items())]:
        if not values:
            raise ModularityError(f"{path}.{name}: the spectrum is empty")
        if len(values) > n or any(v is None or not math.isfinite(v) or v < 0 for v in values):
            raise ModularityError(f"{path}.{name}: a spectrum holds at most {n} finite, non-negative values")
    for variant, coords in layer.embedding.items():
        if len(coords) != n or any(len(row) > n for row in coords):
            raise ModularityError(f"{path}.embedding.{variant}: {len(coords)} rows for {n} units")


def _range(value: int, low: int, high: int | None, where: str) -> None:
    if value < low or (high is not None and value > high):
        span = f"from {low} to {high}" if high is not None else f"at least {low}"
        raise ModularityError(f"{where}: {value} is out of range (expected an integer {span})")


def _interval(value: float | None, low: float, high: float, where: str) -> None:
    if value is not None and not (low - 1e-6 <= value <= high + 1e-6):
        raise ModularityError(f"{where}: {value} is outside [{low:g}, {high:g}]")


def _probability(value: float | None, where: str) -> None:
    if value is not None and not (0.0 <= value <= 1.0 + 1e-9):
        raise ModularityError(f"{where}: {value} is not a probability (outside [0, 1])")


def _pair(value: list[float] | None, where: str) -> None:
    if value is not None and len(value) != 2:
        raise ModularityError(f"{where}: expected two numbers, got {len(value)}")


def _labels(labels: list[int], low: int, high: int, where: str, what: str) -> None:
    bad = next((x for x in labels if not low <= x <= high), None)
    if bad is not None:
        raise ModularityError(f"{where}: label {bad} is out of range for {what} (expected {low} to {high})")
