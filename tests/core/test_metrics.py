import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from modularity.core.metrics import adjusted_rand, normalized_mutual_info


@pytest.mark.parametrize("seed", range(5))
def test_adjusted_rand_matches_scikit_learn(seed):
    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, 4, 60), rng.integers(-1, 3, 60)
    assert adjusted_rand(a, b) == pytest.approx(adjusted_rand_score(a, b))


@pytest.mark.parametrize("seed", range(5))
def test_normalized_mutual_info_matches_scikit_learn(seed):
    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, 4, 60), rng.integers(0, 3, 60)
    assert normalized_mutual_info(a, b) == pytest.approx(normalized_mutual_info_score(a, b))


def test_trivial_partitions_agree_with_scikit_learn():
    one = np.zeros(5, int)
    assert adjusted_rand(one, one) == adjusted_rand_score(one, one)
    assert normalized_mutual_info(one, np.arange(5)) == pytest.approx(normalized_mutual_info_score(one, np.arange(5)))
