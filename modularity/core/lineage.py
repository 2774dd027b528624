"""The value the channel tracer computes for every tensor of a traced network.

A :class:`Traced` value says along which tensor axes a tensor's channel identity varies,
and which units of which source layers each channel holds (its *lineage*); constants and
data that no unit writes alone (attention weights, statistics over channels) carry no
lineage. Plain data with small helpers: :mod:`modularity.core.graph` computes them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from torch import fx

__all__ = ["Lineage", "Traced", "Value", "constant", "data_of", "describe", "merge_terms", "same_scale",
           "same_terms", "shape_of", "tensor_shape"]

# A lineage maps each channel of a value to channels of source layers:
# a list of terms (source layer name, int array over the value's channels,
# -1 where the channel does not come from that source).
Lineage = list[tuple[str, np.ndarray]]


def shape_of(node: fx.Node) -> tuple[int, ...] | None:
    """The shape the shape pass recorded for a tensor-valued node (None for anything else)."""
    meta = node.meta.get("tensor_meta")
    return tuple(meta.shape) if meta is not None and hasattr(meta, "shape") else None


def tensor_shape(node: fx.Node) -> tuple[int, ...]:
    """:func:`shape_of` a node read as a tensor; TypeError (as from indexing None) when it has no shape."""
    shape = shape_of(node)
    if shape is None:
        raise TypeError(f"no tensor shape recorded for {describe(node)}")
    return shape


def describe(node: fx.Node) -> str:
    """``fx node '<name>' (<op> <target>) in module '<path>'``, for error messages."""
    target = node.target if isinstance(node.target, str) else getattr(node.target, "__name__", str(node.target))
    where = f" in module '{node.meta.get('module_path')}'" if node.meta.get("module_path") else ""
    return f"fx node '{node.name}' ({node.op} {target}){where}"


def merge_terms(terms: Lineage) -> Lineage:
    """Merge terms of the same source that cover disjoint channels."""
    out: Lineage = []
    for src, idx in terms:
        for k, (s2, i2) in enumerate(out):
            if s2 == src and not np.any((idx >= 0) & (i2 >= 0)):
                out[k] = (src, np.where(idx >= 0, idx, i2))
                break
        else:
            out.append((src, idx))
    return out


@dataclass
class Traced:
    """A traced tensor: where its channels are and which source units they hold.

    ``axes`` are the tensor axes along which the channel identity varies (in
    increasing order; usually one, ``()`` for a single channel or a constant);
    each term's index array has the shape ``[shape[a] for a in axes]``;
    ``scale`` (same shape, or None) is a per-channel factor of a norm or fixed
    multiplier that is not yet folded into any layer. A value without terms is a
    constant (``data == ""``: parameters, buffers, position tables) or data no unit
    writes alone: ``"scores"`` (attention weights, which mix positions) or
    ``"mixed"`` (statistics over channels, channels mixed with data-dependent
    weights). ``att`` names the sources whose channels reached this value through an
    attention product (their edges get ``via="attention"``).
    """

    axes: tuple[int, ...]
    terms: Lineage
    scale: np.ndarray | None = None
    data: str = ""
    att: frozenset[str] = frozenset()

    @property
    def const(self) -> bool:
        return not self.terms

    @property
    def size(self) -> int:
        return int(self.terms[0][1].size) if self.terms else 1


Value = Traced | tuple[Traced, ...] | None
"""What the tracer holds for an fx node: a tensor's value, the values of a node that returns several tensors
(a split), or None (sizes, dtypes and other non-tensor values)."""


def constant(data: str = "") -> Traced:
    """A value without lineage: a constant, or data of kind ``data`` (``"scores"``, ``"mixed"``)."""
    return Traced((), [], data=data)


def data_of(vals) -> str:
    """The kind of a constant computed from ``vals``: attention weights win over other data."""
    kinds = {v.data for v in vals if isinstance(v, Traced) and v.const}
    return "scores" if "scores" in kinds else ("mixed" if "mixed" in kinds else "")


def same_terms(a: Lineage, b: Lineage) -> bool:
    """True when two lineages are identical, term by term."""
    return len(a) == len(b) and all(s1 == s2 and i1.shape == i2.shape and np.array_equal(i1, i2)
                                    for (s1, i1), (s2, i2) in zip(a, b))


def same_scale(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    """True when two carried per-channel scales are identical (both absent counts)."""
    if a is None or b is None:
        return a is None and b is None
    return a.shape == b.shape and np.array_equal(a, b)
