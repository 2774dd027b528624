import pytest
import torch
import torchvision

from modularity.errors import ModularityError
from modularity.zoo import list_sources, load_model
from modularity.zoo.torchvision_models import hub_checkpoint_path, resolve_weights_enum


def test_unknown_model_lists_close_names():
    with pytest.raises(ModularityError, match=r"unknown model 'resnet5'.*did you mean: .*resnet50"):
        load_model("resnet5", "none")


def test_random_weights_build_the_architecture():
    loaded = load_model("alexnet", "none")
    assert loaded.weights == "none" and loaded.weights_sha256 is None
    assert isinstance(loaded.module, torchvision.models.AlexNet) and not loaded.module.training


def test_torchvision_weights_load_from_the_hub_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    member = resolve_weights_enum("alexnet", "IMAGENET1K_V1")
    path = hub_checkpoint_path(member.url)
    assert path.parent == tmp_path / "hub" / "checkpoints"
    path.parent.mkdir(parents=True)
    state = torchvision.models.alexnet(weights=None).state_dict()
    torch.save(state, path)
    loaded = load_model("alexnet", "DEFAULT")
    assert torch.equal(loaded.module.features[0].weight, state["features.0.weight"])
    assert loaded.weights_path == str(path) and len(loaded.weights_sha256) == 64


def test_offline_without_cache_says_where_to_put_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(ModularityError, match=r"place it at .*hub/checkpoints/alexnet-owt-7be5be79\.pth"):
        load_model("alexnet", "IMAGENET1K_V1")


def test_unknown_weights_name_lists_choices():
    with pytest.raises(ModularityError, match="choose one of DEFAULT, IMAGENET1K_V1"):
        load_model("alexnet", "IMAGENET9K")


def test_googlenet_pretrained_aux_weights_are_dropped(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    member = resolve_weights_enum("googlenet", "DEFAULT")
    path = hub_checkpoint_path(member.url)
    path.parent.mkdir(parents=True)
    full = torchvision.models.googlenet(weights=None, aux_logits=True, init_weights=True).state_dict()
    torch.save(full, path)
    loaded = load_model("googlenet", "DEFAULT")
    assert loaded.module.aux1 is None


def test_offline_default_is_listed_first_and_available():
    first = list_sources()[0]
    assert first.name == "efficientnet_lite0" and first.offline()


def test_offline_default_loads_real_weights():
    loaded = load_model(None, "DEFAULT")
    assert loaded.name == "efficientnet_lite0" and loaded.weights == "DEFAULT"
    assert loaded.weights_path.endswith("efficientnet-lite0-57934424.pth")
    # trained weights are not the architecture's init: batch-norm statistics were learned
    assert not torch.allclose(loaded.module._bn0.running_var, torch.ones(32))
