"""Sweeps: many checkpoints of one architecture, one table (modularity.sweep, pipeline.write_sweep, CLI 'sweep')."""

import importlib.util
import json

import numpy as np
import pytest
import torch
import torchvision

import modularity.pipeline
import modularity.sweep
from modularity.cli import main
from modularity.errors import ModularityError
from modularity.folders import MARKER, PARTIAL_TAG
from modularity.output.sweep_figures import sweep_figure
from modularity.results import load_summary
from modularity.settings import AnalysisSettings
from modularity.sweep import SWEEP_COLUMNS, checkpoint_labels, sweep

ARCH = "squeezenet1_1"  # 1.2 M parameters, Fire modules concatenate two branches
LAYERS = "features.0,features.3"  # one layer without true branches, one with
OPTIONS = dict(n_permutations=3, n_label_permutations=500)
COMPARED = ["k", "ari", "p", "p_bh", "ari_effect", "nmi", "ncut", "ncut_z", "ncut_effect", "ncut_p", "ncut_p_bh"]


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """Three state dicts of one architecture, from three seeds."""
    folder = tmp_path_factory.mktemp("run")
    paths = []
    for seed in range(3):
        torch.manual_seed(seed)
        model = torchvision.models.squeezenet1_1(weights=None)
        paths.append(folder / f"epoch{seed}.pt")
        torch.save(model.state_dict(), paths[-1])
    return paths


@pytest.fixture(scope="module")
def swept(checkpoints):
    return sweep(ARCH, checkpoints, layers=LAYERS, **OPTIONS)


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("error: ")
    return err


@pytest.mark.slow
def test_one_row_per_checkpoint_and_layer_with_the_values_of_a_direct_analysis(swept, checkpoints):
    table = swept.table
    assert list(table.columns) == SWEEP_COLUMNS
    assert swept.labels == ["epoch0", "epoch1", "epoch2"] and swept.layers == ["features.0", "features.3"]
    assert list(zip(table["checkpoint"], table["layer"])) == [
        (c, layer) for c in swept.labels for layer in swept.layers]
    assert table["checkpoint_index"].tolist() == [0, 0, 1, 1, 2, 2]
    for i, path in enumerate(checkpoints):
        direct = modularity.pipeline.analyze(ARCH, weights=str(path), layers=LAYERS, **OPTIONS)
        assert swept.results[i].weights_sha256 == direct.weights_sha256
        rows = table[table["checkpoint"] == f"epoch{i}"].set_index("layer")
        expected = direct.to_frame()
        np.testing.assert_array_equal(rows[COMPARED].to_numpy(dtype=float),
                                      expected.loc[rows.index, COMPARED].to_numpy(dtype=float))
        assert rows["p_method"].fillna("-").tolist() == expected.loc[rows.index, "p_method"].fillna("-").tolist() \
            == ["-", "exact"]
    # the checkpoints differ, so the rows do
    assert table.loc[table["layer"] == "features.3", "ncut"].nunique() == 3
    # no true branches: no ARI, but an n-cut with its null
    first = table[table["layer"] == "features.0"]
    assert first["ari"].isna().all() and first["ncut_z"].notna().all() and first["k_source"].eq("eigengap").all()
    assert swept.pivot("ari").shape == (2, 3)
    assert len(repr(swept)) < 300 and "3 checkpoints x 2 layers" in repr(swept)
    html = swept._repr_html_()  # a layer x checkpoint table of the ARI
    assert html.count("<tr") == 1 + 1 + 2 and "epoch2" in html and "features.3" in html


@pytest.mark.slow
def test_the_folder_holds_table_figures_and_each_checkpoints_summary(swept, tmp_path):
    import pandas as pd

    out = modularity.pipeline.write_sweep(swept, tmp_path / "sweep")
    assert (out / MARKER).is_file()
    table = pd.read_csv(out / "sweep.csv")
    assert len(table) == 6 and list(table.columns) == SWEEP_COLUMNS
    np.testing.assert_allclose(table["ncut_z"], swept.table["ncut_z"].to_numpy(dtype=float), rtol=1e-15)
    assert (out / "sweep.parquet").is_file() == (importlib.util.find_spec("pyarrow") is not None)
    assert (out / "sweep.png").stat().st_size > 10_000 and (out / "sweep.svg").is_file()
    assert sorted(p.name for p in (out / "figures").iterdir()) == [
        "ari.png", "ari_effect.png", "ncut_effect.png", "ncut_z.png", "p.png"]
    meta = json.loads((out / "sweep.json").read_text())
    assert meta["arch"] == ARCH and meta["layers"] == swept.layers and meta["settings"]["n_permutations"] == 3
    for entry, result in zip(meta["checkpoints"], swept.results):
        assert entry["weights_sha256"] == result.weights_sha256
        summary = load_summary((out / entry["summary"]).parent)
        assert summary.to_dict() == result.to_dict()
    assert [e["summary"] for e in meta["checkpoints"]] == [
        f"checkpoints/{i:03d}_epoch{i}/summary.json" for i in range(3)]


@pytest.mark.slow
def test_cli_sweep_end_to_end(checkpoints, tmp_path, capsys):
    import pandas as pd

    out = tmp_path / "res"
    argv = ["sweep", ARCH, *map(str, checkpoints[:2]), "--layers", "features.3", "--permutations", "2",
            "--label-permutations", "200", "--out", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "2 checkpoints x 1 layers" in printed and f"results in {out}/" in printed
    table = pd.read_csv(out / "sweep.csv")
    assert table["checkpoint"].tolist() == ["epoch0", "epoch1"] and table["layer"].tolist() == ["features.3"] * 2
    assert table["ari"].notna().all() and (out / "sweep.png").is_file()
    meta = json.loads((out / "sweep.json").read_text())
    assert meta["command"].startswith("python -m modularity sweep squeezenet1_1")
    assert load_summary(out / "checkpoints" / "000_epoch0").command == meta["command"]


def test_a_bad_checkpoint_is_one_line_before_any_analysis_and_writes_nothing(checkpoints, tmp_path, capsys,
                                                                                monkeypatch):
    monkeypatch.setattr(modularity.sweep, "analyze_model", lambda *a, **k: pytest.fail("analysis started"))
    bad = tmp_path / "epoch9.pt"
    bad.write_bytes(b"PK\x03\x04 truncated")
    out = tmp_path / "res"
    assert main(["sweep", ARCH, str(checkpoints[0]), str(bad), "--out", str(out), "--quiet"]) == 2
    assert "epoch9.pt" in _error_line(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch9.pt"]
    assert not any(PARTIAL_TAG in p.name for p in tmp_path.iterdir())


@pytest.mark.slow  # the first mismatch builds every architecture's signature to name the closest
def test_a_checkpoint_of_another_architecture_is_named(checkpoints, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(modularity.sweep, "analyze_model", lambda *a, **k: pytest.fail("analysis started"))
    other = tmp_path / "other.pt"
    torch.save(torchvision.models.squeezenet1_0(weights=None).state_dict(), other)
    assert main(["sweep", ARCH, str(checkpoints[0]), str(other), "--out", str(tmp_path / "res"), "--quiet"]) == 2
    assert "other.pt" in _error_line(capsys)
    assert not (tmp_path / "res").exists()


def test_a_checkpoint_given_twice_is_refused(checkpoints, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(modularity.pipeline, "load_model", lambda *a, **k: pytest.fail("work started"))
    monkeypatch.chdir(checkpoints[0].parent)
    argv = ["sweep", ARCH, str(checkpoints[0]), "./epoch1.pt", checkpoints[0].name, "--out", str(tmp_path / "o")]
    assert main(argv) == 2
    assert "given twice" in _error_line(capsys)
    assert not (tmp_path / "o").exists()


def test_an_out_folder_with_user_files_is_refused_before_any_work(checkpoints, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(modularity.pipeline, "load_model", lambda *a, **k: pytest.fail("work started"))
    out = tmp_path / "d"
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    assert main(["sweep", ARCH, str(checkpoints[0]), "--out", str(out)]) == 2
    assert "other files" in _error_line(capsys)
    assert (out / "mine.txt").read_text() == "keep"


def test_argument_errors_are_one_line(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["sweep", ARCH])  # no checkpoint
    assert exc.value.code == 2
    _error_line(capsys)
    assert main(["sweep", ARCH, "a.pt", "--permutations", "-1"]) == 2
    assert "n_permutations (--permutations)" in _error_line(capsys)
    assert main(["sweep", "model.onnx", "a.pt", "--quiet"]) == 2
    assert "ONNX" in _error_line(capsys)


def test_one_settings_object_reaches_every_checkpoint(checkpoints, monkeypatch):
    calls = []

    def spy(loaded, settings, **kwargs):
        calls.append((loaded.weights, settings))
        return real(loaded, settings, **kwargs)

    real = modularity.sweep.analyze_model
    monkeypatch.setattr(modularity.sweep, "analyze_model", spy)
    res = sweep(ARCH, checkpoints[:2], layers="features.3", seed=7, n_permutations=0, n_label_permutations=50,
                jobs=1)
    assert [c[0] for c in calls] == [str(p) for p in checkpoints[:2]]
    assert calls[0][1] is calls[1][1] and calls[0][1] == AnalysisSettings(layers="features.3", seed=7,
                                                                          n_permutations=0, n_label_permutations=50,
                                                                          control="none")
    assert all(r.seed == 7 for r in res.results) and len(res.table) == 2
    with pytest.raises(ModularityError, match="unknown setting graph"):
        sweep(ARCH, checkpoints[:1], graph=object())
    with pytest.raises(ModularityError, match="no random-init control"):
        sweep(ARCH, checkpoints[:1], control="random-init")


@pytest.mark.slow
def test_worker_processes_give_the_same_table(swept, checkpoints):
    import pandas as pd

    parallel = sweep(ARCH, checkpoints, layers=LAYERS, jobs=2, **OPTIONS)
    pd.testing.assert_frame_equal(parallel.table, swept.table)


def test_labels_are_short_and_unique():
    assert checkpoint_labels(["run/step_100.pt", "run/step_200.pt"]) == ["step_100", "step_200"]
    assert checkpoint_labels(["a/w.pt", "a/w.safetensors"]) == ["w.pt", "w.safetensors"]
    assert checkpoint_labels(["a/w.pt", "b/w.pt"]) == ["a/w.pt", "b/w.pt"]


def test_sweep_figure_from_plain_data():
    from matplotlib.figure import Figure

    ckpts = ["init", "epoch 1", "epoch 2", "final"]
    layers = ["conv1", "block1", "block2"]
    values = {
        "ari": [[None] * 4, [0.1, 0.2, 0.3, 0.5], [0.0, np.nan, 0.1, 0.2]],
        "p": [[None] * 4, [0.5, 0.01, 1e-4, 1e-5], [1.0, np.nan, 0.2, 0.04]],
        "ncut_z": np.zeros((3, 4)),
    }
    fig = sweep_figure(ckpts, layers, values, "net")
    assert isinstance(fig, Figure)
    axes = [ax for ax in fig.axes if ax.axison]
    assert len(axes) == 3 and axes[1].get_yscale() == "log"
    assert [t.get_text() for t in axes[-1].get_xticklabels()] == ckpts
    # many layers: a colour scale instead of a legend; nothing to draw: says so
    many = [f"layer{i}" for i in range(40)]
    fig = sweep_figure(["a"], many, {"ari": np.full((40, 1), np.nan)})
    assert "no values" in " ".join(t.get_text() for t in fig.axes[0].texts)
    with pytest.raises(ValueError, match="shape"):
        sweep_figure(ckpts, layers, {"ari": np.zeros((2, 4))})
