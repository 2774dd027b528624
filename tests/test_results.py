"""Typed results: the summary.json round trip and its schema check."""

import copy
import json

import pytest

from modularity.errors import ModularityError
from modularity.results import COLUMNS, AnalysisResult, Control, NullSummary, Structure


@pytest.fixture(scope="module")
def summary():
    from modularity import analyze
    from tests.nets import PlantedNet

    res = analyze(PlantedNet(), layers="stem,block", n_permutations=3, input_size=(8, 8))
    return json.loads(json.dumps(res.to_dict()))


def test_round_trip_keeps_every_number(summary):
    again = AnalysisResult.from_dict(copy.deepcopy(summary)).to_dict()
    assert again == summary


def test_sub_results_are_typed(summary):
    res = AnalysisResult.from_dict(summary)
    block = res.layer("block")
    assert isinstance(block.structure, Structure) and isinstance(block.structure.ncut, NullSummary)
    assert all(isinstance(c, Control) for c in block.recovery.controls.values())


@pytest.mark.parametrize("data, field", [
    ([], "top level"), (None, "top level"), ("x", "top level"),
])
def test_a_summary_that_is_not_an_object_is_refused(data, field):
    with pytest.raises(ModularityError, match=field):
        AnalysisResult.from_dict(data)


@pytest.mark.parametrize("edit, message", [
    (lambda d: d.update(layers={"a": 1}), r"layers: expected a list, got an object"),
    (lambda d: d["layers"][0].pop("clusters"), r"layers\[0\]\.clusters is missing"),
    (lambda d: d["layers"][1].update(clusters=[0, 1]), r"layers\[1\]\.clusters: 2 labels for 32 units"),
    (lambda d: d["layers"][1]["structure"]["ncut"].update(z="big"), r"layers\[1\]\.structure\.ncut\.z: expected a number"),
    (lambda d: d["layers"][1]["recovery"].update(controls=[1]), r"recovery\.controls: expected an object"),
    (lambda d: d.update(seed="0"), r"seed: expected an integer, got a string"),
    (lambda d: d.pop("model"), r"model is missing"),
    (lambda d: d.update(schema_version=99), r"schema version 99"),
])
def test_the_first_bad_field_is_named(summary, edit, message):
    data = copy.deepcopy(summary)
    edit(data)
    with pytest.raises(ModularityError, match=message):
        AnalysisResult.from_dict(data)


def test_a_row_has_every_column_once(summary):
    res = AnalysisResult.from_dict(summary)
    row = res.layer("block").row()
    assert list(row) == [c.key for c in COLUMNS]
    assert row["n_branches"] == 4 and row["ari"] == res.layer("block").recovery.ari
    assert res.layer("stem").row()["ari"] is None


def test_frames_have_a_row_per_layer_and_per_unit(summary):
    res = AnalysisResult.from_dict(summary)
    frame = res.to_frame()
    assert list(frame.index) == ["stem", "block"] and frame.loc["block", "n_branches"] == 4
    units = res.units_frame()
    assert len(units) == sum(layer.n_units for layer in res.layers)
    assert {"layer", "unit", "branch", "cluster", "sv2_normalised"} <= set(units.columns)


def test_reprs_are_short(summary):
    res = AnalysisResult.from_dict(summary)
    assert len(repr(res)) < 200 and len(repr(res.layer("block"))) < 200
    assert "<table" in res._repr_html_()
