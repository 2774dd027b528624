"""Profiles of a producer layer under the keyed ``shuffle`` null, built in torch on any device.

The ``shuffle`` null permutes all entries of each consumer's weight tensor.
Draw ``i`` of layer ``L`` permutes consumer number ``c`` (its position in
``ShuffledProfiles.consumers``) by :func:`~modularity.core.keyed.keyed_permutation`
keyed on ``(seed, L, i)`` with stream ``c`` (drawn on the host up to
:data:`~modularity.core.keyed.HOST_MAX` entries, by the Feistel network on the
device above): entry ``s`` of the flat weight moves
to position ``perm(s)``. The same permutation on every device gives the same
profile, up to the order of floating-point additions.

How a draw is built (the exact null, no approximation): instead of writing the
permuted weight and reducing it (a full-size permuted copy and a random-access
gather: 0.4 GB and about 1 s for vgg16's classifier.0), every entry is
*scattered* straight into the profile cell it lands in: its position ``perm(s)``
gives its output row ``o`` and input column, the column gives the producer unit
that column reads (the same map as :class:`~modularity.core.magnitude.ProfileBuilder`),
and ``|w|`` (``w^2`` for the l2 norm) is added into cell ``(o, unit)`` in
float64. A linear layer after flatten (alexnet's classifier.1 reads each of
``features.10``'s 256 channels at 36 positions) thus sums its 36 entries per
cell without materialising the 4096 x 9216 permuted matrix. Batch-norm row
scales multiply the finished rows; layer-norm column scales multiply each entry
by its column's scale (for l2, by its square), which is what reducing first and
scaling the reduced matrix gives. Consumers read through another (``expand``:
a depthwise conv between) have their placed magnitude matrices built the same
way and then composed as :class:`ProfileBuilder` composes them.

:func:`twin_profile` is the numpy twin: the same keyed permutation applied to
the weight, then :func:`~modularity.core.magnitude.reduce_kernel`,
:func:`~modularity.core.magnitude.place_magnitude` and :class:`ProfileBuilder`,
the path of the analysis's numpy stream route.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch

from ..graph import ChannelGraph
from ..keyed import HostPermutation, KeyedPermutation, keyed_permutation
from ..magnitude import ProfileBuilder, place_magnitude, reduce_kernel

__all__ = ["ShuffledProfiles", "TwinProfiles", "twin_profile", "CPU_CHUNK", "CUDA_CHUNK"]

CPU_CHUNK = 1 << 16
"""Weight entries permuted and scattered at once on the CPU: the round tables and index buffers stay in cache."""
CUDA_CHUNK = 1 << 24
"""Weight entries permuted and scattered at once on a GPU: large enough to keep the device busy."""
BATCH_ENTRIES = 1 << 20
"""A consumer with at most this many entries times draws is permuted for all the draws of a batch at once."""


@dataclass
class _Consumer:
    """One consumer's weights on the device and the arithmetic from a flat position to its row and column."""

    name: str
    stream: int
    flat: torch.Tensor  # float32, the raw weights, flattened (a view of the parameter on the CPU)
    out: int
    in_g: int  # input columns per group
    kernel: int  # entries per kernel (1 for 1x1 convs and linear layers)
    groups: int
    in_units: int
    row_scale: torch.Tensor | None  # float64 (out,)
    col_scale: torch.Tensor | None  # float64 (in_units,)


@dataclass
class _Target:
    """Where one consumer's entries go: rows ``start ..`` of a buffer ``width`` wide, column ``col`` to
    ``unit[col]``."""

    consumer: _Consumer
    start: int
    width: int  # the buffer's row length (a spare column for entries that leave the profile, where one is needed)
    unit_of_col: torch.Tensor | None  # int (in_units,): the column's unit, or the spare column; None: identity


def _lookup(table: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``table[index]`` for an index of any shape (``index_select`` wants a vector)."""
    return table.index_select(0, index.reshape(-1)).view(index.shape)


def _edges_map(graph: ChannelGraph, producer: str, consumer: str) -> tuple[np.ndarray, np.ndarray]:
    edges = graph.edges_between(producer, consumer)
    return (np.concatenate([e.consumer_cols for e in edges]).astype(np.int64),
            np.concatenate([e.producer_units for e in edges]).astype(np.int64))


class _TorchBlock:
    """:class:`~modularity.core.magnitude._Block` in torch: a placed magnitude ``(B, out, in)`` to
    ``(B, out, units)``."""

    def __init__(self, cols: np.ndarray, units: np.ndarray, n_units: int, norm: str, device: torch.device) -> None:
        self.cols = torch.as_tensor(cols, device=device)
        self.units = torch.as_tensor(units, device=device)
        self.n_units, self.norm = n_units, norm

    def __call__(self, m: torch.Tensor) -> torch.Tensor:
        out = m.new_zeros(*m.shape[:-1], self.n_units)
        vals = m.index_select(-1, self.cols)
        if self.norm == "max":
            idx = self.units.expand(*vals.shape[:-1], -1)
            return out.scatter_reduce_(-1, idx, vals, reduce="amax", include_self=True)
        if self.norm == "l2":
            return out.index_add_(-1, self.units, vals.square()).sqrt_()
        return out.index_add_(-1, self.units, vals)


class ShuffledProfiles:
    """Downstream profiles of ``producer`` under keyed draws of the ``shuffle`` null.

    Parameters
    ----------
    graph : ChannelGraph
    producer : str
    norm : {"l1", "l2", "max"}
    expand : {"none", "depthwise", "product"}
    device : torch.device
    chunk : int, optional
        Weight entries permuted at once (default :data:`CPU_CHUNK` or :data:`CUDA_CHUNK`).
    workers : int
        CPU threads computing chunks while the caller's thread adds them in
        order (torch ops release the GIL; each runs single-threaded on its
        small chunk). The numbers do not depend on it.

    Attributes
    ----------
    shape : (int, int)
        The profile's rows and columns, as :class:`ProfileBuilder` gives them.
    consumers : list of str
        The consumers whose weights are shuffled; consumer ``i`` draws from stream ``i``.
    """

    def __init__(self, graph: ChannelGraph, producer: str, norm: str = "l1", expand: str = "none",
                 device: torch.device | str = "cpu", chunk: int | None = None, workers: int = 1) -> None:
        self.device = torch.device(device)
        self.norm = norm
        builder = ProfileBuilder(graph, producer, norm, expand)
        self.shape = builder.shape
        self.blocks = builder.blocks
        self.consumers = list(builder.consumers)
        self.chunk = chunk or (CUDA_CHUNK if self.device.type == "cuda" else CPU_CHUNK)
        n_units = self.shape[1]
        self._width = n_units  # the buffers' row length: one more where a spare column is needed
        self._info = {c: self._consumer(graph, c, i) for i, c in enumerate(self.consumers)}
        # direct rows: scattered straight into the profile; rows read through another consumer: composed
        direct: list[tuple[_Consumer, int, torch.Tensor | None]] = []
        # rows start .. end: block_c of consumer c's magnitude, read through (block_d, d) where c feeds d
        self.composed: list[tuple[int, int, tuple[_TorchBlock, str] | None, _TorchBlock, str]] = []
        for c, _, through in builder.steps:
            cols, units = _edges_map(graph, producer, c)
            if through[0][2] is None:
                start = through[0][0]
                if len(np.unique(cols)) == len(cols):  # each column reads one unit: a lookup table does it
                    unit_of_col = np.full(self._info[c].in_units, -1, dtype=np.int64)
                    unit_of_col[cols] = units
                    direct.append((self._info[c], start, self._lookup(unit_of_col)))
                else:  # a column counted twice (the producer added to itself): the general block
                    block = _TorchBlock(cols, units, n_units, norm, self.device)
                    self.composed.append((start, start + self._info[c].out, None, block, c))
                continue
            block_c = _TorchBlock(cols, units, n_units, norm, self.device)
            for start, end, d, _ in through:
                cols_d, units_d = _edges_map(graph, c, d)
                block_d = _TorchBlock(cols_d, units_d, graph.layers[c].n_units, norm, self.device)
                self.composed.append((start, end, (block_d, d), block_c, c))
        # every direct target writes rows of the same width, known once every lookup table is made
        self.direct = [_Target(consumer, start, self._width, unit_of_col) for consumer, start, unit_of_col in direct]
        widest = max([self.shape[1]] + [c.in_units for c in self._info.values()]) + 1
        rows = max([self.shape[0]] + [c.out for c in self._info.values()])
        self._index_dtype = torch.int32 if rows * widest < 2**31 else torch.int64
        self.workers = max(1, int(workers)) if self.device.type == "cpu" else 1
        self._executor: ThreadPoolExecutor | None = None
        self._fixed: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}  # see _fixed_cells

    def _lookup(self, unit_of_col: np.ndarray) -> torch.Tensor | None:
        if len(unit_of_col) and np.array_equal(unit_of_col, np.arange(len(unit_of_col))):
            return None  # the consumer reads the producer whole, column i = unit i
        spare = self.shape[1]  # columns that read other layers: their entries go to a spare column, then away
        self._width = self.shape[1] + 1 if (unit_of_col < 0).any() else self._width
        return torch.as_tensor(np.where(unit_of_col >= 0, unit_of_col, spare), device=self.device,
                               dtype=torch.int32 if self.shape[1] < 2**31 - 1 else torch.int64)

    def _consumer(self, graph: ChannelGraph, name: str, stream: int) -> _Consumer:
        w = graph.weight(name)  # float32 on the CPU, (out, in / groups, *kernel); a linear layer (out, in)
        layer = graph.layers[name]
        flat = w.reshape(-1)
        flat = flat.to(self.device) if self.device.type != "cpu" else flat
        rs = None if layer.row_scale is None else torch.as_tensor(layer.row_scale, dtype=torch.float64,
                                                                  device=self.device)
        cs = getattr(layer, "col_scale", None)
        cs = None if cs is None else torch.as_tensor(cs, dtype=torch.float64, device=self.device)
        kernel = int(np.prod(w.shape[2:])) if w.dim() > 2 else 1
        return _Consumer(name, stream, flat, int(w.shape[0]), int(w.shape[1]), kernel, int(layer.groups),
                         int(layer.in_units), rs, cs)

    # ---------------------------------------------------------------- one consumer, one draw

    def _cells(self, target: _Target, perm: KeyedPermutation | HostPermutation | None, s0: int,
               s1: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Profile cells and values of entries ``s0 .. s1`` of ``target``'s consumer (no shared state: thread-safe)."""
        c = target.consumer
        if isinstance(perm, HostPermutation) and c.col_scale is None:
            cell_of, vals = self._fixed_cells(target)
            at = perm.range(s0, s1)
            return torch.index_select(cell_of, 0, at.reshape(-1)).reshape(at.shape), vals[s0:s1]
        row_len = c.in_g * c.kernel
        # (s1 - s0,), or (keys, s1 - s0); None: the observed weights in place
        t = torch.arange(s0, s1, device=self.device, dtype=self._index_dtype) if perm is None else perm.range(s0, s1)
        o = torch.div(t, row_len, rounding_mode="floor")
        col = t - o * row_len  # the column within the group, times the kernel size, plus the position
        if c.kernel > 1:
            col = torch.div(col, c.kernel, rounding_mode="floor")
        if c.groups > 1:
            col += torch.div(o, c.out // c.groups, rounding_mode="floor") * c.in_g
        o += target.start
        cell = o.to(self._index_dtype) * target.width
        cell += col if target.unit_of_col is None else _lookup(target.unit_of_col, col)
        vals = c.flat[s0:s1].abs().to(torch.float64)
        if c.col_scale is not None:
            vals = vals * _lookup(c.col_scale, col)
        if self.norm == "l2":
            vals.square_()  # (|w| scale)^2: the squares' sum of the scaled reduced magnitudes
        return cell, vals

    def _fixed_cells(self, target: _Target) -> tuple[torch.Tensor, torch.Tensor]:
        """The cell of every destination position and the value of every entry of ``target``'s consumer.

        A cell depends only on where an entry lands and, without column
        scales, a value only on the entry itself, so a consumer small enough
        for a host permutation (at most :data:`~modularity.core.keyed.HOST_MAX`
        entries: a few MB each) keeps both, and a draw is one lookup of its
        permuted positions and one scatter: the same cells and values, in the
        same order, as computing them per draw.
        """
        # by what the cells depend on (a _Target may be made afresh per draw; its lookup table is the layer's own)
        lookup = None if target.unit_of_col is None else id(target.unit_of_col)
        key = (target.consumer.name, target.start, target.width, lookup)
        hit = self._fixed.get(key)
        if hit is None:
            hit = self._cells(target, None, 0, target.consumer.flat.numel())
            self._fixed[key] = hit
        return hit

    def _scatter(self, target: _Target, key: tuple[int, int] | None, buf: torch.Tensor) -> None:
        """Add one draw of ``target``'s consumer into ``buf`` (``(rows, width)``, float64; ``key`` None: unshuffled).

        On the CPU, worker threads compute the cells of the next chunks while
        this one adds the finished ones, always in chunk order: the sums are
        the same for any number of threads.
        """
        c = target.consumer
        n = c.flat.numel()
        perm = None if key is None else keyed_permutation(n, key, stream=c.stream, device=self.device)
        flat = buf.view(-1)
        add = (lambda cell, vals: flat.scatter_reduce_(0, cell.long(), vals, reduce="amax", include_self=True)) \
            if self.norm == "max" else (lambda cell, vals: flat.index_add_(0, cell, vals))
        starts = range(0, n, self.chunk)
        if self.workers <= 1 or len(starts) < 3:
            for s0 in starts:
                add(*self._cells(target, perm, s0, min(n, s0 + self.chunk)))
            return
        pending: deque = deque()
        for s0 in starts:
            pending.append(self._pool().submit(self._cells, target, perm, s0, min(n, s0 + self.chunk)))
            if len(pending) > 2 * self.workers:  # a bounded window: at most a few chunks' cells in memory
                add(*pending.popleft().result())
        while pending:
            add(*pending.popleft().result())

    def _pool(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="modularity-shuffle")
        return self._executor

    def close(self) -> None:
        """Stop the worker threads (they are started on first use)."""
        if self._executor is not None:
            self._executor.shutdown()
            self._executor = None

    def _finish(self, rows: torch.Tensor, c: _Consumer) -> None:
        """Reduce-then-scale what :meth:`_scatter` accumulated in ``rows`` (one consumer's rows)."""
        if self.norm == "l2":
            rows.sqrt_()
        if c.row_scale is not None:
            rows *= c.row_scale[:, None]

    def magnitude(self, name: str, key: tuple[int, int] | None) -> torch.Tensor:
        """One draw of consumer ``name``'s placed magnitude matrix ``(out, in_units)``, float64 (``key`` None:
        observed)."""
        c = self._info[name]
        buf = torch.zeros(c.out, c.in_units, dtype=torch.float64, device=self.device)
        self._scatter(_Target(c, 0, c.in_units, None), key, buf)
        self._finish(buf, c)
        return buf

    # ---------------------------------------------------------------- profiles

    def __call__(self, keys: Sequence[tuple[int, int] | None], out: torch.Tensor | None = None) -> torch.Tensor:
        """Profiles ``(len(keys), rows, units)`` (float64) of the draws with these keys (None: the observed weights).

        A consumer small enough (:data:`BATCH_ENTRIES` entries over all the
        draws) is permuted for every draw at once, so the per-operation
        overhead is paid once per batch instead of once per draw.
        """
        rows, units = self.shape
        buf = torch.zeros(len(keys), rows, self._width, dtype=torch.float64, device=self.device)
        flat = buf.view(-1)
        for target in self.direct:
            c = target.consumer
            n = c.flat.numel()
            if len(keys) > 1 and n * len(keys) <= BATCH_ENTRIES and keys[0] is not None:
                perm = keyed_permutation(n, torch.as_tensor(keys, dtype=torch.int64), stream=c.stream,
                                        device=self.device)
                cell, vals = self._cells(target, perm, 0, n)  # (draws, n) cells, values of every draw
                cell = cell.to(torch.int64) + torch.arange(len(keys), device=self.device)[:, None] * buf[0].numel()
                vals = vals.expand(len(keys), -1).reshape(-1)
                if self.norm == "max":
                    flat.scatter_reduce_(0, cell.reshape(-1), vals, reduce="amax", include_self=True)
                else:
                    flat.index_add_(0, cell.reshape(-1), vals)
            else:
                for b, key in enumerate(keys):
                    self._scatter(target, key, buf[b])
        prof = buf[:, :, :units]
        for target in self.direct:
            self._finish(prof[:, target.start:target.start + target.consumer.out], target.consumer)
        for b, key in enumerate(keys):
            cache: dict[str, torch.Tensor] = {}
            for start, end, through, block_c, name in self.composed:
                read = block_c(self._cached(cache, name, key))
                if through is None:
                    prof[b, start:end] = read
                else:
                    block_d, d = through
                    prof[b, start:end] = block_d(self._cached(cache, d, key)) @ read
        if out is None:
            return prof if self._width == units else prof.contiguous()
        out.copy_(prof)
        return out

    def _cached(self, cache: dict[str, torch.Tensor], name: str, key: tuple[int, int] | None) -> torch.Tensor:
        if name not in cache:
            cache[name] = self.magnitude(name, key)
        return cache[name]

    def observed(self) -> torch.Tensor:
        """The observed profile ``(rows, units)``: the same scatter with every entry left in place.

        Equal to :func:`~modularity.core.magnitude.downstream_profile`'s matrix
        (float64 sums, to rounding), without its float64 copy of every
        consumer's reduced weights (alexnet's classifier.1: 302 MB).
        """
        return self([None])[0]


class TwinProfiles:
    """The numpy twin of :class:`ShuffledProfiles`: permute, reduce, place and stack as the analysis does.

    Each consumer's flat weight is permuted by the same keyed permutation
    (entry ``s`` to position ``perm(s)``) and then goes through
    :func:`~modularity.core.magnitude.reduce_kernel` (float64),
    :func:`~modularity.core.magnitude.place_magnitude` and
    :class:`~modularity.core.magnitude.ProfileBuilder` (its layout worked out once).
    """

    def __init__(self, graph: ChannelGraph, producer: str, norm: str = "l1", expand: str = "none") -> None:
        self.graph, self.norm = graph, norm
        self.builder = ProfileBuilder(graph, producer, norm, expand)
        self.consumers = list(self.builder.consumers)
        self.shape = self.builder.shape
        self._weights = {c: graph.weight(c) for c in self.consumers}

    def __call__(self, key: tuple[int, int]) -> np.ndarray:
        mags = {}
        for i, c in enumerate(self.consumers):
            w = self._weights[c]
            flat = w.reshape(-1).numpy()
            perm = keyed_permutation(flat.size, key, stream=i)(torch.arange(flat.size)).numpy()
            permuted = np.empty_like(flat)
            permuted[perm] = flat
            mags[c] = place_magnitude(self.graph, c, reduce_kernel(permuted.reshape(w.shape), self.norm))
        return self.builder(mags.__getitem__)


def twin_profile(graph: ChannelGraph, producer: str, norm: str, expand: str, key: tuple[int, int]) -> np.ndarray:
    """One draw of :class:`TwinProfiles` (the numpy twin of a :class:`ShuffledProfiles` draw)."""
    return TwinProfiles(graph, producer, norm, expand)(key)
