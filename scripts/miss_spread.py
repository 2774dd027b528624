#!/usr/bin/env python
"""Is a missed held-out case seed noise? The default's own k-means-seed spread on its worst network.

Issue 20's strict criterion asks that, per held-out case of the method
benchmark, the default's worst network be within 0.05 of the best of the
benchmark's ten methods on that network (``benchmarks.report.case_summary``,
``gap_worst``). ``reports/methods.md`` says that in the weak regime the best of
ten methods beats any single method there by chance. This script measures that
claim on the missed cases only:

1. reads ``reports/methods/benchmark.json`` (every ARI per instance, method
   and method seed) and finds the cases whose ``gap_worst`` exceeds the margin;
2. loads those networks' matrices from the benchmark's instance cache
   (``benchmarks.cases.cached`` layout; built by ``scripts/method_benchmark.py``)
   and checks that the default reproduces the ARIs the benchmark recorded there;
3. re-runs the default (``modularity.core.methods.cocluster(a, k,
   np.random.default_rng(s))``) and the method that was best on that network
   with method seeds ``s = 0..N-1``;
4. writes ``reports/methods/miss_spread.md`` and ``miss_spread.json``.

A miss is read as *seed noise* when the best method's recorded ARI lies inside
the default's own seed range there and the best method's median over the seeds
is within the margin of the default's; otherwise the best method is ahead on that
network *at every seed* (its lowest ARI above the default's highest) or *in
median* (by more than the margin). Beside it, from the benchmark's JSON: how the
method that won on that network does over the case's other networks (a win that
the rest of the case does not repeat is a per-network, not a per-seed, effect).

Usage::

    .venv/bin/python scripts/miss_spread.py [--seeds 20] [--cache DIR] [--out reports/methods/miss_spread]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
import zlib
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import cases, report  # noqa: E402
from benchmarks.candidates import CANDIDATES  # noqa: E402
from modularity.core.defaults import DEFAULT_METHOD  # noqa: E402
from modularity.core.methods import cocluster  # noqa: E402
from modularity.core.metrics import adjusted_rand  # noqa: E402

MARGIN = 0.05  # issue 20's margin


def _ari(truth: np.ndarray, labels: np.ndarray) -> float:
    """ARI on the live columns, as ``benchmarks.runner`` scores it."""
    live = labels >= 0
    return float(adjusted_rand(truth[live], labels[live]))


def load_instances(path: Path, wanted: list[tuple[str, int]]) -> dict[tuple[str, int], dict]:
    """The instances ``(case, net)`` of a ``benchmarks.cases.cached`` file, reading only their arrays."""
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
        out = {}
        for i, m in enumerate(meta):
            key = (m["case"], int(m["net"]))
            if key in wanted:
                out[key] = dict(m, matrix=z[f"m{i}"], truth=z[f"t{i}"])
    missing = [w for w in wanted if w not in out]
    if missing:
        raise SystemExit(f"error: {path} lacks {missing}; run scripts/method_benchmark.py to build it")
    return out


def misses(bench: dict, margin: float) -> list[dict]:
    """Held-out cases whose default's worst network is more than ``margin`` below the best method there."""
    meta = bench["meta"]
    methods, target = meta["heldout_methods"], meta["default"]
    nets = report.per_network(bench["instances"]["heldout"], bench["ari"]["heldout"], methods)
    summary = report.case_summary(nets, methods, target)
    out = []
    for case, s in summary.items():
        if s["gap_worst"] <= margin:
            continue
        row = nets[case]
        w = row["nets"].index(s["worst_net"])
        best = s["best_method_on_worst"]
        idx = next(i for i, d in enumerate(bench["instances"]["heldout"])
                   if d["case"] == case and d["net"] == s["worst_net"])
        out.append({"case": case, "net": s["worst_net"], "n_nets": s["n"], "best_method": best,
                    "default_recorded": float(row[target][w]), "best_recorded": float(row[best][w]),
                    "default_recorded_seeds": bench["ari"]["heldout"][target][idx],
                    "gap": s["gap_worst"],
                    # the best method across the case's networks, not only where it won
                    "case_mean": {"default": float(row[target].mean()), "best": float(row[best].mean())},
                    "case_nets_best_ahead": int(np.sum(row[best] > row[target] + margin)),
                    "case_nets_default_ahead": int(np.sum(row[target] > row[best] + margin))})
    return out


def spread(x: list[float]) -> dict:
    a = np.asarray(x)
    return {"min": float(a.min()), "median": float(np.median(a)), "max": float(a.max()),
            "q10": float(np.quantile(a, 0.1)), "q90": float(np.quantile(a, 0.9))}


def measure(miss: dict, d: dict, n_seeds: int, default: str) -> dict:
    a, truth, k = d["matrix"], d["truth"], int(d["k"])
    # the benchmark's own draws first: the instance and the code must give the ARIs it recorded
    inst_id = zlib.crc32(f"heldout|{miss['case']}|{miss['net']}".encode())
    replay = [_ari(truth, CANDIDATES[default](a, k, np.random.default_rng([s, inst_id])))
              for s in range(len(miss["default_recorded_seeds"]))]
    t0 = time.process_time()
    dflt = [_ari(truth, cocluster(a, k, np.random.default_rng(s), default).cols) for s in range(n_seeds)]
    t_default = time.process_time() - t0
    best = [_ari(truth, CANDIDATES[miss["best_method"]](a, k, np.random.default_rng(s))) for s in range(n_seeds)]
    sd, sb = spread(dflt), spread(best)
    inside = sd["min"] <= miss["best_recorded"] <= sd["max"]
    median_gap = sb["median"] - sd["median"]
    if inside and median_gap <= MARGIN:
        reading = "seed noise"
    elif sb["min"] > sd["max"]:
        reading = "best ahead at every seed"
    elif median_gap > MARGIN:
        reading = "best ahead in median"
    else:
        reading = "unclear"
    return miss | {"shape": list(a.shape), "k": k, "replay": replay,
                   "replay_matches": bool(np.allclose(np.round(replay, 5), miss["default_recorded_seeds"], atol=1e-5)),
                   "default_seeds": dflt, "best_seeds": best, "default_spread": sd, "best_spread": sb,
                   "default_seconds_per_call": t_default / n_seeds,
                   "recorded_best_inside_default_range": inside, "median_gap": median_gap, "reading": reading}


def render(out: dict) -> str:
    meta, rows = out["meta"], out["rows"]
    n = meta["seeds"]
    lines = ["# The held-out misses against the default's own seed spread", "",
             f"Generated by `{meta['command']}` ({meta['date']}; {meta['runtime_s']:.0f} s, load average "
             f"{meta['load']}) from `reports/methods/benchmark.json` and the benchmark's instance cache. Numbers: "
             "`reports/methods/miss_spread.json`.", "",
             f"For every held-out case where the worst network of the default (`{meta['default']}`) is more than "
             f"{meta['margin']:g} below the best of the benchmark's {meta['n_methods']} methods on that network "
             f"(issue 20's strict criterion), that network was re-run with {n} k-means seeds (`cocluster(a, k, "
             f"np.random.default_rng(s))`, s = 0..{n - 1}) for the default and for the method that was best there. "
             "*Recorded*: the benchmark's mean over its 2 method seeds. The default's benchmark ARIs were replayed "
             "from its own seeds first: "
             + ("they match on every network." if all(r["replay_matches"] for r in rows)
                else "they do NOT match on " + ", ".join(r["case"] for r in rows if not r["replay_matches"]) + ".")
             + f" *Reading*: seed noise when the best's recorded ARI lies inside the default's {n}-seed range and "
             f"the two medians are within {meta['margin']:g}; otherwise the best method is ahead on that network at "
             "every seed (its lowest ARI above the default's highest) or in median (by more than "
             f"{meta['margin']:g}). *Case*: the default's and that method's mean over the case's networks, and on "
             f"how many of them each is ahead of the other by more than {meta['margin']:g} (benchmark's ARIs).", "",
             f"| case | net | shape, k | best there | recorded: default / best (gap) | default, {n} seeds: min / "
             f"median / max | best, {n} seeds: min / median / max | median gap | case mean: default / best "
             "| nets best ahead / default ahead | reading |",
             "|---|---:|---|---|---|---|---|---:|---|---|---|"]
    for r in rows:
        sd, sb = r["default_spread"], r["best_spread"]
        lines.append(
            f"| {r['case']} | {r['net']} | {r['shape'][0]}x{r['shape'][1]}, {r['k']} | `{r['best_method']}` | "
            f"{r['default_recorded']:.3f} / {r['best_recorded']:.3f} ({r['gap']:+.3f}) | "
            f"{sd['min']:.3f} / {sd['median']:.3f} / {sd['max']:.3f} | {sb['min']:.3f} / {sb['median']:.3f} / "
            f"{sb['max']:.3f} | {r['median_gap']:+.3f} | {r['case_mean']['default']:.3f} / "
            f"{r['case_mean']['best']:.3f} | {r['case_nets_best_ahead']} / {r['case_nets_default_ahead']} of "
            f"{r['n_nets']} | {r['reading']} |")
    noise = [r for r in rows if r["reading"] == "seed noise"]
    other = [r for r in rows if r["reading"] != "seed noise"]
    flat = [r for r in rows if r["default_spread"]["max"] - r["default_spread"]["min"] < 1e-3]
    local = [r for r in other if r["case_mean"]["best"] < r["case_mean"]["default"]
             and r["case_nets_best_ahead"] < r["case_nets_default_ahead"]]
    widths = [r["default_spread"]["max"] - r["default_spread"]["min"] for r in rows]
    lines += ["", f"**Read:** {len(noise)} of {len(rows)} misses are seed noise"
              + (f" ({', '.join(r['case'] for r in noise)}: the default reaches the best method's recorded ARI "
                 "with other k-means seeds)" if noise else "")
              + f". On the other {len(other)} the best method is ahead of the default on that network beyond the "
              "default's seed range"
              + (f" ({'; '.join(r['case'] + ': ' + r['reading'] for r in other)})" if other else "")
              + ", so there the criterion does not measure the default's seed noise. The default's own range "
              f"(max - min over {n} seeds) runs from {min(widths):.3f} to {max(widths):.3f}, and is below 0.001 on "
              f"{len(flat)} of the {len(rows)} networks (whatever the seed, its k-means restarts and the refinement "
              "land on one solution). "
              + (f"Of the {len(other)}, on {len(local)} ({', '.join(r['case'] for r in local)}) the method that won "
                 "the worst network trails the default over the case (lower mean, behind on more networks than "
                 "ahead): there the best of ten picks another method's favourable network, a per-network rather "
                 "than a per-seed effect." if other and local else ""), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", default=str(ROOT / "reports" / "methods" / "benchmark.json"))
    parser.add_argument("--cache", default=str(Path.home() / ".cache" / "modularity" / "method_benchmark"))
    parser.add_argument("--seeds", type=int, default=20, help="k-means seeds per method")
    parser.add_argument("--out", default=str(ROOT / "reports" / "methods" / "miss_spread"),
                        help="writes OUT.md and OUT.json")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    bench = json.loads(Path(args.json).read_text())
    default = bench["meta"]["default"]
    if default != DEFAULT_METHOD:
        raise SystemExit(f"error: the benchmark judged {default}, the package default is {DEFAULT_METHOD}")
    found = misses(bench, MARGIN)
    cache = Path(args.cache).expanduser() / f"cases_v{cases.VERSION}_heldout.npz"
    inst = load_instances(cache, [(m["case"], m["net"]) for m in found])
    rows = []
    for m in found:
        rows.append(measure(m, inst[(m["case"], m["net"])], args.seeds, default))
        print(f"{m['case']} net {m['net']}: {rows[-1]['reading']}", file=sys.stderr, flush=True)
    out = {"meta": {"command": " ".join([".venv/bin/python", "scripts/miss_spread.py",
                                         *[shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])]]),
                    "date": time.strftime("%Y-%m-%d"), "runtime_s": time.perf_counter() - t0,
                    "load": ", ".join(f"{x:.1f}" for x in os.getloadavg()), "seeds": args.seeds,
                    "margin": MARGIN, "default": default, "n_methods": len(bench["meta"]["heldout_methods"]),
                    "benchmark": bench["meta"]["command"] + f" ({bench['meta']['date']})"},
           "rows": rows}
    base = Path(args.out)
    base.parent.mkdir(parents=True, exist_ok=True)
    base.with_suffix(".json").write_text(json.dumps(out, indent=1) + "\n")
    base.with_suffix(".md").write_text(render(out))
    print(f"wrote {base}.md and {base}.json in {out['meta']['runtime_s']:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
