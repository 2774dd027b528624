import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from modularity.core.spectral import (
    bipartite_ncut,
    choose_k,
    cocluster,
    normalise_bipartite,
    svd_variant,
    top_singular,
    top_singular_values,
)


def _blocks(rng, k=4, rows=10, cols=6, noise=0.0):
    a = np.kron(np.eye(k), np.ones((rows, cols))) + noise * rng.random((k * rows, k * cols))
    return a, np.repeat(np.arange(k), cols)


def test_exact_blocks_are_recovered(rng):
    a, truth = _blocks(rng, k=5)
    _, cols = cocluster(a, 5, seed=0)
    assert adjusted_rand_score(truth, cols) == 1.0


def test_many_exact_blocks_are_recovered(rng):
    a, truth = _blocks(rng, k=32, rows=4, cols=4)
    _, cols = cocluster(a, 32, seed=0)
    assert adjusted_rand_score(truth, cols) == 1.0


def test_noisy_blocks_are_recovered(rng):
    a, truth = _blocks(rng, k=4, noise=0.5)
    _, cols = cocluster(a, 4, seed=0)
    assert adjusted_rand_score(truth, cols) >= 0.95


def test_dead_units_get_minus_one_and_no_nan(rng):
    a, _ = _blocks(rng, k=3)
    a[:, [0, 7]] = 0
    a[5] = 0
    rows, cols = cocluster(a, 3, seed=0)
    assert cols[0] == -1 and cols[7] == -1 and rows[5] == -1
    assert np.all(cols[np.r_[1:7, 8:18]] >= 0)


def test_all_zero_matrix_is_all_dead():
    rows, cols = cocluster(np.zeros((4, 5)), 3)
    assert np.all(rows == -1) and np.all(cols == -1)
    assert bipartite_ncut(np.zeros((4, 5)), rows, cols) == 0.0
    assert np.all(np.isfinite(normalise_bipartite(np.zeros((4, 5)))))


def test_one_unit_layer_is_one_cluster():
    rows, cols = cocluster(np.ones((3, 1)), 4)
    assert cols.tolist() == [0] and rows.tolist() == [0, 0, 0]


def test_k_larger_than_units_is_clipped(rng):
    a = rng.random((6, 3))
    _, cols = cocluster(a, 10, seed=0)
    assert sorted(set(cols.tolist())) == [0, 1, 2]


def test_eigengap_finds_planted_k(rng):
    a, _ = _blocks(rng, k=3, noise=0.05)
    assert choose_k(a, k_max=10) == 3


def test_perfect_blocks_have_zero_ncut(rng):
    a, truth = _blocks(rng, k=3)
    rows = np.repeat(np.arange(3), 10)
    assert bipartite_ncut(a, rows, truth) == pytest.approx(0.0)


def test_ncut_of_one_cluster_is_zero_and_of_random_split_positive(rng):
    a = rng.random((8, 8)) + 0.1
    assert bipartite_ncut(a, np.zeros(8, int), np.zeros(8, int)) == pytest.approx(0.0)
    assert bipartite_ncut(a, np.arange(8) % 2, np.arange(8) % 2) > 0.5


def test_normalised_variant_has_top_singular_value_one(rng):
    res = svd_variant(rng.random((20, 30)), "normalised")
    assert res.s[0] == pytest.approx(1.0)
    assert np.all(np.diff(res.s) <= 1e-12)


def test_centred_variant_removes_row_and_column_means(rng):
    a = rng.random((10, 7))
    res = svd_variant(a, "centred", n_vectors=7)
    recon = res.u * res.s[: res.u.shape[1]] @ res.v.T
    np.testing.assert_allclose(recon.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(recon.mean(axis=1), 0, atol=1e-12)


@pytest.mark.parametrize("shape", [(30, 400), (400, 30), (300, 300), (700, 450), (450, 700)])
@pytest.mark.parametrize("dense_max", [400, 2048])
def test_top_singular_matches_full_svd(rng, shape, dense_max, monkeypatch):
    import modularity.core.spectral as sp

    monkeypatch.setattr(sp, "_DENSE_MAX", dense_max)  # both the dense and the Lanczos path
    a = rng.random(shape)
    u, s, v = top_singular(a, 5)
    full = np.linalg.svd(a, compute_uv=False)
    np.testing.assert_allclose(s, full[:5], rtol=1e-9)
    np.testing.assert_allclose(top_singular_values(a, 5), full[:5], rtol=1e-9)
    np.testing.assert_allclose(np.abs(u.T @ a @ v), np.diag(s), atol=1e-8)


def test_kmeans_separates_well_separated_points(rng):
    from modularity.core.spectral import kmeans

    x = np.vstack([rng.normal(c, 0.1, (20, 2)) for c in (0, 5, 10)])
    labels = kmeans(x, 3, np.random.default_rng(0))
    assert adjusted_rand_score(np.repeat(np.arange(3), 20), labels) == 1.0


def test_large_profiles_keep_the_leading_spectrum(rng, monkeypatch):
    import modularity.core.spectral as sp

    monkeypatch.setattr(sp, "FULL_SPECTRUM_MAX", 50)
    monkeypatch.setattr(sp, "LARGE_SPECTRUM_TOP", 10)
    a = rng.random((80, 60))
    res = svd_variant(a, "raw")
    np.testing.assert_allclose(res.s, np.linalg.svd(a, compute_uv=False)[:10], rtol=1e-9)


def test_float32_route_keeps_double_precision(rng):
    from modularity.core import spectral as sp

    a = rng.gamma(0.5, size=(500, sp._FLOAT32_MIN + 80))
    an = sp.normalise_bipartite(a)
    u, s, v = sp.top_singular(an, 20)
    u0, s0, vt0 = np.linalg.svd(an, full_matrices=False)
    np.testing.assert_allclose(s, s0[:20], rtol=1e-9)
    assert np.all(np.abs(np.sum(v[:, :6] * vt0[:6].T, axis=0)) > 1 - 1e-6)


def _kmeans_one_by_one(x, k, rng, n_init=4, max_iter=100):
    """The reference: every restart on its own (the implementation before the restarts were batched)."""
    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    k = min(k, n)
    sq = np.einsum("ij,ij->i", x, x)
    best, best_inertia = np.zeros(n, dtype=int), np.inf
    for _ in range(n_init):
        centres = x[[rng.integers(n)]]
        d2 = np.maximum(sq - 2 * x @ centres[0] + centres[0] @ centres[0], 0)
        for _ in range(1, k):
            total = d2.sum()
            nxt = rng.choice(n, p=d2 / total) if total > 0 else rng.integers(n)
            centres = np.vstack([centres, x[nxt]])
            d2 = np.minimum(d2, np.maximum(sq - 2 * x @ x[nxt] + x[nxt] @ x[nxt], 0))
        labels = np.full(n, -1)
        for _ in range(max_iter):
            dist = sq[:, None] - 2 * x @ centres.T + np.einsum("ij,ij->i", centres, centres)[None, :]
            new = dist.argmin(axis=1)
            if np.array_equal(new, labels):
                break
            labels = new
            counts = np.bincount(labels, minlength=k)
            sums = np.stack([np.bincount(labels, weights=col, minlength=k) for col in x.T], axis=1)
            centres = np.where((counts == 0)[:, None], centres, sums / np.maximum(counts, 1)[:, None])
        inertia = float(np.maximum(dist[np.arange(n), labels], 0).sum())
        if inertia < best_inertia:
            best, best_inertia = labels, inertia
    return best


def test_batched_kmeans_restarts_give_the_one_by_one_labels(rng):
    """Restarts iterated together: the same random numbers, the same arithmetic, the same labels."""
    from modularity.core.spectral import kmeans

    for trial in range(60):
        n, d, k = int(rng.integers(3, 400)), int(rng.integers(1, 5)), int(rng.integers(2, 7))
        x = rng.normal(size=(n, d)) * rng.exponential(size=d)
        if trial % 3 == 0:
            x = np.round(x, 1)  # tied points and distances
        max_iter = 3 if trial % 5 == 0 else 100  # also restarts stopped by max_iter
        seed = int(rng.integers(2**31))
        expected = _kmeans_one_by_one(x, k, np.random.default_rng(seed), n_init=10, max_iter=max_iter)
        got = kmeans(x, k, np.random.default_rng(seed), n_init=10, max_iter=max_iter)
        np.testing.assert_array_equal(got, expected)


def test_relabel_numbers_clusters_by_first_appearance():
    from modularity.core.spectral import relabel

    rows, cols = relabel(np.array([2, -1, 0, 5]), np.array([-1, 5, 2, 5, 3]))
    assert cols.tolist() == [-1, 0, 1, 0, 2] and rows.tolist() == [1, -1, 3, 0]
    rows, cols = relabel(np.array([-1, -1]), np.array([-1]))
    assert rows.tolist() == [-1, -1] and cols.tolist() == [-1]


def test_float32_route_gives_the_float64_values_and_clusters(rng, monkeypatch):
    """Above the switch the Gram eigensolve runs in float32 and is refined: values to 1e-6, identical clusters."""
    from modularity.core import spectral as sp

    truth = np.repeat(np.arange(4), 100)
    a = rng.gamma(0.5, size=(360, 400)) * (1 + 1.5 * (np.repeat(np.arange(4), 90)[:, None] == truth[None, :]))
    results = {}
    for label, switch in (("float32", 1), ("float64", 10**9)):
        monkeypatch.setattr(sp, "_FLOAT32_MIN", switch)
        results[label] = sp.cocluster_spectrum(a, 4, np.random.default_rng(0), n_init=10, n_values=20)
    rows32, cols32, s32 = results["float32"]
    rows64, cols64, s64 = results["float64"]
    np.testing.assert_allclose(s32, s64, rtol=1e-6)
    np.testing.assert_array_equal(cols32, cols64)
    np.testing.assert_array_equal(rows32, rows64)
    assert adjusted_rand_score(truth, cols64) > 0.9


def test_choice_draws_what_generator_choice_draws():
    """k-means++ seeding's inverse-CDF draw: the index and the generator state of ``Generator.choice(n, p=p)``."""
    from modularity.core.spectral import _choice

    for seed in range(300):
        g = np.random.default_rng(seed)
        n = int(g.integers(1, 500))
        w = g.random(n) * (g.random(n) < 0.7)
        if w.sum() == 0:
            continue
        p = w / w.sum()
        a, b = np.random.default_rng(seed + 1000), np.random.default_rng(seed + 1000)
        assert _choice(a, p) == b.choice(n, p=p)
        assert a.random() == b.random()


def test_singular_values_match_a_full_svd_and_keep_exact_zeros():
    from modularity.core.spectral import singular_values

    rng = np.random.default_rng(0)
    for shape in ((40, 25), (25, 40)):
        a = rng.random(shape)
        s = singular_values(a)
        ref = np.linalg.svd(a, compute_uv=False)
        assert np.allclose(s, ref, rtol=0, atol=1e-7 * ref[0])
        assert np.allclose(s[:10], ref[:10], rtol=1e-12)
    low_rank = rng.random((30, 2)) @ rng.random((2, 20))  # rank 2: 18 exact zeros
    s = singular_values(low_rank)
    assert np.count_nonzero(s) == 2 and s[0] == pytest.approx(np.linalg.svd(low_rank, compute_uv=False)[0])
