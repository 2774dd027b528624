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
    the control: the same architecture as the default with random initial weights;
``inception_v3_nsfwjs``
    the only real, trained, branched network reachable offline (nsfwjs's Keras
    InceptionV3; run ``python scripts/fetch_inception_v3.py`` first, else it is
    skipped): its eleven Inception block outputs, whose branches are the truth.

To keep each folder small (a few MB) for the repository: 20 permutations by
default (so the smallest p-value is 1/21); the controls and GoogLeNet are
restricted to the layers that carry the comparison (block outputs; the stem,
projections and head of the random EfficientNet); and only the reader's
files are written, all of them linked from ``report.html``: the report (HTML
and PDF), its figures, ``summary.json``,
``layers.csv`` and the layer graph as GraphML. ``python -m modularity
analyze`` writes the rest (per-unit table, unit graphs, other graph formats,
``arrays.npz`` for ``report``).

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
from modularity.arrays import figure_arrays
from modularity.folders import atomic_output_dir
from modularity.output.export import write_rows
from modularity.output.figures import write_exports
from modularity.output.report import build_reports
from modularity.pipeline import profiles_of
from modularity.results import COLUMNS

INCEPTION_V3_BLOCKS = ",".join(["Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d",
                                 "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c"])

# example name -> (model, weights, default layers)
EXAMPLES = {
    "efficientnet_lite0": ("efficientnet_lite0", "DEFAULT", None),
    "googlenet_random": ("googlenet", "none", "/^inception[0-9][a-z]$/"),
    "efficientnet_lite0_random": ("efficientnet_lite0", "none", "_conv_stem,_blocks.*._project_conv,_conv_head"),
    "inception_v3_nsfwjs": ("inception_v3_nsfwjs", "DEFAULT", INCEPTION_V3_BLOCKS),
}


def make_example(name: str, out: Path, permutations: int, layers: str | None, seed: int,
                 jobs: int = 1) -> list[Path]:
    """Analyse one example model and write its results folder into ``out / name``."""
    model, weights, default_layers = EXAMPLES[name]
    layers = layers or default_layers
    loaded = load_model(model, weights)
    graph = trace(loaded.module, loaded.input_size)
    command = f"python -m modularity analyze {model} --weights {weights} --permutations {permutations} --seed {seed}"
    if layers:
        command += f" --layers {shlex.quote(layers)}"
    result = analyze(loaded, layers=layers, n_permutations=permutations, seed=seed, graph=graph, progress=True,
                     command=command, jobs=jobs)
    with atomic_output_dir(out / name) as tmp:
        result.save(tmp / "summary.json")
        profiles = profiles_of(graph, result)
        write_rows(result.rows(), COLUMNS, tmp / "layers.csv")
        write_exports(result, graph, tmp, profiles, formats=("graphml",), unit_formats=())
        build_reports(result, figure_arrays(graph, result, profiles), tmp)
    return sorted(p for p in (out / name).rglob("*") if p.is_file())


def _nsfwjs_available() -> bool:
    from modularity.zoo.tfjs import default_nsfwjs_path

    return default_nsfwjs_path().is_file()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("reports"), help="parent folder (default: reports)")
    parser.add_argument("--only", choices=sorted(EXAMPLES), action="append", help="make only these examples")
    parser.add_argument("--permutations", type=int, default=20, help="weight shuffles per layer (default: 20)")
    parser.add_argument("--layers", default=None, help="restrict to these layers (for a quick check)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=1, help="worker processes (0: one per core)")
    args = parser.parse_args(argv)
    for name in args.only or list(EXAMPLES):
        if name == "inception_v3_nsfwjs" and not _nsfwjs_available():
            print(f"skipping {name}: run 'python scripts/fetch_inception_v3.py' first")
            continue
        start = time.perf_counter()
        make_example(name, args.out, args.permutations, args.layers, args.seed, args.jobs)
        folder = args.out / name
        size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
        print(f"{folder}: {size / 1e6:.1f} MB in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
