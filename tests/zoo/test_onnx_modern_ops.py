"""ONNX import of modern exports: each op on a small hand-built graph, checked against onnx's reference.

Every test builds a graph with onnx.helper, imports it, and compares the module's outputs (the
graph outputs, or the feature maps kept where the channel graph ends) with
``onnx.reference.ReferenceEvaluator`` on a random input (max abs difference).
"""

from __future__ import annotations

import operator

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from modularity.core.graph import trace
from modularity.errors import ModularityError
from modularity.zoo.onnx_import import import_notes, load_onnx, onnx_to_graph_module
from tests.zoo.onnx_reference import max_abs_diffs

RNG = np.random.default_rng(13)


def _w(name, *shape, scale=0.5):
    return numpy_helper.from_array((scale * RNG.standard_normal(shape)).astype(np.float32), name)


def _c(name, value, dtype=np.float32):
    return numpy_helper.from_array(np.asarray(value, dtype), name)


def _model(nodes, inits, opset=13, in_shape=(1, 4, 8, 8), outputs=("y",)):
    graph = helper.make_graph(nodes, "t", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(in_shape))],
                              [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _import(model, in_shape=None, atol=1e-5):
    """Import ``model`` and check every output against the reference; returns the GraphModule."""
    shape = in_shape or [d.dim_value or 8 for d in model.graph.input[0].type.tensor_type.shape.dim]
    gm, _ = onnx_to_graph_module(model)
    x = RNG.standard_normal(shape).astype(np.float32)
    diffs = max_abs_diffs(gm, model, x)
    for name, (diff, scale) in diffs.items():
        assert diff <= atol * max(1.0, scale), (name, diff, scale)
    return gm


def _conv(inp="x", out="c", cin=4, cout=4, k=1, name=None):
    w = _w(f"{out}_w", cout, cin, k, k)
    node = helper.make_node("Conv", [inp, w.name], [out], pads=[k // 2] * 4, name=name or f"{out}_conv")
    return node, w


def _kinds(gm):
    return [type(m).__name__ for m in gm.children()]


# -- elementwise arithmetic with broadcasting ---------------------------------------------------------------------

@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "Div"])
@pytest.mark.parametrize("const_shape, const_first", [((), False), ((4, 1, 1), False), ((1, 4, 1, 1), True),
                                                     ((1, 1, 8), False)])
def test_elementwise_with_a_broadcast_constant_matches_reference(op, const_shape, const_first):
    conv, w = _conv()
    value = RNG.random(const_shape).astype(np.float32) + 0.5  # away from 0 for Div
    ins = ["k", "c"] if const_first else ["c", "k"]
    gm = _import(_model([conv, helper.make_node(op, ins, ["y"])], [w, _c("k", value)]))
    fn = {"Add": operator.add, "Sub": operator.sub, "Mul": operator.mul, "Div": operator.truediv}[op]
    nodes = [n for n in gm.graph.nodes if n.target is fn]
    assert len(nodes) == 1
    if const_shape == ():  # a scalar stays a Python number, not a buffer
        assert any(isinstance(a, float) for a in nodes[0].args)
    g = trace(gm, (8, 8), in_channels=4)
    assert g.layers["c"].n_units == 4


def test_elementwise_of_two_feature_maps_matches_reference():
    c1, w1 = _conv(out="a")
    c2, w2 = _conv(out="b")
    nodes = [c1, c2, helper.make_node("Sub", ["a", "b"], ["d"]), helper.make_node("Div", ["d", "b"], ["y"])]
    _import(_model(nodes, [w1, w2]), atol=1e-4)


@pytest.mark.parametrize("p, fn", [(2.0, torch.square), (0.5, torch.sqrt)])
def test_pow_by_a_constant_matches_reference(p, fn):
    conv, w = _conv()
    nodes = [conv, helper.make_node("Relu", ["c"], ["r"]), helper.make_node("Pow", ["r", "p"], ["y"])]
    gm = _import(_model(nodes, [w, _c("p", p)]))
    assert any(n.target is fn for n in gm.graph.nodes)


def test_pow_with_another_exponent_ends_the_graph_there():
    conv, w = _conv()
    nodes = [conv, helper.make_node("Pow", ["c", "p"], ["y"], name="cube")]
    gm = _import(_model(nodes, [w, _c("p", 3.0)]))
    (end,) = gm.meta["onnx_import"]["ends"]
    assert end["onnx_node"] == "cube" and "exponent 3" in end["reason"]
    assert gm.meta["onnx_import"]["outputs"] == ["c"]


@pytest.mark.parametrize("op, fn", [("Sqrt", torch.sqrt), ("Exp", torch.exp), ("Abs", torch.abs),
                                    ("Neg", operator.neg)])
def test_unary_math_matches_reference(op, fn):
    conv, w = _conv()
    nodes = [conv, helper.make_node("Sigmoid", ["c"], ["s"]), helper.make_node(op, ["s"], ["y"])]
    gm = _import(_model(nodes, [w]))
    assert any(n.target is fn for n in gm.graph.nodes)


# -- activations and gates ---------------------------------------------------------------------------------------

def test_silu_spelled_as_x_times_sigmoid_becomes_one_silu_module():
    conv, w = _conv()
    nodes = [conv, helper.make_node("Sigmoid", ["c"], ["s"]), helper.make_node("Mul", ["c", "s"], ["y"])]
    gm = _import(_model(nodes, [w]))
    assert _kinds(gm) == ["Conv2d", "SiLU"]
    assert not any(n.target is operator.mul for n in gm.graph.nodes)


@pytest.mark.parametrize("alpha, kinds", [(1 / 6, ["Conv2d", "Hardsigmoid"]), (0.2, ["Conv2d", "Hardtanh"])])
def test_hard_sigmoid_matches_reference(alpha, kinds):
    conv, w = _conv()
    nodes = [conv, helper.make_node("HardSigmoid", ["c"], ["y"], alpha=alpha, beta=0.5)]
    gm = _import(_model(nodes, [w]))
    assert _kinds(gm) == kinds


def test_hard_swish_spellings_become_hardswish_modules():
    c1, w1 = _conv(out="a")
    c2, w2 = _conv(inp="h1", out="b")
    c3, w3 = _conv(inp="h2", out="c")
    nodes = [c1, helper.make_node("HardSigmoid", ["a"], ["hs"], alpha=1 / 6, beta=0.5),
             helper.make_node("Mul", ["a", "hs"], ["h1"]),
             c2,  # Paddle: x * clip(x + 3, 0, 6) / 6
             helper.make_node("Add", ["b", "three"], ["b3"]), helper.make_node("Clip", ["b3", "zero", "six"], ["bc"]),
             helper.make_node("Mul", ["b", "bc"], ["bm"]), helper.make_node("Div", ["bm", "six"], ["h2"]),
             c3, helper.make_node("HardSwish", ["c"], ["y"])]
    inits = [w1, w2, w3, _c("three", 3.0), _c("zero", 0.0), _c("six", 6.0)]
    gm = _import(_model(nodes, inits, opset=14))  # HardSwish is opset 14
    assert _kinds(gm) == ["Conv2d", "Hardswish"] * 3


@pytest.mark.parametrize("op, attrs, kind", [("Softplus", {}, "Softplus"), ("Elu", {"alpha": 0.7}, "ELU"),
                                             ("Mish", {}, "Mish")])
def test_other_activations_match_reference(op, attrs, kind):
    conv, w = _conv()
    gm = _import(_model([conv, helper.make_node(op, ["c"], ["y"], **attrs)], [w], opset=18))
    assert _kinds(gm) == ["Conv2d", kind]


def test_prelu_with_a_slope_per_channel_matches_reference():
    conv, w = _conv()
    gm = _import(_model([conv, helper.make_node("PRelu", ["c", "slope"], ["y"])],
                        [w, _c("slope", RNG.random((4, 1, 1)))]))
    assert _kinds(gm) == ["Conv2d", "PReLU"]


def _se_model(opset=14):
    """conv -> hard-swish -> SE (GAP, conv, ReLU, conv, HardSigmoid) -> x * gate -> conv."""
    c1, w1 = _conv(cout=8, k=3, out="a")
    s1, ws1 = _conv(inp="g", cin=8, cout=2, out="se1")
    s2, ws2 = _conv(inp="r", cin=2, cout=8, out="se2")
    c2, w2 = _conv(inp="m", cin=8, cout=4, out="y")
    nodes = [c1, helper.make_node("HardSwish", ["a"], ["h"]), helper.make_node("GlobalAveragePool", ["h"], ["g"]),
             s1, helper.make_node("Relu", ["se1"], ["r"]), s2,
             helper.make_node("HardSigmoid", ["se2"], ["gate"], alpha=0.2, beta=0.5),
             helper.make_node("Mul", ["h", "gate"], ["m"]), c2]
    return _model(nodes, [w1, ws1, ws2, w2], opset=opset)


def test_squeeze_excitation_gate_keeps_the_main_path_and_its_convs_are_layers():
    gm = _import(_se_model())
    g = trace(gm, (8, 8), in_channels=4)
    assert g.consumers("a") == ["se1", "y"]  # the gate reads the block, the next conv reads the gated map
    assert g.consumers("se1") == ["se2"]
    assert g.layers["se2"].n_units == 8 and g.layers["y"].in_units == 8


# -- split, slice, shapes ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("opset", [11, 13, 18])
def test_split_along_channels_matches_reference_and_traces(opset):
    conv, w = _conv(cout=6, out="a")
    c2, w2 = _conv(inp="p1", cin=4, cout=3, out="b")
    inits = [w, w2]
    if opset >= 18 or opset >= 13:
        split = helper.make_node("Split", ["a", "sizes"], ["p0", "p1"], axis=1)
        inits.append(_c("sizes", [2, 4], np.int64))
    else:
        split = helper.make_node("Split", ["a"], ["p0", "p1"], axis=1, split=[2, 4])
    nodes = [conv, split, c2, helper.make_node("Concat", ["p0", "b"], ["y"], axis=1)]
    gm = _import(_model(nodes, inits, opset=opset))
    assert any(n.target is torch.split for n in gm.graph.nodes)
    g = trace(gm, (8, 8), in_channels=4)
    (cat,) = [n for n, layer in g.layers.items() if layer.kind == "concat"]
    assert g.layers[cat].n_units == 5


def test_split_into_equal_parts_by_num_outputs_opset18():
    conv, w = _conv(cout=6)
    nodes = [conv, helper.make_node("Split", ["c"], ["y", "z"], axis=1, num_outputs=2)]
    _import(_model(nodes, [w], opset=18, outputs=("y", "z")))


def test_split_along_positions_becomes_indexing():
    conv, w = _conv()
    nodes = [conv, helper.make_node("Split", ["c", "sizes"], ["t", "b"], axis=2),
             helper.make_node("Add", ["t", "b"], ["y"])]
    gm = _import(_model(nodes, [w, _c("sizes", [4, 4], np.int64)]))
    assert sum(n.target is operator.getitem for n in gm.graph.nodes) == 2


@pytest.mark.parametrize("opset", [9, 13])
def test_focus_slices_of_the_input_match_reference(opset):
    """YOLOv5/YOLOX 'Focus': four strided slices of the image, concatenated, then a conv."""
    nodes, inits, parts = [], [], []
    for k, (r, c) in enumerate([(0, 0), (1, 0), (0, 1), (1, 1)]):
        if opset >= 10:
            inits += [_c(f"s{k}", [r, c], np.int64), _c(f"e{k}", [1 << 62, 1 << 62], np.int64)]
            nodes.append(helper.make_node("Slice", ["x", f"s{k}", f"e{k}", "axes", "steps"], [f"p{k}"]))
        else:  # opset 9 has no steps: four shifted 6 x 6 crops instead
            nodes.append(helper.make_node("Slice", ["x"], [f"p{k}"], starts=[r, c], ends=[r + 6, c + 6],
                                          axes=[2, 3]))
        parts.append(f"p{k}")
    if opset >= 10:
        inits += [_c("axes", [2, 3], np.int64), _c("steps", [2, 2], np.int64)]
    conv, w = _conv(inp="cat", cin=16, cout=4)
    nodes += [helper.make_node("Concat", parts, ["cat"], axis=1), conv,
              helper.make_node("Relu", ["c"], ["y"])]
    gm = _import(_model(nodes, inits + [w], opset=opset, in_shape=(1, 4, 8, 8)))
    g = trace(gm, (8, 8), in_channels=4)  # the concatenated slices of the image are no layer
    assert g.layers["c"].in_units == 16 and g.producers("c") == ["input"]


def test_slice_of_channels_matches_reference():
    conv, w = _conv(cout=8)
    nodes = [conv, helper.make_node("Slice", ["c", "st", "en", "ax"], ["y"])]
    gm = _import(_model(nodes, [w, _c("st", [2], np.int64), _c("en", [-1], np.int64), _c("ax", [1], np.int64)]))
    assert gm(torch.zeros(1, 4, 8, 8)).shape == (1, 5, 8, 8)


def test_a_reversing_slice_ends_the_graph():
    conv, w = _conv()
    nodes = [conv, helper.make_node("Slice", ["c", "st", "en", "ax", "sp"], ["y"], name="flip")]
    inits = [w, _c("st", [-1], np.int64), _c("en", [-(1 << 62)], np.int64), _c("ax", [3], np.int64),
             _c("sp", [-1], np.int64)]
    gm = _import(_model(nodes, inits))
    assert gm.meta["onnx_import"]["ends"][0]["reason"].startswith("a slice with step -1")


@pytest.mark.parametrize("opset", [9, 13])
def test_flatten_through_a_shape_subgraph_is_folded(opset):
    """torch's classic export of x.view(x.size(0), -1): Shape -> Gather -> Unsqueeze -> Concat -> Reshape."""
    conv, w = _conv()
    unsq = (helper.make_node("Unsqueeze", ["n", "zero_axis"], ["n1"]) if opset >= 13
            else helper.make_node("Unsqueeze", ["n"], ["n1"], axes=[0]))
    nodes = [conv, helper.make_node("GlobalAveragePool", ["c"], ["g"]), helper.make_node("Shape", ["g"], ["s"]),
             helper.make_node("Gather", ["s", "idx0"], ["n"], axis=0), unsq,
             helper.make_node("Concat", ["n1", "minus1"], ["shape"], axis=0),
             helper.make_node("Reshape", ["g", "shape"], ["f"]), helper.make_node("Gemm", ["f", "fc_w"], ["y"],
                                                                                  transB=1)]
    inits = [w, _c("idx0", 0, np.int64), _c("minus1", [-1], np.int64), _w("fc_w", 3, 4)]
    if opset >= 13:
        inits.append(_c("zero_axis", [0], np.int64))
    gm = _import(_model(nodes, inits, opset=opset))
    assert _kinds(gm) == ["Conv2d", "AdaptiveAvgPool2d", "Linear"]
    assert not gm.meta["onnx_import"]["ends"]


def test_unsqueeze_and_expand_keep_channels():
    conv, w = _conv()
    nodes = [conv, helper.make_node("GlobalAveragePool", ["c"], ["g"]),
             helper.make_node("Flatten", ["g"], ["f"]), helper.make_node("Unsqueeze", ["f", "ax"], ["u"]),
             helper.make_node("Expand", ["u", "shape"], ["e"]), helper.make_node("Mul", ["c", "e"], ["y"])]
    gm = _import(_model(nodes, [w, _c("ax", [2, 3], np.int64), _c("shape", [1, 4, 1, 1], np.int64)]))
    assert sum(n.target is torch.unsqueeze for n in gm.graph.nodes) == 2
    trace(gm, (8, 8), in_channels=4)


# -- resizing, padding, reductions -------------------------------------------------------------------------------

@pytest.mark.parametrize("mode, ctm, nearest", [("nearest", "asymmetric", "floor"),
                                                ("nearest", "half_pixel", "round_prefer_floor"),
                                                ("linear", "half_pixel", "round_prefer_floor"),
                                                ("linear", "align_corners", "round_prefer_floor"),
                                                ("cubic", "half_pixel", "round_prefer_floor")])
def test_resize_by_scales_matches_reference(mode, ctm, nearest):
    conv, w = _conv()
    nodes = [conv, helper.make_node("Resize", ["c", "", "scales"], ["y"], mode=mode,
                                    coordinate_transformation_mode=ctm, nearest_mode=nearest)]
    gm = _import(_model(nodes, [w, _c("scales", [1, 1, 2, 2])]), atol=1e-4)
    assert _kinds(gm) == ["Conv2d", "Upsample"]


def test_resize_to_the_size_of_another_map_folds_its_shape_subgraph():
    """FPN: upsample the coarse map to the fine map's size, taken from Shape -> Slice -> Concat."""
    c1, w1 = _conv(k=3, out="fine")
    c2, w2 = _conv(inp="pooled", out="coarse")
    nodes = [c1, helper.make_node("MaxPool", ["fine"], ["pooled"], kernel_shape=[2, 2], strides=[2, 2]), c2,
             helper.make_node("Shape", ["fine"], ["s"]),
             helper.make_node("Slice", ["s", "two", "four"], ["hw"]),
             helper.make_node("Concat", ["nc", "hw"], ["sizes"], axis=0),
             helper.make_node("Resize", ["coarse", "", "", "sizes"], ["up"], mode="nearest",
                              coordinate_transformation_mode="asymmetric", nearest_mode="floor"),
             helper.make_node("Add", ["fine", "up"], ["y"])]
    inits = [w1, w2, _c("two", [2], np.int64), _c("four", [4], np.int64), _c("nc", [1, 4], np.int64)]
    gm = _import(_model(nodes, inits))
    (up,) = [m for m in gm.modules() if isinstance(m, nn.Upsample)]
    assert up.scale_factor == (2.0, 2.0)  # a whole factor, so other input sizes work too
    g = trace(gm, (16, 16), in_channels=4)
    assert g.consumers("fine") == ["coarse"]


def test_upsample_opset9_matches_reference():
    conv, w = _conv()
    nodes = [conv, helper.make_node("Upsample", ["c", "scales"], ["y"], mode="nearest")]
    gm, _ = onnx_to_graph_module(_model(nodes, [w, _c("scales", [1, 1, 2, 3])], opset=9))
    x = RNG.standard_normal((1, 4, 8, 8)).astype(np.float32)
    with torch.no_grad():
        out = gm(torch.from_numpy(x)).numpy()
    ref = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(numpy_helper.to_array(w).copy()))
    np.testing.assert_allclose(out, np.repeat(np.repeat(ref.numpy(), 2, axis=2), 3, axis=3), atol=1e-5)


def test_resize_with_an_unsupported_coordinate_mode_is_one_line():
    conv, w = _conv()
    nodes = [conv, helper.make_node("Resize", ["c", "", "scales"], ["y"], name="up", mode="linear",
                                    coordinate_transformation_mode="asymmetric")]
    with pytest.raises(ModularityError, match=r"ONNX op 'Resize' at node 'up' is not supported with linear mode "
                                              r"with coordinate mode 'asymmetric'"):
        onnx_to_graph_module(_model(nodes, [w, _c("scales", [1, 1, 2, 2])]))


@pytest.mark.parametrize("opset, mode", [(13, "reflect"), (18, "constant"), (13, "edge")])
def test_pad_matches_reference(opset, mode):
    conv, w = _conv()
    inputs, inits = ["c", "pads"], [w, _c("pads", [0, 0, 1, 2, 0, 0, 2, 1], np.int64)]
    if opset >= 18:
        inputs, inits = ["c", "pads", "", "axes"], [w, _c("pads", [1, 2, 2, 1], np.int64),
                                                    _c("axes", [2, 3], np.int64)]
    _import(_model([conv, helper.make_node("Pad", inputs, ["y"], mode=mode)], inits, opset=opset))


@pytest.mark.parametrize("opset, keep", [(13, 1), (13, 0), (18, 1)])
def test_reduce_mean_over_positions_matches_reference(opset, keep):
    conv, w = _conv()
    if opset >= 18:
        node = helper.make_node("ReduceMean", ["c", "axes"], ["y"], keepdims=keep)
        inits = [w, _c("axes", [-2, -1], np.int64)]
    else:
        node, inits = helper.make_node("ReduceMean", ["c"], ["y"], axes=[2, 3], keepdims=keep), [w]
    gm = _import(_model([conv, node], inits, opset=opset))
    g = trace(gm, (8, 8), in_channels=4)
    assert g.layers["c"].n_units == 4


def test_reduce_mean_over_channels_ends_the_graph():
    conv, w = _conv()
    node = helper.make_node("ReduceMean", ["c"], ["y"], axes=[1], name="spatial_attention")
    gm = _import(_model([conv, node], [w]))
    assert gm.meta["onnx_import"]["ends"][0]["onnx_node"] == "spatial_attention"


# -- where channels stop being channels: the graph ends, cleanly -------------------------------------------------

def _head_model():
    """Backbone conv -> two head convs; one head is reshaped to N x C x HW and transposed (a detection head),
    followed by ops the importer would refuse (Erf, a 3-D MatMul) that must not matter."""
    c1, w1 = _conv(k=3, out="feat")
    box, wb = _conv(inp="feat", cout=6, out="box")
    cls, wc = _conv(inp="feat", cout=3, out="cls")
    nodes = [c1, box, cls, helper.make_node("Concat", ["box", "cls"], ["head"], axis=1, name="head_cat"),
             helper.make_node("Reshape", ["head", "shape3"], ["flat"], name="to_anchors"),
             helper.make_node("Transpose", ["flat"], ["t"], perm=[0, 2, 1]),
             helper.make_node("Erf", ["t"], ["e"]), helper.make_node("MatMul", ["e", "proj"], ["y"])]
    inits = [w1, wb, wc, _c("shape3", [1, 9, -1], np.int64), _w("proj", 9, 2)]
    return _model(nodes, inits)


def test_a_detection_head_ends_the_graph_at_its_reshape_and_is_recorded(tmp_path):
    model = _head_model()
    gm = _import(model)
    record = gm.meta["onnx_import"]
    assert record["outputs"] == ["head"]
    (end,) = record["ends"]
    assert end["onnx_node"] == "to_anchors" and end["op"] == "Reshape" and end["kept"] == ["head"]
    assert "a reshape from [1, 9, 8, 8] to [1, 9, 64]" in end["reason"]
    assert record["weighted_nodes_beyond_ends"] == 1 and record["weighted_nodes_beyond_ends_ops"] == {"MatMul": 1}
    g = trace(gm, (8, 8), in_channels=4)
    assert g.consumers("feat") == ["box", "cls"]
    path = tmp_path / "det.onnx"
    onnx.save(model, str(path))
    loaded = load_onnx(path)
    assert loaded.provenance.startswith(f"ONNX file {path}; channel graph ends at 1 ONNX node (first 'to_anchors' "
                                        "(Reshape): a reshape from [1, 9, 8, 8] to [1, 9, 64]")
    assert "\n" not in loaded.provenance and import_notes(loaded.module) in loaded.provenance


@pytest.mark.parametrize("node, reason", [
    (helper.make_node("Transpose", ["c"], ["y"], perm=[0, 2, 3, 1]), "moves the channel axis"),
    (helper.make_node("Transpose", ["c"], ["y"], perm=[0, 1, 3, 2]), "transpose [0, 1, 3, 2] of positions"),
    (helper.make_node("ConvTranspose", ["c", "ct_w"], ["y"], strides=[2, 2]), "a transposed convolution"),
    (helper.make_node("Flatten", ["c"], ["y"], axis=2), "flattening from axis 2"),
    (helper.make_node("Concat", ["c", "c"], ["y"], axis=2), "a concatenation along axis 2"),
    (helper.make_node("Squeeze", ["c", "ax0"], ["y"]), "squeezing axes [0]"),
])
def test_channel_moving_ops_end_the_graph_with_a_reason(node, reason):
    conv, w = _conv()
    gm = _import(_model([conv, node], [w, _w("ct_w", 4, 4, 2, 2), _c("ax0", [0], np.int64)]))
    (end,) = gm.meta["onnx_import"]["ends"]
    assert reason in end["reason"] and end["op"] == node.op_type
    assert _kinds(gm) == ["Conv2d"]


def test_an_unknown_op_before_any_end_is_still_refused_naming_it():
    conv, w = _conv()
    nodes = [conv, helper.make_node("Erf", ["c"], ["e"], name="gelu_erf"), helper.make_node("Relu", ["e"], ["y"])]
    with pytest.raises(ModularityError, match=r"^ONNX op 'Erf' at node 'gelu_erf' is not supported; supported ops"):
        onnx_to_graph_module(_model(nodes, [w]))


def test_a_graph_that_ends_before_any_feature_map_is_one_line():
    nodes = [helper.make_node("Transpose", ["x"], ["t"], perm=[0, 2, 3, 1], name="nhwc"),
             helper.make_node("Relu", ["t"], ["y"])]
    with pytest.raises(ModularityError, match=r"the ONNX graph ends at node 'nhwc' \(Transpose: .*\) before any "
                                              r"feature map"):
        onnx_to_graph_module(_model(nodes, []))


def test_a_whole_classifier_records_no_end():
    gm = _import(_se_model())
    assert gm.meta["onnx_import"]["ends"] == [] and import_notes(gm) == ""
