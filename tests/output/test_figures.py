"""Results folders: figure data, files written, and rebuilding reports without the model."""

from __future__ import annotations

import contextlib
import io
import json
import re
import shutil

import numpy as np
import pytest

from modularity.arrays import figure_arrays, filter_view, first_conv, matrix_view
from modularity.cli import main
from modularity.errors import ModularityError
from modularity.output.figures import cluster_fractions, confusion_table, load_arrays
from modularity.output.report import rebuild_report
from modularity.pipeline import profiles_of, save_results


@pytest.fixture(scope="module")
def saved(planted, tmp_path_factory):
    """A results folder written with a progress bar, and what the bar printed."""
    result, graph = planted()
    out = tmp_path_factory.mktemp("results") / "run"
    printed = io.StringIO()
    with contextlib.redirect_stderr(printed):
        save_results(result, graph, out, progress=True)
    return out, printed.getvalue()


@pytest.fixture(scope="module")
def folder(saved):
    return saved[0]


def test_matrix_view_groups_columns_by_cluster():
    m = np.arange(12, dtype=float).reshape(3, 4)
    view = matrix_view(m, [1, 0, 1], [1, 0, 1, 0])
    assert view["col_labels"].tolist() == [0, 0, 1, 1] and view["row_labels"].tolist() == [0, 1, 1]
    assert view["matrix"][0].tolist() == pytest.approx((m[1, [1, 3, 0, 2]] / np.percentile(m[m > 0], 99)).tolist(),
                                                       rel=1e-3)


def test_matrix_view_puts_dead_units_last_and_bins_large_matrices():
    m = np.random.default_rng(0).random((300, 500))
    labels = np.r_[np.full(10, -1), np.zeros(490, dtype=int)]
    view = matrix_view(m, None, labels, max_size=100)
    assert view["matrix"].shape == (100, 100) and view["col_labels"][-1] == -1 and view["col_labels"][0] == 0
    assert float(view["matrix"].max()) <= 1.0


def test_confusion_table_counts_dead_units_apart():
    table, names = confusion_table([0, 0, 1, 1, 1], [0, 0, 1, 1, -1])
    assert (table.tolist(), names) == ([[2, 0, 0], [0, 2, 1]], ["0", "1", "dead"])


def test_cluster_fractions_sorted_largest_first():
    assert cluster_fractions([0, 1, 1, 1, -1]) == ([0.6, 0.2], 0.2)


def test_filter_view_orders_by_coordinate_and_maps_zero_to_grey():
    w = np.random.default_rng(1).normal(size=(6, 3, 5, 5))
    w[2] = 0.0
    view = filter_view(w)
    assert np.all(np.diff(view["coord"]) >= 0)
    assert view["images"].shape == (6, 5, 5, 3)
    assert np.allclose(view["images"][list(view["order"]).index(2)], 0.5)


def test_first_conv_is_the_layer_reading_the_input(planted):
    _, graph = planted()
    assert first_conv(graph) == "stem"


@pytest.mark.slow
def test_write_results_writes_every_output(folder):
    names = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    expected = {"summary.json", "arrays.npz", "layers.csv", "units.csv", "report.html", "report.pdf",
                "channel_graph.graphml", "channel_graph.gexf", "channel_graph.node_link.json",
                "channel_graph.cytoscape.json", "unit_graph.graphml.gz",
                "figures/overview.png", "figures/overview.svg", "figures/filters.png", "figures/filters.svg"}
    assert expected <= names
    assert any(n.startswith("figures/layers/") and n.endswith(".png") for n in names)
    # featured layers' figures: PNG files (their vector form is in the PDF)
    assert any(n.endswith("_confusion.png") for n in names)


@pytest.mark.slow
def test_rebuild_report_redraws_from_the_folder_alone(folder, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    shutil.rmtree(copy / "figures")
    (copy / "report.html").unlink()
    table = (copy / "units.csv").read_bytes()
    written = rebuild_report(copy)
    assert (copy / "report.html").is_file() and (copy / "figures" / "overview.svg").is_file()
    assert copy / "report.pdf" in written
    # the analysis' tables keep their full precision: summary.json's 7 digits never overwrite them
    assert (copy / "units.csv").read_bytes() == table and copy / "units.csv" not in written
    (copy / "layers.csv").unlink()
    assert copy / "layers.csv" in rebuild_report(copy)


def test_rebuild_report_names_a_missing_arrays_file(folder, tmp_path):
    copy = tmp_path / "old"
    shutil.copytree(folder, copy)
    (copy / "arrays.npz").unlink()
    with pytest.raises(ModularityError, match="arrays.npz"):
        rebuild_report(copy)


def test_load_arrays_rejects_arrays_of_another_run(folder, tmp_path):
    copy = tmp_path / "mixed"
    shutil.copytree(folder, copy)
    data = json.loads((copy / "summary.json").read_text())
    data["layers"][0]["name"] = "renamed"
    (copy / "summary.json").write_text(json.dumps(data))
    from modularity.results import load_summary

    with pytest.raises(ModularityError, match="different runs"):
        load_arrays(copy, load_summary(copy))


@pytest.mark.slow
def test_cli_report_rebuilds_a_folder(folder, tmp_path, capsys):
    copy = tmp_path / "cli"
    shutil.copytree(folder, copy)
    assert main(["report", str(copy), "--quiet"]) == 0


def test_cli_report_on_a_folder_without_summary_is_a_one_line_error(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert "not a complete results folder" in capsys.readouterr().err


def test_figure_arrays_hold_a_matrix_per_layer_and_the_filters(planted):
    result, graph = planted()
    arrays = figure_arrays(graph, result, profiles_of(graph, result))
    assert [f"m{i}" in arrays for i in range(len(result.layers))] == [True] * len(result.layers)
    assert arrays["filters"].shape == (8, 3, 3, 3) and str(arrays["filters_layer"]) == "stem"


def test_null_draws_live_in_the_arrays_not_in_the_summary_unless_asked(folder, planted, tmp_path, monkeypatch):
    import json

    import modularity.pipeline
    from modularity.arrays import restore_draws
    from modularity.results import load_summary

    summary = json.loads((folder / "summary.json").read_text())
    assert all(layer["null_draws"] == {} for layer in summary["layers"])
    result = load_summary(folder)
    restore_draws(result, load_arrays(folder, result))
    original, _ = planted()
    assert [layer.null_draws for layer in result.layers] == [layer.null_draws for layer in original.layers]
    kept, graph = planted()
    monkeypatch.setattr(modularity.pipeline, "build_reports", lambda *a, **k: [])  # the summary is the point
    save_results(kept, graph, tmp_path / "kept", draws_in_summary=True)
    again = json.loads((tmp_path / "kept" / "summary.json").read_text())
    assert again["layers"][-1]["null_draws"]["ncut"] and again["layers"][-1]["null_draws"]["ari"]


@pytest.mark.slow
def test_save_results_shows_progress_that_ends_at_its_total(saved):
    folder, printed = saved
    counts = [(int(a), int(b)) for a, b in re.findall(r"saving results:.*?(\d+)/(\d+)", printed)]
    pages = len(__import__("pypdf").PdfReader(str(folder / "report.pdf")).pages)
    # summary.json, arrays.npz, three tasks beside the drawing (unit graph, layer graphs, tables), every page, HTML
    assert counts[-1] == (2 + 3 + pages + 1,) * 2
