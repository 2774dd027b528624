import numpy as np
import pytest
import torch
import torchvision.models as tvm
from torch import nn

from modularity.core.graph import trace
from modularity.errors import ModularityError
from modularity.zoo.torchvision_models import build_torchvision, input_size
from tests.nets import TinyEncoder, grouped_net

MODELS = ["alexnet", "vgg16", "resnet18", "resnet50", "resnext50_32x4d", "googlenet", "inception_v3",
          "mobilenet_v2", "efficientnet_b0"]


def _executed_weighted_modules(model: nn.Module, size) -> set[str]:
    seen = set()
    hooks = [m.register_forward_hook(lambda mod, i, o, n=n: seen.add(n))
             for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        model(torch.zeros(1, 3, *size))
    for h in hooks:
        h.remove()
    return seen


@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS)
def test_every_executed_conv_and_linear_becomes_a_layer(name):
    model = build_torchvision(name)
    g = trace(model, input_size(name))
    layers = {n for n, layer in g.layers.items() if layer.kind in ("conv", "linear")}
    assert layers == _executed_weighted_modules(model, input_size(name))


@pytest.mark.parametrize("aux_logits", [False, True])
@pytest.mark.parametrize("transform_input", [False, True])
def test_googlenet_inception3a_branches_and_consumers(aux_logits, transform_input):
    model = tvm.googlenet(weights=None, aux_logits=aux_logits, transform_input=transform_input,
                          init_weights=True)
    g = trace(model)
    layer = g.layers["inception3a"]
    assert layer.n_units == 256
    sizes = np.bincount(layer.branches)
    offsets = [int(np.flatnonzero(layer.branches == b)[0]) for b in range(4)]
    assert sizes.tolist() == [64, 128, 32, 32] and offsets == [0, 64, 192, 224]
    assert g.consumers("inception3a") == ["inception3b.branch1.conv", "inception3b.branch2.0.conv",
                                          "inception3b.branch3.0.conv", "inception3b.branch4.1.conv"]


@pytest.mark.slow
def test_googlenet_transform_input_maps_rgb_to_conv1_inputs():
    g = trace(tvm.googlenet(weights=None, aux_logits=False, transform_input=True, init_weights=True))
    (edge,) = g.edges_between("input", "conv1.conv")
    assert edge.consumer_cols.tolist() == [0, 1, 2] and edge.producer_units.tolist() == [0, 1, 2]


def test_residual_stream_is_read_by_every_later_block():
    g = trace(build_torchvision("resnet50"))
    assert g.consumers("layer1.0.conv3") == ["layer1.1.conv1", "layer1.2.conv1", "layer2.0.conv1",
                                             "layer2.0.downsample.0"]


def test_linear_after_flatten_reads_each_channel_at_every_position():
    g = trace(build_torchvision("alexnet"))
    (edge,) = g.edges_between("features.10", "classifier.1")
    assert len(edge.consumer_cols) == 256 * 36
    assert np.array_equal(np.bincount(edge.producer_units), np.full(256, 36))


def test_batchnorm_after_conv_is_folded_as_row_scale():
    model = grouped_net()
    bn = model[3]
    with torch.no_grad():
        bn.weight.uniform_(-2, 2)
        bn.running_var.uniform_(0.5, 2)
    g = trace(model)
    expected = bn.weight.abs().double() / torch.sqrt(bn.running_var.double() + bn.eps)
    np.testing.assert_allclose(g.layers["2"].row_scale, expected.detach().numpy())


def test_grouped_consumer_labels_its_producer_units():
    g = trace(grouped_net(groups=4, width=32))
    assert g.layers["0"].branch_source == "consumer_groups"
    assert g.layers["0"].branches.tolist() == np.repeat(np.arange(4), 8).tolist()
    assert g.layers["2"].branch_source == "groups"


def test_depthwise_conv_is_not_a_branch_structure():
    g = trace(build_torchvision("mobilenet_v2"))
    assert g.layers["features.1.conv.0.0"].is_depthwise
    assert g.layers["features.0.0"].branches is None


class _ChannelMixer(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1)
        self.out = nn.Conv2d(4, 2, 1)

    def forward(self, x):
        return self.out(torch.cumsum(self.conv(x), dim=1))


def test_unknown_operation_names_the_node():
    with pytest.raises(ModularityError, match=r"fx node 'cumsum'"):
        trace(_ChannelMixer(), (8, 8))


class _DataDependent(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1)

    def forward(self, x):
        if x.sum() > 0:
            return self.conv(x)
        return x


def test_untraceable_model_gives_a_clear_error():
    with pytest.raises(ModularityError, match="torch.fx could not trace _DataDependent"):
        trace(_DataDependent(), (8, 8))


def test_wrong_input_size_gives_a_clear_error():
    with pytest.raises(ModularityError, match="forward pass"):
        trace(build_torchvision("alexnet"), (1, 1))


@pytest.mark.slow
def test_block_output_concat_is_named_by_its_block_when_it_also_concatenates_inside():
    g = trace(build_torchvision("inception_v3"), input_size("inception_v3"))
    block = g.layers["Mixed_7b"]
    assert block.n_units == 2048 and np.bincount(block.branches).tolist() == [320, 768, 768, 192]
    assert block.branch_names[1] == "branch3x3_2a+branch3x3_2b"
    inner = [n for n, layer in g.layers.items() if n.startswith("Mixed_7b.cat")]
    assert len(inner) == 2 and all(g.layers[n].n_units == 768 for n in inner)


# -- channel axis: permutations, shuffles, splits, channels-last, norms, attention --------------------------


class _Shuffle(nn.Module):
    """conv -> reshape (g, c/g) -> transpose -> reshape: ShuffleNet's channel shuffle, then a reader."""

    def __init__(self, c: int = 8, groups: int = 2):
        super().__init__()
        self.groups = groups
        self.conv = nn.Conv2d(3, c, 1)
        self.out = nn.Conv2d(c, 4, 1)

    def forward(self, x):
        y = self.conv(x)
        n, c, h, w = y.shape
        y = y.reshape(n, self.groups, c // self.groups, h, w).transpose(1, 2).reshape(n, c, h, w)
        return self.out(y)


@pytest.mark.parametrize("c, groups", [(8, 2), (12, 3)])
def test_channel_shuffle_is_mapped_as_the_exact_permutation(c, groups):
    g = trace(_Shuffle(c, groups), (6, 6))
    (edge,) = g.edges_between("conv", "out")
    expected = np.arange(c).reshape(groups, c // groups).T.reshape(-1)  # column j reads unit expected[j]
    order = np.argsort(edge.consumer_cols)
    assert edge.consumer_cols[order].tolist() == list(range(c))
    assert edge.producer_units[order].tolist() == expected.tolist()


class _ChannelsLast(nn.Module):
    """A permute to channels-last, a linear layer on the channel axis, and back."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3)
        self.fc = nn.Linear(6, 5)
        self.out = nn.Conv2d(5, 2, 1)

    def forward(self, x):
        y = self.conv(x).permute(0, 2, 3, 1)
        return self.out(self.fc(y).permute(0, 3, 1, 2))


def test_linear_on_the_channel_axis_is_a_1x1_conv_reading_every_channel_once():
    g = trace(_ChannelsLast(), (8, 8))
    fc = g.layers["fc"]
    assert (fc.kind, fc.kernel_size, fc.n_units, fc.in_units) == ("conv", (1, 1), 5, 6)
    assert g.weight("fc").shape == (5, 6, 1, 1)
    (edge,) = g.edges_between("conv", "fc")
    assert edge.consumer_cols.tolist() == edge.producer_units.tolist() == list(range(6))
    assert g.consumers("fc") == ["out"]


class _Split(nn.Module):
    """A conv whose channels are chunked in two; ``read_both`` False drops the first part."""

    def __init__(self, read_both: bool = True):
        super().__init__()
        self.read_both = read_both
        self.conv = nn.Conv2d(3, 8, 1)
        self.a = nn.Conv2d(4, 2, 1)
        self.b = nn.Conv2d(4, 2, 1)

    def forward(self, x):
        x1, x2 = self.conv(x).chunk(2, dim=1)
        return self.a(x1) + self.b(x2) if self.read_both else self.b(x2)


def test_channel_split_labels_the_units_by_the_part_they_go_to():
    g = trace(_Split(), (4, 4))
    layer = g.layers["conv"]
    assert layer.branch_source == "split" and layer.branch_names == ["part 0", "part 1"]
    assert layer.branches.tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    (edge,) = g.edges_between("conv", "b")
    assert edge.consumer_cols.tolist() == [0, 1, 2, 3] and edge.producer_units.tolist() == [4, 5, 6, 7]


def test_a_split_whose_part_is_never_read_gives_no_branch_labels():
    g = trace(_Split(read_both=False), (4, 4))
    assert g.layers["conv"].branches is None and g.consumers("conv") == ["b"]


def test_shufflenet_v2_split_gives_branch_labels_like_a_concat_in_reverse():
    g = trace(tvm.shufflenet_v2_x0_5(weights=None), (64, 64))
    # stage2.0 concatenates branch1 and branch2 (24 channels each) and shuffles them: channel 2j + b holds unit
    # j of branch b. stage2.1 chunks that in two, so units 0..11 of each branch go to the part passed on
    # unchanged and units 12..23 to the part branch2 reads.
    for name in ("stage2.0.branch1.2", "stage2.0.branch2.5"):
        layer = g.layers[name]
        assert layer.branch_source == "split"
        assert layer.branches.tolist() == [0] * 12 + [1] * 12
    (edge,) = g.edges_between("stage2.0.branch1.2", "stage2.1.branch2.0")
    order = np.argsort(edge.consumer_cols)
    assert edge.consumer_cols[order].tolist() == list(range(0, 24, 2))
    assert edge.producer_units[order].tolist() == list(range(12, 24))
    assert g.layers["stage2.0"].branch_source == "concat"
    assert sum(layer.branch_source == "split" for layer in g.layers.values()) == 16


@pytest.mark.slow
def test_convnext_linears_are_1x1_convs_and_norm_scales_fold():
    model = tvm.convnext_tiny(weights=None).eval()
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, nn.LayerNorm):
                mod.weight.copy_(torch.rand(mod.weight.shape, generator=gen) * 4 - 2)
        block = model.features[1][0]
        block.layer_scale.copy_(torch.rand(block.layer_scale.shape, generator=gen) - 0.5)
    g = trace(model, (64, 64))
    for name in ("features.1.0.block.3", "features.1.0.block.5"):
        layer = g.layers[name]
        assert (layer.kind, layer.kernel_size, layer.groups) == ("conv", (1, 1), 1)
    assert (g.layers["features.1.0.block.3"].n_units, g.layers["features.1.0.block.3"].in_units) == (384, 96)
    # dwconv -> permute -> LayerNorm: the norm's |gamma| is the depthwise conv's row scale.
    ln = block.block[2].weight.detach().double().abs().numpy()
    np.testing.assert_allclose(g.layers["features.1.0.block.0"].row_scale, ln)
    # the fixed layer_scale multiplier folds into the rows of the linear it scales.
    np.testing.assert_allclose(g.layers["features.1.0.block.5"].row_scale,
                               block.layer_scale.detach().double().abs().reshape(-1).numpy())
    # The downsampling LayerNorm2d reads the residual stream (several writers): its |gamma| scales the columns
    # of the 2x2 conv that reads it.
    ds = model.features[2][0].weight.detach().double().abs().numpy()
    np.testing.assert_allclose(g.layers["features.2.1"].col_scale, ds)
    assert g.notes == []


@pytest.mark.slow
def test_vit_attention_heads_are_branches_of_q_k_v():
    model = tvm.vit_b_16(weights=None, image_size=32)
    g = trace(model, (32, 32))
    base = "encoder.layers.encoder_layer_0.self_attention"
    for part in "qkv":
        layer = g.layers[f"{base}.{part}"]
        assert layer.branch_source == "heads" and (layer.n_units, layer.in_units) == (768, 768)
        assert np.bincount(layer.branches).tolist() == [64] * 12 and len(layer.branch_names) == 12
    # v's rows are the fused projection's last third; the output projection reads v through the attention.
    mha = model.encoder.layers.encoder_layer_0.self_attention
    assert torch.equal(g.weight(f"{base}.v")[:, :, 0, 0], mha.in_proj_weight[1536:].detach())
    (edge,) = g.edges_between(f"{base}.v", f"{base}.out_proj")
    assert edge.via == "attention" and edge.producer_units.tolist() == list(range(768))
    # q and k are read only by the scores: consumers, never producers.
    assert f"{base}.q" not in g.producer_names() and f"{base}.v" in g.producer_names()
    # The LayerNorm before the attention folds |gamma| into the columns of q, k and v (a pre-norm stream).
    ln = model.encoder.layers.encoder_layer_0.ln_1.weight.detach().double().abs().numpy()
    np.testing.assert_allclose(g.layers[f"{base}.q"].col_scale, ln)
    assert len(g.notes) == 12 and all("q k^T" in n for n in g.notes)
    assert g.notes[0].startswith(base)


@pytest.mark.slow
def test_swin_window_attention_heads_are_branches():
    g = trace(tvm.swin_t(weights=None), (64, 64))
    for base, heads, width in [("features.1.0.attn", 3, 96), ("features.3.0.attn", 6, 192)]:
        for part in "qkv":
            layer = g.layers[f"{base}.{part}"]
            assert layer.branch_source == "heads" and layer.n_units == width
            assert np.bincount(layer.branches).tolist() == [32] * heads
        (edge,) = g.edges_between(f"{base}.v", f"{base}.proj")
        assert edge.via == "attention"
    # The relative-position bias tables feed only the scores; patch merging is a rearrangement of channels.
    assert g.layers["features.2.reduction"].in_units == 384
    assert any(n.startswith("features.1.0.attn:") for n in g.notes)


def test_multihead_attention_maps_q_k_v_by_head_and_out_proj_reads_v():
    model = TinyEncoder().eval()
    with torch.no_grad():
        model.ln.weight.copy_(torch.linspace(-2, 2, 8))
    g = trace(model, (4, 4))
    assert [n for n in g.layers if n.startswith("attn")] == ["attn.q", "attn.k", "attn.v", "attn.out_proj"]
    v = g.layers["attn.v"]
    assert v.branch_source == "heads" and v.branches.tolist() == [0] * 4 + [1] * 4
    assert v.branch_names == ["head 0", "head 1"]
    (edge,) = g.edges_between("attn.v", "attn.out_proj")
    assert edge.via == "attention"
    # pre-norm: the LayerNorm's |gamma| scales the columns of q, k and v (the patch conv also feeds the residual).
    for part in "qkv":
        np.testing.assert_allclose(g.layers[f"attn.{part}"].col_scale, np.abs(np.linspace(-2, 2, 8)), rtol=1e-6)
        assert g.producers(f"attn.{part}") == ["patch"]
    # the residual stream (patch + out_proj) is read by fc; q and k are never producers.
    assert g.consumers("attn.out_proj") == ["fc"] and "patch" in g.producers("fc")
    assert set(g.producer_names()) == {"patch", "attn.v", "attn.out_proj"}
    assert len(g.notes) == 1 and g.notes[0].startswith("attn:")


class _ConstantOnly(nn.Module):
    """A linear layer that reads only a parameter (a position-bias table), next to a real conv."""

    def __init__(self):
        super().__init__()
        self.table = nn.Parameter(torch.randn(4, 3))
        self.bias_mlp = nn.Linear(3, 2)
        self.conv = nn.Conv2d(3, 2, 1)

    def forward(self, x):
        return self.conv(x) + self.bias_mlp(self.table).sum()


def test_a_layer_reading_only_constants_is_not_a_layer_and_is_noted():
    g = trace(_ConstantOnly(), (4, 4))
    assert "bias_mlp" not in g.layers and "conv" in g.layers
    assert any(n.startswith("bias_mlp:") and "constants" in n for n in g.notes)


class _MixWithMatrix(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1)
        self.register_buffer("mix", torch.randn(4, 4))
        self.out = nn.Conv2d(4, 2, 1)

    def forward(self, x):
        y = self.conv(x).permute(0, 2, 3, 1) @ self.mix
        return self.out(y.permute(0, 3, 1, 2))


def test_a_fixed_matrix_mixing_channels_is_refused_naming_the_node():
    with pytest.raises(ModularityError, match=r"fx node 'matmul'.*fixed or computed matrix that mixes channels"):
        trace(_MixWithMatrix(), (4, 4))


class _Volume(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv3d(3, 4, 1)

    def forward(self, x):
        return self.conv(x.unsqueeze(2))


def test_conv3d_is_refused_naming_the_module_type():
    with pytest.raises(ModularityError, match="Conv3d is not supported"):
        trace(_Volume(), (4, 4))


@pytest.mark.slow
def test_swin_v2_post_norm_folds_through_dropout_and_its_position_bias_mlp_is_noted():
    model = tvm.swin_v2_t(weights=None).eval()
    with torch.no_grad():
        model.features[1][0].norm2.weight.uniform_(-2, 2)
    g = trace(model, (64, 64))
    # x + norm2(mlp(x)): the MLP ends in dropout (the identity in eval), so |gamma| is the last linear's row scale.
    np.testing.assert_allclose(g.layers["features.1.0.mlp.3"].row_scale,
                               model.features[1][0].norm2.weight.detach().double().abs().numpy())
    assert not any("normalised and an unnormalised" in n for n in g.notes)
    # The continuous position-bias MLP reads only coordinates: not a layer, and said so.
    assert "features.1.0.attn.cpb_mlp.0" not in g.layers
    assert any(n.startswith("features.1.0.attn.cpb_mlp.0:") for n in g.notes)


class _CatOfOne(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1)
        self.out = nn.Conv2d(4, 2, 1)

    def forward(self, x):
        return self.out(torch.cat([self.conv(x)], 1))


def test_a_concatenation_of_one_tensor_is_that_tensor_not_a_layer():
    g = trace(_CatOfOne(), (4, 4))
    assert [layer.kind for layer in g.layers.values()] == ["input", "conv", "conv"]
    assert g.consumers("conv") == ["out"] and g.layers["conv"].branches is None


class _C2f(nn.Module):
    """YOLOv8's C2f: both halves of a split and a bottleneck on the second, concatenated."""

    def __init__(self):
        super().__init__()
        self.cv1 = nn.Conv2d(3, 8, 1)
        self.m = nn.Conv2d(4, 4, 3, padding=1)
        self.cv2 = nn.Conv2d(12, 6, 1)

    def forward(self, x):
        y = self.cv1(x).chunk(2, 1)
        return self.cv2(torch.cat([y[0], y[1], self.m(y[1])], 1))


def test_concat_branches_from_one_layer_are_told_apart_by_their_units():
    g = trace(_C2f(), (6, 6))
    cat = next(layer for layer in g.layers.values() if layer.kind == "concat")
    assert cat.branch_names == ["cv1[0:4]", "cv1[4:8]", "m"]
    assert cat.branches.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    assert g.layers["cv1"].branch_source == "split" and g.layers["cv1"].branches.tolist() == [0] * 4 + [1] * 4
