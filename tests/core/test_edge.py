import math

import numpy as np

from modularity.core.edge import edge_margin, noise_edge


def test_edge_margin_bounds_the_top_singular_value_of_noise_about_99_percent_of_the_time():
    rng = np.random.default_rng(0)
    for m, n in ((60, 24), (200, 40)):
        limit = (math.sqrt(m) + math.sqrt(n)) * edge_margin(m, n)
        top = np.array([np.linalg.svd(rng.standard_normal((m, n)), compute_uv=False)[0] for _ in range(400)])
        above = np.mean(top > limit)
        assert 0.0 <= above <= 0.04, (m, n, above)
        assert np.mean(top > math.sqrt(m) + math.sqrt(n)) > 0.1  # without the margin noise often crosses the edge


def test_edge_margin_shrinks_towards_one_for_large_matrices():
    assert edge_margin(60, 24) > edge_margin(600, 240) > edge_margin(6000, 2400) > 1.0
    assert edge_margin(1, 1) == 1.0


def test_noise_edge_of_a_rank_one_matrix_is_zero():
    a = np.outer(np.arange(1.0, 6.0), np.arange(1.0, 4.0))
    dr, dc = a.sum(axis=1), a.sum(axis=0)
    an = a / np.sqrt(dr)[:, None] / np.sqrt(dc)[None, :]
    assert noise_edge(an, dr, dc) < 1e-6
