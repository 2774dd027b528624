"""modularity: find the hidden branch and module structure of vision networks from their weights.

The Python API mirrors the CLI (same defaults)::

    import modularity
    loaded = modularity.load_model("googlenet")           # random init, seeded; weights="DEFAULT" for trained
    result = modularity.analyze(loaded, layers="inception3a", progress=True)
    result.to_frame()                                     # one row per layer (pandas)
    result.layer("inception3a").recovery

Names are imported on first use, so ``import modularity`` (and the command
line's ``--help``) does not load torch until something needs it.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.2.0"

_EXPORTS = {
    "AnalysisResult": "results", "LayerResult": "results", "load_summary": "results",
    "ModularityError": "errors",
    "ChannelGraph": "core.graph", "trace": "core.graph",
    "downstream_profile": "core.magnitude", "layer_magnitude": "core.magnitude",
    "analyze_layer": "analysis", "select_layers": "analysis",
    "analyze": "pipeline", "load_model": "loading", "save_results": "pipeline", "write_results": "pipeline",
    "AnalysisSettings": "settings",
    "list_sources": "zoo",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'modularity' has no attribute '{name}'")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
