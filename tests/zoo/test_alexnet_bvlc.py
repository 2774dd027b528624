"""The two-group BVLC AlexNet: architecture, ONNX weight conversion, registry and branch labels."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from modularity.errors import ModularityError
from modularity.zoo.alexnet_bvlc import ONNX_ZOO_FILE, alexnet_bvlc, state_dict_from_onnx
from modularity.zoo.registry import get_source, load_source


def test_architecture_has_the_two_tower_channels_and_groups():
    convs = {n: m for n, m in alexnet_bvlc().named_modules() if isinstance(m, nn.Conv2d)}
    assert [(n, m.out_channels, m.groups) for n, m in convs.items()] == [
        ("conv1", 96, 1), ("conv2", 256, 2), ("conv3", 384, 1), ("conv4", 384, 2), ("conv5", 256, 2)]


@pytest.mark.parametrize("size", [224, 227])
def test_forward_reaches_a_6x6_map_at_both_input_sizes(size):
    with torch.no_grad():
        assert alexnet_bvlc()(torch.zeros(1, 3, size, size)).shape == (1, 1000)


@pytest.mark.slow
def test_onnx_conversion_matches_the_onnx_reference(random_alexnet, onnx_reference):
    model = alexnet_bvlc()
    model.load_state_dict(state_dict_from_onnx(random_alexnet), strict=True)
    # 227 x 227, Caffe's crop: there the ONNX graph's floor-mode pools and Caffe's ceil mode agree
    x = np.random.default_rng(2).standard_normal((1, 3, 227, 227)).astype(np.float32)
    _, logits_ref = onnx_reference(random_alexnet, x)
    with torch.no_grad():
        logits = model(torch.from_numpy(x)).numpy()
    assert np.abs(logits_ref).max() > 1.0
    np.testing.assert_allclose(logits, logits_ref, atol=2e-4 * np.abs(logits_ref).max(), rtol=0)


def test_converter_rejects_a_non_alexnet_onnx_file(light_dir):
    with pytest.raises(ModularityError, match="not a BVLC AlexNet"):
        state_dict_from_onnx(light_dir / "light_inception_v1.onnx")


@pytest.mark.slow  # converts the 240 MB random AlexNet twice
def test_registry_converts_an_onnx_weights_path(random_alexnet):
    loaded = load_source("alexnet_bvlc", str(random_alexnet))
    assert loaded.provenance == f"weights converted from ONNX file {random_alexnet}"
    assert torch.equal(loaded.module.conv2.weight, state_dict_from_onnx(random_alexnet)["conv2.weight"])


def test_default_weights_say_which_file_to_download():
    with pytest.raises(ModularityError, match=f"{ONNX_ZOO_FILE}.*--weights"):
        load_source("alexnet_bvlc", "DEFAULT")


def test_registered_input_size_is_caffes_crop():
    assert get_source("alexnet_bvlc").input_size == (227, 227)


def test_conv1_branches_come_from_conv2_groups():
    graph = pytest.importorskip("modularity.core.graph")
    g = graph.trace(alexnet_bvlc(), input_size=(227, 227))
    assert g.layers["conv1"].branches.tolist() == [0] * 48 + [1] * 48
    assert g.layers["conv3"].branches.tolist() == [0] * 192 + [1] * 192
