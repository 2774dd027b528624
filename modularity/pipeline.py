"""The front end's engine: default policies, loading, running, and writing results folders.

:mod:`modularity.cli` parses arguments and prints; everything else a command
does happens here, so a notebook gets the same defaults as the command line:

* no model: the offline default (EfficientNet-Lite0) with its packaged trained
  weights; a named model: random initial weights (``weights="none"``) unless
  weights are given, initialised from ``seed`` so that runs repeat exactly;
* results folders are written whole or not at all (:mod:`modularity.folders`).

Algorithms below this layer take modules, graphs and arrays and return plain
results; only this module and the CLI load models by name or write folders.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from . import analysis
from .core.graph import ChannelGraph, trace
from .errors import ModularityError
from .folders import MARKER, atomic_output_dir, check_output_dir
from .output.export import (DEFAULT_MAX_EDGES, DEFAULT_TOP_K, clusterability_rows, write_csv)
from .output.figures import figure_arrays, load_arrays, profiles_for, save_arrays, write_exports, write_tables
from .output.report import build_reports, rebuild_report
from .results import AnalysisResult, load_summary
from .studies.clusterability import ClusterabilityResult, clusterability
from .zoo import DEFAULT_MODEL, LoadedModel
from .zoo import load_model as _zoo_load_model

__all__ = ["DEFAULT_MODEL", "UNIT_FORMATS", "default_weights", "default_out", "load_model", "state_dict_sha256",
           "analyze", "write_results", "save_results", "rebuild", "write_clusterability", "CONTROLS",
           "random_init", "add_control"]

CONTROLS = ("none", "random-init")
"""Built-in controls: ``random-init`` analyses the same architecture at random initialisation."""

UNIT_FORMATS = ("graphml", "gexf")


def default_weights(model: str | None, weights: str | None) -> str:
    """The weights choice the CLI and API use: the given one, else trained for the default model, else none."""
    if weights is not None:
        return str(weights)
    return "DEFAULT" if model is None else "none"


def default_out(model: str | None, suffix: str = "") -> Path:
    """The default results folder of a model: ``results/<model><suffix>``."""
    return Path("results") / f"{Path(model or DEFAULT_MODEL).stem}{suffix}"


def state_dict_sha256(module: nn.Module) -> str:
    """SHA-256 of a module's state dict as analysed: names, dtypes, shapes and bytes, in key order."""
    h = hashlib.sha256()
    for key, value in module.state_dict().items():
        t = value.detach().to("cpu").contiguous()
        h.update(f"{key}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(memoryview(t.reshape(-1).view(torch.uint8).numpy()) if t.numel() else b"")  # no copy of the bytes
    return h.hexdigest()


def load_model(model: str | None = None, weights: str | None = None, seed: int = 0,
               input_size: tuple[int, int] | None = None) -> LoadedModel:
    """Load a model with the command line's defaults.

    Parameters
    ----------
    model : str or None
        A registry name (``python -m modularity models``) or a path to an
        ``.onnx`` file; None for the offline default, EfficientNet-Lite0.
    weights : str or None
        ``"none"``, ``"DEFAULT"``, a torchvision weights name or a weights file;
        None: ``"DEFAULT"`` for the offline default, ``"none"`` for a named model.
    seed : int
        Seeds random initial weights (``weights="none"``), so that the same
        seed gives the same network.
    input_size : (int, int) or None
        Height and width an ONNX file is imported at (see
        :func:`modularity.zoo.load_model`); None: its own.

    Returns
    -------
    LoadedModel
        With ``weights_sha256`` the hash of the state dict actually analysed.
    """
    weights = default_weights(model, weights)
    if weights.lower() == "none":
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            loaded = _zoo_load_model(model, weights, input_size)
    else:
        loaded = _zoo_load_model(model, weights, input_size)
    loaded.weights_sha256 = state_dict_sha256(loaded.module)
    return loaded


def random_init(loaded: LoadedModel, seed: int = 0) -> LoadedModel:
    """The same architecture at random initialisation, seeded by ``seed``: the random-init control.

    A registered architecture is built again with its own initialisation (as
    ``weights="none"`` builds it); any other module (an ONNX import, a module
    passed in) is copied and every submodule's ``reset_parameters()`` is
    called, which resets convolutions and linear layers to PyTorch's default
    initialisation and batch norms to identity statistics.
    """
    from .zoo.registry import SOURCES, _ensure_registered

    _ensure_registered()
    if loaded.name in SOURCES:
        control = load_model(loaded.name, "none", seed=seed)
    else:
        module = copy.deepcopy(loaded.module)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            for sub in module.modules():
                if callable(getattr(sub, "reset_parameters", None)):
                    sub.reset_parameters()
        control = LoadedModel(name=loaded.name, module=module, weights="none", input_size=loaded.input_size,
                              provenance="random initial weights (each module's reset_parameters(): PyTorch's "
                                         "default initialisation, not necessarily the architecture's own)")
        control.weights_sha256 = state_dict_sha256(module)
    control.weights = "none (random-init control)"
    return control


def _check_control_weights(weights: str) -> None:
    if str(weights).lower() == "none":
        raise ModularityError("the random-init control compares trained weights with the same architecture at random "
                              "initialisation, but these weights are already random (weights='none'); give trained "
                              "weights, or leave the control out")


def add_control(result: AnalysisResult, loaded: LoadedModel, control: str = "random-init",
                **options) -> AnalysisResult:
    """Analyse the random-init control of ``loaded`` with ``result``'s settings and attach it as ``result.control``.

    The control analyses exactly the layers of ``result``; ``options`` are
    further keywords of :func:`modularity.analysis.analyze` that
    ``result`` does not record (``jobs``, ``backend``, ``progress``, ...).

    Raises
    ------
    ModularityError
        For an unknown control, or a model that is itself at random
        initialisation (its control would be the same network).
    """
    if control not in CONTROLS:
        raise ModularityError(f"unknown control '{control}'; choose one of {', '.join(CONTROLS)}")
    if control == "none":
        return result
    _check_control_weights(loaded.weights)
    twin = random_init(loaded, seed=result.seed)
    names = "/^(" + "|".join(re.escape(layer.name) for layer in result.layers) + ")$/"
    result.control = analysis.analyze(
        twin, layers=names, reduction=result.reduction, expand=result.expand, seed=result.seed,
        n_permutations=result.n_permutations, null=result.null, n_label_permutations=result.n_label_permutations,
        sequential_h=result.sequential_h, method=result.method, input_size=tuple(result.input_size),
        k=options.pop("k", None), command=result.command, **options)
    return result


def analyze(model: "nn.Module | LoadedModel | str | None" = None, weights: str | None = None, *,
            seed: int = 0, control: str = "none", **options) -> AnalysisResult:
    """Analyse a model given by name, file, module or :class:`LoadedModel` (see :func:`modularity.analysis.analyze`).

    A name or None is loaded with :func:`load_model` (the command line's
    defaults, random weights seeded by ``seed``); every other keyword goes to
    :func:`modularity.analysis.analyze`. ``control="random-init"`` also
    analyses the same architecture at random initialisation with the same
    settings (:func:`add_control`), as ``result.control``.

    Examples
    --------
    >>> res = analyze("alexnet", layers="features.0", n_permutations=3)
    >>> res.weights, res.layers[0].n_units
    ('none', 64)
    """
    if model is None or isinstance(model, str):
        model = load_model(model, weights, seed=seed)
    elif weights is not None:
        raise ModularityError("weights= applies to a model given by name; load the weights into the module "
                              "yourself, or pass the model's name")
    if control not in CONTROLS:
        raise ModularityError(f"unknown control '{control}'; choose one of {', '.join(CONTROLS)}")
    if control != "none" and isinstance(model, LoadedModel):
        _check_control_weights(model.weights)  # before the long run, not after it
    result = analysis.analyze(model, seed=seed, **options)
    if control != "none":
        loaded = model if isinstance(model, LoadedModel) else LoadedModel(
            name=result.model, module=model, weights=result.weights, input_size=tuple(result.input_size))
        extra = {key: options[key] for key in ("k", "jobs", "backend", "scheduler", "progress") if key in options}
        add_control(result, loaded, control, **extra)
    return result


def write_results(result: AnalysisResult, graph: ChannelGraph, folder: str | Path, progress: bool = False,
                  top_k: int | None = DEFAULT_TOP_K, max_edges: int | None = DEFAULT_MAX_EDGES,
                  formats: Sequence[str] = ("graphml", "gexf", "node_link", "cytoscape"),
                  unit_formats: Sequence[str] = UNIT_FORMATS) -> list[Path]:
    """Write every output of an analysis into ``folder`` (which must exist).

    Parameters
    ----------
    result : AnalysisResult
    graph : ChannelGraph
        The graph the result was computed from (for the magnitude matrices,
        first-layer filters and graph files).
    folder : str or Path
    progress : bool
        Progress bar while drawing figures.
    top_k, max_edges
        Unit-graph size: each consumer unit's ``top_k`` strongest incoming
        edges, lowered until the graph has at most ``max_edges`` edges (see
        :func:`modularity.output.export.unit_graph`; the ``top_k`` used is in the
        graph's metadata). ``top_k=0`` writes every connection, as
        ``unit_graph.graphml.gz``.
    formats, unit_formats
        Formats of the layer-level and the unit-level graph. The unit graph
        defaults to GraphML and GEXF only: for a whole ~50-layer network each
        file is 10-25 MB, and the JSON forms would double that.

    Returns
    -------
    list of Path
        The files written.
    """
    folder = Path(folder)
    result.save(folder / "summary.json")
    kept = {layer.name: layer.profile for layer in result.layers if layer.profile is not None}
    profiles = kept if len(kept) == len(result.layers) else profiles_for(graph, result)  # the analysis kept them
    arrays = figure_arrays(graph, result, profiles)
    written = [folder / "summary.json", save_arrays(arrays, folder / "arrays.npz")]
    written += write_tables(result, folder)
    if top_k == 0:  # every connection: as compressed GraphML only, which networkx, Gephi and Cytoscape read
        top_k, max_edges, unit_formats = None, None, ("graphml_gz",)
    written += write_exports(result, graph, folder, profiles, top_k, max_edges, formats, unit_formats)
    written += build_reports(result, arrays, folder, progress=progress)
    return written


def save_results(result: AnalysisResult, graph: ChannelGraph, out: str | Path, progress: bool = False,
                 **options) -> Path:
    """Write a complete results folder at ``out``, all at once (see :mod:`modularity.folders`).

    ``out`` may be a new folder, an empty one or a results folder modularity
    wrote and nobody changed since; anything else is refused before anything
    is written, as is a filesystem with less free space than
    :func:`estimate_results_bytes` says the folder may need.
    """
    expected = estimate_results_bytes(result, options.get("top_k", DEFAULT_TOP_K),
                                      options.get("max_edges", DEFAULT_MAX_EDGES))
    with atomic_output_dir(out, expected_bytes=expected) as tmp:
        write_results(result, graph, tmp, progress=progress, **options)
    return Path(out)


def estimate_results_bytes(result: AnalysisResult, top_k: int | None = DEFAULT_TOP_K,
                           max_edges: int | None = DEFAULT_MAX_EDGES) -> int:
    """A rough upper bound of a results folder's size, for the free-space check before writing.

    Fitted on real folders (BENCHMARKS.md, "Results folder sizes"): a fixed
    part (report templates, overview figures, channel graph), per layer its
    figures and report pages, per unit its rows in ``summary.json``,
    ``units.csv`` and the report, per null draw its number, per unit-graph
    edge its line in each graph format; each rate rounded up, the sum doubled.
    """
    layers = [result.layers] + ([result.control.layers] if result.control is not None else [])
    n_layers = sum(len(ls) for ls in layers)
    n_units = sum(layer.n_units for ls in layers for layer in ls)
    n_draws = sum(len(v) for ls in layers for layer in ls for v in layer.null_draws.values())
    if top_k == 0:  # every connection, compressed GraphML only
        edge_bytes = sum(int(layer.shape[0]) * layer.n_units for layer in result.layers) * _BYTES_PER_EDGE_GZ
    else:
        edges = sum(int(layer.shape[0]) * min(layer.n_units, top_k or layer.n_units) for layer in result.layers)
        edge_bytes = min(edges, max_edges or edges) * _BYTES_PER_EDGE
    fixed = _BYTES_FIXED + n_layers * _BYTES_PER_LAYER + n_units * _BYTES_PER_UNIT + n_draws * _BYTES_PER_DRAW
    return 2 * (fixed + edge_bytes)


# Rates of estimate_results_bytes: least-squares fits on five default folders and one --unit-graph-top-k 0 folder
# (BENCHMARKS.md, "Results folder sizes"), rounded up.
_BYTES_FIXED = 5_000_000  # fitted 4.0 MB
_BYTES_PER_LAYER = 200_000  # fitted 143 kB
_BYTES_PER_UNIT = 2_500  # fitted 245 B in tables and reports + 1,650 B per unit-graph node
_BYTES_PER_DRAW = 20
_BYTES_PER_EDGE = 400  # fitted 317 B over the unit graph's two default formats
_BYTES_PER_EDGE_GZ = 20  # measured 13.8 B in unit_graph.graphml.gz


def rebuild(folder: str | Path, progress: bool = False) -> list[Path]:
    """Rebuild tables, figures and reports of a results folder, replacing it only when complete.

    The folder must be a results folder that ``analyze`` wrote, holding only
    the files of its manifest (its inputs ``summary.json`` and ``arrays.npz``
    may have been edited: they are carried over as they are) and no symbolic
    link anywhere. Both inputs are read and checked before anything is
    written; the rebuild happens in a new folder that replaces the old one
    only when complete, so nothing is written through a link or into a file
    that was not created fresh.
    """
    from .folders import check_no_symlinks, check_replaceable, copy_fresh, folder_bytes

    folder = Path(folder)
    what = f"report {folder}"
    if folder.is_symlink():
        raise ModularityError(f"{what}: the folder is a symbolic link; give the folder itself "
                              f"({os.path.realpath(folder)})")
    if not folder.is_dir():
        raise ModularityError(f"results folder not found: {folder}")
    try:
        check_no_symlinks(folder, what)
    except OSError as exc:
        raise ModularityError(f"{what} cannot be read ({exc.strerror}: {exc.filename})") from None
    if not os.path.lexists(folder / MARKER):
        raise ModularityError(f"{folder} is not a complete results folder written by modularity (it has no "
                              f"{MARKER} marker); 'report' rewrites only folders that 'analyze' wrote")
    marker = check_replaceable(folder, what, option="report", keep=REPORT_INPUTS)
    if marker.get("kind", "analyze") != "analyze":
        raise ModularityError(f"{what} is a '{marker.get('kind')}' folder; 'report' rebuilds folders that "
                              "'analyze' wrote")
    result = load_summary(folder)
    load_arrays(folder, result)
    with atomic_output_dir(folder, keep=REPORT_INPUTS, option="report",
                           expected_bytes=2 * folder_bytes(folder) + _BYTES_FIXED) as tmp:
        copy_fresh(folder, tmp)
        written = rebuild_report(tmp, progress=progress)
    return [Path(folder) / p.relative_to(tmp) for p in written]


REPORT_INPUTS = ("summary.json", "arrays.npz")
"""What ``report DIR`` reads and carries over as they are (so edits to them are not lost)."""


def write_clusterability(result: ClusterabilityResult, out: str | Path, loaded: LoadedModel | None = None,
                         progress: bool = False) -> Path:
    """Write a clusterability folder at ``out``, all at once (see :mod:`modularity.folders`).

    It holds ``clusterability.json`` (every number, each unit's cluster),
    ``clusterability_layers.csv`` (units per layer and cluster), ``figures/``
    (the n-cut against its null, the clusters across the layers; PNG and
    SVG), ``clusterability_null.png``, and ``report.html`` and ``report.pdf``
    in the style of the ``analyze`` report.
    """
    from .output.report import build_clusterability_report

    with atomic_output_dir(out, kind="clusterability") as tmp:
        data = result.to_dict()
        extra = {}
        if loaded is not None:
            extra = {"weights_sha256": loaded.weights_sha256, "provenance": loaded.provenance}
            data.update(extra)
        (tmp / "clusterability.json").write_text(json.dumps(data, indent=1, allow_nan=False) + "\n",
                                                 encoding="utf-8")
        write_csv(clusterability_rows(result.layers, result.layer_sizes, result.cluster_sizes, result.k),
                  tmp / "clusterability_layers.csv")
        build_clusterability_report(result, tmp, extra, progress=progress)
    return Path(out)


def run_clusterability(model: str | None, weights: str | None, out: str | Path | None, *, k: int = 12,
                       n_shuffles: int = 100, seed: int = 0, include_linear: bool = False, progress: bool = False,
                       command: str = "", null: str = "shuffle", jobs: int = 1, backend: str = "local",
                       scheduler: str | None = None) -> tuple[ClusterabilityResult, Path]:
    """Load, trace, compute whole-network clusterability and write its folder (output checked first).

    ``jobs``, ``backend`` and ``scheduler`` say where the shuffled networks run
    (:mod:`modularity.backends`); the numbers do not depend on them.
    """
    out = Path(out) if out else default_out(model, "-clusterability")
    check_output_dir(out)
    loaded = load_model(model, weights, seed=seed)
    graph = trace(loaded.module, loaded.input_size)
    result = clusterability(graph, k=k, n_shuffles=n_shuffles, seed=seed, include_linear=include_linear,
                            progress=progress, name=loaded.name, null=null, jobs=jobs, backend=backend,
                            scheduler=scheduler)
    result.weights = loaded.weights
    result.command = command
    write_clusterability(result, out, loaded)
    return result, out


def write_sweep(result, out: str | Path) -> Path:
    """Write a sweep's folder at ``out`` (``result``: a :class:`modularity.sweep.SweepResult`), all at once.

    ``out`` may be a new folder, an empty one or a results folder modularity
    wrote (see :mod:`modularity.folders`); anything else is refused before
    anything is written.

    Files: ``sweep.csv`` (one row per checkpoint and layer; also
    ``sweep.parquet`` where pyarrow is installed), ``sweep.png`` and
    ``sweep.svg`` (every statistic across checkpoints, one line per layer),
    ``figures/<statistic>.png`` (one statistic each), ``sweep.json`` (settings,
    checkpoints with their SHA-256 and summary file, columns) and
    ``checkpoints/NNN_<label>/summary.json`` (each checkpoint's complete
    summary, readable with :func:`modularity.load_summary`).
    """
    import importlib.util

    from .output.sweep_figures import FIGURE_STATISTICS, STATISTIC_LABELS, sweep_figure

    with atomic_output_dir(out, kind="sweep") as tmp:
        table = result.to_frame()
        table.to_csv(tmp / "sweep.csv", index=False)
        if importlib.util.find_spec("pyarrow") is not None:
            table.to_parquet(tmp / "sweep.parquet", index=False)
        for folder, res in zip(result.folder_names(), result.results):
            (tmp / folder).mkdir(parents=True)
            res.save(tmp / folder / "summary.json")
        (tmp / "sweep.json").write_text(json.dumps(result.to_dict(), indent=1, allow_nan=False) + "\n",
                                        encoding="utf-8")
        values = {key: result.pivot(key).to_numpy(dtype=float) for key in FIGURE_STATISTICS}
        title = f"{result.arch}: {len(result.checkpoints)} checkpoints"
        fig = sweep_figure(result.labels, result.layers, values, title)
        fig.savefig(tmp / "sweep.png", dpi=120)
        fig.savefig(tmp / "sweep.svg")
        (tmp / "figures").mkdir()
        for key in FIGURE_STATISTICS:
            fig = sweep_figure(result.labels, result.layers, {key: values[key]},
                               f"{result.arch}: {STATISTIC_LABELS.get(key, key)}")
            fig.savefig(tmp / "figures" / f"{key}.png", dpi=120)
    return Path(out)
