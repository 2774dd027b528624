"""Counter-based keyed random numbers (modularity.core.keyed): exactness against references, and quality."""

import math

import numpy as np
import pytest
import torch
from scipy import stats

from modularity.core.keyed import (
    FEISTEL_ROUNDS,
    HOST_MAX,
    OBSERVED,
    SORT_MAX,
    HostPermutation,
    KeyedPermutation,
    KeyedUniforms,
    Purpose,
    draw_key,
    keyed_permutation,
    philox4x32,
    random_words,
    uniforms,
)

M32 = 0xFFFFFFFF
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


# ---------------------------------------------------------------- pure-Python references

def ref_philox(ctr, key, rounds=10):
    """Random123's Philox4x32-R, with Python integers."""
    c0, c1, c2, c3 = ctr
    k0, k1 = key
    for r in range(rounds):
        if r:
            k0, k1 = (k0 + 0x9E3779B9) & M32, (k1 + 0xBB67AE85) & M32
        p0, p1 = 0xD2511F53 * c0, 0xCD9E8D57 * c2
        c0, c1, c2, c3 = (p1 >> 32) ^ c1 ^ k0, p1 & M32, (p0 >> 32) ^ c3 ^ k1, p0 & M32
    return c0, c1, c2, c3


def ref_words(key, purpose, stream, count, substream):
    out = []
    for block in range((count + 3) // 4):
        out.extend(ref_philox((block, substream, stream, purpose), key))
    return out[:count]


def ref_permutation(n, key, stream, rounds=FEISTEL_ROUNDS, xs=None):
    """The keyed bijection element by element: sorted keys up to SORT_MAX, else the table-Feistel with cycle-walking."""
    if n <= SORT_MAX and xs is None:
        keys = ref_permutation(2 * SORT_MAX, key, stream, rounds, xs=list(range(n)))
        return sorted(range(n), key=lambda i: keys[i])
    bits = max(1, (n - 1).bit_length())
    b = (bits + 1) // 2
    size_r = 1 << b
    size_l = -(-n // size_r)
    half = rounds // 2
    words = ref_words(key, Purpose.PERMUTATION, stream, half * (size_r + size_l), 0)
    left = [(w * size_l) >> 32 for w in words[:half * size_r]]
    right = [w & (size_r - 1) for w in words[half * size_r:]]

    def f(x):
        lo, hi = x & (size_r - 1), x >> b
        for j in range(half):
            hi = (hi + left[j * size_r + lo]) % size_l
            lo ^= right[j * size_l + hi]
        return (hi << b) | lo

    out = []
    for x in (range(n) if xs is None else xs):
        y = f(x)
        while y >= n:
            y = f(y)
        out.append(y)
    return out


# ---------------------------------------------------------------- exactness

@pytest.mark.parametrize("ctr, key, expected", [
    ((0, 0, 0, 0), (0, 0), (0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8)),
    ((M32, M32, M32, M32), (M32, M32), (0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd)),
    ((0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344), (0xa4093822, 0x299f31d0),
     (0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1)),
])
def test_philox_matches_the_random123_known_answers(ctr, key, expected):
    assert tuple(philox4x32(torch.tensor(ctr), key).tolist()) == expected
    assert ref_philox(ctr, key) == expected


def test_philox_matches_the_reference_on_random_counters_and_keys():
    rng = np.random.default_rng(0)
    ctr = rng.integers(0, 2**32, size=(64, 4))
    key = rng.integers(0, 2**32, size=(64, 2))
    got = philox4x32(torch.as_tensor(ctr), torch.as_tensor(key)).tolist()
    assert got == [list(ref_philox(tuple(c), tuple(k))) for c, k in zip(ctr.tolist(), key.tolist())]


def test_numpy_and_torch_philox_routes_give_the_same_words():
    from modularity.core.keyed import _random_words_torch

    keys = torch.tensor([draw_key(1, "w", i) for i in range(4)])
    for k in (keys[0], keys):
        assert torch.equal(random_words(k, Purpose.PERMUTATION, 3, 37, substream=2),
                           _random_words_torch(k, Purpose.PERMUTATION, 3, 37, 2))


def test_random_words_are_a_prefix_stream_and_batch_like_single_keys():
    keys = [draw_key(5, "layer", i) for i in range(3)]
    batch = random_words(torch.tensor(keys), Purpose.KMEANS, 2, 11, substream=4)
    for i, k in enumerate(keys):
        single = random_words(k, Purpose.KMEANS, 2, 11, substream=4)
        assert torch.equal(batch[i], single)
        assert single.tolist() == ref_words(k, Purpose.KMEANS, 2, 11, 4)
        assert torch.equal(random_words(k, Purpose.KMEANS, 2, 5, substream=4), single[:5])


@pytest.mark.parametrize("n", [1, 2, 3, 7, 16, 17, 100, 1000])
def test_permutation_matches_the_reference(n):
    for draw in range(3):
        key = draw_key(11, "conv", draw)
        got = KeyedPermutation(n, key, stream=draw)(torch.arange(n)).tolist()
        assert got == ref_permutation(n, key, draw)


def test_feistel_permutation_matches_the_reference_elementwise():
    for n in (SORT_MAX + 1, 3 * SORT_MAX + 17):
        key = draw_key(4, "fc", n)
        xs = np.random.default_rng(n).choice(n, 500, replace=False).tolist()
        got = KeyedPermutation(n, key, stream=2)(torch.tensor(xs)).tolist()
        assert got == ref_permutation(n, key, 2, xs=xs)


@pytest.mark.parametrize("n", [1, 2, 5, 31, 32, 33, 1000, 65537, SORT_MAX, SORT_MAX + 1, 1_000_003])
def test_permutations_are_bijections(n):
    perm = KeyedPermutation(n, draw_key(0, "x", n))(torch.arange(n))
    assert torch.equal(torch.sort(perm.long()).values, torch.arange(n))


def test_a_batch_of_keys_gives_each_key_its_own_permutation():
    keys = [draw_key(2, "fc", i) for i in range(6)]
    n = 257
    batch = KeyedPermutation(n, torch.tensor(keys))(torch.arange(n))
    for i, k in enumerate(keys):
        assert torch.equal(batch[i], KeyedPermutation(n, k)(torch.arange(n)))
    assert len({tuple(r) for r in batch.tolist()}) == len(keys)


def test_permutation_is_elementwise():
    p = KeyedPermutation(10_000, draw_key(0, "x", 0))
    whole = p(torch.arange(10_000))
    assert torch.equal(p(torch.arange(5000, 7000)), whole[5000:7000])


def test_draw_keys_separate_seeds_layers_and_draws_and_reserve_the_observation():
    keys = {draw_key(s, name, d) for s in (0, 1) for name in ("a", "b") for d in (OBSERVED, 0, 1)}
    assert len(keys) == 12
    assert draw_key(3, "a", 4) == draw_key(3, "a", 4)
    with pytest.raises(ValueError):
        draw_key(-1, "a", 0)
    with pytest.raises(ValueError):
        draw_key(0, "a", -2)


def test_uniforms_are_in_range_exact_and_a_prefix_stream():
    key = draw_key(0, "u", 0)
    u = uniforms(key, Purpose.KMEANS, 0, 5000)
    assert u.dtype == torch.float64 and float(u.min()) >= 0.0 and float(u.max()) < 1.0
    assert torch.equal(uniforms(key, Purpose.KMEANS, 0, 100), u[:100])
    w = ref_words(key, Purpose.KMEANS, 0, 4, 0)
    assert float(u[0]) == ((w[0] >> 5) * 67108864 + (w[1] >> 6)) / 2.0**53
    assert stats.kstest(u.numpy(), "uniform").pvalue > 1e-3


def test_keyed_uniforms_hand_out_values_in_order():
    ku = KeyedUniforms([0.25, 0.999999, 0.5])
    assert ku.random() == 0.25
    assert ku.integers(10) == 9
    assert ku.integers(4) == 2
    with pytest.raises(IndexError):
        ku.random()


# ---------------------------------------------------------------- quality (fixed keys: deterministic tests)

def _perms(n: int, draws: int, seed: int = 0) -> np.ndarray:
    keys = torch.tensor([draw_key(seed, "quality", i) for i in range(draws)])
    return KeyedPermutation(n, keys)(torch.arange(n)).long().numpy()


# ---------------------------------------------------------------- permutations drawn on the host

@pytest.mark.parametrize("n", [1, 2, 5, 4096, 100_003])
def test_host_permutations_are_bijections_of_their_key_and_stream(n):
    key = draw_key(0, "host", 1)
    p = HostPermutation(n, key, stream=2)(torch.arange(n))
    assert sorted(p.tolist()) == list(range(n))
    assert torch.equal(HostPermutation(n, key, stream=2).range(0, n), p)  # the same for the same key and stream
    if n > 5:
        assert not torch.equal(HostPermutation(n, key, stream=3).range(0, n), p)
        assert not torch.equal(HostPermutation(n, draw_key(0, "host", 2), stream=2).range(0, n), p)


def test_a_batch_of_host_keys_gives_each_key_its_own_permutation():
    keys = [draw_key(1, "host", i) for i in range(3)]
    batch = HostPermutation(50, torch.tensor(keys), stream=1)
    for i, key in enumerate(keys):
        one = HostPermutation(50, key, stream=1)
        assert torch.equal(batch(torch.arange(50))[i], one(torch.arange(50)))
        assert torch.equal(batch.range(10, 20)[i], one.range(10, 20))


def test_the_permutation_is_chosen_by_size_alone():
    key = draw_key(0, "host", 0)
    assert isinstance(keyed_permutation(HOST_MAX, key), HostPermutation)
    assert isinstance(keyed_permutation(HOST_MAX + 1, key), KeyedPermutation)
    feistel = keyed_permutation(HOST_MAX + 1, key)
    assert torch.equal(feistel.range(5, 9), feistel(torch.arange(5, 9)))


def test_host_permutations_put_every_position_equally_likely():
    n, draws = 8, 3000
    keys = torch.tensor([draw_key(0, "host-quality", i) for i in range(draws)])
    p = HostPermutation(n, keys)(torch.arange(n)).long().numpy()
    counts = np.stack([np.bincount(p[:, i], minlength=n) for i in range(n)])
    assert stats.chisquare(counts.ravel(), np.full(n * n, draws / n)).pvalue > 1e-3


def test_every_position_is_equally_likely():
    n, draws = 8, 6000
    p = _perms(n, draws)
    counts = np.zeros((n, n))
    for i in range(n):
        counts[i] = np.bincount(p[:, i], minlength=n)
    assert stats.chisquare(counts.ravel(), np.full(n * n, draws / n)).pvalue > 1e-3


@pytest.mark.parametrize("n", [4, 5])
def test_every_permutation_of_a_small_set_is_equally_likely(n):
    draws = 60 * math.factorial(n)
    p = _perms(n, draws, seed=1)
    code = (p * n ** np.arange(n)).sum(axis=1)
    _, counts = np.unique(code, return_counts=True)
    assert len(counts) == math.factorial(n)
    assert stats.chisquare(counts).pvalue > 1e-3


def test_pairs_of_positions_are_jointly_uniform():
    n, draws = 6, 10000
    p = _perms(n, draws, seed=2)
    for i, j in [(0, 1), (0, 5), (2, 3)]:
        code = p[:, i] * n + p[:, j]
        counts = np.bincount(code, minlength=n * n).reshape(n, n)
        assert np.all(np.diag(counts) == 0)
        off = counts[~np.eye(n, dtype=bool)]
        assert stats.chisquare(off).pvalue > 1e-3


def test_a_permutation_statistic_has_the_uniform_permutation_law():
    """Spearman's footrule sum |i - perm(i)| and the fixed points, against numpy's uniform permutations."""
    n, draws = 1000, 2000
    p = _perms(n, draws, seed=3)
    rng = np.random.default_rng(0)
    ref = np.stack([rng.permutation(n) for _ in range(draws)])
    footrule = np.abs(p - np.arange(n)).sum(axis=1)
    footrule_ref = np.abs(ref - np.arange(n)).sum(axis=1)
    assert stats.ks_2samp(footrule, footrule_ref).pvalue > 1e-3
    fixed = (p == np.arange(n)).sum(axis=1)
    observed = np.bincount(np.minimum(fixed, 4), minlength=5)
    expected = np.array([stats.poisson.pmf(j, 1) for j in range(4)] + [stats.poisson.sf(3, 1)]) * draws
    assert stats.chisquare(observed, expected).pvalue > 1e-3


def test_consecutive_draws_are_uncorrelated():
    n, draws = 500, 400
    p = _perms(n, draws, seed=4).astype(float)
    r = np.array([np.corrcoef(p[i], p[i + 1])[0, 1] for i in range(draws - 1)])
    # under independence each r is about N(0, 1 / (n - 1))
    assert stats.kstest(r * math.sqrt(n - 1), "norm").pvalue > 1e-3


def test_kernel_sums_of_a_shuffled_weight_have_the_uniform_permutation_law():
    """What the null uses: sums of 9 consecutive permuted |w| (a 3x3 kernel) of a skewed weight tensor."""
    n, draws = 9 * 64, 1000
    w = np.random.default_rng(5).lognormal(size=n)
    p = _perms(n, draws, seed=5)
    permuted = np.empty((draws, n))
    permuted[np.arange(draws)[:, None], p] = w  # entry s moves to position perm(s)
    ours = permuted.reshape(draws, -1, 9).sum(-1).max(axis=1)
    rng = np.random.default_rng(6)
    ref = np.stack([rng.permutation(w) for _ in range(draws)]).reshape(draws, -1, 9).sum(-1).max(axis=1)
    assert stats.ks_2samp(ours, ref).pvalue > 1e-3


def test_feistel_positions_and_pairs_are_uniform_on_a_coarse_grid():
    """Above SORT_MAX: where single entries and pairs of entries (neighbours, the same right part) land."""
    n, draws, bins = SORT_MAX + 5, 2500, 8
    keys = torch.tensor([draw_key(7, "feistel", i) for i in range(draws)])
    b = (((n - 1).bit_length()) + 1) // 2
    xs = torch.tensor([0, 1, 12345, 12345 + (1 << b), n - 1])
    y = KeyedPermutation(n, keys)(xs).long().numpy() * bins // n  # (draws, 5) bins
    for i in range(len(xs)):
        assert stats.chisquare(np.bincount(y[:, i], minlength=bins)).pvalue > 1e-3
    for i, j in [(0, 1), (2, 3), (1, 4)]:
        assert stats.chisquare(np.bincount(y[:, i] * bins + y[:, j], minlength=bins * bins)).pvalue > 1e-3


def test_feistel_displacement_has_the_uniform_permutation_law():
    n, draws, sample = 200_003, 300, 2000
    xs = np.random.default_rng(8).choice(n, sample, replace=False)
    keys = torch.tensor([draw_key(8, "feistel", i) for i in range(draws)])
    y = KeyedPermutation(n, keys)(torch.as_tensor(xs)).long().numpy()
    rng = np.random.default_rng(9)
    ref = np.stack([rng.permutation(n)[xs] for _ in range(draws)])
    assert stats.ks_2samp(np.abs(y - xs).mean(1), np.abs(ref - xs).mean(1)).pvalue > 1e-3
    assert stats.ks_2samp((y < xs).mean(1), (ref < xs).mean(1)).pvalue > 1e-3


# ---------------------------------------------------------------- devices

@cuda
def test_cpu_and_cuda_give_the_same_numbers():
    key = draw_key(9, "features.10", 17)
    for n in (10, 100_003, SORT_MAX + 1, 3_000_000):
        x = torch.arange(n)
        assert torch.equal(KeyedPermutation(n, key, device="cpu")(x).cpu(),
                           KeyedPermutation(n, key, device="cuda")(x.cuda()).cpu())
    assert torch.equal(uniforms(key, Purpose.KMEANS, 1, 1000, device="cpu"),
                       uniforms(key, Purpose.KMEANS, 1, 1000, device="cuda").cpu())
