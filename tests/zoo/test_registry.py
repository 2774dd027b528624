import pytest
import torch
import torchvision

from modularity.errors import ModularityError
from modularity.zoo import list_sources, load_source
from modularity.zoo.torchvision_models import hub_checkpoint_path, resolve_weights_enum


def test_unknown_model_lists_close_names():
    with pytest.raises(ModularityError, match=r"unknown model 'resnet5'.*did you mean: .*resnet50"):
        load_source("resnet5", "none")


def test_random_weights_build_the_architecture():
    loaded = load_source("alexnet", "none")
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
    loaded = load_source("alexnet", "DEFAULT")
    assert torch.equal(loaded.module.features[0].weight, state["features.0.weight"])
    assert loaded.weights_path == str(path) and len(loaded.weights_sha256) == 64


def test_offline_without_cache_says_where_to_put_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(ModularityError, match=r"place it at .*hub/checkpoints/alexnet-owt-7be5be79\.pth"):
        load_source("alexnet", "IMAGENET1K_V1")


def test_unknown_weights_name_lists_choices():
    with pytest.raises(ModularityError, match="choose one of DEFAULT, IMAGENET1K_V1"):
        load_source("alexnet", "IMAGENET9K")


@pytest.mark.slow
def test_googlenet_pretrained_aux_weights_are_dropped(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    member = resolve_weights_enum("googlenet", "DEFAULT")
    path = hub_checkpoint_path(member.url)
    path.parent.mkdir(parents=True)
    full = torchvision.models.googlenet(weights=None, aux_logits=True, init_weights=True).state_dict()
    torch.save(full, path)
    loaded = load_source("googlenet", "DEFAULT")
    assert loaded.module.aux1 is None


def test_offline_default_is_listed_first_and_available():
    first = list_sources()[0]
    assert first.name == "efficientnet_lite0" and first.offline()


def test_offline_default_loads_real_weights():
    loaded = load_source(None, "DEFAULT")
    assert loaded.name == "efficientnet_lite0" and loaded.weights == "DEFAULT"
    assert loaded.weights_path.endswith("efficientnet-lite0-57934424.pth")
    # trained weights are not the architecture's init: batch-norm statistics were learned
    assert not torch.allclose(loaded.module._bn0.running_var, torch.ones(32))


# -- weights files through the registry --------------------------------------------------------------------------

def test_googlenet_weights_file_with_aux_heads_loads(tmp_path):
    full = torchvision.models.googlenet(weights=None, aux_logits=True, init_weights=False).state_dict()
    assert any(k.startswith("aux1.") for k in full) and any(k.startswith("aux2.") for k in full)
    torch.save(full, tmp_path / "googlenet.pth")
    loaded = load_source("googlenet", str(tmp_path / "googlenet.pth"))
    assert loaded.module.aux1 is None and loaded.module.aux2 is None
    assert torch.equal(loaded.module.conv1.conv.weight, full["conv1.conv.weight"])


@pytest.mark.slow  # inception_v3's own initialisation takes a few seconds
def test_inception_v3_weights_file_with_auxlogits_loads(tmp_path):
    full = torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=False).state_dict()
    assert any(k.startswith("AuxLogits.") for k in full)
    torch.save(full, tmp_path / "inception_v3.pth")
    loaded = load_source("inception_v3", str(tmp_path / "inception_v3.pth"))
    assert loaded.module.AuxLogits is None
    assert torch.equal(loaded.module.fc.weight, full["fc.weight"])


@pytest.mark.parametrize("wrap", [lambda s: {f"module.{k}": v for k, v in s.items()},
                                  lambda s: {"state_dict": s, "epoch": 90},
                                  lambda s: {"model": s, "optimizer": {"lr": 0.1}},
                                  lambda s: {"model_state_dict": {f"module.{k}": v for k, v in s.items()}}],
                         ids=["module-prefix", "state_dict", "model", "model_state_dict+prefix"])
def test_wrapped_and_dataparallel_weights_files_load(tmp_path, wrap):
    state = torchvision.models.squeezenet1_1(weights=None).state_dict()
    torch.save(wrap(state), tmp_path / "w.pth")
    loaded = load_source("squeezenet1_1", str(tmp_path / "w.pth"))
    assert torch.equal(loaded.module.features[0].weight, state["features.0.weight"])
    assert loaded.provenance == f"weights file {tmp_path / 'w.pth'}"


def test_nan_weights_file_names_the_tensor(tmp_path):
    state = torchvision.models.squeezenet1_1(weights=None).state_dict()
    state["features.0.weight"][0, 0, 0, 0] = float("nan")
    torch.save(state, tmp_path / "x.pth")
    with pytest.raises(ModularityError, match=r"tensor 'features.0.weight' has 1 NaN/Inf value \(of 1728\)"):
        load_source("squeezenet1_1", str(tmp_path / "x.pth"))


def test_a_folder_named_like_weights_is_refused(tmp_path):
    (tmp_path / "x.pth").mkdir()
    with pytest.raises(ModularityError, match=r"is a folder, not a file"):
        load_source("alexnet", str(tmp_path / "x.pth"))


def test_a_weights_path_too_long_for_the_system_is_one_line(tmp_path):
    with pytest.raises(ModularityError) as err:
        load_source("alexnet", str(tmp_path / ("w" * 5000)) + ".pth")
    assert "\n" not in str(err.value)


def test_onnx_weights_for_an_architecture_without_converter_are_refused(tmp_path):
    (tmp_path / "m.onnx").write_bytes(b"\x08\x07")
    with pytest.raises(ModularityError, match=r"cannot be read from an ONNX file; analyse the ONNX model itself"):
        load_source("alexnet", str(tmp_path / "m.onnx"))


# -- ONNX files through the registry -----------------------------------------------------------------------------

def test_weights_for_an_onnx_model_are_refused(light_dir, tmp_path):
    torch.save({"conv1_w": torch.zeros(1)}, tmp_path / "other.pth")
    with pytest.raises(ModularityError, match=r"--weights .*other.pth cannot be used with the ONNX model .*"
                                              r"the weights of an ONNX model come from the file itself"):
        load_source(str(light_dir / "light_bvlc_alexnet.onnx"), str(tmp_path / "other.pth"))


@pytest.mark.parametrize("weights", [None, "none", "DEFAULT"])
def test_an_onnx_model_takes_its_own_weights(light_dir, weights):
    loaded = load_source(str(light_dir / "light_squeezenet.onnx"), weights)
    assert loaded.weights == "onnx" and loaded.provenance.startswith("ONNX file")


def test_a_weights_file_given_as_the_model_is_refused_with_a_hint(tmp_path):
    torch.save({"features.0.weight": torch.zeros(1)}, tmp_path / "alexnet.pth")
    with pytest.raises(ModularityError, match=r"looks like a weights file, not a model: .*--weights"):
        load_source(str(tmp_path / "alexnet.pth"), "none")


def test_a_folder_named_like_an_onnx_file_is_refused(tmp_path):
    (tmp_path / "m.onnx").mkdir()
    with pytest.raises(ModularityError, match=r"ONNX file .*m.onnx is a folder, not a file"):
        load_source(str(tmp_path / "m.onnx"), "none")


def test_an_onnx_file_with_a_dynamic_size_is_imported_at_the_size_asked_for(tmp_path):
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, 4, 1)).eval()
    path = tmp_path / "dynamic.onnx"
    try:
        torch.onnx.export(net, (torch.randn(1, 3, 32, 32),), str(path), dynamo=False, opset_version=13,
                          input_names=["x"], dynamic_axes={"x": {2: "h", 3: "w"}})
    except Exception as exc:  # the TorchScript exporter may be unavailable in a future torch
        pytest.skip(f"torch.onnx.export failed: {type(exc).__name__}")
    assert (load_source(str(path)).input_size, load_source(str(path), input_size=(48, 64)).input_size) == \
        ((224, 224), (48, 64))
