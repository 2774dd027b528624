"""Model sources: torchvision names, weight files, ONNX, and the offline default."""

from .registry import DEFAULT_MODEL, LoadedModel, ModelSource, list_sources, load_model, register

__all__ = ["DEFAULT_MODEL", "LoadedModel", "ModelSource", "list_sources", "load_model", "register"]
