"""Small networks with known structure, shared by the tests."""

from __future__ import annotations

import torch
from torch import nn

from modularity.studies.calibration import PlantedModules


class PlantedNet(PlantedModules):
    """Four branches of 8 units concatenated into ``block``, read by ``head`` (a 1x1 conv of 32 units).

    The calibration study's planted network (:class:`modularity.studies.calibration.PlantedModules`,
    concat mode) at the sizes the tests use: a stem of 8 units, and by default a strong signal
    (each branch's units connect mainly to their own quarter of ``head``: the weights inside
    the matching block are scaled up by ``1 + signal``). ``signal = 0`` plants nothing.
    """

    def __init__(self, signal: float = 3.0, seed: int = 0) -> None:
        super().__init__(n_modules=4, width=8, n_out=32, signal=signal, mode="concat", stem_width=8, seed=seed)


def grouped_net(groups: int = 4, width: int = 32, seed: int = 0) -> nn.Module:
    """conv1 -> grouped conv2 -> conv3: conv1's units are read by conv2's groups."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, width, 3), nn.ReLU(), nn.Conv2d(width, width, 3, groups=groups),
                         nn.BatchNorm2d(width), nn.ReLU(), nn.Conv2d(width, 16, 1)).eval()


class TinyEncoder(nn.Module):
    """Patches -> pre-norm multi-head attention with a residual -> a linear reader: a ViT block in miniature
    (q, k, v are slices of one weight; LayerNorm scales their columns)."""

    def __init__(self, dim: int = 8, heads: int = 2) -> None:
        super().__init__()
        self.patch = nn.Conv2d(3, dim, 2, stride=2)
        self.ln = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.fc = nn.Linear(dim, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.patch(x).flatten(2).transpose(1, 2)  # N x positions x dim
        y = self.ln(t)
        t = t + self.attn(y, y, y, need_weights=False)[0]
        return self.fc(t)
