"""Measure what one null draw of a layer costs, to check the progress bar's estimate (``layer_work``).

For every producer layer of each model (random init, the default settings
otherwise), times a few null draws as ``analyze`` makes them and prints the
measured seconds per draw beside :func:`modularity.analysis.model._layer_cost`'s
estimate; ``--fit`` also fits the estimate's coefficients (``_COST``) to the
smallest worst ETA error of a simulated run (:func:`eta_errors`). The bar's ETA
is honest when the ratio measured / estimated is about the same for every
layer: its scale does not matter (the bar's rate absorbs it), its spread does.

    python scripts/progress_cost.py googlenet resnet18 alexnet --draws 3 --json /tmp/cost.json
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np


def measure(model: str, draws: int, layers: str | None) -> list[dict]:
    import torch

    from modularity import load_model
    from modularity.analysis.layer import analyze_layer
    from modularity.analysis.model import _layer_cost, cost_terms
    from modularity.analysis.select import select_layers
    from modularity.core.graph import trace
    from modularity.settings import AnalysisSettings

    torch.set_num_threads(1)
    loaded = load_model(model, "none")
    settings = AnalysisSettings(n_permutations=draws, sequential_h=0)
    graph = trace(loaded.module, loaded.input_size)
    names = select_layers(graph, layers.split(",") if layers else None)
    out = []
    for name in names:
        stamps: list[float] = []
        start = time.perf_counter()
        analyze_layer(graph, name, settings, on_draws=lambda m, s=stamps: s.append(time.perf_counter()))
        total = time.perf_counter() - start
        gaps = np.diff([start, *stamps])
        # the first draw also prepares the consumers' weights; later ones are what the bar counts
        per_draw = float(np.median(gaps[1:])) if len(gaps) > 1 else float(gaps[0])
        out.append({"model": model, "layer": name, "seconds_per_draw": per_draw, "total": total,
                    "estimate": _layer_cost(graph, name), **cost_terms(graph, name)})
        print(f"{model:12s} {name[-40:]:40s} {per_draw:8.3f} s  estimate {out[-1]['estimate']:8.3f}", flush=True)
    return out


def eta_errors(rows: list[dict], est: np.ndarray) -> dict[str, np.ndarray]:
    """Per model, the ETA / true remaining time a bar would show at 10, 25, 50 and 75 % of a run that makes every
    draw of its layers in order, with each layer's draws costing what was measured and the bar counting ``est``."""
    y = np.array([r["seconds_per_draw"] for r in rows])
    out = {}
    for model in dict.fromkeys(r["model"] for r in rows):
        sel = np.array([r["model"] == model for r in rows])
        ct, ce = np.concatenate([[0], np.cumsum(y[sel])]), np.concatenate([[0], np.cumsum(est[sel])])
        ratios = []
        for frac in (0.1, 0.25, 0.5, 0.75):
            now = frac * ct[-1]
            done = np.interp(now, ct, ce)
            ratios.append((ce[-1] - done) / (done / now) / (ct[-1] - now))
        out[model] = np.array(ratios)
    return out


def fit(rows: list[dict]) -> np.ndarray:
    """Non-negative coefficients of the cost terms with the smallest worst ETA error (:func:`eta_errors`, in log),
    started from least-squares fits of log time weighted alike, by sqrt(time) and by time."""
    from scipy.optimize import minimize

    names = [k for k in rows[0] if k.startswith("term_")]
    x = np.array([[r[k] for k in names] for r in rows])
    y = np.array([r["seconds_per_draw"] for r in rows])

    def squares(logc: np.ndarray, w: np.ndarray) -> float:
        return float(np.sum(w * (np.log(x @ np.exp(logc) + 1e-6) - np.log(y + 1e-6)) ** 2) / np.sum(w))

    def worst(logc: np.ndarray) -> float:
        return max(float(np.abs(np.log(v)).max()) for v in eta_errors(rows, x @ np.exp(logc)).values())

    starts = [minimize(squares, np.full(len(names), -20.0), args=(w,), method="Nelder-Mead",
                       options={"maxiter": 40000, "xatol": 1e-5, "fatol": 1e-10}).x
              for w in (np.ones_like(y), np.sqrt(y), y)]
    best = min((minimize(worst, s, method="Nelder-Mead", options={"maxiter": 4000}) for s in starts),
               key=lambda b: b.fun)
    coef = np.exp(best.x)
    print("fit:", dict(zip(names, coef.tolist())), f"worst |log ETA ratio| {best.fun:.3f}")
    for model, ratios in eta_errors(rows, x @ coef).items():
        print(f"  {model}: ETA / true at 10, 25, 50, 75 %: {np.round(ratios, 2).tolist()}")
    return coef


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+")
    parser.add_argument("--draws", type=int, default=3)
    parser.add_argument("--layers", default=None, help="comma-separated globs, as analyze --layers")
    parser.add_argument("--json", default=None, help="write the measurements here")
    parser.add_argument("--load", default=None, help="read measurements from this JSON instead of measuring")
    parser.add_argument("--fit", action="store_true")
    args = parser.parse_args()
    if args.load:
        with open(args.load) as f:
            rows = json.load(f)
    else:
        rows = [r for m in args.models for r in measure(m, args.draws, args.layers)]
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    ratio = np.array([r["seconds_per_draw"] / r["estimate"] for r in rows])
    print(f"measured / estimated over {len(rows)} layers: median {np.median(ratio):.3g}, "
          f"min {ratio.min():.3g}, max {ratio.max():.3g}; load {os.getloadavg()[0]:.1f}")
    if args.fit:
        fit(rows)


if __name__ == "__main__":
    main()
