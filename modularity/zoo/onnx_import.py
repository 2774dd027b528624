"""Import an ONNX CNN as a ``torch.fx.GraphModule`` built from real torch modules.

Every weighted ONNX node becomes a genuine ``nn.Conv2d`` / ``nn.Linear`` /
``nn.BatchNorm2d`` holding the ONNX initializers, every channel-preserving node a
genuine ``nn.ReLU`` / ``nn.MaxPool2d`` / ``nn.LocalResponseNorm`` / ..., and
concatenations and additions are ``torch.cat`` / ``operator.add`` call_function
nodes. The channel-graph tracer (:mod:`modularity.core.graph`) therefore sees the
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
In a torch export (``producer_name`` "pytorch") these names carry the source
model's module paths, which are kept dotted (``features.3.squeeze``, a
concatenation ``features.3``), so layers are named as ``named_modules()`` names
them in the model that was exported; other names become identifiers.

Constant subgraphs (``Constant``, ``ConstantOfShape``, ``Unsqueeze`` of weights,
...) are folded with :class:`onnx.reference.ReferenceEvaluator` at the model's own
opset (an opset-9 ``Unsqueeze`` takes its axes as an attribute, an opset-13 one as
an input) before conversion. A Caffe2-style scale layer after a batch norm
(``BatchNormalization`` -> ``Mul`` by a per-channel constant -> ``Add`` of one) is
folded into the ``nn.BatchNorm2d``, so the tracer sees one batch norm.
Shape arithmetic that exporters emit (``Shape`` -> ``Gather`` -> ``Unsqueeze`` ->
``Concat`` -> ``Reshape`` or ``Resize``) is folded the same way once the shapes of
the dummy input are known, so the module is specialised to the import's input size.

Modern exports: elementwise ``Add``/``Sub``/``Mul``/``Div``/``Pow`` broadcast as in
ONNX (a per-channel constant, or a squeeze-and-excitation gate of N x C x 1 x 1
that scales the feature map; the gate's convs are layers of their own). The
exporters' spellings of SiLU (``x * Sigmoid(x)``) and hard-swish (``x *
HardSigmoid(x)``, Paddle's ``x * Clip(x + 3, 0, 6) / 6``) become ``nn.SiLU`` and
``nn.Hardswish``. ``Split``/``Slice`` along channels or positions become
``torch.split`` / indexing, ``Resize``/``Upsample`` an ``nn.Upsample``.

Where the channels stop being channels (a detection head's ``Reshape`` to N x C x
HW or ``Transpose`` to channels-last, a ``ConvTranspose``, a reduction over
channels, ...), the graph *ends*: every layer up to there is imported, the tensors
read there become the module's outputs, and nothing after them is converted.
``module.meta["onnx_import"]`` records each end (node, op, reason, tensors kept)
and how many weighted ONNX nodes lie beyond; :func:`import_notes` says it in a line.
An op the importer does not know still refuses the model with one line naming
the op and the node, unless it lies beyond an end.

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
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import fx, nn

from ..errors import ModularityError
from .checkpoints import check_readable_file, sha256_file
from .source import LoadedModel

__all__ = ["SUPPORTED_OPS", "load_onnx", "read_onnx", "check_structure", "onnx_to_graph_module", "fold_constants",
           "sanitize_name", "import_notes"]

SUPPORTED_OPS = (
    "Conv", "Gemm", "MatMul", "BatchNormalization", "Relu", "LeakyRelu", "PRelu", "Elu", "Sigmoid",
    "HardSigmoid", "HardSwish", "Softplus", "Mish", "Tanh", "Clip", "Sqrt", "Exp", "Abs", "Neg",
    "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "LRN", "Dropout", "Softmax",
    "Concat", "Split", "Slice", "Add", "Sub", "Mul", "Div", "Pow", "Sum", "Flatten", "Reshape",
    "Squeeze", "Unsqueeze", "Transpose", "Expand", "Identity", "Cast", "Pad", "Resize", "Upsample",
    "ReduceMean", "ReduceMax", "ReduceSum", "Shape", "ConvTranspose",
)
# Ops that always end the channel graph when they read a feature map (their outputs are not channels the
# tracer can follow); the value is the reason recorded.
_ENDING_OPS = {
    "ConvTranspose": "a transposed convolution, which the channel tracer does not follow",
    "Gather": "indexing a feature map",
    "GatherElements": "indexing a feature map",
    "TopK": "selecting values of a feature map",
    "ArgMax": "an arg-max over a feature map",
    "NonMaxSuppression": "non-maximum suppression of detections",
    "Range": "a range built from a feature map",
    "Tile": "tiling a feature map",
}
_FOLDABLE_ONLY = ("Constant", "ConstantOfShape")
_DEFAULT_SIZE = (224, 224)
# Guards against files that declare absurd sizes: no CNN weight, constant or feature map needs more values
# (VGG's largest weight has 1.0e8), and the dummy input is at most 8192 pixels on a side.
_MAX_ELEMENTS = 1 << 28
_MAX_SIDE = 8192

# Names an exporter makes up (n12, r7, node_5, val_3, 123, Conv_3, onnx::Conv_5) say nothing;
# conv1, fc6 or Mixed_5b do.
_GENERIC = re.compile(r"^(?:(?:n|r|node|op|val|tensor|t|v|x|y)[_:.]?\d+|\d+|[A-Z][A-Za-z]*_\d+)$")
_PATH_PART = re.compile(r"[A-Za-z_]\w*|\d+")  # a part of a module path: an attribute name or an index
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
    """A node's name; torch-exporter scopes become module paths.

    ``/layer1/layer1.0/conv1/Conv`` -> ``layer1.0.conv1``.
    """
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
    check_structure(model, path)
    return model


def check_structure(model, path: str | Path = "the ONNX model") -> None:
    """ONNX's own checks, before any import: opsets, names, input dims, shape inference, the checker.

    In order: the default-domain opset is one this ``onnx`` knows (1 to
    ``onnx.defs.onnx_opset_version()``); no tensor name is produced twice (by
    two nodes, a node and an initializer, or two initializers); the graph
    input's dims are positive where given; ONNX shape inference in strict
    mode, with data propagation, raises nothing (a ``kernel_shape`` or
    ``pads`` attribute of the wrong length, a kernel of the wrong rank, ...);
    and ``onnx.checker.check_model`` accepts the inferred graph (attributes
    an op does not have, undefined inputs, unsorted nodes, ...).

    Both run on a skeleton of the model: initializers larger than 64 KiB are
    replaced by typed graph inputs of the same shape, so a large model is not
    copied. Two harmless omissions that the importer handles are filled in
    the skeleton only: initializers an IR-3 file does not list as inputs, and
    graph outputs without a shape (a shape inference cannot give either, as
    for ops of another domain, gets an empty one for the checker).

    Raises
    ------
    ModularityError
        One line: the file, and the first problem found.
    """
    import onnx

    opsets = _onnx_opsets(model)
    newest = onnx.defs.onnx_opset_version()
    if not 1 <= opsets[""] <= newest:
        raise ModularityError(f"{path} declares ONNX opset {opsets['']}, which this onnx ({onnx.__version__}) does "
                              f"not know (it knows 1 to {newest}); export with an opset in that range")
    seen: dict[str, str] = {}
    produced = [(i.name, "an initializer") for i in model.graph.initializer]
    produced += [(o, f"node '{n.name or n.op_type}'") for n in model.graph.node for o in n.output if o]
    for name, by in produced:
        if name in seen:
            raise ModularityError(f"{path}: tensor '{name}' is produced twice (by {seen[name]} and by {by}); "
                                  "an ONNX graph names each tensor once")
        seen[name] = by
    inits = {i.name for i in model.graph.initializer}
    for inp in model.graph.input:
        if inp.name in inits or not inp.type.HasField("tensor_type"):
            continue
        dims = inp.type.tensor_type.shape.dim
        # -1 is how some exporters (paddle2onnx) write a dynamic dimension; any other value below 1 is no size
        bad = [d.dim_value for d in dims if d.HasField("dim_value") and d.dim_value < 1 and d.dim_value != -1]
        if bad:
            shown = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in dims]
            raise ModularityError(f"{path}: graph input '{inp.name}' declares shape {shown}, with a dimension of "
                                  f"{bad[0]}; every dimension must be positive (or symbolic, or -1 for dynamic)")
    skeleton = _skeleton(model)
    try:
        inferred = onnx.shape_inference.infer_shapes(skeleton, check_type=True, strict_mode=True, data_prop=True)
        for out in inferred.graph.output:
            if out.type.HasField("tensor_type") and not out.type.tensor_type.HasField("shape"):
                out.type.tensor_type.shape.CopyFrom(onnx.TensorShapeProto())
        onnx.checker.check_model(inferred)
    except MemoryError:
        raise ModularityError(f"{path}: checking the ONNX graph needs more memory than this machine has") from None
    except Exception as exc:  # onnx.checker.ValidationError, onnx.shape_inference.InferenceError, ...
        raise ModularityError(f"{path} fails ONNX's own checks ({_first_line(exc)}); the file is corrupt or "
                              "was written by a faulty exporter") from None


_SKELETON_BYTES = 1 << 16


def _skeleton(model):
    """``model`` without its large initializers (each becomes a typed graph input), for the checks only."""
    import onnx
    from onnx import helper

    skeleton = onnx.ModelProto(ir_version=model.ir_version, producer_name=model.producer_name,
                               producer_version=model.producer_version, domain=model.domain,
                               model_version=model.model_version)
    skeleton.opset_import.extend(model.opset_import)
    skeleton.functions.extend(model.functions)
    graph = skeleton.graph
    graph.name = model.graph.name
    graph.node.extend(model.graph.node)
    graph.input.extend(model.graph.input)
    graph.output.extend(model.graph.output)
    graph.value_info.extend(model.graph.value_info)
    listed = {i.name for i in model.graph.input}
    for init in model.graph.initializer:
        small = init.ByteSize() <= _SKELETON_BYTES or init.data_location == onnx.TensorProto.EXTERNAL
        if small:
            graph.initializer.append(init)
        # IR < 4 wants every initializer listed as a graph input too; files that leave some out import fine
        if init.name not in listed and (not small or model.ir_version < 4):
            graph.input.append(helper.make_tensor_value_info(init.name, init.data_type, list(init.dims)))
    return skeleton


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
    results = ReferenceEvaluator(graph, opsets=opsets).run(None, feeds)
    assert isinstance(results, list)  # without intermediate=True, run gives the outputs in a list
    return results


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


def _resolve_shape(src: list[int], shape: list[int], allowzero: bool) -> list[int] | None:
    """An ONNX Reshape target with its 0 (copy) and -1 (infer) entries resolved; None if it does not fit."""
    out = [src[i] if d == 0 and not allowzero and i < len(src) else d for i, d in enumerate(shape)]
    total = int(np.prod(src))
    if out.count(-1) > 1:
        return None
    if -1 in out:
        rest = int(np.prod([d for d in out if d != -1]))
        if rest == 0 or total % rest:
            return None
        out[out.index(-1)] = total // rest
    return out if int(np.prod(out)) == total else None


class _End(Exception):
    """Raised by an op handler before it emits anything: the channels stop being channels here."""


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
        self.containers: set[str] = set()  # dotted prefixes of module paths (plain nn.Module holders)
        # torch.onnx.export names initializers and nodes after the modules (features.3.weight,
        # /features/features.3/Conv); other exporters' dots (Paddle's p2o.Conv.0) are no module paths.
        self.module_paths = model.producer_name == "pytorch"
        self.fused: dict[str, str] = {}  # ONNX output -> ONNX output it aliases (fused Add)
        self.skip: set[int] = set()
        self.onnx_nodes = list(model.graph.node)  # held, so that id() of a node is stable
        self.index = {id(n): i for i, n in enumerate(self.onnx_nodes)}
        self.consumers: dict[str, list] = defaultdict(list)
        for node in self.onnx_nodes:
            for n in node.input:
                self.consumers[n].append(node)
        self.graph_outputs = {o.name for o in model.graph.output}
        self.dead: set[str] = set()  # ONNX tensors beyond an end of the channel graph
        self.ends: list[dict[str, Any]] = []
        self.kept: list[str] = []  # feature maps read where the graph ends: the module's extra outputs

    # -- naming --------------------------------------------------------------
    def unique(self, base: str, path: bool = False, module: bool = True) -> str:
        """A new name from ``base``: a Python identifier, or with ``path`` a dotted module path where it is one.

        ``path`` keeps the module path of a torch export (``features.3`` from
        the initializer ``features.3.weight`` or the node ``/features/features.3/Conv``)
        so layers are named as the source model's ``named_modules()`` names
        them; a name that cannot be a module path (a part that is no
        identifier or number, a part that is an ``nn.Module`` attribute, a
        path through a module already named, or a module's own path) is
        flattened to an identifier as without ``path``. A name that is no
        ``module`` (a concatenation's) may be the path of modules inside it.
        """
        if path and self.module_paths and self._free_path(base, module):
            name, k = base, 1
            while name in self.used:
                name = f"{base}_{k}"
                k += 1
            if self._free_path(name, module):  # not so for a repeat of "features.3" ("3_1" is no part)
                self.used.add(name)
                return name
        base = sanitize_name(base)
        if hasattr(fx.GraphModule, base) or base in ("input", "output"):
            base = base + "_"
        name, k = base, 1
        while name in self.used:
            name = f"{base}_{k}"
            k += 1
        self.used.add(name)
        return name

    def _free_path(self, name: str, module: bool = True) -> bool:
        """True when ``name`` can name a new module (or, not ``module``, a value) at that dotted path of the root."""
        parts = name.split(".")
        if len(parts) < 2 or not all(_PATH_PART.fullmatch(p) and not hasattr(nn.Module, p) for p in parts):
            return False
        if hasattr(fx.GraphModule, parts[0]) or parts[0] in ("input", "output"):
            return False
        prefixes = {".".join(parts[:i]) for i in range(1, len(parts))}
        return not (prefixes & self.used - self.containers) and not (module and any(
            u.startswith(name + ".") for u in self.used))

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

    def const_req(self, onnx_node, k: int, what: str) -> np.ndarray:
        """The finite constant input ``k`` that ``onnx_node`` cannot do without (its weight, a target shape)."""
        value = self.const_in(onnx_node, k, what)
        if value is None:
            raise ModularityError(f"ONNX node '{onnx_node.name or onnx_node.output[0]}' ({onnx_node.op_type}) has no "
                                  f"{what} (input {k}); the file is corrupt")
        return value

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
        parent = self.root
        *holders, leaf = name.split(".")
        for i, part in enumerate(holders):  # a dotted path: plain holder modules, as in the source model
            if part not in parent._modules:
                parent.add_module(part, nn.Module())
                self.containers.add(".".join(holders[:i + 1]))
            parent = parent.get_submodule(part)
        parent.add_module(leaf, module.eval())
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
            ins = [self.fused.get(n, n) for n in node.input if n]
            if any(n in self.dead for n in ins):
                self._beyond_end(node, ins)
                continue
            if node.domain in ("", "ai.onnx") and ins and all(n in self.consts for n in ins):
                self._fold_now(i, node)  # shape arithmetic on a feature map's (now known) shape
                continue
            if node.domain not in ("", "ai.onnx"):
                raise self.unsupported(node)
            try:
                if node.op_type in _ENDING_OPS:
                    raise _End(_ENDING_OPS[node.op_type])
                handler = getattr(self, f"op_{node.op_type}", None)
                if handler is None or node.op_type not in SUPPORTED_OPS:
                    raise self.unsupported(node)
                handler(node)
            except _End as end:
                self._end(node, ins, str(end))
        outs, names = [], []
        for o in self.model.graph.output:
            name = self.fused.get(o.name, o.name)
            if name in self.dead or (self.ends and name in self.consts):
                continue
            if name not in self.nodes:
                raise ModularityError(f"ONNX graph output '{o.name}' is a constant or is not produced")
            outs.append(self.nodes[name])
            names.append(o.name)
        for name in self.kept:
            if self.nodes[name] not in outs:
                outs.append(self.nodes[name])
                names.append(name)
        if not outs or (self.ends and all(n.op == "placeholder" for n in outs)):
            first = self.ends[0] if self.ends else {"onnx_node": "?", "op": "?", "reason": "no output"}
            raise ModularityError(f"the ONNX graph ends at node '{first['onnx_node']}' ({first['op']}: "
                                  f"{first['reason']}) before any feature map")
        self.graph.output(outs[0] if len(outs) == 1 else tuple(outs))
        gm = fx.GraphModule(self.root, self.graph, class_name="OnnxModel")
        gm.graph.eliminate_dead_code()
        gm.delete_all_unused_submodules()
        gm.recompile()
        gm.meta["onnx_import"] = self._record(names)
        return gm.eval()

    # -- ends of the channel graph -------------------------------------------
    def _keep(self, names) -> None:
        for n in names:
            if n in self.nodes and n not in self.consts and n not in self.kept and self.vals[n].dim() >= 2:
                self.kept.append(n)

    def _end(self, node, ins: list[str], reason: str) -> None:
        """The channel graph ends at ``node``: keep the feature maps it reads as outputs, skip what follows."""
        live = [n for n in ins if n in self.nodes and n not in self.consts]
        shapes = ", ".join(str(list(self.vals[n].shape)) for n in live)
        self.ends.append({"onnx_node": node.name or node.output[0], "op": node.op_type,
                          "reason": f"{reason} (input {shapes})" if shapes else reason,
                          "kept": [n for n in live if self.vals[n].dim() >= 2]})
        self._keep(live)
        self.dead.update(o for o in node.output if o)

    def _beyond_end(self, node, ins: list[str]) -> None:
        self._keep(n for n in ins if n not in self.dead)
        self.dead.update(o for o in node.output if o)

    def _fold_now(self, i: int, node) -> None:
        feeds = {n: self.consts[n] for n in node.input if n}
        try:
            results = _fold_one(node, _onnx_opsets(self.model), feeds)
        except ModularityError:
            raise
        except Exception as exc:
            raise ModularityError(f"cannot evaluate constant ONNX node '{node.name or node.output[0]}' "
                                  f"({node.op_type}, opset {self.opset}): {_first_line(exc)}") from None
        for out, val in zip(node.output, results):
            if out:
                self.consts[out] = np.asarray(val)
                self.origin[out] = out
        self.folded.add(i)

    def _record(self, outputs: list[str]) -> dict[str, Any]:
        weighted = ("Conv", "ConvTranspose", "Gemm", "MatMul")
        beyond = [n for n in self.onnx_nodes if n.op_type in weighted and any(o in self.dead for o in n.output)]
        return {
            "input_size": list(self.input_size),
            "outputs": outputs,
            "ends": self.ends,
            "weighted_nodes_beyond_ends": len(beyond),
            "weighted_nodes_beyond_ends_ops": dict(sorted(
                {op: sum(1 for n in beyond if n.op_type == op) for op in weighted if
                 any(n.op_type == op for n in beyond)}.items())),
        }

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
        weight = self.const_req(node, 1, "weight")
        bias = self.const_in(node, 2, "bias")
        if weight.ndim != 4:
            raise self.unsupported(node, f"a {weight.ndim - 2}-D kernel (only 2-D convolutions)")
        kernel = (int(weight.shape[2]), int(weight.shape[3]))
        if "kernel_shape" in a and tuple(int(k) for k in a["kernel_shape"]) != kernel:
            raise ModularityError(f"ONNX node '{node.name or node.output[0]}' (Conv) declares kernel_shape "
                                  f"{list(a['kernel_shape'])} but its weight has a {list(kernel)} kernel; the file "
                                  "is corrupt")
        strides = tuple(a.get("strides", [1, 1]))
        dil = tuple(a.get("dilations", [1, 1]))
        groups = int(a.get("group", 1))
        top, left, bottom, right = self._spatial_pads(node, a, self.vals[x], kernel, strides, dil)
        stem = self.weight_stem(node, node.input[1])
        name = self.unique(stem, path=True)
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
                assert conv.bias is not None  # made with bias=True
                conv.bias.copy_(torch.from_numpy(np.array(bias.reshape(-1), np.float32)))
        self.emit_module(name, conv, [x], node, out=node.output[0], stem=name)

    def _linear(self, node, x: str, weight: np.ndarray, bias: np.ndarray | None, out: str) -> None:
        if self.vals[x].dim() != 2:
            raise _End(f"a matrix product over the last axis of a {self.vals[x].dim()}-D tensor "
                       "(only N x features is a linear layer on channels)")
        name = self.unique(self.weight_stem(node, node.input[1]), path=True)
        lin = nn.Linear(int(weight.shape[1]), int(weight.shape[0]), bias=bias is not None)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(np.array(weight, np.float32)))
            if bias is not None:
                assert lin.bias is not None  # made with bias=True
                lin.bias.copy_(torch.from_numpy(np.array(
                    np.broadcast_to(bias.reshape(-1), (weight.shape[0],)), np.float32)))
        self.emit_module(name, lin, [x], node, out=out, stem=name)

    def op_Gemm(self, node) -> None:
        a = _attrs(node)
        if a.get("transA", 0):
            raise self.unsupported(node, "transA=1")
        x = self.tensor_in(node, 0)
        b = self.const_req(node, 1, "weight (B)")
        c = self.const_in(node, 2, "bias (C)")
        weight = (b if a.get("transB", 0) else b.T) * float(a.get("alpha", 1.0))
        bias = None
        if c is not None:
            bias = np.asarray(c, np.float32) * float(a.get("beta", 1.0))
            if bias.size not in (1, weight.shape[0]):
                raise self.unsupported(node, f"a bias of shape {list(c.shape)}")
        self._linear(node, x, weight, bias, node.output[0])

    def op_MatMul(self, node) -> None:
        x = self.tensor_in(node, 0)
        if node.input[1] not in self.consts:
            raise _End("a product of two feature maps (attention)")
        b = self.const_req(node, 1, "weight (B)")
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
        scale, bias = self.const_req(node, 1, "scale"), self.const_req(node, 2, "bias")
        mean, var = self.const_req(node, 3, "mean"), self.const_req(node, 4, "variance")
        dim = self.vals[x].dim()
        cls = {4: nn.BatchNorm2d, 2: nn.BatchNorm1d}.get(dim)
        if cls is None:
            raise self.unsupported(node, f"a {dim}-D input")
        bn = cls(int(scale.size), eps=float(a.get("epsilon", 1e-5)))
        scale, bias = self._fuse_scale_layer(node, scale, bias, dim)
        with torch.no_grad():
            for t, v in ((bn.weight, scale), (bn.bias, bias), (bn.running_mean, mean), (bn.running_var, var)):
                assert t is not None  # affine, tracking running statistics: the four exist
                t.copy_(torch.from_numpy(np.array(v.reshape(-1), np.float32)))
        stem = _node_label(node) if not _is_generic(_node_label(node)) else f"{self.stems[x]}_bn"
        self.emit_module(self.unique(stem, path=True), bn, [x], node, out=node.output[0])

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

    def _simple(self, node, module: nn.Module, suffix: str) -> None:
        x = self.tensor_in(node, 0)
        self.emit_module(self.unique(self.plain_stem(node, suffix), path=True), module, [x], node,
                         out=node.output[0])

    def op_Relu(self, node) -> None:
        self._simple(node, nn.ReLU(), "relu")

    def op_LeakyRelu(self, node) -> None:
        self._simple(node, nn.LeakyReLU(float(_attrs(node).get("alpha", 0.01))), "leakyrelu")

    def op_Sigmoid(self, node) -> None:
        if self._fuse_product(node, self.tensor_in(node, 0), nn.SiLU(), "silu"):
            return
        self._simple(node, nn.Sigmoid(), "sigmoid")

    def op_Tanh(self, node) -> None:
        self._simple(node, nn.Tanh(), "tanh")

    def op_Clip(self, node) -> None:
        a = _attrs(node)
        lo_in = self.const_in(node, 1, "minimum", finite=False)  # an infinite bound is legitimate
        hi_in = self.const_in(node, 2, "maximum", finite=False)
        lo = float(lo_in) if lo_in is not None else float(a.get("min", -np.inf))
        hi = float(hi_in) if hi_in is not None else float(a.get("max", np.inf))
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
        kernel = self._pair(node, a["kernel_shape"], "kernel_shape")
        strides = self._pair(node, a.get("strides", [1, 1]), "strides")
        dil = self._pair(node, a.get("dilations", [1, 1]), "dilations")
        ceil = bool(a.get("ceil_mode", 0))
        top, left, bottom, right = self._spatial_pads(node, a, xv, kernel, strides, dil)
        stem = self.plain_stem(node, kind)
        symmetric = (top, left) == (bottom, right) and top <= kernel[0] // 2 and left <= kernel[1] // 2
        mod: nn.Module
        if kind == "maxpool":
            self._check_extra_outputs(node, "indices")
            if symmetric:
                mod = nn.MaxPool2d(kernel, strides, (top, left), dil, ceil_mode=ceil)
                self.emit_module(self.unique(stem, path=True), mod, [x], node, out=node.output[0])
                return
            expected = self._pool_out(xv.shape[2:], kernel, strides, dil, (top, left, bottom, right), ceil)
            if (top, left) == (0, 0) and dil == (1, 1):
                # Caffe-style end padding: ceil_mode reproduces it when the output size agrees.
                mod = nn.MaxPool2d(kernel, strides, 0, dil, ceil_mode=True)
                with torch.no_grad():
                    if tuple(mod(xv).shape[2:]) == expected:
                        self.emit_module(self.unique(stem, path=True), mod, [x], node, out=node.output[0])
                        return
            name = self.unique(stem, path=True)
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
            self.emit_module(self.unique(stem, path=True), mod, [x], node, out=node.output[0])
            return
        h, w = xv.shape[2:]
        expected = self._pool_out((h, w), kernel, strides, dil, (top, left, bottom, right), ceil)
        if expected == (1, 1) and not include and top == 0 and left == 0 and kernel[0] >= h and kernel[1] >= w:
            # one window covering the whole map, padding excluded: the global mean
            self.emit_module(self.unique(stem, path=True), nn.AdaptiveAvgPool2d(1), [x], node, out=node.output[0])
            return
        name = self.unique(stem, path=True)
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

    def _pair(self, node, values, what: str) -> tuple[int, int]:
        """A 2-D pooling attribute (``kernel_shape``, ``strides``, ``dilations``) as (height, width)."""
        pair = [int(v) for v in values]
        if len(pair) != 2:
            raise self.unsupported(node, f"{what} {pair} (only 2-D pooling)")
        return pair[0], pair[1]

    @staticmethod
    def _pool_out(size, kernel: tuple[int, int], strides: tuple[int, int], dil: tuple[int, int],
                  pads: tuple[int, int, int, int], ceil: bool) -> tuple[int, int]:
        rnd = math.ceil if ceil else math.floor
        top, left, bottom, right = pads

        def side(i: int, p: int) -> int:
            return int(rnd((size[i] + p - ((kernel[i] - 1) * dil[i] + 1)) / strides[i])) + 1

        return side(0, top + bottom), side(1, left + right)

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
        if rank >= 2 and axis % rank != 1:
            raise _End(f"a concatenation along axis {axis % rank}, not the channels")
        name = self._concat_name(node, ins)
        self.emit_function(torch.cat, (ins,), {"dim": axis % rank}, node, node.output[0], stem=name, name=name)
        self.nodes[node.output[0]].meta["onnx_name"] = name

    def _concat_name(self, node, ins: list[str]) -> str:
        if not _is_generic(_node_label(node)):
            name = self.unique(_node_label(node), path=True, module=False)
            if "." in name:  # a module path, but no module: modules inside it may follow
                self.containers.add(name)
            return name
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
        if self._fuse_paddle_hardswish(node):
            return
        self._binary(node)

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
            raise _End(f"flattening from axis {axis} moves the channel axis")
        self._flatten_to_2d(node, x)

    def op_Reshape(self, node) -> None:
        x = self.tensor_in(node, 0)
        shape = [int(s) for s in self.const_req(node, 1, "target shape").reshape(-1)]
        xv = self.vals[x]
        target = [xv.shape[i] if s == 0 and i < xv.dim() else s for i, s in enumerate(shape)]
        if len(target) == 2 and target[0] in (xv.shape[0], -1) and (
                target[1] in (-1, int(np.prod(xv.shape[1:]))) and (target[0] != -1 or target[1] != -1)):
            self._flatten_to_2d(node, x)
            return
        if list(xv.shape) == target:
            self.alias(node.output[0], x)
            return
        full = _resolve_shape(list(xv.shape), shape, bool(_attrs(node).get("allowzero", 0)))
        if full is None:
            raise self.unsupported(node, f"target shape {shape} on input {list(xv.shape)} (the sizes do not match)")
        if xv.dim() == 2 and len(full) == 4 and full[:2] == list(xv.shape) and full[2:] == [1, 1]:
            self._unsqueeze_hw(node, x)  # N x C back to N x C x 1 x 1 (a gate)
            return
        if xv.dim() == 4 and len(full) == 4 and full[:2] == list(xv.shape[:2]):
            self.emit_function(torch.reshape, (x, tuple(full)), {}, node, node.output[0], self.stems[x],
                               name=self.unique(self.plain_stem(node, "reshape")))
            return
        self._refuse_channel_shuffle(node, xv, target)
        raise _End(f"a reshape from {list(xv.shape)} to {full} (channels no longer on their own axis)")

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
        axes_in = self.const_in(node, 1, "axes")
        axes = [int(v) for v in (axes_in.reshape(-1) if axes_in is not None else _attrs(node).get("axes", []))]
        xv = self.vals[x]
        axes = sorted(a % xv.dim() for a in axes) if axes else [i for i, s in enumerate(xv.shape) if s == 1 and i]
        if xv.dim() == 4 and axes == [2, 3] and xv.shape[2] == xv.shape[3] == 1:
            self._flatten_to_2d(node, x)
            return
        if not axes:
            self.alias(node.output[0], x)
            return
        raise _End(f"squeezing axes {axes} of {list(xv.shape)} (only N x C x 1 x 1 to N x C keeps channels)")

    def op_Pad(self, node) -> None:
        a = _attrs(node)
        x = self.tensor_in(node, 0)
        pads_in = self.const_in(node, 1, "pads")
        pads = [int(p) for p in (pads_in.reshape(-1) if pads_in is not None else a.get("pads", []))]
        value_in = self.const_in(node, 2, "constant value", finite=False)
        value = float(value_in) if value_in is not None and value_in.size else float(a.get("value", 0.0))
        mode = a.get("mode", "constant")
        axes_in = self.const_in(node, 3, "axes")
        if axes_in is not None and pads:  # opset 18: pads only for the listed axes
            rank = self.vals[x].dim()
            axes = [int(v) % rank for v in axes_in.reshape(-1)]
            full = [0] * (2 * rank)
            for k, ax in enumerate(axes):
                full[ax], full[rank + ax] = pads[k], pads[len(axes) + k]
            pads = full
        if len(pads) != 8 or any(pads[i] for i in (0, 1, 4, 5)):
            raise self.unsupported(node, f"pads {pads} (only spatial pads of a 4-D tensor)")
        xs = self.vals[x].shape
        if any(p < 0 for p in pads):
            raise self.unsupported(node, f"negative pads {pads}")
        _check_size(node, [xs[0], xs[1], xs[2] + pads[2] + pads[6], xs[3] + pads[3] + pads[7]], "a feature map")
        lrtb = (pads[3], pads[7], pads[2], pads[6])
        mod: nn.Module
        if mode == "constant":
            mod = nn.ZeroPad2d(lrtb) if value == 0 else nn.ConstantPad2d(lrtb, value)
        elif mode == "reflect":
            mod = nn.ReflectionPad2d(lrtb)
        elif mode == "edge":
            mod = nn.ReplicationPad2d(lrtb)
        else:
            raise self.unsupported(node, f"mode '{mode}'")
        self._simple(node, mod, "pad")


    # -- modern exports: elementwise arithmetic, activations, gates ----------
    def _sole_user(self, out: str, op_type: str):
        """The one ONNX node that reads ``out``, if it is an ``op_type`` and ``out`` is not a graph output."""
        users = self.consumers.get(out, [])
        if len(users) == 1 and users[0].op_type == op_type and out not in self.graph_outputs:
            return users[0]
        return None

    def _scalar(self, name: str) -> float | None:
        if name not in self.consts or np.size(self.consts[name]) != 1:
            return None
        return float(np.asarray(self.consts[name]).reshape(()))

    def _fuse_product(self, node, x: str, module: nn.Module, suffix: str) -> bool:
        """``node`` computes f(x); if its one reader is ``Mul(x, f(x))``, emit ``module`` for the product."""
        mul = self._sole_user(node.output[0], "Mul")
        if mul is None or len(mul.input) != 2 or sorted(mul.input) != sorted([node.input[0], node.output[0]]):
            return False
        self.skip.add(self.index[id(mul)])
        self.emit_module(self.unique(self.plain_stem(node, suffix)), module, [x], node, out=mul.output[0])
        return True

    def _fuse_paddle_hardswish(self, node) -> bool:
        """Paddle's hard-swish: ``Div(Mul(x, Clip(Add(x, 3), 0, 6)), 6)`` becomes one ``nn.Hardswish``."""
        if len(node.input) != 2 or node.input[1] not in self.consts or self._scalar(node.input[1]) != 3.0:
            return False
        x = node.input[0]
        clip = self._sole_user(node.output[0], "Clip")
        if clip is None or x in self.consts:
            return False
        ca = _attrs(clip)
        lo = self._scalar(clip.input[1]) if len(clip.input) > 1 and clip.input[1] else ca.get("min")
        hi = self._scalar(clip.input[2]) if len(clip.input) > 2 and clip.input[2] else ca.get("max")
        mul = self._sole_user(clip.output[0], "Mul")
        if lo != 0.0 or hi != 6.0 or mul is None or sorted(mul.input) != sorted([x, clip.output[0]]):
            return False
        div = self._sole_user(mul.output[0], "Div")
        six = self._scalar(div.input[1]) if div is not None and len(div.input) == 2 else None
        if six != 6.0 or div.input[0] != mul.output[0]:
            return False
        self.tensor_in(node, 0)
        self.skip.update(self.index[id(n)] for n in (clip, mul, div))
        self.emit_module(self.unique(self.plain_stem(div, "hardswish")), nn.Hardswish(), [x], node,
                         out=div.output[0])
        return True

    def _binary(self, node) -> None:
        """Elementwise ``Add``/``Sub``/``Mul``/``Div`` with ONNX (numpy) broadcasting."""
        fn, suffix = {"Add": (operator.add, "add"), "Sub": (operator.sub, "sub"), "Mul": (operator.mul, "mul"),
                      "Div": (operator.truediv, "div")}[node.op_type]
        ins = list(node.input)
        if len(ins) != 2:
            raise self.unsupported(node, f"{len(ins)} inputs")
        live = [k for k, n in enumerate(ins) if n not in self.consts]
        first = self.tensor_in(node, live[0])
        rank = self.vals[first].dim()
        stem = self.stems[first]
        values = {k: np.asarray(self.finite(self.consts[n], n)) for k, n in enumerate(ins) if n in self.consts}
        if any(v.dtype.kind not in "fiub" for v in values.values()):
            raise self.unsupported(node, f"a constant of type {next(iter(values.values())).dtype}")
        shapes = [values[k].shape if k in values else tuple(self.vals[self.tensor_in(node, k)].shape)
                  for k in range(2)]
        try:
            out = tuple(np.broadcast_shapes(*shapes))
        except ValueError:
            raise self.unsupported(node, f"shapes {[list(t) for t in shapes]} that do not broadcast") from None
        full = [k for k in live if shapes[k] == out]
        for k in live:
            sk = shapes[k]
            gate = len(sk) == len(out) == 4 and sk[:2] == out[:2] and sk[2:] == (1, 1) and full
            if sk != out and not gate:
                raise _End(f"an elementwise {suffix} that broadcasts a feature map {list(sk)} to {list(out)}")
        if not full:
            raise _End(f"an elementwise {suffix} with a constant larger than the feature map ({list(out)})")
        args: list[str | float] = []  # a feature map's name, or a scalar
        for k in range(2):
            value = values.get(k)
            if value is None:
                args.append(self.tensor_in(node, k))
            elif value.size == 1 and value.ndim <= rank:
                args.append(float(value.reshape(())))  # a scalar stays a Python number in the graph
            else:
                args.append(self.emit_buffer(self.unique(f"{stem}_{suffix}_const"),
                                             torch.from_numpy(np.array(value, np.float32))))
        name = self.unique(_node_label(node) if not _is_generic(_node_label(node)) else f"{stem}_{suffix}")
        self.emit_function(fn, tuple(args), {}, node, node.output[0], stem, name=name)

    def op_Sub(self, node) -> None:
        self._binary(node)

    def op_Mul(self, node) -> None:
        self._binary(node)

    def op_Div(self, node) -> None:
        self._binary(node)

    def op_Pow(self, node) -> None:
        if node.input[0] in self.consts:
            raise _End("a power with a feature map as the exponent")
        x = self.tensor_in(node, 0)
        p = self._scalar(node.input[1])
        if p is None:
            raise _End("a power whose exponent is not one constant")
        if p == 1.0:
            self.alias(node.output[0], x)
            return
        fn = {2.0: torch.square, 0.5: torch.sqrt}.get(p)
        if fn is None:
            raise _End(f"a power with exponent {p:g} (the channel tracer knows squares and square roots)")
        self.emit_function(fn, (x,), {}, node, node.output[0], self.stems[x],
                           name=self.unique(self.plain_stem(node, "pow")))

    def _unary(self, node, fn: Callable, suffix: str) -> None:
        x = self.tensor_in(node, 0)
        self.emit_function(fn, (x,), {}, node, node.output[0], self.stems[x],
                           name=self.unique(self.plain_stem(node, suffix)))

    def op_Sqrt(self, node) -> None:
        self._unary(node, torch.sqrt, "sqrt")

    def op_Exp(self, node) -> None:
        self._unary(node, torch.exp, "exp")

    def op_Abs(self, node) -> None:
        self._unary(node, torch.abs, "abs")

    def op_Neg(self, node) -> None:
        self._unary(node, operator.neg, "neg")

    def op_HardSigmoid(self, node) -> None:
        a = _attrs(node)
        alpha, beta = float(a.get("alpha", 0.2)), float(a.get("beta", 0.5))
        x = self.tensor_in(node, 0)
        if math.isclose(alpha, 1 / 6, rel_tol=1e-5) and beta == 0.5:
            if self._fuse_product(node, x, nn.Hardswish(), "hardswish"):
                return
            self._simple(node, nn.Hardsigmoid(), "hardsigmoid")
            return
        # Paddle's and Keras' hard sigmoid (alpha 0.2): clip(alpha * x + beta, 0, 1)
        stem = self.plain_stem(node, "hardsigmoid")
        scaled = self.emit_function(operator.mul, (x, alpha), {}, node, f"{node.output[0]}:scaled", self.stems[x],
                                    name=self.unique(f"{stem}_scale"))
        shifted = self.emit_function(operator.add, (scaled, beta), {}, node, f"{node.output[0]}:shifted",
                                     self.stems[x], name=self.unique(f"{stem}_shift"))
        self.emit_module(self.unique(stem), nn.Hardtanh(0.0, 1.0), [shifted], node, out=node.output[0])

    def op_HardSwish(self, node) -> None:
        self._simple(node, nn.Hardswish(), "hardswish")

    def op_Softplus(self, node) -> None:
        self._simple(node, nn.Softplus(), "softplus")

    def op_Mish(self, node) -> None:
        self._simple(node, nn.Mish(), "mish")

    def op_Elu(self, node) -> None:
        self._simple(node, nn.ELU(float(_attrs(node).get("alpha", 1.0))), "elu")

    def op_PRelu(self, node) -> None:
        x = self.tensor_in(node, 0)
        slope = np.asarray(self.const_in(node, 1, "slope"), np.float32)
        xv = self.vals[x]
        c = int(xv.shape[1]) if xv.dim() >= 2 else 1
        vec = self._per_channel(slope, c, xv.dim()) if slope.size in (1, c) else None
        if vec is None:
            raise self.unsupported(node, f"a slope of shape {list(slope.shape)} (only one per channel)")
        mod = nn.PReLU(int(slope.size))
        with torch.no_grad():
            mod.weight.copy_(torch.from_numpy(np.array(slope.reshape(-1), np.float32)))
        self._simple(node, mod, "prelu")

    def op_Cast(self, node) -> None:
        from onnx import TensorProto

        to = int(_attrs(node).get("to", TensorProto.FLOAT))
        if to not in (TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.FLOAT16):
            raise _End("a cast of a feature map to a non-float type")
        self.alias(node.output[0], self.tensor_in(node, 0))

    def op_Shape(self, node) -> None:
        x = self.tensor_in(node, 0)
        a = _attrs(node)
        shape = np.array(self.vals[x].shape, np.int64)
        start, end = int(a.get("start", 0)), a.get("end")
        self.consts[node.output[0]] = shape[start:None if end is None else int(end)]
        self.origin[node.output[0]] = node.output[0]

    # -- splitting, slicing, shapes ---------------------------------------------
    def op_Split(self, node) -> None:
        x = self.tensor_in(node, 0)
        xv = self.vals[x]
        a = _attrs(node)
        axis = int(a.get("axis", 0)) % xv.dim()
        sizes_in = self.const_in(node, 1, "split sizes")
        sizes = [int(v) for v in (sizes_in.reshape(-1) if sizes_in is not None else a.get("split", []))]
        n_out = len(node.output)
        if not sizes:
            dim = int(xv.shape[axis])
            step = math.ceil(dim / n_out)
            sizes = [min(step, dim - k * step) for k in range(n_out)]
        if sum(sizes) != xv.shape[axis] or len(sizes) != n_out or min(sizes) < 0:
            raise self.unsupported(node, f"sizes {sizes} on axis {axis} of {list(xv.shape)}")
        if axis == 0:
            raise _End("a split along the batch axis")
        stem = self.plain_stem(node, "split")
        bounds = np.cumsum([0] + sizes)
        if axis == 1:
            parts = self.emit_function(torch.split, (x, sizes), {"dim": 1}, node, f"{node.output[0]}:parts",
                                       self.stems[x], name=self.unique(stem))
            for k, out in enumerate(node.output):
                if out:
                    self.emit_function(operator.getitem, (parts, k), {}, node, out, self.stems[x],
                                       name=self.unique(f"{stem}_{k}"))
            return
        for k, out in enumerate(node.output):
            if out:
                index = (slice(None),) * axis + (slice(int(bounds[k]), int(bounds[k + 1])),)
                self.emit_function(operator.getitem, (x, index), {}, node, out, self.stems[x],
                                   name=self.unique(f"{stem}_{k}"))

    def op_Slice(self, node) -> None:
        x = self.tensor_in(node, 0)
        xv = self.vals[x]
        a = _attrs(node)
        if self.opset < 10:
            starts, ends = list(a["starts"]), list(a["ends"])
            axes = list(a.get("axes", range(len(starts))))
            steps = [1] * len(starts)
        else:
            starts = [int(v) for v in self.const_req(node, 1, "starts").reshape(-1)]
            ends = [int(v) for v in self.const_req(node, 2, "ends").reshape(-1)]
            axes_in = self.const_in(node, 3, "axes")
            axes = [int(v) for v in axes_in.reshape(-1)] if axes_in is not None else list(range(len(starts)))
            steps_in = self.const_in(node, 4, "steps")
            steps = [int(v) for v in steps_in.reshape(-1)] if steps_in is not None else [1] * len(starts)
        index = [slice(None)] * xv.dim()
        for start, end, axis, step in zip(starts, ends, axes, steps):
            axis %= xv.dim()
            if step <= 0:
                raise _End(f"a slice with step {step} (reversing an axis)")
            dim = int(xv.shape[axis])
            lo, hi, step = slice(max(min(start, dim), -dim - 1), max(min(end, dim), -dim - 1), step).indices(dim)
            if (lo, hi, step) == (0, dim, 1):
                continue
            if axis == 0:
                raise _End("a slice of the batch axis")
            index[axis] = slice(lo, hi, None if step == 1 else step)
        while len(index) > 1 and index[-1] == slice(None):
            index.pop()
        if all(i == slice(None) for i in index):
            self.alias(node.output[0], x)
            return
        self.emit_function(operator.getitem, (x, tuple(index)), {}, node, node.output[0], self.stems[x],
                           name=self.unique(self.plain_stem(node, "slice")))

    def _unsqueeze_hw(self, node, x: str) -> None:
        """N x C to N x C x 1 x 1 as two ``torch.unsqueeze`` (the tracer follows those)."""
        stem = self.plain_stem(node, "unsqueeze")
        mid = self.emit_function(torch.unsqueeze, (x, -1), {}, node, f"{node.output[0]}:h", self.stems[x],
                                 name=self.unique(stem))
        self.emit_function(torch.unsqueeze, (mid, -1), {}, node, node.output[0], self.stems[x],
                           name=self.unique(f"{stem}_w"))

    def op_Unsqueeze(self, node) -> None:
        x = self.tensor_in(node, 0)
        xv = self.vals[x]
        axes_in = self.const_in(node, 1, "axes")
        axes = [int(v) for v in (axes_in.reshape(-1) if axes_in is not None else _attrs(node).get("axes", []))]
        rank = xv.dim() + len(axes)
        axes = sorted(a % rank for a in axes)
        if xv.dim() == 2 and axes == [2, 3]:
            self._unsqueeze_hw(node, x)
            return
        raise _End(f"inserting axes {axes} into {list(xv.shape)}")

    def op_Transpose(self, node) -> None:
        x = self.tensor_in(node, 0)
        rank = self.vals[x].dim()
        perm = [int(p) for p in _attrs(node).get("perm", list(range(rank))[::-1])]
        if perm == list(range(rank)):
            self.alias(node.output[0], x)
            return
        if perm[:2] == [0, 1]:
            raise _End(f"a transpose {perm} of positions, which the channel tracer does not follow yet")
        raise _End(f"a transpose {perm} that moves the channel axis")

    def op_Expand(self, node) -> None:
        x = self.tensor_in(node, 0)
        shape = [int(v) for v in self.const_req(node, 1, "shape").reshape(-1)]
        xs = tuple(self.vals[x].shape)
        if tuple(np.broadcast_shapes(xs, tuple(shape))) == xs:
            self.alias(node.output[0], x)
            return
        raise _End(f"expanding {list(xs)} to {shape}")

    def _reduce(self, node, fn: Callable, suffix: str) -> None:
        x = self.tensor_in(node, 0)
        xv = self.vals[x]
        a = _attrs(node)
        axes_in = self.const_in(node, 1, "axes") if len(node.input) > 1 else None
        axes = [int(v) for v in (axes_in.reshape(-1) if axes_in is not None else a.get("axes", []))]
        if not axes and a.get("noop_with_empty_axes", 0):
            self.alias(node.output[0], x)
            return
        axes = sorted({v % xv.dim() for v in axes} if axes else set(range(xv.dim())))
        keep = bool(a.get("keepdims", 1))
        if xv.dim() < 3 or axes[0] < 2:
            raise _End(f"a reduction over axes {axes} of {list(xv.shape)} (only positions keep channels)")
        if fn is torch.mean and keep and xv.dim() == 4 and axes == [2, 3]:
            self._simple(node, nn.AdaptiveAvgPool2d(1), suffix)
            return
        self.emit_function(fn, (x,), {"dim": tuple(axes), "keepdim": keep}, node, node.output[0], self.stems[x],
                           name=self.unique(self.plain_stem(node, suffix)))

    def op_ReduceMean(self, node) -> None:
        self._reduce(node, torch.mean, "mean")

    def op_ReduceMax(self, node) -> None:
        self._reduce(node, torch.amax, "max")

    def op_ReduceSum(self, node) -> None:
        self._reduce(node, torch.sum, "sum")

    # -- resizing ---------------------------------------------------------------
    def _resize(self, node, mode: str, ctm: str, nearest: str, scales, sizes, cubic_a: float = -0.75,
                exclude_outside: int = 0) -> None:
        x = self.tensor_in(node, 0)
        xv = self.vals[x]
        if xv.dim() != 4:
            raise self.unsupported(node, f"a {xv.dim()}-D input (only N x C x H x W)")
        h, w = int(xv.shape[2]), int(xv.shape[3])
        if sizes is not None and np.size(sizes):
            sizes = [int(v) for v in np.asarray(sizes).reshape(-1)]
            if len(sizes) != 4 or sizes[:2] != list(xv.shape[:2]):
                raise self.unsupported(node, f"output sizes {sizes} on {list(xv.shape)} (only H and W may change)")
            out = sizes[2:]
            factors = [out[0] / h, out[1] / w]
        elif scales is not None and np.size(scales):
            factors = [float(v) for v in np.asarray(scales).reshape(-1)]
            if len(factors) != 4 or factors[:2] != [1.0, 1.0]:
                raise self.unsupported(node, f"scales {factors} (only H and W may change)")
            factors = factors[2:]
            out = [int(math.floor(h * factors[0])), int(math.floor(w * factors[1]))]
        else:
            raise self.unsupported(node, "neither scales nor sizes")
        _check_size(node, [xv.shape[0], xv.shape[1], *out], "a feature map")
        integer = all(f == int(f) and f >= 1 for f in factors)
        if mode == "nearest":
            if ctm == "asymmetric" and nearest == "floor":
                kind, align = "nearest", None
            elif ctm in ("half_pixel", "pytorch_half_pixel") and (
                    nearest == "round_prefer_ceil" or (integer and nearest == "round_prefer_floor")):
                kind, align = ("nearest" if integer else "nearest-exact"), None
            else:
                raise self.unsupported(node, f"nearest mode '{nearest}' with coordinate mode '{ctm}'")
        elif mode in ("linear", "cubic"):
            if mode == "cubic" and (cubic_a != -0.75 or exclude_outside):
                raise self.unsupported(node, f"cubic coefficient {cubic_a} / exclude_outside {exclude_outside}")
            kind = "bilinear" if mode == "linear" else "bicubic"
            if ctm == "align_corners":
                align = True
            elif ctm == "half_pixel" or (ctm == "pytorch_half_pixel" and min(out) > 1):
                align = False
            else:
                raise self.unsupported(node, f"{mode} mode with coordinate mode '{ctm}'")
        else:
            raise self.unsupported(node, f"mode '{mode}'")
        if integer:  # a whole-number factor also fits other input sizes
            mod = nn.Upsample(scale_factor=tuple(float(f) for f in factors), mode=kind, align_corners=align)
        elif sizes is not None and np.size(sizes):
            mod = nn.Upsample(size=tuple(out), mode=kind, align_corners=align)
        else:
            mod = nn.Upsample(scale_factor=tuple(factors), mode=kind, align_corners=align,
                              recompute_scale_factor=False)
        self._simple(node, mod, "upsample")

    def op_Resize(self, node) -> None:
        a = _attrs(node)
        if self.opset < 11:
            scales, sizes = self.const_in(node, 1, "scales"), None
            ctm, nearest = "asymmetric", "floor"
        else:
            if len(node.input) > 4 and node.input[4]:
                raise self.unsupported(node, "axes")
            scales = self.const_in(node, 2, "scales")
            sizes = self.const_in(node, 3, "sizes")
            ctm = a.get("coordinate_transformation_mode", "half_pixel")
            nearest = a.get("nearest_mode", "round_prefer_floor")
        if (ctm == "tf_crop_and_resize" or a.get("antialias", 0)
                or a.get("keep_aspect_ratio_policy", "stretch") != "stretch"):
            raise self.unsupported(node, f"coordinate mode '{ctm}' / antialias / aspect-ratio policy")
        self._resize(node, a.get("mode", "nearest"), ctm, nearest, scales, sizes,
                     float(a.get("cubic_coeff_a", -0.75)), int(a.get("exclude_outside", 0)))

    def op_Upsample(self, node) -> None:
        a = _attrs(node)
        scales = self.const_in(node, 1, "scales")
        if scales is None:
            scales = np.asarray(a.get("scales", []), np.float32)
        mode = a.get("mode", "nearest")
        if mode not in ("nearest",):
            raise self.unsupported(node, f"mode '{mode}' (Upsample's linear mode uses asymmetric coordinates)")
        self._resize(node, mode, "asymmetric", "floor", scales, None)


def onnx_to_graph_module(model, input_size: tuple[int, int] | None = None) -> tuple[fx.GraphModule, tuple[int, int]]:
    """Convert an ONNX model to a ``torch.fx.GraphModule`` of stock torch modules.

    Parameters
    ----------
    model : onnx.ModelProto
        A single-input CNN built from the ops in ``SUPPORTED_OPS``.
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


def import_notes(module: nn.Module) -> str:
    """One line on where an imported graph ended early, or ``""`` when it was imported whole.

    Parameters
    ----------
    module : nn.Module
        A module returned by :func:`onnx_to_graph_module` (its ``meta["onnx_import"]``).

    Returns
    -------
    str
        E.g. ``channel graph ends at 3 ONNX nodes (first '/model.22/Reshape' (Reshape): a reshape from
        [1, 65, 40, 40] to [1, 65, 1600] ...); 1 weighted node beyond (Conv: 1)``.
    """
    record = getattr(module, "meta", {}).get("onnx_import") if isinstance(module, fx.GraphModule) else None
    if not record or not record["ends"]:
        return ""
    ends = record["ends"]
    first = ends[0]
    n = record["weighted_nodes_beyond_ends"]
    ops = ", ".join(f"{k}: {v}" for k, v in record["weighted_nodes_beyond_ends_ops"].items())
    return (f"channel graph ends at {len(ends)} ONNX node{'s' if len(ends) != 1 else ''} (first "
            f"'{first['onnx_node']}' ({first['op']}): {first['reason']}); {n} weighted node{'s' if n != 1 else ''} "
            f"beyond{f' ({ops})' if ops else ''}; outputs: {len(record['outputs'])} feature map"
            f"{'s' if len(record['outputs']) != 1 else ''}")


def load_onnx(path: str | Path, input_size: tuple[int, int] | None = None) -> LoadedModel:
    """Import an ``.onnx`` file as a model ready to analyse.

    Parameters
    ----------
    path : str or Path
        An ONNX CNN (e.g. the ONNX Model Zoo ``bvlc_alexnet`` or
        ``bvlc_googlenet`` files, or a torch export of a classifier).
    input_size : (int, int) or None
        Height and width to import at; None takes it from the graph input when
        static, else 224 x 224. Shape arithmetic is folded at this size.

    Returns
    -------
    LoadedModel
        ``module`` is a ``torch.fx.GraphModule`` of stock torch modules;
        ``input_size`` comes from the graph input when static (else 224 x 224);
        provenance names the file and ``weights_sha256`` is its SHA-256; where the
        channel graph ends early (a detection head), provenance says where
        (:func:`import_notes`) and ``module.meta["onnx_import"]`` has the details.

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
    gm, size = onnx_to_graph_module(model, input_size)
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
        provenance=f"ONNX file {path}" + (f"; {import_notes(gm)}" if import_notes(gm) else ""),
    )
