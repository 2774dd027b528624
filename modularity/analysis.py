"""Analyse one model: for every producer layer, its spectrum, clusters, branch recovery and nulls.

This module orchestrates the algorithm modules (graph, magnitude, spectral,
nulls, permutation); it does no I/O and no plotting.

Which null gives which p-value
------------------------------
Recovery (ARI and NMI of the clusters against the true branches, and the two
scale controls): where the null's law is invariant to permuting the
producer's units (every consumer reads all units alike and the null draws
each consumer's entries exchangeably: ``shuffle``, ``resample``, ``reinit``),
the clusters are independent of the branches under the null, and the exact
null is the label-permutation distribution of the observed contingency table
(:func:`modularity.core.permutation.label_permutation_test`, up to 10^5
permutations by default, no re-fit; with the same Besag-Clifford stopping as
the draws, so agreement at chance level is settled after the first 1000 and
only a significant one costs all 10^5). Where the architecture ties units to groups (grouped
consumers, a consumer reading a slice of the channels) or the null keeps
zeros in place (``shuffle-nonzero``), the weight draws are re-fitted instead.
The check (:func:`units_exchangeable`) profiles the layer with every
consumer weight set to one: the units are exchangeable when all columns are
equal.

Structure (the n-cut of the co-clustering) has no labels to permute: each
null draw re-fits the co-clustering on weights drawn from the null, with
Besag-Clifford sequential stopping (``h`` draws at least as extreme end the
test), so unstructured layers stop after about ``2h`` draws and structured
ones use every draw.
"""

from __future__ import annotations

import fnmatch
import platform
import re
import time
import weakref
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .backends import BACKENDS, Backend, make_backend, one_thread
from .errors import ModularityError
from .core.graph import ChannelGraph, trace
from .core.magnitude import ProfileBuilder, downstream_profile
from .core.nulls import (NULL_MODELS, MagnitudeShuffle, NullSummary, benjamini_hochberg, draw_rng, layer_rng,
                         null_magnitude, null_weight, summarise_null)
from .core.methods import DEFAULT_METHOD, METHODS, cocluster_columns, cocluster_default
from .core.permutation import besag_clifford, gpd_tail_p_value, label_permutation_test
from .results import AnalysisResult, Control, LayerResult, Recovery, Structure
from .zoo import LoadedModel
from .zoo.checkpoints import FLOAT_DTYPES
from .core.metrics import adjusted_rand, normalized_mutual_info
from .core.spectral import (SVD_VARIANTS, bipartite_ncut, choose_k, cocluster_spectrum, kmeans,
                             normalise_bipartite, svd_variant, top_singular_values)

__all__ = ["analyze", "analyze_layer", "select_layers", "matrix_statistics", "units_exchangeable"]

N_NULL_SPECTRUM = 20


def check_finite(graph: ChannelGraph) -> None:
    """Refuse weights or batch-norm scales with NaN or infinite values, naming the first layer that has them.

    Raises
    ------
    ModularityError
    """
    for name, layer in graph.layers.items():
        if name not in graph.modules or getattr(graph.modules[name], "weight", None) is None:
            continue
        w = graph.modules[name].weight.detach()
        if w.is_complex():
            raise ModularityError(f"layer '{name}' has complex weights ({w.dtype}); only real weights have the "
                                  "magnitudes analysed here")
        if w.dtype not in FLOAT_DTYPES:  # float8 (isfinite is not implemented), integers, booleans
            raise ModularityError(f"layer '{name}' has {str(w.dtype).removeprefix('torch.')} weights; analysed are "
                                  "float16, bfloat16, float32 or float64 (convert with module.float())")
        # in blocks of 4 M entries: isfinite makes temporaries the size of its input (alexnet: 0.25 GB at once)
        bad = sum(int((~torch.isfinite(part)).sum()) for part in w.reshape(-1).split(1 << 22))
        if bad:
            raise ModularityError(f"layer '{name}' has {bad} NaN/Inf weight values (of {w.numel()}); analyse a "
                                  "checkpoint with finite weights")
        if layer.row_scale is not None and not np.all(np.isfinite(layer.row_scale)):
            raise ModularityError(f"the batch norm after layer '{name}' has NaN/Inf statistics (running_var, "
                                  "weight or eps), so its folded scale is not finite")


def select_layers(graph: ChannelGraph, pattern: str | None = None) -> list[str]:
    """Producer layers whose names match ``pattern``.

    ``pattern`` is a comma-separated list of shell globs (``inception*``,
    ``features.0``) or, when wrapped in slashes, a regular expression
    (``/layer[12]\\..*conv2/``). None selects every producer.

    Raises
    ------
    ModularityError
        When nothing matches; the message lists the available layers.
    """
    names = graph.producer_names()
    if not pattern:
        return names
    if len(pattern) > 1 and pattern.startswith("/") and pattern.endswith("/"):
        try:
            rx = re.compile(pattern[1:-1])
        except re.error as exc:
            raise ModularityError(f"layers '{pattern}' is not a valid regular expression ({exc}); use shell "
                                  "globs such as 'inception*', or /regex/") from None
        chosen = [n for n in names if rx.search(n)]
    else:
        globs = [p.strip() for p in pattern.split(",") if p.strip()]
        chosen = [n for n in names if any(fnmatch.fnmatchcase(n, g) for g in globs)]
    if not chosen:
        shown = ", ".join(names[:40]) + (f", ... ({len(names)} in all)" if len(names) > 40 else "")
        raise ModularityError(f"layers '{pattern}' matches no layer; available layers: {shown}")
    return chosen


@dataclass
class _Stats:
    col_labels: np.ndarray
    row_labels: np.ndarray
    ncut: float
    ari: float | None
    nmi: float | None
    ari_unit_norm: float | None
    ari_column_norms: float | None
    top: dict[str, np.ndarray]
    cols_unit_norm: np.ndarray | None = None
    cols_norms: np.ndarray | None = None


def _ari_nmi(truth: np.ndarray, labels: np.ndarray, live: np.ndarray) -> tuple[float, float]:
    if live.sum() < 2:
        return 0.0, 0.0
    t, lab = truth[live], labels[live]
    return adjusted_rand(t, lab), normalized_mutual_info(t, lab)


def _column_norm_labels(a: np.ndarray, k: int, live: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Clusters of the producer units from their overall outgoing magnitude alone."""
    labels = np.full(a.shape[1], -1)
    norms = np.log(np.linalg.norm(a[:, live], axis=0))
    k = min(k, len(np.unique(norms)))
    if k < 2:
        labels[live] = 0
        return labels
    labels[live] = kmeans(norms[:, None], k, rng)
    return labels


def _rows_from_columns(a: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Each live row joins the column cluster that receives the largest share of its weight (per cluster volume)."""
    rows = np.full(a.shape[0], -1)
    live_cols = cols >= 0
    if not live_cols.any():
        return rows
    k = int(cols.max()) + 1
    h = np.zeros((a.shape[1], k))
    h[np.flatnonzero(live_cols), cols[live_cols]] = 1.0
    vol = np.maximum(a.sum(axis=0) @ h, 1e-300)
    score = (a @ h) / vol
    live_rows = a.any(axis=1)
    rows[live_rows] = score[live_rows].argmax(axis=1)
    return rows


def _cocluster(a: np.ndarray, k: int, rng: np.random.Generator, n_top: int,
               method: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows, columns and leading normalised singular values by ``method`` (see :mod:`modularity.core.methods`).

    The default and the previous default have co-clusterings of their own that
    also return the singular values from their one decomposition; any other
    method groups the columns, and each row joins the column cluster that
    receives the largest share of its weight.
    """
    if method in _COCLUSTER:
        return _COCLUSTER[method](a, k, rng, n_values=n_top)
    cols = cocluster_columns(a, k, method, rng)
    live_r, live_c = a.any(axis=1), a.any(axis=0)
    values = top_singular_values(normalise_bipartite(a[np.ix_(live_r, live_c)]), n_top) if live_c.any() else \
        np.zeros(0)
    return _rows_from_columns(a, cols), cols, values


_COCLUSTER = {DEFAULT_METHOD: cocluster_default, "dhillon_km1_cols_sv_r10": cocluster_spectrum}


def matrix_statistics(a: np.ndarray, k: int, branches: np.ndarray | None,
                      rng: np.random.Generator, n_top: int = N_NULL_SPECTRUM,
                      method: str = DEFAULT_METHOD) -> _Stats:
    """Co-cluster a profile matrix and compute every statistic that gets a null.

    Parameters
    ----------
    a : ndarray, shape (n_rows, n_units)
    k : int
        Number of co-clusters.
    branches : ndarray or None
        True branch labels of the columns.
    rng : numpy Generator
    n_top : int
        Leading singular values kept per variant for the null spectrum.
    """
    rows, cols, s_norm = _cocluster(a, k, rng, n_top, method)
    live = cols >= 0
    ari = nmi = ari_unit = ari_norms = None
    cols_unit = cols_norms = None
    if branches is not None:
        ari, nmi = _ari_nmi(branches, cols, live)
        norms = np.linalg.norm(a, axis=0)
        unit = np.divide(a, norms[None, :], out=np.zeros_like(a), where=norms[None, :] > 0)
        _, cols_unit, _ = _cocluster(unit, k, rng, 0, method)
        ari_unit, _ = _ari_nmi(branches, cols_unit, live)
        cols_norms = _column_norm_labels(a, k, live, rng)
        ari_norms, _ = _ari_nmi(branches, cols_norms, live)
    top = {"normalised": s_norm}
    return _Stats(cols, rows, bipartite_ncut(a, rows, cols), ari, nmi, ari_unit, ari_norms, top, cols_unit,
                  cols_norms)


def _null_band(values: list[np.ndarray]) -> dict[str, list[float]]:
    n = min(len(v) for v in values)
    arr = np.array([v[:n] for v in values])
    return {"mean": arr.mean(axis=0).tolist(), "lo": np.percentile(arr, 2.5, axis=0).tolist(),
            "hi": np.percentile(arr, 97.5, axis=0).tolist()}


EXCHANGEABLE_NULLS = ("shuffle", "resample", "reinit")
N_LABEL_PERMUTATIONS = 100_000
SEQUENTIAL_H = 10


def units_exchangeable(graph: ChannelGraph, name: str, reduction: str = "l1", expand: str = "depthwise",
                       null: str = "shuffle", consumers: list[str] | None = None) -> bool:
    """True when ``null`` treats ``name``'s units alike, so label permutation gives the exact recovery null.

    The null must draw each consumer's entries exchangeably (``shuffle``,
    ``resample``, ``reinit``), and the architecture must not tie units to
    groups: the profile built with every consumer weight set to one has
    identical columns (a grouped consumer or a channel slice makes them differ).
    ``consumers``: the layers whose weights enter ``name``'s profile, when the
    caller has the profile already (else it is built to find them).
    """
    if null not in EXCHANGEABLE_NULLS:
        return False
    if consumers is None:
        consumers = downstream_profile(graph, name, reduction, expand).consumers
    ones = {c: torch.ones_like(graph.weight(c)) for c in consumers}
    a = downstream_profile(graph, name, reduction, expand, weights=ones).matrix
    return bool(a.size) and bool(np.allclose(a, a[:, :1], rtol=1e-6, atol=0.0))


def _null_profile(graph: ChannelGraph, name: str, consumers: list[str], reduction: str, expand: str, null: str,
                  rng: np.random.Generator) -> np.ndarray:
    """The profile of ``name`` under one draw of the null for every consumer (the general route)."""
    if expand == "signed":  # composes the signed kernels: needs the drawn weights themselves
        drawn = {c: null_weight(null, graph.weight(c), rng, graph.modules[c]) for c in consumers}
        return downstream_profile(graph, name, reduction, expand, weights=drawn).matrix
    mags = {c: null_magnitude(graph, c, null, rng, reduction) for c in consumers}
    return downstream_profile(graph, name, reduction, expand, magnitude_fn=mags.__getitem__).matrix


class _NullDraws:
    """What every null draw of one layer shares, prepared once per layer (and per worker process).

    ``shuffle`` keeps each consumer's flat ``|W|`` (:class:`~modularity.core.nulls.MagnitudeShuffle`:
    no weight is read or converted per draw) and the profile's layout
    (:class:`~modularity.core.magnitude.ProfileBuilder`: no edge is looked up per
    draw). A draw takes the same random numbers, consumer by consumer, and
    gives the same profile to the bit as :func:`_null_profile`.
    """

    def __init__(self, graph: ChannelGraph, task: "_DrawTask") -> None:
        self.task = task
        composes = task.expand != "signed"  # magnitudes, not signed kernels: the layout can be reused
        self.builder = ProfileBuilder(graph, task.name, task.reduction, task.expand) if composes else None
        self.shufflers = {c: MagnitudeShuffle(graph, c, task.reduction) for c in task.consumers} \
            if composes and task.null == "shuffle" else {}

    def profile(self, graph: ChannelGraph, rng: np.random.Generator) -> np.ndarray:
        t = self.task
        if self.builder is None:
            return _null_profile(graph, t.name, list(t.consumers), t.reduction, t.expand, t.null, rng)
        mags = {c: self.shufflers[c](rng, widen=False) if c in self.shufflers else
                null_magnitude(graph, c, t.null, rng, t.reduction)
                for c in t.consumers}  # in consumer order: each consumer's draw takes the next random numbers
        return self.builder(mags.__getitem__)


_PREPARED: dict = {}  # at most one layer's _NullDraws: {(id(graph), task key): (weak reference to graph, draws)}


def _prepared(graph: ChannelGraph, task: "_DrawTask", fresh: bool = False) -> _NullDraws:
    """The layer's :class:`_NullDraws`, built on first use in this process (``fresh``: rebuilt from the weights now)."""
    key = (id(graph), task.name, task.consumers, task.reduction, task.expand, task.null)
    hit = _PREPARED.get(key)
    if not fresh and hit is not None and hit[0]() is graph:
        return hit[1]
    draws = _NullDraws(graph, task)
    _PREPARED.clear()
    try:
        _PREPARED[key] = (weakref.ref(graph), draws)
    except TypeError:  # pragma: no cover - a graph without weak references: prepare per draw
        pass
    return draws


def _label_test(truth: np.ndarray, labels: np.ndarray, n: int, rng: np.random.Generator,
                statistics: tuple[str, ...] = ("ari", "nmi"), h: int = 0) -> dict:
    live = labels >= 0
    return label_permutation_test(truth[live], labels[live], n, rng=rng, statistics=statistics,
                                  keep_draws=N_KEPT_DRAWS, sequential_h=h)


def analyze_layer(graph: ChannelGraph, name: str, *, reduction: str = "l1", expand: str = "depthwise",
                  k: int | None = None, k_max: int = 12, n_permutations: int = 100, seed: int = 0,
                  null: str = "shuffle", n_label_permutations: int = N_LABEL_PERMUTATIONS,
                  sequential_h: int = SEQUENTIAL_H, recovery_test: str = "auto",
                  backend: Backend | None = None, method: str = DEFAULT_METHOD) -> LayerResult:
    """Analyse one producer layer of a traced graph.

    Parameters
    ----------
    graph : ChannelGraph
    name : str
        A producer layer (see :meth:`ChannelGraph.producer_names`).
    reduction : {"l1", "l2", "max"}
        Kernel norm for connection magnitudes.
    expand : {"none", "depthwise", "product", "signed"}
        Expanded connections: through depthwise consumers only (default), also
        through 1x1 bottlenecks (``product``: product of magnitudes; ``signed``:
        magnitude of the composed signed kernel), or none.
    k : int, optional
        Number of co-clusters. Default: the number of true branches where the
        layer has them, else the largest eigengap in ``2..k_max``.
    k_max : int
        Upper bound for the eigengap choice.
    n_permutations : int
        Most draws of every consumer's weights from the null model, each
        re-fitted, for the n-cut, the null spectrum band and, where the units
        are not exchangeable, the recovery (0 skips them; recovery p-values
        from label permutations need no draws and are computed regardless).
        Draws stop early once ``sequential_h`` of them are at least as extreme
        as the observation.
    seed : int
        Seeds the null draws, permutations and k-means; the result depends only
        on the seed and the layer.
    null : {"shuffle", "shuffle-nonzero", "resample", "reinit"}
        Null model for every consumer's weights (see :mod:`modularity.core.nulls`).
    n_label_permutations : int
        Label permutations for the recovery p-values where the units are
        exchangeable under the null (see the module docstring).
    sequential_h : int
        Besag-Clifford ``h``: stop drawing once this many draws are at least as
        extreme for every re-fitted statistic, and stop the label permutations
        likewise (after at least 1000 of them); 0 always uses every draw and
        every permutation.
    recovery_test : {"auto", "label-permutation", "weight-shuffle"}
        ``auto`` permutes labels where the units are exchangeable under the
        null and re-fits weight draws elsewhere; the others force one route
        (``label-permutation`` where units are not exchangeable gives a wrong
        null: it exists to compare the two, as ``scripts/null_equivalence.py`` does).
    method : str
        How to co-cluster: a name of :data:`modularity.core.methods.METHODS`;
        the default is the one the recovery benchmark chose (``reports/methods.md``).
    backend : Backend, optional
        Computes null draws in parallel, in batches (see
        :mod:`modularity.backends`; its shared object must be ``graph``). Every
        draw has its own seed and the sequential test reads them in index
        order, so results are identical with or without it.

    Returns
    -------
    LayerResult
    """
    layer = graph.layers[name]
    profile = downstream_profile(graph, name, reduction, expand)
    a = profile.matrix
    branches = layer.branches
    if k is not None:
        k_used, k_source = int(k), "user"
        n_live = int(((a != 0).any(axis=0)).sum())
        if not 2 <= k_used <= max(2, n_live):
            raise ModularityError(f"k = {k} is outside 2..{max(2, n_live)} for layer '{name}' ({n_live} live units "
                                  f"of {layer.n_units}); choose a k of at least 2 and at most the live units, or "
                                  "leave it out (true branches, else the eigengap)")
    elif branches is not None:
        k_used, k_source = int(len(np.unique(branches))), "branches"
    else:
        k_used, k_source = choose_k(a, k_max), "eigengap"
    obs = matrix_statistics(a, k_used, branches, layer_rng(seed, name), method=method)
    if recovery_test not in ("auto", "label-permutation", "weight-shuffle"):
        raise ModularityError(f"unknown recovery test '{recovery_test}'; choose auto, label-permutation or "
                              "weight-shuffle")
    by_labels = branches is not None and (  # needs no weight draws: also with n_permutations = 0
        recovery_test == "label-permutation"
        or (recovery_test == "auto" and units_exchangeable(graph, name, reduction, expand, null, profile.consumers)))
    refit_branches = branches if (branches is not None and not by_labels) else None

    spectra = {}
    embedding = {}
    for variant in SVD_VARIANTS:
        res = svd_variant(a, variant, n_vectors=3)
        spectra[variant] = res.s.tolist()
        embedding[variant] = res.v.tolist()
    shape = list(a.shape)
    task = _DrawTask(name, tuple(profile.consumers), reduction, expand, null, seed, k_used, refit_branches, method)
    rebuild = n_permutations > 0 and a.nbytes > _KEEP_PROFILE_BYTES
    if rebuild:  # not held through the draws: rebuilt after them (alexnet's classifier.1: 134 MB less at the peak)
        del a
        profile = None
    null_stats: list[_Stats] = []
    batch = 1 if backend is None or backend.workers <= 1 else 2 * backend.workers
    if n_permutations and batch == 1:
        _prepared(graph, task, fresh=True)  # this call's weights, not a previous analysis' (workers: their own)
    while len(null_stats) < n_permutations:
        indices = range(len(null_stats), min(n_permutations, len(null_stats) + batch))
        drawn = [task(graph, i) for i in indices] if batch == 1 else backend.map(_draw, [(task, i) for i in indices])
        for stats in drawn:  # the same prefix as one at a time: results do not depend on the batch size
            null_stats.append(stats)
            if sequential_h and _stop(obs, null_stats, sequential_h, refit_branches is not None):
                break
        else:
            continue
        break
    _PREPARED.clear()  # the consumers' |W| copies are not kept past the layer's draws
    n_drawn = len(null_stats)
    stopped = n_drawn < n_permutations
    method = "sequential" if sequential_h else "weight-shuffle"
    if rebuild:
        profile = downstream_profile(graph, name, reduction, expand)  # the same matrix: built from the same weights

    null_spectra = {}
    recovery = None
    null_draws = {"ncut": [s.ncut for s in null_stats]}
    if null_stats:
        null_spectra = {"normalised": _null_band([s.top["normalised"] for s in null_stats])}
        ncut_draws = np.array([s.ncut for s in null_stats])
        p = besag_clifford(ncut_draws, obs.ncut, "less", sequential_h)[0] if sequential_h else None
        ncut = summarise_null(obs.ncut, ncut_draws, "less", effect="relative", p_value=p, method=method)
        if not stopped and n_drawn >= 60:
            tail = gpd_tail_p_value(ncut_draws, obs.ncut, "less", min_tail_fraction=1e-3)
            ncut.p_value_tail = tail.p_value
    else:
        ncut = NullSummary(obs.ncut, None, None, None, None, 0, "less")
    if branches is not None:
        if by_labels:
            rng = layer_rng(seed, name, _LABEL_STREAM)
            tests = _label_test(branches, obs.col_labels, n_label_permutations, rng, h=sequential_h)
            ari_t, nmi_t = tests["ari"], tests["nmi"]
            null_draws.update(ari=[float(v) for v in ari_t.draws], nmi=[float(v) for v in nmi_t.draws])
            ari_null = summarise_null(obs.ari, ari_t.draws, p_value=ari_t.p_value)
            ari_null.null_mean, ari_null.null_sd = ari_t.null_mean, ari_t.null_sd
            ari_null.z = ari_t.z
            controls = {}
            for key, labels in (("unit_norm_columns", obs.cols_unit_norm), ("column_norms_only", obs.cols_norms)):
                t = _label_test(branches, labels, _control_permutations(n_label_permutations), rng, ("ari",),
                                h=sequential_h)["ari"]
                controls[key] = Control(getattr(obs, _CONTROL_ATTR[key]), t.p_value, t.null_mean, _LABEL_METHODS[t.method])
            recovery = Recovery(obs.ari, obs.nmi, ari_t.p_value, ari_t.n, ari_t.null_mean, ari_t.null_sd, ari_t.z,
                                nmi_t.p_value, controls, method=_LABEL_METHODS[ari_t.method], effect=ari_null.effect,
                                effect_ci=ari_null.effect_ci)
        elif null_stats:
            null_draws.update(ari=[s.ari for s in null_stats], nmi=[s.nmi for s in null_stats])
            ari_draws = np.array([s.ari for s in null_stats])
            p = besag_clifford(ari_draws, obs.ari, "greater", sequential_h)[0] if sequential_h else None
            ari_null = summarise_null(obs.ari, ari_draws, p_value=p, method=method)
            nmi_null = summarise_null(obs.nmi, np.array([s.nmi for s in null_stats]))
            controls = {}
            for key, attr in _CONTROL_ATTR.items():
                summ = summarise_null(getattr(obs, attr), np.array([getattr(s, attr) for s in null_stats]))
                controls[key] = Control(summ.observed, summ.p_value, summ.null_mean, "weight-shuffle")
            recovery = Recovery(obs.ari, obs.nmi, ari_null.p_value, n_drawn, ari_null.null_mean,
                                ari_null.null_sd, ari_null.z, nmi_null.p_value, controls, method=method,
                                effect=ari_null.effect, effect_ci=ari_null.effect_ci)
        else:
            recovery = Recovery(obs.ari, obs.nmi, float("nan"), 0, controls={
                key: Control(getattr(obs, attr)) for key, attr in _CONTROL_ATTR.items()}, method="none")
    return LayerResult(
        name=name, kind=layer.kind, n_units=layer.n_units,
        consumers=[b[0] for b in profile.blocks],
        branches=None if branches is None else branches.tolist(),
        branch_names=layer.branch_names, branch_source=layer.branch_source,
        k=k_used, k_source=k_source,
        singular_values=spectra["raw"], spectra=spectra, null_spectra=null_spectra, embedding=embedding,
        clusters=obs.col_labels.tolist(), n_dead=int((obs.col_labels < 0).sum()),
        recovery=recovery, structure=Structure(ncut), shape=shape,
        blocks=[list(b) for b in profile.blocks], row_clusters=obs.row_labels.tolist(), null_draws=null_draws,
        profile=profile,
    )


_KEEP_PROFILE_BYTES = 64 << 20  # a larger observed profile is dropped during the draws and rebuilt after them
_LABEL_METHODS = {"monte-carlo": "label-permutation", "sequential": "sequential label-permutation", "exact": "exact",
                  "degenerate": "degenerate"}
N_KEPT_DRAWS = 200  # label-permutation draws kept in summary.json, for the null histogram
_LABEL_STREAM = 2**31 - 1  # the label permutations' own stream, apart from every draw's
_CONTROL_ATTR = {"unit_norm_columns": "ari_unit_norm", "column_norms_only": "ari_column_norms"}


@dataclass(frozen=True)
class _DrawTask:
    """Everything one null draw of a layer needs besides the graph (picklable, for worker processes)."""

    name: str
    consumers: tuple[str, ...]
    reduction: str
    expand: str
    null: str
    seed: int
    k: int
    branches: np.ndarray | None
    method: str = DEFAULT_METHOD

    def __call__(self, graph: ChannelGraph, index: int) -> _Stats:
        rng = draw_rng(self.seed, self.name, index)
        a_null = _prepared(graph, self).profile(graph, rng)
        return matrix_statistics(a_null, self.k, self.branches, rng, method=self.method)


def _draw(graph: ChannelGraph, job: tuple[_DrawTask, int]) -> _Stats:
    task, index = job
    return task(graph, index)


def _control_permutations(n: int) -> int:
    """Label permutations for the two scale controls: a tenth of the main test's, at least 1000.

    The controls say whether pattern or scale carries the recovery; 10^4
    permutations resolve their p-values to 1e-4 at a tenth of the cost (0.01 s
    instead of 0.1 s per control on a 256-unit layer).
    """
    return max(min(n, 1000), n // 10)


def _stop(obs: _Stats, draws: list[_Stats], h: int, recovery: bool) -> bool:
    """Besag-Clifford: every re-fitted statistic has ``h`` draws at least as extreme as observed."""
    tol = 1e-12
    if sum(d.ncut <= obs.ncut + tol for d in draws) < h:
        return False
    return not recovery or sum(d.ari >= obs.ari - tol for d in draws) >= h


def _layer_cost(graph: ChannelGraph, name: str) -> float:
    """A rough cost of one null draw of ``name``, in seconds on one core (for scheduling only).

    Shuffling every consumer's weights (about 35 ns per entry: a permutation and
    a gather) plus the decomposition of the profile (dense up to 2048 on the
    smaller side, Lanczos beyond: about ``rows x units x min(side, 2048) x 1e-10``).
    """
    consumers = [c for c in graph.consumers(name) if c in graph.layers]
    entries = sum(graph.weight(c).numel() for c in consumers)
    rows = sum(graph.layers[c].n_units for c in consumers)
    units = graph.layers[name].n_units if name in graph.layers else 1
    return 3.5e-8 * entries + 1e-10 * rows * units * min(rows, units, 2048)


def _layer(graph: ChannelGraph, job: tuple[str, dict]) -> LayerResult:
    name, options = job
    return analyze_layer(graph, name, **options)


def _run_layers(graph: ChannelGraph, names: list[str], options: dict, jobs: int, progress: bool,
                label: str, backend: str = "local", scheduler: str | None = None) -> list[LayerResult]:
    """Analyse ``names`` in order on ``backend`` (see :mod:`modularity.backends`).

    A layer whose draws cost more than half a worker's share of the whole
    (:func:`_layer_cost`; vgg16's classifier.0 and features.28, alexnet's
    classifier.1) runs here, first, with the workers sharing its null draws;
    the other layers then go to the workers whole, longest first. How many
    draws a layer takes is only known at the end (sequential stopping: vgg16's
    features.28 at random init took 93 of 100, most layers 11 to 65), so a big
    layer given to one worker whole could hold the run: vgg16 with
    ``--jobs 2`` took 628 s that way, against 739 s on one process. Either way
    the numbers are the same.
    """
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(names), desc=f"analysing {label}", unit="layer", leave=False)
    results: dict[str, LayerResult] = {}
    try:
        with make_backend(graph, jobs, backend, scheduler) as runner:
            cost = {n: _layer_cost(graph, n) for n in names} if runner.workers > 1 else {n: 0.0 for n in names}
            total = sum(cost.values())
            shared = [n for n in names if runner.workers <= 1 or len(names) < runner.workers
                      or 2 * runner.workers * cost[n] > total]
            for name in shared:  # here, one by one; the workers share each layer's draws
                if bar is not None:
                    bar.set_postfix_str(name[-40:])
                results[name] = analyze_layer(graph, name, backend=runner, **options)
                if bar is not None:
                    bar.update()
            order = sorted((n for n in names if n not in results), key=lambda n: -cost[n])  # longest first
            for i, result in runner.as_completed(_layer, [(name, options) for name in order]):
                results[order[i]] = result
                if bar is not None:
                    bar.update()
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


def _versions() -> dict[str, str]:
    """Versions of what the numbers depend on, read from package metadata (importing scikit-learn costs 0.5 s)."""
    from importlib.metadata import PackageNotFoundError, version

    from . import __version__

    out = {"modularity": __version__, "python": platform.python_version(), "torch": torch.__version__}
    for dist in ("torchvision", "numpy", "scipy", "scikit-learn", "networkx"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:  # pragma: no cover - a source tree without metadata
            out[dist] = "unknown"
    return out


def analyze(model: "nn.Module | LoadedModel", *, layers: str | None = None, reduction: str = "l1", expand: str = "depthwise", k: int | None = None,
            k_max: int = 12, n_permutations: int = 100, seed: int = 0, null: str = "shuffle",
            n_label_permutations: int = N_LABEL_PERMUTATIONS, sequential_h: int = SEQUENTIAL_H,
            method: str = DEFAULT_METHOD, input_size: tuple[int, int] | None = None,
            progress: bool = False, command: str = "", graph: ChannelGraph | None = None,
            jobs: int = 1, backend: str = "local", scheduler: str | None = None) -> AnalysisResult:
    """Analyse every producer layer of a model (or those matching ``layers``).

    Parameters
    ----------
    model : nn.Module or LoadedModel
        A module, or a :class:`~modularity.zoo.LoadedModel` (with its
        provenance). To load by name with the command line's defaults, use
        :func:`modularity.pipeline.analyze` (``modularity.analyze``).
    layers : str, optional
        Layer pattern (see :func:`select_layers`).
    reduction, expand, k, k_max, n_permutations, seed, null, n_label_permutations, sequential_h, method
        See :func:`analyze_layer`.
    input_size : (int, int), optional
        Input size for tracing (default: the model's own).
    progress : bool
        Show a progress bar.
    command : str
        The command line, recorded in the result.
    graph : ChannelGraph, optional
        A graph already traced from this model.
    jobs : int
        Worker processes (1: in this process; 0: one per CPU core), or the
        workers of a local Dask cluster. Results do not depend on it: each
        draw's randomness depends only on ``seed``, the layer's name and the
        draw's index.
    backend : {"local", "dask"}
        Where the work runs (see :mod:`modularity.backends`).
    scheduler : str, optional
        Address of a running Dask scheduler; without one, ``backend="dask"``
        starts a ``LocalCluster`` of ``jobs`` workers.

    Returns
    -------
    AnalysisResult

    Examples
    --------
    >>> import torchvision
    >>> res = analyze(torchvision.models.alexnet(weights=None), layers="features.0", n_permutations=5)
    >>> res.layers[0].name, res.layers[0].n_units
    ('features.0', 64)
    """
    if n_permutations < 0:
        raise ModularityError(f"n_permutations must be 0 or more, got {n_permutations}")
    if null not in NULL_MODELS:
        raise ModularityError(f"unknown null model '{null}'; choose one of {', '.join(NULL_MODELS)}")
    if null == "degree" and expand == "signed":
        raise ModularityError("the 'degree' null randomises magnitudes, so it cannot drive expand='signed' "
                              "(which composes signed kernels); use expand='product' or another null")
    if isinstance(model, LoadedModel):
        loaded = model
    elif isinstance(model, nn.Module):
        loaded = LoadedModel(name=type(model).__name__, module=model, weights="as given",
                             provenance="a module passed to analyze()")
    else:
        raise ModularityError(f"cannot analyse an object of type {type(model).__name__}")
    size = tuple(input_size or loaded.input_size)
    start = time.perf_counter()
    graph = graph or trace(loaded.module, size)
    names = select_layers(graph, layers)
    if not names:
        raise ModularityError(f"{loaded.name} has no layer to analyse: no conv, linear or concatenation output is "
                              "read by another layer")
    with one_thread():  # torch's default threads spin on these small reductions: 2.4 s for googlenet on a busy machine
        check_finite(graph)
    if n_label_permutations < 1:
        raise ModularityError(f"label permutations must be 1 or more, got {n_label_permutations}")
    if sequential_h < 0:
        raise ModularityError(f"the sequential stopping count must be 0 or more, got {sequential_h}")
    if method not in METHODS:
        raise ModularityError(f"unknown method '{method}'; choose one of {', '.join(METHODS)}")
    if backend not in BACKENDS:
        raise ModularityError(f"unknown backend '{backend}'; choose one of {', '.join(BACKENDS)}")
    options = dict(reduction=reduction, expand=expand, k=k, k_max=k_max, n_permutations=n_permutations,
                   seed=seed, null=null, n_label_permutations=n_label_permutations, sequential_h=sequential_h,
                   method=method)
    results = _run_layers(graph, names, options, jobs, progress, loaded.name, backend, scheduler)
    _adjust_across_layers(results)
    return AnalysisResult(
        model=loaded.name, weights=loaded.weights, seed=seed, n_permutations=n_permutations, null=null,
        n_label_permutations=n_label_permutations, sequential_h=sequential_h, method=method,
        reduction=reduction, expand=expand, layers=results, weights_sha256=loaded.weights_sha256,
        provenance=loaded.provenance, input_size=list(size), versions=_versions(), command=command,
        runtime_s=time.perf_counter() - start,
    )
