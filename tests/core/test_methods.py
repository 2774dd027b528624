import numpy as np
import pytest
import sklearn.cluster  # noqa: F401  (imported here so that its import time is not charged to a test)

from modularity.core.methods import DEFAULT_METHOD, METHODS, cocluster_columns
from modularity.core.metrics import adjusted_rand
from modularity.errors import ModularityError

try:
    import sknetwork  # noqa: F401
    HAVE_SKNETWORK = True
except ImportError:  # scikit-network is optional: only the community methods need it
    HAVE_SKNETWORK = False

ALL = [pytest.param(m, marks=pytest.mark.skipif(not HAVE_SKNETWORK, reason="needs scikit-network"))
       if m.startswith(("louvain", "leiden")) else m for m in METHODS]


def _blocks(rng, k=4, rows=8, cols=6, noise=0.05):
    a = np.kron(np.eye(k), np.ones((rows, cols))) + noise * rng.random((k * rows, k * cols))
    return a, np.repeat(np.arange(k), cols)


def _check_labels(labels, n_cols, k):
    assert labels.shape == (n_cols,)
    assert labels.dtype.kind == "i"
    assert labels.min() >= -1 and labels.max() <= k - 1


@pytest.mark.parametrize("method", ALL)
def test_recovers_exact_blocks(method, rng):
    a, truth = _blocks(rng)
    for seed in range(2):
        labels = cocluster_columns(a, 4, method, seed)
        _check_labels(labels, a.shape[1], 4)
        assert adjusted_rand(truth, labels) == 1.0


@pytest.mark.parametrize("method", ALL)
def test_zero_rows_and_columns_get_minus_one_without_nan(method, rng):
    a, truth = _blocks(rng, k=3)
    a[:, [0, 7]] = 0
    a[[2, 20]] = 0
    labels = cocluster_columns(a, 3, method, 0)
    _check_labels(labels, a.shape[1], 3)
    assert labels[0] == -1 and labels[7] == -1
    live = np.ones(a.shape[1], bool)
    live[[0, 7]] = False
    assert np.all(labels[live] >= 0)
    assert adjusted_rand(truth[live], labels[live]) == 1.0


@pytest.mark.parametrize("method", ALL)
def test_single_live_unit_and_empty_matrix(method):
    a = np.zeros((5, 4))
    assert cocluster_columns(a, 3, method, 0).tolist() == [-1, -1, -1, -1]
    a[1, 2] = 0.5
    assert cocluster_columns(a, 3, method, 0).tolist() == [-1, -1, 0, -1]
    a[:, 2] = 1.0  # one live column read by every row
    assert cocluster_columns(a, 3, method, 0).tolist() == [-1, -1, 0, -1]


@pytest.mark.parametrize("method", ALL)
def test_one_live_row(method):
    a = np.zeros((3, 5))
    a[1] = [1.0, 2.0, 0.0, 3.0, 4.0]
    labels = cocluster_columns(a, 2, method, 0)
    assert labels.tolist() == [0, 0, -1, 0, 0]


@pytest.mark.parametrize("method", ALL)
def test_deterministic_for_a_seed(method, rng):
    a = rng.random((30, 24))  # no structure: ties are broken by the randomness alone
    one = cocluster_columns(a, 3, method, np.random.default_rng(7))
    two = cocluster_columns(a, 3, method, np.random.default_rng(7))
    assert np.array_equal(one, two)


@pytest.mark.parametrize("method", ALL)
def test_permuting_columns_permutes_labels(method, rng):
    a, _ = _blocks(rng, k=4, noise=0.2)
    perm = rng.permutation(a.shape[1])
    labels = cocluster_columns(a, 4, method, 0)
    permuted = cocluster_columns(a[:, perm], 4, method, 0)
    assert adjusted_rand(labels[perm], permuted) == 1.0


def test_labels_numbered_by_first_appearance(rng):
    a, _ = _blocks(rng, k=3)
    a = a[:, ::-1].copy()
    labels = cocluster_columns(a, 3, DEFAULT_METHOD, 0)
    assert labels[0] == 0
    assert list(dict.fromkeys(labels.tolist())) == [0, 1, 2]


def test_k_is_clipped_to_the_live_units():
    a = np.kron(np.eye(2), np.ones((3, 1)))  # 6 x 2: two live columns
    labels = cocluster_columns(a, 5, DEFAULT_METHOD, 0)
    assert sorted(labels.tolist()) == [0, 1]


def test_bad_input_raises():
    with pytest.raises(ModularityError):
        cocluster_columns(np.ones((3, 3)), 2, "no-such-method", 0)
    with pytest.raises(ModularityError):
        cocluster_columns(-np.ones((3, 3)), 2, DEFAULT_METHOD, 0)
    with pytest.raises(ModularityError):
        cocluster_columns(np.full((3, 3), np.nan), 2, DEFAULT_METHOD, 0)


def test_default_is_registered():
    assert DEFAULT_METHOD in METHODS


def test_disconnected_blocks_keep_every_block_indicator():
    # exact zeros between blocks (a grouped consumer as the only reader): the top singular value 1 repeats
    a = np.kron(np.eye(4), np.ones((8, 6)))
    truth = np.repeat(np.arange(4), 6)
    for method in ("dhillon_km1_cols_r10", "dhillon_km1_joint_r10", "dhillon_log2k_cols_r10"):
        for seed in range(3):
            assert adjusted_rand(truth, cocluster_columns(a, 4, method, seed)) == 1.0
