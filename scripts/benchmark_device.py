"""Time the torch engine's null draws on the CPU and on a GPU, and check that both give the same p-values.

Each (model, device) runs in its own process: load the torchvision model with
random weights (seed 0, as ``analyze MODEL --weights none`` does), trace it, and
analyse every producer layer with the default settings, ``--draws`` null draws
per layer and ``device`` set to the device (``--device`` of the command line;
:mod:`modularity.analysis.draws` says which settings the device serves).
The table gives the analysis's wall time, the peak memory (resident for the
CPU, allocated on the GPU as well for CUDA) and, per model, the largest
difference between the CPU's and the GPU's p-values over every layer's n-cut
test (and the re-fitted recovery tests). The draws are keyed on
(seed, layer, draw) (:mod:`modularity.core.keyed`), so the two devices draw
the same null and the p-values should agree exactly, up to ties in float64.

A GPU session is short: run the CPU side where time is free and keep its
numbers (``--devices cpu --save runs.json``), then run only the GPU side
against them (``--devices cuda --reference runs.json``).

Usage::

    python scripts/benchmark_device.py                                   # every model, CPU and CUDA
    python scripts/benchmark_device.py --devices cpu --models googlenet --draws 10
    python scripts/benchmark_device.py --devices cuda --reference runs.json --markdown table.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository's benchmarks package

from benchmarks.machine import cpu_name  # noqa: E402

MODELS = ("alexnet", "vgg16", "googlenet", "vit_b_16")

_CHILD = r"""
import json, os, resource, sys, time
import torch
from modularity import analyze
from modularity.core.graph import trace
from modularity.loading import load_model
name, draws, device = sys.argv[1], int(sys.argv[2]), sys.argv[3]
t0 = time.perf_counter()
loaded = load_model(name, "none", seed=0)
graph = trace(loaded.module, tuple(loaded.input_size), loaded.in_channels)
t1 = time.perf_counter()
if device == "cuda":
    torch.cuda.reset_peak_memory_stats()
result = analyze(loaded, graph=graph, n_permutations=draws, seed=0, device=device)
if device == "cuda":
    torch.cuda.synchronize()
t2 = time.perf_counter()
p = {}
for layer in result.layers:
    p[layer.name + ":ncut"] = layer.structure.ncut.p_value
    if layer.recovery is not None and layer.recovery.method not in ("none",):
        p[layer.name + ":recovery"] = layer.recovery.p_value
print(json.dumps({
    "model": name, "device": device, "draws": draws, "load_trace_s": t1 - t0, "analyse_s": t2 - t1,
    "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "peak_gpu_mib": torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else None,
    "layers": len(result.layers), "null_draws": sum(len(l.null_draws["ncut"]) for l in result.layers),
    "p": p}))
"""


def machine(device: str) -> str:
    """The device in words."""
    import torch

    if device == "cuda":
        return f"{torch.cuda.get_device_name(0)} (torch {torch.__version__}, CUDA {torch.version.cuda})"
    cpu = cpu_name(platform.processor() or "CPU")
    return f"{cpu}, {os.cpu_count()} cores (torch {torch.__version__})"


def run(model: str, draws: int, device: str, timeout: float) -> dict:
    env = dict(os.environ)
    root = Path(__file__).resolve().parents[1]
    env["PYTHONPATH"] = str(root) + os.pathsep + env.get("PYTHONPATH", "")
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _CHILD, model, str(draws), device], capture_output=True,
                          text=True, env=env, timeout=timeout, check=False)
    if proc.returncode != 0:
        return {"model": model, "device": device, "draws": draws, "error": proc.stderr.strip().splitlines()[-1:],
                "wall_s": time.perf_counter() - start}
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["wall_s"] = time.perf_counter() - start
    return out


def table(runs: list[dict], reference: list[dict]) -> str:
    """Markdown table of the runs; p-values compared between CPU and CUDA runs of the same model and draws."""
    by = {(r["model"], r["device"], r["draws"]): r for r in reference + runs if "p" in r}
    lines = [("| model | device | draws | layers | null draws | analyse (s) | load + trace (s) | peak memory (MiB) | "
              "max abs(p_cpu - p_gpu) |"), "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in runs:
        if "error" in r:
            lines.append(f"| {r['model']} | {r['device']} | {r['draws']} | failed: {' '.join(r['error'])} | | | | | |")
            continue
        cpu, gpu = by.get((r["model"], "cpu", r["draws"])), by.get((r["model"], "cuda", r["draws"]))
        diff = ""
        if cpu and gpu:
            keys = sorted(set(cpu["p"]) & set(gpu["p"]))
            gaps = [abs(cpu["p"][k] - gpu["p"][k]) for k in keys
                    if cpu["p"][k] == cpu["p"][k] and gpu["p"][k] == gpu["p"][k]]  # NaN: no test
            missing = len(set(cpu["p"]) ^ set(gpu["p"]))
            diff = f"{max(gaps, default=0.0):.3g}" + (f" ({missing} tests on one device only)" if missing else "")
        peak = f"{r['peak_rss_mib']:.0f}" + (f" (GPU {r['peak_gpu_mib']:.0f})" if r.get("peak_gpu_mib") else "")
        lines.append(f"| {r['model']} | {r['device']} | {r['draws']} | {r['layers']} | {r['null_draws']} | "
                     f"{r['analyse_s']:.1f} | {r['load_trace_s']:.1f} | {peak} | {diff} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated torchvision model names")
    parser.add_argument("--devices", default=None, help="cpu, cuda or cpu,cuda (default: cpu and, where "
                                                        "available, cuda)")
    parser.add_argument("--draws", type=int, default=100, help="null draws per layer (default 100)")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per run before giving up")
    parser.add_argument("--save", type=Path, help="write every run (p-values included) to this JSON file")
    parser.add_argument("--reference", type=Path, help="earlier runs (a --save file) to compare p-values with")
    parser.add_argument("--markdown", type=Path, help="also write the table to this file")
    args = parser.parse_args()
    import torch

    devices = args.devices.split(",") if args.devices else ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    if "cuda" in devices and not torch.cuda.is_available():
        raise SystemExit("error: --devices asks for cuda, but torch sees no CUDA GPU here")
    reference = json.loads(args.reference.read_text()) if args.reference else []
    runs = []
    started = time.perf_counter()
    for model in args.models.split(","):
        for device in devices:
            r = run(model, args.draws, device, args.timeout)
            runs.append(r)
            status = r.get("error") or f"{r['analyse_s']:.1f} s, {r['null_draws']} draws"
            print(f"{model:<12} {device:<5} {status}", flush=True)
            if args.save:
                args.save.write_text(json.dumps(reference + runs, indent=1))
    text = "\n".join([("Devices: " + "; ".join(f"{d}: {machine(d)}" for d in devices) + "."),
                      (f"Null draws per layer: at most {args.draws} (sequential stopping, h = 10); seed 0; "
                       f"random-init weights (torch seed 0). Script time {time.perf_counter() - started:.0f} s."),
                      "", table(runs, reference)])
    print(text)
    if args.markdown:
        args.markdown.write_text(text + "\n")


if __name__ == "__main__":
    main()
