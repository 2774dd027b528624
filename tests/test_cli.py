import json
import subprocess
import sys

import pytest
import torch
import torchvision

from modularity.cli import main

SMALL = ["alexnet", "--weights", "none", "--layers", "features.0,features.3", "--permutations", "3", "--quiet"]


def test_analyze_writes_summary_figures_and_graph(tmp_path):
    out = tmp_path / "res"
    assert main(["analyze", *SMALL, "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["model"] == "alexnet" and summary["weights"] == "none" and summary["seed"] == 0
    assert [layer["name"] for layer in summary["layers"]] == ["features.0", "features.3"]
    assert (out / "channel_graph.graphml").is_file()
    assert len(list((out / "figures").glob("000_features.0_*.png"))) >= 2


def test_existing_output_is_replaced_whole(tmp_path):
    out = tmp_path / "res"
    out.mkdir()
    (out / "stale.txt").write_text("old")
    assert main(["analyze", *SMALL, "--out", str(out)]) == 0
    assert not (out / "stale.txt").exists() and (out / "summary.json").is_file()


def test_failure_while_writing_leaves_existing_output_untouched(tmp_path, monkeypatch):
    import modularity.outputs

    out = tmp_path / "res"
    out.mkdir()
    (out / "keep.txt").write_text("old")

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(modularity.outputs, "write_results", broken)
    with pytest.raises(RuntimeError):
        main(["analyze", *SMALL, "--out", str(out)])
    assert [p.name for p in tmp_path.iterdir()] == ["res"]
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def test_unknown_model_is_one_line_with_close_names(tmp_path, capsys):
    assert main(["analyze", "googlenett", "--out", str(tmp_path / "o")]) == 2
    assert "did you mean: googlenet" in _error_line(capsys)
    assert not (tmp_path / "o").exists()


def test_layers_matching_nothing_lists_layers_and_writes_nothing(tmp_path, capsys):
    assert main(["analyze", "alexnet", "--layers", "conv9", "--out", str(tmp_path / "o")]) == 2
    assert "available layers: features.0" in _error_line(capsys)
    assert not (tmp_path / "o").exists()


def test_corrupt_weights_file_is_one_line_and_writes_nothing(tmp_path, capsys):
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"\x00" * 100)
    assert main(["analyze", "alexnet", "--weights", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert "bad.pth" in _error_line(capsys)
    assert not (tmp_path / "o").exists()


def test_mismatched_weights_name_the_keys(tmp_path, capsys):
    path = tmp_path / "r18.pth"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), path)
    assert main(["analyze", "alexnet", "--weights", str(path), "--out", str(tmp_path / "o")]) == 2
    line = _error_line(capsys)
    assert "missing" in line and "unexpected" in line and "look like 'resnet18'" in line


def test_models_lists_the_offline_default(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("efficientnet_lite0  [offline: yes")


def test_python_m_modularity_runs():
    proc = subprocess.run([sys.executable, "-m", "modularity", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "analyze" in proc.stdout


def test_offline_default_runs_without_a_model_argument(tmp_path):
    out = tmp_path / "res"
    assert main(["analyze", "--layers", "_conv_stem", "--permutations", "2", "--quiet", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["model"] == "efficientnet_lite0" and summary["weights"] == "DEFAULT"
    assert len(summary["weights_sha256"]) == 64
