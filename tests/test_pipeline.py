"""The pipeline: the command line's defaults and the results folders it writes."""

import json

import torch

import modularity.pipeline as pipeline
from modularity.zoo import LoadedModel
from tests.nets import PlantedNet


def test_run_clusterability_writes_json_csv_and_figure(tmp_path, monkeypatch):
    monkeypatch.setattr(pipeline, "_zoo_load_model", lambda name, weights: LoadedModel(
        name="planted", module=PlantedNet(), weights=weights, input_size=(8, 8)))
    out = tmp_path / "res"
    result, written = pipeline.run_clusterability("planted", None, out, k=3, n_shuffles=4)
    data = json.loads((out / "clusterability.json").read_text())
    assert written == out and data["k"] == 3 and len(data["null_ncuts"]) == 4 and data["weights"] == "none"
    assert (out / "clusterability_layers.csv").read_text().startswith("layer,n_units,n_isolated,cluster_0")
    assert (out / "clusterability_null.png").stat().st_size > 1000
    assert "n-cut" in result.summary()


def test_named_models_default_to_random_weights_seeded_by_seed():
    a = pipeline.load_model("resnet18", seed=3)
    b = pipeline.load_model("resnet18", seed=3)
    c = pipeline.load_model("resnet18", seed=4)
    assert a.weights == "none"
    assert torch.equal(a.module.conv1.weight, b.module.conv1.weight)
    assert not torch.equal(a.module.conv1.weight, c.module.conv1.weight)
    assert a.weights_sha256 == b.weights_sha256 != c.weights_sha256 and len(a.weights_sha256) == 64


def test_the_default_model_defaults_to_its_trained_weights():
    assert pipeline.default_weights(None, None) == "DEFAULT"
    assert pipeline.default_weights("googlenet", None) == "none"
    assert pipeline.default_weights("googlenet", "IMAGENET1K_V1") == "IMAGENET1K_V1"
