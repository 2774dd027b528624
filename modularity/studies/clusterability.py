"""Whole-network clusterability (Filan et al., 2021, "Clusterability in Neural Networks").

One undirected graph over the whole network: its nodes are the units (output
channels) of every conv layer plus the input channels (and, with
``include_linear``, the features of every linear layer). The edge between
producer unit ``i`` and consumer unit ``j`` weighs the L1 norm of the kernel
slice ``W[j, i]`` times the consumer's folded batch-norm scale (see
:func:`modularity.magnitude.layer_magnitude`). Concatenation layers are not
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
from scipy.sparse.linalg import ArpackNoConvergence, eigsh
from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_limits
from torch import nn

from ..core.nulls import study_rng
from ..results import significant
from ..errors import ModularityError
from ..core.graph import INPUT, ChannelGraph, trace
from ..core.magnitude import place_magnitude, reduce_kernel
from ..core.nulls import NULL_MODELS, as_generator, null_magnitude, summarise_null

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

    def layer_of(self) -> np.ndarray:
        """The layer index (into :attr:`layers`) of every node."""
        out = np.empty(self.n_nodes, dtype=int)
        for i, name in enumerate(self.layers):
            a, b = self.offsets[name]
            out[a:b] = i
        return out


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
        consumers.append(name)
    return NetworkGraph(layers, offsets, start, consumers, readers)


def _folded_weight(graph: ChannelGraph, name: str) -> torch.Tensor:
    """The layer's weight with its folded batch-norm scale multiplied into each output row."""
    w = graph.weight(name).to(torch.float64)
    scale = graph.layers[name].row_scale
    if scale is not None:
        w = w * torch.as_tensor(scale, dtype=torch.float64).reshape(-1, *([1] * (w.dim() - 1)))
    return w


def _sparse_magnitude(graph: ChannelGraph, name: str, weight: torch.Tensor) -> sp.csr_matrix:
    """L1 magnitudes of a (BN-folded) weight as a sparse ``(out, in_units)`` matrix (groups as zero blocks)."""
    return sp.csr_matrix(place_magnitude(graph, name, reduce_kernel(weight, "l1"), fold_bn=False))


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
        BN-folded replacement weights for some layers (e.g. shuffled copies);
        other layers use their own folded weights.
    magnitudes : dict of str to ndarray, optional
        Replacement ``(out, in)`` folded magnitude matrices for some layers
        (e.g. a draw of :func:`modularity.core.nulls.null_magnitude`); they
        take precedence over ``weights``.

    Returns
    -------
    scipy.sparse.csr_matrix, shape (n_nodes, n_nodes)
    """
    weights, magnitudes = weights or {}, magnitudes or {}
    blocks = []
    for name in net.consumers:
        if name in magnitudes:
            mag = sp.csr_matrix(magnitudes[name])
        else:
            mag = _sparse_magnitude(graph, name, weights[name] if name in weights else _folded_weight(graph, name))
        block = (mag @ net.readers[name]).tocoo()
        start = net.offsets[name][0]
        blocks.append((block.row + start, block.col, block.data))
    rows = np.concatenate([b[0] for b in blocks])
    cols = np.concatenate([b[1] for b in blocks])
    vals = np.concatenate([b[2] for b in blocks])
    lower = sp.csr_matrix((vals, (rows, cols)), shape=(net.n_nodes, net.n_nodes))
    adj = (lower + lower.T).tocsr()
    adj.eliminate_zeros()
    return adj


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
    keep = labels >= 0
    adj = adj[keep][:, keep]
    lab = labels[keep]
    if len(lab) == 0:
        return 0.0
    k = int(lab.max()) + 1
    h = sp.csr_matrix((np.ones(len(lab)), (np.arange(len(lab)), lab)), shape=(len(lab), k))
    deg = np.asarray(adj.sum(axis=1)).ravel()
    vol = h.T @ deg
    inside = np.asarray((h.T @ (adj @ h)).diagonal()).ravel()
    ok = vol > 0
    return float(np.sum((vol[ok] - inside[ok]) / vol[ok]))


def _embedding(adj: sp.csr_matrix, k: int, rng: np.random.Generator) -> np.ndarray:
    """Rows of the ``k`` leading eigenvectors of ``D^-1/2 A D^-1/2``, rescaled by ``D^-1/2``."""
    deg = np.asarray(adj.sum(axis=1)).ravel()
    d = 1.0 / np.sqrt(deg)
    norm = sp.diags(d) @ adj @ sp.diags(d)
    n = norm.shape[0]
    if n <= _DENSE_LIMIT or k >= n - 1:
        _, vec = eigh(norm.toarray(), subset_by_index=[n - k, n - 1])
    else:
        # Shift by the identity so the wanted eigenvalues (near 1) are the largest in magnitude of a
        # positive semi-definite operator: ARPACK converges fast and reliably on 'LM'.
        shifted = (norm + sp.identity(n, format="csr")).tocsr()
        v0 = rng.uniform(0.5, 1.5, n)
        try:
            _, vec = eigsh(shifted, k=k, which="LM", v0=v0, tol=1e-6, maxiter=20 * n)
        except ArpackNoConvergence as exc:  # pragma: no cover - rare; fall back to what converged and LOBPCG
            from scipy.sparse.linalg import lobpcg

            x = rng.standard_normal((n, k))
            _, vec = lobpcg(shifted, x, tol=1e-8, maxiter=500, largest=True)
            logger.debug("ARPACK did not converge (%s); used LOBPCG", exc)
    return vec * d[:, None]


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
    # Small problems run much faster single-threaded (OpenMP start-up dominates, worse on a busy machine).
    with threadpool_limits(limits=1 if n_live <= _SINGLE_THREAD_LIMIT else None):
        emb = _embedding(adj[live][:, live], k, rng)
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
    k : int
    ncut : float
        N-cut of the spectral clustering of the real network.
    null_ncuts : list of float
        N-cut of each shuffled network.
    null_mean, null_sd, z, p_value : float or None
        ``z = (ncut - null_mean) / null_sd``; ``p_value`` is the empirical
        ``(r + 1) / (n + 1)`` with ``r`` shuffles whose n-cut is at most the
        observed one (lower is more clusterable). All None with no shuffles.
    n_shuffles : int
    seed : int
    n_nodes, n_edges, n_isolated : int
        Nodes, undirected edges with non-zero weight, and isolated nodes (label -1).
    layers : list of str
        Node layers in order.
    layer_sizes : list of int
    cluster_sizes : dict of str to list of int
        For each layer, how many of its units fall in each of the ``k`` clusters.
    labels : dict of str to list of int
        Cluster label of every unit, per layer.
    include_linear : bool
    runtime_s : float
    weights : str
        Where the weights came from (for the report).
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

    def to_dict(self) -> dict:
        """A JSON-ready dict (non-finite floats become None)."""
        from ..results import _jsonable

        return _jsonable(asdict(self))

    def summary(self) -> str:
        """A one-paragraph plain-text summary."""
        base = (f"{self.model}: whole-network graph of {self.n_nodes} units in {len(self.layers)} layers "
                f"({self.n_edges} edges, {self.n_isolated} isolated), k = {self.k}: n-cut = {self.ncut:.4f}")
        if self.n_shuffles == 0 or self.null_mean is None:
            return base + "; no shuffled networks, so no null (p and z are undefined)."
        z = "undefined (no spread)" if self.z is None else f"{self.z:.2f}"
        verdict = ("more clusterable than" if significant(self.p_value) and self.ncut
                   < self.null_mean else "not detectably more clusterable than")
        return (base + f" vs {self.null_mean:.4f} +- {self.null_sd:.4f} over {self.n_shuffles} within-layer "
                f"shuffles (z = {z}, empirical p = {self.p_value:.3g}): the network is {verdict} its shuffles. "
                f"({self.runtime_s:.1f} s)")


def _as_graph(model_or_graph: "nn.Module | ChannelGraph", input_size: tuple[int, int]) -> tuple[ChannelGraph, str]:
    if isinstance(model_or_graph, ChannelGraph):
        return model_or_graph, "graph"
    if isinstance(model_or_graph, nn.Module):
        return trace(model_or_graph, input_size), type(model_or_graph).__name__
    module = getattr(model_or_graph, "module", None)
    if isinstance(module, nn.Module):  # a LoadedModel
        return trace(module, tuple(model_or_graph.input_size)), model_or_graph.name
    raise ModularityError(f"clusterability needs a module or a ChannelGraph, not {type(model_or_graph).__name__}")


def clusterability(model_or_graph: "nn.Module | ChannelGraph", k: int = 12, n_shuffles: int = 100, seed: int = 0,
                   include_linear: bool = False, progress: bool = False, *,
                   input_size: tuple[int, int] = (224, 224), name: str | None = None,
                   n_init: int = 4, null: str = "shuffle") -> ClusterabilityResult:
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

    folded = {name_: _folded_weight(graph, name_) for name_ in net.consumers}
    iterator = range(n_shuffles)
    if progress and n_shuffles:
        from tqdm.auto import tqdm

        iterator = tqdm(iterator, desc="shuffled networks", unit="net", leave=False)
    draws = []
    for _ in iterator:
        if null_kind == "shuffle":
            shuffled = {}
            for layer_name, w in folded.items():
                flat = w.reshape(-1)
                shuffled[layer_name] = flat[torch.as_tensor(rng.permutation(flat.numel()))].reshape(w.shape)
            adj_null = network_adjacency(graph, net, shuffled)
        else:
            mags = {c: null_magnitude(graph, c, null_kind, rng) for c in net.consumers}
            adj_null = network_adjacency(graph, net, magnitudes=mags)
        draws.append(ncut(adj_null, spectral_clusters(adj_null, k, rng, n_init)))
    null = draws

    if null:
        s = summarise_null(observed, np.array(null), "less")
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
        model=name or default_name, k=int(k), ncut=observed, null_ncuts=[float(x) for x in null],
        null_mean=null_mean, null_sd=null_sd, z=z, p_value=p, n_shuffles=int(n_shuffles), seed=int(seed),
        n_nodes=net.n_nodes, n_edges=int(adj.nnz // 2), n_isolated=int((labels < 0).sum()),
        layers=list(net.layers), layer_sizes=[graph.layers[n].n_units for n in net.layers],
        cluster_sizes=sizes, labels=per_layer_labels, include_linear=include_linear, null=null_kind,
        runtime_s=time.perf_counter() - start,
    )
