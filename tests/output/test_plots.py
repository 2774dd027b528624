"""Figures: each builds from plain data, labels its axes and uses the shared palette."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.colors import to_hex
from matplotlib.figure import Figure

from modularity.output import plots
from modularity.output.figures import confusion_table


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _labelled(fig) -> bool:
    axes = [ax for ax in fig.axes if ax.get_xlabel() or ax.get_ylabel()]
    return bool(axes) and all(ax.get_xlabel() and ax.get_ylabel() for ax in axes if ax.has_data())


def test_display_name_escapes_dollar_and_shortens():
    name = plots.display_name("a$b$" + "x" * 100, width=20)
    assert (len(name), name.startswith(r"a\$b\$"), "…" in name) == (20, True, True)


def test_label_colour_is_grey_for_dead_units_and_okabe_ito_otherwise():
    assert (plots.label_colour(-1), plots.label_colour(9)) == (plots.DEAD, plots.PALETTE[1])


def test_spectrum_figure_draws_observed_and_null_band(planted):
    result, _ = planted()
    fig = plots.spectrum_figure(result.layer("block"), variants=("normalised",))
    ax = fig.axes[0]
    labels = sorted(line.get_label() for line in ax.lines if not line.get_label().startswith("_"))
    # observed, the null mean, and the 95% band (filled, with both edges drawn so it stays visible)
    assert (labels, len(ax.lines), len(ax.collections), _labelled(fig)) == (["null mean", "observed"], 4, 1, True)


def test_embedding_figure_colours_left_by_branch_and_right_by_cluster(planted):
    result, _ = planted()
    layer = result.layer("block")
    fig = plots.embedding_figure(layer)
    left = {to_hex(c.get_facecolor()[0]) for c in fig.axes[0].collections}
    right = {to_hex(c.get_facecolor()[0]) for c in fig.axes[1].collections}
    assert left == {plots.label_colour(b).lower() for b in set(layer.branches)}
    assert right == {plots.label_colour(c).lower() for c in set(layer.clusters)}


def test_matrix_figure_marks_cluster_boundaries():
    m = np.random.default_rng(0).random((6, 8))
    fig = plots.matrix_figure(m, [0, 0, 0, 1, 1, 1], [0, 0, 0, 0, 1, 1, 1, 1], [0, 0, 1, 1, 0, 0, 1, 1], name="x")
    ax = next(a for a in fig.axes if a.get_xlabel())
    # one vertical and one horizontal white line between the two clusters
    assert sorted(line.get_xydata()[0][0] for line in ax.lines if line.get_xydata()[0][0] == line.get_xydata()[1][0]) \
        == [3.5]


def test_confusion_figure_annotates_counts():
    table, _ = confusion_table([0, 0, 1, 1], [1, 1, 0, -1])
    fig = plots.confusion_figure(table, ["a", "b"], "layer")
    texts = sorted(t.get_text() for t in fig.axes[0].texts)
    assert texts == sorted(str(v) for v in table.ravel())


def test_null_figure_uses_normal_curve_without_draws(planted):
    result, _ = planted()
    layer = result.layer("block")
    layer.null_draws = {}  # results written before null draws were stored
    fig = plots.null_figure(layer)
    assert fig.axes[0].get_ylabel() == "relative density" and len(fig.axes) == 2


def test_null_figure_uses_histogram_with_raw_draws(planted):
    result, _ = planted()
    layer = result.layer("block")
    layer.null_draws = {"ncut": [2.0, 2.1, 2.2, 2.3, 2.2], "ari": [0.0, 0.1, -0.1, 0.0, 0.05]}
    fig = plots.null_figure(layer)
    assert [ax.get_ylabel() for ax in fig.axes] == ["count", "count"]


def test_filters_figure_draws_one_tile_per_filter():
    images = np.full((5, 3, 3, 3), 0.5)
    fig = plots.filters_figure(images, [0, 0, 1, 1, -1], "conv1", "coordinate", n_cols=4)
    (mosaic,) = [im.get_array() for ax in fig.axes for im in ax.images]  # one image: an axes per tile was slow
    grey = np.all(np.isclose(mosaic, 0.5), axis=-1)  # the filters' own (zero-weight) pixels
    rows, cols = np.flatnonzero(grey.any(axis=1)), np.flatnonzero(grey.any(axis=0))
    tiles = (np.count_nonzero(np.diff(rows) > 1) + 1) * (np.count_nonzero(np.diff(cols) > 1) + 1)
    assert tiles == 8 and grey.sum() == 5 * 24 * 24  # 2 rows x 4 columns of places, 5 tiles of 3 x 8 pixels


def test_network_figure_has_one_row_per_layer():
    fig = plots.network_figure(["a", "b", "c"], [[0.5, 0.5], [1.0], [0.7, 0.2]], [0.0, 0.0, 0.1],
                               [-3.0, None, 1.0], [True, False, False], [None, 0.8, None], [False, True, False])
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["a", "b", "c"] and _labelled(fig) is not None


def test_layer_sheet_without_matrix_says_so(planted):
    result, _ = planted()
    fig = plots.layer_sheet(result.layer("stem"))
    assert any("not stored" in t.get_text() for ax in fig.axes for t in ax.texts)


def test_plots_module_does_no_linear_algebra():
    import inspect

    source = inspect.getsource(plots)
    assert not any(word in source for word in ("linalg", "svd(", "percentile(", "bincount("))


def test_a_null_far_from_the_observed_value_keeps_its_shape_and_points_to_it():
    """The axis spans the null (not a sliver of it) and an arrow at its edge marks where the observed value is."""
    fig = Figure(figsize=(4, 3))
    ax = fig.subplots()
    draws = list(np.random.default_rng(0).normal(2.0, 0.01, 100))
    plots.draw_null(ax, 1.5, None, None, draws, "n-cut", 0.0099, "less")
    left, right = ax.get_xlim()
    assert left > 1.9 and right < 2.1  # the null fills the axis
    label = next(t.get_text() for t in ax.get_legend().get_texts() if t.get_text().startswith("observed"))
    z = (1.5 - np.mean(draws)) / np.std(draws, ddof=1)
    assert "null sd" in label and "off the axis" in label and f"{z:+.1f}" in label
    assert any(a.arrow_patch is not None for a in ax.texts if hasattr(a, "arrow_patch"))


def test_a_null_near_the_observed_value_marks_it_with_a_line():
    fig = Figure(figsize=(4, 3))
    ax = fig.subplots()
    plots.draw_null(ax, 2.005, None, None, list(np.linspace(1.98, 2.02, 50)), "n-cut", 0.3, "less")
    assert any(line.get_xdata()[0] == 2.005 for line in ax.lines)
    assert not [a for a in ax.texts if getattr(a, "arrow_patch", None) is not None]


def test_spectra_stack_in_a_narrow_figure():
    layer = type("L", (), {"spectra": {"raw": [3.0, 2.0, 1.0], "normalised": [1.0, 0.5, 0.2]}, "singular_values":
                           [3.0, 2.0, 1.0], "null_spectra": {}, "name": "conv"})()
    narrow = plots.spectrum_figure(layer, fig=Figure(figsize=(3.5, 4)))
    wide = plots.spectrum_figure(layer, fig=Figure(figsize=(7, 3)))
    positions = [[ax.get_position().y0 for ax in f.axes] for f in (narrow, wide)]
    assert positions[0][0] != positions[0][1] and positions[1][0] == positions[1][1]
