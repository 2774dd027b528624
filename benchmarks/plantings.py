"""Planted structure for the method benchmark: where a known grouping is put into weights or matrices.

Three ways to plant into a real architecture (random initial weights, traced
by :func:`modularity.core.graph.trace`), and one synthetic block model:

:func:`plant_random_rows`
    The consumers' output units are dealt at random into ``B`` groups (``B`` =
    the producer's branches); weights from branch ``b``'s units to group ``b``
    are multiplied by ``1 + signal``. The truth is the architectural branches.
:func:`plant_own_consumer`
    Consumer-side: branch ``b``'s units are read ``factor`` times more strongly
    by the ``b``-th consumer conv of the next block (each consumer a whole
    conv, so row groups follow the architecture and have unequal sizes). The
    truth is the architectural branches.
:func:`plant_own_consumer_partial`
    The same, with only a random half of each own consumer's units reading
    their branch more strongly (factor 2).
:func:`plant_input_groups`
    Input-side: the producer's units are dealt at random into ``B`` groups of
    unequal sizes (proportional to the consumer convs' widths), and the ``b``-th
    consumer conv reads group ``b`` ``factor`` times more strongly (as if the
    next block's branch ``b`` had specialised on some of its inputs). The truth
    is those planted groups, not the architecture's.
:func:`block_model`
    A synthetic ``n_rows x n_cols`` profile with ``k`` column groups of given
    sizes, each read ``factor`` times more strongly by its own row group;
    entries are L1 norms of random 3x3 kernels (sums of nine half-normals), as
    in the profiles of random-init convs.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["plant_random_rows", "plant_own_consumer", "plant_own_consumer_partial", "plant_input_groups", "block_model",
           "group_sizes"]


def _scale(graph, producer: str, consumer: str, cols_of: np.ndarray, rows: np.ndarray, factor: float) -> None:
    """Multiply ``consumer``'s weights from the producer units ``cols_of`` (a boolean mask over the producer's
    units) to its output units ``rows`` by ``factor``, through the graph's channel maps (pools, concatenations)."""
    w = graph.modules[consumer].weight  # (out, in / groups, kh, kw) or (out, in)
    if getattr(graph.modules[consumer], "groups", 1) != 1:
        raise ValueError(f"cannot plant into grouped consumer {consumer}")
    r = torch.as_tensor(rows)
    with torch.no_grad():
        for e in graph.edges_between(producer, consumer):
            cols = torch.as_tensor(e.consumer_cols[cols_of[e.producer_units]])
            if len(r) and len(cols):
                w[r[:, None], cols[None, :]] = w[r][:, cols] * factor


def plant_random_rows(graph, producer: str, signal: float, rng: np.random.Generator) -> np.ndarray:
    """Branch ``b`` read ``1 + signal`` times more strongly by a random ``1/B`` of every consumer's units (in place).

    Returns the truth (the producer's branch labels).
    """
    branches = graph.layers[producer].branches
    n_branches = int(branches.max()) + 1
    for c in graph.consumers(producer):
        n_out = graph.modules[c].weight.shape[0]
        group = rng.permutation(np.arange(n_out) % n_branches)
        for b in range(n_branches):
            _scale(graph, producer, c, branches == b, np.flatnonzero(group == b), 1 + signal)
    return branches


def _own_consumers(graph, producer: str, n_groups: int) -> list[str]:
    consumers = graph.consumers(producer)
    if len(consumers) != n_groups:
        raise ValueError(f"{producer} has {len(consumers)} consumers, not one per group ({n_groups})")
    return consumers


def plant_own_consumer(graph, producer: str, factor: float) -> np.ndarray:
    """Branch ``b`` read ``factor`` times more strongly by the ``b``-th consumer conv (in place).

    The consumers are taken in the graph's order (for Inception blocks: the
    next block's branches in order). Returns the truth (the branch labels).
    """
    branches = graph.layers[producer].branches
    n_branches = int(branches.max()) + 1
    for b, c in enumerate(_own_consumers(graph, producer, n_branches)):
        _scale(graph, producer, c, branches == b, np.arange(graph.modules[c].weight.shape[0]), factor)
    return branches


def plant_own_consumer_partial(graph, producer: str, factor: float, rng: np.random.Generator,
                               share: float = 0.5) -> np.ndarray:
    """Branch ``b`` read ``factor`` times more strongly by a random ``share`` of the ``b``-th consumer conv's units.

    Returns the truth (the branch labels).
    """
    branches = graph.layers[producer].branches
    n_branches = int(branches.max()) + 1
    for b, c in enumerate(_own_consumers(graph, producer, n_branches)):
        n_out = graph.modules[c].weight.shape[0]
        rows = np.sort(rng.permutation(n_out)[: max(1, round(share * n_out))])
        _scale(graph, producer, c, branches == b, rows, factor)
    return branches


def group_sizes(n: int, weights: np.ndarray) -> np.ndarray:
    """``n`` split into ``len(weights)`` positive integer sizes proportional to ``weights`` (largest remainder)."""
    w = np.asarray(weights, dtype=float)
    raw = n * w / w.sum()
    sizes = np.maximum(np.floor(raw).astype(int), 1)
    while sizes.sum() < n:
        sizes[int(np.argmax(raw - sizes))] += 1
    while sizes.sum() > n:
        sizes[int(np.argmax(sizes))] -= 1
    return sizes


def plant_input_groups(graph, producer: str, factor: float, rng: np.random.Generator) -> np.ndarray:
    """The ``b``-th consumer conv reads a random group ``b`` of the producer's units ``factor`` times more strongly.

    Group sizes are proportional to the consumers' output widths (unequal in
    Inception blocks). Returns the truth (the planted group of each unit).
    """
    n = len(graph.layers[producer].branches)
    consumers = graph.consumers(producer)
    widths = np.array([graph.modules[c].weight.shape[0] for c in consumers])
    truth = rng.permutation(np.repeat(np.arange(len(consumers)), group_sizes(n, widths)))
    for b, c in enumerate(consumers):
        _scale(graph, producer, c, truth == b, np.arange(widths[b]), factor)
    return truth


def block_model(rng: np.random.Generator, col_sizes, row_sizes, factor: float,
                scale_sd: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """A synthetic profile: column group ``g`` read ``factor`` times more strongly by row group ``g``.

    Entries are the L1 norms of random 3x3 kernels (sums of nine half-normal
    magnitudes), times ``factor`` inside the diagonal blocks. With
    ``scale_sd > 0`` every row and every column is also multiplied by a
    log-normal scale (``exp(N(0, scale_sd^2))``), as batch-norm folding and
    unequal output scales make them in trained networks. Returns
    ``(matrix, truth)`` with the columns in group order.
    """
    cols = np.repeat(np.arange(len(col_sizes)), col_sizes)
    rows = np.repeat(np.arange(len(row_sizes)), row_sizes)
    a = np.abs(rng.standard_normal((len(rows), len(cols), 9))).sum(axis=-1)
    a *= np.where(rows[:, None] == cols[None, :], factor, 1.0)
    if scale_sd > 0:
        a *= np.exp(scale_sd * rng.standard_normal(len(rows)))[:, None]
        a *= np.exp(scale_sd * rng.standard_normal(len(cols)))[None, :]
    return a, cols
