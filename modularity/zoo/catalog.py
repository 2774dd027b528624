"""The names the model registry knows, without importing torch: for refusing a bad name in well under a second.

Building the registry imports torch and torchvision (seconds), so the command
line checks a model name against this catalog first
(:mod:`modularity.preflight`). The torchvision list is that of one
torchvision release, :data:`TORCHVISION_RELEASE`; ``tests/zoo/test_catalog.py``
checks it against ``torchvision.models.list_models()`` and :data:`OWN_SOURCES`
against the registry, so neither can go stale unnoticed. With another
torchvision installed, a name missing here is left to the registry to judge
(slower, but never a wrong refusal). timm's architectures are listed the same
way, in ``modularity/data/timm_models.txt`` (1,371 names of
:data:`TIMM_RELEASE`; regenerate it from ``sorted(timm.list_models())``).
"""

from __future__ import annotations

import difflib
import functools
import importlib.metadata
from pathlib import Path

from ..errors import ModularityError
from .hf_cache import is_hf_name, is_model_folder, resolve_folder

__all__ = ["DEFAULT_MODEL", "OWN_SOURCES", "TORCHVISION_RELEASE", "TORCHVISION_CLASSIFIERS", "WEIGHTS_SUFFIXES",
           "default_weights", "catalog_is_current", "known_names", "unknown_model_message", "check_model_name",
           "check_weights_choice", "TIMM_RELEASE", "timm_architectures", "unknown_timm_message"]

DEFAULT_MODEL = "efficientnet_lite0"

OWN_SOURCES = ("efficientnet_lite0", "alexnet_bvlc", "inceptionv1_lucid", "inception_v3_nsfwjs", "efficientnet_lite1",
               "craft_mlt_25k", "all_minilm_l6_v2")
"""Registered sources that are not torchvision's: the offline default, the custom ones, the packaged ones."""

TORCHVISION_RELEASE = "0.29.1"
"""The torchvision release whose classifiers :data:`TORCHVISION_CLASSIFIERS` lists."""
TORCHVISION_CLASSIFIERS = (
    "alexnet", "convnext_base", "convnext_large", "convnext_small", "convnext_tiny", "densenet121", "densenet161",
    "densenet169", "densenet201", "efficientnet_b0", "efficientnet_b1", "efficientnet_b2", "efficientnet_b3",
    "efficientnet_b4", "efficientnet_b5", "efficientnet_b6", "efficientnet_b7", "efficientnet_v2_l",
    "efficientnet_v2_m", "efficientnet_v2_s", "googlenet", "inception_v3", "maxvit_t", "mnasnet0_5", "mnasnet0_75",
    "mnasnet1_0", "mnasnet1_3", "mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_small", "regnet_x_16gf",
    "regnet_x_1_6gf", "regnet_x_32gf", "regnet_x_3_2gf", "regnet_x_400mf", "regnet_x_800mf", "regnet_x_8gf",
    "regnet_y_128gf", "regnet_y_16gf", "regnet_y_1_6gf", "regnet_y_32gf", "regnet_y_3_2gf", "regnet_y_400mf",
    "regnet_y_800mf", "regnet_y_8gf", "resnet101", "resnet152", "resnet18", "resnet34", "resnet50",
    "resnext101_32x8d", "resnext101_64x4d", "resnext50_32x4d", "shufflenet_v2_x0_5", "shufflenet_v2_x1_0",
    "shufflenet_v2_x1_5", "shufflenet_v2_x2_0", "squeezenet1_0", "squeezenet1_1", "swin_b", "swin_s", "swin_t",
    "swin_v2_b", "swin_v2_s", "swin_v2_t", "vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19",
    "vgg19_bn", "vit_b_16", "vit_b_32", "vit_h_14", "vit_l_16", "vit_l_32", "wide_resnet101_2", "wide_resnet50_2",
)
"""``torchvision.models.list_models(module=torchvision.models)`` of :data:`TORCHVISION_RELEASE`."""

TIMM_RELEASE = "1.0.31"
"""The timm release whose ``list_models()`` ``modularity/data/timm_models.txt`` holds."""

WEIGHTS_SUFFIXES = (".pt", ".pth", ".safetensors", ".bin", ".ckpt")
"""Names the loaders read as a weights file even before looking at the file."""

_TIMM = "timm/"
_OPTIONAL = {"timm": ("timm", "timm/<name> models"),
             "transformers": ("hf", "Hugging Face models (hf/<org>/<name> and model folders)")}


def default_weights(model: str | None, weights: str | None) -> str:
    """The weights choice the CLI and API use: the given one, else trained for the default model, else none."""
    if weights is not None:
        return str(weights)
    return "DEFAULT" if model is None else "none"


def _release(version: str) -> str:
    return version.split("+", 1)[0]


def _installed(dist: str) -> str | None:
    try:
        return _release(importlib.metadata.version(dist))
    except importlib.metadata.PackageNotFoundError:
        return None


@functools.cache
def timm_architectures() -> tuple[str, ...]:
    """``sorted(timm.list_models())`` of :data:`TIMM_RELEASE`, read from the package's data."""
    text = (Path(__file__).resolve().parents[1] / "data" / "timm_models.txt").read_text(encoding="utf-8")
    return tuple(line for line in text.splitlines() if line and not line.startswith("#"))


def unknown_timm_message(arch: str, names: list[str] | tuple[str, ...]) -> str:
    """The one line that refuses an architecture timm does not know, with close names."""
    close = difflib.get_close_matches(arch, list(names), n=3, cutoff=0.6)
    hint = f"; did you mean: {', '.join(_TIMM + c for c in close)}?" if close else ""
    return (f"unknown timm model '{arch}'{hint} (any name in timm.list_models() works, e.g. timm/resnet50 or "
            "timm/vit_base_patch16_224.augreg_in21k)")


def catalog_is_current() -> bool:
    """Whether the installed torchvision is :data:`TORCHVISION_RELEASE`, so that its names are all listed here."""
    try:
        return _release(importlib.metadata.version("torchvision")) == TORCHVISION_RELEASE
    except importlib.metadata.PackageNotFoundError:
        return False


def known_names() -> tuple[str, ...]:
    """Every registered name this catalog lists: the own sources, then torchvision's classifiers."""
    return OWN_SOURCES + TORCHVISION_CLASSIFIERS


def close_names(name: str, names: list[str] | tuple[str, ...], n: int = 5) -> list[str]:
    """Names that look like ``name``, best first."""
    names = list(names)
    close = difflib.get_close_matches(name, names, n=n, cutoff=0.5)
    close += [m for m in names if name.lower() in m.lower() and m not in close]
    return close[:n]


def unknown_model_message(name: str, names: list[str] | tuple[str, ...]) -> str:
    """The one line that refuses an unknown registered name, with close names."""
    close = close_names(name, names)
    hint = f"; did you mean: {', '.join(close)}?" if close else ""
    return (f"unknown model '{name}'{hint} (run 'python -m modularity models' for the full list; timm/<name>, "
            "hf/<org>/<name>, a model folder or a path to an .onnx file also work)")


def _is(path: str, test: str) -> bool:
    """``Path(path).exists()`` / ``.is_file()`` that is False for names no file can have (too long, NUL)."""
    try:
        return bool(getattr(Path(path), test)())
    except (OSError, ValueError):
        return False


def _require_installed(module: str) -> None:
    import importlib.util

    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        extra, what = _OPTIONAL[module]
        raise ModularityError(f"{what} need the package '{module}': pip install 'cnn-modularity[{extra}]'")


def check_model_name(name: str | None) -> str:
    """Refuse a model name that cannot load, as far as that is known without importing torch.

    Follows :func:`~modularity.zoo.registry.load_source`'s order: ``timm/``
    names (timm must be installed; the architecture is checked against the
    listed one of :data:`TIMM_RELEASE` where that is installed),
    ``hf/`` names and model folders (the repository must be in the Hugging
    Face cache), ``.onnx`` files (which must be readable), then registered
    names (against this catalog, where it is current).

    Returns
    -------
    str
        What the name is: ``"timm"``, ``"hf"``, ``"onnx"``, ``"file"`` (a file
        the loader will judge), ``"registered"`` or ``"unknown"`` (not listed
        here, with another torchvision installed: the registry decides).

    Raises
    ------
    ModularityError
        The same line the loader would give.
    """
    from .files import check_readable_file

    name = name or DEFAULT_MODEL
    if name.startswith(_TIMM) and len(name) > len(_TIMM):
        _require_installed("timm")
        arch = name.removeprefix(_TIMM).partition(".")[0]  # a pretrained tag is left to timm
        if _installed("timm") == TIMM_RELEASE and arch not in timm_architectures():
            raise ModularityError(unknown_timm_message(arch, timm_architectures()))
        return "timm"
    if is_hf_name(name) or is_model_folder(name):
        _require_installed("transformers")
        resolve_folder(name)
        return "hf"
    if name in known_names():
        return "registered"
    if name.lower().endswith(".onnx"):
        check_readable_file(name, "ONNX file")
        return "onnx"
    if _is(name, "is_file"):
        return "file"
    if catalog_is_current():
        raise ModularityError(unknown_model_message(name, known_names()))
    return "unknown"


def check_weights_choice(weights: str | None) -> None:
    """Refuse ``--weights`` naming a file that is missing, unreadable or no checkpoint, without importing torch.

    ``none``, ``DEFAULT`` and names without a path separator or a weights
    suffix (torchvision weights names such as ``IMAGENET1K_V1``) are left to
    the loader, which knows which of them a model has; so are ``.onnx``
    files, which only some sources convert.
    """
    from .files import check_weights_file

    if weights is None or weights.lower() == "none" or weights == "DEFAULT" or weights.lower().endswith(".onnx"):
        return
    if _is(weights, "exists") or weights.lower().endswith(WEIGHTS_SUFFIXES) or "/" in weights or "\\" in weights:
        check_weights_file(weights)
