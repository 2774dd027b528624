"""Detectability of a column partition in a magnitude profile: signal, noise, BBP limit, expected ARI, verdict.

A reader of a layer whose branches were recovered with ARI 0.04 needs to know
whether the branches are not in the weights or whether the method missed
them. This module answers with the spectral detectability limit of the
partition in the matrix the co-clustering decomposes.

Model
-----
The co-clustering (:mod:`modularity.core.methods`) decomposes the
degree-normalised profile ``An = D_r^-1/2 A D_c^-1/2``. Its leading singular
triplet is exact and carries no grouping: singular value 1, vectors
``u0 = sqrt(d_r / T)`` and ``v0 = sqrt(d_c / T)`` (``T`` the sum of ``A``), the
degree (scale) part. We write

    ``An = u0 v0^T + S + N``

with ``S`` the *signal of the column partition*, a matrix whose row space lies
in the span of the group indicators (the columns of one group share one
expected profile), orthogonal to ``u0`` and ``v0``, and ``N`` noise with
independent entries of mean 0 and one variance ``sigma^2``. The partition's
signal strengths ``theta_1 >= theta_2 >= ...`` are the singular values of
``S`` (at most ``k`` for ``k`` groups). The estimates need the leading
singular triplets of ``An`` (one decomposition, or the caller's), three top
singular values of Gaussian draws (the edge) and small simulations:

- **noise** ``sigma``: the residual ``An - u0 v0^T`` has squared norm exactly
  ``|An|_F^2 - 1``; the energy ``theta^2`` of every outlier above the noise
  edge is removed from it (outliers, edge and ``sigma`` iterated to a fixed
  point) and the rest divided by the ``(n - 1) (m - 1)`` degrees of freedom.
  Without that deflation strong structure inflates ``sigma`` and hides below
  its own edge.
- **signal**: with ``Q`` an orthonormal basis of the group indicators made
  orthogonal to ``v0``, ``Y = An Q = S Q + N Q`` is an ``n x q``
  information-plus-noise matrix with the same ``sigma``; its singular values
  are de-biased by inverting the rectangular spike map for that shape
  [1]_ [4]_ (:func:`spike_strength`; 0 inside its noise bulk).
- **threshold** ``theta* = sigma (n m)^(1/4)`` (:func:`bbp_threshold`), the
  rectangular BBP transition of the ``n x m`` profile [1]_: singular vectors
  of ``An`` carry information about a spike of strength ``theta`` only when
  ``theta > theta*``. **ratio** is ``theta_1 / theta*``. Where the noise
  variances differ between rows or columns, ``sigma`` here (and in the
  overlaps) is the effective level ``edge / (sqrt(n) + sqrt(m))`` that puts
  the equal-variance edge where the simulated edge of the variance profile
  is (see below): an approximation, checked in ``reports/detectability.md``.
- **predicted overlaps** ``rho_i``: the limit of the squared overlap between
  the column-side singular vector of ``An`` and that of spike ``i`` of ``S``
  (closed form above the threshold, 0 below; :func:`squared_overlaps`).
- **expected ARI** (:func:`expected_ari`): each column is placed at its
  planted coordinates ``sqrt(rho_i) v_i[j]`` along the informative
  directions (``rho_i > 0``) plus independent Gaussian noise of variance
  ``(1 - rho_i) / m`` (the part of an estimated singular vector that is not
  the planted one is a uniformly random direction); k-means (10 restarts)
  groups these simulated columns and the mean ARI [5]_ over replicates of the
  layer's columns, with its spread, is what a spectral method that embeds the
  columns by their informative singular vectors and runs k-means can expect.
  **optimal ARI** assigns the same simulated columns by the Bayes rule with
  the true centres instead: what any method using those singular vectors
  could reach at best. The simulation is preferred to a calibrated map from
  overlap to ARI because it has no fitted constants and follows the layer's
  own group sizes and geometry, including the finite-size chance agreement of
  k-means; ``scripts/detectability_curve.py`` (``reports/detectability.md``)
  checks it against the default co-clustering on plantings.

The prediction assumes the partition's directions are the leading structure
of ``An``. Trained networks have other structure too: **n_competing** counts
the outliers above the edge beyond the partition's own detectable directions,
and **leading_overlap** (when the singular vectors are at hand) measures how
much of the ``k - 1`` leading non-trivial directions actually lies in the
partition's span. Where other directions come first, a spectral method can
fall well below the expected ARI although the partition is above the limit.

For unlabelled layers (``labels=None``) only the edge part is set: how many
non-trivial singular values of ``An`` stand above the noise edge and by how
much. The edge is ``sigma (sqrt(n) + sqrt(m))`` for equal noise variances
(the Bai-Yin edge [6]_); unequal row or column scales lift it, so it is
multiplied by the mean top singular value of Gaussian draws with the
residual's row and column scales, over the same ``sqrt(n) + sqrt(m)``, and a
value counts as above it when it clears it by ``max(EDGE_MARGIN, EDGE_SDS *
spread)`` (the draws' relative standard deviation). A partition *found* from
the same matrix is fitted to its noise, so its own signal estimate is biased
upwards: use the edge verdict there.

Which limit
-----------
Below ``theta*`` no spectral method recovers the groups. For ``k = 3`` or 4
groups of equal size, and for two groups whose smaller one holds at least
``1/2 - 1/sqrt(12)`` (about 21 %) of the columns, the spectral and the
information-theoretic thresholds of this Gaussian model coincide [2]_ [3]_:
below it *no* method can. For five or more groups, or very unequal sizes, a
hard phase can lie below the spectral threshold, so the verdict then speaks
for spectral methods only (:attr:`Detectability.limit`).

Assumptions worth stating: the formulas are those of homoscedastic noise;
unequal variances (degree normalisation evens out row and column scales only
in part) enter only through the effective noise level of the edge, which
moves the threshold to about the right place but leaves the expected ARI
optimistic; asymptotic formulas are used at finite size, where the
transition is blurred over a window of relative width of order
``min(n, m)^(-1/3)`` around ``theta*`` (weak but significant agreement just
below it is common); the deflation removes only outliers among the singular
values examined (32 by default), so a layer with more outliers has ``sigma``
overestimated (and its ratio underestimated) a little.

References
----------
.. [1] Benaych-Georges, F., & Nadakuditi, R. R. (2012). The singular values and
   vectors of low rank perturbations of large rectangular random matrices.
   *Journal of Multivariate Analysis*, 111, 120-135.
.. [2] Lesieur, T., Krzakala, F., & Zdeborova, L. (2015). MMSE of probabilistic
   low-rank matrix estimation: universality with respect to the output
   channel. *53rd Annual Allerton Conference on Communication, Control, and
   Computing*.
.. [3] Lesieur, T., Krzakala, F., & Zdeborova, L. (2017). Constrained low-rank
   matrix estimation: phase transitions, approximate message passing and
   applications. *Journal of Statistical Mechanics: Theory and Experiment*,
   073403.
.. [4] Gavish, M., & Donoho, D. L. (2017). Optimal shrinkage of singular values.
   *IEEE Transactions on Information Theory*, 63(4), 2137-2152. (The
   normalisation of the rectangular spike formulas used here.)
.. [5] Hubert, L., & Arabie, P. (1985). Comparing partitions. *Journal of
   Classification*, 2(1), 193-218.
.. [6] Bai, Z. D., & Yin, Y. Q. (1993). Limit of the smallest eigenvalue of a
   large dimensional sample covariance matrix. *Annals of Probability*, 21(3),
   1275-1294.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np

from ..errors import ModularityError
from .metrics import adjusted_rand
from .spectral import degree_normalised, kmeans, top_singular, top_singular_values

__all__ = ["Detectability", "detectability", "verdict", "edge_verdict", "bbp_threshold", "spike_value",
           "spike_strength", "squared_overlaps", "expected_ari",
           "RECOVERED", "MISSED", "BELOW_LIMIT", "BELOW_SPECTRAL_LIMIT", "ABOVE_EDGE", "NO_STRUCTURE",
           "OUTCOMES", "MISS_SDS", "MISS_FLOOR", "EDGE_MARGIN", "EDGE_SDS", "N_EDGE_VALUES", "UNBALANCED_TWO_GROUPS",
           "BALANCE_TOLERANCE"]

RECOVERED = "detectable and recovered"
"""Verdict: the branches are above the limit and the clusters found them."""
MISSED = "detectable but not recovered"
"""Verdict: the branches are above the limit, but the clusters fall short of the ARI a spectral method can expect."""
BELOW_LIMIT = "below the limit: no method can recover these branches from these weights"
"""Verdict: the branches are below the limit where *no* method can recover them (information-theoretic limit)."""
BELOW_SPECTRAL_LIMIT = "below the limit: no spectral method can recover these branches from these weights"
"""Verdict: the branches are below the limit where no *spectral* method can recover them."""
ABOVE_EDGE = "structure above the noise edge"
"""Verdict of a layer without branches: a non-trivial singular value clears the noise edge."""
NO_STRUCTURE = "no structure above the noise edge"
"""Verdict of a layer without branches: nothing clears the noise edge."""
OUTCOMES = {RECOVERED: "recovered", MISSED: "missed", BELOW_LIMIT: "below_limit",
            BELOW_SPECTRAL_LIMIT: "below_limit", ABOVE_EDGE: "above_edge", NO_STRUCTURE: "no_structure"}
"""A short code for every verdict (the labelled ones have three outcomes; the last has two wordings)."""

MISS_SDS = 2.0
"""An ARI more than this many simulated standard deviations below the expected one is "not recovered"."""
MISS_FLOOR = 0.05
"""... and always at least this far below it (the simulation's spread vanishes for strong signals)."""
EDGE_MARGIN = 0.02
"""A singular value counts as above the noise edge when it exceeds it by at least this fraction ..."""
EDGE_SDS = 3.0
"""... and by this many standard deviations of the simulated edge (see :func:`detectability`)."""
N_EDGE_VALUES = 32
"""Non-trivial singular values examined (edge count, noise deflation) when the caller passes none."""
UNBALANCED_TWO_GROUPS = 0.5 - 1.0 / math.sqrt(12.0)
"""Smallest group share at which two groups' spectral and information-theoretic thresholds coincide.

(Lesieur, Krzakala and Zdeborova 2017, J. Stat. Mech. 073403.)
"""
BALANCE_TOLERANCE = 0.1
"""Three or four groups count as of equal size when each is within this fraction of ``m / k``."""

_KMEANS_POINTS = 4096  # simulated columns for the expected ARI (whole replicates of the layer, at least 8)
_BAYES_POINTS = 40_000  # the same for the optimal ARI (no k-means: cheap)
_MIN_REPLICATES = 8
_EDGE_DRAWS = 3  # Gaussian draws of the noise profile for the edge
_EDGE_ENTRIES = 1 << 20  # larger profiles are drawn on a subset of rows and columns of about this many entries


@dataclass(frozen=True)
class Detectability:
    """How detectable a column partition (or any structure) is in one degree-normalised profile.

    Attributes
    ----------
    n_rows, n_cols : int
        Live rows and columns used (all-zero rows and columns, and columns
        labelled ``-1``, are left out).
    k : int
        Groups of the partition among those columns (0 without labels).
    noise : float
        ``sigma``, the entry noise of ``An = D_r^-1/2 A D_c^-1/2``.
    edge : float
        The noise edge, where the largest non-trivial singular value of pure
        noise sits: ``sigma (sqrt(n_rows) + sqrt(n_cols))`` times the factor
        by which the residual's row and column scales lift it (simulated).
    edge_margin : float
        The relative margin a value must clear: ``max(EDGE_MARGIN, EDGE_SDS *``
        the simulated edge's relative standard deviation``)``.
    leading : tuple of float
        The non-trivial leading singular values of ``An`` examined (the
        trivial value 1 left out), descending.
    n_above_edge : int
        How many of ``leading`` exceed ``edge * (1 + edge_margin)`` (a lower
        bound when all of them do).
    edge_gap : float
        ``(leading[0] - edge) / edge``: how far the top non-trivial value
        stands above the edge, in units of the edge (negative below it).
    signal : float or None
        ``theta_1``, the partition's strongest signal direction (0 when even
        knowing the partition it cannot be told from noise); None without labels.
    signals : tuple of float
        Every ``theta_i`` of the partition, descending.
    threshold : float or None
        ``theta* = sigma_eff (n_rows n_cols)^(1/4)``, ``sigma_eff = edge /
        (sqrt(n_rows) + sqrt(n_cols))`` (``noise`` for equal variances).
    ratio : float or None
        ``signal / threshold``: above 1 the partition is detectable.
    predicted_overlap : float or None
        Predicted squared overlap of the top column-side singular vector with
        the partition's strongest direction (0 below the threshold).
    predicted_overlaps : tuple of float
        The same for every ``theta_i``.
    expected_ari, expected_ari_sd : float or None
        Mean and standard deviation of the ARI a spectral method (informative
        singular vectors, k-means) can expect on a layer like this one.
    optimal_ari : float or None
        The ARI of the Bayes assignment of the same embedding (true centres).
    n_competing : int or None
        Outliers above the edge beyond the partition's own detectable
        directions: other structure that a spectral method meets first.
    leading_overlap : float or None
        Mean squared overlap of the ``k - 1`` leading non-trivial right
        singular vectors of ``An`` with the partition's span (None when the
        vectors were not available).
    limit : str or None
        ``"information-theoretic"`` when below the threshold no method can
        recover the groups (three or four equal groups, or two groups the
        smaller holding at least :data:`UNBALANCED_TWO_GROUPS`), else
        ``"spectral"``.
    """

    n_rows: int
    n_cols: int
    k: int
    noise: float
    edge: float
    edge_margin: float
    leading: tuple[float, ...]
    n_above_edge: int
    edge_gap: float
    signal: float | None = None
    signals: tuple[float, ...] = ()
    threshold: float | None = None
    ratio: float | None = None
    predicted_overlap: float | None = None
    predicted_overlaps: tuple[float, ...] = ()
    expected_ari: float | None = None
    expected_ari_sd: float | None = None
    optimal_ari: float | None = None
    n_competing: int | None = None
    leading_overlap: float | None = None
    limit: str | None = None

    def __repr__(self) -> str:
        def g(x: float | None) -> str:
            return "-" if x is None else f"{x:.3g}"

        if not self.labelled:
            return (f"Detectability({self.n_rows} x {self.n_cols}, {self.n_above_edge} values above the noise edge, "
                    f"gap {g(self.edge_gap)})")
        return (f"Detectability({self.n_rows} x {self.n_cols}, k={self.k}, signal/limit={g(self.ratio)}, "
                f"expected ARI={g(self.expected_ari)} ± {g(self.expected_ari_sd)}, {self.n_above_edge} above edge, "
                f"{self.limit} limit)")

    @property
    def labelled(self) -> bool:
        """Whether a partition was scored (``signal`` and the fields after it are set)."""
        return self.signal is not None

    @property
    def detectable(self) -> bool | None:
        """``ratio > 1``; None without labels."""
        return None if self.ratio is None else self.ratio > 1.0

    @property
    def expected_ari_low(self) -> float | None:
        """The lowest ARI still counted as recovered: ``expected - max(MISS_SDS * sd, MISS_FLOOR)``."""
        if self.expected_ari is None:
            return None
        return self.expected_ari - max(MISS_SDS * (self.expected_ari_sd or 0.0), MISS_FLOOR)

    def as_dict(self) -> dict:
        """JSON-ready values: tuples as lists, floats to 6 significant digits, and the derived fields."""
        def plain(x):
            if isinstance(x, tuple):
                return [plain(v) for v in x]
            if isinstance(x, float):
                return float(f"{x:.6g}") if math.isfinite(x) else None
            return x

        out = {f.name: plain(getattr(self, f.name)) for f in fields(self)}
        out["detectable"] = self.detectable
        out["expected_ari_low"] = plain(self.expected_ari_low)
        return out


# ------------------------------------------------------------------ rectangular spike formulas

def bbp_threshold(n: int, m: int, sigma: float) -> float:
    """Rectangular BBP threshold ``theta* = sigma (n m)^(1/4)`` of an ``n x m`` matrix with entry noise ``sigma``.

    A rank-one signal ``theta u v^T`` added to ``n x m`` noise of independent
    entries with variance ``sigma^2`` lifts the top singular value out of the
    noise bulk, and turns the top singular vectors towards ``u`` and ``v``,
    only when ``theta > theta*``.

    References
    ----------
    Benaych-Georges, F., & Nadakuditi, R. R. (2012). The singular values and
    vectors of low rank perturbations of large rectangular random matrices.
    J. Multivariate Anal., 111, 120-135.

    Examples
    --------
    >>> bbp_threshold(256, 256, 1.0)
    16.0
    """
    return float(sigma) * float(n * m) ** 0.25


def _normalised(theta: float, n: int, m: int, sigma: float) -> tuple[float, float]:
    """``x = theta / (sigma sqrt(max(n, m)))`` and ``beta = min / max`` (Gavish-Donoho units)."""
    big, small = max(n, m), min(n, m)
    return theta / (sigma * math.sqrt(big)), small / big


def spike_value(theta: float, n: int, m: int, sigma: float) -> float:
    """Limit of the top singular value of ``theta u v^T + noise`` (``n x m``, entry sd ``sigma``).

    ``sigma sqrt(max) sqrt((x + 1/x) (x + beta/x))`` above the threshold
    (``x = theta / (sigma sqrt(max))``, ``beta = min / max``), the bulk edge
    ``sigma (sqrt(n) + sqrt(m))`` at or below it.

    References
    ----------
    Benaych-Georges & Nadakuditi (2012), section 3.1; Gavish & Donoho (2017).

    Examples
    --------
    >>> round(spike_value(0.0, 400, 100, 1.0), 6), round(spike_value(40.0, 400, 100, 1.0), 4)
    (30.0, 46.0977)
    """
    if sigma <= 0:
        return float(theta)
    x, beta = _normalised(theta, n, m, sigma)
    if x ** 4 <= beta:
        return float(sigma * (math.sqrt(n) + math.sqrt(m)))
    return float(sigma * math.sqrt(max(n, m)) * math.sqrt((x + 1 / x) * (x + beta / x)))


def spike_strength(value: float, n: int, m: int, sigma: float) -> float:
    """Inverse of :func:`spike_value`: the ``theta`` whose top singular value is ``value``; 0 at or below the edge.

    In Gavish-Donoho units ``y = value / (sigma sqrt(max))``:
    ``x^2 = ((y^2 - 1 - beta) + sqrt((y^2 - 1 - beta)^2 - 4 beta)) / 2``.

    References
    ----------
    Gavish, M., & Donoho, D. L. (2017). Optimal shrinkage of singular values.
    IEEE Trans. Inf. Theory, 63(4), 2137-2152.

    Examples
    --------
    >>> round(spike_strength(spike_value(40.0, 400, 100, 1.0), 400, 100, 1.0), 6)
    40.0
    >>> spike_strength(29.0, 400, 100, 1.0)
    0.0
    """
    if sigma <= 0:
        return float(value)
    big, small = max(n, m), min(n, m)
    beta = small / big
    y2 = (value / (sigma * math.sqrt(big))) ** 2
    if y2 <= (1 + math.sqrt(beta)) ** 2:
        return 0.0
    b = y2 - 1 - beta
    x2 = (b + math.sqrt(max(b * b - 4 * beta, 0.0))) / 2
    return float(sigma * math.sqrt(big) * math.sqrt(x2))


def squared_overlaps(theta: float, n: int, m: int, sigma: float) -> tuple[float, float]:
    """Predicted squared overlaps ``(rows, cols)`` of the top singular vectors with the planted ones.

    For ``theta u v^T + noise`` (``n x m``, entry sd ``sigma``) with
    ``x = theta / (sigma sqrt(max(n, m)))`` and ``beta = min(n, m) / max(n, m)``,
    the vector on the longer side has ``(x^4 - beta) / (x^4 + x^2)`` and the
    one on the shorter side ``(x^4 - beta) / (x^4 + beta x^2)``; both are 0 at
    or below the threshold ``x^4 = beta`` (``theta = theta*``).

    Returns
    -------
    rows, cols : float
        For ``u`` (length ``n``) and ``v`` (length ``m``).

    References
    ----------
    Benaych-Georges, F., & Nadakuditi, R. R. (2012), section 3.1.
    Gavish, M., & Donoho, D. L. (2017), lemma 1 (same normalisation).

    Examples
    --------
    >>> squared_overlaps(10.0, 100, 100, 1.0)
    (0.0, 0.0)
    >>> [round(x, 4) for x in squared_overlaps(20.0, 100, 100, 1.0)]
    [0.75, 0.75]
    """
    if sigma <= 0:
        return 1.0, 1.0
    x, beta = _normalised(theta, n, m, sigma)
    x4 = x ** 4
    if x4 <= beta:
        return 0.0, 0.0
    long_side = (x4 - beta) / (x4 + x * x)
    short_side = (x4 - beta) / (x4 + beta * x * x)
    return (long_side, short_side) if n >= m else (short_side, long_side)


# ------------------------------------------------------------------ expected ARI

def expected_ari(centres: np.ndarray, groups: np.ndarray, overlaps: np.ndarray,
                 rng: np.random.Generator | int | None = None, assign: str = "kmeans",
                 n_points: int | None = None) -> tuple[float, float]:
    """Mean and standard deviation of the ARI of columns embedded by noisy singular vectors.

    Column ``j`` sits at ``sqrt(rho_i) centres[j, i]`` along each informative
    direction ``i`` (``rho_i > 0``) plus independent Gaussian noise of variance
    ``(1 - rho_i) / m`` (``m`` the number of columns). The simulated columns
    are grouped by k-means (``assign="kmeans"``: k-means++ and Lloyd, best of
    10 restarts, as the default co-clustering) or assigned by the Bayes rule
    of that Gaussian mixture (``"bayes"``: the group means of the planted
    coordinates as centres, priors from the group sizes), and scored against
    ``groups`` by the adjusted Rand index (Hubert and Arabie 1985). Replicates of the ``m``
    columns (at least 8, about ``n_points`` columns in all) give the mean and
    the spread of the ARI of a layer of this size.

    Parameters
    ----------
    centres : ndarray, shape (m, q)
        Planted (unit-norm) column-side singular vectors, one column per spike.
    groups : ndarray of int, shape (m,)
        Group of each column, ``0..k-1``.
    overlaps : ndarray, shape (q,)
        Predicted squared overlaps ``rho_i``; directions with ``rho_i = 0``
        carry nothing and are left out.
    rng : Generator, int or None
        Monte Carlo draws; None uses a fixed seed (0), so that the prediction is
        a function of its inputs.
    assign : {"kmeans", "bayes"}
    n_points : int, optional
        Simulated columns in all (default 4096 for k-means, 40,000 for Bayes).

    Returns
    -------
    mean, sd : float
        ``(0.0, 0.0)`` when no direction carries information.

    Examples
    --------
    >>> v = np.repeat([[1.0], [-1.0]], 50, axis=0) / 10
    >>> g = np.repeat([0, 1], 50)
    >>> expected_ari(v, g, np.array([0.0]))
    (0.0, 0.0)
    >>> expected_ari(v, g, np.array([0.9]))[0] > 0.99
    True
    """
    if assign not in ("kmeans", "bayes"):
        raise ModularityError(f"unknown assignment '{assign}'; choose kmeans or bayes")
    rho = np.clip(np.asarray(overlaps, dtype=np.float64), 0.0, 1.0)
    use = rho > 0
    groups = np.asarray(groups)
    k = int(groups.max()) + 1 if len(groups) else 0
    if not use.any() or k < 2:
        return 0.0, 0.0
    if not isinstance(rng, np.random.Generator):
        rng = np.random.default_rng(0 if rng is None else rng)
    m = len(groups)
    mu = np.asarray(centres, dtype=np.float64)[:, use] * np.sqrt(rho[use])
    var = np.maximum((1.0 - rho[use]) / m, 1e-300)
    sd = np.sqrt(var)
    if n_points is None:
        n_points = _KMEANS_POINTS if assign == "kmeans" else _BAYES_POINTS
    reps = max(_MIN_REPLICATES, int(math.ceil(n_points / m)))
    means = np.stack([mu[groups == g].mean(axis=0) for g in range(k)])
    log_prior = np.log(np.bincount(groups, minlength=k) / m)
    scores = np.empty(reps)
    for r in range(reps):
        z = mu + rng.standard_normal(mu.shape) * sd
        if assign == "kmeans":
            found = kmeans(z, k, rng, n_init=10)
        else:
            found = (-0.5 * (((z[:, None, :] - means[None]) ** 2) / var).sum(axis=-1) + log_prior).argmax(axis=1)
        scores[r] = adjusted_rand(groups, found)
    return float(scores.mean()), float(scores.std(ddof=1))


# ------------------------------------------------------------------ the estimate

def _limit_kind(sizes: np.ndarray) -> str:
    """``"information-theoretic"`` where the spectral threshold is also the information-theoretic one [2]_ [3]_."""
    k, m = len(sizes), float(sizes.sum())
    if k == 2 and sizes.min() / m >= UNBALANCED_TWO_GROUPS:
        return "information-theoretic"
    if k in (3, 4) and np.all(np.abs(sizes - m / k) <= BALANCE_TOLERANCE * m / k):
        return "information-theoretic"
    return "spectral"


def _profile_edge(an: np.ndarray, dr: np.ndarray, dc: np.ndarray, rng: np.random.Generator) -> tuple[float, float]:
    """The noise edge of the residual's variance profile, in units of the equal-variance edge, and its spread.

    Draws of ``diag(sqrt(a)) Z diag(sqrt(b))``, ``Z`` standard Gaussian and
    ``a``, ``b`` the residual's row and column mean squares scaled to mean 1
    (a separable variance profile), give the top singular value of noise with
    those row and column scales; divided by ``sqrt(n) + sqrt(m)`` it is about 1
    for equal variances and above 1 when scales differ (degree normalisation
    evens them out only in part). Returns the mean and the standard deviation
    of :data:`_EDGE_DRAWS` draws. A profile of more than :data:`_EDGE_ENTRIES`
    entries is drawn on a random subset of its rows and columns of that size
    (same aspect ratio). The residual ``An - u0 v0^T`` is never formed: its
    row energies are those of ``An`` less ``u0_i^2 = d_r[i] / T`` (because
    ``An v0 = u0``), its column energies likewise.
    """
    n, m = an.shape
    sq = an * an
    total = float(dr.sum())
    a = np.maximum(sq.sum(axis=1) - dr / total, 0.0)
    b = np.maximum(sq.sum(axis=0) - dc / total, 0.0)
    if a.sum() <= 0 or b.sum() <= 0:
        return 1.0, 0.0
    a, b = np.sqrt(a / a.mean()), np.sqrt(b / b.mean())
    shrink = min(1.0, math.sqrt(_EDGE_ENTRIES / (n * m)))
    ns, ms = max(2, round(n * shrink)), max(2, round(m * shrink))
    draws = []
    for _ in range(_EDGE_DRAWS):
        ra = a if ns == n else a[rng.choice(n, ns, replace=False)]
        rb = b if ms == m else b[rng.choice(m, ms, replace=False)]
        z = rng.standard_normal((ns, ms))
        z *= ra[:, None]
        z *= rb[None, :]
        draws.append(float(top_singular_values(z, 1)[0]) / (math.sqrt(ns) + math.sqrt(ms)))
    return float(np.mean(draws)), float(np.std(draws, ddof=1))


def _bulk_noise(residual_energy: float, n: int, m: int, leading: np.ndarray, factor: float = 1.0,
                margin: float = EDGE_MARGIN) -> tuple[float, float]:
    """``(sigma, edge)``: residual RMS less the energy of the outliers above the edge, iterated to a fixed point.

    ``edge = factor * sigma (sqrt(n) + sqrt(m))`` (``factor`` from :func:`_profile_edge`); outliers
    exceed it by more than ``margin``.
    """
    dof = max((n - 1) * (m - 1), 1)
    sigma = math.sqrt(max(residual_energy, 0.0) / dof)
    for _ in range(50):
        edge = factor * sigma * (math.sqrt(n) + math.sqrt(m))
        outliers = leading[leading > edge * (1 + margin)]
        energy = sum(spike_strength(float(s), n, m, sigma) ** 2 for s in outliers)
        new = math.sqrt(max(residual_energy - energy, 0.0) / dof)
        if abs(new - sigma) <= 1e-9 * max(sigma, 1e-300):
            break
        sigma = new
    return sigma, factor * sigma * (math.sqrt(n) + math.sqrt(m))


def _live(a: np.ndarray, labels: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Masks of the rows and columns used: non-zero, and (columns) not labelled ``-1``."""
    cols = (a != 0).any(axis=0)
    if labels is not None:
        cols &= labels >= 0
    rows = (a[:, cols] != 0).any(axis=1)
    return rows, cols


def detectability(a: np.ndarray, labels: np.ndarray | None = None, *, values: np.ndarray | None = None,
                  vectors: np.ndarray | None = None,
                  rng: np.random.Generator | int | None = None) -> Detectability:
    """Signal, noise, BBP threshold, expected ARI and noise-edge standing of a profile and a column partition.

    Parameters
    ----------
    a : ndarray, shape (n_rows, n_cols)
        Non-negative magnitudes (rows: consumer units; columns: producer units).
    labels : array_like of int, shape (n_cols,), optional
        A partition of the columns (the true branches; ``-1`` for columns to
        leave out). Without it only the edge fields are set.
    values : ndarray, optional
        Leading singular values of ``D_r^-1/2 A D_c^-1/2`` of the live
        submatrix (all-zero rows and columns, and columns labelled ``-1``,
        dropped), descending, the trivial value 1 first, as
        :func:`~modularity.core.methods.cocluster` returns them with
        ``n_values``. Passed, they save the one decomposition this function
        makes otherwise (of ``1 + max(N_EDGE_VALUES, k)`` values and vectors).
        Only these values are examined for the edge and the noise deflation:
        pass about 33.
    vectors : ndarray, shape (n_live_cols, len(values)), optional
        The matching right singular vectors; without them (and with
        ``values``) ``leading_overlap`` is None.
    rng : Generator, int or None
        For the Monte Carlo of the expected ARI (None: a fixed seed).

    Returns
    -------
    Detectability

    Raises
    ------
    ModularityError
        For a matrix that is not 2-d, finite and non-negative, labels of the
        wrong length, or values and vectors that do not match the live submatrix.

    References
    ----------
    Benaych-Georges, F., & Nadakuditi, R. R. (2012). J. Multivariate Anal., 111, 120-135.
    Lesieur, T., Krzakala, F., & Zdeborova, L. (2015). Allerton 2015.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> truth = np.repeat([0, 1], 100)
    >>> rows = np.repeat([0, 1], 150)
    >>> a = rng.random((300, 200)) * (1 + 1.0 * (rows[:, None] == truth[None, :]))
    >>> det = detectability(a, truth)
    >>> bool(det.ratio > 1), det.expected_ari > 0.9, det.limit, det.n_above_edge
    (True, True, 'information-theoretic', 1)
    >>> noise = detectability(rng.random((300, 200)), truth)
    >>> bool(noise.ratio < 1), noise.expected_ari, noise.n_above_edge
    (True, 0.0, 0)
    """
    a = np.asarray(a, dtype=np.float64)
    if a.ndim != 2 or not np.all(np.isfinite(a)) or (a < 0).any():
        raise ModularityError("detectability needs a finite, non-negative 2-d matrix")
    if labels is not None:
        labels = np.asarray(labels)
        if labels.shape != (a.shape[1],):
            raise ModularityError(f"labels have shape {labels.shape}; the matrix has {a.shape[1]} columns")
    live_rows, live_cols = _live(a, labels)
    sub = a[np.ix_(live_rows, live_cols)]
    n, m = sub.shape
    groups = None if labels is None else np.unique(labels[live_cols], return_inverse=True)[1]
    k = 0 if groups is None else int(groups.max()) + 1 if m else 0
    if n < 2 or m < 2:
        base = dict(n_rows=n, n_cols=m, k=k, noise=0.0, edge=0.0, edge_margin=EDGE_MARGIN, leading=(),
                    n_above_edge=0, edge_gap=-1.0)
        if labels is None:
            return Detectability(**base)
        return Detectability(**base, signal=0.0, threshold=0.0, ratio=0.0, predicted_overlap=0.0,
                             expected_ari=0.0, expected_ari_sd=0.0, optimal_ari=0.0, n_competing=0,
                             limit="spectral")

    an, dr, dc = degree_normalised(sub)
    if values is None:
        _, values, vectors = top_singular(an, min(n, m, 1 + max(N_EDGE_VALUES, k)))
    values = np.asarray(values, dtype=np.float64)
    if vectors is not None and np.shape(vectors) != (m, len(values)):
        raise ModularityError(f"vectors have shape {np.shape(vectors)}; expected ({m}, {len(values)})")
    if len(values) and abs(values[0] - 1.0) > 1e-6:
        raise ModularityError(f"values must start with the trivial singular value 1 of the live submatrix, "
                              f"got {values[0]:.6g}")
    leading = values[1:]
    residual_energy = max(float(np.vdot(an, an)) - 1.0, 0.0)  # |An - u0 v0^T|^2: the degree part has value 1
    if not isinstance(rng, np.random.Generator):
        rng = np.random.default_rng(0 if rng is None else rng)
    factor, spread = _profile_edge(an, dr, dc, rng)
    margin = max(EDGE_MARGIN, EDGE_SDS * spread / factor)
    sigma, edge = _bulk_noise(residual_energy, n, m, leading, factor, margin)
    n_above = int(np.count_nonzero(leading > edge * (1 + margin)))
    gap = float((leading[0] - edge) / edge) if len(leading) and edge > 0 else -1.0
    base = dict(n_rows=n, n_cols=m, k=k, noise=sigma, edge=edge, edge_margin=margin,
                leading=tuple(float(x) for x in leading), n_above_edge=n_above, edge_gap=gap)
    if groups is None:
        return Detectability(**base)

    # Q: orthonormal basis of the group indicators made orthogonal to the degree vector v0
    v0 = np.sqrt(dc / float(dr.sum()))
    ind = np.eye(k)[groups]
    ind -= np.outer(v0, v0 @ ind)
    q_basis, r = np.linalg.qr(ind)
    diag = np.abs(np.diag(r))
    q_basis = q_basis[:, diag > 1e-10 * max(1.0, diag.max(initial=0.0))]
    q = q_basis.shape[1]
    if q == 0 or sigma <= 0:
        thetas, planted = np.zeros(0), np.zeros((m, 0))
    else:
        y = an @ q_basis  # S Q + N Q, orthogonal to u0 because v0^T Q = 0
        _, ys, et = np.linalg.svd(y, full_matrices=False)
        thetas = np.array([spike_strength(float(s), n - 1, q, sigma) for s in ys])
        planted = q_basis @ et.T  # the signal's right singular vectors
    # unequal noise variances lift the edge; the threshold and the overlaps use the noise level that puts the
    # equal-variance edge there (sigma itself where the variances are equal)
    effective = edge / (math.sqrt(n) + math.sqrt(m))
    threshold = bbp_threshold(n, m, effective)
    rho = np.array([squared_overlaps(float(t), n, m, effective)[1] for t in thetas])
    mean_ari, sd_ari = expected_ari(planted, groups, rho, rng, "kmeans")
    best_ari, _ = expected_ari(planted, groups, rho, rng, "bayes")
    signal = float(thetas[0]) if len(thetas) else 0.0
    overlap = None
    if vectors is not None and q and len(leading):
        top = np.asarray(vectors, dtype=np.float64)[:, 1:min(k, len(values))]  # k - 1 leading non-trivial
        overlap = float(np.sum((q_basis.T @ top) ** 2) / top.shape[1])
    return Detectability(**base, signal=signal, signals=tuple(float(t) for t in thetas), threshold=threshold,
                         ratio=signal / threshold if threshold > 0 else 0.0,
                         predicted_overlap=float(rho[0]) if len(rho) else 0.0,
                         predicted_overlaps=tuple(float(x) for x in rho), expected_ari=mean_ari,
                         expected_ari_sd=sd_ari, optimal_ari=best_ari,
                         n_competing=max(0, n_above - int(np.count_nonzero(thetas > threshold))),
                         leading_overlap=overlap, limit=_limit_kind(np.bincount(groups, minlength=k)))


# ------------------------------------------------------------------ verdicts

def edge_verdict(det: Detectability) -> str:
    """:data:`ABOVE_EDGE` when a non-trivial singular value clears the noise edge by its margin.

    Else :data:`NO_STRUCTURE`.
    """
    return ABOVE_EDGE if det.n_above_edge > 0 else NO_STRUCTURE


def verdict(det: Detectability, ari: float | None = None, p_value: float | None = None, alpha: float = 0.05) -> str:
    """The plain verdict of a layer: three outcomes for a labelled partition, two for an unlabelled layer.

    Rule for a labelled partition (``det.labelled``), with ``ari`` and
    ``p_value`` the layer's recovery score against the same labels and its
    permutation p-value (adjusted for multiple layers where the report makes
    claims across layers):

    1. ``det.ratio <= 1``: :data:`BELOW_LIMIT` (``det.limit ==
       "information-theoretic"``) or :data:`BELOW_SPECTRAL_LIMIT`. Near the
       threshold a finite layer can still show a weak, significant agreement;
       the verdict says that the branches are too weak to be recovered, not
       that the ARI is zero.
    2. ``ari < det.expected_ari_low`` (more than ``max(MISS_SDS * sd,
       MISS_FLOOR)`` below the ARI a spectral method can expect):
       :data:`MISSED`, whatever the p-value.
    3. ``p_value < alpha``: :data:`RECOVERED`.
    4. Otherwise (as good as expected, but not significant: at this layer's
       size even the expected agreement is at chance level): the below-limit
       verdict of 1.

    A missing ``ari`` or ``p_value`` counts as no agreement and no
    significance. Without labels the verdict is :func:`edge_verdict` and
    ``ari`` and ``p_value`` are ignored. :data:`OUTCOMES` maps every verdict to
    a short code for tables and JSON.

    Examples
    --------
    >>> det = Detectability(300, 200, 2, 0.01, 0.3, 0.02, (0.5,), 1, 0.6, signal=2.0, signals=(2.0,),
    ...                     threshold=1.0, ratio=2.0, predicted_overlap=0.7, predicted_overlaps=(0.7,),
    ...                     expected_ari=0.8, expected_ari_sd=0.05, optimal_ari=0.85, n_competing=0,
    ...                     limit="information-theoretic")
    >>> verdict(det, 0.75, 0.001), verdict(det, 0.6, 0.001)
    ('detectable and recovered', 'detectable but not recovered')
    """
    if not det.labelled:
        return edge_verdict(det)
    below = BELOW_LIMIT if det.limit == "information-theoretic" else BELOW_SPECTRAL_LIMIT
    if det.ratio is None or det.ratio <= 1.0:
        return below
    low = det.expected_ari_low
    if ari is None or (low is not None and ari < low):
        return MISSED
    if p_value is not None and p_value < alpha:
        return RECOVERED
    return below
