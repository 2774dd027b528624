"""Tables of the torch operations the channel tracer knows, by what they do to channels.

Read by :mod:`modularity.core.graph`. An operation missing here is refused by the tracer
with an error naming the fx node, never guessed.
"""

from __future__ import annotations

import importlib
import operator

import torch
import torch.nn.functional as F
from torch import nn

# Modules and functions that keep each channel in place (no weights that mix channels).
PASS_MODULES = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU,
    nn.Mish, nn.Hardswish, nn.Hardsigmoid, nn.Hardtanh, nn.Sigmoid, nn.Tanh, nn.Softplus,
    nn.Dropout, nn.Dropout2d, nn.AlphaDropout, nn.Identity, nn.MaxPool2d, nn.AvgPool2d,
    nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, nn.LocalResponseNorm, nn.ZeroPad2d,
    nn.ConstantPad2d, nn.ReflectionPad2d, nn.ReplicationPad2d, nn.Upsample, nn.Softmax,
    nn.LogSoftmax, nn.GroupNorm, nn.LayerNorm, nn.InstanceNorm2d, nn.modules.batchnorm._BatchNorm,
    nn.MaxPool1d, nn.AvgPool1d, nn.AdaptiveAvgPool1d, nn.AdaptiveMaxPool1d, nn.ZeroPad1d, nn.ConstantPad1d,
    nn.ReflectionPad1d, nn.ReplicationPad1d, nn.InstanceNorm1d, nn.Softmax2d, nn.Tanhshrink, nn.Softsign,
    nn.LogSigmoid, nn.Dropout1d, nn.RMSNorm,
)
# Those that act on the axes after the first two of an N x C x ... map (pooling, resizing): never on channels.
SPATIAL_MODULES = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, nn.Upsample,
                   nn.MaxPool1d, nn.AvgPool1d, nn.AdaptiveAvgPool1d, nn.AdaptiveMaxPool1d)
PASS_FUNCTIONS = {
    torch.relu, torch.relu_, F.relu, F.relu6, F.leaky_relu, F.elu, F.gelu, F.silu, F.mish,
    F.hardswish, F.hardsigmoid, F.hardtanh, torch.sigmoid, F.sigmoid, torch.tanh, F.tanh,
    F.softplus, F.dropout, F.dropout2d, torch.dropout, F.max_pool2d, F.avg_pool2d,
    F.adaptive_avg_pool2d, F.adaptive_max_pool2d, F.interpolate, F.local_response_norm,
    F.batch_norm, F.layer_norm, F.group_norm, torch.clamp, torch.clip, F.softmax, F.log_softmax,
    torch.softmax, torch.log_softmax,
    operator.neg, torch.neg, torch.abs, torch.exp, torch.sqrt, torch.square,
    # elementwise functions of one tensor
    torch.rsqrt, torch.reciprocal, torch.log, torch.log1p, torch.expm1, torch.erf, torch.sin, torch.cos,
    torch.sign, torch.nan_to_num, F.logsigmoid, F.softsign, F.tanhshrink, F.celu, F.selu, F.silu,
    torch.special.erf, torch.nn.functional.threshold, operator.abs,
    # 1-d pooling and padding (N x C x L), instance norm
    F.max_pool1d, F.avg_pool1d, F.adaptive_avg_pool1d, F.adaptive_max_pool1d, F.instance_norm,
    # L2 normalisation along an axis (XCiT's q and k, SwiftFormer, cosine attention): a data-dependent
    # factor per position or per channel, no mixing of channels.
    F.normalize,
}
SPATIAL_FUNCTIONS = {F.max_pool2d, F.avg_pool2d, F.adaptive_avg_pool2d, F.adaptive_max_pool2d, F.interpolate,
                     F.max_pool1d, F.avg_pool1d, F.adaptive_avg_pool1d, F.adaptive_max_pool1d}
PASS_METHODS = {
    "relu", "relu_", "sigmoid", "tanh", "contiguous", "clone", "detach", "float", "to",
    "type_as", "clamp", "clamp_", "clip", "neg", "abs", "exp", "sqrt", "softmax", "cpu",
    "double", "half", "requires_grad_", "sigmoid_", "tanh_", "square",
    "rsqrt", "reciprocal", "log", "log1p", "expm1", "erf", "sin", "cos", "sign", "exp_", "sqrt_", "abs_",
    "neg_", "square_", "rsqrt_", "bfloat16", "relu6", "gelu", "silu", "hardswish", "hardsigmoid",
}
# x ** c and torch.pow(x, c) with a fixed exponent keep each channel in place.
POW_OPS = {operator.pow, torch.pow}
# Elementwise combinations of two tensors that keep channels in place, like an addition.
ELEMENTWISE_OPS = {torch.maximum, torch.minimum, torch.fmax, torch.fmin, torch.where, torch.lerp}
# Channel-preserving operations that are the identity in eval mode: a norm after one of them (Swin v2's
# ``norm2(mlp(x))``, whose MLP ends in dropout) folds its scale into the layer before, as if it were not there.
IDENTITY_MODULES = (nn.Dropout, nn.Dropout2d, nn.AlphaDropout, nn.Identity)
IDENTITY_FUNCTIONS = {F.dropout, F.dropout2d, torch.dropout}
IDENTITY_METHODS = {"contiguous", "clone", "detach", "float", "to", "cpu", "requires_grad_"}
ADD_OPS = {operator.add, operator.iadd, operator.sub, operator.isub, torch.add, torch.sub}
MUL_OPS = {operator.mul, operator.imul, operator.truediv, operator.itruediv, torch.mul, torch.div}
DIV_OPS = {operator.truediv, operator.itruediv, torch.div}
CAT_OPS = {torch.cat, torch.concat, torch.concatenate}
MATMUL_OPS = {operator.matmul, torch.matmul, torch.bmm}
REDUCE_OPS = {torch.mean, torch.sum, torch.amax, torch.amin, torch.max, torch.min, torch.norm,
              torch.linalg.vector_norm, torch.var, torch.std, torch.logsumexp}
REDUCE_METHODS = {"mean", "sum", "amax", "amin", "max", "min", "norm", "var", "std", "logsumexp"}
# Pure rearrangements of elements: followed exactly by applying them to a tensor of channel indices.
LAYOUT_FUNCTIONS = {
    torch.flatten, torch.reshape, torch.permute, torch.transpose, torch.swapaxes, torch.swapdims,
    torch.movedim, torch.moveaxis, torch.squeeze, torch.unsqueeze, torch.narrow, torch.select, torch.roll,
    torch.t, torch.unflatten, torch.split, torch.chunk, torch.tensor_split, torch.unbind, operator.getitem,
    F.pixel_shuffle, F.pixel_unshuffle, F.channel_shuffle, torch.channel_shuffle, torch.repeat_interleave,
    torch.flip, torch.tile, F.unfold, F.pad,
}
LAYOUT_METHODS = {
    "view", "reshape", "flatten", "unflatten", "permute", "transpose", "swapaxes", "swapdims", "movedim",
    "moveaxis", "squeeze", "unsqueeze", "narrow", "select", "roll", "t", "split", "chunk", "tensor_split",
    "unbind", "expand", "repeat", "view_as", "reshape_as", "expand_as", "repeat_interleave", "flip", "tile",
    "unfold", "mT",
}
# Layout methods whose tensor argument only gives a shape (``x.reshape_as(y)``).
AS_METHODS = {"view_as", "reshape_as", "expand_as"}
LAYOUT_MODULES = (nn.Flatten, nn.Unflatten, nn.PixelShuffle, nn.PixelUnshuffle, nn.ChannelShuffle, nn.Unfold)
SPLIT_FUNCTIONS = {torch.split, torch.chunk, torch.tensor_split, torch.unbind}
SPLIT_METHODS = {"split", "chunk", "tensor_split", "unbind"}
# New tensors built from a traced one's shape or dtype only: constants.
NEW_FUNCTIONS = {torch.zeros_like, torch.ones_like, torch.empty_like, torch.full_like, torch.rand_like,
                  torch.randn_like}
NEW_METHODS = {"new_zeros", "new_ones", "new_empty", "new_full", "new_tensor", "size", "dim"}
NORM_MODULES = (nn.LayerNorm, nn.GroupNorm, nn.RMSNorm)
NORM_FUNCTIONS = {F.layer_norm, F.group_norm, F.rms_norm}
CONV_FUNCTIONS = {F.conv1d: 1, F.conv2d: 2}
FOLD = (nn.Fold, F.fold)
NON_TENSOR_FUNCS = {getattr, len}


def _torchvision_function(module: str, name: str):
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):  # pragma: no cover - torchvision is a dependency
        return None


def _stochastic_depth_funcs() -> set:
    fn = _torchvision_function("torchvision.ops", "stochastic_depth")
    return {fn} if fn is not None else set()


PASS_FUNCTIONS |= _stochastic_depth_funcs()
IDENTITY_FUNCTIONS |= _stochastic_depth_funcs()
SWIN_ATTENTION = _torchvision_function("torchvision.models.swin_transformer", "shifted_window_attention")
SWIN_PATCH_MERGING = _torchvision_function("torchvision.models.swin_transformer", "_patch_merging_pad")

