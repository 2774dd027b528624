"""``report DIR`` (modularity.rebuilding): it redraws, byte for byte, the folder ``analyze`` wrote, old folders too."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from modularity.pipeline import save_results
from modularity.rebuilding import rebuild
from modularity.results import UNIT_FIELDS, load_summary


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> Path:
    """A results folder as analyze writes it (drawn by worker processes, as on the command line)."""
    from modularity import analyze, trace
    from tests.nets import PlantedNet

    net = PlantedNet().eval()
    graph = trace(net, (16, 16))
    result = analyze(net, layers="stem,branches.0,block", n_permutations=4, graph=graph, input_size=(16, 16))
    out = tmp_path_factory.mktemp("rebuilding") / "run"
    save_results(result, graph, out)
    return out


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _strip_outputs(folder: Path) -> None:
    """Remove what report rebuilds (figures, reports), so that the comparison sees freshly written files."""
    shutil.rmtree(folder / "figures")
    (folder / "report.html").unlink()
    (folder / "report.pdf").unlink()


@pytest.mark.slow
def test_report_rebuilds_the_folder_analyze_wrote_byte_for_byte(written, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(written, copy)
    _strip_outputs(copy)
    rebuild(copy)
    original, rebuilt = _files(written), _files(copy)
    assert sorted(rebuilt) == sorted(original)
    assert [name for name in original if rebuilt[name] != original[name]] == []  # the marker's manifest too


def _as_version_2(folder: Path) -> None:
    """Turn ``folder`` into what modularity 0.2.0 wrote: every vector inline in summary.json, arrays.npz version 1."""
    from modularity.results import _dumps

    result = load_summary(folder)
    data = result.to_dict(draws=False)
    data["schema_version"] = 2
    (folder / "summary.json").write_text(_dumps(data) + "\n", encoding="utf-8")
    with np.load(folder / "arrays.npz", allow_pickle=False) as npz:
        kept = {k: npz[k] for k in npz.files if not k.startswith(("u", "cu"))}
    kept["version"] = np.asarray(1)
    np.savez_compressed(folder / "arrays.npz", **kept)


@pytest.mark.slow
def test_a_folder_of_the_previous_version_still_rebuilds(written, tmp_path):
    old = tmp_path / "old"
    shutil.copytree(written, old)
    _as_version_2(old)
    inputs = {name: (old / name).read_bytes() for name in ("summary.json", "arrays.npz")}
    assert all(field in json.loads(inputs["summary.json"])["layers"][0] for field in UNIT_FIELDS)
    _strip_outputs(old)
    rebuild(old)
    assert {name: (old / name).read_bytes() for name in inputs} == inputs  # carried over as they were
    assert (old / "report.html").is_file() and (old / "report.pdf").is_file()
    # the same figures: drawn from 7-digit vectors instead of float32 ones, which moves no pixel here
    assert sorted(_files(old)) == sorted(_files(written))
    assert load_summary(old).layers[-1].clusters == load_summary(written).layers[-1].clusters


def test_the_summary_analyze_writes_holds_no_per_unit_vectors(written):
    data = json.loads((written / "summary.json").read_text())
    assert data["unit_arrays"] == "arrays.npz"
    assert [sorted(set(UNIT_FIELDS) & set(layer)) for layer in data["layers"]] == [[]] * len(data["layers"])
    result = load_summary(written)  # and the folder gives every vector back
    assert all(len(layer.clusters) == layer.n_units and layer.embedding for layer in result.layers)


@pytest.mark.slow
def test_report_imports_no_torch(written, tmp_path):
    """Redrawing needs only the folder: the command starts without torch (seconds of import on a busy machine)."""
    import subprocess
    import sys

    copy = tmp_path / "copy"
    shutil.copytree(written, copy)
    code = ("import sys; from modularity.cli import main; status = main(['report', sys.argv[1], '--quiet', "
            "]); assert 'torch' not in sys.modules, 'torch imported'; raise SystemExit(status)")
    proc = subprocess.run([sys.executable, "-c", code, str(copy)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
