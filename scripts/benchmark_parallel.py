#!/usr/bin/env python
"""Null draws of one big layer on 1 process, 2 processes and a 2-worker Dask LocalCluster, in one run.

Issue 10's targets: 2 processes on one big layer at least 1.7x faster than 1,
and the Dask ``LocalCluster`` with 2 workers within 15 % of ``--jobs 2``.
The layer is alexnet's ``features.10`` (random init, torch seed 0): its 256
units are read by ``classifier.1`` at 36 positions, so every draw shuffles
37.7 M weights and co-clusters a 4096 x 256 profile. ``--draws`` draws, all of
them used (``sequential_h=0``), so every contender does the same work; each
contender runs in its own subprocess and the results must be identical.

Usage::

    python scripts/benchmark_parallel.py [--layer features.10] [--draws 24] [--write]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from datetime import date
from pathlib import Path

from benchmark_null import _run as run_child  # the sibling script's child runner and writer
from benchmark_null import add_section

ROOT = Path(__file__).resolve().parents[1]

_CHILD = r"""
import json, sys, time
import torch, torchvision
torch.manual_seed(0)
from modularity import analyze, trace
layer, draws, jobs, backend = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
model = torchvision.models.alexnet(weights=None).eval()
graph = trace(model, (224, 224))
t = time.perf_counter()
res = analyze(model, graph=graph, layers=layer, n_permutations=draws, sequential_h=0, jobs=jobs, backend=backend)
wall = time.perf_counter() - t
print(json.dumps({"wall_s": wall, "ncut_draws": res.layers[0].null_draws["ncut"]}))
"""


def _run(layer: str, draws: int, jobs: int, backend: str) -> dict:
    return run_child(_CHILD, [layer, str(draws), str(jobs), backend], pythonpath=str(ROOT))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--layer", default="features.10")
    parser.add_argument("--draws", type=int, default=24)
    parser.add_argument("--write", action="store_true", help="add the table to BENCHMARKS.md")
    args = parser.parse_args(argv)
    load = os.getloadavg()
    rows = [("1 process (--jobs 1)", _run(args.layer, args.draws, 1, "local")),
            ("2 processes (--jobs 2)", _run(args.layer, args.draws, 2, "local")),
            ("Dask LocalCluster, 2 workers (--backend dask --jobs 2)", _run(args.layer, args.draws, 2, "dask"))]
    same = all(r["ncut_draws"] == rows[0][1]["ncut_draws"] for _, r in rows)
    base, jobs2 = rows[0][1]["wall_s"], rows[1][1]["wall_s"]
    lines = [f"## {date.today().isoformat()}: `python scripts/benchmark_parallel.py --layer {args.layer} "
             f"--draws {args.draws}`", "",
             f"alexnet (random init, torch seed 0), layer `{args.layer}`, {args.draws} null draws, all used; "
             f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores. Wall time of `analyze` "
             "(worker start-up included, tracing not).", "",
             "| contender | wall (s) | speed-up vs 1 process | vs --jobs 2 |", "| --- | ---: | ---: | ---: |"]
    for name, r in rows:
        lines.append(f"| {name} | {r['wall_s']:.1f} | {base / r['wall_s']:.2f}x | {r['wall_s'] / jobs2:.2f} |")
    lines += ["", f"Null draws identical across the three: {'yes' if same else 'NO'}. Load average (1 min) at the "
                  f"start and end: {load[0]:.2f} and {os.getloadavg()[0]:.2f}."]
    text = "\n".join(lines)
    print(text)
    if args.write:
        add_section(text)
    return 0 if same else 1


if __name__ == "__main__":
    t0 = time.perf_counter()
    code = main()
    print(f"benchmark took {time.perf_counter() - t0:.0f} s")
    sys.exit(code)
