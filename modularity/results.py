"""Plain result objects of an analysis, and their JSON form (``summary.json``).

Everything downstream (exports, figures, reports) reads these objects, never
the model, so a results folder can be re-rendered without recomputing.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ModularityError

__all__ = ["SCHEMA_VERSION", "Recovery", "LayerResult", "AnalysisResult", "load_summary"]

SCHEMA_VERSION = 1


@dataclass
class Recovery:
    """How well clusters found from weights match the true branches.

    ``p_value`` is the empirical probability ``(r + 1) / (n + 1)``, over null
    draws of every consumer's weights, of an ARI at least as high as the
    observed one; ``p_value_bh`` adjusts it across the analysed layers
    (Benjamini-Hochberg). ``controls``
    repeats the test on profiles whose producer columns are scaled to unit
    norm (pattern without scale) and on the column norms alone (scale without
    pattern), each ``{"ari", "p_value", "null_mean"}``.
    """

    ari: float
    nmi: float
    p_value: float
    n_permutations: int
    null_ari_mean: float | None = None
    null_ari_sd: float | None = None
    z: float | None = None
    nmi_p_value: float | None = None
    controls: dict[str, dict[str, float | None]] = field(default_factory=dict)
    p_value_bh: float | None = None


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
    structure : dict
        ``ncut``: the co-clustering's normalised cut against shuffles (lower is
        more clusterable; ``alternative="less"``), as a ``NullSummary`` dict.
    shape : list of int
        Shape of the profile matrix (rows, units).
    blocks : list of [str, int, int]
        Consumer row blocks of the profile matrix.
    row_clusters : list of int
        Co-cluster label of each profile row (consumer unit).
    null_draws : dict of str to list of float
        The statistic of every null draw: ``ncut`` always; ``ari`` and ``nmi``
        where the layer has true branches.
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
    structure: dict[str, Any]
    shape: list[int]
    blocks: list[list[Any]]
    row_clusters: list[int] = field(default_factory=list)
    null_draws: dict[str, list[float]] = field(default_factory=dict)


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
    weights_sha256: str | None = None
    provenance: str = ""
    input_size: list[int] = field(default_factory=lambda: [224, 224])
    versions: dict[str, str] = field(default_factory=dict)
    command: str = ""
    runtime_s: float = 0.0
    schema_version: int = SCHEMA_VERSION

    def layer(self, name: str) -> LayerResult:
        """The result for one producer layer by name."""
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)

    def to_dict(self) -> dict:
        """A JSON-ready dict (the content of ``summary.json``)."""
        return _jsonable(asdict(self))

    def save(self, path: str | Path) -> None:
        """Write ``summary.json``: objects indented, lists of numbers on one line, floats to 7 digits."""
        Path(path).write_text(_dumps(self.to_dict()) + "\n", encoding="utf-8")

    @classmethod
    def from_dict(cls, data: dict) -> "AnalysisResult":
        """Rebuild a result from its ``summary.json`` dict."""
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise ModularityError(
                f"summary.json has schema version {version}, this modularity reads version {SCHEMA_VERSION}; "
                "re-run 'python -m modularity analyze' to regenerate it"
            )
        required = {"model", "weights", "seed", "n_permutations", "reduction", "expand", "layers"}
        missing = sorted(required - set(data))
        if missing:
            raise ModularityError(f"summary.json lacks the keys {', '.join(missing)}")
        layers = []
        for entry in data["layers"]:
            entry = dict(entry)
            rec = entry.get("recovery")
            entry["recovery"] = Recovery(**rec) if rec else None
            known = {f.name for f in fields(LayerResult)}
            layers.append(LayerResult(**{k: v for k, v in entry.items() if k in known}))
        known = {f.name for f in fields(cls)}
        return cls(**{**{k: v for k, v in data.items() if k in known}, "layers": layers})


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
    """Read ``summary.json`` from a results folder.

    Raises
    ------
    ModularityError
        If the folder or file is missing, unreadable, or from another schema version.
    """
    path = Path(folder) / "summary.json"
    if not Path(folder).is_dir():
        raise ModularityError(f"results folder not found: {folder}")
    if not path.is_file():
        raise ModularityError(f"{folder} has no summary.json; it is not a results folder written by "
                              "'python -m modularity analyze'")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModularityError(f"{path} is not valid JSON ({exc})") from None
    return AnalysisResult.from_dict(data)
