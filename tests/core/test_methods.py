import dataclasses
import subprocess
import sys

import numpy as np
import pytest
import sklearn.cluster  # noqa: F401  (imported here so that its import time is not charged to a test)

from modularity.core.defaults import DEFAULT_METHOD, METHOD_NAMES
from modularity.core.methods import METHODS, CoClusters, cocluster
from modularity.core.metrics import adjusted_rand
from modularity.errors import ModularityError

ALL = list(METHODS)


def _blocks(rng, k=4, rows=8, cols=6, noise=0.05):
    a = np.kron(np.eye(k), np.ones((rows, cols))) + noise * rng.random((k * rows, k * cols))
    return a, np.repeat(np.arange(k), cols)


def _check_labels(labels, n, k):
    assert labels.shape == (n,)
    assert labels.dtype.kind == "i"
    assert labels.min() >= -1 and labels.max() <= k - 1


# ---------------------------------------------------------------- registry

def test_method_names_are_the_registry():
    assert tuple(METHODS) == METHOD_NAMES
    assert DEFAULT_METHOD in METHOD_NAMES and METHOD_NAMES[0] == DEFAULT_METHOD
    assert "dhillon_km1_cols_sv_r10" in METHODS  # the previous default stays selectable
    with pytest.raises(TypeError):
        METHODS["x"] = METHODS[DEFAULT_METHOD]  # read-only


def test_method_names_import_without_numpy():
    code = ("import sys; from modularity.core.defaults import METHOD_NAMES; "
            "assert 'numpy' not in sys.modules and 'torch' not in sys.modules, sorted(sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_benchmark_candidates_are_not_in_the_package():
    for name in ("current", "select_ncut", "consensus_spectral", "louvain", "dhillon_km1_cols_r10",
                 "adaptive_sv_r10"):
        with pytest.raises(ModularityError, match="unknown method"):
            cocluster(np.ones((3, 3)), 2, 0, name)


# ---------------------------------------------------------------- every production method

@pytest.mark.parametrize("method", ALL)
def test_recovers_exact_blocks_rows_and_columns(method, rng):
    a, truth = _blocks(rng)
    row_truth = np.repeat(np.arange(4), 8)
    for seed in range(2):
        res = cocluster(a, 4, seed, method, n_values=5)
        assert isinstance(res, CoClusters)
        _check_labels(res.cols, a.shape[1], 4)
        _check_labels(res.rows, a.shape[0], 4)
        assert adjusted_rand(truth, res.cols) == 1.0
        assert adjusted_rand(row_truth, res.rows) == 1.0
        # each block's rows share its columns' label
        assert np.array_equal(res.rows, np.repeat(res.cols[::6], 8))


@pytest.mark.parametrize("method", ALL)
def test_values_are_the_leading_normalised_singular_values(method, rng):
    a, _ = _blocks(rng, k=3, noise=0.3)
    a[:, 4] = 0
    a[7] = 0
    live = a[np.ix_(a.any(axis=1), a.any(axis=0))]
    dr, dc = live.sum(axis=1), live.sum(axis=0)
    expect = np.linalg.svd(live / np.sqrt(dr)[:, None] / np.sqrt(dc)[None, :], compute_uv=False)
    assert np.allclose(cocluster(a, 3, 0, method, n_values=4).values, expect[:4], atol=1e-9)
    assert cocluster(a, 3, 0, method).values.shape == (0,)


@pytest.mark.parametrize("method", ALL)
def test_zero_rows_and_columns_get_minus_one_without_nan(method, rng):
    a, truth = _blocks(rng, k=3)
    a[:, [0, 7]] = 0
    a[[2, 20]] = 0
    res = cocluster(a, 3, 0, method, n_values=3)
    _check_labels(res.cols, a.shape[1], 3)
    assert res.cols[0] == -1 and res.cols[7] == -1
    assert res.rows[2] == -1 and res.rows[20] == -1 and (res.rows >= 0).sum() == a.shape[0] - 2
    live = np.ones(a.shape[1], bool)
    live[[0, 7]] = False
    assert np.all(res.cols[live] >= 0)
    assert adjusted_rand(truth[live], res.cols[live]) == 1.0
    assert np.all(np.isfinite(res.values))


@pytest.mark.parametrize("method", ALL)
def test_single_live_unit_and_empty_matrix(method):
    a = np.zeros((5, 4))
    res = cocluster(a, 3, 0, method, n_values=2)
    assert res.cols.tolist() == [-1] * 4 and res.rows.tolist() == [-1] * 5 and len(res.values) == 0
    a[1, 2] = 0.5
    res = cocluster(a, 3, 0, method, n_values=2)
    assert res.cols.tolist() == [-1, -1, 0, -1] and res.rows.tolist() == [-1, 0, -1, -1, -1]
    assert np.allclose(res.values, [1.0])
    a[:, 2] = 1.0  # one live column read by every row
    assert cocluster(a, 3, 0, method).cols.tolist() == [-1, -1, 0, -1]


@pytest.mark.parametrize("method", ALL)
def test_one_live_row(method):
    a = np.zeros((3, 5))
    a[1] = [1.0, 2.0, 0.0, 3.0, 4.0]
    assert cocluster(a, 2, 0, method).cols.tolist() == [0, 0, -1, 0, 0]


@pytest.mark.parametrize("method", ALL)
def test_deterministic_for_a_seed(method, rng):
    a = rng.random((30, 24))  # no structure: ties are broken by the randomness alone
    one = cocluster(a, 3, np.random.default_rng(7), method, n_values=2)
    two = cocluster(a, 3, np.random.default_rng(7), method, n_values=2)
    for f in dataclasses.fields(CoClusters):
        assert np.array_equal(getattr(one, f.name), getattr(two, f.name))


@pytest.mark.parametrize("method", ALL)
def test_permuting_columns_permutes_labels(method, rng):
    a, _ = _blocks(rng, k=4, noise=0.2)
    perm = rng.permutation(a.shape[1])
    labels = cocluster(a, 4, 0, method).cols
    permuted = cocluster(a[:, perm], 4, 0, method).cols
    assert adjusted_rand(labels[perm], permuted) == 1.0


@pytest.mark.parametrize("method", ("adaptive_sqrt_unit_r10", "dhillon_km1_cols_sv_r10"))
def test_disconnected_blocks_keep_every_block_indicator(method):
    # exact zeros between blocks (a grouped consumer as the only reader): the top singular value 1 repeats
    a = np.kron(np.eye(4), np.ones((8, 6)))
    truth = np.repeat(np.arange(4), 6)
    for seed in range(3):
        assert adjusted_rand(truth, cocluster(a, 4, seed, method).cols) == 1.0


def test_labels_numbered_by_first_appearance(rng):
    a, _ = _blocks(rng, k=3)
    a = a[:, ::-1].copy()
    labels = cocluster(a, 3, 0, DEFAULT_METHOD).cols
    assert labels[0] == 0
    assert list(dict.fromkeys(labels.tolist())) == [0, 1, 2]


def test_k_is_clipped_to_the_live_units():
    a = np.kron(np.eye(2), np.ones((3, 1)))  # 6 x 2: two live columns
    labels = cocluster(a, 5, 0, DEFAULT_METHOD).cols
    assert sorted(labels.tolist()) == [0, 1]


def test_bad_input_raises():
    with pytest.raises(ModularityError):
        cocluster(np.ones((3, 3)), 2, 0, "no-such-method")
    with pytest.raises(ModularityError):
        cocluster(-np.ones((3, 3)), 2, 0)
    with pytest.raises(ModularityError):
        cocluster(np.full((3, 3), np.nan), 2, 0)
    with pytest.raises(ModularityError):
        cocluster(np.ones(3), 2, 0)


def test_result_is_frozen(rng):
    res = cocluster(_blocks(rng)[0], 4, 0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.cols = None


def test_rows_from_columns_follow_the_largest_share_of_weight():
    from modularity.core.methods import rows_from_columns

    a = np.array([[1.0, 1.0, 0.0], [0.0, 0.1, 2.0], [0.0, 0.0, 0.0], [2.0, 0.0, 1.0]])
    # row 3 sends 2 of cluster 0's volume 4.1 and 1 of cluster 1's volume 3: cluster 0 takes the larger share
    assert rows_from_columns(a, np.array([0, 0, 1])).tolist() == [0, 1, -1, 0]
    assert rows_from_columns(a, np.array([-1, -1, -1])).tolist() == [-1] * 4


# ---------------------------------------------------------------- the default's steps

def test_noise_edge_matches_the_top_singular_value_of_noise():
    from modularity.core.methods import noise_edge
    from modularity.core.spectral import top_singular_values

    rng = np.random.default_rng(0)
    a = rng.random((240, 160))
    dr, dc = a.sum(axis=1), a.sum(axis=0)
    an = a / np.sqrt(dr)[:, None] / np.sqrt(dc)[None, :]
    s = top_singular_values(an, 2)
    tau = noise_edge(an, dr, dc)
    assert np.isfinite(tau) and abs(s[1] / tau - 1) < 0.05  # s[0] = 1 is the trivial value


def test_edge_count_is_clipped_between_log2k_and_k_minus_one():
    from modularity.core.methods import edge_count

    s = np.array([1.0, 0.2, 0.15, 0.12, 0.05, 0.04])
    assert edge_count(s, 4, tau=0.5) == 2  # nothing above the edge: ceil(log2 4)
    assert edge_count(s, 4, tau=0.1) == 3  # three above: k - 1
    assert edge_count(s, 4, tau=0.01) == 3  # never more than k - 1
    assert edge_count(s, 3, tau=0.5) == 2
    assert edge_count(s, 2, tau=0.5) == 1


def test_default_uses_fewer_vectors_at_the_noise_level():
    from modularity.core.methods import edge_embedding

    rng = np.random.default_rng(1)
    noise = rng.random((120, 80))
    zc, zr, _ = edge_embedding(noise, 4)
    assert zc.shape == (80, 1 + 2) and zr.shape == (120, 3)  # trivial + ceil(log2 4)
    strong, _ = _blocks(rng, k=4, rows=30, cols=20, noise=0.3)
    zc, _, _ = edge_embedding(strong, 4)
    assert zc.shape == (80, 1 + 3)  # trivial + k - 1
    assert np.allclose(np.linalg.norm(zc, axis=1), 1.0)


# ---------------------------------------------------------------- spectral_refined

def _consumer_side_replica(seed=14, factor=1.5):
    """Four producer groups of 64, 128, 32 and 32 units, each read ``factor`` times more strongly by its own consumer
    (128, 128, 32 and 64 units; entries |N(0, 1)| like the 1x1 kernels of a random-init googlenet): a replica of
    inception3a planted on its own consumers in inception3b, where one embedding plus k-means collapses."""
    rng = np.random.default_rng(seed)
    cols, rows = np.repeat(np.arange(4), [64, 128, 32, 32]), np.repeat(np.arange(4), [128, 128, 32, 64])
    a = np.abs(rng.standard_normal((len(rows), len(cols)))) * np.where(rows[:, None] == cols[None, :], factor, 1.0)
    return a, cols


def _merged_and_split(truth, labels):
    """True when two small groups share a cluster and the largest group is split between two."""
    table = np.zeros((truth.max() + 1, labels.max() + 1), int)
    np.add.at(table, (truth, labels), 1)
    share = table / table.sum(axis=1, keepdims=True)
    merged = any((share[[2, 3], c] > 0.8).all() for c in range(table.shape[1]))
    split = np.sort(share[1])[-2] > 0.3
    return merged and split


@pytest.mark.parametrize("seed", range(3))
def test_spectral_refined_repairs_what_one_embedding_merges_and_splits(seed):
    a, truth = _consumer_side_replica()
    for method in ("adaptive_sqrt_unit_r10", "dhillon_km1_cols_sv_r10"):  # the old defaults collapse here
        labels = cocluster(a, 4, seed, method).cols
        assert _merged_and_split(truth, labels) and adjusted_rand(truth, labels) < 0.7, method
    labels = cocluster(a, 4, seed, "spectral_refined").cols
    assert not _merged_and_split(truth, labels)
    assert adjusted_rand(truth, labels) > 0.95


def test_spectral_refined_recovers_unequal_planted_blocks():
    for seed in range(3):
        a, truth = _consumer_side_replica(seed=seed, factor=2.0)
        assert adjusted_rand(truth, cocluster(a, 4, seed, "spectral_refined").cols) > 0.99


def test_spectral_refined_is_refined_with_rows_by_share_of_weight(rng):
    from modularity.core.methods import refined, rows_from_columns

    a, _ = _blocks(rng, k=3, noise=0.8)
    res = cocluster(a, 3, np.random.default_rng(4), "spectral_refined", n_values=3)
    assert np.array_equal(res.cols, refined(a, 3, np.random.default_rng(4)))
    assert np.array_equal(res.rows, rows_from_columns(a, res.cols))
