"""Networks with planted modules at a tunable signal, and the calibration runs that use them.

:class:`PlantedModules` builds a small CNN ``stem -> B branches -> head``:

``mode="concat"``
    the B branch convs are concatenated (an explicit, traced branch structure:
    the concat layer carries the true labels) and read by ``head``;
``mode="hidden"``
    one conv of ``B * width`` units replaces the branches; its units belong to
    B hidden modules in a random order known only to the generator
    (``truth`` of :class:`PlantedModules`), the case "without branches".

In both, ``head``'s weights from module ``b``'s units to the ``b``-th block
of head units are multiplied by ``1 + signal``; ``signal = 0`` gives i.i.d.
Gaussian weights in every layer, for which the within-layer shuffle null is
exact, so every p-value the tool reports should be uniform (a false-positive
rate of ``alpha`` at level ``alpha``). ``column_scale > 0`` instead multiplies
each module's head columns by a module-wide factor ``exp(column_scale * z_b)``
(a pure *scale* difference between modules, no block pattern): the trivial
explanation the analysis' controls are meant to expose.

The run functions compute numbers only; ``scripts/calibration.py`` sweeps them
and draws the figures.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..analysis import analyze_layer
from ..core.graph import trace
from ..core.metrics import adjusted_rand
from ..core.nulls import study_rng
from ..errors import ModularityError
from .clusterability import clusterability
from .units import first_layer_analysis

__all__ = ["PlantedModules", "planted_network", "RunResult", "recovery_run"]


class _Cat(nn.Module):
    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return torch.cat(xs, 1)


class PlantedModules(nn.Module):
    """A small CNN with B planted modules feeding a 1x1 ``head``.

    Parameters
    ----------
    n_modules : int
        Number of modules B.
    width : int
        Units per module.
    n_out : int
        Units of ``head`` (a multiple of ``n_modules``).
    signal : float
        Within-block scale-up of ``head``'s weights is ``1 + signal``.
    mode : {"concat", "hidden"}
    column_scale : float
        Log-sd of a per-module scale of ``head``'s columns (0: none).
    stem_width : int
        Units of the first conv (which reads RGB).
    seed : int
        Seeds every weight and the hidden module order.

    Attributes
    ----------
    truth : ndarray of int
        Module of every unit of the module layer (``block`` or ``hidden``).
    module_layer : str
        The producer layer whose units carry the modules.
    """

    def __init__(self, n_modules: int = 4, width: int = 8, n_out: int = 32, signal: float = 1.0,
                 mode: str = "concat", column_scale: float = 0.0, stem_width: int = 16, seed: int = 0) -> None:
        super().__init__()
        if mode not in ("concat", "hidden"):
            raise ModularityError(f"mode must be 'concat' or 'hidden', got '{mode}'")
        if n_out % n_modules:
            raise ModularityError(f"n_out ({n_out}) must be a multiple of n_modules ({n_modules})")
        g = torch.Generator().manual_seed(int(seed))
        rng = study_rng(seed, "calibration")
        self.mode = mode
        self.stem = nn.Conv2d(3, stem_width, 3, padding=1)
        n_units = n_modules * width
        if mode == "concat":
            self.branches = nn.ModuleList(nn.Conv2d(stem_width, width, 1) for _ in range(n_modules))
            self.block = _Cat()
            self.truth = np.repeat(np.arange(n_modules), width)
            self.module_layer = "block"
        else:
            self.hidden = nn.Conv2d(stem_width, n_units, 1)
            self.truth = rng.permutation(np.repeat(np.arange(n_modules), width))
            self.module_layer = "hidden"
        self.head = nn.Conv2d(n_units, n_out, 1)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)
            w = self.head.weight[:, :, 0, 0]
            per_out = n_out // n_modules
            for b in range(n_modules):
                cols = torch.as_tensor(np.flatnonzero(self.truth == b))
                w[b * per_out:(b + 1) * per_out, cols] *= 1 + signal
                if column_scale:
                    w[:, cols] *= float(np.exp(column_scale * rng.standard_normal()))
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.stem(x))
        if self.mode == "concat":
            x = self.block(*[torch.relu(b(x)) for b in self.branches])  # N x B*width x H x W
        else:
            x = torch.relu(self.hidden(x))
        return self.head(x)


def planted_network(signal: float, seed: int = 0, **kwargs) -> PlantedModules:
    """Shorthand for :class:`PlantedModules` (``kwargs`` pass through)."""
    return PlantedModules(signal=signal, seed=seed, **kwargs)


@dataclass
class RunResult:
    """Every statistic and p-value of one analysed planted network.

    ``p_values`` maps a name to a p-value: ``recovery_ari`` (ARI against the
    true branches, concat mode), ``recovery_nmi``, ``control_unit_norm``,
    ``control_column_norms``, ``layer_ncut`` (the module layer's co-clustering
    n-cut), ``clusterability`` (whole-network n-cut), ``first_layer_colour``
    and ``first_layer_frequency`` (family-wise permutation p of the best
    singular-vector correlation).
    """

    signal: float
    seed: int
    mode: str
    ari: float
    p_values: dict[str, float | None]

    def to_dict(self) -> dict:
        """A plain dict."""
        return {"signal": self.signal, "seed": self.seed, "mode": self.mode, "ari": self.ari,
                "p_values": dict(self.p_values)}


def recovery_run(signal: float, seed: int, *, mode: str = "concat", n_permutations: int = 49,
                 n_shuffles: int = 0, first_layer_permutations: int = 0, column_scale: float = 0.0,
                 **kwargs) -> RunResult:
    """Build one planted network, analyse its module layer and (optionally) the whole network.

    Parameters
    ----------
    signal : float
    seed : int
        Seeds the network and every null.
    mode : {"concat", "hidden"}
    n_permutations : int
        Shuffles for :func:`~modularity.analysis.analyze_layer`.
    n_shuffles : int
        Shuffled networks for :func:`~modularity.studies.clusterability.clusterability` (0: skip).
    first_layer_permutations : int
        Permutations for :func:`~modularity.studies.units.first_layer_analysis` (0: skip).
    column_scale : float
        See :class:`PlantedModules`.
    **kwargs
        Passed to :class:`PlantedModules`.

    Returns
    -------
    RunResult
        In hidden mode the ARI is computed against the generator's hidden truth
        (the analysis has no labels to test it against, so its recovery p-values are None).
    """
    net = PlantedModules(signal=signal, seed=seed, mode=mode, column_scale=column_scale, **kwargs)
    n_modules = int(net.truth.max()) + 1
    g = trace(net, (8, 8))
    res = analyze_layer(g, net.module_layer, k=n_modules, n_permutations=n_permutations, seed=seed)
    labels = np.asarray(res.clusters)
    live = labels >= 0
    ari = adjusted_rand(net.truth[live], labels[live])
    p: dict[str, float | None] = {"layer_ncut": res.structure.ncut.p_value}
    rec = res.recovery
    p["recovery_ari"] = rec.p_value if rec is not None else None
    p["recovery_nmi"] = rec.nmi_p_value if rec is not None else None
    p["control_unit_norm"] = rec.controls["unit_norm_columns"].p_value if rec is not None else None
    p["control_column_norms"] = rec.controls["column_norms_only"].p_value if rec is not None else None
    if n_shuffles:
        p["clusterability"] = clusterability(g, k=n_modules, n_shuffles=n_shuffles, seed=seed).p_value
    if first_layer_permutations:
        fl = first_layer_analysis(g, n_permutations=first_layer_permutations, seed=seed)
        p["first_layer_colour"] = fl.best["colour"]["p_max"]
        p["first_layer_frequency"] = fl.best["frequency"]["p_max"]
    return RunResult(float(signal), int(seed), mode, ari, p)
