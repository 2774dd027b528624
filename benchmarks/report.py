"""Summaries of the method benchmark (per case, per network, worst network, the choice rule) and its Markdown.

Works on the JSON form written by ``scripts/method_benchmark.py`` (instances
without matrices; ``ari[split][method]`` as nested lists ``[instance][seed]``),
so that ``--render-only`` can rebuild the report.
"""

from __future__ import annotations

import numpy as np

__all__ = ["group_of", "per_network", "case_summary", "group_means", "worst_by_group", "choose", "render"]


def group_of(d: dict) -> str:
    """What a summary row pools: the case without its block or ``k`` (``own x1.5 googlenet``, ``blocks unequal``)."""
    if d.get("scheme") == "grouped":
        return "grouped"
    if d.get("scheme") == "real":
        return "nsfwjs (real)"
    return d["case"].rsplit(" ", 1)[0]


def per_network(instances: list[dict], ari: dict, methods: list[str]) -> dict:
    """``{case: {"nets": [...], method: array of per-network ARI (mean over method seeds)}}``."""
    out: dict = {}
    for i, d in enumerate(instances):
        row = out.setdefault(d["case"], {"nets": [], "group": group_of(d), "_idx": []})
        row["nets"].append(d["net"])
        row["_idx"].append(i)
    for row in out.values():
        idx = row.pop("_idx")
        for m in methods:
            row[m] = np.array([np.mean(ari[m][i]) for i in idx])
    return out


def case_summary(nets: dict, methods: list[str], target: str) -> dict:
    """Per case: each method's mean and worst network, and ``target``'s shortfall against the best method per network.

    ``gap_max``: the largest ``best - target`` over the case's networks;
    ``gap_worst``: that difference on ``target``'s worst network (and which
    method was best there).
    """
    out = {}
    for case, row in nets.items():
        table = np.stack([row[m] for m in methods])  # (methods, networks)
        best = table.max(axis=0)
        t = row[target]
        w = int(np.argmin(t))
        out[case] = {
            "group": row["group"], "n": len(row["nets"]),
            "mean": {m: float(row[m].mean()) for m in methods},
            "worst": {m: float(row[m].min()) for m in methods},
            "worst_net": row["nets"][w],
            "best_on_worst": float(best[w]), "best_method_on_worst": methods[int(np.argmax(table[:, w]))],
            "gap_worst": float(best[w] - t[w]), "gap_max": float((best - t).max()),
            "gap_max_net": row["nets"][int(np.argmax(best - t))],
        }
    return out


def group_means(summary: dict, methods: list[str]) -> dict:
    """Mean over the cases of each group (each case weighs one), and ``all`` (every case)."""
    groups: dict = {}
    for case, s in summary.items():
        groups.setdefault(s["group"], []).append(case)
    out = {g: {m: float(np.mean([summary[c]["mean"][m] for c in cs])) for m in methods} for g, cs in groups.items()}
    out["all"] = {m: float(np.mean([s["mean"][m] for s in summary.values()])) for m in methods}
    return out


def choose(nets: dict, methods: list[str], real: dict, cost: dict, family: list[str], reference: str,
           real_tolerance: float = 0.01, cost_limit: float = 3.0) -> dict:
    """The rule that picks the default on the selection split.

    ``nets``: :func:`per_network` of the selection split for ``methods``;
    ``real``: :func:`case_summary` of the real blocks; ``cost``: cost per call
    relative to ``reference``. Eligible: ``reference`` or a method of
    ``family`` whose mean over the real blocks is at least ``reference``'s less
    ``real_tolerance`` and whose cost is at most ``cost_limit`` times
    ``reference``'s. Chosen: the eligible method with the highest mean over the
    selection cases; ties (within 0.002) go to the smaller largest per-network
    gap (best of ``methods`` on a network minus the method's ARI there).
    """
    ref_real = float(np.mean([s["mean"][reference] for s in real.values()]))
    rows = {}
    for m in dict.fromkeys([reference, *family]):
        summary = case_summary(nets, methods, m)
        ratio = float(cost.get(m, np.nan))
        real_mean = float(np.mean([s["mean"][m] for s in real.values()]))
        rows[m] = {"selection_mean": float(np.mean([s["mean"][m] for s in summary.values()])),
                   "selection_gap_max": float(max(s["gap_max"] for s in summary.values())),
                   "real_mean": real_mean, "cost_ratio": ratio,
                   "eligible": bool(real_mean >= ref_real - real_tolerance and np.isfinite(ratio)
                                    and ratio <= cost_limit)}
    eligible = [m for m in rows if rows[m]["eligible"]] or [reference]
    top = max(rows[m]["selection_mean"] for m in eligible)
    tied = [m for m in eligible if rows[m]["selection_mean"] >= top - 0.002]
    chosen = min(tied, key=lambda m: (rows[m]["selection_gap_max"], -rows[m]["selection_mean"]))
    return {"chosen": chosen, "rows": rows, "real_tolerance": real_tolerance, "cost_limit": cost_limit,
            "reference": reference}


def worst_by_group(summary: dict, methods: list[str]) -> dict:
    """The worst network of each group (over its cases) per method."""
    out: dict = {}
    for s in summary.values():
        row = out.setdefault(s["group"], {m: np.inf for m in methods})
        for m in methods:
            row[m] = min(row[m], s["worst"][m])
    out["all"] = {m: min(r[m] for r in out.values()) for m in methods}
    return out


def _f(x: float) -> str:
    return f"{x:.3f}"


def render(meta: dict, sel: dict, held: dict, real: dict, rule: dict, cost: dict, decision: str) -> str:
    """The Markdown report (``reports/methods.md``)."""
    default, old = meta["default"], meta["old_default"]
    panel = meta["heldout_methods"]
    lines = [
        "# Which co-clustering recovers branches, and does it hold on cases it was not chosen on? (issues 11, 20)", "",
        f"Generated by `{meta['command']}` ({meta['date']}; {meta['machine']}; {meta['runtime_s']:.0f} s, "
        f"load average {meta['load']}). Raw ARIs per instance, method and method seed: "
        "`reports/methods/benchmark.json`; cases: `benchmarks/cases.py`; candidates: `benchmarks/candidates.py`.", "",
        "Every method groups the producer units (columns) of a downstream profile (L1 kernel norms, batch norm "
        "folded) into k groups; each grouping is scored by the adjusted Rand index (ARI) against the planted or "
        f"architectural truth. Each method ran with {meta['n_seeds']} method seeds per matrix; a network's ARI is "
        "the mean over them. *Worst* is the lowest network of a case; *gap* is, per network, the best ARI any "
        "method of the table reached there minus the default's.", "",
        "## Design: a selection split and a held-out split", "",
        "- **Selection** (the default was chosen on these; network seeds 0-4): "
        "`rows s=S`: in every googlenet Inception block that feeds another block (8) and in inception_v3 Mixed_5b "
        "and Mixed_6a, each consumer's units dealt at random into B groups, weights from branch b to group b "
        "multiplied by 1 + S; `blocks equal k=K`: synthetic 256 x 384 block models, k = 2..8 equal groups, "
        "factor 1 + 0.03 k; `grouped_mixed`, `grouped_pure`: a grouped consumer beside a dense one, or alone.",
        "- **Held-out** (network seeds 200-209, never seen): `own xF` (consumer-side): each branch read F times "
        "more strongly by the consumer conv of the next block that continues it (inception3a's branch b on "
        "inception3b's branch b; row groups are whole convs of unequal sizes); `input x1.5` (input-side): each "
        "consumer conv of the next block reads a random group of the producer's units 1.5 times more strongly, "
        "groups of unequal sizes proportional to the consumers' widths (the truth is those groups, not the "
        "architecture); `half-own x2`: only a random half of each own consumer's units reads its branch twice as "
        "strongly; `blocks unequal k=K`: 352 x 448 block models with k = 2..8 groups whose sizes run from 1 to 4; "
        "`blocks scaled k=K`: the same with log-normal row and column scales (sd 0.5), as batch-norm folding "
        "makes them.",
        "- **Real**: the 11 Inception blocks of the trained nsfwjs InceptionV3 (they also chose the previous "
        "defaults, so they are not held out).", "",
        "How held out it is, said up front: the consumer-side failure (`own x1.5` on inception3a) was known before "
        "this work and was looked at on seeds 0-4 while the method was designed. Round 1 of this benchmark ran "
        "`own` and `input` on seeds 100-109; its failures (the Decision says which) were then studied on those "
        "seeds, which became development data, and the method was changed. This report is round 2: new seeds "
        "200-209 for every held-out scheme, and two schemes (`half-own x2`, `blocks scaled`) that no version of "
        "the method was run on before this run.",
        "",
        "## Decision", "", decision.strip(), "",
    ]
    # held-out headline
    hs = held["summary"]
    lines += ["## Held-out split: per case, the worst network", "",
              f"`{default}` (the rule's choice; package default `{meta['package_default']}`) against the best of the "
              f"{len(panel)} methods of the held-out table on each network. *gap on worst*: the best method's ARI "
              "minus the default's on the default's worst "
              "network; *largest gap*: the same, maximised over the case's networks.", "",
              f"| case | nets | `{default}` mean | worst (net) | best there (method) | gap on worst | largest gap | "
              f"`{old}` mean / worst | `dhillon_km1_cols_sv_r10` mean / worst | `sklearn_scc` mean / worst |",
              "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for case, s in hs.items():
        lines.append(
            f"| {case} | {s['n']} | {_f(s['mean'][default])} | {_f(s['worst'][default])} ({s['worst_net']}) | "
            f"{_f(s['best_on_worst'])} (`{s['best_method_on_worst']}`) | {_f(s['gap_worst'])} | "
            f"{_f(s['gap_max'])} | {_f(s['mean'][old])} / {_f(s['worst'][old])} | "
            f"{_f(s['mean']['dhillon_km1_cols_sv_r10'])} / {_f(s['worst']['dhillon_km1_cols_sv_r10'])} | "
            f"{_f(s['mean']['sklearn_scc'])} / {_f(s['worst']['sklearn_scc'])} |")
    worst_gap = max(s["gap_max"] for s in hs.values())
    lines += ["", f"Largest per-network gap over all {len(hs)} held-out cases: {_f(worst_gap)}; cases whose "
              f"largest gap exceeds 0.05: {sum(s['gap_max'] > 0.05 for s in hs.values())}; cases whose gap on the "
              f"default's worst network exceeds 0.05: {sum(s['gap_worst'] > 0.05 for s in hs.values())}.", ""]
    lines += _means_table("Held-out split: mean ARI per scheme (each case weighs one)", held["groups"], panel,
                          held["worst_by_group"])
    shown = [m for m in meta["selection_methods"] if m in panel or m == rule["chosen"]]
    lines += _means_table("Selection split: mean ARI per scheme (the held-out table's methods; every candidate's "
                          "overall mean is in the rule's table)", sel["groups"], shown, sel["worst_by_group"])
    # the rule
    lines += ["## The rule applied on the selection split", "",
              f"Eligible: real-block mean at least `{rule['reference']}`'s less {rule['real_tolerance']}, cost per "
              f"call at most {rule['cost_limit']:g} times `{rule['reference']}`'s (on the profiles of the cost "
              "table). Chosen: the highest selection mean among the eligible; ties within 0.002 go to the smaller "
              f"largest per-network gap. **Chosen: `{rule['chosen']}`.**", "",
              "| method | selection mean | selection largest gap | real mean | cost (x reference) | eligible |",
              "| --- | ---: | ---: | ---: | ---: | --- |"]
    for m, r in sorted(rule["rows"].items(), key=lambda kv: -kv[1]["selection_mean"]):
        lines.append(f"| `{m}` | {_f(r['selection_mean'])} | {_f(r['selection_gap_max'])} | {_f(r['real_mean'])} | "
                     f"{r['cost_ratio']:.2f} | {'yes' if r['eligible'] else 'no'} |")
    lines += [""]
    # real blocks
    rm = [m for m in meta["real_methods"] if m in panel]
    lines += ["## The real nsfwjs InceptionV3 blocks", "",
              "| block | " + " | ".join(f"`{m}`" for m in rm) + " |", "| --- |" + " ---: |" * len(rm)]
    for case, s in real.items():
        best = max(s["mean"][m] for m in rm)
        lines.append(f"| {case.replace('nsfwjs ', '')} | " + " | ".join(
            (f"**{_f(s['mean'][m])}**" if s["mean"][m] == best else _f(s["mean"][m])) for m in rm) + " |")
    lines.append("| *mean* | " + " | ".join(_f(np.mean([s["mean"][m] for s in real.values()])) for m in rm) + " |")
    lines += ["", "Single matrices: a difference of 0.02 to 0.05 on one weak block (ARI about 0.2) is within what "
              "one more k-means restart or a different row initialisation moves.", ""]
    # cost
    lines += ["## Cost per call", "",
              "Median CPU time of single-threaded calls (column labels; the tool re-runs the method for every null "
              f"draw), measured side by side in one process (load average {meta['load']}: wall time on this shared "
              "machine counts other jobs' turns).",
              "The rule's table gives every candidate's ratio.", "",
              "| profile | " + " | ".join(f"`{m}`" for m in cost["methods"] if m in panel)
              + f" | `{default}` / `{old}` |",
              "| --- |" + " ---: |" * (sum(m in panel for m in cost["methods"]) + 1)]
    for name, row in cost["profiles"].items():
        lines.append(f"| {name} | " + " | ".join(f"{row[m] * 1e3:.0f} ms" for m in cost["methods"] if m in panel)
                     + f" | {row[default] / row[old]:.2f} |")
    lines += [""]
    return "\n".join(lines)


def _means_table(title: str, groups: dict, methods: list[str], worst: dict) -> list[str]:
    lines = [f"## {title}", "", "Cell: mean / worst network over the group's cases.", "",
             "| group | " + " | ".join(f"`{m}`" for m in methods) + " |", "| --- |" + " ---: |" * len(methods)]
    for g, row in groups.items():
        best = max(row[m] for m in methods)
        cells = []
        for m in methods:
            cell = f"{_f(row[m])} / {_f(worst[g][m])}" if g in worst else _f(row[m])
            cells.append(f"**{cell}**" if row[m] == best else cell)
        lines.append(f"| {g} | " + " | ".join(cells) + " |")
    return [*lines, ""]
