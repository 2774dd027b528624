import numpy as np
import pytest
import torch
import torchvision.models as tvm
from torch import nn

from modularity.errors import ModularityError
from modularity.core.graph import trace
from modularity.zoo.torchvision_models import build_torchvision, input_size

from tests.nets import grouped_net

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
