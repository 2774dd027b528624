"""Lucid's InceptionV1: lucent's keys, channel counts, tracing and concat branch labels."""

from __future__ import annotations

import pytest
import torch
from torch import fx

from modularity.errors import ModularityError
from modularity.zoo.inceptionv1_lucid import LUCENT_WEIGHTS_URL, inceptionv1_lucid
from modularity.zoo.registry import load_source

# (in, 1x1, 3x3 bottleneck, 3x3, 5x5 bottleneck, 5x5, pool reduce), copied from the
# nn.Conv2d definitions in lucent/modelzoo/inceptionv1/InceptionV1.py.
LUCENT_BLOCKS = {
    "mixed3a": (192, 64, 96, 128, 16, 32, 32), "mixed3b": (256, 128, 128, 192, 32, 96, 64),
    "mixed4a": (480, 192, 96, 204, 16, 48, 64), "mixed4b": (508, 160, 112, 224, 24, 64, 64),
    "mixed4c": (512, 128, 128, 256, 24, 64, 64), "mixed4d": (512, 112, 144, 288, 32, 64, 64),
    "mixed4e": (528, 256, 160, 320, 32, 128, 128), "mixed5a": (832, 256, 160, 320, 48, 128, 128),
    "mixed5b": (832, 384, 192, 384, 48, 128, 128),
}


def lucent_shapes() -> dict[str, tuple[int, ...]]:
    """lucent's InceptionV1 state-dict keys and shapes, written out independently of the module."""
    shapes = {"conv2d0_pre_relu_conv.weight": (64, 3, 7, 7), "conv2d0_pre_relu_conv.bias": (64,),
              "conv2d1_pre_relu_conv.weight": (64, 64, 1, 1), "conv2d1_pre_relu_conv.bias": (64,),
              "conv2d2_pre_relu_conv.weight": (192, 64, 3, 3), "conv2d2_pre_relu_conv.bias": (192,)}
    for b, (cin, c1, c3r, c3, c5r, c5, cp) in LUCENT_BLOCKS.items():
        for part, shape in (("1x1", (c1, cin, 1, 1)), ("3x3_bottleneck", (c3r, cin, 1, 1)),
                            ("5x5_bottleneck", (c5r, cin, 1, 1)), ("pool_reduce", (cp, cin, 1, 1)),
                            ("3x3", (c3, c3r, 3, 3)), ("5x5", (c5, c5r, 5, 5))):
            shapes[f"{b}_{part}_pre_relu_conv.weight"] = shape
            shapes[f"{b}_{part}_pre_relu_conv.bias"] = (shape[0],)
    shapes["softmax2_pre_activation_matmul.weight"] = (1008, 1024)
    shapes["softmax2_pre_activation_matmul.bias"] = (1008,)
    return shapes


def test_state_dict_keys_and_shapes_are_lucents():
    got = {k: tuple(v.shape) for k, v in inceptionv1_lucid().state_dict().items()}
    assert got == lucent_shapes()


@pytest.mark.slow
def test_fx_traced_forward_gives_1008_class_probabilities():
    model = inceptionv1_lucid()
    gm = fx.symbolic_trace(model)
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        out = gm(x)
        assert torch.allclose(out, model(x))
    assert out.shape == (2, 1008)
    assert torch.allclose(out.sum(1), torch.ones(2))


def test_mixed_block_channel_counts():
    model = inceptionv1_lucid()
    widths = {}
    for name in LUCENT_BLOCKS:
        getattr(model, name).register_forward_hook(lambda m, i, o, name=name: widths.__setitem__(name, o.shape[1]))
    with torch.no_grad():
        model(torch.zeros(1, 3, 224, 224))
    assert widths == {"mixed3a": 256, "mixed3b": 480, "mixed4a": 508, "mixed4b": 512, "mixed4c": 512,
                      "mixed4d": 528, "mixed4e": 832, "mixed5a": 832, "mixed5b": 1024}


def test_registry_loads_a_state_dict_with_lucents_key_names(tmp_path):
    gen = torch.Generator().manual_seed(0)
    state = {k: torch.randn(s, generator=gen) for k, s in lucent_shapes().items()}
    path = tmp_path / "inception5h.pth"
    torch.save(state, path)
    loaded = load_source("inceptionv1_lucid", str(path))
    assert torch.equal(loaded.module.mixed4a_3x3_pre_relu_conv.weight, state["mixed4a_3x3_pre_relu_conv.weight"])


def test_default_weights_point_to_lucents_download():
    with pytest.raises(ModularityError, match=LUCENT_WEIGHTS_URL.replace(".", r"\.")):
        load_source("inceptionv1_lucid", "DEFAULT")


def test_concat_branch_offsets_and_widths():
    graph = pytest.importorskip("modularity.core.graph")
    g = graph.trace(inceptionv1_lucid())
    mixed3a = g.layers["mixed3a"]
    assert mixed3a.kind == "concat"
    starts = [int((mixed3a.branches == k).argmax()) for k in range(4)]
    assert starts == [0, 64, 192, 224]
    assert mixed3a.branches.tolist() == [0] * 64 + [1] * 128 + [2] * 32 + [3] * 32
    assert g.layers["mixed4a"].n_units == 508
    assert mixed3a.branch_names == ["mixed3a_1x1_pre_relu_conv", "mixed3a_3x3_pre_relu_conv",
                                    "mixed3a_5x5_pre_relu_conv", "mixed3a_pool_reduce_pre_relu_conv"]
