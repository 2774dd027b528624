"""Agreement between the clusterings of two models or checkpoints (two seeds, before/after fine-tuning).

Per layer (matched by name) it reports the Hungarian-matched agreement: clusters
of the two clusterings are paired one-to-one to maximise the number of shared
units (``scipy.optimize.linear_sum_assignment`` on the contingency table), and
the agreement is the fraction of units that fall in a matched pair. It also
reports the adjusted Rand index, which does not need a matching. Units labelled
``-1`` (dead) in either clustering are left out. Optionally a permutation null
(shuffle one labelling) gives the chance level of the matched fraction, which
is far above ``1/k`` for unequal cluster sizes.

Note that unit ``i`` of one model corresponds to unit ``i`` of the other only
for checkpoints of one training run (fine-tuning) or where units were aligned;
two independently trained seeds have arbitrarily permuted units, so their
per-unit agreement is at chance whatever their structure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from ..core.metrics import adjusted_rand, contingency
from ..core.nulls import study_rng
from ..errors import ModularityError

__all__ = ["Agreement", "LayerAgreement", "contingency", "cluster_agreement", "compare_results"]


@dataclass
class Agreement:
    """Agreement of two labellings of the same units.

    Attributes
    ----------
    matched_fraction : float
        Fraction of units in Hungarian-matched cluster pairs.
    ari : float
        Adjusted Rand index.
    n_units : int
        Units labelled in both (``-1`` in either is left out).
    matching : list of (int, int)
        Matched (label in a, label in b) pairs.
    contingency : list of list of int
        Counts, rows the labels of a, columns the labels of b (in sorted label order).
    null_mean : float or None
        Mean matched fraction over permutations of one labelling.
    p_value : float or None
        Empirical ``(r + 1) / (n + 1)`` of a matched fraction at least as high.
    """

    matched_fraction: float
    ari: float
    n_units: int
    matching: list[tuple[int, int]]
    contingency: list[list[int]] = field(repr=False)
    null_mean: float | None = None
    p_value: float | None = None

    def to_dict(self) -> dict:
        """A JSON-ready dict."""
        from ..results import jsonable

        return jsonable(asdict(self))


@dataclass
class LayerAgreement:
    """Agreement for one layer of two analysis results."""

    layer: str
    agreement: Agreement
    k_a: int
    k_b: int

    def to_dict(self) -> dict:
        """A JSON-ready dict."""
        return {"layer": self.layer, "k_a": self.k_a, "k_b": self.k_b, **self.agreement.to_dict()}


def _matched(table: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    rows, cols = linear_sum_assignment(table, maximize=True)
    return int(table[rows, cols].sum()), rows, cols


def cluster_agreement(labels_a: Sequence[int] | np.ndarray, labels_b: Sequence[int] | np.ndarray,
                      n_permutations: int = 0, seed: int = 0) -> Agreement:
    """Hungarian-matched agreement and ARI of two clusterings of the same units.

    Parameters
    ----------
    labels_a, labels_b : array of int
        Cluster label per unit; ``-1`` marks a unit left out.
    n_permutations : int
        Permutations of ``labels_b`` for a chance level and p-value (0: none).
    seed : int
        Seeds the permutations.

    Returns
    -------
    Agreement

    Raises
    ------
    ModularityError
        If the labellings differ in length or share no labelled unit.

    Examples
    --------
    >>> r = cluster_agreement([0, 0, 1, 1, 2], [1, 1, 0, 0, 0])
    >>> r.matched_fraction, r.ari
    (0.8, 0.5454545454545454)
    """
    a, b = np.asarray(labels_a, dtype=int), np.asarray(labels_b, dtype=int)
    if a.shape != b.shape:
        raise ModularityError(f"the clusterings label different numbers of units ({len(a)} and {len(b)})")
    keep = (a >= 0) & (b >= 0)
    a, b = a[keep], b[keep]
    if len(a) == 0:
        raise ModularityError("the clusterings share no labelled unit")
    table, la, lb = contingency(a, b, return_labels=True)
    hits, rows, cols = _matched(table)
    frac = hits / len(a)
    null_mean = p = None
    if n_permutations:
        rng = study_rng(seed, "agreement")
        null = np.array([_matched(contingency(a, rng.permutation(b)))[0] / len(a) for _ in range(n_permutations)])
        null_mean = float(null.mean())
        p = float((np.sum(null >= frac - 1e-12) + 1) / (n_permutations + 1))
    return Agreement(float(frac), adjusted_rand(a, b), int(len(a)),
                     [(int(la[r]), int(lb[c])) for r, c in zip(rows, cols)], table.tolist(), null_mean, p)


def compare_results(result_a, result_b, layers: Sequence[str] | None = None, n_permutations: int = 0,
                    seed: int = 0) -> list[LayerAgreement]:
    """Per-layer agreement of two :class:`~modularity.results.AnalysisResult` objects.

    Parameters
    ----------
    result_a, result_b : AnalysisResult
        Analyses of two checkpoints of the same architecture.
    layers : list of str, optional
        Compare only these layers (default: every layer both analysed).
    n_permutations : int
        Permutations for each layer's chance level (see :func:`cluster_agreement`).
    seed : int

    Returns
    -------
    list of LayerAgreement
        In ``result_a``'s layer order.

    Raises
    ------
    ModularityError
        If the results share no layer, or a shared layer has different unit counts.
    """
    b_layers = {layer.name: layer for layer in result_b.layers}
    shared = [layer for layer in result_a.layers if layer.name in b_layers
              and (layers is None or layer.name in layers)]
    if not shared:
        raise ModularityError("the two results share no analysed layer (layers are matched by name)")
    out = []
    for la in shared:
        lb = b_layers[la.name]
        if len(la.clusters) != len(lb.clusters):
            raise ModularityError(f"layer {la.name} has {len(la.clusters)} units in one result and "
                                  f"{len(lb.clusters)} in the other")
        out.append(LayerAgreement(la.name, cluster_agreement(la.clusters, lb.clusters, n_permutations, seed),
                                  int(la.k), int(lb.k)))
    return out
