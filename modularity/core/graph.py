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
producers. A generic ``matmul`` / ``einsum`` is followed the same way (MaxViT):
a product that contracts the channels of both operands gives attention scores
without channels; one that contracts positions keeps the channels of the other
operand. What could not be mapped is listed in :attr:`ChannelGraph.notes`.

Anything the tracer does not understand raises :class:`ModularityError` naming
the fx node, rather than producing a silently wrong graph.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import inspect
import io

import operator
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp

from ..errors import ModularityError

__all__ = ["Layer", "Edge", "ChannelGraph", "trace"]

# A lineage maps each channel of a value to channels of source layers:
# a list of terms (source layer name, int array over the value's channels,
# -1 where the channel does not come from that source).
Lineage = list[tuple[str, np.ndarray]]

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
        weight as a 1x1 kernel, ``(out, in, 1, 1)``.
        """
        w = self.modules[name].weight.detach().to("cpu", torch.float32)
        if w.dim() == 2 and self.layers[name].kind == "conv":
            w = w[:, :, None, None]
        return w


class _RowSlice(nn.Module):
    """Rows ``start:stop`` of a parent module's weight, as a module with a ``weight``.

    One of q, k and v of a fused attention projection. The parent is not a
    registered submodule; ``reset_parameters`` re-initialises a private copy of
    it with its own initialiser (for the ``reinit`` null).
    """

    def __init__(self, parent: nn.Module, attr: str, start: int, stop: int) -> None:
        super().__init__()
        object.__setattr__(self, "_parent", parent)
        self._attr, self._start, self._stop = attr, int(start), int(stop)

    @property
    def weight(self) -> torch.Tensor:
        return getattr(self._parent, self._attr)[self._start:self._stop]

    def reset_parameters(self) -> None:
        parent = copy.deepcopy(self._parent)
        init = getattr(parent, "_reset_parameters", None) or getattr(parent, "reset_parameters")
        init()
        object.__setattr__(self, "_parent", parent)

    def extra_repr(self) -> str:
        return f"{type(self._parent).__name__}.{self._attr}[{self._start}:{self._stop}]"


class _Tracer(fx.Tracer):
    """fx tracer that keeps conv/linear/batch-norm subclasses as leaves and records module paths."""

    def __init__(self) -> None:
        super().__init__()
        self._path: list[str] = []

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear, nn.modules.batchnorm._BatchNorm,
                          nn.MultiheadAttention)):
            return True
        return super().is_leaf_module(m, qualname)

    def call_module(self, m, forward, args, kwargs):
        self._path.append(self.path_of_module(m))
        try:
            return super().call_module(m, forward, args, kwargs)
        finally:
            self._path.pop()

    def create_node(self, *args, **kwargs) -> fx.Node:
        node = super().create_node(*args, **kwargs)
        node.meta.setdefault("module_path", self._path[-1] if self._path else "")
        return node


def _plain(value, depth: int = 0) -> bool:
    """True for small Python values (ints, sizes, slices, ...) worth keeping from the shape pass."""
    if depth > 3:
        return False
    if value is None or value is Ellipsis or isinstance(value, (bool, int, float, str, torch.dtype, torch.device)):
        return True
    if isinstance(value, slice):
        return all(_plain(v, depth + 1) for v in (value.start, value.stop, value.step))
    if isinstance(value, (tuple, list, torch.Size)):
        return len(value) <= 64 and all(_plain(v, depth + 1) for v in value)
    return False


class _ShapeProp(ShapeProp):
    """ShapeProp that also keeps each node's small non-tensor value (sizes, ints) in ``meta["value"]``."""

    def run_node(self, n: fx.Node):
        result = super().run_node(n)
        if not isinstance(result, torch.Tensor) and _plain(result):
            n.meta["value"] = result
        return result


# Modules and functions that keep each channel in place (no weights that mix channels).
_PASS_MODULES = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU,
    nn.Mish, nn.Hardswish, nn.Hardsigmoid, nn.Hardtanh, nn.Sigmoid, nn.Tanh, nn.Softplus,
    nn.Dropout, nn.Dropout2d, nn.AlphaDropout, nn.Identity, nn.MaxPool2d, nn.AvgPool2d,
    nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, nn.LocalResponseNorm, nn.ZeroPad2d,
    nn.ConstantPad2d, nn.ReflectionPad2d, nn.ReplicationPad2d, nn.Upsample, nn.Softmax,
    nn.LogSoftmax, nn.GroupNorm, nn.LayerNorm, nn.InstanceNorm2d, nn.modules.batchnorm._BatchNorm,
)
# Those that act on the last two (spatial) axes of an N x C x H x W map: never on channels.
_SPATIAL_MODULES = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, nn.Upsample)
_PASS_FUNCTIONS = {
    torch.relu, torch.relu_, F.relu, F.relu6, F.leaky_relu, F.elu, F.gelu, F.silu, F.mish,
    F.hardswish, F.hardsigmoid, F.hardtanh, torch.sigmoid, F.sigmoid, torch.tanh, F.tanh,
    F.softplus, F.dropout, F.dropout2d, torch.dropout, F.max_pool2d, F.avg_pool2d,
    F.adaptive_avg_pool2d, F.adaptive_max_pool2d, F.pad, F.interpolate, F.local_response_norm,
    F.batch_norm, F.layer_norm, F.group_norm, torch.clamp, torch.clip, F.softmax, F.log_softmax,
    operator.neg, torch.neg, torch.abs, torch.exp, torch.sqrt, torch.square,
}
_SPATIAL_FUNCTIONS = {F.max_pool2d, F.avg_pool2d, F.adaptive_avg_pool2d, F.adaptive_max_pool2d, F.interpolate}
_PASS_METHODS = {
    "relu", "relu_", "sigmoid", "tanh", "contiguous", "clone", "detach", "float", "to",
    "type_as", "clamp", "clamp_", "clip", "neg", "abs", "exp", "sqrt", "softmax", "cpu",
    "double", "half", "requires_grad_", "sigmoid_", "tanh_", "square",
}
# Channel-preserving operations that are the identity in eval mode: a norm after one of them (Swin v2's
# ``norm2(mlp(x))``, whose MLP ends in dropout) folds its scale into the layer before, as if it were not there.
_IDENTITY_MODULES = (nn.Dropout, nn.Dropout2d, nn.AlphaDropout, nn.Identity)
_IDENTITY_FUNCTIONS = {F.dropout, F.dropout2d, torch.dropout}
_IDENTITY_METHODS = {"contiguous", "clone", "detach", "float", "to", "cpu", "requires_grad_"}
_ADD_OPS = {operator.add, operator.iadd, operator.sub, operator.isub, torch.add, torch.sub}
_MUL_OPS = {operator.mul, operator.imul, operator.truediv, operator.itruediv, torch.mul, torch.div}
_DIV_OPS = {operator.truediv, operator.itruediv, torch.div}
_CAT_OPS = {torch.cat, torch.concat, torch.concatenate}
_MATMUL_OPS = {operator.matmul, torch.matmul, torch.bmm}
_REDUCE_OPS = {torch.mean, torch.sum, torch.amax, torch.amin}
# Pure rearrangements of elements: followed exactly by applying them to a tensor of channel indices.
_LAYOUT_FUNCTIONS = {
    torch.flatten, torch.reshape, torch.permute, torch.transpose, torch.swapaxes, torch.swapdims,
    torch.movedim, torch.moveaxis, torch.squeeze, torch.unsqueeze, torch.narrow, torch.select, torch.roll,
    torch.t, torch.unflatten, torch.split, torch.chunk, torch.tensor_split, torch.unbind, operator.getitem,
    F.pixel_shuffle, F.pixel_unshuffle, F.channel_shuffle, torch.channel_shuffle,
}
_LAYOUT_METHODS = {
    "view", "reshape", "flatten", "unflatten", "permute", "transpose", "swapaxes", "swapdims", "movedim",
    "moveaxis", "squeeze", "unsqueeze", "narrow", "select", "roll", "t", "split", "chunk", "tensor_split",
    "unbind", "expand", "repeat", "view_as", "reshape_as",
}
_LAYOUT_MODULES = (nn.Flatten, nn.Unflatten, nn.PixelShuffle, nn.PixelUnshuffle, nn.ChannelShuffle)
_SPLIT_FUNCTIONS = {torch.split, torch.chunk, torch.tensor_split, torch.unbind}
_SPLIT_METHODS = {"split", "chunk", "tensor_split", "unbind"}
# New tensors built from a traced one's shape or dtype only: constants.
_NEW_FUNCTIONS = {torch.zeros_like, torch.ones_like, torch.empty_like, torch.full_like, torch.rand_like,
                  torch.randn_like}
_NEW_METHODS = {"new_zeros", "new_ones", "new_empty", "new_full", "new_tensor", "size", "dim"}
_NORM_MODULES = (nn.LayerNorm, nn.GroupNorm)
_NON_TENSOR_FUNCS = {getattr, len}


def _torchvision_function(module: str, name: str):
    try:
        import importlib

        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):  # pragma: no cover - torchvision is a dependency
        return None


def _stochastic_depth_funcs() -> set:
    fn = _torchvision_function("torchvision.ops", "stochastic_depth")
    return {fn} if fn is not None else set()


_PASS_FUNCTIONS |= _stochastic_depth_funcs()
_IDENTITY_FUNCTIONS |= _stochastic_depth_funcs()
_SWIN_ATTENTION = _torchvision_function("torchvision.models.swin_transformer", "shifted_window_attention")
_SWIN_PATCH_MERGING = _torchvision_function("torchvision.models.swin_transformer", "_patch_merging_pad")


def _shape(node: fx.Node) -> tuple[int, ...] | None:
    meta = node.meta.get("tensor_meta")
    return tuple(meta.shape) if meta is not None and hasattr(meta, "shape") else None


def _describe(node: fx.Node) -> str:
    target = node.target if isinstance(node.target, str) else getattr(node.target, "__name__", str(node.target))
    where = f" in module '{node.meta.get('module_path')}'" if node.meta.get("module_path") else ""
    return f"fx node '{node.name}' ({node.op} {target}){where}"


def _merge(terms: Lineage) -> Lineage:
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
class _V:
    """A traced tensor: where its channels are and which source units they hold.

    ``axes`` are the tensor axes along which the channel identity varies (in
    increasing order; usually one, ``()`` for a single channel or a constant);
    each term's index array has the shape ``[shape[a] for a in axes]``;
    ``scale`` (same shape, or None) is a per-channel factor of a norm or fixed
    multiplier that is not yet folded into any layer.
    """

    axes: tuple[int, ...]
    terms: Lineage
    scale: np.ndarray | None = None

    @property
    def const(self) -> bool:
        return not self.terms

    @property
    def size(self) -> int:
        return int(self.terms[0][1].size) if self.terms else 1


def _const() -> _V:
    return _V((), [])


def _same_terms(a: Lineage, b: Lineage) -> bool:
    return len(a) == len(b) and all(s1 == s2 and i1.shape == i2.shape and np.array_equal(i1, i2)
                                    for (s1, i1), (s2, i2) in zip(a, b))


def _same_scale(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return a.shape == b.shape and np.array_equal(a, b)


class _Builder:
    """Walks the shape-annotated fx graph once, computing each value's lineage."""

    def __init__(self, gm: fx.GraphModule) -> None:
        self.gm = gm
        self.mods = dict(gm.named_modules())
        self.val: dict[fx.Node, object] = {}
        self.layers: dict[str, Layer] = {}
        self.edges: list[Edge] = []
        self.modules: dict[str, nn.Module] = {}
        self.consumer_of: dict[fx.Node, str] = {}
        self.chain_src: dict[fx.Node, fx.Node] = {}
        self.splits: list[list[Lineage]] = []
        self.notes: list[str] = []
        self.concat_names = self._name_concats()

    def _name_concats(self) -> dict[fx.Node, str]:
        """Name each concatenation by the module performing it; the last one in a module gets its bare path.

        A block whose output is a concatenation (``inception3a``) gets the
        block's name even when it concatenates inside too (Inception-v3's
        ``Mixed_7b`` concatenates its 3x3 sub-branches first); the inner ones
        get ``<path>.<fx node name>``.
        """
        cats = [n for n in self.gm.graph.nodes
                if (n.op == "call_function" and n.target in _CAT_OPS) or (n.op == "call_method" and n.target == "cat")]
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
        return [a for a in flat if isinstance(a, fx.Node) and isinstance(self.val.get(a), _V)]

    def _fail(self, node: fx.Node, why: str) -> None:
        raise ModularityError(f"cannot trace channels through {_describe(node)}: {why}")

    def _note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def _attr(self, node) -> torch.Tensor | None:
        """The tensor behind a ``get_attr`` node (None for anything else)."""
        if not isinstance(node, fx.Node) or node.op != "get_attr":
            return None
        try:
            value = functools.reduce(getattr, node.target.split("."), self.gm)
        except AttributeError:
            return None
        return value if isinstance(value, torch.Tensor) else None

    def _along(self, node: fx.Node, x: fx.Node, axis: int, what: str) -> tuple[Lineage, np.ndarray | None]:
        """The terms of ``x`` as index arrays along tensor axis ``axis`` (what a layer reading that axis sees)."""
        v, s = self.val[x], _shape(x)
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
            self.val[node] = self._visit(node)
        self._fold_batchnorm()
        self._label_branches()
        return ChannelGraph(self.layers, self.edges, self.modules, self.notes)

    def _visit(self, node: fx.Node):
        shape = _shape(node)
        if node.op == "placeholder":
            if shape is None:
                return None
            c = int(shape[1]) if len(shape) >= 2 else 1
            name = INPUT if INPUT not in self.layers else node.name
            self.layers[name] = Layer(name=name, kind=INPUT, n_units=c)
            if len(shape) >= 2:
                return _V((1,), [(name, np.arange(c))])
            return _V((), [(name, np.array(0))])
        if node.op == "get_attr":
            return _const() if shape is not None else None
        if node.op == "output":
            return None
        if node.op == "call_module" and isinstance(self.mods[node.target], nn.MultiheadAttention):
            return self._mha(node, self.mods[node.target])
        if shape is None:
            # A non-tensor value (a size, a tuple of tensors, ...).
            if self._is_split(node):
                x = node.args[0]
                if isinstance(self.val.get(x), _V):
                    return self._relayout(node, x)
            return None
        if node.op == "call_module":
            return self._module(node, self.mods[node.target], shape)
        return self._function(node, shape)

    def _is_split(self, node: fx.Node) -> bool:
        return ((node.op == "call_function" and node.target in _SPLIT_FUNCTIONS)
                or (node.op == "call_method" and node.target in _SPLIT_METHODS))

    def _module(self, node: fx.Node, mod: nn.Module, shape):
        x = node.args[0] if node.args else None
        v = self.val.get(x)
        if isinstance(mod, nn.Conv2d):
            return self._weighted(node, mod, x, 1)
        if isinstance(mod, nn.Linear):
            return self._weighted(node, mod, x, -1)
        if isinstance(mod, (nn.Conv1d, nn.Conv3d)):
            self._fail(node, f"{type(mod).__name__} is not supported (only Conv2d and Linear)")
        if isinstance(v, _V) and v.const:
            return _const()
        if isinstance(mod, _LAYOUT_MODULES):
            return self._relayout(node, x)
        if isinstance(mod, _NORM_MODULES):
            if not isinstance(v, _V):
                self._fail(node, "its input is not a traced tensor")
            w = mod.weight if getattr(mod, "weight", None) is not None else None
            if isinstance(mod, nn.LayerNorm):
                axis = -1 if len(mod.normalized_shape) == 1 else None
            else:
                axis = 1
            return self._norm(node, x, shape, w, axis)
        if isinstance(mod, _PASS_MODULES):
            if not isinstance(v, _V):
                self._fail(node, "its input is not a traced tensor")
            if isinstance(mod, _IDENTITY_MODULES):
                self.chain_src[node] = x  # the identity in eval: a norm after it folds into the layer before
            return self._pass(node, x, shape, spatial=isinstance(mod, _SPATIAL_MODULES))
        if not any(True for _ in mod.parameters()) and isinstance(v, _V) and _shape(x) == shape:
            self._fail(node, f"unknown module type {type(mod).__name__}; "
                             "it has no weights but may mix channels")
        self._fail(node, f"unknown module type {type(mod).__name__}")

    def _new_layer(self, node: fx.Node, name: str, layer: Layer, module: nn.Module, x: fx.Node, axis: int,
                   via: str = "direct") -> None:
        """Register a weighted layer reading tensor axis ``axis`` of ``x``."""
        if name in self.layers:
            self._fail(node, f"module '{name}' is called more than once; shared layers are not supported")
        terms, scale = self._along(node, x, axis, f"{type(module).__name__} '{name}'")
        if scale is not None:
            layer.col_scale = np.asarray(scale, dtype=np.float64)
        self.layers[name] = layer
        self.modules[name] = module
        for src, idx in terms:
            cols = np.flatnonzero(idx >= 0)
            if len(cols):
                self.edges.append(Edge(src, name, cols, idx[cols], via))

    def _weighted(self, node: fx.Node, mod: nn.Module, x: fx.Node, axis: int) -> _V:
        name = node.target
        if name in self.layers:
            self._fail(node, f"module '{name}' is called more than once; shared layers are not supported")
        v = self.val.get(x)
        if not isinstance(v, _V):
            self._fail(node, "its input is not a traced tensor")
        if v.const:
            self._note(f"{name}: a {type(mod).__name__} that reads only constants (e.g. a position-bias table), "
                       "not channels; not a layer here")
            return _const()
        s_in = _shape(x)
        w = mod.weight
        if isinstance(mod, nn.Conv2d):
            layer = Layer(name, "conv", int(w.shape[0]), int(mod.in_channels), int(mod.groups),
                          tuple(int(k) for k in w.shape[2:]))
            out_axis = 1
        elif len(s_in) > 2:
            # A linear layer on the channel axis of a feature map or a sequence: a 1x1 conv.
            layer = Layer(name, "conv", int(w.shape[0]), int(w.shape[1]), 1, (1, 1))
            out_axis = len(s_in) - 1
        else:
            layer = Layer(name, "linear", int(w.shape[0]), int(w.shape[1]))
            out_axis = 1
        self._new_layer(node, name, layer, mod, x, axis)
        self.consumer_of[node] = name
        return _V((out_axis,), [(name, np.arange(layer.n_units))])

    def _pass(self, node: fx.Node, x: fx.Node, shape, spatial: bool = False) -> _V:
        v = self.val[x]
        s_in = _shape(x)
        if v.const:
            return v
        if not v.axes:
            return v
        if len(shape) <= max(v.axes) or any(shape[a] != s_in[a] for a in v.axes):
            c_in = int(np.prod([s_in[a] for a in v.axes]))
            c_out = int(np.prod([shape[a] for a in v.axes if a < len(shape)]))
            self._fail(node, f"it changes the channel count from {c_in} to {c_out}")
        if spatial and len(s_in) >= 3 and set(v.axes) & {len(s_in) - 1, len(s_in) - 2}:
            self._fail(node, f"it pools or resizes the last two axes of {list(s_in)}, which hold channels "
                             f"(axis {', '.join(map(str, v.axes))})")
        return v

    # -- layout operations -------------------------------------------------
    def _positions(self, v: _V, s_in: tuple[int, ...]) -> torch.Tensor:
        """A tensor of ``s_in`` holding, at every element, 1 + the flat index of its channel in ``v``."""
        lin_shape = [s_in[a] for a in v.axes]
        ids = torch.arange(1, int(np.prod(lin_shape, dtype=np.int64)) + 1, dtype=torch.int32).reshape(lin_shape)
        view = [s_in[a] if a in v.axes else 1 for a in range(len(s_in))]
        return ids.reshape(view).expand(*s_in).contiguous()

    def _from_positions(self, v: _V, r: torch.Tensor) -> _V:
        """The value whose channel-index tensor is ``r`` (0 where an element holds no channel, e.g. padding)."""
        # An axis holds channels where some line along it has two different (positive) indices. Each axis
        # found not to is reduced away at once (largest index, and smallest positive one), so the later
        # axes are tested on ever smaller tensors: a window partition's 6-axis tensors of 10^5 to 10^6
        # elements (MaxViT, Swin) made one full-size pass per axis and per reduction the tracer's main cost.
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
        red = hi_t.reshape([r.shape[k] for k in axes])
        pos = red.numpy().astype(np.int64) - 1  # -1: no channel
        terms = []
        for src, idx in v.terms:
            flat = idx.reshape(-1)
            new = np.where(pos >= 0, flat[np.maximum(pos, 0)], -1) if flat.size else np.full(pos.shape, -1)
            if np.any(new >= 0):
                terms.append((src, new))
        scale = None
        if v.scale is not None:
            scale = np.where(pos >= 0, v.scale.reshape(-1)[np.maximum(pos, 0)], 1.0)
        return _V(tuple(axes), terms, scale)

    def _substitute(self, node: fx.Node, x: fx.Node, p: torch.Tensor):
        def sub(a):
            if isinstance(a, fx.Node):
                if a is x:
                    return p
                if "value" in a.meta:
                    return a.meta["value"]
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
        if not isinstance(v, _V):
            self._fail(node, "its input is not a traced tensor")
        s_in = _shape(x)
        p = self._positions(v, s_in)
        if fn is not None:
            out = fn(p)
        else:
            args, kwargs = self._substitute(node, x, p)
            try:
                if node.op == "call_method":
                    out = getattr(args[0], node.target)(*args[1:], **kwargs)
                elif node.op == "call_module":
                    out = self.mods[node.target](*args, **kwargs)
                else:
                    out = node.target(*args, **kwargs)
            except Exception as exc:  # an argument the index tensor cannot take
                self._fail(node, f"replaying it on channel indices failed ({type(exc).__name__}: "
                                 f"{str(exc).strip().splitlines()[0] if str(exc).strip() else ''})")
        if isinstance(out, (tuple, list)):
            parts = tuple(self._from_positions(v, o) for o in out)
            if len(parts) > 1 and not v.const and all(p_.axes == v.axes for p_ in parts) and len(v.axes) == 1:
                # A split along the channel axis: each part holds different channels.
                a = v.axes[0]
                if sum(o.shape[a] for o in out) == s_in[a] and any(o.shape[a] != s_in[a] for o in out):
                    self.splits.append([p_.terms for p_ in parts])
            return parts
        self.chain_src[node] = x
        return self._from_positions(v, out)

    # -- functions ---------------------------------------------------------
    def _function(self, node: fx.Node, shape):
        t = node.target
        fn, meth = node.op == "call_function", node.op == "call_method"
        tensors = self._tensor_args(node)
        if fn and t is operator.getitem:
            return self._getitem(node, shape)
        if fn and t in _CAT_OPS or meth and t == "cat":
            return self._cat(node, shape)
        if fn and t is _SWIN_ATTENTION and _SWIN_ATTENTION is not None:
            return self._swin_attention(node)
        if not tensors:
            return _const()  # a constant built inside forward
        if all(self.val[a].const for a in tensors):
            return _const()  # computed from constants only (position biases, masks, tokens)
        if fn and t in _ADD_OPS or meth and t in ("add", "add_", "sub"):
            return self._add(node, tensors, shape)
        if fn and t in _MUL_OPS or meth and t in ("mul", "mul_", "div"):
            return self._mul(node, tensors, shape)
        if fn and t in _MATMUL_OPS or meth and t in ("matmul", "bmm"):
            return self._matmul(node, shape)
        if fn and t is torch.einsum:
            return self._einsum(node, shape)
        x = next(a for a in tensors if not self.val[a].const)
        if fn and t is _SWIN_PATCH_MERGING and _SWIN_PATCH_MERGING is not None:
            return self._relayout(node, x)
        if fn and t in (F.layer_norm, F.group_norm):
            w = node.kwargs.get("weight", node.args[2] if len(node.args) > 2 else None)
            if t is F.layer_norm:
                ns = node.kwargs.get("normalized_shape", node.args[1] if len(node.args) > 1 else None)
                ns = ns.meta.get("value") if isinstance(ns, fx.Node) else ns
                axis = -1 if ns is not None and len(ns) == 1 else None
            else:
                axis = 1
            return self._norm(node, x, shape, self._attr(w), axis)
        if fn and t in _PASS_FUNCTIONS or meth and t in _PASS_METHODS:
            if fn and t in _IDENTITY_FUNCTIONS or meth and t in _IDENTITY_METHODS:
                self.chain_src[node] = x
            return self._pass(node, x, shape, spatial=fn and t in _SPATIAL_FUNCTIONS)
        if fn and t in _NEW_FUNCTIONS or meth and t in _NEW_METHODS:
            return _const()
        if fn and t in _LAYOUT_FUNCTIONS or meth and t in _LAYOUT_METHODS:
            return self._relayout(node, x)
        if (fn and t in _REDUCE_OPS) or (meth and t in ("mean", "sum", "amax", "amin", "max")):
            return self._reduce(node, x, shape)
        self._fail(node, "this operation is not known to preserve channels")

    def _reduce(self, node: fx.Node, x: fx.Node, shape) -> _V:
        v, s_in = self.val[x], _shape(x)
        args, kwargs = list(node.args[1:]), dict(node.kwargs)
        dims = kwargs.get("dim", args[0] if args else None)
        keep = kwargs.get("keepdim", args[1] if len(args) > 1 else False)
        dims = dims.meta.get("value") if isinstance(dims, fx.Node) else dims
        if dims is None:
            dims = range(len(s_in))
        dims = {int(d) % len(s_in) for d in (dims if isinstance(dims, (list, tuple, range)) else [dims])}
        if dims & set(v.axes):
            self._fail(node, "only reductions over spatial dimensions are supported")
        axes = v.axes if keep else tuple(a - sum(d < a for d in dims) for a in v.axes)
        if len(shape) <= (max(axes) if axes else -1) or [shape[a] for a in axes] != [s_in[a] for a in v.axes]:
            self._fail(node, "only reductions over spatial dimensions are supported")
        return _V(axes, v.terms, v.scale)

    def _getitem(self, node: fx.Node, shape):
        src = self.val.get(node.args[0])
        idx = node.args[1]
        if isinstance(src, tuple):
            return src[idx]
        if not isinstance(src, _V):
            return None
        if src.const:
            return src
        key = idx if isinstance(idx, tuple) else (idx,)
        if not key or not (key[0] == slice(None) or key[0] is Ellipsis):
            self._fail(node, "indexing the batch dimension is not supported")
        return self._relayout(node, node.args[0])

    def _cat(self, node: fx.Node, shape) -> _V:
        parts = node.args[0] if node.args else node.kwargs.get("tensors")
        dim = node.kwargs.get("dim", node.args[1] if len(node.args) > 1 else 0)
        d = dim % len(shape)
        vals = [self.val[p] for p in parts]
        if len(parts) == 1:
            # torch.cat([x]) is x (DenseNet's first dense layer concatenates a list of one tensor): not a
            # concatenation layer with a single branch.
            self.chain_src[node] = parts[0]
            return vals[0]
        live = [v for v in vals if not v.const]
        channel = any(d in v.axes for v in live) or (d == 1 and all(not v.axes for v in live))
        if not channel:
            return self._cat_positions(node, vals, d)
        terms: Lineage = []
        sizes = [_shape(p)[d] for p in parts]
        offsets, branch_names, total = [], [], sum(sizes)
        scales, part_units = [], []
        start = 0
        for p, v, c in zip(parts, vals, sizes):
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
        terms = _merge(terms)
        sources = {s for s, _ in terms}
        for s in sources:
            self.layers[s].in_concat = True
        if sources <= {INPUT}:
            return _V((d,), terms, scale)  # a rearrangement of the input image, not a layer
        name = self._concat_name(node)
        branches = np.concatenate([np.full(b - a, k) for k, (a, b) in enumerate(offsets)])
        self.layers[name] = Layer(name, "concat", total, branches=branches, branch_names=branch_names,
                                  branch_source="concat", members=[(s, i.copy()) for s, i in terms])
        return _V((d,), terms + [(name, np.arange(total))], scale)

    def _cat_positions(self, node: fx.Node, vals: list[_V], d: int) -> _V:
        """A concatenation along an axis that holds positions (e.g. ViT's class token before the patches)."""
        live = [v for v in vals if not v.const]
        if not live:
            return _const()
        first = live[0]
        for v in live[1:]:
            if v.axes != first.axes or not _same_terms(v.terms, first.terms):
                self._fail(node, f"a concatenation along axis {d}, which holds positions, of tensors whose "
                                 "channels differ")
            if not _same_scale(v.scale, first.scale):
                self._fail(node, f"a concatenation along axis {d} of tensors normalised differently")
        return first

    def _source_of(self, node: fx.Node) -> str | None:
        src = self.val.get(node)
        return src.terms[-1][0] if isinstance(src, _V) and src.terms else None

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
                ranges.append(f"[{int(u.min())}:{int(u.max()) + 1}]" if contiguous else None)
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
        name = src.terms[-1][0] if isinstance(src, _V) and src.terms else node.name
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

    def _aligned(self, x: fx.Node, n_out: int) -> _V:
        """``x``'s value with its axes counted in a broadcast result of ``n_out`` dimensions."""
        v = self.val[x]
        shift = n_out - len(_shape(x))
        return _V(tuple(a + shift for a in v.axes), v.terms, v.scale) if shift else v

    def _add(self, node: fx.Node, tensors: list[fx.Node], shape) -> _V:
        live = [(t, self._aligned(t, len(shape))) for t in tensors if not self.val[t].const]
        main = max(live, key=lambda tv: tv[1].size)[1]
        c = int(np.prod([shape[a] for a in main.axes])) if main.axes else 1
        terms: Lineage = []
        scales = []
        for t, v in live:
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
        scale = scales[0] if scales else None
        if any(not _same_scale(s, scale) for s in scales[1:]):
            self._note(f"{node.meta.get('module_path') or node.name}: an addition of a normalised and an "
                       "unnormalised path; the norm's scale is not folded past it")
            scale = None
        return _V(main.axes, terms, scale)

    def _channel_scale(self, const: fx.Node, v: _V, shape, divide: bool) -> np.ndarray | None:
        """``|c|`` of a fixed multiplier ``c`` that varies along the channels of ``v`` only, per channel."""
        c = self._attr(const)
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

    def _mul(self, node: fx.Node, tensors: list[fx.Node], shape) -> _V:
        live = [t for t in tensors if not self.val[t].const]
        if len(live) == 1:
            x = live[0]
            out = self._aligned(x, len(shape))
            if out.axes and (len(shape) <= max(out.axes) or out.size != int(np.prod([shape[a] for a in out.axes]))):
                self._fail(node, f"its result does not keep the {out.size} channels of its input")
            consts = [t for t in tensors if self.val[t].const]
            divide = node.target in _DIV_OPS or node.target == "div"
            if len(consts) == 1 and len(_shape(x)) == len(shape) and not (divide and consts[0] is node.args[0]):
                g = self._channel_scale(consts[0], out, shape, divide)
                if g is not None:
                    return self._fold_scale(node, x, out, g)
            return out
        # A gate (N x C x 1 x 1, e.g. squeeze-excitation) scales the feature map it multiplies:
        # the channels come from the larger operand.
        vals = [self._aligned(t, len(shape)) for t in live]
        sizes = [int(np.prod(_shape(t), dtype=np.int64)) // max(v.size, 1) for t, v in zip(live, vals)]
        if len(set(sizes)) > 1:
            return vals[int(np.argmax(sizes))]
        axes = vals[0].axes
        if any(v.axes != axes for v in vals):
            self._fail(node, "multiplying tensors whose channels lie on different axes")
        return _V(axes, _merge([term for v in vals for term in v.terms]), vals[0].scale)

    def _norm(self, node: fx.Node, x: fx.Node, shape, weight, axis: int | None) -> _V:
        """A layer or group norm: channel-preserving; its affine weight folds as a per-channel scale."""
        out = self._pass(node, x, shape)
        if weight is None or axis is None or out.const:
            return out
        axis %= len(shape)
        g = np.abs(weight.detach().double().cpu().numpy().reshape(-1))
        if out.axes != (axis,) or g.size != shape[axis]:
            return out
        return self._fold_scale(node, x, out, g)

    def _fold_scale(self, node: fx.Node, x: fx.Node, out: _V, g: np.ndarray) -> _V:
        """Fold a per-channel scale ``g`` into the rows of the layer that wrote ``x``, or else carry it on."""
        layer = self._fresh_output(x)
        if layer is not None and len(out.terms) == 1 and out.terms[0][0] == layer:
            idx = out.terms[0][1].reshape(-1)
            n = self.layers[layer].n_units
            if idx.size == n and np.array_equal(np.sort(idx), np.arange(n)):
                rs = np.ones(n) if self.layers[layer].row_scale is None else self.layers[layer].row_scale.copy()
                rs[idx] = rs[idx] * g.reshape(-1)
                self.layers[layer].row_scale = rs
                self.chain_src[node] = x
                return out
        scale = g.reshape([x for x in out.terms[0][1].shape]) if out.terms else g
        return _V(out.axes, out.terms, scale if out.scale is None else out.scale * scale)

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

    # -- products ----------------------------------------------------------
    def _scores(self, node: fx.Node) -> _V:
        self._note(f"{node.meta.get('module_path') or node.name}: attention scores (a product that contracts "
                   "the channels of both operands) mix positions with data-dependent weights; the layers "
                   "that feed only them (q, k) have no channel-level consumer")
        return _const()

    def _product(self, node: fx.Node, operands: list[tuple[fx.Node, str]], out: str) -> _V:
        """A product written with one letter per axis (einsum style): follow the operand that keeps its channels."""
        contracted = {ch for _, letters in operands for ch in letters if ch not in out}
        live = []
        for x, letters in operands:
            v = self.val[x]
            if not v.const:
                live.append((x, v, {letters[a] for a in v.axes}, letters))
        shared = [ch for ch in contracted if sum(ch in chans for _, _, chans, _ in live) >= 2]
        if shared:
            return self._scores(node)
        if len(live) != 1:
            self._fail(node, "a product of two tensors that both hold channels, over positions")
        x, v, chans, letters = live[0]
        if chans & contracted:
            self._fail(node, "a product with a fixed or computed matrix that mixes channels")
        new_axes = [out.index(letters[a]) for a in v.axes]
        order = np.argsort(new_axes)
        terms = [(s, np.transpose(i, order)) for s, i in v.terms]
        scale = None if v.scale is None else np.transpose(v.scale, order)
        return _V(tuple(sorted(new_axes)), terms, scale)

    def _matmul(self, node: fx.Node, shape) -> _V:
        a, b = node.args[0], node.args[1]
        sa, sb = _shape(a), _shape(b)
        if sa is None or sb is None or len(sa) < 2 or len(sb) < 2:
            self._fail(node, "only matrix products of tensors with at least two axes are supported")
        n = len(shape)
        letters = "abcdefghijklmnopqrstuvw"[:n - 2]
        la = letters[n - len(sa):] + "yz"
        lb = letters[n - len(sb):] + "zx"
        out = letters + "yx"
        return self._product(node, [(a, la), (b, lb)], out)

    def _einsum(self, node: fx.Node, shape) -> _V:
        eq = node.args[0]
        ops = node.args[1:]
        if len(ops) == 1 and isinstance(ops[0], (list, tuple)):
            ops = ops[0]
        eq = eq.replace(" ", "") if isinstance(eq, str) else None
        if eq is None or "->" not in eq or "." in eq:
            self._fail(node, "only einsum equations with explicit output letters and no '...' are supported")
        lhs, out = eq.split("->")
        ins = lhs.split(",")
        if len(ins) != len(ops) or not all(isinstance(o, fx.Node) for o in ops):
            self._fail(node, "an einsum whose operands could not be matched to its equation")
        return self._product(node, list(zip(ops, ins)), out)

    # -- attention ---------------------------------------------------------
    def _head_labels(self, n: int, heads: int) -> tuple[np.ndarray, list[str]]:
        return np.arange(n) // (n // heads), [f"head {h}" for h in range(heads)]

    def _qkv_layers(self, node: fx.Node, base: str, parent: nn.Module, parts: list[tuple[str, int, int]],
                    inputs: list[fx.Node], heads: int) -> str:
        """Layers ``<base>.q``, ``.k``, ``.v`` as row slices of a fused projection; returns the name of v."""
        names = []
        for (attr, start, stop), x, part in zip(parts, inputs, "qkv"):
            name = f"{base}.{part}"
            view = _RowSlice(parent, attr, start, stop)
            w = view.weight
            layer = Layer(name, "conv", int(w.shape[0]), int(w.shape[1]), 1, (1, 1))
            layer.branches, layer.branch_names = self._head_labels(layer.n_units, heads)
            layer.branch_source = "heads"
            self._new_layer(node, name, layer, view, x, -1)
            names.append(name)
        self._note(f"{base}: softmax(q k^T) v mixes positions with data-dependent weights and keeps each "
                   "channel of v in place; q and k are read only by the scores, so they are consumers here, "
                   "not producers; the output projection reads v head by head")
        return names[2]

    def _out_projection(self, node: fx.Node, name: str, module: nn.Module, v_name: str) -> None:
        """The output projection, reading every unit of v through the attention product."""
        if name in self.layers:
            self._fail(node, f"module '{name}' is called more than once; shared layers are not supported")
        w = module.weight
        n_in = self.layers[v_name].n_units
        if int(w.shape[1]) != n_in:
            self._fail(node, f"the output projection reads {int(w.shape[1])} features but v has {n_in}")
        self.layers[name] = Layer(name, "conv", int(w.shape[0]), n_in, 1, (1, 1))
        self.modules[name] = module
        self.edges.append(Edge(v_name, name, np.arange(n_in), np.arange(n_in), "attention"))

    def _mha(self, node: fx.Node, mod: nn.MultiheadAttention):
        """``nn.MultiheadAttention``: q, k, v as head-labelled layers, the output projection reading v."""
        names = ["query", "key", "value"]
        xs = [node.args[i] if len(node.args) > i else node.kwargs.get(names[i]) for i in range(3)]
        if not all(isinstance(self.val.get(x), _V) for x in xs):
            self._fail(node, "its query, key and value must be traced tensors")
        if mod.bias_k is not None or mod.add_zero_attn:
            self._fail(node, "attention with add_bias_kv or add_zero_attn is not supported")
        e, heads = int(mod.embed_dim), int(mod.num_heads)
        if mod._qkv_same_embed_dim:
            parts = [("in_proj_weight", 0, e), ("in_proj_weight", e, 2 * e), ("in_proj_weight", 2 * e, 3 * e)]
        else:
            parts = [("q_proj_weight", 0, e), ("k_proj_weight", 0, e), ("v_proj_weight", 0, e)]
        base = node.target
        v_name = self._qkv_layers(node, base, mod, parts, xs, heads)
        out_name = f"{base}.out_proj"
        self._out_projection(node, out_name, mod.out_proj, v_name)
        self.consumer_of[node] = out_name
        n_dims = len(_shape(xs[0]))
        return (_V((n_dims - 1,), [(out_name, np.arange(self.layers[out_name].n_units))]), None)

    def _swin_attention(self, node: fx.Node) -> _V:
        """torchvision's ``shifted_window_attention`` (Swin v1 and v2), mapped like nn.MultiheadAttention."""
        try:
            bound = inspect.signature(_SWIN_ATTENTION).bind(*node.args, **node.kwargs).arguments
        except TypeError as exc:
            self._fail(node, f"unexpected arguments ({exc})")
        x = bound["input"]
        if not isinstance(self.val.get(x), _V) or self.val[x].const:
            self._fail(node, "its input is not a traced tensor")
        qkv_w, proj_w = bound["qkv_weight"], bound["proj_weight"]
        if not (isinstance(qkv_w, fx.Node) and qkv_w.op == "get_attr" and isinstance(proj_w, fx.Node)
                and proj_w.op == "get_attr"):
            self._fail(node, "its projection weights are not module parameters")
        heads = bound["num_heads"]
        heads = heads.meta.get("value") if isinstance(heads, fx.Node) else heads
        qkv_path, qkv_attr = qkv_w.target.rsplit(".", 1)
        proj_path = proj_w.target.rsplit(".", 1)[0]
        qkv_mod, proj_mod = self.mods.get(qkv_path), self.mods.get(proj_path)
        if qkv_mod is None or proj_mod is None or not isinstance(heads, int):
            self._fail(node, "its projections could not be matched to modules")
        c = int(_shape(x)[-1])
        base = qkv_path.rsplit(".", 1)[0] if "." in qkv_path else qkv_path
        parts = [(qkv_attr, 0, c), (qkv_attr, c, 2 * c), (qkv_attr, 2 * c, 3 * c)]
        v_name = self._qkv_layers(node, base, qkv_mod, parts, [x, x, x], heads)
        self._out_projection(node, proj_path, proj_mod, v_name)
        self.consumer_of[node] = proj_path
        return _V((len(_shape(x)) - 1,), [(proj_path, np.arange(self.layers[proj_path].n_units))])

    # -- post-processing ---------------------------------------------------
    def _fold_batchnorm(self) -> None:
        for node, name in self.consumer_of.items():
            users = list(node.users)
            if len(users) != 1 or users[0].op != "call_module":
                continue
            bn = self.mods[users[0].target]
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
        """Which part of a channel split each unit goes to, where one split holds every unit once and every part is read."""
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
        Any network built from Conv2d, Linear, normalisation, activations,
        pooling, LRN, dropout, layout operations (permute, reshape, flatten,
        channel shuffles), concatenation, channel splits, residual addition and
        attention (see the module docstring; an existing ``torch.fx.GraphModule``
        is used as it is).
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
        If the model cannot be traced by torch.fx, or an operation is not known
        to preserve channels (the message names the fx node).

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
        if isinstance(module, fx.GraphModule):
            gm = module
        else:
            try:
                graph = _Tracer().trace(module)
                gm = fx.GraphModule(module, graph)
            except Exception as exc:  # fx raises many kinds: TraceError, TypeError, SyntaxError in codegen, ...
                msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise ModularityError(
                    f"torch.fx could not trace {type(module).__name__} ({msg}); models with "
                    "data-dependent control flow, or submodules whose names are not Python identifiers, need a "
                    "traceable definition"
                ) from None
        param = next(module.parameters(), None)
        dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
        device = param.device if param is not None else torch.device("cpu")
        dummy = torch.zeros(1, in_channels, *input_size, dtype=dtype, device=device)
        try:
            # ShapeProp prints the failing node's traceback itself: keep stderr to one line.
            with torch.no_grad(), contextlib.redirect_stderr(io.StringIO()):
                _ShapeProp(gm).propagate(dummy)
        except Exception as exc:
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModularityError(
                f"a forward pass of {type(module).__name__} on a 1x{in_channels}x{input_size[0]}x{input_size[1]} "
                f"input failed ({msg}); pass the input size the model expects"
            ) from None
        return _Builder(gm).run()
    finally:
        module.train(was_training)
