"""Capture a network as a shape-annotated torch.fx graph, with a value-carrying fallback.

:func:`capture` first traces symbolically with torch.fx (conv, linear, batch-norm and
multi-head-attention modules stay leaves). Symbolic tracing cannot run Python code
that asks a tensor for its concrete size: ``len(x)``, ``assert H == self.img_size``,
``if x.shape[1] != C`` (timm's Hiera, CrossViT, ConViT, EfficientViT, ...).
For those, a *value tracer* re-traces the network with proxies that carry the
value each node takes on the dummy input (the approach of pytorch/pytorch issue
56862, "Non-symbolic FX tracer"): sizes, ``len`` and comparisons of sizes are then
plain Python values, so shape logic runs as it would in a forward pass, and the
graph records the tensor operations specialised to the input size (which is all the
channel trace needs: it propagates that one size anyway). Control flow on tensor
*values* (``if x.sum() > 0``) is still refused: a graph specialised to the
dummy input's values would silently drop the other branch.

Both tracers start at the call ``model(x)`` (a root that shares the model's modules
and calls its ``forward`` with the input alone), not at ``forward``'s signature:
optional arguments keep their defaults, and decorated forwards (Hugging Face's
``*args, **kwargs``) get real containers.

``torch.export`` was considered as the fallback and not used: it lowers the network
to functional ATen operators (no module calls, decomposed norms and attention), so the
channel tracer would need a second vocabulary for the same constructs.
"""

from __future__ import annotations

import contextlib
import io
import operator
from collections.abc import Callable
from typing import Any, cast

import torch
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp

from ..errors import ModularityError

__all__ = ["capture"]

# Modules kept as single graph nodes (the channel tracer maps them as a whole).
LEAF_MODULES: tuple[type, ...] = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear, nn.modules.batchnorm._BatchNorm,
                                  nn.MultiheadAttention)

# Tensor attributes and methods that describe a tensor without reading its values: the value tracer
# answers them from the concrete value, so shape arithmetic stays plain Python.
_META_ATTRS = frozenset({"shape", "ndim", "dtype", "device", "is_cuda", "is_sparse", "is_quantized", "is_meta",
                         "layout", "requires_grad", "is_leaf"})
_META_METHODS = frozenset({"size", "dim", "ndimension", "numel", "nelement", "element_size", "is_floating_point",
                           "is_complex", "is_contiguous", "stride", "get_device"})


class _Tracer(fx.Tracer):
    """fx tracer that keeps conv/linear/batch-norm/attention modules as leaves and records module paths."""

    def __init__(self) -> None:
        super().__init__()
        self._path: list[str] = []

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        if isinstance(m, LEAF_MODULES):
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


class _ValueProxy(fx.Proxy):
    """A proxy that also holds the value its node takes on the dummy input."""

    def __getattr__(self, k: str):
        if k.startswith("__") or k in ("_value", "node", "tracer"):
            raise AttributeError(k)
        value = self.__dict__.get("_value")
        if isinstance(value, torch.Tensor):
            if k in _META_ATTRS:
                return getattr(value, k)
            if k in _META_METHODS:
                return getattr(value, k)
            attr = getattr(value, k, None)
            if attr is not None and not callable(attr):
                # A tensor-valued attribute (``x.T``, ``x.mT``): a node of its own.
                return self.tracer.create_proxy("call_function", getattr, (self, k), {})
        return fx.proxy.Attribute(self, k)

    def __len__(self) -> int:
        return len(self.__dict__["_value"])

    def __setitem__(self, key, value) -> None:
        # In-place assignment (``attn[:, :, 1:, 1:] = ...``): recorded as a node; the channel tracer decides
        # whether it can follow it.
        self.tracer.create_proxy("call_function", operator.setitem, (self, key, value), {})

    def __iter__(self):
        return (cast(Any, self)[i] for i in range(len(self)))  # fx.Proxy sets __getitem__ at import: untyped


def _value_of(a: Any) -> Any:
    if isinstance(a, fx.proxy.Attribute):
        return getattr(_value_of(a.root), a.attr)
    if isinstance(a, fx.Proxy):
        return a.__dict__["_value"]
    return a


class _ValueTracer(_Tracer):
    """fx tracer whose proxies carry concrete values (see the module docstring)."""

    def __init__(self, inputs: tuple[torch.Tensor, ...]) -> None:
        super().__init__()
        self._inputs = list(inputs)
        self._computing = 0

    def proxy(self, node: fx.Node) -> fx.Proxy:
        return _ValueProxy(node, self)

    @contextlib.contextmanager
    def _eager(self):
        """Run real operations: module calls and parameter reads inside them are not recorded."""
        self._computing += 1
        try:
            yield
        finally:
            self._computing -= 1

    def call_module(self, m, forward, args, kwargs):
        if self._computing:
            return forward(*args, **kwargs)
        return super().call_module(m, forward, args, kwargs)

    def getattr(self, attr, attr_val, parameter_proxy_cache):
        if self._computing:
            return attr_val
        return super().getattr(attr, attr_val, parameter_proxy_cache)

    def create_proxy(self, kind, target, args, kwargs, name=None, type_expr=None, proxy_factory_fn=None):
        proxy = super().create_proxy(kind, target, args, kwargs, name, type_expr, proxy_factory_fn)
        if kind == "output" or not isinstance(proxy, _ValueProxy):
            return proxy
        value: Any
        if kind == "placeholder":
            value = self._inputs.pop(0) if self._inputs else None
        elif kind == "get_attr":
            with self._eager():  # the tracer patches Module.__getattr__: read the attribute itself
                value = self.root
                for atom in str(target).split("."):
                    value = getattr(value, atom)
        else:
            a = fx.node.map_aggregate(args, _value_of)
            k = fx.node.map_aggregate(kwargs, _value_of)
            with self._eager(), torch.no_grad():
                if kind == "call_function":
                    value = target(*a, **k)
                elif kind == "call_method":
                    value = getattr(a[0], target)(*a[1:], **k)
                else:
                    value = self.root.get_submodule(target)(*a, **k)
        proxy.__dict__["_value"] = value
        return proxy

    def to_bool(self, obj: fx.Proxy) -> bool:
        raise fx.proxy.TraceError("control flow depends on the values of a tensor (not only on its shape)")

    def iter(self, obj: fx.Proxy):
        return iter(obj)


class _ShapeProp(ShapeProp):
    """ShapeProp that also keeps each node's small non-tensor value (sizes, ints) in ``meta["value"]``."""

    def run_node(self, n: fx.Node):
        result = super().run_node(n)
        if not isinstance(result, torch.Tensor) and _plain(result):
            n.meta["value"] = result
        return result


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


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class _Root(nn.Module):
    """``module`` seen from a root whose forward takes the input alone and calls ``module.forward(x)``.

    The root shares the module's registries, so every dotted name is the module's own. Tracing starts at
    the call, not at the signature: optional arguments keep their defaults (``attn_mask=None``: timm's ViTs
    branch on it), and a decorated ``forward(*args, **kwargs)`` (Hugging Face's, which pops options from
    ``kwargs``) receives a real dict, as in a plain call.
    """

    _forward: Callable[..., Any]

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self._modules = module._modules
        self._parameters = module._parameters
        self._buffers = module._buffers
        object.__setattr__(self, "_forward", module.forward)
        self.train(module.training)

    def forward(self, x):
        return self._forward(x)


def _symbolic(module: nn.Module) -> fx.GraphModule:
    root = _Root(module)
    return fx.GraphModule(root, _Tracer().trace(root))


def _by_value(module: nn.Module, dummy: torch.Tensor) -> fx.GraphModule:
    root = _Root(module)
    tracer = _ValueTracer((dummy,))
    gm = fx.GraphModule(root, tracer.trace(root))
    # Nodes recorded only to answer a shape question (``len(x[0])``) lead nowhere: drop them.
    gm.graph.eliminate_dead_code()
    gm.recompile()
    return gm


def capture(module: nn.Module, dummy: torch.Tensor) -> fx.GraphModule:
    """A torch.fx graph of ``module`` whose nodes carry shapes for the input ``dummy``.

    Parameters
    ----------
    module : nn.Module
        In eval mode. An existing ``torch.fx.GraphModule`` is used as it is.
    dummy : Tensor
        The input used to propagate shapes (and, in the fallback, values).

    Returns
    -------
    torch.fx.GraphModule
        Each tensor-valued node has ``meta["tensor_meta"]``; small non-tensor values
        (sizes, indices) are in ``meta["value"]``; ``meta["module_path"]`` names the
        module whose forward created the node.

    Raises
    ------
    ModularityError
        If neither tracer can follow the module, or the forward pass fails (one line).
    """
    name = type(module).__name__
    if isinstance(module, fx.GraphModule):
        gm = module
    else:
        try:
            gm = _symbolic(module)
        except Exception as exc:  # fx raises many kinds: TraceError, TypeError, SyntaxError in codegen, ...
            symbolic_error = _first_line(exc)
            try:
                with torch.no_grad():
                    gm = _by_value(module, dummy)
            except Exception as exc2:
                raise ModularityError(
                    f"torch.fx could not trace {name} ({symbolic_error}; tracing with values: "
                    f"{_first_line(exc2)}); models with data-dependent control flow, or submodules whose names "
                    "are not Python identifiers, need a traceable definition"
                ) from None
    try:
        # ShapeProp prints the failing node's traceback itself: keep stderr to one line.
        with torch.no_grad(), contextlib.redirect_stderr(io.StringIO()):
            _ShapeProp(gm).propagate(dummy)
    except Exception as exc:
        shape = "x".join(str(s) for s in dummy.shape)
        raise ModularityError(
            f"a forward pass of {name} on a {shape} input failed ({_first_line(exc)}); pass the input size "
            "the model expects"
        ) from None
    return gm
