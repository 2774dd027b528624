"""timm models by name: ``timm/<name>`` or ``timm/<name>.<tag>``, with weights found offline.

Any name in ``timm.list_models()`` builds with ``timm.create_model(name,
pretrained=False)``; a pretrained tag (``resnet18.a1_in1k``) picks that
pretrained configuration, whose ``input_size`` the model is traced at. Weights:

* ``none``: timm's own initialisation (seeded by the caller);
* a ``.pth``/``.safetensors`` file: loaded safely
  (:func:`~modularity.zoo.checkpoints.load_state_dict_file`) and strictly;
* ``DEFAULT``: the configuration's ``hf_hub_id`` looked up in the Hugging Face
  hub cache (``model.safetensors``, else ``pytorch_model.bin`` loaded with
  ``weights_only=True``), else its legacy ``url`` in the torch hub cache; never
  downloaded. A missing file is one line naming where it would be.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import ModularityError
from .catalog import unknown_timm_message
from .checkpoints import apply_state_dict, load_state_dict_file, sha256_file
from .extras import require, version_of
from .hf_cache import find_cached_file
from .source import LoadedModel

__all__ = ["PREFIX", "is_timm_name", "split_name", "load_timm", "pretrained_input_size"]

PREFIX = "timm/"
_HUB_FILES = ("model.safetensors", "pytorch_model.bin")


def is_timm_name(name: str) -> bool:
    """True for ``timm/<name>``."""
    return name.startswith(PREFIX) and len(name) > len(PREFIX)


def split_name(name: str) -> tuple[str, str | None]:
    """``"timm/resnet18.a1_in1k"`` -> ``("resnet18", "a1_in1k")``; the tag is None where none is given.

    Raises
    ------
    ModularityError
        For a name timm does not know, with close names.
    """
    timm = require("timm")
    full = name.removeprefix(PREFIX)
    arch, _, tag = full.partition(".")
    if not timm.is_model(arch):
        raise ModularityError(unknown_timm_message(arch, timm.list_models()))
    if tag:
        tags = [t.partition(".")[2] for t in timm.list_pretrained(f"{arch}.*")]
        if tag not in tags:
            raise ModularityError(f"timm model '{arch}' has no pretrained tag '{tag}'; its tags: "
                                  f"{', '.join(tags) or 'none'}")
    return arch, tag or None


def pretrained_input_size(module) -> tuple[int, int]:
    """Height and width of a timm model's pretrained configuration (``input_size`` is C x H x W)."""
    cfg = getattr(module, "pretrained_cfg", None) or {}
    size = cfg.get("input_size") if isinstance(cfg, dict) else getattr(cfg, "input_size", None)
    return (int(size[-2]), int(size[-1])) if size else (224, 224)


def _default_file(cfg: dict) -> tuple[Path, str]:
    """The cached weights of a pretrained configuration, and where they were found."""
    hub_id = cfg.get("hf_hub_id")
    url = cfg.get("url") or ""
    hub_error = None
    if hub_id:
        repo, _, revision = hub_id.partition("@")
        files = (cfg["hf_hub_filename"],) if cfg.get("hf_hub_filename") else _HUB_FILES
        try:
            found = find_cached_file(repo, files, revision or "main")
            return found.path, f"the Hugging Face cache ({found.repo_id}, revision {found.revision})"
        except ModularityError as exc:
            hub_error = exc
    if url:
        torch_home = Path(os.environ.get("TORCH_HOME") or Path(os.environ.get("XDG_CACHE_HOME") or
                                                             Path.home() / ".cache") / "torch").expanduser()
        path = torch_home / "hub" / "checkpoints" / Path(url.split("?")[0]).name
        if path.is_file():
            return path, f"the torch hub cache ({url})"
        if hub_error is None:
            raise ModularityError(f"weights of timm '{cfg.get('architecture')}.{cfg.get('tag')}' are not cached: "
                                  f"expected {path}; no download is attempted (offline); fetch {url} on a machine "
                                  "with network and place it there, or pass a local file with --weights")
    if hub_error is not None:
        raise hub_error
    raise ModularityError(f"timm '{cfg.get('architecture')}' has no pretrained weights to look for; use --weights "
                          "none or a local file")


def _exists(path: str) -> bool:
    """``Path(path).exists()`` that is False for names no file can have (too long, NUL)."""
    try:
        return Path(path).exists()
    except (OSError, ValueError):
        return False


def load_timm(name: str, weights: str | None) -> LoadedModel:
    """Build ``timm/<name>[.<tag>]`` and load its weights (see the module docstring).

    Parameters
    ----------
    name : str
        ``timm/`` and a name from ``timm.list_models()``, optionally with a
        pretrained tag.
    weights : str or None
        ``"none"`` (or None), ``"DEFAULT"``, or a path to a weights file.

    Returns
    -------
    LoadedModel
        In eval mode, at the pretrained configuration's input size.

    Raises
    ------
    ModularityError
        timm missing, an unknown name or tag, weights not cached, a bad file or
        keys that do not fit (missing and unexpected keys named).
    """
    timm = require("timm")
    arch, tag = split_name(name)
    full = f"{arch}.{tag}" if tag else arch
    try:
        module = timm.create_model(full, pretrained=False).eval()
    except Exception as exc:  # timm raises RuntimeError/ValueError/TypeError for models that cannot be built
        raise ModularityError(f"timm could not build '{full}' ({type(exc).__name__}: "
                              f"{str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ''})") from None
    cfg = dict(module.pretrained_cfg or {})
    ident = f"timm {version_of('timm')} '{arch}'" + (f" (pretrained configuration {cfg.get('tag')})"
                                                       if cfg.get("tag") else "")
    weights_str = "none" if weights is None or str(weights).lower() == "none" else str(weights)
    loaded = LoadedModel(name=name, module=module, weights=weights_str, input_size=pretrained_input_size(module))
    if weights_str == "none":
        loaded.provenance = f"{ident}: random initial weights (timm's own initialisation)"
        return loaded
    if weights_str == "DEFAULT":
        path, where = _default_file(cfg)
    elif _exists(weights_str) or weights_str.lower().endswith((".pt", ".pth", ".bin", ".safetensors")):
        path, where = Path(weights_str), "a local file"
    else:
        raise ModularityError(f"'{weights_str}' is not a weights choice for {name}: use 'none', 'DEFAULT' (the "
                              "pretrained configuration's weights from the Hugging Face cache; pick one with "
                              f"{PREFIX}{arch}.<tag>) or a path to a .pth/.safetensors file")
    state = load_state_dict_file(path)
    apply_state_dict(module, state, source=str(path), architecture=name)
    loaded.weights_path = str(path)
    digest = sha256_file(path)
    loaded.provenance = f"{ident}: weights {path} from {where}, file sha256 {digest}"
    return loaded
