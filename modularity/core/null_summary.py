"""A statistic next to its null distribution: :class:`~modularity.core.null_summary.NullSummary`.

Kept apart from :mod:`modularity.core.nulls` (which draws the nulls, with
torch) so that reading a results folder back needs no torch; ``nulls``
exports it too.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

__all__ = ["NullSummary"]


@dataclass
class NullSummary:
    """An observed statistic next to its null distribution.

    Attributes
    ----------
    observed : float
        The statistic measured on the weights as they are.
    null_mean, null_sd : float or None
        Of the null draws; None without draws.
    z : float or None
        ``(observed - null_mean) / null_sd``; None without spread.
    p_value : float or None
        Of ``method``; None without draws.
    n : int
        Number of null draws.
    alternative : {"greater", "less"}
        Which tail counts as more structure.
    p_value_bh : float or None
        Benjamini-Hochberg adjusted across the analysed layers (set by the analysis).
    method : str
        How ``p_value`` was obtained: ``weight-shuffle`` (empirical
        ``(r + 1) / (n + 1)`` over draws of the null model), ``sequential``
        (the same draws with Besag-Clifford stopping), ``label-permutation``
        (Monte Carlo over permuted branch labels) or ``exact`` (all
        contingency tables enumerated).
    effect : float or None
        Effect size in the direction of more structure: ``observed - null_mean``
        (``difference``) or ``(observed - null_mean) / |null_mean|``
        (``relative``), sign-flipped for ``alternative="less"``.
    effect_ci : [float, float] or None
        The effect measured against the 2.5 and 97.5 percentiles of the null
        draws instead of their mean: how far the observation sits from the
        bulk of the null.
    p_value_tail : float or None
        Generalised-Pareto tail estimate where fewer than 10 draws were as
        extreme and the fit was accepted (Knijnenburg et al. 2009); else None.
    """

    observed: float
    null_mean: float | None
    null_sd: float | None
    z: float | None
    p_value: float | None
    n: int
    alternative: str
    p_value_bh: float | None = None
    method: str = "weight-shuffle"
    effect: float | None = None
    effect_ci: list[float] | None = None
    p_value_tail: float | None = None

    def to_dict(self) -> dict:
        """The fields as a plain dict."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def __repr__(self) -> str:
        def g(x: float | None) -> str:
            return "-" if x is None or x != x else f"{x:.3g}"

        return (f"NullSummary(observed={g(self.observed)}, null={g(self.null_mean)} ± {g(self.null_sd)}, "
                f"z={g(self.z)}, p={g(self.p_value)}, p BH={g(self.p_value_bh)}, effect={g(self.effect)}, "
                f"n={self.n}, {self.method})")
