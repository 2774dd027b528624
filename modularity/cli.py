"""Command-line front end: ``python -m modularity`` or ``modularity``."""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import sys
from pathlib import Path
from typing import Sequence

from .errors import ModularityError
from .folders import check_output_dir

__all__ = ["main", "build_parser"]

logger = logging.getLogger("modularity")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand."""
    parser = argparse.ArgumentParser(
        prog="modularity",
        description="Find the branch and module structure of vision networks from their weights.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    a = sub.add_parser("analyze", help="analyse a model and write a results folder",
                       description="Trace a model into a channel graph, build each layer's downstream "
                                   "connection-magnitude profile, and report its spectrum, co-clusters, "
                                   "branch recovery and shuffled-weights nulls.")
    a.add_argument("model", nargs="?", default=None,
                   help="registry name ('python -m modularity models') or path to an .onnx file "
                        "(default: efficientnet_lite0 with its packaged ImageNet weights)")
    a.add_argument("--weights", default=None,
                   help="'none' (random init), 'DEFAULT' (the source's trained weights), a torchvision "
                        "weights name such as IMAGENET1K_V1, or a .pt/.pth/.safetensors file "
                        "(default: DEFAULT for the offline default model, none otherwise)")
    a.add_argument("--layers", default=None,
                   help="comma-separated globs of producer layer names (e.g. 'inception*,conv1'), "
                        "or /regex/; default: every layer")
    a.add_argument("--out", default=None, help="results folder (default: results/<model>)")
    a.add_argument("--seed", type=int, default=0, help="seed for shuffles and k-means (default: 0)")
    a.add_argument("--permutations", type=int, default=100,
                   help="most draws of every consumer's weights from the null model, each re-fitted, for the "
                        "n-cut and spectrum (and recovery where units are not exchangeable); default: 100")
    a.add_argument("--label-permutations", type=int, default=100_000,
                   help="label permutations for branch-recovery p-values where the units are exchangeable "
                        "under the null (no re-fit; default: 100000, so p resolves to 1e-5)")
    a.add_argument("--stop-after", type=int, default=10, metavar="H",
                   help="Besag-Clifford sequential stopping: end a layer's null draws once H of them are at "
                        "least as extreme as observed (default: 10; 0: always use every draw)")
    a.add_argument("--null", choices=("shuffle", "shuffle-nonzero", "resample", "reinit", "degree"), default="shuffle",
                   help="null model for the weights: within-layer shuffle (default), shuffle of non-zero "
                        "weights, resampling from the layer's distribution, re-initialisation, or 'degree': "
                        "magnitudes permuted with every unit's total in and out kept (scale explains nothing)")
    a.add_argument("--reduction", choices=("l1", "l2", "max"), default="l1",
                   help="kernel norm for connection magnitudes (default: l1)")
    a.add_argument("--expand", choices=("none", "depthwise", "product", "signed"), default="depthwise",
                   help="look through depthwise consumers (default), also through 1x1 bottlenecks "
                        "(product / signed), or not at all (none)")
    a.add_argument("--k", type=int, default=None,
                   help="number of co-clusters (default: number of true branches, else eigengap)")
    a.add_argument("--input-size", type=int, nargs=2, metavar=("H", "W"), default=None,
                   help="input size for tracing (default: the model's own)")
    a.add_argument("--jobs", type=int, default=1,
                   help="worker processes for the layers (default: 1; 0: one per CPU core); "
                        "results do not depend on it")
    a.add_argument("--quiet", action="store_true", help="no progress bars or messages")

    m = sub.add_parser("models", help="list the model sources and where their weights come from")
    m.add_argument("--all", action="store_true", help="also list every torchvision architecture")

    c = sub.add_parser("clusterability", help="whole-network clusterability (Filan et al.) against shuffled networks",
                       description="One channel graph over all conv layers, spectral clustering into K "
                                   "clusters, and its n-cut compared with within-layer weight shuffles.")
    c.add_argument("model", nargs="?", default=None, help="as for 'analyze' (default: efficientnet_lite0)")
    c.add_argument("--weights", default=None, help="as for 'analyze'")
    c.add_argument("--k", type=int, default=12, help="number of clusters (default: 12)")
    c.add_argument("--shuffles", type=int, default=100, help="shuffled networks for the null (default: 100)")
    c.add_argument("--include-linear", action="store_true", help="add linear layers to the graph")
    c.add_argument("--null", choices=("shuffle", "shuffle-nonzero", "resample", "reinit", "degree"), default="shuffle",
                   help="null networks: within-layer shuffle of the BN-folded weights (default, as Filan et al.) "
                        "or another null model, e.g. 'degree' (every unit's total in and out kept)")
    c.add_argument("--out", default=None, help="results folder (default: results/<model>-clusterability)")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--quiet", action="store_true")

    r = sub.add_parser("report", help="rebuild figures and reports of a results folder without recomputing")
    r.add_argument("folder", help="a results folder written by 'analyze'")
    r.add_argument("--quiet", action="store_true")
    return parser


def _cmd_analyze(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from . import pipeline
    from .analysis import analyze
    from .core.graph import trace

    out = Path(args.out) if args.out else pipeline.default_out(args.model)
    check_output_dir(out)  # before any work: never after a long run
    loaded = pipeline.load_model(args.model, args.weights, seed=args.seed)
    size = tuple(args.input_size) if args.input_size else loaded.input_size
    graph = trace(loaded.module, size)
    result = analyze(loaded, layers=args.layers, reduction=args.reduction, expand=args.expand, k=args.k,
                     n_permutations=args.permutations, seed=args.seed, null=args.null, input_size=size,
                     n_label_permutations=args.label_permutations, sequential_h=args.stop_after,
                     progress=not args.quiet, command=_command(argv), graph=graph, jobs=args.jobs)
    pipeline.save_results(result, graph, out, progress=not args.quiet)
    if not args.quiet:
        _print_summary(result, out)
    return 0


def _command(argv: Sequence[str]) -> str:
    return "python -m modularity " + " ".join(shlex.quote(a) for a in argv)


def _print_summary(result, out: Path) -> None:
    print(f"{result.model} ({result.weights}): {len(result.layers)} layers in {result.runtime_s:.1f} s, "
          f"{result.n_permutations} shuffles each")
    branched = [layer for layer in result.layers if layer.recovery is not None]
    for layer in branched[:20]:
        r = layer.recovery
        print(f"  {layer.name:<40} branches={len(set(layer.branches))} ARI={r.ari:.3f} "
              f"(null {r.null_ari_mean if r.null_ari_mean is not None else float('nan'):.3f}, p={r.p_value:.3g})")
    print(f"results in {out}/: open {out / 'report.html'} (also report.pdf, summary.json, figures/, "
          "graph files and CSV tables)")


def _cmd_models(args: argparse.Namespace) -> int:
    from .zoo import list_sources

    rows = [s for s in list_sources() if args.all or s.family != "torchvision"]
    tv = [s for s in list_sources() if s.family == "torchvision"]
    for s in rows:
        print(f"{s.name}  [offline: {'yes' if s.offline() else 'no'}; licence: {s.licence or 'unknown'}]")
        print(f"    weights: {s.weights_source}")
        if s.notes:
            print(f"    note: {s.notes}")
    if not args.all:
        cached = [s.name for s in tv if s.offline()]
        print(f"\n{len(tv)} torchvision architectures (random init with --weights none; trained weights via the "
              f"torch.hub cache, cached here: {', '.join(cached) or 'none'}); 'models --all' lists them.")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from .pipeline import rebuild

    written = rebuild(args.folder, progress=not args.quiet)
    if not args.quiet:
        print(f"rebuilt {len(written)} files in {args.folder}")
    return 0


def _cmd_clusterability(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from .pipeline import run_clusterability

    result, out = run_clusterability(args.model, args.weights, args.out, k=args.k, n_shuffles=args.shuffles,
                                     seed=args.seed, include_linear=args.include_linear,
                                     progress=not args.quiet, command=_command(argv), null=args.null)
    if not args.quiet:
        print(result.summary())
        print(f"results in {out}/ (clusterability.json, clusterability_layers.csv, clusterability_null.png)")
    return 0


def _terminate(signum: int, frame: object) -> None:
    """SIGTERM: unwind like Ctrl-C, so temporary output folders are removed."""
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (2 for a user error, printed as one line)."""
    import signal

    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if threading_main():
        signal.signal(signal.SIGTERM, _terminate)
    if not getattr(args, "quiet", False):
        logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        if args.command == "analyze":
            return _cmd_analyze(args, argv)
        if args.command == "models":
            return _cmd_models(args)
        if args.command == "report":
            return _cmd_report(args)
        if args.command == "clusterability":
            return _cmd_clusterability(args, argv)
        parser.print_help()
        return 1
    except ModularityError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; no output folder was written or changed", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into a program that stopped reading (e.g. head)
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the interpreter's final flush
        return 0


def threading_main() -> bool:
    """True in the main thread of the main interpreter (where signal handlers may be set)."""
    import threading

    return threading.current_thread() is threading.main_thread()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
