"""How much of a run the outputs take: this tree against a previous commit, side by side in one run.

For each model, runs the whole ``python -m modularity analyze`` command of
each tree in a fresh process and times, inside it, everything before
``save_results`` (imports, loading, tracing, the analysis) and the outputs
(``save_results``: figures, PDF, HTML, graph files, tables; wall time, and
CPU time of the process and its worker processes, which a busy machine
disturbs less); then times ``python -m modularity report DIR`` on the folder,
and measures the folder's size. Trees alternate (previous,
this, previous, this, ...) so that a change of the machine's load hits both.

    python scripts/benchmark_outputs.py --previous 9011d57 --repeat 1

The previous commit is extracted with ``git archive`` into a temporary
folder and imported from there (``PYTHONPATH``); nothing is installed.
Numbers go to stdout as a Markdown table, with the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# model name -> extra arguments of 'analyze'
MODELS = {
    "default": [],
    "googlenet": ["googlenet", "--layers", "inception??"],
}

_WRAPPER = r"""
import json, resource, sys, time
def cpu():
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime
t0 = time.perf_counter()
import modularity.pipeline as pipeline
from modularity.cli import main
marks = {}
save = pipeline.save_results
def timed(*args, **kwargs):
    marks["analysis_end"], marks["cpu0"] = time.perf_counter(), cpu()
    out = save(*args, **kwargs)
    marks["outputs_end"], marks["cpu1"] = time.perf_counter(), cpu()
    return out
pipeline.save_results = timed
code = main(sys.argv[1:])
t1 = time.perf_counter()
print("BENCH " + json.dumps({"total": t1 - t0, "analysis": marks["analysis_end"] - t0,
                             "outputs": marks["outputs_end"] - marks["analysis_end"],
                             "outputs_cpu": marks["cpu1"] - marks["cpu0"], "code": code}))
"""


def _env(tree: Path) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(tree), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               OPENBLAS_NUM_THREADS="1")
    return env


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def run_one(tree: Path, model: str, out: Path) -> dict[str, float]:
    """One whole 'analyze' command and one 'report DIR' of ``tree`` for ``model``."""
    if out.exists():
        shutil.rmtree(out)
    argv = ["analyze", *MODELS[model], "--out", str(out), "--quiet"]
    load = os.getloadavg()[0]
    proc = subprocess.run([sys.executable, "-c", _WRAPPER, *argv], env=_env(tree), capture_output=True, text=True,
                          cwd=tempfile.gettempdir())
    line = next((x for x in proc.stdout.splitlines() if x.startswith("BENCH ")), None)
    if proc.returncode or line is None:
        raise RuntimeError(f"{tree} {model} failed:\n{proc.stderr[-3000:]}")
    row = json.loads(line[6:])
    start = time.perf_counter()
    rep = subprocess.run([sys.executable, "-m", "modularity", "report", str(out), "--quiet"], env=_env(tree),
                         capture_output=True, text=True, cwd=tempfile.gettempdir())
    if rep.returncode:
        raise RuntimeError(f"report {out} failed:\n{rep.stderr[-3000:]}")
    row["report"] = time.perf_counter() - start
    row["size_mb"] = _size(out) / 1e6
    row["load"] = (load + os.getloadavg()[0]) / 2
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--previous", required=True, help="commit to compare with (e.g. the branch's base)")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="bench_outputs_"))
    previous = work / "previous"
    previous.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", args.previous], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(previous)], input=archive.stdout, check=True)
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    trees = [(f"previous ({args.previous})", previous), (f"this tree ({commit})", ROOT)]
    rows = []
    try:
        for model in args.models:
            for rep in range(args.repeat):
                for label, tree in trees:
                    row = run_one(tree, model, work / f"out_{model}")
                    row.update(model=model, tree=label, rep=rep)
                    rows.append(row)
                    print(json.dumps(row), file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("| model | tree | whole command (s) | before the outputs (s) | outputs (s) | outputs / whole | "
          "outputs CPU, all processes (s) | report DIR (s) | folder (MB) | load (1 min) |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['model']} | {r['tree']} | {r['total']:.1f} | {r['analysis']:.1f} | {r['outputs']:.1f} | "
              f"{r['outputs'] / r['total']:.0%} | {r['outputs_cpu']:.1f} | {r['report']:.1f} | {r['size_mb']:.1f} | "
              f"{r['load']:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
