"""Counter-based random numbers keyed on (seed, layer, draw): the same numbers on every device.

A null draw's randomness must not depend on where it runs. numpy's streams
(:func:`~modularity.core.nulls.draw_rng`) exist only on the CPU, and torch's
generators differ between CPU and CUDA, so the torch engine
(:mod:`modularity.core.engine`) draws from *counter-based* functions instead:
every random number is a pure function of a key and a counter, computed with
exact integer arithmetic in torch ``int64``, so a CPU and a GPU give the same
bits.

- :func:`draw_key` hashes ``(seed, layer name, draw index)`` to a 64-bit key
  (BLAKE2b, computed once per draw on the host). Draw :data:`OBSERVED` is
  reserved for the observed profile, so the observation runs through the same
  code as its null draws.
- :func:`philox4x32` is Philox4x32-10 (Salmon et al. 2011 [1]_), the generator
  behind cuRAND's and JAX's counter-based streams: 10 rounds of 32-bit
  multiply-high/xor on a 128-bit counter, keyed by 64 bits. The 32 x 32-bit
  products are split into 16-bit halves so that no intermediate leaves
  ``int64`` (no overflow, whose behaviour torch does not define).
  Counters are ``(position, sub-stream, stream, purpose)``: each use
  (:class:`Purpose`) and each consumer or restart has its own stream.
- :func:`uniforms` turns two 32-bit words into a float64 in ``[0, 1)`` with
  53 random bits (exact on every device).
- :class:`KeyedPermutation` is a keyed bijection of ``[0, n)`` computed
  elementwise, ``perm[i] = F(i)``, without sorting: a Feistel network (Luby and
  Rackoff 1988 [2]_) on a mixed-radix domain ``[0, A) x [0, 2^b)`` just larger than
  ``n``, with cycle-walking for the few images that land beyond ``n``
  (Black and Rogaway 2002 [3]_). This is the construction of Mitchell, Stokes, Frank
  and Holmes (2022) [4]_, whose "VariablePhilox" bijection drives thrust's GPU
  shuffle, with two changes for the CPU: the round functions are random
  *tables* (one per round, filled from Philox: ideal random functions, as in
  Luby and Rackoff's construction) instead of 24 multiply-high rounds, so a
  round costs one table lookup and one add or xor; and the left half lives in
  ``[0, A)`` with addition modulo ``A`` (as format-preserving encryption does,
  NIST SP 800-38G [5]_), so the domain exceeds ``n`` by less than ``2^b``
  (about ``sqrt(n)``) and cycle-walking almost never runs, instead of up to
  doubling the work on a power-of-two domain. Every round is a bijection
  whatever its table, so ``F`` is a permutation of ``[0, n)`` exactly;
  how close the family is to uniform is checked statistically in
  ``tests/core/test_keyed_random.py``.

References
----------
.. [1] Salmon, J. K., Moraes, M. A., Dror, R. O., & Shaw, D. E. (2011). Parallel
   random numbers: as easy as 1, 2, 3. *Proceedings of SC11*, 16:1-16:12.
.. [2] Luby, M., & Rackoff, C. (1988). How to construct pseudorandom permutations
   from pseudorandom functions. *SIAM Journal on Computing*, 17(2), 373-386.
.. [3] Black, J., & Rogaway, P. (2002). Ciphers with arbitrary finite domains.
   *CT-RSA 2002*, LNCS 2271, 114-130.
.. [4] Mitchell, R., Stokes, D., Frank, E., & Holmes, G. (2022). Bandwidth-optimal
   random shuffling for GPUs. *ACM Transactions on Parallel Computing*, 9(1), 1-20.
.. [5] Dworkin, M. (2016). Recommendation for block cipher modes of operation:
   methods for format-preserving encryption. NIST Special Publication 800-38G.
"""

from __future__ import annotations

import hashlib
from enum import IntEnum

import numpy as np
import torch

__all__ = ["OBSERVED", "Purpose", "draw_key", "philox4x32", "random_words", "uniforms", "KeyedPermutation",
           "KeyedUniforms", "FEISTEL_ROUNDS", "HostPermutation", "keyed_permutation", "HOST_MAX"]

MASK32 = 0xFFFFFFFF
_PHILOX_M = (0xD2511F53, 0xCD9E8D57)
_PHILOX_W = (0x9E3779B9, 0xBB67AE85)
PHILOX_ROUNDS = 10
FEISTEL_ROUNDS = 12
"""Rounds of :class:`KeyedPermutation`'s Feistel network (half update the left part, half the right)."""
HOST_MAX = 1 << 20
"""Permutations of at most this many elements are drawn on the host (:class:`HostPermutation`), larger ones by the
Feistel network on the device (:func:`keyed_permutation`). On one CPU core torch's ``randperm`` is the faster of the
two up to about a million elements, the network beyond (its table lookups stay in cache where ``randperm``'s
random writes do not; BENCHMARKS.md, "keyed null"); on a GPU, copying a permutation of this size costs little, and
the network keeps the largest layers (alexnet's classifier.1: 37.7 M entries) on the device."""
SORT_MAX = 1 << 12
"""Up to this size a permutation is the order of ``n`` distinct keyed keys: the images of ``0 .. n - 1`` under
the Feistel network of ``[0, 2^13)``; above it the network runs on a domain just above ``n``, where both of
its parts have at least 2^6 values. On a few bits a Feistel network is far from uniform (its rounds draw
from few functions: on 6 elements, pairs of positions failed a chi-square test, chi2 = 124 on 29 degrees
of freedom), while from 6-bit parts on, single positions, pairs and displacements passed every test in
``tests/core/test_keyed_random.py`` (and, offline, 16 x 16-bin pair tests on 20,000 draws at n = 4099)."""

_CHUNK = 1 << 16  # elements evaluated at once on the CPU (the tables and buffers stay in cache)

OBSERVED = -1
"""The draw index reserved for the observed profile (null draws are 0, 1, ...)."""


class Purpose(IntEnum):
    """What a stream of random numbers is for (the counter's last word): no two uses share numbers."""

    PERMUTATION = 1  # the Feistel tables of a consumer's shuffle (stream: the consumer's index)
    KMEANS = 2  # k-means++ seeding (stream: which clustering; sub-stream: the restart)
    START = 3  # start vectors of iterative eigensolvers


def draw_key(seed: int, layer: str, draw: int) -> tuple[int, int]:
    """The 64-bit key of draw ``draw`` of ``layer`` under ``seed``, as two 32-bit words.

    Parameters
    ----------
    seed : int
        ``0 .. 2**64 - 1``.
    layer : str
        The producer layer's dotted name.
    draw : int
        A null draw's index (0-based) or :data:`OBSERVED`.

    Examples
    --------
    >>> draw_key(0, "features.0", 3) == draw_key(0, "features.0", 3) != draw_key(0, "features.0", 4)
    True
    """
    seed, draw = int(seed), int(draw)
    if not 0 <= seed < 2**64:
        raise ValueError(f"seed must be an integer from 0 to 2**64 - 1, got {seed}")
    if not -1 <= draw < 2**62:
        raise ValueError(f"draw must be -1 (observed) or a draw index >= 0, got {draw}")
    h = hashlib.blake2b(digest_size=8, person=b"modularity.draw")
    h.update(seed.to_bytes(8, "little"))
    h.update(draw.to_bytes(8, "little", signed=True))
    h.update(layer.encode("utf-8"))
    v = int.from_bytes(h.digest(), "little")
    return v & MASK32, v >> 32


def _mulhilo(a: torch.Tensor, m: int) -> tuple[torch.Tensor, torch.Tensor]:
    """High and low 32-bit words of ``a * m`` (``a`` int64 in ``[0, 2^32)``, ``m`` a 32-bit constant), exactly in
    int64."""
    p_lo = a * (m & 0xFFFF)  # < 2^48
    p_hi = a * (m >> 16)  # < 2^48
    t = p_lo + ((p_hi & 0xFFFF) << 16)  # < 2^49
    return (p_hi >> 16) + (t >> 32), t & MASK32


def _as_key(key, device: torch.device) -> torch.Tensor:
    k = torch.as_tensor(key, dtype=torch.int64, device=device)
    if k.shape[-1] != 2:
        raise ValueError(f"a key is two 32-bit words; got shape {tuple(k.shape)}")
    return k


def philox4x32(counter: torch.Tensor, key, rounds: int = PHILOX_ROUNDS) -> torch.Tensor:
    """Philox4x32-R of ``counter`` (int64 ``(..., 4)``, words in ``[0, 2^32)``) under ``key`` (``(..., 2)``).

    Keys broadcast against counters, so one call serves a batch of draws.
    Returns int64 ``(..., 4)`` words in ``[0, 2^32)``; ``rounds=10`` is the
    Random123 reference generator (its known-answer vectors are tested).
    """
    c = torch.as_tensor(counter, dtype=torch.int64)
    k = _as_key(key, c.device)
    c0, c1, c2, c3 = c.unbind(-1)
    k0, k1 = k.unbind(-1)
    for r in range(rounds):
        if r:
            k0 = (k0 + _PHILOX_W[0]) & MASK32
            k1 = (k1 + _PHILOX_W[1]) & MASK32
        hi0, lo0 = _mulhilo(c0, _PHILOX_M[0])
        hi1, lo1 = _mulhilo(c2, _PHILOX_M[1])
        c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
    return torch.stack(torch.broadcast_tensors(c0, c1, c2, c3), dim=-1)


def _philox_numpy(c: np.ndarray, k: np.ndarray, rounds: int = PHILOX_ROUNDS) -> np.ndarray:
    """:func:`philox4x32` in numpy ``uint64`` (a 32 x 32-bit product fits exactly): the same words, less overhead."""
    c0, c1, c2, c3 = (c[..., i].astype(np.uint64) for i in range(4))
    k0, k1 = (k[..., i].astype(np.uint64) for i in range(2))
    m0, m1, mask, s32 = np.uint64(_PHILOX_M[0]), np.uint64(_PHILOX_M[1]), np.uint64(MASK32), np.uint64(32)
    w0, w1 = np.uint64(_PHILOX_W[0]), np.uint64(_PHILOX_W[1])
    for r in range(rounds):
        if r:
            k0 = (k0 + w0) & mask
            k1 = (k1 + w1) & mask
        p0, p1 = c0 * m0, c2 * m1
        c0, c1, c2, c3 = (p1 >> s32) ^ c1 ^ k0, p1 & mask, (p0 >> s32) ^ c3 ^ k1, p0 & mask
    return np.stack(np.broadcast_arrays(c0, c1, c2, c3), axis=-1).astype(np.int64)


def random_words(key, purpose: int, stream: int, count: int, substream: int = 0,
                 device: torch.device | str | None = None) -> torch.Tensor:
    """``count`` 32-bit random words (int64) of one stream, for one key ``(2,)`` or a batch ``(B, 2)``.

    Word ``i`` is word ``i % 4`` of Philox block ``(i // 4, substream, stream, purpose)``,
    so the first ``count`` words do not depend on how many are asked for.
    Returns shape ``(count,)`` or ``(B, count)``.
    """
    k = _as_key(key, torch.device(device) if device is not None else torch.device("cpu"))
    blocks = (count + 3) // 4
    if k.device.type == "cpu":  # the same words from numpy's uint64 arithmetic: a fifth of the operations
        ctr = np.zeros((blocks, 4), dtype=np.uint64)
        ctr[:, 0] = np.arange(blocks, dtype=np.uint64)
        ctr[:, 1], ctr[:, 2], ctr[:, 3] = int(substream) & MASK32, int(stream) & MASK32, int(purpose) & MASK32
        kn = k.numpy()
        if kn.ndim == 1:
            return torch.from_numpy(_philox_numpy(ctr, kn).reshape(-1)[:count])
        return torch.from_numpy(_philox_numpy(ctr[None], kn[:, None, :]).reshape(kn.shape[0], -1)[:, :count])
    return _random_words_torch(k, purpose, stream, count, substream)


def _random_words_torch(k: torch.Tensor, purpose: int, stream: int, count: int, substream: int) -> torch.Tensor:
    """:func:`random_words` by :func:`philox4x32` in torch, on ``k``'s device (a GPU's route)."""
    blocks = (count + 3) // 4
    ctr = torch.zeros(blocks, 4, dtype=torch.int64, device=k.device)
    ctr[:, 0] = torch.arange(blocks, device=k.device)
    ctr[:, 1], ctr[:, 2], ctr[:, 3] = int(substream) & MASK32, int(stream) & MASK32, int(purpose) & MASK32
    if k.dim() == 1:
        return philox4x32(ctr, k).reshape(-1)[:count]
    out = philox4x32(ctr[None, :, :], k[:, None, :])  # (B, blocks, 4)
    return out.reshape(k.shape[0], -1)[:, :count]


def uniforms(key, purpose: int, stream: int, count: int, substream: int = 0,
             device: torch.device | str | None = None) -> torch.Tensor:
    """``count`` float64 uniforms in ``[0, 1)``, 53 random bits each (two words), for one key or a batch of keys.

    The conversion is exact integer arithmetic and a power-of-two scale, so every
    device gives the same floats.
    """
    w = random_words(key, purpose, stream, 2 * count, substream, device)
    w = w.reshape(*w.shape[:-1], count, 2)
    return ((w[..., 0] >> 5) * 67108864 + (w[..., 1] >> 6)).to(torch.float64) * (2.0 ** -53)


class KeyedUniforms:
    """A numpy-Generator stand-in that hands out given uniforms in order (``random``, ``integers``).

    The numpy twins of the engine's steps (e.g.
    :func:`modularity.core.spectral.kmeans`) draw through it, so they consume
    exactly the keyed numbers the torch engine uses: ``random()`` is the next
    uniform ``u``, ``integers(n)`` is ``min(floor(u * n), n - 1)``.
    """

    def __init__(self, values) -> None:
        self.values = np.asarray(values, dtype=np.float64).reshape(-1)
        self.used = 0

    def random(self) -> float:
        if self.used >= len(self.values):
            raise IndexError(f"all {len(self.values)} keyed uniforms are used")
        u = float(self.values[self.used])
        self.used += 1
        return u

    def integers(self, n: int) -> int:
        return min(int(self.random() * n), int(n) - 1)


class KeyedPermutation:
    """Keyed bijections of ``[0, n)``, one per key, evaluated elementwise (see the module docstring).

    Up to :data:`SORT_MAX` elements the bijection is the ``argsort`` of the
    images of ``0 .. n - 1`` under the network on ``[0, 2^13)``, held as a
    table; above it, the network on a domain just above ``n`` itself.

    Parameters
    ----------
    n : int
        Size of the permuted range (at least 1).
    keys : array-like, shape (2,) or (B, 2)
        One key (two 32-bit words) or a batch.
    stream : int
        Which stream of the key fills the round tables (e.g. the consumer's index).
    device : torch device, optional
    rounds : int
        Feistel rounds (even: half update the left part, half the right).

    Examples
    --------
    >>> p = KeyedPermutation(10, draw_key(0, "conv", 0), stream=0)
    >>> sorted(p(torch.arange(10)).tolist()) == list(range(10))
    True
    """

    def __init__(self, n: int, keys, stream: int = 0, device: torch.device | str | None = None,
                 rounds: int = FEISTEL_ROUNDS) -> None:
        if n < 1:
            raise ValueError(f"a permutation needs n >= 1, got {n}")
        if rounds < 2 or rounds % 2:
            raise ValueError(f"rounds must be even and at least 2, got {rounds}")
        self.n = int(n)
        device = torch.device(device) if device is not None else torch.device("cpu")
        k = _as_key(keys, device)
        self.single = k.dim() == 1
        k = k.reshape(-1, 2)
        self.n_keys = k.shape[0]
        self.device = device
        self.table = None
        if self.n <= SORT_MAX:
            # the order of n distinct keys: the images of 0 .. n - 1 under the network of [0, 2 * SORT_MAX)
            keys = KeyedPermutation(2 * SORT_MAX, k, stream, device, rounds)(torch.arange(self.n, device=device))
            order = torch.sort(keys, dim=-1).indices
            self.table = order[0] if self.single else order
            self.dtype = torch.int64
            return
        bits = max(1, (self.n - 1).bit_length())
        self.b = (bits + 1) // 2  # right part: [0, 2^b)
        self.size_r = 1 << self.b
        self.size_l = -(-self.n // self.size_r)  # left part: [0, A), A * 2^b >= n, less than 2^b over it
        span = max(self.size_l * self.size_r, self.n_keys * (rounds // 2) * max(self.size_l, self.size_r))
        self.dtype = torch.int32 if span < 2**31 else torch.int64  # int32 halves the memory traffic of every round
        self.half = rounds // 2
        # one table per round and key: left rounds add T[R] (mod A), right rounds xor U[L]
        words = random_words(k, Purpose.PERMUTATION, stream, self.half * (self.size_r + self.size_l))
        words_l, words_r = words[..., :self.half * self.size_r], words[..., self.half * self.size_r:]
        self.left = ((words_l * self.size_l) >> 32).to(self.dtype).reshape(-1)  # uniform in [0, A)
        self.right = (words_r & (self.size_r - 1)).to(self.dtype).reshape(-1)  # uniform in [0, 2^b)
        self._left_rounds = self.left[:self.half * self.size_r].split(self.size_r)  # the first key's, per round
        self._right_rounds = self.right[:self.half * self.size_l].split(self.size_l)

    def _forward(self, y: torch.Tensor, key_index: torch.Tensor | int) -> torch.Tensor:
        """One pass of the network over ``y`` (in ``[0, A * 2^b)``), in place where it can be.

        ``key_index``: 0 for the first key (the only one of a single-key
        permutation: its tables are indexed directly), else each element's key.
        """
        a, b = self.size_l, self.b
        sign = 31 if self.dtype == torch.int32 else 63
        left = y >> b
        right = y & (self.size_r - 1)
        tmp = torch.empty_like(left)
        flat_tmp = tmp.view(-1)
        direct = isinstance(key_index, int) and key_index == 0
        idx = None if direct else torch.empty_like(left)  # the rounds' table positions
        base_l = key_index * (self.half * self.size_r)
        base_r = key_index * (self.half * self.size_l)
        for j in range(self.half):
            if direct:  # the round's table is a contiguous slice: index it with the half itself
                torch.index_select(self._left_rounds[j], 0, right.view(-1), out=flat_tmp)
            else:
                assert idx is not None
                torch.add(right, base_l + j * self.size_r, out=idx)
                torch.index_select(self.left, 0, idx.view(-1), out=flat_tmp)
            left += tmp
            left -= a
            torch.bitwise_right_shift(left, sign, out=tmp)
            tmp &= a
            left += tmp  # (left + t) mod A without a branch: A added back where the difference went negative
            if direct:
                torch.index_select(self._right_rounds[j], 0, left.view(-1), out=flat_tmp)
            else:
                assert idx is not None
                torch.add(left, base_r + j * self.size_l, out=idx)
                torch.index_select(self.right, 0, idx.view(-1), out=flat_tmp)
            right ^= tmp
        left <<= b
        left |= right
        return left

    def range(self, start: int, stop: int) -> torch.Tensor:
        """Images of ``start .. stop - 1``."""
        return self(torch.arange(start, stop, device=self.device, dtype=self.dtype))

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Images ``F(x)`` of integers ``x`` in ``[0, n)``: shape ``x.shape`` for one key, ``(B, *x.shape)`` for a
        batch.

        Returned with the permutation's dtype (int32 below ``2^31``, else int64).
        """
        x = x.to(self.device, self.dtype)
        if self.table is not None:
            if self.single:
                return self.table[x]
            return self.table[:, x.reshape(-1)].reshape(self.n_keys, *x.shape)
        if self.single:
            if x.device.type == "cpu" and x.numel() > _CHUNK:  # in cache-sized pieces: the same numbers, faster
                return torch.cat([self(part) for part in x.reshape(-1).split(_CHUNK)]).reshape(x.shape)
            y = self._forward(x.clone(), 0)
            rows = None
        else:
            y = x.reshape(1, -1).expand(self.n_keys, -1).clone()
            ki = torch.arange(self.n_keys, device=self.device, dtype=self.dtype)[:, None]
            y = self._forward(y, ki)
        flat = y.view(-1)
        out = (flat >= self.n).nonzero().squeeze(1)
        if out.numel():  # cycle-walking: apply F again until every image is inside [0, n)
            if not self.single:
                cols = x.numel()
                rows = (out // cols).to(self.dtype)
            vals = flat[out]
            while out.numel():
                vals = self._forward(vals, 0 if rows is None else rows)
                inside = vals < self.n
                flat[out[inside]] = vals[inside]
                keep = ~inside
                out, vals = out[keep], vals[keep]
                if rows is not None:
                    rows = rows[keep]
        return y if self.single else y.reshape(self.n_keys, *x.shape)


class HostPermutation:
    """A keyed permutation of ``[0, n)`` drawn on the host: torch's CPU ``randperm``, its generator seeded by a
    hash of the key and the stream (BLAKE2b, as :func:`draw_key`), then moved to the device.

    The same on every device because it is always drawn on the CPU (by the
    same torch: ``randperm``'s algorithm is torch's own, not a promise across
    torch versions). Called as :class:`KeyedPermutation` is: ``perm(x)`` is the
    image of ``x``.

    Examples
    --------
    >>> p = HostPermutation(10, draw_key(0, "conv", 0), stream=0)
    >>> sorted(p(torch.arange(10)).tolist()) == list(range(10))
    True
    """

    def __init__(self, n: int, keys, stream: int = 0, device: torch.device | str | None = None) -> None:
        if n < 1:
            raise ValueError(f"a permutation needs n >= 1, got {n}")
        self.n = int(n)
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        k = _as_key(keys, torch.device("cpu"))
        self.single = k.dim() == 1
        k = k.reshape(-1, 2)
        self.n_keys = k.shape[0]
        self.dtype = torch.int32 if self.n < 2**31 else torch.int64
        tables = []
        for lo, hi in k.tolist():
            h = hashlib.blake2b(digest_size=8, person=b"modularity.perm")
            h.update(int(lo).to_bytes(4, "little") + int(hi).to_bytes(4, "little") + int(stream).to_bytes(8, "little"))
            g = torch.Generator().manual_seed(int.from_bytes(h.digest(), "little") >> 1)  # below 2^63
            tables.append(torch.randperm(self.n, generator=g, dtype=self.dtype))
        table = torch.stack(tables).to(self.device)
        self.table = table[0] if self.single else table

    def range(self, start: int, stop: int) -> torch.Tensor:
        """Images of ``start .. stop - 1`` (a view of the table, no lookup)."""
        return self.table[..., start:stop]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Images of integers ``x`` in ``[0, n)``: shape ``x.shape`` for one key, ``(B, *x.shape)`` for a batch."""
        x = x.to(self.device, torch.int64)
        if self.single:
            return self.table[x]
        return self.table[:, x.reshape(-1)].reshape(self.n_keys, *x.shape)


def keyed_permutation(n: int, keys, stream: int = 0,
                      device: torch.device | str | None = None) -> HostPermutation | KeyedPermutation:
    """The keyed permutation of ``[0, n)`` for ``keys`` and ``stream``: drawn on the host up to :data:`HOST_MAX`
    elements (:class:`HostPermutation`), by the Feistel network on the device above (:class:`KeyedPermutation`).

    Which one depends on ``n`` alone, so every device draws the same permutation.
    """
    if n <= HOST_MAX:
        return HostPermutation(n, keys, stream, device)
    return KeyedPermutation(n, keys, stream, device)
