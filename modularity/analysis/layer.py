"""Analyse one producer layer: profile, co-clustering, spectra, null draws, structure and recovery.

:func:`analyze_layer` runs the steps in order; each step is a function of
its own with plain inputs and outputs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..backends import Backend
from ..core.detectability import N_EDGE_VALUES, Detectability, detectability, verdict
from ..core.engine.device import resolve_device
from ..core.graph import ChannelGraph, Layer
from ..core.magnitude import Profile, downstream_profile
from ..core.nulls import NullSummary, layer_rng, summarise_null
from ..core.permutation import gpd_tail_p_value
from ..core.spectral import SVD_VARIANTS, choose_k, svd_variant, within_share
from ..errors import ModularityError
from ..results import LayerResult, Recovery, Structure
from ..settings import AnalysisSettings
from .draws import DrawTask, run_draws, sequential_p
from .recovery import recovery_by_draws, recovery_by_labels, recovery_without_null, units_exchangeable
from .statistics import MatrixStatistics, matrix_statistics

__all__ = ["analyze_layer", "choose_clusters", "spectra_of", "detectability_of", "layer_verdict"]

_KEEP_PROFILE_BYTES = 64 << 20  # a larger observed profile is dropped during the draws and rebuilt after them
_DETECT_STREAM = 2**31 - 2  # the detectability simulation's own stream, apart from every draw's
_TAIL_MIN_DRAWS = 60  # a generalised-Pareto tail needs enough draws to fit its exceedances


def choose_clusters(a: np.ndarray, layer: Layer, settings: AnalysisSettings) -> tuple[int, str]:
    """The number of co-clusters and why: the user's ``k``, the true branches' count, or the eigengap.

    Raises
    ------
    ModularityError
        For a user ``k`` above the layer's live units.
    """
    if settings.k is not None:
        n_live = int(((a != 0).any(axis=0)).sum())
        if not 2 <= settings.k <= max(2, n_live):
            raise ModularityError(f"k = {settings.k} is outside 2..{max(2, n_live)} for layer '{layer.name}' "
                                  f"({n_live} live units of {layer.n_units}); choose a k of at least 2 and at most "
                                  "the live units, or leave it out (true branches, else the eigengap)")
        return int(settings.k), "user"
    if layer.branches is not None:
        return int(len(np.unique(layer.branches))), "branches"
    return choose_k(a, settings.k_max), "eigengap"


def spectra_of(a: np.ndarray) -> tuple[dict[str, list[float]], dict[str, list[list[float]]]]:
    """Every SVD variant's spectrum and each unit's coordinates on its three leading right singular vectors."""
    spectra, embedding = {}, {}
    for variant in SVD_VARIANTS:
        res = svd_variant(a, variant, n_vectors=3)
        spectra[variant] = res.s.tolist()
        embedding[variant] = res.v.tolist()
    return spectra, embedding


def detectability_of(a: np.ndarray, branches: np.ndarray | None, normalised: list[float],
                     rng: np.random.Generator) -> Detectability:
    """How detectable the true branches are in this profile (without branches: how far structure stands above
    the noise edge); see :mod:`modularity.core.detectability`.

    Without branches the leading values of the normalised spectrum, already computed, are all it needs; with
    branches it decomposes the profile itself, for the singular vectors whose overlap with the branches it reports.
    """
    if branches is None and len(normalised) and abs(normalised[0] - 1.0) <= 1e-6:
        return detectability(a, None, values=np.asarray(normalised[:1 + N_EDGE_VALUES]), rng=rng)
    return detectability(a, branches, rng=rng)


def layer_verdict(det: Detectability | None, recovery: Recovery | None) -> str | None:
    """The layer's plain verdict (:func:`modularity.core.detectability.verdict`) from its recovery.

    "Recovered" asks whether the clusters found the branches beyond chance: the recovery's label-permutation
    p-value (adjusted across layers where it has been, Benjamini-Hochberg), or, where the recovery was tested
    against re-fitted weight draws (whose null may keep the branches, as a grouped consumer's does), its own
    test against chance.
    """
    if det is None:
        return None
    if recovery is None:
        return verdict(det)
    if recovery.chance_p_value is not None:
        p = recovery.chance_p_value
    else:
        p = recovery.p_value_bh if recovery.p_value_bh is not None else recovery.p_value
    return verdict(det, recovery.ari, p if p is not None and np.isfinite(p) else None)


def _null_band(values: list[np.ndarray]) -> dict[str, list[float]]:
    n = min(len(v) for v in values)
    arr = np.array([v[:n] for v in values])
    return {"mean": arr.mean(axis=0).tolist(), "lo": np.percentile(arr, 2.5, axis=0).tolist(),
            "hi": np.percentile(arr, 97.5, axis=0).tolist()}


def _structure(observed: MatrixStatistics, draws: list[MatrixStatistics], settings: AnalysisSettings,
               method: str) -> tuple[NullSummary, dict[str, dict[str, list[float]]]]:
    """The n-cut against its null draws (lower: more clusterable), and the null band of the spectrum."""
    if not draws:
        return NullSummary(observed.ncut, None, None, None, None, 0, "less"), {}
    ncut_draws = np.array([s.ncut for s in draws])
    p = sequential_p(ncut_draws, observed.ncut, "less", settings.sequential_h)
    ncut = summarise_null(observed.ncut, ncut_draws, "less", effect="relative", p_value=p, method=method)
    if len(draws) == settings.n_permutations and len(draws) >= _TAIL_MIN_DRAWS:  # every draw used: fit the tail
        ncut.p_value_tail = gpd_tail_p_value(ncut_draws, observed.ncut, "less", min_tail_fraction=1e-3).p_value
    return ncut, {"normalised": _null_band([s.top["normalised"] for s in draws])}


def _recovery(name: str, branches: np.ndarray | None, by_labels: bool, observed: MatrixStatistics,
              draws: list[MatrixStatistics], settings: AnalysisSettings,
              method: str) -> tuple[Recovery | None, dict[str, list[float]]]:
    """The recovery of the true branches with its p-value (by label permutation or from the draws)."""
    if branches is None:
        return None, {}
    if by_labels:
        return recovery_by_labels(name, branches, observed, settings)
    if draws:
        return recovery_by_draws(name, branches, observed, draws, method, settings)
    return recovery_without_null(name, branches, observed, settings), {}


def analyze_layer(graph: ChannelGraph, name: str, settings: AnalysisSettings | None = None, *,
                  backend: Backend | None = None, on_draws: Callable[[int, int], None] | None = None,
                  **changes: Any) -> LayerResult:
    """Analyse one producer layer of a traced graph.

    Parameters
    ----------
    graph : ChannelGraph
    name : str
        A producer layer (see :meth:`ChannelGraph.producer_names`).
    settings : AnalysisSettings, optional
        How to analyse it (default: the defaults); ``layers``, ``input_size``,
        ``control`` and the execution settings do not apply to one layer.
    backend : Backend, optional
        Computes null draws in parallel, in batches (see
        :mod:`modularity.backends`; its shared object must be ``graph``). Every
        draw has its own seed and the sequential test reads them in index
        order, so results are identical with or without it.
    on_draws : callable, optional
        Told after each batch of null draws how many it made and how many are
        expected in all (:func:`~modularity.analysis.draws.run_draws`; progress bars).
    **changes
        Settings to change (``n_permutations=20``, ``seed=3``, ...), as
        :meth:`AnalysisSettings.replace` takes them.

    Returns
    -------
    LayerResult
    """
    settings = AnalysisSettings.of(settings, **changes)
    layer = graph.layers[name]
    profile: Profile | None = downstream_profile(graph, name, settings.reduction, settings.expand)
    assert profile is not None  # until it is released below
    a = profile.matrix
    k, k_source = choose_clusters(a, layer, settings)
    branches = layer.branches
    observed = matrix_statistics(a, k, branches, layer_rng(settings.seed, name), method=settings.method)
    by_labels = branches is not None and (  # needs no weight draws: also with n_permutations = 0
        settings.recovery_test == "label-permutation"
        or (settings.recovery_test == "auto" and units_exchangeable(graph, name, settings.reduction, settings.expand,
                                                                    settings.null, profile.consumers)))
    spectra, embedding = spectra_of(a)
    inside = within_share(a, observed.row_labels, observed.col_labels)
    det = detectability_of(a, branches, spectra["normalised"], layer_rng(settings.seed, name, _DETECT_STREAM))
    shape, blocks, consumers = list(a.shape), [list(b) for b in profile.blocks], list(profile.consumers)
    task = DrawTask(name, tuple(consumers), settings.reduction, settings.expand, settings.null, settings.seed, k,
                    branches if (branches is not None and not by_labels) else None, settings.method,
                    resolve_device(settings.device).type)
    rebuild = settings.n_permutations > 0 and a.nbytes > _KEEP_PROFILE_BYTES
    if rebuild:  # not held through the draws (alexnet's classifier.1: 134 MB less at the peak)
        del a
        profile = None
    draws = run_draws(graph, task, observed, settings.n_permutations, settings.sequential_h, backend, on_draws)
    if rebuild:  # the same matrix: built from the same weights
        profile = downstream_profile(graph, name, settings.reduction, settings.expand)
    method = "sequential" if settings.sequential_h else "weight-shuffle"
    ncut, null_spectra = _structure(observed, draws, settings, method)
    recovery, kept = _recovery(name, branches, by_labels, observed, draws, settings, method)
    return LayerResult(
        name=name, kind=layer.kind, n_units=layer.n_units, consumers=[str(b[0]) for b in blocks],
        branches=None if branches is None else branches.tolist(),
        branch_names=layer.branch_names, branch_source=layer.branch_source, k=k, k_source=k_source,
        singular_values=spectra["raw"], spectra=spectra, null_spectra=null_spectra, embedding=embedding,
        clusters=observed.col_labels.tolist(), n_dead=int((observed.col_labels < 0).sum()),
        recovery=recovery, structure=Structure(ncut, inside), shape=shape, blocks=blocks,
        row_clusters=observed.row_labels.tolist(), null_draws={"ncut": [s.ncut for s in draws], **kept},
        detectability=det, verdict=layer_verdict(det, recovery), profile=profile,
    )
