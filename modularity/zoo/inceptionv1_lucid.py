"""Lucid's InceptionV1 ("inception5h"), the Circuits/Microscope model, traceable by torch.fx.

This is the network of the Circuits thread, not torchvision's ``googlenet``: LRN
instead of batch norm, true 5x5 kernels, 1008 classes, and mixed4a has 508
channels (its 3x3 branch has 204). The parameter names are exactly those of
lucent's PyTorch port (``lucent.modelzoo.inceptionv1.InceptionV1``, converted
by ProGamerGov), so its ``inception5h.pth`` state dict loads key for key:
``conv2d0_pre_relu_conv``, ``conv2d1_pre_relu_conv``, ``conv2d2_pre_relu_conv``,
``mixed3a_1x1_pre_relu_conv``, ``mixed3a_3x3_bottleneck_pre_relu_conv``,
``mixed3a_3x3_pre_relu_conv``, ``mixed3a_5x5_bottleneck_pre_relu_conv``,
``mixed3a_5x5_pre_relu_conv``, ``mixed3a_pool_reduce_pre_relu_conv``, ... and
``softmax2_pre_activation_matmul``.

Differences from lucent's definition, none of which changes a parameter name or
the arithmetic: padding is done by modules or by the convs' own symmetric
``padding`` instead of ``F.pad`` calls in ``forward``; LRN is
``nn.LocalResponseNorm`` (the same formula as ``F.local_response_norm``); the
parameter-free helper layers are stock modules under lucent's names
(``conv2d0`` is an ``nn.ReLU``, ``mixed3a_pool`` an ``nn.MaxPool2d``); and each
block's concatenation runs inside a parameter-free :class:`Concat` child named
like the layer (``mixed3a``), so a traced concat carries the module path
``mixed3a``. ``forward`` returns the softmax over the 1008 classes, as lucent's.
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import ModularityError
from .source import ModelSource

__all__ = ["InceptionV1Lucid", "Concat", "inceptionv1_lucid", "MIXED_BLOCKS", "LUCENT_WEIGHTS_URL"]

LUCENT_WEIGHTS_URL = "https://github.com/ProGamerGov/pytorch-old-tensorflow-models/raw/master/inception5h.pth"

# name: (in, 1x1, 3x3 bottleneck, 3x3, 5x5 bottleneck, 5x5, pool reduce), from lucent's InceptionV1.
MIXED_BLOCKS: dict[str, tuple[int, int, int, int, int, int, int]] = {
    "mixed3a": (192, 64, 96, 128, 16, 32, 32),
    "mixed3b": (256, 128, 128, 192, 32, 96, 64),
    "mixed4a": (480, 192, 96, 204, 16, 48, 64),
    "mixed4b": (508, 160, 112, 224, 24, 64, 64),
    "mixed4c": (512, 128, 128, 256, 24, 64, 64),
    "mixed4d": (512, 112, 144, 288, 32, 64, 64),
    "mixed4e": (528, 256, 160, 320, 32, 128, 128),
    "mixed5a": (832, 256, 160, 320, 48, 128, 128),
    "mixed5b": (832, 384, 192, 384, 48, 128, 128),
}
# Stride-2 max pools (lucent's maxpool4 and maxpool10) that follow these blocks.
_POOL_AFTER = {"mixed3b": "maxpool4", "mixed4e": "maxpool10"}


class Concat(nn.Module):
    """Parameter-free channel concatenation, so the concat has a module path of its own."""

    def forward(self, a: torch.Tensor, b: torch.Tensor, c: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
        """Concatenate four branch outputs along channels."""
        return torch.cat((a, b, c, d), 1)


def _tf_maxpool() -> nn.Sequential:
    """TensorFlow 'SAME' 3x3/2 max pool: pad right and bottom by one with -inf."""
    return nn.Sequential(nn.ConstantPad2d((0, 1, 0, 1), float("-inf")), nn.MaxPool2d(3, 2))


class InceptionV1Lucid(nn.Module):
    """Lucid's InceptionV1 with lucent's state-dict keys (see the module docstring)."""

    def __init__(self, num_classes: int = 1008) -> None:
        super().__init__()
        self.conv2d0_pre_relu_conv_pad = nn.ZeroPad2d((2, 3, 2, 3))
        self.conv2d0_pre_relu_conv = nn.Conv2d(3, 64, 7, stride=2)
        self.conv2d0 = nn.ReLU()
        self.maxpool0 = _tf_maxpool()
        self.localresponsenorm0 = nn.LocalResponseNorm(9, alpha=9.99999974738e-05, beta=0.5, k=1.0)
        self.conv2d1_pre_relu_conv = nn.Conv2d(64, 64, 1)
        self.conv2d1 = nn.ReLU()
        self.conv2d2_pre_relu_conv = nn.Conv2d(64, 192, 3, padding=1)
        self.conv2d2 = nn.ReLU()
        self.localresponsenorm1 = nn.LocalResponseNorm(9, alpha=9.99999974738e-05, beta=0.5, k=1.0)
        self.maxpool1 = _tf_maxpool()
        for name, (cin, c1, c3r, c3, c5r, c5, cp) in MIXED_BLOCKS.items():
            setattr(self, f"{name}_1x1_pre_relu_conv", nn.Conv2d(cin, c1, 1))
            setattr(self, f"{name}_3x3_bottleneck_pre_relu_conv", nn.Conv2d(cin, c3r, 1))
            setattr(self, f"{name}_5x5_bottleneck_pre_relu_conv", nn.Conv2d(cin, c5r, 1))
            setattr(self, f"{name}_pool_reduce_pre_relu_conv", nn.Conv2d(cin, cp, 1))
            setattr(self, f"{name}_3x3_pre_relu_conv", nn.Conv2d(c3r, c3, 3, padding=1))
            setattr(self, f"{name}_5x5_pre_relu_conv", nn.Conv2d(c5r, c5, 5, padding=2))
            setattr(self, f"{name}_pool", nn.MaxPool2d(3, 1, padding=1))  # = -inf padding by one
            for part in ("1x1", "3x3_bottleneck", "5x5_bottleneck", "pool_reduce", "3x3", "5x5"):
                setattr(self, f"{name}_{part}", nn.ReLU())
            setattr(self, name, Concat())
            if name in _POOL_AFTER:
                setattr(self, _POOL_AFTER[name], _tf_maxpool())
        self.avgpool0 = nn.AvgPool2d(7, stride=1, count_include_pad=False)
        self.softmax2_pre_activation_matmul = nn.Linear(1024, num_classes)
        self.softmax2 = nn.Softmax(dim=1)

    def _block(self, name: str, x: torch.Tensor) -> torch.Tensor:
        m = lambda part: getattr(self, f"{name}_{part}")  # noqa: E731
        b1 = m("1x1")(m("1x1_pre_relu_conv")(x))
        b3 = m("3x3_bottleneck")(m("3x3_bottleneck_pre_relu_conv")(x))
        b3 = m("3x3")(m("3x3_pre_relu_conv")(b3))
        b5 = m("5x5_bottleneck")(m("5x5_bottleneck_pre_relu_conv")(x))
        b5 = m("5x5")(m("5x5_pre_relu_conv")(b5))
        bp = m("pool_reduce")(m("pool_reduce_pre_relu_conv")(m("pool")(x)))
        return getattr(self, name)(b1, b3, b5, bp)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class probabilities (N x 1008) for N x 3 x 224 x 224 images (lucent's input scaling)."""
        x = self.conv2d0(self.conv2d0_pre_relu_conv(self.conv2d0_pre_relu_conv_pad(x)))
        x = self.localresponsenorm0(self.maxpool0(x))
        x = self.conv2d1(self.conv2d1_pre_relu_conv(x))
        x = self.conv2d2(self.conv2d2_pre_relu_conv(x))
        x = self.maxpool1(self.localresponsenorm1(x))
        for name in MIXED_BLOCKS:
            x = self._block(name, x)
            if name in _POOL_AFTER:
                x = getattr(self, _POOL_AFTER[name])(x)
        x = torch.flatten(self.avgpool0(x), 1)
        return self.softmax2(self.softmax2_pre_activation_matmul(x))


def inceptionv1_lucid(num_classes: int = 1008) -> InceptionV1Lucid:
    """Build Lucid's InceptionV1 with random weights, in eval mode.

    Parameters
    ----------
    num_classes : int
        1008 for the released inception5h weights.

    Returns
    -------
    InceptionV1Lucid
    """
    return InceptionV1Lucid(num_classes).eval()


def _default_weights() -> tuple[dict[str, torch.Tensor], str]:
    raise ModularityError(
        "Lucid InceptionV1 weights are not bundled: download lucent's inception5h.pth "
        f"({LUCENT_WEIGHTS_URL}) and pass it with --weights inception5h.pth"
    )


def source() -> ModelSource:
    """The model source of this module (the registry registers it)."""
    return ModelSource(
        name="inceptionv1_lucid",
        build=inceptionv1_lucid,
        weights_source=f"lucent's inception5h.pth state dict ({LUCENT_WEIGHTS_URL}), passed with --weights",
        licence="Apache-2.0 (Lucid/TensorFlow inception5h); lucent port MIT",
        default_weights=_default_weights,
        offline=lambda: False,
        input_size=(224, 224),
        notes="the Circuits/Microscope InceptionV1: LRN, no batch norm, true 5x5 kernels, 1008 classes, "
              "mixed4a 508 channels; unit indices match the Circuits articles",
        family="custom",
    )
