"""timm models by name: timm/<name>[.<tag>], seeded random init, local files, the Hugging Face cache offline."""

from __future__ import annotations

import socket
import sys

import pytest
import torch

from modularity.errors import ModularityError
from modularity.loading import load_model

timm = pytest.importorskip("timm")
safetensors_torch = pytest.importorskip("safetensors.torch")


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a connection fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("a network connection was attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_names_resolve_and_random_init_is_seeded(no_network):
    a, b = load_model("timm/resnet18", seed=3), load_model("timm/resnet18", seed=3)
    c = load_model("timm/resnet18", seed=4)
    assert type(a.module).__name__ == "ResNet" and not a.module.training and a.weights == "none"
    assert torch.equal(a.module.conv1.weight, b.module.conv1.weight)
    assert not torch.equal(a.module.conv1.weight, c.module.conv1.weight)
    assert a.weights_sha256 == b.weights_sha256 != c.weights_sha256
    assert a.provenance.startswith(f"timm {timm.__version__} 'resnet18'")


@pytest.mark.parametrize("name, message", [
    ("timm/resnt18", r"unknown timm model 'resnt18'; did you mean: timm/resnet18"),
    ("timm/resnet18.no_such_tag", r"no pretrained tag 'no_such_tag'; its tags: a1_in1k"),
])
def test_unknown_names_and_tags_are_one_line_errors(name, message):
    with pytest.raises(ModularityError, match=message) as err:
        load_model(name)
    assert "\n" not in str(err.value)


def test_a_local_file_loads_strictly(tmp_path):
    state = load_model("timm/resnet18", seed=1).module.state_dict()
    torch.save(state, tmp_path / "w.pth")
    loaded = load_model("timm/resnet18", str(tmp_path / "w.pth"))
    assert torch.equal(loaded.module.fc.weight, state["fc.weight"])
    assert str(tmp_path / "w.pth") in loaded.provenance and "sha256" in loaded.provenance
    del state["fc.bias"]
    safetensors_torch.save_file({k: v.contiguous() for k, v in state.items()}, tmp_path / "w.safetensors")
    with pytest.raises(ModularityError, match=r"1 missing: fc\.bias"):
        load_model("timm/resnet18", str(tmp_path / "w.safetensors"))


def test_default_weights_come_from_the_hugging_face_cache_offline(tmp_path, monkeypatch, no_network):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    repo = tmp_path / "models--timm--resnet18.a1_in1k"
    snap = repo / "snapshots" / "c0ffee"
    snap.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("c0ffee\n")
    state = load_model("timm/resnet18", seed=7).module.state_dict()
    safetensors_torch.save_file({k: v.contiguous() for k, v in state.items()}, snap / "model.safetensors")
    loaded = load_model("timm/resnet18.a1_in1k", "DEFAULT")
    assert torch.equal(loaded.module.conv1.weight, state["conv1.weight"])
    assert loaded.weights_path == str(snap / "model.safetensors")
    assert "timm/resnet18.a1_in1k, revision c0ffee" in loaded.provenance and "pretrained configuration a1_in1k" \
        in loaded.provenance


def test_default_weights_not_cached_name_where_they_would_be(tmp_path, monkeypatch, no_network):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    expected = tmp_path / "models--timm--resnet18.tv_in1k" / "snapshots" / "<revision>" / "model.safetensors"
    with pytest.raises(ModularityError, match="not in the Hugging Face cache: expected " + str(expected)):
        load_model("timm/resnet18.tv_in1k", "DEFAULT")


def test_input_size_comes_from_the_pretrained_configuration_and_can_be_overridden():
    assert load_model("timm/mobilevit_xxs").input_size == tuple(
        timm.models.get_pretrained_cfg("mobilevit_xxs").input_size[1:]) == (256, 256)
    assert load_model("timm/mobilevit_xxs", input_size=(128, 160)).input_size == (128, 160)


def test_missing_timm_is_one_line_naming_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "timm", None)  # import timm now raises ImportError
    with pytest.raises(ModularityError, match=r"^timm/<name> models need the package 'timm': "
                                              r"pip install 'cnn-modularity\[timm\]'$"):
        load_model("timm/resnet18")


@pytest.mark.slow
def test_deit_heads_are_branches_with_recovery_statistics():
    import modularity

    result = modularity.analyze("timm/deit_tiny_patch16_224", "none", layers="blocks.0.attn.qkv.v",
                                n_permutations=3, n_label_permutations=99)
    layer = result.layer("blocks.0.attn.qkv.v")
    assert layer.n_units == 192 and layer.branch_names == ["head 0", "head 1", "head 2"]
    assert layer.recovery is not None and -1 <= layer.recovery.ari <= 1 and 0 < layer.recovery.p_value <= 1
