"""Small networks with known structure, shared by the tests."""

from __future__ import annotations

import torch
from torch import nn


class PlantedNet(nn.Module):
    """Four branches concatenated into ``block``, read by ``head`` (a 1x1 conv).

    With ``signal > 0`` each branch's units connect mainly to their own quarter
    of ``head``'s units: head weights inside the matching block are scaled up by
    ``1 + signal``. With ``signal = 0`` the weights carry no planted structure.
    """

    def __init__(self, widths=(8, 8, 8, 8), n_out: int = 32, signal: float = 3.0, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.branches = nn.ModuleList(nn.Conv2d(8, w, 1) for w in widths)
        self.block = _Cat()
        self.head = nn.Conv2d(sum(widths), n_out, 1)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)
            w = self.head.weight[:, :, 0, 0]
            per_out = n_out // len(widths)
            start = 0
            for b, width in enumerate(widths):
                w[b * per_out:(b + 1) * per_out, start:start + width] *= 1 + signal
                start += width

    def forward(self, x):
        x = torch.relu(self.stem(x))
        x = self.block(*[torch.relu(b(x)) for b in self.branches])  # N x 32 x H x W
        return self.head(x)


class _Cat(nn.Module):
    def forward(self, *xs):
        return torch.cat(xs, 1)


def grouped_net(groups: int = 4, width: int = 32, seed: int = 0) -> nn.Module:
    """conv1 -> grouped conv2 -> conv3: conv1's units are read by conv2's groups."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, width, 3), nn.ReLU(), nn.Conv2d(width, width, 3, groups=groups),
                         nn.BatchNorm2d(width), nn.ReLU(), nn.Conv2d(width, 16, 1)).eval()
