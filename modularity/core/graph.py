"""Trace a CNN with torch.fx into a channel-level graph of its conv and linear layers.

Every conv (groups and depthwise included) and linear layer is a *layer* whose
units are its output channels or features. Every channel concatenation is a
layer too (named by the module that performs it, e.g. ``inception3a``) whose
units are the concatenated channels, labelled by the input they came from.
An *edge* says which input channels of a consumer read which units of a
producer; it is found by following each channel back through channel-preserving
operations (activations, normalisation, pooling, dropout, padding, flatten),
concatenations and residual additions. A residual stream is read from every
layer that writes into it, so its consumers are the "real" consumers of each
of those layers.

Channel axis
------------
The tracer follows *which tensor axis holds the channels*, so channels-last
blocks and transformers trace too: ``permute``, ``transpose``, ``view`` /
``reshape`` / ``flatten`` / ``unflatten``, ``squeeze``, indexing, ``roll`` and
the like are followed exactly, whatever they do to the positions, by applying
the operation itself to a tensor of channel indices. A reshape that splits the
channel axis, a transpose and a reshape that merges it again (ShuffleNet's
channel shuffle) is therefore a fixed permutation of the channels, mapped
exactly; a flatten of channels and positions together makes a linear layer
read each channel at every position.

- ``nn.Linear`` on the channel axis of a feature map or a sequence (ConvNeXt,
  ViT, Swin, MaxViT) is a 1x1 conv for every purpose here (kind ``"conv"``,
  kernel ``(1, 1)``); on an ``N x features`` input it stays a linear layer.
- Batch norm directly after a layer folds into it as a row scale
  ``|gamma| / sqrt(var + eps)``. Layer norm and group norm over the channels
  keep each channel in place, like batch norm: their affine weight is a
  per-channel scale, folded as ``|gamma|`` into the layer that wrote the
  normalised value (through layout-only operations, e.g. ConvNeXt's
  ``dwconv -> permute -> LayerNorm``), or else into the columns of the layers
  that read it (pre-norm transformers: ``LayerNorm -> q, k, v``). What cannot be
  folded: the normalisation itself is data-dependent (the division by the
  standard deviation of each position's channels is one factor shared by all
  channels of that position, so it leaves relative magnitudes alone), and the
  centring subtracts the mean over channels, a fixed rank-one mixing that
  every channel shares equally; both are ignored, like the non-linearities.
  A fixed per-channel multiplier (ConvNeXt's ``layer_scale``) folds the same way.
- A channel split (``chunk`` / ``split``) gives the split layer's units branch
  labels like a concatenation in reverse: which part each unit goes to
  (ShuffleNetV2's ``x1, x2 = x.chunk(2)``), where every part is read.

- Products of two channel streams (gMLP's ``u * v``, GRN's ``x * N(x)``) make each
  channel read both; a gate broadcast over the channels (squeeze-excitation, one
  channel of FocalNet's gates) leaves the channels of what it gates. Reductions over
  positions keep the channels; over channels they leave a statistic that no unit
  writes (``"mixed"`` data: a layer reading only it has no producers, and is noted).
- ``F.conv1d`` / ``F.conv2d`` / ``F.linear`` with a parameter weight are layers named
  after the module owning the weight; ``Conv1d`` is a conv with a ``1 x k`` kernel,
  ``ConvTranspose2d`` the conv it equals. A linear over positions (token mixing) is
  not a channel layer: channels pass through it, and the notes say so.

Attention
---------
``nn.MultiheadAttention`` (ViT) and torchvision's ``shifted_window_attention``
(Swin) are mapped on the channel axis: the fused q/k/v projection becomes three
layers ``<attention>.q``, ``.k`` and ``.v`` (1x1 convs over the tokens, views of
the fused weight), each unit labelled by its attention head (``branch_source``
``"heads"``), and the output projection reads ``v`` head by head (edge ``via``
``"attention"``), so ``v``'s downstream profile measures head specialisation the
way an Inception block's measures branch specialisation. The attention product
``softmax(q k^T) v`` mixes positions with data-dependent weights and keeps each
channel of ``v`` in place; ``q`` and ``k`` are read only by the scores
``q k^T``, which contract the channels away, so they are consumers here, never
producers. ``F.scaled_dot_product_attention``, ``F.multi_head_attention_forward``
and products written out (``matmul``, ``einsum``: timm, Hugging Face, MaxViT) are
followed by the letters of their axes (:mod:`modularity.core.attention_trace`): a
product that contracts the channels of both operands gives attention scores
without channels; one that contracts positions keeps the channels of the other
operand. The heads are the channel axes such a product keeps apart; every layer
whose units serve as q, k or v is labelled by head, and a fused projection (timm's
``qkv``) is split into ``<layer>.q``, ``.k``, ``.v``
(:mod:`modularity.core.attention_heads`). What could not be mapped is listed in
:attr:`ChannelGraph.notes`.

Tracing
-------
:func:`modularity.core.fx_capture.capture` traces with torch.fx, and where that
fails on shape logic (``len(x)``, shape asserts, branches on sizes) again with
proxies that carry the dummy input's values.

Anything the tracer does not understand raises :class:`ModularityError` naming
the fx node, rather than producing a silently wrong graph.
"""

from __future__ import annotations

import functools
import inspect
import operator
from collections.abc import Callable, Sequence
from typing import Any, NoReturn, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import fx, nn

from ..errors import ModularityError
from . import tracing_ops as ops
from .attention_heads import HeadRole, label_heads
from .attention_trace import AttentionMixin
from .channel_graph import INPUT, ChannelGraph, Edge, Layer, _ParamView, _TransposedConv
from .fx_capture import capture
from .lineage import (
    Lineage,
    Traced,
    Value,
    constant,
    data_of,
    describe,
    merge_terms,
    same_scale,
    same_terms,
    shape_of,
    tensor_shape,
)

__all__ = ["ChannelGraph", "Edge", "Layer", "trace"]


class _Builder(AttentionMixin):
    """Walks the shape-annotated fx graph once, computing each value's lineage."""

    def __init__(self, gm: fx.GraphModule, root: nn.Module | None = None) -> None:
        self.gm = gm
        self.mods = dict(gm.named_modules())
        # The traced network's own modules: a graph module holds only bare copies of those whose parameters
        # it reads (``get_attr``), and a functional layer's weight belongs to the real one.
        self.owners = dict((root if root is not None else gm).named_modules())
        self.val: dict[fx.Node, Value] = {}
        self.layers: dict[str, Layer] = {}
        self.edges: list[Edge] = []
        self.modules: dict[str, nn.Module] = {}
        self.consumer_of: dict[fx.Node, str] = {}
        self.chain_src: dict[fx.Node, fx.Node] = {}
        self.splits: list[list[Lineage]] = []
        self.notes: list[str] = []
        self.roles: list[HeadRole] = []
        self._consts: dict[fx.Node, torch.Tensor | None] = {}
        self.concat_names = self._name_concats()

    def _name_concats(self) -> dict[fx.Node, str]:
        """Name each concatenation by the module performing it; the last one in a module gets its bare path.

        A block whose output is a concatenation (``inception3a``) gets the
        block's name even when it concatenates inside too (Inception-v3's
        ``Mixed_7b`` concatenates its 3x3 sub-branches first); the inner ones
        get ``<path>.<fx node name>``.
        """
        cats = [n for n in self.gm.graph.nodes
                if (n.op == "call_function" and n.target in ops.CAT_OPS)
                or (n.op == "call_method" and n.target == "cat")]
        last: dict[str, fx.Node] = {}
        for n in cats:
            last[n.meta.get("onnx_name") or n.meta.get("module_path") or n.name] = n
        names = {}
        for n in cats:
            path = n.meta.get("onnx_name") or n.meta.get("module_path") or ""
            names[n] = path if path and last.get(path) is n else (f"{path}.{n.name}" if path else n.name)
        return names

    # -- helpers -----------------------------------------------------------
    def _tensor_args(self, node: fx.Node) -> list[fx.Node]:
        args = list(node.args) + list(node.kwargs.values())
        flat: list = []
        for a in args:
            flat.extend(a if isinstance(a, (list, tuple)) else [a])
        return [a for a in flat if isinstance(a, fx.Node) and isinstance(self.val.get(a), Traced)]

    def _fail(self, node: fx.Node, why: str) -> NoReturn:
        raise ModularityError(f"cannot trace channels through {describe(node)}: {why}")

    def _tv(self, x: fx.Node) -> Traced:
        """The traced value of tensor node ``x`` (visited before any node that reads it)."""
        return cast(Traced, self.val[x])

    def _note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def _attr(self, node) -> torch.Tensor | None:
        """The tensor behind a ``get_attr`` node (None for anything else)."""
        if not isinstance(node, fx.Node) or node.op != "get_attr":
            return None
        try:
            value = functools.reduce(getattr, str(node.target).split("."), self.gm)
        except AttributeError:
            return None
        return value if isinstance(value, torch.Tensor) else None

    def _along(self, node: fx.Node, x: fx.Node, axis: int, what: str) -> tuple[Lineage, np.ndarray | None]:
        """The terms of ``x`` as index arrays along tensor axis ``axis`` (what a layer reading that axis sees)."""
        v, s = self._tv(x), tensor_shape(x)
        axis %= len(s)
        if v.axes == (axis,):
            return v.terms, v.scale
        if v.axes == ():
            n = s[axis]
            terms = [(src, np.full(n, int(i))) for src, i in v.terms]
            return terms, (None if v.scale is None else np.full(n, float(v.scale)))
        if axis in v.axes:
            self._fail(node, f"{what} reads axis {axis}, but the channels are spread over axes "
                             f"{list(v.axes)} of {list(s)} (a reshape split them)")
        self._fail(node, f"{what} mixes axis {axis} of {list(s)}, which holds positions, not channels "
                         f"(the channels are on axis {', '.join(map(str, v.axes))})")

    # -- main loop ---------------------------------------------------------
    def run(self) -> ChannelGraph:
        for node in self.gm.graph.nodes:
            self.val[node] = self._inherit(node, self._visit(node))
        self._fold_batchnorm()
        label_heads(self.layers, self.edges, self.modules, self.roles, self.notes)
        self._label_branches()
        return ChannelGraph(self.layers, self.edges, self.modules, self.notes)

    def _inherit(self, node: fx.Node, value, part: bool = False):
        """Carry ``att`` (sources that went through attention) from the inputs to a value that still holds them."""
        if isinstance(value, tuple):
            return tuple(self._inherit(node, v, True) for v in value)
        if not isinstance(value, Traced) or not value.terms:
            return value
        shape = shape_of(node)
        # One of several tensors a node returns has no shape recorded on the node: not checked.
        if not part:
            ok = shape is not None and all(a < len(shape) for a in value.axes)
            expected = tuple(shape[a] for a in value.axes) if ok and shape is not None else None
            if not ok or any(np.shape(idx) != expected for _, idx in value.terms):
                # An operation this tracer maps wrongly: stop here rather than build a wrong graph.
                self._fail(node, "internal error: channel indices of shapes "
                                 f"{[np.shape(i) for _, i in value.terms]} for channel axes {list(value.axes)} "
                                 f"of {list(shape or [])}")
        att = set(value.att)
        for a in node.all_input_nodes:
            v = self.val.get(a)
            for item in (v if isinstance(v, tuple) else (v,)):
                if isinstance(item, Traced):
                    att |= item.att
        att &= {s for s, _ in value.terms}
        if att != value.att:
            value = Traced(value.axes, value.terms, value.scale, value.data, frozenset(att))
        return value

    def _visit(self, node: fx.Node):
        shape = shape_of(node)
        if node.op == "placeholder":
            if shape is None:
                return None
            c = int(shape[1]) if len(shape) >= 2 else 1
            name = INPUT if INPUT not in self.layers else node.name
            self.layers[name] = Layer(name=name, kind=INPUT, n_units=c)
            if len(shape) >= 2:
                return Traced((1,), [(name, np.arange(c))])
            return Traced((), [(name, np.array(0))])
        if node.op == "get_attr":
            return constant() if shape is not None else None
        if node.op == "output":
            return None
        if node.op == "call_module" and isinstance(mha := self.mods[str(node.target)], nn.MultiheadAttention):
            return self._mha(node, mha)
        if node.op == "call_function" and node.target is F.multi_head_attention_forward:
            return self._mha_functional(node)
        if node.op == "call_function" and node.target is operator.setitem:
            return self._setitem(node)
        if shape is None:
            # A non-tensor value (a size, a tuple of tensors, ...).
            if self._is_split(node):
                x = cast(fx.Node, node.args[0])
                if isinstance(self.val.get(x), Traced):
                    return self._relayout(node, x)
            return None
        if node.op == "call_module":
            return self._module(node, self.mods[str(node.target)], shape)
        return self._function(node, shape)

    def _is_split(self, node: fx.Node) -> bool:
        return ((node.op == "call_function" and node.target in ops.SPLIT_FUNCTIONS)
                or (node.op == "call_method" and node.target in ops.SPLIT_METHODS))

    def _module(self, node: fx.Node, mod: nn.Module, shape):
        # (no positional input: None, which val holds no value for, so the readers below refuse it)
        x = cast(fx.Node, node.args[0] if node.args else None)
        v = self.val.get(x)
        if isinstance(mod, (nn.Conv1d, nn.Conv2d)):
            return self._conv_layer(node, str(node.target), mod, x, mod.weight, int(mod.groups))
        if isinstance(mod, nn.Linear):
            return self._linear_layer(node, str(node.target), mod, x, mod.weight)
        if isinstance(mod, nn.ConvTranspose2d):
            # A learned upsampling: a conv layer whose weight is read as the conv it equals.
            view = _TransposedConv(mod)
            return self._conv_layer(node, str(node.target), view, x, view.weight, int(mod.groups))
        if isinstance(mod, nn.Conv3d):
            self._fail(node, f"{type(mod).__name__} is not supported (only Conv1d, Conv2d and Linear)")
        if isinstance(v, Traced) and v.const:
            return constant(v.data)
        if isinstance(mod, nn.Fold):
            return self._fold(node, x, shape)
        if isinstance(mod, ops.LAYOUT_MODULES):
            return self._relayout(node, x)
        if isinstance(mod, ops.NORM_MODULES):
            if not isinstance(v, Traced):
                self._fail(node, "its input is not a traced tensor")
            w = mod.weight if getattr(mod, "weight", None) is not None else None
            if isinstance(mod, (nn.LayerNorm, nn.RMSNorm)):
                axis = -1 if len(mod.normalized_shape) == 1 else None
            else:
                axis = 1
            return self._norm(node, x, shape, w, axis)
        if isinstance(mod, ops.PASS_MODULES):
            if not isinstance(v, Traced):
                self._fail(node, "its input is not a traced tensor")
            if isinstance(mod, ops.IDENTITY_MODULES):
                self.chain_src[node] = x  # the identity in eval: a norm after it folds into the layer before
            return self._pass(node, x, shape, spatial=isinstance(mod, ops.SPATIAL_MODULES))
        if not any(True for _ in mod.parameters()) and isinstance(v, Traced) and shape_of(x) == shape:
            self._fail(node, f"unknown module type {type(mod).__name__}; "
                             "it has no weights but may mix channels")
        self._fail(node, f"unknown module type {type(mod).__name__}")

    def _new_layer(self, node: fx.Node, name: str, layer: Layer, module: nn.Module, x: fx.Node, axis: int,
                   via: str = "direct") -> None:
        """Register a weighted layer reading tensor axis ``axis`` of ``x``.

        A module called more than once (CoaT's convolutional position encoding, shared by its serial blocks)
        is one layer that reads its inputs and writes its outputs at every call.
        """
        terms, scale = self._along(node, x, axis, f"{type(module).__name__} '{name}'")
        col_scale = None if scale is None else np.asarray(scale, dtype=np.float64)
        if name in self.layers:
            old = self.layers[name]
            if (old.kind, old.n_units, old.in_units, old.groups, old.kernel_size) != (
                    layer.kind, layer.n_units, layer.in_units, layer.groups, layer.kernel_size):
                self._fail(node, f"module '{name}' is called more than once, on inputs of different layouts")
            if not same_scale(old.col_scale, col_scale):
                self._note(f"{name}: a shared layer whose calls read inputs scaled differently; its column scale "
                           "is the first call's")
            self._note(f"{name}: called more than once (a shared layer); one layer reading its inputs and "
                       "writing its outputs at every call")
        else:
            layer.col_scale = col_scale
            self.layers[name] = layer
            self.modules[name] = module
        att = self._tv(x).att
        for src, idx in terms:
            cols = np.flatnonzero(idx >= 0)
            if len(cols):
                self.edges.append(Edge(src, name, cols, idx[cols], "attention" if src in att else via))

    def _input_value(self, node: fx.Node, x) -> Traced:
        v = self.val.get(x)
        if not isinstance(v, Traced):
            self._fail(node, "its input is not a traced tensor")
        return v

    def _unmapped_input(self, node: fx.Node, name: str, module: nn.Module, v: Traced) -> Traced | None:
        """What a weighted layer reading no unit's channels gives; None when it reads channels (or mixed data)."""
        if not v.const:
            return None
        kind = type(module).__name__
        if v.data == "mixed":
            self._note(f"{name}: a {kind} reading channels that no single unit writes (statistics over channels, "
                       "or channels mixed with data-dependent weights); a layer without producers here")
            return None
        if v.data == "scores":
            self._note(f"{name}: a {kind} applied to attention weights (e.g. mixing heads), not to channels; "
                       "not a layer here")
            return constant("scores")
        self._note(f"{name}: a {kind} that reads only constants (e.g. a position-bias table), "
                   "not channels; not a layer here")
        return constant()

    def _conv_layer(self, node: fx.Node, name: str, module: nn.Module, x, w: torch.Tensor, groups: int) -> Traced:
        """A Conv1d or Conv2d (module or functional with a parameter weight) reading axis 1 of ``x``."""
        v = self._input_value(node, x)
        unmapped = self._unmapped_input(node, name, module, v)
        if unmapped is not None:
            return unmapped
        if len(v.axes) > 1 and 1 in v.axes and groups == tensor_shape(x)[1] == int(w.shape[0]):
            # A depthwise conv applied head by head, the heads folded into the batch axis (MViTv2's pooling of
            # q, k and v): the same filter for every head, so no layer of its own; each channel stays in place.
            self._note(f"{name}: a depthwise {type(module).__name__} shared by the heads folded into the batch "
                       "axis; channels pass through it, and it is not a layer here")
            return Traced(v.axes, v.terms, v.scale, v.data, v.att)
        if len(v.axes) > 1 and 1 in v.axes and all(int(k) == 1 for k in w.shape[2:]):
            return self._stream_mix(node, name, module, v, 1, shape=shape_of(node))
        # A Conv1d over a sequence is a Conv2d with a 1 x k kernel over a 1-pixel-high map.
        kernel = tuple(int(k) for k in w.shape[2:])
        kernel = (1, *kernel) if len(kernel) == 1 else kernel
        layer = Layer(name, "conv", int(w.shape[0]), int(w.shape[1]) * groups, groups, kernel)
        self._new_layer(node, name, layer, module, x, 1)
        self.consumer_of[node] = name
        return Traced((1,), [(name, np.arange(layer.n_units))])

    def _linear_layer(self, node: fx.Node, name: str, module: nn.Module, x, w: torch.Tensor) -> Traced:
        """A linear layer (module or functional with a parameter weight) reading the last axis of ``x``."""
        v = self._input_value(node, x)
        unmapped = self._unmapped_input(node, name, module, v)
        if unmapped is not None:
            return unmapped
        s_in = tensor_shape(x)
        last = len(s_in) - 1
        if len(s_in) > 2 and v.axes and last not in v.axes:
            # The last axis holds positions: a token-mixing linear (MLP-Mixer, gMLP, ResMLP) that treats every
            # channel alike. Its weights mix positions, so it is not a channel layer; the channels pass through.
            self._note(f"{name}: a {type(module).__name__} over positions (token mixing), applied to every channel "
                       "alike; channels pass through it, and its weights are not a layer here")
            return Traced(v.axes, v.terms, v.scale, v.data, v.att)
        if len(v.axes) > 1 and last in v.axes:
            return self._stream_mix(node, name, module, v, last, shape=shape_of(node))
        if len(s_in) > 2:
            # A linear layer on the channel axis of a feature map or a sequence: a 1x1 conv.
            layer = Layer(name, "conv", int(w.shape[0]), int(w.shape[1]), 1, (1, 1))
            out_axis = last
        else:
            layer = Layer(name, "linear", int(w.shape[0]), int(w.shape[1]))
            out_axis = 1
        self._new_layer(node, name, layer, module, x, -1)
        self.consumer_of[node] = name
        return Traced((out_axis,), [(name, np.arange(layer.n_units))])

    def _stream_mix(self, node: fx.Node, name: str, module: nn.Module, v: Traced, axis: int, shape) -> Traced:
        """A 1x1 conv or linear over an axis that holds only part of the channel identity.

        CoaT stacks the class tokens of its three scales on an axis of their own and mixes them with a 3 -> 1
        Conv1d: the same weights for every channel, so it is not a channel layer; each channel of the result
        reads that channel of every stacked tensor, as a sum does.
        """
        j = v.axes.index(axis)
        if int(np.shape(v.terms[0][1])[j]) > 256:
            self._fail(node, f"{type(module).__name__} '{name}' reads axis {axis}, but the channels are spread "
                             f"over axes {list(v.axes)} (a reshape split them)")
        self._note(f"{name}: a {type(module).__name__} mixing tensors stacked along an axis of their own, with "
                   "the same weights for every channel; each channel reads all of them; not a layer here")
        return self._union_along(node, v, [j], {axis}, True, shape)

    def _parameter(self, node: fx.Node, w) -> tuple[str, nn.Module] | None:
        """The layer name and weight-holding module of a functional conv or linear whose weight is a parameter.

        The weight may be read through dtype or memory-layout conversions (``w.to(x.dtype)``). A weight that is
        a buffer or computed from parameters gives None.
        """
        while isinstance(w, fx.Node) and w.op == "call_method" and w.target in ops.IDENTITY_METHODS | {"type_as"}:
            w = w.args[0]
        if not isinstance(w, fx.Node) or w.op != "get_attr":
            return None
        path, _, attr = str(w.target).rpartition(".")
        owner = self.owners.get(path, self.mods.get(path))
        if owner is None or not isinstance(getattr(owner, attr, None), nn.Parameter):
            return None
        if attr == "weight":
            return path or attr, owner
        return f"{path}.{attr}" if path else attr, _ParamView(owner, attr)

    def _functional_layer(self, node: fx.Node, shape) -> Traced:
        """``F.linear`` / ``F.conv1d`` / ``F.conv2d`` called in a forward: a layer where the weight is a parameter."""
        t = cast(Callable[..., Any], node.target)  # a call_function node
        conv = ops.CONV_FUNCTIONS.get(t)
        try:
            sig = inspect.signature(t)
            bound = sig.bind(*node.args, **node.kwargs).arguments
        except (TypeError, ValueError):
            names = ["input", "weight", "bias", "stride", "padding", "dilation", "groups"]
            bound = dict(zip(names, node.args)) | dict(node.kwargs)
        x, w = cast(fx.Node, bound.get("input")), bound.get("weight")
        groups = bound.get("groups", 1)
        groups = groups.meta.get("value") if isinstance(groups, fx.Node) else groups
        found = self._parameter(node, w)
        what = f"F.{t.__name__}"
        v = self._input_value(node, x)
        if v.const and found is None:
            return constant(v.data)  # computed from constants only (a position-bias table)
        if found is None:
            value = self._const_value(w)
            s_in = tensor_shape(x)
            if not conv and v.axes and len(s_in) - 1 not in v.axes:
                return Traced(v.axes, v.terms, v.scale, v.data, v.att)  # a fixed transform of positions (a DCT)
            if conv and value is not None and isinstance(groups, int) and value.shape[1] == 1 \
                    and groups == value.shape[0] == tensor_shape(x)[1]:
                # A fixed filter applied to each channel alone (a blur before subsampling): channels stay in place.
                return self._pass(node, x, shape)
            self._fail(node, f"a {what} whose weight is not a parameter (a buffer, or computed in forward) mixes "
                             "channels with weights that belong to no layer")
        name, module = found
        wt = cast(torch.Tensor, module.weight)
        if conv:
            if not isinstance(groups, int):
                self._fail(node, f"the groups of {what} are not a fixed number")
            return self._conv_layer(node, name, module, x, wt, groups)
        return self._linear_layer(node, name, module, x, wt)

    def _pass(self, node: fx.Node, x: fx.Node, shape, spatial: bool = False) -> Traced:
        v = self._tv(x)
        if v.const:
            return v
        if not v.axes:
            return v
        s_in = tensor_shape(x)
        if len(shape) <= max(v.axes) or any(shape[a] != s_in[a] for a in v.axes):
            c_in = int(np.prod([s_in[a] for a in v.axes]))
            c_out = int(np.prod([shape[a] for a in v.axes if a < len(shape)]))
            self._fail(node, f"it changes the channel count from {c_in} to {c_out}")
        if spatial and len(s_in) >= 3 and set(v.axes) & set(range(2, len(s_in))):
            self._fail(node, f"it pools or resizes the axes after the first two of {list(s_in)}, which hold "
                             f"channels (axis {', '.join(map(str, v.axes))})")
        return v

    # -- layout operations -------------------------------------------------
    def _positions(self, v: Traced, s_in: tuple[int, ...]) -> tuple[torch.Tensor, np.ndarray]:
        """A tensor of ``s_in`` holding, at every element, an id of its channel (0: none), and each id's entry.

        Entries of ``v``'s index arrays with the same lineage (one channel copied to several positions, as
        MobileViT's unfolding of patches into the batch-and-channel axis does) get the same id, so a later
        reshape that puts the copies on an axis of their own sees positions there, not channels. ``reps[i]``
        is a flat index into ``v``'s arrays where id ``i + 1`` comes from.
        """
        lin_shape = [s_in[a] for a in v.axes]
        n = int(np.prod(lin_shape, dtype=np.int64))
        if v.terms:
            keys = np.stack([idx.reshape(-1).astype(np.float64) for _, idx in v.terms]
                            + ([v.scale.reshape(-1).astype(np.float64)] if v.scale is not None else []))
            _, reps, inverse = np.unique(keys.T, axis=0, return_index=True, return_inverse=True)
            ids = inverse.reshape(-1) + 1
            ids[np.all(keys[:len(v.terms)] < 0, axis=0)] = 0
        else:
            ids, reps = np.ones(n, dtype=np.int64), np.zeros(1, dtype=np.int64)
        t = torch.as_tensor(ids, dtype=torch.int32).reshape(lin_shape)
        view = [s_in[a] if a in v.axes else 1 for a in range(len(s_in))]
        return t.reshape(view).expand(*s_in).contiguous(), reps

    def _from_positions(self, v: Traced, r: torch.Tensor, reps: np.ndarray) -> Traced:
        """The value whose channel-id tensor is ``r`` (0 where an element holds no channel, e.g. padding)."""
        # An axis holds channels where some line along it has two different (positive) indices. Each axis
        # found not to is reduced away at once (largest index, and smallest positive one), so the later
        # axes are tested on ever smaller tensors: a window partition's 6-axis tensors of 10^5 to 10^6
        # elements (MaxViT, Swin) made one full-size pass per axis and per reduction the tracer's main cost.
        if r.numel() == 0:
            return Traced((), [], None, v.data, v.att)  # an empty part of a split holds no channel
        big = torch.iinfo(r.dtype).max
        hi_t, lo_t = r, torch.where(r > 0, r, big)
        axes = []
        for k in range(r.dim()):
            if r.shape[k] <= 1:
                continue
            hi, lo = hi_t.amax(dim=k, keepdim=True), lo_t.amin(dim=k, keepdim=True)
            if bool(((hi > 0) & (lo < hi)).any()):
                axes.append(k)
            else:
                hi_t, lo_t = hi, lo
        red = hi_t.reshape([r.shape[k] for k in axes]).numpy().astype(np.int64)
        pos = np.where(red > 0, reps[np.maximum(red - 1, 0)], -1)  # -1: no channel
        terms = []
        for src, idx in v.terms:
            flat = idx.reshape(-1)
            new = np.where(pos >= 0, flat[np.maximum(pos, 0)], -1) if flat.size else np.full(pos.shape, -1)
            if np.any(new >= 0):
                terms.append((src, new))
        scale = None
        if v.scale is not None:
            scale = np.where(pos >= 0, v.scale.reshape(-1)[np.maximum(pos, 0)], 1.0)
        return Traced(tuple(axes), terms, scale, v.data, v.att)

    def _substitute(self, node: fx.Node, x: fx.Node, p: torch.Tensor):
        shape_only = node.op == "call_method" and node.target in ops.AS_METHODS

        def sub(a):
            if isinstance(a, fx.Node):
                if a is x:
                    return p
                if "value" in a.meta:
                    return a.meta["value"]
                if shape_only and (s := shape_of(a)) is not None:
                    return torch.empty(s, dtype=p.dtype)  # only its shape is read
                fixed = self._const_value(a)
                if fixed is not None and not fixed.is_floating_point():
                    return fixed  # fixed indices (a buffer of positions), applied to the channel indices as well
                self._fail(node, f"its argument '{a.name}' is a tensor or was not recorded; only fixed "
                                 "sizes and indices are supported")
            if isinstance(a, (list, tuple)):
                return type(a)(sub(e) for e in a)
            if isinstance(a, dict):
                return {k: sub(e) for k, e in a.items()}
            if isinstance(a, slice):
                return slice(sub(a.start), sub(a.stop), sub(a.step))
            return a

        return sub(node.args), sub(node.kwargs)

    def _relayout(self, node: fx.Node, x: fx.Node, fn=None):
        """Follow a pure rearrangement of elements by applying it to a tensor of channel indices."""
        v = self.val.get(x)
        if not isinstance(v, Traced):
            self._fail(node, "its input is not a traced tensor")
        s_in = tensor_shape(x)
        p, reps = self._positions(v, s_in)
        if fn is not None:
            out = fn(p)
        else:
            out = None
            # Integer indices first; operations defined for floating point only (unfold) on float64 indices,
            # exact for any channel count.
            for dtype in (torch.int32, torch.float64):
                args, kwargs = self._substitute(node, x, p.to(dtype))
                if node.target is F.pad:
                    # Padded elements hold no channel, whatever value fills them (LiteMLA pads v with ones).
                    args = args[:3]
                    kwargs = {k: a for k, a in kwargs.items() if k != "value"}
                try:
                    if node.op == "call_method":
                        out = getattr(args[0], str(node.target))(*args[1:], **kwargs)
                    elif node.op == "call_module":
                        out = self.mods[str(node.target)](*args, **kwargs)
                    else:
                        out = cast(Callable[..., Any], node.target)(*args, **kwargs)
                    break
                except Exception as exc:  # an argument the index tensor cannot take
                    error = exc
            if out is None:
                self._fail(node, f"replaying it on channel indices failed ({type(error).__name__}: "
                                 f"{str(error).strip().splitlines()[0] if str(error).strip() else ''})")
            out = [o.round().to(torch.int32) if o.is_floating_point() else o for o in out] \
                if isinstance(out, (tuple, list)) else (out.round().to(torch.int32) if out.is_floating_point() else out)
        if isinstance(out, (tuple, list)):
            parts = tuple(self._from_positions(v, o, reps) for o in out)
            if len(parts) > 1 and not v.const and all(p_.axes == v.axes for p_ in parts) and len(v.axes) == 1:
                # A split along the channel axis: each part holds different channels.
                a = v.axes[0]
                if sum(o.shape[a] for o in out) == s_in[a] and any(o.shape[a] != s_in[a] for o in out):
                    self.splits.append([p_.terms for p_ in parts])
            return parts
        self.chain_src[node] = x
        return self._from_positions(v, out, reps)

    # -- functions ---------------------------------------------------------
    def _function(self, node: fx.Node, shape):
        t = node.target
        fn, meth = node.op == "call_function", node.op == "call_method"
        tensors = self._tensor_args(node)
        if fn and t is operator.getitem:
            return self._getitem(node, shape)
        if fn and t in ops.CAT_OPS or meth and t == "cat":
            return self._cat(node, shape)
        if fn and t is torch.stack:
            return self._stack(node, shape)
        if fn and t is ops.SWIN_ATTENTION and ops.SWIN_ATTENTION is not None:
            return self._swin_attention(node)
        if not tensors:
            return constant()  # a constant built inside forward
        if fn and (t in ops.CONV_FUNCTIONS or t is F.linear):
            return self._functional_layer(node, shape)
        if all(self._tv(a).const for a in tensors):
            # computed from constants only (position biases, masks, tokens), or from attention weights or
            # statistics over channels
            return constant(data_of(self._tv(a) for a in tensors))
        if fn and t is F.scaled_dot_product_attention:
            return self._sdpa(node, shape)
        if fn and t in ops.ADD_OPS or meth and t in ("add", "add_", "sub", "sub_"):
            return self._add(node, tensors, shape)
        if fn and t in ops.MUL_OPS or meth and t in ("mul", "mul_", "div", "div_"):
            return self._mul(node, tensors, shape)
        if fn and t is torch.addcmul or meth and t in ("addcmul", "addcmul_"):
            return self._addcmul(node, shape)
        if fn and t in ops.ELEMENTWISE_OPS or meth and t in ("maximum", "minimum", "where", "lerp"):
            return self._sum(node, [t_ for t_ in tensors if not self._tv(t_).const
                                    and not (t is torch.where and t_ is node.args[0])], shape)
        if fn and t in ops.MATMUL_OPS or meth and t in ("matmul", "bmm"):
            return self._matmul(node, shape)
        if fn and t is torch.einsum:
            return self._einsum(node, shape)
        x = next(a for a in tensors if not self._tv(a).const)
        if fn and t in ops.POW_OPS or meth and t in ("pow", "pow_"):
            if x is not node.args[0] or sum(not self._tv(a).const for a in tensors) > 1:
                self._fail(node, "a power whose exponent depends on the input")
            return self._pass(node, x, shape)
        if fn and t is ops.SWIN_PATCH_MERGING and ops.SWIN_PATCH_MERGING is not None:
            return self._relayout(node, x)
        if fn and t in ops.NORM_FUNCTIONS:
            w = node.kwargs.get("weight", node.args[2] if len(node.args) > 2 else None)
            axis: int | None
            if t is F.group_norm:
                axis = 1
            else:
                ns: Any = node.kwargs.get("normalized_shape", node.args[1] if len(node.args) > 1 else None)
                ns = ns.meta.get("value") if isinstance(ns, fx.Node) else ns
                axis = -1 if ns is not None and len(ns) == 1 else None
            return self._norm(node, x, shape, self._const_value(w), axis)
        if fn and t in ops.FOLD:
            return self._fold(node, x, shape)
        if fn and t is getattr and len(node.args) > 1 and node.args[1] in ("T", "mT", "mH", "H"):
            return self._relayout(node, x)
        if fn and t in ops.PASS_FUNCTIONS or meth and t in ops.PASS_METHODS:
            if fn and t in ops.IDENTITY_FUNCTIONS or meth and t in ops.IDENTITY_METHODS:
                self.chain_src[node] = x
            return self._pass(node, x, shape, spatial=fn and t in ops.SPATIAL_FUNCTIONS)
        if fn and t in ops.NEW_FUNCTIONS or meth and t in ops.NEW_METHODS:
            return constant()
        if fn and t in ops.LAYOUT_FUNCTIONS or meth and t in ops.LAYOUT_METHODS:
            return self._relayout(node, x)
        if (fn and t in ops.REDUCE_OPS) or (meth and t in ops.REDUCE_METHODS):
            return self._reduce(node, x, shape)
        self._fail(node, "this operation is not known to preserve channels")

    def _reduce(self, node: fx.Node, x: fx.Node, shape) -> Traced:
        """A reduction: over positions it keeps the channels; over channels it leaves a statistic no unit writes."""
        v, s_in = self._tv(x), tensor_shape(x)
        name = node.target if isinstance(node.target, str) else node.target.__name__
        # Where the reduced axes and keepdim sit: norms take their order (p) first.
        first = 2 if name in ("norm", "vector_norm") else 1
        names = ("dim", "keepdim")
        args = list(node.args[first:])
        found: dict[str, Any] = {k: node.kwargs.get(k, args[i] if len(args) > i else None) for i, k in enumerate(names)}
        dims, keep = found["dim"], bool(found["keepdim"])
        dims = dims.meta.get("value") if isinstance(dims, fx.Node) else dims
        if isinstance(dims, fx.Node):
            self._fail(node, "a reduction over axes that are not fixed")
        if dims is None:
            dims = range(len(s_in))
        dims = {int(d) % len(s_in) for d in (dims if isinstance(dims, (list, tuple, range)) else [dims])}
        reduced = [j for j, a in enumerate(v.axes) if a in dims]
        if reduced and len(reduced) < len(v.axes) and name in ("sum", "mean", "amax", "amin", "max", "min") \
                and int(np.prod([s_in[v.axes[j]] for j in reduced])) <= 256:
            # A sum over an axis that holds some of the channels, others kept (SKNet sums its paths, stacked
            # on an axis of their own): each remaining channel reads every slice, as an addition does.
            return self._union_along(node, v, reduced, dims, keep, shape)
        if dims & set(v.axes):
            if v.scale is not None:
                self._note(f"{node.meta.get('module_path') or node.name}: a statistic over channels reads a "
                           "per-channel scale (of a norm or multiplier) that is not folded")
            return constant("mixed")  # one value per position, made from all channels alike
        axes = v.axes if keep else tuple(a - sum(d < a for d in dims) for a in v.axes)
        if len(shape) <= (max(axes) if axes else -1) or [shape[a] for a in axes] != [s_in[a] for a in v.axes]:
            self._fail(node, "only reductions over spatial dimensions are supported")
        return Traced(axes, v.terms, v.scale, v.data, v.att)

    def _union_along(self, node: fx.Node, v: Traced, reduced: list[int], dims: set[int], keep: bool, shape) -> Traced:
        """The lineage of a reduction over some channel axes: every slice along them, merged."""
        kept = [j for j in range(len(v.axes)) if j not in reduced]
        terms: Lineage = []
        scales = []
        for sel in np.ndindex(*[np.shape(v.terms[0][1])[j] for j in reduced]):
            index = [slice(None)] * len(v.axes)
            for j, k in zip(reduced, sel):
                index[j] = k
            for src, idx in v.terms:
                part = idx[tuple(index)]
                if np.any(part >= 0) and not any(src == s2 and np.array_equal(part, i2) for s2, i2 in terms):
                    terms.append((src, part))
            if v.scale is not None:
                scales.append(v.scale[tuple(index)])
        axes = tuple(v.axes[j] if keep else v.axes[j] - sum(d < v.axes[j] for d in dims) for j in kept)
        scale = None
        if scales:
            if all(np.array_equal(sc, scales[0]) for sc in scales[1:]):
                scale = scales[0]
            else:
                self._note(f"{node.meta.get('module_path') or node.name}: a sum of channels scaled differently; "
                           "the scales are not folded past it")
        return Traced(axes, merge_terms(terms), scale, v.data, v.att)

    def _const_value(self, node) -> torch.Tensor | None:
        """The tensor a node computed from parameters and buffers only holds (None if it depends on the input).

        Evaluated on demand (fixed indices, per-channel multipliers, functional weights) and only for tensors of
        up to 2^22 elements: a position-bias table, not a feature map.
        """
        if not isinstance(node, fx.Node):
            return node if isinstance(node, torch.Tensor) else None
        if node in self._consts:
            return self._consts[node]
        value = None
        v = self.val.get(node)
        shape = shape_of(node)
        if node.op == "get_attr":
            value = self._attr(node)
        elif (isinstance(v, Traced) and v.const and not v.data and shape is not None
              and int(np.prod(shape, dtype=np.int64)) <= 1 << 22 and node.op.startswith("call_")):
            def arg(a):
                if isinstance(a, fx.Node):
                    if "value" in a.meta:
                        return a.meta["value"]
                    r = self._const_value(a)
                    if r is None:
                        raise LookupError
                    return r
                if isinstance(a, (list, tuple)):
                    return type(a)(arg(e) for e in a)
                if isinstance(a, dict):
                    return {k: arg(e) for k, e in a.items()}
                if isinstance(a, slice):
                    return slice(arg(a.start), arg(a.stop), arg(a.step))
                return a

            try:
                args, kwargs = arg(node.args), arg(node.kwargs)
                with torch.no_grad():
                    if node.op == "call_method":
                        value = getattr(args[0], str(node.target))(*args[1:], **kwargs)
                    elif node.op == "call_module":
                        value = self.mods[str(node.target)](*args, **kwargs)
                    else:
                        value = cast(Callable[..., Any], node.target)(*args, **kwargs)
            except Exception:  # an input-dependent argument, or an operation that cannot be replayed
                value = None
            value = value if isinstance(value, torch.Tensor) else None
        self._consts[node] = value
        return value

    def _getitem(self, node: fx.Node, shape):
        x = cast(fx.Node, node.args[0])
        src = self.val.get(x)
        idx: Any = node.args[1]
        if isinstance(src, tuple):
            return src[idx]
        if not isinstance(src, Traced):
            return None
        if src.const:
            return src
        key = idx if isinstance(idx, tuple) else (idx,)
        # Axis 0 is the batch unless a permute moved channels there (``qkv[0]`` after ``permute(2, 0, ...)``).
        if not key or not (isinstance(key[0], slice) and key[0] == slice(None) or key[0] is Ellipsis
                           or 0 in src.axes):
            self._fail(node, "indexing the batch dimension is not supported")
        return self._relayout(node, x)

    def _cat(self, node: fx.Node, shape) -> Traced:
        parts = cast(Sequence[fx.Node], node.args[0] if node.args else node.kwargs.get("tensors"))
        dim: Any = node.kwargs.get("dim", node.args[1] if len(node.args) > 1 else 0)
        d = dim % len(shape)
        vals = [self._tv(p) for p in parts]
        if all(v.const for v in vals):
            return constant(data_of(vals))
        if len(parts) == 1:
            # torch.cat([x]) is x (DenseNet's first dense layer concatenates a list of one tensor): not a
            # concatenation layer with a single branch.
            self.chain_src[node] = parts[0]
            return vals[0]
        live = [v for v in vals if not v.const]
        channel = any(d in v.axes for v in live) or (d == 1 and all(not v.axes for v in live))
        if not channel:
            return self._cat_positions(node, vals, d)
        if any(len(v.axes) > 1 for v in live):
            # Channels spread over several axes (heads x head channels) joined along one of them: a
            # rearrangement inside each head (rotary embeddings' ``cat([-x2, x1])``), not a concatenation layer.
            return self._relayout_many(node, parts, lambda ps: torch.cat(ps, d))
        terms: Lineage = []
        sizes = [tensor_shape(p)[d] for p in parts]
        offsets, branch_names, total = [], [], sum(sizes)
        scales, part_units = [], []
        start = 0
        for p, v, c in zip(parts, vals, sizes):
            p_terms: Lineage
            p_scale: np.ndarray | None
            if v.const:
                p_terms, p_scale = [], None
            else:
                p_terms, p_scale = self._along(node, p, d, "the concatenation")
            for src, idx in p_terms:
                full = np.full(total, -1)
                full[start:start + c] = idx
                terms.append((src, full))
            scales.append(np.ones(c) if p_scale is None else p_scale)
            offsets.append((start, start + c))
            branch_names.append(self._branch_name(p, node.meta.get("module_path") or ""))
            part_units.append(next((i[i >= 0] for s_, i in p_terms if s_ == self._source_of(p)), None))
            start += c
        branch_names = self._distinct_branch_names(branch_names, part_units)
        scale = np.concatenate(scales) if any(v.scale is not None for v in vals) else None
        terms = merge_terms(terms)
        sources = {s for s, _ in terms}
        for s in sources:
            self.layers[s].in_concat = True
        if sources <= {INPUT}:
            return Traced((d,), terms, scale)  # a rearrangement of the input image, not a layer
        name = self._concat_name(node)
        branches = np.concatenate([np.full(b - a, k) for k, (a, b) in enumerate(offsets)])
        self.layers[name] = Layer(name, "concat", total, branches=branches, branch_names=branch_names,
                                  branch_source="concat", members=[(s, i.copy()) for s, i in terms])
        return Traced((d,), terms + [(name, np.arange(total))], scale)

    def _cat_positions(self, node: fx.Node, vals: list[Traced], d: int) -> Traced:
        """A concatenation along an axis that holds positions (e.g. ViT's class token before the patches).

        Tensors whose channels come from different layers (CaiT's class token, updated by class-attention
        blocks, before the patch tokens) give each channel all of their sources, as a residual sum does.
        """
        live = [v for v in vals if not v.const]
        if not live:
            return constant(data_of(vals))
        first = live[0]
        if all(v.axes == first.axes and same_terms(v.terms, first.terms) and same_scale(v.scale, first.scale)
               for v in live[1:]):
            return first
        if any(v.axes != first.axes or v.size != first.size for v in live[1:]):
            self._fail(node, f"a concatenation along axis {d}, which holds positions, of tensors whose channels "
                             "lie on different axes")
        shape = shape_of(node)
        return self._sum_values(node, live, shape)

    def _source_of(self, node: fx.Node) -> str | None:
        src = self.val.get(node)
        return src.terms[-1][0] if isinstance(src, Traced) and src.terms else None

    @staticmethod
    def _distinct_branch_names(names: list[str], units: list[np.ndarray | None]) -> list[str]:
        """Tell apart branches that come from the same layer (YOLOv8's C2f concatenates both halves of one
        conv's split, and SPP concatenates one conv through several pools): add the unit range, else a count."""
        out = list(names)
        for name in set(names):
            where = [k for k, n in enumerate(names) if n == name]
            if len(where) < 2:
                continue
            ranges = []
            for k in where:
                u = units[k]
                contiguous = u is not None and len(u) and np.array_equal(u, np.arange(u.min(), u.max() + 1))
                ranges.append(f"[{int(u.min())}:{int(u.max()) + 1}]" if contiguous and u is not None else None)
            if all(ranges) and len(set(ranges)) == len(ranges):
                for k, r in zip(where, ranges):
                    out[k] = f"{name}{r}"
            else:
                for j, k in enumerate(where):
                    out[k] = f"{name}#{j}"
        return out

    def _branch_name(self, node: fx.Node, concat_path: str) -> str:
        """The layer a concat input comes from, relative to the concat's module (``branch2``).

        An input that is itself a concatenation is named by its own branches
        joined with ``+`` (``branch3x3_2a+branch3x3_2b``).
        """
        src = self.val.get(node)
        name = src.terms[-1][0] if isinstance(src, Traced) and src.terms else node.name
        inner = self.layers.get(name)
        if inner is not None and inner.kind == "concat" and inner.branch_names:
            return "+".join(inner.branch_names)
        if concat_path and name.startswith(concat_path + "."):
            return name[len(concat_path) + 1:].split(".")[0]
        return name

    def _concat_name(self, node: fx.Node) -> str:
        name = self.concat_names[node]
        if name in self.layers:  # a module that concatenates and is called more than once
            name = f"{name}.{node.name}"
        return name

    def _aligned(self, x: fx.Node, n_out: int) -> Traced:
        """``x``'s value with its axes counted in a broadcast result of ``n_out`` dimensions."""
        v = self._tv(x)
        shift = n_out - len(tensor_shape(x))
        return Traced(tuple(a + shift for a in v.axes), v.terms, v.scale) if shift else v

    def _relayout_many(self, node: fx.Node, parts: Sequence[fx.Node], fn) -> Traced:
        """Follow a rearrangement of several tensors into one (``fn`` of their channel-index tensors).

        The channels of all parts are numbered in one index space, part after part; constants hold none.
        """
        vals = [self._tv(p) for p in parts]
        total = sum(v.size for v in vals if not v.const)
        terms: Lineage = []
        scales: list[tuple[int, int, np.ndarray | None]] = []
        positions: list[torch.Tensor] = []
        all_reps: list[np.ndarray] = []
        offset = 0
        for p, v in zip(parts, vals):
            s_in = tensor_shape(p)
            if v.const:
                positions.append(torch.zeros(s_in, dtype=torch.int32))
                continue
            pos, reps = self._positions(v, s_in)
            positions.append(torch.where(pos > 0, pos + sum(len(r) for r in all_reps), 0))
            all_reps.append(reps + offset)
            for src, idx in v.terms:
                full = np.full(total, -1)
                full[offset:offset + v.size] = idx.reshape(-1)
                terms.append((src, full))
            scales.append((offset, v.size, v.scale))
            offset += v.size
        scale = None
        if any(sc is not None for _, _, sc in scales):
            scale = np.ones(total)
            for o, n, sc in scales:
                if sc is not None:
                    scale[o:o + n] = np.reshape(sc, -1)
        combined = Traced((0,), merge_terms(terms), scale, "", frozenset().union(*(v.att for v in vals)))
        return self._from_positions(combined, fn(positions), np.concatenate(all_reps))

    def _stack(self, node: fx.Node, shape) -> Traced:
        """``torch.stack``: the same channels at every index of the new axis, or channels that vary along it."""
        parts = cast(Sequence[fx.Node], node.args[0] if node.args else node.kwargs.get("tensors"))
        dim: Any = node.kwargs.get("dim", node.args[1] if len(node.args) > 1 else 0)
        d = dim % len(shape)
        vals = [self._tv(p) for p in parts]
        if all(v.const for v in vals):
            return constant(data_of(vals))
        shifted = [Traced(tuple(a + (a >= d) for a in v.axes), v.terms, v.scale) for v in vals]
        live = [v for v in shifted if not v.const]
        first = live[0]
        if all(v.axes == first.axes and same_terms(v.terms, first.terms) and same_scale(v.scale, first.scale)
               for v in live) and len(live) == len(vals):
            return first  # the new axis holds positions (copies of the same channels)
        return self._relayout_many(node, list(parts), lambda ps: torch.stack(ps, d))

    def _add(self, node: fx.Node, tensors: list[fx.Node], shape) -> Traced:
        return self._sum(node, [t for t in tensors if not self._tv(t).const], shape)

    def _sum(self, node: fx.Node, live_nodes: list[fx.Node], shape) -> Traced:
        """An elementwise sum (or maximum, selection, ...) of tensors: each channel reads all of them."""
        return self._sum_values(node, [self._aligned(t, len(shape)) for t in live_nodes], shape)

    def _sum_values(self, node: fx.Node, vals: list[Traced], shape) -> Traced:
        live = [(None, v) for v in vals if not v.const]
        if not live:
            return constant(data_of(vals))
        main = max(live, key=lambda tv: tv[1].size)[1]
        c = int(np.prod([shape[a] for a in main.axes])) if main.axes else 1
        terms: Lineage = []
        scales = []
        for _, v in live:
            if v.axes == main.axes and v.size == main.size:
                terms.extend(v.terms)
                scales.append(v.scale)
            elif not v.axes and c == 1:
                terms.extend((s, i.reshape([1] * len(main.axes))) for s, i in v.terms)
                scales.append(None if v.scale is None else np.reshape(v.scale, [1] * len(main.axes)))
            elif v.size == 1:
                continue  # a single channel broadcast over all of them
            else:
                self._fail(node, f"adding tensors of {v.size} and {c} channels")
        unique: Lineage = []
        for src, idx in terms:  # the same channels reached twice (a tensor added to a copy of itself)
            if not any(src == s2 and idx.shape == i2.shape and np.array_equal(idx, i2) for s2, i2 in unique):
                unique.append((src, idx))
        terms = unique
        scale = scales[0] if scales else None
        if any(not same_scale(s, scale) for s in scales[1:]):
            self._note(f"{node.meta.get('module_path') or node.name}: an addition of a normalised and an "
                       "unnormalised path (or of paths scaled differently); the norm's or multiplier's scale is not "
                       "folded past it")
            scale = None
        return Traced(main.axes, terms, scale)

    def _addcmul(self, node: fx.Node, shape) -> Traced:
        """``torch.addcmul(a, b, c) = a + b * c`` (GRN's ``bias + gamma * (x * N(x))``)."""
        a: Any
        b: Any
        c: Any
        a, b, c = (node.args + (None, None, None))[:3] if len(node.args) >= 3 else (
            node.kwargs.get("input"), node.kwargs.get("tensor1"), node.kwargs.get("tensor2"))
        factors = [t for t in (b, c) if isinstance(t, fx.Node) and isinstance(self.val.get(t), Traced)]
        product = self._mul(node, factors, shape)
        if not isinstance(self.val.get(a), Traced) or self._tv(a).const:
            return product
        return self._sum_values(node, [self._aligned(a, len(shape)), product], shape)

    def _channel_scale(self, const: fx.Node, v: Traced, shape, divide: bool) -> np.ndarray | None:
        """``|c|`` of a fixed multiplier ``c`` that varies along the channels of ``v`` only, per channel."""
        c = self._const_value(const)
        if c is None or not v.axes or c.dim() > len(shape):
            return None
        try:
            cb = np.broadcast_to(c.detach().double().cpu().numpy(), shape)
        except ValueError:
            return None
        sel = tuple(slice(None) if a in v.axes else 0 for a in range(len(shape)))
        per = cb[sel]
        if not np.array_equal(np.broadcast_to(np.expand_dims(per, [a for a in range(len(shape)) if a not in v.axes]),
                                              shape), cb):
            return None
        per = np.abs(per)
        return 1.0 / per if divide else per

    def _mul(self, node: fx.Node, tensors: list[fx.Node], shape) -> Traced:
        live = [t for t in tensors if not self._tv(t).const]
        if len(live) == 1:
            x = live[0]
            out = self._aligned(x, len(shape))
            if out.axes and (len(shape) <= max(out.axes) or out.size != int(np.prod([shape[a] for a in out.axes]))):
                self._fail(node, f"its result does not keep the {out.size} channels of its input")
            consts = [t for t in tensors if self._tv(t).const]
            divide = node.target in ops.DIV_OPS or node.target == "div"
            if len(consts) == 1 and len(tensor_shape(x)) == len(shape) and not (divide and consts[0] is node.args[0]):
                g = self._channel_scale(consts[0], out, shape, divide)
                if g is not None:
                    return self._fold_scale(node, x, out, g)
            return out
        # A gate (N x C x 1 x 1, e.g. squeeze-excitation) scales the feature map it multiplies:
        # the channels come from the larger operand.
        vals = [self._aligned(t, len(shape)) for t in live]
        # A gate of one channel broadcast over all channels (FocalNet's per-level gates) leaves the channels of
        # the other operand.
        holding = [v for t, v in zip(live, vals) if v.axes and all(
            len(tensor_shape(t)) - len(shape) + a >= 0
            and tensor_shape(t)[len(tensor_shape(t)) - len(shape) + a] == shape[a]
            for a in v.axes)]
        if len(holding) == 1 and all(v.size == 1 for v in vals if v is not holding[0]):
            return holding[0]
        sizes = [int(np.prod(tensor_shape(t), dtype=np.int64)) // max(v.size, 1) for t, v in zip(live, vals)]
        if len(set(sizes)) > 1:
            return vals[int(np.argmax(sizes))]
        axes = vals[0].axes
        if any(v.axes != axes for v in vals):
            self._fail(node, "multiplying tensors whose channels lie on different axes")
        return Traced(axes, merge_terms([term for v in vals for term in v.terms]), vals[0].scale)

    def _norm(self, node: fx.Node, x: fx.Node, shape, weight, axis: int | None) -> Traced:
        """A layer, RMS or group norm: channel-preserving; its affine weight folds as a per-channel scale.

        A scale that is not one factor per channel (a norm over several axes, or over positions) is named in
        the notes, never dropped silently.
        """
        out = self._pass(node, x, shape)
        if weight is None or out.const:
            return out
        where = node.meta.get("module_path") or node.name
        if axis is None:
            self._note(f"{where}: a norm over several axes; its scale is not one factor per channel and is not "
                       "folded")
            return out
        axis %= len(shape)
        g = np.abs(weight.detach().double().cpu().numpy().reshape(-1))
        if axis not in out.axes or g.size != shape[axis]:
            if g.size > 1:
                self._note(f"{where}: a norm over an axis that holds positions; its scale (one factor per "
                           "position) is not folded")
            return out
        if out.axes != (axis,):
            # Channels spread over several axes (a per-head norm of q or k over the head's channels): the same
            # factors for every head.
            dims = [shape[a] for a in out.axes]
            j = out.axes.index(axis)
            g = np.broadcast_to(g.reshape([n if k == j else 1 for k, n in enumerate(dims)]), dims).copy()
        return self._fold_scale(node, x, out, g)

    def _fold(self, node: fx.Node, x: fx.Node, shape) -> Traced:
        """``Fold`` (col2im): output channel c sums input channels c*k .. c*k + k - 1 over overlapping patches.

        It keeps channels in place when each such group holds one channel (an ``Unfold`` before it, VOLO's
        outlook attention); otherwise it would add different channels together.
        """
        v = self._tv(x)
        s_in = tensor_shape(x)
        if v.axes not in ((1,), ()) or len(s_in) != 3 or len(shape) != 4:
            self._fail(node, "a Fold whose input channels are not on axis 1 of an N x (C k) x L tensor")
        if not v.axes:
            return v
        c = shape[1]
        k = s_in[1] // c
        terms = []
        for src, idx in v.terms:
            groups = idx.reshape(c, k)
            first = groups.max(axis=1)
            if np.any((groups >= 0) & (groups != first[:, None])):
                self._fail(node, "Fold adds different channels together")
            terms.append((src, first))
        scale = None if v.scale is None else v.scale.reshape(c, k)[:, 0]
        return Traced((1,), [(s, i) for s, i in terms if np.any(i >= 0)], scale, v.data, v.att)

    def _fold_scale(self, node: fx.Node, x: fx.Node, out: Traced, g: np.ndarray) -> Traced:
        """Fold a per-channel scale ``g`` into the rows of the layer that wrote ``x``, or else carry it on."""
        layer = self._fresh_output(x)
        if layer is not None and len(out.terms) == 1 and out.terms[0][0] == layer:
            idx = out.terms[0][1].reshape(-1)
            n = self.layers[layer].n_units
            if idx.size == n and np.array_equal(np.sort(idx), np.arange(n)):
                old = self.layers[layer].row_scale
                rs = np.ones(n) if old is None else old.copy()
                rs[idx] = rs[idx] * g.reshape(-1)
                self.layers[layer].row_scale = rs
                self.chain_src[node] = x
                return out
        scale = g.reshape([x for x in out.terms[0][1].shape]) if out.terms else g
        return Traced(out.axes, out.terms, scale if out.scale is None else out.scale * scale)

    def _fresh_output(self, x: fx.Node) -> str | None:
        """The weighted layer whose output reaches ``x`` through single-use rearrangements only."""
        n = x
        while True:
            if len(n.users) != 1:
                return None
            if n in self.consumer_of:
                return self.consumer_of[n]
            if n not in self.chain_src:
                return None
            n = self.chain_src[n]

    def _setitem(self, node: fx.Node) -> None:
        """``t[idx] = value`` in place: followed only when neither side holds channels (attention weights)."""
        for a in (node.args[0], node.args[2]):
            v = self.val.get(a) if isinstance(a, fx.Node) else None  # a number or a list holds no channels
            if isinstance(v, Traced) and not v.const:
                self._fail(node, "an in-place assignment into or from a tensor that holds channels")

    # -- post-processing ---------------------------------------------------
    def _fold_batchnorm(self) -> None:
        for node, name in self.consumer_of.items():
            users = list(node.users)
            if len(users) != 1 or users[0].op != "call_module":
                continue
            bn = self.mods[str(users[0].target)]
            if isinstance(bn, nn.modules.batchnorm._BatchNorm) and bn.running_var is not None:
                var = bn.running_var.detach().double().cpu().numpy()
                gamma = bn.weight.detach().double().cpu().numpy() if bn.weight is not None else 1.0
                self.layers[name].row_scale = np.abs(gamma) / np.sqrt(var + bn.eps)

    def _label_branches(self) -> None:
        for name, layer in self.layers.items():
            if layer.kind in ("concat", INPUT) or layer.branches is not None:
                continue
            labels = self._consumer_group_labels(name, layer)
            split = None if labels is not None else self._split_labels(name, layer)
            if labels is not None:
                layer.branches, layer.branch_source = labels, "consumer_groups"
            elif split is not None:
                layer.branches, layer.branch_source = split, "split"
            elif layer.kind == "conv" and 1 < layer.groups < layer.n_units:
                layer.branches = np.arange(layer.n_units) // (layer.n_units // layer.groups)
                layer.branch_source = "groups"
            if layer.branches is not None:
                prefix = "part" if layer.branch_source == "split" else "group"
                layer.branch_names = [f"{prefix} {g}" for g in range(int(layer.branches.max()) + 1)]

    def _consumer_group_labels(self, name: str, layer: Layer) -> np.ndarray | None:
        found = None
        for e in self.edges:
            if e.producer != name:
                continue
            cons = self.layers[e.consumer]
            if cons.kind != "conv" or cons.groups == 1 or cons.is_depthwise:
                continue
            labels = np.full(layer.n_units, -1)
            group = e.consumer_cols // (cons.in_units // cons.groups)
            labels[e.producer_units] = group
            if np.any(labels < 0) or found is not None and not np.array_equal(found, labels):
                return None
            found = labels
        return found

    def _split_labels(self, name: str, layer: Layer) -> np.ndarray | None:
        """Which part of a channel split each unit goes to.

        Only where one split holds every unit once and every part is read; else None.
        """
        read = np.zeros(layer.n_units, dtype=bool)
        for e in self.edges:
            if e.producer == name:
                read[e.producer_units] = True
        for parts in self.splits:
            labels = np.full(layer.n_units, -1)
            ok = True
            for k, terms in enumerate(parts):
                for src, idx in terms:
                    if src != name:
                        continue
                    units = idx[idx >= 0]
                    if np.any(labels[units] >= 0) or len(np.unique(units)) != len(units):
                        ok = False
                    labels[units] = k
            if not ok or np.any(labels < 0) or len(parts) < 2:
                continue
            if all(np.any(read[labels == k]) for k in range(len(parts))):
                return labels
        return None


def trace(module: nn.Module, input_size: tuple[int, int] = (224, 224), in_channels: int = 3) -> ChannelGraph:
    """Trace ``module`` into a :class:`ChannelGraph`.

    Parameters
    ----------
    module : nn.Module
        Any network built from convs, linears (modules or functional),
        normalisation, activations, pooling, LRN, dropout, layout operations
        (permute, reshape, flatten, channel shuffles, unfold), concatenation,
        channel splits, residual addition, gates and attention (see the module
        docstring; an existing ``torch.fx.GraphModule`` is used as it is).
    input_size : (int, int)
        Height and width of the dummy input used to propagate shapes.
    in_channels : int
        Channels of the dummy input.

    Returns
    -------
    ChannelGraph

    Raises
    ------
    ModularityError
        If the model cannot be traced by torch.fx (nor with values, for shape
        logic), or an operation is not known to preserve channels (the message
        names the fx node; one line).

    Examples
    --------
    >>> import torchvision
    >>> g = trace(torchvision.models.googlenet(weights=None, aux_logits=False, init_weights=True))
    >>> g.layers["inception3a"].n_units
    256
    >>> g.consumers("inception3a")[:2]
    ['inception3b.branch1.conv', 'inception3b.branch2.0.conv']
    """
    was_training = module.training
    module.eval()
    meta = next((n for n, t in [*module.named_parameters(), *module.named_buffers()] if t.is_meta), None)
    if meta is not None:
        raise ModularityError(f"the module's tensor '{meta}' is on the meta device (shapes without data); "
                              "load real weights into it (or build it on the CPU) before analysing")
    try:
        param = next(module.parameters(), None)
        dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
        device = param.device if param is not None else torch.device("cpu")
        dummy = torch.zeros(1, in_channels, *input_size, dtype=dtype, device=device)
        gm = capture(module, dummy)
        return _Builder(gm, module).run()
    finally:
        module.train(was_training)

