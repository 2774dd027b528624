import pytest
import torch

from modularity.core.graph import trace
from modularity.zoo.efficientnet_lite import bundled_weights_path, efficientnet_lite0


def _loaded():
    model = efficientnet_lite0().eval()
    model.load_state_dict(torch.load(bundled_weights_path(), map_location="cpu", weights_only=True))
    return model


def test_port_matches_upstream_definition_output():
    upstream = pytest.importorskip("efficientnet_lite_pytorch")
    ref = upstream.EfficientNet.from_name("efficientnet-lite0").eval()
    ref.load_state_dict(torch.load(bundled_weights_path(), map_location="cpu", weights_only=True))
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(_loaded()(x), ref(x), rtol=1e-5, atol=1e-5)


def test_port_traces_with_depthwise_layers_and_residuals():
    g = trace(_loaded())
    assert g.layers["_blocks.1._depthwise_conv"].is_depthwise
    assert g.consumers("_blocks.1._project_conv") == ["_blocks.2._expand_conv", "_blocks.3._expand_conv"]
    assert g.consumers("_conv_head") == ["_fc"]
