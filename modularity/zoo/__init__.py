"""Model sources: torchvision, timm and Hugging Face names, weight files, ONNX, and the offline default.

Names are imported on first use: the registry imports torch, and the command
line checks names against :mod:`modularity.zoo.catalog` before it does.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {"DEFAULT_MODEL": "catalog", "list_sources": "registry", "load_source": "registry",
            "name_families": "registry", "register": "registry", "LoadedModel": "source", "ModelSource": "source"}

__all__ = ["DEFAULT_MODEL", "LoadedModel", "ModelSource", "list_sources", "load_source", "name_families", "register"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'modularity.zoo' has no attribute '{name}'")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
