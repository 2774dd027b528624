"""Trace one architecture per timm family into a channel graph; write the per-family table.

A *family* is a module of ``timm.models`` (``timm.list_modules()``: ``vision_transformer``,
``convnext``, ``beit`` ...); its architectures are ``timm.list_models(module=family)``.
For each family the script takes the variant with the fewest parameters (counted on the
meta device, so nothing is allocated; ties broken by name), builds it at random init
(``timm.create_model(name, pretrained=False)``, torch seed 0), and traces it with
:func:`modularity.core.graph.trace` at its own input size
(``model.pretrained_cfg["input_size"]``). Each model runs in its own forked process
with a time limit; its peak memory is recorded.

Bounds (stated in the report):
- a family whose smallest variant has more than ``--max-params`` parameters, or whose
  input has more than ``--max-pixels`` pixels, is skipped (not built);
- a model that takes longer than ``--timeout`` seconds is stopped and counted as not
  traced.

Writes ``reports/timm_sweep.md`` (the table, with the command, timm and torch versions
and the counts at the top) and ``reports/timm_sweep.json`` (one record per family; the
test ``tests/zoo/test_timm_sweep.py`` reads its picks from there).

Usage::

    PYTHONPATH=. python scripts/timm_sweep.py [--families beit,deit] [--timeout 300] [--write]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import resource
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WEIGHTED_NAMES = ("Conv1d", "Conv2d", "ConvTranspose2d", "Linear")
REPORT_MD = ROOT / "reports" / "timm_sweep.md"
REPORT_JSON = ROOT / "reports" / "timm_sweep.json"

# Families whose models are transformers in the ViT line: every one must get its attention heads as branches.
VIT_FAMILIES = ("vision_transformer", "deit", "beit", "eva", "cait", "vision_transformer_relpos",
                "vision_transformer_sam", "vision_transformer_hybrid", "naflexvit")


def families() -> dict[str, list[str]]:
    """Every timm family (a module of ``timm.models``) with its architecture names."""
    import timm

    out = {}
    for module in timm.list_modules():
        names = timm.list_models(module=module)
        if names:
            out[module] = sorted(names)
    return out


def count_parameters(name: str) -> int:
    """Parameters of ``name`` at its default configuration, built on the meta device (no memory)."""
    import timm
    import torch

    with warnings.catch_warnings(), torch.device("meta"):
        warnings.simplefilter("ignore")
        model = timm.create_model(name, pretrained=False)
    return sum(p.numel() for p in model.parameters())


def smallest(names: list[str]) -> tuple[str, int]:
    """The architecture with the fewest parameters (ties: the first name in sorted order)."""
    counts = []
    for n in names:
        try:
            counts.append((count_parameters(n), n))
        except Exception:  # a name timm cannot build at its defaults: not a candidate
            continue
    if not counts:
        raise RuntimeError("no architecture of the family builds")
    p, n = min(counts)
    return n, p


def input_size(model) -> tuple[int, int]:
    """Height and width the model expects, from its pretrained config (224 x 224 if it gives none)."""
    cfg = getattr(model, "pretrained_cfg", None) or {}
    size = cfg.get("input_size") or (3, 224, 224)
    return int(size[-2]), int(size[-1])


def _weighted_types() -> tuple[type, ...]:
    from torch import nn

    return tuple(getattr(nn, n) for n in WEIGHTED_NAMES)


def unaccounted(graph, executed: set[str]) -> set[str]:
    """Weighted modules that ran but are neither layers of ``graph`` nor named in its notes.

    A fused q/k/v projection counts through its parts (``<name>.q``, ``.k``, ``.v``); a module the tracer
    chose not to make a layer (a position-bias MLP reading only constants, a token-mixing linear) through its
    note ("... not a layer here").
    """
    layers = {n for n, layer in graph.layers.items() if layer.kind in ("conv", "linear")}
    layers |= {n.rsplit(".", 1)[0] for n in layers if n.rsplit(".", 1)[-1] in ("q", "k", "v")}
    noted = {note.split(":")[0] for note in graph.notes if "not a layer here" in note}
    return executed - layers - noted


def tracer_used(model) -> str:
    """``"symbolic"`` when torch.fx traces ``model`` alone, ``"values"`` when the value-carrying fallback is needed."""
    from modularity.core import fx_capture

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fx_capture._symbolic(model)
    except Exception:  # whatever fx raises: the fallback traced it
        return "values"
    return "symbolic"


def trace_one(name: str, size: tuple[int, int] | None = None, which_tracer: bool = True) -> dict:
    """Build ``name`` at random init (seed 0) and trace it; a record of what came out.

    ``which_tracer`` also records whether torch.fx alone traces it (one more symbolic trace).
    """
    import timm
    import torch

    from modularity.core.graph import trace
    from modularity.errors import ModularityError

    torch.manual_seed(0)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = timm.create_model(name, pretrained=False).eval()
    t1 = time.perf_counter()
    size = size or input_size(model)
    rec = {"model": name, "input": list(size), "build_s": round(t1 - t0, 2)}
    executed: set[str] = set()
    # The trace runs the model's own modules: hooks see which weighted ones ran.
    hooks = [m.register_forward_hook(lambda *_, n=n: executed.add(n))
             for n, m in model.named_modules() if isinstance(m, _weighted_types())]
    try:
        graph = trace(model, size)
    except ModularityError as exc:
        rec.update(traced=False, error=str(exc), trace_s=round(time.perf_counter() - t1, 2))
        return rec
    finally:
        for h in hooks:
            h.remove()
    rec["trace_s"] = round(time.perf_counter() - t1, 2)
    rec["unaccounted"] = sorted(unaccounted(graph, executed))
    if which_tracer:
        rec["tracer"] = tracer_used(model)
    layers = [layer for layer in graph.layers.values() if layer.kind != "input"]
    rec.update(
        traced=True, error="",
        layers=len(layers),
        layers_with_branches=sum(layer.branches is not None for layer in layers),
        head_layers=sum(layer.branch_source == "heads" for layer in layers),
        producers=len(graph.producer_names()),
        notes=len(graph.notes),
    )
    return rec


def _child(name: str, size, conn) -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)
    try:
        rec = trace_one(name, size)
    except Exception as exc:  # an error outside the tracer (timm cannot build it, out of memory, ...)
        rec = {"model": name, "traced": False, "error": f"{type(exc).__name__}: {str(exc).strip().splitlines()[0]}"
               if str(exc).strip() else type(exc).__name__}
    rec["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    conn.send(rec)
    conn.close()


def run_isolated(name: str, timeout: float, size=None) -> dict:
    """:func:`trace_one` in a forked process, stopped after ``timeout`` seconds."""
    import timm  # noqa: F401  (imported before forking: each child starts with them loaded)

    import modularity.core.graph  # noqa: F401

    ctx = mp.get_context("fork")
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(name, size, send))
    t0 = time.perf_counter()
    proc.start()
    send.close()
    rec = None
    if recv.poll(timeout):
        try:
            rec = recv.recv()
        except EOFError:
            rec = None
    proc.join(5)
    if proc.is_alive():
        proc.kill()
        proc.join()
    wall = round(time.perf_counter() - t0, 2)
    if rec is None:
        why = f"stopped after {timeout:.0f} s" if wall >= timeout else f"the process died (exit code {proc.exitcode})"
        rec = {"model": name, "traced": False, "error": why}
    rec["seconds"] = wall
    return rec


def sweep(fams: dict[str, list[str]], timeout: float, max_params: float, max_pixels: int,
          log=print) -> list[dict]:
    records = []
    for fam, names in fams.items():
        try:
            name, params = smallest(names)
        except RuntimeError as exc:
            records.append({"family": fam, "model": "", "traced": False, "error": str(exc)})
            continue
        rec = {"family": fam, "params": params}
        size = None
        if params > max_params:
            rec.update(model=name, traced=False, skipped=True,
                       error=f"skipped: smallest variant has {params / 1e6:.0f} M parameters "
                             f"(> {max_params / 1e6:.0f} M)")
        else:
            import timm

            cfg = timm.models.get_pretrained_cfg(name)
            size = tuple((cfg.input_size if cfg is not None and cfg.input_size else (3, 224, 224))[-2:])
            if size[0] * size[1] > max_pixels:
                rec.update(model=name, traced=False, skipped=True, input=list(size),
                           error=f"skipped: input {size[0]} x {size[1]} has more than {max_pixels} pixels")
            else:
                rec.update(run_isolated(name, timeout))
        records.append(rec)
        log(f"{fam:28s} {rec['model']:40s} {'yes' if rec.get('traced') else 'no ':3s} "
            f"{rec.get('seconds', 0):7.1f}s {rec.get('error', '')[:150]}")
    return records


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def write_report(records: list[dict], command: str, args) -> None:
    import timm
    import torch

    n = len(records)
    traced = sum(bool(r.get("traced")) for r in records)
    skipped = sum(bool(r.get("skipped")) for r in records)
    vit = [r for r in records if r["family"] in VIT_FAMILIES]
    vit_heads = sum(bool(r.get("head_layers")) for r in vit)
    heads = sum(bool(r.get("head_layers")) for r in records)
    failed = [r for r in records if not r.get("traced") and not r.get("skipped")]
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    header = (
        f"timm {timm.__version__}, torch {torch.__version__}, Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs (load average {load[0]:.1f} at the end); one thread per model."
    )
    counts = (
        f"**{traced} of {n} families traced ({100 * traced / n:.0f}%)**; {len(failed)} failed, {skipped} skipped by "
        f"the bounds below. Attention heads as branches in {heads} families; in {vit_heads} of the {len(vit)} "
        f"ViT-line families ({', '.join(r['family'] for r in vit)})."
    )
    rule = (
        "Rule: for each family (`timm.list_modules()`), the variant of `timm.list_models(module=family)` with the "
        "fewest parameters (counted on the meta device); random init (`pretrained=False`, torch seed 0); input "
        "size from `pretrained_cfg[\"input_size\"]`. Bounds: smallest variant above "
        f"{args.max_params / 1e6:.0f} M parameters or an input above {args.max_pixels} pixels is skipped; a model "
        f"taking more than {args.timeout:.0f} s is stopped. Each model runs in its own process (peak RSS listed)."
    )
    columns = (
        "Columns: *layers* are the layers of the channel graph (convs, linears, concatenations; a fused q/k/v "
        "projection counts once per part); *branched* those with branch labels (concatenation inputs, conv "
        "groups, channel splits, attention heads); *heads* whether some layer is labelled by attention head; "
        "*tracer* `symbolic` (torch.fx) or `values` (the value-carrying fallback for shape logic); "
        "*unmapped* weighted modules that ran in the forward pass but are neither layers nor named in the "
        "graph's notes (0 everywhere is the check); *s* wall seconds for build + trace."
    )
    lines = [
        "# timm sweep: one architecture per family, traced into a channel graph",
        "",
        f"Command: `{command}`",
        "",
        header,
        "",
        counts,
        "",
        rule,
        "",
        columns,
        "",
        ("| family | model | params (M) | input | traced | tracer | layers | branched | heads | unmapped | s "
         "| peak MB | error |"),
        "|---|---|---:|---|---|---|---:|---:|---|---:|---:|---:|---|",
    ]
    for r in records:
        size = "x".join(map(str, r["input"])) if r.get("input") else ""
        lines.append(
            f"| {r['family']} | {r.get('model', '')} | {r.get('params', 0) / 1e6:.1f} | {size} | "
            f"{'yes' if r.get('traced') else ('skipped' if r.get('skipped') else 'no')} | {r.get('tracer', '')} | "
            f"{r.get('layers', '')} | {r.get('layers_with_branches', '')} | "
            f"{('yes' if r.get('head_layers') else 'no') if r.get('traced') else ''} | "
            f"{len(r['unaccounted']) if 'unaccounted' in r else ''} | "
            f"{r.get('seconds', '')} | {r.get('peak_rss_mb', '')} | {_md_escape(r.get('error', ''))} |")
    REPORT_MD.write_text("\n".join(lines) + "\n", encoding="utf-8")
    meta = {"command": command, "timm": timm.__version__, "torch": torch.__version__,
            "families": n, "traced": traced, "skipped": skipped, "failed": len(failed),
            "bounds": {"max_params": args.max_params, "max_pixels": args.max_pixels, "timeout_s": args.timeout}}
    REPORT_JSON.write_text(json.dumps({"meta": meta, "records": records}, indent=1) + "\n", encoding="utf-8")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--families", help="comma-separated families (default: all)")
    parser.add_argument("--timeout", type=float, default=300, help="seconds per model (default 300)")
    parser.add_argument("--max-params", type=float, default=500e6,
                        help="skip families whose smallest variant has more parameters (default 5e8)")
    parser.add_argument("--max-pixels", type=int, default=1024 * 1024,
                        help="skip models whose input has more pixels (default 1024 x 1024)")
    parser.add_argument("--write", action="store_true", help="write reports/timm_sweep.md and .json")
    args = parser.parse_args(argv)
    fams = families()
    if args.families:
        wanted = args.families.split(",")
        unknown = [f for f in wanted if f not in fams]
        if unknown:
            print(f"error: unknown timm families: {', '.join(unknown)}", file=sys.stderr)
            return 2
        fams = {f: fams[f] for f in wanted}
    records = sweep(fams, args.timeout, args.max_params, args.max_pixels)
    traced = sum(bool(r.get("traced")) for r in records)
    print(f"{traced} of {len(records)} families traced")
    if args.write:
        command = "PYTHONPATH=. python scripts/timm_sweep.py " + " ".join(argv if argv is not None else sys.argv[1:])
        write_report(records, command.strip(), args)
        print(f"wrote {REPORT_MD.relative_to(ROOT)} and {REPORT_JSON.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
