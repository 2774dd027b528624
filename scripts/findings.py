"""Findings on real weights: EfficientNet-Lite0 (ImageNet) against its random-init control.

For each model it runs

1. ``modularity.analyze`` on every producer layer (co-clusters, n-cut against
   within-layer shuffles of the consumers, branch recovery where branches exist);
2. whole-network clusterability (Filan et al.) with k = 12 against shuffled networks;
3. the first-layer colour / frequency analysis (which singular vectors of the
   first-to-second-layer magnitudes track colour and frequency).

Models: ``efficientnet_lite0`` with its packaged ImageNet weights, the same
architecture at random init (``--weights none``), and ``inception_v3_nsfwjs``
when its converted weights are on this machine (``scripts/fetch_inception_v3.py``).

Writes ``reports/findings/findings.json``, figures in ``reports/findings/`` and
``reports/README.md``.

Usage::

    .venv/bin/python scripts/findings.py [--permutations 9] [--shuffles 20] [--first-layer-permutations 9999]
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import shlex
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from modularity import analyze, load_model
from modularity.core.defaults import DEFAULT_METHOD
from modularity.core.graph import trace
from modularity.errors import ModularityError
from modularity.studies.clusterability import clusterability
from modularity.studies.units import first_layer_analysis
from modularity.zoo.registry import get_source


def _git_commit() -> str:
    """Short commit of the code that ran, ``+dirty`` when the package or the scripts have changes not committed."""
    root = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--", "modularity", "scripts"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def _run_model(name: str, weights: str, args: argparse.Namespace) -> dict:
    t0 = time.perf_counter()
    loaded = load_model(name, weights)
    graph = trace(loaded.module, loaded.input_size)
    res = analyze(loaded, graph=graph, n_permutations=args.permutations, seed=args.seed, progress=args.progress)
    t_an = time.perf_counter() - t0
    clus = clusterability(graph, k=args.k, n_shuffles=args.shuffles, seed=args.seed, progress=args.progress,
                         name=name)
    t_cl = time.perf_counter() - t0 - t_an
    first = first_layer_analysis(graph, n_permutations=args.first_layer_permutations, seed=args.seed)
    layers = []
    for layer in res.layers:
        nc = layer.structure.ncut
        entry = {"name": layer.name, "n_units": layer.n_units, "k": layer.k, "k_source": layer.k_source,
                 "ncut": nc.observed, "null_mean": nc.null_mean, "z": nc.z,
                 "p": nc.p_value, "p_bh": nc.p_value_bh, "n_dead": layer.n_dead,
                 "cluster_sizes": np.bincount(np.asarray(layer.clusters)[np.asarray(layer.clusters) >= 0]).tolist()}
        if layer.recovery is not None:
            r = layer.recovery
            entry["recovery"] = {"ari": r.ari, "p": r.p_value, "p_bh": r.p_value_bh, "null_ari_mean": r.null_ari_mean,
                                 "controls": {k: asdict(c) for k, c in r.controls.items()},
                                 "n_branches": len(set(layer.branches))}
        layers.append(entry)
    col = np.array(first.colour)
    freq = np.array(first.frequency)
    return {
        "model": name, "weights": loaded.weights, "provenance": loaded.provenance,
        "weights_sha256": loaded.weights_sha256,
        "analyze": {"n_layers": len(layers), "permutations": args.permutations, "runtime_s": t_an, "layers": layers},
        "clusterability": {**{k: v for k, v in clus.to_dict().items() if k not in ("labels",)}, "runtime_s": t_cl},
        "first_layer": {**first.to_dict(), "colour_mean": float(np.nanmean(col)),
                        "n_grey_like": int(np.sum(col < 0.3)), "n_colour_like": int(np.sum(col > 0.9)),
                        "frequency_median": float(np.median(freq))},
        "runtime_s": time.perf_counter() - t0,
    }


def _fmt(x, spec=".3g") -> str:
    return "n/a" if x is None else format(x, spec)


def _model_section(m: dict, alpha: float = 0.05) -> list[str]:
    a, c, f = m["analyze"], m["clusterability"], m["first_layer"]
    n_sig = sum(1 for layer in a["layers"] if layer["p_bh"] is not None and layer["p_bh"] <= alpha)
    n_raw = sum(1 for layer in a["layers"] if layer["p"] is not None and layer["p"] <= alpha)
    zs = [layer["z"] for layer in a["layers"] if layer["z"] is not None]
    lines = [f"### {m['model']} (weights: {m['weights']})", "",
             f"Provenance: {m['provenance']}" + (f"; sha256 `{m['weights_sha256']}`" if m["weights_sha256"] else ""),
             "",
             f"- **Per-layer co-clustering** ({a['n_layers']} producer layers, {a['permutations']} within-layer "
             f"shuffles of the consumers each, k by eigengap): {n_raw} layers with n-cut p <= {alpha} "
             f"({n_sig} after Benjamini-Hochberg); median z of the n-cut against its shuffles "
             f"{_fmt(float(np.median(zs)) if zs else None, '.2f')}. With {a['permutations']} shuffles the "
             f"smallest possible p is {1 / (a['permutations'] + 1):.2g}.",
             f"- **Whole-network clusterability** (k = {c['k']}, {c['n_nodes']} units, {c['n_shuffles']} shuffled "
             f"networks): n-cut {c['ncut']:.4f} vs shuffled {_fmt(c['null_mean'], '.4f')} +- "
             f"{_fmt(c['null_sd'], '.4f')}, z = {_fmt(c['z'], '.2f')}, p = {_fmt(c['p_value'])}. Cluster sizes: "
             f"{sorted((sum(v[i] for v in c['cluster_sizes'].values()) for i in range(c['k'])), reverse=True)}.",
             f"- **First layer** (`{f['layer']}`, {len(f['colour'])} filters): mean colour score "
             f"{f['colour_mean']:.3f} (2/3 for random filters), {f['n_grey_like']} grey-like (< 0.3), "
             f"{f['n_colour_like']} colour-like (> 0.9); median dominant frequency {f['frequency_median']:.3f} "
             "cycles/pixel.",
             ]
    for prop in ("colour", "frequency"):
        b = f["best"][prop]
        lines.append(f"  - best singular vector for {prop}: {b['variant']} #{b['vector'] + 1}, Spearman "
                     f"{b['spearman']:+.3f}, family-wise permutation p = {_fmt(b['p_max'])} "
                     f"({f['n_permutations']} permutations of unit labels; "
                     f"{len(f['correlations']) // 2} vectors tested).")
    top = [x for x in f["correlations"] if x["vector"] < 2]

    def rho(v: str, j: int, prop: str) -> float:
        return next(x["spearman"] for x in top if x["variant"] == v and x["vector"] == j and x["prop"] == prop)

    lines.append("  - first two vectors, Spearman with colour / frequency: " + "; ".join(
        f"{v}: " + ", ".join(f"#{j + 1} {rho(v, j, 'colour'):+.2f} / {rho(v, j, 'frequency'):+.2f}" for j in range(2))
        for v in ("raw", "centred", "normalised")) + ".")
    branched = [layer for layer in a["layers"] if "recovery" in layer]
    if branched:
        n_rec = sum(1 for layer in branched
                    if layer["recovery"]["p_bh"] is not None and layer["recovery"]["p_bh"] <= alpha)
        lines.append(f"- **Branch recovery**: {len(branched)} layers with true branches; {n_rec} recovered beyond "
                     f"shuffles (BH p <= {alpha}); median ARI "
                     f"{np.median([layer['recovery']['ari'] for layer in branched]):.3f}.")
    lines.append("")
    return lines


def _figures(models: list[dict], out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    fig, ax = plt.subplots(figsize=(8, 3.5))
    for m in models:
        z = [np.nan if layer["z"] is None else layer["z"] for layer in m["analyze"]["layers"]]
        ax.plot(z, marker="o", ms=3, lw=1, label=f"{m['model']} ({m['weights']})")
    ax.axhline(0, color="0.5", lw=1)
    ax.set(xlabel="producer layer (execution order)", ylabel="n-cut z vs shuffles",
           title="per-layer co-clustering n-cut")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "layer_ncut_z.png", dpi=120)
    plt.close(fig)
    written.append("layer_ncut_z.png")

    fig, axes = plt.subplots(1, len(models), figsize=(4 * len(models), 3.2), squeeze=False)
    for ax, m in zip(axes[0], models):
        c = m["clusterability"]
        ax.hist(c["null_ncuts"], bins=10, color="0.7", label="shuffled")
        ax.axvline(c["ncut"], color="C3", lw=2, label="observed")
        ax.set_title(f"{m['model']} ({m['weights']})", fontsize=9)
        ax.set_xlabel(f"whole-network n-cut, k = {c['k']}")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "clusterability.png", dpi=120)
    plt.close(fig)
    written.append("clusterability.png")

    fig, axes = plt.subplots(1, len(models), figsize=(4 * len(models), 3.2), squeeze=False)
    for ax, m in zip(axes[0], models):
        f = m["first_layer"]
        v = np.array(f["vectors"]["normalised"])
        sc = ax.scatter(f["colour"], f["frequency"], c=v[:, 0] if v.size else None, cmap="coolwarm", s=18)
        ax.set(xlabel="colour score", ylabel="dominant frequency (cycles/px)", title=f"{m['model']} ({m['weights']})")
        fig.colorbar(sc, ax=ax, label="normalised SV 1")
    fig.tight_layout()
    fig.savefig(out / "first_layer.png", dpi=120)
    plt.close(fig)
    written.append("first_layer.png")
    return written


def _best_vec(first: dict, variant: str, prop: str) -> int:
    """Index of the vector of ``variant`` with the largest |Spearman| with ``prop``."""
    cand = [c for c in first["correlations"] if c["variant"] == variant and c["prop"] == prop]
    return max(cand, key=lambda c: abs(c["spearman"]))["vector"]


# The nsfwjs weights' provenance (modularity.zoo): Keras layers up to mixed5 (torchvision Mixed_6c) are frozen
# ImageNet weights, the later blocks were fine-tuned.
NSFWJS_FROZEN = ("Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c")


def _read_csv(path: Path) -> list[dict]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _num(x: str) -> float | None:
    return float(x) if x not in ("", "None", "nan") else None


def _nsfwjs_paragraph(reports: Path, alpha: float = 0.05) -> str:
    """What the example folder ``reports/inception_v3_nsfwjs/`` says, from its tables (the folder's own run)."""
    folder = reports / "inception_v3_nsfwjs"
    pointer = ("Branch recovery in the one real trained branched network reachable offline (InceptionV3 from "
               "nsfwjs, its eleven Inception blocks")
    link = "): `reports/inception_v3_nsfwjs.md`"
    if not (folder / "layers.csv").exists() or not (folder / "summary.json").exists():
        return pointer + link + "."
    settings = json.loads((folder / "summary.json").read_text(encoding="utf-8"))["settings"]
    rows = [r for r in _read_csv(folder / "layers.csv") if _num(r["ari"]) is not None]
    control = (_read_csv(folder / "control_layers.csv") if (folder / "control_layers.csv").exists() else [])
    ari = [_num(r["ari"]) for r in rows]
    p_bh = [_num(r["p_bh"]) for r in rows]
    n_sig = sum(p is not None and p <= alpha for p in p_bh)
    verdicts: dict = {}
    for r in rows:
        verdicts[r["verdict"]] = verdicts.get(r["verdict"], 0) + 1
    names = {"missed": "detectable but not recovered (below what their signal predicts)",
             "recovered": "detectable and recovered", "below_limit": "below the detectability limit"}
    clus = [r for r in rows if (_num(r["ncut_p_bh"]) or 1) <= alpha]
    eff = [100 * _num(r["ncut_effect"]) for r in clus]
    frozen = [r for r in rows if r["name"] in NSFWJS_FROZEN]
    tuned = [r for r in rows if r["name"] not in NSFWJS_FROZEN]
    norms = [_num(r["ari_column_norms_only"]) for r in rows]
    text = (pointer + f"; co-clustering `{settings['method']}`, recovery p from "
            f"{settings['n_label_permutations']} label permutations, up to {settings['n_permutations']} n-cut draws"
            + (", and the same architecture at random initialisation beside it" if control else "")
            + "; numbers from the example folder `inception_v3_nsfwjs/`" + link + ". "
            f"The co-clusters agree with the branches above chance in {n_sig} of {len(rows)} blocks (ARI "
            f"{min(ari):.3f} to {max(ari):.3f}, Benjamini-Hochberg p at most {max(p_bh):.2g}); the detectability "
            "verdict is " + "; ".join(f"{names.get(v, v)} in {n} of {len(rows)}" for v, n in verdicts.items())
            + f". {len(clus)} of {len(rows)} blocks are more clusterable than their null (BH p <= {alpha:g})"
            + (f", with effects of {min(eff):.1f}% to {max(eff):.1f}% of the null n-cut" if eff else "")
            + f": {sum(r in clus for r in frozen)} of the {len(frozen)} frozen ImageNet blocks "
            f"({frozen[0]['name']} to {frozen[-1]['name']}) and {sum(r in clus for r in tuned)} of the {len(tuned)} "
            "fine-tuned ones.")
    if control:
        c_ari = [_num(r["ari"]) for r in control if _num(r["ari"]) is not None]
        c_eff = [100 * _num(r["ncut_effect"]) for r in control if _num(r["ncut_effect"]) is not None]
        c_rec = sum((_num(r["p_bh"]) or 1) <= alpha for r in control)
        c_clus = sum((_num(r["ncut_p_bh"]) or 1) <= alpha for r in control)
        text += (f" At random initialisation {c_rec} of {len(control)} blocks agree with their branches and "
                 f"{c_clus} are more clusterable than their null (ARI {min(c_ari):.3f} to {max(c_ari):.3f}, n-cut "
                 f"effects {min(c_eff):.1f}% to {max(c_eff):.1f}%).")
    above = sum(n is not None and n > a for n, a in zip(norms, ari))
    text += (" Scale carries part of it: clustering units by their outgoing weight norm alone reaches ARI "
             f"{min(norms):.3f} to {max(norms):.3f}, above the co-clustering's in {above} of {len(rows)} blocks.")
    return text


def _scale_null_sentence(reports: Path, alpha: float = 0.05) -> str:
    """What ``reports/scale_null.json`` found under the degree null, with the co-clustering it records."""
    path = reports / "scale_null.json"
    if not path.exists():
        return "`reports/scale_null.md` (`python scripts/scale_null.py`) reports it."
    d = json.loads(path.read_text(encoding="utf-8"))
    rows = d["rows"]
    deg, shuf = rows.get("trained / degree"), rows.get("trained / shuffle")
    method = (f"co-clustering `{d['method']}`" if d.get("method") else
              "run before its JSON recorded the co-clustering")
    text = (f"`reports/scale_null.md` (`{d['command']}`; {method}) finds {deg['significant']} of {deg['layers']} "
            f"trained layers more clusterable than the degree null (BH p < {alpha:g})")
    if shuf:
        text += f", against {shuf['significant']} of {shuf['layers']} under the shuffle null in the same run"
    return text + "."


def _k_phrase(m: dict) -> str:
    """Where each layer's k came from, and the commonest k."""
    ks = [layer["k"] for layer in m["analyze"]["layers"] if layer["k"] is not None]
    sources = sorted({layer["k_source"] for layer in m["analyze"]["layers"]})
    mode = max(set(ks), key=ks.count)
    return f"{' / '.join(sources)} (k = {mode} in {ks.count(mode)} of {len(ks)} layers)"


def _first_vector_phrase(first: dict, weak: float = 0.3) -> str:
    """Which variants' first singular vector is nearly uncorrelated with colour and frequency."""
    def rho(v: str, prop: str) -> float:
        return next(x["spearman"] for x in first["correlations"]
                    if x["variant"] == v and x["vector"] == 0 and x["prop"] == prop)

    variants = ("raw", "centred", "normalised")
    flat = [v for v in variants if max(abs(rho(v, "colour")), abs(rho(v, "frequency"))) < weak]
    other = [v for v in variants if v not in flat]
    parts = []
    if flat:
        names = " and ".join([", ".join(flat[:-1]), flat[-1]] if len(flat) > 1 else flat)
        parts.append(f"The first vector of the {names} variant{'s' if len(flat) > 1 else ''} is nearly "
                     f"uncorrelated with both (|Spearman| below {weak:g}), as the leading vector of a non-negative "
                     "profile tracks overall magnitude")
    parts += [f"{'the' if parts else 'The'} {v} variant's first vector has Spearman {rho(v, 'colour'):+.2f} with "
              f"colour and {rho(v, 'frequency'):+.2f} with frequency" for v in other]
    return "; ".join(parts) + "."


def _readme(data: dict, reports: Path = Path("reports")) -> str:
    models = data["models"]
    trained = next((m for m in models if m["model"] == "efficientnet_lite0" and m["weights"] != "none"), None)
    control = next((m for m in models if m["model"] == "efficientnet_lite0" and m["weights"] == "none"), None)
    lines = ["# Findings on real weights", "",
             "Produced "
             + (f"on {data['date']} (commit {data['commit']}) " if data.get("date") else "")
             + f"by `{data['command']}` in {data['runtime_s'] / 60:.1f} min on {data['machine']} (seed {data['seed']}"
             + (f"; co-clustering `{data['method']}`, the package default, `reports/methods.md`" if data.get("method")
                else "") + "). Numbers: `reports/findings/findings.json`; figures: `reports/findings/`. "
             "Calibration of every p-value on planted networks: `reports/calibration/calibration.md`.", "",
             "Counts used: " + f"up to {data['permutations']} re-fitted null draws per layer for the n-cut of "
             "`analyze` (sequential stopping once 10 draws are as extreme, so unstructured layers use few; the "
             f"smallest reachable p is 1/({data['permutations']}+1) = {1 / (data['permutations'] + 1):.2g}), "
             f"{data['shuffles']} shuffled networks for clusterability (k = {data['k']}; smallest p "
             f"{1 / (data['shuffles'] + 1):.2g}), {data['first_layer_permutations']} unit-label permutations for "
             "the first-layer analysis. Effect sizes (the n-cut's reduction relative to its null mean) say how "
             "large a significant structure is.", ""]
    if data.get("inception_note"):
        lines += [f"InceptionV3 (nsfwjs): {data['inception_note']}", ""]
    curve = reports / "detectability" / "curve.json"
    n_planted = json.loads(curve.read_text(encoding="utf-8"))["meta"]["n_instances"] if curve.exists() else None
    lines += [_nsfwjs_paragraph(reports), "",
              "Packaged detectors and classifiers (DBNet, PicoDet, YOLOX, YOLOv8n, PP-OCR, LCNet): "
              "`reports/packaged_models.md`. Whether a layer's branches can be recovered from its weights at all "
              "(the rectangular BBP threshold of the degree-normalised profile, the ARI a spectral method can "
              "expect there, checked against " + (f"{n_planted} " if n_planted else "") + "planted matrices): "
              "`reports/detectability.md`. How the default "
              "co-clustering was chosen on a selection split and how it does on a held-out one: "
              "`reports/methods.md`.", "",
              "Example results folder, as `python -m modularity analyze` writes it (open `report.html`; "
              "`python -m modularity report reports/inception_v3_nsfwjs` rebuilds it from its `summary.json` and "
              "`arrays.npz`): `inception_v3_nsfwjs/` (the eleven Inception blocks, with the random-init control). "
              "The default run's folder (13.6 MB, BENCHMARKS.md) is not kept in the repository: the README's "
              "first command writes it; `python scripts/make_example_reports.py` makes both.", ""]
    lines += ["## Equivalent commands", "",
              "```", *data["equivalent_commands"], "```", "", "## Results", ""]
    for m in models:
        lines += _model_section(m)
    lines += ["## What the weights show, and what they do not", ""]
    if trained and control:
        ct, cc = trained["clusterability"], control["clusterability"]
        lines.append(
            f"- Whole network: trained EfficientNet-Lite0 has n-cut {ct['ncut']:.4f} against "
            f"{_fmt(ct['null_mean'], '.4f')} for its shuffles (z = {_fmt(ct['z'], '.1f')}); the random-init "
            f"control has {cc['ncut']:.4f} against {_fmt(cc['null_mean'], '.4f')} (z = {_fmt(cc['z'], '.1f')}). "
            + ("The trained network is more clusterable than its shuffles and the control is not, which is the "
               "direction Filan et al. report for ImageNet CNNs."
               if (ct["p_value"] or 1) <= 0.05 and ct["ncut"] < (ct["null_mean"] or 0) and not
               ((cc["p_value"] or 1) <= 0.05 and cc["ncut"] < (cc["null_mean"] or 0))
               else "The comparison does not separate the trained network from its control in the expected way; "
                    "see the numbers above."))
        lines.append(
            "  Batch-norm folding gives trained layers very unequal row scales, which a within-layer shuffle "
            "destroys, so a low n-cut could say only that weight mass is concentrated. The `degree` null, which "
            "keeps every unit's total incoming and outgoing magnitude, tests that: " + _scale_null_sentence(reports))
        def _raw(m):
            return sum(1 for layer in m["analyze"]["layers"] if layer["p"] is not None and layer["p"] <= 0.05)

        def _medz(m):
            zs = [layer["z"] for layer in m["analyze"]["layers"] if layer["z"] is not None]
            return float(np.median(zs)) if zs else float("nan")
        def _bh(m):
            return [layer for layer in m["analyze"]["layers"] if layer["p_bh"] is not None and layer["p_bh"] <= 0.05]

        def _effects(layers):
            return [(layer["null_mean"] - layer["ncut"]) / layer["null_mean"] for layer in layers
                    if layer["null_mean"]]

        sig_t, sig_c = _bh(trained), _bh(control)
        eff = _effects(sig_t)
        lines.append(
            f"- Per layer: {len(sig_t)} of {trained['analyze']['n_layers']} trained layers are more clusterable "
            f"than their null after Benjamini-Hochberg (BH p <= 0.05; {_raw(trained)} before), against "
            f"{len(sig_c)} of {control['analyze']['n_layers']} at random init ({_raw(control)} before); median z "
            f"{_medz(trained):.1f} against {_medz(control):.1f}. "
            + (f"Their effects are {'small' if float(np.median(eff)) < 0.1 else 'not small'}: the n-cut is "
               f"{100 * float(np.median(eff)):.1f}% below its null mean in "
               f"the median layer (largest {100 * max(eff):.1f}%), significant because every layer has hundreds "
               "of units and the null is tight. " if eff else "")
            + "EfficientNet-Lite0 has no concatenations or grouped convs apart from depthwise ones, so there are "
            "no true branches to recover; these co-clusters are unlabelled structure, and k comes from the "
            f"{_k_phrase(trained)}.")
        ft, fc = trained["first_layer"], control["first_layer"]
        lines.append(
            f"- First layer: trained stem filters have mean colour score {ft['colour_mean']:.2f} "
            f"({ft['n_grey_like']} grey-like) against {fc['colour_mean']:.2f} at random init. The best "
            f"singular-vector correlation with colour is {ft['best']['colour']['spearman']:+.2f} "
            f"(family-wise p = {_fmt(ft['best']['colour']['p_max'])}) and with frequency "
            f"{ft['best']['frequency']['spearman']:+.2f} (p = {_fmt(ft['best']['frequency']['p_max'])}); at random "
            f"init {fc['best']['colour']['spearman']:+.2f} (p = {_fmt(fc['best']['colour']['p_max'])}) and "
            f"{fc['best']['frequency']['spearman']:+.2f} (p = {_fmt(fc['best']['frequency']['p_max'])}). "
            "Branch Specialization reports colour as the first factor and frequency as the second for "
            "InceptionV1. Here, per variant, the vector with the largest |Spearman| with colour / frequency is: "
            + "; ".join(f"{v} #{_best_vec(ft, v, 'colour') + 1} / #{_best_vec(ft, v, 'frequency') + 1}"
                        for v in ("raw", "centred", "normalised"))
            + f". {_first_vector_phrase(ft)} With {len(ft['colour'])} stem units and one trained "
              "checkpoint this is one observation, not a replication.")
    lines += [
        "- Not shown: anything about function. These are weight statistics; no activations, images or "
        "lesions were used, so clusters are not shown to be features or circuits.",
        "- Not shown: the Branch Specialization InceptionV1 results. Lucid InceptionV1 weights are not "
        "available offline; the published hypergeometric p-values (2.48e-9 for mixed3a, 1.68e-23 for "
        "mixed3b) are reproduced from the shipped unit labels and branch layout in "
        "`tests/studies/test_enrichment.py`, which checks arithmetic and labels, not the weights.",
        "- Not shown: agreement across training seeds. Only one trained checkpoint of each model is "
        "available; `modularity.studies.agreement` is tested on synthetic checkpoints only.",
        "", "Figures: `findings/layer_ncut_z.png`, `findings/clusterability.png`, `findings/first_layer.png`.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Findings on real weights (writes reports/README.md).")
    parser.add_argument("--permutations", type=int, default=9)
    parser.add_argument("--shuffles", type=int, default=20)
    parser.add_argument("--first-layer-permutations", type=int, default=9999)
    parser.add_argument("--k", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--reports", default="reports")
    parser.add_argument("--skip-inception", action="store_true")
    parser.add_argument("--progress", action="store_true")
    parser.add_argument("--readme-only", action="store_true",
                        help="rewrite reports/README.md and the figures from reports/findings/findings.json")
    args = parser.parse_args(argv)
    if args.readme_only:
        out = Path(args.reports) / "findings"
        data = json.loads((out / "findings.json").read_text(encoding="utf-8"))
        _figures(data["models"], out)
        (Path(args.reports) / "README.md").write_text(_readme(data, Path(args.reports)), encoding="utf-8")
        return 0
    t0 = time.perf_counter()
    runs = [("efficientnet_lite0", "DEFAULT"), ("efficientnet_lite0", "none")]
    inception_note = ""
    if args.skip_inception:
        inception_note = ("not in this run (--skip-inception); its Inception blocks are analysed in "
                          "`reports/inception_v3_nsfwjs.md`.")
    else:
        try:
            available = get_source("inception_v3_nsfwjs").offline()
        except ModularityError:
            available = False
        if available:
            runs.append(("inception_v3_nsfwjs", "DEFAULT"))
        else:
            inception_note = ("not included: its converted weights were not on this machine when the script ran "
                              "(run `python scripts/fetch_inception_v3.py`, then re-run this script).")
    models = []
    for name, weights in runs:
        print(f"{name} ({weights}) ...", flush=True)
        models.append(_run_model(name, weights, args))
        print(f"  done in {models[-1]['runtime_s']:.0f} s", flush=True)
    out = Path(args.reports) / "findings"
    out.mkdir(parents=True, exist_ok=True)
    cmd_args = argv if argv is not None else sys.argv[1:]
    equivalent = []
    for name, weights in runs:
        w = "" if (name, weights) == ("efficientnet_lite0", "DEFAULT") else f" --weights {weights}"
        m = "" if name == "efficientnet_lite0" and weights == "DEFAULT" else f" {name}"
        equivalent.append(f"python -m modularity analyze{m}{w} --permutations {args.permutations} --seed {args.seed}")
        equivalent.append(f"python -m modularity clusterability{m}{w} --k {args.k} --shuffles {args.shuffles} "
                          f"--seed {args.seed}")
    data = {"command": ("python scripts/findings.py " + " ".join(shlex.quote(a) for a in cmd_args)).strip(),
            "runtime_s": time.perf_counter() - t0,
            "machine": f"{platform.machine()}, Python {platform.python_version()}",
            "date": time.strftime("%Y-%m-%d"), "commit": _git_commit(), "method": DEFAULT_METHOD,
            "seed": args.seed, "permutations": args.permutations, "shuffles": args.shuffles, "k": args.k,
            "first_layer_permutations": args.first_layer_permutations, "inception_note": inception_note,
            "equivalent_commands": equivalent, "models": models}
    (out / "findings.json").write_text(json.dumps(data, indent=1, default=float) + "\n", encoding="utf-8")
    _figures(models, out)
    (Path(args.reports) / "README.md").write_text(_readme(data, Path(args.reports)), encoding="utf-8")
    print(f"wrote {out} and {Path(args.reports) / 'README.md'} in {data['runtime_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
