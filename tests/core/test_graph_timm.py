"""timm models (small variants, random init) traced into channel graphs: the constructs of
tests/core/test_graph_constructs.py as timm writes them."""

import numpy as np
import pytest
import torch

from modularity.core.graph import trace

timm = pytest.importorskip("timm")


def _build(name: str, **kwargs):
    torch.manual_seed(0)
    return timm.create_model(name, pretrained=False, **kwargs).eval()


def test_deit_fused_qkv_is_split_into_heads_and_the_pre_norm_folds_into_its_columns():
    model = _build("deit_tiny_patch16_224", img_size=32)
    with torch.no_grad():
        model.blocks[0].norm1.weight.uniform_(-2, 2)
    g = trace(model, (32, 32))
    base = "blocks.0.attn"
    assert f"{base}.qkv" not in g.layers
    for part in "qkv":
        layer = g.layers[f"{base}.qkv.{part}"]
        assert layer.branch_source == "heads" and (layer.n_units, layer.in_units) == (192, 192)
        assert np.bincount(layer.branches).tolist() == [64] * 3
        np.testing.assert_allclose(layer.col_scale, model.blocks[0].norm1.weight.detach().double().abs().numpy())
    assert torch.equal(g.weight(f"{base}.qkv.v")[:, :, 0, 0], model.blocks[0].attn.qkv.weight[384:].detach())
    (edge,) = g.edges_between(f"{base}.qkv.v", f"{base}.proj")
    assert edge.via == "attention"
    assert f"{base}.qkv.q" not in g.producer_names()


def test_beit_functional_qkv_with_its_own_biases_is_split_into_heads():
    # BEiT calls F.linear(x, self.qkv.weight, cat(q_bias, 0, v_bias)) itself.
    model = _build("beit_base_patch16_224", img_size=32, depth=2, embed_dim=64, num_heads=4)
    g = trace(model, (32, 32))
    for part in "qkv":
        layer = g.layers[f"blocks.1.attn.qkv.{part}"]
        assert layer.branch_source == "heads" and np.bincount(layer.branches).tolist() == [16] * 4
    assert g.modules["blocks.1.attn.qkv.v"].weight.shape == (64, 64)
    # gamma_1 (layer scale) folds into the rows of the output projection.
    np.testing.assert_allclose(g.layers["blocks.1.attn.proj"].row_scale,
                               model.blocks[1].gamma_1.detach().double().abs().numpy())


def test_levit_qkv_interleaved_head_by_head_is_gathered_into_q_k_v():
    model = _build("levit_128s")
    g = trace(model, (224, 224))
    base = "stages.0.blocks.0.attn.qkv.linear"
    attn = model.stages[0].blocks[0].attn
    heads, kd, d = attn.num_heads, attn.key_dim, attn.val_dim
    assert [g.layers[f"{base}.{p}"].n_units for p in "qkv"] == [heads * kd, heads * kd, heads * d]
    # LeViT's rows are [q_h, k_h, v_h] for head 0, then head 1, ...: v's rows are every head's last d rows.
    rows = np.concatenate([h * (2 * kd + d) + 2 * kd + np.arange(d) for h in range(heads)])
    w = attn.qkv.linear.weight.detach()
    assert torch.equal(g.weight(f"{base}.v")[:, :, 0, 0], w[torch.as_tensor(rows)])
    assert g.layers[f"{base}.v"].branches.tolist() == np.repeat(np.arange(heads), d).tolist()


def test_convnext_v2_grn_keeps_channels_and_names_its_scale():
    g = trace(_build("convnextv2_atto"), (64, 64))
    (edge,) = g.edges_between("stages.0.blocks.0.mlp.fc1", "stages.0.blocks.0.mlp.fc2")
    assert edge.producer_units.tolist() == list(range(160))
    assert any(n.startswith("stages.0.blocks.0.mlp.grn:") for n in g.notes)


def test_xcit_channel_attention_labels_heads_and_names_the_mixing():
    g = trace(_build("xcit_nano_12_p8_224", img_size=32, depth=2), (32, 32))
    assert g.layers["blocks.0.attn.qkv.v"].branch_source == "heads"
    # cross-covariance attention mixes v's channels within each head: proj has no producer, and says so.
    assert g.producers("blocks.0.attn.proj") == []
    assert any(n.startswith("blocks.0.attn.proj:") for n in g.notes)


@pytest.mark.slow
def test_hiera_needs_the_value_tracer_and_gets_heads():
    # Hiera calls len() on tensors and branches on shapes: torch.fx alone cannot trace it.
    model = _build("hiera_tiny_224")
    g = trace(model, (224, 224))
    # its first stage has one head (a split into q, k, v without head labels), later stages several.
    assert g.layers["blocks.0.attn.qkv.v"].branches is None
    v = g.layers["blocks.2.attn.qkv.v"]
    heads = model.blocks[2].attn.heads
    assert heads > 1 and v.branch_source == "heads" and len(v.branch_names) == heads
