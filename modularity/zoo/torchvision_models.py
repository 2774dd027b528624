"""torchvision classification architectures and their named pretrained weights.

Named weights (``DEFAULT``, ``IMAGENET1K_V1``, ...) load through the torch.hub
cache (``$TORCH_HOME/hub/checkpoints``). When the file is not cached and the
machine is offline, the error says which file to place where.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlparse

import torch
from torch import nn

from ..errors import ModularityError

__all__ = [
    "torchvision_names",
    "build_torchvision",
    "resolve_weights_enum",
    "hub_checkpoint_path",
    "load_torchvision_weights",
]

# Input sizes differing from 224 x 224.
_INPUT_SIZE = {"inception_v3": (299, 299)}


def torchvision_names() -> list[str]:
    """Names of torchvision's image-classification architectures."""
    import torchvision.models as tvm

    return sorted(tvm.list_models(module=tvm))


def input_size(name: str) -> tuple[int, int]:
    """The input height and width an architecture expects."""
    return _INPUT_SIZE.get(name, (224, 224))


def build_torchvision(name: str) -> nn.Module:
    """Build a torchvision architecture with random initial weights (eval mode).

    googlenet and inception_v3 are built without auxiliary classifiers unless the
    name carries a suffix, and with ``transform_input=False``, as their pretrained
    weights' inference graph. Use :func:`torchvision.models.get_model` directly for
    other settings and pass the module to :func:`modularity.analyze`.
    """
    import torchvision.models as tvm

    kwargs: dict = {"weights": None}
    if name in ("googlenet", "inception_v3"):
        kwargs.update(aux_logits=False, init_weights=True, transform_input=False)
    try:
        model = tvm.get_model(name, **kwargs)
    except ValueError:
        raise ModularityError(f"unknown torchvision model '{name}'") from None
    return model.eval()


def resolve_weights_enum(name: str, weights: str):
    """Return torchvision's WeightsEnum member for ``weights`` (e.g. ``DEFAULT``) of ``name``."""
    import torchvision.models as tvm

    enum = tvm.get_model_weights(name)
    try:
        return enum[weights] if weights != "DEFAULT" else enum.DEFAULT
    except KeyError:
        choices = ["DEFAULT"] + [w.name for w in enum]
        raise ModularityError(
            f"'{weights}' is not a weights name of {name}; choose one of {', '.join(choices)}, "
            "'none' for random weights, or a path to a weights file"
        ) from None


def hub_checkpoint_path(url: str) -> Path:
    """Where torch.hub caches the file at ``url`` (``$TORCH_HOME/hub/checkpoints/<file>``)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(url).path)


def load_torchvision_weights(name: str, weights: str) -> tuple[dict[str, torch.Tensor], str]:
    """Load torchvision's named weights for ``name`` from the hub cache, downloading if online.

    Returns
    -------
    state_dict : dict
    path : str
        The cached file it came from.
    """
    from .checkpoints import load_state_dict_file

    member = resolve_weights_enum(name, weights)
    path = hub_checkpoint_path(member.url)
    if not path.is_file():
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # downloads to a temporary file and moves it in place when complete
            torch.hub.download_url_to_file(member.url, str(path), progress=False)
        except Exception as exc:  # network errors take many forms
            raise ModularityError(
                f"cannot download {name} weights {member} ({type(exc).__name__}); "
                f"offline, download {member.url} elsewhere and place it at {path}"
            ) from None
    return load_state_dict_file(path), str(path)

