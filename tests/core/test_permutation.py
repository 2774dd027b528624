"""Label-permutation, sequential and tail p-values (modularity.core.permutation)."""

import math

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from modularity.core.metrics import adjusted_rand, normalized_mutual_info
from modularity.core.nulls import binomial_ci, empirical_p
from modularity.core.permutation import (
    besag_clifford,
    gpd_tail_p_value,
    label_permutation_test,
    sequential_p_value,
    table_statistics,
)


def _labels_of(table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r, c = table.shape
    counts = table.ravel()
    return np.repeat(np.repeat(np.arange(r), c), counts), np.repeat(np.tile(np.arange(c), r), counts)


# ----------------------------------------------------------------------------- vectorised ARI / NMI


def test_table_statistics_equal_metrics_and_sklearn_on_random_tables():
    rng = np.random.default_rng(0)
    for _ in range(200):
        r, c = rng.integers(1, 6, 2)
        table = rng.integers(0, 8, (r, c))
        table[rng.random((r, c)) < 0.3] = 0  # empty cells and, sometimes, empty rows or columns
        a, b = _labels_of(table)
        got = table_statistics(table)
        assert float(got["ari"]) == pytest.approx(adjusted_rand(a, b), abs=1e-12)
        assert float(got["nmi"]) == pytest.approx(normalized_mutual_info(a, b), abs=1e-12)
        if len(a) > 1 and len(np.unique(a)) > 1 and len(np.unique(b)) > 1:
            assert float(got["ari"]) == pytest.approx(adjusted_rand_score(a, b), abs=1e-12)
            assert float(got["nmi"]) == pytest.approx(normalized_mutual_info_score(a, b), abs=1e-12)


def test_table_statistics_on_a_stack_equal_one_by_one():
    rng = np.random.default_rng(1)
    stack = rng.integers(0, 20, (50, 3, 4))
    got = table_statistics(stack)
    for i, table in enumerate(stack):
        a, b = _labels_of(table)
        assert got["ari"][i] == pytest.approx(adjusted_rand(a, b), abs=1e-12)
        assert got["nmi"][i] == pytest.approx(normalized_mutual_info(a, b), abs=1e-12)


def test_table_statistics_rejects_unknown_statistics_and_negative_counts():
    with pytest.raises(ValueError):
        table_statistics(np.eye(2, dtype=int), statistics=("f1",))
    with pytest.raises(ValueError):
        table_statistics(np.array([[1, -1], [0, 2]]))


# ----------------------------------------------------------------------------- label permutation test


def test_sampled_tables_have_the_distribution_of_explicit_permutations():
    rng = np.random.default_rng(2)
    truth = np.repeat(np.arange(4), 16)
    labels = rng.integers(0, 3, 64)
    res = label_permutation_test(truth, labels, n_permutations=3000, rng=3, keep_draws=3000)
    explicit = np.array([adjusted_rand(rng.permutation(truth), labels) for _ in range(3000)])
    assert res["ari"].method == "monte-carlo"
    assert stats.ks_2samp(res["ari"].draws, explicit).pvalue > 1e-3
    assert res["ari"].null_mean == pytest.approx(explicit.mean(), abs=4 * explicit.std() / math.sqrt(1500))


def test_p_values_are_uniform_under_independence():
    rng = np.random.default_rng(4)
    truth = np.repeat(np.arange(4), 32)
    p = {"ari": [], "nmi": []}
    for i in range(200):
        labels = rng.integers(0, 4, 128)
        res = label_permutation_test(truth, labels, n_permutations=400, rng=1000 + i, keep_draws=0)
        for s in p:
            p[s].append(res[s].p_value)
    for s, values in p.items():
        values = np.asarray(values)
        assert stats.kstest(values, "uniform").pvalue > 0.01, s
        lo, hi = binomial_ci(int((values <= 0.05).sum()), len(values), level=0.99)
        assert lo <= 0.05 <= hi, (s, lo, hi)


def test_perfect_recovery_of_four_branches_gets_the_smallest_p():
    truth = np.repeat(np.arange(4), 32)
    labels = np.array([3, 0, 2, 1])[truth]  # the same partition under other names
    res = label_permutation_test(truth, labels, n_permutations=20_000, rng=0)
    for s in ("ari", "nmi"):
        assert res[s].method == "monte-carlo"
        assert res[s].observed == pytest.approx(1.0)
        assert res[s].p_value == pytest.approx(1 / 20_001)
        assert res[s].r == 0
        assert res[s].z > 20


def test_sequential_label_test_stops_after_the_first_batch_at_chance_level():
    rng = np.random.default_rng(5)
    truth = np.repeat(np.arange(4), 32)
    labels = rng.integers(0, 4, 128)
    res = label_permutation_test(truth, labels, n_permutations=100_000, rng=0, sequential_h=10,
                                 min_permutations=1000)
    full = label_permutation_test(truth, labels, n_permutations=1000, rng=0)
    for s in ("ari", "nmi"):
        assert res[s].method == "sequential" and res[s].n == 1000
        extreme = np.flatnonzero(np.cumsum(full[s].draws >= res[s].observed - 1e-12) >= 10)
        assert res[s].p_value == pytest.approx(10 / (extreme[0] + 1))  # h / l over the same 1000 tables


def test_sequential_label_test_draws_everything_for_a_significant_agreement():
    truth = np.repeat(np.arange(4), 32)
    res = label_permutation_test(truth, truth, n_permutations=20_000, rng=0, sequential_h=10)
    for s in ("ari", "nmi"):
        assert res[s].method == "monte-carlo" and res[s].n == 20_000
        assert res[s].p_value == pytest.approx(1 / 20_001)


def test_sequential_label_p_values_keep_their_level_under_independence():
    rng = np.random.default_rng(6)
    truth = np.repeat(np.arange(4), 32)
    p = []
    for i in range(300):
        res = label_permutation_test(truth, rng.integers(0, 4, 128), n_permutations=4000, rng=2000 + i,
                                     statistics=("ari",), keep_draws=0, sequential_h=10, min_permutations=200)
        p.append(res["ari"].p_value)
    p = np.asarray(p)
    lo, hi = binomial_ci(int((p <= 0.05).sum()), len(p), level=0.99)
    assert lo <= 0.05 <= hi
    assert stats.kstest(p, "uniform").pvalue > 0.01


def test_perfect_recovery_of_two_branches_is_exact():
    truth = np.repeat([0, 1], 32)
    res = label_permutation_test(truth, 1 - truth, rng=0)
    for s in ("ari", "nmi"):
        assert res[s].method == "exact"
        # only the observed table and its mirror image reach ARI (NMI) = 1
        assert res[s].p_value == pytest.approx(2 / math.comb(64, 32), rel=1e-9)


def test_exact_route_agrees_with_monte_carlo():
    rng = np.random.default_rng(5)
    truth = np.repeat([0, 1], 40)
    labels = np.where(rng.random(80) < 0.3, truth + 1, rng.integers(0, 3, 80))  # some signal
    exact = label_permutation_test(truth, labels, rng=1)
    mc = label_permutation_test(truth, labels, n_permutations=50_000, rng=1, exact=False)
    assert exact["ari"].null_mean == pytest.approx(0.0, abs=1e-12)  # ARI is adjusted to this null
    for s in ("ari", "nmi"):
        assert exact[s].method == "exact" and mc[s].method == "monte-carlo"
        se = math.sqrt(exact[s].p_value * (1 - exact[s].p_value) / 50_000)
        assert mc[s].p_value == pytest.approx(exact[s].p_value, abs=5 * se + 1e-4)
        assert mc[s].null_mean == pytest.approx(exact[s].null_mean, abs=5 * exact[s].null_sd / math.sqrt(50_000))
        assert mc[s].null_sd == pytest.approx(exact[s].null_sd, rel=0.03)
        assert exact[s].z == pytest.approx(mc[s].z, rel=0.05)


def test_exact_can_be_required_or_refused():
    truth = np.repeat(np.arange(4), 32)
    with pytest.raises(ValueError, match="tables"):
        label_permutation_test(truth, truth, rng=0, exact=True)
    two = np.repeat([0, 1], 10)
    assert label_permutation_test(two, two, n_permutations=100, rng=0, exact=False)["ari"].method == "monte-carlo"


def test_permutation_null_mean_of_ari_is_zero():
    rng = np.random.default_rng(6)
    truth = np.repeat(np.arange(4), 64)
    labels = rng.integers(0, 5, 256)
    res = label_permutation_test(truth, labels, n_permutations=20_000, rng=7)["ari"]
    assert abs(res.null_mean) < 4 * res.null_sd / math.sqrt(res.n)
    assert 0 < res.p_value <= 1
    assert res.n == 20_000 and len(res.draws) == 1000


def test_dead_units_are_excluded():
    rng = np.random.default_rng(8)
    truth = np.repeat(np.arange(4), 32)
    labels = rng.integers(0, 4, 128)
    dead = rng.random(128) < 0.2
    with_dead = labels.copy()
    with_dead[dead] = -1
    truth_dead = truth.copy()
    truth_dead[:3] = -1
    keep = ~dead & (truth_dead != -1)
    a = label_permutation_test(truth_dead, with_dead, n_permutations=2000, rng=9)
    b = label_permutation_test(truth[keep], labels[keep], n_permutations=2000, rng=9)
    for s in ("ari", "nmi"):
        assert a[s] == b[s]
        assert np.array_equal(a[s].draws, b[s].draws)
        assert a[s].observed == pytest.approx(adjusted_rand(truth[keep], labels[keep]) if s == "ari"
                                              else normalized_mutual_info(truth[keep], labels[keep]))


def test_results_are_deterministic_for_a_seed():
    rng = np.random.default_rng(10)
    truth = np.repeat(np.arange(3), 30)
    labels = rng.integers(0, 3, 90)
    a = label_permutation_test(truth, labels, n_permutations=5000, rng=11)
    b = label_permutation_test(truth, labels, n_permutations=5000, rng=np.random.default_rng(11))
    c = label_permutation_test(truth, labels, n_permutations=5000, rng=12)
    for s in ("ari", "nmi"):
        assert a[s] == b[s] and np.array_equal(a[s].draws, b[s].draws)
        assert not np.array_equal(a[s].draws, c[s].draws)


def test_one_cluster_is_degenerate():
    truth = np.repeat(np.arange(4), 8)
    res = label_permutation_test(truth, np.zeros(32, dtype=int), n_permutations=100, rng=0)
    for s in ("ari", "nmi"):
        assert res[s].method == "degenerate"
        assert res[s].p_value == 1.0 and res[s].z is None and res[s].null_sd == 0.0


def test_statistics_subset_batches_and_to_dict():
    rng = np.random.default_rng(13)
    truth = np.repeat(np.arange(4), 16)
    labels = rng.integers(0, 4, 64)
    res = label_permutation_test(truth, labels, n_permutations=1000, rng=0, statistics=("nmi",), batch=64)
    assert set(res) == {"nmi"}
    d = res["nmi"].to_dict()
    assert {"observed", "null_mean", "null_sd", "z", "p_value", "n", "alternative", "method"} <= set(d)
    with pytest.raises(ValueError):
        label_permutation_test(truth, labels[:-1])


def test_tail_estimate_for_a_perfect_recovery():
    truth = np.repeat(np.arange(4), 32)
    res = label_permutation_test(truth, truth, n_permutations=20_000, rng=0, statistics=("nmi",), tail=True)
    tail = res["nmi"].tail
    assert tail is not None and tail.r == 0
    assert tail.p_value is None or tail.p_value < 1 / 20_001  # an extrapolation past every draw, or no estimate
    # NMI = 1 lies far past the null's tail: the guard refuses such an extrapolation
    guarded = label_permutation_test(truth, truth, n_permutations=20_000, rng=0, statistics=("nmi",),
                                     tail={"min_tail_fraction": 1e-3})["nmi"].tail
    assert guarded.p_value is None and guarded.tail_fraction < 1e-3


# ----------------------------------------------------------------------------- Besag-Clifford


def _normal_draw(seed: int):
    return lambda i: float(np.random.default_rng([seed, i]).standard_normal())


def test_besag_clifford_stops_early_on_a_null_statistic():
    res = sequential_p_value(_normal_draw(0), 0.0, h=10, max_draws=1000)
    assert res.stopped_early and res.n_extreme == 10
    assert res.n_drawn < 60
    assert res.p_value == pytest.approx(10 / res.n_drawn)
    assert len(res.draws) == res.n_drawn


def test_besag_clifford_uses_every_draw_on_an_extreme_statistic():
    res = sequential_p_value(_normal_draw(1), 3.5, h=10, max_draws=500)
    assert not res.stopped_early and res.n_drawn == 500
    assert res.p_value == pytest.approx(empirical_p(res.draws, 3.5))
    assert res.p_value == pytest.approx((res.n_extreme + 1) / 501)


def test_besag_clifford_on_an_array_matches_the_sequential_version():
    draw = _normal_draw(2)
    arr = np.array([draw(i) for i in range(300)])
    for observed in (-0.5, 0.8, 2.0, 4.0):
        for alternative in ("greater", "less"):
            seq = sequential_p_value(draw, observed, alternative, h=5, max_draws=300)
            p, n_used = besag_clifford(arr, observed, alternative, h=5)
            assert (seq.p_value, seq.n_drawn) == (pytest.approx(p), n_used)
            if n_used == 300 and seq.n_extreme < 5:
                assert p == pytest.approx(empirical_p(arr, observed, alternative))


def test_besag_clifford_is_deterministic_and_min_draws_does_not_change_p():
    a = sequential_p_value(_normal_draw(3), 0.5, h=10, max_draws=1000)
    b = sequential_p_value(_normal_draw(3), 0.5, h=10, max_draws=1000)
    c = sequential_p_value(_normal_draw(3), 0.5, h=10, max_draws=1000, min_draws=200)
    assert a == b
    assert (c.p_value, c.n_drawn) == (a.p_value, a.n_drawn)
    assert len(c.draws) == 200 and np.array_equal(c.draws[:a.n_drawn], a.draws)


def test_besag_clifford_rejects_bad_input():
    with pytest.raises(ValueError):
        besag_clifford([0.1, np.nan], 0.0)
    with pytest.raises(ValueError):
        besag_clifford([0.1], 0.0, h=0)
    with pytest.raises(ValueError):
        sequential_p_value(lambda i: 0.0, 0.0, alternative="two-sided")


# ----------------------------------------------------------------------------- generalised Pareto tail


def test_gpd_tail_beyond_every_draw_of_a_normal_null():
    ratios = []
    for seed in range(5):
        draws = np.random.default_rng(seed).standard_normal(100_000)
        observed = draws.max() + 1e-6
        est = gpd_tail_p_value(draws, observed)
        assert est.method == "gpd" and est.r == 0 and est.p_value < 1 / 100_001
        ratios.append(est.p_value / stats.norm.sf(observed))
        assert 0.1 < ratios[-1] < 10
        # the lower tail of the negated draws is the same problem
        low = gpd_tail_p_value(-draws, -observed, alternative="less")
        assert low.p_value == pytest.approx(est.p_value)
    assert 1 / 3 < np.median(ratios) < 3


def test_gpd_tail_guard_refuses_far_extrapolation():
    draws = np.random.default_rng(2).standard_normal(100_000)
    far = gpd_tail_p_value(draws, 7.0, min_tail_fraction=1e-3)
    assert far.p_value is None and "too far" in far.reason
    near = gpd_tail_p_value(draws, np.sort(draws)[-5], min_tail_fraction=1e-3)  # r = 5
    assert near.method == "gpd" and near.tail_fraction >= 1e-3
    assert near.p_value == pytest.approx(near.tail_fraction * near.n_exceed / near.n)


def test_gpd_tail_of_a_discrete_null_is_rejected():
    draws = np.random.default_rng(0).poisson(3.0, 100_000).astype(float)
    est = gpd_tail_p_value(draws, 30.0)
    assert est.p_value is None and "rejected" in est.reason


def test_gpd_tail_gives_no_estimate_without_a_tail_to_fit():
    assert gpd_tail_p_value(np.zeros(10_000), 1.0).p_value is None  # degenerate
    assert "too few" in gpd_tail_p_value(np.arange(100.0), 1000.0).reason
    normal = np.random.default_rng(1).standard_normal(10_000)
    est = gpd_tail_p_value(normal, 2.0)  # hundreds of draws beyond: the empirical p is accurate
    assert est.p_value is None and est.r >= 10 and "empirical" in est.reason
