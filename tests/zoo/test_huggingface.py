"""transformers models from a model folder or the hub cache: strict safetensors loading, offline, heads as branches.

Every folder here is written by the test with transformers' own ``save_pretrained``
(config.json + random safetensors, whole or sharded with an index), at tiny sizes.
"""

from __future__ import annotations

import json
import shutil
import socket
import sys

import pytest
import torch

from modularity.core.graph import trace
from modularity.errors import ModularityError
from modularity.loading import load_model, random_init

transformers = pytest.importorskip("transformers")
safetensors_torch = pytest.importorskip("safetensors.torch")


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a network connection was attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def _vit(seed: int = 0):
    torch.manual_seed(seed)
    config = transformers.ViTConfig(num_hidden_layers=2, hidden_size=32, num_attention_heads=4, intermediate_size=64,
                                    image_size=32, patch_size=8, num_labels=5,
                                    architectures=["ViTForImageClassification"])
    return transformers.ViTForImageClassification(config).eval()


@pytest.fixture(scope="module")
def vit_folders(tmp_path_factory):
    """A tiny ViT classifier saved whole and sharded (with model.safetensors.index.json)."""
    root = tmp_path_factory.mktemp("hf")
    model = _vit()
    model.save_pretrained(root / "vit")
    model.save_pretrained(root / "vit_sharded", max_shard_size="20KB")
    return model, root / "vit", root / "vit_sharded"


def test_folder_loads_strictly_with_the_same_outputs(vit_folders, no_network):
    model, folder, _ = vit_folders
    loaded = load_model(str(folder), "DEFAULT")
    assert loaded.module.state_dict().keys() == model.state_dict().keys()  # the checkpoint's own names
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in loaded.module.state_dict().items())
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded.module(x), model(pixel_values=x).logits)
    assert f"transformers {transformers.__version__} ViTForImageClassification" in loaded.provenance
    assert "model.safetensors sha256 " in loaded.provenance and loaded.weights_path == str(folder / "model.safetensors")


def test_sharded_folder_loads_every_shard_of_its_index(vit_folders):
    model, _, sharded = vit_folders
    index = json.loads((sharded / "model.safetensors.index.json").read_text())
    assert len(set(index["weight_map"].values())) > 1
    loaded = load_model(str(sharded), "DEFAULT")
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in loaded.module.state_dict().items())
    assert loaded.provenance.count(".safetensors sha256 ") == len(set(index["weight_map"].values()))


def test_input_size_comes_from_the_config_and_can_be_overridden(vit_folders):
    _, folder, _ = vit_folders
    assert load_model(str(folder), "DEFAULT").input_size == (32, 32)
    assert load_model(str(folder), "DEFAULT", input_size=(48, 64)).input_size == (48, 64)


def test_random_init_from_the_config_is_seeded(vit_folders):
    _, folder, _ = vit_folders
    a, b, c = (load_model(str(folder), "none", seed=s) for s in (1, 1, 2))
    assert a.weights_sha256 == b.weights_sha256 != c.weights_sha256
    assert "random initial weights (transformers' own initialisation)" in a.provenance
    control = random_init(load_model(str(folder), "DEFAULT"), seed=1)
    assert control.weights_sha256 == a.weights_sha256  # the control is the architecture's own init, seeded


def test_missing_and_unexpected_tensors_are_named(tmp_path, vit_folders):
    _, folder, _ = vit_folders
    shutil.copytree(folder, tmp_path / "vit")
    state = safetensors_torch.load_file(tmp_path / "vit" / "model.safetensors")
    del state["classifier.bias"]
    state["extra.weight"] = torch.zeros(2)
    safetensors_torch.save_file(state, tmp_path / "vit" / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(ModularityError, match=r"do not match ViTForImageClassification \(1 missing: "
                                              r"classifier\.bias; 1 unexpected: extra\.weight\)"):
        load_model(str(tmp_path / "vit"), "DEFAULT")


def test_a_folder_without_safetensors_is_refused_naming_the_files(tmp_path, vit_folders):
    _, folder, _ = vit_folders
    (tmp_path / "vit").mkdir()
    shutil.copy(folder / "config.json", tmp_path / "vit")
    (tmp_path / "vit" / "pytorch_model.bin").write_bytes(b"\x80\x02")
    with pytest.raises(ModularityError, match=r"expected model\.safetensors or model\.safetensors\.index\.json.*"
                                              r"pytorch_model\.bin, pickled weights that are not loaded"):
        load_model(str(tmp_path / "vit"), "DEFAULT")


def test_unsupported_model_types_are_one_line(tmp_path):
    (tmp_path / "gpt").mkdir()
    (tmp_path / "gpt" / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    with pytest.raises(ModularityError, match="holds a 'gpt2' model; supported model types: vit, deit"):
        load_model(str(tmp_path / "gpt"), "DEFAULT")


def test_hub_names_resolve_from_the_cache_offline(tmp_path, monkeypatch, vit_folders, no_network):
    model, folder, _ = vit_folders
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    repo = tmp_path / "models--org--tiny-vit"
    shutil.copytree(folder, repo / "snapshots" / "abc123")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc123")
    loaded = load_model("hf/org/tiny-vit", "DEFAULT")
    assert torch.equal(loaded.module.classifier.weight, model.classifier.weight)
    assert "the Hugging Face cache (org/tiny-vit, revision abc123)" in loaded.provenance
    with pytest.raises(ModularityError, match=r"org/absent is not in the Hugging Face cache: expected "
                                              r".*models--org--absent/snapshots/<revision>/config\.json"):
        load_model("hf/org/absent", "DEFAULT")


def test_missing_transformers_is_one_line_naming_the_extra(monkeypatch, vit_folders):
    _, folder, _ = vit_folders
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(ModularityError, match=r"need the package 'transformers': pip install "
                                              r"'cnn-modularity\[hf\]'$"):
        load_model(str(folder), "DEFAULT")


def test_clip_folder_loads_the_vision_tower_and_counts_the_text_tower(tmp_path):
    torch.manual_seed(0)
    config = transformers.CLIPConfig(
        text_config={"hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 32},
        vision_config={"hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 32,
                       "image_size": 16, "patch_size": 8})
    clip = transformers.CLIPModel(config)
    clip.save_pretrained(tmp_path / "clip")
    loaded = load_model(str(tmp_path / "clip"), "DEFAULT")
    assert type(loaded.module.model).__name__ == "CLIPVisionModel" and loaded.input_size == (16, 16)
    text = sum(k.startswith(("text_model.", "text_projection", "visual_projection", "logit_scale"))
               for k in clip.state_dict())
    assert f"{text} text-tower tensors of the CLIP checkpoint left out" in loaded.provenance
    assert torch.equal(loaded.module.get_submodule("embeddings.patch_embedding").weight,
                       clip.vision_model.embeddings.patch_embedding.weight)


def test_a_bert_encoder_is_read_as_token_embedding_channels_with_heads_as_branches(tmp_path):
    torch.manual_seed(0)
    config = transformers.BertConfig(num_hidden_layers=1, hidden_size=32, num_attention_heads=4,
                                     intermediate_size=64, vocab_size=50, architectures=["BertModel"])
    transformers.BertModel(config).save_pretrained(tmp_path / "bert")
    loaded = load_model(str(tmp_path / "bert"), "DEFAULT")
    assert loaded.in_channels == 32 and loaded.input_size == (8, 16)
    graph = trace(loaded.module, loaded.input_size, loaded.in_channels)
    value = graph.layers["encoder.layer.0.attention.self.value"]
    assert value.branch_names == [f"head {h}" for h in range(4)]
    assert graph.consumers("encoder.layer.0.intermediate.dense") == ["encoder.layer.0.output.dense"]


@pytest.mark.slow
def test_vit_folder_heads_are_branches_with_recovery_statistics(vit_folders):
    import modularity

    _, folder, _ = vit_folders
    result = modularity.analyze(str(folder), "DEFAULT", layers="vit.*.v_proj", n_permutations=3,
                                n_label_permutations=99)
    assert [layer.name for layer in result.layers] == [f"vit.layers.{i}.attention.v_proj" for i in range(2)]
    for layer in result.layers:
        assert layer.branch_names == [f"head {h}" for h in range(4)] and layer.n_units == 32
        assert layer.recovery is not None and 0 < layer.recovery.p_value <= 1
