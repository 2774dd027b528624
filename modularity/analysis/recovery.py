"""Branch recovery: how well the co-clusters match the true branches, against the null.

Where the null's law is invariant to permuting the producer's units (every
consumer reads all units alike and the null draws each consumer's entries
exchangeably: ``shuffle``, ``resample``, ``reinit``), the clusters are
independent of the branches under the null, and the exact null is the
label-permutation distribution of the observed contingency table
(:func:`modularity.core.permutation.label_permutation_test`; no re-fit, with
the same Besag-Clifford stopping as the draws, so agreement at chance level
is settled after the first 1000 tables and only a significant one costs them
all). Where the architecture ties units to groups (grouped consumers, a
consumer reading a slice of the channels) or the null keeps zeros in place
(``shuffle-nonzero``) or margins (``degree``), the re-fitted weight draws give
the p-value instead. :func:`units_exchangeable` tells the two apart.
"""

from __future__ import annotations

import numpy as np
import torch

from ..core.defaults import EXCHANGEABLE_NULLS
from ..core.graph import ChannelGraph
from ..core.magnitude import downstream_profile
from ..core.nulls import layer_rng, summarise_null
from ..core.permutation import label_permutation_test
from ..results import Control, Recovery
from ..settings import AnalysisSettings
from .draws import sequential_p
from .statistics import CONTROLS, MatrixStatistics

__all__ = ["units_exchangeable", "recovery_by_labels", "recovery_by_draws", "recovery_without_null",
           "N_KEPT_DRAWS"]

N_KEPT_DRAWS = 200
"""Label-permutation draws kept in ``summary.json``, for the null histogram."""
_LABEL_STREAM = 2**31 - 1  # the label permutations' own stream, apart from every draw's
_LABEL_METHODS = {"monte-carlo": "label-permutation", "sequential": "sequential label-permutation", "exact": "exact",
                  "degenerate": "degenerate"}


def units_exchangeable(graph: ChannelGraph, name: str, reduction: str = "l1", expand: str = "depthwise",
                       null: str = "shuffle", consumers: list[str] | None = None) -> bool:
    """True when ``null`` treats ``name``'s units alike, so label permutation gives the exact recovery null.

    The null must draw each consumer's entries exchangeably (``shuffle``,
    ``resample``, ``reinit``), and the architecture must not tie units to
    groups: the profile built with every consumer weight set to one has
    identical columns (a grouped consumer or a channel slice makes them differ).
    ``consumers``: the layers whose weights enter ``name``'s profile, when the
    caller has the profile already (else it is built to find them).
    """
    if null not in EXCHANGEABLE_NULLS:
        return False
    if consumers is None:
        consumers = downstream_profile(graph, name, reduction, expand).consumers
    ones = {c: torch.ones_like(graph.weight(c)) for c in consumers}
    a = downstream_profile(graph, name, reduction, expand, weights=ones).matrix
    return bool(a.size) and bool(np.allclose(a, a[:, :1], rtol=1e-6, atol=0.0))


def _control_permutations(n: int) -> int:
    """Label permutations for the two scale controls: a tenth of the main test's, at least 1000.

    The controls say whether pattern or scale carries the recovery; a tenth of
    the permutations resolves their p-values well enough at a tenth of the cost.
    """
    return max(min(n, 1000), n // 10)


def _label_test(truth: np.ndarray, labels: np.ndarray, n: int, rng: np.random.Generator,
                statistics: tuple[str, ...] = ("ari", "nmi"), h: int = 0) -> dict:
    live = labels >= 0
    return label_permutation_test(truth[live], labels[live], n, rng=rng, statistics=statistics,
                                  keep_draws=N_KEPT_DRAWS, sequential_h=h)


def recovery_by_labels(name: str, branches: np.ndarray, observed: MatrixStatistics,
                       settings: AnalysisSettings) -> tuple[Recovery, dict[str, list[float]]]:
    """Recovery with its p-values from label permutations of the observed clusters (no re-fit).

    Returns the recovery and the kept null draws (``ari``, ``nmi``).
    """
    rng = layer_rng(settings.seed, name, _LABEL_STREAM)
    h = settings.sequential_h
    scores = observed.branch_scores()
    tests = _label_test(branches, observed.col_labels, settings.n_label_permutations, rng, h=h)
    ari_t, nmi_t = tests["ari"], tests["nmi"]
    ari_null = summarise_null(scores.ari, ari_t.draws, p_value=ari_t.p_value)
    controls = {}
    for key, labels in (("unit_norm_columns", scores.cols_unit_norm), ("column_norms_only", scores.cols_norms)):
        t = _label_test(branches, labels, _control_permutations(settings.n_label_permutations), rng, ("ari",),
                        h=h)["ari"]
        controls[key] = Control(getattr(scores, CONTROLS[key]), t.p_value, t.null_mean, _LABEL_METHODS[t.method])
    recovery = Recovery(scores.ari, scores.nmi, ari_t.p_value, ari_t.n, ari_t.null_mean, ari_t.null_sd, ari_t.z,
                        nmi_t.p_value, controls, method=_LABEL_METHODS[ari_t.method], effect=ari_null.effect,
                        effect_ci=ari_null.effect_ci)
    draws = {"ari": [float(v) for v in ari_t.draws], "nmi": [float(v) for v in nmi_t.draws]}
    return recovery, draws


def recovery_by_draws(name: str, branches: np.ndarray, observed: MatrixStatistics, draws: list[MatrixStatistics],
                      method: str, settings: AnalysisSettings) -> tuple[Recovery, dict[str, list[float]]]:
    """Recovery with its p-values from re-fitted null draws (``method``: ``sequential`` or ``weight-shuffle``),
    and its agreement against chance (label permutations of the observed table)."""
    h = settings.sequential_h
    obs = observed.branch_scores()
    null = [s.branch_scores() for s in draws]  # the draws re-fitted the same branches
    ari_draws = np.array([s.ari for s in null])
    p = sequential_p(ari_draws, obs.ari, "greater", h)
    ari_null = summarise_null(obs.ari, ari_draws, p_value=p, method=method)
    nmi_null = summarise_null(obs.nmi, np.array([s.nmi for s in null]))
    assert ari_null.p_value is not None  # summarise_null always gives one (empirical, or the sequential p)
    controls = {}
    for key, attr in CONTROLS.items():
        summ = summarise_null(getattr(obs, attr), np.array([getattr(s, attr) for s in null]))
        controls[key] = Control(summ.observed, summ.p_value, summ.null_mean, "weight-shuffle")
    recovery = Recovery(obs.ari, obs.nmi, ari_null.p_value, len(draws), ari_null.null_mean,
                        ari_null.null_sd, ari_null.z, nmi_null.p_value, controls, method=method,
                        effect=ari_null.effect, effect_ci=ari_null.effect_ci,
                        chance_p_value=_chance_p(name, branches, observed, settings))
    return recovery, {"ari": [s.ari for s in null], "nmi": [s.nmi for s in null]}


def _chance_p(name: str, branches: np.ndarray, observed: MatrixStatistics, settings: AnalysisSettings) -> float:
    """The p-value of the observed agreement against random labels (sequential label permutation)."""
    rng = layer_rng(settings.seed, name, _LABEL_STREAM)
    n = _control_permutations(settings.n_label_permutations)
    return float(_label_test(branches, observed.col_labels, n, rng, ("ari",), h=settings.sequential_h)["ari"].p_value)


def recovery_without_null(name: str, branches: np.ndarray, observed: MatrixStatistics,
                          settings: AnalysisSettings) -> Recovery:
    """Recovery with no p-value against the null (the units are not exchangeable and no draws were made); its
    agreement against chance is still tested."""
    scores = observed.branch_scores()
    return Recovery(scores.ari, scores.nmi, float("nan"), 0,
                    controls={key: Control(getattr(scores, attr)) for key, attr in CONTROLS.items()},
                    method="none", chance_p_value=_chance_p(name, branches, observed, settings))
