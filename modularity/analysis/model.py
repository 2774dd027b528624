"""Analyse every selected producer layer of one model, in this process or on workers."""

from __future__ import annotations

import platform
import time
from collections.abc import Callable
from typing import cast

import torch
from torch import nn

from ..backends import make_backend, one_thread
from ..core.engine.device import resolve_device
from ..core.graph import ChannelGraph, trace
from ..core.nulls import benjamini_hochberg
from ..errors import ModularityError
from ..results import AnalysisResult, LayerResult
from ..settings import AnalysisSettings
from ..zoo import LoadedModel
from .layer import analyze_layer, layer_verdict
from .select import check_finite, select_layers

__all__ = ["analyze_model", "cost_terms", "layer_work"]


def cost_terms(graph: ChannelGraph, name: str) -> dict[str, float]:
    """What one null draw of ``name`` scales with: a fixed part, the consumers' weight entries (shuffle and
    profile) and the profile's entries times its smaller side up to 2048 (the eigensolve and the refinement
    grow faster than the profile's size)."""
    consumers = [c for c in graph.consumers(name) if c in graph.layers]
    entries = sum(graph.weight(c).numel() for c in consumers)
    rows = sum(graph.layers[c].n_units for c in consumers)
    units = graph.layers[name].n_units if name in graph.layers else 1
    return {"term_fixed": 1.0, "term_entries": float(entries),
            "term_dense": float(rows * units * min(rows, units, 2048))}


# Weight of each cost term, fitted by `scripts/progress_cost.py --fit` on 142 layers of four models to the
# smallest worst ETA error (BENCHMARKS.md). Only their ratios matter (the bar's rate absorbs the machine's speed,
# and scheduling compares layers), so the fit fixes no scale
_COST = {"term_fixed": 0.017, "term_entries": 4.9e-8, "term_dense": 1.26e-10}


def _layer_cost(graph: ChannelGraph, name: str) -> float:
    """A rough relative cost of one null draw of ``name`` (for scheduling and progress only)."""
    return sum(_COST[k] * v for k, v in cost_terms(graph, name).items())


def layer_work(graph: ChannelGraph, name: str, settings: AnalysisSettings) -> int:
    """The share of a run one layer takes, in progress-bar units: its draw cost times the fits it makes.

    :func:`_layer_cost` per fit, times the observed fit and the most null
    draws (sequential stopping may end a layer sooner: the bar's total then
    drops the draws not made), scaled by 10^6 and at least one per fit. Layers differ in cost
    by four orders of magnitude (alexnet's classifier.1 against features.0),
    so a bar that counts layers gives no ETA worth reading.
    """
    return max(1, round(1e6 * _layer_cost(graph, name))) * (settings.n_permutations + 1)  # whole units per fit


def _layer(graph: ChannelGraph, job: tuple[str, AnalysisSettings]) -> LayerResult:
    name, settings = job
    return analyze_layer(graph, name, settings)


class _LayerBar:
    """The analysis progress bar: it counts estimated work (:func:`layer_work`), so its rate and ETA hold across
    layers of any size; each null draw moves it, and a layer's share follows the draws it is expected to make."""

    def __init__(self, graph: ChannelGraph, names: list[str], settings: AnalysisSettings, label: str) -> None:
        from tqdm.auto import tqdm

        self.work = {n: layer_work(graph, n, settings) for n in names}
        self.unit = {n: w // (settings.n_permutations + 1) for n, w in self.work.items()}  # bar units per fit
        self.moved = dict.fromkeys(names, 0)  # bar units already shown per layer
        self.n_layers, self.finished = len(names), 0
        # the rate is the whole run's (smoothing=0): a short window swings with every error of the estimate
        self.bar = tqdm(total=sum(self.work.values()), desc=f"analysing {label}", leave=False, dynamic_ncols=True,
                        smoothing=0, bar_format="{desc}: {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}{postfix}]")
        self.bar.set_postfix_str(f"0/{self.n_layers} layers", refresh=False)

    def _advance(self, name: str, units: int) -> None:
        units = min(units, self.work[name] - self.moved[name])
        self.moved[name] += units
        self.bar.update(units)

    def _replan(self, name: str, fits: int) -> None:
        # the layer's share of the total follows the draws it is now expected to make: a total that only drops
        # at the layer's end leaves the ETA too long while a layer that will stop early runs
        planned = max(self.moved[name], self.unit[name] * fits)
        self.bar.total += planned - self.work[name]  # shown by the next update (no forced redraw per draw)
        self.work[name] = planned

    def start(self, name: str) -> Callable[[int, int], None]:
        """Show ``name`` as running; the callback :func:`analyze_layer` tells of its draws (``on_draws``)."""
        self.bar.set_postfix_str(f"{self.finished}/{self.n_layers} layers, {name[-40:]}")

        def on(made: int, expected: int) -> None:
            self._advance(name, made * self.unit[name])  # each draw moves the bar by its share of the layer
            self._replan(name, expected + 1)
        return on

    def done(self, name: str, result: LayerResult) -> None:
        """Count ``name`` as finished: the draws sequential stopping saved leave the total, the rest fills in."""
        self.finished += 1
        self.bar.set_postfix_str(f"{self.finished}/{self.n_layers} layers", refresh=False)
        self._replan(name, len(result.null_draws.get("ncut", [])) + 1)
        self._advance(name, self.work[name])  # the observed fit (and a worker's draws, reported only at the end)

    def close(self) -> None:
        self.bar.close()


def _run_layers(graph: ChannelGraph, names: list[str], settings: AnalysisSettings, progress: bool,
                label: str) -> list[LayerResult]:
    """Analyse ``names`` in order on the settings' backend (see :mod:`modularity.backends`).

    A layer whose draws cost more than half a worker's share of the whole
    (:func:`_layer_cost`; vgg16's classifier.0 and features.28, alexnet's
    classifier.1) runs here, first, with the workers sharing its null draws;
    the other layers then go to the workers whole, longest first. How many
    draws a layer takes is only known at the end (sequential stopping), so a
    big layer given to one worker whole could hold the run. Either way the
    numbers are the same.
    """
    bar = _LayerBar(graph, names, settings, label) if progress else None
    results: dict[str, LayerResult] = {}
    try:
        with make_backend(graph, settings.jobs, settings.backend, settings.scheduler) as runner:
            cost = {n: _layer_cost(graph, n) for n in names} if runner.workers > 1 else {n: 0.0 for n in names}
            total = sum(cost.values())
            shared = [n for n in names if runner.workers <= 1 or len(names) < runner.workers
                      or 2 * runner.workers * cost[n] > total]
            for name in shared:  # here, one by one; the workers share each layer's draws
                results[name] = analyze_layer(graph, name, settings, backend=runner,
                                               on_draws=bar.start(name) if bar is not None else None)
                if bar is not None:
                    bar.done(name, results[name])
            order = sorted((n for n in names if n not in results), key=lambda n: -cost[n])  # longest first
            for i, result in runner.as_completed(_layer, [(name, settings) for name in order]):
                results[order[i]] = result
                if bar is not None:
                    bar.done(order[i], result)
    finally:
        if bar is not None:
            bar.close()
    return [results[name] for name in names]


def _adjust_across_layers(results: list[LayerResult]) -> None:
    """Add Benjamini-Hochberg adjusted p-values across the analysed layers (``p_value_bh``)."""
    rec = [r.recovery for r in results if r.recovery is not None]
    for r, adj in zip(rec, benjamini_hochberg([r.p_value for r in rec])):
        r.p_value_bh = adj
    ncuts = [r.structure.ncut for r in results]
    for d, adj in zip(ncuts, benjamini_hochberg([d.p_value for d in ncuts])):
        d.p_value_bh = adj
    for res in results:  # verdicts read the adjusted p-values
        res.verdict = layer_verdict(res.detectability, res.recovery)


def _versions() -> dict[str, str]:
    """Versions of what the numbers depend on, read from package metadata (importing scikit-learn costs 0.5 s)."""
    from importlib.metadata import PackageNotFoundError, version

    from .. import __version__

    out = {"modularity": __version__, "python": platform.python_version(), "torch": torch.__version__}
    for dist in ("torchvision", "numpy", "scipy", "scikit-learn", "networkx"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:  # pragma: no cover - a source tree without metadata
            out[dist] = "unknown"
    return out


def as_loaded(model: nn.Module | LoadedModel) -> LoadedModel:
    """A :class:`LoadedModel` for a module passed in directly (its provenance says so)."""
    if isinstance(model, LoadedModel):
        return model
    if isinstance(model, nn.Module):
        return LoadedModel(name=type(model).__name__, module=model, weights="as given",
                           provenance="a module passed to analyze()")
    raise ModularityError(f"cannot analyse an object of type {type(model).__name__}")


def analyze_model(model: nn.Module | LoadedModel, settings: AnalysisSettings, *, graph: ChannelGraph | None = None,
                  progress: bool = False, command: str = "") -> AnalysisResult:
    """Analyse every producer layer of a model (or those matching ``settings.layers``).

    Parameters
    ----------
    model : nn.Module or LoadedModel
        A module, or a :class:`~modularity.zoo.LoadedModel` (with its
        provenance). To load by name with the command line's defaults, use
        :func:`modularity.analyze`.
    settings : AnalysisSettings
        How to analyse it; ``settings.control`` is applied by
        :func:`modularity.analyze`, not here.
    graph : ChannelGraph, optional
        A graph already traced from this model (at ``settings.input_size``, or
        the model's own size).
    progress : bool
        Show a progress bar.
    command : str
        The command line, recorded in the result.

    Returns
    -------
    AnalysisResult

    Examples
    --------
    >>> import torchvision
    >>> res = analyze_model(torchvision.models.alexnet(weights=None),
    ...                     AnalysisSettings(layers="features.0", n_permutations=5))
    >>> res.layers[0].name, res.layers[0].n_units
    ('features.0', 64)
    """
    resolve_device(settings.device)  # device 'cuda' without a GPU: refused before anything is traced
    loaded = as_loaded(model)
    size = cast(tuple[int, int], tuple(settings.input_size or loaded.input_size))
    start = time.perf_counter()
    graph = graph or trace(loaded.module, size, loaded.in_channels)
    names = select_layers(graph, settings.layers)
    if not names:
        raise ModularityError(f"{loaded.name} has no layer to analyse: no conv, linear or concatenation output is "
                              "read by another layer")
    with one_thread():  # torch's default threads spin on these small reductions: 2.4 s for googlenet on a busy machine
        check_finite(graph)
    results = _run_layers(graph, names, settings, progress, loaded.name)
    _adjust_across_layers(results)
    return AnalysisResult(
        model=loaded.name, weights=loaded.weights, settings=settings, layers=results,
        weights_sha256=loaded.weights_sha256, provenance=loaded.provenance, input_size=list(size),
        versions=_versions(), command=command, runtime_s=time.perf_counter() - start,
    )
