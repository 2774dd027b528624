"""Safe loading of weight files: state dicts (``.pt``/``.pth``) and safetensors.

Nothing here unpickles arbitrary code: ``torch.load`` always runs with
``weights_only=True``; safetensors files carry tensors only. The format is told
from the file's first bytes, not its name, and every way a file can be wrong
(missing, a folder, unreadable, empty, not a checkpoint, truncated, pickled
code, values that are not tensors, complex, sparse or non-finite weights) is
reported as one line naming the file and what would be accepted.
"""

from __future__ import annotations

import pickle
import re
import warnings
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path

import torch
from torch import nn

from ..errors import ModularityError
from .files import ACCEPTED as _ACCEPTED
from .files import check_readable_file, check_weights_file, sha256_file, sniff_format
from .files import first_line as _first_line

__all__ = [
    "load_state_dict_file",
    "check_state_dict",
    "check_readable_file",
    "sniff_format",
    "apply_state_dict",
    "state_dict_diff",
    "sha256_file",
    "guess_architecture",
    "FLOAT_DTYPES",
]

FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
"""Weight dtypes modularity analyses (float8 and smaller formats are quantised: they need their scales)."""
_ACCEPTED_DTYPES = "float16, bfloat16, float32 or float64"


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


# Keys under which training scripts nest the state dict (Lightning, torchvision references, timm, ...).
_WRAPPER_KEYS = ("state_dict", "model_state_dict", "model")


def _load_safetensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError, TypeError, OverflowError, MemoryError) as exc:
        raise ModularityError(f"{path} is not a readable safetensors file; it may be truncated or corrupt "
                              f"({_first_line(exc)})") from None


def _zip_check(path: Path) -> None:
    """Refuse zips that are not PyTorch checkpoints (TorchScript archives, other zips) before torch sees them."""
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise ModularityError(f"{path} is a truncated or corrupt zip file, not a complete PyTorch checkpoint "
                              f"({_first_line(exc)}); {_ACCEPTED}") from None
    if any(n.endswith("/constants.pkl") or "/code/" in n for n in names):
        raise ModularityError(f"{path} is a TorchScript archive (torch.jit.save), which is not loaded for safety; "
                              f"{_ACCEPTED}")
    if not any(n == "data.pkl" or n.endswith("/data.pkl") for n in names):
        raise ModularityError(f"{path} is a zip file but not a PyTorch checkpoint (it has no data.pkl); {_ACCEPTED}")


def _torch_load(path: Path, fmt: str) -> object:
    if fmt == "zip":
        _zip_check(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # an open file, not the path: torch.load would hand a '.safetensors' path to safetensors
            with open(path, "rb") as fh:
                return torch.load(fh, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        if re.search(r"\bGLOBAL\b|Unsupported global", text):  # an object or a function call, not tensors
            raise ModularityError(
                f"{path} pickles Python objects, not just tensors, and was refused for safety "
                "(weights_only=True); save a state dict instead: "
                "torch.save(model.state_dict(), 'weights.pth'), or use safetensors"
            ) from None
        detail = re.search(r"WeightsUnpickler error:\s*([^\n]+)", text)
        raise ModularityError(
            f"{path} is a corrupt PyTorch checkpoint ({detail.group(1).strip()[:120] if detail else _first_line(exc)})"
            f"; {_ACCEPTED}") from None
    except MemoryError:
        raise ModularityError(f"{path} declares tensors too large to load into memory; {_ACCEPTED}") from None
    except Exception as exc:  # RuntimeError, EOFError, BadZipFile, OSError, ValueError, ... from torch's reader
        raise ModularityError(
            f"{path} is corrupt or truncated and could not be read as a PyTorch checkpoint "
            f"({type(exc).__name__}: {_first_line(exc)}); {_ACCEPTED}"
        ) from None


def _unwrap(obj: object, path: Path) -> Mapping:
    """The state dict inside ``obj``: a bare one or the common ``{"state_dict": ...}`` wrappers."""
    if isinstance(obj, nn.Module):  # only reachable through safe globals; refuse anyway
        raise ModularityError(
            f"{path} holds a whole pickled module; save a state dict instead: "
            "torch.save(model.state_dict(), 'weights.pth')"
        )
    if isinstance(obj, torch.Tensor):
        raise ModularityError(f"{path} holds a single tensor, not a state dict (names mapped to tensors); "
                              f"{_ACCEPTED}")
    if not isinstance(obj, Mapping):
        raise ModularityError(f"{path} holds a {type(obj).__name__}, not a state dict (names mapped to tensors); "
                              f"{_ACCEPTED}")
    state: Mapping = obj
    for _ in range(3):  # {"model": {"state_dict": {...}}} and the like
        inner = next((state[k] for k in _WRAPPER_KEYS if isinstance(state.get(k), Mapping) and state[k]), None)
        if inner is None:
            break
        state = inner
    return state


def check_state_dict(state: Mapping, source: str | Path) -> dict[str, torch.Tensor]:
    """Check a loaded state dict and normalise its keys.

    A leading ``module.`` (``nn.DataParallel`` / ``DistributedDataParallel``)
    is removed from every key that has it.

    Parameters
    ----------
    state : mapping
        Parameter names to tensors.
    source : str or Path
        Where it came from, for messages.

    Returns
    -------
    dict of str to torch.Tensor

    Raises
    ------
    ModularityError
        One line naming the first offending entry: a key that is not a string,
        a value that is not a tensor, a sparse, quantized, meta or complex
        tensor, or a tensor holding NaN or infinite values (with their count);
        or an empty state dict.
    """
    if not state:
        raise ModularityError(f"{source} holds no tensors (an empty state dict); {_ACCEPTED}")
    out: dict[str, torch.Tensor] = {}
    keys: dict[str, str] = {}
    for key, value in state.items():
        if not isinstance(key, str):
            raise ModularityError(f"weights in {source}: key {key!r} is a {type(key).__name__}, not a parameter "
                                  "name; a state dict maps names (strings) to tensors")
        if not isinstance(value, torch.Tensor):
            raise ModularityError(f"weights in {source}: entry '{key}' is a {type(value).__name__}, not a tensor; "
                                  "a state dict maps parameter names to tensors only")
        what = f"weights in {source}: tensor '{key}'"
        if value.layout != torch.strided:
            raise ModularityError(f"{what} is sparse ({value.layout}); save dense tensors (tensor.to_dense())")
        if value.is_quantized:
            raise ModularityError(f"{what} is quantized ({value.dtype}); save float weights (tensor.dequantize())")
        if value.device.type == "meta":
            raise ModularityError(f"{what} is on the meta device and holds no values")
        if value.is_complex():
            raise ModularityError(f"{what} is complex ({value.dtype}); only real-valued weights can be analysed")
        if value.is_floating_point() and value.dtype not in FLOAT_DTYPES:
            raise ModularityError(f"{what} has dtype {_dtype_name(value.dtype)}, which modularity does not analyse; "
                                  f"accepted: {_ACCEPTED_DTYPES} (convert with tensor.float(), applying any "
                                  "scales the format keeps beside the weights)")
        if value.is_floating_point() and value.numel():
            bad = int((~torch.isfinite(value)).sum())
            if bad:
                raise ModularityError(f"{what} has {bad} NaN/Inf value{'s' if bad != 1 else ''} "
                                      f"(of {value.numel()}); only finite weights can be analysed")
        name = key.removeprefix("module.")
        if name in out:
            raise ModularityError(f"weights in {source}: '{keys[name]}' and '{key}' both name parameter '{name}' "
                                  "once the DataParallel prefix 'module.' is removed")
        out[name], keys[name] = value, key
    return out


def load_state_dict_file(path: str | Path) -> dict[str, torch.Tensor]:
    """Load a state dict from ``.pt``/``.pth``/``.bin`` (weights only) or ``.safetensors``.

    The format is told from the file's first bytes: a zip (PyTorch >= 1.6), a
    pickle stream (the legacy format) or a safetensors header. Wrappers
    ``{"state_dict": ...}``, ``{"model": ...}`` and ``{"model_state_dict": ...}``
    are unwrapped.

    Parameters
    ----------
    path : str or Path
        The weight file.

    Returns
    -------
    dict of str to torch.Tensor
        Parameter and buffer names (a leading ``module.`` from DataParallel is
        removed) mapped to tensors.

    Raises
    ------
    ModularityError
        If the file is missing, a folder, unreadable, empty, not a checkpoint,
        truncated or corrupt, pickles code (a whole module or arbitrary
        objects), holds something other than named real tensors, or holds
        NaN/Inf values.
    """
    path, fmt = check_weights_file(path)
    if fmt == "safetensors":
        return check_state_dict(_load_safetensors(path), path)
    return check_state_dict(_unwrap(_torch_load(path, fmt), path), path)


def state_dict_diff(
    expected: Mapping[str, torch.Tensor], given: Mapping[str, torch.Tensor]
) -> tuple[list[str], list[str], list[tuple[str, tuple[int, ...], tuple[int, ...]]]]:
    """Compare two state dicts.

    Returns
    -------
    missing : list of str
        Keys the model needs that the file lacks.
    unexpected : list of str
        Keys in the file that the model does not have.
    wrong_shape : list of (str, tuple, tuple)
        Keys present in both with different shapes: (key, model shape, file shape).
    """
    missing = sorted(set(expected) - set(given))
    unexpected = sorted(set(given) - set(expected))
    wrong = [
        (k, tuple(expected[k].shape), tuple(given[k].shape))
        for k in sorted(set(expected) & set(given))
        if tuple(expected[k].shape) != tuple(given[k].shape)
    ]
    return missing, unexpected, wrong


def _short(items: list, n: int = 3) -> str:
    shown = ", ".join(str(i) for i in items[:n])
    return shown + (f" (+{len(items) - n} more)" if len(items) > n else "")


def apply_state_dict(module: nn.Module, state: Mapping[str, torch.Tensor], source: str,
                     architecture: str | None = None,
                     signatures: Callable[[], Mapping[str, Mapping[str, tuple[int, ...]]]] | None = None) -> None:
    """Load ``state`` into ``module`` strictly, with a readable one-line diff on mismatch.

    BatchNorm's ``num_batches_tracked`` counters are optional in the file.
    ``signatures``, when given, returns the parameter names and shapes of the
    known architectures (see :func:`guess_architecture`), to name the one the
    keys look like.

    Raises
    ------
    ModularityError
        Naming the first integer or boolean tensor given for a floating-point
        parameter or buffer (never cast silently); listing missing keys,
        unexpected keys and wrong shapes, and, where the keys look like another
        registered architecture, its name.
    """
    expected = module.state_dict()
    given = dict(state)
    for k in expected:
        if k.endswith("num_batches_tracked") and k not in given:
            given[k] = expected[k]
    # load_state_dict would cast integer or boolean values into float parameters without a word; quantised
    # integers without their scales are not weights (int8 in [-128, 127] would make magnitudes meaningless).
    cast = [k for k, v in given.items() if k in expected and expected[k].is_floating_point()
            and isinstance(v, torch.Tensor) and not v.is_floating_point()]
    if cast:
        k = cast[0]
        raise ModularityError(f"weights in {source}: tensor '{k}' is {_dtype_name(given[k].dtype)}, not floating "
                              f"point ({len(cast)} such tensor{'s' if len(cast) != 1 else ''}); weights must be "
                              f"{_ACCEPTED_DTYPES}: dequantise them (apply their scales) and save floats")
    missing, unexpected, wrong = state_dict_diff(expected, given)
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing: {_short(missing)}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected: {_short(unexpected)}")
        if wrong:
            parts.append(f"{len(wrong)} wrong shape: " + _short(
                [f"{k} model {tuple(a)} file {tuple(b)}" for k, a, b in wrong]))
        # Naming another architecture helps only when the file does not fit this one; building every
        # architecture's signature is slow, so it is skipped when the file and the model agree on 90% of keys.
        fits = sum(1 for k, v in given.items() if k in expected and tuple(expected[k].shape) == tuple(v.shape))
        close = fits >= 0.9 * max(len(given), len(expected))
        guess = guess_architecture(given, signatures()) if signatures is not None and not close else None
        hint = f"; its keys look like '{guess}'" if guess and guess != architecture else ""
        raise ModularityError(
            f"weights in {source} do not match architecture '{architecture or type(module).__name__}' "
            f"({'; '.join(parts)}){hint}"
        )
    with torch.no_grad():
        module.load_state_dict(given, strict=True)


def guess_architecture(state: Mapping[str, torch.Tensor],
                       signatures: Mapping[str, Mapping[str, tuple[int, ...]]]) -> str | None:
    """Name the architecture in ``signatures`` whose parameter keys and shapes best match ``state``.

    Returns None when no architecture matches at least 90% of the file's keys.
    """
    best, best_score = None, 0.0
    given = {k: tuple(v.shape) for k, v in state.items() if not k.endswith("num_batches_tracked")}
    if not given:
        return None
    for name, sig in signatures.items():
        hits = sum(1 for k, s in given.items() if sig.get(k) == s)
        score = hits / max(len(given), len(sig))
        if score > best_score:
            best, best_score = name, score
    return best if best_score >= 0.9 else None
