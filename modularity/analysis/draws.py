"""Null draws of one layer: every consumer's weights drawn from the null, the profile rebuilt and re-fitted.

Draw ``i`` of layer ``name`` takes its randomness from ``(seed, name, i)``
alone, so a draw's numbers never depend on how many draws ran before it, in
which process, on which device, or whether a sequential test stopped early.
:func:`run_draws` reads the draws in index order and applies Besag-Clifford
stopping, so its result does not depend on the batch size.

Two routes build a draw's profile; which one a layer takes depends on its
settings only (:func:`keyed_route`), never on the device or the machine:

``keyed`` (null ``shuffle`` with expand ``none``, ``depthwise`` or ``product``: the defaults)
    Each consumer's weights are permuted by a counter-based permutation keyed
    on ``(seed, layer, draw)`` and consumer
    (:class:`~modularity.core.engine.shuffle.ShuffledProfiles`,
    :class:`~modularity.core.keyed.KeyedPermutation`), built in torch on the
    settings' device (``cpu`` or ``cuda``): the same permutation on every
    device, so the same profiles (to float64 summation order) and p-values.
``stream`` (every other null, and expand ``signed``)
    The numpy route: the null draws from ``draw_rng(seed, name, i)``
    (:mod:`modularity.core.nulls`) on the CPU, whatever the device.

On both routes the draw's statistics are those of the observation,
:func:`~modularity.analysis.statistics.matrix_statistics` with the settings'
method (every method, the default ``spectral_refined`` included), on the CPU,
its k-means seeded by ``draw_rng(seed, name, i)``: keyed on ``(seed, layer,
draw)`` too, and device-independent because it runs on the CPU. (The keyed
route leaves that generator to k-means alone; the stream route draws the
null from it first.) The torch engine's batched co-clustering
(:class:`~modularity.core.engine.NullEngine`) is not used here: it implements
only the embedding and k-means of ``adaptive_sqrt_unit_r10``, its k-means seeds
come from another keyed stream (so the observation and the draws would no
longer be fitted alike), and the refinement of ``spectral_refined`` (balancing,
ITCC, merge-split) stays per draw on the CPU whichever route embeds. What it
would save on the CPU is its eigensolver's time on large profiles (BENCHMARKS.md,
2026-12-04, "keyed null").
"""

from __future__ import annotations

import contextlib
import math
import weakref
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..backends import Backend
from ..core.defaults import DEFAULT_METHOD
from ..core.engine.shuffle import ShuffledProfiles
from ..core.graph import ChannelGraph
from ..core.keyed import draw_key
from ..core.magnitude import ProfileBuilder, downstream_profile
from ..core.nulls import MagnitudeShuffle, draw_rng, null_magnitude, null_weight
from ..core.permutation import besag_clifford
from .statistics import MatrixStatistics, matrix_statistics

__all__ = ["DrawTask", "run_draws", "null_profile", "sequential_p", "keyed_route", "KEYED_NULLS", "KEYED_EXPAND"]

KEYED_NULLS = ("shuffle",)
"""Nulls whose draws the keyed route builds (:class:`~modularity.core.engine.shuffle.ShuffledProfiles`)."""
KEYED_EXPAND = ("none", "depthwise", "product")
"""Expand modes of the keyed route (``signed`` composes drawn signed kernels, which it does not implement)."""


def keyed_route(null: str, expand: str) -> bool:
    """Whether a layer's null draws take the keyed route (any device) rather than the numpy stream route."""
    return null in KEYED_NULLS and expand in KEYED_EXPAND


def null_profile(graph: ChannelGraph, name: str, consumers: list[str], reduction: str, expand: str, null: str,
                 rng: np.random.Generator) -> np.ndarray:
    """The profile of ``name`` under one draw of the null for every consumer (the general route)."""
    if expand == "signed":  # composes the signed kernels: needs the drawn weights themselves
        drawn = {c: null_weight(null, graph.weight(c), rng, graph.modules[c]) for c in consumers}
        return downstream_profile(graph, name, reduction, expand, weights=drawn).matrix
    mags = {c: null_magnitude(graph, c, null, rng, reduction) for c in consumers}
    return downstream_profile(graph, name, reduction, expand, magnitude_fn=mags.__getitem__).matrix


class _PreparedDraws:
    """What every null draw of one layer shares, prepared once per layer (and per worker process).

    ``shuffle`` keeps each consumer's flat weights (:class:`~modularity.core.nulls.MagnitudeShuffle`:
    no weight is read or converted per draw) and the profile's layout
    (:class:`~modularity.core.magnitude.ProfileBuilder`: no edge is looked up per
    draw). A draw takes the same random numbers, consumer by consumer, and
    gives the same profile to the bit as :func:`null_profile`.
    """

    def __init__(self, graph: ChannelGraph, task: DrawTask) -> None:
        self.task = task
        self.keyed: ShuffledProfiles | None = None
        if keyed_route(task.null, task.expand):  # the consumers' weights are read in place, not copied
            self.keyed = ShuffledProfiles(graph, task.name, task.reduction, task.expand, task.device)
            if self.keyed.consumers != list(task.consumers):  # pragma: no cover - one profile layout for both
                raise RuntimeError(f"layer '{task.name}': consumers {self.keyed.consumers} against {task.consumers}")
            self.builder, self.shufflers = None, {}
            return
        composes = task.expand != "signed"  # magnitudes, not signed kernels: the layout can be reused
        self.builder = ProfileBuilder(graph, task.name, task.reduction, task.expand) if composes else None
        self.shufflers = {c: MagnitudeShuffle(graph, c, task.reduction) for c in task.consumers} \
            if composes and task.null == "shuffle" else {}

    def keyed_profile(self, index: int) -> np.ndarray:
        """The profile of draw ``index`` on the keyed route (the same on every device)."""
        if self.keyed is None:
            raise ValueError(f"layer '{self.task.name}': null '{self.task.null}' with expand '{self.task.expand}' "
                             "takes the stream route, not the keyed one")
        return self.keyed([draw_key(self.task.seed, self.task.name, index)])[0].cpu().numpy()

    def profile(self, graph: ChannelGraph, rng: np.random.Generator) -> np.ndarray:
        """A draw's profile on the stream route, from ``rng`` (see :func:`null_profile`)."""
        t = self.task
        if self.builder is None:
            return null_profile(graph, t.name, list(t.consumers), t.reduction, t.expand, t.null, rng)
        mags = {c: self.shufflers[c](rng, widen=False) if c in self.shufflers else
                null_magnitude(graph, c, t.null, rng, t.reduction)
                for c in t.consumers}  # in consumer order: each consumer's draw takes the next random numbers
        return self.builder(mags.__getitem__)


_PREPARED: dict = {}  # at most one layer's _PreparedDraws: {(id(graph), task key): (weak reference to graph, draws)}


def prepared(graph: ChannelGraph, task: DrawTask, fresh: bool = False) -> _PreparedDraws:
    """The layer's ``_PreparedDraws``, built on first use in this process (``fresh``: rebuilt now)."""
    key = (id(graph), task.name, task.consumers, task.reduction, task.expand, task.null, task.device)
    hit = _PREPARED.get(key)
    if not fresh and hit is not None and hit[0]() is graph:
        return hit[1]
    draws = _PreparedDraws(graph, task)
    _PREPARED.clear()
    with contextlib.suppress(TypeError):  # a graph without weak references: prepare per draw
        _PREPARED[key] = (weakref.ref(graph), draws)
    return draws


@dataclass(frozen=True)
class DrawTask:
    """Everything one null draw of a layer needs besides the graph (picklable, for worker processes).

    ``device`` (``"cpu"`` or ``"cuda"``) is where the keyed route builds the
    profiles (see the module docstring); it changes no number.
    """

    name: str
    consumers: tuple[str, ...]
    reduction: str
    expand: str
    null: str
    seed: int
    k: int
    branches: np.ndarray | None
    method: str = DEFAULT_METHOD
    device: str = "cpu"

    def __call__(self, graph: ChannelGraph, index: int) -> MatrixStatistics:
        rng = draw_rng(self.seed, self.name, index)
        draws = prepared(graph, self)
        a_null = draws.keyed_profile(index) if draws.keyed is not None else draws.profile(graph, rng)
        return matrix_statistics(a_null, self.k, self.branches, rng, method=self.method)


def _draw(graph: ChannelGraph, job: tuple[DrawTask, int]) -> MatrixStatistics:
    task, index = job
    return task(graph, index)


_TIE = 1e-12  # draws this close to the observed statistic count as at least as extreme


def _extreme_counts(obs: MatrixStatistics, draws: list[MatrixStatistics], recovery: bool) -> list[int]:
    """How many ``draws`` are at least as extreme as ``obs``: in n-cut, and in ARI where branches are re-fitted."""
    counts = [sum(d.ncut <= obs.ncut + _TIE for d in draws)]
    if recovery:
        counts.append(sum(_ari(d) >= _ari(obs) - _TIE for d in draws))
    return counts


def _stop(obs: MatrixStatistics, draws: list[MatrixStatistics], h: int, recovery: bool) -> bool:
    """Besag-Clifford: every re-fitted statistic has ``h`` draws at least as extreme as observed."""
    return min(_extreme_counts(obs, draws, recovery)) >= h


def expected_draws(obs: MatrixStatistics, draws: list[MatrixStatistics], n: int, h: int, recovery: bool) -> int:
    """How many draws sequential stopping will make in all, guessed from those made so far (for progress only).

    A statistic with ``e`` of ``m`` draws as extreme has a p-value near
    ``(e + 1) / (m + 1)``, and stopping needs ``h`` such draws, about
    ``h / p`` in all; the slowest statistic decides, within ``m .. n``. Until
    every statistic has half of its ``h`` the guess is ``n``: from one or two
    such draws it swings several-fold from draw to draw, and a bar that jumps
    back and forth tells less than one that only errs long.
    """
    m = len(draws)
    counts = _extreme_counts(obs, draws, recovery)
    if not h or min(counts) < math.ceil(h / 2):
        return n
    need = max(math.ceil(h * (m + 1) / (e + 1)) for e in counts)
    return max(m, min(n, need))


def _ari(s: MatrixStatistics) -> float:
    """The recovery ARI, which statistics re-fitted against branches have (a lighter ``branch_scores().ari``)."""
    if s.ari is None:
        raise ValueError("these statistics were computed without true branches: there is no recovery to read")
    return s.ari


def run_draws(graph: ChannelGraph, task: DrawTask, observed: MatrixStatistics, n: int, h: int,
              backend: Backend | None = None,
              on_draws: Callable[[int, int], None] | None = None) -> list[MatrixStatistics]:
    """Up to ``n`` null draws of ``task``, in index order, stopping once ``h`` are as extreme as ``observed``.

    With ``h = 0`` every draw is made. The statistics tested for stopping are
    the n-cut, and the ARI where ``task`` re-fits the true branches. With a
    ``backend`` of several workers, draws are made in batches of twice the
    workers; the draws kept are the same prefix as one at a time.
    ``on_draws(m, total)`` is told after each batch that did not stop how many
    draws it made and how many are expected in all (:func:`expected_draws`;
    for a progress bar, it changes no number).
    """
    stats: list[MatrixStatistics] = []
    batch = 1 if backend is None or backend.workers <= 1 else 2 * backend.workers
    if n and batch == 1:
        prepared(graph, task, fresh=True)  # this call's weights, not a previous analysis' (workers: their own)
    try:
        while len(stats) < n:
            indices = range(len(stats), min(n, len(stats) + batch))
            drawn = [task(graph, i) for i in indices] if batch == 1 else \
                backend.map(_draw, [(task, i) for i in indices])  # type: ignore[union-attr]
            for s in drawn:
                stats.append(s)
                if h and _stop(observed, stats, h, task.branches is not None):
                    return stats
            if on_draws is not None:
                on_draws(len(drawn), expected_draws(observed, stats, n, h, task.branches is not None))
    finally:
        _PREPARED.clear()  # the consumers' weight copies are not kept past the layer's draws
    return stats


def sequential_p(draws: np.ndarray, observed: float, alternative: str, h: int) -> float | None:
    """The Besag-Clifford p-value of draws made in index order with stopping count ``h``; None for ``h = 0``.

    None tells :func:`~modularity.core.nulls.summarise_null` to use the
    empirical ``(r + 1) / (n + 1)`` over every draw instead.
    """
    return besag_clifford(draws, observed, alternative, h)[0] if h else None
