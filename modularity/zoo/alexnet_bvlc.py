"""The original two-group AlexNet (BVLC Caffe replication), as a traceable module.

torchvision's ``alexnet`` is the single-tower "one weird trick" variant
(64-192-384-256-256 channels, no groups). The network of Krizhevsky et al. (2012)
as replicated by BVLC in Caffe (``bvlc_alexnet``, also in the ONNX Model Zoo) has
96-256-384-384-256 channels and ``group: 2`` on conv2, conv4 and conv5: the two
GPU towers. Those groups are ground-truth branch labels for the analysis.

Module (and state-dict) names, top level, in order::

    conv1  (96, 3, 11, 11) stride 4     relu1  norm1 (LRN 5, 1e-4, 0.75)  pool1 (3/2)
    conv2  (256, 48, 5, 5) pad 2, g=2   relu2  norm2                      pool2 (3/2)
    conv3  (384, 256, 3, 3) pad 1       relu3
    conv4  (384, 192, 3, 3) pad 1, g=2  relu4
    conv5  (256, 192, 3, 3) pad 1, g=2  relu5                             pool5 (3/2)
    flatten (256 x 6 x 6 = 9216)
    fc6 (4096)  relu6  drop6   fc7 (4096)  relu7  drop7   fc8 (1000)

Pooling uses Caffe's ceil mode, so both Caffe's 227 x 227 crop and the ONNX
Model Zoo's 224 x 224 input reach a 6 x 6 map before fc6. ``forward`` returns
the fc8 logits (the Caffe and ONNX graphs end with a softmax, "prob").

Weights: the ONNX Model Zoo file ``bvlc_alexnet.onnx`` (validated/vision/
classification/alexnet/model/bvlc_alexnet-9.onnx) converts with
:func:`state_dict_from_onnx`; ``python -m modularity analyze alexnet_bvlc
--weights bvlc_alexnet-9.onnx`` does that on the fly. A converted state dict
(``.safetensors``/``.pth``) with the names above loads directly.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..errors import ModularityError
from .source import ModelSource

__all__ = ["AlexNetBVLC", "alexnet_bvlc", "state_dict_from_onnx", "ONNX_ZOO_FILE", "ONNX_ZOO_URL"]

ONNX_ZOO_FILE = "bvlc_alexnet-9.onnx"
ONNX_ZOO_URL = ("https://github.com/onnx/models/raw/main/validated/vision/classification/alexnet/model/"
                "bvlc_alexnet-9.onnx")

_CONVS = ("conv1", "conv2", "conv3", "conv4", "conv5")
_FCS = ("fc6", "fc7", "fc8")


class AlexNetBVLC(nn.Module):
    """Two-group AlexNet with the BVLC Caffe layer names (``conv1`` ... ``fc8``).

    Parameters
    ----------
    num_classes : int
        Outputs of fc8 (1000 for ImageNet).
    """

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 96, 11, stride=4)
        self.relu1 = nn.ReLU()
        self.norm1 = nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=1.0)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(96, 256, 5, padding=2, groups=2)
        self.relu2 = nn.ReLU()
        self.norm2 = nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=1.0)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(256, 384, 3, padding=1)
        self.relu3 = nn.ReLU()
        self.conv4 = nn.Conv2d(384, 384, 3, padding=1, groups=2)
        self.relu4 = nn.ReLU()
        self.conv5 = nn.Conv2d(384, 256, 3, padding=1, groups=2)
        self.relu5 = nn.ReLU()
        self.pool5 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.fc6 = nn.Linear(256 * 6 * 6, 4096)
        self.relu6 = nn.ReLU()
        self.drop6 = nn.Dropout(0.5)
        self.fc7 = nn.Linear(4096, 4096)
        self.relu7 = nn.ReLU()
        self.drop7 = nn.Dropout(0.5)
        self.fc8 = nn.Linear(4096, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (N x num_classes) for images N x 3 x 227 x 227 (or 224 x 224)."""
        x = self.pool1(self.norm1(self.relu1(self.conv1(x))))
        x = self.pool2(self.norm2(self.relu2(self.conv2(x))))
        x = self.relu3(self.conv3(x))
        x = self.relu4(self.conv4(x))
        x = self.pool5(self.relu5(self.conv5(x)))
        x = torch.flatten(x, 1)
        x = self.drop6(self.relu6(self.fc6(x)))
        x = self.drop7(self.relu7(self.fc7(x)))
        return self.fc8(x)


def alexnet_bvlc(num_classes: int = 1000) -> AlexNetBVLC:
    """Build the two-group BVLC AlexNet with random weights, in eval mode.

    Parameters
    ----------
    num_classes : int

    Returns
    -------
    AlexNetBVLC
    """
    return AlexNetBVLC(num_classes).eval()


def state_dict_from_onnx(path: str | Path) -> dict[str, torch.Tensor]:
    """Convert an ONNX Model Zoo ``bvlc_alexnet`` file into this module's state dict.

    The five Conv and three Gemm (or MatMul) nodes are taken in graph order, so the
    initializer names do not matter; each shape is checked against the architecture.

    Parameters
    ----------
    path : str or Path
        ``bvlc_alexnet-9.onnx`` (or any opset of it) from the ONNX Model Zoo.

    Returns
    -------
    dict of str to torch.Tensor
        ``conv1.weight`` ... ``fc8.bias``.

    Raises
    ------
    ModularityError
        If the file is unreadable, or its layers do not match the two-group AlexNet.
    """
    from .onnx_import import load_onnx

    gm = load_onnx(path).module
    convs = [m for m in gm.modules() if isinstance(m, nn.Conv2d)]
    fcs = [m for m in gm.modules() if isinstance(m, nn.Linear)]
    if len(convs) != 5 or len(fcs) != 3:
        raise ModularityError(f"{path} is not a BVLC AlexNet: it has {len(convs)} conv and {len(fcs)} "
                              "fully connected layers (expected 5 and 3)")
    state: dict[str, torch.Tensor] = {}
    for name, mod in list(zip(_CONVS, convs)) + list(zip(_FCS, fcs)):
        state[f"{name}.weight"] = mod.weight.detach().clone()
        if mod.bias is None:
            raise ModularityError(f"{path}: layer {name} has no bias; not a BVLC AlexNet")
        state[f"{name}.bias"] = mod.bias.detach().clone()
    if convs[1].groups != 2 or convs[3].groups != 2 or convs[4].groups != 2:
        raise ModularityError(f"{path} is not the two-group BVLC AlexNet (conv2/conv4/conv5 groups are "
                              f"{convs[1].groups}/{convs[3].groups}/{convs[4].groups}, expected 2/2/2)")
    return state


def _default_weights() -> tuple[dict[str, torch.Tensor], str]:
    raise ModularityError(
        "BVLC AlexNet weights are not bundled: download the ONNX Model Zoo file "
        f"{ONNX_ZOO_FILE} (opset 9, {ONNX_ZOO_URL}) and pass it with --weights {ONNX_ZOO_FILE}"
    )


def source() -> ModelSource:
    """The model source of this module (the registry registers it)."""
    return ModelSource(
        name="alexnet_bvlc",
        build=alexnet_bvlc,
        weights_source=f"ONNX Model Zoo {ONNX_ZOO_FILE} (BVLC Caffe replication of AlexNet), "
                       "passed with --weights and converted on load",
        licence="BSD-3-Clause (BVLC Caffe model); see the ONNX Model Zoo terms",
        default_weights=_default_weights,
        offline=lambda: False,
        input_size=(227, 227),
        notes="original two-tower AlexNet: 96-256-384-384-256 channels, groups=2 on conv2/conv4/conv5, "
              "LRN; not torchvision's single-tower alexnet",
        family="custom",
        onnx_converter=state_dict_from_onnx,
    )
