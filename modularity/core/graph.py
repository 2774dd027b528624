"""Trace a CNN with torch.fx into a channel-level graph of its conv and linear layers.

Every conv (groups and depthwise included) and linear layer is a *layer* whose
units are its output channels or features. Every channel concatenation is a
layer too (named by the module that performs it, e.g. ``inception3a``) whose
units are the concatenated channels, labelled by the input they came from.
An *edge* says which input channels of a consumer read which units of a
producer; it is found by following each channel back through channel-preserving
operations (activations, batch norm, pooling, dropout, padding, flatten),
concatenations and residual additions. A residual stream is read from every
layer that writes into it, so its consumers are the "real" consumers of each
of those layers.

Anything the tracer does not understand raises :class:`ModularityError` naming
the fx node, rather than producing a silently wrong graph.
"""

from __future__ import annotations

import contextlib
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
        performs it (``inception3a``); ``input`` for the network input.
    kind : {"conv", "linear", "concat", "input"}
    n_units : int
        Output channels (conv, concat, input) or output features (linear).
    in_units : int
        Input channels or features read (0 for concat and input).
    groups : int
        Conv groups (1 otherwise).
    kernel_size : tuple of int
        Spatial kernel size (``()`` for linear, concat and input).
    row_scale : ndarray or None
        ``|gamma| / sqrt(var + eps)`` of the batch norm applied directly to this
        layer's output, folded into its incoming connection magnitudes.
    branches : ndarray of int or None
        Ground-truth branch label of each unit, where the architecture has one.
    branch_names : list of str or None
        A name for each branch label.
    branch_source : str or None
        Where the labels came from: ``"concat"`` (which input of the
        concatenation), ``"consumer_groups"`` (which group of a grouped consumer
        reads the unit) or ``"groups"`` (the layer's own conv groups).
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
    spatial position).
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
        The conv and linear modules by layer name (weights are read from here).
    """

    layers: dict[str, Layer]
    edges: list[Edge]
    modules: dict[str, nn.Module]

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
        """The weight tensor of a conv or linear layer, detached, on the CPU, float32."""
        return self.modules[name].weight.detach().to("cpu", torch.float32)


class _Tracer(fx.Tracer):
    """fx tracer that keeps conv/linear/batch-norm subclasses as leaves and records module paths."""

    def __init__(self) -> None:
        super().__init__()
        self._path: list[str] = []

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear, nn.modules.batchnorm._BatchNorm)):
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


# Modules and functions that keep each channel in place (no weights that mix channels).
_PASS_MODULES = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU,
    nn.Mish, nn.Hardswish, nn.Hardsigmoid, nn.Hardtanh, nn.Sigmoid, nn.Tanh, nn.Softplus,
    nn.Dropout, nn.Dropout2d, nn.AlphaDropout, nn.Identity, nn.MaxPool2d, nn.AvgPool2d,
    nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, nn.LocalResponseNorm, nn.ZeroPad2d,
    nn.ConstantPad2d, nn.ReflectionPad2d, nn.ReplicationPad2d, nn.Upsample, nn.Softmax,
    nn.LogSoftmax, nn.GroupNorm, nn.LayerNorm, nn.InstanceNorm2d, nn.modules.batchnorm._BatchNorm,
)
_PASS_FUNCTIONS = {
    torch.relu, torch.relu_, F.relu, F.relu6, F.leaky_relu, F.elu, F.gelu, F.silu, F.mish,
    F.hardswish, F.hardsigmoid, F.hardtanh, torch.sigmoid, F.sigmoid, torch.tanh, F.tanh,
    F.softplus, F.dropout, F.dropout2d, torch.dropout, F.max_pool2d, F.avg_pool2d,
    F.adaptive_avg_pool2d, F.adaptive_max_pool2d, F.pad, F.interpolate, F.local_response_norm,
    F.batch_norm, F.layer_norm, F.group_norm, torch.clamp, torch.clip, F.softmax, F.log_softmax,
    operator.neg, torch.neg, torch.abs, torch.exp, torch.sqrt, torch.square,
}
_PASS_METHODS = {
    "relu", "relu_", "sigmoid", "tanh", "contiguous", "clone", "detach", "float", "to",
    "type_as", "clamp", "clamp_", "clip", "neg", "abs", "exp", "sqrt", "softmax", "cpu",
    "double", "half", "requires_grad_", "sigmoid_", "tanh_", "square",
}
_ADD_OPS = {operator.add, operator.iadd, operator.sub, operator.isub, torch.add, torch.sub}
_MUL_OPS = {operator.mul, operator.imul, operator.truediv, operator.itruediv, torch.mul, torch.div}
_CAT_OPS = {torch.cat, torch.concat, torch.concatenate}
_FLATTEN_OPS = {torch.flatten, torch.reshape}
_REDUCE_OPS = {torch.mean, torch.sum, torch.amax, torch.amin}
_NON_TENSOR_FUNCS = {getattr, len}


def _stochastic_depth_funcs() -> set:
    try:
        from torchvision.ops import stochastic_depth

        return {stochastic_depth}
    except ImportError:  # pragma: no cover - torchvision is a dependency
        return set()


_PASS_FUNCTIONS |= _stochastic_depth_funcs()


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


def _select(lin: Lineage, sel: np.ndarray) -> Lineage:
    """Lineage of the channels ``sel`` of a value."""
    return [(s, i[sel]) for s, i in lin if np.any(i[sel] >= 0)]


def _n_channels(shape: tuple[int, ...] | None) -> int:
    if shape is None or len(shape) < 2:
        return 1
    return int(shape[1])


class _Builder:
    """Walks the shape-annotated fx graph once, computing each value's lineage."""

    def __init__(self, gm: fx.GraphModule) -> None:
        self.gm = gm
        self.mods = dict(gm.named_modules())
        self.lin: dict[fx.Node, object] = {}
        self.layers: dict[str, Layer] = {}
        self.edges: list[Edge] = []
        self.modules: dict[str, nn.Module] = {}
        self.squeezed: set[fx.Node] = set()
        self.consumer_of: dict[fx.Node, str] = {}
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
        return [a for a in flat if isinstance(a, fx.Node) and isinstance(self.lin.get(a), list)]

    def _fail(self, node: fx.Node, why: str) -> None:
        raise ModularityError(f"cannot trace channels through {_describe(node)}: {why}")

    def _layer_name(self, node: fx.Node) -> str:
        return node.target if node.op == "call_module" else node.name

    # -- main loop ---------------------------------------------------------
    def run(self) -> ChannelGraph:
        for node in self.gm.graph.nodes:
            self.lin[node] = self._visit(node)
        self._fold_batchnorm()
        self._label_branches()
        return ChannelGraph(self.layers, self.edges, self.modules)

    def _visit(self, node: fx.Node):
        shape = _shape(node)
        if node.op == "placeholder":
            if shape is None:
                return None
            c = _n_channels(shape)
            name = INPUT if INPUT not in self.layers else node.name
            self.layers[name] = Layer(name=name, kind=INPUT, n_units=c)
            return [(name, np.arange(c))]
        if node.op == "get_attr":
            return [] if shape is not None else None
        if node.op == "output":
            return None
        if shape is None:
            # A non-tensor value (a size, a tuple of tensors, ...).
            if node.op == "call_function" and node.target in (torch.split, torch.chunk, torch.tensor_split):
                return self._split(node)
            if node.op == "call_method" and node.target in ("split", "chunk"):
                return self._split(node)
            if node.op == "call_function" and node.target is operator.getitem:
                src = self.lin.get(node.args[0])
                if isinstance(src, tuple):
                    return None
            return None
        if node.op == "call_module":
            return self._module(node, self.mods[node.target], shape)
        return self._function(node, shape)

    def _module(self, node: fx.Node, mod: nn.Module, shape):
        x = node.args[0] if node.args else None
        lin_in = self.lin.get(x)
        if isinstance(mod, nn.Conv2d):
            return self._weighted(node, mod, "conv", lin_in)
        if isinstance(mod, nn.Linear):
            if _shape(x) is not None and len(_shape(x)) != 2:
                self._fail(node, f"nn.Linear on a {len(_shape(x))}-D input is not supported (only N x features)")
            return self._weighted(node, mod, "linear", lin_in)
        if isinstance(mod, (nn.Conv1d, nn.Conv3d)):
            self._fail(node, f"{type(mod).__name__} is not supported (only Conv2d and Linear)")
        if isinstance(mod, nn.Flatten):
            return self._flatten(node, x, shape)
        if isinstance(mod, _PASS_MODULES):
            if not isinstance(lin_in, list):
                self._fail(node, "its input is not a traced tensor")
            return self._pass(node, x, shape)
        if not any(True for _ in mod.parameters()) and isinstance(lin_in, list) and _shape(x) == shape:
            self._fail(node, f"unknown module type {type(mod).__name__}; "
                             "it has no weights but may mix channels")
        self._fail(node, f"unknown module type {type(mod).__name__}")

    def _weighted(self, node: fx.Node, mod: nn.Module, kind: str, lin_in) -> Lineage:
        name = node.target
        if name in self.layers:
            self._fail(node, f"module '{name}' is called more than once; shared layers are not supported")
        if not isinstance(lin_in, list):
            self._fail(node, "its input is not a traced tensor")
        w = mod.weight
        if kind == "conv":
            layer = Layer(name, "conv", int(w.shape[0]), int(mod.in_channels), int(mod.groups),
                          tuple(int(k) for k in w.shape[2:]))
        else:
            layer = Layer(name, "linear", int(w.shape[0]), int(w.shape[1]))
        self.layers[name] = layer
        self.modules[name] = mod
        self.consumer_of[node] = name
        for src, idx in lin_in:
            cols = np.flatnonzero(idx >= 0)
            if len(cols):
                self.edges.append(Edge(src, name, cols, idx[cols]))
        return [(name, np.arange(layer.n_units))]

    def _pass(self, node: fx.Node, x: fx.Node, shape) -> Lineage:
        lin = self.lin[x]
        c_in, c_out = _n_channels(_shape(x)), _n_channels(shape)
        if x in self.squeezed:
            self.squeezed.add(node)
            return lin
        if c_in != c_out:
            self._fail(node, f"it changes the channel count from {c_in} to {c_out}")
        return lin

    def _flatten(self, node: fx.Node, x: fx.Node, shape) -> Lineage:
        s_in = _shape(x)
        lin = self.lin.get(x)
        if not isinstance(lin, list) or s_in is None:
            self._fail(node, "its input is not a traced tensor")
        if s_in == shape:
            return lin
        if len(s_in) >= 2 and len(shape) == 2 and shape[0] == s_in[0] and shape[1] == int(np.prod(s_in[1:])):
            per = int(np.prod(s_in[2:])) if len(s_in) > 2 else 1
            return [(s, np.repeat(i, per)) for s, i in lin]
        if len(s_in) == 4 and len(shape) == 4 and shape[:2] == s_in[:2]:
            return lin  # a spatial reshape keeps channels
        self._fail(node, f"a reshape from {list(s_in)} to {list(shape)} mixes channels")

    def _split(self, node: fx.Node):
        x = node.args[0]
        lin = self.lin.get(x)
        s = _shape(x)
        dim = node.kwargs.get("dim", node.args[2] if len(node.args) > 2 else 0)
        if not isinstance(lin, list) or s is None or dim not in (1, 1 - len(s)):
            self._fail(node, "only splits along the channel dimension are supported")
        arg = node.args[1] if len(node.args) > 1 else node.kwargs.get("split_size_or_sections")
        c = s[1]
        target = node.target if isinstance(node.target, str) else node.target.__name__
        if target == "chunk":
            sizes = [len(p) for p in np.array_split(np.arange(c), int(arg))]
        elif isinstance(arg, int):
            sizes = [min(arg, c - k) for k in range(0, c, arg)]
        else:
            sizes = list(arg)
        bounds = np.cumsum([0] + sizes)
        return tuple(_select(lin, np.arange(a, b)) for a, b in zip(bounds[:-1], bounds[1:]))

    def _function(self, node: fx.Node, shape):
        t = node.target
        tensors = self._tensor_args(node)
        if node.op == "call_function" and t is operator.getitem:
            return self._getitem(node, shape)
        if node.op == "call_function" and t in _CAT_OPS or node.op == "call_method" and t == "cat":
            return self._cat(node, shape)
        if node.op == "call_function" and t in _ADD_OPS or node.op == "call_method" and t in ("add", "add_", "sub"):
            return self._add(node, tensors, shape)
        if node.op == "call_function" and t in _MUL_OPS or node.op == "call_method" and t in ("mul", "mul_", "div"):
            return self._mul(node, tensors, shape)
        if not tensors:
            return []  # a constant built inside forward
        x = tensors[0]
        if node.op == "call_function" and t in _PASS_FUNCTIONS or node.op == "call_method" and t in _PASS_METHODS:
            return self._pass(node, x, shape)
        if (node.op == "call_function" and t in _FLATTEN_OPS) or (
                node.op == "call_method" and t in ("view", "reshape", "flatten")):
            return self._flatten(node, x, shape)
        if node.op == "call_function" and t is torch.flatten or node.op == "call_method" and t == "flatten":
            return self._flatten(node, x, shape)
        if (node.op == "call_function" and t in _REDUCE_OPS) or (
                node.op == "call_method" and t in ("mean", "sum", "amax", "amin", "max")):
            s_in = _shape(x)
            if s_in is not None and len(shape) >= 2 and shape[:2] == s_in[:2]:
                return self.lin[x]
            self._fail(node, "only reductions over spatial dimensions are supported")
        if (node.op == "call_function" and t in (torch.unsqueeze, torch.squeeze)) or (
                node.op == "call_method" and t in ("unsqueeze", "squeeze")):
            return self._squeeze(node, x, shape)
        self._fail(node, "this operation is not known to preserve channels")

    def _squeeze(self, node: fx.Node, x: fx.Node, shape) -> Lineage:
        s_in = _shape(x)
        if x in self.squeezed and len(shape) == len(s_in) + 1 and shape[1] == 1:
            return self.lin[x]  # x[:, k] then unsqueeze(1): one channel back in place
        if s_in is not None and len(s_in) >= 2 and len(shape) >= 2 and s_in[:2] == shape[:2]:
            return self.lin[x]
        if s_in is not None and len(shape) == 2 and len(s_in) == 4 and shape[:2] == s_in[:2]:
            return self.lin[x]
        self._fail(node, f"a squeeze from {list(s_in or [])} to {list(shape)} moves the channel dimension")

    def _getitem(self, node: fx.Node, shape):
        src = self.lin.get(node.args[0])
        idx = node.args[1]
        if isinstance(src, tuple):
            return src[idx]
        if not isinstance(src, list):
            return None
        s_in = _shape(node.args[0])
        if not isinstance(idx, tuple):
            idx = (idx,)
        if not idx or idx[0] != slice(None):
            self._fail(node, "indexing the batch dimension is not supported")
        if len(idx) == 1 or idx[1] == slice(None) or idx[1] is Ellipsis:
            return src
        ch = idx[1]
        if isinstance(ch, int):
            self.squeezed.add(node)
            return _select(src, np.array([ch % s_in[1]]))
        if isinstance(ch, slice):
            return _select(src, np.arange(s_in[1])[ch])
        self._fail(node, "only int or slice channel indices are supported")

    def _cat(self, node: fx.Node, shape) -> Lineage:
        parts = node.args[0] if node.args else node.kwargs.get("tensors")
        dim = node.kwargs.get("dim", node.args[1] if len(node.args) > 1 else 0)
        if dim not in (1, 1 - len(shape)):
            self._fail(node, f"concatenation along dimension {dim}; only channels (dim 1) are supported")
        terms: Lineage = []
        offsets, branch_names, total = [], [], sum(_n_channels(_shape(p)) for p in parts)
        start = 0
        for p in parts:
            c = _n_channels(_shape(p))
            for src, idx in self.lin[p]:
                full = np.full(total, -1)
                full[start:start + c] = idx
                terms.append((src, full))
            offsets.append((start, start + c))
            branch_names.append(self._branch_name(p, node.meta.get("module_path") or ""))
            start += c
        terms = _merge(terms)
        sources = {s for s, _ in terms}
        for s in sources:
            self.layers[s].in_concat = True
        if sources <= {INPUT}:
            return terms  # a rearrangement of the input image, not a layer
        name = self._concat_name(node)
        branches = np.concatenate([np.full(b - a, k) for k, (a, b) in enumerate(offsets)])
        self.layers[name] = Layer(name, "concat", total, branches=branches, branch_names=branch_names,
                                  branch_source="concat", members=[(s, i.copy()) for s, i in terms])
        return terms + [(name, np.arange(total))]

    def _branch_name(self, node: fx.Node, concat_path: str) -> str:
        """The layer a concat input comes from, relative to the concat's module (``branch2``).

        An input that is itself a concatenation is named by its own branches
        joined with ``+`` (``branch3x3_2a+branch3x3_2b``).
        """
        src = self.lin.get(node)
        name = src[-1][0] if isinstance(src, list) and src else node.name
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

    def _add(self, node: fx.Node, tensors: list[fx.Node], shape) -> Lineage:
        c = _n_channels(shape)
        terms: Lineage = []
        for t in tensors:
            ct = _n_channels(_shape(t))
            if ct == c:
                terms.extend(self.lin[t])
            elif ct != 1:
                self._fail(node, f"adding tensors of {ct} and {c} channels")
        return terms

    def _mul(self, node: fx.Node, tensors: list[fx.Node], shape) -> Lineage:
        if len(tensors) == 1:
            return self._pass(node, tensors[0], shape)
        if not tensors:
            return []
        # A gate (N x C x 1 x 1, e.g. squeeze-excitation) scales the feature map it multiplies:
        # the channels come from the larger operand.
        sizes = [int(np.prod(_shape(t)[2:])) if len(_shape(t)) > 2 else 1 for t in tensors]
        if len(set(sizes)) > 1:
            return self.lin[tensors[int(np.argmax(sizes))]]
        return _merge([term for t in tensors for term in self.lin[t]])

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
            if layer.kind in ("concat", INPUT):
                continue
            labels = self._consumer_group_labels(name, layer)
            if labels is not None:
                layer.branches, layer.branch_source = labels, "consumer_groups"
            elif layer.kind == "conv" and 1 < layer.groups < layer.n_units:
                layer.branches = np.arange(layer.n_units) // (layer.n_units // layer.groups)
                layer.branch_source = "groups"
            if layer.branches is not None:
                layer.branch_names = [f"group {g}" for g in range(int(layer.branches.max()) + 1)]

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


def trace(module: nn.Module, input_size: tuple[int, int] = (224, 224), in_channels: int = 3) -> ChannelGraph:
    """Trace ``module`` into a :class:`ChannelGraph`.

    Parameters
    ----------
    module : nn.Module
        Any network built from Conv2d, Linear, batch norm, activations, pooling,
        LRN, dropout, flatten, concatenation and residual addition (an existing
        ``torch.fx.GraphModule`` is used as it is).
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
                ShapeProp(gm).propagate(dummy)
        except Exception as exc:
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModularityError(
                f"a forward pass of {type(module).__name__} on a 1x{in_channels}x{input_size[0]}x{input_size[1]} "
                f"input failed ({msg}); pass the input size the model expects"
            ) from None
        return _Builder(gm).run()
    finally:
        module.train(was_training)
