"""Safe loading of weight files: state dicts (``.pt``/``.pth``) and safetensors.

Nothing here unpickles arbitrary code: ``torch.load`` always runs with
``weights_only=True``; safetensors files carry tensors only.
"""

from __future__ import annotations

import hashlib
import pickle
import zipfile
from pathlib import Path
from typing import Callable, Mapping

import torch
from torch import nn

from ..errors import ModularityError

__all__ = [
    "load_state_dict_file",
    "apply_state_dict",
    "state_dict_diff",
    "sha256_file",
    "guess_architecture",
]


def sha256_file(path: str | Path) -> str:
    """Return the hex SHA-256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _unwrap(obj: object, path: Path) -> dict[str, torch.Tensor]:
    """Accept a bare state dict or the common ``{"state_dict": ...}`` wrappers."""
    if isinstance(obj, nn.Module):  # only reachable through safe globals; refuse anyway
        raise ModularityError(
            f"{path} holds a whole pickled module; save a state dict instead: "
            "torch.save(model.state_dict(), 'weights.pth')"
        )
    if isinstance(obj, Mapping):
        for key in ("state_dict", "model_state_dict", "model"):
            inner = obj.get(key)
            if isinstance(inner, Mapping) and inner and all(isinstance(k, str) for k in inner):
                obj = inner
                break
        tensors = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
        if tensors:
            return {k.removeprefix("module."): v for k, v in tensors.items()}
    raise ModularityError(
        f"{path} holds no tensors by name; expected a state dict "
        "(a mapping from parameter names to tensors) or a safetensors file"
    )


def load_state_dict_file(path: str | Path) -> dict[str, torch.Tensor]:
    """Load a state dict from ``.pt``/``.pth``/``.bin`` (weights only) or ``.safetensors``.

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
        If the file is missing, truncated or corrupt, pickles code (a whole
        module or arbitrary objects), or holds no named tensors.
    """
    path = Path(path)
    if not path.is_file():
        raise ModularityError(f"weights file not found: {path}")
    with open(path, "rb") as fh:
        head = fh.read(8)
    if path.suffix == ".safetensors" or (len(head) == 8 and 0 < int.from_bytes(head, "little") < 1 << 27
                                         and path.suffix not in {".pt", ".pth", ".bin", ".ckpt"}):
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except (SafetensorError, OSError, ValueError) as exc:
            raise ModularityError(f"{path} is not a readable safetensors file ({_first_line(exc)})") from None
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        msg = _first_line(exc)
        if "weights_only" in str(exc) or "Unsupported global" in str(exc):
            raise ModularityError(
                f"{path} pickles Python objects, not just tensors, and was refused for safety "
                "(weights_only=True); save a state dict instead: "
                "torch.save(model.state_dict(), 'weights.pth'), or use safetensors"
            ) from None
        raise ModularityError(f"{path} is not a readable PyTorch checkpoint ({msg})") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ModularityError(
            f"{path} is corrupt or truncated and could not be read as a PyTorch checkpoint "
            f"({_first_line(exc)}); expected a state dict saved with torch.save or a .safetensors file"
        ) from None
    return _unwrap(obj, path)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


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
        Listing missing keys, unexpected keys and wrong shapes, and, where the
        keys look like another registered architecture, its name.
    """
    expected = module.state_dict()
    given = dict(state)
    for k in expected:
        if k.endswith("num_batches_tracked") and k not in given:
            given[k] = expected[k]
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
        guess = guess_architecture(given, signatures()) if signatures is not None else None
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
