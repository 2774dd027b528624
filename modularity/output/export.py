"""networkx views of the channel graph and results, graph files and CSV tables.

Two graphs:

* :func:`layer_graph`: one node per layer, one edge per producer-consumer pair;
* :func:`unit_graph`: one node per unit (output channel or feature) of the
  analysed producer layers and of their consumers, one edge per connection
  from a producer unit to a consumer unit weighted by its connection magnitude
  (the entries of the producer's downstream profile). Each consumer unit keeps
  only its ``top_k`` strongest incoming edges from each producer, so files of
  large models stay small.

Every attribute is a scalar (int, float, bool or str); vectors are flattened
to ``sv1_raw``, ``sv2_raw``, ... and missing values are left out rather than
written as NaN, so one graph writes unchanged to GraphML (networkx, yEd),
GEXF (Gephi), node-link JSON (networkx, d3) and Cytoscape.js JSON (Cytoscape,
which does not read GEXF). :func:`read_graph` reads each of them back.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import networkx as nx
import numpy as np

from ..errors import ModularityError
from ..results import AnalysisResult, Column, LayerResult

if TYPE_CHECKING:  # types only: drawing a results folder needs no torch
    from ..core.graph import ChannelGraph
    from ..core.magnitude import Profile

__all__ = ["clusterability_rows",
    "DEFAULT_TOP_K", "DEFAULT_MAX_EDGES", "GRAPH_FORMATS", "fit_top_k", "layer_graph", "unit_graph", "unit_id",
    "write_graph", "read_graph", "write_graphml", "unit_rows", "write_csv", "write_rows",
]

DEFAULT_TOP_K = 16
# Edge budget of a unit graph: about 10 MB of GraphML. top_k is lowered to fit.
DEFAULT_MAX_EDGES = 50_000
# format name -> file suffix
GRAPH_FORMATS = {"graphml": ".graphml", "gexf": ".gexf", "node_link": ".node_link.json",
                 "cytoscape": ".cytoscape.json", "graphml_gz": ".graphml.gz"}
def _scalar(x: Any) -> Any:
    """A plain Python scalar, or None for missing and non-finite values."""
    if x is None:
        return None
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        return float(x) if math.isfinite(float(x)) else None
    return str(x)


def _clean(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """Scalars only, with missing and non-finite values left out."""
    out = {}
    for key, value in attrs.items():
        value = _scalar(value)
        if value is not None:
            out[key] = value
    return out


def layer_graph(graph: ChannelGraph, result: AnalysisResult | None = None) -> nx.DiGraph:
    """A directed graph with one node per layer and one edge per producer-consumer pair.

    Node attributes: ``kind``, ``n_units``, ``in_units``, ``groups``, ``kernel``
    (e.g. ``"3x3"``), ``n_branches`` (0 if none), ``branch_source``,
    ``analysed`` and, for analysed layers, ``k``, ``ncut``, ``ncut_z``,
    ``ncut_p``, ``ncut_p_bh``, ``n_dead`` and, with true branches, ``ari``,
    ``nmi``, ``recovery_p``, ``recovery_p_bh``. Edge attributes:
    ``n_connections`` (input columns read) and ``n_units_read`` (distinct
    producer units read). Missing statistics are left out, never NaN.

    Examples
    --------
    >>> import torchvision
    >>> from modularity.core.graph import trace
    >>> g = layer_graph(trace(torchvision.models.alexnet(weights=None)))
    >>> g.nodes["features.3"]["n_units"], g.has_edge("features.0", "features.3")
    (192, True)
    """
    g = nx.DiGraph()
    analysed = {layer.name: layer for layer in result.layers} if result is not None else {}
    for name, layer in graph.layers.items():
        attrs = {
            "kind": layer.kind, "n_units": layer.n_units, "in_units": layer.in_units, "groups": layer.groups,
            "kernel": "x".join(str(k) for k in layer.kernel_size),
            "n_branches": 0 if layer.branches is None else len(np.unique(layer.branches)),
            "branch_source": layer.branch_source or "", "analysed": name in analysed,
        }
        if name in analysed:
            attrs.update(_layer_stats(analysed[name]))
        g.add_node(name, **_clean(attrs))
    for e in graph.edges:
        if g.has_edge(e.producer, e.consumer):
            data = g.edges[e.producer, e.consumer]
            data["n_connections"] += int(len(e.consumer_cols))
            data["n_units_read"] = int(max(data["n_units_read"], len(np.unique(e.producer_units))))
        else:
            g.add_edge(e.producer, e.consumer, n_connections=int(len(e.consumer_cols)),
                       n_units_read=int(len(np.unique(e.producer_units))))
    if result is not None:
        g.graph.update(_clean({"model": result.model, "weights": result.weights}))
    return g


def _layer_stats(res: LayerResult) -> dict[str, Any]:
    """The statistics a layer node of the graph files carries (from :meth:`LayerResult.row`)."""
    row = res.row()
    stats: dict[str, Any] = {"k": row.k, "n_dead": row.n_dead, "ncut": row.ncut, "ncut_z": row.ncut_z,
                             "ncut_p": row.ncut_p, "ncut_p_bh": row.ncut_p_bh}
    if res.recovery is not None:
        stats.update(ari=row.ari, nmi=row.nmi, recovery_p=row.p, recovery_p_bh=row.p_bh)
    return stats


def unit_id(layer: str, index: int) -> str:
    """The node id of a unit in :func:`unit_graph`: ``"<layer>:<index>"``."""
    return f"{layer}:{int(index)}"


def unit_graph(graph: ChannelGraph, result: AnalysisResult, profiles: Mapping[str, Profile],
               top_k: int | None = DEFAULT_TOP_K, max_edges: int | None = None,
               unit_properties: Mapping[str, Mapping[str, Sequence[Any]]] | None = None,
               layers: Sequence[str] | None = None) -> nx.DiGraph:
    """A unit-level graph of the analysed layers (or of some of them) and their consumers.

    Parameters
    ----------
    graph : ChannelGraph
    result : AnalysisResult
    profiles : mapping of str to Profile
        The downstream profiles the analysis measured, of every analysed layer
        (kept on each :attr:`~modularity.results.LayerResult.profile`, or
        rebuilt by the caller: the output never recomputes them).
    top_k : int or None
        Keep, for each consumer unit, its ``top_k`` strongest incoming
        connections from each analysed producer (zero magnitudes are never
        kept). ``0`` or None keeps every non-zero connection (large: a
        1280 x 1000 classifier alone has 1.28 million).
    max_edges : int, optional
        Lower ``top_k`` (never below 1) until the graph has at most this many
        edges (see :func:`fit_top_k`); None keeps ``top_k`` as given. The
        ``top_k`` used is stored in ``g.graph["top_k"]``.
    unit_properties : mapping, optional
        ``{layer: {property: per-unit values}}``, added as node attributes
        (scalars only, e.g. a colour index of first-layer units).
    layers : sequence of str, optional
        Only these analysed layers as producers (default: every analysed
        layer); the graph's ``layers`` attribute lists them.

    Returns
    -------
    networkx.DiGraph
        Nodes ``"<layer>:<index>"`` with ``layer``, ``index``, ``kind``,
        ``analysed``; for analysed units ``branch`` and ``branch_name`` (where
        the layer has true branches), ``cluster`` (``-1`` for a dead unit) and
        ``sv<j>_<variant>`` (coordinate on the j-th right singular vector of
        that SVD variant). Edges producer unit -> consumer unit with ``weight``
        (connection magnitude) and ``via`` (the layer an expanded connection
        passes through, ``""`` for a direct one). Where two paths join the same
        pair of units, the stronger is kept.
    """
    chosen = [res for res in result.layers if layers is None or res.name in set(layers)]
    if layers is not None and len(chosen) != len(set(layers)):
        unknown = sorted(set(layers) - {res.name for res in chosen})
        raise ValueError(f"unit_graph: not analysed layers: {', '.join(unknown[:5])}")
    missing = [res.name for res in chosen if res.name not in profiles]
    if missing:
        raise ValueError(f"unit_graph needs the profile of every analysed layer; missing: {', '.join(missing[:5])}")
    if max_edges is not None:
        top_k = fit_top_k([profiles[res.name].matrix.shape for res in chosen], top_k, max_edges)
    g = nx.DiGraph()
    g.graph.update(_clean({"model": result.model, "weights": result.weights, "reduction": result.reduction,
                           "expand": result.expand, "top_k": int(top_k or 0),
                           "layers": ",".join(res.name for res in chosen)}))
    for res in chosen:
        prof = profiles[res.name]
        _add_producer_units(g, res, graph.layers[res.name].kind if res.name in graph.layers else res.kind)
        for label, start, end in prof.blocks:
            consumer, _, via = str(label).partition(" <- ")
            _add_consumer_units(g, graph, consumer, end - start)
            _add_block_edges(g, res.name, consumer, via, prof.matrix[start:end], top_k)
    for layer, props in (unit_properties or {}).items():
        for prop, values in props.items():
            for i, value in enumerate(values):
                node = unit_id(layer, i)
                if node in g and _scalar(value) is not None:
                    g.nodes[node][prop] = _scalar(value)
    return g


def fit_top_k(shapes: Iterable[Sequence[int]], top_k: int | None, max_edges: int) -> int:
    """The largest ``k <= top_k`` (at least 1) whose edge count fits ``max_edges``.

    ``shapes`` are the (rows, units) shapes of the profile matrices; a profile
    gives at most ``rows * min(k, units)`` edges. ``top_k`` of 0 or None means
    "all", i.e. as many as the widest profile has units.

    Examples
    --------
    >>> fit_top_k([(100, 50)], 16, 1000)
    10
    """
    shapes = [(int(r), int(c)) for r, c in shapes]
    k = int(top_k) if top_k else max((c for _, c in shapes), default=1)
    while k > 1 and sum(r * min(k, c) for r, c in shapes) > max_edges:
        k -= 1
    return max(k, 1)


def _add_producer_units(g: nx.DiGraph, res: LayerResult, kind: str) -> None:
    coords = {v: np.asarray(e, dtype=float) for v, e in res.embedding.items()}
    for i in range(res.n_units):
        attrs: dict[str, Any] = {"layer": res.name, "index": i, "kind": kind, "analysed": True,
                                 "cluster": res.clusters[i] if i < len(res.clusters) else None}
        if res.branches is not None:
            b = int(res.branches[i])
            attrs["branch"] = b
            if res.branch_names and b < len(res.branch_names):
                attrs["branch_name"] = res.branch_names[b]
        for variant, v in coords.items():
            if v.ndim == 2 and i < v.shape[0]:
                for j in range(v.shape[1]):
                    attrs[f"sv{j + 1}_{variant}"] = v[i, j]
        node = unit_id(res.name, i)
        if node in g:
            g.nodes[node].update(_clean(attrs))
        else:
            g.add_node(node, **_clean(attrs))


def _add_consumer_units(g: nx.DiGraph, graph: ChannelGraph, layer: str, n: int) -> None:
    kind = graph.layers[layer].kind if layer in graph.layers else ""
    for i in range(n):
        node = unit_id(layer, i)
        if node not in g:
            g.add_node(node, layer=layer, index=i, kind=kind, analysed=False)


def _strongest(block: np.ndarray, top_k: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Row and column indices of each row's ``top_k`` largest non-zero entries."""
    if top_k and top_k < block.shape[1]:
        cols = np.argpartition(-block, top_k - 1, axis=1)[:, :top_k]
        rows = np.repeat(np.arange(block.shape[0]), top_k)
        cols = cols.ravel()
    else:
        rows, cols = np.indices(block.shape).reshape(2, -1)
    keep = block[rows, cols] > 0
    return rows[keep], cols[keep]


def _add_block_edges(g: nx.DiGraph, producer: str, consumer: str, via: str, block: np.ndarray,
                     top_k: int | None) -> None:
    rows, cols = _strongest(np.asarray(block, dtype=float), top_k)
    for r, c in zip(rows.tolist(), cols.tolist()):
        u, v, w = unit_id(producer, c), unit_id(consumer, r), float(block[r, c])
        if g.has_edge(u, v) and g.edges[u, v]["weight"] >= w:
            continue
        g.add_edge(u, v, weight=w, via=via)


# ------------------------------------------------------------------------------------------ graph files

def write_graph(g: nx.Graph, path: str | Path, fmt: str | None = None) -> Path:
    """Write a graph with scalar attributes in one of :data:`GRAPH_FORMATS`.

    Parameters
    ----------
    g : networkx graph
    path : str or Path
    fmt : {"graphml", "gexf", "node_link", "cytoscape", "graphml_gz"}, optional
        Guessed from the file name when omitted. ``graphml_gz`` is gzip-compressed
        GraphML, the compact form for full unit graphs of large models.

    Returns
    -------
    Path
    """
    path = Path(path)
    fmt = fmt or _guess_format(path)
    if fmt in ("graphml", "graphml_gz"):  # networkx compresses a path ending in .gz
        nx.write_graphml(g, str(path))
    elif fmt == "gexf":
        nx.write_gexf(g, str(path))
    elif fmt == "node_link":
        _write_json(nx.node_link_data(g, edges="edges"), path)
    elif fmt == "cytoscape":
        _write_json(nx.cytoscape_data(g), path)
    else:
        raise ModularityError(f"unknown graph format '{fmt}'; choose one of {', '.join(GRAPH_FORMATS)}")
    return path


def write_graphml(g: nx.Graph, path: str | Path) -> None:
    """Write a graph whose attributes are scalars or strings to GraphML."""
    write_graph(g, path, "graphml")


def _write_json(data: dict, path: Path) -> None:
    path.write_text(json.dumps(data, allow_nan=False, separators=(",", ":"), ensure_ascii=False), encoding="utf-8")


def _guess_format(path: Path) -> str:
    name = path.name.lower()
    for fmt, suffix in sorted(GRAPH_FORMATS.items(), key=lambda kv: -len(kv[1])):
        if name.endswith(suffix):
            return fmt
    raise ModularityError(f"cannot tell the graph format of '{path.name}' from its name; "
                          f"use one of the suffixes {', '.join(GRAPH_FORMATS.values())}")


def read_graph(path: str | Path, fmt: str | None = None) -> nx.Graph:
    """Read a graph written by :func:`write_graph`, without the writers' bookkeeping attributes.

    GEXF adds a ``label`` equal to the node id and Cytoscape JSON adds ``id``,
    ``name`` and ``value``; these are removed so the result compares equal to
    the graph that was written.
    """
    path = Path(path)
    fmt = fmt or _guess_format(path)
    if fmt in ("graphml", "graphml_gz"):
        return nx.read_graphml(str(path))
    if fmt == "gexf":
        g = nx.read_gexf(str(path))
        for node, data in g.nodes(data=True):
            if data.get("label") == node:
                del data["label"]
        for _, _, data in g.edges(data=True):
            data.pop("id", None)
        return g
    data = json.loads(path.read_text(encoding="utf-8"))
    if fmt == "node_link":
        return nx.node_link_graph(data, edges="edges")
    if fmt == "cytoscape":
        g = nx.cytoscape_graph(data)
        for _, attrs in g.nodes(data=True):
            for key in ("id", "name", "value"):
                attrs.pop(key, None)
        for _, _, attrs in g.edges(data=True):
            attrs.pop("source", None)
            attrs.pop("target", None)
        return g
    raise ModularityError(f"unknown graph format '{fmt}'; choose one of {', '.join(GRAPH_FORMATS)}")


# ------------------------------------------------------------------------------------------------ tables

def unit_rows(result: AnalysisResult) -> list[dict[str, Any]]:
    """One row per unit of every analysed layer (see :meth:`LayerResult.unit_rows`)."""
    return [row for res in result.layers for row in res.unit_rows()]


def write_csv(rows: Iterable[Mapping[str, Any]], path: str | Path, columns: Sequence[str] | None = None) -> Path:
    """Write rows of scalars as UTF-8 CSV (missing values as empty cells; floats with full precision).

    A text cell that a spreadsheet would run as a formula (starting with
    ``=``, ``+``, ``-``, ``@``, a tab or a carriage return: a layer named
    ``=HYPERLINK(...)`` in a model file) gets a leading single quote, as the
    OWASP rule on CSV injection says; numbers are written as they are.
    """
    rows = list(rows)
    columns = list(columns or (rows[0].keys() if rows else []))
    path = Path(path)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _cell(row.get(k)) for k in columns})
    return path


def write_rows(rows: Iterable[Any], columns: Sequence[Column], path: str | Path) -> Path:
    """Write typed rows (:class:`~modularity.results.LayerRow`, ...) as CSV, one column per :class:`Column`."""
    keys = [c.key for c in columns]
    return write_csv(({k: getattr(row, k) for k in keys} for row in rows), path, keys)


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def clusterability_rows(layers: Sequence[str], layer_sizes: Sequence[int],
                        cluster_sizes: Mapping[str, Sequence[int]], k: int) -> list[dict[str, Any]]:
    """Rows of ``clusterability_layers.csv``: per layer, its units, isolated units and units per cluster."""
    rows = []
    for name, size in zip(layers, layer_sizes):
        counts = list(cluster_sizes[name])
        row = {"layer": name, "n_units": size, "n_isolated": size - sum(counts)}
        row.update({f"cluster_{c}": counts[c] if c < len(counts) else 0 for c in range(k)})
        rows.append(row)
    return rows
