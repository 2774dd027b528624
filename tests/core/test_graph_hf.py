"""Hugging Face ``transformers`` vision models (tiny configs, random init) traced into channel graphs.

Their ``forward`` is decorated (``*args, **kwargs``, options popped from ``kwargs``) and branches on
optional arguments: tracing starts at the call ``model(x)``, so both work as in a plain call."""

import numpy as np
import pytest
import torch

from modularity.core.graph import trace

transformers = pytest.importorskip("transformers")


def _vit():
    torch.manual_seed(0)
    config = transformers.ViTConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                                    intermediate_size=128, image_size=32, patch_size=8)
    return transformers.ViTForImageClassification(config).eval()


def test_hf_vit_q_k_v_projections_are_labelled_by_head_and_o_proj_reads_v():
    model = _vit()
    g = trace(model, (32, 32))
    prefix = next(n.rsplit(".q_proj", 1)[0] for n in g.layers if n.endswith("0.attention.q_proj"))
    for part in ("q_proj", "k_proj", "v_proj"):
        layer = g.layers[f"{prefix}.{part}"]
        assert layer.branch_source == "heads" and np.bincount(layer.branches).tolist() == [16] * 4
    out = g.consumers(f"{prefix}.v_proj")
    assert len(out) == 1
    (edge,) = g.edges_between(f"{prefix}.v_proj", out[0])
    assert edge.via == "attention"
    assert g.consumers(f"{prefix}.q_proj") == [] and g.consumers(f"{prefix}.k_proj") == []
    # the output projection writes into the residual stream, read by the next block's q, k and v
    nxt = prefix.replace("0.attention", "1.attention")
    assert {f"{nxt}.q_proj", f"{nxt}.k_proj", f"{nxt}.v_proj"} <= set(g.consumers(out[0]))


def test_hf_convnext_v2_traces_with_its_grn_named():
    torch.manual_seed(0)
    config = transformers.ConvNextV2Config(hidden_sizes=[16, 32, 64, 128], depths=[1, 1, 1, 1])
    g = trace(transformers.ConvNextV2ForImageClassification(config).eval(), (64, 64))
    assert sum(layer.kind == "conv" for layer in g.layers.values()) >= 12
    assert any("grn" in n.split(":")[0] for n in g.notes)
