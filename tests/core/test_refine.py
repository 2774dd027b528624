import numpy as np
import pytest

from modularity.core.metrics import adjusted_rand
from modularity.core.refine import (
    _second_right,
    balance,
    block_information,
    information,
    itcc,
    itcc_step,
    merge_split,
    two_means_1d,
)


def _planted(rng, col_sizes=(12, 24, 6, 6), row_sizes=(20, 20, 10, 10), factor=3.0):
    cols = np.repeat(np.arange(len(col_sizes)), col_sizes)
    rows = np.repeat(np.arange(len(row_sizes)), row_sizes)
    a = rng.random((len(rows), len(cols))) * np.where(rows[:, None] == cols[None, :], factor, 1.0)
    return a, rows, cols


def test_block_information_is_the_mutual_information():
    p = np.array([[0.3, 0.1], [0.1, 0.5]])
    pr, pc = p.sum(axis=1), p.sum(axis=0)
    expect = sum(p[i, j] * np.log(p[i, j] / (pr[i] * pc[j])) for i in range(2) for j in range(2))
    assert block_information(p) == pytest.approx(expect)
    assert block_information(10 * p) == pytest.approx(expect)  # scale-free
    assert block_information(np.outer([1.0, 2.0], [3.0, 1.0, 1.0])) == pytest.approx(0.0, abs=1e-15)
    assert block_information(np.diag([1.0, 0.0, 1.0])) == pytest.approx(np.log(2))  # empty clusters are ignored


def test_itcc_step_minimises_the_kl_divergence(rng):
    w = rng.random((15, 12))
    rows, cols = rng.integers(0, 3, 15), rng.integers(0, 4, 12)
    to_cols = np.stack([w[:, cols == c].sum(axis=1) for c in range(4)], axis=1)  # (15, 4)
    block = np.stack([to_cols[rows == r].sum(axis=0) for r in range(3)])  # (3, 4)
    cond = block / block.sum(axis=1, keepdims=True)
    px = to_cols / to_cols.sum(axis=1, keepdims=True)
    kl = np.array([[np.sum(px[x] * np.log(px[x] / cond[r])) for r in range(3)] for x in range(15)])
    assert np.array_equal(itcc_step(w, rows, cols, 3, 4), kl.argmin(axis=1))


def test_itcc_never_lowers_the_information_and_is_deterministic(rng):
    for _ in range(5):
        w = rng.random((40, 30)) ** 3
        rows, cols = rng.integers(0, 6, 40), rng.integers(0, 3, 30)
        before = information(w, rows, cols, 6, 3)
        r1, c1, after = itcc(w, rows, cols, 6, 3)
        assert after >= before - 1e-15
        assert after == pytest.approx(information(w, r1, c1, 6, 3))
        r2, c2, again = itcc(w, rows, cols, 6, 3)
        assert np.array_equal(r1, r2) and np.array_equal(c1, c2) and again == after


def test_itcc_repairs_units_on_the_wrong_side(rng):
    a, rows, cols = _planted(rng)
    noisy = cols.copy()
    flip = rng.choice(len(cols), 8, replace=False)
    noisy[flip] = (noisy[flip] + 1) % 4
    _, fixed, _ = itcc(a, rows, noisy, 4, 4)
    assert adjusted_rand(cols, noisy) < 0.8
    assert adjusted_rand(cols, fixed) == 1.0


def test_itcc_works_in_float32(rng):
    a, rows, cols = _planted(rng)
    noisy = cols.copy()
    noisy[:3] = 3
    _, fixed, info = itcc(a.astype(np.float32), rows, noisy, 4, 4)
    assert adjusted_rand(cols, fixed) == 1.0 and np.isfinite(info)


def test_merge_split_repairs_a_merged_pair_and_a_split_group(rng):
    a, rows, cols = _planted(rng)
    collapsed = cols.copy()
    collapsed[cols == 3] = 2  # the two small groups merged
    big = np.flatnonzero(cols == 1)
    collapsed[big[::2]] = 3  # the big group split in two
    assert adjusted_rand(cols, collapsed) < 0.7
    # single-unit updates cannot undo it
    _, stuck, stuck_info = itcc(a, rows, collapsed, 4, 4)
    assert adjusted_rand(cols, stuck) < 0.9
    _, repaired, info = merge_split(a, rows, collapsed, 4, 4)
    assert adjusted_rand(cols, repaired) == 1.0
    assert info > stuck_info


def test_merge_split_leaves_a_correct_partition_alone(rng):
    a, rows, cols = _planted(rng)
    _, c, _ = merge_split(a, rows, cols, 4, 4)
    assert adjusted_rand(cols, c) == 1.0


def test_two_means_1d_is_the_exact_optimum(rng):
    for n in (2, 3, 7, 20):
        x = rng.normal(size=n)
        upper = two_means_1d(x)
        order = np.sort(x)
        costs = [np.var(order[:i]) * i + np.var(order[i:]) * (n - i) for i in range(1, n)]
        best = int(np.argmin(costs)) + 1
        assert set(np.flatnonzero(upper)) == set(np.argsort(x)[best:])


def test_second_right_matches_the_svd(rng):
    a, _, _ = _planted(rng, factor=2.0)
    dr, dc = a.sum(axis=1), a.sum(axis=0)
    _, s, vt = np.linalg.svd(a / np.sqrt(dr)[:, None] / np.sqrt(dc)[None, :])
    expect = vt[1] / np.sqrt(dc)
    got, value, _ = _second_right(a, n_iter=500, tol=1e-12)
    cos = abs(got @ expect) / np.linalg.norm(got) / np.linalg.norm(expect)
    assert s[1] > 1.05 * s[2] and cos > 1 - 1e-6 and value == pytest.approx(s[1])


def test_balance_equalises_row_and_column_sums(rng):
    a = rng.random((20, 30)) * rng.random(20)[:, None] * 100
    for dtype in (np.float64, np.float32):
        b = balance(a.astype(dtype), n_iter=200)
        assert b.dtype == dtype
        assert np.allclose(b.sum(axis=1) / b.sum(axis=1).mean(), 1, atol=1e-3)
        assert np.allclose(b.sum(axis=0) / b.sum(axis=0).mean(), 1, atol=1e-3)
