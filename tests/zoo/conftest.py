"""Shared fixtures for the model-source tests: ONNX fixtures shipped in the onnx wheel."""

from __future__ import annotations

import math
from importlib import resources
from pathlib import Path

import numpy as np
import pytest


def light_model_dir() -> Path:
    """The onnx wheel's ``backend/test/data/light`` directory (BVLC graphs with constant weights)."""
    return Path(str(resources.files("onnx") / "backend" / "test" / "data" / "light"))


@pytest.fixture(scope="session")
def light_dir() -> Path:
    d = light_model_dir()
    if not (d / "light_bvlc_alexnet.onnx").is_file():
        pytest.skip("this onnx wheel does not ship backend/test/data/light")
    return d


def randomize_light_model(src: Path, dst: Path, logits: str | None = None, seed: int = 0) -> Path:
    """Replace the ``ConstantOfShape`` weights of a light model by He-scaled random initializers.

    The light fixtures fill every weight with 0.02, so all logits are equal; random
    weights make an output comparison meaningful. ``logits`` adds that value as an
    extra graph output (before the softmax).
    """
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(src))
    g = model.graph
    shapes = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    rng = np.random.default_rng(seed)
    keep = []
    for node in g.node:
        if node.op_type != "ConstantOfShape":
            keep.append(node)
            continue
        shape = tuple(int(v) for v in shapes[node.input[0]])
        if len(shape) == 1:
            arr = 0.1 * rng.standard_normal(shape)
        else:
            fan_in = int(np.prod(shape[1:])) if shape[:2] != (1, 1) else shape[-1]
            arr = rng.standard_normal(shape) * math.sqrt(2.0 / fan_in)
        g.initializer.append(numpy_helper.from_array(arr.astype(np.float32), node.output[0]))
    del g.node[:]
    g.node.extend(keep)
    if logits:
        g.output.append(helper.make_tensor_value_info(logits, onnx.TensorProto.FLOAT, None))
    onnx.save(model, str(dst))
    return dst


def spec_lrn_op():
    """An LRN for onnx's ReferenceEvaluator that follows the ONNX spec.

    onnx 1.23's reference LRN loops over the batch axis instead of channels
    (``for c in range(x.shape[0])``), so it normalises only channel 0 correctly;
    this replacement sums squares over the channel window as the spec says.
    """
    from onnx.reference.op_run import OpRun

    class LRN(OpRun):
        op_domain = ""

        def _run(self, x, alpha=None, beta=None, bias=None, size=None):
            sq = x.astype(np.float64) ** 2
            before, after = (size - 1) // 2, math.ceil((size - 1) / 2)
            c = x.shape[1]
            s = np.zeros_like(sq)
            for k in range(c):
                s[:, k] = sq[:, max(0, k - before):min(c, k + after + 1)].sum(1)
            return ((x / (bias + alpha / size * s) ** beta).astype(x.dtype),)

    return LRN


def reference_run(path: Path, x: np.ndarray) -> list[np.ndarray]:
    """Run an ONNX file with onnx's ReferenceEvaluator (spec-true LRN) on input ``x``."""
    import onnx
    from onnx.reference import ReferenceEvaluator

    model = onnx.load(str(path))
    inits = {i.name for i in model.graph.initializer}
    data = next(i.name for i in model.graph.input if i.name not in inits)
    return ReferenceEvaluator(model, new_ops=[spec_lrn_op()]).run(None, {data: x})


@pytest.fixture(scope="session")
def onnx_reference():
    """:func:`reference_run`, as a fixture."""
    return reference_run


@pytest.fixture(scope="session")
def randomize_light():
    """:func:`randomize_light_model`, as a fixture."""
    return randomize_light_model


@pytest.fixture(scope="session")
def random_alexnet(light_dir, tmp_path_factory):
    """The BVLC AlexNet light fixture with random weights and its logits (``r24``) as an output: 240 MB, made once."""
    return randomize_light_model(light_dir / "light_bvlc_alexnet.onnx",
                                 tmp_path_factory.mktemp("onnx") / "alexnet_random.onnx", logits="r24")
