"""Time ``modularity analyze`` per model and record wall time and peak memory in BENCHMARKS.md.

Each model runs in its own subprocess (so peak memory is that run's own) through
the public API: load, trace, analyse every producer layer with the default
permutation count, write the results folder.

Usage::

    python scripts/benchmark.py                      # all models, 100 permutations
    python scripts/benchmark.py --models alexnet --permutations 20 --no-write
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository's benchmarks package

from benchmarks.machine import cpu_name  # noqa: E402

MODELS = [("efficientnet_lite0", "DEFAULT"), ("googlenet", "none"), ("resnet50", "none"), ("alexnet", "none"),
          ("vgg16", "none")]

_CHILD = r"""
import json, resource, sys, tempfile, time
from modularity import analyze, load_model, trace
from modularity.folders import atomic_output_dir
from modularity.pipeline import write_results
name, weights, perms = sys.argv[1], sys.argv[2], int(sys.argv[3])
t0 = time.perf_counter()
loaded = load_model(name, weights)
graph = trace(loaded.module, loaded.input_size)
t1 = time.perf_counter()
result = analyze(loaded, graph=graph, n_permutations=perms)
t2 = time.perf_counter()
with tempfile.TemporaryDirectory() as d, atomic_output_dir(d + "/out") as tmp:
    write_results(result, graph, tmp)
t3 = time.perf_counter()
print(json.dumps({"load_trace_s": t1 - t0, "analyze_s": t2 - t1, "write_s": t3 - t2, "total_s": t3 - t0,
                  "layers": len(result.layers),
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def machine() -> str:
    """A one-line description of this machine."""
    cpu = cpu_name("unknown CPU")
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 2**20:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    return (f"{cpu}, {os.cpu_count()} cores{mem}, {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}")


def run(name: str, weights: str, perms: int) -> dict:
    proc = subprocess.run([sys.executable, "-c", _CHILD, name, weights, str(perms)],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"benchmark of {name} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(m for m, _ in MODELS))
    parser.add_argument("--permutations", type=int, default=100)
    parser.add_argument("--no-write", action="store_true", help="print only; do not update BENCHMARKS.md")
    args = parser.parse_args()
    wanted = args.models.split(",")
    rows = []
    for name, weights in MODELS + [(m, "none") for m in wanted if m not in dict(MODELS)]:
        if name not in wanted:
            continue
        r = run(name, weights, args.permutations)
        rows.append((name, weights, r))
        print(f"{name:<20} {weights:<8} layers={r['layers']:<4} analyse {r['analyze_s']:7.1f} s  "
              f"write {r['write_s']:6.1f} s  total {r['total_s']:7.1f} s  peak {r['peak_rss_mib']:6.0f} MiB",
              flush=True)
        if not args.no_write:
            write(rows, args.permutations, first=len(rows) == 1)


def write(rows: list, permutations: int, first: bool) -> None:
    """Put this run's table at the top of BENCHMARKS.md (replacing its own earlier partial table)."""
    command = "python scripts/benchmark.py" + ("" if permutations == 100 else f" --permutations {permutations}")
    lines = [
        f"## {date.today().isoformat()}: `{command}`",
        "",
        f"Machine: {machine()}.",
        f"Permutations per layer: {permutations}; one process, BLAS and torch on one thread (the default).",
        "",
        "| model | weights | layers | load + trace (s) | analyse (s) | write outputs (s) | total (s) "
        "| peak memory (MiB) |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, weights, r in rows:
        lines.append(f"| {name} | {weights} | {r['layers']} | {r['load_trace_s']:.1f} | {r['analyze_s']:.1f} | "
                     f"{r['write_s']:.1f} | {r['total_s']:.1f} | {r['peak_rss_mib']:.0f} |")
    path = Path(__file__).resolve().parents[1] / "BENCHMARKS.md"
    head = "# Benchmarks\n\nWall time and peak resident memory of a full `analyze` run per model, newest first.\n\n"
    old = path.read_text() if path.exists() else ""
    old = old[old.find("## "):] if "## " in old else ""
    if not first and old.startswith(lines[0]):  # drop this run's own partial table
        nxt = old.find("\n## ", 1)
        old = old[nxt + 1:] if nxt >= 0 else ""
    path.write_text(head + "\n".join(lines) + "\n\n" + old)


if __name__ == "__main__":
    t = time.perf_counter()
    main()
    print(f"benchmark took {time.perf_counter() - t:.0f} s")
