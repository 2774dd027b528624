"""How honest is the analysis progress bar's ETA? Run one model's analysis and compare, at each update of the
bar, the time it said remained with the time that did remain.

    python scripts/eta_check.py alexnet --weights none

Prints, at 10 %, 25 %, 50 % and 75 % of the run's wall time, the ETA shown and the true remaining time, and
their ratio (1 is honest; below 1 the bar promised too little). Same settings as ``analyze`` otherwise.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model")
    parser.add_argument("--weights", default="none")
    parser.add_argument("--permutations", type=int, default=100)
    args = parser.parse_args()

    import torch
    import tqdm.auto

    from modularity import load_model
    from modularity.analysis.model import analyze_model
    from modularity.settings import AnalysisSettings

    torch.set_num_threads(1)
    seen: list[tuple[float, float | None]] = []  # (time, ETA shown then)

    class Recording(tqdm.auto.tqdm):  # type: ignore[misc]
        def update(self, n: float | None = 1) -> bool | None:
            out = super().update(n)
            d = self.format_dict
            rate = d["n"] / d["elapsed"] if d["elapsed"] > 0 and d["n"] else None
            seen.append((time.perf_counter(), (d["total"] - d["n"]) / rate if rate else None))
            return out

    tqdm.auto.tqdm = Recording
    loaded = load_model(args.model, args.weights)
    start = time.perf_counter()
    analyze_model(loaded, AnalysisSettings(n_permutations=args.permutations, control="none"), progress=True)
    end = time.perf_counter()
    times = np.array([t for t, _ in seen])
    print(f"{args.model} ({args.weights}): {end - start:.0f} s, {len(seen)} updates, "
          f"load {os.getloadavg()[0]:.1f}")
    for frac in (0.1, 0.25, 0.5, 0.75):
        i = int(np.searchsorted(times, start + frac * (end - start)))
        i = min(max(i - 1, 0), len(seen) - 1)
        t, eta = seen[i]
        left = end - t
        shown = "n/a" if eta is None else f"{eta:.0f} s"
        ratio = "" if eta is None else f", ratio {eta / left:.2f}"
        print(f"  at {100 * (t - start) / (end - start):3.0f} % of the run: ETA {shown}, true {left:.0f} s{ratio}")


if __name__ == "__main__":
    main()
