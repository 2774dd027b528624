"""Attention heads as branches: label q, k and v units by head, and split fused projections.

The channel tracer (:mod:`modularity.core.graph`) records every use of a layer's units in
an attention product as a :class:`HeadRole`: ``q`` and ``k`` (read by the scores, a
product that contracts their channels head by head) and ``v`` (mixed over positions by
the attention weights, each channel kept in place). This module turns those records
into head labels on the layers, after the walk over the graph:

- a layer all of whose units play one role (separate q, k and v projections) gets each
  unit labelled by its head (``branch_source="heads"``);
- a fused projection whose rows play several roles (timm's ``qkv`` linear, BEiT's
  functional ``F.linear(x, qkv.weight, ...)``, PVT's ``kv``) is split into one layer
  per role, ``<layer>.q``, ``<layer>.k``, ``<layer>.v``, each labelled by head, as
  torchvision's ``nn.MultiheadAttention`` is split into ``<attention>.q/.k/.v``. The
  parts are views of the fused weight's rows (interleaved head by head in LeViT:
  gathered in order); three parts are named q, k, v in the order of their rows, two by
  their roles. Every consumer edge of the fused layer is split by rows, and each part
  reads what the fused layer read.

A layer whose units are also read outside attention, or read by attention in
inconsistent ways, is left as it is, and :attr:`ChannelGraph.notes` says why.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from torch import nn

from .channel_graph import Edge, Layer, _RowSlice

__all__ = ["HeadRole", "label_heads"]

_ORDER = {"q": 0, "k": 1, "v": 2}


@dataclass
class HeadRole:
    """One use of a source layer's units in an attention product.

    Attributes
    ----------
    role : {"q", "k", "v"}
    source : str
        The layer whose units the operand holds.
    units : ndarray of int
        Unit indices of the source, one per channel of the operand that the source writes.
    heads : ndarray of int
        The head each of those channels belongs to (same length as ``units``).
    n_heads : int
    where : str
        The module performing the attention (for notes).
    """

    role: str
    source: str
    units: np.ndarray
    heads: np.ndarray
    n_heads: int
    where: str


def _assign(layer: Layer, roles: list[HeadRole]) -> tuple[np.ndarray, np.ndarray] | str:
    """The role and head of every unit of ``layer``, or a reason why they are not well defined."""
    role_of = np.full(layer.n_units, "", dtype=object)
    head_of = np.full(layer.n_units, -1)
    for r in roles:
        if np.any((role_of[r.units] != "") & (role_of[r.units] != r.role)) or np.any(
                (head_of[r.units] >= 0) & (head_of[r.units] != r.heads)):
            return "its units are read as different heads or roles by different attention products"
        if len(np.unique(r.units)) != len(r.units) and not _same_head_per_unit(r):
            return "a unit is read in several heads"
        role_of[r.units] = r.role
        head_of[r.units] = r.heads
    if np.any(role_of == ""):
        return "some of its units are not read by the attention"
    return role_of, head_of


def _same_head_per_unit(r: HeadRole) -> bool:
    order = np.argsort(r.units, kind="stable")
    u, h = r.units[order], r.heads[order]
    same = u[1:] == u[:-1]
    return bool(np.all(h[1:][same] == h[:-1][same]))


def _labels(heads: np.ndarray) -> tuple[np.ndarray, list[str]] | None:
    """Head labels renumbered 0..n-1 in order of first appearance; None for a single head."""
    uniq = np.unique(heads)
    if len(uniq) < 2:
        return None
    lookup = {int(h): i for i, h in enumerate(uniq)}
    return np.array([lookup[int(h)] for h in heads]), [f"head {int(h)}" for h in uniq]


def label_heads(layers: dict[str, Layer], edges: list[Edge], modules: dict[str, nn.Module],
                roles: list[HeadRole], notes: list[str]) -> None:
    """Apply recorded attention roles to the graph in place (see the module docstring).

    Parameters
    ----------
    layers, edges, modules, notes
        The graph under construction (:class:`~modularity.core.graph.ChannelGraph`'s fields).
    roles : list of HeadRole
        Every use of source units by an attention product, in trace order.
    """
    by_source: dict[str, list[HeadRole]] = {}
    for r in roles:
        by_source.setdefault(r.source, []).append(r)
    for src, rs in by_source.items():
        layer = layers.get(src)
        if layer is None or layer.kind not in ("conv", "linear") or layer.branches is not None:
            continue
        where = rs[0].where
        if any(e.producer == src and e.via != "attention" for e in edges):
            notes.append(f"{src}: its units are read by the attention in '{where}' and also directly by other "
                         "layers; not labelled by head")
            continue
        found = _assign(layer, rs)
        if isinstance(found, str):
            notes.append(f"{src}: {found} (attention in '{where}'); not labelled by head")
            continue
        role_of, head_of = found
        kinds = sorted(set(role_of.tolist()), key=lambda r: _ORDER[r])
        if len(kinds) == 1:
            labels = _labels(head_of)
            if labels is not None:
                layer.branches, layer.branch_names = labels
                layer.branch_source = "heads"
            continue
        rows = sorted((np.flatnonzero(role_of == k) for k in kinds), key=lambda r: int(r[0]))
        # Parts are named by their role, except that three parts are q, k, v in the order of their rows (the
        # layout of every fused projection): linear attention's ``k^T v`` reads k and v as a score product does.
        part_roles = ["q", "k", "v"] if len(rows) == 3 else [str(role_of[r[0]]) for r in rows]
        names = [f"{src}.{k}" for k in part_roles]
        blocked = None
        if layer.groups != 1:
            blocked = "it is a grouped conv"
        elif any(n in layers for n in names):
            blocked = "a layer of the split's name exists"
        elif any(src == s for other in layers.values() for s, _ in other.members):
            blocked = "it is part of a concatenation"
        if blocked:
            notes.append(f"{src}: a fused attention projection that is not split into q, k and v ({blocked})")
            continue
        _split(src, layer, list(zip(names, rows)), head_of, layers, edges, modules)


def _split(src: str, layer: Layer, parts: list[tuple[str, np.ndarray]], head_of: np.ndarray,
           layers: dict[str, Layer], edges: list[Edge], modules: dict[str, nn.Module]) -> None:
    """Replace fused layer ``src`` by one layer per set of rows, in place, in the same position.

    Each part keeps its rows in order (contiguous for timm's ``qkv``; interleaved head by head for LeViT).
    """
    parent = modules.pop(src)
    part_of = np.full(layer.n_units, -1)
    new_index = np.full(layer.n_units, -1)
    for k, (_, rows) in enumerate(parts):
        part_of[rows] = k
        new_index[rows] = np.arange(len(rows))
    new_layers: dict[str, Layer] = {}
    for name, existing in layers.items():
        if name != src:
            new_layers[name] = existing
            continue
        for part, rows in parts:
            piece = Layer(part, layer.kind, len(rows), layer.in_units, layer.groups, layer.kernel_size,
                          row_scale=None if layer.row_scale is None else layer.row_scale[rows].copy(),
                          in_concat=layer.in_concat,
                          col_scale=None if layer.col_scale is None else layer.col_scale.copy())
            labels = _labels(head_of[rows])
            if labels is not None:
                piece.branches, piece.branch_names = labels
                piece.branch_source = "heads"
            new_layers[part] = piece
            modules[part] = _RowSlice(parent, "weight", int(rows[0]), int(rows[-1]) + 1, rows)
    layers.clear()
    layers.update(new_layers)
    new_edges: list[Edge] = []
    for e in edges:
        if e.consumer == src:
            new_edges.extend(Edge(e.producer, part, e.consumer_cols, e.producer_units, e.via) for part, _ in parts)
        elif e.producer == src:
            for k, (part, _) in enumerate(parts):
                keep = part_of[e.producer_units] == k
                if np.any(keep):
                    new_edges.append(Edge(part, e.consumer, e.consumer_cols[keep],
                                          new_index[e.producer_units[keep]], e.via))
        else:
            new_edges.append(e)
    edges[:] = new_edges
