"""Typed results: the summary.json round trip and its schema check."""

import copy
import dataclasses
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
    (lambda d: d["layers"][1]["structure"]["ncut"].update(z="big"),
     r"layers\[1\]\.structure\.ncut\.z: expected a number"),
    (lambda d: d["layers"][1]["recovery"].update(controls=[1]), r"recovery\.controls: expected an object"),
    (lambda d: d["settings"].update(seed="0"), r"settings\.seed: expected an integer, got a string"),
    (lambda d: d["settings"].update(n_permutations=-3), r"settings: n_permutations \(--permutations\) must be"),
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
    assert [f.name for f in dataclasses.fields(row)] == [c.key for c in COLUMNS]
    assert row.n_branches == 4 and row.ari == res.layer("block").recovery.ari
    assert res.layer("stem").row().ari is None


def test_frames_have_a_row_per_layer_and_per_unit(summary):
    res = AnalysisResult.from_dict(summary)
    frame = res.to_frame()
    assert list(frame.index) == ["stem", "block"] and frame.loc["block", "n_branches"] == 4
    units = res.units_frame()
    assert len(units) == sum(layer.n_units for layer in res.layers)
    assert {"layer", "unit", "branch", "cluster", "sv2_normalised"} <= set(units.columns)


def test_reprs_are_short(summary):
    res = AnalysisResult.from_dict(summary)
    block = res.layer("block")
    for obj in (res, block, block.recovery, block.structure, block.structure.ncut, block.detectability,
                res.layer("stem").detectability, res.settings, *block.recovery.controls.values(), block.row(),
                res.layer("stem").row()):
        assert len(repr(obj)) < 300, repr(obj)
    assert "ARI=" in repr(block.recovery) and "n-cut=" in repr(block.structure)
    assert "<table" in res._repr_html_() and "<table" in block._repr_html_()


def _distinct_layer(offset: float = 0.0):
    """A layer result whose every number the tables read is a different value (so a swapped column shows)."""
    from modularity.core.detectability import MISSED, Detectability
    from modularity.results import LayerResult, Recovery

    ncut = NullSummary(observed=0.11 + offset, null_mean=0.12 + offset, null_sd=0.13 + offset, z=0.14 + offset,
                       p_value=0.15 + offset, n=16, alternative="less", p_value_bh=0.17 + offset, method="sequential",
                       effect=0.18 + offset)
    recovery = Recovery(ari=0.21 + offset, nmi=0.22 + offset, p_value=0.23 + offset, n_permutations=24,
                        null_ari_mean=0.25 + offset, null_ari_sd=0.26 + offset, z=0.27 + offset,
                        nmi_p_value=0.28 + offset,
                        controls={"unit_norm_columns": Control(0.31 + offset, 0.32), "column_norms_only":
                                  Control(0.33 + offset, 0.34)},
                        p_value_bh=0.35 + offset, method="label-permutation", effect=0.36 + offset)
    return LayerResult(name="blk", kind="concat", n_units=6, consumers=["c1", "c2"], branches=[0, 0, 1, 1, 2, 2],
                       branch_names=["a", "b", "c"], branch_source="concat", k=3, k_source="branches",
                       singular_values=[1.0], spectra={}, null_spectra={}, embedding={},
                       clusters=[0, 0, 1, 1, 2, -1], n_dead=1, recovery=recovery, structure=Structure(ncut, 0.51),
                       shape=[4, 6], blocks=[], verdict=MISSED,
                       detectability=Detectability(4, 6, 3, 0.41 + offset, 0.42, 0.02, (0.43,), 7, 0.44,
                                                   signal=0.45, threshold=0.46, ratio=0.47 + offset,
                                                   expected_ari=0.48 + offset, expected_ari_sd=0.49))


def test_every_column_reads_its_own_field():
    """Each table column shows the value its name says: a swapped mapping (p shown as p_bh) fails here."""
    layer = _distinct_layer()
    rec, ncut, det = layer.recovery, layer.structure.ncut, layer.detectability
    expected = {
        "name": "blk", "kind": "concat", "n_units": 6, "n_branches": 3, "k": 3, "k_source": "branches",
        "ari": rec.ari, "nmi": rec.nmi, "ari_effect": rec.effect, "p": rec.p_value, "p_method": rec.method,
        "p_bh": rec.p_value_bh, "ari_unit_norm_columns": rec.controls["unit_norm_columns"].ari,
        "ari_column_norms_only": rec.controls["column_norms_only"].ari, "signal_ratio": det.ratio,
        "expected_ari": det.expected_ari, "n_above_edge": det.n_above_edge, "verdict": "missed", "ncut": ncut.observed,
        "ncut_null_mean": ncut.null_mean, "ncut_null_sd": ncut.null_sd, "ncut_effect": ncut.effect, "ncut_z": ncut.z,
        "ncut_p": ncut.p_value, "ncut_p_bh": ncut.p_value_bh, "within_share": 0.51, "n_dead": 1,
        "n_permutations": ncut.n,
        "consumers": "c1;c2",
    }
    assert set(expected) == {c.key for c in COLUMNS}
    numbers = [v for v in expected.values() if isinstance(v, float)]
    assert len(set(numbers)) == len(numbers)  # every number is different, so any swap changes a value
    assert dataclasses.asdict(layer.row()) == expected


def test_the_csv_and_the_comparison_and_sweep_rows_carry_the_same_values(tmp_path):
    import csv

    from modularity.output.export import write_rows
    from modularity.results import ComparisonRow, SweepRow

    layer, control = _distinct_layer(), _distinct_layer(offset=0.5)
    write_rows([layer.row()], COLUMNS, tmp_path / "layers.csv")
    (row,) = csv.DictReader((tmp_path / "layers.csv").open())
    assert float(row["p"]) == layer.recovery.p_value and float(row["p_bh"]) == layer.recovery.p_value_bh
    assert float(row["ncut_p"]) == layer.structure.ncut.p_value and row["p_method"] == "label-permutation"
    comparison = ComparisonRow.of(layer.row(), control.row())
    assert (comparison.p_bh, comparison.p_bh_control) == (layer.recovery.p_value_bh, control.recovery.p_value_bh)
    assert (comparison.ari_control, comparison.ncut_p_bh_control) == (control.recovery.ari,
                                                                     control.structure.ncut.p_value_bh)
    assert comparison.ncut_effect_gap == pytest.approx(layer.structure.ncut.effect - control.structure.ncut.effect)
    sweep_row = SweepRow.of("epoch1", 1, layer)
    assert (sweep_row.p, sweep_row.p_bh, sweep_row.ncut_p, sweep_row.ncut_p_bh) == (
        layer.recovery.p_value, layer.recovery.p_value_bh, layer.structure.ncut.p_value,
        layer.structure.ncut.p_value_bh)
    assert (sweep_row.p_permutations, sweep_row.ncut_draws, sweep_row.layer) == (24, 16, "blk")


# ------------------------------------------------------------------------------- per-unit vectors in arrays.npz

def _folder(summary, tmp_path, control: bool = True):
    """A folder with summary.json (per-unit vectors left out) and arrays.npz holding them; and the result."""
    import numpy as np

    from modularity.results import unit_arrays

    res = AnalysisResult.from_dict(copy.deepcopy(summary))
    if control:
        res.control = AnalysisResult.from_dict(copy.deepcopy(summary))
    res.save(tmp_path / "summary.json", units=False)
    np.savez_compressed(tmp_path / "arrays.npz", **unit_arrays(res))
    return res


def test_a_folder_summary_holds_no_per_unit_vectors(summary, tmp_path):
    from modularity.results import UNIT_FIELDS

    _folder(summary, tmp_path)
    data = json.loads((tmp_path / "summary.json").read_text())
    layers = data["layers"] + data["control"]["layers"]
    assert [sorted(set(UNIT_FIELDS) & set(layer)) for layer in layers] == [[]] * len(layers)
    assert data["unit_arrays"] == "arrays.npz" and data["schema_version"] == 3


def test_load_summary_reads_the_vectors_back_from_the_arrays(summary, tmp_path):
    import numpy as np

    from modularity.results import load_summary

    res = _folder(summary, tmp_path)
    again = load_summary(tmp_path)
    for original, loaded in zip(res.layers + res.control.layers, again.layers + again.control.layers):
        # labels exactly; spectra and coordinates as float32 (24 bits, more than summary.json's 7 digits)
        assert (loaded.clusters, loaded.row_clusters, loaded.branches) == (original.clusters, original.row_clusters,
                                                                          original.branches)
        for variant in original.spectra:
            assert loaded.spectra[variant] == np.float32(original.spectra[variant]).tolist()
            assert loaded.embedding[variant] == np.float32(original.embedding[variant]).tolist()
        assert loaded.singular_values == loaded.spectra["raw"]
        assert loaded.row() == original.row()  # every per-layer number as it was


def test_unit_arrays_store_labels_as_int32_and_the_raw_spectrum_once(summary):
    import numpy as np

    from modularity.results import unit_arrays

    res = AnalysisResult.from_dict(copy.deepcopy(summary))
    arrays = unit_arrays(res)
    block = res.layers.index(res.layer("block"))
    assert arrays[f"u{block}_clusters"].dtype == np.int32 and arrays[f"u{block}_branches"].dtype == np.int32
    assert arrays[f"u{block}_embedding_normalised"].dtype == np.float32
    assert arrays[f"u{block}_embedding_normalised"].shape == (32, 3)
    assert not any(key.endswith("singular_values") for key in arrays)  # it is the raw spectrum
    assert "u0_branches" not in arrays and not any(key.startswith("cu") for key in arrays)  # stem: no branches


def test_a_summary_whose_vectors_are_in_its_folder_names_load_summary_when_read_alone(summary, tmp_path):
    _folder(summary, tmp_path)
    with pytest.raises(ModularityError, match=r"in 'arrays.npz'; read the folder with modularity.load_summary"):
        AnalysisResult.from_dict(json.loads((tmp_path / "summary.json").read_text()))


def test_a_folder_without_the_arrays_its_summary_names_is_one_error(summary, tmp_path):
    from modularity.results import load_summary

    _folder(summary, tmp_path)
    (tmp_path / "arrays.npz").unlink()
    with pytest.raises(ModularityError, match=r"lacks arrays.npz, which holds the per-unit vectors"):
        load_summary(tmp_path)


def test_unit_arrays_naming_another_file_is_refused(summary, tmp_path):
    from modularity.results import load_summary

    _folder(summary, tmp_path)
    data = json.loads((tmp_path / "summary.json").read_text())
    data["unit_arrays"] = "../elsewhere.npz"
    (tmp_path / "summary.json").write_text(json.dumps(data))
    with pytest.raises(ModularityError, match=r"unit_arrays: '../elsewhere.npz' is not 'arrays.npz'"):
        load_summary(tmp_path)


def test_a_version_2_summary_with_its_vectors_inline_is_still_read(summary, tmp_path):
    """modularity 0.2.0's folders: schema 2, every vector inline (and no unit_arrays)."""
    from modularity.results import load_summary

    old = copy.deepcopy(summary)
    old["schema_version"] = 2
    (tmp_path / "summary.json").write_text(json.dumps(old))
    res = load_summary(tmp_path)
    assert res.layer("block").embedding == summary["layers"][1]["embedding"]
    assert res.to_dict() == {**summary, "schema_version": 3}
