"""Checks that run before torch is imported: of every argument that can be judged without a model, and of torch.

Every argument error the command line can decide without torch is refused
here in well under a second, before the pipeline imports torch and loads a
model (seconds to minutes): the model name (against
:mod:`modularity.zoo.catalog`), the weights file, the output folder, the
random-init control against random weights, the results folder of
``report``. The pipeline checks the folders and the control with the same
functions before loading; names and files it leaves to the loaders, which
say the same.

The second job is torch itself.

Under a low address-space limit (``ulimit -v``), importing torch can fail in
ways Python cannot catch: a C++ ``std::bad_alloc`` in a static initialiser
aborts the process, and OpenBLAS exits after failing to allocate its
buffers. Which limit is too low depends on the build (a CUDA build maps
gigabytes of libraries). So where a limit is set, torch is first imported in
a child process under the same limit; if that fails, the command stops with
one line instead of a crash.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from .errors import ModularityError
from .folders import MARKER, check_output_dir
from .settings import AnalysisSettings
from .zoo.catalog import DEFAULT_MODEL, check_model_name, check_weights_choice, default_weights

__all__ = ["check_torch_starts", "default_out", "out_folder", "resolve_control", "check_control_weights",
           "check_model_arguments", "check_analyze", "check_clusterability", "check_sweep", "check_report_folder"]


def default_out(model: str | None, suffix: str = "") -> Path:
    """The default results folder of a model: ``results/<model><suffix>``."""
    return Path("results") / f"{Path(model or DEFAULT_MODEL).stem}{suffix}"


def out_folder(out: str | Path | None, model: str | None, suffix: str = "") -> Path:
    """The results folder asked for, or the model's default; an empty name is refused (not taken as the default)."""
    if out is None:
        return default_out(model, suffix)
    if not str(out).strip():
        raise ModularityError("--out is empty; name a results folder such as results/run1, or leave --out out for "
                              f"{default_out(model, suffix)}")
    return Path(out)


def resolve_control(settings: AnalysisSettings, weights: str) -> AnalysisSettings:
    """The settings with ``control="auto"`` made definite for these weights.

    ``auto`` becomes ``random-init`` for trained weights (anything but
    ``none``, and but ``as given``: a module passed in directly, whose
    training the tool cannot know) and ``none`` otherwise.
    """
    if settings.control != "auto":
        return settings
    trained = str(weights).lower() not in ("none", "as given") and not str(weights).startswith("none ")
    return settings.replace(control="random-init" if trained else "none")


def check_control_weights(weights: str, settings: AnalysisSettings) -> None:
    """Refuse the random-init control for weights that are already random."""
    if settings.control == "random-init" and str(weights).lower() == "none":
        raise ModularityError("the random-init control (--control random-init) compares trained weights with the "
                              "same architecture at random initialisation, but these weights are already random "
                              "(--weights none, the default for a named model); give trained weights (--weights "
                              "DEFAULT or a file), or leave the control out")


def check_model_arguments(model: str | None, weights: str | None) -> None:
    """Refuse a model name or weights file that cannot load, as far as that is known without torch.

    Raises
    ------
    ModularityError
        An unknown registered name (where the catalog is current), timm or
        transformers missing for their names, a Hugging Face repository not
        in the cache, a missing ONNX file, a weights file that is missing,
        unreadable or no checkpoint.
    """
    check_model_name(model)
    check_weights_choice(None if weights is None else str(weights))


def check_analyze(model: str | None, weights: str | None, settings: AnalysisSettings,
                  out: str | Path | None) -> tuple[Path, AnalysisSettings]:
    """Everything ``analyze`` can refuse before loading: the folder, the model, the weights, the control.

    Returns
    -------
    out : Path
        The results folder (the model's default where ``out`` is None).
    settings : AnalysisSettings
        With ``control="auto"`` made definite for the weights.
    """
    folder = out_folder(out, model)
    check_output_dir(folder)  # before any work: never after a long run
    check_model_arguments(model, weights)
    settings = resolve_control(settings, default_weights(model, weights))
    check_control_weights(default_weights(model, weights), settings)
    return folder, settings


def check_clusterability(model: str | None, weights: str | None, out: str | Path | None) -> Path:
    """What ``clusterability`` can refuse before loading: the folder, the model, the weights; returns the folder."""
    folder = out_folder(out, model, "-clusterability")
    check_output_dir(folder)
    check_model_arguments(model, weights)
    return folder


def check_sweep(arch: str, checkpoints: Sequence[str], out: str | Path | None) -> Path:
    """What ``sweep`` can refuse before loading: the folder, the architecture's name, missing checkpoint files."""
    folder = out_folder(out, arch, "-sweep")
    check_output_dir(folder)
    if not isinstance(arch, str) or not arch or arch.lower().endswith(".onnx"):  # the sweep explains these itself
        return folder
    check_model_name(arch)
    for checkpoint in [checkpoints] if isinstance(checkpoints, (str, Path)) else checkpoints:
        check_weights_choice(str(checkpoint))
    return folder


def check_report_folder(folder: str | Path) -> Path:
    """Refuse a ``report`` folder that is missing, a link, holds a link, or was not written by ``analyze``."""
    from .folders import check_no_symlinks, check_replaceable

    folder = Path(folder)
    what = f"report {folder}"
    if folder.is_symlink():
        raise ModularityError(f"{what}: the folder is a symbolic link; give the folder itself "
                              f"({os.path.realpath(folder)})")
    if not folder.is_dir():
        raise ModularityError(f"results folder not found: {folder}")
    try:
        check_no_symlinks(folder, what)
    except OSError as exc:
        raise ModularityError(f"{what} cannot be read ({exc.strerror}: {exc.filename})") from None
    if not os.path.lexists(folder / MARKER):
        raise ModularityError(f"{folder} is not a complete results folder written by modularity (it has no "
                              f"{MARKER} marker); 'report' rewrites only folders that 'analyze' wrote")
    marker = check_replaceable(folder, what, option="report", keep=REPORT_INPUTS)
    if marker.get("kind", "analyze") != "analyze":
        raise ModularityError(f"{what} is a '{marker.get('kind')}' folder; 'report' rebuilds folders that "
                              "'analyze' wrote")
    return folder


REPORT_INPUTS = ("summary.json", "arrays.npz")
"""What ``report DIR`` reads and carries over as they are (so edits to them are not lost)."""

_PROBE = "import torch, torch.nn; torch.zeros(1)"
_checked: list[bool] = []


def _address_limit() -> int | None:
    try:
        import resource
    except ImportError:  # not on POSIX
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    return None if soft == resource.RLIM_INFINITY else int(soft)


def check_torch_starts() -> None:
    """Refuse with one line when torch cannot even be imported under this process's memory limit.

    Does nothing when torch is already imported or no address-space limit is
    set (the usual case); otherwise costs one import of torch in a child
    process (a few seconds), once per process.

    Raises
    ------
    ModularityError
        Naming the limit and what to do.
    """
    if "torch" in sys.modules or _checked:
        return
    limit = _address_limit()
    if limit is None:
        return
    try:
        proc = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.SubprocessError) as exc:  # cannot even start a process: memory or fork limits
        raise ModularityError(f"cannot start under the memory limit of {limit / 2**30:.1f} GiB (ulimit -v): "
                              f"{type(exc).__name__}; raise the limit") from None
    if proc.returncode != 0:
        lines = [ln for ln in (proc.stderr or "").strip().splitlines() if ln.strip()]
        detail = lines[-1].strip()[:160] if lines else f"exit status {proc.returncode}"
        raise ModularityError(f"torch cannot start under the memory limit of {limit / 2**30:.1f} GiB (ulimit -v; "
                              f"{detail}); raise the limit (this torch build needs more address space)")
    _checked.append(True)
