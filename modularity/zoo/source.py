"""What a model source is, and what loading one gives: plain dataclasses, imported by every source module."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

__all__ = ["ModelSource", "LoadedModel"]


@dataclass(frozen=True)
class ModelSource:
    """An architecture the tool can build, and where its weights come from.

    Attributes
    ----------
    name : str
        Registry name, as typed on the command line.
    build : callable
        Returns the architecture with random weights.
    weights_source : str
        Human description of where trained weights come from.
    licence : str or None
        Licence of the trained weights, where known.
    default_weights : callable or None
        Returns ``(state_dict, path)`` for the weights used by ``--weights DEFAULT``;
        raises :class:`~modularity.errors.ModularityError` when they cannot be had.
    offline : callable
        True when ``default_weights`` works on this machine without network.
    input_size : (int, int)
        Input height and width for tracing.
    notes : str
        Caveats a user should know (quantisation, fine-tuning, deviations).
    onnx_converter : callable or None
        Turns an ``.onnx`` file given as ``--weights`` into this architecture's state dict.
    load : callable or None
        For a source that loads itself (a transformers model folder): takes the
        weights choice and returns the :class:`LoadedModel`; ``build`` and
        ``default_weights`` are then not used to load it.
    """

    name: str
    build: Callable[[], nn.Module]
    weights_source: str
    licence: str | None = None
    default_weights: Callable[[], tuple[dict[str, torch.Tensor], str]] | None = None
    offline: Callable[[], bool] = field(default=lambda: False)
    input_size: tuple[int, int] = (224, 224)
    notes: str = ""
    family: str = "custom"
    onnx_converter: Callable[[str], dict[str, torch.Tensor]] | None = None
    load: Callable[[str], LoadedModel] | None = None


@dataclass
class LoadedModel:
    """A model ready to analyse, with where its weights came from.

    ``input_size`` is the height and width the model is traced at and
    ``in_channels`` the channels of its input (3 for images; a text encoder read
    as a map of token embeddings has its hidden size). ``provenance`` says in one
    line exactly what was loaded: the source, library versions, weight files and
    their SHA-256.
    """

    name: str
    module: nn.Module
    weights: str
    weights_path: str | None = None
    weights_sha256: str | None = None
    input_size: tuple[int, int] = (224, 224)
    provenance: str = ""
    in_channels: int = 3

    def __repr__(self) -> str:
        n = sum(p.numel() for p in self.module.parameters())
        return (f"LoadedModel({self.name!r}, weights={self.weights!r}, {type(self.module).__name__} with "
                f"{n:,} parameters, input {self.input_size[0]}x{self.input_size[1]})")
