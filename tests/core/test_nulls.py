"""Null models and the statistics built on them (modularity.core.nulls)."""

import numpy as np
import pytest
import torch
from torch import nn

from modularity.core.nulls import (benjamini_hochberg, binomial_ci, empirical_p, layer_rng, null_weight,
                              reinit_weight, resample_weight, shuffle_weight, summarise_null)


def _weight_with_zeros(seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(6, 4, 3, 3, generator=g)
    w[w.abs() < 0.5] = 0.0
    return w


def test_shuffle_keeps_the_multiset_of_values():
    w = torch.randn(8, 5, 3, 3)
    s = shuffle_weight(w, np.random.default_rng(0))
    assert s.shape == w.shape
    assert torch.equal(torch.sort(s.reshape(-1)).values, torch.sort(w.reshape(-1)).values)
    assert not torch.equal(s, w)


def test_shuffle_nonzero_keeps_zero_positions():
    w = _weight_with_zeros()
    s = shuffle_weight(w, np.random.default_rng(1), nonzero_only=True)
    assert torch.equal(s == 0, w == 0)
    assert torch.equal(torch.sort(s[s != 0]).values, torch.sort(w[w != 0]).values)


def test_plain_shuffle_moves_zeros():
    w = _weight_with_zeros()
    s = shuffle_weight(w, np.random.default_rng(1))
    assert not torch.equal(s == 0, w == 0)


def test_shuffle_is_reproducible_from_the_seed():
    w = torch.randn(4, 4, 3, 3)
    a = shuffle_weight(w, np.random.default_rng(7))
    b = shuffle_weight(w, np.random.default_rng(7))
    assert torch.equal(a, b)


def test_resample_draws_only_existing_values():
    w = torch.arange(24, dtype=torch.float32).reshape(2, 3, 2, 2)
    r = resample_weight(w, np.random.default_rng(0))
    assert r.shape == w.shape
    assert set(r.reshape(-1).tolist()) <= set(w.reshape(-1).tolist())
    # With replacement: 24 draws from 24 values almost surely repeat some.
    assert len(set(r.reshape(-1).tolist())) < 24


def test_reinit_uses_the_module_init_and_leaves_the_module_alone():
    conv = nn.Conv2d(16, 8, 3)
    with torch.no_grad():
        conv.weight.fill_(5.0)
    w = reinit_weight(conv, np.random.default_rng(0))
    # Conv2d's kaiming_uniform(a=sqrt(5)) init is uniform on +-1/sqrt(fan_in).
    bound = 1 / np.sqrt(16 * 9)
    assert float(w.abs().max()) <= bound + 1e-7
    assert float(w.std()) == pytest.approx(bound / np.sqrt(3), rel=0.1)
    assert torch.all(conv.weight == 5.0)


def test_reinit_is_reproducible_and_seed_dependent():
    conv = nn.Conv2d(4, 4, 3)
    a = reinit_weight(conv, np.random.default_rng(3))
    b = reinit_weight(conv, np.random.default_rng(3))
    c = reinit_weight(conv, np.random.default_rng(4))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_reinit_does_not_touch_the_global_torch_rng():
    conv = nn.Conv2d(2, 2, 1)
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    reinit_weight(conv, np.random.default_rng(0))
    assert torch.equal(torch.rand(3), expected)


def test_null_weight_rejects_unknown_kinds_and_reinit_without_module():
    w = torch.randn(2, 2)
    with pytest.raises(ValueError, match="unknown null model"):
        null_weight("flip", w, np.random.default_rng(0))
    with pytest.raises(ValueError, match="needs the module"):
        null_weight("reinit", w, np.random.default_rng(0))


def test_empirical_p_counts_ties_and_adds_one():
    null = np.array([1.0, 2.0, 2.0, 3.0])
    assert empirical_p(null, 2.0, "greater") == pytest.approx((3 + 1) / 5)
    assert empirical_p(null, 2.0, "less") == pytest.approx((3 + 1) / 5)
    assert empirical_p(null, 10.0, "greater") == pytest.approx(1 / 5)


def test_empirical_p_is_never_zero():
    assert empirical_p(np.zeros(99), 1.0) == pytest.approx(0.01)


def test_summarise_null_z_score_and_fixed_null():
    s = summarise_null(5.0, np.array([1.0, 2.0, 3.0]))
    assert s.null_mean == pytest.approx(2.0) and s.null_sd == pytest.approx(1.0)
    assert s.z == pytest.approx(3.0)
    assert summarise_null(1.0, np.ones(5)).z is None


def test_benjamini_hochberg_matches_a_hand_computation():
    p = [0.01, 0.04, 0.03, 0.005, None, 0.5]
    # Sorted: 0.005, 0.01, 0.03, 0.04, 0.5 (m = 5); p * m / rank:
    # 0.025, 0.025, 0.05, 0.05, 0.5; running minimum from the top keeps them.
    expected = [0.025, 0.05, 0.05, 0.025, None, 0.5]
    got = benjamini_hochberg(p)
    assert got[4] is None
    assert np.allclose([g for g in got if g is not None], [e for e in expected if e is not None])


def test_benjamini_hochberg_is_monotone_in_the_raw_p():
    p = np.random.default_rng(0).uniform(size=30)
    adj = np.array(benjamini_hochberg(p))
    order = np.argsort(p)
    assert np.all(np.diff(adj[order]) >= -1e-15) and np.all(adj >= p)


def test_layer_rng_depends_on_layer_name_only():
    a = layer_rng(0, "conv1").integers(1 << 30, size=3)
    b = layer_rng(0, "conv1").integers(1 << 30, size=3)
    c = layer_rng(0, "conv2").integers(1 << 30, size=3)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_binomial_ci_brackets_the_rate_and_matches_clopper_pearson():
    lo, hi = binomial_ci(2, 40)
    assert lo < 2 / 40 < hi
    # Clopper-Pearson 95% interval for 2/40 (from the beta quantiles).
    assert lo == pytest.approx(0.00611, abs=1e-4) and hi == pytest.approx(0.16922, abs=1e-4)
    assert binomial_ci(0, 40)[0] == 0.0


def test_degree_null_keeps_every_row_and_column_sum(rng):
    from modularity.core.nulls import degree_preserving_magnitude

    m = rng.gamma(0.5, size=(12, 20)) * rng.uniform(0.1, 10, size=(12, 1))  # unequal row scales, as BN folding gives
    draw = degree_preserving_magnitude(m, np.ones_like(m, dtype=bool), rng)
    np.testing.assert_allclose(draw.sum(axis=1), m.sum(axis=1), rtol=1e-8)
    np.testing.assert_allclose(draw.sum(axis=0), m.sum(axis=0), rtol=1e-8)
    assert not np.allclose(draw, m)


def test_degree_null_leaves_forbidden_connections_empty(rng):
    from tests.nets import grouped_net

    from modularity.core.graph import trace
    from modularity.core.magnitude import layer_magnitude
    from modularity.core.nulls import null_magnitude

    g = trace(grouped_net(groups=4, width=32), (8, 8))
    observed = layer_magnitude(g, "2")
    draw = null_magnitude(g, "2", "degree", rng)
    assert np.all(draw[observed == 0] == 0)
    np.testing.assert_allclose(draw.sum(axis=0), observed.sum(axis=0), rtol=1e-8)
