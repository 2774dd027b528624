"""Every command and code block of README.md runs, and its layer patterns select what their comments say.

The README is read as it is; what the tests change is said here:

* shell lines (``python -m modularity ...``) run in a fresh process in a temporary folder,
  with ``--permutations 2 --label-permutations 100 --out <tmp>`` appended (argparse takes
  the last value), and with the files they name made there first: ``googlenet.pt`` (a
  random-init state dict), ``squeezenet.onnx`` (torch's export of torchvision's
  SqueezeNet 1.0), ``./vit-tiny`` (a two-layer ViT saved by transformers);
* the two ``python3 -m venv`` lines are not run (they install): they must be the CI
  command and the default run exactly;
* Python blocks run in a temporary folder with ``n_permutations=N`` replaced by
  ``n_permutations=2, n_label_permutations=100``;
* a comment naming a count beside a layer pattern (``--layers 'inception??'  # ... the 9
  Inception blocks``) is checked against the layers the pattern selects: in the fast
  lane on the traced architecture, in the slow lane on the written ``summary.json``.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
CI_COMMAND = ("python3 -m venv .venv && .venv/bin/pip install -q -r requirements-test.txt -e . && "
              ".venv/bin/python -m pytest -q")
DEFAULT_RUN = ("python3 -m venv .venv && .venv/bin/pip install -r requirements.txt -e . && "
               ".venv/bin/python -m modularity analyze")
SMALL = ["--permutations", "2", "--label-permutations", "100"]
_FENCE = re.compile(r"^```(\w*)\s*$")


def blocks(language: str) -> list[str]:
    """The README's fenced blocks in ``language``, in order."""
    out, current, lang = [], None, None
    for line in README.read_text(encoding="utf-8").splitlines():
        m = _FENCE.match(line)
        if current is None and m:
            current, lang = [], m.group(1)
        elif current is not None and line.startswith("```"):
            if lang == language:
                out.append("\n".join(current))
            current = None
        elif current is not None:
            current.append(line)
    return out


def shell_lines() -> list[str]:
    return [line.strip() for block in blocks("bash") for line in block.splitlines() if line.strip()]


def commands() -> list[str]:
    """The ``python -m modularity`` lines (the install lines are checked, not run)."""
    return [line for line in shell_lines() if line.startswith("python -m modularity")]


def _count(comment: str) -> int | None:
    m = re.search(r"\b(\d+)\b", comment)
    return int(m.group(1)) if m else None


def _split(line: str) -> tuple[list[str], str]:
    """A shell line's arguments and its comment."""
    code, _, comment = line.partition("  #")
    return shlex.split(code), comment


def _option(args: list[str], name: str) -> str | None:
    return args[args.index(name) + 1] if name in args else None


def test_the_install_lines_are_the_ci_command_and_the_default_run():
    installs = [line for line in shell_lines() if line.startswith("python3 -m venv")]
    assert installs == [DEFAULT_RUN, CI_COMMAND]
    ci = (ROOT / ".ci" / "run")
    if ci.is_file():
        assert "pytest -q" in ci.read_text()


def test_the_testing_paragraph_names_the_fast_lane():
    assert 'python -m pytest -q -m "not slow"' in README.read_text(encoding="utf-8")


def test_every_line_of_every_shell_block_is_an_install_line_or_a_command():
    assert all(line.startswith(("python3 -m venv", "python -m modularity")) for line in shell_lines())
    assert len(commands()) >= 6  # one per model source


def test_the_readme_has_the_commands_of_each_model_source():
    models = [_split(line)[0][4] for line in commands() if _split(line)[0][3] == "analyze"]
    assert any(m.startswith("timm/") for m in models)
    assert any(m.endswith(".onnx") for m in models)
    assert any(m.startswith(("./", "hf/")) for m in models)
    assert any(_option(_split(line)[0], "--weights") not in (None, "none", "DEFAULT") for line in commands())
    assert "googlenet" in models and "efficientnet_lite0" in models


def _pattern_counts() -> list[tuple[str, str, int]]:
    """(architecture, pattern, count) of every README layer pattern whose comment names a count."""
    found = []
    for line in commands():
        args, comment = _split(line)
        pattern, n = _option(args, "--layers"), _count(comment)
        if pattern and n is not None:
            found.append((args[4], pattern, n))
    for block in blocks("python"):
        model = re.search(r'load_model\("([^"]+)"\)', block)
        for line in block.splitlines():
            m = re.search(r'layers="([^"]+)".*#(.*)$', line)
            if m and model and _count(m.group(2)) is not None:
                found.append((model.group(1), m.group(1), _count(m.group(2))))
    return found


def test_layer_pattern_comments_name_what_the_patterns_select():
    """Checked on the architectures (random init; a file's architecture where a command names one)."""
    import modularity
    from modularity.analysis import select_layers

    checked = 0
    graphs = {}
    for model, pattern, n in _pattern_counts():
        if model.endswith(".onnx"):
            continue  # an exported file: checked by the slow test on what the run wrote
        if model.startswith("timm/"):
            pytest.importorskip("timm")
        if model not in graphs:
            loaded = modularity.load_model(model, weights="none")
            graphs[model] = modularity.trace(loaded.module, input_size=loaded.input_size)
        assert len(select_layers(graphs[model], pattern)) == n, (model, pattern)
        checked += 1
    assert checked >= 4


# -- the slow lane: run them -------------------------------------------------------------------------------------

def _env() -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env.setdefault(var, "1")
    return env


def _make_inputs(folder: Path, args: list[str]) -> None:
    """The files a README command names, made as the module docstring says."""
    import torch

    if "googlenet.pt" in args:
        import modularity

        torch.save(modularity.load_model("googlenet").module.state_dict(), folder / "googlenet.pt")
    if "squeezenet.onnx" in args:
        import torchvision

        model = torchvision.models.squeezenet1_0(weights=None).eval()
        torch.onnx.export(model, (torch.randn(1, 3, 224, 224),), str(folder / "squeezenet.onnx"), dynamo=False,
                          opset_version=13)
    if "./vit-tiny" in args:
        transformers = pytest.importorskip("transformers")
        config = transformers.ViTConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                        intermediate_size=64, image_size=32, patch_size=8)
        torch.manual_seed(0)
        transformers.ViTModel(config).save_pretrained(folder / "vit-tiny")


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, *args], cwd=cwd, env=_env(), capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.mark.slow
@pytest.mark.parametrize("line", commands())
def test_each_readme_command_runs(line, tmp_path):
    args, comment = _split(line)
    if args[4].startswith("timm/"):
        pytest.importorskip("timm")
    _make_inputs(tmp_path, args)
    out = tmp_path / "out"
    _run(args[1:] + SMALL + ["--out", str(out)], tmp_path)
    summary = json.loads((out / "summary.json").read_text())
    n = _count(comment)
    if _option(args, "--layers") and n is not None:
        assert len(summary["layers"]) == n, [layer["name"] for layer in summary["layers"]]
    assert (out / "report.html").is_file()


@pytest.mark.slow
def test_the_default_run_writes_the_folder_the_readme_shows(tmp_path):
    out = tmp_path / "out"
    proc = _run(["-m", "modularity", "analyze", *SMALL, "--out", str(out)], tmp_path)
    text = README.read_text(encoding="utf-8")
    first = proc.stdout.splitlines()[0]
    assert first.split(" in ")[0] in text  # "efficientnet_lite0 (DEFAULT): 49 layers"
    for name in ("report.html", "report.pdf", "summary.json", "arrays.npz", "layers.csv", "units.csv",
                 "comparison.csv", "control_layers.csv", "unit_graph.graphml.gz", ".modularity-results"):
        assert (out / name).is_file() and name in text, name
    assert (out / "figures" / "layers").is_dir() and any(out.glob("channel_graph.*"))


@pytest.mark.slow
@pytest.mark.parametrize("index", range(len(blocks("python"))))
def test_each_python_block_runs(index, tmp_path, monkeypatch):
    code = re.sub(r"n_permutations=\d+", "n_permutations=2, n_label_permutations=100", blocks("python")[index])
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(code, f"README.md python block {index}", "exec"), namespace)
    for line in blocks("python")[index].splitlines():
        m = re.match(r"\s*(\w+) = .*#\s*(\w+\(.*), \.\.\.\)\s*$", line)  # a comment showing the repr's start
        if m:
            assert repr(namespace[m.group(1)]).startswith(m.group(2)), repr(namespace[m.group(1)])
        m = re.match(r'\s*(\w+) = modularity\.analyze\(.*layers="[^"]+".*#(.*)$', line)
        if m and _count(m.group(2)) is not None:
            assert len(namespace[m.group(1)].layers) == _count(m.group(2))
