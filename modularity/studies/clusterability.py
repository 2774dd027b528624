"""Whole-network clusterability (Filan et al., 2021, "Clusterability in Neural Networks").

One undirected graph over the whole network: its nodes are the units (output
channels) of every conv layer plus the input channels (and, with
``include_linear``, the features of every linear layer). The edge between
producer unit ``i`` and consumer unit ``j`` weighs the L1 norm of the kernel
slice ``W[j, i]`` times the consumer's folded batch-norm scale (see
:func:`modularity.core.magnitude.layer_magnitude`). Concatenation layers are not
nodes: their units *are* the member layers' units, and the graph's edges
already point from every consumer to the real producers (through
concatenations and residual additions). A consumer column that reads several
producers (a residual stream) links each of them with the column's weight; a
linear layer after flatten sums its columns per producer channel.

The graph is split into ``k`` clusters by normalised spectral clustering
(Shi-Malik): the ``k`` leading eigenvectors of ``D^-1/2 A D^-1/2`` from
``scipy.sparse.linalg.eigsh``, rescaled by ``D^-1/2``, then k-means. Its
normalised cut ``sum_k cut(k) / vol(k)`` is compared with networks in which
every layer's BN-folded weights are shuffled within the layer.

Isolated units (no non-zero edge, e.g. dead units) get the label ``-1`` and
take no part in the clustering or the n-cut. Several connected components are
kept: the spectral embedding separates them by itself, so a component is
never split across its boundary unless ``k`` exceeds the number of components.

The functions here do no I/O; :mod:`modularity.pipeline` writes the results
folder of ``python -m modularity clusterability``.
"""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import asdict, dataclass, field

import numpy as np
import scipy.sparse as sp
import torch
from scipy.linalg import eigh
from scipy.sparse.linalg import ArpackNoConvergence, LinearOperator, eigsh
from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_limits
from torch import nn

from ..backends import make_backend
from ..core.graph import INPUT, ChannelGraph, trace
from ..core.magnitude import layer_magnitude, place_magnitude, reduce_kernel
from ..core.nulls import NULL_MODELS, as_generator, draw_rng, null_magnitude, study_rng, summarise_null
from ..errors import ModularityError
from ..results import significant

__all__ = ["NetworkGraph", "ClusterabilityResult", "network_graph", "network_adjacency", "spectral_clusters",
           "ncut", "clusterability"]

logger = logging.getLogger("modularity")

_DENSE_LIMIT = 600  # below this many live nodes a dense eigendecomposition is faster and exact
_SINGLE_THREAD_LIMIT = 5000


@dataclass
class NetworkGraph:
    """The structure of the whole-network graph (weights are filled in per draw).

    Attributes
    ----------
    layers : list of str
        Node layers in execution order (``input`` first).
    offsets : dict of str to (int, int)
        ``[start, end)`` node indices of each layer's units.
    n_nodes : int
    consumers : list of str
        Weighted layers whose incoming edges enter the graph.
    readers : dict of str to scipy.sparse.csr_matrix
        Per consumer, a 0/1 ``(in_units, n_nodes)`` matrix: input column ``q``
        reads node ``n``.
    """

    layers: list[str]
    offsets: dict[str, tuple[int, int]]
    n_nodes: int
    consumers: list[str]
    readers: dict[str, sp.csr_matrix] = field(repr=False)
    layout: _Layout | None = field(default=None, repr=False)

    def placement(self) -> _Layout:
        """The :attr:`layout`, which every network built by this module has."""
        assert self.layout is not None
        return self.layout

    def layer_of(self) -> np.ndarray:
        """The layer index (into :attr:`layers`) of every node."""
        out = np.empty(self.n_nodes, dtype=int)
        for i, name in enumerate(self.layers):
            a, b = self.offsets[name]
            out[a:b] = i
        return out


@dataclass
class _Layout:
    """Where every magnitude entry lands in the symmetric adjacency, computed once per network.

    A draw only refills values: entry ``src[e]`` of the concatenated allowed
    magnitudes adds into lower-triangle edge ``slot[e]`` (several entries
    share an edge where a linear layer reads one channel at many positions),
    and the edge list ``(rows, cols)`` mirrored and sorted by ``order`` is the
    symmetric CSR matrix. Building the adjacency this way costs one
    ``bincount`` and one gather instead of a sparse product, a sparse sum and
    a transpose per draw (0.4 s on EfficientNet-Lite0's 4.8 M edges).
    """

    allowed: dict[str, np.ndarray]  # flat indices of each consumer's architecturally allowed entries
    src: np.ndarray
    slot: np.ndarray
    rows: np.ndarray  # lower-triangle edges: consumer node
    cols: np.ndarray  # producer node
    order: np.ndarray  # sorts concat(edges, mirrored edges) into CSR order
    indptr: np.ndarray
    indices: np.ndarray

    def values(self, magnitudes: dict[str, np.ndarray]) -> np.ndarray:
        """Edge weights (lower triangle) from every consumer's ``(out, in)`` magnitude matrix."""
        v = np.concatenate([np.asarray(magnitudes[c], dtype=np.float64).reshape(-1)[idx]
                            for c, idx in self.allowed.items()])
        return np.bincount(self.slot, weights=v[self.src], minlength=len(self.rows))

    def adjacency(self, values: np.ndarray, n: int) -> sp.csr_matrix:
        """The symmetric CSR adjacency for edge weights ``values``."""
        data = np.concatenate([values, values])[self.order]
        return sp.csr_matrix((data, self.indices, self.indptr), shape=(n, n))


def _layout(graph: ChannelGraph, consumers: list[str], offsets: dict[str, tuple[int, int]],
            readers: dict[str, sp.csr_matrix], n: int) -> _Layout:
    allowed, srcs, dst_rows, dst_cols = {}, [], [], []
    base = 0
    for name in consumers:
        layer = graph.layers[name]
        w = graph.weight(name)
        mask = place_magnitude(graph, name, np.ones((w.shape[0], w.shape[1])), fold_bn=False) > 0
        flat = np.flatnonzero(mask)
        allowed[name] = flat
        j, q = np.divmod(flat, layer.in_units)
        r = readers[name].tocsr()
        counts = np.diff(r.indptr)[q]  # nodes each entry's input column reads (several in a residual stream)
        entry = np.repeat(np.arange(len(flat)), counts)
        starts = r.indptr[q]
        within = np.arange(len(entry)) - np.repeat(np.cumsum(counts) - counts, counts)
        srcs.append(base + entry)
        dst_rows.append(offsets[name][0] + j[entry])
        dst_cols.append(r.indices[np.repeat(starts, counts) + within])
        base += len(flat)
    src = np.concatenate(srcs)
    key = np.concatenate(dst_rows).astype(np.int64) * n + np.concatenate(dst_cols)
    edges, slot = np.unique(key, return_inverse=True)
    rows, cols = np.divmod(edges, n)
    both_r, both_c = np.concatenate([rows, cols]), np.concatenate([cols, rows])
    order = np.lexsort((both_c, both_r))
    indptr = np.concatenate([[0], np.cumsum(np.bincount(both_r, minlength=n))])
    return _Layout(allowed, src, slot.astype(np.int64), rows, cols, order, indptr, both_c[order])


def network_graph(graph: ChannelGraph, include_linear: bool = False) -> NetworkGraph:
    """Lay out the nodes and the column-to-node maps of the whole-network graph.

    Parameters
    ----------
    graph : ChannelGraph
    include_linear : bool
        Also make linear layers' features nodes (and their weights edges).

    Returns
    -------
    NetworkGraph

    Raises
    ------
    ModularityError
        If the network has no conv layer.
    """
    kinds = ("conv", "linear") if include_linear else ("conv",)
    if not any(layer.kind == "conv" for layer in graph.layers.values()):
        raise ModularityError("the network has no conv layers; clusterability needs a graph of conv units")
    layers = [n for n, layer in graph.layers.items() if layer.kind in kinds or layer.kind == INPUT]
    offsets, start = {}, 0
    for name in layers:
        offsets[name] = (start, start + graph.layers[name].n_units)
        start += graph.layers[name].n_units
    consumers, readers = [], {}
    for name in layers:
        layer = graph.layers[name]
        if layer.kind == INPUT:
            continue
        rows, cols = [], []
        for e in graph.edges:
            if e.consumer != name or e.producer not in offsets:
                continue  # concat layers are not nodes; their members' edges are already in the graph
            rows.append(e.consumer_cols)
            cols.append(offsets[e.producer][0] + e.producer_units)
        if not rows:
            continue
        r, c = np.concatenate(rows), np.concatenate(cols)
        readers[name] = sp.csr_matrix((np.ones(len(r)), (r, c)), shape=(layer.in_units, start))
        readers[name].sum_duplicates()
        consumers.append(name)
    return NetworkGraph(layers, offsets, start, consumers, readers,
                        _layout(graph, consumers, offsets, readers, start))


def network_adjacency(graph: ChannelGraph, net: NetworkGraph,
                      weights: dict[str, torch.Tensor] | None = None,
                      magnitudes: dict[str, np.ndarray] | None = None) -> sp.csr_matrix:
    """The symmetric weighted adjacency matrix of the whole-network graph.

    Parameters
    ----------
    graph : ChannelGraph
    net : NetworkGraph
        From :func:`network_graph`.
    weights : dict of str to tensor, optional
        BN-folded replacement weights for some layers; other layers use their
        own folded weights.
    magnitudes : dict of str to ndarray, optional
        Replacement ``(out, in)`` folded magnitude matrices for some layers
        (e.g. a draw of :func:`modularity.core.nulls.null_magnitude`); they
        take precedence over ``weights``.

    Returns
    -------
    scipy.sparse.csr_matrix, shape (n_nodes, n_nodes)
    """
    mags = _magnitudes(graph, net, weights, magnitudes)
    return net.placement().adjacency(net.placement().values(mags), net.n_nodes)


def _magnitudes(graph: ChannelGraph, net: NetworkGraph, weights: dict[str, torch.Tensor] | None = None,
                magnitudes: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    weights, magnitudes = weights or {}, magnitudes or {}
    out = {}
    for name in net.consumers:
        if name in magnitudes:
            out[name] = magnitudes[name]
        elif name in weights:
            out[name] = place_magnitude(graph, name, reduce_kernel(weights[name], "l1"), fold_bn=False)
        else:
            out[name] = layer_magnitude(graph, name, "l1")
    return out


def ncut(adj: sp.spmatrix | np.ndarray, labels: np.ndarray) -> float:
    """Normalised cut ``sum_k cut(k) / vol(k)`` of a labelling of an undirected graph.

    ``vol(k)`` is the summed degree of cluster ``k``'s nodes and ``cut(k)`` the
    weight of edges leaving it. Nodes labelled ``-1`` are left out, together
    with their edges. Lower is more clusterable; the value lies in ``[0, k]``.

    Examples
    --------
    >>> a = np.array([[0, 1, 0.1, 0], [1, 0, 0, 0], [0.1, 0, 0, 1], [0, 0, 1, 0]])
    >>> round(ncut(a, np.array([0, 0, 1, 1])), 4)
    0.0952
    """
    adj = sp.csr_matrix(adj, dtype=np.float64)
    labels = np.asarray(labels)
    keep = np.flatnonzero(labels >= 0)
    if not len(keep):
        return 0.0
    # One sparse-times-dense product with the cluster indicators (a left-out node's row is zero, so
    # its edges count nowhere): 0.03 s on EfficientNet-Lite0's 9.6 M stored entries against 0.27-0.8 s
    # for gathering the labels of every stored entry.
    k = int(labels.max()) + 1
    onehot = np.zeros((len(labels), k))
    onehot[keep, labels[keep]] = 1.0
    ah = adj @ onehot
    vol = np.bincount(labels[keep], weights=ah[keep].sum(axis=1), minlength=k)
    inside = np.bincount(labels[keep], weights=ah[keep, labels[keep]], minlength=k)
    ok = vol > 0
    return float(np.sum((vol[ok] - inside[ok]) / vol[ok]))


# ARPACK on the float32 operator at tolerance 1e-4 against float64 at 1e-6, on EfficientNet-Lite0's
# 21,011-node graph (k = 12): 0.97 s against 1.51 s on one core, leading eigenvalues within 3.4e-6 and the
# 12-dimensional eigenspaces at a smallest principal cosine of 0.9999988 (scripts/benchmark.py, BENCHMARKS.md).
_EIGSH_TOL = 1e-4


def _embedding(adj: sp.csr_matrix, k: int, rng: np.random.Generator) -> np.ndarray:
    """Rows of the ``k`` leading eigenvectors of ``D^-1/2 A D^-1/2``, rescaled by ``D^-1/2`` (no isolated nodes)."""
    deg = np.asarray(adj.sum(axis=1)).ravel()
    d = 1.0 / np.sqrt(deg)
    rows = np.repeat(np.arange(adj.shape[0]), np.diff(adj.indptr))
    norm = sp.csr_matrix((adj.data * d[rows] * d[adj.indices], adj.indices, adj.indptr), shape=adj.shape)
    n = norm.shape[0]
    if n <= _DENSE_LIMIT or k >= n - 1:
        _, vec = eigh(norm.toarray(), subset_by_index=[n - k, n - 1])
        return vec * d[:, None]
    # Shift by the identity so the wanted eigenvalues (near 1) are the largest in magnitude of a
    # positive semi-definite operator: ARPACK converges fast and reliably on 'LM'.
    m32 = norm.astype(np.float32)
    shifted = LinearOperator((n, n), matvec=lambda x: m32 @ x + x, dtype=np.float32)
    v0 = rng.uniform(0.5, 1.5, n).astype(np.float32)
    try:
        _, vec = eigsh(shifted, k=k, which="LM", v0=v0, tol=_EIGSH_TOL, maxiter=20 * n)
    except ArpackNoConvergence as exc:  # pragma: no cover - rare; fall back to LOBPCG
        from scipy.sparse.linalg import lobpcg

        x = rng.standard_normal((n, k))
        _, vec = lobpcg((norm + sp.identity(n, format="csr")).tocsr(), x, tol=1e-8, maxiter=500, largest=True)
        logger.debug("ARPACK did not converge (%s); used LOBPCG", exc)
    return vec.astype(np.float64) * d[:, None]


def spectral_clusters(adj: sp.spmatrix | np.ndarray, k: int, seed: int | np.random.Generator | None = 0,
                      n_init: int = 4) -> np.ndarray:
    """Normalised spectral clustering of a weighted undirected graph into ``k`` clusters.

    Parameters
    ----------
    adj : sparse matrix or ndarray, shape (n, n)
        Symmetric non-negative adjacency.
    k : int
        Number of clusters (at least 2).
    seed : int, Generator or None
        Seeds the eigensolver's start vector and k-means.
    n_init : int
        k-means restarts.

    Returns
    -------
    ndarray of int, shape (n,)
        Labels in ``0..k-1``; ``-1`` for isolated nodes (degree zero).

    Raises
    ------
    ModularityError
        If ``k`` is below 2 or above the number of non-isolated nodes.

    References
    ----------
    Shi, J. and Malik, J. (2000). Normalized cuts and image segmentation. IEEE
    TPAMI 22(8), 888-905.
    """
    adj = sp.csr_matrix(adj, dtype=np.float64)
    rng = as_generator(seed)
    deg = np.asarray(adj.sum(axis=1)).ravel()
    live = deg > 0
    n_live = int(live.sum())
    if k < 2:
        raise ModularityError(f"k must be at least 2, got {k}")
    if k > n_live:
        raise ModularityError(f"k = {k} is larger than the number of connected units ({n_live})")
    labels = np.full(adj.shape[0], -1)
    sub = adj if n_live == adj.shape[0] else adj[live][:, live]
    # Small problems run much faster single-threaded (OpenMP start-up dominates, worse on a busy machine).
    with threadpool_limits(limits=1 if n_live <= _SINGLE_THREAD_LIMIT else None):
        emb = _embedding(sub, k, rng)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            km = KMeans(n_clusters=k, n_init=n_init, random_state=int(rng.integers(2**31 - 1)))
            labels[live] = km.fit_predict(emb)
    return labels


@dataclass
class ClusterabilityResult:
    """Whole-network n-cut against within-layer shuffled networks.

    Attributes
    ----------
    model : str
        The model's name.
    k : int
        Number of clusters.
    ncut : float
        N-cut of the spectral clustering of the real network.
    null_ncuts : list of float
        N-cut of each shuffled network.
    null_mean, null_sd, z, p_value : float or None
        ``z = (ncut - null_mean) / null_sd``; ``p_value`` is the empirical
        ``(r + 1) / (n + 1)`` with ``r`` shuffles whose n-cut is at most the
        observed one (lower is more clusterable). All None with no shuffles.
    n_shuffles : int
        Shuffled networks drawn (the smallest p-value is ``1 / (n_shuffles + 1)``).
    seed : int
        Seeds the shuffles and k-means.
    n_nodes, n_edges, n_isolated : int
        Nodes, undirected edges with non-zero weight, and isolated nodes (label -1).
    layers : list of str
        Node layers in order.
    layer_sizes : list of int
        Units of each layer, in the order of ``layers``.
    cluster_sizes : dict of str to list of int
        For each layer, how many of its units fall in each of the ``k`` clusters.
    labels : dict of str to list of int
        Cluster label of every unit, per layer.
    include_linear : bool
        Whether linear layers' features are nodes too.
    runtime_s : float
        Wall time in seconds.
    weights : str
        Where the weights came from (for the report).
    command : str
        The command line that ran it.
    null : str
        The null model of the shuffled networks (:data:`~modularity.core.defaults.NULL_MODELS`).
    """

    model: str
    k: int
    ncut: float
    null_ncuts: list[float]
    null_mean: float | None
    null_sd: float | None
    z: float | None
    p_value: float | None
    n_shuffles: int
    seed: int
    n_nodes: int
    n_edges: int
    n_isolated: int
    layers: list[str]
    layer_sizes: list[int]
    cluster_sizes: dict[str, list[int]]
    labels: dict[str, list[int]] = field(repr=False)
    include_linear: bool = False
    runtime_s: float = 0.0
    weights: str = ""
    command: str = ""
    null: str = "shuffle"

    def __repr__(self) -> str:
        def g(x: float | None) -> str:
            return "-" if x is None or not np.isfinite(x) else f"{x:.3g}"

        return (f"ClusterabilityResult({self.model!r}, {self.n_nodes} units in {len(self.layers)} layers, k={self.k}, "
                f"n-cut={g(self.ncut)} vs null {g(self.null_mean)}, z={g(self.z)}, p={g(self.p_value)}, "
                f"{self.n_shuffles} shuffles ({self.null}))")

    def _repr_html_(self) -> str:
        """A notebook summary: the header line and each layer's units per cluster."""
        import html

        head = "".join(f"<th>{c}</th>" for c in range(self.k))
        rows = "".join(f"<tr><th>{html.escape(name)}</th>" + "".join(f"<td>{n}</td>" for n in sizes) + "</tr>"
                       for name, sizes in list(self.cluster_sizes.items())[:30])
        more = f"<p>... and {len(self.cluster_sizes) - 30} more layers</p>" if len(self.cluster_sizes) > 30 else ""
        return (f"<p><b>{html.escape(repr(self))}</b></p><table><tr><th>layer / cluster</th>{head}</tr>{rows}"
                f"</table>{more}")

    def to_dict(self) -> dict:
        """A JSON-ready dict (non-finite floats become None)."""
        from ..results import jsonable

        return jsonable(asdict(self))

    def summary(self) -> str:
        """A one-paragraph plain-text summary."""
        base = (f"{self.model}: whole-network graph of {self.n_nodes} units in {len(self.layers)} layers "
                f"({self.n_edges} edges, {self.n_isolated} isolated), k = {self.k}: n-cut = {self.ncut:.4f}")
        if self.n_shuffles == 0 or self.null_mean is None:
            return base + "; no shuffled networks, so no null (p and z are undefined)."
        z = "undefined (no spread)" if self.z is None else f"{self.z:.2f}"
        verdict = ("more clusterable than" if significant(self.p_value) and self.ncut
                   < self.null_mean else "not detectably more clusterable than")
        floor = 1 / (self.n_shuffles + 1)
        return (base + f" vs {self.null_mean:.4f} +- {self.null_sd:.4f} over {self.n_shuffles} null networks "
                f"('{self.null}' null; z = {z}, empirical p = {self.p_value:.3g}, which cannot fall below "
                f"1/({self.n_shuffles}+1) = {floor:.3g}): the network is {verdict} its null. "
                f"({self.runtime_s:.1f} s)")


@dataclass(frozen=True)
class _ShuffleTask:
    """What every shuffled network needs (sent once to each worker)."""

    graph: ChannelGraph
    net: NetworkGraph
    k: int
    n_init: int
    null: str
    seed: int


def _shuffle_draw(task: _ShuffleTask, index: int) -> float:
    """The n-cut of shuffled network ``index``: the same null kernels as the per-layer analysis."""
    rng = draw_rng(task.seed, "study:clusterability", index)
    mags = {c: null_magnitude(task.graph, c, task.null, rng, fold_first=True) for c in task.net.consumers}
    adj = task.net.placement().adjacency(task.net.placement().values(mags), task.net.n_nodes)
    return ncut(adj, spectral_clusters(adj, task.k, rng, task.n_init))


def _as_graph(model_or_graph: nn.Module | ChannelGraph, input_size: tuple[int, int]) -> tuple[ChannelGraph, str]:
    if isinstance(model_or_graph, ChannelGraph):
        return model_or_graph, "graph"
    if isinstance(model_or_graph, nn.Module):
        return trace(model_or_graph, input_size), type(model_or_graph).__name__
    module = getattr(model_or_graph, "module", None)
    if isinstance(module, nn.Module):  # a LoadedModel
        return trace(module, tuple(model_or_graph.input_size), model_or_graph.in_channels), model_or_graph.name
    raise ModularityError(f"clusterability needs a module or a ChannelGraph, not {type(model_or_graph).__name__}")


def clusterability(model_or_graph: nn.Module | ChannelGraph, k: int = 12, n_shuffles: int = 100, seed: int = 0,
                   include_linear: bool = False, progress: bool = False, *,
                   input_size: tuple[int, int] = (224, 224), name: str | None = None,
                   n_init: int = 4, null: str = "shuffle", jobs: int = 1, backend: str = "local",
                   scheduler: str | None = None) -> ClusterabilityResult:
    """Whole-network clusterability of a network against within-layer weight shuffles.

    Parameters
    ----------
    model_or_graph : nn.Module, LoadedModel or ChannelGraph
    k : int
        Number of clusters (Filan et al. use 12 for ImageNet models).
    n_shuffles : int
        Shuffled networks for the null; 0 skips the null (``p_value``, ``z``,
        ``null_mean`` and ``null_sd`` are then None).
    seed : int
        Seeds the shuffles, the eigensolver and k-means.
    include_linear : bool
        Also include linear layers.
    progress : bool
        Show a progress bar over the shuffles.
    input_size : (int, int)
        Input size for tracing a module.
    name : str, optional
        Model name for the result.
    n_init : int
        k-means restarts per clustering.
    null : str
        ``shuffle`` permutes each layer's BN-folded weights within the layer
        (Filan et al.); any other kind of :data:`modularity.core.nulls.NULL_MODELS`
        draws each layer's magnitudes with :func:`modularity.core.nulls.null_magnitude`
        (``degree`` keeps every unit's total incoming and outgoing magnitude).
        Draw ``i`` uses its own generator (:func:`modularity.core.nulls.draw_rng`
        of the study), so the null does not depend on ``jobs`` or ``backend``.
    jobs, backend, scheduler
        Where the shuffled networks are clustered (see :mod:`modularity.backends`).

    Returns
    -------
    ClusterabilityResult

    Raises
    ------
    ModularityError
        If the network has no conv layer, ``k`` is below 2 or above the number
        of connected units, or ``n_shuffles`` is negative.

    Examples
    --------
    >>> import torchvision
    >>> res = clusterability(torchvision.models.alexnet(weights=None), k=4, n_shuffles=3)
    >>> res.n_nodes, len(res.null_ncuts)
    (1155, 3)
    """
    if n_shuffles < 0:
        raise ModularityError(f"the number of shuffles must be 0 or more, got {n_shuffles}")
    if null not in NULL_MODELS:
        raise ModularityError(f"unknown null model '{null}'; choose one of {', '.join(NULL_MODELS)}")
    null_kind = null
    if k < 2:
        raise ModularityError(f"k must be at least 2, got {k}")
    start = time.perf_counter()
    graph, default_name = _as_graph(model_or_graph, input_size)
    net = network_graph(graph, include_linear)
    if k > net.n_nodes:
        raise ModularityError(f"k = {k} is larger than the number of units in the graph ({net.n_nodes})")
    rng = study_rng(seed, "clusterability")
    adj = network_adjacency(graph, net)
    labels = spectral_clusters(adj, k, rng, n_init)
    observed = ncut(adj, labels)

    task = _ShuffleTask(graph, net, k, n_init, null_kind, int(seed))
    bar = None
    if progress and n_shuffles:
        from tqdm.auto import tqdm

        bar = tqdm(total=n_shuffles, desc="shuffled networks", unit="net", leave=False)
    draws: list[float] = [float("nan")] * n_shuffles
    try:
        with make_backend(task, jobs, backend, scheduler) as runner:
            for i, value in runner.as_completed(_shuffle_draw, list(range(n_shuffles))):
                draws[i] = value
                if bar is not None:
                    bar.update()
    finally:
        if bar is not None:
            bar.close()
    if draws:
        s = summarise_null(observed, np.array(draws), "less")
        null_mean, null_sd, z, p = s.null_mean, s.null_sd, s.z, s.p_value
    else:
        null_mean = null_sd = z = p = None
    per_layer_labels, sizes = {}, {}
    for layer_name in net.layers:
        a, b = net.offsets[layer_name]
        lab = labels[a:b]
        per_layer_labels[layer_name] = lab.tolist()
        sizes[layer_name] = np.bincount(lab[lab >= 0], minlength=k).tolist()
    return ClusterabilityResult(
        model=name or default_name, k=int(k), ncut=observed, null_ncuts=[float(x) for x in draws],
        null_mean=null_mean, null_sd=null_sd, z=z, p_value=p, n_shuffles=int(n_shuffles), seed=int(seed),
        n_nodes=net.n_nodes, n_edges=int(adj.nnz // 2), n_isolated=int((labels < 0).sum()),
        layers=list(net.layers), layer_sizes=[graph.layers[n].n_units for n in net.layers],
        cluster_sizes=sizes, labels=per_layer_labels, include_linear=include_linear, null=null_kind,
        runtime_s=time.perf_counter() - start,
    )
