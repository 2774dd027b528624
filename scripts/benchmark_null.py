"""The null side by side: this tree, a previous commit, and a scikit-learn re-fit loop, in one run.

Workload (issue 10's target): googlenet at random init (torch seed 0), its 8
Inception block outputs that feed another block (inception3a..inception5a),
20 null draws each. Three contenders, each in its own subprocess (own peak memory):

``sklearn-loop``
    What a user would write by hand: for each draw, shuffle every consumer's
    weight (numpy ``Generator.shuffle``), rebuild the profile, fit
    ``sklearn.cluster.SpectralCoclustering(n_clusters=4)`` and score the ARI.
    Its p-value cannot go below 1/21.
``this tree``
    ``modularity.analysis.analyze`` with 20 draws and every draw used
    (``sequential_h=0``), and with the defaults (sequential stopping, h = 10);
    recovery p-values from 10^5 label permutations. A last row runs it with no
    null draws at all (``n_permutations=0``): the work that does not depend on
    the draws (three full spectra per layer, the label-permutation tests, the
    observation and its controls), i.e. the floor under any speed-up of the draws.
``previous commit``
    The same call at ``--previous`` (default: the commit before this work),
    checked out in a temporary worktree.

Prints a table and, with ``--write``, adds it to BENCHMARKS.md.

Usage::

    python scripts/benchmark_null.py [--previous 676a719] [--draws 20] [--write]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BLOCKS = "inception3a,inception3b,inception4a,inception4b,inception4c,inception4d,inception4e,inception5a"

_PRELUDE = r"""
import json, resource, sys, time
import numpy as np, torch, torchvision
torch.manual_seed(0)
model = torchvision.models.googlenet(weights=None, aux_logits=False, init_weights=True).eval()
blocks, draws = sys.argv[1].split(","), int(sys.argv[2])
import os, modularity
NEW = os.path.isdir(os.path.join(os.path.dirname(modularity.__file__), "core"))  # the layout since the restructure
if NEW:
    from modularity.core.graph import trace
    from modularity.core.magnitude import downstream_profile
else:
    from modularity.graph import trace
    from modularity.magnitude import downstream_profile
graph = trace(model, (224, 224))
wall, cpu = time.perf_counter(), time.process_time()
"""
_REPORT = r"""
print(json.dumps({"wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu,
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, **extra}))
"""

SKLEARN = _PRELUDE + r"""
import warnings
from threadpoolctl import threadpool_limits
from sklearn.cluster import SpectralCoclustering
from sklearn.metrics import adjusted_rand_score
rng = np.random.default_rng(0)
extra = {"min_p": None}
ps = []
with threadpool_limits(1), warnings.catch_warnings():
    warnings.simplefilter("ignore")
    torch.set_num_threads(1)
    for name in blocks:
        truth = graph.layers[name].branches
        prof = downstream_profile(graph, name, "l1", "depthwise")
        def score(a):
            live = a.sum(axis=0) > 0
            m = SpectralCoclustering(n_clusters=4, random_state=int(rng.integers(2**31))).fit(a[:, live] + 1e-12)
            return adjusted_rand_score(truth[live], m.column_labels_)
        obs = score(prof.matrix)
        null = []
        for _ in range(draws):
            shuffled = {}
            for c in prof.consumers:
                w = graph.weight(c).numpy().astype(np.float64).copy()
                rng.shuffle(w.reshape(-1))
                shuffled[c] = torch.from_numpy(w)
            null.append(score(downstream_profile(graph, name, "l1", "depthwise", weights=shuffled).matrix))
        ps.append((1 + sum(v >= obs for v in null)) / (draws + 1))
extra["min_p"] = min(ps)
extra["draws_used"] = draws * len(blocks)
""" + _REPORT

OURS = _PRELUDE + r"""
from modularity import analyze
kwargs = json.loads(sys.argv[3])
res = analyze(model, graph=graph, layers=",".join(blocks), **{"n_permutations": draws, **kwargs})
extra = {"min_p": min(l.recovery.p_value for l in res.layers),
         "draws_used": sum(l.structure["ncut"]["n"] if isinstance(l.structure, dict) else l.structure.ncut.n
                           for l in res.layers)}
""" + _REPORT


def _run(code: str, args: list[str], pythonpath: str | None = None) -> dict:
    import os

    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    # cwd: a -c child puts its working folder first on sys.path, ahead of PYTHONPATH
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, check=False,
                          cwd=pythonpath or tempfile.gettempdir())
    if proc.returncode != 0:
        raise SystemExit(f"benchmark child failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--previous", default="676a719", help="commit to compare against")
    parser.add_argument("--draws", type=int, default=20)
    parser.add_argument("--write", action="store_true", help="add the table to BENCHMARKS.md")
    args = parser.parse_args(argv)
    load = os.getloadavg()
    common = [BLOCKS, str(args.draws)]
    rows = []
    rows.append(("scikit-learn re-fit loop", _run(SKLEARN, common)))
    rows.append((f"scikit-learn re-fit loop, {10 * args.draws} draws", _run(SKLEARN, [BLOCKS, str(10 * args.draws)])))
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", tmp, args.previous],
                       capture_output=True, check=True)
        try:
            rows.append((f"previous commit {args.previous}", _run(OURS, common + ["{}"], pythonpath=tmp)))
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", tmp], capture_output=True)
    rows.append(("this tree, every draw (sequential_h=0)", _run(OURS, common + ['{"sequential_h": 0}'], str(ROOT))))
    rows.append(("this tree, defaults (sequential, h=10)", _run(OURS, common + ["{}"], str(ROOT))))
    rows.append(("this tree, defaults, --jobs 2", _run(OURS, common + ['{"jobs": 2}'], str(ROOT))))
    rows.append(("this tree, recovery only: no n-cut draws (n_permutations=0)",
                 _run(OURS, common + ['{"n_permutations": 0}'], str(ROOT))))
    base = rows[0][1]["wall_s"]
    lines = [f"## {date.today().isoformat()}: `python scripts/benchmark_null.py --draws {args.draws}`", "",
             f"googlenet (random init, torch seed 0), 8 Inception block outputs ({BLOCKS.replace(',', ', ')}), "
             f"{args.draws} null draws each; each contender in its own process on one BLAS thread.", "",
             "| contender | wall (s) | CPU (s, main process) | peak memory (MiB) | speed-up vs scikit-learn loop | "
             "null draws fitted | smallest recovery p |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name, r in rows:
        lines.append(f"| {name} | {r['wall_s']:.1f} | {r['cpu_s']:.1f} | {r['peak_rss_mib']:.0f} | "
                     f"{base / r['wall_s']:.1f}x | {r.get('draws_used', '')} | {r['min_p']:.2g} |")
    lines += ["", f"Load average (1 min) at the start and end of the run: {load[0]:.2f} and {os.getloadavg()[0]:.2f}."]
    text = "\n".join(lines)
    print(text)
    if args.write:
        add_section(text)
    return 0


def add_section(text: str) -> None:
    """Put ``text`` (a ``## `` section) at the top of BENCHMARKS.md, below its title."""
    path = ROOT / "BENCHMARKS.md"
    head, _, rest = path.read_text().partition("\n## ")
    path.write_text(head.rstrip() + "\n\n" + text + "\n\n## " + rest)


if __name__ == "__main__":
    t = time.perf_counter()
    code = main()
    print(f"benchmark took {time.perf_counter() - t:.0f} s")
    sys.exit(code)
