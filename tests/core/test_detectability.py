import json
import math
from itertools import pairwise

import numpy as np
import pytest

from modularity.core.detectability import (
    ABOVE_EDGE,
    BELOW_LIMIT,
    BELOW_SPECTRAL_LIMIT,
    MISSED,
    NO_STRUCTURE,
    OUTCOMES,
    RECOVERED,
    Detectability,
    bbp_threshold,
    detectability,
    expected_ari,
    spike_strength,
    spike_value,
    squared_overlaps,
    verdict,
)
from modularity.core.methods import cocluster
from modularity.core.metrics import adjusted_rand
from modularity.core.permutation import label_permutation_test
from modularity.core.spectral import degree_normalised, top_singular
from modularity.errors import ModularityError


def planted(n, sizes, s, seed, row_sd=0.0):
    """|N(0, 1)| magnitudes with the weights from branch b to row share b scaled by 1 + s (method_benchmark's plant)."""
    rng = np.random.default_rng(seed)
    truth = np.repeat(np.arange(len(sizes)), sizes)
    rows = rng.permutation(np.arange(n) % len(sizes))
    a = np.abs(rng.standard_normal((n, len(truth)))) * (1 + s * (rows[:, None] == truth[None, :]))
    return a * np.exp(row_sd * rng.standard_normal(n))[:, None], truth


# ------------------------------------------------------------------ formulas

@pytest.mark.parametrize("n, m, sigma, expected", [(256, 256, 1.0, 16.0), (832, 256, 0.5, 0.5 * (832 * 256) ** 0.25),
                                                   (1, 10_000, 2.0, 20.0)])
def test_threshold_formula_on_known_shapes(n, m, sigma, expected):
    assert bbp_threshold(n, m, sigma) == pytest.approx(expected)
    assert bbp_threshold(m, n, sigma) == pytest.approx(expected)  # symmetric in the shape


@pytest.mark.parametrize("n, m", [(400, 100), (100, 400), (300, 300)])
def test_spike_value_inverts_and_sits_at_the_edge_below_threshold(n, m):
    sigma = 0.7
    star = bbp_threshold(n, m, sigma)
    edge = sigma * (math.sqrt(n) + math.sqrt(m))
    assert spike_value(0.9 * star, n, m, sigma) == pytest.approx(edge)
    assert spike_value(star, n, m, sigma) == pytest.approx(edge)
    for theta in (1.01 * star, 1.5 * star, 4 * star):
        assert spike_value(theta, n, m, sigma) > edge
        assert spike_strength(spike_value(theta, n, m, sigma), n, m, sigma) == pytest.approx(theta, rel=1e-9)
    assert spike_strength(0.99 * edge, n, m, sigma) == 0.0


def test_predicted_overlap_is_zero_below_threshold_and_grows_above():
    n, m, sigma = 832, 256, 1.0
    star = bbp_threshold(n, m, sigma)
    for f in (0.0, 0.5, 0.99, 1.0):
        assert squared_overlaps(f * star, n, m, sigma) == (0.0, 0.0)
    previous = (0.0, 0.0)
    for f in (1.01, 1.2, 1.5, 2, 4, 10):
        rows, cols = squared_overlaps(f * star, n, m, sigma)
        assert 0 < rows < 1 and 0 < cols < 1
        assert rows > previous[0] and cols > previous[1]
        assert cols > rows  # the shorter side (256 columns) is estimated better
        previous = (rows, cols)


def test_predicted_overlaps_match_a_simulation():
    rng = np.random.default_rng(3)
    n, m, sigma = 600, 200, 1.0
    theta = 1.6 * bbp_threshold(n, m, sigma)
    u, v = rng.standard_normal(n), rng.standard_normal(m)
    u, v = u / np.linalg.norm(u), v / np.linalg.norm(v)
    measured = []
    for _ in range(4):
        x = theta * np.outer(u, v) + sigma * rng.standard_normal((n, m))
        uu, _, vt = np.linalg.svd(x, full_matrices=False)
        measured.append(((uu[:, 0] @ u) ** 2, (vt[0] @ v) ** 2))
    assert np.mean(measured, axis=0) == pytest.approx(squared_overlaps(theta, n, m, sigma), abs=0.05)


def test_expected_ari_is_zero_without_information_and_kmeans_stays_below_bayes():
    groups = np.repeat([0, 1, 2], [60, 30, 30])
    onehot = np.eye(3)[groups]
    centres = np.linalg.qr(onehot - onehot.mean(axis=0))[0][:, :2]
    assert expected_ari(centres, groups, np.zeros(2)) == (0.0, 0.0)
    mean, sd = expected_ari(centres, groups, np.array([0.5, 0.3]))
    best, _ = expected_ari(centres, groups, np.array([0.5, 0.3]), assign="bayes")
    assert 0.05 < mean < best <= 1.0 and sd > 0
    assert expected_ari(centres, groups, np.array([0.95, 0.95]))[0] > 0.95


# ------------------------------------------------------------------ the estimate

def test_pure_noise_is_rarely_called_detectable():
    detectable = above = 0
    for seed in range(40):
        a, _ = planted(300, (100, 100), 0.0, seed)
        truth = np.random.default_rng(1000 + seed).permutation(np.repeat([0, 1, 2, 3], 50))  # any partition
        det = detectability(a, truth)
        detectable += det.ratio > 1
        above += det.n_above_edge > 0
        assert det.expected_ari == 0.0 or det.ratio > 1
    assert detectable <= 2  # at most 5 % of 40
    assert above <= 2


def test_strong_planting_is_well_above_threshold():
    a, truth = planted(600, (64, 128, 32, 32), 0.6, seed=1)
    det = detectability(a, truth)
    assert det.ratio > 3
    assert det.detectable
    assert det.predicted_overlap > 0.9
    assert det.expected_ari > 0.95 and det.optimal_ari > 0.95
    assert det.n_above_edge >= 3 and det.edge_gap > 0.5
    assert det.n_competing == 0
    assert det.leading_overlap > 0.9  # the leading vectors lie in the branches' span


def test_estimates_grow_with_signal_strength():
    ratios, expected = [], []
    for s in (0.0, 0.1, 0.15, 0.2, 0.3, 0.5):
        a, truth = planted(500, (100, 100, 100), s, seed=7)  # the same noise at every strength
        det = detectability(a, truth)
        ratios.append(det.ratio)
        expected.append(det.expected_ari)
    assert all(b > a for a, b in pairwise(ratios[1:]))
    assert all(b >= a - 0.02 for a, b in pairwise(expected))
    assert ratios[0] < 1 < ratios[-1] and expected[-1] > 0.9


def test_estimate_matches_the_population_ratio():
    # A = |N| (1 + s M): the signal and noise of the expected matrix, degree-normalised, give the true ratio
    n, sizes, s = 800, (100, 100), 0.2
    a, truth = planted(n, sizes, s, seed=11)
    rows = np.random.default_rng(11).permutation(np.arange(n) % 2)
    gain = 1 + s * (rows[:, None] == truth[None, :])
    mean = math.sqrt(2 / math.pi) * gain
    dr, dc = mean.sum(axis=1), mean.sum(axis=0)
    theta = np.linalg.svd(mean / np.sqrt(np.outer(dr, dc)), compute_uv=False)[1]
    sigma = math.sqrt(((1 - 2 / math.pi) * gain ** 2 / np.outer(dr, dc)).mean())
    true_ratio = theta / bbp_threshold(n, sum(sizes), sigma)
    assert detectability(a, truth).ratio == pytest.approx(true_ratio, rel=0.1)


def test_unequal_row_scales_do_not_lift_noise_above_the_edge():
    for seed in range(4):
        a, _ = planted(832, (128, 128), 0.0, seed, row_sd=0.5)
        det = detectability(a)
        naive = det.noise * (math.sqrt(832) + math.sqrt(256))
        assert det.leading[0] > 1.02 * naive  # the equal-variance edge would call this structure
        assert det.n_above_edge == 0


def test_values_and_vectors_from_the_caller_give_the_same_result():
    a, truth = planted(400, (50, 150), 0.3, seed=2)
    _, s, v = top_singular(degree_normalised(a)[0], 33)
    inside = detectability(a, truth, rng=5)
    given = detectability(a, truth, values=s, vectors=v, rng=5)
    assert given == inside
    only_values = detectability(a, truth, values=s, rng=5)
    assert only_values.leading_overlap is None and only_values.ratio == inside.ratio


def test_is_deterministic_without_a_generator():
    a, truth = planted(300, (100, 100), 0.25, seed=4)
    assert detectability(a, truth) == detectability(a, truth)


def test_dead_rows_columns_and_unlabelled_columns_are_left_out():
    a, truth = planted(300, (100, 100), 0.3, seed=6)
    padded = np.zeros((310, 205))
    padded[:300, :200] = a
    labels = np.concatenate([truth, [-1] * 5])
    padded[:300, 200:] = 1.0  # live but labelled -1: left out
    det = detectability(padded, labels)
    ref = detectability(a, truth)
    assert (det.n_rows, det.n_cols, det.k) == (300, 200, 2)
    assert det.ratio == pytest.approx(ref.ratio)


def test_unlabelled_layer_has_only_edge_fields():
    a, _ = planted(400, (100, 100), 0.4, seed=8)
    det = detectability(a)
    assert not det.labelled and det.k == 0
    assert det.signal is None and det.expected_ari is None and det.detectable is None
    assert det.n_above_edge >= 1


def test_limit_kind_follows_group_count_and_balance():
    cases = {(150, 50): "information-theoretic",  # the smaller group holds 25 % >= 21 %
             (180, 20): "spectral",  # 10 %: a hard phase is possible
             (64, 64, 64, 64): "information-theoretic",
             (64, 128, 32, 32): "spectral",
             (60,) * 5: "spectral"}
    for sizes, kind in cases.items():
        a, truth = planted(300, sizes, 0.2, seed=0)
        assert detectability(a, truth).limit == kind, sizes


def test_bad_input_is_one_error():
    with pytest.raises(ModularityError):
        detectability(-np.ones((4, 4)))
    with pytest.raises(ModularityError):
        detectability(np.ones((4, 4)), np.zeros(3))
    with pytest.raises(ModularityError):
        detectability(np.ones((4, 4)) + np.eye(4), values=np.array([0.5, 0.1]))
    a = np.ones((4, 4)) + np.eye(4)
    with pytest.raises(ModularityError):
        detectability(a, values=np.array([1.0, 0.1]), vectors=np.ones((3, 2)))


def test_degenerate_matrices_give_a_below_verdict():
    det = detectability(np.zeros((5, 5)), np.array([0, 0, 1, 1, 1]))
    assert det.ratio == 0 and verdict(det, 0.0, 1.0).startswith("below the limit")


def test_as_dict_is_json_ready():
    a, truth = planted(300, (100, 100), 0.3, seed=9)
    d = detectability(a, truth).as_dict()
    text = json.dumps(d)
    assert json.loads(text)["detectable"] is True
    assert d["expected_ari_low"] <= d["expected_ari"]
    assert isinstance(d["signals"], list)


# ------------------------------------------------------------------ verdicts

def _score(a, truth, labels):
    ari = adjusted_rand(truth, labels)
    return ari, label_permutation_test(truth, labels, 2000, rng=0, statistics=("ari",))["ari"].p_value


def test_verdict_recovered_when_the_default_finds_planted_branches():
    a, truth = planted(600, (100, 100, 100), 0.4, seed=12)
    det = detectability(a, truth)
    labels = cocluster(a, 3, 0).cols
    assert verdict(det, *_score(a, truth, labels)) == RECOVERED


def test_verdict_missed_when_a_detectable_partition_is_not_found():
    a, truth = planted(600, (100, 100, 100), 0.4, seed=12)
    det = detectability(a, truth)
    wrong = np.random.default_rng(0).permutation(truth)
    assert verdict(det, *_score(a, truth, wrong)) == MISSED
    # a significant but partial recovery (one group merged into another) is not "recovered" either
    partial = np.where(truth == 2, 1, truth)
    ari, p = _score(a, truth, partial)
    assert p < 0.05 and ari < det.expected_ari_low
    assert verdict(det, ari, p) == MISSED


def test_verdict_below_the_limit_on_noise_whatever_the_score():
    a, truth = planted(600, (300, 300), 0.0, seed=13)
    det = detectability(a, truth)
    assert verdict(det, 0.01, 0.5) == BELOW_LIMIT
    assert verdict(det, 0.3, 0.001) == BELOW_LIMIT  # a lucky score does not lift the branches above the limit
    a5, truth5 = planted(600, (60,) * 5, 0.0, seed=13)
    assert verdict(detectability(a5, truth5), 0.0, 0.5) == BELOW_SPECTRAL_LIMIT


def test_verdict_at_the_limit_when_the_expected_agreement_is_not_significant():
    det = Detectability(100, 40, 2, 0.01, 0.2, 0.02, (0.21,), 1, 0.05, signal=1.05, signals=(1.05,),
                        threshold=1.0, ratio=1.05, predicted_overlap=0.05, predicted_overlaps=(0.05,),
                        expected_ari=0.02, expected_ari_sd=0.03, optimal_ari=0.04, n_competing=0,
                        limit="information-theoretic")
    assert verdict(det, 0.02, 0.3) == BELOW_LIMIT
    assert verdict(det, 0.02, 0.01) == RECOVERED


def test_unlabelled_verdicts_follow_the_edge():
    noise, _ = planted(500, (100, 100), 0.0, seed=14)
    signal, _ = planted(500, (100, 100), 0.5, seed=14)
    assert verdict(detectability(noise)) == NO_STRUCTURE
    assert verdict(detectability(signal)) == ABOVE_EDGE
    assert {OUTCOMES[NO_STRUCTURE], OUTCOMES[ABOVE_EDGE]} == {"no_structure", "above_edge"}
