"""Channels-last ONNX inputs (TensorFlow exports) made channels-first before import.

tf2onnx keeps a TensorFlow model's ``N x H x W x C`` input and inserts a
``Transpose`` with ``perm = [0, 3, 1, 2]`` in front of the first convolution.
Where that transpose is the input's only reader, the graph is the same function
of an ``N x C x H x W`` input with the transpose removed: this module makes that
copy, so the importer sees an image CNN. Anything else is left as it is.
"""

from __future__ import annotations

import copy

__all__ = ["channels_first"]

_TO_NCHW = [0, 3, 1, 2]


def channels_first(model):
    """A copy of ``model`` with a channels-last input read through one transpose made channels-first.

    Parameters
    ----------
    model : onnx.ModelProto

    Returns
    -------
    onnx.ModelProto or None
        The rewritten copy, or None where the graph's input is not
        ``N x H x W x C`` read only by a ``Transpose`` to ``N x C x H x W``.
    """
    g = model.graph
    consts = {i.name for i in g.initializer}
    inputs = [i for i in g.input if i.name not in consts]
    if len(inputs) != 1 or len(inputs[0].type.tensor_type.shape.dim) != 4:
        return None
    name = inputs[0].name
    readers = [n for n in g.node if name in n.input]
    if len(readers) != 1 or readers[0].op_type != "Transpose":
        return None
    perm = next((list(a.ints) for a in readers[0].attribute if a.name == "perm"), None)
    if perm != _TO_NCHW or readers[0].output[0] in {o.name for o in g.output}:
        return None
    out = copy.deepcopy(model)
    g = out.graph
    inp = next(i for i in g.input if i.name == name)
    dims = inp.type.tensor_type.shape.dim
    n, h, w, c = (copy.deepcopy(d) for d in dims)
    for dim, new in zip(dims, (n, c, h, w)):
        dim.CopyFrom(new)
    transpose = next(node for node in g.node if name in node.input)
    produced = transpose.output[0]
    g.node.remove(transpose)
    for node in g.node:  # its readers now read the (channels-first) input directly
        for i, x in enumerate(node.input):
            if x == produced:
                node.input[i] = name
    return out
