"""Which layers to analyse, and whether their weights can be analysed at all."""

from __future__ import annotations

import fnmatch
import re
from typing import cast

import numpy as np
import torch

from ..core.graph import ChannelGraph
from ..errors import ModularityError
from ..zoo.checkpoints import FLOAT_DTYPES

__all__ = ["select_layers", "check_finite"]


def select_layers(graph: ChannelGraph, pattern: str | None = None) -> list[str]:
    """Producer layers whose names match ``pattern``.

    ``pattern`` is a comma-separated list of shell globs (``inception??``,
    ``features.0``) or, when wrapped in slashes, a regular expression
    (``/layer[12]\\..*conv2/``). None selects every producer.

    Raises
    ------
    ModularityError
        When nothing matches; the message lists the available layers.
    """
    names = graph.producer_names()
    if pattern is None:
        return names
    if len(pattern) > 1 and pattern.startswith("/") and pattern.endswith("/"):
        try:
            rx = re.compile(pattern[1:-1])
        except re.error as exc:
            raise ModularityError(f"layers '{pattern}' is not a valid regular expression ({exc}); use shell "
                                  "globs such as 'inception*', or /regex/") from None
        chosen = [n for n in names if rx.search(n)]
    else:
        globs = [p.strip() for p in pattern.split(",") if p.strip()]
        chosen = [n for n in names if any(fnmatch.fnmatchcase(n, g) for g in globs)]
    if not chosen:
        shown = ", ".join(names[:40]) + (f", ... ({len(names)} in all)" if len(names) > 40 else "")
        raise ModularityError(f"layers '{pattern}' matches no layer; available layers: {shown}")
    return chosen


def check_finite(graph: ChannelGraph) -> None:
    """Refuse weights or batch-norm scales with NaN or infinite values, naming the first layer that has them.

    Raises
    ------
    ModularityError
    """
    for name, layer in graph.layers.items():
        if name not in graph.modules or getattr(graph.modules[name], "weight", None) is None:
            continue
        w = cast(torch.Tensor, graph.modules[name].weight).detach()
        if w.is_complex():
            raise ModularityError(f"layer '{name}' has complex weights ({w.dtype}); only real weights have the "
                                  "magnitudes analysed here")
        if w.dtype not in FLOAT_DTYPES:  # float8 (isfinite is not implemented), integers, booleans
            raise ModularityError(f"layer '{name}' has {str(w.dtype).removeprefix('torch.')} weights; analysed are "
                                  "float16, bfloat16, float32 or float64 (convert with module.float())")
        # in blocks of 4 M entries: isfinite makes temporaries the size of its input (alexnet: 0.25 GB at once)
        bad = sum(int((~torch.isfinite(part)).sum()) for part in w.reshape(-1).split(1 << 22))
        if bad:
            raise ModularityError(f"layer '{name}' has {bad} NaN/Inf weight values (of {w.numel()}); analyse a "
                                  "checkpoint with finite weights")
        if layer.row_scale is not None and not np.all(np.isfinite(layer.row_scale)):
            raise ModularityError(f"the batch norm after layer '{name}' has NaN/Inf statistics (running_var, "
                                  "weight or eps), so its folded scale is not finite")
