"""Attention, mapped onto channels: the product, score and attention methods of the channel tracer.

A mixin of :class:`modularity.core.graph._Builder` (it uses the builder's values, layers,
edges and helpers). Two families of constructs:

- attention modules and functions whose projections it knows (``nn.MultiheadAttention``,
  ``F.multi_head_attention_forward``, torchvision's ``shifted_window_attention``): q, k
  and v become layers ``<attention>.q/.k/.v`` at once, labelled by head;
- products written out or fused (``matmul``, ``einsum``, ``F.scaled_dot_product_attention``):
  followed by the letters of their axes. Which operand keeps its channels decides the
  result; every use of source units as q, k or v is recorded as a
  :class:`~modularity.core.attention_heads.HeadRole`, turned into head labels (and
  splits of fused projections) after the walk.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NoReturn, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import fx, nn

from . import tracing_ops as ops
from .attention_heads import HeadRole
from .channel_graph import Edge, Layer, _RowSlice
from .lineage import Traced, Value, constant, data_of, shape_of, tensor_shape

__all__ = ["AttentionMixin"]


def _sdpa_signature(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None,
                    enable_gqa=False):
    """The signature of ``F.scaled_dot_product_attention`` (a builtin without one), to bind its arguments."""


class AttentionMixin:
    """Products and attention for the channel tracer (see the module docstring)."""

    if TYPE_CHECKING:  # what the tracer this mixes into (graph._Builder) provides
        mods: dict[str, nn.Module]
        owners: dict[str, nn.Module]
        val: dict[fx.Node, Value]
        layers: dict[str, Layer]
        edges: list[Edge]
        modules: dict[str, nn.Module]
        consumer_of: dict[fx.Node, str]
        roles: list[HeadRole]

        def _fail(self, node: fx.Node, why: str) -> NoReturn: ...
        def _note(self, text: str) -> None: ...
        def _tv(self, x: fx.Node) -> Traced: ...
        def _aligned(self, x: fx.Node, n_out: int) -> Traced: ...
        def _parameter(self, node: fx.Node, w) -> tuple[str, nn.Module] | None: ...
        def _new_layer(self, node: fx.Node, name: str, layer: Layer, module: nn.Module, x: fx.Node, axis: int,
                       via: str = "direct") -> None: ...

    # -- products ----------------------------------------------------------
    def _scores(self, node: fx.Node) -> Traced:
        self._note(f"{node.meta.get('module_path') or node.name}: attention scores (a product that contracts "
                   "the channels of both operands) mix positions with data-dependent weights; the layers "
                   "that feed only them (q, k) have no channel-level consumer")
        return constant("scores")

    def _role(self, node: fx.Node, role: str, v: Traced, letters: str, other: set[str], out: str) -> None:
        """Record which source units an attention operand holds, and the head of each.

        The heads are the channel axes of the operand that the product keeps apart (batch axes shared with
        the other operand and present in the output): attention is computed head by head.
        """
        head_axes = [j for j, a in enumerate(v.axes) if letters[a] in other and letters[a] in out]
        dims = [int(np.shape(v.terms[0][1])[j]) for j in range(len(v.axes))] if v.terms else []
        grid = np.indices(dims) if dims else np.zeros((0,), dtype=int)
        if head_axes:
            heads = np.ravel_multi_index(tuple(grid[j] for j in head_axes), [dims[j] for j in head_axes])
            n_heads = int(np.prod([dims[j] for j in head_axes]))
        else:
            heads, n_heads = np.zeros(dims, dtype=int), 1
        where = node.meta.get("module_path") or node.name
        for src, idx in v.terms:
            ok = idx >= 0
            self.roles.append(HeadRole(role, src, idx[ok].reshape(-1), heads[ok].reshape(-1), n_heads, where))
        if role in ("q", "k") and v.scale is not None:
            self._note(f"{where}: a per-channel scale (of a norm on {role}, or a multiplier) reaches only the "
                       "attention scores; it has no consumer here and is not folded")

    def _keep(self, v: Traced, letters: str, out: str) -> Traced:
        """The value of an operand whose channels a product keeps, with its axes renumbered in the output."""
        new_axes = [out.index(letters[a]) for a in v.axes]
        order = np.argsort(new_axes)
        terms = [(s, np.transpose(i, order)) for s, i in v.terms]
        scale = None if v.scale is None else np.transpose(v.scale, order)
        return Traced(tuple(sorted(new_axes)), terms, scale, v.data, v.att)

    def _product(self, node: fx.Node, operands: list[tuple[Traced, str]], out: str, scores: bool = False) -> Traced:
        """A product written with one letter per axis (einsum style).

        - Two operands that both hold channels and contract a common channel axis: attention scores
          (``q k^T``); both are recorded by head (roles q and k).
        - Two operands that contract positions only and both keep channels: attention over channels (XCiT's
          cross-covariance ``q^T k``), recorded the same way.
        - One operand whose channels are contracted against the other's positions: its units act as attention
          weights (VOLO's outlook attention computes them with a linear layer); the other keeps its channels.
        - One operand with channels and attention weights (or constants) over positions: the channels are kept
          (``softmax(q k^T) v``; role v, ``via="attention"``). Attention weights that contract the channels of v
          mix them with data-dependent weights: the result is ``"mixed"``.

        ``scores=True`` (the first product of a fused attention) makes the result attention weights even when
        one side is a constant (a learned query).
        """
        contracted = {ch for _, letters in operands for ch in letters if ch not in out}
        live = [(v, {letters[a] for a in v.axes}, letters) for v, letters in operands if not v.const]
        weights = [(v, letters) for v, letters in operands if v.const and v.data in ("scores", "mixed")]
        where = node.meta.get("module_path") or node.name
        if len(live) > 2:
            self._fail(node, "a product of more than two tensors that hold channels")
        if len(live) == 2:
            (va, ca, la), (vb, cb, lb) = live
            lost_a, lost_b = ca & contracted, cb & contracted
            if (lost_a & lost_b) or (not lost_a and not lost_b and contracted):
                self._role(node, "q", va, la, set(lb), out)
                self._role(node, "k", vb, lb, set(la), out)
                if not (lost_a & lost_b) and ca and cb:
                    self._note(f"{where}: attention over channels (a product of two channel tensors over "
                               "positions) gives weights between channels, not channels")
                    return constant("scores")
                return self._scores(node)
            if bool(lost_a) != bool(lost_b):
                (w, lw), (kept, ck, lk) = ((va, la), live[1]) if lost_a else ((vb, lb), live[0])
                if not (ck & contracted):
                    names = ", ".join(dict.fromkeys(s for s, _ in w.terms))
                    self._note(f"{where}: the units of {names} are used as attention weights over positions; "
                               "they have no channel-level consumer")
                    self._role(node, "v", kept, lk, set(lw), out)
                    res = self._keep(kept, lk, out)
                    return Traced(res.axes, res.terms, res.scale, res.data, frozenset(s for s, _ in kept.terms))
            self._fail(node, "a product of two tensors that both hold channels, over positions")
        if not live:
            return constant(data_of([v for v, _ in operands]))
        v, chans, letters = live[0]
        other = set().union(*(set(lt) for _, lt in weights)) if weights else set()
        if chans & contracted:
            if scores:
                self._role(node, "k", v, letters, set().union(*(set(lt) for _, lt in operands)), out)
                return self._scores(node)
            if weights:
                self._role(node, "v", v, letters, other, out)
                self._note(f"{where}: data-dependent weights mix the channels of v (attention over channels); "
                           "what reads the result has no channel-level producer")
                return constant("mixed")
            if self._feeds_softmax(node):
                self._note(f"{where}: a fixed or learned table contracts channels into logits that become "
                           "attention weights (relative-position logits, a learned query); not channels")
                return constant("scores")
            self._fail(node, "a product with a fixed or computed matrix that mixes channels")
        res = self._keep(v, letters, out)
        if any(w.data == "scores" for w, _ in weights):
            self._role(node, "v", v, letters, other, out)
            res = Traced(res.axes, res.terms, res.scale, res.data, frozenset(s for s, _ in v.terms))
        return res

    def _feeds_softmax(self, node: fx.Node, limit: int = 64) -> bool:
        """True when every path from ``node`` reaches a softmax (or an L2 normalisation, SwiftFormer's additive
        attention) before any weighted layer or the output: the product makes attention weights."""
        seen, stack = set(), [(u, node) for u in node.users]
        while stack:
            n, came_from = stack.pop()
            if n in seen:
                continue
            seen.add(n)
            if len(seen) > limit or n.op == "output":
                return False
            if n.op == "call_function" and n.target is F.scaled_dot_product_attention:
                # an additive mask of the fused attention (SAM's decomposed relative positions) is scores
                if came_from in (n.args[3:4] or (n.kwargs.get("attn_mask"),)):
                    continue
                return False
            if (n.op == "call_function" and n.target in (F.softmax, torch.softmax, F.normalize)
                    or n.op == "call_method" and n.target == "softmax"
                    or n.op == "call_module" and isinstance(self.mods[str(n.target)], nn.Softmax)):
                continue
            if n.op == "call_module" and isinstance(self.mods[str(n.target)], (nn.Conv1d, nn.Conv2d, nn.Linear)) \
                    or n.op == "call_function" and (n.target is F.linear or n.target in ops.CONV_FUNCTIONS):
                return False
            stack.extend((u, n) for u in n.users)
        return bool(seen)

    def _matmul(self, node: fx.Node, shape) -> Traced:
        a, b = cast(fx.Node, node.args[0]), cast(fx.Node, node.args[1])
        sa, sb = shape_of(a), shape_of(b)
        if sa is None or sb is None or len(sa) < 2 or len(sb) < 2:
            self._fail(node, "only matrix products of tensors with at least two axes are supported")
        n = len(shape)
        letters = "abcdefghijklmnopqrstuvw"[:n - 2]
        la = letters[n - len(sa):] + "yz"
        lb = letters[n - len(sb):] + "zx"
        out = letters + "yx"
        return self._product(node, [(self._tv(a), la), (self._tv(b), lb)], out)

    def _einsum(self, node: fx.Node, shape) -> Traced:
        eq = node.args[0]
        operands: Sequence[Any] = node.args[1:]
        if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
            operands = operands[0]
        eq = eq.replace(" ", "") if isinstance(eq, str) else None
        if eq is None or "->" not in eq or "." in eq:
            self._fail(node, "only einsum equations with explicit output letters and no '...' are supported")
        lhs, out = eq.split("->")
        ins = lhs.split(",")
        if len(ins) != len(operands) or not all(isinstance(o, fx.Node) for o in operands):
            self._fail(node, "an einsum whose operands could not be matched to its equation")
        return self._product(node, [(self._tv(o), letters) for o, letters in zip(operands, ins)], out)

    def _sdpa(self, node: fx.Node, shape) -> Traced:
        """``F.scaled_dot_product_attention(q, k, v)``: scores ``q k^T`` per head, then ``softmax(.) v``."""
        try:
            bound = inspect.signature(_sdpa_signature).bind(*node.args, **node.kwargs).arguments
        except TypeError as exc:
            self._fail(node, f"unexpected arguments ({exc})")
        q, k, v = bound["query"], bound["key"], bound["value"]
        vals = [self.val.get(t) for t in (q, k, v)]
        if not all(isinstance(x, Traced) for x in vals):
            self._fail(node, "its query, key and value must be traced tensors")
        n = len(shape)
        batch = "abcdefgh"[:n - 2]
        vq, vk, vv = (self._aligned(t, n) if len(tensor_shape(t)) != n else self._tv(t) for t in (q, k, v))
        lq, lk, lv = batch + "le", batch + "se", batch + "sf"
        weights = self._product(node, [(vq, lq), (vk, lk)], batch + "ls", scores=True)
        if not weights.const:
            self._fail(node, "its attention scores hold channels")
        weights = Traced((), [], data="scores")
        return self._product(node, [(weights, batch + "ls"), (vv, lv)], batch + "lf")

    # -- attention ---------------------------------------------------------
    def _head_labels(self, n: int, heads: int) -> tuple[np.ndarray, list[str]]:
        return np.arange(n) // (n // heads), [f"head {h}" for h in range(heads)]

    def _qkv_layers(self, node: fx.Node, base: str, parent: nn.Module, parts: list[tuple[str, int, int]],
                    inputs: list[fx.Node], heads: int) -> str:
        """Layers ``<base>.q``, ``.k``, ``.v`` as row slices of a fused projection; returns the name of v."""
        names = []
        for (attr, start, stop), x, part in zip(parts, inputs, "qkv"):
            name = f"{base}.{part}" if base else part
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
        w = cast(torch.Tensor, module.weight)
        n_in = self.layers[v_name].n_units
        if int(w.shape[1]) != n_in:
            self._fail(node, f"the output projection reads {int(w.shape[1])} features but v has {n_in}")
        self.layers[name] = Layer(name, "conv", int(w.shape[0]), n_in, 1, (1, 1))
        self.modules[name] = module
        self.edges.append(Edge(v_name, name, np.arange(n_in), np.arange(n_in), "attention"))

    def _mha(self, node: fx.Node, mod: nn.MultiheadAttention):
        """``nn.MultiheadAttention``: q, k, v as head-labelled layers, the output projection reading v."""
        names = ["query", "key", "value"]
        xs: list[Any] = [node.args[i] if len(node.args) > i else node.kwargs.get(names[i]) for i in range(3)]
        if not all(isinstance(self.val.get(x), Traced) for x in xs):
            self._fail(node, "its query, key and value must be traced tensors")
        if mod.bias_k is not None or mod.add_zero_attn:
            self._fail(node, "attention with add_bias_kv or add_zero_attn is not supported")
        e, heads = int(mod.embed_dim), int(mod.num_heads)
        if mod._qkv_same_embed_dim:
            parts = [("in_proj_weight", 0, e), ("in_proj_weight", e, 2 * e), ("in_proj_weight", 2 * e, 3 * e)]
        else:
            parts = [("q_proj_weight", 0, e), ("k_proj_weight", 0, e), ("v_proj_weight", 0, e)]
        base = str(node.target)
        v_name = self._qkv_layers(node, base, mod, parts, xs, heads)
        out_name = f"{base}.out_proj"
        self._out_projection(node, out_name, mod.out_proj, v_name)
        self.consumer_of[node] = out_name
        n_dims = len(tensor_shape(xs[0]))
        return (Traced((n_dims - 1,), [(out_name, np.arange(self.layers[out_name].n_units))]), None)

    def _mha_functional(self, node: fx.Node):
        """``F.multi_head_attention_forward`` called in a forward, mapped like ``nn.MultiheadAttention``."""
        try:
            b = inspect.signature(F.multi_head_attention_forward).bind(*node.args, **node.kwargs).arguments
        except TypeError as exc:
            self._fail(node, f"unexpected arguments ({exc})")
        xs = [b["query"], b["key"], b["value"]]
        if not all(isinstance(self.val.get(x), Traced) for x in xs):
            self._fail(node, "its query, key and value must be traced tensors")
        heads = b["num_heads"]
        heads = heads.meta.get("value") if isinstance(heads, fx.Node) else heads
        if b.get("bias_k") is not None or b.get("add_zero_attn"):
            self._fail(node, "attention with add_bias_kv or add_zero_attn is not supported")
        if b.get("use_separate_proj_weight"):
            ws: list[Any] = [b.get("q_proj_weight"), b.get("k_proj_weight"), b.get("v_proj_weight")]
        else:
            ws = [b["in_proj_weight"]] * 3
        if not all(isinstance(w, fx.Node) and w.op == "get_attr" for w in ws) or not isinstance(heads, int):
            self._fail(node, "its projection weights are not module parameters")
        owners = {str(w.target).rpartition(".")[0] for w in ws}
        if len(owners) != 1:
            self._fail(node, "its q, k and v projection weights belong to different modules")
        base = owners.pop()
        parent = self.owners.get(base, self.mods.get(base))
        assert parent is not None  # the owner of a get_attr target is a module of the graph
        if b.get("use_separate_proj_weight"):
            parts = [(str(w.target).rpartition(".")[2], 0, tensor_shape(w)[0]) for w in ws]
        else:
            attr, e = str(ws[0].target).rpartition(".")[2], tensor_shape(ws[0])[0] // 3
            parts = [(attr, 0, e), (attr, e, 2 * e), (attr, 2 * e, 3 * e)]
        v_name = self._qkv_layers(node, base, parent, parts, xs, heads)
        found = self._parameter(node, b["out_proj_weight"])
        if found is None:
            self._fail(node, "its output projection weight is not a module parameter")
        out_name, out_mod = found
        self._out_projection(node, out_name, out_mod, v_name)
        self.consumer_of[node] = out_name
        return (Traced((len(tensor_shape(xs[0])) - 1,), [(out_name, np.arange(self.layers[out_name].n_units))]), None)

    def _swin_attention(self, node: fx.Node) -> Traced:
        """torchvision's ``shifted_window_attention`` (Swin v1 and v2), mapped like nn.MultiheadAttention."""
        try:
            bound = inspect.signature(ops.SWIN_ATTENTION).bind(*node.args, **node.kwargs).arguments
        except TypeError as exc:
            self._fail(node, f"unexpected arguments ({exc})")
        x = bound["input"]
        if not isinstance(self.val.get(x), Traced) or self._tv(x).const:
            self._fail(node, "its input is not a traced tensor")
        qkv_w, proj_w = bound["qkv_weight"], bound["proj_weight"]
        if not (isinstance(qkv_w, fx.Node) and qkv_w.op == "get_attr" and isinstance(proj_w, fx.Node)
                and proj_w.op == "get_attr"):
            self._fail(node, "its projection weights are not module parameters")
        heads = bound["num_heads"]
        heads = heads.meta.get("value") if isinstance(heads, fx.Node) else heads
        qkv_path, qkv_attr = str(qkv_w.target).rsplit(".", 1)
        proj_path = str(proj_w.target).rsplit(".", 1)[0]
        qkv_mod = self.owners.get(qkv_path, self.mods.get(qkv_path))
        proj_mod = self.owners.get(proj_path, self.mods.get(proj_path))
        if qkv_mod is None or proj_mod is None or not isinstance(heads, int):
            self._fail(node, "its projections could not be matched to modules")
        c = int(tensor_shape(x)[-1])
        base = qkv_path.rsplit(".", 1)[0] if "." in qkv_path else qkv_path
        parts = [(qkv_attr, 0, c), (qkv_attr, c, 2 * c), (qkv_attr, 2 * c, 3 * c)]
        v_name = self._qkv_layers(node, base, qkv_mod, parts, [x, x, x], heads)
        self._out_projection(node, proj_path, proj_mod, v_name)
        self.consumer_of[node] = proj_path
        return Traced((len(tensor_shape(x)) - 1,), [(proj_path, np.arange(self.layers[proj_path].n_units))])
