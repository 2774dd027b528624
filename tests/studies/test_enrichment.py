"""Enrichment of labelled units per branch and cluster (modularity.studies.enrichment)."""

from math import comb
from types import SimpleNamespace

import numpy as np
import pytest

from modularity.errors import ModularityError
from modularity.studies.enrichment import (
    CIRCUITS_EXHAUSTIVE,
    LUCID_INCEPTIONV1_BRANCHES,
    branch_labels,
    enrichment,
    enrichment_for_result,
    load_unit_labels,
)


def _lucid_tests():
    labels = load_unit_labels()
    groups = {layer: branch_labels([w for _, w in spec]) for layer, spec in LUCID_INCEPTIONV1_BRANCHES.items()}
    names = {layer: [n for n, _ in spec] for layer, spec in LUCID_INCEPTIONV1_BRANCHES.items()}
    return enrichment(labels, groups, names, CIRCUITS_EXHAUSTIVE)


def _find(tests, layer, category, branch):
    (t,) = [t for t in tests if t.layer == layer and t.category == category and t.group_name == branch]
    return t


def test_shipped_labels_cover_the_documented_units():
    labels = load_unit_labels()
    assert sorted(labels) == ["mixed3a", "mixed3b", "mixed4a"]
    assert len(labels["mixed3a"]) == 32 and min(labels["mixed3a"]) == 192 and max(labels["mixed3a"]) == 223
    assert sum(c == "curve_related" for c in labels["mixed3b"].values()) == 30


def test_mixed3a_bw_vs_color_reproduces_the_published_p_value():
    t = _find(_lucid_tests(), "mixed3a", "bw_vs_color", "5x5")
    assert (t.n_units, t.group_size, t.n_category, t.n_in_group) == (256, 32, 9, 9)
    assert t.p_value == pytest.approx(comb(32, 9) / comb(256, 9), rel=1e-9)
    assert f"{t.p_value:.3g}" == "2.48e-09" and t.exhaustive


def test_mixed3b_curves_reproduce_the_published_p_value():
    t = _find(_lucid_tests(), "mixed3b", "curve_related", "5x5")
    assert (t.n_units, t.group_size, t.n_category, t.n_in_group) == (480, 96, 30, 30)
    assert t.p_value == pytest.approx(comb(96, 30) / comb(480, 30), rel=1e-9)
    assert f"{t.p_value:.3g}" == "1.68e-23"


def test_other_branches_are_not_enriched():
    t = _find(_lucid_tests(), "mixed3a", "bw_vs_color", "3x3")
    assert t.n_in_group == 0 and t.p_value == pytest.approx(1.0)


def test_non_exhaustive_categories_are_flagged():
    t = _find(_lucid_tests(), "mixed4a", "3d_geometry", "5x5")
    assert not t.exhaustive


def test_hypergeometric_tail_matches_fisher_exact():
    from scipy.stats import fisher_exact

    labels = {"L": {0: "a", 1: "a", 5: "a", 9: "a"}}
    tests = enrichment(labels, {"L": branch_labels([6, 6])})
    x, k, n, total = 3, 6, 4, 12
    _, p = fisher_exact([[x, k - x], [n - x, total - k - n + x]], alternative="greater")
    assert tests[0].p_value == pytest.approx(p)


def test_bh_adjustment_across_tests():
    tests = _lucid_tests()
    p = np.array([t.p_value for t in tests])
    m = len(p)
    i = int(np.argmin(p))
    assert tests[i].p_value_bh == pytest.approx(min(1.0, p[i] * m / 1))
    assert all(t.p_value_bh >= t.p_value for t in tests)


def test_dead_units_leave_the_population():
    groups = np.array([0, 0, 1, 1, -1, -1])
    tests = enrichment({"L": {0: "a", 1: "a"}}, {"L": groups})
    assert tests[0].n_units == 4
    assert tests[0].p_value == pytest.approx(comb(2, 2) / comb(4, 2))


def test_units_outside_the_layer_raise():
    with pytest.raises(ModularityError, match="outside layer"):
        enrichment({"L": {10: "a"}}, {"L": np.zeros(4, int)})


def test_bad_csv_raises(tmp_path):
    bad = tmp_path / "u.csv"
    bad.write_text("layer,unit\nL,1\n")
    with pytest.raises(ModularityError, match="layer,unit,category"):
        load_unit_labels(bad)


def test_enrichment_for_result_uses_clusters():
    layer = SimpleNamespace(name="L", clusters=[0, 0, 0, 1, 1, 1], branches=None, branch_names=None)
    tests = enrichment_for_result(SimpleNamespace(layers=[layer]), {"L": {0: "a", 1: "a", 2: "a"}})
    assert tests[0].group == 0 and tests[0].p_value == pytest.approx(1 / comb(6, 3))
