#!/usr/bin/env python
"""The co-clustering benchmark: choose on a selection split, report on a held-out split and the real blocks.

1. Builds (or loads from ``--cache``) the instances of ``benchmarks/cases.py``:
   the selection split, the held-out split and the 11 real nsfwjs blocks
   (``scripts/fetch_inception_v3.py`` fetches their weights).
2. Runs the selection methods on the selection split and the real blocks, times
   the candidates per call, and applies the rule of
   :func:`benchmarks.report.choose` (real-block mean, cost, then the selection
   mean).
3. Runs the held-out table's methods (the rule's choice, the package default,
   the previous defaults, scikit-learn's and the choice's own parts) on the
   held-out split.
4. Writes ``reports/methods.md`` and ``reports/methods/benchmark.json`` (every
   ARI per instance, method and method seed; no matrices).

Usage (the report's numbers come from the first line)::

    .venv/bin/python scripts/method_benchmark.py
    .venv/bin/python scripts/method_benchmark.py --quick --report /tmp/m.md --json /tmp/m.json  # a smoke run
    .venv/bin/python scripts/method_benchmark.py --render-only  # rewrite the report from the JSON
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import cases, report  # noqa: E402
from benchmarks.candidates import CANDIDATES, REFINED_VARIANTS  # noqa: E402
from benchmarks.machine import cpu_name  # noqa: E402
from benchmarks.runner import run, time_calls  # noqa: E402
from modularity.core.defaults import DEFAULT_METHOD  # noqa: E402

OLD_DEFAULT = "adaptive_sqrt_unit_r10"  # the default this round started from (issue 11's choice)
PRODUCTION = ["adaptive_sqrt_unit_r10", "dhillon_km1_cols_sv_r10", "sklearn_scc", "sklearn_sbc_bistochastic"]
FAMILY = list(REFINED_VARIANTS)  # the candidates for the new default
SELECTION_METHODS = [*PRODUCTION, "kmeans_km1", "kmeans_log2k", "dhillon_log2k_joint_r10", *FAMILY]
OWN_PARTS = ["kmeans_km1", "kmeans_log2k", "spectral_refined_nomoves", "spectral_refined_three",
             "spectral_refined_rows1"]
WEIGHTS = Path.home() / ".cache" / "modularity" / "inception_v3_nsfwjs.safetensors"
DECISION = """
**The package default is `spectral_refined`** (switched after this run; `adaptive_sqrt_unit_r10` stays a production
method, `--method adaptive_sqrt_unit_r10`). It does not meet issue 20's strict bar (below: 6 of 52 held-out cases
miss the 0.05 margin, and one of its own variants has a 0.001 higher mean), but it is better than the previous
default on every held-out scheme and removes the collapse that started the issue (worst network 0.970 against
0.614), so keeping the previous default would keep the known failure for a margin no single method meets.

**What `spectral_refined` does** (`modularity.core.methods.refined`, `modularity.core.refine`): the default's
embedding and k-means (10 restarts); information-theoretic co-clustering (ITCC: alternating row and column updates,
each of which cannot lower the information I(R; C) the blocks keep) of the Sinkhorn-balanced profile with 2k row
clusters; then merge-split moves (merge two column clusters, cut a third by the second singular vector of its own
submatrix) kept when they raise I(R; C) or leave fewer heterogeneous clusters. A cluster counts as heterogeneous,
and may be cut, only when its own second singular value rises above its noise edge times a Tracy-Widom 99 % margin;
the pair merged must not. Rows join the column cluster that receives the largest share of their weight.

**Chosen on the selection split** by the rule below: eligible (real-block mean 0.229 against the default's 0.237,
within 0.01; 2.2 times the default's CPU time per call), highest selection mean (0.829 against 0.785 for the
default; four variants within 0.002, tie to the smallest per-network gap).

**Held-out (this run, round 2; 52 cases, 490 matrices).**

- Mean over all cases: 0.924, against 0.851 (`adaptive_sqrt_unit_r10`), 0.834 (`dhillon_km1_cols_sv_r10`), 0.779
  (`sklearn_scc`). Of its own variants, `spectral_refined_three` (three starting embeddings, 1.5 times its cost) has
  0.925: **the mean is the best of the production methods, 0.001 below the best variant** (not met strictly).
- Worst network within 0.05 of the best method on that network: **46 of 52 cases (not met in 6)**; the old default
  meets it in 24, `sklearn_scc` in 10. The misses: own x1.3 inception3b (0.056) and inception4d (0.153), input x1.5
  inception3b (0.312, one network of ten), blocks scaled k=2 (0.097), k=3 (0.119) and k=5 (0.138).
- The case that started this (own x1.5, googlenet): worst network 0.970 on inception3a (`adaptive_sqrt_unit_r10`
  0.614, `dhillon_km1_cols_sv_r10` 0.627, `sklearn_scc` 0.868); largest gap in the scheme 0.013.
- Never-run schemes: half-own x2 mean 0.999 (worst 0.988; every gap at most 0.007); blocks scaled 0.830 against
  0.539 for the default.

Why the six misses remain: (a) in the weak regime (ARI 0.1 to 0.7: own x1.3, blocks scaled k=2 and 3) the best of
ten methods on one network beats any single method by chance by more than 0.05 (there `spectral_refined`'s mean
is far ahead: own x1.3 inception4d 0.850 against 0.671 for `adaptive_sqrt_unit_r10`);
(b) input x1.5 inception3b plants a group of 21 units read by a 16-unit consumer: I(R; C) prefers cutting the
250-unit group to keeping it, the detectability check
stops the refinement from merging it away (round 1: 5 networks of 10 collapsed, now 1) but cannot repair a k-means
start that merged it already (`sklearn_scc` keeps it, 0.961); (c) blocks scaled k=5: one start lands badly where three
starts do not (0.838 against 0.976).

Measured (`scripts/miss_spread.py`, `reports/methods/miss_spread.md`: each miss's worst network re-run with 20
k-means seeds of the default and of the method best there), (a) holds only in part: 2 of the 6 misses are seed
noise (own x1.3 inception4d, blocks scaled k=5); on the other 4 the best method is ahead of the default's seed
range there, and in 2 of those (own x1.3 inception3b, blocks scaled k=2) it trails the default over the case's
networks, a per-network rather than a per-seed effect.

**Round 1** (seeds 100-109, the choice then: the same method with 10 restarts, without the detectability check):
mean 0.923 against 0.874 for the default, 5 of 37 cases missed, the worst input x1.5 inception3b (0.353; 5 networks
of 10 at ARI 0.65, on 4 of which the k-means start had 0.97 or more: the information preferred cutting noise in the
largest group to keeping the smallest). Studying that on seeds 100-109 made them development data; this report's
held-out split uses new seeds and two new schemes.

**What each part adds** (held-out means): ITCC alone (`spectral_refined_nomoves`) 0.901; with merge-split moves
0.924, and the own x1.5 worst network goes from 0.624 to 0.970. More starting embeddings add nothing on the
selection split (0.825 against 0.829) and 0.001 held out, at 1.5 times the cost.

**Real nsfwjs blocks:** 0.229 against 0.237: better on Mixed_7c (0.228 against 0.127) and Mixed_6e, worse on
Mixed_7b (0.159 against 0.239) and Mixed_6d (0.240 against 0.304); single weak matrices (see the caveat there).

**Cost:** 2.05 to 2.28 times the default's CPU time per call (48 to 55 ms against 22 to 26 ms single-threaded on
the 832 x 528 and 576 x 832 profiles), inside the 3x budget; the null re-runs it per draw, so a null costs about
twice as much.
"""


def _call(method: str, a: np.ndarray, k: int) -> np.ndarray:
    return CANDIDATES[method](a, k, np.random.default_rng(1))  # the same draws, so the same work, on every call


def _cost(instances: list[dict], methods: list[str], repeat: int) -> dict:
    """Median seconds per call of ``methods`` on a random 832 x 528 matrix and on googlenet inception4e's
    576 x 832 profile (selection, planted at s=0.3 and 0.2, network 0)."""
    rng = np.random.default_rng(0)
    profiles = {"random 832 x 528": (rng.random((832, 528)), 4)}
    for d in instances:
        if d["case"] in ("rows s=0.3 googlenet inception4e", "rows s=0.2 googlenet inception4e") and d["net"] == 0:
            profiles[f"googlenet inception4e {d['matrix'].shape[0]} x {d['matrix'].shape[1]}, "
                     f"{d['case'].split()[1]}"] = (d["matrix"], d["k"])
    out: dict = {"methods": methods, "profiles": {}}
    for name, (a, k) in profiles.items():
        out["profiles"][name] = {m: time_calls(partial(_call, m, a, k), repeat) for m in methods}
    out["ratio"] = {m: float(np.mean([row[m] / row[OLD_DEFAULT] for row in out["profiles"].values()]))
                    for m in methods}
    return out


def _strip(instances: list[dict]) -> list[dict]:
    return [{k: v for k, v in d.items() if k not in ("matrix", "truth")} | {"shape": list(d["matrix"].shape)}
            for d in instances]


def _ari_json(ari: np.ndarray, methods: list[str]) -> dict:
    return {m: np.round(ari[:, j, :], 5).tolist() for j, m in enumerate(methods)}


def _summaries(out: dict) -> tuple[dict, dict, dict, dict]:
    """Per-case summaries of the three splits and the rule, from the JSON form."""
    meta = out["meta"]
    sel_m, held_m, real_m = meta["selection_methods"], meta["heldout_methods"], meta["real_methods"]
    sel_nets = report.per_network(out["instances"]["selection"], out["ari"]["selection"], sel_m)
    real_nets = report.per_network(out["instances"]["real"], out["ari"]["real"], real_m)
    held_nets = report.per_network(out["instances"]["heldout"], out["ari"]["heldout"], held_m)
    real = report.case_summary(real_nets, real_m, meta["default"])
    rule = report.choose(sel_nets, sel_m, report.case_summary(real_nets, real_m, OLD_DEFAULT),
                         out["cost"]["ratio"], FAMILY, OLD_DEFAULT)
    sel = report.case_summary(sel_nets, sel_m, rule["chosen"])
    held = report.case_summary(held_nets, held_m, meta["default"])
    return ({"summary": sel, "groups": report.group_means(sel, sel_m),
             "worst_by_group": report.worst_by_group(sel, sel_m)},
            {"summary": held, "groups": report.group_means(held, held_m),
             "worst_by_group": report.worst_by_group(held, held_m)}, real, rule)


def write(out: dict, report_path: Path) -> None:
    sel, held, real, rule = _summaries(out)
    out["rule"] = rule
    report_path.parent.mkdir(parents=True, exist_ok=True)
    report_path.write_text(report.render(out["meta"], sel, held, real, rule, out["cost"], DECISION))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--method-seeds", type=int, default=2, help="method seeds per matrix")
    parser.add_argument("--workers", type=int, default=2, help="processes (each single-threaded)")
    parser.add_argument("--weights", default=str(WEIGHTS), help="nsfwjs safetensors file")
    parser.add_argument("--cache", default=str(Path.home() / ".cache" / "modularity" / "method_benchmark"))
    parser.add_argument("--report", default=str(ROOT / "reports" / "methods.md"))
    parser.add_argument("--json", default=str(ROOT / "reports" / "methods" / "benchmark.json"))
    parser.add_argument("--render-only", action="store_true", help="rewrite the report from --json")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: every 10th instance, 1 method seed, 3 timing calls")
    parser.add_argument("--selection-only", action="store_true",
                        help="stop after the rule's choice (print the rule's table; nothing written, no held-out run)")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    if args.render_only:
        write(json.loads(Path(args.json).read_text()), Path(args.report))
        return 0
    log = (lambda s: None) if args.quiet else (lambda s: print(s, file=sys.stderr, flush=True))
    t0 = time.perf_counter()
    weights = Path(args.weights).expanduser()
    if not weights.exists():
        print(f"error: {weights} not found; run scripts/fetch_inception_v3.py first", file=sys.stderr)
        return 2
    cache = Path(args.cache).expanduser()
    inst = {"selection": cases.cached(cache / f"cases_v{cases.VERSION}_selection.npz", cases.selection_instances),
            "real": cases.cached(cache / f"cases_v{cases.VERSION}_nsfwjs.npz", lambda: cases.nsfwjs_instances(weights)),
            "heldout": cases.cached(cache / f"cases_v{cases.VERSION}_heldout.npz", cases.heldout_instances)}
    n_seeds, repeat = args.method_seeds, 15
    if args.quick:
        inst = {k: v[::10] if k != "real" else v[::4] for k, v in inst.items()}
        n_seeds, repeat = 1, 3
    log(f"instances: {', '.join(f'{k} {len(v)}' for k, v in inst.items())}")

    log("cost per call")
    cost = _cost(inst["selection"], [OLD_DEFAULT, "dhillon_km1_cols_sv_r10", *FAMILY], repeat)
    log("selection split")
    sel_ari, sel_sec = run(inst["selection"], SELECTION_METHODS, n_seeds, args.workers, log)
    real_ari, _ = run(inst["real"], SELECTION_METHODS, n_seeds, args.workers, log)
    sel_nets = report.per_network(inst["selection"], _ari_json(sel_ari, SELECTION_METHODS), SELECTION_METHODS)
    real_sum = report.case_summary(report.per_network(inst["real"], _ari_json(real_ari, SELECTION_METHODS),
                                                      SELECTION_METHODS), SELECTION_METHODS, OLD_DEFAULT)
    chosen = report.choose(sel_nets, SELECTION_METHODS, real_sum, cost["ratio"], FAMILY, OLD_DEFAULT)["chosen"]
    log(f"rule chose {chosen}; package default {DEFAULT_METHOD}")
    if args.selection_only:
        rule = report.choose(sel_nets, SELECTION_METHODS, real_sum, cost["ratio"], FAMILY, OLD_DEFAULT)
        sel_sum = report.case_summary(sel_nets, SELECTION_METHODS, chosen)
        print(json.dumps({"rule": rule, "cost": cost,
                          "groups": report.group_means(sel_sum, SELECTION_METHODS),
                          "worst": report.worst_by_group(sel_sum, SELECTION_METHODS),
                          "real": {c: s["mean"] for c, s in real_sum.items()},
                          "gaps": {c: {"gap_max": s["gap_max"], "worst": s["worst"][chosen]}
                                   for c, s in sel_sum.items()}}, indent=1, default=float))
        return 0
    default = chosen  # the held-out table judges the rule's choice (the package default once it meets the targets)
    held_methods = list(dict.fromkeys([default, *PRODUCTION, *OWN_PARTS]))
    log("held-out split")
    held_ari, held_sec = run(inst["heldout"], held_methods, n_seeds, args.workers, log)

    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    cpu = cpu_name()
    meta = {"command": " ".join([".venv/bin/python", "scripts/method_benchmark.py",
                                 *[shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])]]),
            "machine": f"{cpu}, {os.cpu_count()} cores (shared), {args.workers} single-threaded workers, "
                       f"Python {platform.python_version()}, numpy {np.__version__}",
            "date": time.strftime("%Y-%m-%d"), "runtime_s": time.perf_counter() - t0, "load": load,
            "n_seeds": n_seeds, "default": default, "package_default": DEFAULT_METHOD, "rule_choice": chosen,
            "old_default": OLD_DEFAULT, "selection_methods": SELECTION_METHODS, "heldout_methods": held_methods,
            "real_methods": SELECTION_METHODS, "family": FAMILY,
            "seconds_per_call": {"selection": dict(zip(SELECTION_METHODS,
                                                       (sel_sec / max(1, sel_ari[:, 0].size)).tolist())),
                                 "heldout": dict(zip(held_methods, (held_sec / max(1, held_ari[:, 0].size)).tolist()))}}
    out = {"meta": meta, "cost": cost,
           "instances": {k: _strip(v) for k, v in inst.items()},
           "ari_note": "ari[split][method][instance][seed]",
           "ari": {"selection": _ari_json(sel_ari, SELECTION_METHODS), "real": _ari_json(real_ari, SELECTION_METHODS),
                   "heldout": _ari_json(held_ari, held_methods)}}
    write(out, Path(args.report))
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(out, separators=(",", ":")))
    log(f"wrote {args.report} and {args.json} in {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
