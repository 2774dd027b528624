"""Property-based tests (Hypothesis) of the spectral algorithms, the agreement metrics and the layer seeds.

Example counts are kept small so the file runs in a few seconds; every test
is deterministic (``derandomize=True``), so a failure reproduces.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from modularity.core.methods import cocluster
from modularity.core.metrics import adjusted_rand, normalized_mutual_info
from modularity.core.nulls import layer_rng
from modularity.core.spectral import (
    SVD_VARIANTS,
    bipartite_ncut,
    choose_k,
    cocluster_spectrum,
    svd_variant,
    top_singular,
    top_singular_values,
)

FEW = settings(max_examples=40, deadline=None, derandomize=True)
SOME = settings(max_examples=100, deadline=None, derandomize=True)


# ---------------------------------------------------------------- strategies

@st.composite
def planted_blocks(draw):
    """A matrix with ``k`` planted co-clusters (entries 1..2) over small noise (below 0.02), its truth, and
    random row and column permutations.

    Each block has at least two rows and two columns, so its units sit at one
    well-separated point of the spectral embedding and the co-clustering is
    determined (no k-means ties).
    """
    k = draw(st.integers(2, 4))
    row_sizes = draw(st.lists(st.integers(2, 5), min_size=k, max_size=k))
    col_sizes = draw(st.lists(st.integers(2, 5), min_size=k, max_size=k))
    noise = draw(st.sampled_from([0.0, 1e-6, 0.02]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    rows, cols = np.repeat(np.arange(k), row_sizes), np.repeat(np.arange(k), col_sizes)
    shape = (len(rows), len(cols))
    a = np.where(rows[:, None] == cols[None, :], rng.uniform(1.0, 2.0, shape), rng.uniform(0.0, noise, shape))
    row_perm = np.array(draw(st.permutations(range(len(rows)))))
    col_perm = np.array(draw(st.permutations(range(len(cols)))))
    return a, rows, cols, row_perm, col_perm


# Entries: exact zeros (dead units, forbidden blocks) or any magnitude from 1e-30 to 1e30, mixed freely.
# (Beyond about 1e154 the Gram matrix would overflow: spectral scales such matrices first.)
MAGNITUDE = st.one_of(st.just(0.0), st.floats(1e-30, 1e30), st.floats(1e-30, 10.0))
matrices = arrays(np.float64, array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=8), elements=MAGNITUDE)
moderate = arrays(np.float64, array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=8),
                  elements=st.one_of(st.just(0.0), st.floats(1e-3, 1e3)))


@st.composite
def labelling_pairs(draw, max_label: int = 5):
    n = draw(st.integers(1, 30))
    labels = st.lists(st.integers(0, max_label), min_size=n, max_size=n)
    return np.array(draw(labels)), np.array(draw(labels))


def _unpermute(labels_p: np.ndarray, perm: np.ndarray) -> np.ndarray:
    """Labels of the original units, given labels of ``x[perm]``."""
    back = np.empty_like(labels_p)
    back[perm] = labels_p
    return back


def _close(x: np.ndarray, y: np.ndarray, rel: float = 1e-9) -> bool:
    scale = max(float(np.abs(x).max(initial=0.0)), float(np.abs(y).max(initial=0.0)), 1e-300)
    return x.shape == y.shape and bool(np.all(np.abs(x - y) <= rel * scale))


# ---------------------------------------------------------------- permutations

@FEW
@given(planted_blocks())
def test_cocluster_is_equivariant_under_unit_permutations(case):
    a, true_rows, true_cols, rp, cp = case
    k = int(true_cols.max()) + 1
    ap = a[rp][:, cp]
    rows, cols, values = cocluster_spectrum(a, k, n_values=k + 1)
    rows_p, cols_p, values_p = cocluster_spectrum(ap, k, n_values=k + 1)
    back_rows, back_cols = _unpermute(rows_p, rp), _unpermute(cols_p, cp)
    # The same co-clustering up to renaming: rows and columns together, so the pairing of row and column
    # clusters is kept too.
    assert adjusted_rand(np.r_[rows, cols], np.r_[back_rows, back_cols]) == 1.0
    assert adjusted_rand(cols, back_cols) == 1.0 and adjusted_rand(rows, back_rows) == 1.0
    # Planted blocks over small noise are recovered, before and after the permutation.
    assert adjusted_rand(cols, true_cols) == adjusted_rand(cols_p, true_cols[cp]) == 1.0
    assert adjusted_rand(rows, true_rows) == adjusted_rand(rows_p, true_rows[rp]) == 1.0
    assert _close(values, values_p)
    assert bipartite_ncut(a, rows, cols) == pytest.approx(bipartite_ncut(ap, rows_p, cols_p), rel=1e-9, abs=1e-12)


@FEW
@given(planted_blocks())
def test_spectra_are_invariant_under_unit_permutations(case):
    a, _, _, rp, cp = case
    ap = a[rp][:, cp]
    for variant in SVD_VARIANTS:  # full spectra come from the Gram matrix: the smallest values to ~sqrt(eps)
        assert _close(svd_variant(a, variant).s, svd_variant(ap, variant).s, rel=1e-7), variant


# ---------------------------------------------------------------- scaling

@SOME
@given(moderate, st.floats(1e-20, 1e20))
def test_normalised_spectrum_is_invariant_to_overall_scale(a, c):
    assert _close(svd_variant(a, "normalised").s, svd_variant(c * a, "normalised").s)


def test_normalised_spectrum_is_not_invariant_to_row_or_column_scaling():
    """Not a bug, a fact to keep in mind: ``D_r^-1/2 A D_c^-1/2`` absorbs one overall scale only.

    Scaling a row changes the column degrees (and vice versa), so the spectrum moves.
    """
    a = np.array([[1.0, 1.0], [0.0, 1.0]])
    s = svd_variant(a, "normalised").s
    assert s == pytest.approx([1.0, 0.5])
    assert svd_variant(np.diag([1.0, 5.0]) @ a, "normalised").s[1] == pytest.approx(np.sqrt(5 / 12))
    assert svd_variant(a @ np.diag([1.0, 5.0]), "normalised").s[1] == pytest.approx(np.sqrt(1 / 12))


@SOME
@given(moderate)
def test_normalised_spectrum_leads_with_one(a):
    s = svd_variant(a, "normalised").s
    if np.any(a > 0):
        assert s[0] == pytest.approx(1.0, rel=1e-9) and np.all(s <= 1.0 + 1e-9)
    else:
        assert np.all(s == 0)


# ---------------------------------------------------------------- finiteness on any non-negative matrix

EDGE_CASES = [np.zeros((1, 1)), np.zeros((3, 4)), np.ones((1, 1)), np.ones((1, 5)), np.ones((5, 1)),
              np.array([[0.0, 1e30], [1e-30, 0.0]]), np.full((3, 3), 1e-30), np.full((3, 3), 1e30),
              np.array([[1.0, 0.0, 2.0], [0.0, 0.0, 0.0], [3.0, 0.0, 4.0]])]


def _with_examples(cases):
    def deco(f):
        for case in cases:
            f = example(*case)(f)
        return f
    return deco


@SOME
@given(matrices)
@_with_examples([(a,) for a in EDGE_CASES])
def test_spectra_are_finite_and_sorted(a):
    for variant in SVD_VARIANTS:
        res = svd_variant(a, variant)
        assert res.s.shape == (min(a.shape),)
        assert np.all(np.isfinite(res.s)) and np.all(res.s >= 0) and np.all(np.diff(res.s) <= 0), variant
        assert np.all(np.isfinite(res.u)) and np.all(np.isfinite(res.v)), variant
        assert res.u.shape[0] == a.shape[0] and res.v.shape[0] == a.shape[1]
    # The Gram-matrix shortcut agrees with the full SVD to within sqrt(eps) of the largest value.
    s = np.linalg.svd(a, compute_uv=False)
    k = min(3, len(s))
    tol = 1e-6 * s[0] + 1e-300
    assert np.all(np.abs(top_singular_values(a, k) - s[:k]) <= tol)
    assert np.all(np.abs(top_singular(a, k)[1] - s[:k]) <= tol)


@SOME
@given(matrices, st.integers(1, 5))
@_with_examples([(a, 3) for a in EDGE_CASES])
def test_cocluster_and_ncut_are_finite_and_in_range(a, k):
    rows, cols, values = cocluster_spectrum(a, k, n_values=3)
    live_rows, live_cols = np.any(a != 0, axis=1), np.any(a != 0, axis=0)
    n_live = int(min(live_rows.sum(), live_cols.sum()))
    k_eff = max(1, min(k, n_live))
    assert rows.shape == (a.shape[0],) and cols.shape == (a.shape[1],)
    # -1 exactly for all-zero rows and columns; live units get labels in 0..k-1.
    assert np.array_equal(rows == -1, ~live_rows) or n_live == 0
    assert np.array_equal(cols == -1, ~live_cols) or n_live == 0
    if n_live == 0:
        assert np.all(rows == -1) and np.all(cols == -1) and values.size == 0
        return
    assert rows.max() < k_eff and cols.max() < k_eff
    assert np.all(np.isfinite(values)) and np.all(values >= 0) and np.all(values <= 1 + 1e-9)
    ncut = bipartite_ncut(a, rows, cols)
    assert np.isfinite(ncut) and -1e-9 <= ncut <= k_eff + 1e-9
    chosen = choose_k(a, k_max=4)
    assert 1 <= chosen <= max(1, min(4, n_live))


# The default and the previous default (scikit-learn's methods are wrappers measured in tests/core/test_methods.py).
EQUIVARIANT_METHODS = ("spectral_refined", "adaptive_sqrt_unit_r10", "dhillon_km1_cols_sv_r10")


@FEW
@given(planted_blocks(), st.sampled_from(EQUIVARIANT_METHODS))
def test_production_methods_are_equivariant_under_unit_permutations(case, method):
    a, _, true_cols, rp, cp = case
    k = int(true_cols.max()) + 1
    ap = a[rp][:, cp]
    res = cocluster(a, k, 0, method, n_values=k + 1)
    res_p = cocluster(ap, k, 0, method, n_values=k + 1)
    back_rows, back_cols = _unpermute(res_p.rows, rp), _unpermute(res_p.cols, cp)
    assert adjusted_rand(np.r_[res.rows, res.cols], np.r_[back_rows, back_cols]) == 1.0
    assert adjusted_rand(res.cols, true_cols) == adjusted_rand(res_p.cols, true_cols[cp]) == 1.0
    assert _close(res.values, res_p.values)


@SOME
@given(matrices, st.integers(1, 5), st.sampled_from(EQUIVARIANT_METHODS))
@_with_examples([(a, 3, m) for a in EDGE_CASES for m in EQUIVARIANT_METHODS])
def test_production_methods_give_minus_one_for_dead_units_and_never_nan(a, k, method):
    res = cocluster(a, k, 0, method, n_values=3)
    live_rows, live_cols = np.any(a != 0, axis=1), np.any(a != 0, axis=0)
    n_live = int(min(live_rows.sum(), live_cols.sum()))
    assert np.array_equal(res.cols == -1, ~live_cols) or n_live == 0
    assert np.array_equal(res.rows == -1, ~live_rows) or n_live == 0
    if n_live == 0:
        assert np.all(res.rows == -1) and np.all(res.cols == -1) and res.values.size == 0
        return
    assert res.cols.max() < max(1, min(k, n_live)) and np.all(np.isfinite(res.values))


def test_top_singular_survives_huge_and_tiny_entries():
    u, s, v = top_singular(np.array([[1e155]]), 1)
    assert s == pytest.approx([1e155]) and u.tolist() == [[1.0]] and v.tolist() == [[1.0]]
    assert top_singular(np.diag([1e155, 1e155]), 2)[1] == pytest.approx([1e155, 1e155])
    assert top_singular_values(np.diag([1e155, 1e155]), 1) == pytest.approx([1e155])
    assert top_singular_values(np.array([[1e-198]]), 1) == pytest.approx([1e-198])


# ---------------------------------------------------------------- agreement metrics

@SOME
@given(labelling_pairs(), st.lists(st.integers(-1000, 1000), min_size=6, max_size=6, unique=True),
       st.lists(st.integers(-1000, 1000), min_size=6, max_size=6, unique=True))
def test_metrics_are_symmetric_relabelling_invariant_and_match_sklearn(pair, names_a, names_b):
    a, b = pair
    ra, rb = np.array(names_a)[a], np.array(names_b)[b]  # any injective renaming, -1 and negatives included
    for ours, theirs in ((adjusted_rand, adjusted_rand_score), (normalized_mutual_info, normalized_mutual_info_score)):
        value = ours(a, b)
        assert np.isfinite(value)
        assert ours(b, a) == pytest.approx(value, abs=1e-12)
        assert ours(ra, rb) == pytest.approx(value, abs=1e-12)
        assert value == pytest.approx(theirs(a, b), abs=1e-9), ours.__name__
        assert ours(a, a) == pytest.approx(1.0)


# ---------------------------------------------------------------- per-layer random streams

@SOME
@given(st.integers(0, 2**64 - 1), st.text(max_size=40), st.integers(0, 2**32 - 1))
def test_layer_rng_is_reproducible_for_any_seed(seed, name, stream):
    first = layer_rng(seed, name, stream).integers(0, 2**63, size=4)
    second = layer_rng(seed, name, stream).integers(0, 2**63, size=4)
    assert np.array_equal(first, second)


@SOME
@given(st.tuples(st.integers(0, 2**64 - 1), st.text(max_size=12), st.integers(0, 2**31)),
       st.tuples(st.integers(0, 2**64 - 1), st.text(max_size=12), st.integers(0, 2**31)))
@example((0, "a", 0), (0, "b", 0))
@example((0, "", 0), (0, "\x00", 0))
@example((1, "conv", 0), (0, "conv", 1))
def test_layer_rng_differs_for_different_inputs(x, y):
    if x != y:
        assert not np.array_equal(layer_rng(*x).integers(0, 2**63, size=4), layer_rng(*y).integers(0, 2**63, size=4))


@SOME
@given(st.tuples(st.integers(0, 2**64 - 1), st.text(max_size=12)),
       st.tuples(st.integers(0, 2**64 - 1), st.text(max_size=12)))
@example((2**32, "conv"), (0, "conv"))
@example((2**32 + 7, "a"), (7, "a"))
def test_layer_rng_differs_for_different_layers_and_int64_seeds(x, y):
    """The library's use: stream 0, one seed, many layer names."""
    if x != y:
        assert not np.array_equal(layer_rng(*x).integers(0, 2**63, size=4), layer_rng(*y).integers(0, 2**63, size=4))


def test_layer_rng_differs_for_seeds_of_2_32_and_more():
    def draw(*args):
        return layer_rng(*args).integers(0, 2**63, size=4)

    assert not np.array_equal(draw(2**32, "", 0), draw(0, "", 1))
    assert not np.array_equal(draw(5 + 2**32, "xyz", 4), draw(5, "\x03xyz", 1))


def test_layer_rng_refuses_seeds_out_of_range():
    with pytest.raises(ValueError, match="0 to 2"):
        layer_rng(-1, "conv")
    with pytest.raises(ValueError, match="0 to 2"):
        layer_rng(2**64, "conv")
