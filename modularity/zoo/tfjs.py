"""TensorFlow.js weights in pure Python/numpy, and nsfwjs's Keras InceptionV3 as a torchvision model.

A TF.js Layers model is a ``model.json`` (Keras ``modelTopology`` plus a
``weightsManifest``) and binary shards. The manifest lists, per group, the shard
file names and the weights in storage order, each with ``name``, ``shape``,
``dtype`` and optional ``quantization`` ``{min, scale, dtype}``; the shards,
concatenated, hold the weights back to back. A ``uint8``/``uint16`` quantised
value ``q`` decodes to ``min + scale * q``; ``float16`` quantisation stores
half floats.

nsfwjs 4.3.0 (npm, MIT) bundles its models as browserify modules: the
``dist/models/inception_v3/model.min.js`` file exports the model.json as a
JavaScript object literal (unquoted keys, ``!0``/``!1``, ``.5``) and each
``group1-shardKofN.min.js`` exports its shard as one base64 string.
:func:`read_tfjs_model` reads that layout (or a plain ``model.json`` with
``.bin`` shards) without running any JavaScript.

:func:`nsfwjs_inception_v3_state_dict` maps the Keras InceptionV3 onto
torchvision's ``inception_v3``: the 94 Conv2D layers, in creation order
(``conv2d_1`` ... ``conv2d_94``), onto the 94 ``BasicConv2d`` modules in
registration order, each shape checked (kernel HWIO to OIHW); each Keras
BatchNormalization (``scale=False``, so gamma = 1; epsilon 1e-3, torchvision's
``BasicConv2d`` value) onto the matching ``bn``. The nsfwjs head (global
average pool, Dense 256 ReLU, Dropout 0.5, Dense 128 ReLU, Dropout 0.25, Dense 5
softmax) replaces torchvision's ``fc`` by ``nn.Sequential`` with keys
``fc.0``, ``fc.3``, ``fc.6``: the registry source ``inception_v3_nsfwjs``
builds exactly that model, so the converted file loads with every key matched.
``forward`` returns the 5 logits (drawing, hentai, neutral, porn, sexy).

Caveats: the weights are uint8-quantised (about 8 bits per value); layers up to
Keras mixed5 (torchvision ``Mixed_6c``) are nsfwjs's frozen ImageNet InceptionV3
weights, later blocks (from ``Mixed_6d``, see :func:`nsfwjs_trainable_modules`)
were fine-tuned on the NSFW classes; Keras averages the 3x3 pool branches without the
padding (TensorFlow 'SAME'), torchvision with it, so border activations differ
slightly from the browser model. Inputs are RGB scaled to [0, 1] (nsfwjs divides by 255).
"""

from __future__ import annotations

import base64
import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import ModularityError
from .source import ModelSource

__all__ = [
    "parse_js_literal",
    "read_tfjs_model",
    "decode_weights",
    "build_inception_v3_nsfwjs",
    "nsfwjs_inception_v3_state_dict",
    "default_nsfwjs_path",
    "nsfwjs_trainable_modules",
    "NSFWJS_CLASSES",
]

NSFWJS_CLASSES = ("drawing", "hentai", "neutral", "porn", "sexy")
_DTYPES = {"float32": np.float32, "int32": np.int32, "bool": np.bool_, "uint8": np.uint8,
           "uint16": np.uint16, "float16": np.float16}

_TOKEN = re.compile(r"""
    \s+
  | (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<num>-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<bang>![01])
  | (?P<ident>[A-Za-z_$][\w$]*)
  | (?P<punct>[{}\[\]:,])
""", re.VERBOSE)


def _tokens(text: str, pos: int):
    n = len(text)
    while pos < n:
        m = _TOKEN.match(text, pos)
        if m is None:
            raise ModularityError(f"unexpected character {text[pos]!r} at offset {pos} in a TF.js model file")
        pos = m.end()
        kind = m.lastgroup
        if kind is not None:
            yield kind, m.group(kind), pos


def parse_js_literal(text: str, start: int = 0) -> tuple[Any, int]:
    """Parse one JavaScript object/array literal of plain data (JSON plus JS shorthands).

    Accepts unquoted keys, single-quoted strings, ``!0``/``!1`` booleans,
    ``.5``-style numbers, ``null``, ``true``/``false``, ``NaN``/``Infinity``.

    Parameters
    ----------
    text : str
    start : int
        Offset of the opening ``{`` or ``[``.

    Returns
    -------
    value : object
        The parsed dicts, lists, strings, numbers, booleans and None.
    end : int
        Offset just past the literal.
    """
    toks = _tokens(text, start)

    def value(tok):
        kind, v, _ = tok
        if kind == "punct" and v == "{":
            out: dict = {}
            tok = next(toks)
            while not (tok[0] == "punct" and tok[1] == "}"):
                key = json.loads(tok[1]) if tok[0] == "str" and tok[1][0] == '"' else tok[1].strip("'")
                colon = next(toks)
                if colon[1] != ":":
                    raise ModularityError(f"expected ':' after key {key!r} in a TF.js model file")
                out[key] = value(next(toks))
                tok = next(toks)
                if tok[0] == "punct" and tok[1] == ",":
                    tok = next(toks)
            return out
        if kind == "punct" and v == "[":
            arr: list = []
            tok = next(toks)
            while not (tok[0] == "punct" and tok[1] == "]"):
                arr.append(value(tok))
                tok = next(toks)
                if tok[0] == "punct" and tok[1] == ",":
                    tok = next(toks)
            return arr
        if kind == "str":
            return json.loads(v) if v[0] == '"' else v[1:-1]
        if kind == "num":
            f = float(v)
            return int(f) if re.fullmatch(r"-?\d+", v) else f
        if kind == "bang":
            return v == "!0"
        if kind == "ident":
            consts = {"null": None, "true": True, "false": False, "NaN": math.nan, "Infinity": math.inf,
                      "undefined": None}
            if v in consts:
                return consts[v]
        raise ModularityError(f"unexpected token {v!r} in a TF.js model file")

    try:
        first = next(toks)
        result = value(first)
    except StopIteration:
        raise ModularityError("a TF.js model file ends in the middle of its model description") from None
    # find the end offset: re-scan is cheap relative to decoding; track via a sentinel token
    return result, _literal_end(text, start)


def _literal_end(text: str, start: int) -> int:
    depth, pos = 0, start
    for kind, v, end in _tokens(text, start):
        if kind == "punct" and v in "{[":
            depth += 1
        elif kind == "punct" and v in "}]":
            depth -= 1
            if depth == 0:
                return end
        pos = end
    return pos


def _js_export_object(path: Path) -> dict:
    text = path.read_text(encoding="utf-8", errors="replace")
    i = text.find("{modelTopology:")
    if i < 0:
        i = text.find('{"modelTopology"')
    if i < 0:
        raise ModularityError(f"{path} does not contain a TF.js model description (no modelTopology)")
    obj, _ = parse_js_literal(text, i)
    return obj


def _js_export_bytes(path: Path) -> bytes:
    text = path.read_text(encoding="ascii", errors="replace")
    m = re.search(r'exports\s*=\s*"([A-Za-z0-9+/=]+)"', text)
    if m is None:
        raise ModularityError(f"{path} does not contain a base64 weight shard")
    try:
        return base64.b64decode(m.group(1), validate=True)
    except ValueError as exc:
        raise ModularityError(f"{path}: corrupt base64 weight shard ({exc})") from None


def read_tfjs_model(model_dir: str | Path) -> tuple[dict, dict[str, np.ndarray]]:
    """Read a TF.js Layers model: its description and decoded weights.

    Parameters
    ----------
    model_dir : str or Path
        A directory with ``model.json`` and binary shards, or nsfwjs's bundled
        layout (``model.min.js`` and ``<shard>.min.js`` files).

    Returns
    -------
    model : dict
        The model.json content (``modelTopology``, ``weightsManifest``).
    weights : dict of str to ndarray
        Weight name (``conv2d_1/kernel``) to float32 array (int32/bool kept).

    Raises
    ------
    ModularityError
        If a file is missing or malformed, or the shards are too short.
    """
    d = Path(model_dir)
    if (d / "model.json").is_file():
        model = json.loads((d / "model.json").read_text())
        read_shard = lambda name: (d / name).read_bytes()  # noqa: E731
    elif (d / "model.min.js").is_file():
        model = _js_export_object(d / "model.min.js")
        read_shard = lambda name: _js_export_bytes(d / f"{name}.min.js")  # noqa: E731
    else:
        raise ModularityError(f"{d} holds no TF.js model (model.json or model.min.js)")
    weights: dict[str, np.ndarray] = {}
    for group in model.get("weightsManifest", []):
        try:
            data = b"".join(read_shard(p) for p in group["paths"])
        except FileNotFoundError as exc:
            raise ModularityError(f"TF.js weight shard missing: {exc.filename}") from None
        weights.update(decode_weights(group["weights"], data))
    if not weights:
        raise ModularityError(f"{d}: the TF.js weights manifest is empty")
    return model, weights


def decode_weights(specs: list[dict], data: bytes) -> dict[str, np.ndarray]:
    """Decode one manifest group's weights from its concatenated shard bytes.

    Parameters
    ----------
    specs : list of dict
        The group's ``weights`` entries (``name``, ``shape``, ``dtype``,
        optional ``quantization`` with ``dtype`` and ``min``/``scale``).
    data : bytes
        The group's shards, concatenated in ``paths`` order.

    Returns
    -------
    dict of str to ndarray
    """
    out: dict[str, np.ndarray] = {}
    offset = 0
    for spec in specs:
        shape = [int(s) for s in spec["shape"]]
        count = int(np.prod(shape)) if shape else 1
        quant = spec.get("quantization")
        stored = np.dtype(_DTYPES[quant["dtype"] if quant else spec["dtype"]])
        nbytes = count * stored.itemsize
        if offset + nbytes > len(data):
            raise ModularityError(f"TF.js shards end before weight '{spec['name']}' "
                                  f"(need {offset + nbytes} bytes, have {len(data)})")
        raw = np.frombuffer(data, dtype=stored.newbyteorder("<"), count=count, offset=offset)
        offset += nbytes
        if quant and quant["dtype"] in ("uint8", "uint16"):
            arr = (quant["min"] + quant["scale"] * raw.astype(np.float64)).astype(np.float32)
        elif quant:  # float16
            arr = raw.astype(np.float32)
        else:
            arr = raw.astype(np.float32) if spec["dtype"] == "float32" else raw.copy()
        out[spec["name"]] = arr.reshape(shape)
    return out


def build_inception_v3_nsfwjs() -> nn.Module:
    """torchvision ``inception_v3`` (no aux head, no input transform) with nsfwjs's 5-class head.

    Returns
    -------
    torch.nn.Module
        ``fc`` is ``Sequential(Linear(2048, 256), ReLU, Dropout(0.5),
        Linear(256, 128), ReLU, Dropout(0.25), Linear(128, 5))``; eval mode.
    """
    import torchvision

    model = torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=False,
                                            transform_input=False)
    model.fc = nn.Sequential(nn.Linear(2048, 256), nn.ReLU(), nn.Dropout(0.5), nn.Linear(256, 128), nn.ReLU(),
                             nn.Dropout(0.25), nn.Linear(128, len(NSFWJS_CLASSES)))
    return model.eval()


def _layers(model: dict) -> list[dict]:
    topo = model.get("modelTopology", {})
    cfg = topo.get("model_config", topo)
    layers = cfg.get("config", {}).get("layers")
    if not isinstance(layers, list):
        raise ModularityError("the TF.js model has no Keras layer list in modelTopology")
    return layers


def _inbound(layer: dict) -> list[str]:
    nodes = layer.get("inbound_nodes") or []
    return [ref[0] for ref in nodes[0]] if nodes else []


def _creation_order(name: str) -> tuple[int, str]:
    m = re.search(r"_(\d+)$", name)
    return (int(m.group(1)) if m else 0, name)


def nsfwjs_inception_v3_state_dict(model: dict, weights: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """Map nsfwjs's Keras InceptionV3 weights onto :func:`build_inception_v3_nsfwjs`'s keys.

    Parameters
    ----------
    model : dict
        The TF.js model description (from :func:`read_tfjs_model`).
    weights : dict of str to ndarray
        Decoded weights by Keras name.

    Returns
    -------
    dict of str to torch.Tensor
        Every key of the torchvision model's state dict (``num_batches_tracked``
        included), float32.

    Raises
    ------
    ModularityError
        If the layer counts or any shape do not match.
    """
    from torchvision.models.inception import BasicConv2d

    target = build_inception_v3_nsfwjs()
    basics = [(n, m) for n, m in target.named_modules() if isinstance(m, BasicConv2d)]
    layers = _layers(model)
    convs = sorted((l for l in layers if l["class_name"] == "Conv2D"), key=lambda l: _creation_order(l["name"]))
    bn_of = {}
    for l in layers:
        if l["class_name"] == "BatchNormalization":
            src = _inbound(l)
            if len(src) == 1:
                bn_of[src[0]] = l
    denses = sorted((l for l in layers if l["class_name"] == "Dense"), key=lambda l: _creation_order(l["name"]))
    if len(convs) != len(basics):
        raise ModularityError(f"the TF.js model has {len(convs)} Conv2D layers; torchvision inception_v3 has "
                              f"{len(basics)} BasicConv2d")
    state: dict[str, torch.Tensor] = {}

    def get(name: str) -> np.ndarray:
        if name not in weights:
            raise ModularityError(f"the TF.js weights lack '{name}'")
        return weights[name]

    for (prefix, basic), conv in zip(basics, convs):
        kernel = get(f"{conv['name']}/kernel").transpose(3, 2, 0, 1)  # HWIO -> OIHW
        if tuple(kernel.shape) != tuple(basic.conv.weight.shape):
            raise ModularityError(f"Keras layer {conv['name']} (kernel {list(kernel.shape)} as OIHW) does not "
                                  f"fit {prefix}.conv {list(basic.conv.weight.shape)}")
        if conv["config"].get("use_bias"):
            raise ModularityError(f"Keras layer {conv['name']} has a bias; torchvision BasicConv2d has none")
        bn = bn_of.get(conv["name"])
        if bn is None:
            raise ModularityError(f"Keras layer {conv['name']} is not followed by a BatchNormalization")
        eps = float(bn["config"].get("epsilon", 1e-3))
        if not math.isclose(eps, basic.bn.eps, rel_tol=1e-3):
            raise ModularityError(f"Keras layer {bn['name']} has epsilon {eps}; torchvision uses {basic.bn.eps}")
        c = kernel.shape[0]
        b = bn["name"]
        gamma = get(f"{b}/gamma") if bn["config"].get("scale", True) else np.ones(c, np.float32)
        beta = get(f"{b}/beta") if bn["config"].get("center", True) else np.zeros(c, np.float32)
        state[f"{prefix}.conv.weight"] = torch.from_numpy(np.ascontiguousarray(kernel, np.float32))
        state[f"{prefix}.bn.weight"] = torch.from_numpy(np.array(gamma, np.float32))
        state[f"{prefix}.bn.bias"] = torch.from_numpy(np.array(beta, np.float32))
        state[f"{prefix}.bn.running_mean"] = torch.from_numpy(np.array(get(f"{b}/moving_mean"), np.float32))
        state[f"{prefix}.bn.running_var"] = torch.from_numpy(np.array(get(f"{b}/moving_variance"), np.float32))
        state[f"{prefix}.bn.num_batches_tracked"] = torch.tensor(0, dtype=torch.long)
    linears = [(n, m) for n, m in target.get_submodule("fc").named_children() if isinstance(m, nn.Linear)]
    if len(denses) != len(linears):
        raise ModularityError(f"the TF.js model has {len(denses)} Dense layers; the nsfwjs head has {len(linears)}")
    for (idx, lin), dense in zip(linears, denses):
        kernel = get(f"{dense['name']}/kernel").T
        if tuple(kernel.shape) != tuple(lin.weight.shape):
            raise ModularityError(f"Keras layer {dense['name']} ({list(kernel.shape)} as out x in) does not fit "
                                  f"fc.{idx} {list(lin.weight.shape)}")
        state[f"fc.{idx}.weight"] = torch.from_numpy(np.ascontiguousarray(kernel, np.float32))
        state[f"fc.{idx}.bias"] = torch.from_numpy(np.array(get(f"{dense['name']}/bias"), np.float32))
    missing = set(target.state_dict()) - set(state)
    if missing:
        raise ModularityError(f"conversion left {len(missing)} keys unset: {sorted(missing)[:3]}")
    return state


def nsfwjs_trainable_modules(model: dict) -> list[str]:
    """torchvision module names whose Keras layers were trainable (fine-tuned) in nsfwjs.

    Parameters
    ----------
    model : dict
        The TF.js model description.

    Returns
    -------
    list of str
        ``Mixed_6b.branch7x7dbl_2``-style BasicConv2d names and ``fc.*`` names,
        in order; the others were frozen ImageNet weights.
    """
    from torchvision.models.inception import BasicConv2d

    layers = _layers(model)
    convs = sorted((l for l in layers if l["class_name"] == "Conv2D"), key=lambda l: _creation_order(l["name"]))
    basics = [n for n, m in build_inception_v3_nsfwjs().named_modules() if isinstance(m, BasicConv2d)]
    out = [n for n, conv in zip(basics, convs) if conv["config"].get("trainable", True)]
    denses = sorted((l for l in layers if l["class_name"] == "Dense"), key=lambda l: _creation_order(l["name"]))
    out += [f"fc.{i}" for i, d in zip((0, 3, 6), denses) if d["config"].get("trainable", True)]
    return out


def default_nsfwjs_path() -> Path:
    """Where ``scripts/fetch_inception_v3.py`` writes the converted weights by default.

    ``$MODULARITY_CACHE`` overrides ``~/.cache/modularity``.
    """
    import os

    base = os.environ.get("MODULARITY_CACHE")
    root = Path(base) if base else Path.home() / ".cache" / "modularity"
    return root / "inception_v3_nsfwjs.safetensors"


def _default_weights() -> tuple[dict[str, torch.Tensor], str]:
    from .checkpoints import load_state_dict_file

    path = default_nsfwjs_path()
    if not path.is_file():
        raise ModularityError(
            f"{path} does not exist: run 'python scripts/fetch_inception_v3.py' (needs npm and the npm "
            "registry) to convert nsfwjs 4.3.0's InceptionV3, or pass a converted file with --weights"
        )
    return load_state_dict_file(path), str(path)


def source() -> ModelSource:
    """The model source of this module (the registry registers it)."""
    return ModelSource(
        name="inception_v3_nsfwjs",
        build=build_inception_v3_nsfwjs,
        weights_source="nsfwjs 4.3.0 (npm) Keras InceptionV3, TF.js weights converted by "
                       "scripts/fetch_inception_v3.py: layers up to Keras mixed5 (torchvision Mixed_6c) are "
                       "frozen ImageNet weights, later blocks (Mixed_6d on) fine-tuned on 5 NSFW classes; "
                       "uint8-quantised",
        licence="MIT (nsfwjs)",
        default_weights=_default_weights,
        offline=lambda: default_nsfwjs_path().is_file(),
        input_size=(299, 299),
        notes="torchvision inception_v3 layout (94 BasicConv2d, Keras BN without scale: gamma = 1) with "
              "nsfwjs's head as fc = Sequential(2048-256-128-5); uint8-quantised weights",
        family="custom",
    )
