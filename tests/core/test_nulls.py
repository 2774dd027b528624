"""Null models and the statistics built on them (modularity.core.nulls)."""

import numpy as np
import pytest
import torch
from torch import nn

from modularity.core.nulls import (
    benjamini_hochberg,
    binomial_ci,
    empirical_p,
    layer_rng,
    null_weight,
    reinit_weight,
    resample_weight,
    shuffle_weight,
    summarise_null,
)


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
    from modularity.core.graph import trace
    from modularity.core.magnitude import layer_magnitude
    from modularity.core.nulls import null_magnitude
    from tests.nets import grouped_net

    g = trace(grouped_net(groups=4, width=32), (8, 8))
    observed = layer_magnitude(g, "2")
    draw = null_magnitude(g, "2", "degree", rng)
    assert np.all(draw[observed == 0] == 0)
    np.testing.assert_allclose(draw.sum(axis=0), observed.sum(axis=0), rtol=1e-8)


def _bn_conv_graph(kernel: int = 1, seed: int = 0):
    """conv (8 units) -> conv ``kernel`` x ``kernel`` with batch norm (6 units): the second reads the first."""
    from modularity.core.graph import trace

    torch.manual_seed(seed)
    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 6, kernel), nn.BatchNorm2d(6)).eval()
    with torch.no_grad():
        net[3].weight.copy_(torch.rand(6) + 0.5)
        net[3].running_var.copy_(torch.rand(6) + 0.5)
    return trace(net, (12, 12))


def test_magnitude_shuffle_of_a_1x1_conv_permutes_the_observed_reduced_magnitudes():
    """The exact shortcut: for a 1x1 conv the null draw is a permutation of the observed reduced |W|."""
    from modularity.core.magnitude import reduce_kernel
    from modularity.core.nulls import MagnitudeShuffle

    g = _bn_conv_graph(kernel=1)
    scale = g.layers["2"].row_scale
    assert scale is not None and np.ptp(scale) > 0
    observed = reduce_kernel(g.weight("2"), "l1").astype(np.float32).astype(np.float64)  # |w| as the null reads it
    shuffler = MagnitudeShuffle(g, "2", "l1")
    for seed in range(5):
        red = shuffler.reduced(np.random.default_rng(seed))
        assert red.shape == observed.shape
        assert np.array_equal(np.sort(red, axis=None), np.sort(observed, axis=None))  # the same multiset
        # Batch-norm scales stay with their rows: the raw entries move, every row keeps its own scale.
        placed = shuffler(np.random.default_rng(seed))
        np.testing.assert_array_equal(placed, red * scale[:, None])


def test_magnitude_shuffle_is_the_weight_shuffle_draw_for_draw():
    """A draw equals shuffling the weight with the same permutation and reducing it (1x1 and 3x3 kernels)."""
    from modularity.core.magnitude import place_magnitude
    from modularity.core.nulls import MagnitudeShuffle, null_magnitude

    for kernel, norm in ((1, "l1"), (1, "max"), (1, "l2"), (3, "l1"), (3, "l2"), (3, "max")):
        g = _bn_conv_graph(kernel=kernel, seed=kernel)
        w = g.weight("2")
        seed = 7
        # The permutation a draw uses: torch.randperm seeded by the draw's first integer.
        gen = torch.Generator().manual_seed(int(np.random.default_rng(seed).integers(2**63 - 1)))
        perm = torch.randperm(w.numel(), generator=gen)
        shuffled = w.reshape(-1)[perm].reshape(w.shape)
        r = shuffled.abs().reshape(w.shape[0], w.shape[1], -1)
        red = {"l1": r.sum(-1), "l2": r.pow(2).sum(-1).sqrt(), "max": r.amax(-1)}[norm].double().numpy()
        expected = place_magnitude(g, "2", red)
        got = MagnitudeShuffle(g, "2", norm)(np.random.default_rng(seed))
        np.testing.assert_array_equal(got, expected)
        np.testing.assert_array_equal(null_magnitude(g, "2", "shuffle", np.random.default_rng(seed), norm), expected)


def test_magnitude_shuffle_fold_first_permutes_the_folded_weights():
    from modularity.core.nulls import MagnitudeShuffle

    g = _bn_conv_graph(kernel=1)
    scale = torch.as_tensor(g.layers["2"].row_scale, dtype=torch.float32)
    folded = (g.weight("2") * scale[:, None, None, None]).abs().reshape(-1).double().numpy()
    got = MagnitudeShuffle(g, "2", "l1", fold_first=True)(np.random.default_rng(3))
    assert np.array_equal(np.sort(got, axis=None), np.sort(folded))  # the folded magnitudes, moved as a whole


def test_int32_randperm_is_the_int64_permutation():
    """MagnitudeShuffle draws int32 indices: the permutation must be the one int64 indices give."""
    for n in (7, 1000, 3_000_001):
        a = torch.randperm(n, generator=torch.Generator().manual_seed(11))
        b = torch.randperm(n, generator=torch.Generator().manual_seed(11), dtype=torch.int32)
        assert torch.equal(a, b.long())
