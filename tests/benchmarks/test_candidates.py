"""The method benchmark's candidates (``benchmarks/candidates.py``): contracts every candidate keeps, and the
selection machinery's own behaviour."""

import numpy as np
import pytest
import sklearn.cluster  # noqa: F401  (imported here so that its import time is not charged to a test)

from benchmarks.candidates import CANDIDATES, candidate_columns
from modularity.core.defaults import DEFAULT_METHOD
from modularity.core.methods import METHODS, cocluster
from modularity.core.metrics import adjusted_rand
from modularity.errors import ModularityError

try:
    import sknetwork  # noqa: F401
    HAVE_SKNETWORK = True
except ImportError:  # scikit-network is optional: only the community methods need it
    HAVE_SKNETWORK = False

ALL = [pytest.param(m, marks=pytest.mark.skipif(not HAVE_SKNETWORK, reason="needs scikit-network"))
       if m.startswith(("louvain", "leiden")) else m for m in CANDIDATES]


def _blocks(rng, k=4, rows=8, cols=6, noise=0.05):
    a = np.kron(np.eye(k), np.ones((rows, cols))) + noise * rng.random((k * rows, k * cols))
    return a, np.repeat(np.arange(k), cols)


def _check_labels(labels, n_cols, k):
    assert labels.shape == (n_cols,)
    assert labels.dtype.kind == "i"
    assert labels.min() >= -1 and labels.max() <= k - 1


def test_candidates_include_the_production_methods_exactly(rng):
    assert set(METHODS) <= set(CANDIDATES)
    a, _ = _blocks(rng, noise=0.6)
    for name in METHODS:
        assert np.array_equal(candidate_columns(a, 4, name, 3), cocluster(a, 4, 3, name).cols)


@pytest.mark.parametrize("method", ALL)
def test_recovers_exact_blocks(method, rng):
    a, truth = _blocks(rng)
    for seed in range(2):
        labels = candidate_columns(a, 4, method, seed)
        _check_labels(labels, a.shape[1], 4)
        assert adjusted_rand(truth, labels) == 1.0


@pytest.mark.parametrize("method", ALL)
def test_zero_rows_and_columns_get_minus_one_without_nan(method, rng):
    a, truth = _blocks(rng, k=3)
    a[:, [0, 7]] = 0
    a[[2, 20]] = 0
    labels = candidate_columns(a, 3, method, 0)
    _check_labels(labels, a.shape[1], 3)
    assert labels[0] == -1 and labels[7] == -1
    live = np.ones(a.shape[1], bool)
    live[[0, 7]] = False
    assert np.all(labels[live] >= 0)
    assert adjusted_rand(truth[live], labels[live]) == 1.0


@pytest.mark.parametrize("method", ALL)
def test_single_live_unit_and_empty_matrix(method):
    a = np.zeros((5, 4))
    assert candidate_columns(a, 3, method, 0).tolist() == [-1, -1, -1, -1]
    a[1, 2] = 0.5
    assert candidate_columns(a, 3, method, 0).tolist() == [-1, -1, 0, -1]
    a[:, 2] = 1.0  # one live column read by every row
    assert candidate_columns(a, 3, method, 0).tolist() == [-1, -1, 0, -1]


@pytest.mark.parametrize("method", ALL)
def test_one_live_row(method):
    a = np.zeros((3, 5))
    a[1] = [1.0, 2.0, 0.0, 3.0, 4.0]
    labels = candidate_columns(a, 2, method, 0)
    assert labels.tolist() == [0, 0, -1, 0, 0]


@pytest.mark.parametrize("method", ALL)
def test_deterministic_for_a_seed(method, rng):
    a = rng.random((30, 24))  # no structure: ties are broken by the randomness alone
    one = candidate_columns(a, 3, method, np.random.default_rng(7))
    two = candidate_columns(a, 3, method, np.random.default_rng(7))
    assert np.array_equal(one, two)


@pytest.mark.parametrize("method", ALL)
def test_permuting_columns_permutes_labels(method, rng):
    a, _ = _blocks(rng, k=4, noise=0.2)
    perm = rng.permutation(a.shape[1])
    labels = candidate_columns(a, 4, method, 0)
    permuted = candidate_columns(a[:, perm], 4, method, 0)
    assert adjusted_rand(labels[perm], permuted) == 1.0


def test_bad_input_raises():
    with pytest.raises(ModularityError):
        candidate_columns(np.ones((3, 3)), 2, "no-such-method", 0)
    with pytest.raises(ModularityError):
        candidate_columns(-np.ones((3, 3)), 2, "current", 0)
    with pytest.raises(ModularityError):
        candidate_columns(np.full((3, 3), np.nan), 2, "dhillon_k_cols_r10", 0)


def test_disconnected_blocks_keep_every_block_indicator():
    # exact zeros between blocks (a grouped consumer as the only reader): the top singular value 1 repeats
    a = np.kron(np.eye(4), np.ones((8, 6)))
    truth = np.repeat(np.arange(4), 6)
    for method in ("dhillon_km1_cols_r10", "dhillon_km1_joint_r10", "dhillon_log2k_cols_r10"):
        for seed in range(3):
            assert adjusted_rand(truth, candidate_columns(a, 4, method, seed)) == 1.0


# ---------------------------------------------------------------- adaptive variants

ADAPTIVE = [m for m in CANDIDATES if m.startswith("adaptive_") or m == "dhillon_km1_cols_sqrt_unit_r10"]


def test_adaptive_candidates_are_registered():
    assert {"adaptive_sqrt_unit_r10", "adaptive_sqrt_r10", "adaptive_sv_r10", "adaptive_one_unit_r10",
            "adaptive_shrink_r10"} <= set(ADAPTIVE)


@pytest.mark.parametrize("method", ADAPTIVE)
def test_adaptive_exact_recovery_dead_columns_and_determinism(method, rng):
    a, truth = _blocks(rng, k=4, noise=0.1)
    a[:, [3, 13]] = 0
    a[[5]] = 0
    live = np.ones(a.shape[1], bool)
    live[[3, 13]] = False
    one = candidate_columns(a, 4, method, np.random.default_rng(3))
    two = candidate_columns(a, 4, method, np.random.default_rng(3))
    assert np.array_equal(one, two)
    assert one[3] == -1 and one[13] == -1 and np.all(one[live] >= 0)
    assert adjusted_rand(truth[live], one[live]) == 1.0


# ---------------------------------------------------------------- selection among candidates

SELECT = [f"select_{c}" for c in ("modularity", "stability", "silhouette", "ncut")]


def _grouped_mixed(rng, signal=0.1):
    """A dense reader of all 24 columns plus a weak grouped reader (4 groups of 6): the grouped_mixed case."""
    dense = 1 + 0.3 * rng.random((32, 24))
    grouped = signal * np.kron(np.eye(4), np.ones((8, 6))) * (1 + 0.3 * rng.random((32, 24)))
    return np.vstack([dense, grouped]), np.repeat(np.arange(4), 6)


def test_select_methods_are_registered():
    assert set(SELECT) <= set(CANDIDATES)


def test_select_modularity_and_ncut_of_known_partitions():
    from benchmarks.candidates import _bipartite_modularity
    from modularity.core.spectral import bipartite_ncut

    a = np.kron(np.eye(2), np.ones((3, 2)))
    rows, cols = np.repeat([0, 1], 3), np.repeat([0, 1], 2)
    assert _bipartite_modularity(a, rows, cols, 2) == pytest.approx(0.5)  # 1 - 1/k for k equal blocks
    assert bipartite_ncut(a, rows, cols) == 0.0  # exactly: no edge leaves a block
    assert _bipartite_modularity(a, np.zeros(6, int), np.zeros(4, int), 2) == pytest.approx(0.0)
    # rows put with the wrong columns: everything is cut
    assert bipartite_ncut(a, 1 - rows, cols) == pytest.approx(2.0)


def test_select_silhouette_matches_scikit_learn(rng):
    from sklearn.metrics import silhouette_score

    from benchmarks.candidates import _silhouette

    z = rng.normal(size=(40, 3))
    lab = rng.integers(0, 3, 40)
    assert _silhouette(z, lab) == pytest.approx(silhouette_score(z, lab), abs=1e-7)
    assert _silhouette(z, np.zeros(40, int)) == -1.0


def test_select_stability_is_one_on_exact_blocks_and_lower_on_noise(rng):
    from benchmarks.candidates import _select_candidates, _stability

    a, _ = _blocks(rng, k=3, rows=10, cols=6, noise=0.01)
    cands, _, shared = _select_candidates(a, 3, np.random.default_rng(0))
    assert all(_stability(c, 3, np.random.default_rng(1), shared) == pytest.approx(1.0) for c in cands)
    noise = rng.random((60, 40))
    cands, _, shared = _select_candidates(noise, 3, np.random.default_rng(0))
    assert all(_stability(c, 3, np.random.default_rng(1), shared) < 0.9 for c in cands)


@pytest.mark.parametrize("method", SELECT)
def test_select_rejects_a_joint_candidate_that_loses_column_groups(method):
    from benchmarks.candidates import _select_candidates

    rng = np.random.default_rng(0)
    a, truth = _grouped_mixed(rng)
    cands, _, _ = _select_candidates(a, 4, np.random.default_rng(1))
    joint = next(c for c in cands if c["name"] == "log2k_joint")
    assert len(np.unique(joint["cols"])) < 4  # the rows took clusters of their own
    for seed in range(2):
        assert adjusted_rand(truth, candidate_columns(a, 4, method, seed)) == 1.0


def test_select_returns_one_of_its_candidates_and_rejects_unknown_names(rng):
    from benchmarks.candidates import _select_candidates, select

    a, _ = _blocks(rng, k=4, noise=0.6)
    options = [c["cols"] for c in _select_candidates(a, 4, np.random.default_rng(7))[0]]
    for criterion in ("modularity", "stability", "silhouette", "ncut"):
        labels = select(a, 4, np.random.default_rng(7), criterion)
        assert labels.shape == (a.shape[1],)
        # the candidates are built first from the same generator, so the choice is one of them
        assert any(adjusted_rand(o, labels) == 1.0 for o in options)
    with pytest.raises(ModularityError):
        select(a, 4, np.random.default_rng(0), "no-such-criterion")
    with pytest.raises(ModularityError):
        select(a, 4, np.random.default_rng(0), "modularity", candidates=("no-such-candidate",))


def test_select_sklearn_returns_one_of_its_two_candidates(rng):
    from benchmarks.candidates import select_sklearn
    from modularity.core.methods import adaptive, sklearn_scc

    a, _ = _blocks(rng, k=4, noise=0.6)
    for seed in range(3):
        labels = select_sklearn(a, 4, np.random.default_rng(seed))
        _check_labels(labels, a.shape[1], 4)
        # scikit-learn is seeded by the first draw, so its candidate equals sklearn_scc for the same seed
        ref = sklearn_scc(a, 4, np.random.default_rng(seed))
        r = np.random.default_rng(seed)
        r.integers(2 ** 31 - 1)  # the draw that seeded scikit-learn; adaptive_sqrt_unit_r10's k-means follows it
        ours = adaptive(a, 4, r)
        assert adjusted_rand(ref, labels) == 1.0 or adjusted_rand(ours, labels) == 1.0
        assert np.array_equal(labels, select_sklearn(a, 4, np.random.default_rng(seed)))
    # grouped_mixed: scikit-learn's columns fill fewer than 4 groups, so adaptive_sqrt_unit_r10 is kept
    g, gtruth = _grouped_mixed(np.random.default_rng(0))
    assert adjusted_rand(gtruth, candidate_columns(g, 4, "select_sklearn_ncut", 1)) == 1.0


def test_select_sklearn_floor_takes_scikit_learn_at_the_noise_level():
    from modularity.core.methods import edge_embedding, sklearn_scc

    noise = np.random.default_rng(3).random((60, 40))
    assert edge_embedding(noise, 4)[0].shape[1] - 1 < 3  # fewer than k - 1 vectors above the edge
    for seed in range(2):
        labels = candidate_columns(noise, 4, "select_sklearn_ncut_floor", seed)
        assert np.array_equal(labels, sklearn_scc(noise, 4, np.random.default_rng(seed)))


def test_default_method_is_a_candidate():
    assert DEFAULT_METHOD in CANDIDATES
