"""Agreement between two clusterings or analyses (modularity.studies.agreement)."""

import numpy as np
import pytest

from modularity import analyze
from modularity.core.metrics import contingency
from modularity.errors import ModularityError
from modularity.studies.agreement import cluster_agreement, compare_results
from tests.nets import PlantedNet


def test_identical_clusterings_up_to_renaming_agree_fully():
    a = np.array([0, 0, 1, 1, 2, 2, 2])
    r = cluster_agreement(a, (a + 1) % 3)
    assert r.matched_fraction == 1.0 and r.ari == pytest.approx(1.0)
    assert sorted(r.matching) == [(0, 1), (1, 2), (2, 0)]


def test_matched_fraction_by_hand():
    # Table rows a in {0,1}, columns b in {0,1,2}: [[3,1,0],[0,1,3]]: best matching 3 + 3 of 8.
    a = [0, 0, 0, 0, 1, 1, 1, 1]
    b = [0, 0, 0, 1, 1, 2, 2, 2]
    r = cluster_agreement(a, b)
    assert r.matched_fraction == pytest.approx(6 / 8)
    assert r.contingency == [[3, 1, 0], [0, 1, 3]]


def test_unlabelled_units_are_left_out():
    r = cluster_agreement([0, 0, 1, -1], [1, 1, 0, 0])
    assert r.n_units == 3 and r.matched_fraction == 1.0


def test_random_labellings_are_near_the_permutation_chance_level():
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 4, 400), rng.integers(0, 4, 400)
    r = cluster_agreement(a, b, n_permutations=99, seed=0)
    assert abs(r.ari) < 0.02 and r.p_value > 0.05
    assert r.null_mean == pytest.approx(r.matched_fraction, abs=0.05)


def test_length_mismatch_raises():
    with pytest.raises(ModularityError, match="different numbers"):
        cluster_agreement([0, 1], [0, 1, 1])


def test_contingency_counts():
    table, la, lb = contingency(np.array([0, 1, 1]), np.array([2, 2, 3]), return_labels=True)
    assert table.tolist() == [[1, 0], [1, 1]] and la.tolist() == [0, 1] and lb.tolist() == [2, 3]


def test_compare_results_matches_layers_by_name():
    # Two checkpoints of one net with the same planted structure but independent noise.
    ra = analyze(PlantedNet(signal=4.0, seed=0), layers="block", n_permutations=0, input_size=(8, 8))
    rb = analyze(PlantedNet(signal=4.0, seed=1), layers="block,head", n_permutations=0, input_size=(8, 8))
    (la,) = compare_results(ra, rb)
    assert la.layer == "block" and la.k_a == la.k_b == 4
    assert la.agreement.matched_fraction == 1.0


def test_compare_results_without_shared_layers_raises():
    ra = analyze(PlantedNet(seed=0), layers="block", n_permutations=0, input_size=(8, 8))
    rb = analyze(PlantedNet(seed=0), layers="stem", n_permutations=0, input_size=(8, 8))
    with pytest.raises(ModularityError, match="share no analysed layer"):
        compare_results(ra, rb)
