"""Graph exports (layer and unit level) in four formats, and the CSV tables."""

from __future__ import annotations

import csv
import math

import networkx as nx
import numpy as np
import pytest

from modularity.core.magnitude import downstream_profile
from modularity.output.export import (
    GRAPH_FORMATS,
    fit_top_k,
    layer_graph,
    read_graph,
    unit_graph,
    unit_id,
    write_csv,
    write_graph,
)
from modularity.output.figures import write_tables
from modularity.pipeline import profiles_of


@pytest.fixture(scope="module")
def graphs(planted):
    result, graph = planted()
    return result, graph, layer_graph(graph, result), unit_graph(graph, result, profiles_of(graph, result), top_k=4)


def _same(a: nx.Graph, b: nx.Graph) -> None:
    assert set(a.nodes) == set(b.nodes)
    assert set(a.edges) == set(b.edges)
    for n in a.nodes:
        assert a.nodes[n] == pytest.approx(b.nodes[n]), n
    for u, v in a.edges:
        assert a.edges[u, v] == pytest.approx(b.edges[u, v]), (u, v)


@pytest.mark.parametrize("fmt", sorted(GRAPH_FORMATS))
def test_layer_graph_round_trips(graphs, tmp_path, fmt):
    g = graphs[2]
    back = read_graph(write_graph(g, tmp_path / f"g{GRAPH_FORMATS[fmt]}"))
    _same(g, back)


@pytest.mark.parametrize("fmt", sorted(GRAPH_FORMATS))
def test_unit_graph_round_trips(graphs, tmp_path, fmt):
    g = graphs[3]
    back = read_graph(write_graph(g, tmp_path / f"u{GRAPH_FORMATS[fmt]}"))
    _same(g, back)


def test_unit_graph_keeps_the_strongest_edges_per_consumer_unit(graphs):
    result, graph, _, g = graphs
    m = downstream_profile(graph, "block", result.reduction, result.expand).matrix
    for row in range(m.shape[0]):
        kept = sorted(int(u.rsplit(":", 1)[1]) for u in g.predecessors(unit_id("head", row)) if u.startswith("block:"))
        assert kept == sorted(np.argsort(-m[row])[:4].tolist())


def test_unit_graph_edge_weights_are_magnitudes(graphs):
    result, graph, _, g = graphs
    m = downstream_profile(graph, "block", result.reduction, result.expand).matrix
    weights = [d["weight"] for u, v, d in g.edges(data=True) if u.startswith("block:") and v.startswith("head:")]
    assert sorted(weights) == pytest.approx(sorted(np.sort(m, axis=1)[:, -4:].ravel().tolist()))


def test_unit_graph_nodes_carry_branch_cluster_and_coordinates(graphs):
    result, _, _, g = graphs
    block = result.layer("block")
    node = g.nodes[unit_id("block", 9)]
    assert (node["branch"], node["cluster"], node["branch_name"]) == \
        (block.branches[9], block.clusters[9], block.branch_names[block.branches[9]])
    assert node["sv2_normalised"] == pytest.approx(block.embedding["normalised"][9][1])


def test_unit_graph_zero_top_k_keeps_every_nonzero_connection(planted):
    result, graph = planted()
    g = unit_graph(graph, result, profiles_of(graph, result), top_k=0)
    m = downstream_profile(graph, "block", result.reduction, result.expand).matrix
    n_block = sum(1 for u, v in g.edges if u.startswith("block:"))
    assert n_block == int((m > 0).sum())


def test_unit_graph_adds_unit_properties(planted):
    result, graph = planted()
    g = unit_graph(graph, result, profiles_of(graph, result), top_k=2, unit_properties={"stem": {"colour": [0.5] * 8}})
    assert g.nodes[unit_id("stem", 7)]["colour"] == 0.5


def test_fit_top_k_lowers_k_to_the_edge_budget():
    assert (fit_top_k([(100, 50), (10, 8)], 16, 1000), fit_top_k([(100, 50)], 16, 10**6)) == (9, 16)


def test_unit_graph_respects_max_edges(planted):
    result, graph = planted()
    g = unit_graph(graph, result, profiles_of(graph, result), top_k=16, max_edges=200)
    assert g.number_of_edges() <= 200 and g.graph["top_k"] < 16


def test_layer_graph_leaves_missing_statistics_out(planted):
    result, graph = planted()
    g = layer_graph(graph, result)
    assert "ari" not in g.nodes["stem"] and not any(
        isinstance(v, float) and math.isnan(v) for _, d in g.nodes(data=True) for v in d.values())


def test_layers_csv_has_one_row_per_layer_with_statistics(planted, tmp_path):
    result, _ = planted()
    write_tables(result, tmp_path)
    with (tmp_path / "layers.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    block = next(r for r in rows if r["name"] == "block")
    assert len(rows) == len(result.layers)
    assert float(block["ari"]) == pytest.approx(result.layer("block").recovery.ari)
    assert float(block["ncut_null_mean"]) == pytest.approx(result.layer("block").structure.ncut.null_mean)


def test_units_csv_has_one_row_per_unit(planted, tmp_path):
    result, _ = planted()
    write_tables(result, tmp_path)
    with (tmp_path / "units.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == sum(r.n_units for r in result.layers)
    assert {"layer", "unit", "branch", "cluster", "sv1_raw", "sv3_normalised"} <= set(rows[0])


def test_write_csv_leaves_missing_cells_empty(tmp_path):
    path = write_csv([{"a": 1, "b": None}], tmp_path / "t.csv")
    assert path.read_text(encoding="utf-8").splitlines() == ["a,b", "1,"]


def test_layer_rows_mark_unbranched_layers_without_ari(planted):
    result, _ = planted()
    assert next(r for r in result.rows() if r.name == "stem").ari is None


def test_unit_graph_of_some_layers_has_only_their_units_as_producers(planted):
    result, graph = planted()
    g = unit_graph(graph, result, profiles_of(graph, result), top_k=4, layers=["block"])
    producers = {g.nodes[u]["layer"] for u, _ in g.edges}
    analysed = {d["layer"] for _, d in g.nodes(data=True) if d.get("analysed")}
    assert producers == analysed == {"block"} and g.graph["layers"] == "block"


def test_unit_graph_refuses_a_layer_that_was_not_analysed(planted):
    result, graph = planted()
    with pytest.raises(ValueError, match="not analysed"):
        unit_graph(graph, result, profiles_of(graph, result), layers=["nowhere"])
