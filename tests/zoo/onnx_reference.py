"""Compare an imported ONNX model with onnx's ReferenceEvaluator on the tensors the import returns."""

from __future__ import annotations

import numpy as np
import onnx
import torch
from onnx import helper

from tests.zoo.conftest import spec_lrn_op


def spec_batchnorm_op():
    """An inference-mode BatchNormalization for onnx's ReferenceEvaluator.

    onnx 1.23's reference runs an opset-9..13 BatchNormalization in training mode (batch
    statistics) whenever the node carries a ``momentum`` attribute, as Paddle's exports do;
    the spec says a node with one output is in inference mode.
    """
    from onnx.reference.op_run import OpRun

    class BatchNormalization(OpRun):
        op_domain = ""

        def _run(self, x, scale, bias, mean, var, epsilon=None, momentum=None, training_mode=None,
                 is_test=None, spatial=None):
            shape = (-1,) + (1,) * (x.ndim - 2)
            eps = 1e-5 if epsilon is None else epsilon
            y = (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + eps)
            return ((scale.reshape(shape) * y + bias.reshape(shape)).astype(x.dtype),)

    return BatchNormalization


def reference_outputs(model: onnx.ModelProto, x: np.ndarray, names: list[str]) -> list[np.ndarray]:
    """The tensors ``names`` of ``model`` on input ``x``, by onnx's reference evaluator (spec-true LRN and BN)."""
    from onnx.reference import ReferenceEvaluator

    model = onnx.ModelProto.FromString(model.SerializeToString())
    have = {o.name for o in model.graph.output}
    model.graph.output.extend(helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, None)
                              for n in names if n not in have)
    inits = {i.name for i in model.graph.initializer}
    data = next(i.name for i in model.graph.input if i.name not in inits)
    sess = ReferenceEvaluator(model, new_ops=[spec_lrn_op(), spec_batchnorm_op()])
    return sess.run(names, {data: x})


def max_abs_diffs(module: torch.nn.Module, model: onnx.ModelProto, x: np.ndarray) -> dict[str, tuple[float, float]]:
    """For each output of an imported ``module``: (max |imported - reference|, max |reference|)."""
    names = module.meta["onnx_import"]["outputs"]
    with torch.no_grad():
        out = module(torch.from_numpy(x))
    out = out if isinstance(out, tuple) else (out,)
    ref = reference_outputs(model, x, names)
    assert len(out) == len(ref) == len(names)
    return {n: (float(np.abs(a.numpy() - b).max()), float(np.abs(b).max())) for n, a, b in zip(names, out, ref)}
