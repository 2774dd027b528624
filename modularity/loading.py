"""Loading a model with the command line's defaults, and its random-init twin.

* no model: the offline default (EfficientNet-Lite0) with its packaged trained
  weights; a named model: random initial weights (``weights="none"``) unless
  weights are given, initialised from ``seed`` so that runs repeat exactly;
* every loaded model carries the SHA-256 of the state dict analysed.
"""

from __future__ import annotations

import copy
import hashlib

import torch
from torch import nn

from .zoo import LoadedModel, load_source
from .zoo.catalog import default_weights

__all__ = ["default_weights", "state_dict_sha256", "load_model", "random_init"]


def state_dict_sha256(module: nn.Module) -> str:
    """SHA-256 of a module's state dict as analysed: names, dtypes, shapes and bytes, in key order."""
    h = hashlib.sha256()
    for key, value in module.state_dict().items():
        t = value.detach().to("cpu").contiguous()
        h.update(f"{key}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(memoryview(t.reshape(-1).view(torch.uint8).numpy()) if t.numel() else b"")  # no copy of the bytes
    return h.hexdigest()


def load_model(model: str | None = None, weights: str | None = None, seed: int = 0,
               input_size: tuple[int, int] | None = None) -> LoadedModel:
    """Load a model with the command line's defaults.

    Parameters
    ----------
    model : str or None
        A registry name (``python -m modularity models``), ``timm/<name>``,
        ``hf/<org>/<name>``, a transformers model folder or a path to an
        ``.onnx`` file; None for the offline default, EfficientNet-Lite0.
    weights : str or None
        ``"none"``, ``"DEFAULT"``, a torchvision weights name or a weights file;
        None: ``"DEFAULT"`` for the offline default, ``"none"`` for a named model.
    seed : int
        Seeds random initial weights (``weights="none"``), so that the same
        seed gives the same network.
    input_size : (int, int) or None
        Height and width to trace at, and an ONNX file is imported at (see
        :func:`modularity.zoo.load_source`); None: the model's own.

    Returns
    -------
    LoadedModel
        With ``weights_sha256`` the hash of the state dict actually analysed.
    """
    weights = default_weights(model, weights)
    if weights.lower() == "none":
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            loaded = load_source(model, weights, input_size)
    else:
        loaded = load_source(model, weights, input_size)
    loaded.weights_sha256 = state_dict_sha256(loaded.module)
    return loaded


def random_init(loaded: LoadedModel, seed: int = 0) -> LoadedModel:
    """The same architecture at random initialisation, seeded by ``seed``: the random-init control.

    A registered architecture, a timm or Hugging Face name or a model folder is
    built again with its own initialisation (as ``weights="none"`` builds it),
    at the same input size; any other module (an ONNX import, a module
    passed in) is copied and every submodule's ``reset_parameters()`` is
    called, which resets convolutions and linear layers to PyTorch's default
    initialisation and batch norms to identity statistics.
    """
    from .zoo.registry import reloadable

    if reloadable(loaded.name):  # registered, timm/..., hf/... or a model folder: the architecture's own init
        control = load_model(loaded.name, "none", seed=seed, input_size=loaded.input_size)
    else:
        module = copy.deepcopy(loaded.module)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            for sub in module.modules():
                reset = getattr(sub, "reset_parameters", None)
                if callable(reset):
                    reset()
        control = LoadedModel(name=loaded.name, module=module, weights="none", input_size=loaded.input_size,
                              in_channels=loaded.in_channels,
                              provenance="random initial weights (each module's reset_parameters(): PyTorch's "
                                         "default initialisation, not necessarily the architecture's own)")
        control.weights_sha256 = state_dict_sha256(module)
    control.weights = "none (random-init control)"
    return control
