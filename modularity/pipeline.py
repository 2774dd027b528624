"""The front end's engine: every command's work, from checked settings to a written folder.

:mod:`modularity.cli` parses arguments, builds one
:class:`~modularity.settings.AnalysisSettings` and prints; everything else a
command does happens here (``run_analyze``, ``run_clusterability``,
``run_sweep``, ``rebuild``), and :func:`analyze` gives a notebook the same
defaults as the command line (:mod:`modularity.loading`). Results folders are
written whole or not at all (:mod:`modularity.folders`); the output layer is
handed the results, the profiles and the figure arrays, and never reaches
back into the model.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from torch import nn

from .analysis import analyze_model
from .arrays import figure_arrays
from .core.defaults import CONTROLS
from .core.graph import ChannelGraph, trace
from .core.magnitude import Profile, downstream_profile
from .errors import ModularityError
from .folders import atomic_output_dir, check_output_dir
from .loading import default_weights, load_model, random_init, state_dict_sha256
from .output.export import DEFAULT_MAX_EDGES, DEFAULT_TOP_K, clusterability_rows, write_csv
from .output.figures import UNIT_GRAPH_LAYERS, featured_layers, save_arrays, write_exports, write_tables
from .output.render import progress_bar
from .output.report import build_reports, read_results
from .preflight import (
    check_control_weights,
    default_out,
    out_folder,
    resolve_control,
)
from .rebuilding import rebuild
from .results import AnalysisResult
from .settings import AnalysisSettings
from .studies.clusterability import ClusterabilityResult, clusterability
from .sweep import SweepResult, sweep
from .zoo import DEFAULT_MODEL, LoadedModel, list_sources, name_families

__all__ = ["DEFAULT_MODEL", "UNIT_FORMATS", "default_weights", "default_out", "load_model", "state_dict_sha256",
           "analyze", "run_analyze", "write_results", "save_results", "rebuild", "write_clusterability",
           "run_clusterability", "write_sweep", "run_sweep", "CONTROLS", "random_init", "add_control",
           "profiles_of", "list_sources", "resolve_control", "name_families"]

UNIT_FORMATS = ("graphml_gz",)


def add_control(result: AnalysisResult, loaded: LoadedModel, *, progress: bool = False) -> AnalysisResult:
    """Analyse the control ``result.settings.control`` names and attach it as ``result.control``.

    ``random-init``: the same architecture at random initialisation
    (:func:`random_init`, seeded by the settings' seed), analysed with the
    same settings at exactly the layers of ``result``. ``none``: nothing.

    Raises
    ------
    ModularityError
        For a model that is itself at random initialisation (its control
        would be the same network).
    """
    settings = result.settings
    if settings.control != "random-init":
        return result
    check_control_weights(loaded.weights, settings)
    twin = random_init(loaded, seed=settings.seed)
    names = "/^(" + "|".join(re.escape(layer.name) for layer in result.layers) + ")$/"
    twin_settings = settings.replace(layers=names, input_size=tuple(result.input_size), control="none")
    result.control = analyze_model(twin, twin_settings, progress=progress, command=result.command)
    return result


def analyze(model: nn.Module | LoadedModel | str | None = None, weights: str | None = None, *,
            settings: AnalysisSettings | None = None, graph: ChannelGraph | None = None, progress: bool = False,
            command: str = "", **changes: Any) -> AnalysisResult:
    """Analyse a model given by name, file, module or :class:`LoadedModel`.

    Parameters
    ----------
    model : nn.Module, LoadedModel, str or None
        A registry name or ``.onnx`` path (loaded with :func:`load_model`: the
        command line's defaults, random weights seeded by the settings'
        ``seed`` for a named model), None for the offline default, a module,
        or a loaded model.
    weights : str, optional
        Weights of a model given by name (see :func:`load_model`).
    settings : AnalysisSettings, optional
        How to analyse it (default: the command line's defaults).
    graph : ChannelGraph, optional
        A graph already traced from this model.
    progress : bool
        Progress bars.
    command : str
        The command line, recorded in the result.
    **changes
        Settings to change (``layers="inception??"``, ``n_permutations=20``,
        ``control="random-init"``, ...), as :meth:`AnalysisSettings.replace`
        takes them; checked before anything is loaded.

    Returns
    -------
    AnalysisResult
        With ``control`` set where ``settings.control`` asks for one.

    Examples
    --------
    >>> res = analyze("alexnet", layers="features.0", n_permutations=3)
    >>> res.weights, res.layers[0].n_units
    ('none', 64)
    """
    settings = AnalysisSettings.of(settings, **changes)
    if model is None or isinstance(model, str):
        settings = resolve_control(settings, default_weights(model, weights))
        check_control_weights(default_weights(model, weights), settings)  # before loading, not after the run
        model = load_model(model, weights, seed=settings.seed, input_size=settings.input_size)
    elif weights is not None:
        raise ModularityError("weights= applies to a model given by name; load the weights into the module "
                              "yourself, or pass the model's name")
    settings = resolve_control(settings, model.weights if isinstance(model, LoadedModel) else "as given")
    if isinstance(model, LoadedModel):
        check_control_weights(model.weights, settings)
    result = analyze_model(model, settings, graph=graph, progress=progress, command=command)
    if settings.control == "random-init":
        loaded = model if isinstance(model, LoadedModel) else LoadedModel(
            name=result.model, module=model, weights=result.weights, input_size=tuple(result.input_size))
        add_control(result, loaded, progress=progress)
    return result


def run_analyze(model: str | None, weights: str | None, settings: AnalysisSettings, out: str | Path | None = None,
                *, top_k: int | None = DEFAULT_TOP_K, unit_graph: str = "featured", progress: bool = False,
                command: str = "", draws_in_summary: bool = False) -> tuple[AnalysisResult, Path]:
    """What ``python -m modularity analyze`` does: check, load, trace, analyse, add the control, write.

    Everything that can be refused without the model (the output folder, the
    control against random weights) is refused before loading.
    """
    out = out_folder(out, model)
    check_output_dir(out)  # before any work: never after a long run (the CLI checks names and files too)
    settings = resolve_control(settings, default_weights(model, weights))
    check_control_weights(default_weights(model, weights), settings)
    # no bar over loading and tracing (a second for alexnet): one would precede the one-line errors found
    # right after tracing (--layers matching nothing) on stderr
    loaded = load_model(model, weights, seed=settings.seed, input_size=settings.input_size)
    graph = trace(loaded.module, tuple(settings.input_size or loaded.input_size), loaded.in_channels)
    result = analyze(loaded, settings=settings, graph=graph, progress=progress, command=command)
    save_results(result, graph, out, progress=progress, top_k=top_k, unit_graph=unit_graph,
                 draws_in_summary=draws_in_summary)
    return result, out


def profiles_of(graph: ChannelGraph, result: AnalysisResult) -> dict[str, Profile]:
    """The downstream profile of every analysed layer: kept by the analysis where it could, else rebuilt."""
    return {layer.name: layer.profile if layer.profile is not None else
            downstream_profile(graph, layer.name, result.reduction, result.expand) for layer in result.layers}


def write_results(result: AnalysisResult, graph: ChannelGraph, folder: str | Path, progress: bool = False,
                  top_k: int | None = DEFAULT_TOP_K, max_edges: int | None = DEFAULT_MAX_EDGES,
                  formats: Sequence[str] = ("graphml", "gexf", "node_link", "cytoscape"),
                  unit_formats: Sequence[str] = UNIT_FORMATS, unit_graph: str = "featured",
                  jobs: int | None = None, draws_in_summary: bool = False) -> list[Path]:
    """Write every output of an analysis into ``folder`` (which must exist).

    Parameters
    ----------
    result : AnalysisResult
    graph : ChannelGraph
        The graph the result was computed from (for the magnitude matrices,
        first-layer filters and graph files).
    folder : str or Path
    progress : bool
        A progress bar over the steps: the data files, every page of the
        PDF report (its figures are drawn there), the graph files, the HTML.
    top_k, max_edges
        Unit-graph size: each consumer unit's ``top_k`` strongest incoming
        edges, lowered until the graph has at most ``max_edges`` edges (see
        :func:`modularity.output.export.unit_graph`; the ``top_k`` used is in the
        graph's metadata). ``top_k=0`` writes every connection, as
        ``unit_graph.graphml.gz``.
    draws_in_summary : bool
        Also write every null draw into ``summary.json`` (they are always in
        ``arrays.npz``, for the null histograms). Every layer's per-unit
        vectors (labels, spectra, coordinates) are in ``arrays.npz`` only.
    formats, unit_formats
        Formats of the layer-level and the unit-level graph. The unit graph
        defaults to gzipped GraphML (networkx reads it as it is; Gephi opens
        it; gunzip it for Cytoscape or yEd): plain GraphML and GEXF of a whole
        ~50-layer network took 10-25 MB each.
    unit_graph : {"featured", "all", "none"}
        Which layers the unit graph covers: the featured layers (those the
        report shows with figures of their own), every analysed layer, or none
        (no unit graph file).
    jobs : int, optional
        Processes drawing the report (None: one per available core; 1: this
        process alone). The graph files are written here meanwhile.

    Returns
    -------
    list of Path
        The files written.
    """
    if unit_graph not in UNIT_GRAPH_LAYERS:
        raise ModularityError(f"unknown unit_graph '{unit_graph}'; choose one of {', '.join(UNIT_GRAPH_LAYERS)}")
    folder = Path(folder)
    if top_k == 0:  # every connection: as compressed GraphML only, which networkx, Gephi and Cytoscape read
        top_k, max_edges, unit_formats = None, None, ("graphml_gz",)
    if unit_graph == "none":
        unit_formats = ()
    written: list[Path] = []
    with progress_bar(progress, 5, "saving results") as bar:  # 2 data files, 3 tasks alongside the pages
        result.save(folder / "summary.json", draws=draws_in_summary, units=False)
        written.append(folder / "summary.json")
        bar.update(1)
        profiles = profiles_of(graph, result)
        written.append(save_arrays(figure_arrays(graph, result, profiles), folder / "arrays.npz"))
        bar.update(1)
        # the report is drawn from the folder as written (7-digit numbers, float32 vectors), exactly as
        # 'report DIR' redraws it; the tables keep the analysis' full precision
        stored, arrays = read_results(folder)
        unit_layers = None if unit_graph == "all" else [result.layers[i].name for i in featured_layers(stored)]

        def tables() -> None:
            written.extend(write_tables(result, folder))

        def layer_graphs() -> None:
            written.extend(write_exports(result, graph, folder, profiles, formats=formats, unit_formats=()))

        def unit_graphs() -> None:
            written.extend(write_exports(result, graph, folder, profiles, top_k, max_edges, formats=(),
                                         unit_formats=unit_formats, unit_layers=unit_layers))

        written += build_reports(stored, arrays, folder, jobs=jobs, alongside=[unit_graphs, layer_graphs, tables],
                                 bar=bar)
    return written


def save_results(result: AnalysisResult, graph: ChannelGraph, out: str | Path, progress: bool = False,
                 **options) -> Path:
    """Write a complete results folder at ``out``, all at once (see :mod:`modularity.folders`).

    ``out`` may be a new folder, an empty one or a results folder modularity
    wrote and nobody changed since; anything else is refused before anything
    is written, as is a filesystem with less free space than
    :func:`estimate_results_bytes` says the folder may need.
    ``options`` go to :func:`write_results` (``top_k``, ``max_edges``,
    ``formats``, ``unit_formats``, ``unit_graph``, ``jobs``,
    ``draws_in_summary``); ``progress`` shows a bar over its steps.
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
                       scheduler: str | None = None,
                       input_size: tuple[int, int] | None = None) -> tuple[ClusterabilityResult, Path]:
    """Load, trace, compute whole-network clusterability and write its folder (output checked first).

    ``jobs``, ``backend`` and ``scheduler`` say where the shuffled networks run
    (:mod:`modularity.backends`); the numbers do not depend on them.
    """
    out = out_folder(out, model, "-clusterability")
    check_output_dir(out)
    loaded = load_model(model, weights, seed=seed, input_size=input_size)
    graph = trace(loaded.module, tuple(input_size or loaded.input_size), loaded.in_channels)
    result = clusterability(graph, k=k, n_shuffles=n_shuffles, seed=seed, include_linear=include_linear,
                            progress=progress, name=loaded.name, null=null, jobs=jobs, backend=backend,
                            scheduler=scheduler)
    result.weights = loaded.weights
    result.command = command
    write_clusterability(result, out, loaded, progress=progress)
    return result, out


def write_sweep(result: SweepResult, out: str | Path) -> Path:
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

    from .output.sweep_figures import STATISTIC_LABELS, sweep_figure
    from .results import SWEEP_STATISTICS

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
        values = {key: result.pivot(key).to_numpy(dtype=float) for key in SWEEP_STATISTICS}
        title = f"{result.arch}: {len(result.checkpoints)} checkpoints"
        fig = sweep_figure(result.labels, result.layers, values, title)
        fig.savefig(tmp / "sweep.png", dpi=120)
        fig.savefig(tmp / "sweep.svg")
        (tmp / "figures").mkdir()
        for key in SWEEP_STATISTICS:
            fig = sweep_figure(result.labels, result.layers, {key: values[key]},
                               f"{result.arch}: {STATISTIC_LABELS.get(key, key)}")
            fig.savefig(tmp / "figures" / f"{key}.png", dpi=120)
    return Path(out)


def run_sweep(arch: str, checkpoints: Sequence[str], settings: AnalysisSettings, out: str | Path | None = None, *,
              progress: bool = False, command: str = "") -> tuple[SweepResult, Path]:
    """What ``python -m modularity sweep`` does: check the folder, analyse every checkpoint, write the sweep."""
    out = out_folder(out, arch, "-sweep")
    check_output_dir(out)  # before any work: never after a long run
    result = sweep(arch, checkpoints, settings, progress=progress, command=command)
    write_sweep(result, out)
    return result, out
