"""Import an ONNX CNN as a ``torch.fx.GraphModule`` built from real torch modules.

Every weighted ONNX node becomes a genuine ``nn.Conv2d`` / ``nn.Linear`` /
``nn.BatchNorm2d`` holding the ONNX initializers, every channel-preserving node a
genuine ``nn.ReLU`` / ``nn.MaxPool2d`` / ``nn.LocalResponseNorm`` / ..., and
concatenations and additions are ``torch.cat`` / ``operator.add`` call_function
nodes. The channel-graph tracer (:mod:`modularity.graph`) therefore sees the
same module types as in any hand-written PyTorch model, with no special cases.

Why not onnx2torch: it is not a dependency, and it converts many ops into its
own module classes (``OnnxConcat``, ``OnnxPadStatic``, ``OnnxGlobalAveragePool``,
...) that the tracer would have to learn one by one. This importer supports the
small op set of classic CNNs (the BVLC Model Zoo graphs and torch exports of
torchvision classifiers), maps each op onto stock torch modules, and refuses
anything else with a one-line error that names the op and the node.

Naming: a weighted module is named after its weight initializer
(``conv1/7x7_s2_w_0`` becomes ``conv1_7x7_s2``), another module after its ONNX
node name when that is descriptive, else after the layer it follows
(``conv1_7x7_s2_relu``). A concatenation is named after the common prefix of
its inputs (``inception_3a``) unless its node or output has a descriptive name;
the name is kept in ``node.meta["onnx_name"]`` (the raw ONNX node name in
``node.meta["onnx_node"]``) and used as the fx node's name.

Constant subgraphs (``Constant``, ``ConstantOfShape``, ``Unsqueeze`` of weights,
...) are folded with :class:`onnx.reference.ReferenceEvaluator` at the model's own
opset (an opset-9 ``Unsqueeze`` takes its axes as an attribute, an opset-13 one as
an input) before conversion. A Caffe2-style scale layer after a batch norm
(``BatchNormalization`` -> ``Mul`` by a per-channel constant -> ``Add`` of one) is
folded into the ``nn.BatchNorm2d``, so the tracer sees one batch norm.

Bad files are refused with one line: a missing, empty or unreadable file, a
corrupt protobuf, weights holding NaN or infinite values (naming the
initializer), constants or inputs too large for memory, an unsupported op or
construct (naming it and its node), or a graph with no layer to analyse.
"""

from __future__ import annotations

import math
import operator
import re
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import fx, nn

from ..errors import ModularityError
from .checkpoints import check_readable_file, sha256_file
from .source import LoadedModel

__all__ = ["SUPPORTED_OPS", "load_onnx", "read_onnx", "onnx_to_graph_module", "fold_constants",
           "sanitize_name"]

SUPPORTED_OPS = (
    "Conv", "Gemm", "MatMul", "BatchNormalization", "Relu", "LeakyRelu", "Sigmoid", "Tanh",
    "Clip", "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "LRN", "Dropout",
    "Softmax", "Concat", "Add", "Sum", "Mul", "Flatten", "Reshape", "Squeeze", "Identity", "Pad",
)
_FOLDABLE_ONLY = ("Constant", "ConstantOfShape")
_DEFAULT_SIZE = (224, 224)
# Guards against files that declare absurd sizes: no CNN weight, constant or feature map needs more values
# (VGG's largest weight has 1.0e8), and the dummy input is at most 8192 pixels on a side.
_MAX_ELEMENTS = 1 << 28
_MAX_SIDE = 8192

# Names an exporter makes up (n12, r7, node_5, val_3, 123, Conv_3, onnx::Conv_5) say nothing;
# conv1, fc6 or Mixed_5b do.
_GENERIC = re.compile(r"^(?:(?:n|r|node|op|val|tensor|t|v|x|y)[_:.]?\d+|\d+|[A-Z][A-Za-z]*_\d+)$")
_WEIGHT_SUFFIX = re.compile(r"[._/:]?(?:w|W|weight|weights|kernel|filter)(?:_\d+)?(?::\d+)?$")


def sanitize_name(name: str) -> str:
    """Turn an ONNX name into a valid Python identifier usable as a submodule name.

    Parameters
    ----------
    name : str
        Any ONNX node, tensor or initializer name (``conv1/7x7_s2``).

    Returns
    -------
    str
        Runs of non-word characters replaced by ``_`` (``conv1_7x7_s2``); a
        leading digit gets an ``l_`` prefix; an empty result becomes ``layer``.
    """
    out = re.sub(r"\W+", "_", name.removeprefix("onnx::")).strip("_")
    if not out:
        return "layer"
    if out[0].isdigit():
        out = "l_" + out
    return out


def _is_generic(name: str) -> bool:
    return not name or bool(_GENERIC.match(name.removeprefix("onnx::")))


def _node_label(onnx_node) -> str:
    """A node's name; torch-exporter scopes become module paths (``/layer1/layer1.0/conv1/Conv`` -> ``layer1.0.conv1``)."""
    name = onnx_node.name
    if not name.startswith("/"):
        return name
    parts = [p for p in name.split("/") if p]
    if parts and re.fullmatch(re.escape(onnx_node.op_type) + r"(_\d+)?", parts[-1]):
        parts = parts[:-1]
    path: list[str] = []
    for p in parts:  # each scope is either a child name or the parent's name plus ".child"
        if path and p.startswith(path[-1] + "."):
            path[-1] = p
        else:
            path.append(p)
    return ".".join(path)


def read_onnx(path: str | Path):
    """Read an ONNX file, turning any failure into one clear line.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    onnx.ModelProto

    Raises
    ------
    ModularityError
        If the file is missing, truncated, corrupt or not an ONNX model.
    """
    import onnx

    path = check_readable_file(path, "ONNX file")
    try:
        model = onnx.load(str(path))
    except Exception as exc:  # protobuf DecodeError, external-data errors, ...
        msg = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise ModularityError(f"{path} is not a readable ONNX model; the file may be truncated or "
                              f"corrupt ({type(exc).__name__}: {msg})") from None
    if not model.graph.node:
        raise ModularityError(f"{path} is not a readable ONNX model (it holds no graph nodes); "
                              "the file may be truncated or corrupt")
    return model


def _attrs(node) -> dict[str, Any]:
    from onnx import helper

    out = {}
    for a in node.attribute:
        v = helper.get_attribute_value(a)
        out[a.name] = v.decode() if isinstance(v, bytes) else v
    return out


def _opset(model) -> int:
    for imp in model.opset_import:
        if imp.domain in ("", "ai.onnx"):
            return int(imp.version)
    return 13


def _onnx_opsets(model) -> dict[str, int]:
    """The model's opset per domain, ``ai.onnx`` spelled ``""``; the default domain is always present."""
    opsets = {("" if imp.domain == "ai.onnx" else imp.domain): int(imp.version) for imp in model.opset_import}
    opsets.setdefault("", _opset(model))
    return opsets


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:160] if text else type(exc).__name__


def _bounds_only(model) -> set[str]:
    """Tensors read only as Clip bounds or a Pad value, where an infinity is legitimate."""
    uses: dict[str, list[bool]] = defaultdict(list)
    for node in model.graph.node:
        for k, name in enumerate(node.input):
            uses[name].append((node.op_type == "Clip" and k >= 1) or (node.op_type == "Pad" and k == 2))
    return {name for name, ok in uses.items() if all(ok)}


def _non_finite(arr: np.ndarray) -> int:
    if arr.dtype.kind not in "fc" or not arr.size:
        return 0
    return int(arr.size - np.count_nonzero(np.isfinite(arr)))


def _check_size(node, shape, what: str = "an output") -> None:
    n = 1
    for d in shape:
        n *= max(int(d), 0)
    if n > _MAX_ELEMENTS:
        raise ModularityError(f"ONNX node '{node.name or node.output[0]}' ({node.op_type}) would make {what} of "
                              f"shape {[int(d) for d in shape]} ({n:.3g} values), more than any CNN needs "
                              f"({_MAX_ELEMENTS:.3g}); the file is corrupt or not a CNN")


def _fold_one(node, opsets: dict[str, int], feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Evaluate one node at the model's opsets (a ``NodeProto`` alone would run at the newest opset)."""
    import onnx
    from onnx import helper
    from onnx.reference import ReferenceEvaluator

    if node.op_type == "ConstantOfShape" and node.input and node.input[0] in feeds:
        _check_size(node, np.asarray(feeds[node.input[0]]).reshape(-1), "a constant")
    elif node.op_type == "Expand" and len(node.input) > 1 and node.input[1] in feeds:
        _check_size(node, np.broadcast_shapes(np.shape(feeds[node.input[0]]),
                                              tuple(int(d) for d in np.asarray(feeds[node.input[1]]).reshape(-1))),
                    "a constant")
    elif node.op_type == "Tile" and len(node.input) > 1 and node.input[1] in feeds:
        reps = np.asarray(feeds[node.input[1]]).reshape(-1)
        _check_size(node, [a * int(b) for a, b in zip(np.shape(feeds[node.input[0]]), reps)], "a constant")
    graph = helper.make_graph([node], "fold", [helper.make_value_info(n, onnx.TypeProto()) for n in feeds],
                              [helper.make_value_info(n, onnx.TypeProto()) for n in node.output if n])
    return ReferenceEvaluator(graph, opsets=opsets).run(None, feeds)


def fold_constants(model) -> tuple[dict[str, np.ndarray], dict[str, str], set[int]]:
    """Evaluate every node whose inputs are all constant, at the model's own opset.

    Parameters
    ----------
    model : onnx.ModelProto

    Returns
    -------
    constants : dict of str to ndarray
        Initializers and folded values by tensor name.
    origin : dict of str to str
        For each constant, the initializer (or constant-producing output) it was
        derived from, used to name layers after their weights.
    folded : set of int
        Indices of the nodes that were folded.

    Raises
    ------
    ModularityError
        If an initializer cannot be decoded or holds NaN/Inf values (naming
        it), a constant would be too large for memory, or a node cannot be
        evaluated.
    """
    from onnx import numpy_helper

    g = model.graph
    consts: dict[str, np.ndarray] = {}
    bounds = _bounds_only(model)
    for init in g.initializer:
        try:
            n = int(np.prod([max(int(d), 0) for d in init.dims], dtype=np.float64)) if init.dims else 1
            if n > _MAX_ELEMENTS:
                raise ModularityError(f"ONNX initializer '{init.name}' declares shape {list(init.dims)} "
                                      f"({n:.3g} values), more than any CNN weight; the file is corrupt")
            arr = numpy_helper.to_array(init)
        except ModularityError:
            raise
        except Exception as exc:  # raw data of the wrong length, an unknown data type, ...
            raise ModularityError(f"ONNX initializer '{init.name}' cannot be decoded "
                                  f"({type(exc).__name__}: {_first_line(exc)}); the file may be corrupt") from None
        bad = _non_finite(arr) if init.name not in bounds else 0
        if bad:
            raise ModularityError(f"ONNX initializer '{init.name}' has {bad} NaN/Inf value{'s' if bad != 1 else ''} "
                                  f"(of {arr.size}); only finite weights can be analysed")
        consts[init.name] = arr
    origin = {k: k for k in consts}
    opsets = _onnx_opsets(model)
    folded = set()
    for i, node in enumerate(g.node):
        ins = [n for n in node.input if n]
        if node.domain not in ("", "ai.onnx"):
            continue
        if not all(n in consts for n in ins) or (not ins and node.op_type not in _FOLDABLE_ONLY):
            continue
        try:
            results = _fold_one(node, opsets, {n: consts[n] for n in ins})
        except ModularityError:
            raise
        except Exception as exc:
            raise ModularityError(
                f"cannot evaluate constant ONNX node '{node.name or node.output[0]}' ({node.op_type}, opset "
                f"{opsets.get(node.domain or '', '?')}): {_first_line(exc)}"
            ) from None
        data = [n for n in node.input if n and n in consts and consts[n].ndim > 0]
        for out, val in zip(node.output, results):
            if out:
                consts[out] = np.asarray(val)
                origin[out] = origin[data[0]] if data and node.op_type not in _FOLDABLE_ONLY else out
        folded.add(i)
    return consts, origin, folded


def _input_spec(model, consts) -> tuple[str, tuple[int, int], int, bool]:
    inputs = [i for i in model.graph.input if i.name not in consts]
    if not inputs:
        raise ModularityError("the ONNX graph has no non-constant input")
    if len(inputs) > 1:
        raise ModularityError(f"the ONNX graph has {len(inputs)} inputs "
                              f"({', '.join(i.name for i in inputs[:4])}); only single-input CNNs are supported")
    inp = inputs[0]
    dims = [d.dim_value if d.HasField("dim_value") else 0 for d in inp.type.tensor_type.shape.dim]
    if len(dims) not in (0, 4):
        raise ModularityError(f"the ONNX graph input '{inp.name}' has {len(dims)} dimensions {dims}; "
                              "only image CNNs (N x C x H x W input) are supported")
    channels = int(dims[1]) if len(dims) == 4 and dims[1] > 0 else 3
    if len(dims) == 4 and dims[2] > 0 and dims[3] > 0:
        size, static = (int(dims[2]), int(dims[3])), True
    else:
        size, static = _DEFAULT_SIZE, False
    if max(size) > _MAX_SIDE or channels * size[0] * size[1] > _MAX_ELEMENTS:
        raise ModularityError(f"the ONNX graph input '{inp.name}' declares {channels} x {size[0]} x {size[1]} "
                              f"values, too large to trace (at most {_MAX_SIDE} pixels a side)")
    return inp.name, size, channels, static


class _Converter:
    """Builds the fx graph node by node, running each new op on a dummy input for shapes."""

    def __init__(self, model, input_size: tuple[int, int] | None) -> None:
        self.model = model
        self.opset = _opset(model)
        self.consts, self.origin, self.folded = fold_constants(model)
        name, size, channels, _ = _input_spec(model, self.consts)
        self.input_name = name
        self.input_size = input_size or size
        self.channels = channels
        self.root = nn.Module()
        self.graph = fx.Graph()
        self.nodes: dict[str, fx.Node] = {}
        self.vals: dict[str, torch.Tensor] = {}
        self.stems: dict[str, str] = {}
        self.used: set[str] = set()
        self.fused: dict[str, str] = {}  # ONNX output -> ONNX output it aliases (fused Add)
        self.skip: set[int] = set()
        self.onnx_nodes = list(model.graph.node)  # held, so that id() of a node is stable
        self.index = {id(n): i for i, n in enumerate(self.onnx_nodes)}
        self.consumers: dict[str, list] = defaultdict(list)
        for node in self.onnx_nodes:
            for n in node.input:
                self.consumers[n].append(node)
        self.graph_outputs = {o.name for o in model.graph.output}

    # -- naming --------------------------------------------------------------
    def unique(self, base: str) -> str:
        base = sanitize_name(base)
        if hasattr(fx.GraphModule, base) or base in ("input", "output"):
            base = base + "_"
        name, k = base, 1
        while name in self.used:
            name = f"{base}_{k}"
            k += 1
        self.used.add(name)
        return name

    def weight_stem(self, onnx_node, weight: str) -> str:
        """Name a weighted layer: its weight's name without the suffix, else its node or output name."""
        src = self.origin.get(weight, weight)
        for cand in (_WEIGHT_SUFFIX.sub("", src.removeprefix("onnx::")), src, _node_label(onnx_node),
                     onnx_node.output[0]):
            if cand and not _is_generic(cand):
                return cand
        return f"{onnx_node.op_type.lower()}{len(self.used)}"

    def plain_stem(self, onnx_node, suffix: str) -> str:
        """Name a weight-free layer: its node name, else the layer it follows plus ``suffix``."""
        if not _is_generic(_node_label(onnx_node)):
            return _node_label(onnx_node)
        x = next((n for n in onnx_node.input if n in self.stems), None)
        return f"{self.stems[x]}_{suffix}" if x else f"{suffix}{len(self.used)}"

    # -- graph building -------------------------------------------------------
    def tensor_in(self, onnx_node, k: int = 0) -> str:
        name = onnx_node.input[k]
        name = self.fused.get(name, name)
        if name not in self.nodes:
            if name in self.consts:
                raise self.unsupported(onnx_node, "a constant where a feature map was expected")
            raise ModularityError(f"ONNX node '{onnx_node.name or onnx_node.output[0]}' reads '{name}', "
                                  "which no earlier node produces")
        return name

    def const_in(self, onnx_node, k: int, what: str, finite: bool = True) -> np.ndarray | None:
        if len(onnx_node.input) <= k or not onnx_node.input[k]:
            return None
        name = onnx_node.input[k]
        if name not in self.consts:
            raise self.unsupported(onnx_node, f"a non-constant {what}")
        return self.finite(self.consts[name], name) if finite else self.consts[name]

    def finite(self, value: np.ndarray, name: str) -> np.ndarray:
        """``value`` if it holds no NaN/Inf, else a one-line error naming the initializer it came from."""
        bad = _non_finite(np.asarray(value))
        if bad:
            src = self.origin.get(name, name)
            via = f" (through '{name}')" if src != name else ""
            raise ModularityError(f"ONNX initializer '{src}'{via} has {bad} NaN/Inf value{'s' if bad != 1 else ''} "
                                  f"(of {np.size(value)}); only finite weights can be analysed")
        return value

    def unsupported(self, onnx_node, why: str | None = None) -> ModularityError:
        where = onnx_node.name or onnx_node.output[0]
        if why:
            return ModularityError(f"ONNX op '{onnx_node.op_type}' at node '{where}' is not supported with {why}")
        return ModularityError(f"ONNX op '{onnx_node.op_type}' at node '{where}' is not supported; "
                               f"supported ops: {', '.join(SUPPORTED_OPS)}")

    def emit_module(self, name: str, module: nn.Module, inputs: list[str], onnx_node, out: str | None = None,
                    stem: str | None = None) -> str:
        """Add ``module`` under ``name``, call it on ``inputs`` and record the value as ``out``."""
        self.root.add_module(name, module.eval())
        node = self.graph.call_module(name, tuple(self.nodes[i] for i in inputs))
        self._meta(node, onnx_node)
        with torch.no_grad():
            val = module(*(self.vals[i] for i in inputs))
        key = out or f"{name}:out"
        self.nodes[key], self.vals[key] = node, val
        self.stems[key] = stem or self.stems.get(inputs[0], name)
        return key

    def emit_function(self, fn: Callable, args: tuple, kwargs: dict, onnx_node, out: str, stem: str,
                      name: str | None = None, concrete: Callable | None = None) -> str:
        def to_node(a):
            if isinstance(a, str) and a in self.nodes:
                return self.nodes[a]
            if isinstance(a, (list, tuple)):
                return type(a)(to_node(x) for x in a)
            return a

        def to_val(a):
            if isinstance(a, str) and a in self.vals:
                return self.vals[a]
            if isinstance(a, (list, tuple)):
                return type(a)(to_val(x) for x in a)
            return a

        node = self.graph.create_node("call_function", fn, to_node(args), to_node(kwargs), name=name)
        self._meta(node, onnx_node)
        with torch.no_grad():
            val = (concrete or fn)(*to_val(args), **to_val(kwargs))
        self.nodes[out], self.vals[out], self.stems[out] = node, val, stem
        return out

    def emit_buffer(self, name: str, value: torch.Tensor) -> str:
        self.root.register_buffer(name, value)
        node = self.graph.get_attr(name)
        self.nodes[name], self.vals[name], self.stems[name] = node, value, name
        return name

    @staticmethod
    def _meta(node: fx.Node, onnx_node) -> None:
        node.meta["onnx_node"] = onnx_node.name
        node.meta["onnx_op"] = onnx_node.op_type
        node.meta.setdefault("onnx_name", onnx_node.name)

    def alias(self, out: str, src: str) -> None:
        self.nodes[out], self.vals[out], self.stems[out] = self.nodes[src], self.vals[src], self.stems[src]

    # -- main -----------------------------------------------------------------
    def run(self) -> fx.GraphModule:
        h, w = self.input_size
        ph = self.graph.placeholder(sanitize_name(self.input_name) if sanitize_name(self.input_name) != "input"
                                    else "x")
        self.nodes[self.input_name] = ph
        self.vals[self.input_name] = torch.zeros(1, self.channels, h, w)
        self.stems[self.input_name] = "input"
        for i, node in enumerate(self.onnx_nodes):
            if i in self.folded or i in self.skip:
                continue
            if node.domain not in ("", "ai.onnx"):
                raise self.unsupported(node)
            handler = getattr(self, f"op_{node.op_type}", None)
            if handler is None or node.op_type not in SUPPORTED_OPS:
                raise self.unsupported(node)
            handler(node)
        outs = []
        for o in self.model.graph.output:
            name = self.fused.get(o.name, o.name)
            if name not in self.nodes:
                raise ModularityError(f"ONNX graph output '{o.name}' is a constant or is not produced")
            outs.append(self.nodes[name])
        self.graph.output(outs[0] if len(outs) == 1 else tuple(outs))
        gm = fx.GraphModule(self.root, self.graph, class_name="OnnxModel")
        return gm.eval()

    def _check_extra_outputs(self, node, what: str) -> None:
        for extra in node.output[1:]:
            if extra and (self.consumers.get(extra) or extra in self.graph_outputs):
                raise self.unsupported(node, f"its {what} output in use")

    # -- ops ------------------------------------------------------------------
    def _spatial_pads(self, node, a: dict, x: torch.Tensor, kernel, strides, dilations) -> tuple[int, int, int, int]:
        """(top, left, bottom, right) from ``pads`` or ``auto_pad``."""
        auto = a.get("auto_pad", "NOTSET")
        if auto in ("NOTSET", ""):
            pads = list(a.get("pads", [0, 0, 0, 0]))
            if len(pads) != 4:
                raise self.unsupported(node, f"pads {pads} (only 2-D spatial pads)")
            return pads[0], pads[1], pads[2], pads[3]
        if auto == "VALID":
            return 0, 0, 0, 0
        begin, end = [], []
        for size, k, s, d in zip(x.shape[2:], kernel, strides, dilations):
            total = max((math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0)
            lo = total // 2 if auto == "SAME_UPPER" else total - total // 2
            begin.append(lo)
            end.append(total - lo)
        return begin[0], begin[1], end[0], end[1]

    def op_Conv(self, node) -> None:
        a = _attrs(node)
        x = self.tensor_in(node, 0)
        weight = self.const_in(node, 1, "weight")
        bias = self.const_in(node, 2, "bias")
        if weight.ndim != 4:
            raise self.unsupported(node, f"a {weight.ndim - 2}-D kernel (only 2-D convolutions)")
        kernel = tuple(int(k) for k in weight.shape[2:])
        strides = tuple(a.get("strides", [1, 1]))
        dil = tuple(a.get("dilations", [1, 1]))
        groups = int(a.get("group", 1))
        top, left, bottom, right = self._spatial_pads(node, a, self.vals[x], kernel, strides, dil)
        stem = self.weight_stem(node, node.input[1])
        name = self.unique(stem)
        if (top, left) != (bottom, right):
            pad = self.emit_module(self.unique(f"{name}_pad"), nn.ZeroPad2d((left, right, top, bottom)),
                                   [x], node, stem=name)
            x, padding = pad, (0, 0)
        else:
            padding = (top, left)
        xs = self.vals[x].shape
        if xs[1] != int(weight.shape[1]) * groups:
            raise self.unsupported(node, f"a weight of shape {list(weight.shape)} and group {groups} on an input "
                                         f"of {xs[1]} channels")
        _check_size(node, [xs[0], weight.shape[0], xs[2], xs[3]], "a feature map")
        conv = nn.Conv2d(int(weight.shape[1]) * groups, int(weight.shape[0]), kernel, strides, padding, dil,
                         groups, bias=bias is not None)
        with torch.no_grad():
            conv.weight.copy_(torch.from_numpy(np.array(weight, np.float32)))
            if bias is not None:
                conv.bias.copy_(torch.from_numpy(np.array(bias.reshape(-1), np.float32)))
        self.emit_module(name, conv, [x], node, out=node.output[0], stem=name)

    def _linear(self, node, x: str, weight: np.ndarray, bias: np.ndarray | None, out: str) -> None:
        if self.vals[x].dim() != 2:
            raise self.unsupported(node, f"a {self.vals[x].dim()}-D input (only N x features)")
        name = self.unique(self.weight_stem(node, node.input[1]))
        lin = nn.Linear(int(weight.shape[1]), int(weight.shape[0]), bias=bias is not None)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(np.array(weight, np.float32)))
            if bias is not None:
                lin.bias.copy_(torch.from_numpy(np.array(
                    np.broadcast_to(bias.reshape(-1), (weight.shape[0],)), np.float32)))
        self.emit_module(name, lin, [x], node, out=out, stem=name)

    def op_Gemm(self, node) -> None:
        a = _attrs(node)
        if a.get("transA", 0):
            raise self.unsupported(node, "transA=1")
        x = self.tensor_in(node, 0)
        b = self.const_in(node, 1, "weight (B)")
        c = self.const_in(node, 2, "bias (C)")
        weight = (b if a.get("transB", 0) else b.T) * float(a.get("alpha", 1.0))
        bias = None if c is None else np.asarray(c, np.float32) * float(a.get("beta", 1.0))
        if bias is not None and bias.size not in (1, weight.shape[0]):
            raise self.unsupported(node, f"a bias of shape {list(c.shape)}")
        self._linear(node, x, weight, bias, node.output[0])

    def op_MatMul(self, node) -> None:
        x = self.tensor_in(node, 0)
        b = self.const_in(node, 1, "weight (B)")
        if b.ndim != 2:
            raise self.unsupported(node, f"a {b.ndim}-D weight")
        bias, out = None, node.output[0]
        users = self.consumers.get(out, [])
        if len(users) == 1 and users[0].op_type == "Add" and out not in self.graph_outputs:
            add = users[0]
            other = [n for n in add.input if n != out]
            if len(other) == 1 and other[0] in self.consts and self.consts[other[0]].size == b.shape[1]:
                bias = self.finite(self.consts[other[0]], other[0])
                self.skip.add(self.index[id(add)])
                self.fused[add.output[0]] = out
        self._linear(node, x, b.T, bias, out)

    def op_BatchNormalization(self, node) -> None:
        a = _attrs(node)
        self._check_extra_outputs(node, "training-statistics")
        x = self.tensor_in(node, 0)
        scale, bias = self.const_in(node, 1, "scale"), self.const_in(node, 2, "bias")
        mean, var = self.const_in(node, 3, "mean"), self.const_in(node, 4, "variance")
        dim = self.vals[x].dim()
        cls = {4: nn.BatchNorm2d, 2: nn.BatchNorm1d}.get(dim)
        if cls is None:
            raise self.unsupported(node, f"a {dim}-D input")
        bn = cls(int(scale.size), eps=float(a.get("epsilon", 1e-5)))
        scale, bias = self._fuse_scale_layer(node, scale, bias, dim)
        with torch.no_grad():
            for t, v in ((bn.weight, scale), (bn.bias, bias), (bn.running_mean, mean), (bn.running_var, var)):
                t.copy_(torch.from_numpy(np.array(v.reshape(-1), np.float32)))
        stem = _node_label(node) if not _is_generic(_node_label(node)) else f"{self.stems[x]}_bn"
        self.emit_module(self.unique(stem), bn, [x], node, out=node.output[0])

    def _per_channel(self, value: np.ndarray, channels: int, rank: int) -> np.ndarray | None:
        """A constant that broadcasts as one value per channel (C x 1 x 1, 1 x C x 1 x 1, scalar), as a vector."""
        value = np.asarray(value)
        if value.ndim > rank:
            return None
        shape = (1,) * (rank - value.ndim) + value.shape
        if shape[0] != 1 or shape[1] not in (1, channels) or any(d != 1 for d in shape[2:]):
            return None
        return np.broadcast_to(value.reshape(-1), (channels,)).astype(np.float64)

    def _fuse_scale_layer(self, node, scale, bias, rank: int) -> tuple[np.ndarray, np.ndarray]:
        """Fold a Caffe2 scale layer (``Mul`` by, then ``Add`` of, per-channel constants) into the batch norm."""
        scale, bias = np.asarray(scale, np.float64).reshape(-1), np.asarray(bias, np.float64).reshape(-1)
        out = node.output[0]
        for op in ("Mul", "Add"):
            users = self.consumers.get(out, [])
            if len(users) != 1 or out in self.graph_outputs or users[0].op_type != op or len(users[0].input) != 2:
                break
            user = users[0]
            other = [n for n in user.input if n != out]
            if len(other) != 1 or other[0] not in self.consts:
                break
            vec = self._per_channel(self.consts[other[0]], scale.size, rank)
            if vec is None:
                break
            vec = self.finite(vec, other[0])
            if op == "Mul":
                scale, bias = scale * vec, bias * vec
            else:
                bias = bias + vec
            self.skip.add(self.index[id(user)])
            self.fused[user.output[0]] = node.output[0]
            out = user.output[0]
        return scale, bias

    def op_Mul(self, node) -> None:
        ins = list(node.input)
        tensors = [n for n in ins if n not in self.consts]
        if not tensors or len(ins) != 2:
            raise self.unsupported(node, "only constant inputs" if not tensors else f"{len(ins)} inputs")
        a = self.tensor_in(node, ins.index(tensors[0]))
        other = ins[1] if ins[0] == tensors[0] else ins[0]
        if other in self.consts:
            value = self.finite(self.consts[other], other)
            b = self.emit_buffer(self.unique(f"{self.stems[a]}_scale"),
                                 torch.from_numpy(np.array(value, np.float32)))
        else:
            b = self.tensor_in(node, ins.index(other))
        shape = torch.broadcast_shapes(self.vals[a].shape, self.vals[b].shape)
        if shape != self.vals[a].shape and (other in self.consts or shape != self.vals[b].shape):
            raise self.unsupported(node, f"a product that broadcasts {list(self.vals[a].shape)} to {list(shape)}")
        name = self.unique(_node_label(node) if not _is_generic(_node_label(node)) else f"{self.stems[a]}_mul")
        self.emit_function(operator.mul, (a, b), {}, node, node.output[0], self.stems[a], name=name)

    def _simple(self, node, module: nn.Module, suffix: str) -> None:
        x = self.tensor_in(node, 0)
        self.emit_module(self.unique(self.plain_stem(node, suffix)), module, [x], node, out=node.output[0])

    def op_Relu(self, node) -> None:
        self._simple(node, nn.ReLU(), "relu")

    def op_LeakyRelu(self, node) -> None:
        self._simple(node, nn.LeakyReLU(float(_attrs(node).get("alpha", 0.01))), "leakyrelu")

    def op_Sigmoid(self, node) -> None:
        self._simple(node, nn.Sigmoid(), "sigmoid")

    def op_Tanh(self, node) -> None:
        self._simple(node, nn.Tanh(), "tanh")

    def op_Clip(self, node) -> None:
        a = _attrs(node)
        lo = self.const_in(node, 1, "minimum", finite=False)  # an infinite bound is legitimate
        hi = self.const_in(node, 2, "maximum", finite=False)
        lo = float(lo) if lo is not None else float(a.get("min", -np.inf))
        hi = float(hi) if hi is not None else float(a.get("max", np.inf))
        if lo == 0.0 and hi == 6.0:
            self._simple(node, nn.ReLU6(), "relu6")
        elif lo == 0.0 and hi == np.inf:
            self._simple(node, nn.ReLU(), "relu")
        else:
            self._simple(node, nn.Hardtanh(lo, hi), "clip")

    def _pool(self, node, kind: str) -> None:
        a = _attrs(node)
        x = self.tensor_in(node, 0)
        xv = self.vals[x]
        if xv.dim() != 4:
            raise self.unsupported(node, f"a {xv.dim()}-D input (only 2-D pooling)")
        kernel = tuple(int(k) for k in a["kernel_shape"])
        strides = tuple(int(s) for s in a.get("strides", [1, 1]))
        dil = tuple(int(d) for d in a.get("dilations", [1, 1]))
        ceil = bool(a.get("ceil_mode", 0))
        top, left, bottom, right = self._spatial_pads(node, a, xv, kernel, strides, dil)
        stem = self.plain_stem(node, kind)
        symmetric = (top, left) == (bottom, right) and top <= kernel[0] // 2 and left <= kernel[1] // 2
        if kind == "maxpool":
            self._check_extra_outputs(node, "indices")
            if symmetric:
                mod = nn.MaxPool2d(kernel, strides, (top, left), dil, ceil_mode=ceil)
                self.emit_module(self.unique(stem), mod, [x], node, out=node.output[0])
                return
            expected = self._pool_out(xv.shape[2:], kernel, strides, dil, (top, left, bottom, right), ceil)
            if (top, left) == (0, 0) and dil == (1, 1):
                # Caffe-style end padding: ceil_mode reproduces it when the output size agrees.
                mod = nn.MaxPool2d(kernel, strides, 0, dil, ceil_mode=True)
                with torch.no_grad():
                    if tuple(mod(xv).shape[2:]) == expected:
                        self.emit_module(self.unique(stem), mod, [x], node, out=node.output[0])
                        return
            name = self.unique(stem)
            pad = self.emit_module(self.unique(f"{name}_pad"),
                                   nn.ConstantPad2d((left, right, top, bottom), float("-inf")), [x], node)
            self.emit_module(name, nn.MaxPool2d(kernel, strides, 0, dil, ceil_mode=ceil), [pad], node,
                             out=node.output[0])
            return
        if dil != (1, 1):
            raise self.unsupported(node, "dilations")
        include = bool(a.get("count_include_pad", 0))
        if symmetric:
            mod = nn.AvgPool2d(kernel, strides, (top, left), ceil_mode=ceil, count_include_pad=include)
            self.emit_module(self.unique(stem), mod, [x], node, out=node.output[0])
            return
        h, w = xv.shape[2:]
        expected = self._pool_out((h, w), kernel, strides, dil, (top, left, bottom, right), ceil)
        if expected == (1, 1) and not include and top == 0 and left == 0 and kernel[0] >= h and kernel[1] >= w:
            # one window covering the whole map, padding excluded: the global mean
            self.emit_module(self.unique(stem), nn.AdaptiveAvgPool2d(1), [x], node, out=node.output[0])
            return
        name = self.unique(stem)
        pad_mod = nn.ZeroPad2d((left, right, top, bottom))
        pool = nn.AvgPool2d(kernel, strides, 0, ceil_mode=ceil, count_include_pad=True)
        padded = self.emit_module(self.unique(f"{name}_pad"), pad_mod, [x], node)
        if include:
            self.emit_module(name, pool, [padded], node, out=node.output[0])
            return
        pooled = self.emit_module(name, pool, [padded], node)
        with torch.no_grad():
            valid = pool(pad_mod(torch.ones(1, 1, h, w)))
        corr = self.emit_buffer(self.unique(f"{name}_count_correction"), 1.0 / valid)
        self.emit_function(operator.mul, (pooled, corr), {}, node, node.output[0], self.stems[x])

    @staticmethod
    def _pool_out(size, kernel, strides, dil, pads, ceil) -> tuple[int, int]:
        rnd = math.ceil if ceil else math.floor
        top, left, bottom, right = pads
        out = []
        for n, k, s, d, p in zip(size, kernel, strides, dil, (top + bottom, left + right)):
            out.append(int(rnd((n + p - ((k - 1) * d + 1)) / s)) + 1)
        return tuple(out)

    def op_MaxPool(self, node) -> None:
        self._pool(node, "maxpool")

    def op_AveragePool(self, node) -> None:
        self._pool(node, "avgpool")

    def op_GlobalAveragePool(self, node) -> None:
        self._simple(node, nn.AdaptiveAvgPool2d(1), "avgpool")

    def op_GlobalMaxPool(self, node) -> None:
        self._simple(node, nn.AdaptiveMaxPool2d(1), "maxpool")

    def op_LRN(self, node) -> None:
        a = _attrs(node)
        size = int(a["size"])
        if size % 2 == 0:
            raise self.unsupported(node, f"an even size ({size}): ONNX and torch centre even windows differently")
        # ONNX: x / (bias + alpha / size * sum(x^2))^beta -- exactly torch's LocalResponseNorm(size, alpha, beta, k)
        self._simple(node, nn.LocalResponseNorm(size, float(a.get("alpha", 1e-4)), float(a.get("beta", 0.75)),
                                                float(a.get("bias", 1.0))), "lrn")

    def op_Dropout(self, node) -> None:
        self._check_extra_outputs(node, "mask")
        ratio = self.const_in(node, 1, "ratio")
        p = float(ratio) if ratio is not None else float(_attrs(node).get("ratio", 0.5))
        self._simple(node, nn.Dropout(p), "dropout")

    def op_Softmax(self, node) -> None:
        x = self.tensor_in(node, 0)
        rank = self.vals[x].dim()
        axis = int(_attrs(node).get("axis", -1 if self.opset >= 13 else 1))
        axis = axis % rank
        if self.opset < 13 and axis != rank - 1 and any(d != 1 for d in self.vals[x].shape[axis + 1:]):
            # opset < 13 flattens the axes from ``axis`` on; with only size-1 axes after it, that is a plain softmax
            raise self.unsupported(node, f"axis {axis} on a {rank}-D input {list(self.vals[x].shape)} "
                                         "(opset < 13 flattens)")
        self._simple(node, nn.Softmax(dim=axis), "softmax")

    def op_Identity(self, node) -> None:
        self.alias(node.output[0], self.tensor_in(node, 0))

    def op_Concat(self, node) -> None:
        axis = int(_attrs(node)["axis"])
        ins = [self.tensor_in(node, k) for k in range(len(node.input))]
        rank = self.vals[ins[0]].dim()
        name = self._concat_name(node, ins)
        self.emit_function(torch.cat, (ins,), {"dim": axis % rank}, node, node.output[0], stem=name, name=name)
        self.nodes[node.output[0]].meta["onnx_name"] = name

    def _concat_name(self, node, ins: list[str]) -> str:
        if not _is_generic(_node_label(node)):
            return self.unique(_node_label(node))
        if not _is_generic(node.output[0]):
            return self.unique(node.output[0])
        parts = [self.stems[i].split("_") for i in ins]
        common = []
        for toks in zip(*parts):
            if len(set(toks)) != 1:
                break
            common.append(toks[0])
        prefix = "_".join(common).strip("_")
        if len(ins) > 1 and prefix and prefix not in {self.stems[i] for i in ins} and prefix != "input":
            return self.unique(prefix)
        return self.unique(f"concat{sum(1 for n in self.graph.nodes if n.target is torch.cat)}")

    def _add_like(self, node, inputs: list[str]) -> None:
        tensors = [n for n in inputs if n not in self.consts]
        if not tensors:
            raise self.unsupported(node, "only constant inputs")
        acc = self.tensor_in(node, list(node.input).index(tensors[0]))
        stem = self.stems[acc]
        for k, n in enumerate(inputs):
            if n == tensors[0]:
                continue
            if n in self.consts:
                other = self.emit_buffer(self.unique(f"{stem}_const"),
                                         torch.from_numpy(np.array(self.finite(self.consts[n], n), np.float32)))
            else:
                other = self.tensor_in(node, k)
            out = node.output[0] if n == inputs[-1] else f"{node.output[0]}:{k}"
            name = self.unique(_node_label(node) if not _is_generic(_node_label(node)) else f"{stem}_add")
            acc = self.emit_function(operator.add, (acc, other), {}, node, out, stem, name=name)

    def op_Add(self, node) -> None:
        self._add_like(node, list(node.input))

    def op_Sum(self, node) -> None:
        if len(node.input) == 1:
            self.alias(node.output[0], self.tensor_in(node, 0))
            return
        self._add_like(node, list(node.input))

    def _flatten_to_2d(self, node, x: str) -> None:
        self.emit_function(torch.flatten, (x,), {"start_dim": 1}, node, node.output[0], self.stems[x],
                           name=self.unique(self.plain_stem(node, "flatten")))

    def op_Flatten(self, node) -> None:
        x = self.tensor_in(node, 0)
        axis = int(_attrs(node).get("axis", 1)) % max(self.vals[x].dim(), 1)
        if axis != 1:
            raise self.unsupported(node, f"axis {axis} (only axis 1, keeping the batch dimension)")
        self._flatten_to_2d(node, x)

    def op_Reshape(self, node) -> None:
        x = self.tensor_in(node, 0)
        shape = [int(s) for s in self.const_in(node, 1, "target shape").reshape(-1)]
        xv = self.vals[x]
        target = [xv.shape[i] if s == 0 and i < xv.dim() else s for i, s in enumerate(shape)]
        if len(target) == 2 and target[0] in (xv.shape[0], -1) and (
                target[1] in (-1, int(np.prod(xv.shape[1:]))) and (target[0] != -1 or target[1] != -1)):
            self._flatten_to_2d(node, x)
            return
        if list(xv.shape) == target:
            self.alias(node.output[0], x)
            return
        self._refuse_channel_shuffle(node, xv, target)
        raise self.unsupported(node, f"target shape {shape} on input {list(xv.shape)} (only flattening to N x features)")

    def _refuse_channel_shuffle(self, node, xv: torch.Tensor, target: list[int]) -> None:
        """Name a ShuffleNet channel shuffle (Reshape to N x g x C/g x H x W, Transpose, Reshape back) when seen."""
        if xv.dim() != 4 or len(target) != 5 or target[3:] not in ([xv.shape[2], xv.shape[3]], [-1, xv.shape[3]]):
            return
        users = self.consumers.get(node.output[0], [])
        perm = list(_attrs(users[0]).get("perm", [])) if len(users) == 1 and users[0].op_type == "Transpose" else []
        if perm != [0, 2, 1, 3, 4]:
            return
        back = self.consumers.get(users[0].output[0], [])
        chain = [node] + users[:1] + [b for b in back[:1] if b.op_type == "Reshape"]
        where = " -> ".join(f"'{n.name or n.output[0]}' ({n.op_type})" for n in chain)
        c = int(xv.shape[1])
        groups = int(target[1]) if target[1] > 0 else c // int(target[2]) if target[2] > 0 else 0
        sizes = f" ({groups} groups of {c // groups} channels)" if groups > 0 else ""
        raise ModularityError(f"ONNX channel shuffle at nodes {where}{sizes} is not supported yet: it reorders "
                              "channels between groups, which the channel-graph tracer cannot follow")

    def op_Squeeze(self, node) -> None:
        x = self.tensor_in(node, 0)
        axes = self.const_in(node, 1, "axes")
        axes = [int(v) for v in (axes.reshape(-1) if axes is not None else _attrs(node).get("axes", []))]
        xv = self.vals[x]
        axes = sorted(a % xv.dim() for a in axes) if axes else [i for i, s in enumerate(xv.shape) if s == 1 and i]
        if xv.dim() == 4 and axes == [2, 3] and xv.shape[2] == xv.shape[3] == 1:
            self._flatten_to_2d(node, x)
            return
        raise self.unsupported(node, f"axes {axes} on input {list(xv.shape)} (only N x C x 1 x 1 to N x C)")

    def op_Pad(self, node) -> None:
        a = _attrs(node)
        x = self.tensor_in(node, 0)
        pads = self.const_in(node, 1, "pads")
        pads = [int(p) for p in (pads.reshape(-1) if pads is not None else a.get("pads", []))]
        value = self.const_in(node, 2, "constant value", finite=False)
        value = float(value) if value is not None and value.size else float(a.get("value", 0.0))
        mode = a.get("mode", "constant")
        if len(pads) != 8 or any(pads[i] for i in (0, 1, 4, 5)):
            raise self.unsupported(node, f"pads {pads} (only spatial pads of a 4-D tensor)")
        xs = self.vals[x].shape
        if any(p < 0 for p in pads):
            raise self.unsupported(node, f"negative pads {pads}")
        _check_size(node, [xs[0], xs[1], xs[2] + pads[2] + pads[6], xs[3] + pads[3] + pads[7]], "a feature map")
        lrtb = (pads[3], pads[7], pads[2], pads[6])
        if mode == "constant":
            mod = nn.ZeroPad2d(lrtb) if value == 0 else nn.ConstantPad2d(lrtb, value)
        elif mode == "reflect":
            mod = nn.ReflectionPad2d(lrtb)
        elif mode == "edge":
            mod = nn.ReplicationPad2d(lrtb)
        else:
            raise self.unsupported(node, f"mode '{mode}'")
        self._simple(node, mod, "pad")


def onnx_to_graph_module(model, input_size: tuple[int, int] | None = None) -> tuple[fx.GraphModule, tuple[int, int]]:
    """Convert an ONNX model to a ``torch.fx.GraphModule`` of stock torch modules.

    Parameters
    ----------
    model : onnx.ModelProto
        A single-input CNN built from :data:`SUPPORTED_OPS`.
    input_size : (int, int) or None
        Height and width of the dummy input used to resolve shapes; None takes
        it from the graph input when static, else 224 x 224.

    Returns
    -------
    module : torch.fx.GraphModule
        In eval mode; float32 weights copied from the initializers.
    input_size : (int, int)
        The input height and width used.

    Raises
    ------
    ModularityError
        For an unsupported op (naming the op type and node) or attribute.
    """
    try:
        conv = _Converter(model, input_size)
        gm = conv.run()
    except ModularityError:
        raise
    except MemoryError:
        raise ModularityError("the ONNX graph needs more memory to convert than this machine has; "
                              "is it a CNN with a sensible input size?") from None
    except Exception as exc:  # a shape error while running the dummy input, etc.
        msg = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise ModularityError(f"could not convert the ONNX graph ({type(exc).__name__}: {msg})") from None
    return gm, conv.input_size


def load_onnx(path: str | Path) -> LoadedModel:
    """Import an ``.onnx`` file as a model ready to analyse.

    Parameters
    ----------
    path : str or Path
        An ONNX CNN (e.g. the ONNX Model Zoo ``bvlc_alexnet`` or
        ``bvlc_googlenet`` files, or a torch export of a classifier).

    Returns
    -------
    LoadedModel
        ``module`` is a ``torch.fx.GraphModule`` of stock torch modules;
        ``input_size`` comes from the graph input when static (else 224 x 224);
        provenance names the file and ``weights_sha256`` is its SHA-256.

    Raises
    ------
    ModularityError
        If the file is missing, corrupt or truncated, holds NaN/Inf weights, uses an
        unsupported op or construct, or has no layer to analyse.

    Examples
    --------
    >>> loaded = load_onnx("bvlc_alexnet.onnx")  # doctest: +SKIP
    >>> loaded.module.conv2.groups  # doctest: +SKIP
    2
    """
    path = Path(path)
    model = read_onnx(path)
    gm, size = onnx_to_graph_module(model)
    if not any(isinstance(m, (nn.Conv2d, nn.Linear)) for m in gm.modules()):
        ops = sorted({n.op_type for n in model.graph.node})
        raise ModularityError(f"{path} has no layer to analyse: no Conv, Gemm or MatMul node with constant weights "
                              f"(its ops: {', '.join(ops[:8])}{', ...' if len(ops) > 8 else ''})")
    return LoadedModel(
        name=path.stem,
        module=gm,
        weights="onnx",
        weights_path=str(path),
        weights_sha256=sha256_file(path),
        input_size=size,
        provenance=f"ONNX file {path}",
    )
