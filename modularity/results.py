"""Plain result records of an analysis, their per-layer rows, and their stored form (``summary.json``).

Everything downstream (tables, graph files, figures, reports) reads these
records, never the model, so a results folder can be re-rendered without
recomputing. A results folder keeps the records in ``summary.json`` (settings,
provenance, every per-layer number: small and readable) and every layer's
per-unit vectors (labels, spectra, singular-vector coordinates) in the
folder's ``arrays.npz`` (:func:`unit_arrays`); :func:`load_summary` reads both.

Tables read rows by attribute: :class:`LayerRow` (one per analysed layer),
:class:`ComparisonRow` (trained against the random-init control) and
:class:`SweepRow` (one per checkpoint and layer) are each built in one place,
and every table column (:data:`COLUMNS`, :data:`COMPARISON`,
:data:`SWEEP_COLUMNS`) names a field of its row.
"""

from __future__ import annotations

import functools
import json
import math
import types
import typing
from dataclasses import MISSING as _MISSING
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .core.detectability import OUTCOMES, Detectability
from .core.null_summary import NullSummary
from .errors import ModularityError
from .npzfile import NpzMembers, open_npz, spec
from .settings import MAX_PERMUTATIONS, AnalysisSettings

if TYPE_CHECKING:  # a type only: reading and writing results needs no torch
    from .core.magnitude import Profile

__all__ = ["SCHEMA_VERSION", "READABLE_SCHEMAS", "UNIT_ARRAYS", "UNIT_FIELDS", "DRAW_STATISTICS", "ALPHA",
           "COLUMNS", "COMPARISON", "SWEEP_COLUMNS", "Column", "Control", "NullSummary",
           "Recovery", "Structure", "LayerResult", "AnalysisResult", "LayerRow", "ComparisonRow", "SweepRow",
           "load_summary", "unit_arrays", "significant", "jsonable"]

SCHEMA_VERSION = 3
"""Version of the layout of ``summary.json``; :func:`load_summary` reads the versions in :data:`READABLE_SCHEMAS`.

Version 3 may keep every layer's per-unit vectors (:data:`UNIT_FIELDS`) in the folder's ``arrays.npz``
instead of inline: its top-level ``unit_arrays`` then names that file. Version 2 always kept them inline."""
READABLE_SCHEMAS = (2, 3)
"""The ``summary.json`` versions :func:`load_summary` reads (2: modularity 0.2.0's folders, vectors inline)."""
UNIT_ARRAYS = "arrays.npz"
"""The file beside ``summary.json`` that holds the per-unit vectors, where the summary's ``unit_arrays`` names it."""
UNIT_FIELDS = ("clusters", "row_clusters", "branches", "singular_values", "spectra", "embedding")
"""The fields of :class:`LayerResult` that grow with the layer's units (or its profile's rows): a results folder
keeps them in ``arrays.npz`` (:func:`unit_arrays`), so that ``summary.json`` holds settings and per-layer numbers."""
DRAW_STATISTICS = ("ncut", "ari", "nmi")
"""The null draws a results folder keeps in ``arrays.npz`` (``d{i}_{statistic}``, layer ``i``; ``c`` prefix: the
control's), for the null histograms, so that ``summary.json`` need not carry them."""
TRANSIENT = {"transient": True}  # dataclass field metadata: kept in memory, never in summary.json
ALPHA = 0.05
"""Significance level of every verdict the tool states (reports, summaries, figures)."""


def significant(p: float | None, alpha: float = ALPHA) -> bool:
    """True for a finite p-value below ``alpha``."""
    return p is not None and math.isfinite(p) and p < alpha


def _g(x: float | None) -> str:
    """A number for a repr: 3 significant digits, or '-'."""
    return "-" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.3g}"


@dataclass
class Control:
    """Recovery repeated on a scale control of the profile (see :class:`Recovery`).

    Attributes
    ----------
    ari : float or None
        ARI of the clusters found on the control profile against the true branches.
    p_value : float or None
        Its p-value against the null (the same test as the recovery's, with
        fewer label permutations).
    null_mean : float or None
        Mean ARI under the null.
    method : str or None
        How ``p_value`` was obtained (as in :class:`Recovery`).
    """

    ari: float | None
    p_value: float | None = None
    null_mean: float | None = None
    method: str | None = None

    def __repr__(self) -> str:
        return f"Control(ari={_g(self.ari)}, p={_g(self.p_value)}, null mean={_g(self.null_mean)})"


@dataclass
class Structure:
    """Structure statistics of a layer that need no true branches.

    Attributes
    ----------
    ncut : NullSummary
        The co-clustering's normalised cut against the null (lower is more
        clusterable; ``alternative="less"``).
    within_share : float or None
        The share of the profile's weight inside the co-clusters (above one
        half, the groups connect mostly within themselves;
        :func:`~modularity.core.spectral.within_share`).
    """

    ncut: NullSummary
    within_share: float | None = None

    def __repr__(self) -> str:
        n = self.ncut
        return (f"Structure(n-cut={_g(n.observed)} vs null {_g(n.null_mean)}, effect={_g(n.effect)}, "
                f"p={_g(n.p_value)}, p BH={_g(n.p_value_bh)}, draws={n.n}, inside={_g(self.within_share)})")


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
    ``exact`` or ``weight-shuffle``; see :class:`~modularity.core.null_summary.NullSummary`),
    and ``n_permutations`` how many null draws or permutations they used.
    ``effect`` is the ARI above its null mean, with ``effect_ci`` the ARI
    above the null's 97.5 and 2.5 percentiles.

    ``chance_p_value`` asks a different question where the null re-fits
    weight draws (grouped consumers, whose groups the null keeps): is the
    agreement above what random labels give (a label permutation of the
    observed table)? ``p_value`` then says whether *training* put the
    structure there, this one whether the clusters found the branches at all
    (the layer's verdict reads it). Where ``p_value`` is itself a label
    permutation the two are the same test and this is None.

    Attributes
    ----------
    ari, nmi : float
        Adjusted Rand index and normalised mutual information of the clusters
        against the true branches (dead units left out).
    p_value : float
        P-value of the ARI against the null (NaN, written ``null``, where no
        null could be drawn).
    n_permutations : int
        Label permutations or null draws behind ``p_value``.
    null_ari_mean, null_ari_sd : float or None
        Mean and standard deviation of the ARI under the null.
    z : float or None
        ``(ari - null_ari_mean) / null_ari_sd``; None without spread.
    nmi_p_value : float or None
        P-value of the NMI against the same null.
    controls : dict of str to Control
        The scale controls, keyed ``unit_norm_columns`` and ``column_norms_only``.
    p_value_bh : float or None
        ``p_value`` adjusted across the analysed layers (Benjamini-Hochberg).
    method : str
        How ``p_value`` was obtained: ``label-permutation``, ``sequential
        label-permutation``, ``exact``, ``sequential``, ``weight-shuffle`` or
        ``none``.
    effect : float or None
        The ARI above its null mean.
    effect_ci : [float, float] or None
        The ARI above the null's 97.5 and 2.5 percentiles.
    chance_p_value : float or None
        Agreement against random labels where ``p_value`` re-fits weight draws
        (see above); None where ``p_value`` is itself a label permutation.
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
    chance_p_value: float | None = None

    def __repr__(self) -> str:
        controls = ", ".join(f"{k.split('_')[0] if k.startswith('unit') else 'norms'}={_g(c.ari)}"
                             for k, c in self.controls.items())
        return (f"Recovery(ARI={_g(self.ari)}, NMI={_g(self.nmi)}, p={_g(self.p_value)} ({self.method}, "
                f"n={self.n_permutations}), p BH={_g(self.p_value_bh)}, null ARI={_g(self.null_ari_mean)}, "
                f"effect={_g(self.effect)}" + (f", controls: {controls}" if controls else "") + ")")


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
        Number of units (output channels or features).
    consumers : list of str
        Layers whose weights form the downstream profile (``"d <- c"`` when expanded through ``c``).
    branches : list of int or None
        True branch label per unit.
    branch_names : list of str or None
        A name for each true branch label (for a concatenation, the layer each
        input comes from).
    branch_source : str or None
        Where the branch labels came from: ``concat``, ``consumer_groups``,
        ``split``, ``heads`` or ``groups`` (see
        :class:`~modularity.core.graph.Layer`); None without branches.
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
        Units with no outgoing weight (cluster ``-1``).
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
    detectability : Detectability or None
        How detectable the true branches are in this profile (signal against
        the BBP limit, the ARI a spectral method can expect), or, without
        branches, how far structure stands above the noise edge
        (:mod:`modularity.core.detectability`).
    verdict : str or None
        The plain verdict: ``detectable and recovered``, ``detectable but not
        recovered``, ``below the limit: ...``; without branches ``structure
        above the noise edge`` or ``no structure above the noise edge``.
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
    detectability: Detectability | None = None
    verdict: str | None = None
    profile: Profile | None = field(default=None, repr=False, compare=False, metadata=TRANSIENT)

    def __repr__(self) -> str:
        row = self.row()
        parts = [f"{self.name!r}", self.kind, f"{self.n_units} units", f"k={self.k}"]
        if row.ari is not None:
            parts.append(f"ARI={row.ari:.3f} (p={row.p:.2g})" if row.p is not None else f"ARI={row.ari:.3f}")
        parts.append(f"n-cut={row.ncut:.3f}" + (f" (p={row.ncut_p:.2g})" if row.ncut_p is not None else ""))
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

    def row(self) -> LayerRow:
        """The layer's row of the per-layer table (:class:`LayerRow`)."""
        return LayerRow.of(self)

    def _repr_html_(self) -> str:
        """A notebook summary: the header line and the layer's row of the per-layer table, transposed."""
        import html

        row = self.row()
        cells = "".join(f"<tr><th>{html.escape(c.label)}</th>"
                        f"<td>{html.escape(_g(v) if isinstance(v, float) else str(v))}</td></tr>"
                        for c in COLUMNS if (v := getattr(row, c.key)) is not None)
        return f"<p><b>{html.escape(repr(self))}</b></p><table>{cells}</table>"


@dataclass
class AnalysisResult:
    """The result of analysing one model.

    Attributes
    ----------
    model, weights : str
        What was analysed: the model's name and its weights as given.
    settings : AnalysisSettings
        How it was analysed (the recorded settings; ``jobs`` and the backend
        change no number and keep their defaults here).
    layers : list of LayerResult
        One per analysed producer layer, in execution order.
    weights_sha256, provenance : str
        The state dict's hash and where the weights came from.
    input_size : list of int
        Height and width the model was traced at.
    versions : dict of str to str
        Versions of Python, modularity and the libraries that ran the analysis.
    command : str
        The command line that ran it (empty from the Python API unless given).
    runtime_s : float
        Wall time of the analysis in seconds (the one number two runs of the
        same command do not share).
    schema_version : int
        Version of the layout the result was read from (:data:`SCHEMA_VERSION`
        for a new one; :func:`load_summary` reads those in
        :data:`READABLE_SCHEMAS`);
        :meth:`~modularity.results.AnalysisResult.to_dict` writes the current one.
    control : AnalysisResult or None
        The same architecture analysed at random initialisation with the same
        settings (``control="random-init"``), or None.
    """

    model: str
    weights: str
    settings: AnalysisSettings
    layers: list[LayerResult]
    weights_sha256: str | None = None
    provenance: str = ""
    input_size: list[int] = field(default_factory=lambda: [224, 224])
    versions: dict[str, str] = field(default_factory=dict)
    command: str = ""
    runtime_s: float = 0.0
    schema_version: int = SCHEMA_VERSION
    control: AnalysisResult | None = None

    # The settings most read, as attributes of the result.
    @property
    def seed(self) -> int:
        return self.settings.seed

    @property
    def n_permutations(self) -> int:
        return self.settings.n_permutations

    @property
    def n_label_permutations(self) -> int:
        return self.settings.n_label_permutations

    @property
    def sequential_h(self) -> int:
        return self.settings.sequential_h

    @property
    def null(self) -> str:
        return self.settings.null

    @property
    def method(self) -> str:
        return self.settings.method

    @property
    def reduction(self) -> str:
        return self.settings.reduction

    @property
    def expand(self) -> str:
        return self.settings.expand

    def layer(self, name: str) -> LayerResult:
        """The result for one producer layer by name."""
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)

    def rows(self) -> list[LayerRow]:
        """One :class:`LayerRow` per analysed layer, in execution order."""
        return [layer.row() for layer in self.layers]

    def to_dict(self, draws: bool = True, units: bool = True) -> dict:
        """A JSON-ready dict (the content of ``summary.json``; in-memory fields such as profiles left out).

        ``draws=False`` leaves out every layer's null draws (``null_draws``),
        and ``units=False`` every layer's per-unit vectors
        (:data:`UNIT_FIELDS`; the top-level ``unit_arrays`` then names
        :data:`UNIT_ARRAYS`), which a results folder keeps in ``arrays.npz``
        instead (:func:`unit_arrays`, :func:`modularity.arrays.draw_arrays`).
        """
        data: dict[str, Any] = {}
        for f in fields(self):
            if f.name == "layers":
                value: Any = [_layer_dict(layer, draws, units) for layer in self.layers]
            elif f.name == "settings":
                value = self.settings.record()
            elif f.name == "control":
                value = None if self.control is None else self.control.to_dict(draws, units)
                if value is not None:
                    value.pop("unit_arrays", None)  # the control's vectors go where the whole file says
            elif f.name == "schema_version":
                value = SCHEMA_VERSION  # the layout written now, whichever version the result was read from
            else:
                value = getattr(self, f.name)
            data[f.name] = value
        if not units:
            data["unit_arrays"] = UNIT_ARRAYS
        return jsonable(data)

    def save(self, path: str | Path, draws: bool = True, units: bool = True) -> None:
        """Write ``summary.json``: objects indented, lists of numbers on one line, floats to 7 digits.

        ``draws=False``, ``units=False``: without the null draws, without the
        per-unit vectors (see :meth:`to_dict`).
        """
        Path(path).write_text(_dumps(self.to_dict(draws, units)) + "\n", encoding="utf-8")

    @classmethod
    def from_dict(cls, data: Any) -> AnalysisResult:
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
        if type(version) is not int or version not in READABLE_SCHEMAS:
            raise ModularityError(
                f"summary.json has schema version {_show(version)}, this modularity reads versions "
                f"{', '.join(map(str, READABLE_SCHEMAS))}; re-run 'python -m modularity analyze' to regenerate it"
            )
        if data.get("unit_arrays") is not None and _lacks_units(data):
            raise ModularityError(f"summary.json keeps its per-unit vectors (clusters, spectra, coordinates) in "
                                  f"{_show(data['unit_arrays'])}; read the folder with modularity.load_summary(folder)")
        return _build(cls, data, "summary.json")

    def to_frame(self):
        """One row per analysed layer as a pandas DataFrame, indexed by layer name.

        Columns are :data:`COLUMNS` (``ari``, ``p``, ``p_bh``, ``ncut``,
        ``ncut_effect``, ``ncut_z``, ...; see each :class:`Column`'s ``help``);
        missing values (no branches, no null) are NaN or None.
        """
        return _frame(self.rows(), COLUMNS)

    def comparison_rows(self) -> list[ComparisonRow]:
        """Trained against the random-init control, one :class:`ComparisonRow` per layer analysed in both.

        Empty without a control.
        """
        if self.control is None:
            return []
        control = {layer.name: layer.row() for layer in self.control.layers}
        return [ComparisonRow.of(layer.row(), control[layer.name]) for layer in self.layers
                if layer.name in control]

    def comparison_frame(self):
        """:meth:`comparison_rows` as a pandas DataFrame indexed by layer name (empty without a control)."""
        return _frame(self.comparison_rows(), COMPARISON)

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
        n_sig = sum(significant(r.ncut_p_bh) or significant(r.p_bh) for r in self.rows())
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


def _layer_dict(layer: LayerResult, draws: bool = True, units: bool = True) -> dict[str, Any]:
    out = {f.name: asdict(v) if is_dataclass(v := getattr(layer, f.name)) and not isinstance(v, type) else v
           for f in fields(layer) if not f.metadata.get("transient") and (units or f.name not in UNIT_FIELDS)}
    if not draws:
        out["null_draws"] = {}
    return out


def _lacks_units(data: dict[str, Any]) -> bool:
    """True when a layer of ``data`` (or of its control) has none of its per-unit vectors."""
    for run in (data, data.get("control")):
        layers = run.get("layers") if isinstance(run, dict) else None
        if isinstance(layers, list) and any(isinstance(layer, dict) and "clusters" not in layer for layer in layers):
            return True
    return False


# ------------------------------------------------------------------------------------- per-unit vectors

def unit_arrays(result: AnalysisResult) -> dict[str, np.ndarray]:
    """Every layer's per-unit vectors (:data:`UNIT_FIELDS`) as arrays, for a results folder's ``arrays.npz``.

    Keys, for layer ``i`` (``cu{i}_...`` for the control's layers):
    ``u{i}_clusters``, ``u{i}_row_clusters`` and, with true branches,
    ``u{i}_branches`` (int32); ``u{i}_spectrum_<variant>`` and
    ``u{i}_embedding_<variant>`` (units x coordinates), float32;
    ``u{i}_singular_values`` only where it is not the ``raw`` spectrum (the
    analysis makes it that). float32 keeps 24 bits, more than the 7
    significant digits ``summary.json`` writes: the spectra and coordinates
    are drawn from these values, and ``units.csv`` keeps the analysis' full
    precision.
    """
    out: dict[str, np.ndarray] = {}
    for prefix, run in (("u", result), ("cu", result.control)):
        for i, layer in enumerate(run.layers if run is not None else []):
            key = f"{prefix}{i}_"
            out[key + "clusters"] = np.asarray(layer.clusters, dtype=np.int32)
            out[key + "row_clusters"] = np.asarray(layer.row_clusters, dtype=np.int32)
            if layer.branches is not None:
                out[key + "branches"] = np.asarray(layer.branches, dtype=np.int32)
            if list(layer.singular_values) != list(layer.spectra.get("raw", [])):
                out[key + "singular_values"] = np.asarray(layer.singular_values, dtype=np.float32)
            for variant, values in layer.spectra.items():
                out[f"{key}spectrum_{variant}"] = np.asarray(values, dtype=np.float32)
            for variant, coords in layer.embedding.items():
                out[f"{key}embedding_{variant}"] = np.asarray(coords, dtype=np.float32).reshape(len(coords), -1)
    return out


MAX_EMBEDDING_DIM = 64
"""Most coordinates per unit read back from ``arrays.npz`` (the analysis keeps 3)."""


def _read_units(data: dict[str, Any], folder: Path) -> None:
    """Put the per-unit vectors (and the null draws) kept in the folder's ``arrays.npz`` into the parsed summary.

    Every member is checked before it is loaded (:mod:`modularity.npzfile`):
    numbers of the right kind, and no dimension beyond the layer's units (or
    its profile's rows) as the summary declares them; the lengths and labels
    are then checked with the rest of the summary (:func:`_check_layer`).
    """
    name = data["unit_arrays"]
    if name != UNIT_ARRAYS:
        raise ModularityError(f"summary.json: unit_arrays: {_show(name)} is not '{UNIT_ARRAYS}', the only file that "
                              "holds per-unit vectors")
    path = folder / UNIT_ARRAYS
    if not path.is_file():
        raise ModularityError(f"{folder} lacks {UNIT_ARRAYS}, which holds the per-unit vectors summary.json refers to "
                              "(clusters, spectra, coordinates); the folder is incomplete: re-run "
                              "'python -m modularity analyze'")
    with open_npz(path) as npz:
        for prefix, draws, run, where in (("u", "d", data, "layers"), ("cu", "c", data.get("control"),
                                                                          "control.layers")):
            layers = run.get("layers") if isinstance(run, dict) else None
            for i, layer in enumerate(layers if isinstance(layers, list) else []):
                if isinstance(layer, dict):
                    _read_layer_units(npz, f"{prefix}{i}_", f"{draws}{i}_", layer, f"summary.json: {where}[{i}]")


class _Read(list):
    """A vector read from ``arrays.npz`` (``ndarray.tolist()`` of a checked member): plain ints or floats, or rows
    of them, which :func:`_check` takes without looking at every item."""


def _size(value: Any, where: str) -> int:
    """A size the summary declares, which bounds what is read for it; refused unless an integer up to 2**31."""
    if type(value) is not int or not 0 <= value <= 2**31:
        raise ModularityError(f"{where}: {_show(value)} is not a size (expected an integer from 0 to 2**31)")
    return value


def _read_layer_units(npz: NpzMembers, key: str, draws: str, layer: dict[str, Any], where: str) -> None:
    n = _size(layer.get("n_units"), f"{where}.n_units")
    shape = layer.get("shape")
    rows = _size(shape[0] if isinstance(shape, list) and shape else None, f"{where}.shape[0]")
    labels, values = spec("iu", (None,), max_dim=n), spec("f", (None,), max_dim=n)

    def read(member: str, want: Any) -> _Read:
        return _Read(npz.load(member, want).tolist())

    layer["clusters"] = read(key + "clusters", labels)
    layer["row_clusters"] = read(key + "row_clusters", spec("iu", (None,), max_dim=rows))
    layer["branches"] = read(key + "branches", labels) if key + "branches" in npz else None
    members = npz.keys()
    layer["spectra"] = {m[len(key) + 9:]: read(m, values) for m in members if m.startswith(key + "spectrum_")}
    layer["embedding"] = {m[len(key) + 10:]: read(m, spec("f", (n, None), max_dim=MAX_EMBEDDING_DIM))
                          for m in members if m.startswith(key + "embedding_")}
    sv = key + "singular_values"
    layer["singular_values"] = read(sv, values) if sv in npz else layer["spectra"].get("raw", [])
    if isinstance(layer.get("null_draws"), dict) and not layer["null_draws"]:
        layer["null_draws"] = {stat: read(m, spec("f", (None,), max_dim=MAX_PERMUTATIONS))
                               for stat in DRAW_STATISTICS if (m := f"{draws}{stat}") in npz}


def _frame(rows: list, columns: list[Column]):
    """A DataFrame of typed rows, one column per :class:`Column` read by attribute, indexed by the first."""
    import pandas as pd

    keys = [c.key for c in columns]
    frame = pd.DataFrame([[getattr(r, k) for k in keys] for r in rows], columns=keys)
    return frame.set_index(keys[0])


def _row_repr(row: Any) -> str:
    """A table row's repr: its set values, numbers to 3 significant digits, within about 300 characters."""
    parts = [f"{f.name}={_g(v) if isinstance(v, float) else repr(v)}"
             for f in fields(row) if (v := getattr(row, f.name)) is not None]
    text = f"{type(row).__name__}({', '.join(parts)})"
    return text if len(text) <= 280 else text[:276] + "...)"


@dataclass(frozen=True)
class Column:
    """A column of a table: the row field it shows, its short label and what it means."""

    key: str
    label: str
    help: str


@dataclass(frozen=True)
class LayerRow:
    """One analysed layer as a row of the per-layer table (``layers.csv``, the reports, the CLI summary).

    Built only by :meth:`of`, which says where every value comes from; None
    where a value does not apply (no true branches, no null draws).
    """

    __repr__ = _row_repr

    name: str
    kind: str
    n_units: int
    n_branches: int
    k: int
    k_source: str
    ari: float | None
    nmi: float | None
    ari_effect: float | None
    p: float | None
    p_method: str | None
    p_bh: float | None
    ari_unit_norm_columns: float | None
    ari_column_norms_only: float | None
    signal_ratio: float | None
    expected_ari: float | None
    n_above_edge: int | None
    verdict: str | None
    ncut: float | None
    ncut_null_mean: float | None
    ncut_null_sd: float | None
    ncut_effect: float | None
    ncut_z: float | None
    ncut_p: float | None
    ncut_p_bh: float | None
    within_share: float | None
    n_dead: int
    n_permutations: int
    consumers: str

    @classmethod
    def of(cls, layer: LayerResult) -> LayerRow:
        """The row of ``layer``: the one place the table's values are read from the result."""
        ncut, rec, det = layer.structure.ncut, layer.recovery, layer.detectability
        controls = rec.controls if rec is not None else {}
        unit, norms = controls.get("unit_norm_columns"), controls.get("column_norms_only")
        return cls(
            name=layer.name, kind=layer.kind, n_units=layer.n_units,
            n_branches=0 if layer.branches is None else len(set(layer.branches)),
            k=layer.k, k_source=layer.k_source,
            ari=_scalar(rec.ari) if rec else None, nmi=_scalar(rec.nmi) if rec else None,
            ari_effect=_scalar(rec.effect) if rec else None,
            p=_scalar(rec.p_value) if rec else None, p_method=rec.method if rec else None,
            p_bh=_scalar(rec.p_value_bh) if rec else None,
            ari_unit_norm_columns=_scalar(unit.ari) if unit else None,
            ari_column_norms_only=_scalar(norms.ari) if norms else None,
            signal_ratio=_scalar(det.ratio) if det else None,
            expected_ari=_scalar(det.expected_ari) if det else None,
            n_above_edge=det.n_above_edge if det else None,
            verdict=OUTCOMES.get(layer.verdict) if layer.verdict else None,
            ncut=_scalar(ncut.observed), ncut_null_mean=_scalar(ncut.null_mean), ncut_null_sd=_scalar(ncut.null_sd),
            ncut_effect=_scalar(ncut.effect), ncut_z=_scalar(ncut.z), ncut_p=_scalar(ncut.p_value),
            ncut_p_bh=_scalar(ncut.p_value_bh), within_share=_scalar(layer.structure.within_share),
            n_dead=layer.n_dead, n_permutations=ncut.n,
            consumers=";".join(layer.consumers),
        )


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
    Column("ari_column_norms_only", "ARI norms only", "ARI from the units' column norms alone (scale without pattern)"),
    Column("signal_ratio", "signal/limit", "signal of the true branches over the BBP detectability limit (>1: "
           "detectable)"),
    Column("expected_ari", "expected ARI", "the ARI a spectral method can expect at this signal and noise"),
    Column("n_above_edge", "above edge", "non-trivial singular values above the noise edge"),
    Column("verdict", "verdict", "recovered, missed (detectable but not recovered), below_limit (no method, or "
           "no spectral method, can recover them); without branches above_edge or no_structure"),
    Column("ncut", "n-cut", "normalised cut of the co-clustering (lower: more clusterable)"),
    Column("ncut_null_mean", "null n-cut", "mean n-cut of the null"),
    Column("ncut_null_sd", "null n-cut sd", "standard deviation of the null n-cut"),
    Column("ncut_effect", "n-cut effect", "n-cut reduction relative to the null mean (0.05: 5% lower)"),
    Column("ncut_z", "z", "n-cut z-score against the null"),
    Column("ncut_p", "p (n-cut)", "p-value of the n-cut (lower tail)"),
    Column("ncut_p_bh", "p BH (n-cut)", "Benjamini-Hochberg adjusted"),
    Column("within_share", "inside", "share of the profile's weight inside the co-clusters (above 0.5: the groups "
           "connect mostly within themselves)"),
    Column("n_dead", "dead", "units with no outgoing weight"),
    Column("n_permutations", "null draws", "draws of the null model made (sequential stopping may end early)"),
    Column("consumers", "consumers", "layers whose weights form the profile"),
]
"""The per-layer table, in order: ``layers.csv``, the HTML and PDF tables, the overview and the CLI summary."""

_COMPARED = ("ari", "ari_effect", "p_bh", "ncut_effect", "ncut_p_bh")


@dataclass(frozen=True)
class ComparisonRow:
    """One layer, trained against the random-init control (``comparison.csv``, the report's comparison table).

    ``*_control`` values come from the control's row of the same layer;
    ``ncut_effect_gap`` is the trained n-cut effect minus the control's (how
    much more clusterable training made the layer, beyond what the
    architecture gives at initialisation).
    """

    __repr__ = _row_repr

    name: str
    ari: float | None
    ari_control: float | None
    ari_effect: float | None
    ari_effect_control: float | None
    p_bh: float | None
    p_bh_control: float | None
    ncut_effect: float | None
    ncut_effect_control: float | None
    ncut_p_bh: float | None
    ncut_p_bh_control: float | None
    ncut_effect_gap: float | None

    @classmethod
    def of(cls, trained: LayerRow, control: LayerRow) -> ComparisonRow:
        """The comparison of one layer's trained row with its control's row."""
        a, b = trained.ncut_effect, control.ncut_effect
        return cls(name=trained.name, ari=trained.ari, ari_control=control.ari,
                   ari_effect=trained.ari_effect, ari_effect_control=control.ari_effect,
                   p_bh=trained.p_bh, p_bh_control=control.p_bh,
                   ncut_effect=trained.ncut_effect, ncut_effect_control=control.ncut_effect,
                   ncut_p_bh=trained.ncut_p_bh, ncut_p_bh_control=control.ncut_p_bh,
                   ncut_effect_gap=None if a is None or b is None else a - b)


_LABELS = {c.key: c for c in COLUMNS}
COMPARISON: list[Column] = (
    [Column("name", "layer", "producer layer (dotted name from named_modules)")]
    + [column for _key in _COMPARED for column in (
        Column(_key, f"{_LABELS[_key].label} trained", f"{_LABELS[_key].help}; trained weights"),
        Column(f"{_key}_control", f"{_LABELS[_key].label} control",
               f"{_LABELS[_key].help}; the same architecture at random initialisation"))]
    + [Column("ncut_effect_gap", "n-cut effect gap",
              "trained n-cut effect minus the control's: clusterability that training added")]
)
"""Trained against the random-init control (:meth:`AnalysisResult.comparison_rows`): ``comparison.csv``, the
report's comparison table and figure."""


@dataclass(frozen=True)
class SweepRow:
    """One (checkpoint, layer) of a sweep's table (``sweep.csv``).

    The fields not described below are the layer's :class:`LayerRow` values
    (see :data:`COLUMNS`); ``p_bh`` and ``ncut_p_bh`` are adjusted across the
    layers of one checkpoint.

    Attributes
    ----------
    checkpoint : str
        The checkpoint's label (:func:`~modularity.sweep.checkpoint_labels`).
    checkpoint_index : int
        Its position in the order given.
    layer : str
        Producer layer (dotted name from ``named_modules()``).
    p_permutations : int or None
        Label permutations or null draws behind ``p``.
    ncut_method : str
        How ``ncut_p`` was obtained (``sequential``, ``weight-shuffle``).
    ncut_draws : int
        Null draws behind ``ncut_p``.
    """

    __repr__ = _row_repr

    checkpoint: str
    checkpoint_index: int
    layer: str
    kind: str
    n_units: int
    n_branches: int
    k: int
    k_source: str
    ari: float | None
    p: float | None
    p_bh: float | None
    p_method: str | None
    p_permutations: int | None
    ari_effect: float | None
    nmi: float | None
    ari_unit_norm_columns: float | None
    ari_column_norms_only: float | None
    ncut: float | None
    ncut_null_mean: float | None
    ncut_null_sd: float | None
    ncut_z: float | None
    ncut_effect: float | None
    ncut_p: float | None
    ncut_p_bh: float | None
    ncut_method: str
    ncut_draws: int
    n_dead: int

    @classmethod
    def of(cls, checkpoint: str, index: int, layer: LayerResult) -> SweepRow:
        """The row of ``layer`` of the checkpoint labelled ``checkpoint`` (at ``index`` in the sweep)."""
        row, ncut = layer.row(), layer.structure.ncut
        return cls(checkpoint=checkpoint, checkpoint_index=index, layer=row.name, kind=row.kind,
                   n_units=row.n_units, n_branches=row.n_branches, k=row.k, k_source=row.k_source,
                   ari=row.ari, p=row.p, p_bh=row.p_bh, p_method=row.p_method,
                   p_permutations=layer.recovery.n_permutations if layer.recovery is not None else None,
                   ari_effect=row.ari_effect, nmi=row.nmi, ari_unit_norm_columns=row.ari_unit_norm_columns,
                   ari_column_norms_only=row.ari_column_norms_only, ncut=row.ncut,
                   ncut_null_mean=row.ncut_null_mean, ncut_null_sd=row.ncut_null_sd, ncut_z=row.ncut_z,
                   ncut_effect=row.ncut_effect, ncut_p=row.ncut_p, ncut_p_bh=row.ncut_p_bh,
                   ncut_method=ncut.method, ncut_draws=ncut.n, n_dead=row.n_dead)


SWEEP_COLUMNS: list[str] = [f.name for f in fields(SweepRow)]
"""Columns of the sweep table, in order: the fields of :class:`SweepRow`."""

SWEEP_STATISTICS: tuple[str, ...] = ("ari", "p", "ari_effect", "ncut_z", "ncut_effect")
"""The statistics a sweep draws across checkpoints, one figure each."""

for _table, _row in ((COLUMNS, LayerRow), (COMPARISON, ComparisonRow)):
    assert [c.key for c in _table] == [f.name for f in fields(_row)], f"{_row.__name__} and its columns disagree"


def jsonable(obj: Any) -> Any:
    """Convert numpy scalars and arrays, and non-finite floats (to None), for strict JSON."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
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

    Where the summary keeps its per-unit vectors (and null draws) in the
    folder's ``arrays.npz`` (its ``unit_arrays``; what ``analyze`` writes),
    they are read from there, each member checked before it is loaded, so the
    result holds everything the analysis recorded. Version 2 summaries (vectors
    inline) are read as they are.

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
    if isinstance(data, dict) and data.get("unit_arrays") is not None and data.get("schema_version") == 3:
        _read_units(data, Path(folder))
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


def _show(x: Any) -> str:
    """A value for a one-line message: short."""
    text = repr(x)
    return text if len(text) <= 60 else text[:57] + "..."


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
    if is_dataclass(hint) and isinstance(hint, type):
        return _build(hint, value, path)
    if origin is tuple:
        if not isinstance(value, list):
            raise ModularityError(f"{path}: expected a list, got {_kind(value)}")
        inner_types = typing.get_args(hint)
        if len(inner_types) == 2 and inner_types[1] is Ellipsis:
            return tuple(_check(inner_types[0], v, f"{path}[{i}]") for i, v in enumerate(value))
        if len(inner_types) != len(value):
            raise ModularityError(f"{path}: expected {len(inner_types)} values, got {len(value)}")
        return tuple(_check(t, v, f"{path}[{i}]") for i, (t, v) in enumerate(zip(inner_types, value)))
    if origin is list:
        if type(value) is _Read:  # from arrays.npz, its dtype and shape checked: plain numbers already
            return list(value)
        if not isinstance(value, list):
            raise ModularityError(f"{path}: expected a list, got {_kind(value)}")
        (inner,) = typing.get_args(hint) or (Any,)
        plain = _PLAIN.get(inner)
        if plain is not None and all(type(v) in plain for v in value):  # labels, spectra: no per-item work
            return list(value)
        leaf = _PLAIN.get(typing.get_args(inner)[0]) if typing.get_origin(inner) is list else None
        if leaf is not None and all(type(row) is list and all(type(v) in leaf for v in row) for row in value):
            return [list(row) for row in value]  # coordinates: a list of plain rows, no per-row work either
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


_PLAIN = {float: (float, int, type(None)), int: (int,)}
"""Item types a ``list[float]`` or ``list[int]`` takes as they are (:func:`_check` returns each unchanged)."""


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    """The type hints of a record's fields (a transient field's, such as the in-memory profile, is never read)."""
    return typing.get_type_hints(cls, localns={"Profile": object})


def _build(cls: type, data: Any, path: str) -> Any:
    """Build dataclass ``cls`` from a JSON object, checking every field; unknown keys are ignored."""
    if not isinstance(data, dict):
        raise ModularityError(f"{path}: expected an object, got {_kind(data)}")
    hints = _hints(cls)
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
    try:
        obj = cls(**kwargs)
    except ModularityError as exc:  # a record that checks its own values (the settings)
        raise ModularityError(f"{path}: {exc}") from None
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
