"""Hugging Face ``transformers`` models from a model folder or the hub cache, offline.

A model folder holds ``config.json`` and its weights as ``model.safetensors``
or as shards listed in ``model.safetensors.index.json`` (what
``save_pretrained`` writes and the hub cache keeps under
``models--ORG--NAME/snapshots/REV/``). ``hf/<org>/<name>`` finds that folder in
the hub cache (:mod:`~modularity.zoo.hf_cache`); nothing is downloaded.

The model is built from its config with transformers (the class the config's
``architectures`` names, among the supported model types), with eager
attention where the architecture has attention: explicit ``q @ k^T`` products,
softmax and ``@ v``, which the channel tracer follows head by head. Weights are
read from safetensors only (no pickle) through transformers' own loader, so its
key conversions between releases apply, and loaded strictly: a missing or
unexpected tensor is an error that names it. A CLIP folder loads its vision
tower (``CLIPVisionModel``); the text tower's tensors are counted in the
provenance and left out.

Two kinds of model are supported:

* vision (:data:`VISION_TYPES`): the network maps ``pixel_values`` to its
  logits (a classifier) or its last hidden state, at the config's
  ``image_size``;
* the BERT text encoder (:data:`TEXT_TYPES`), read as a map: the input is the
  sequence of token embeddings (word + position + type, before the embedding
  layer norm) laid out as ``hidden_size`` channels on an ``H x W`` grid of
  ``H * W`` tokens (:class:`TextEncoderMap`), so that every linear layer acts on
  channels as a 1x1 convolution does and attention heads are branches of
  ``query``/``key``/``value``.

The module the tool analyses keeps the transformers model's own module and
parameter names (``named_modules()`` of the installed release, e.g.
``vit.layers.0.attention.v_proj`` in transformers 5, which reads checkpoints
saved as ``vit.encoder.layer.0.attention.attention.value``):
:class:`TransformersForward` registers the model's children under their own
names rather than nesting the model.
"""

from __future__ import annotations

import contextlib
import json
import re
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import ModularityError
from .checkpoints import check_readable_file, sha256_file
from .extras import require, version_of
from .hf_cache import PREFIX, is_hf_name, is_model_folder, resolve_folder
from .source import LoadedModel

__all__ = ["PREFIX", "VISION_TYPES", "TEXT_TYPES", "TEXT_GRID", "is_hf_name", "is_model_folder", "resolve_folder",
           "weight_files", "read_config", "load_transformers", "TransformersForward", "TextEncoderMap",
           "config_input_size"]

VISION_TYPES = ("vit", "deit", "beit", "convnext", "convnextv2", "swin", "dinov2", "clip", "clip_vision_model",
                "resnet")
"""``model_type`` values of the supported vision models (ViT, DeiT, BEiT, ConvNeXt, ConvNeXt-V2, Swin, DINOv2,
CLIP's vision tower, ResNet)."""
TEXT_TYPES = ("bert",)
"""``model_type`` values of the supported text encoders."""
TEXT_GRID = (8, 16)
"""Token grid a text encoder is traced at: 128 tokens (the size only sets the tracing work; weights are the same)."""
_ATTENTION_FREE = ("convnext", "convnextv2", "resnet")
_SINGLE = "model.safetensors"
_INDEX = "model.safetensors.index.json"
_SHARD = re.compile(r"^[A-Za-z0-9._-]+\.safetensors$")


def read_config(folder: Path) -> dict[str, Any]:
    """``config.json`` of a model folder, checked to be a JSON object with a ``model_type``."""
    path = check_readable_file(folder / "config.json", "model config")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModularityError(f"{path} is not valid JSON ({exc})") from None
    if not isinstance(config, dict) or not isinstance(config.get("model_type"), str):
        raise ModularityError(f"{path} has no 'model_type'; it is not a transformers model config")
    return config


def weight_files(folder: Path) -> list[Path]:
    """The safetensors files of a model folder: ``model.safetensors`` or the shards its index lists.

    Raises
    ------
    ModularityError
        No weights (naming the files looked for, and a ``.bin`` found instead),
        an unreadable index, a shard name outside the folder, or a missing shard.
    """
    if (folder / _SINGLE).is_file():
        return [check_readable_file(folder / _SINGLE)]
    index = folder / _INDEX
    if not index.is_file():
        legacy = sorted(p.name for p in folder.glob("pytorch_model*.bin"))
        extra = (f"; it has {', '.join(legacy)}, pickled weights that are not loaded for safety (convert them "
                 "to safetensors)") if legacy else ""
        raise ModularityError(f"no weights in model folder {folder}: expected {_SINGLE} or {_INDEX} with its "
                              f"shards{extra}")
    try:
        weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        shards = sorted(set(weight_map.values()))
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
        raise ModularityError(f"{index} is not a safetensors index (a JSON object with a 'weight_map': "
                              f"{type(exc).__name__})") from None
    bad = [s for s in shards if not isinstance(s, str) or not _SHARD.match(s)]
    if bad:
        raise ModularityError(f"{index} names shard {bad[0]!r}, which is not a .safetensors file in the folder")
    return [check_readable_file(folder / s, "weights shard") for s in shards]


def config_input_size(config: Any) -> tuple[int, int]:
    """Height and width from a config's ``image_size`` (an int or a pair; a CLIP config's vision part); else 224."""
    size = getattr(config, "image_size", None)
    if size is None and getattr(config, "vision_config", None) is not None:
        size = getattr(config.vision_config, "image_size", None)
    if isinstance(size, int):
        return (size, size)
    if isinstance(size, (list, tuple)) and len(size) == 2:
        return (int(size[0]), int(size[1]))
    return (224, 224)


class TransformersForward(nn.Module):
    """A transformers model as a tensor-in, tensor-out module with the model's own parameter names.

    The model's children are registered here under their own names and the
    model itself is kept outside the module tree, so ``named_modules()`` and
    ``state_dict()`` name everything as the model's checkpoint does.
    """

    def __init__(self, model: nn.Module, output: str) -> None:
        super().__init__()
        own = [n for n, _ in model.named_parameters(recurse=False)] + [n for n, _ in model.named_buffers(recurse=False)]
        if own:  # none of the supported classes has any; a wrapper would lose them
            raise ModularityError(f"{type(model).__name__} holds tensors outside its submodules ({', '.join(own)})")
        self.model: Any
        object.__setattr__(self, "model", model)
        for name, child in model.named_children():
            self.add_module(name, child)
        self.output = output

    def train(self, mode: bool = True) -> TransformersForward:
        """Set training mode here and on the wrapped model (not a submodule, so ``nn.Module.train`` misses it)."""
        super().train(mode)
        self.model.training = mode
        return self

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        # the class's forward on the model, not model(...): the model is no submodule for torch.fx to call
        out = type(self.model).forward(self.model, pixel_values=pixel_values)
        return getattr(out, self.output)


class TextEncoderMap(TransformersForward):
    """A BERT encoder read as a map: ``hidden_size`` channels of token embeddings on an H x W grid of tokens.

    The input ``N x D x H x W`` holds the token embeddings (word + position +
    token type) of ``H * W`` tokens; the forward pass applies the embedding
    layer norm and the encoder, without an attention mask (every token
    attends to every other), and returns the last hidden state ``N x HW x D``.
    """

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        h = embeddings.flatten(2).transpose(1, 2)  # N x HW x D: tokens, channels last
        h = self.get_submodule("embeddings.LayerNorm")(h)
        return self.get_submodule("encoder")(h).last_hidden_state


def _model_class(transformers, config: Any, model_type: str) -> Any:
    """The transformers class to build: the config's ``architectures`` where supported, else the base model."""
    if model_type in ("clip", "clip_vision_model"):
        return transformers.CLIPVisionModel
    names = [a for a in (getattr(config, "architectures", None) or []) if isinstance(a, str)]
    for arch in names:
        cls = getattr(transformers, arch, None)
        if cls is not None and re.search(r"(Model|ForImageClassification(WithTeacher)?)$", arch):
            return cls
    return transformers.AutoModel._model_mapping[type(config)]


@contextlib.contextmanager
def _quiet(transformers):
    """No weight-loading progress bar and no warnings from transformers while loading."""
    logging = transformers.utils.logging
    had_bar, verbosity = logging.is_progress_bar_enabled(), logging.get_verbosity()
    logging.disable_progress_bar()
    logging.set_verbosity_error()
    try:
        yield
    finally:
        logging.set_verbosity(verbosity)
        if had_bar:
            logging.enable_progress_bar()


def _build(transformers, cls: Any, config: Any, folder: Path | None, attention: str | None):
    """Random-init (``folder`` None) or strictly loaded model, and the text-tower tensors left out (CLIP)."""
    kwargs = {"attn_implementation": attention} if attention else {}
    if folder is None:
        if cls is transformers.CLIPVisionModel and hasattr(config, "vision_config"):
            config = config.vision_config
        return cls._from_config(config, **kwargs), 0
    try:
        model, info = cls.from_pretrained(str(folder), local_files_only=True, use_safetensors=True,
                                          output_loading_info=True, **kwargs)
    except (OSError, ValueError, RuntimeError, KeyError) as exc:
        msg = str(exc).strip().splitlines()[0][:240] if str(exc).strip() else type(exc).__name__
        raise ModularityError(f"transformers could not load the weights in {folder} ({msg})") from None
    unexpected = sorted(info.get("unexpected_keys") or [])
    dropped = 0
    if cls is transformers.CLIPVisionModel:  # a whole CLIP checkpoint: its text tower is not this model
        tower = [k for k in unexpected if k.startswith(("text_model.", "text_projection", "visual_projection",
                                                        "logit_scale"))]
        dropped, unexpected = len(tower), [k for k in unexpected if k not in tower]
    problems = [(what, sorted(keys)) for what, keys in (("missing", info.get("missing_keys") or []),
                                                         ("unexpected", unexpected),
                                                         ("wrong shape", [str(k) for k in
                                                                          info.get("mismatched_keys") or []]))
                if keys]
    if problems:
        parts = "; ".join(f"{len(keys)} {what}: {', '.join(keys[:3])}" + (f" (+{len(keys) - 3} more)"
                                                                         if len(keys) > 3 else "")
                          for what, keys in problems)
        raise ModularityError(f"weights in {folder} do not match {cls.__name__} ({parts})")
    return model, dropped


def load_transformers(name: str, weights: str | None, attention: str = "eager") -> LoadedModel:
    """Build a transformers model from a folder or ``hf/<org>/<name>`` and load its weights.

    Parameters
    ----------
    name : str
        A model folder (``config.json`` + safetensors) or ``hf/<org>/<name>[@revision]``.
    weights : str or None
        ``"none"`` (or None): built from the config with transformers' own
        initialisation (seeded by the caller); ``"DEFAULT"``: the folder's
        safetensors weights.
    attention : str
        transformers' attention implementation for models with attention
        (``"eager"``: explicit products, which the tracer follows head by head;
        ``"sdpa"``).

    Returns
    -------
    LoadedModel
        In eval mode, at the config's input size; a text encoder with
        ``in_channels`` its hidden size and the token grid :data:`TEXT_GRID`.

    Raises
    ------
    ModularityError
        transformers missing, a folder that is not in the cache or has no
        config or weights, an unsupported model type, weights another
        model's (missing and unexpected keys named), or weights other than
        none/DEFAULT.
    """
    transformers = require("transformers")
    folder, where = resolve_folder(name)
    raw = read_config(folder)
    model_type = raw["model_type"]
    if model_type not in VISION_TYPES + TEXT_TYPES:
        raise ModularityError(f"{folder} holds a '{model_type}' model; supported model types: "
                              f"{', '.join(VISION_TYPES + TEXT_TYPES)}")
    weights_str = "none" if weights is None or str(weights).lower() == "none" else str(weights)
    if weights_str not in ("none", "DEFAULT"):
        raise ModularityError(f"'{weights_str}' is not a weights choice for the model folder {folder}: use 'none' "
                              "(random init from its config) or 'DEFAULT' (its own safetensors weights); to analyse "
                              "other weights, save them in a model folder with their config")
    files = weight_files(folder) if weights_str == "DEFAULT" else []
    config = transformers.AutoConfig.from_pretrained(str(folder), local_files_only=True)
    cls = _model_class(transformers, config, model_type)
    attention_kw = None if model_type in _ATTENTION_FREE else attention
    with _quiet(transformers):
        model, dropped = _build(transformers, cls, config, folder if files else None, attention_kw)
    model.eval()
    ident = f"transformers {version_of('transformers')} {cls.__name__} ('{model_type}') from {where} {folder}"
    if model_type in TEXT_TYPES:
        module: nn.Module = TextEncoderMap(model, "last_hidden_state")
        size, channels = TEXT_GRID, int(model.config.hidden_size)
        ident += (f", read as {channels} channels of token embeddings on a grid of {size[0]} x {size[1]} = "
                  f"{size[0] * size[1]} tokens")
    else:
        output = "logits" if "ForImageClassification" in cls.__name__ else "last_hidden_state"
        module = TransformersForward(model, output)
        size = config_input_size(model.config)
        channels = int(getattr(model.config, "num_channels", 3) or 3)
    module.eval()
    loaded = LoadedModel(name=name, module=module, weights=weights_str, input_size=size, in_channels=channels)
    if not files:
        loaded.provenance = f"{ident}: random initial weights (transformers' own initialisation)"
        return loaded
    hashes = ", ".join(f"{p.name} sha256 {sha256_file(p)}" for p in files)
    left = f"; {dropped} text-tower tensors of the CLIP checkpoint left out" if dropped else ""
    loaded.provenance = f"{ident}: weights {hashes}{left}"
    loaded.weights_path = str(files[0] if len(files) == 1 else folder / _INDEX)
    return loaded
