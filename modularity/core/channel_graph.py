"""The channel graph: layers, the edges between their units, and views of fused weights.

Built by :func:`modularity.core.graph.trace`; read by :mod:`modularity.core.magnitude`
and everything downstream. Plain data: no tracing here.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

import numpy as np
import torch
from torch import nn

__all__ = ["INPUT", "ChannelGraph", "Edge", "Layer"]

INPUT = "input"


@dataclass
class Layer:
    """A layer of the channel graph.

    Attributes
    ----------
    name : str
        Dotted module name from ``named_modules()`` (``features.0``,
        ``inception3b.branch2.1.conv``); for a concatenation, the module that
        performs it (``inception3a``); ``input`` for the network input; for a
        slice of a fused attention projection, ``<attention module>.q`` (``.k``, ``.v``).
    kind : {"conv", "linear", "concat", "input"}
        A linear layer applied on the channel axis of a feature map or a token
        sequence is a 1x1 ``"conv"``.
    n_units : int
        Output channels (conv, concat, input) or output features (linear).
    in_units : int
        Input channels or features read (0 for concat and input).
    groups : int
        Conv groups (1 otherwise).
    kernel_size : tuple of int
        Spatial kernel size (``()`` for linear, concat and input).
    row_scale : ndarray or None
        Per-unit scale of this layer's output, folded into its incoming
        connection magnitudes: ``|gamma| / sqrt(var + eps)`` of a batch norm
        applied directly to it, ``|gamma|`` of a layer or group norm over its
        channels, a fixed per-channel multiplier.
    col_scale : ndarray or None
        Per-input-column scale, folded likewise: ``|gamma|`` of a layer or
        group norm (or a fixed multiplier) between the producers and this
        layer that could not be folded into one producer's rows (a
        normalised residual stream).
    branches : ndarray of int or None
        Ground-truth branch label of each unit, where the architecture has one.
    branch_names : list of str or None
        A name for each branch label: for a concatenation, the layer each input
        comes from, with its unit range (``cv1[0:16]``) or a count (``cv1#2``)
        where one layer gives several inputs (YOLOv8's C2f, SPP's pools).
    branch_source : str or None
        Where the labels came from: ``"concat"`` (which input of the
        concatenation), ``"consumer_groups"`` (which group of a grouped consumer
        reads the unit), ``"split"`` (which part of a channel split the unit
        goes to), ``"heads"`` (the attention head of a q, k or v unit) or
        ``"groups"`` (the layer's own conv groups).
    members : list of (str, ndarray)
        For a concatenation, the layers whose units it holds (a lineage term each).
    in_concat : bool
        True when the layer's output is part of a concatenation.
    """

    name: str
    kind: str
    n_units: int
    in_units: int = 0
    groups: int = 1
    kernel_size: tuple[int, ...] = ()
    row_scale: np.ndarray | None = None
    branches: np.ndarray | None = None
    branch_names: list[str] | None = None
    branch_source: str | None = None
    members: list[tuple[str, np.ndarray]] = field(default_factory=list)
    in_concat: bool = False
    col_scale: np.ndarray | None = None

    def __repr__(self) -> str:
        # A summary, not the fields: the branch labels and scales are arrays of one entry per unit.
        shape = {"conv": "conv" + ("" if not self.kernel_size else " " + "x".join(map(str, self.kernel_size))),
                 "linear": "linear"}.get(self.kind, self.kind)
        parts = [repr(self.name), shape, (f"{self.in_units} -> " if self.in_units else "") + f"{self.n_units} units"]
        if self.groups > 1:
            parts.append(f"groups={self.groups}")
        if self.branches is not None:
            sizes = np.bincount(np.asarray(self.branches, dtype=np.int64), minlength=1)
            parts.append(f"{len(sizes)} branches ({self.branch_source}: {'/'.join(map(str, sizes[:8]))}"
                         + ("/..." if len(sizes) > 8 else "") + ")")
        if self.members:
            parts.append(f"{len(self.members)} members")
        return _short(f"Layer({', '.join(parts)})")

    @property
    def is_bottleneck(self) -> bool:
        """True for a 1x1 conv that reduces channels and feeds its consumers directly."""
        return (self.kind == "conv" and self.kernel_size == (1, 1) and self.groups == 1
                and self.n_units < self.in_units and not self.in_concat)

    @property
    def is_depthwise(self) -> bool:
        """True for a conv whose every group reads exactly one input channel."""
        return self.kind == "conv" and self.groups > 1 and self.groups == self.in_units


@dataclass
class Edge:
    """Consumer input columns that read producer units.

    ``consumer_cols[k]`` (an input channel or feature index of the consumer)
    reads unit ``producer_units[k]`` of the producer. Several columns may read
    the same unit (a linear layer after flatten reads each channel at every
    spatial position). ``via`` is ``"direct"``, or ``"attention"`` where an
    attention product sits between the two (it mixes positions, not channels).
    """

    producer: str
    consumer: str
    consumer_cols: np.ndarray
    producer_units: np.ndarray
    via: str = "direct"

    def __repr__(self) -> str:
        n_units = len(np.unique(self.producer_units))
        return _short(f"Edge({self.producer!r} -> {self.consumer!r}, {len(self.consumer_cols)} columns reading "
                      f"{n_units} units, {self.via})")


@dataclass
class ChannelGraph:
    """The layers of a network and which reads which, channel by channel.

    Attributes
    ----------
    layers : dict of str to Layer
        In execution order (the input first).
    edges : list of Edge
    modules : dict of str to nn.Module
        The conv and linear modules by layer name (weights are read from here;
        a slice of a fused attention projection is a small view module).
    notes : list of str
        Parts of the network the trace could not map onto channels (attention
        scores, weighted layers that read only constants, normalisation scales
        that could not be folded), one line each.
    """

    layers: dict[str, Layer]
    edges: list[Edge]
    modules: dict[str, nn.Module]
    notes: list[str] = field(default_factory=list)

    def __repr__(self) -> str:
        # A notebook-sized summary (the fields of a traced GoogLeNet print as 680,000 characters).
        kinds: dict[str, int] = {}
        for layer in self.layers.values():
            if layer.kind != INPUT:
                kinds[layer.kind] = kinds.get(layer.kind, 0) + 1
        counts = ", ".join(f"{n} {kind}" for kind, n in kinds.items())
        branched = sum(layer.branches is not None for layer in self.layers.values())
        return _short(f"ChannelGraph({sum(kinds.values())} layers ({counts}), {len(self.producer_names())} producers, "
                      f"{branched} with branches, {len(self.edges)} edges, {len(self.notes)} notes)")

    def consumers(self, name: str) -> list[str]:
        """Names of the layers that read ``name``, in execution order, without repeats."""
        seen = dict.fromkeys(e.consumer for e in self.edges if e.producer == name)
        return list(seen)

    def producers(self, name: str) -> list[str]:
        """Names of the layers that ``name`` reads (concatenations included)."""
        return list(dict.fromkeys(e.producer for e in self.edges if e.consumer == name))

    def edges_between(self, producer: str, consumer: str) -> list[Edge]:
        """The edges from ``producer`` to ``consumer``."""
        return [e for e in self.edges if e.producer == producer and e.consumer == consumer]

    def producer_names(self) -> list[str]:
        """Layers with at least one consumer (conv, linear and concat), in order."""
        has_consumer = {e.producer for e in self.edges}
        return [n for n, layer in self.layers.items() if layer.kind != INPUT and n in has_consumer]

    def weight(self, name: str) -> torch.Tensor:
        """The weight tensor of a conv or linear layer, detached, on the CPU, float32.

        A linear layer acting on the channel axis (kind ``"conv"``) gives its
        weight as a 1x1 kernel, ``(out, in, 1, 1)``; a Conv1d as a ``1 x k`` kernel.
        """
        w = cast(torch.Tensor, self.modules[name].weight).detach().to("cpu", torch.float32)
        if w.dim() == 2 and self.layers[name].kind == "conv":
            w = w[:, :, None, None]
        elif w.dim() == 3:  # a Conv1d: a 1 x k kernel
            w = w[:, :, None, :]
        return w


def _short(text: str, limit: int = 280) -> str:
    """``text`` cut to ``limit`` characters (a repr for a notebook cell)."""
    return text if len(text) <= limit else text[:limit - 4] + "...)"


class _RowSlice(nn.Module):
    """Rows ``start:stop`` (or the rows listed in ``rows``) of a parent module's weight, as a module.

    One of q, k and v of a fused attention projection (LeViT interleaves them head by
    head: ``rows`` then lists the part's rows in order). The parent is not a registered
    submodule; ``reset_parameters`` re-initialises a private copy of it with its own
    initialiser (for the ``reinit`` null).
    """

    _parent: nn.Module  # set with object.__setattr__: not a registered submodule

    def __init__(self, parent: nn.Module, attr: str, start: int, stop: int,
                 rows: np.ndarray | None = None) -> None:
        super().__init__()
        object.__setattr__(self, "_parent", parent)
        self._attr, self._start, self._stop = attr, int(start), int(stop)
        contiguous = rows is None or np.array_equal(rows, np.arange(rows[0], rows[0] + len(rows)))
        self._rows = None if contiguous else torch.as_tensor(np.asarray(rows), dtype=torch.long)

    @property
    def weight(self) -> torch.Tensor:
        w = getattr(self._parent, self._attr)
        return w[self._start:self._stop] if self._rows is None else w[self._rows.to(w.device)]

    def reset_parameters(self) -> None:
        parent = copy.deepcopy(self._parent)
        init = getattr(parent, "_reset_parameters", None) or cast(Callable[[], None], parent.reset_parameters)
        init()
        object.__setattr__(self, "_parent", parent)

    def extra_repr(self) -> str:
        rows = f"{self._start}:{self._stop}" if self._rows is None else f"{len(self._rows)} interleaved rows"
        return f"{type(self._parent).__name__}.{self._attr}[{rows}]"


class _TransposedConv(nn.Module):
    """A ``ConvTranspose2d`` seen as the conv it equals at stride 1: its weight as ``(out, in / groups, kh, kw)``.

    The transposed conv's weight is ``(in, out / groups, kh, kw)``; the equivalent conv swaps the two
    channel axes group by group and flips the kernel.
    """

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        object.__setattr__(self, "_module", module)

    @property
    def weight(self) -> torch.Tensor:
        module: nn.ConvTranspose2d = self.__dict__["_module"]
        w, g = module.weight, int(module.groups)
        cin, per_out = int(w.shape[0]), int(w.shape[1])
        w = w.reshape(g, cin // g, per_out, *w.shape[2:]).transpose(1, 2).reshape(g * per_out, cin // g, *w.shape[2:])
        return w.flip(-1, -2)

    def reset_parameters(self) -> None:
        module: nn.ConvTranspose2d = copy.deepcopy(self.__dict__["_module"])
        module.reset_parameters()
        object.__setattr__(self, "_module", module)

    def extra_repr(self) -> str:
        return f"{type(self.__dict__['_module']).__name__} as a conv"


class _ParamView(nn.Module):
    """A parameter used as the weight of a functional conv or linear (``F.linear(x, self.w)``), as a module.

    The owner is not a registered submodule; the view has no ``reset_parameters`` (the owner's initialiser
    is not known), so the ``reinit`` null refuses it with its usual message.
    """

    def __init__(self, owner: nn.Module, attr: str) -> None:
        super().__init__()
        object.__setattr__(self, "_owner", owner)
        self._attr = attr

    @property
    def weight(self) -> torch.Tensor:
        return getattr(self._owner, self._attr)

    def extra_repr(self) -> str:
        return f"{type(self._owner).__name__}.{self._attr}"
