"""Regenerate the example results folders in ``reports/``.

Three examples, each a complete results folder (report.html, report.pdf,
figures, tables, graphs) kept small for the repository:

``efficientnet_lite0``
    the offline default: EfficientNet-Lite0 with its packaged ImageNet weights;
``googlenet_random``
    a branched network (torchvision GoogLeNet, Inception blocks) with random
    initial weights: the only branched architecture whose layers all carry
    weights offline. (The ONNX fixture ``light_inception_v1.onnx`` shipped with
    the ``onnx`` wheel has the real graph but constant weights, which carry no
    structure at all, so it would show nothing.)
``efficientnet_lite0_random``
    the control: the same architecture as the default with random initial weights.

To keep each folder small: a modest number of permutations (default 20, so
the smallest p-value is 1/21), the layer-level graph as GraphML and GEXF only,
and no unit-level graph (2+ MB even at 10,000 edges; ``python -m modularity
analyze`` writes it).

Usage::

    python scripts/make_example_reports.py                   # all three, 20 permutations
    python scripts/make_example_reports.py --only googlenet_random --layers 'inception3*' --permutations 5
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

from modularity import analyze, load_model, trace
from modularity.io import atomic_output_dir
from modularity.outputs import write_results

EXAMPLES = {
    "efficientnet_lite0": ("efficientnet_lite0", "DEFAULT"),
    "googlenet_random": ("googlenet", "none"),
    "efficientnet_lite0_random": ("efficientnet_lite0", "none"),
}


def make_example(name: str, out: Path, permutations: int, layers: str | None, seed: int) -> list[Path]:
    """Analyse one example model and write its results folder into ``out / name``."""
    model, weights = EXAMPLES[name]
    loaded = load_model(model, weights)
    graph = trace(loaded.module, loaded.input_size)
    command = f"python -m modularity analyze {model} --weights {weights} --permutations {permutations} --seed {seed}"
    if layers:
        command += f" --layers {shlex.quote(layers)}"
    result = analyze(loaded, layers=layers, n_permutations=permutations, seed=seed, graph=graph, progress=True,
                     command=command)
    with atomic_output_dir(out / name) as tmp:
        written = write_results(result, graph, tmp, progress=True, formats=("graphml", "gexf"), unit_formats=())
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("reports"), help="parent folder (default: reports)")
    parser.add_argument("--only", choices=sorted(EXAMPLES), action="append", help="make only these examples")
    parser.add_argument("--permutations", type=int, default=20, help="weight shuffles per layer (default: 20)")
    parser.add_argument("--layers", default=None, help="restrict to these layers (for a quick check)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    for name in args.only or list(EXAMPLES):
        start = time.perf_counter()
        make_example(name, args.out, args.permutations, args.layers, args.seed)
        folder = args.out / name
        size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
        print(f"{folder}: {size / 1e6:.1f} MB in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
