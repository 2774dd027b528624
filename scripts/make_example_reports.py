"""Regenerate the example results folders in ``reports/`` with the command line itself.

Each example is the folder ``python -m modularity analyze`` writes (report
HTML and PDF, figures, tables, layer graph, ``summary.json`` and
``arrays.npz``, the marker with its manifest), so ``python -m modularity
report reports/NAME`` rebuilds its tables, figures and reports without the
model. Only the unit graph is left out (``--unit-graph none``): it is the
bulk of a folder and ``analyze`` writes it for any model a reader runs.

``efficientnet_lite0``
    the offline default with its packaged ImageNet weights, every setting at
    its default (so with the random-init control the default run adds); made
    on demand, not kept in the repository (about 14 MB, most of it ``units.csv``,
    ``arrays.npz`` and the reports);
``googlenet_random``
    a branched network (torchvision GoogLeNet) with random initial weights:
    its nine Inception block outputs, whose branches are the truth (made on
    demand, not kept in the repository);
``inception_v3_nsfwjs``
    the only real, trained, branched network reachable offline (nsfwjs's
    Keras InceptionV3; run ``python scripts/fetch_inception_v3.py`` first,
    else it is skipped): its eleven Inception block outputs, with the
    random-init control.

Usage::

    python scripts/make_example_reports.py                        # all three
    python scripts/make_example_reports.py --only googlenet_random
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from modularity.cli import main as modularity

INCEPTION_V3_BLOCKS = ",".join(["Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d",
                                 "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c"])

# example name -> the arguments of 'analyze' after the subcommand (the folder and --unit-graph are added)
EXAMPLES: dict[str, list[str]] = {
    "efficientnet_lite0": [],
    "googlenet_random": ["googlenet", "--weights", "none", "--layers", "/^inception[0-9][a-z]$/"],
    "inception_v3_nsfwjs": ["inception_v3_nsfwjs", "--weights", "DEFAULT", "--layers", INCEPTION_V3_BLOCKS],
}


def _nsfwjs_available() -> bool:
    from modularity.zoo.tfjs import default_nsfwjs_path

    return default_nsfwjs_path().is_file()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("reports"), help="parent folder (default: reports)")
    parser.add_argument("--only", choices=sorted(EXAMPLES), action="append", help="make only these examples")
    args = parser.parse_args(argv)
    for name in args.only or list(EXAMPLES):
        if name == "inception_v3_nsfwjs" and not _nsfwjs_available():
            print(f"skipping {name}: run 'python scripts/fetch_inception_v3.py' first")
            continue
        folder = args.out / name
        start = time.perf_counter()
        status = modularity(["analyze", *EXAMPLES[name], "--out", str(folder), "--unit-graph", "none", "--quiet"])
        if status:
            return status
        size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
        print(f"{folder}: {size / 1e6:.1f} MB in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
