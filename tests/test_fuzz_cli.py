"""Fuzz the command line with a generated corpus of bad inputs.

Every case must be refused the same way: exit status 2, exactly one stderr
line, starting with ``error:``, no traceback, no file left behind in the
working folder and no existing file changed (the whole tmp tree is hashed
before and after). The corpus covers corrupt, truncated and adversarial weights
and ONNX files (including pickles carrying code, which must never run), tampered
results folders for ``report``, and bad arguments.

Cases run in-process through :func:`modularity.cli.main` (fast); a few run as
real subprocesses, to see what a user sees. Families that load a torchvision
model are marked slow; the tampered-folder families share one results folder
of a tiny planted network (no model load, no figures: every case is refused
before drawing), so they run in the fast lane.

argparse usage errors (an unknown flag, a value that is not an int, a bad
choice, a missing argument) print two lines by default, ``usage: ...`` and
``modularity <cmd>: error: ...``; the CLI turns them into one ``error:`` line
with status 2 (raised as ``SystemExit``, which the in-process runner reads).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import pickle
import re
import resource
import shutil
import struct
import subprocess
import sys
import zipfile
from collections.abc import Callable
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import torch

from modularity.cli import main

# Loads in well under a second and fails before any analysis for a bad weights file.
ARCH = "squeezenet1_1"
SMALL = ["--layers", "features.0", "--permutations", "2", "--quiet"]
MARKER_NAME = "CODE_RAN"


def _light(stem: str) -> Path:
    return Path(str(resources.files("onnx") / "backend" / "test" / "data" / "light" / f"{stem}.onnx"))


# -- snapshots and running ----------------------------------------------------------------------------------------

def _tree(root: Path) -> dict[str, str]:
    """Every path under ``root`` with its content hash (folders as 'dir', links as their target)."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if p.is_symlink():
            out[rel] = "link:" + os.readlink(p)
        elif p.is_dir():
            out[rel] = "dir"
        elif p.is_file():
            with open(p, "rb") as fh:  # streamed: the 1 GiB sparse summary case held it twice in memory
                h = hashlib.sha256()
                for chunk in iter(lambda: fh.read(1 << 22), b""):
                    h.update(chunk)
            out[rel] = h.hexdigest()
        else:
            out[rel] = "special"
    return out


def _run_in_process(argv: list[str], cwd: Path, capsys, monkeypatch) -> tuple[int, str]:
    monkeypatch.chdir(cwd)
    capsys.readouterr()
    try:
        status = main(argv)
    except SystemExit as exc:  # argparse usage errors
        status = exc.code if isinstance(exc.code, int) else 1
    except Exception as exc:  # would be a traceback on the command line
        _, err = capsys.readouterr()
        return 1, err + f"Traceback (in-process): {type(exc).__name__}: {exc}\n"
    _, err = capsys.readouterr()
    return status, err


def _limit_memory() -> None:  # pragma: no cover - runs in the child
    resource.setrlimit(resource.RLIMIT_AS, (6 << 30, 6 << 30))


def _run_subprocess(argv: list[str], cwd: Path) -> tuple[int, str]:
    proc = subprocess.run([sys.executable, "-m", "modularity", *argv], cwd=cwd, capture_output=True, text=True,
                          timeout=300, preexec_fn=_limit_memory)
    return proc.returncode, proc.stderr


def _assert_refused_cleanly(status: int, err: str, before: dict, after: dict, cwd: Path) -> None:
    assert not (cwd / MARKER_NAME).exists(), "code pickled in a weights file ran"
    assert after == before, f"files changed or left behind: {sorted(set(after.items()) ^ set(before.items()))[:6]}"
    assert "Traceback" not in err, err[-2000:]
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), f"stderr is not one 'error:' line: {err[-2000:]!r}"
    assert not re.search("[\x00-\x1f\x7f-\x9f\u2028\u2029]", err.strip()), f"raw control characters: {err!r}"
    assert status == 2


# -- corpus: weights files ----------------------------------------------------------------------------------------

class _Evil:
    """Unpickling this creates a marker file: it must never happen."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def _small_state() -> dict[str, torch.Tensor]:
    return {"features.0.weight": torch.randn(64, 3, 3, 3), "features.0.bias": torch.randn(64)}


def _zip_pth(tmp: Path) -> bytes:
    torch.save(_small_state(), tmp / ".src.pth")
    data = (tmp / ".src.pth").read_bytes()
    (tmp / ".src.pth").unlink()
    return data


def _safetensors_bytes(tmp: Path, state=None) -> bytes:
    from safetensors.torch import save_file

    save_file(state or _small_state(), str(tmp / ".src.safetensors"))
    data = (tmp / ".src.safetensors").read_bytes()
    (tmp / ".src.safetensors").unlink()
    return data


def _analyze_weights(name: str, make: Callable[[Path], bytes | None]) -> Callable[[Path], list[str]]:
    """A case: ``analyze squeezenet1_1 --weights <name>``, where ``make`` writes the file (or returns its bytes)."""
    def setup(tmp: Path) -> list[str]:
        data = make(tmp / name)
        if data is not None:
            (tmp / name).write_bytes(data)
        return ["analyze", ARCH, "--weights", name, *SMALL, "--out", "out"]
    return setup


def _analyze_onnx(name: str, make: Callable[[Path], bytes | None], extra: tuple[str, ...] = ()):
    """A case: ``analyze <name>.onnx``."""
    def setup(tmp: Path) -> list[str]:
        data = make(tmp / name)
        if data is not None:
            (tmp / name).write_bytes(data)
        return ["analyze", name, *extra, "--layers", "conv1", "--permutations", "2", "--quiet", "--out", "out"]
    return setup


def _half(data: bytes) -> bytes:
    return data[: len(data) // 2]


def _random(n: int = 4096, seed: int = 0) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


def _garbage_zip(path: Path, members: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)


def _evil_legacy(path: Path) -> None:
    with open(path, "wb") as fh:
        pickle.dump({"features.0.weight": _Evil(str(path.parent / MARKER_NAME))}, fh)


def _evil_zip(path: Path) -> None:
    torch.save({"features.0.weight": _Evil(str(path.parent / MARKER_NAME))}, path)


def _evil_in_wrapper(path: Path) -> None:
    torch.save({"state_dict": _small_state(), "hook": _Evil(str(path.parent / MARKER_NAME))}, path)


def _nan_pth(path: Path) -> None:
    state = _small_state()
    state["features.0.weight"][0, 0, 0, :3] = float("nan")
    torch.save(state, path)


def _inf_safetensors(path: Path) -> bytes:
    state = _small_state()
    state["features.0.bias"][5] = float("inf")
    return _safetensors_bytes(path.parent, state)


def _complex_pth(path: Path) -> None:
    torch.save({"features.0.weight": torch.zeros(64, 3, 3, 3, dtype=torch.complex64)}, path)


def _complex_safetensors(path: Path) -> bytes:
    return _safetensors_bytes(path.parent, {"features.0.weight": torch.zeros(64, 3, 3, 3, dtype=torch.complex64)})


def _squeezenet_state() -> dict[str, torch.Tensor]:
    import torchvision

    return torchvision.models.squeezenet1_1(weights=None).state_dict()


def _wrong_shape(path: Path) -> None:
    import torchvision

    state = torchvision.models.squeezenet1_1(weights=None).state_dict()
    state["features.0.weight"] = torch.zeros(32, 3, 3, 3)
    torch.save(state, path)


def _non_tensor(path: Path) -> None:
    torch.save({"features.0.weight": [1.0, 2.0], "features.0.bias": "zero"}, path)


def _safetensors_header(header: dict, data: bytes = b"\0" * 8) -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + data


def _huge_shape(path: Path) -> bytes:
    return _safetensors_header({"features.0.weight": {"dtype": "F32", "shape": [1 << 20, 1 << 20, 1 << 10],
                                                      "data_offsets": [0, 8]}})


def _huge_header(path: Path) -> bytes:
    return struct.pack("<Q", 1 << 62) + b'{"a":' + b"\0" * 32


def _legacy_huge_storage(path: Path) -> bytes:
    """A legacy-format checkpoint whose storage declares 2**31 - 1 floats (8 GB) but holds 123457."""
    torch.save({"features.0.weight": torch.zeros(123457)}, path, _use_new_zipfile_serialization=False)
    data = path.read_bytes()
    numel = b"J" + struct.pack("<i", 123457)  # pickle BININT
    assert numel in data
    return data.replace(numel, b"J" + struct.pack("<i", 2 ** 31 - 1))


def _mkdir(path: Path) -> None:
    path.mkdir()


def _light_bytes(stem: str) -> Callable[[Path], bytes]:
    return lambda path: _light(stem).read_bytes()


# -- corpus: ONNX files -------------------------------------------------------------------------------------------

def _onnx_model(nodes, inits, in_shape=(1, 3, 16, 16)) -> bytes:
    from onnx import TensorProto, helper

    graph = helper.make_graph(nodes, "fuzz", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(in_shape))],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]).SerializeToString()


def _f32(name: str, arr) -> object:
    from onnx import numpy_helper

    return numpy_helper.from_array(np.asarray(arr, np.float32), name)


def _onnx_nan(path: Path) -> bytes:
    from onnx import helper

    w = np.ones((4, 3, 3, 3), np.float32)
    w[1, 1, 1, 1] = np.nan
    return _onnx_model([helper.make_node("Conv", ["x", "conv1_w"], ["y"])], [_f32("conv1_w", w)])


def _onnx_no_layers(path: Path) -> bytes:
    from onnx import helper

    return _onnx_model([helper.make_node("Relu", ["x"], ["y"])], [])


def _onnx_unsupported(path: Path) -> bytes:
    from onnx import helper

    return _onnx_model([helper.make_node("Conv", ["x", "conv1_w"], ["c"]), helper.make_node("Erf", ["c"], ["y"])],
                       [_f32("conv1_w", np.ones((4, 3, 1, 1)))])


def _onnx_huge_constant(path: Path) -> bytes:
    from onnx import helper, numpy_helper

    shape = numpy_helper.from_array(np.array([1 << 16, 1 << 16, 3, 3], np.int64), "shape")
    return _onnx_model([helper.make_node("ConstantOfShape", ["shape"], ["conv1_w"]),
                        helper.make_node("Conv", ["x", "conv1_w"], ["y"])], [shape])


def _onnx_huge_input(path: Path) -> bytes:
    from onnx import helper

    return _onnx_model([helper.make_node("Conv", ["x", "conv1_w"], ["y"])], [_f32("conv1_w", np.ones((4, 3, 1, 1)))],
                       in_shape=(1, 3, 1 << 20, 1 << 20))


def _onnx_wrong_weight(path: Path) -> bytes:
    from onnx import helper

    return _onnx_model([helper.make_node("Conv", ["x", "conv1_w"], ["y"])], [_f32("conv1_w", np.ones((4, 7, 3, 3)))])


def _onnx_variant(nodes=None, inits=None, in_shape=(1, 3, 16, 16), opset=13, name="conv1") -> Callable[[Path], bytes]:
    """A small ONNX model with one thing wrong (defaults: one valid 1x1 conv)."""
    def make(path: Path) -> bytes:
        from onnx import TensorProto, helper

        conv = helper.make_node("Conv", ["x", "conv1_w"], ["y"], name=name)
        graph = helper.make_graph(nodes() if nodes else [conv], "fuzz",
                                  [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(in_shape))],
                                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                                  inits() if inits else [_f32("conv1_w", np.ones((4, 3, 1, 1)))])
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]).SerializeToString()
    return make


def _nodes(*specs):
    """Nodes from (op, inputs, outputs, attributes) tuples."""
    from onnx import helper

    return lambda: [helper.make_node(op, ins, outs, name=f"n{i}", **attrs) for i, (op, ins, outs, attrs) in
                    enumerate(specs)]


_EVIL_NAME = "evil\n\x1b[31mred\x1b[0m\r\x07\u2028node"


def _onnx_with_weights(tmp: Path) -> list[str]:
    shutil.copy(_light("light_squeezenet"), tmp / "m.onnx")
    torch.save(_small_state(), tmp / "other.pth")
    return ["analyze", "m.onnx", "--weights", "other.pth", *SMALL, "--out", "out"]


def _onnx_as_weights(tmp: Path) -> list[str]:
    shutil.copy(_light("light_squeezenet"), tmp / "m.onnx")
    return ["analyze", ARCH, "--weights", "m.onnx", *SMALL, "--out", "out"]


def _pth_as_model(tmp: Path) -> list[str]:
    torch.save(_small_state(), tmp / "w.pth")
    return ["analyze", "w.pth", *SMALL, "--out", "out"]


def _long_weights_name(tmp: Path) -> list[str]:
    return ["analyze", ARCH, "--weights", "w" * 5000 + ".pth", *SMALL, "--out", "out"]


def _missing_weights(tmp: Path) -> list[str]:
    return ["analyze", ARCH, "--weights", "nope.pth", *SMALL, "--out", "out"]


WEIGHTS_CASES = {
    # .pth / .pt / .safetensors as --weights
    "pth-truncated": _analyze_weights("w.pth", lambda p: _half(_zip_pth(p.parent))),
    "pt-truncated-tail": _analyze_weights("w.pt", lambda p: _zip_pth(p.parent)[:-30]),
    "safetensors-truncated": _analyze_weights("w.safetensors", lambda p: _half(_safetensors_bytes(p.parent))),
    "pth-random": _analyze_weights("w.pth", lambda p: _random()),
    "pt-random-pickle-magic": _analyze_weights("w.pt", lambda p: b"\x80\x02" + _random(seed=1)),
    "safetensors-random": _analyze_weights("w.safetensors", lambda p: _random(seed=2)),
    "pth-zeros": _analyze_weights("w.pth", lambda p: bytes(4096)),
    "safetensors-zeros": _analyze_weights("w.safetensors", lambda p: bytes(4096)),
    "pth-empty": _analyze_weights("w.pth", lambda p: b""),
    "safetensors-empty": _analyze_weights("w.safetensors", lambda p: b""),
    "pth-zip-garbage": _analyze_weights("w.pth", lambda p: _garbage_zip(p, {"readme.txt": b"hello"})),
    "pth-zip-garbage-datapkl": _analyze_weights(
        "w.pth", lambda p: _garbage_zip(p, {"archive/data.pkl": _random(256), "archive/data/0": _random(64)})),
    "pth-zip-torchscript-layout": _analyze_weights(
        "w.pt", lambda p: _garbage_zip(p, {"m/data.pkl": b"", "m/constants.pkl": b"", "m/code/m.py": b"x"})),
    "pth-pickle-code-legacy": _analyze_weights("w.pth", _evil_legacy),
    "pt-pickle-code-zip": _analyze_weights("w.pt", _evil_zip),
    "pth-pickle-code-in-wrapper": _analyze_weights("w.pth", _evil_in_wrapper),
    "safetensors-pickle-code": _analyze_weights("w.safetensors", _evil_legacy),
    "pth-float8": _analyze_weights("w.pth", lambda p: torch.save(
        {k: v.to(torch.float8_e4m3fn) for k, v in _squeezenet_state().items()}, p)),
    "safetensors-float8": _analyze_weights("w.safetensors", lambda p: _safetensors_bytes(
        p.parent, {k: v.to(torch.float8_e5m2) for k, v in _squeezenet_state().items()})),
    "pth-int8": _analyze_weights("w.pth", lambda p: torch.save(
        {k: (v * 100).to(torch.int8) for k, v in _squeezenet_state().items()}, p)),
    "pth-bool": _analyze_weights("w.pth", lambda p: torch.save(
        {k: v > 0 for k, v in _squeezenet_state().items()}, p)),
    "weights-name-with-escapes": lambda tmp: ["analyze", ARCH, "--weights", "w\n\x1b[2J\x1b[31m.pth", *SMALL, "--out",
                                              "out"],
    "pth-nan": _analyze_weights("w.pth", _nan_pth),
    "safetensors-inf": _analyze_weights("w.safetensors", _inf_safetensors),
    "pth-complex": _analyze_weights("w.pth", _complex_pth),
    "safetensors-complex": _analyze_weights("w.safetensors", _complex_safetensors),
    "pth-legacy-huge-storage": _analyze_weights("w.pth", _legacy_huge_storage),
    "pth-wrong-shape": _analyze_weights("w.pth", _wrong_shape),
    "pth-non-tensor-values": _analyze_weights("w.pth", _non_tensor),
    "pth-list": _analyze_weights("w.pth", lambda p: torch.save([1, 2, 3], p)),
    "safetensors-huge-shape": _analyze_weights("w.safetensors", _huge_shape),
    "safetensors-huge-header": _analyze_weights("w.safetensors", _huge_header),
    "pth-directory": _analyze_weights("x.pth", _mkdir),
    "safetensors-directory": _analyze_weights("x.safetensors", _mkdir),
    "pth-missing": _missing_weights,
    "pth-name-too-long": _long_weights_name,
    # .onnx as the model
    "onnx-truncated": _analyze_onnx("m.onnx", lambda p: _half(_light("light_squeezenet").read_bytes())),
    "onnx-random": _analyze_onnx("m.onnx", lambda p: _random(seed=3)),
    "onnx-zeros": _analyze_onnx("m.onnx", lambda p: bytes(4096)),
    "onnx-empty": _analyze_onnx("m.onnx", lambda p: b""),
    "onnx-directory": _analyze_onnx("m.onnx", _mkdir),
    "onnx-missing": _analyze_onnx("m.onnx", lambda p: None),
    "onnx-nan-initializer": _analyze_onnx("m.onnx", _onnx_nan),
    "onnx-no-layers": _analyze_onnx("m.onnx", _onnx_no_layers),
    "onnx-unsupported-op": _analyze_onnx("m.onnx", _onnx_unsupported),
    "onnx-huge-constant": _analyze_onnx("m.onnx", _onnx_huge_constant),
    "onnx-huge-input": _analyze_onnx("m.onnx", _onnx_huge_input),
    "onnx-weight-shape-mismatch": _analyze_onnx("m.onnx", _onnx_wrong_weight),
    "onnx-channel-shuffle": _analyze_onnx("m.onnx", _light_bytes("light_shufflenet")),
    "onnx-negative-input-dim": _analyze_onnx("m.onnx", _onnx_variant(in_shape=(1, 3, -16, 16))),
    "onnx-zero-input-dim": _analyze_onnx("m.onnx", _onnx_variant(in_shape=(1, 0, 16, 16))),
    "onnx-opset-99": _analyze_onnx("m.onnx", _onnx_variant(opset=99)),
    "onnx-kernel-shape-vs-weight": _analyze_onnx("m.onnx", _onnx_variant(
        nodes=_nodes(("Conv", ["x", "conv1_w"], ["y"], {"kernel_shape": [5, 5]})))),
    "onnx-kernel-shape-rank": _analyze_onnx("m.onnx", _onnx_variant(
        nodes=_nodes(("Conv", ["x", "conv1_w"], ["y"], {"kernel_shape": [1, 1, 1]})))),
    "onnx-duplicate-outputs": _analyze_onnx("m.onnx", _onnx_variant(
        nodes=_nodes(("Conv", ["x", "conv1_w"], ["y"], {}), ("Relu", ["x"], ["y"], {})))),
    "onnx-output-shadows-initializer": _analyze_onnx("m.onnx", _onnx_variant(
        nodes=_nodes(("Relu", ["x"], ["conv1_w"], {}), ("Conv", ["x", "conv1_w"], ["y"], {})))),
    "onnx-unknown-attribute": _analyze_onnx("m.onnx", _onnx_variant(
        nodes=_nodes(("Conv", ["x", "conv1_w"], ["y"], {"frobnicate": 1})))),
    "onnx-undefined-input": _analyze_onnx("m.onnx", _onnx_variant(
        nodes=_nodes(("Conv", ["x", "nowhere"], ["y"], {})))),
    "onnx-node-name-with-escapes": _analyze_onnx("m.onnx", _onnx_variant(
        nodes=lambda: [__import__("onnx").helper.make_node("Conv", ["x", "conv1_w"], ["c"], name="conv1"),
                       __import__("onnx").helper.make_node("Erf", ["c"], ["y"], name=_EVIL_NAME)])),
    "onnx-with-weights-file": _onnx_with_weights,
    "onnx-as-weights": _onnx_as_weights,
    "pth-as-model": _pth_as_model,
}


@pytest.mark.slow
@pytest.mark.parametrize("case", [c for c in WEIGHTS_CASES if not c.startswith("onnx-")])
def test_bad_weights_and_model_files_are_refused_cleanly(case, tmp_path, capsys, monkeypatch):
    argv = WEIGHTS_CASES[case](tmp_path)
    before = _tree(tmp_path)
    status, err = _run_in_process(argv, tmp_path, capsys, monkeypatch)
    _assert_refused_cleanly(status, err, before, _tree(tmp_path), tmp_path)


@pytest.mark.parametrize("case", [c for c in WEIGHTS_CASES if c.startswith("onnx-")])
def test_bad_onnx_files_are_refused_cleanly(case, tmp_path, capsys, monkeypatch):
    # no torchvision model is built: fast enough for every run
    argv = WEIGHTS_CASES[case](tmp_path)
    before = _tree(tmp_path)
    status, err = _run_in_process(argv, tmp_path, capsys, monkeypatch)
    _assert_refused_cleanly(status, err, before, _tree(tmp_path), tmp_path)


# -- corpus: tampered results folders for 'report' ----------------------------------------------------------------

@pytest.fixture(scope="module")
def results_folder(tmp_path_factory) -> Path:
    """A real, complete results folder of a small run (figures, reports, graph files)."""
    out = tmp_path_factory.mktemp("fuzz-results") / "res"
    assert main(["analyze", "alexnet", "--weights", "none", *SMALL, "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def tiny_results(tmp_path_factory) -> Path:
    """A results folder of a planted network with 'report''s inputs only: summary.json, arrays.npz, the marker.

    Layer 0 ('stem') has no branches; layer 1 ('block') has four, and a recovery test.
    """
    from modularity.arrays import figure_arrays
    from modularity.folders import atomic_output_dir
    from modularity.output.figures import save_arrays
    from modularity.pipeline import analyze, profiles_of, trace
    from tests.nets import PlantedNet

    net = PlantedNet()
    result = analyze(net, layers="stem,block", n_permutations=3, n_label_permutations=100, input_size=(8, 8))
    out = tmp_path_factory.mktemp("fuzz-tiny") / "res"
    with atomic_output_dir(out) as tmp:
        result.save(tmp / "summary.json")
        graph = trace(net, (8, 8))
        save_arrays(figure_arrays(graph, result, profiles_of(graph, result)), tmp / "arrays.npz")
    return out


@pytest.fixture(scope="module")
def split_results(tiny_results, tmp_path_factory) -> Path:
    """``tiny_results`` as analyze writes it: per-unit vectors and null draws in arrays.npz, not in summary.json."""
    from modularity.folders import atomic_output_dir
    from modularity.results import load_summary, unit_arrays

    result = load_summary(tiny_results)
    with np.load(tiny_results / "arrays.npz", allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    out = tmp_path_factory.mktemp("fuzz-split") / "res"
    with atomic_output_dir(out) as tmp:
        result.save(tmp / "summary.json", draws=False, units=False)
        np.savez_compressed(tmp / "arrays.npz", **{**arrays, **unit_arrays(result)})
    return out


def _summary(edit: Callable[[dict], object]) -> Callable[[Path], None]:
    def tamper(folder: Path) -> None:
        data = json.loads((folder / "summary.json").read_text())
        new = edit(data)
        (folder / "summary.json").write_text(json.dumps(data if new is None else new))
    return tamper


def _write(name: str, content: bytes | str) -> Callable[[Path], None]:
    def tamper(folder: Path) -> None:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8", "surrogatepass"))
    return tamper


def _truncate(name: str) -> Callable[[Path], None]:
    def tamper(folder: Path) -> None:
        data = (folder / name).read_bytes()
        (folder / name).write_bytes(data[: len(data) // 2])
    return tamper


def _npz(**arrays) -> Callable[[Path], None]:
    def tamper(folder: Path) -> None:
        with open(folder / "arrays.npz", "wb") as fh:
            np.savez(fh, **arrays)
    return tamper


def _unlink(name: str) -> Callable[[Path], None]:
    return lambda folder: (folder / name).unlink()


def _set(key: str, value) -> Callable[[dict], None]:
    return lambda d: d.__setitem__(key, value)


def _set_layer(key: str, value, index: int = 0) -> Callable[[dict], None]:
    """Set (or with _DROP remove) a field of layer ``index``; ``key`` may be dotted (``recovery.p_value``)."""
    def edit(d: dict) -> None:
        *parents, last = key.split(".")
        target = d["layers"][index]
        for part in parents:
            target = target[part]
        if value is _DROP:
            target.pop(last)
        else:
            target[last] = value(target[last]) if callable(value) else value
    return edit


_DROP = object()


def _raw_summary(edit: Callable[[str], str]) -> Callable[[Path], None]:
    """Edit summary.json as text (for what json.dumps cannot write: huge integers, lone surrogates, depth)."""
    def tamper(folder: Path) -> None:
        path = folder / "summary.json"
        path.write_bytes(edit(path.read_text()).encode("utf-8", "surrogatepass"))
    return tamper


def _sparse(name: str, size: int) -> Callable[[Path], None]:
    def tamper(folder: Path) -> None:
        with open(folder / name, "r+b") as fh:
            fh.truncate(size)
    return tamper


REPORT_CASES = [
    pytest.param(_write("summary.json", "[]"), id="summary-list"),
    pytest.param(_write("summary.json", "null"), id="summary-null"),
    pytest.param(_write("summary.json", "{}"), id="summary-empty-object"),
    pytest.param(_write("summary.json", "{\"layers\": [1, 2"), id="summary-not-json"),
    pytest.param(_write("summary.json", _random(512)), id="summary-binary"),
    pytest.param(_truncate("summary.json"), id="summary-truncated"),
    pytest.param(_unlink("summary.json"), id="summary-missing"),
    pytest.param(_summary(_set("layers", 5)), id="layers-int"),
    pytest.param(_summary(_set("layers", "features.0")), id="layers-string"),
    pytest.param(_summary(_set("layers", [5])), id="layers-of-ints"),
    pytest.param(_summary(_set("layers", None)), id="layers-null"),
    pytest.param(_summary(_set_layer("clusters", _DROP)), id="layer-without-clusters"),
    pytest.param(_summary(_set_layer("clusters", "abc")), id="layer-clusters-string"),
    pytest.param(_summary(_set_layer("name", 7)), id="layer-name-int"),
    pytest.param(_truncate("arrays.npz"), id="arrays-truncated"),
    pytest.param(_write("arrays.npz", _random(2048, seed=4)), id="arrays-random-bytes"),
    pytest.param(lambda f: _garbage_zip(f / "arrays.npz", {"version.npy": b"not an npy"}), id="arrays-zip-garbage"),
    pytest.param(_write("arrays.npz", b""), id="arrays-empty"),
    pytest.param(_unlink("arrays.npz"), id="arrays-missing"),
    pytest.param(_npz(version=np.array(-1)), id="arrays-wrong-version"),
    pytest.param(_npz(version=np.array("one")), id="arrays-version-string"),
    pytest.param(_unlink(".modularity-results"), id="marker-missing"),
]

# summary.json whose types are right but whose meaning is not: k, labels, shapes, spectra, p-values, sizes.
MEANING_CASES = [
    pytest.param(_summary(_set_layer("k", 0)), "k: 0 is out of range", id="k-zero"),
    pytest.param(_summary(_set_layer("k", -3)), "k: -3 is out of range", id="k-negative"),
    pytest.param(_summary(_set_layer("k", 10**12)), "k: 1000000000000 is out of range", id="k-huge"),
    pytest.param(_summary(_set_layer("n_units", 0)), "n_units: 0", id="n-units-zero"),
    pytest.param(_summary(_set_layer("recovery.p_value", 7.5, 1)), "not a probability", id="p-7.5"),
    pytest.param(_summary(_set_layer("recovery.p_value_bh", -0.1, 1)), "not a probability", id="p-bh-negative"),
    pytest.param(_summary(_set_layer("structure.ncut.p_value", 2.0)), "not a probability", id="ncut-p-2"),
    pytest.param(_summary(_set_layer("structure.ncut.p_value_tail", 1e300)), "not a probability",
                 id="ncut-p-tail-huge"),
    pytest.param(_raw_summary(lambda t: re.sub(r'"p_value": [0-9.e-]+', '"p_value": 1e999', t, count=1)),
                 "not a probability", id="p-infinite"),
    pytest.param(_summary(_set_layer("recovery.ari", 5.0, 1)), "outside [-1, 1]", id="ari-5"),
    pytest.param(_summary(_set_layer("recovery.nmi", -2.0, 1)), "outside [0, 1]", id="nmi-negative"),
    pytest.param(_summary(_set_layer("recovery.n_permutations", -5, 1)), "out of range", id="recovery-n-negative"),
    pytest.param(_summary(_set_layer("structure.ncut.n", -1)), "out of range", id="ncut-n-negative"),
    pytest.param(_summary(_set_layer("structure.ncut.alternative", "sideways")), "neither", id="alternative"),
    pytest.param(_summary(_set_layer("structure.ncut.effect_ci", [1.0])), "two numbers", id="effect-ci-one"),
    pytest.param(_summary(_set_layer("shape", [-32, 8])), "shape[0]: -32", id="shape-negative"),
    pytest.param(_summary(_set_layer("shape", [0, 8])), "shape[0]: 0", id="shape-zero"),
    pytest.param(_summary(_set_layer("shape", [32])), "is not (consumer units, units)", id="shape-one-value"),
    pytest.param(_summary(_set_layer("shape", [32, 9])), "9 columns for 8 units", id="shape-columns"),
    pytest.param(_summary(_set_layer("shape", [10**18, 8])), "out of range", id="shape-huge"),
    pytest.param(_summary(_set_layer("singular_values", [])), "spectrum is empty", id="spectrum-empty"),
    pytest.param(_summary(_set_layer("spectra.raw", [])), "spectrum is empty", id="spectra-raw-empty"),
    pytest.param(_summary(_set_layer("singular_values", [-1.0])), "non-negative", id="spectrum-negative"),
    pytest.param(_summary(_set_layer("singular_values", [1.0] * 100)), "at most 8", id="spectrum-too-long"),
    pytest.param(_summary(_set_layer("clusters", lambda c: [10**9] + c[1:])), "label 1000000000 is out of range",
                 id="cluster-label-1e9"),
    pytest.param(_summary(_set_layer("clusters", lambda c: [-2] + c[1:])), "label -2", id="cluster-label-minus-2"),
    pytest.param(_summary(_set_layer("clusters", lambda c: c[:-1])), "7 labels for 8 units", id="clusters-short"),
    pytest.param(_summary(_set_layer("branches", lambda b: [10**9] + b[1:], 1)), "label 1000000000",
                 id="branch-label-1e9"),
    pytest.param(_summary(_set_layer("branches", lambda b: [4] + b[1:], 1)), "for 4 branch names",
                 id="branch-label-past-names"),
    pytest.param(_summary(_set_layer("row_clusters", lambda r: [10**9] + r[1:])), "label 1000000000",
                 id="row-cluster-label-1e9"),
    pytest.param(_summary(_set_layer("row_clusters", lambda r: r + [0])), "labels for 32 rows",
                 id="row-clusters-long"),
    pytest.param(_summary(_set_layer("n_dead", 3)), "n_dead: 3", id="n-dead-wrong"),
    pytest.param(_summary(_set_layer("blocks", [["x", 0, 10**9]])), "within the 32 rows", id="block-past-rows"),
    pytest.param(_summary(_set_layer("blocks", [["x", 5, 2]])), "within the 32 rows", id="block-reversed"),
    pytest.param(_summary(_set_layer("embedding.raw", [])), "0 rows for 8 units", id="embedding-empty"),
    pytest.param(_summary(_set("layers", [])), "list is empty", id="layers-empty"),
    pytest.param(_summary(lambda d: d["settings"].__setitem__("n_permutations", -1)),
                 "n_permutations (--permutations) must be an integer from 0", id="n-permutations-negative"),
    pytest.param(_summary(lambda d: d["settings"].__setitem__("method", "bogus")), "method (--method) must be one of",
                 id="method-unknown"),
    pytest.param(_summary(_set("input_size", [0, 0])), "input_size", id="input-size-zero"),
    pytest.param(_raw_summary(lambda t: t.replace('"seed": 0', '"seed": ' + "7" * 5000, 1)),
                 "thousands of digits", id="integer-5000-digits"),
    pytest.param(_raw_summary(lambda t: t.replace('"seed": 0', '"seed": ' + str(2**70), 1)),
                 "beyond 64 bits", id="integer-2-to-70"),
    pytest.param(_raw_summary(lambda t: t.replace('"provenance": ', '"x": ' + "[" * 100_000 + "]" * 100_000
                                                   + ', "provenance": ', 1)),
                 "more than 16 deep", id="nested-100000-deep"),
    pytest.param(_raw_summary(lambda t: t.replace('"provenance": ', '"x": ' + "[" * 30 + "]" * 30
                                                   + ', "provenance": ', 1)),
                 "more than 16 deep", id="nested-30-deep"),
    pytest.param(_raw_summary(lambda t: t.replace('"name": "stem"', '"name": "st\\ud800em"', 1)),
                 "lone surrogate", id="lone-surrogate-name"),
    pytest.param(_raw_summary(lambda t: t.replace('"versions": {', '"versions": {"\\udfff": "x", ', 1)),
                 "lone surrogate", id="lone-surrogate-key"),
    pytest.param(_write("summary.json", b'{"a": "\xff\xfe"}'), "not valid UTF-8", id="summary-not-utf8"),
    pytest.param(_sparse("summary.json", (1 << 30) + 1), "more than any analysis writes", id="summary-1-GiB"),
]


def _npz_edit(**changes) -> Callable[[Path], None]:
    """Rewrite arrays.npz with members changed (a value) or removed (None)."""
    def tamper(folder: Path) -> None:
        with np.load(folder / "arrays.npz", allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        for key, value in changes.items():
            if value is None:
                arrays.pop(key, None)
            else:
                arrays[key] = value(arrays[key]) if callable(value) else value
        with open(folder / "arrays.npz", "wb") as fh:
            np.savez(fh, **arrays)
    return tamper


def _npy_header_only(shape: tuple[int, ...], dtype: str = "<f8", version: tuple[int, int] = (1, 0)) -> bytes:
    """A .npy member whose header declares ``shape`` but which holds 8 bytes of data."""
    header = repr({"descr": dtype, "fortran_order": False, "shape": shape}).encode("latin1")
    pad = 64 - (10 + len(header) + 1) % 64
    size = struct.pack("<H", len(header) + pad + 1) if version == (1, 0) else struct.pack("<I", len(header) + pad + 1)
    return b"\x93NUMPY" + bytes(version) + size + header + b" " * pad + b"\n" + bytes(8)


def _npz_member(name: str, raw: bytes) -> Callable[[Path], None]:
    """Replace one member of arrays.npz by raw .npy bytes."""
    def tamper(folder: Path) -> None:
        path = folder / "arrays.npz"
        with zipfile.ZipFile(path) as zf:
            members = {n: zf.read(n) for n in zf.namelist() if n != f"{name}.npy"}
        members[f"{name}.npy"] = raw
        _garbage_zip(path, members)
    return tamper


ARRAYS_CASES = [
    pytest.param(_npz_edit(m0=None), "lacks the member 'm0'", id="missing-matrix"),
    pytest.param(_npz_edit(m1_rows=None), "lacks the member 'm1_rows'", id="missing-row-labels"),
    pytest.param(_npz_edit(layer_names=None), "lacks the member 'layer_names'", id="missing-layer-names"),
    pytest.param(_npz_edit(filters_coord=None), "lacks the member 'filters_coord'", id="missing-filter-coords"),
    pytest.param(_npz_edit(m0=lambda m: m.astype("U3")), "expected numbers", id="matrix-text"),
    pytest.param(_npz_edit(m0=lambda m: m.astype(np.int64)), "has dtype int64, expected numbers", id="matrix-int"),
    pytest.param(_npz_edit(m0=lambda m: m.astype(np.complex64)), "dtype complex64", id="matrix-complex"),
    pytest.param(_npz_edit(m0=np.array([[{}]], dtype=object)), "dtype object", id="matrix-object"),
    pytest.param(_npz_edit(m0=lambda m: m[None]), "declares shape (1, ", id="matrix-3d"),
    pytest.param(_npz_edit(m0=np.zeros((129, 129), np.float16)), "each dimension at most 32", id="matrix-too-big"),
    pytest.param(_npz_edit(m0=lambda m: m[:, :0]), "do not fit together", id="matrix-empty"),
    pytest.param(_npz_edit(m0=lambda m: m[:-1]), "do not fit together", id="matrix-rows-vs-labels"),
    pytest.param(_npz_edit(m0=lambda m: np.full_like(m, np.nan)), "not finite", id="matrix-nan"),
    pytest.param(_npz_edit(m0=lambda m: m * 0 + 5), "outside [0, 1]", id="matrix-5"),
    pytest.param(_npz_edit(m0_cols=lambda c: c * 0 + 10**9), "labels outside", id="column-labels-1e9"),
    pytest.param(_npz_edit(m1_branches=lambda b: b * 0 + 99), "labels outside", id="branch-labels-99"),
    pytest.param(_npz_edit(m0_shape=np.array([5, 5])), "differs from summary.json", id="shape-differs"),
    pytest.param(_npz_edit(layer_names=np.array(["stem", "other"])), "different runs", id="other-layers"),
    pytest.param(_npz_edit(filters=lambda f: np.repeat(f, 40, axis=0)), "declares shape", id="filters-too-many"),
    pytest.param(_npz_edit(filters_labels=lambda f: np.arange(len(f)) * 10**6), "out of range",
                 id="filter-labels-huge"),
    pytest.param(_npz_member("m0", _npy_header_only((10**6, 10**6))), "declares shape (1000000, 1000000)",
                 id="header-declares-8-TB"),
    pytest.param(_npz_member("m0", _npy_header_only((2**62, 2**62), version=(2, 0))), "declares shape",
                 id="header-v2-declares-huge"),
    pytest.param(_npz_member("m0", _npy_header_only((-4, 4))), "declares shape (-4, 4)", id="header-negative-dim"),
    pytest.param(_npz_member("layer_names", _npy_header_only((2,), "<U100000000")), "wider than",
                 id="header-text-400-MB-per-name"),
    pytest.param(_npz_member("m0", _npy_header_only((4, 4), version=(3, 0))), "not a readable .npz", id="header-v3"),
    pytest.param(_npz_member("m0", b"\x93NUMPY\x01\x00\xff\xff" + b"{" * 70000), "not a readable .npz",
                 id="header-64-KB"),
]


def _tamper_and_report(tamper, folder_src: Path, tmp_path: Path, capsys, monkeypatch) -> str:
    folder = tmp_path / "res"
    shutil.copytree(folder_src, folder, symlinks=True)
    tamper(folder)
    before = _tree(tmp_path)
    status, err = _run_in_process(["report", "res", "--quiet"], tmp_path, capsys, monkeypatch)
    _assert_refused_cleanly(status, err, before, _tree(tmp_path), tmp_path)
    return err


@pytest.mark.parametrize("tamper", REPORT_CASES)
def test_tampered_results_folders_are_refused_cleanly(tamper, tiny_results, tmp_path, capsys, monkeypatch):
    _tamper_and_report(tamper, tiny_results, tmp_path, capsys, monkeypatch)


@pytest.mark.parametrize("tamper, message", MEANING_CASES)
def test_summaries_that_contradict_themselves_are_refused_naming_the_field(tamper, message, tiny_results, tmp_path,
                                                                           capsys, monkeypatch):
    assert message in _tamper_and_report(tamper, tiny_results, tmp_path, capsys, monkeypatch)


@pytest.mark.parametrize("tamper, message", ARRAYS_CASES)
def test_arrays_are_checked_for_keys_dtypes_and_declared_sizes_before_loading(tamper, message, tiny_results,
                                                                               tmp_path, capsys, monkeypatch):
    assert message in _tamper_and_report(tamper, tiny_results, tmp_path, capsys, monkeypatch)


# arrays.npz members that hold the per-unit vectors summary.json leaves out (layer 0 'stem': 8 units, 32 rows)
UNIT_CASES = [
    pytest.param(_npz_edit(u0_clusters=None), "lacks the member 'u0_clusters'", id="missing-clusters"),
    pytest.param(_npz_edit(u0_clusters=lambda c: c.astype("U3")), "expected numbers", id="clusters-text"),
    pytest.param(_npz_edit(u0_clusters=lambda c: c[:-1]), "7 labels for 8 units", id="clusters-short"),
    pytest.param(_npz_edit(u0_clusters=lambda c: np.r_[c, c]), "declares shape (16,)", id="clusters-long"),
    pytest.param(_npz_edit(u0_clusters=lambda c: c * 0 + 10**9), "label 1000000000 is out of range",
                 id="cluster-label-1e9"),
    pytest.param(_npz_edit(u1_branches=lambda b: b * 0 + 4), "for 4 branch names", id="branch-label-past-names"),
    pytest.param(_npz_edit(u0_row_clusters=lambda r: np.r_[r, r]), "declares shape (64,)", id="row-clusters-long"),
    pytest.param(_npz_edit(u0_spectrum_raw=lambda v: v * np.nan), "finite, non-negative", id="spectrum-nan"),
    pytest.param(_npz_edit(u0_embedding_raw=lambda e: e[:, None]), "declares shape (8, 1, 3)", id="embedding-3d"),
    pytest.param(_npz_edit(u0_embedding_raw=lambda e: np.repeat(e, 30, axis=1)), "each dimension at most 64",
                 id="embedding-90-columns"),
    pytest.param(_npz_member("u1_embedding_normalised", _npy_header_only((32, 10**12))), "declares shape",
                 id="embedding-header-declares-huge"),
    pytest.param(_npz_edit(d0_ncut=lambda d: np.zeros(10**5 + 1)), "declares shape (100001,)", id="draws-too-many"),
    pytest.param(_unlink("arrays.npz"), "lacks arrays.npz, which holds the per-unit vectors", id="arrays-missing"),
    pytest.param(_summary(_set("unit_arrays", "../elsewhere.npz")), "is not 'arrays.npz'", id="unit-arrays-elsewhere"),
    pytest.param(_summary(_set_layer("n_units", "8")), "n_units: '8' is not a size", id="n-units-text"),
]


@pytest.mark.parametrize("tamper, message", UNIT_CASES)
def test_per_unit_arrays_are_checked_like_the_summary_they_complete(tamper, message, split_results, tmp_path,
                                                                    capsys, monkeypatch):
    assert message in _tamper_and_report(tamper, split_results, tmp_path, capsys, monkeypatch)


def test_a_split_folder_rebuilds(split_results, tmp_path, capsys, monkeypatch):
    """The untampered folder of the cases above is read and redrawn (so each case fails for its tamper alone)."""
    folder = tmp_path / "res"
    shutil.copytree(split_results, folder)
    status, err = _run_in_process(["report", "res", "--quiet"], tmp_path, capsys, monkeypatch)
    assert status == 0, err


def test_a_header_declaring_terabytes_is_refused_without_allocating(tiny_results, tmp_path, capsys, monkeypatch):
    import tracemalloc

    tracemalloc.start()
    try:
        _tamper_and_report(_npz_member("m0", _npy_header_only((10**6, 10**6))), tiny_results, tmp_path, capsys,
                           monkeypatch)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 100 << 20


def test_the_untampered_tiny_folder_passes_every_check(tiny_results):
    from modularity.output.figures import load_arrays
    from modularity.results import load_summary

    result = load_summary(tiny_results)
    assert [layer.name for layer in result.layers] == ["stem", "block"]
    assert load_arrays(tiny_results, result)["m1"].shape[1] == 32


# -- corpus: folders that would make 'report' write outside themselves or lose a user's file ------------------------

def _link(name: str, target: str) -> Callable[[Path], None]:
    """Replace ``name`` in the folder by a symbolic link to ``target`` (relative to the folder's parent)."""
    def tamper(folder: Path) -> None:
        victim = Path(target) if target.startswith("/") else folder.parent / target
        if not victim.exists():
            if target.endswith("/"):
                victim.mkdir()
                (victim / "mine.txt").write_text("a user's file")
            else:
                victim.write_text("a user's file, e.g. ~/.ssh/authorized_keys")
        path = folder / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif os.path.lexists(path):
            path.unlink()
        path.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(os.path.relpath(victim, path.parent), path)
    return tamper


def _marker(text: str | None) -> Callable[[Path], None]:
    def tamper(folder: Path) -> None:
        marker = folder / ".modularity-results"
        marker.unlink()
        if text is None:
            (folder.parent / "fake-marker").write_text(json.dumps({"tool": "modularity", "manifest": {"files": {},
                                                                                                    "dirs": []}}))
            os.symlink("../fake-marker", marker)
        else:
            marker.write_text(text)
    return tamper


FOLDER_CASES = [
    pytest.param(_link("layers.csv", "victim.txt"), "symbolic link", id="layers-csv-link-to-a-file"),
    pytest.param(_link("report.html", "victim.txt"), "symbolic link", id="report-html-link"),
    pytest.param(_link("figures", "userdir/"), "symbolic link", id="figures-link-to-a-folder"),
    pytest.param(_link("figures/layers/000_x.png", "victim.txt"), "symbolic link", id="link-deep-inside"),
    pytest.param(_link("summary.json", "victim.txt"), "symbolic link", id="summary-json-link"),
    pytest.param(_link("units.csv", "/etc/passwd"), "symbolic link", id="link-to-etc-passwd"),
    pytest.param(_write("notes.txt", "a user's notes"), "notes.txt", id="user-file"),
    pytest.param(_write("figures/mine.png", b"\x89PNG"), "figures/mine.png", id="user-file-in-figures"),
    pytest.param(_marker(""), "marker is empty", id="marker-empty"),
    pytest.param(_marker(None), "marker is a symbolic link", id="marker-symlink"),
    pytest.param(_marker('{"tool": "modularity", "version": "0.2.0", "kind": "analyze"}'), "lists no files",
                 id="marker-without-manifest"),
    pytest.param(_marker("[" * 100_000), "not the JSON", id="marker-deep"),
    pytest.param(_marker('{"kind": "sweep", "manifest": {"files": {}, "dirs": []}}'), "did not write",
                 id="marker-lists-nothing"),
    pytest.param(lambda f: os.mkfifo(f / "pipe"), "pipe", id="fifo"),
]


@pytest.mark.parametrize("tamper, message", FOLDER_CASES)
def test_report_never_writes_through_links_nor_over_a_users_file(tamper, message, tiny_results, tmp_path, capsys,
                                                                  monkeypatch):
    assert message in _tamper_and_report(tamper, tiny_results, tmp_path, capsys, monkeypatch)


@pytest.mark.slow
@pytest.mark.parametrize("tamper, message", [FOLDER_CASES[i] for i in (0, 1, 2, 6)])
def test_report_on_a_real_tampered_folder_changes_nothing(tamper, message, results_folder, tmp_path, capsys,
                                                          monkeypatch):
    assert message in _tamper_and_report(tamper, results_folder, tmp_path, capsys, monkeypatch)


@pytest.mark.slow
def test_report_rebuilds_a_real_folder_and_writes_nothing_outside_it(results_folder, tmp_path, capsys, monkeypatch):
    folder = tmp_path / "res"
    shutil.copytree(results_folder, folder, symlinks=True)
    (tmp_path / "victim.txt").write_text("keep")
    summary = json.loads((folder / "summary.json").read_text())
    summary["model"] = "renamed"  # report's input may be edited: it is carried over as it is
    (folder / "summary.json").write_text(json.dumps(summary))
    status, err = _run_in_process(["report", "res", "--quiet"], tmp_path, capsys, monkeypatch)
    assert status == 0, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["res", "victim.txt"]
    assert (tmp_path / "victim.txt").read_text() == "keep"
    assert "renamed" in (folder / "report.html").read_text()
    from modularity.folders import check_replaceable

    check_replaceable(folder)  # the new manifest lists exactly what is there


def test_names_that_a_spreadsheet_would_run_are_escaped_in_csv_tables(tiny_results, tmp_path):
    import csv

    from modularity.output.figures import write_tables
    from modularity.results import load_summary

    result = load_summary(tiny_results)
    names = ['=HYPERLINK("http://evil.example","click")', "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A9)"]
    for layer, name in zip(result.layers, names):
        layer.name = name
    result.layers[1].consumers = ["\tx", "\r=1"]
    write_tables(result, tmp_path)
    with open(tmp_path / "layers.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["name"] for r in rows] == ["'" + n for n in names[:2]]
    assert rows[1]["consumers"] == "'\tx;\r=1"
    with open(tmp_path / "units.csv", newline="", encoding="utf-8") as fh:
        units = list(csv.DictReader(fh))
    assert {u["layer"] for u in units} == {"'" + n for n in names[:2]}
    cells = [v for r in rows + units for v in r.values()]
    assert not [v for v in cells if v and v[0] in "=+-@\t\r" and not _number(v)]
    assert any(_number(v) and float(v) < 0 for v in cells)  # negative numbers are written as numbers


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


@pytest.mark.parametrize("target", ["nowhere", "file.txt", "res\n\x1b[2J\x1b[31mred\u2028"])
def test_report_on_a_missing_folder_or_a_file_is_refused_cleanly(target, tmp_path, capsys, monkeypatch):
    (tmp_path / "file.txt").write_text("mine")
    before = _tree(tmp_path)
    status, err = _run_in_process(["report", target, "--quiet"], tmp_path, capsys, monkeypatch)
    _assert_refused_cleanly(status, err, before, _tree(tmp_path), tmp_path)


# -- corpus: bad arguments ----------------------------------------------------------------------------------------

BASE = ["analyze", "alexnet", "--weights", "none", *SMALL, "--out", "out"]

ARG_CASES = [
    pytest.param(["--layers", "/[/"], id="layers-bad-regex"),
    pytest.param(["--layers", "nomatch*"], id="layers-no-match"),
    pytest.param(["--seed", "-1"], id="seed-negative"),
    pytest.param(["--seed", str(2 ** 70)], id="seed-huge"),
    pytest.param(["--input-size", "-5", "-5"], id="input-size-negative"),
    pytest.param(["--input-size", "0", "224"], id="input-size-zero"),
    pytest.param(["--input-size", "8", "8"], id="input-size-too-small"),
    pytest.param(["--k", "0"], id="k-zero"),
    pytest.param(["--k", "-2"], id="k-negative"),
    pytest.param(["--k", "10000"], id="k-huge"),
    pytest.param(["--jobs", "-3"], id="jobs-negative"),
    pytest.param(["--permutations", "-1"], id="permutations-negative"),
    pytest.param(["--frobnicate"], id="unknown-flag"),
    pytest.param(["--seed", "abc"], id="seed-not-int"),
    pytest.param(["--null", "bogus"], id="null-bad-choice"),
    pytest.param(["--input-size", "5"], id="input-size-one-value"),
]


@pytest.mark.slow
@pytest.mark.parametrize("extra", ARG_CASES)
def test_bad_arguments_are_refused_cleanly(extra, tmp_path, capsys, monkeypatch):
    before = _tree(tmp_path)
    status, err = _run_in_process([*BASE, *extra], tmp_path, capsys, monkeypatch)
    _assert_refused_cleanly(status, err, before, _tree(tmp_path), tmp_path)


@pytest.mark.parametrize("argv", [pytest.param(["report"], id="report-no-folder"),
                                  pytest.param(["nonsense"], id="unknown-command")])
def test_bad_commands_are_refused_cleanly(argv, tmp_path, capsys, monkeypatch):
    before = _tree(tmp_path)
    status, err = _run_in_process(argv, tmp_path, capsys, monkeypatch)
    _assert_refused_cleanly(status, err, before, _tree(tmp_path), tmp_path)


# Argument limits (the settings object's declared constraints): each must be refused before any
# work. Loading the model fails the case at once (not after a run that would never end), so the family is fast.
LIMIT_CASES = [
    pytest.param(["--permutations", str(10**9)], id="permutations-1e9"),
    pytest.param(["--label-permutations", str(10**12)], id="label-permutations-1e12"),
    pytest.param(["--jobs", "100000"], id="jobs-100000"),
    pytest.param(["--layers", ""], id="layers-empty"),
    pytest.param(["--layers", "//"], id="layers-empty-regex"),
    pytest.param(["--layers", ","], id="layers-only-commas"),
    pytest.param(["--out", ""], id="out-empty"),
]


@pytest.mark.parametrize("extra", LIMIT_CASES)
def test_arguments_beyond_their_limits_are_refused_before_any_work(extra, tmp_path, capsys, monkeypatch):
    import modularity.pipeline

    def no_work(*args, **kwargs):
        raise AssertionError("work started: the argument was not refused up front")

    monkeypatch.setattr(modularity.pipeline, "load_model", no_work)
    before = _tree(tmp_path)
    status, err = _run_in_process([*BASE, *extra], tmp_path, capsys, monkeypatch)
    _assert_refused_cleanly(status, err, before, _tree(tmp_path), tmp_path)


@pytest.mark.parametrize("address, message", [
    ("bogus", "is not a Dask scheduler address"), ("tcp://", "is not a Dask scheduler address"),
    ("tcp://host:99999", "port 99999 is not from 1 to 65535"), ("tcp://host:0", "port 0"),
    ("foo://host:1", "unknown scheme 'foo'"), ("tcp://[::1", "is not a Dask scheduler address"),
    ("tcp://a b:1", "is not a Dask scheduler address"), ("tcp://x\n\x1b[31m:1", "is not a Dask scheduler address"),
    ("inproc://x", "is not a Dask scheduler address"), ("ucx://127.0.0.1:1", "unknown scheme 'ucx'"),
])
def test_bad_scheduler_addresses_are_one_line(address, message):
    from modularity.backends import check_scheduler_address, make_backend
    from modularity.errors import ModularityError

    with pytest.raises(ModularityError, match=re.escape(message)):
        check_scheduler_address(address)
    with pytest.raises(ModularityError, match=re.escape(message)):
        make_backend(None, backend="dask", scheduler=address)


@pytest.mark.slow
@pytest.mark.parametrize("address", ["bogus", "tcp://127.0.0.1:1", "tls://127.0.0.1:1"])
def test_bad_scheduler_addresses_are_refused_cleanly_on_the_command_line(address, tmp_path, capsys, monkeypatch):
    pytest.importorskip("distributed")
    before = _tree(tmp_path)
    status, err = _run_in_process([*BASE, "--backend", "dask", "--scheduler", address], tmp_path, capsys,
                                  monkeypatch)
    _assert_refused_cleanly(status, err, before, _tree(tmp_path), tmp_path)


def _name_max(folder: Path) -> int:
    return os.pathconf(folder, "PC_NAME_MAX")


@pytest.mark.parametrize("out", [
    pytest.param(lambda tmp: "o" * (_name_max(tmp) + 1), id="name-over-NAME_MAX"),
    pytest.param(lambda tmp: "/".join(["d" * 200] * 21), id="path-over-PATH_MAX"),
    pytest.param(lambda tmp: next((p for p in ("/proc", "/sys", "/dev/shm") if os.path.ismount(p)), "/proc"),
                 id="mount-point"),
    pytest.param(lambda tmp: "bad\x00name", id="nul-byte"),
    pytest.param(lambda tmp: "link", id="symlink-to-a-results-folder"),
    pytest.param(lambda tmp: "user", id="folder-with-a-users-file"),
    pytest.param(lambda tmp: "via/here", id="current-folder-through-a-symlinked-parent"),
])
def test_out_folders_that_cannot_be_replaced_are_refused_before_any_work(out, tmp_path, capsys, monkeypatch):
    import modularity.pipeline

    (tmp_path / "user").mkdir()
    (tmp_path / "user" / "notes.txt").write_text("mine")
    (tmp_path / "here").mkdir()
    os.symlink(tmp_path / "user", tmp_path / "link")
    os.symlink(tmp_path, tmp_path / "here" / "via")
    monkeypatch.setattr(modularity.pipeline, "load_model", lambda *a, **k: pytest.fail("work started"))
    before = _tree(tmp_path)
    cwd = tmp_path / "here" if out(tmp_path) == "via/here" else tmp_path
    status, err = _run_in_process([*BASE[:-1], out(tmp_path)], cwd, capsys, monkeypatch)
    _assert_refused_cleanly(status, err, before, _tree(tmp_path), tmp_path)


@pytest.mark.slow
def test_an_out_name_as_long_as_the_filesystem_allows_is_written(tmp_path, capsys, monkeypatch):
    name = "r" * _name_max(tmp_path)  # its temporary sibling's name would be longer: it is shortened
    _tiny_onnx(tmp_path)
    status, err = _run_in_process(["analyze", "tiny.onnx", "--permutations", "2", "--quiet", "--out", name],
                                  tmp_path, capsys, monkeypatch)
    assert status == 0, err
    assert (tmp_path / name / "report.html").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([name, "tiny.onnx"])


@pytest.mark.slow
@pytest.mark.parametrize("err_no", [errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.ENAMETOOLONG])
def test_a_full_disk_while_writing_is_one_line_and_leaves_no_partial_folder(err_no, tmp_path, capsys, monkeypatch):
    """A run writes half its folder, then the filesystem refuses (simulated at the figures): nothing is left."""
    import modularity.output.report as report

    _tiny_onnx(tmp_path)

    def full(*args, **kwargs):
        raise OSError(err_no, os.strerror(err_no), str(args[-1] if args else "figure.png"))

    monkeypatch.setattr(report, "draw_pages", full)
    before = _tree(tmp_path)
    status, err = _run_in_process(["analyze", "tiny.onnx", "--permutations", "2", "--quiet", "--out", "res"],
                                  tmp_path, capsys, monkeypatch)
    _assert_refused_cleanly(status, err, before, _tree(tmp_path), tmp_path)
    assert os.strerror(err_no).lower() in err.lower() or "no space left" in err


@pytest.mark.slow
def test_a_memory_limit_below_what_torch_needs_is_one_line(tmp_path):
    # Under about 3 GB of address space this torch build cannot even be imported (an ImportError, or an
    # uncatchable C++ abort in a static initialiser); 1 GB fails on any build.
    def limit() -> None:  # pragma: no cover - runs in the child
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    before = _tree(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "modularity", *BASE], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300, preexec_fn=limit)
    _assert_refused_cleanly(proc.returncode, proc.stderr, before, _tree(tmp_path), tmp_path)
    assert "memory limit" in proc.stderr


# -- a few cases as a user runs them: a real process, under a memory limit ----------------------------------------

@pytest.mark.slow
def test_subprocess_pickle_with_code_is_refused_and_never_runs(tmp_path):
    _evil_zip(tmp_path / "w.pt")
    before = _tree(tmp_path)
    status, err = _run_subprocess(["analyze", ARCH, "--weights", "w.pt", *SMALL, "--out", "out"], tmp_path)
    _assert_refused_cleanly(status, err, before, _tree(tmp_path), tmp_path)
    assert "refused for safety" in err


@pytest.mark.slow
def test_subprocess_nan_onnx_is_refused(tmp_path):
    (tmp_path / "m.onnx").write_bytes(_onnx_nan(tmp_path / "m.onnx"))
    before = _tree(tmp_path)
    status, err = _run_subprocess(["analyze", "m.onnx", "--quiet", "--out", "out"], tmp_path)
    _assert_refused_cleanly(status, err, before, _tree(tmp_path), tmp_path)
    assert "initializer 'conv1_w' has 1 NaN/Inf value" in err


@pytest.mark.slow
def test_subprocess_huge_input_size_is_refused(tmp_path):
    # unchecked, tracing would try to allocate 120 GB: a MemoryError under this 6 GB limit, an OOM kill without it
    before = _tree(tmp_path)
    status, err = _run_subprocess([*BASE, "--input-size", "100000", "100000"], tmp_path)
    _assert_refused_cleanly(status, err, before, _tree(tmp_path), tmp_path)


# -- interrupts: a signal at any moment of the writing phase wins ---------------------------------------------------

_INTERRUPT_RUN = ["analyze", "tiny.onnx", "--permutations", "2", "--label-permutations", "100", "--quiet",
                  "--out", "res"]


def _tiny_onnx(folder: Path) -> None:
    """conv1 (8 units) -> relu -> conv2: one layer to analyse, so a run is mostly its writing phase."""
    from onnx import TensorProto, helper

    rng = np.random.default_rng(0)
    nodes = [helper.make_node("Conv", ["x", "conv1_w"], ["c1"], name="conv1"),
             helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
             helper.make_node("Conv", ["r1", "conv2_w"], ["y"], name="conv2")]
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 14, 14])],
                              [_f32("conv1_w", rng.standard_normal((8, 3, 3, 3))),
                               _f32("conv2_w", rng.standard_normal((8, 8, 1, 1)))])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    (folder / "tiny.onnx").write_bytes(model.SerializeToString())


def _interrupt_trial(tmp: Path, offset: float | None, sig: int) -> dict:
    """Start a run, wait for its temporary folder, wait ``offset`` seconds, send ``sig``; report what happened."""
    import time

    _tiny_onnx(tmp)
    proc = subprocess.Popen([sys.executable, "-m", "modularity", *_INTERRUPT_RUN], cwd=tmp, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    start = time.monotonic()
    while proc.poll() is None and not any(".modularity-partial-" in p.name for p in tmp.iterdir()):
        time.sleep(0.005)
        assert time.monotonic() - start < 240, "the run never started writing"
    appeared = time.monotonic()
    sent_before_publish = None
    if offset is not None and proc.poll() is None:
        time.sleep(offset)
        sent_before_publish = not (tmp / "res").exists()
        if proc.poll() is None:
            proc.send_signal(sig)
        else:
            sent_before_publish = None
    _, err = proc.communicate(timeout=240)
    return {"rc": proc.returncode, "err": err, "write_s": time.monotonic() - appeared,
            "sent_before_publish": sent_before_publish}


def _check_interrupt_invariant(tmp: Path, trial: dict) -> None:
    from modularity.folders import check_replaceable

    left = [p.name for p in tmp.iterdir() if ".modularity-" in p.name]
    assert sorted(p.name for p in tmp.iterdir() if ".modularity-" not in p.name) in (["tiny.onnx"],
                                                                                     ["res", "tiny.onnx"])
    assert not left, f"temporary folders left behind: {left} ({trial})"
    published = (tmp / "res").exists()
    if published:
        check_replaceable(tmp / "res")  # complete: the marker's manifest lists exactly what is there
    if trial["sent_before_publish"]:
        assert trial["rc"] != 0, f"a signal sent before the folder was published was lost: {trial}"
        assert not published or "was complete" in trial["err"], trial
    if trial["rc"] == 0:
        assert published, trial


@pytest.mark.slow
def test_a_signal_at_any_moment_of_writing_either_stops_the_run_or_comes_after_the_folder_is_complete(tmp_path):
    """SIGTERM and SIGINT at offsets across the whole writing phase (measured on a first, uninterrupted run).

    Two trials run at a time (each about 12 s of CPU, most of it importing torch and drawing the report).
    The offsets reach past the end of the baseline's writing, so some signals come after the folder is complete.
    """
    import signal
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np

    first = tmp_path / "first"
    first.mkdir()
    baseline = _interrupt_trial(first, None, signal.SIGTERM)
    assert baseline["rc"] == 0, baseline["err"][-2000:]
    offsets = [float(x) for x in np.linspace(0.0, baseline["write_s"] * 1.5, 6)]
    folders = [tmp_path / f"t{i}" for i in range(len(offsets))]
    for folder in folders:
        folder.mkdir()
    with ThreadPoolExecutor(2) as pool:
        trials = list(pool.map(lambda i: _interrupt_trial(folders[i], offsets[i],
                                                          signal.SIGTERM if i % 2 else signal.SIGINT),
                               range(len(offsets))))
    for folder, trial in zip(folders, trials):
        _check_interrupt_invariant(folder, trial)
    summary = [(round(o, 2), t["rc"], t["sent_before_publish"]) for o, t in zip(offsets, trials)]
    assert any(t["sent_before_publish"] for t in trials), f"no signal arrived while writing: {summary}"


@pytest.mark.slow
@pytest.mark.parametrize("sig", ["SIGTERM", "SIGINT"])
def test_a_signal_whose_keyboardinterrupt_dies_in_a_weakref_callback_still_stops_the_run(tmp_path, sig):
    """The failure mode itself, made deterministic: the signal arrives while a weakref callback runs.

    Python reports an exception raised in a weakref callback ("Exception ignored in ...") and goes on,
    so the KeyboardInterrupt of the signal handler is lost; the run must still not publish, nor exit 0.
    """
    code = f"""
import os, signal, sys, weakref
import modularity.pipeline as pipeline
real = pipeline.write_results

class Blob:
    pass

def callback(ref):
    os.kill(os.getpid(), signal.{sig})
    for _ in range(100000):  # the handler runs here, inside the callback, and its KeyboardInterrupt dies here
        pass

def write_results(*args, **kwargs):
    written = real(*args, **kwargs)
    blob = Blob()
    keep = weakref.ref(blob, callback)
    del blob
    return written

pipeline.write_results = write_results
from modularity.cli import main
sys.exit(main({_INTERRUPT_RUN!r}))
"""
    _tiny_onnx(tmp_path)
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert "Exception ignored" in proc.stderr, proc.stderr[-2000:]  # the KeyboardInterrupt was indeed lost
    assert proc.returncode == 130, proc.stderr[-2000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.onnx"], "a folder was published or left behind"
