"""Argument errors are answered before loading: one ``error:`` line, exit status 2, nothing written, no torch.

The torch-free errors run in one child process (importing torch there would
be the failure under test), each through :func:`modularity.cli.main`, with
``sys.modules`` read after each.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from modularity.cli import main

# (case id, arguments, words the error line must hold); {tmp} is a folder with a file 'afile' and nothing else.
TORCH_FREE = [
    ("unknown-model", ["analyze", "nosuchmodel"], "unknown model 'nosuchmodel'"),
    ("close-name", ["analyze", "alexnett"], "did you mean: alexnet"),
    ("out-is-a-file", ["analyze", "alexnet", "--out", "{tmp}/afile"], "exists and is not a folder"),
    ("out-is-empty", ["analyze", "alexnet", "--out", " "], "--out is empty"),
    ("missing-weights", ["analyze", "alexnet", "--weights", "{tmp}/missing.pt"], "weights file not found"),
    ("weights-not-a-checkpoint", ["analyze", "alexnet", "--weights", "{tmp}/afile"], "not a PyTorch checkpoint"),
    ("weights-a-folder", ["analyze", "alexnet", "--weights", "{tmp}"], "is a folder, not a file"),
    ("bad-method", ["analyze", "alexnet", "--method", "bogus"], "invalid choice: 'bogus'"),
    ("bad-null", ["analyze", "alexnet", "--null", "bogus"], "invalid choice: 'bogus'"),
    ("bad-regex", ["analyze", "alexnet", "--layers", "/(/"], "layers"),
    ("timm-unknown", ["analyze", "timm/nosuchmodel"], "unknown timm model 'nosuchmodel'"),
    ("hf-not-cached", ["analyze", "hf/nosuchorg/nosuchmodel"], "is not in the Hugging Face cache"),
    ("hf-bad-id", ["analyze", "hf/x"], "is not a Hugging Face repository id"),
    ("missing-onnx", ["analyze", "{tmp}/model.onnx"], "ONNX file not found"),
    ("control-of-random", ["analyze", "alexnet", "--control", "random-init"], "already random"),
    ("clusterability-unknown", ["clusterability", "nosuchmodel"], "unknown model 'nosuchmodel'"),
    ("sweep-unknown-arch", ["sweep", "nosuchmodel", "none"], "unknown model 'nosuchmodel'"),
    ("sweep-missing-checkpoint", ["sweep", "alexnet", "{tmp}/missing.pt"], "weights file not found"),
    ("report-missing", ["report", "{tmp}/nosuchfolder"], "results folder not found"),
    ("report-not-results", ["report", "{tmp}"], "not a complete results folder"),
]

_CHILD = textwrap.dedent("""
    import contextlib, io, json, sys
    from modularity.cli import main
    out = []
    for args in json.loads(sys.argv[1]):
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            try:
                rc = main(args)
            except SystemExit as exc:  # argparse exits
                rc = exc.code
        out.append({"rc": rc, "stderr": err.getvalue(), "torch": "torch" in sys.modules})
    print(json.dumps(out))
""")


@pytest.fixture(scope="module")
def refused(tmp_path_factory):
    """Every TORCH_FREE case run in one fresh interpreter; its working folder and ``{tmp}`` are left to check."""
    tmp = tmp_path_factory.mktemp("preflight")
    (tmp / "afile").write_text("hi\n")
    cwd = tmp_path_factory.mktemp("cwd")
    cases = [[a.replace("{tmp}", str(tmp)) for a in args] for _, args, _ in TORCH_FREE]
    proc = subprocess.run([sys.executable, "-c", _CHILD, json.dumps(cases)], capture_output=True, text=True,
                          cwd=cwd, timeout=120, env=_env())
    assert proc.returncode == 0, proc.stderr
    return dict(zip((c[0] for c in TORCH_FREE), json.loads(proc.stdout))), tmp, cwd


def _env() -> dict[str, str]:
    import os

    root = str(Path(__file__).resolve().parents[1])
    return {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}


@pytest.mark.parametrize("case, args, words", TORCH_FREE, ids=[c[0] for c in TORCH_FREE])
def test_an_argument_error_is_one_line_exit_2_without_torch(refused, case, args, words):
    results, _, _ = refused
    got = results[case]
    assert got["rc"] == 2
    lines = got["stderr"].splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], got["stderr"]
    assert not got["torch"], f"{case}: torch was imported before the error"


def test_refused_arguments_write_nothing(refused):
    _, tmp, cwd = refused
    assert sorted(p.name for p in tmp.iterdir()) == ["afile"]
    assert list(cwd.iterdir()) == []  # no default results/ folder either


def test_an_unknown_model_is_refused_in_well_under_a_second(tmp_path):
    import time

    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "modularity", "analyze", "nosuchmodel"], capture_output=True,
                          text=True, cwd=tmp_path, timeout=60, env=_env())
    elapsed = time.perf_counter() - start
    assert proc.returncode == 2 and proc.stderr.startswith("error: unknown model")
    assert elapsed < 5, f"{elapsed:.1f} s"  # 0.3 s measured; importing torch alone takes longer than 5 s here


def test_layers_matching_nothing_are_refused_after_tracing_before_any_layer_is_analysed(tmp_path, capsys,
                                                                                           monkeypatch):
    import modularity.analysis.model as model

    monkeypatch.setattr(model, "analyze_layer", lambda *a, **k: pytest.fail("a layer was analysed"))
    out = tmp_path / "res"
    assert main(["analyze", "squeezenet1_1", "--layers", "nomatch*", "--input-size", "64", "64", "--quiet", "--out",
                 str(out)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "matches no layer; available layers: features.0" in err[0]
    assert not out.exists()
