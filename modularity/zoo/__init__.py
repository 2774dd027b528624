"""Model sources: torchvision names, weight files, ONNX, and the offline default."""

from .registry import DEFAULT_MODEL, list_sources, load_source, register
from .source import LoadedModel, ModelSource

__all__ = ["DEFAULT_MODEL", "LoadedModel", "ModelSource", "list_sources", "load_source", "register"]
