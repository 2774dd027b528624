"""Enrichment of labelled units in branches or clusters (one-sided hypergeometric / Fisher tests).

Given units with categories (a CSV ``layer,unit,category``) and a grouping of
each layer's units (its branches, or clusters found from weights), test for
every (layer, category, group) whether the group holds more units of the
category than chance: with ``N`` units in the layer, ``K`` in the group, ``n``
of the category and ``x`` of those in the group,
``p = P(X >= x)`` for ``X ~ Hypergeometric(N, K, n)``, which is the one-sided
Fisher exact test of the 2x2 table. P-values are adjusted across all tests
with Benjamini-Hochberg.

Units not listed in the CSV count as *not* of any category. That is only right
where the labels are exhaustive for the layer; the shipped Circuits labels are
exhaustive only for ``(mixed3a, bw_vs_color)`` and ``(mixed3b, curve_related)``
(see ``modularity/data/README.md``), and each test records whether it is in
that set.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

import numpy as np
from scipy.stats import hypergeom

from ..core.nulls import benjamini_hochberg
from ..errors import ModularityError

__all__ = ["CIRCUITS_UNITS_CSV", "CIRCUITS_EXHAUSTIVE", "LUCID_INCEPTIONV1_BRANCHES", "load_unit_labels",
           "branch_labels", "EnrichmentTest", "enrichment", "enrichment_for_result"]

CIRCUITS_UNITS_CSV = "circuits_inceptionv1_units.csv"

#: (layer, category) pairs for which the shipped labels cover every unit of the layer.
CIRCUITS_EXHAUSTIVE = frozenset({("mixed3a", "bw_vs_color"), ("mixed3b", "curve_related")})

#: Branch layout (name, width) of Lucid InceptionV1's concatenated outputs, in channel order.
LUCID_INCEPTIONV1_BRANCHES: dict[str, list[tuple[str, int]]] = {
    "mixed3a": [("1x1", 64), ("3x3", 128), ("5x5", 32), ("pool", 32)],
    "mixed3b": [("1x1", 128), ("3x3", 192), ("5x5", 96), ("pool", 64)],
    "mixed4a": [("1x1", 192), ("3x3", 204), ("5x5", 48), ("pool", 64)],
}


def load_unit_labels(path: str | Path | None = None) -> dict[str, dict[int, str]]:
    """Read unit categories from a ``layer,unit,category`` CSV.

    Parameters
    ----------
    path : str or Path, optional
        Default: the packaged Circuits labels for Lucid InceptionV1.

    Returns
    -------
    dict of str to dict of int to str
        ``labels[layer][unit] = category``.

    Raises
    ------
    ModularityError
        If the file is missing, lacks the columns, or lists a unit twice.
    """
    if path is None:
        text = resources.files("modularity").joinpath("data", CIRCUITS_UNITS_CSV).read_text(encoding="utf-8")
        source = CIRCUITS_UNITS_CSV
    else:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ModularityError(f"cannot read unit labels {path} ({exc.strerror})") from None
        source = str(path)
    rows = list(csv.DictReader(text.splitlines()))
    if not rows or not {"layer", "unit", "category"} <= set(rows[0]):
        raise ModularityError(f"{source} needs the columns layer,unit,category")
    labels: dict[str, dict[int, str]] = {}
    for i, row in enumerate(rows, start=2):
        try:
            unit = int(row["unit"])
        except ValueError:
            raise ModularityError(f"{source} line {i}: unit '{row['unit']}' is not an integer") from None
        layer = labels.setdefault(row["layer"].strip(), {})
        if unit in layer:
            raise ModularityError(f"{source} line {i}: unit {unit} of {row['layer']} is listed twice")
        layer[unit] = row["category"].strip()
    return labels


def branch_labels(widths: Sequence[int]) -> np.ndarray:
    """Group label of every channel of a concatenation of branches with these widths.

    Examples
    --------
    >>> branch_labels([2, 1, 3]).tolist()
    [0, 0, 1, 2, 2, 2]
    """
    return np.repeat(np.arange(len(widths)), widths)


@dataclass
class EnrichmentTest:
    """One (layer, category, group) test.

    ``p_value`` is ``P(X >= n_in_group)`` for ``X ~ Hypergeometric(n_units,
    group_size, n_category)``; ``p_value_bh`` is adjusted across all tests
    returned together. ``exhaustive`` says whether the labels cover the whole
    layer for this category (when False the test is descriptive only).
    """

    layer: str
    category: str
    group: int
    group_name: str
    n_units: int
    group_size: int
    n_category: int
    n_in_group: int
    expected: float
    odds_ratio: float
    p_value: float
    p_value_bh: float | None = None
    exhaustive: bool = True

    def to_dict(self) -> dict:
        """A JSON-ready dict."""
        from ..results import jsonable

        return jsonable(asdict(self))


def _odds_ratio(x: int, k: int, n: int, total: int) -> float:
    a, b, c, d = x, k - x, n - x, total - k - n + x
    if b * c == 0:
        return float("inf") if a * d > 0 else float("nan")
    return a * d / (b * c)


def enrichment(labels: Mapping[str, Mapping[int, str]], groups: Mapping[str, np.ndarray | Sequence[int]],
               group_names: Mapping[str, Sequence[str]] | None = None,
               exhaustive: frozenset | set | None = None, categories: Sequence[str] | None = None
               ) -> list[EnrichmentTest]:
    """One-sided enrichment test of every category in every group, BH-adjusted across all tests.

    Parameters
    ----------
    labels : mapping
        ``labels[layer][unit] = category`` (see :func:`load_unit_labels`).
    groups : mapping of str to array of int
        Group (branch or cluster) of every unit of a layer; ``-1`` marks units
        left out of the population (dead units). Only layers present in both
        ``labels`` and ``groups`` are tested.
    group_names : mapping of str to list of str, optional
        A name per group label.
    exhaustive : set of (layer, category), optional
        Pairs whose labels cover the whole layer; None treats every pair as exhaustive.
    categories : list of str, optional
        Test only these categories.

    Returns
    -------
    list of EnrichmentTest
        In layer, category, group order.

    Raises
    ------
    ModularityError
        If a labelled unit is outside the layer.

    Examples
    --------
    >>> tests = enrichment({"mixed3a": {u: "bw_vs_color" for u in range(192, 201)}},
    ...                    {"mixed3a": branch_labels([64, 128, 32, 32])})
    >>> f"{tests[2].p_value:.3g}"
    '2.48e-09'
    """
    tests: list[EnrichmentTest] = []
    for layer in labels:
        if layer not in groups:
            continue
        g = np.asarray(groups[layer], dtype=int)
        unit_labels = labels[layer]
        bad = [u for u in unit_labels if not 0 <= u < len(g)]
        if bad:
            raise ModularityError(f"labelled units {bad[:5]} are outside layer {layer} ({len(g)} units)")
        live = g >= 0
        total = int(live.sum())
        cats = sorted(set(unit_labels.values())) if categories is None else list(categories)
        names = list(group_names[layer]) if group_names and layer in group_names else None
        for cat in cats:
            members = np.array([u for u, c in unit_labels.items() if c == cat and live[u]], dtype=int)
            n = len(members)
            for grp in np.unique(g[live]):
                k = int(np.sum(g == grp))
                x = int(np.sum(g[members] == grp)) if n else 0
                p = float(hypergeom.sf(x - 1, total, k, n)) if n else 1.0
                tests.append(EnrichmentTest(
                    layer, cat, int(grp), names[grp] if names and grp < len(names) else f"group {grp}",
                    total, k, n, x, n * k / total, _odds_ratio(x, k, n, total), p,
                    exhaustive=exhaustive is None or (layer, cat) in exhaustive))
    for t, adj in zip(tests, benjamini_hochberg([t.p_value for t in tests])):
        t.p_value_bh = adj
    return tests


def enrichment_for_result(result, labels: Mapping[str, Mapping[int, str]], by: str = "clusters",
                          exhaustive: frozenset | set | None = None) -> list[EnrichmentTest]:
    """Enrichment of labelled units in the clusters (or true branches) of an analysed model.

    Parameters
    ----------
    result : AnalysisResult
        Its layer names must match the label file's (e.g. Lucid InceptionV1's ``mixed3a``).
    labels : mapping
        ``labels[layer][unit] = category``.
    by : {"clusters", "branches"}
        Group units by the co-clusters found from weights or by the architecture's branches.
    exhaustive : set of (layer, category), optional
        See :func:`enrichment`.

    Returns
    -------
    list of EnrichmentTest
    """
    if by not in ("clusters", "branches"):
        raise ModularityError(f"by must be 'clusters' or 'branches', got '{by}'")
    groups, names = {}, {}
    for layer in result.layers:
        if layer.name not in labels:
            continue
        if by == "clusters":
            groups[layer.name] = np.asarray(layer.clusters)
        elif layer.branches is not None:
            groups[layer.name] = np.asarray(layer.branches)
            if layer.branch_names:
                names[layer.name] = layer.branch_names
    if not groups:
        raise ModularityError("no analysed layer has labelled units (layer names must match the label file)")
    return enrichment(labels, groups, names, exhaustive)
