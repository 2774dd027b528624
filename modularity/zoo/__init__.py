"""Model sources: torchvision, timm and Hugging Face names, weight files, ONNX, and the offline default."""

from .registry import DEFAULT_MODEL, list_sources, load_source, name_families, register
from .source import LoadedModel, ModelSource

__all__ = ["DEFAULT_MODEL", "LoadedModel", "ModelSource", "list_sources", "load_source", "name_families", "register"]
