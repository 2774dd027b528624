#!/usr/bin/env python
"""Predicted against measured recovery across the detectability limit (``modularity.core.detectability``).

Plants block signals of known strength into noise matrices with the shapes of
real profiles, and into random-init googlenet blocks, then compares what
:func:`modularity.core.detectability.detectability` predicts (ratio to the BBP
threshold, expected ARI of a spectral method, optimal ARI) with what the
default co-clustering (``modularity.core.defaults.DEFAULT_METHOD``) recovers.

Cases
-----
``synthetic``
    ``A = |G| * (1 + s [row group == column group])``, ``G`` standard normal
    (the magnitudes of a 1x1 conv with Gaussian initial weights): the rows
    are dealt at random, in equal shares, into ``k`` groups and the weights
    from branch ``b``'s columns to row group ``b`` are scaled by ``1 + s``,
    the planting of ``benchmarks.plantings.plant_random_rows``. Shapes and
    branch sizes of real profiles (832 x 256 with four unequal branches, as
    googlenet's inception3a block read through expanded paths; 576 x 480 as
    inception3b), two unequal groups, five and eight equal groups (where only
    the spectral limit is claimed), and one case with log-normal row scales
    (sd 0.5, as batch-norm folding gives), which breaks the model's equal
    noise variance. For these the population ratio is known: the signal and
    noise of the expected matrix, degree-normalised, next to the estimate.
``googlenet``
    ``torchvision.models.googlenet(weights=None, init_weights=True,
    aux_logits=False)`` (``modularity.load_model("googlenet", weights="none",
    seed=...)``), with ``benchmarks.plantings.plant_random_rows`` scaling the weights from
    each branch of the block to its share of every consumer's units by
    ``1 + s``; the downstream profile of inception3a (352 x 256, branches
    64/128/32/32) and inception4e (576 x 832, 256/320/128/128).
``nsfwjs``
    The 11 Inception blocks of the real trained Keras InceptionV3 of
    ``nsfwjs@4.3.0`` (``scripts/fetch_inception_v3.py``), when its weights
    file is there: which of their branches are below the limit.

For every matrix: the detectability (``rng`` = the seed), the default's ARI
(one k-means seed per matrix; five for the real blocks), its label-permutation
p-value (2,000 permutations) and the verdict. The pure-noise rates are
reported for seeds 0-4 and 5-9 apart. Writes ``reports/detectability.md``,
``reports/detectability/curve.json``, ``curve.png`` and
``predicted_vs_measured.png``.

Usage::

    .venv/bin/python scripts/detectability_curve.py [--seeds 10] [--nsfwjs FILE] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import time
import zlib
from itertools import pairwise
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.cases import cached, nsfwjs_instances, planting_networks  # noqa: E402
from benchmarks.machine import cpu_name  # noqa: E402
from benchmarks.plantings import plant_random_rows  # noqa: E402
from modularity import downstream_profile  # noqa: E402
from modularity.core import detectability as det_mod  # noqa: E402
from modularity.core.defaults import DEFAULT_METHOD  # noqa: E402
from modularity.core.detectability import OUTCOMES, detectability, verdict  # noqa: E402
from modularity.core.methods import cocluster  # noqa: E402
from modularity.core.metrics import adjusted_rand  # noqa: E402
from modularity.core.nulls import binomial_ci  # noqa: E402
from modularity.core.permutation import label_permutation_test  # noqa: E402
from modularity.core.spectral import degree_normalised, top_singular_values  # noqa: E402

SIGNALS = [0.0, 0.05, 0.1, 0.125, 0.15, 0.175, 0.2, 0.25, 0.3, 0.4, 0.5, 0.7]
SYNTHETIC = {
    # name: (rows, branch sizes, sd of log row scales)
    "synthetic 832x256 k=4 (64/128/32/32)": (832, (64, 128, 32, 32), 0.0),
    "synthetic 576x480 k=4 (128/192/96/64)": (576, (128, 192, 96, 64), 0.0),
    "synthetic 400x200 k=2 (150/50)": (400, (150, 50), 0.0),
    "synthetic 576x480 k=5 (5 x 96)": (576, (96,) * 5, 0.0),
    "synthetic 512x512 k=8 (8 x 64)": (512, (64,) * 8, 0.0),
    "synthetic 832x256 k=4, row scales sd 0.5": (832, (64, 128, 32, 32), 0.5),
}
GOOGLENET_BLOCKS = ["inception3a", "inception4e"]  # no shared consumers: planted together
N_PERMUTATIONS = 2000
ALPHA = 0.05
HALF_NORMAL_MEAN, HALF_NORMAL_VAR = float(np.sqrt(2 / np.pi)), float(1 - 2 / np.pi)


# ------------------------------------------------------------------ cases

def synthetic_instances(name: str, seeds: list[int], signals: list[float]) -> list[dict]:
    """Planted synthetic matrices; the noise, row groups and row scales of a seed are shared by all signals."""
    n, sizes, row_sd = SYNTHETIC[name]
    truth = np.repeat(np.arange(len(sizes)), sizes)
    out = []
    for seed in seeds:
        rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
        base = np.abs(rng.standard_normal((n, len(truth))))
        rows = rng.permutation(np.arange(n) % len(sizes))
        scale = np.exp(row_sd * rng.standard_normal(n)) if row_sd else np.ones(n)
        same = rows[:, None] == truth[None, :]
        for s in signals:
            a = base * (1 + s * same) * scale[:, None]
            out.append({"family": "synthetic", "case": name, "signal": s, "net_seed": seed, "matrix": a,
                        "truth": truth, "population_ratio": population_ratio(same, s, scale)})
    return out


def population_ratio(same: np.ndarray, s: float, scale: np.ndarray) -> float:
    """Signal over BBP threshold of the *expected* planted matrix (the quantity the estimate targets).

    ``E[A] = mu r_i (1 + s M)``, ``Var(A) = v r_i^2 (1 + s M)^2`` (half-normal ``mu``, ``v``); both
    degree-normalised by the expected degrees; the signal is the top non-trivial singular value of the
    normalised mean, the noise the root mean normalised variance.
    """
    gain = 1 + s * same
    mean = HALF_NORMAL_MEAN * scale[:, None] * gain
    dr, dc = mean.sum(axis=1), mean.sum(axis=0)
    an = mean / np.sqrt(dr)[:, None] / np.sqrt(dc)[None, :]
    var = HALF_NORMAL_VAR * (scale[:, None] * gain) ** 2 / dr[:, None] / dc[None, :]
    n, m = an.shape
    values = top_singular_values(an, 2)
    theta = float(values[1]) if len(values) > 1 and values[1] > 1e-9 else 0.0
    return theta / (float(np.sqrt(var.mean())) * (n * m) ** 0.25)


def planted_instances(family: str, seeds: list[int], signals: list[float], blocks: list[str]) -> list[dict]:
    """Profiles of ``family`` at random init for every seed, signal and block, planted by ``plant_random_rows``.

    The consumers' row groups of a seed are the same at every signal (the rng is re-seeded per signal), so a
    seed's curve moves only with the signal. The blocks must share no consumer (checked).
    """
    out = []
    for seed, graph, restore in planting_networks(family, seeds, blocks):
        for s in signals:
            restore()
            rng = np.random.default_rng([seed, zlib.crc32(family.encode())])
            truths = {b: plant_random_rows(graph, b, s, rng) for b in blocks}
            for b in blocks:
                out.append({"family": family, "signal": s, "net_seed": seed, "block": b,
                            "matrix": downstream_profile(graph, b).matrix.astype(np.float64),
                            "truth": np.asarray(truths[b], dtype=int)})
    return out


def googlenet_instances(seeds: list[int], signals: list[float], cache: Path) -> list[dict]:
    tag = f"seeds{'-'.join(map(str, seeds))}_signals{'-'.join(f'{s:g}' for s in signals)}"
    inst = cached(cache / f"googlenet_{'-'.join(GOOGLENET_BLOCKS)}_{tag}.npz",
                  lambda: planted_instances("googlenet", seeds, signals, GOOGLENET_BLOCKS))
    for d in inst:
        a = d["matrix"]
        d["case"] = f"googlenet {d['block']} ({a.shape[0]}x{a.shape[1]}, " \
                    f"{'/'.join(map(str, np.bincount(d['truth'])))})"
        d["population_ratio"] = None
    return inst


# ------------------------------------------------------------------ measuring

def measure(d: dict, method_seeds: int = 1) -> dict:
    """Detectability, the default's ARI and p-value, and the verdict of one matrix."""
    a, truth = d["matrix"], d["truth"]
    k = len(np.unique(truth))
    seed = int(d.get("net_seed", 0))
    t0 = time.perf_counter()
    det = detectability(a, truth, rng=seed)
    t_det = time.perf_counter() - t0
    aris, ps = [], []
    for ms in range(method_seeds):
        labels = cocluster(a, k, np.random.default_rng([seed, 1000 + ms]), DEFAULT_METHOD).cols
        aris.append(adjusted_rand(truth, labels))
        ps.append(label_permutation_test(truth, labels, N_PERMUTATIONS, rng=[seed, 2000 + ms],
                                         statistics=("ari",))["ari"].p_value)
    ari, p = float(np.mean(aris)), float(np.median(ps))
    v = verdict(det, ari, p, ALPHA)
    an = degree_normalised(a[(a != 0).any(axis=1)][:, (a != 0).any(axis=0)])[0]
    s1 = float(top_singular_values(an, 2)[1])
    return {k_: v_ for k_, v_ in d.items() if k_ not in ("matrix", "truth")} | {
        "k": k, "shape": list(a.shape), "detectability": det.as_dict(), "ari": ari, "aris": aris,
        "p_value": p, "verdict": v, "outcome": OUTCOMES[v], "detectability_s": t_det,
        "top_nontrivial_over_edge": s1 / det.edge if det.edge > 0 else None}


# ------------------------------------------------------------------ summaries

def _crossing(xs: list[float], ys: list[float], level: float) -> float | None:
    """First x where the piecewise-linear curve ys(xs) reaches ``level``."""
    for (x0, y0), (x1, y1) in pairwise(zip(xs, ys)):
        if y0 < level <= y1:
            return float(x0 + (level - y0) * (x1 - x0) / (y1 - y0))
    return None


def curve_table(rows: list[dict]) -> dict:
    """Per case and signal: mean ratio, predictions, measured mean and worst, prediction error, verdicts."""
    table: dict = {}
    for case in dict.fromkeys(r["case"] for r in rows):
        table[case] = []
        sel = [r for r in rows if r["case"] == case]
        for s in sorted({r["signal"] for r in sel}):
            cell = [r for r in sel if r["signal"] == s]
            dd = [r["detectability"] for r in cell]
            meas = np.array([r["ari"] for r in cell])
            exp = np.array([x["expected_ari"] for x in dd])
            pop = [r["population_ratio"] for r in cell if r.get("population_ratio") is not None]
            table[case].append({
                "signal": s, "n": len(cell),
                "ratio": float(np.mean([x["ratio"] for x in dd])),
                "ratio_min": float(np.min([x["ratio"] for x in dd])),
                "ratio_max": float(np.max([x["ratio"] for x in dd])),
                "population_ratio": float(np.mean(pop)) if pop else None,
                "expected_ari": float(exp.mean()),
                "expected_ari_sd": float(np.mean([x["expected_ari_sd"] for x in dd])),
                "optimal_ari": float(np.mean([x["optimal_ari"] for x in dd])),
                "measured_mean": float(meas.mean()), "measured_worst": float(meas.min()),
                "error_mean": float((meas - exp).mean()),
                "error_worst": float((meas - exp)[np.argmax(np.abs(meas - exp))]),
                "significant": int(sum(r["p_value"] < ALPHA for r in cell)),
                "n_above_edge": float(np.mean([x["n_above_edge"] for x in dd])),
                "outcomes": {o: int(sum(r["outcome"] == o for r in cell))
                             for o in ("recovered", "missed", "below_limit")},
            })
        xs = [c["signal"] for c in table[case]]
        table[case + " :: crossings"] = {
            "ratio_1": _crossing(xs, [c["ratio"] for c in table[case]], 1.0),
            "measured_0.05": _crossing(xs, [c["measured_mean"] for c in table[case]], 0.05),
            "expected_0.05": _crossing(xs, [c["expected_ari"] for c in table[case]], 0.05)}
    return table


def error_bins(rows: list[dict]) -> list[dict]:
    """Measured minus expected ARI by bins of the estimated ratio (all planted cases but the heteroscedastic one)."""
    edges = [0.0, 0.8, 1.0, 1.25, 1.5, 2.0, 3.0, np.inf]
    out = []
    for lo, hi in pairwise(edges):
        sel = [r for r in rows if lo <= r["detectability"]["ratio"] < hi and r["signal"] > 0
               and "row scales" not in r["case"]]
        if not sel:
            continue
        err = np.array([r["ari"] - r["detectability"]["expected_ari"] for r in sel])
        err_opt = np.array([r["ari"] - r["detectability"]["optimal_ari"] for r in sel])
        out.append({"ratio_from": lo, "ratio_to": hi if np.isfinite(hi) else None, "n": len(sel),
                    "error_mean": float(err.mean()), "error_abs_mean": float(np.abs(err).mean()),
                    "error_min": float(err.min()), "error_max": float(err.max()),
                    "optimal_error_mean": float(err_opt.mean()), "optimal_error_max": float(err_opt.max()),
                    "significant": int(sum(r["p_value"] < ALPHA for r in sel)),
                    "outcomes": {o: int(sum(r["outcome"] == o for r in sel))
                                 for o in ("recovered", "missed", "below_limit")}})
    return out


def null_checks(rows: list[dict], seeds: list[int]) -> dict:
    """On the pure-noise matrices (signal 0) of ``seeds``: false detectable and false edge rates, gap extremes."""
    sel = [r for r in rows if r["signal"] == 0 and r["net_seed"] in seeds]
    n = len(sel)
    fd = sum(r["detectability"]["ratio"] > 1 for r in sel)
    fe = sum(r["detectability"]["n_above_edge"] > 0 for r in sel)
    fr = sum(r["outcome"] != "below_limit" for r in sel)
    gaps = [r["detectability"]["edge_gap"] for r in sel]
    return {"n": n, "false_detectable": fd, "false_detectable_ci95": list(binomial_ci(fd, n)),
            "false_above_edge": fe, "false_above_edge_ci95": list(binomial_ci(fe, n)),
            "not_below_verdicts": fr, "edge_gap_max": float(max(gaps)), "edge_gap_mean": float(np.mean(gaps)),
            "ratio_max": float(max(r["detectability"]["ratio"] for r in sel)),
            "by_case": {c: {"edge_gap_max": float(max(r["detectability"]["edge_gap"] for r in sel if r["case"] == c)),
                            "ratio_max": float(max(r["detectability"]["ratio"] for r in sel if r["case"] == c))}
                        for c in dict.fromkeys(r["case"] for r in sel)}}


def edge_power(rows: list[dict]) -> list[dict]:
    """Share of planted matrices with at least one value above the edge, by estimated-ratio bin."""
    edges = [1.0, 1.25, 1.5, 2.0, np.inf]
    out = []
    for lo, hi in pairwise(edges):
        sel = [r for r in rows if lo < r["detectability"]["ratio"] <= hi and r["signal"] > 0]
        if sel:
            out.append({"ratio_from": lo, "ratio_to": hi if np.isfinite(hi) else None, "n": len(sel),
                        "above_edge": int(sum(r["detectability"]["n_above_edge"] > 0 for r in sel))})
    return out


# ------------------------------------------------------------------ report

def _f(x, fmt=".3f") -> str:
    return "–" if x is None else format(x, fmt)


def write_report(path: Path, d: dict) -> None:
    meta, table = d["meta"], d["table"]
    cases = [c for c in table if not c.endswith(":: crossings")]
    lines = [
        "# Detectability: predicted against measured recovery", "",
        f"Generated by `{meta['command']}` on {meta['machine']} in {meta['runtime_s']:.0f} s ({meta['date']}; "
        f"load average {meta['load']}). Raw numbers: `reports/detectability/curve.json`; figures "
        "`reports/detectability/curve.png`, `reports/detectability/predicted_vs_measured.png`.", "",
        "`modularity.core.detectability.detectability(a, labels)` estimates, on the degree-normalised profile "
        "`D_r^-1/2 A D_c^-1/2` that the co-clustering decomposes, the signal of the true partition "
        "(`theta`), the noise (`sigma`), the rectangular BBP threshold `theta* = sigma (n m)^(1/4)` "
        "(Benaych-Georges and Nadakuditi 2012), the ratio `theta / theta*`, the predicted squared overlaps "
        "of the leading singular vectors with the partition's, and from them two ARIs: **expected** (k-means on "
        "simulated columns placed by the predicted overlaps, mean over replicates of the layer) and "
        "**optimal** (the Bayes assignment of the same simulated columns). **Measured** is the ARI of the "
        f"default co-clustering (`{meta['default']}`) against the planted branches. Planting as in "
        "`benchmarks.plantings.plant_random_rows`: rows dealt into k equal shares, weights from branch b to share b "
        "scaled by 1 + s; see the script's docstring for the cases.", "",
        f"Network seeds {meta['seeds']}; {meta['n_instances']} planted matrices. `ratio` is the estimated "
        "`theta/theta*` (mean over seeds); `pop.` the same for the expected planted matrix (synthetic cases). "
        "`worst` is the lowest measured ARI over seeds; `err` is measured minus expected (mean; the largest "
        "deviation in brackets). Outcomes: recovered / missed / below the limit (`verdict`, alpha = 0.05, "
        f"{N_PERMUTATIONS} label permutations).", ""]
    c = meta["constants"]
    lines += ["## How the verdict is read", "",
              "For a layer with true branches, `verdict(det, ari, p)`: *below the limit* when the ratio is at most 1 "
              "(\"no method\" for three or four equal branches or two branches the smaller holding at least 21 %, "
              "where the spectral and information-theoretic thresholds coincide; \"no spectral method\" otherwise); "
              f"*detectable but not recovered* when the ARI falls more than max({c['MISS_SDS']:g} sd, "
              f"{c['MISS_FLOOR']:g}) below the expected ARI; *detectable and recovered* when it does not and p < "
              f"{meta['alpha']:g}; *below the limit* again when it does not and p >= {meta['alpha']:g} (the expected "
              "agreement is itself at chance level at this size). For a layer without labels: *structure above the "
              f"noise edge* when a non-trivial singular value clears the edge by max({c['EDGE_MARGIN']:g}, "
              f"{c.get('EDGE_SDS', 3):g} sd of the simulated edge), else *no structure above the noise edge*. These "
              "constants were set before the full run, from smoke runs on seeds 0-1; the effective noise level for "
              "unequal variances (threshold and overlaps) was added after a first full run, tried on seeds 0-3 of "
              "the row-scale case only.", ""]
    lines += ["## Summary", ""] + d["summary"] + [""]
    lines += ["## Prediction error by estimated ratio", "",
              "All planted matrices with s > 0 except the heteroscedastic case (its own table below).", "",
              "| ratio | n | measured - expected: mean | mean abs | min | max | measured - optimal: mean | max "
              "| p < 0.05 | recovered / missed / below |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for b in d["error_bins"]:
        o = b["outcomes"]
        lines.append(f"| {b['ratio_from']:g} – {_f(b['ratio_to'], 'g') if b['ratio_to'] else '∞'} | {b['n']} | "
                     f"{b['error_mean']:+.3f} | {b['error_abs_mean']:.3f} | {b['error_min']:+.3f} | "
                     f"{b['error_max']:+.3f} | {b['optimal_error_mean']:+.3f} | {b['optimal_error_max']:+.3f} | "
                     f"{b['significant']} | {o['recovered']} / {o['missed']} / {o['below_limit']} |")
    lines += ["", "## Pure noise (s = 0)", "",
              "| seeds | matrices | ratio > 1 (95% CI) | a value above the edge (95% CI) | verdict not 'below' "
              "| largest ratio | largest edge gap |", "|---|---:|---|---|---:|---:|---:|"]
    for label, nc in d["null"].items():
        lines.append(f"| {label} | {nc['n']} | {nc['false_detectable']} ({nc['false_detectable_ci95'][0]:.3f}–"
                     f"{nc['false_detectable_ci95'][1]:.3f}) | {nc['false_above_edge']} "
                     f"({nc['false_above_edge_ci95'][0]:.3f}–{nc['false_above_edge_ci95'][1]:.3f}) | "
                     f"{nc['not_below_verdicts']} | {nc['ratio_max']:.2f} | {nc['edge_gap_max']:+.4f} |")
    lines += ["", "Largest edge gap on pure noise per case (all seeds): " + "; ".join(
        f"{c}: {v['edge_gap_max']:+.4f}" for c, v in d["null"]["all seeds"]["by_case"].items()) + ".", "",
        "Planted matrices with at least one singular value above the edge (the unlabelled verdict), by estimated "
        "ratio: " + "; ".join(f"{e['ratio_from']:g}–{_f(e['ratio_to'], 'g') if e['ratio_to'] else '∞'}: "
                              f"{e['above_edge']}/{e['n']}" for e in d["edge_power"]) + ".", ""]
    lines += ["## Matrices called 'detectable but not recovered'", "",
              "| case | s | seed | ratio | expected ± sd | optimal | measured |", "|---|---:|---:|---:|---:|---:|---:|"]
    for m in d["missed"]:
        lines.append(f"| {m['case']} | {m['signal']:g} | {m['seed']} | {m['ratio']:.2f} | {m['expected']:.3f} ± "
                     f"{m['sd']:.3f} | {m['optimal']:.3f} | {m['measured']:.3f} |")
    lines += ["", "## Curves per case", ""]
    for case in cases:
        cr = table[case + " :: crossings"]
        lines += [f"### {case}", "",
                  f"Estimated ratio crosses 1 at s = {_f(cr['ratio_1'])}; mean measured ARI reaches 0.05 at "
                  f"s = {_f(cr['measured_0.05'])}, expected ARI at s = {_f(cr['expected_0.05'])}.", "",
                  "| s | ratio (min–max) | pop. | expected ± sd | optimal | measured | worst | err (largest) "
                  "| p < 0.05 | rec / miss / below |", "|---:|---|---:|---:|---:|---:|---:|---|---:|---|"]
        for c in table[case]:
            o = c["outcomes"]
            lines.append(f"| {c['signal']:g} | {c['ratio']:.2f} ({c['ratio_min']:.2f}–{c['ratio_max']:.2f}) | "
                         f"{_f(c['population_ratio'], '.2f')} | {c['expected_ari']:.3f} ± {c['expected_ari_sd']:.3f} | "
                         f"{c['optimal_ari']:.3f} | {c['measured_mean']:.3f} | {c['measured_worst']:.3f} | "
                         f"{c['error_mean']:+.3f} ({c['error_worst']:+.3f}) | {c['significant']}/{c['n']} | "
                         f"{o['recovered']} / {o['missed']} / {o['below_limit']} |")
        lines.append("")
    if d.get("nsfwjs"):
        lines += ["## Real trained blocks (nsfwjs InceptionV3)", "",
                  "Default ARI: mean of 5 k-means seeds; p: median of their label-permutation p-values. "
                  "`ratios` are `theta_i / theta*` for every direction of the partition; `competing`: outliers "
                  "above the edge beyond the partition's own detectable directions (of the 32 values examined); "
                  "`leading overlap`: mean squared overlap of the k - 1 leading non-trivial singular vectors with "
                  "the branches' span (predicted, without competing structure: mean of the first k - 1 "
                  "predicted overlaps).", "",
                  nsfwjs_sentence(d["nsfwjs"]), "",
                  "| block | shape | branches | ratio | ratios | expected | optimal | measured | p | competing "
                  "| leading overlap (predicted) | limit | verdict |",
                  "|---|---|---|---:|---|---:|---:|---:|---:|---:|---|---|---|"]
        for r in d["nsfwjs"]:
            x = r["detectability"]
            pred = float(np.mean(x["predicted_overlaps"][:max(r["k"] - 1, 1)]))
            ratios = ", ".join(f"{t / x['threshold']:.2f}" for t in x["signals"])
            lines.append(f"| {r['block']} | {r['shape'][0]}x{r['shape'][1]} | {r['branches']} | {x['ratio']:.2f} | "
                         f"{ratios} | "
                         f"{x['expected_ari']:.3f} | {x['optimal_ari']:.3f} | {r['ari']:.3f} | {r['p_value']:.2g} | "
                         f"{x['n_competing']} | {_f(x['leading_overlap'], '.2f')} ({pred:.2f}) | {x['limit']} | "
                         f"{r['verdict']} |")
        lines.append("")
    lines += ["## Cost", "", d["cost"], ""]
    path.write_text("\n".join(lines))


def nsfwjs_sentence(rows: list[dict]) -> str:
    """What the real blocks say, from their numbers."""
    ratio = [r["detectability"]["ratio"] for r in rows]
    obs = [r["detectability"]["leading_overlap"] for r in rows]
    pred = [float(np.mean(r["detectability"]["predicted_overlaps"][:max(r["k"] - 1, 1)])) for r in rows]
    verdicts = {}
    for r in rows:
        verdicts[r["verdict"]] = verdicts.get(r["verdict"], 0) + 1
    head = ("Verdicts: " + "; ".join(f"{v}: {n} of {len(rows)}" for v, n in verdicts.items())
            + f". The branches' strongest direction is {min(ratio):.2f} to {max(ratio):.2f} times the limit")
    below = sum(o is not None and o < p for o, p in zip(obs, pred))
    if below == len(rows):
        return (head + f", yet the leading k - 1 singular vectors share only {min(obs):.2f} to {max(obs):.2f} of "
                f"their energy with the branches' span, against {min(pred):.2f} to {max(pred):.2f} predicted without "
                "other structure (lower in every block): other directions (counted in `competing`), and "
                "within-branch structure that is not the model's independent noise, come first. The expected ARI "
                "assumes the branches are the leading structure, so on these blocks it says what the weights hold, "
                "not what a spectral co-clustering of them will find.")
    return (head + f"; the leading k - 1 singular vectors share {_f(min(obs), '.2f')} to {_f(max(obs), '.2f')} of "
            f"their energy with the branches' span, against {min(pred):.2f} to {max(pred):.2f} predicted without "
            f"other structure (lower in {below} of {len(rows)} blocks).")


def figures(d: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = d["table"]
    cases = [c for c in table if not c.endswith(":: crossings")]
    cols = 4
    nrows = int(np.ceil(len(cases) / cols))
    fig, axes = plt.subplots(nrows, cols, figsize=(4.0 * cols, 3.2 * nrows), squeeze=False)
    for ax, case in zip(axes.ravel(), cases):
        t = table[case]
        s = [c["signal"] for c in t]
        exp = np.array([c["expected_ari"] for c in t])
        sd = np.array([c["expected_ari_sd"] for c in t])
        ax.fill_between(s, exp - 2 * sd, exp + 2 * sd, color="C0", alpha=0.15, lw=0)
        ax.plot(s, exp, color="C0", label="expected (k-means, ±2 sd)")
        ax.plot(s, [c["optimal_ari"] for c in t], color="C0", ls=":", label="optimal (Bayes)")
        ax.plot(s, [c["measured_mean"] for c in t], "o-", color="C3", ms=3, lw=1, label="measured mean")
        ax.plot(s, [c["measured_worst"] for c in t], "x", color="C3", ms=4, label="measured worst")
        cross = table[case + " :: crossings"]["ratio_1"]
        if cross is not None:
            ax.axvline(cross, color="0.4", ls="--", lw=1, label="ratio = 1")
        ax.set_title(case, fontsize=8)
        ax.set(ylim=(-0.05, 1.05), xlabel="planted signal s", ylabel="ARI")
        ax.tick_params(labelsize=7)
    for ax in axes.ravel()[len(cases):]:
        ax.axis("off")
    axes[0, 0].legend(fontsize=6, loc="lower right")
    fig.tight_layout()
    fig.savefig(out / "curve.png", dpi=110)
    plt.close(fig)

    fig, axes = plt.subplots(1, 2, figsize=(9, 4))
    rows = [r for r in d["rows"] if r["signal"] > 0]
    for i, case in enumerate(cases):
        sel = [r for r in rows if r["case"] == case]
        for ax, key in zip(axes, ("expected_ari", "ratio")):
            ax.scatter([r["detectability"][key] for r in sel], [r["ari"] for r in sel], s=6, alpha=0.6,
                       color=f"C{i % 10}", label=case if ax is axes[0] else None)
    axes[0].plot([0, 1], [0, 1], color="0.3", ls="--", lw=1)
    axes[0].set(xlabel="expected ARI (predicted)", ylabel="measured ARI (default)", title="predicted vs measured")
    axes[1].axvline(1.0, color="0.3", ls="--", lw=1)
    axes[1].set(xlabel="estimated ratio theta / theta*", ylabel="measured ARI (default)", xlim=(0, 4),
                title="measured ARI against the ratio")
    axes[0].legend(fontsize=5, loc="upper left")
    fig.tight_layout()
    fig.savefig(out / "predicted_vs_measured.png", dpi=110)
    plt.close(fig)


def near_threshold(rows: list[dict]) -> list[dict]:
    """Measured ARI around the estimated threshold (planted, equal-variance cases): quantiles and significance."""
    out = []
    for lo, hi in ((0.8, 0.9), (0.9, 1.0), (1.0, 1.1), (1.1, 1.25)):
        sel = [r for r in rows if lo <= r["detectability"]["ratio"] < hi and r["signal"] > 0
               and "row scales" not in r["case"]]
        if sel:
            a = np.array([r["ari"] for r in sel])
            out.append({"ratio_from": lo, "ratio_to": hi, "n": len(sel), "median": float(np.median(a)),
                        "q90": float(np.quantile(a, 0.9)), "max": float(a.max()),
                        "significant": int(sum(r["p_value"] < ALPHA for r in sel))})
    return out


def population_check(rows: list[dict]) -> dict:
    """Estimated against population ratio on the synthetic cases (population ratio above 0.5)."""
    out = {}
    for hetero in (False, True):
        sel = [r for r in rows if r.get("population_ratio") and r["population_ratio"] > 0.5
               and ("row scales" in r["case"]) == hetero]
        rel = np.array([r["detectability"]["ratio"] / r["population_ratio"] - 1 for r in sel])
        out["unequal row scales" if hetero else "equal variances"] = {
            "n": len(sel), "mean": float(rel.mean()), "sd": float(rel.std(ddof=1)),
            "min": float(rel.min()), "max": float(rel.max())}
    return out


def missed(rows: list[dict]) -> list[dict]:
    """Every planted matrix called "detectable but not recovered"."""
    return [{"case": r["case"], "signal": r["signal"], "seed": r["net_seed"], "ratio": r["detectability"]["ratio"],
             "expected": r["detectability"]["expected_ari"], "sd": r["detectability"]["expected_ari_sd"],
             "optimal": r["detectability"]["optimal_ari"], "measured": r["ari"]}
            for r in rows if r["outcome"] == "missed"]


OVER_OPTIMAL = 0.02  # "exceeds the optimal ARI" counts a matrix only beyond this (the simulation's own noise)


def _below_sentence(nt: list[dict]) -> str:
    """What the bins below ratio 1 say: the verdict there is 'below the limit' by definition."""
    below = [b for b in nt if b["ratio_to"] <= 1.0]
    n, sig = sum(b["n"] for b in below), sum(b["significant"] for b in below)
    if not n:
        return ""
    return (f"Below 1 the verdict is 'below the limit' by its definition, yet the agreement is significant in {sig} "
            f"of {n} matrices at ratio {below[0]['ratio_from']:g}–1" + (": weak, not absent." if sig else "."))


def _optimal_line(rows: list[dict], bins: list[dict]) -> str:
    """Where the measured ARI exceeds the optimal (Bayes) ARI of the simulated spectral embedding."""
    sel = [r for r in rows if r["signal"] > 0 and "row scales" not in r["case"] and r["detectability"]["ratio"] > 1]
    near = [r for r in sel if r["detectability"]["ratio"] < 1.25]
    far = [r for r in sel if r["detectability"]["ratio"] >= 1.25]

    def over(group: list[dict]) -> tuple[int, float]:
        x = [r["ari"] - r["detectability"]["optimal_ari"] for r in group]
        return sum(v > OVER_OPTIMAL for v in x), max(x, default=0.0)

    (n_near, m_near), (n_far, m_far) = over(near), over(far)
    top = max((b for b in bins if b["ratio_from"] >= 1.25), key=lambda b: b["optimal_error_max"], default=None)
    line = ("- **Optimal ARI** (the Bayes assignment of the simulated columns: the best that can be done from the "
            f"leading singular vectors at the predicted overlaps): the default exceeds it by more than {OVER_OPTIMAL} "
            f"on {n_near} of {len(near)} equal-variance matrices at ratio 1–1.25 (largest {m_near:+.3f}; the "
            "asymptotic overlaps are 0 at the threshold, the finite layer's are not) and on "
            f"{n_far} of {len(far)} above 1.25 (largest {m_far:+.3f}")
    if top is not None and n_far:
        to = _f(top["ratio_to"], "g") if top["ratio_to"] else "∞"
        line += (f", at ratio {top['ratio_from']:g}–{to}). Where it does, the bound is one for a method that "
                 "assigns units from the leading singular vectors alone, which the default, refining on the whole "
                 "profile, is not.")
    else:
        line += "): above the threshold's neighbourhood it bounds the measured ARI."
    return line


def summary_lines(d: dict) -> list[str]:
    """The plain-language findings, every number from the run."""
    bins, table, rows = d["error_bins"], d["table"], d["rows"]
    above = [b for b in bins if b["ratio_from"] >= 1.0]
    cases = [c for c in table if not c.endswith(":: crossings")]
    lines = []
    cr = [(c, table[c + " :: crossings"]) for c in cases]
    gaps = [x["measured_0.05"] - x["ratio_1"] for _, x in cr if x["measured_0.05"] and x["ratio_1"]]
    grid = sorted(set(d["meta"]["signals"]))
    step = min(b - a for a, b in pairwise(grid))  # the finest step of the signal grid
    head = ("**The threshold is where recovery starts** (within one step of the signal grid, "
            f"{step:g} in s, in every case)." if max(abs(g) for g in gaps) <= step + 1e-12 else
            f"**Threshold and onset of recovery differ by more than one step of the signal grid ({step:g} in s) in "
            f"{sum(abs(g) > step + 1e-12 for g in gaps)} of {len(gaps)} cases.**")
    lines.append(f"- {head} Planted signal at which the estimated ratio crosses 1, "
                 "and at which the default's mean ARI reaches 0.05: " + "; ".join(
                     f"{c.split(' (')[0]}: {_f(x['ratio_1'], '.3f')} / {_f(x['measured_0.05'], '.3f')}" for c, x in cr)
                 + f" (differences {min(gaps):+.3f} to {max(gaps):+.3f} in s).")
    pc = d["population"]
    lines.append("- **The ratio estimate against the truth** (synthetic cases, population ratio above 0.5): "
                 + "; ".join(f"{k}: {v['mean']:+.1%} on average (sd {v['sd']:.1%}, range {v['min']:+.1%} to "
                             f"{v['max']:+.1%}, n = {v['n']})" for k, v in pc.items()) + ".")
    nc = d["null"]["all seeds"]
    lines.append(f"- **Pure noise** (s = 0): ratio > 1 in {nc['false_detectable']} of {nc['n']} matrices (largest "
                 f"{nc['ratio_max']:.2f}); a value above the noise edge in {nc['false_above_edge']} of {nc['n']} "
                 f"(largest gap {nc['edge_gap_max']:+.4f}; the margin is at least {det_mod.EDGE_MARGIN}).")
    lines.append("- **Measured minus expected ARI above the threshold** (equal-variance cases; positive where the "
                 "default does better than the simulated spectral k-means): " + "; ".join(
        f"ratio {b['ratio_from']:g}–{_f(b['ratio_to'], 'g') if b['ratio_to'] else '∞'}: mean {b['error_mean']:+.3f}, "
        f"mean absolute {b['error_abs_mean']:.3f}, range {b['error_min']:+.3f} to {b['error_max']:+.3f} (n = {b['n']})"
        for b in above) + ".")
    nt = d["near_threshold"]
    lines.append("- **Near the threshold the transition is blurred**, "
                 "as finite layers blur it: measured ARI " + "; ".join(
        f"at ratio {b['ratio_from']:g}–{b['ratio_to']:g} median {b['median']:.3f}, 90th percentile {b['q90']:.3f}, "
        f"largest {b['max']:.3f}, significant in {b['significant']} of {b['n']}" for b in nt)
        + ". " + _below_sentence(nt))
    lines.append(_optimal_line(rows, bins))
    ms = d["missed"]
    hom = [m for m in ms if "row scales" not in m["case"]]
    n_above = sum(1 for r in rows if r["detectability"]["ratio"] > 1 and "row scales" not in r["case"])
    by_case: dict = {}
    for m in hom:
        by_case[m["case"].split(" (")[0]] = by_case.get(m["case"].split(" (")[0], 0) + 1
    lines.append(f"- **'Detectable but not recovered' on plantings**: {len(hom)} of {n_above} equal-variance matrices "
                 "above the threshold (" + ", ".join(f"{c}: {n}" for c, n in by_case.items()) + "): matrices on which "
                 f"the default fell more than max({d['meta']['constants']['MISS_SDS']:g} sd, "
                 f"{d['meta']['constants']['MISS_FLOOR']:g}) below the simulated spectral k-means (listed below).")
    het = [x for c in cases if "row scales" in c for x in table[c] if x["ratio"] > 1]
    het_missed = [m for m in ms if "row scales" in m["case"]]
    n_het = sum(1 for r in rows if r["detectability"]["ratio"] > 1 and "row scales" in r["case"])
    if het:
        lines.append("- **Unequal row scales** (log-normal, sd 0.5; outside the equal-variance model): measured minus "
                     "expected ARI above the threshold "
                     + ", ".join(f"{x['error_mean']:+.3f} at s = {x['signal']:g}" for x in het)
                     + f"; {len(het_missed)} of {n_het} such matrices above the threshold are called 'not recovered'. "
                     "(Their population ratio above uses the mean noise variance; the estimate uses the effective "
                     "level of the simulated edge.)")
    return lines


# ------------------------------------------------------------------ main

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=10, help="network seeds per case (0..N-1)")
    parser.add_argument("--signals", default=",".join(f"{s:g}" for s in SIGNALS))
    parser.add_argument("--nsfwjs",
                        default=str(Path.home() / ".cache" / "modularity" / "inception_v3_nsfwjs.safetensors"),
                        help="nsfwjs safetensors file (skipped when absent)")
    parser.add_argument("--cache", default=str(Path.home() / ".cache" / "modularity" / "detectability_curve"))
    parser.add_argument("--out", default=str(ROOT / "reports" / "detectability"))
    parser.add_argument("--report", default=str(ROOT / "reports" / "detectability.md"))
    parser.add_argument("--quick", action="store_true", help="2 seeds, 4 signals, no googlenet (a smoke run)")
    parser.add_argument("--render-only", action="store_true",
                        help="rewrite the report and figures from an existing curve.json without running anything")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    log = (lambda *a: None) if args.quiet else (lambda *a: print(*a, file=sys.stderr, flush=True))
    out = Path(args.out)
    if args.render_only:
        d = json.loads((out / "curve.json").read_text())
        write_outputs(d, out, Path(args.report))
        return 0
    t0 = time.perf_counter()
    signals = [float(s) for s in args.signals.split(",")]
    seeds = list(range(args.seeds))
    if args.quick:
        seeds, signals = [0, 1], [0.0, 0.1, 0.2, 0.4]
    instances = []
    for name in SYNTHETIC:
        instances += synthetic_instances(name, seeds, signals)
    if not args.quick:
        log("googlenet profiles")
        import torch

        torch.set_grad_enabled(False)
        instances += googlenet_instances(seeds, signals, Path(args.cache).expanduser())
    log(f"{len(instances)} matrices")
    rows = []
    for i, d in enumerate(instances):
        rows.append(measure(d))
        if i % 50 == 0:
            log(f"{i}/{len(instances)} {rows[-1]['case']} s={rows[-1]['signal']:g}")
    nsfw = []
    weights = Path(args.nsfwjs).expanduser()
    if weights.exists() and not args.quick:
        log("nsfwjs blocks")
        for d in cached(Path(args.cache).expanduser() / "nsfwjs.npz", lambda: nsfwjs_instances(weights)):
            r = measure(d | {"case": f"nsfwjs {d['block']}", "net_seed": 0}, method_seeds=5)
            r["branches"] = "/".join(map(str, np.bincount(d["truth"])))
            nsfw.append(r)
    runtime = time.perf_counter() - t0
    t_det = np.array([r["detectability_s"] for r in rows + nsfw])
    cpu = cpu_name()
    half = len(seeds) // 2
    d = {"meta": {"command": " ".join([".venv/bin/python", "scripts/detectability_curve.py"]
                                      + [shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])]),
                  "machine": f"{cpu}, {os.cpu_count()} cores (shared), Python {platform.python_version()}, "
                             f"numpy {np.__version__}",
                  "load": " ".join(f"{x:.1f}" for x in os.getloadavg()), "runtime_s": runtime,
                  "date": time.strftime("%Y-%m-%d"), "seeds": f"{seeds[0]}-{seeds[-1]}", "signals": signals,
                  "default": DEFAULT_METHOD, "n_instances": len(rows), "alpha": ALPHA,
                  "constants": {k: getattr(det_mod, k) for k in ("MISS_SDS", "MISS_FLOOR", "EDGE_MARGIN",
                                                                  "EDGE_SDS", "N_EDGE_VALUES", "BALANCE_TOLERANCE")}},
         "rows": rows, "nsfwjs": nsfw}
    d["table"] = curve_table(rows)
    d["error_bins"] = error_bins(rows)
    d["edge_power"] = edge_power(rows)
    d["null"] = {f"{seeds[0]}-{seeds[half - 1]}": null_checks(rows, seeds[:half]),
                 f"{seeds[half]}-{seeds[-1]}": null_checks(rows, seeds[half:]),
                 "all seeds": null_checks(rows, seeds)}
    d["near_threshold"] = near_threshold(rows)
    d["population"] = population_check(rows)
    d["missed"] = missed(rows)
    d["cost"] = (f"`detectability` ({1 + det_mod.N_EDGE_VALUES} singular triplets of the profile, "
                 f"{det_mod._EDGE_DRAWS} top singular values of Gaussian draws for the edge, the k-means and Bayes "
                 "simulations): "
                 "median "
                 f"{np.median(t_det) * 1000:.0f} ms, 95th percentile {np.quantile(t_det, 0.95) * 1000:.0f} ms, largest "
                 f"{t_det.max() * 1000:.0f} ms per matrix (load average {d['meta']['load']} on the shared machine).")
    write_outputs(d, out, Path(args.report))
    log(f"wrote {args.report} and {out} in {runtime:.0f} s")
    return 0


_ROW_KEYS = ("case", "signal", "net_seed", "k", "population_ratio", "ari", "p_value", "outcome", "detectability_s")
_DET_KEYS = ("ratio", "signal", "threshold", "noise", "edge_gap", "edge_margin", "n_above_edge", "expected_ari",
             "expected_ari_sd", "optimal_ari", "predicted_overlap", "leading_overlap", "n_competing", "limit")


def _round(x):
    return float(f"{x:.4g}") if isinstance(x, float) else x


def _slim(r: dict) -> dict:
    """A planted row as kept in curve.json: what the tables and figures read, 4 significant digits."""
    return {k: _round(r.get(k)) for k in _ROW_KEYS} | {
        "detectability": {k: _round(r["detectability"][k]) for k in _DET_KEYS}}


def _columns(rows: list[dict]) -> dict:
    """Planted rows as columns (``detectability.`` fields prefixed ``det_``): a third of the size of a row list."""
    rows = [_slim(r) for r in rows]
    out = {k: [r[k] for r in rows] for k in _ROW_KEYS}
    return out | {f"det_{k}": [r["detectability"][k] for r in rows] for k in _DET_KEYS}


def _rows(columns: dict) -> list[dict]:
    n = len(columns["case"])
    return [{k: columns[k][i] for k in _ROW_KEYS} | {"detectability": {k: columns[f"det_{k}"][i] for k in _DET_KEYS}}
            for i in range(n)]


def write_outputs(d: dict, out: Path, report: Path) -> None:
    """curve.json (planted rows slimmed, as columns; real blocks in full), the figures and the report."""
    d["rows"] = _rows(d.pop("row_columns")) if "row_columns" in d else [_slim(r) for r in d["rows"]]
    d["summary"] = summary_lines(d)
    out.mkdir(parents=True, exist_ok=True)
    stored = {k: v for k, v in d.items() if k != "rows"} | {"row_columns": _columns(d["rows"])}
    (out / "curve.json").write_text(json.dumps(stored, indent=None, separators=(",", ":")))
    figures(d, out)
    write_report(report, d)


if __name__ == "__main__":
    raise SystemExit(main())
