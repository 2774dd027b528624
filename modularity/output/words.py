"""Every sentence of an ``analyze`` report, built from the run's own settings and numbers.

Nothing here is a fixed description of "the method": the co-clustering, the
null model, the recovery test of each layer, the control and every count are
read from the :class:`~modularity.results.AnalysisResult`, and a claim is
made only where its condition holds (groups "connect mostly within
themselves" only where more than half of the weight lies inside them).
:data:`METHOD_TEXT` and :data:`NULL_TEXT` describe every choice the settings
allow (a test checks that none is missing).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

from ..core.detectability import BELOW_LIMIT, BELOW_SPECTRAL_LIMIT, MISSED, RECOVERED
from ..results import ALPHA, AnalysisResult, LayerResult, Recovery
from ..results import significant as _sig
from .plots import format_p, p_text

__all__ = ["METHOD_TEXT", "NULL_TEXT", "NULL_NOUN", "null_noun", "findings", "control_findings", "method_sections",
           "run_metadata",
           "SMALL_NCUT_EFFECT", "SMALL_ARI_EFFECT", "MOSTLY_WITHIN"]

SMALL_NCUT_EFFECT = 0.05  # n-cut reductions under 5% of the null's mean are called small
SMALL_ARI_EFFECT = 0.2  # recovery with ARI under 0.2 above its null is called weak
MOSTLY_WITHIN = 0.5  # groups "connect mostly within themselves" only above this share of the weight
LISTED = 12  # layers named in one sentence before "and N more"

METHOD_TEXT = {
    "spectral_refined": (
        "the refined spectral co-clustering (spectral_refined): the noise-edge spectral embedding of the producer "
        "units (the leading singular vectors of the degree-normalised profile D_r^-1/2 |W| D_c^-1/2 above the "
        "matrix's own noise edge, between ceil(log2 k) and k - 1 of them) grouped by k-means (best of 10 "
        "restarts), then refined by information-theoretic co-clustering of the balanced profile and by "
        "merge-split moves that undo a merged pair of small groups beside a split large one, each step kept only "
        "where it raises the information the co-clusters keep; each consumer unit joins the cluster that "
        "receives the largest share of its weight"),
    "adaptive_sqrt_unit_r10": (
        "the noise-edge spectral co-clustering (adaptive_sqrt_unit_r10): the leading singular vector of the "
        "degree-normalised profile D_r^-1/2 |W| D_c^-1/2 plus one for each singular value above the matrix's own "
        "noise edge (between ceil(log2 k) and k - 1 of them), each scaled by the square root of its singular "
        "value, every producer unit's coordinates scaled to unit length, and k-means (best of 10 restarts) on "
        "the producer units; each consumer unit joins the nearest cluster"),
    "dhillon_km1_cols_sv_r10": (
        "spectral co-clustering with k - 1 non-trivial singular vectors of the degree-normalised profile "
        "D_r^-1/2 |W| D_c^-1/2 (dhillon_km1_cols_sv_r10, Dhillon's bipartite embedding), each scaled by its "
        "singular value, and k-means (best of 10 restarts) on the producer units alone; each consumer unit "
        "joins the nearest cluster"),
    "sklearn_scc": (
        "scikit-learn's SpectralCoclustering (sklearn_scc: Dhillon's bipartite spectral partitioning with "
        "1 + ceil(log2 k) singular vectors, rows and columns clustered together) on the live units; each consumer "
        "unit joins the cluster that receives the largest share of its weight"),
    "sklearn_sbc_bistochastic": (
        "scikit-learn's SpectralBiclustering (sklearn_sbc_bistochastic: Kluger et al.'s checkerboard "
        "biclustering after bistochastic normalisation) of the producer units; each consumer unit joins the "
        "cluster that receives the largest share of its weight"),
    "sklearn_sbc_log": (
        "scikit-learn's SpectralBiclustering (sklearn_sbc_log: Kluger et al.'s checkerboard biclustering after "
        "log normalisation, zeros floored) of the producer units; each consumer unit joins the cluster that "
        "receives the largest share of its weight"),
}
"""What each co-clustering does, in a clause: the report names the method that ran."""

NULL_TEXT = {
    "shuffle": "each consumer's weight tensor is shuffled within itself (its entries permuted at random)",
    "shuffle-nonzero": ("each consumer's non-zero weights are permuted among themselves, with zeros (pruned or "
                        "dead weights) kept where they are"),
    "resample": ("each consumer's weights are drawn independently, with replacement, from the layer's own "
                 "entries"),
    "reinit": "each consumer is re-initialised with its architecture's own initialisation",
    "degree": ("each consumer's connection magnitudes (batch norm folded) are permuted among the connections the "
               "architecture allows, then rescaled until every unit's total incoming and outgoing magnitude is "
               "the observed one, so that unequal unit scales alone cannot beat it"),
}
"""What one draw of each null model does to a consumer's weights: the report names the null that ran."""

NULL_NOUN = {
    "shuffle": "shuffled weights",
    "shuffle-nonzero": "weights shuffled among their non-zero entries",
    "resample": "resampled weights",
    "reinit": "re-initialised weights",
    "degree": "degree-preserving rewirings",
}
"""What the null draws are, as a noun phrase for captions and titles (the null that ran)."""


def null_noun(null: str) -> str:
    """The noun phrase of :data:`NULL_NOUN` for ``null``, or a neutral one for a null it does not know."""
    return NULL_NOUN.get(null, f"'{null}' null draws")


_RECOVERY_TEXT = {
    "label-permutation": "label permutations of the observed table",
    "sequential label-permutation": "label permutations of the observed table (Besag-Clifford stopping)",
    "exact": "every contingency table enumerated (exact)",
    "sequential": "re-fitted null draws (Besag-Clifford stopping)",
    "weight-shuffle": "re-fitted null draws",
    "none": "no test (no null draws were made)",
    "degenerate": "no test (a single cluster or branch)",
}


def _fmt(x: float | None, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    return f"{x:.{digits}g}" if abs(x) < 1e-3 and x != 0 else f"{x:.{digits}f}".rstrip("0").rstrip(".") or "0"


def _plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


def _names(layers: Sequence[LayerResult], n: int = 3) -> str:
    shown = [r.name for r in layers[:n]]
    more = f" and {len(layers) - n} more" if len(layers) > n else ""
    return ", ".join(shown) + more


def _null_name(result: AnalysisResult) -> str:
    return f"'{result.null}' null ({NULL_TEXT.get(result.null, 'see summary.json')})"


def _header(result: AnalysisResult) -> str:
    n = len(result.layers)
    draws = (f"up to {result.n_permutations} draws of the {_null_name(result)}"
             + (f", stopping once {result.sequential_h} draws are as extreme" if result.sequential_h else "")
             if result.n_permutations else "no null draws")
    return (f"{result.model} ({result.weights} weights): {_plural(n, 'producer layer')} analysed with "
            f"{result.method} co-clustering, each against {draws}.")


def _p_floor(result: AnalysisResult) -> list[str]:
    n = result.n_permutations
    if n == 0:
        return ["No null was computed (0 permutations), so there are no n-cut p-values: the clusters below are "
                "what the weights suggest, without a test of whether chance would suggest the same."]
    if 1 / (n + 1) >= ALPHA:
        return [f"With {n} null draws no n-cut p-value can fall below 1/({n}+1) = {format_p(1 / (n + 1))}, so no "
                f"layer can be called more clusterable at p < {ALPHA}; re-run with --permutations 100 or more "
                "for a real test."]
    return []


def _clusterability(result: AnalysisResult) -> list[str]:
    if not result.n_permutations:
        return []
    layers = result.layers
    n = len(layers)
    clusterable = sorted((r for r in layers if _sig(r.structure.ncut.p_value_bh)),
                         key=lambda r: -(r.structure.ncut.effect or 0.0))
    if not clusterable:
        return [f"No layer is more clusterable than its null at BH-adjusted p < {ALPHA}: the co-clusters cut as "
                f"much weight as those of the {_null_name(result)}."]
    out = [f"{len(clusterable)} of {n} layers are more clusterable than their null: their co-clusters cut less "
           f"weight than those of the {result.null} null's draws (normalised cut lower, BH-adjusted p < "
           f"{ALPHA}). Largest effects: {_strongest_ncut(clusterable)}."]
    shares = [(r, r.structure.within_share) for r in clusterable if r.structure.within_share is not None]
    modules = [r for r, s in shares if s > MOSTLY_WITHIN]
    tendencies = sorted(((r, s) for r, s in shares if s <= MOSTLY_WITHIN), key=lambda t: t[1])
    if modules:
        out.append(f"In {len(modules)} of them the groups connect mostly within themselves (more than "
                   f"{MOSTLY_WITHIN:.0%} of the layer's connection weight lies inside its co-clusters: "
                   + ", ".join(f"{r.name} {r.structure.within_share:.0%}" for r in modules[:3])
                   + (f" and {len(modules) - 3} more" if len(modules) > 3 else "") + ").")
    if tendencies:
        out.append(f"In {len(tendencies)} of them most of the weight still crosses between the groups (at most "
                   f"{MOSTLY_WITHIN:.0%} lies inside: " + ", ".join(f"{r.name} {s:.0%}" for r, s in tendencies[:3])
                   + (f" and {len(tendencies) - 3} more" if len(tendencies) > 3 else "")
                   + "): there the groups are a tendency beyond chance, not separate modules.")
    top = clusterable[0].structure.ncut.effect or 0.0
    if top < SMALL_NCUT_EFFECT:
        out.append(f"These effects are significant but small: the largest n-cut reduction is {100 * top:.1f}% of "
                   "the null's mean, so the groups are only slightly more separate than chance. Precision (many "
                   "units, many draws) makes small effects significant.")
    return out


def _strongest_ncut(layers: Sequence[LayerResult]) -> str:
    parts = []
    for r in layers[:3]:
        d = r.structure.ncut
        z = f", z = {d.z:.1f}" if d.z is not None else ""
        parts.append(f"{r.name} (n-cut {_fmt(d.observed)} vs {_fmt(d.null_mean)}: "
                     f"{100 * (d.effect or 0.0):.1f}% lower{z})")
    return "; ".join(parts) + (f"; and {len(layers) - 3} more" if len(layers) > 3 else "")


def _without_control(result: AnalysisResult) -> list[str]:
    if result.control is not None:
        return []
    weights = str(result.weights).lower()
    if weights.startswith("none"):
        return ["These are random initial weights: whatever structure they show comes from the architecture and "
                "the initialisation, not from training."]
    return [f"No random-init control was run (settings: control '{result.settings.control}'), so these counts have "
            "no baseline of the same architecture at initialisation; re-run with --control random-init to see what "
            "the architecture alone gives."]


def _rec(r: LayerResult) -> Recovery:
    """The recovery of a layer already picked for having one."""
    assert r.recovery is not None
    return r.recovery


def _branches(result: AnalysisResult) -> list[str]:
    branched = [r for r in result.layers if r.recovery is not None]
    if not branched:
        return ["No analysed layer has true branches (concatenations, grouped convolutions, attention heads), so "
                "there is no ground truth to score against: the clusters show the grouping the weights suggest "
                "on their own."]
    methods = Counter(_rec(r).method for r in branched)
    tested = "; ".join(f"{_plural(c, 'layer')} by {_RECOVERY_TEXT.get(m, m)}" for m, c in methods.most_common())
    recovered = sorted((r for r in branched if _sig(_rec(r).p_value_bh) and (_rec(r).effect or 0.0) > 0
                        and (_rec(r).ari or 0.0) > 0), key=lambda r: -(_rec(r).effect or 0.0))
    out = [f"{_plural(len(branched), 'analysed layer')} {'has' if len(branched) == 1 else 'have'} true branches. "
           f"The clusters found from the weights recover them beyond the null (ARI, BH-adjusted p < {ALPHA}) in "
           f"{len(recovered)} of {len(branched)} (recovery tested: {tested})."]
    if recovered:
        out[0] += " Best recovered: " + "; ".join(
            f"{r.name} (ARI {_fmt(_rec(r).ari)}, NMI {_fmt(_rec(r).nmi)}, null ARI "
            f"{_fmt(_rec(r).null_ari_mean)}, {p_text(_rec(r).p_value_bh, 'BH-adjusted p')})"
            for r in recovered[:3]) + "."
        if (_rec(recovered[0]).effect or 0.0) < SMALL_ARI_EFFECT:
            out.append(f"The recovery is significant but weak: the best ARI is {_fmt(_rec(recovered[0]).ari)} "
                       "(1 would be the branches exactly), so the weights tell the branches apart only slightly.")
    out.extend(_verdicts(branched))
    out.extend(_scale(branched))
    return out


def _verdicts(branched: Sequence[LayerResult]) -> list[str]:
    """Every labelled layer's detectability verdict, grouped (the table has each one too)."""
    groups: dict[str, list[LayerResult]] = {}
    for r in branched:
        if r.verdict:
            groups.setdefault(r.verdict, []).append(r)
    if not groups:
        return []
    parts = []
    for v, label in ((RECOVERED, "detectable and recovered"), (MISSED, "detectable but not recovered"),
                     (BELOW_LIMIT, "below the limit, where no method can recover the branches from these weights"),
                     (BELOW_SPECTRAL_LIMIT, "below the spectral limit, where no spectral method can recover them")):
        layers = groups.get(v, [])
        if layers:
            names = ", ".join(f"{r.name} ({_ratio(r)})" for r in layers[:LISTED])
            more = f" and {len(layers) - LISTED} more" if len(layers) > LISTED else ""
            parts.append(f"{len(layers)} {label}: {names}{more}")
    out = ["Detectability (the signal of the true branches against the BBP limit of each profile, with the ARI "
           "a spectral method can expect there): " + "; ".join(parts) + "."]
    missed = [(r, r.detectability) for r in groups.get(MISSED, []) if r.detectability is not None]
    if missed:
        worst, d = min(missed, key=lambda rd: (_rec(rd[0]).ari or 0.0) - (rd[1].expected_ari or 0.0))
        extra = (f"; {_plural(d.n_competing, 'other direction')} of the profile come first"
                 if d.n_competing else "")
        out.append(f"Where branches are detectable but not recovered, they are in the weights and the "
                   f"co-clustering missed them: at {worst.name} a spectral method can expect ARI "
                   f"{_fmt(d.expected_ari)}, the co-clustering found {_fmt(_rec(worst).ari)}{extra}.")
    return out


def _ratio(r: LayerResult) -> str:
    d = r.detectability
    if d is None or d.ratio is None:
        return "–"
    return f"signal {d.ratio:.2f} x the limit, ARI {_fmt(r.recovery.ari if r.recovery else None)}"


def _scale(branched: Sequence[LayerResult]) -> list[str]:
    """The scale control in every layer with branches, not only the best one."""
    pairs = []
    for r in branched:
        row = r.row()
        if row.ari is not None and row.ari_column_norms_only is not None:
            pairs.append((r, row.ari, row.ari_column_norms_only, row.ari_unit_norm_columns))
    if not pairs:
        return []
    scale = [p for p in pairs if p[2] >= p[1] and p[2] > 0.05]
    out = [f"Scale control (the units' column norms alone, without their pattern of connections): in "
           f"{len(scale)} of {len(pairs)} layers with branches the norms alone recover the branches at least as "
           "well as the whole profile"]
    if scale:
        shown = sorted(scale, key=lambda p: -(p[2] - p[1]))[:3]
        out[0] += (" (" + "; ".join(f"{r.name}: norms alone {_fmt(n)} against {_fmt(a)}" for r, a, n, _ in shown)
                   + "), so there the branches differ mostly in how strongly their units connect, not to whom.")
    else:
        out[0] += ", so where the branches are recovered it is by their pattern of connections, not their scale."
    return out


def control_findings(result: AnalysisResult) -> list[str]:
    """What the random-init control says: how many significant layers it shares, and what training added."""
    rows = result.comparison_rows()
    if not rows or result.control is None:
        return []
    n = len(rows)
    trained = [r for r in rows if _sig(r.ncut_p_bh)]
    control = [r for r in rows if _sig(r.ncut_p_bh_control)]
    out = [f"Random-init control (the same architecture with {result.control.provenance or 'random initial weights'}, "
           f"analysed with the same settings): {len(control)} of {n} layers are more clusterable than their null "
           f"at random initialisation, against {len(trained)} of {n} with the trained weights."]
    gaps = sorted((r for r in trained if r.ncut_effect_gap is not None and r.ncut_effect_control is not None
                   and r.ncut_effect is not None), key=lambda r: -(r.ncut_effect_gap or 0.0))
    if gaps:
        shown = ", ".join(f"{r.name} ({100 * (r.ncut_effect or 0):.1f}% against "
                          f"{100 * (r.ncut_effect_control or 0):.1f}%)" for r in gaps[:3])
        out.append(f"Largest n-cut effects added by training (trained against control): {shown}.")
    if control:
        out.append(f"{_plural(len(control), 'layer is', 'layers are')} significant in the control too "
                   f"({_names([result.control.layer(r.name) for r in control])}): there the null, not training, "
                   "makes the structure; compare effect sizes rather than p-values.")
    branched = [r for r in rows if r.ari is not None]
    if branched:
        better = sum((r.ari_effect or 0.0) > (r.ari_effect_control or 0.0) for r in branched)
        out.append(f"Branch recovery: the trained ARI effect exceeds the control's in {better} of {len(branched)} "
                   "layers with true branches.")
    return out


def findings(result: AnalysisResult) -> list[str]:
    """A few plain-language paragraphs on what the weights say, each built from this run's settings and numbers.

    Covers: what ran (method, null, draws); the limits the number of draws puts
    on the p-values; how many layers are more clusterable than their null, and
    whether their groups hold most of the weight; the control (or its
    absence); recovery of true branches, the detectability verdict of every
    labelled layer and the scale control of each; dead units.
    """
    out = [_header(result)]
    out.extend(_p_floor(result))
    out.extend(_clusterability(result))
    out.extend(_without_control(result))
    out.extend(_branches(result))
    out.extend(control_findings(result))
    dead = sum(r.n_dead for r in result.layers)
    if dead:
        worst = max(result.layers, key=lambda r: r.n_dead)
        out.append(f"{_plural(dead, 'unit has', 'units have')} no outgoing weight (dead) and "
                   f"{'was' if dead == 1 else 'were'} left out of the clustering; most in {worst.name} "
                   f"({worst.n_dead} of {worst.n_units}).")
    return out


def _k_sources(result: AnalysisResult) -> str:
    counts = Counter(r.k_source for r in result.layers)
    what = {"branches": "the number of true branches", "eigengap": (
        f"the largest eigengap of the normalised spectrum in 2..{result.settings.k_max}"),
        "user": f"set with --k to {result.settings.k}"}
    return "; ".join(f"{what.get(s, s)} in {_plural(c, 'layer')}" for s, c in counts.most_common())


def _recovery_methods(result: AnalysisResult) -> str:
    branched = [r for r in result.layers if r.recovery is not None]
    if not branched:
        return "No analysed layer has true branches, so no recovery was tested."
    counts = Counter(_rec(r).method for r in branched)
    by_labels = sum(c for m, c in counts.items() if "label" in m or m == "exact")
    refit = sum(c for m, c in counts.items() if m in ("sequential", "weight-shuffle"))
    parts = []
    if by_labels:
        parts.append(
            f"In {_plural(by_labels, 'layer')} every consumer reads all of the layer's units alike and the "
            f"'{result.null}' null draws each consumer's entries exchangeably, so the units are exchangeable "
            "under the null, the clusters are independent of the branches, and the exact null of the ARI and NMI "
            f"is the permutation distribution of their contingency table (up to {result.n_label_permutations} "
            f"label permutations, or all tables where they are few: p resolves to 1 / "
            f"{result.n_label_permutations + 1}).")
    if refit:
        parts.append(
            f"In {_plural(refit, 'layer')} the architecture ties units to groups (a grouped consumer or a slice) "
            f"or the '{result.null}' null does not draw entries exchangeably, so the re-fitted weight draws give "
            "the p-value; where that null keeps the branches (a grouped consumer's groups) the p-value says "
            "whether training put them there, and the verdict reads a separate test of the agreement against "
            "random labels.")
    others = sum(counts.values()) - by_labels - refit
    if others:
        parts.append(f"{_plural(others, 'layer')} had no recovery test (no draws, or a single cluster).")
    return " ".join(parts)


def method_sections(result: AnalysisResult) -> list[tuple[str, list[str]]]:
    """The "Method and null" text: (heading, paragraphs), every setting and count this run's own."""
    red = {"l1": "L1 norm (sum of absolute values)", "l2": "L2 norm", "max": "largest absolute value"}.get(
        result.reduction, result.reduction)
    expand = {
        "none": "Connections are taken as they are, without looking through intermediate layers.",
        "depthwise": "Depthwise consumers (one input channel per unit) are looked through: the profile uses the "
                     "layers that read the depthwise conv, composing the two magnitude matrices.",
        "product": "Depthwise consumers and 1x1 bottlenecks are looked through by multiplying magnitude matrices "
                   "(ignoring the non-linearity between them).",
        "signed": "Depthwise consumers and 1x1 bottlenecks are looked through by composing the signed kernels and "
                  "taking the magnitude of the result.",
    }.get(result.expand, result.expand)
    n, h = result.n_permutations, result.sequential_h
    draws = (f"re-fitted up to {n} times (seed {result.seed}; every draw has its own seed, so results do not "
             "depend on --jobs)" if n else "not drawn at all in this run (0 permutations)")
    stopping = (f"with sequential stopping (Besag and Clifford 1991, h = {h}) a layer stops once {h} draws are as "
                "extreme, with p = h / (draws made), so layers without structure cost few draws"
                if h else "every draw is used (no sequential stopping)")
    sections = [
        ("Downstream profile", [
            "A unit is an output channel of a conv layer or an output feature of a linear layer. The magnitude "
            f"of the connection from producer unit i to consumer unit j is the {red} of the kernel slice "
            "W[j, i, :, :], zero where conv groups forbid the connection, times the consumer's folded batch-norm "
            "scale |gamma| / sqrt(var + eps). A layer's downstream profile stacks the magnitudes from its units "
            "(columns) to the units of every layer that reads it (rows). Concatenations count as layers whose "
            "units carry true branch labels (which input each channel came from); so do the inputs of grouped "
            "convolutions (which group reads them) and attention projections (which head a unit belongs to). "
            + expand]),
        ("SVD variants", [
            "The profile is factorised three ways. Raw |W|: its first singular vector is mostly each unit's overall "
            "magnitude. Row/column-centred |W| (double centring) removes those means, so its leading vectors show "
            "contrasts between units. Degree-normalised D_r^-1/2 |W| D_c^-1/2 is the bipartite spectral form: its "
            "first singular vector is trivial (the square roots of the degrees), and vectors 2, 3, ... place units "
            "that connect to the same consumers close together. The unit scatter plots use vectors 2 and 3 of "
            "this form; the spectrum plots show the raw and normalised singular values against the null band."]),
        ("Co-clustering and scores", [
            "Producer units (columns) and consumer units (rows) are grouped by "
            f"{METHOD_TEXT.get(result.method, result.method)}. "
            f"k: {_k_sources(result)}. Units with no outgoing weight are dead and left out (label -1). The "
            "normalised cut of the partition, the sum over clusters of cut(k) / vol(k), measures how much weight "
            "crosses between groups: lower is more clusterable; the share of the weight inside the groups says "
            f"whether they hold most of it (above {MOSTLY_WITHIN:.0%}). Where true branches exist, the adjusted "
            "Rand index (ARI: 0 for chance, 1 for identical partitions) and the normalised mutual information "
            "(NMI) compare the clusters with them."]),
        ("The null and p-values", [
            f"The null model ('{result.null}') keeps the architecture and destroys what training put into the "
            f"weights: in each draw {NULL_TEXT.get(result.null, 'the weights are redrawn')}, and the "
            f"co-clustering is {draws}. The n-cut's p-value is empirical, p = (r + 1) / (n + 1), where r counts "
            f"the draws at least as low as observed; {stopping}.",
            _recovery_methods(result),
            "Because many layers are tested, p-values are adjusted across the analysed layers with the "
            "Benjamini-Hochberg procedure (false discovery rate); a layer counts as showing structure when its "
            f"BH-adjusted p is below {ALPHA}. Each statistic also has an effect size: the ARI above its null mean, "
            "and the n-cut's reduction relative to its null mean; a significant but small effect is reported as "
            "such."]),
        ("Detectability", [
            "For a profile of n x m entries with noise sigma (estimated from the degree-normalised profile, with "
            "the structure above the noise edge deflated), singular vectors carry information about a planted "
            "signal of strength theta only above theta* = sigma (n m)^(1/4), the rectangular BBP transition "
            "(Benaych-Georges and Nadakuditi 2012). Each layer with true branches gets the signal of its branches "
            "over that limit, the ARI a spectral method can expect there (from the predicted overlaps of the "
            "singular vectors), and a verdict: detectable and recovered; detectable but not recovered (the "
            "branches are in the weights and the co-clustering missed them); or below the limit. For up to four "
            "groups of similar size the spectral and information-theoretic limits coincide (Lesieur, Krzakala "
            "and Zdeborova 2015), so below it no method can recover them; otherwise the verdict speaks for "
            "spectral methods. Layers without branches are told whether any singular value stands above the "
            "noise edge. reports/detectability.md checks the prediction against plantings."]),
        ("Scale controls", [
            "A branch can look recovered only because its units differ in overall scale (one branch's outputs run "
            "larger, so consumers weight them less). Recovery is therefore repeated on the profile with each "
            "producer column scaled to unit norm (pattern without scale) and on the column norms alone (scale "
            "without pattern), for every layer with branches (table columns 'ARI unit-norm' and 'ARI norms "
            "only'). If the unit-norm ARI stays high, the branches differ in whom they connect to; if the column "
            "norms alone recover them, scale explains much of it."]),
    ]
    if result.control is not None:
        sections.append(("Random-init control", [
            f"The same architecture with {result.control.provenance or 'random initial weights'} was analysed "
            f"with the same settings and layers (seed {result.seed}), so every trained number stands beside what "
            "the architecture and the null give without training."]))
    sections.append(("Reading the figures", [
        "Per layer: the singular spectrum against the null band; the units on singular vectors 2 and 3 "
        "coloured by true branch and by cluster; the magnitude matrix reordered by cluster (bright diagonal "
        "blocks are modules); counts of units per branch and cluster; and the observed n-cut and ARI against "
        "their nulls. The overview shows cluster sizes and test results for every layer; the first-layer "
        "filters show what the earliest units respond to, ordered along a singular vector of their "
        "magnitudes."]))
    return sections


def run_metadata(result: AnalysisResult) -> list[tuple[str, str]]:
    """(label, value) pairs describing what was run, from the result's own record."""
    versions = ", ".join(f"{k} {v}" for k, v in result.versions.items()) or "not recorded"
    s = result.settings
    control = ("none" if result.control is None else
               f"random init ({result.control.provenance or 'random initial weights'})")
    return [
        ("model", result.model), ("weights", result.weights),
        ("weights sha256", result.weights_sha256 or "not recorded (random or in-memory weights)"),
        ("provenance", result.provenance or "–"), ("input size", " x ".join(str(v) for v in result.input_size)),
        ("layers analysed", f"{len(result.layers)}" + (f" (pattern {s.layers})" if s.layers else "")),
        ("co-clustering", result.method), ("k", "true branches, else eigengap" if s.k is None else str(s.k)),
        ("kernel reduction", result.reduction), ("expanded connections", result.expand),
        ("null model", result.null),
        ("null draws", f"up to {result.n_permutations}"
                       + (f", sequential (h = {s.sequential_h})" if s.sequential_h else "")),
        ("label permutations", f"up to {s.n_label_permutations}"), ("control", control), ("seed", str(result.seed)),
        ("run time", f"{result.runtime_s:.1f} s"), ("versions", versions),
    ]

