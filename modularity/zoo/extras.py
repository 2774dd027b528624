"""Optional dependencies (timm, transformers): imported on first use, with a one-line error when missing."""

from __future__ import annotations

import importlib
from types import ModuleType

from ..errors import ModularityError

__all__ = ["EXTRAS", "require", "version_of"]

# import name -> (pyproject extra that installs it, what needs it)
EXTRAS = {
    "timm": ("timm", "timm/<name> models"),
    "transformers": ("hf", "Hugging Face models (hf/<org>/<name> and model folders)"),
}


def require(module: str) -> ModuleType:
    """Import an optional dependency, or raise one line saying which extra installs it.

    Raises
    ------
    ModularityError
        ``"timm/<name> models need the package 'timm': pip install 'cnn-modularity[timm]'"``
        and the like, when the import fails.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        extra, what = EXTRAS[module]
        detail = "" if getattr(exc, "name", None) == module else f" (importing it failed: {exc})"
        raise ModularityError(f"{what} need the package '{module}'{detail}: pip install 'cnn-modularity[{extra}]'") \
            from None


def version_of(module: str) -> str:
    """The installed version of an optional dependency (``"unknown"`` where it does not say)."""
    return str(getattr(require(module), "__version__", "unknown"))
