import numpy as np
import pytest
import torch
from torch import nn

from modularity.core.graph import trace
from modularity.core.magnitude import downstream_profile, layer_magnitude, reduce_kernel
from modularity.errors import ModularityError
from modularity.zoo.torchvision_models import build_torchvision
from tests.nets import grouped_net


@pytest.mark.parametrize("norm,expected", [("l1", 10.0), ("l2", np.sqrt(30.0)), ("max", 4.0)])
def test_reduce_kernel_norms(norm, expected):
    w = torch.tensor([1.0, -2.0, 3.0, -4.0]).reshape(1, 1, 2, 2)
    assert reduce_kernel(w, norm)[0, 0] == pytest.approx(expected)


def test_unknown_norm_is_refused():
    with pytest.raises(ModularityError, match="unknown reduction"):
        reduce_kernel(np.ones((1, 1, 1, 1)), "l3")


def test_grouped_conv_has_zero_blocks():
    g = trace(grouped_net(groups=4, width=32))
    m = layer_magnitude(g, "2", fold_bn=False)
    mask = np.kron(np.eye(4), np.ones((8, 8))).astype(bool)
    assert m.shape == (32, 32)
    assert np.all(m[~mask] == 0) and np.all(m[mask] > 0)


def test_batchnorm_scale_multiplies_rows():
    model = grouped_net()
    with torch.no_grad():
        model[3].weight.fill_(2.0)
        model[3].running_var.fill_(1.0 - model[3].eps)
    g = trace(model)
    np.testing.assert_allclose(layer_magnitude(g, "2"), 2 * layer_magnitude(g, "2", fold_bn=False))


@pytest.mark.slow
def test_linear_after_flatten_sums_over_positions():
    g = trace(build_torchvision("alexnet"))
    profile = downstream_profile(g, "features.10")
    w = g.weight("classifier.1").abs().double().reshape(4096, 256, 36).sum(-1).numpy()
    np.testing.assert_allclose(profile.matrix, w)


@pytest.mark.slow
def test_inception_profile_stacks_the_four_consumers():
    g = trace(build_torchvision("googlenet"))
    p = downstream_profile(g, "inception3a")
    assert [b[0] for b in p.blocks] == g.consumers("inception3a")
    assert p.matrix.shape == (128 + 128 + 32 + 64, 256)


def test_pool_branch_is_read_through_its_maxpool():
    g = trace(build_torchvision("googlenet"))
    p = downstream_profile(g, "inception3a")
    label, start, stop = p.blocks[3]
    w = reduce_kernel(g.weight(label)) * g.layers[label].row_scale[:, None]
    np.testing.assert_allclose(p.matrix[start:stop], w)


def _dw_net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 6, 1), nn.ReLU(), nn.Conv2d(6, 6, 3, groups=6, padding=1), nn.ReLU(),
                         nn.Conv2d(6, 4, 1)).eval()


def test_depthwise_expansion_is_the_product_of_magnitudes():
    g = trace(_dw_net(), (8, 8))
    p = downstream_profile(g, "0", expand="depthwise")
    expected = layer_magnitude(g, "4") @ layer_magnitude(g, "2")
    assert p.blocks[0][0] == "4 <- 2"
    np.testing.assert_allclose(p.matrix, expected)


def test_without_expansion_a_depthwise_consumer_is_diagonal():
    g = trace(_dw_net(), (8, 8))
    m = downstream_profile(g, "0", expand="none").matrix
    assert np.count_nonzero(m - np.diag(np.diag(m))) == 0


def test_signed_expansion_composes_1x1_kernels():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 4, 1), nn.ReLU(), nn.Conv2d(4, 5, 1)).eval()
    g = trace(net, (8, 8))
    p = downstream_profile(g, "0", expand="signed")
    w_b = g.weight("2")[:, :, 0, 0].double()
    w_c = g.weight("4")[:, :, 0, 0].double()
    np.testing.assert_allclose(p.matrix, (w_c @ w_b).abs().numpy())


def test_replacement_weights_change_the_profile():
    g = trace(grouped_net(), (8, 8))
    w = torch.zeros_like(g.weight("2"))
    p = downstream_profile(g, "0", weights={"2": w})
    assert np.all(p.matrix == 0)


@pytest.mark.slow
@pytest.mark.parametrize("norm", ["l2", "max"])
def test_linear_after_flatten_combines_positions_with_the_norm(norm):
    g = trace(build_torchvision("alexnet"))
    profile = downstream_profile(g, "features.10", norm=norm)
    w = g.weight("classifier.1").abs().double().reshape(4096, 256, 36)
    expected = w.pow(2).sum(-1).sqrt() if norm == "l2" else w.amax(-1)
    np.testing.assert_allclose(profile.matrix, expected.numpy())
