"""The tracer on small hand-built modules, one construct each: attention written in the ways timm and
Hugging Face write it, normalisations over channels, Unfold/Fold, gating products, functional convs and
linears, shape logic during tracing. Each test says which layers, which consumers, which branch labels."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from modularity.core.graph import trace
from modularity.errors import ModularityError

DIM, HEADS = 8, 2


class _Patches(nn.Module):
    """A patch embedding to a token sequence N x positions x DIM (the stem every attention test uses)."""

    def __init__(self):
        super().__init__()
        self.patch = nn.Conv2d(3, DIM, 2, stride=2)

    def forward(self, x):
        return self.patch(x).flatten(2).transpose(1, 2)


class _FusedSdpa(nn.Module):
    """timm's ``Attention``: one fused qkv linear, reshape to heads, F.scaled_dot_product_attention, proj."""

    def __init__(self):
        super().__init__()
        self.embed = _Patches()
        self.qkv = nn.Linear(DIM, 3 * DIM)
        self.proj = nn.Linear(DIM, DIM)
        self.head = nn.Linear(DIM, 5)

    def forward(self, x):
        t = self.embed(x)
        b, n, c = t.shape
        q, k, v = self.qkv(t).reshape(b, n, 3, HEADS, c // HEADS).permute(2, 0, 3, 1, 4).unbind(0)
        y = F.scaled_dot_product_attention(q, k, v)
        t = t + self.proj(y.transpose(1, 2).reshape(b, n, c))
        return self.head(t)


def test_fused_qkv_with_sdpa_is_split_into_q_k_v_labelled_by_head():
    model = _FusedSdpa().eval()
    g = trace(model, (4, 4))
    assert "qkv" not in g.layers
    assert [n for n in g.layers if n.startswith("qkv")] == ["qkv.q", "qkv.k", "qkv.v"]
    for part in "qkv":
        layer = g.layers[f"qkv.{part}"]
        assert (layer.n_units, layer.in_units) == (DIM, DIM)
        assert layer.branch_source == "heads" and layer.branches.tolist() == [0] * 4 + [1] * 4
        assert layer.branch_names == ["head 0", "head 1"]
        assert g.producers(f"qkv.{part}") == ["embed.patch"]
    # v's rows are the last third of the fused weight; proj reads v through the attention product.
    assert torch.equal(g.weight("qkv.v")[:, :, 0, 0], model.qkv.weight[2 * DIM:].detach())
    (edge,) = g.edges_between("qkv.v", "proj")
    assert edge.via == "attention" and edge.producer_units.tolist() == list(range(DIM))
    # q and k feed only the scores: consumers, never producers.
    assert {"qkv.q", "qkv.k"}.isdisjoint(g.producer_names())
    assert g.consumers("embed.patch") == ["qkv.q", "qkv.k", "qkv.v", "head"]
    assert any("attention scores" in n for n in g.notes)


class _ExplicitProducts(nn.Module):
    """Separate q, k, v linears and ``softmax(q @ k.transpose(-2, -1) * scale) @ v`` written out."""

    def __init__(self):
        super().__init__()
        self.embed = _Patches()
        self.q, self.k, self.v = nn.Linear(DIM, DIM), nn.Linear(DIM, DIM), nn.Linear(DIM, DIM)
        self.proj = nn.Linear(DIM, DIM)

    def forward(self, x):
        t = self.embed(x)
        b, n, c = t.shape

        def heads(y):
            return y.view(b, n, HEADS, c // HEADS).transpose(1, 2)

        q, k, v = heads(self.q(t)), heads(self.k(t)), heads(self.v(t))
        attn = (q @ k.transpose(-2, -1)) * (c // HEADS) ** -0.5
        y = attn.softmax(dim=-1) @ v
        return self.proj(y.transpose(1, 2).reshape(b, n, c))


def test_explicit_attention_products_label_separate_q_k_v_by_head():
    g = trace(_ExplicitProducts().eval(), (4, 4))
    for name in ("q", "k", "v"):
        assert g.layers[name].branch_source == "heads"
        assert g.layers[name].branches.tolist() == [0] * 4 + [1] * 4
    (edge,) = g.edges_between("v", "proj")
    assert edge.via == "attention"
    assert g.consumers("v") == ["proj"] and g.consumers("q") == [] and g.consumers("k") == []


class _FunctionalMha(nn.Module):
    """A module that calls F.multi_head_attention_forward itself with its own fused projection."""

    def __init__(self):
        super().__init__()
        self.embed = _Patches()
        self.in_proj_weight = nn.Parameter(torch.randn(3 * DIM, DIM) / DIM ** 0.5)
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * DIM))
        self.out_proj = nn.Linear(DIM, DIM)
        self.fc = nn.Linear(DIM, 3)

    def forward(self, x):
        t = self.embed(x).transpose(0, 1)  # positions x N x DIM
        y, _ = F.multi_head_attention_forward(
            t, t, t, DIM, HEADS, self.in_proj_weight, self.in_proj_bias, None, None, False, 0.0,
            self.out_proj.weight, self.out_proj.bias, training=False, need_weights=False)
        return self.fc(y)


def test_functional_multi_head_attention_maps_like_the_module():
    model = _FunctionalMha().eval()
    g = trace(model, (4, 4))
    # the fused weight belongs to the network itself (the root module): its parts are q, k and v
    assert [n for n in g.layers if g.layers[n].branch_source == "heads"] == ["q", "k", "v"]
    assert g.layers["v"].branches.tolist() == [0] * 4 + [1] * 4
    assert torch.equal(g.weight("k")[:, :, 0, 0], model.in_proj_weight[DIM:2 * DIM].detach())
    (edge,) = g.edges_between("v", "out_proj")
    assert edge.via == "attention"
    assert g.consumers("out_proj") == ["fc"]


class _RelativeLogits(nn.Module):
    """q contracted with a learned relative-position table (halo / bottleneck attention), added to the scores."""

    def __init__(self, positions: int = 4):
        super().__init__()
        self.embed = _Patches()
        self.qkv = nn.Linear(DIM, 3 * DIM)
        self.rel = nn.Parameter(torch.randn(DIM // HEADS, positions))
        self.proj = nn.Linear(DIM, DIM)

    def forward(self, x):
        t = self.embed(x)
        b, n, c = t.shape
        q, k, v = self.qkv(t).reshape(b, n, 3, HEADS, c // HEADS).permute(2, 0, 3, 1, 4).unbind(0)
        attn = q @ k.transpose(-2, -1) + q @ self.rel
        return self.proj((attn.softmax(-1) @ v).transpose(1, 2).reshape(b, n, c))


def test_a_learned_table_contracting_q_into_the_scores_is_position_logits():
    g = trace(_RelativeLogits().eval(), (4, 4))
    assert g.layers["qkv.q"].branch_source == "heads"
    assert g.consumers("qkv.v") == ["proj"]
    assert any("relative" in n or "position" in n for n in g.notes)


class _FixedMixIntoLayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1)
        self.register_buffer("mix", torch.randn(4, 4))
        self.out = nn.Linear(4, 2)

    def forward(self, x):
        return self.out(self.conv(x).permute(0, 2, 3, 1) @ self.mix)


def test_a_fixed_matrix_mixing_channels_into_a_layer_is_still_refused():
    with pytest.raises(ModularityError, match=r"fx node 'matmul'.*mixes channels"):
        trace(_FixedMixIntoLayer(), (4, 4))


# -- normalisations -----------------------------------------------------------------------------------


class _Normalised(nn.Module):
    def __init__(self, norm):
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 1)
        self.norm = norm
        self.out = nn.Conv2d(6, 2, 1)

    def forward(self, x):
        return self.out(self.norm(self.conv(x)))


class _L2(nn.Module):
    def forward(self, x):
        return F.normalize(x, dim=1)


def test_l2_normalisation_over_channels_keeps_every_channel_in_place():
    g = trace(_Normalised(_L2()), (4, 4))
    (edge,) = g.edges_between("conv", "out")
    assert edge.consumer_cols.tolist() == edge.producer_units.tolist() == list(range(6))
    assert g.layers["conv"].row_scale is None


class _ChannelsLastRms(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 1)
        self.norm = nn.RMSNorm(6)
        self.out = nn.Linear(6, 2)

    def forward(self, x):
        return self.out(self.norm(self.conv(x).permute(0, 2, 3, 1)))


def test_rms_norm_scale_folds_into_the_layer_before():
    model = _ChannelsLastRms().eval()
    with torch.no_grad():
        model.norm.weight.copy_(torch.linspace(-2, 2, 6))
    g = trace(model, (4, 4))
    np.testing.assert_allclose(g.layers["conv"].row_scale, np.abs(np.linspace(-2, 2, 6)), rtol=1e-6)
    assert g.consumers("conv") == ["out"]


class _ManualRms(nn.Module):
    """timm's ``rms_norm``: ``x * rsqrt(mean(x**2 over channels)) * weight``, written out."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 1)
        self.weight = nn.Parameter(torch.linspace(0.5, 3, 6))
        self.out = nn.Linear(6, 2)

    def forward(self, x):
        y = self.conv(x).permute(0, 2, 3, 1)
        y = y * torch.rsqrt(y.pow(2).mean(-1, keepdim=True) + 1e-6)
        return self.out(y * self.weight)


def test_a_norm_written_out_keeps_channels_and_carries_its_scale():
    g = trace(_ManualRms().eval(), (4, 4))
    (edge,) = g.edges_between("conv", "out")
    assert edge.producer_units.tolist() == list(range(6))
    # the weight multiplies a value the conv's output reaches through several uses: folded on out's columns.
    np.testing.assert_allclose(g.layers["out"].col_scale, np.linspace(0.5, 3, 6), rtol=1e-6)


def test_global_response_norm_keeps_channels_and_names_its_scale():
    timm_grn = pytest.importorskip("timm.layers.grn")
    model = nn.Sequential(nn.Conv2d(3, 6, 1), timm_grn.GlobalResponseNorm(6, channels_last=False),
                          nn.Conv2d(6, 2, 1)).eval()
    with torch.no_grad():
        model[1].weight.copy_(torch.linspace(0.5, 1.5, 6))
    g = trace(model, (4, 4))
    (edge,) = g.edges_between("0", "2")
    assert edge.producer_units.tolist() == list(range(6))
    # x + gamma * (x * N(x)): gamma scales one of two added paths; it cannot fold and is named.
    assert any(n.startswith("1:") and "scale" in n for n in g.notes)


class _HeadNorm(nn.Module):
    """A LayerNorm over each head's channels of q (timm's ``q_norm``): its scale reaches only the scores."""

    def __init__(self):
        super().__init__()
        self.embed = _Patches()
        self.qkv = nn.Linear(DIM, 3 * DIM)
        self.q_norm = nn.LayerNorm(DIM // HEADS)
        self.proj = nn.Linear(DIM, DIM)

    def forward(self, x):
        t = self.embed(x)
        b, n, c = t.shape
        q, k, v = self.qkv(t).reshape(b, n, 3, HEADS, c // HEADS).permute(2, 0, 3, 1, 4).unbind(0)
        y = F.scaled_dot_product_attention(self.q_norm(q), k, v)
        return self.proj(y.transpose(1, 2).reshape(b, n, c))


def test_a_per_head_norm_on_q_is_named_not_dropped():
    g = trace(_HeadNorm().eval(), (4, 4))
    assert g.layers["qkv.q"].branch_source == "heads"
    assert any(n.startswith("q_norm") or "norm on q" in n for n in g.notes)


# -- Unfold / Fold ------------------------------------------------------------------------------------


class _UnfoldLinear(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1)
        self.unfold = nn.Unfold(kernel_size=2, stride=2)
        self.fc = nn.Linear(4 * 4, 5)

    def forward(self, x):
        return self.fc(self.unfold(self.conv(x)).transpose(1, 2))


def test_unfold_spreads_each_channel_over_its_kernel_offsets():
    g = trace(_UnfoldLinear().eval(), (4, 4))
    (edge,) = g.edges_between("conv", "fc")
    # column c * 4 + j reads channel c (Unfold's channel-major layout)
    assert edge.consumer_cols.tolist() == list(range(16))
    assert edge.producer_units.tolist() == np.repeat(np.arange(4), 4).tolist()


class _UnfoldFold(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1)
        self.out = nn.Conv2d(4, 2, 1)

    def forward(self, x):
        cols = F.unfold(self.conv(x), 3, padding=1)
        return self.out(F.fold(cols * 0.5, (6, 6), 3, padding=1))


def test_fold_after_unfold_gives_back_each_channel():
    g = trace(_UnfoldFold().eval(), (6, 6))
    (edge,) = g.edges_between("conv", "out")
    assert edge.producer_units.tolist() == edge.consumer_cols.tolist() == list(range(4))


class _FoldMixing(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 1)

    def forward(self, x):
        return F.fold(self.conv(x).flatten(2), (2, 2), 2)  # 8 channels in groups of 4 offsets: channel sums


def test_fold_that_adds_different_channels_is_refused():
    with pytest.raises(ModularityError, match="Fold adds different channels"):
        trace(_FoldMixing(), (1, 1))


# -- gating products ----------------------------------------------------------------------------------


class _Gated(nn.Module):
    """gMLP's gating: fc1's two halves multiplied channel by channel, read by fc2."""

    def __init__(self):
        super().__init__()
        self.embed = _Patches()
        self.fc1 = nn.Linear(DIM, 2 * DIM)
        self.fc2 = nn.Linear(DIM, 3)

    def forward(self, x):
        u, v = self.fc1(self.embed(x)).chunk(2, dim=-1)
        return self.fc2(u * torch.sigmoid(v))


def test_a_gating_product_reads_both_streams_channel_by_channel():
    g = trace(_Gated().eval(), (4, 4))
    edges = g.edges_between("fc1", "fc2")
    cols = np.concatenate([e.consumer_cols for e in edges])
    units = np.concatenate([e.producer_units for e in edges])
    assert sorted(zip(cols.tolist(), units.tolist())) == sorted(
        [(c, c) for c in range(DIM)] + [(c, DIM + c) for c in range(DIM)])
    assert g.layers["fc1"].branch_source == "split"


class _OneChannelGate(nn.Module):
    """FocalNet's per-level gate: one channel broadcast over every channel of the context."""

    def __init__(self):
        super().__init__()
        self.f = nn.Conv2d(3, 5, 1)
        self.out = nn.Conv2d(4, 2, 1)

    def forward(self, x):
        ctx, gate = torch.split(self.f(x), (4, 1), 1)
        return self.out(ctx * gate)


def test_a_one_channel_gate_leaves_the_channels_of_what_it_gates():
    g = trace(_OneChannelGate().eval(), (4, 4))
    (edge,) = g.edges_between("f", "out")
    assert edge.producer_units.tolist() == [0, 1, 2, 3]


# -- functional convs and linears ---------------------------------------------------------------------


class _FunctionalWeights(nn.Module):
    def __init__(self):
        super().__init__()
        self.kernel = nn.Parameter(torch.randn(6, 3, 3, 3))
        self.lin = nn.Linear(6, 4)
        self.register_buffer("blur", torch.ones(6, 1, 3, 3) / 9)

    def forward(self, x):
        y = F.conv2d(x, self.kernel, padding=1)
        y = F.conv2d(y, self.blur, padding=1, groups=6)  # a fixed depthwise filter: channels stay in place
        return F.linear(y.mean((2, 3)), self.lin.weight, self.lin.bias)


def test_functional_conv_and_linear_with_parameter_weights_are_layers():
    model = _FunctionalWeights().eval()
    g = trace(model, (5, 5))
    assert g.layers["kernel"].kind == "conv" and g.layers["kernel"].kernel_size == (3, 3)
    assert torch.equal(g.weight("kernel"), model.kernel.detach())
    assert g.layers["lin"].kind == "linear" and g.modules["lin"] is model.lin
    (edge,) = g.edges_between("kernel", "lin")
    assert edge.producer_units.tolist() == list(range(6))


class _FixedMixingConv(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("w", torch.randn(4, 3, 1, 1))

    def forward(self, x):
        return F.conv2d(x, self.w)


def test_a_functional_conv_with_a_fixed_mixing_weight_is_refused():
    with pytest.raises(ModularityError, match=r"fx node 'conv2d'.*not a parameter"):
        trace(_FixedMixingConv(), (4, 4))


def test_conv1d_is_a_layer_with_a_one_by_k_kernel():
    model = nn.Sequential(nn.Flatten(2), nn.Conv1d(3, 4, 3), nn.ReLU(), nn.Conv1d(4, 2, 1)).eval()
    g = trace(model, (4, 4))
    assert g.layers["1"].kernel_size == (1, 3) and g.weight("1").shape == (4, 3, 1, 3)
    assert g.consumers("1") == ["3"]


class _TokenMixer(nn.Module):
    """MLP-Mixer's token MLP: a linear over positions (applied to every channel alike), then a channel MLP."""

    def __init__(self):
        super().__init__()
        self.embed = _Patches()
        self.tokens = nn.Linear(4, 4)
        self.channels = nn.Linear(DIM, 3)

    def forward(self, x):
        t = self.embed(x)
        t = t + self.tokens(t.transpose(1, 2)).transpose(1, 2)
        return self.channels(t)


def test_a_token_mixing_linear_passes_channels_through_and_is_named():
    g = trace(_TokenMixer().eval(), (4, 4))
    assert "tokens" not in g.layers
    assert g.consumers("embed.patch") == ["channels"]
    assert any(n.startswith("tokens:") and "token mixing" in n for n in g.notes)


# -- shape logic during tracing -----------------------------------------------------------------------


class _ShapeLogic(nn.Module):
    """``len``, a shape assert and a loop over a size: torch.fx alone cannot trace these."""

    def __init__(self):
        super().__init__()
        self.convs = nn.ModuleList([nn.Conv2d(3, 4, 1), nn.Conv2d(4, 4, 1)])

    def forward(self, x):
        assert x.shape[1] == 3, "expects RGB"
        for i in range(len(self.convs)):
            if x.shape[-1] > 2:
                x = self.convs[i](x)
        return x[:, : len(x[0])]


def test_shape_asserts_and_len_are_traced_with_values():
    g = trace(_ShapeLogic().eval(), (4, 4))
    assert [n for n, layer in g.layers.items() if layer.kind == "conv"] == ["convs.0", "convs.1"]
    assert g.consumers("convs.0") == ["convs.1"]


def test_tracing_leaves_no_constants_on_the_callers_module():
    model = _ShapeLogic().eval()
    before = set(vars(model))
    trace(model, (4, 4))
    assert set(vars(model)) == before


class _ClassToken(nn.Module):
    """CaiT's class attention: a class token with its own writers, put before the patch tokens."""

    def __init__(self):
        super().__init__()
        self.embed = _Patches()
        self.cls = nn.Parameter(torch.zeros(1, 1, DIM))
        self.cls_update = nn.Linear(DIM, DIM)
        self.head = nn.Linear(DIM, 3)

    def forward(self, x):
        t = self.embed(x)
        c = self.cls + self.cls_update(t.mean(1, keepdim=True))
        return self.head(torch.cat([c, t], dim=1))


def test_a_position_concatenation_of_different_writers_reads_all_of_them():
    g = trace(_ClassToken().eval(), (4, 4))
    assert g.producers("head") == ["cls_update", "embed.patch"]


class _PermutedIndex(nn.Module):
    """``qkv[0]`` after a permute that put the q/k/v axis first: indexing channels, not the batch."""

    def __init__(self):
        super().__init__()
        self.embed = _Patches()
        self.qkv = nn.Linear(DIM, 2 * DIM)
        self.out = nn.Linear(DIM, 3)

    def forward(self, x):
        t = self.embed(x)
        b, n, c = t.shape
        kv = self.qkv(t).reshape(b, n, 2, c).permute(2, 0, 1, 3)
        return self.out(kv[1])


def test_indexing_axis_zero_after_a_permute_selects_channels():
    g = trace(_PermutedIndex().eval(), (4, 4))
    (edge,) = g.edges_between("qkv", "out")
    assert edge.producer_units.tolist() == list(range(DIM, 2 * DIM))


def test_the_profile_of_a_split_v_is_the_output_projections_weight():
    from modularity.core.magnitude import downstream_profile

    model = _FusedSdpa().eval()
    g = trace(model, (4, 4))
    profile = downstream_profile(g, "qkv.v")
    assert profile.consumers == ["proj"]
    np.testing.assert_allclose(profile.matrix, model.proj.weight.detach().abs().double().numpy(), rtol=1e-6)


class _MaskFromTable(nn.Module):
    """SAM's decomposed relative positions: q times a learned table, passed as the fused attention's mask."""

    def __init__(self):
        super().__init__()
        self.embed = _Patches()
        self.qkv = nn.Linear(DIM, 3 * DIM)
        self.rel = nn.Parameter(torch.randn(DIM // HEADS, 4))
        self.proj = nn.Linear(DIM, DIM)

    def forward(self, x):
        t = self.embed(x)
        b, n, c = t.shape
        q, k, v = self.qkv(t).reshape(b, n, 3, HEADS, c // HEADS).permute(2, 0, 3, 1, 4).unbind(0)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=q @ self.rel)
        return self.proj(y.transpose(1, 2).reshape(b, n, c))


def test_a_mask_computed_from_q_and_a_table_is_part_of_the_scores():
    g = trace(_MaskFromTable().eval(), (4, 4))
    assert g.consumers("qkv.v") == ["proj"] and g.layers["qkv.v"].branch_source == "heads"


class _Shared(nn.Module):
    """One conv applied to two inputs (CoaT's position encoding shared by its serial blocks)."""

    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Conv2d(3, 4, 1), nn.Conv2d(3, 4, 1)
        self.shared = nn.Conv2d(4, 4, 3, padding=1)
        self.out_a, self.out_b = nn.Conv2d(4, 2, 1), nn.Conv2d(4, 2, 1)

    def forward(self, x):
        return self.out_a(self.shared(self.a(x))) + self.out_b(self.shared(self.b(x)))


def test_a_module_called_twice_is_one_layer_reading_and_writing_at_both_calls():
    g = trace(_Shared().eval(), (4, 4))
    assert g.producers("shared") == ["a", "b"]
    assert g.consumers("shared") == ["out_a", "out_b"]
    assert any(n.startswith("shared:") and "more than once" in n for n in g.notes)


class _Paths(nn.Module):
    """SKNet: two paths stacked on an axis of their own, gated, then summed over that axis."""

    def __init__(self):
        super().__init__()
        self.p0, self.p1 = nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(3, 4, 1)
        self.out = nn.Conv2d(4, 2, 1)

    def forward(self, x):
        paths = torch.stack([self.p0(x), self.p1(x)], dim=1)  # N x 2 x 4 x H x W
        gate = torch.softmax(paths.mean((3, 4), keepdim=True), dim=1)
        return self.out((paths * gate).sum(1))


def test_a_sum_over_stacked_paths_reads_every_path():
    g = trace(_Paths().eval(), (4, 4))
    assert g.producers("out") == ["p0", "p1"]
    for p in ("p0", "p1"):
        (edge,) = g.edges_between(p, "out")
        assert edge.consumer_cols.tolist() == edge.producer_units.tolist() == [0, 1, 2, 3]


class _PadOnes(nn.Module):
    """EfficientViT's linear attention pads v with a channel of ones (a constant, not a unit)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1)
        self.out = nn.Conv2d(5, 2, 1)

    def forward(self, x):
        return self.out(F.pad(self.conv(x), (0, 0, 0, 0, 0, 1), value=1.0))


def test_a_padded_channel_holds_no_unit():
    g = trace(_PadOnes().eval(), (4, 4))
    (edge,) = g.edges_between("conv", "out")
    assert edge.consumer_cols.tolist() == edge.producer_units.tolist() == [0, 1, 2, 3]


def test_a_transposed_conv_is_read_as_the_conv_it_equals():
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.ConvTranspose2d(4, 6, 3, padding=1, groups=2),
                          nn.Conv2d(6, 2, 1)).eval()
    g = trace(model, (5, 5))
    layer = g.layers["1"]
    assert (layer.n_units, layer.in_units, layer.groups) == (6, 4, 2)
    x = torch.randn(1, 4, 5, 5)
    with torch.no_grad():
        want = model[1](x) - model[1].bias[None, :, None, None]
        got = F.conv2d(x, g.weight("1"), padding=1, groups=2)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    assert g.consumers("1") == ["2"] and g.producers("1") == ["0"]


class _FunctionalBiasMlp(nn.Module):
    """A functional linear whose input is a constant table (a position-bias MLP written with F.linear)."""

    def __init__(self):
        super().__init__()
        self.table = nn.Parameter(torch.randn(4, 3))
        self.mlp = nn.Linear(3, 1)
        self.conv = nn.Conv2d(3, 2, 1)

    def forward(self, x):
        return self.conv(x) + F.linear(self.table, self.mlp.weight, self.mlp.bias).sum()


def test_a_functional_linear_reading_only_constants_is_not_a_layer_and_is_noted():
    g = trace(_FunctionalBiasMlp(), (4, 4))
    assert "mlp" not in g.layers and "conv" in g.layers
    assert any(n.startswith("mlp:") and "constants" in n for n in g.notes)


def test_both_halves_of_a_gated_layer_get_the_gates_reader_in_their_profile():
    from modularity.core.magnitude import downstream_profile

    model = _Gated().eval()
    profile = downstream_profile(trace(model, (4, 4)), "fc1")
    w = model.fc2.weight.detach().abs().double().numpy()
    # unit c (u) and unit DIM + c (the gate v) both reach fc2 through column c.
    np.testing.assert_allclose(profile.matrix, np.concatenate([w, w], axis=1), rtol=1e-6)


class _VAlsoReadDirectly(nn.Module):
    """v feeds the attention and, directly, a gate (iFormer-like): its units are not only heads' channels."""

    def __init__(self):
        super().__init__()
        self.embed = _Patches()
        self.q, self.k, self.v = nn.Linear(DIM, DIM), nn.Linear(DIM, DIM), nn.Linear(DIM, DIM)
        self.gate = nn.Linear(DIM, DIM)
        self.proj = nn.Linear(DIM, DIM)

    def forward(self, x):
        t = self.embed(x)
        b, n, c = t.shape

        def heads(y):
            return y.view(b, n, HEADS, c // HEADS).transpose(1, 2)

        v = self.v(t)
        y = F.scaled_dot_product_attention(heads(self.q(t)), heads(self.k(t)), heads(v))
        return self.proj(y.transpose(1, 2).reshape(b, n, c)) + self.gate(v)


def test_units_read_by_attention_and_directly_are_not_labelled_by_head():
    g = trace(_VAlsoReadDirectly().eval(), (4, 4))
    assert g.layers["v"].branches is None
    assert any(n.startswith("v:") and "also directly" in n for n in g.notes)
    assert g.layers["q"].branch_source == "heads"
