"""The pipeline: the command line's defaults and the results folders it writes."""

import dataclasses
import json

import pytest
import torch

import modularity.pipeline as pipeline
from modularity.errors import ModularityError
from modularity.results import AnalysisResult
from modularity.zoo import LoadedModel
from tests.nets import PlantedNet


def test_run_clusterability_writes_json_csv_and_figure(tmp_path, monkeypatch):
    import modularity.loading

    monkeypatch.setattr(modularity.loading, "load_source", lambda name, weights, input_size=None: LoadedModel(
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


def _planted_loaded() -> LoadedModel:
    return LoadedModel(name="planted", module=PlantedNet(signal=3.0).eval(), weights="trained.pt", input_size=(8, 8))


def test_random_init_of_an_unregistered_module_resets_every_weight_reproducibly():
    loaded = _planted_loaded()
    a, b = pipeline.random_init(loaded, seed=1), pipeline.random_init(loaded, seed=1)
    assert a.weights == "none (random-init control)" and a.weights_sha256 == b.weights_sha256
    assert not torch.equal(a.module.head.weight, loaded.module.head.weight)
    assert torch.equal(a.module.head.weight, b.module.head.weight)


def test_random_init_of_a_registered_architecture_uses_its_own_initialisation():
    loaded = pipeline.load_model("resnet18", seed=0)
    loaded.weights = "trained.pt"
    control = pipeline.random_init(loaded, seed=5)
    assert control.weights_sha256 == pipeline.load_model("resnet18", seed=5).weights_sha256


def test_random_init_control_analyses_the_same_layers_and_loses_the_planted_structure():
    result = pipeline.analyze(_planted_loaded(), layers="block", n_permutations=5, n_label_permutations=1000,
                              control="random-init")
    rows = result.comparison_rows()
    assert [layer.name for layer in result.control.layers] == ["block"] and len(rows) == 1
    assert (rows[0].ari > 0.8, abs(rows[0].ari_control) < 0.2) == (True, True)


def test_random_init_control_of_random_weights_is_refused_before_any_analysis():
    loaded = _planted_loaded()
    loaded.weights = "none"
    with pytest.raises(ModularityError, match="already random"):
        pipeline.analyze(loaded, layers="block", control="random-init")


def test_the_control_round_trips_through_summary_json(tmp_path):
    result = pipeline.analyze(_planted_loaded(), layers="block", n_permutations=3, n_label_permutations=100,
                              control="random-init")
    result.save(tmp_path / "summary.json")
    back = AnalysisResult.from_dict(json.loads((tmp_path / "summary.json").read_text()))
    assert back.control.layers[0].clusters == result.control.layers[0].clusters
    (a,), (b,) = (dataclasses.asdict(r) for r in back.comparison_rows()), \
        (dataclasses.asdict(r) for r in result.comparison_rows())
    assert a.pop("name") == b.pop("name") and a == pytest.approx(b, rel=1e-6)


@pytest.mark.slow
def test_a_results_folder_with_a_control_has_its_table_figure_and_report_section(tmp_path):
    loaded = _planted_loaded()
    result = pipeline.analyze(loaded, layers="block", n_permutations=3, n_label_permutations=100,
                              control="random-init")
    out = pipeline.save_results(result, pipeline.trace(loaded.module, (8, 8)), tmp_path / "res")
    html = (out / "report.html").read_text()
    assert (out / "comparison.csv").read_text().splitlines()[1].startswith("block,")
    assert (out / "figures" / "control.png").stat().st_size > 1000 and (out / "control_layers.csv").exists()
    assert "Trained against the random-init control" in html and "ARI trained" in html


@pytest.mark.parametrize("weights, given, expected", [
    ("DEFAULT", "auto", "random-init"), ("trained.pt", "auto", "random-init"), ("none", "auto", "none"),
    ("as given", "auto", "none"), ("DEFAULT", "none", "none"), ("none", "random-init", "random-init"),
])
def test_the_control_is_on_by_default_for_trained_weights_only(weights, given, expected):
    settings = pipeline.resolve_control(pipeline.AnalysisSettings(control=given), weights)
    assert settings.control == expected


def test_a_trained_model_by_name_gets_its_control_without_asking(monkeypatch):
    import modularity.loading

    monkeypatch.setattr(modularity.loading, "load_source", lambda name, weights, input_size=None: LoadedModel(
        name="planted", module=PlantedNet(signal=1.0, seed=1), weights=weights, input_size=(8, 8)))
    result = pipeline.analyze("planted", "trained.pt", layers="block", n_permutations=2, n_label_permutations=100)
    assert result.settings.control == "random-init" and result.control is not None
    assert result.to_dict()["settings"]["control"] == "random-init"
    bare = pipeline.analyze("planted", "trained.pt", layers="block", n_permutations=2, n_label_permutations=100,
                            control="none")
    assert bare.control is None
