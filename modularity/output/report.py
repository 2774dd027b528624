"""HTML and PDF reports of a results folder, built from the same results and figures.

:func:`build_reports` lays out the PDF (:mod:`modularity.output.pdf`), draws
its pages in worker processes (:mod:`modularity.output.render`), each figure
once, on its page, at the size it has there (:mod:`modularity.output.pages`),
and writes

* ``report.pdf``: A4 portrait pages only (matplotlib and pypdf: no system
  libraries), the summary and featured figures as vector graphics, several to
  a page with numbered captions, the layer sheets of the appendix as images;
  the table flows over pages and column groups at 7 pt;
* ``report.html``: one self-contained file with every figure embedded once as
  a palette PNG cut from its PDF page (as wide as the report's column where
  the figure spans the page), a sortable per-layer table with a sticky header
  in its own scroll container (a few lines of inline JavaScript, no CDN), the
  run metadata, an auto-generated "Findings" text and the method. It reads at
  any width from a phone's 400 px up (checked in headless Chromium).

Columns with nothing to show (the branch columns of a network without
branches) are left out of both. Every p-value goes through one formatter,
:func:`modularity.output.plots.format_p`. :func:`rebuild_report` rebuilds
from a results folder alone (``python -m modularity report DIR``);
:func:`build_clusterability_report` writes the same kind of report for
whole-network clusterability.
"""

from __future__ import annotations

import base64
import math
import re
import shutil
import struct
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ..errors import ModularityError
from .figures import FigureInfo, clusterability_data, clusterability_infos, figure_infos, load_arrays, write_tables
from .pages import PAGE_SIZE
from .pdf import PdfReport
from .plots import format_p, p_text
from .render import draw_pages, progress_bar
from ..results import ALPHA, COLUMNS, COMPARISON, AnalysisResult, Column, LayerResult, load_summary
from ..results import significant as _sig

__all__ = ["findings", "method_sections", "run_metadata", "summary_columns", "build_reports",
           "write_html", "PdfReport", "PAGE_SIZE", "rebuild_report", "format_p", "break_at_dots",
           "clusterability_findings", "clusterability_method", "clusterability_metadata",
           "build_clusterability_report"]

_TEMPLATE = "report.html.j2"
_CLUSTERABILITY_TEMPLATE = "clusterability.html.j2"


# --------------------------------------------------------------------------------------------- content

def _fmt(x: float | None, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    return f"{x:.{digits}g}" if abs(x) < 1e-3 and x != 0 else f"{x:.{digits}f}".rstrip("0").rstrip(".") or "0"


def _names(layers: Sequence[LayerResult], n: int = 3) -> str:
    shown = [f"{r.name}" for r in layers[:n]]
    more = f" and {len(layers) - n} more" if len(layers) > n else ""
    return ", ".join(shown) + more


def findings(result: AnalysisResult) -> list[str]:
    """A few plain-language paragraphs on what the weights say, generated from the numbers.

    Covers: how many layers are more clusterable than their shuffled-weights
    nulls at BH-adjusted p < 0.05, how well true branches are recovered (best
    layers, with the scale controls), dead units, and the limits the number of
    permutations puts on the p-values.
    """
    layers = result.layers
    n = len(layers)
    out = [f"{result.model} ({result.weights} weights): {n} producer layer{'s' if n != 1 else ''} analysed, "
           f"each against up to {result.n_permutations} draws of the '{result.null}' null"
           + (f" (sequential stopping after {result.sequential_h} draws as extreme)" if result.sequential_h else "")
           + (f"; branch recovery against {result.n_label_permutations} label permutations where the units are "
              "exchangeable under the null" if result.n_label_permutations else "") + "."]
    if result.n_permutations == 0:
        out.append("No null was computed (0 permutations), so there are no p-values: the clusters below are "
                   "what the weights suggest, without a test of whether chance would suggest the same.")
    elif 1 / (result.n_permutations + 1) >= ALPHA:
        out.append(f"With {result.n_permutations} null draws no n-cut p-value can fall below "
                   f"1/({result.n_permutations}+1) = {format_p(1 / (result.n_permutations + 1))}, so no layer can be "
                   f"called more clusterable at p < {ALPHA}; re-run with --permutations 100 or more for a real "
                   "test.")
    clusterable = sorted((r for r in layers if _sig(r.structure.ncut.p_value_bh)),
                         key=lambda r: -(r.structure.ncut.effect or 0.0))
    if result.n_permutations:
        if clusterable:
            out.append(f"{len(clusterable)} of {n} layers are more clusterable than their null (normalised cut "
                       f"lower than the null, BH-adjusted p < {ALPHA}): their units split into groups that "
                       f"connect mostly within themselves more than chance arrangements of the same weights do. "
                       f"Largest effects: {_strongest_ncut(clusterable)}.")
            top = clusterable[0].structure.ncut.effect or 0.0
            if top < SMALL_NCUT_EFFECT:
                out.append(f"These effects are significant but small: the largest n-cut reduction is "
                           f"{100 * top:.1f}% of the null's mean, so the groups are only slightly more separate "
                           "than chance. Precision (many units, many draws) makes small effects significant.")
        else:
            out.append(f"No layer is more clusterable than its null at BH-adjusted p < {ALPHA}: the "
                       "connection magnitudes look like random rearrangements of themselves, as expected of "
                       "untrained (randomly initialised) weights or of layers without modules.")
    out.extend(_branch_findings(result))
    out.extend(control_findings(result))
    dead = sum(r.n_dead for r in layers)
    if dead:
        worst = max(layers, key=lambda r: r.n_dead)
        out.append(f"{dead} units have no outgoing weight (dead) and were left out of the clustering; "
                   f"most in {worst.name} ({worst.n_dead} of {worst.n_units}).")
    return out


def control_findings(result: AnalysisResult) -> list[str]:
    """What the random-init control says: how many significant layers it shares, and what training added."""
    rows = result.comparison_rows()
    if not rows:
        return []
    n = len(rows)
    trained = [r for r in rows if _sig(r.ncut_p_bh)]
    control = [r for r in rows if _sig(r.ncut_p_bh_control)]
    out = [f"Random-init control (the same architecture with {result.control.provenance or 'random initial weights'}, "
           f"analysed with the same settings): {len(control)} of {n} layers are more "
           f"clusterable than their null at random initialisation, against {len(trained)} of {n} with the trained "
           "weights."]
    gaps = sorted((r for r in trained if r.ncut_effect_gap is not None), key=lambda r: -r.ncut_effect_gap)
    if gaps:
        shown = ", ".join(f"{r.name} ({100 * r.ncut_effect:.1f}% against {100 * r.ncut_effect_control:.1f}%)"
                          for r in gaps[:3] if r.ncut_effect_control is not None)
        if shown:
            out.append(f"Largest n-cut effects added by training (trained against control): {shown}.")
    if control:
        out.append(f"{len(control)} layer{'s are' if len(control) != 1 else ' is'} significant in the control too "
                   f"({_names([result.control.layer(r.name) for r in control])}): there the null, not training, "
                   "makes the structure; compare effect sizes rather than p-values.")
    branched = [r for r in rows if r.ari is not None]
    if branched:
        better = sum((r.ari_effect or 0.0) > (r.ari_effect_control or 0.0) for r in branched)
        out.append(f"Branch recovery: the trained ARI effect exceeds the control's in {better} of {len(branched)} "
                   "layers with true branches.")
    return out


def _strongest_ncut(layers: Sequence[LayerResult]) -> str:
    parts = []
    for r in layers[:3]:
        d = r.structure.ncut
        z = f", z = {d.z:.1f}" if d.z is not None else ""
        parts.append(f"{r.name} (n-cut {_fmt(d.observed)} vs {_fmt(d.null_mean)}: "
                     f"{100 * (d.effect or 0.0):.1f}% lower{z})")
    return "; ".join(parts) + (f"; and {len(layers) - 3} more" if len(layers) > 3 else "")


def _branch_findings(result: AnalysisResult) -> list[str]:
    branched = [r for r in result.layers if r.recovery is not None]
    if not branched:
        return ["No analysed layer has true branches (concatenations or grouped convolutions), so there is no "
                "ground truth to score against: the clusters show the grouping the weights suggest on their own."]
    # "recovered" needs a significant test AND clusters that agree with the branches more than the null's do
    recovered = sorted((r for r in branched if _sig(r.recovery.p_value_bh) and (r.recovery.effect or 0.0) > 0
                        and (r.recovery.ari or 0.0) > 0), key=lambda r: -(r.recovery.effect or 0.0))
    out = [f"{len(branched)} analysed layer{'s have' if len(branched) != 1 else ' has'} true branches "
           f"(concatenations or grouped convolutions). The clusters found from the weights recover them beyond the "
           f"null (ARI, BH-adjusted p < {ALPHA}) in {len(recovered)} of {len(branched)}."]
    if not recovered:
        out[0] += " No layer's branches are recovered beyond chance."
        return out
    out[0] += " Best recovered: " + "; ".join(
        f"{r.name} (ARI {_fmt(r.recovery.ari)}, NMI {_fmt(r.recovery.nmi)}, null ARI "
        f"{_fmt(r.recovery.null_ari_mean)}, {p_text(r.recovery.p_value_bh, 'BH-adjusted p')})"
        for r in recovered[:3]) + "."
    if (recovered[0].recovery.effect or 0.0) < SMALL_ARI_EFFECT:
        out.append(f"The recovery is significant but weak: the best ARI is {_fmt(recovered[0].recovery.ari)} "
                   "(1 would be the branches exactly), so the weights tell the branches apart only slightly.")
    best = recovered
    top = best[0].recovery
    row = best[0].row()
    unit, norms = row.ari_unit_norm_columns, row.ari_column_norms_only
    if unit is not None and norms is not None and (top.ari or 0) > 0.05:
        if unit >= 0.5 * top.ari and norms < 0.5 * top.ari:
            verdict = "so the branches differ in their pattern of connections, not just in scale"
        elif norms >= 0.5 * top.ari and unit < 0.5 * top.ari:
            verdict = "so much of the recovery comes from the branches' different overall scale, not pattern"
        else:
            verdict = "so both pattern and scale contribute"
        out.append(f"Scale controls for {best[0].name}: columns scaled to unit norm give ARI {_fmt(unit)}; the "
                   f"column norms alone give ARI {_fmt(norms)}, {verdict}.")
    return out


def method_sections(result: AnalysisResult) -> list[tuple[str, list[str]]]:
    """The "Method and null" text: (heading, paragraphs), with this run's settings filled in."""
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
    n = result.n_permutations
    return [
        ("Downstream profile", [
            "A unit is an output channel of a conv layer or an output feature of a linear layer. The magnitude "
            f"of the connection from producer unit i to consumer unit j is the {red} of the kernel slice "
            "W[j, i, :, :], zero where conv groups forbid the connection, times the consumer's folded batch-norm "
            "scale |gamma| / sqrt(var + eps). A layer's downstream profile stacks the magnitudes from its units "
            "(columns) to the units of every layer that reads it (rows). Concatenations count as layers whose "
            "units carry true branch labels (which input each channel came from); so do the inputs of grouped "
            "convolutions (which group reads them). " + expand]),
        ("SVD variants", [
            "The profile is factorised three ways. Raw |W|: its first singular vector is mostly each unit's overall "
            "magnitude. Row/column-centred |W| (double centring) removes those means, so its leading vectors show "
            "contrasts between units. Degree-normalised D_r^-1/2 |W| D_c^-1/2 is the bipartite spectral form: its "
            "first singular vector is trivial (the square roots of the degrees), and vectors 2, 3, ... place units "
            "that connect to the same consumers close together. The unit scatter plots use vectors 2 and 3 of "
            "this form; the spectrum plots show the raw and normalised singular values against the null band."]),
        ("Co-clustering and scores", [
            "Producer units (columns) and consumer units (rows) are clustered together by spectral co-clustering "
            "(Dhillon's bipartite spectral partitioning, as scikit-learn's SpectralCoclustering) into k groups: "
            "k is the number of true branches where the layer has them, otherwise chosen by the largest eigengap "
            "(or set with --k). Units with no outgoing weight are dead and left out (label -1). The normalised cut "
            "of the partition, the sum over clusters of cut(k) / vol(k), measures how much weight crosses between "
            "groups: lower is more clusterable. Where true branches exist, the adjusted Rand index (ARI: 0 for "
            "chance, 1 for identical partitions) and the normalised mutual information (NMI) compare the clusters "
            "with them."]),
        ("The null and p-values", [
            f"The null model ('{result.null}') keeps the architecture and destroys what training put into the "
            "weights: each consumer's weight tensor is shuffled within itself (its entries permuted at random), "
            f"and the co-clustering is re-fitted, up to {n} times (seed {result.seed}; every draw has its own "
            "seed, so results do not depend on --jobs). The n-cut's p-value is empirical, p = (r + 1) / (n + 1), "
            "where r counts the draws at least as low as observed; with sequential stopping (Besag and Clifford "
            f"1991, h = {result.sequential_h}) a layer stops once h draws are as extreme, with p = h / (draws made), "
            "so layers without structure cost few draws.",
            "Branch recovery needs no re-fit where every consumer reads all of a layer's units alike: the units "
            "are then exchangeable under the null, the clusters are independent of the branches, and the exact "
            "null of the ARI and NMI is the permutation distribution of their contingency table "
            f"({result.n_label_permutations} label permutations, or all tables where they are few: p resolves to "
            f"1 / {result.n_label_permutations + 1}). Where the architecture ties units to groups (a grouped "
            "consumer) the re-fitted weight draws are used instead; each layer's method is in summary.json.",
            "Because many layers are tested, p-values are adjusted across the analysed layers with the "
            "Benjamini-Hochberg procedure (false discovery rate); a layer counts as showing structure when its "
            f"BH-adjusted p is below {ALPHA}. Each statistic also has an effect size: the ARI above its null mean, "
            "and the n-cut's reduction relative to its null mean; a significant but small effect is reported as "
            "such."]),
        ("Scale controls", [
            "A branch can look recovered only because its units differ in overall scale (one branch's outputs run "
            "larger, so consumers weight them less). Recovery is therefore repeated on the profile with each "
            "producer column scaled to unit norm (pattern without scale) and on the column norms alone (scale "
            "without pattern). If the unit-norm ARI stays high, the branches differ in whom they connect to; if "
            "the column norms alone recover them, scale explains much of it."]),
        ("Reading the figures", [
            "Per layer: the singular spectrum against the null band; the units on singular vectors 2 and 3 "
            "coloured by true branch and by cluster; the magnitude matrix reordered by cluster (bright diagonal "
            "blocks are modules); counts of units per branch and cluster; and the observed n-cut and ARI against "
            "their nulls. The overview shows cluster sizes and test results for every layer; the first-layer "
            "filters show what the earliest units respond to, ordered along a singular vector of their "
            "magnitudes."]),
    ]


def run_metadata(result: AnalysisResult) -> list[tuple[str, str]]:
    """(label, value) pairs describing what was run."""
    versions = ", ".join(f"{k} {v}" for k, v in result.versions.items()) or "not recorded"
    return [
        ("model", result.model), ("weights", result.weights),
        ("weights sha256", result.weights_sha256 or "not recorded (random or in-memory weights)"),
        ("provenance", result.provenance or "–"), ("input size", " x ".join(str(v) for v in result.input_size)),
        ("layers analysed", str(len(result.layers))), ("kernel reduction", result.reduction),
        ("expanded connections", result.expand), ("null model", result.null),
        ("permutations", str(result.n_permutations)), ("seed", str(result.seed)),
        ("run time", f"{result.runtime_s:.1f} s"), ("versions", versions),
    ]


SMALL_NCUT_EFFECT = 0.05  # n-cut reductions under 5% of the null's mean are called small
SMALL_ARI_EFFECT = 0.2  # recovery with ARI under 0.2 above its null is called weak

_TABLE_KEYS = ("name", "kind", "n_units", "n_branches", "k", "k_source", "ari", "ari_effect", "p", "p_bh", "ncut",
               "ncut_null_mean", "ncut_effect", "ncut_z", "ncut_p", "ncut_p_bh", "n_dead")
_TEXT_KEYS = ("name", "kind", "k_source")


_P_KEYS = ("p", "p_bh", "ncut_p", "ncut_p_bh")


def _empty(values: Sequence[Any]) -> bool:
    return all(v is None or (isinstance(v, float) and not math.isfinite(v)) for v in values)


def summary_columns(result: AnalysisResult | None = None) -> list[Column]:
    """The columns of the per-layer summary table (HTML and PDF), taken from :data:`~modularity.results.COLUMNS`.

    Given a result, columns with nothing to show are left out: those empty
    in every layer (the ARI columns of a network without branches, the null
    columns of a run without permutations), and ``branches`` when no layer
    has any.
    """
    by_key = {c.key: c for c in COLUMNS}
    keys = list(_TABLE_KEYS)
    if result is not None:
        rows = [r.row() for r in result.layers]
        keys = [k for k in keys if k == "name" or not _empty([getattr(row, k) for row in rows])]
        if all(row.n_branches == 0 for row in rows):
            keys.remove("n_branches")
    return [by_key[k] for k in keys]


def _summary_values(res: LayerResult, columns: Sequence[Column] | None = None) -> list[Any]:
    row = res.row()
    return [getattr(row, c.key) for c in columns] if columns is not None else [getattr(row, k) for k in _TABLE_KEYS]


def _row_significant(res: LayerResult) -> bool:
    row = res.row()
    return _sig(row.ncut_p_bh) or _sig(row.p_bh)


def _shown(v: Any, key: str = "") -> str:
    if key in _P_KEYS:
        return format_p(v)
    if isinstance(v, float):
        return _fmt(v)
    return "–" if v is None else str(v)


def break_at_dots(text: str) -> "Any":
    """HTML-escaped ``text`` with a line-break opportunity (``<wbr>``) after every dot between
    non-digits and digits alike (``_blocks.8.<wbr>_expand``), but not inside a number (``0.05``).

    Examples
    --------
    >>> str(break_at_dots("_blocks.8._expand_conv <b>"))
    '_blocks.<wbr>8.<wbr>_expand_conv &lt;b&gt;'
    >>> str(break_at_dots("p = 0.05."))
    'p = 0.05.'
    """
    from markupsafe import Markup, escape

    escaped = str(escape(text))
    return Markup(re.sub(r"(?<!\d)\.(?=[^\s.])|(?<=\d)\.(?=[^\s\d.])", ".<wbr>", escaped))


# ------------------------------------------------------------------------------------------------ HTML

def _png_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG header."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ModularityError("figure file is not a PNG")
    return struct.unpack(">II", data[16:24])


def _embed(folder: Path, info: FigureInfo, number: int | None = None, inline: bool = True) -> dict[str, Any]:
    """A figure as the template shows it: its PNG inline (base64), or linked by its path in the folder."""
    path = folder / info.png
    if not path.is_file():
        raise ModularityError(f"figure {info.png} is missing from {folder}")
    data = path.read_bytes()
    w, h = _png_size(data)
    svg = next((f.as_posix() for f in info.files if f.suffix == ".svg"), None)
    src = "data:image/png;base64," + base64.b64encode(data).decode("ascii") if inline else info.png.as_posix()
    return {"title": info.title, "caption": info.caption, "src": src, "width": w, "height": h, "svg": svg,
            "anchor": "fig-" + info.key.replace(":", "-"), "number": number}


_FILES = [
    ("report.pdf", "the same report as a PDF"),
    ("summary.json", "every number of the analysis (read with modularity.load_summary)"),
    ("layers.csv", "one row per analysed layer"), ("units.csv", "one row per unit: branch, cluster, coordinates"),
    ("comparison.csv", "trained against the random-init control, one row per layer"),
    ("control_layers.csv", "the random-init control's per-layer table"),
    ("arrays.npz", "reordered magnitude matrices and first-layer filters used by the figures"),
    ("channel_graph.graphml", "layer-level graph (GraphML: networkx, yEd)"),
    ("channel_graph.gexf", "layer-level graph (GEXF: Gephi)"),
    ("channel_graph.node_link.json", "layer-level graph (networkx node-link JSON)"),
    ("channel_graph.cytoscape.json", "layer-level graph (Cytoscape.js JSON)"),
    ("unit_graph.graphml", "unit-level graph, strongest connections per consumer unit (GraphML)"),
    ("unit_graph.graphml.gz", "unit-level graph, every connection (gzipped GraphML)"),
    ("unit_graph.gexf", "unit-level graph (GEXF: Gephi)"),
    ("unit_graph.node_link.json", "unit-level graph (networkx node-link JSON)"),
    ("unit_graph.cytoscape.json", "unit-level graph (Cytoscape.js JSON)"),
    ("figures/", "every figure as PNG, summary and featured-layer figures also as SVG"),
]

_CLUSTERABILITY_FILES = [
    ("report.pdf", "the same report as a PDF"),
    ("clusterability.json", "every number of the run, the cluster of every unit included"),
    ("clusterability_layers.csv", "per layer: units, isolated units and units in each cluster"),
    ("figures/", "the figures as PNG and SVG"),
]


def _environment():
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader("modularity.output", "templates"),
                             autoescape=jinja2.select_autoescape(["html", "j2"]), undefined=jinja2.StrictUndefined)
    env.filters["wbr"] = break_at_dots
    return env


def _table(columns: Sequence[Column], rows: Sequence[Sequence[Any]], significant: Sequence[bool],
           text_keys: Sequence[str] = _TEXT_KEYS) -> dict[str, Any]:
    """The per-layer table as the template wants it: header cells and rows of (sort key, shown) cells."""
    body = []
    for values, sig in zip(rows, significant):
        cells = [{"sort": "" if v is None else (repr(float(v)) if isinstance(v, float) else v),
                  "shown": _shown(v, col.key), "text": col.key in text_keys, "name": i == 0}
                 for i, (col, v) in enumerate(zip(columns, values))]
        body.append({"cells": cells, "sig": sig})
    return {"columns": columns, "rows": body}


def _table_note(result: AnalysisResult, columns: Sequence[Column]) -> str:
    shown = {c.key for c in columns}
    notes = []
    if "ari" not in shown:
        notes.append("No analysed layer has true branches, so the branch-recovery columns (ARI and its p-values) "
                     "are left out.")
    if "ncut_p" not in shown:
        notes.append("No null was computed (0 permutations), so there are no p-values.")
    return " ".join(notes)


def write_html(result: AnalysisResult, figures: Sequence[FigureInfo], folder: str | Path) -> Path:
    """Write ``report.html``: the summary and featured figures inline (base64 PNG), the layer sheets linked.

    The report's own figures travel with the file; the appendix of layer
    sheets shows the PNG files in ``figures/layers/`` beside it (and the PDF
    holds them too), so no image is stored twice in the HTML and the folder
    stays small.
    """
    from .. import __version__

    folder = Path(folder)
    columns = summary_columns(result)
    table = _table(columns, [_summary_values(r, columns) for r in result.layers],
                   [_row_significant(r) for r in result.layers])
    main = [f for f in figures if not f.key.startswith("sheet:")]
    groups: list[dict[str, Any]] = []
    for n, f in enumerate(main, 1):
        heading = "Across the network" if f.layer is None or f.key == "filters" else f"Layer {f.layer}"
        if not groups or groups[-1]["heading"] != heading:
            groups.append({"heading": heading, "figures": []})
        groups[-1]["figures"].append(_embed(folder, f, n))
    # the layer sheets (about 50 for a whole network) are linked, not inlined: each image is stored once
    sheets = [_embed(folder, f, inline=False) for f in figures if f.key.startswith("sheet:")]
    files = [{"href": name, "name": name, "what": what} for name, what in _FILES if (folder / name).exists()]
    comparison = None
    if result.control is not None:
        rows = result.comparison_rows()
        shown = [c for c in COMPARISON if c.key == "name" or not _empty([getattr(r, c.key) for r in rows])]
        comparison = _table(shown, [[getattr(r, c.key) for c in shown] for r in rows],
                            [_sig(r.ncut_p_bh) or _sig(r.p_bh) for r in rows])
    html = _environment().get_template(_TEMPLATE).render(
        comparison=comparison, control_weights=None if result.control is None else result.control.provenance,
        title=f"What the weights of {result.model} say about its structure", page_title=result.model,
        model=result.model, findings=findings(result), meta=run_metadata(result), command=result.command,
        table=table, table_note=_table_note(result, columns), n_permutations=result.n_permutations,
        n_layers=len(result.layers), alpha=ALPHA, groups=groups, sheets=sheets, method=method_sections(result),
        files=files, version=__version__, rebuild=True)
    path = folder / "report.html"
    path.write_text(html, encoding="utf-8")
    return path


def _front_blocks(title: str, paragraphs: Sequence[str], meta: Sequence[tuple[str, str]],
                  command: str) -> list[tuple[str, str]]:
    blocks = [("title", title), ("heading", "Findings")] + [("text", p) for p in paragraphs]
    blocks += [("heading", "What was run")] + [("line", f"{k}: {v}") for k, v in meta]
    if command:
        blocks += [("line", "Command line:"), ("mono", command)]
    return blocks


def _pdf_front(pdf: PdfReport, result: AnalysisResult) -> None:
    pdf.text(_front_blocks(f"What the weights of {result.model} say about its structure", findings(result),
                                 run_metadata(result), result.command))
    columns = summary_columns(result)
    header = [c.label for c in columns]
    rows = [[_shown(v, c.key) for c, v in zip(columns, _summary_values(r, columns))] for r in result.layers]
    note = (f"Bold: BH-adjusted p < {ALPHA} for the n-cut or the ARI. " + _table_note(result, columns)).strip()
    pdf.table(header, rows, "Per-layer summary", bold=[_row_significant(r) for r in result.layers], note=note)
    comparison = result.comparison_rows()
    if comparison:
        shown = [c for c in COMPARISON if c.key == "name" or not _empty([getattr(r, c.key) for r in comparison])]
        pdf.table([c.label for c in shown], [[_shown(getattr(r, c.key), c.key) for c in shown] for r in comparison],
                        "Trained against the random-init control",
                        bold=[_sig(r.ncut_p_bh) or _sig(r.p_bh) for r in comparison],
                        note=f"The same architecture with {result.control.provenance}, the same settings and layers. "
                             "n-cut effect gap: the trained n-cut effect minus the control's.")


def _method_blocks(title: str, sections: Sequence[tuple[str, list[str]]]) -> list[tuple[str, str]]:
    blocks: list[tuple[str, str]] = [("title", title)]
    for heading, paragraphs in sections:
        blocks.append(("heading", heading))
        blocks.extend(("text", p) for p in paragraphs)
    return blocks


# ----------------------------------------------------------------------------------------------- build

def build_reports(result: AnalysisResult, arrays: Mapping[str, np.ndarray], folder: str | Path,
                  progress: bool = False, jobs: int | None = None, alongside: Sequence[Callable[[], Any]] = (),
                  bar: Any = None) -> list[Path]:
    """Draw the figures and write ``report.pdf`` and ``report.html`` into ``folder``.

    The PDF (A4 portrait throughout) holds: findings and run metadata, the
    per-layer table, the summary figures, the featured layers' figures, the
    method, and an appendix of every layer's sheet (two to a page, one with
    true branches). Every figure is drawn once, on its page, and captioned;
    its PNG (and SVG) are cut from there.

    Parameters
    ----------
    result : AnalysisResult
    arrays : mapping
        Figure arrays (:func:`modularity.arrays.figure_arrays` or :func:`load_arrays`).
    folder : str or Path
    progress : bool
        A progress bar over the pages (when ``bar`` is not given).
    jobs : int, optional
        Drawing processes (None: one per available core; 1: this process).
    alongside : sequence of callables
        Other work for this process while the pages are drawn (each counts as
        a step of the bar).
    bar : progress bar, optional
        One to advance instead of a new one; its total grows by this report's steps (its pages and the HTML).

    Returns
    -------
    list of Path
        Figure files, ``report.pdf`` and ``report.html``.
    """
    folder = Path(folder)
    figures, pdf = plan_report(result, arrays, folder)
    own = bar is None
    if own:
        bar = progress_bar(progress, len(pdf.pages) + len(alongside) + 1, "report")
    else:
        bar.total += len(pdf.pages) + 1
        bar.refresh()
    try:
        rendered = draw_pages(pdf.pages, folder, jobs, bar, alongside)
        _record_files(figures, rendered)
        pdf.write([r.pdf for r in rendered])
        html = write_html(result, figures, folder)
        bar.update(1)
    finally:
        if own:
            bar.close()
    return [folder / f for info in figures for f in info.files] + [pdf.path, html]


def plan_report(result: AnalysisResult, arrays: Mapping[str, np.ndarray],
                folder: str | Path) -> tuple[list[FigureInfo], PdfReport]:
    """The report's figures and its PDF laid out page by page, nothing drawn yet."""
    figures = figure_infos(result, arrays)
    pdf = PdfReport(Path(folder) / "report.pdf", f"modularity report: {result.model}")
    _pdf_front(pdf, result)
    pdf.figures([f for f in figures if f.layer is None or f.key == "filters"], "Across the network")
    pdf.figures([f for f in figures if ":" in f.key and not f.key.startswith("sheet:")], "Featured layer",
                by_layer=True)
    pdf.text(_method_blocks("Method and null", method_sections(result)))
    pdf.figures([f for f in figures if f.key.startswith("sheet:")], "Appendix: every layer")
    return figures, pdf


def _record_files(figures: Sequence[FigureInfo], rendered: Sequence[Any]) -> None:
    """Give every figure the files (and PNG size) its page wrote."""
    files: dict[str, list[str]] = {}
    sizes: dict[str, tuple[int, int]] = {}
    for page in rendered:
        files.update(page.files)
        sizes.update(page.sizes)
    for info in figures:
        info.files = [Path(f) for f in files.get(info.key, [])]
        info.pixels = sizes.get(info.key)


def rebuild_report(folder: str | Path, progress: bool = False, jobs: int | None = None) -> list[Path]:
    """Re-draw figures, tables, HTML and PDF of a results folder from summary.json and arrays.npz.

    Nothing is recomputed and the model is not needed. Graph files
    (GraphML, GEXF, JSON) are left as they are.

    Raises
    ------
    ModularityError
        If the folder lacks summary.json or arrays.npz, or they come from another version.
    """
    folder = Path(folder)
    result = load_summary(folder)
    arrays = load_arrays(folder, result)
    tables: list[Path] = []
    return build_reports(result, arrays, folder, progress=progress, jobs=jobs,
                         alongside=[lambda: tables.extend(write_tables(result, folder))]) + tables


# ------------------------------------------------------------------------------- whole-network clusterability

_NULL_TEXT = {
    "shuffle": "every layer's BN-folded weights are permuted at random within the layer (Filan et al. 2021), "
               "which keeps each layer's weight distribution and the architecture but destroys where the large "
               "weights sit",
    "degree": "every layer's connection magnitudes are redrawn keeping each unit's total incoming and outgoing "
              "magnitude, so that unequal unit scales (batch-norm folding makes them very unequal in trained "
              "networks) cannot by themselves make the network look clusterable",
}


def clusterability_findings(result: Any) -> list[str]:
    """Plain-language paragraphs on a whole-network clusterability result (p-values via :func:`format_p`)."""
    layers = len(result.layers)
    out = [f"{result.model} ({result.weights or 'weights not recorded'}): one graph over the units of its "
           f"{layers} layers ({result.n_nodes} units, {result.n_edges} weighted edges, {result.n_isolated} isolated "
           f"units without any weight), split into k = {result.k} clusters by normalised spectral clustering. "
           f"Its normalised cut is {result.ncut:.4f} (lower: less weight crosses between clusters)."]
    if not result.null_ncuts or result.null_mean is None:
        out.append("No null networks were drawn (0 shuffles), so there is no test: the n-cut above cannot be "
                   "compared with chance.")
        return out
    effect = (result.null_mean - result.ncut) / result.null_mean if result.null_mean else None
    z = "undefined (the null has no spread)" if result.z is None else f"{result.z:.2f}"
    out.append(f"Against {len(result.null_ncuts)} null networks ('{result.null}' null) whose n-cut averages "
               f"{result.null_mean:.4f} (sd {result.null_sd or 0:.4f}): z = {z}, empirical {p_text(result.p_value)}"
               + (f"; the observed n-cut is {100 * effect:.1f}% {'lower' if effect >= 0 else 'higher'} than the "
                  "null's mean" if effect is not None else "") + ".")
    if _sig(result.p_value) and result.ncut < result.null_mean:
        verdict = (f"The network is more clusterable than its null at p < {ALPHA}: its weights group units into "
                   "clusters that connect mostly within themselves, more than the same weights rearranged do.")
        if effect is not None and effect < SMALL_NCUT_EFFECT:
            verdict += (f" The effect is small ({100 * effect:.1f}% of the null's mean): significant, but the "
                        "clusters are only slightly more separate than chance.")
    else:
        verdict = (f"The network is not detectably more clusterable than its null (p ≥ {ALPHA} or an n-cut above "
                   "the null's mean).")
    if 1 / (len(result.null_ncuts) + 1) >= ALPHA:
        verdict += (f" With {len(result.null_ncuts)} null networks p cannot fall below "
                    f"{format_p(1 / (len(result.null_ncuts) + 1))}; use --shuffles 100 or more for a real test.")
    out.append(verdict)
    data = clusterability_data(result)
    spread = data["spread"]
    if spread:
        narrow = sum(1 for s in spread if s <= max(1, layers // 10))
        out.append(f"The clusters span between {min(spread)} and {max(spread)} of the {layers} layers; "
                   f"{narrow} of the {result.k} lie within {max(1, layers // 10)} layer"
                   f"{'s' if max(1, layers // 10) != 1 else ''} or fewer (see 'Clusters across the layers').")
    return out


def clusterability_metadata(result: Any, extra: Mapping[str, Any] | None = None) -> list[tuple[str, str]]:
    """(label, value) pairs describing a clusterability run."""
    extra = dict(extra or {})
    return [
        ("model", result.model), ("weights", result.weights or "not recorded"),
        ("weights sha256", extra.get("weights_sha256") or "not recorded"),
        ("provenance", extra.get("provenance") or "–"),
        ("clusters k", str(result.k)), ("null model", result.null), ("null networks", str(result.n_shuffles)),
        ("seed", str(result.seed)), ("linear layers", "included" if result.include_linear else "left out"),
        ("graph", f"{result.n_nodes} units in {len(result.layers)} layers, {result.n_edges} edges, "
                  f"{result.n_isolated} isolated"),
        ("run time", f"{result.runtime_s:.1f} s"),
    ]


def clusterability_method(result: Any) -> list[tuple[str, list[str]]]:
    """The "Method and null" text of a clusterability report, with this run's settings filled in."""
    null = _NULL_TEXT.get(result.null, f"the '{result.null}' null model redraws every layer's weights")
    return [
        ("The graph", [
            "Following Filan et al. (2021, 'Clusterability in Neural Networks'), the whole network becomes one "
            "undirected weighted graph. Its nodes are the units (output channels) of every conv layer and the "
            "input channels" + (", and the features of every linear layer" if result.include_linear else "")
            + ". The edge between a producer unit and a consumer unit weighs the L1 norm of the kernel slice "
            "that connects them, times the consumer's folded batch-norm scale. Concatenations are not nodes: "
            "their consumers connect straight to the layers that produced each channel, and a residual stream "
            "links every layer that writes into it."]),
        ("Clustering and n-cut", [
            f"The graph is split into k = {result.k} clusters by normalised spectral clustering (Shi and Malik): "
            "the k leading eigenvectors of D^-1/2 A D^-1/2, rescaled by D^-1/2, then k-means. The normalised "
            "cut, the sum over clusters of cut(k) / vol(k), measures how much of each cluster's weight leaves "
            "it: 0 for disconnected clusters, up to k. Isolated units (no non-zero edge) take no part."]),
        ("The null and the p-value", [
            f"Each null network is the same architecture whose weights are redrawn: {null}. The null network is "
            f"clustered the same way and its n-cut recorded ({result.n_shuffles} networks, seed {result.seed}). "
            "The p-value is empirical, p = (r + 1) / (n + 1), where r counts null networks whose n-cut is at most "
            "the observed one; z = (observed - null mean) / null sd; the effect size is the observed n-cut's "
            f"reduction relative to the null mean. The network counts as more clusterable when p < {ALPHA}."]),
    ]


def _clusterability_table(result: Any) -> tuple[list[Column], list[list[Any]]]:
    data = clusterability_data(result)
    columns = [Column("layer", "layer", "layer, in network order"), Column("n_units", "units", "units of the layer"),
               Column("n_isolated", "isolated", "units without any weight (in no cluster)"),
               Column("n_clusters", "clusters", "clusters holding at least one of the layer's units"),
               Column("main", "main cluster", "the cluster holding most of the layer's units"),
               Column("main_share", "share", "fraction of the layer's units in its main cluster")]
    columns += [Column(f"cluster_{c}", str(c), f"units of the layer in cluster {c}") for c in range(result.k)]
    rows = []
    for name, size, counts, isolated in zip(data["names"], result.layer_sizes, data["counts"], data["isolated"]):
        main = int(np.argmax(counts)) if counts.sum() else None
        share = float(counts[main]) / size if main is not None and size else None
        rows.append([name, int(size), int(isolated), int((counts > 0).sum()), main, share]
                    + [int(v) for v in counts])
    return columns, rows


def build_clusterability_report(result: Any, folder: str | Path, extra: Mapping[str, Any] | None = None,
                                progress: bool = False, jobs: int | None = None) -> list[Path]:
    """Write the figures, ``report.html`` and ``report.pdf`` of a whole-network clusterability result.

    Parameters
    ----------
    result : ClusterabilityResult
    folder : str or Path
        Folder to write into (it must exist).
    extra : mapping, optional
        ``weights_sha256`` and ``provenance`` of the model, for the run metadata.
    progress : bool
        A progress bar over the pages.
    jobs : int, optional
        Drawing processes (None: one per available core).

    Returns
    -------
    list of Path
        Figure files, ``report.pdf`` and ``report.html``.
    """
    from .. import __version__

    folder = Path(folder)
    figures = clusterability_infos(result)
    columns, values = _clusterability_table(result)
    text_keys = ("layer",)
    meta = clusterability_metadata(result, extra)
    title = f"How clusterable is {result.model}?"
    paragraphs = clusterability_findings(result)
    pdf = PdfReport(folder / "report.pdf", f"modularity clusterability report: {result.model}")
    pdf.text(_front_blocks(title, paragraphs, meta, result.command))
    pdf.figures(figures, "Figures")
    pdf.table([c.label for c in columns], [[_shown(v) for v in r] for r in values],
              "Units per layer and cluster", note="Cluster columns count the layer's units in each of the "
              f"k = {result.k} clusters of the whole network.")
    pdf.text(_method_blocks("Method and null", clusterability_method(result)))
    with progress_bar(progress, len(pdf.pages), "report", "page") as bar:
        rendered = draw_pages(pdf.pages, folder, jobs, bar)
    _record_files(figures, rendered)
    pdf.write([r.pdf for r in rendered])
    shutil.copyfile(folder / figures[0].png, folder / "clusterability_null.png")  # the file earlier versions wrote
    table = _table(columns, values, [False] * len(values), text_keys)
    files = [{"href": name, "name": name, "what": what} for name, what in _CLUSTERABILITY_FILES
             if (folder / name).exists()]
    html = _environment().get_template(_CLUSTERABILITY_TEMPLATE).render(
        title=title, page_title=f"clusterability of {result.model}", findings=paragraphs, meta=meta,
        command=result.command, table=table,
        groups=[{"heading": "", "figures": [_embed(folder, f, n) for n, f in enumerate(figures, 1)]}],
        method=clusterability_method(result), files=files, version=__version__, k=result.k)
    path = folder / "report.html"
    path.write_text(html, encoding="utf-8")
    return [folder / f for info in figures for f in info.files] + [pdf.path, path]
