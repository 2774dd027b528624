"""Sweeps: the same analysis of many checkpoints of one architecture.

A sweep analyses each checkpoint (for example the checkpoints of a training
run) with identical settings and collects one table, a row per (checkpoint,
layer), so that a statistic can be followed across checkpoints. Nothing here
prints or writes files: :func:`modularity.pipeline.write_sweep` writes a
sweep's folder and :mod:`modularity.cli` drives both.

Every checkpoint is loaded and checked (:func:`modularity.load_model`:
safe loading, keys and shapes against the architecture) before the first is
analysed, so a bad file among many fails in seconds, not after hours.

Each checkpoint is traced anew. A :class:`~modularity.core.graph.ChannelGraph`
is not weight-free: it holds the model's conv and linear modules (weights are
read from them) and the batch-norm scales folded at trace time, so a graph
traced from one checkpoint would give the first checkpoint's batch-norm scales
to every other one. Tracing costs 0.05-0.15 s (googlenet, resnet50, vgg16),
against 0.5-5 s to load a checkpoint and seconds to minutes to analyse it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .analysis import analyze_model
from .errors import ModularityError
from .loading import load_model
from .results import SWEEP_COLUMNS, SWEEP_STATISTICS, AnalysisResult, SweepRow
from .settings import AnalysisSettings

__all__ = ["SweepResult", "SWEEP_COLUMNS", "SWEEP_STATISTICS", "sweep", "checkpoint_labels"]

_INTEGER_COLUMNS = ("checkpoint_index", "n_units", "n_branches", "k", "p_permutations", "ncut_draws", "n_dead")
_TEXT_COLUMNS = ("checkpoint", "layer", "kind", "k_source", "p_method", "ncut_method")


@dataclass
class SweepResult:
    """The analyses of many checkpoints of one architecture, and their table.

    Attributes
    ----------
    arch : str
        The architecture (a registry name).
    checkpoints : list of str
        The checkpoints as given (paths, or ``none``/``DEFAULT``), in order.
    labels : list of str
        A short unique label for each checkpoint (its file name without the
        suffix where those are unique), as used in the table and figures.
    results : list of AnalysisResult
        One per checkpoint, in order (profiles dropped to save memory).
    table : pandas.DataFrame
        One row per (checkpoint, layer), checkpoints in order and layers in
        execution order; columns :data:`SWEEP_COLUMNS`.
    layers : list of str
        The analysed layers, in execution order.
    command : str
    runtime_s : float
    """

    arch: str
    checkpoints: list[str]
    labels: list[str]
    results: list[AnalysisResult]
    table: Any
    layers: list[str] = field(default_factory=list)
    command: str = ""
    runtime_s: float = 0.0

    def to_frame(self):
        """The table (a copy): one row per (checkpoint, layer), columns :data:`SWEEP_COLUMNS`."""
        return self.table.copy()

    def pivot(self, statistic: str):
        """One statistic as a layer x checkpoint DataFrame (layers in execution order, checkpoints in order)."""
        if statistic not in self.table.columns:
            raise KeyError(statistic)
        frame = self.table.pivot(index="layer", columns="checkpoint", values=statistic)
        return frame.reindex(index=self.layers, columns=self.labels)

    def folder_names(self) -> list[str]:
        """Folder of each checkpoint's ``summary.json`` inside a sweep folder: ``checkpoints/NNN_<label>``."""
        width = max(3, len(str(len(self.labels) - 1)))
        return [f"checkpoints/{i:0{width}d}_{_safe(label)}" for i, label in enumerate(self.labels)]

    @property
    def settings(self) -> AnalysisSettings:
        """The analysis settings shared by every checkpoint (those of each ``summary.json``)."""
        return self.results[0].settings

    def to_dict(self) -> dict[str, Any]:
        """The content of ``sweep.json``: what was run, each checkpoint's hash and summary file, the columns."""
        first = self.results[0]
        return {
            "kind": "sweep", "arch": self.arch, "settings": self.settings.record(), "layers": list(self.layers),
            "checkpoints": [
                {"label": label, "weights": given, "weights_sha256": res.weights_sha256,
                 "provenance": res.provenance, "runtime_s": round(res.runtime_s, 3),
                 "summary": f"{folder}/summary.json"}
                for label, given, res, folder in zip(self.labels, self.checkpoints, self.results,
                                                     self.folder_names())],
            "columns": list(SWEEP_COLUMNS), "versions": dict(first.versions), "command": self.command,
            "runtime_s": round(self.runtime_s, 3),
        }

    def __repr__(self) -> str:
        return (f"SweepResult(arch={self.arch!r}, {len(self.checkpoints)} checkpoints x {len(self.layers)} layers, "
                f"{len(self.table)} rows)")

    def _repr_html_(self) -> str:
        """A notebook summary: the header line and the ARI (else the n-cut effect) of each layer and checkpoint."""
        import html

        statistic = "ari" if "ari" in self.table and self.table["ari"].notna().any() else "ncut_effect"
        frame = self.pivot(statistic)
        more = f"<p>... and {len(frame) - 30} more layers: use .pivot()</p>" if len(frame) > 30 else ""
        return (f"<p><b>{html.escape(repr(self))}</b>: {statistic}</p>"
                + frame.head(30).to_html(float_format="{:.3g}".format, na_rep="-") + more)


def _safe(label: str) -> str:
    """A label as a portable folder name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", label).strip("._")[:60] or "checkpoint"


def _key(checkpoint: str) -> str:
    """What identifies a checkpoint for duplicates: the resolved file, or the text for none/DEFAULT/names."""
    path = Path(checkpoint).expanduser()
    try:
        return str(path.resolve()) if path.is_file() else checkpoint
    except (OSError, ValueError):
        return checkpoint


def checkpoint_labels(checkpoints: Sequence[str]) -> list[str]:
    """Short unique labels: file names without suffix, else file names, else the checkpoints as given.

    Examples
    --------
    >>> checkpoint_labels(["run/epoch1.pt", "run/epoch2.pt"])
    ['epoch1', 'epoch2']
    >>> checkpoint_labels(["a/last.pt", "b/last.pt"])
    ['a/last.pt', 'b/last.pt']
    """
    for label in (lambda c: Path(c).stem, lambda c: Path(c).name, str):
        labels = [label(c) or str(c) for c in checkpoints]
        if len(set(labels)) == len(labels):
            return labels
    return [f"{i}:{c}" for i, c in enumerate(checkpoints)]


def _check_arguments(arch: str, checkpoints: Sequence[str]) -> list[str]:
    if not isinstance(arch, str) or not arch:
        raise ModularityError("a sweep needs an architecture name ('python -m modularity models' lists them)")
    if arch.lower().endswith(".onnx"):
        raise ModularityError(f"{arch}: an ONNX model carries its own weights, so it has no checkpoints to sweep; "
                              "name the architecture and pass state-dict checkpoints")
    if isinstance(checkpoints, (str, Path)):
        checkpoints = [checkpoints]
    checkpoints = [str(c) for c in checkpoints]
    if not checkpoints:
        raise ModularityError("a sweep needs at least one checkpoint")
    seen: dict[str, str] = {}
    for c in checkpoints:
        key = _key(c)
        if key in seen:
            same = f" (the same file as {seen[key]})" if seen[key] != c else ""
            raise ModularityError(f"checkpoint {c} is given twice{same}; give each checkpoint once")
        seen[key] = c
    return checkpoints


def sweep(arch: str, checkpoints: Sequence[str], settings: AnalysisSettings | None = None, *,
          progress: bool = False, command: str = "", **changes: Any) -> SweepResult:
    """Analyse checkpoints of one architecture with the same settings and tabulate every layer of each.

    Parameters
    ----------
    arch : str
        A registry name (``python -m modularity models``), such as ``googlenet``.
    checkpoints : sequence of str or Path
        Weights files (``.pt``/``.pth``/``.safetensors`` state dicts), in the
        order they should be shown (for example by training step); also
        ``"none"`` (random initial weights seeded by ``seed``), ``"DEFAULT"``
        or a torchvision weights name, as :func:`modularity.load_model`
        accepts them.
    settings : AnalysisSettings, optional
        The analysis settings of every checkpoint (``control`` does not apply).
    progress : bool
        Progress bars over the checkpoints and the layers.
    command : str
        The command line, recorded in every result and in ``sweep.json``.
    **changes
        Settings to change (``layers="features.*"``, ``n_permutations=20``,
        ...), as :meth:`AnalysisSettings.replace` takes them.

    Returns
    -------
    SweepResult

    Raises
    ------
    ModularityError
        One line, before any analysis: no checkpoint, a checkpoint given twice,
        a setting out of range, or a checkpoint that cannot be loaded into
        ``arch`` (named); and a layer pattern matching nothing, at the first
        checkpoint.

    Examples
    --------
    >>> res = sweep("squeezenet1_1", ["none"], layers="features.3", n_permutations=2,
    ...             n_label_permutations=100)
    >>> res.table[["checkpoint", "layer", "k"]].values.tolist()
    [['none', 'features.3', 2]]
    """
    import pandas as pd

    settings = AnalysisSettings.of(settings, **changes)
    if settings.control == "random-init":
        raise ModularityError("a sweep compares checkpoints with each other; it has no random-init control "
                              "(control='none')")
    settings = settings.replace(control="none")
    checkpoints = _check_arguments(arch, checkpoints)
    labels = checkpoint_labels(checkpoints)
    start = time.perf_counter()
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=2 * len(checkpoints), desc=f"sweep {arch}", unit="step", leave=False)
    try:
        first = None
        for i, checkpoint in enumerate(checkpoints):  # every checkpoint loads before any work starts
            if bar is not None:
                bar.set_postfix_str(f"checking {labels[i][-30:]}")
            loaded = load_model(arch, checkpoint, seed=settings.seed, input_size=settings.input_size)
            first = loaded if i == 0 else first
            del loaded
            if bar is not None:
                bar.update()
        results: list[AnalysisResult] = []
        for i, checkpoint in enumerate(checkpoints):
            if bar is not None:
                bar.set_postfix_str(f"analysing {labels[i][-30:]}")
            loaded = first if first is not None else load_model(arch, checkpoint, seed=settings.seed,
                                                                         input_size=settings.input_size)
            first = None
            result = analyze_model(loaded, settings, progress=progress, command=command)
            for layer in result.layers:
                layer.profile = None  # the matrices are not part of the record; a sweep keeps many results
            results.append(result)
            del loaded
            if bar is not None:
                bar.update()
    finally:
        if bar is not None:
            bar.close()
    names = [layer.name for layer in results[0].layers]
    for label, result in zip(labels, results):
        if [layer.name for layer in result.layers] != names:
            raise ModularityError(f"checkpoint {label} has other layers than {labels[0]}; a sweep compares "
                                  "checkpoints of one architecture")
    rows = [SweepRow.of(label, i, layer) for i, (label, result) in enumerate(zip(labels, results))
            for layer in result.layers]
    table = pd.DataFrame([[getattr(r, c) for c in SWEEP_COLUMNS] for r in rows], columns=SWEEP_COLUMNS)
    for column in SWEEP_COLUMNS:  # fixed dtypes, also where no row has a value (no layer with branches)
        if column in _INTEGER_COLUMNS:
            table[column] = table[column].astype("Int64")  # counts stay integers beside missing values
        elif column not in _TEXT_COLUMNS:
            table[column] = table[column].astype(float)
    return SweepResult(arch=arch, checkpoints=checkpoints, labels=labels, results=results, table=table,
                       layers=names, command=command, runtime_s=time.perf_counter() - start)
