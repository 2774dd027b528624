import json
import subprocess
import sys

import pytest
import torch
import torchvision

from modularity.cli import main

SMALL = ["alexnet", "--weights", "none", "--layers", "features.0,features.3", "--permutations", "3", "--quiet"]


@pytest.fixture
def cheap(monkeypatch):
    """Write only summary.json and arrays.npz: the folder logic under test does not need figures or reports."""
    import modularity.pipeline as pipeline
    from modularity.arrays import figure_arrays
    from modularity.output.figures import save_arrays

    def write(result, graph, folder, **kwargs):
        result.save(folder / "summary.json")
        save_arrays(figure_arrays(graph, result, pipeline.profiles_of(graph, result)), folder / "arrays.npz")

    monkeypatch.setattr(pipeline, "write_results", write)


@pytest.mark.slow
def test_analyze_writes_summary_figures_and_graph(tmp_path):
    out = tmp_path / "res"
    assert main(["analyze", *SMALL, "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["model"] == "alexnet" and summary["weights"] == "none" and summary["settings"]["seed"] == 0
    assert [layer["name"] for layer in summary["layers"]] == ["features.0", "features.3"]
    assert (out / "channel_graph.graphml").is_file()
    assert len(list((out / "figures").glob("000_features.0_*.png"))) >= 2


@pytest.mark.slow
def test_a_previous_results_folder_is_replaced_whole_but_not_over_a_users_file(cheap, tmp_path, capsys):
    out = tmp_path / "res"
    assert main(["analyze", *SMALL, "--out", str(out)]) == 0
    assert main(["analyze", *SMALL, "--seed", "1", "--out", str(out)]) == 0
    assert json.loads((out / "summary.json").read_text())["settings"]["seed"] == 1
    (out / "notes.txt").write_text("mine")
    assert main(["analyze", *SMALL, "--seed", "2", "--out", str(out)]) == 2
    assert "notes.txt" in _error_line(capsys) and (out / "notes.txt").read_text() == "mine"
    assert json.loads((out / "summary.json").read_text())["settings"]["seed"] == 1


def test_a_folder_with_user_files_is_refused_before_any_work(tmp_path, capsys, monkeypatch):
    import modularity.pipeline

    out = tmp_path / "d"
    out.mkdir()
    (out / "important.txt").write_text("precious")
    monkeypatch.setattr(modularity.pipeline, "load_model", lambda *a, **k: pytest.fail("work started"))
    assert main(["analyze", *SMALL, "--out", str(out)]) == 2
    assert "other files" in _error_line(capsys)
    assert (out / "important.txt").read_text() == "precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]


def test_the_current_folder_is_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine.txt").write_text("x")
    for target in (".", str(tmp_path), ".."):
        assert main(["analyze", *SMALL, "--out", target]) == 2
        assert "current folder" in _error_line(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.txt"]


def test_an_empty_folder_is_filled(cheap, tmp_path):
    out = tmp_path / "empty"
    out.mkdir()
    assert main(["analyze", *SMALL, "--out", str(out)]) == 0
    assert (out / "summary.json").is_file()


def test_a_file_as_out_is_refused(tmp_path, capsys):
    target = tmp_path / "file.txt"
    target.write_text("keep")
    assert main(["analyze", *SMALL, "--out", str(target)]) == 2
    assert "not a folder" in _error_line(capsys)
    assert target.read_text() == "keep"


def test_stale_partial_folders_of_dead_runs_are_removed_and_live_ones_kept(cheap, tmp_path):
    from modularity.folders import PARTIAL_TAG

    out = tmp_path / "res"
    dead = tmp_path / f".res{PARTIAL_TAG}999999999-abc"  # no such pid
    dead.mkdir()
    alive = tmp_path / f".res{PARTIAL_TAG}1-abc"  # pid 1 always exists
    alive.mkdir()
    other = tmp_path / f".other{PARTIAL_TAG}999999999-abc"
    other.mkdir()
    assert main(["analyze", *SMALL, "--out", str(out)]) == 0
    assert not dead.exists() and alive.exists() and other.exists()


@pytest.mark.slow
def test_report_refuses_a_partial_folder(cheap, tmp_path, capsys):
    out = tmp_path / "res"
    assert main(["analyze", *SMALL, "--out", str(out)]) == 0
    from modularity.folders import MARKER

    (out / MARKER).unlink()  # what a killed run's temporary folder looks like
    assert main(["report", str(out), "--quiet"]) == 2
    assert "not a complete results folder" in _error_line(capsys)


def test_report_rebuilds_in_place_atomically(cheap, tmp_path, monkeypatch):
    import modularity.rebuilding

    out = tmp_path / "res"
    assert main(["analyze", *SMALL, "--out", str(out)]) == 0
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(modularity.rebuilding, "rebuild_report", broken)
    with pytest.raises(RuntimeError):
        main(["report", str(out), "--quiet"])
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before and sorted(p.name for p in tmp_path.iterdir()) == ["res"]


@pytest.mark.slow
def test_sigterm_while_writing_removes_the_temporary_folder(tmp_path):
    import signal
    import time

    out = tmp_path / "res"
    args = ["analyze", *SMALL, "--out", str(out)]
    code = ("import time, modularity.pipeline as o; o.write_results = lambda *a, **k: time.sleep(120); "
            f"from modularity.cli import main; raise SystemExit(main({args!r}))")
    proc = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not any(tmp_path.iterdir()):
        time.sleep(0.1)
    assert any(tmp_path.iterdir()), "the run never started writing"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_failure_while_writing_leaves_existing_output_untouched(cheap, tmp_path, monkeypatch):
    import modularity.pipeline

    out = tmp_path / "res"
    assert main(["analyze", *SMALL, "--out", str(out)]) == 0
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(modularity.pipeline, "write_results", broken)
    with pytest.raises(RuntimeError):
        main(["analyze", *SMALL, "--out", str(out)])
    assert [p.name for p in tmp_path.iterdir()] == ["res"]
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


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


@pytest.mark.slow
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


@pytest.mark.slow
def test_python_m_modularity_runs():
    proc = subprocess.run([sys.executable, "-m", "modularity", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "analyze" in proc.stdout


@pytest.mark.slow
def test_offline_default_runs_without_a_model_argument(tmp_path):
    out = tmp_path / "res"
    assert main(["analyze", "--layers", "_conv_stem", "--permutations", "2", "--quiet", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["model"] == "efficientnet_lite0" and summary["weights"] == "DEFAULT"
    assert len(summary["weights_sha256"]) == 64


def test_help_and_version_do_not_import_torch():
    code = ("import sys, contextlib, io\nfrom modularity.cli import main\n"
            "for argv in (['--help'], ['--version'], ['analyze', '--help']):\n"
            "    with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
            "        main(argv)\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\nprint('ok')")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


@pytest.mark.parametrize("args, message", [
    (["--seed", "-1"], "seed (--seed) must be an integer from 0"),
    (["--input-size", "-5", "-5"], "input_size (--input-size) must be two integers (height, width), each from 8"),
    (["--k", "1"], "k (--k) must be an integer from 2 to"),
    (["--jobs", "-3"], "jobs (--jobs) must be an integer from 0"),
    (["--permutations", str(10**9)], "n_permutations (--permutations) must be an integer from 0 to 100000"),
    (["--label-permutations", str(10**12)], "n_label_permutations (--label-permutations) must be an integer"),
    (["--layers", ""], "layers (--layers) must be comma-separated shell globs"),
    (["--layers", "//"], "layers (--layers) must be comma-separated shell globs"),
    (["--layers", "/(/"], "not a valid regular expression"),
    (["--method", "bogus"], "argument --method: invalid choice: 'bogus'"),
    (["--nope"], "unrecognized arguments: --nope"),
])
def test_bad_arguments_are_one_error_line_with_status_2(args, message, capsys):
    """Refused while parsing (argparse) or when the settings are made: before torch is imported or anything loaded."""
    try:
        code = main(["analyze", "alexnet", *args])
    except SystemExit as stop:
        code = stop.code
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith("error: ") and message in err


@pytest.mark.slow
def test_the_same_command_twice_gives_the_same_summary_but_for_timing(cheap, tmp_path):
    out = tmp_path / "a"
    args = ["analyze", "googlenet", "--layers", "inception3a", "--permutations", "4", "--label-permutations",
            "1000", "--quiet", "--input-size", "64", "64", "--out", str(out)]
    assert main(args) == 0
    first = json.loads((out / "summary.json").read_text())
    assert main(args) == 0
    second = json.loads((out / "summary.json").read_text())
    for d in (first, second):
        d.pop("runtime_s")
    assert first == second and len(first["weights_sha256"]) == 64


@pytest.mark.slow
def test_unit_graph_top_k_is_recorded_and_zero_writes_every_connection(tmp_path):
    import networkx as nx

    out = tmp_path / "res"
    assert main(["analyze", *SMALL, "--unit-graph-top-k", "2", "--out", str(out)]) == 0
    # the unit graph is written as gzipped GraphML (networkx and Gephi read it as it is)
    assert nx.read_graphml(out / "unit_graph.graphml.gz").graph["top_k"] == 2
    full = tmp_path / "full"
    assert main(["analyze", *SMALL, "--unit-graph-top-k", "0", "--out", str(full)]) == 0
    g = nx.read_graphml(full / "unit_graph.graphml.gz")
    assert not (full / "unit_graph.graphml").exists() and not (out / "unit_graph.graphml").exists()
    assert g.number_of_edges() > nx.read_graphml(out / "unit_graph.graphml.gz").number_of_edges()


def test_quiet_prints_nothing_on_stderr(cheap, tmp_path, capsys):
    out = tmp_path / "res"
    assert main(["analyze", "squeezenet1_1", "--layers", "features.0", "--permutations", "2", "--label-permutations",
                 "100", "--input-size", "64", "64", "--quiet", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""
    assert (out / "summary.json").is_file()


@pytest.mark.parametrize("command", [["analyze", *SMALL], ["sweep", "alexnet", "none", "--permutations", "3",
                                                           "--quiet"]])
def test_device_cuda_without_a_gpu_is_refused_before_loading(tmp_path, capsys, monkeypatch, command):
    import modularity.pipeline

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(modularity.pipeline, "load_model", lambda *a, **k: pytest.fail("work started"))
    out = tmp_path / "d"
    assert main([*command, "--device", "cuda", "--out", str(out)]) == 2
    assert "no CUDA GPU" in _error_line(capsys)
    assert not out.exists()
