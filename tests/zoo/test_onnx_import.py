"""ONNX import: numerics against onnx's reference, module types, names and errors."""

from __future__ import annotations

import operator
import re

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import fx, nn

from modularity.errors import ModularityError
from modularity.zoo.onnx_import import load_onnx, onnx_to_graph_module
from modularity.zoo.registry import load_source


def _expected_output(light_dir, stem: str) -> np.ndarray:
    t = TensorProto()
    t.ParseFromString((light_dir / f"{stem}_output_0.pb").read_bytes())
    return numpy_helper.to_array(t)


@pytest.fixture(scope="module")
def random_inception(light_dir, tmp_path_factory, randomize_light):
    return randomize_light(light_dir / "light_inception_v1.onnx",
                                 tmp_path_factory.mktemp("onnx") / "inception_random.onnx", logits="r143")


@pytest.mark.parametrize("stem", ["light_bvlc_alexnet", "light_inception_v1"])
def test_light_fixture_matches_its_expected_output(light_dir, stem):
    # the fixtures ship no input: their constant weights make the output input-independent
    loaded = load_onnx(light_dir / f"{stem}.onnx")
    x = torch.from_numpy(np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32))
    with torch.no_grad():
        out = loaded.module(x).numpy()
    np.testing.assert_allclose(out, _expected_output(light_dir, stem), rtol=1e-5, atol=1e-7)


def _compare_with_reference(path, reference_run):
    x = np.random.default_rng(1).standard_normal((1, 3, 224, 224)).astype(np.float32)
    ref = reference_run(path, x)
    with torch.no_grad():
        out = load_onnx(path).module(torch.from_numpy(x))
    return ref, [o.numpy() for o in out]


@pytest.mark.slow  # a 240 MB random AlexNet, imported and run by the ONNX reference
def test_random_weight_alexnet_matches_reference(random_alexnet, onnx_reference):
    (prob_ref, logit_ref), (prob, logit) = _compare_with_reference(random_alexnet, onnx_reference)
    assert np.abs(logit_ref).max() > 1.0  # the logits are not trivially small
    np.testing.assert_allclose(logit, logit_ref, atol=2e-4 * np.abs(logit_ref).max(), rtol=0)
    np.testing.assert_allclose(prob, prob_ref, atol=1e-5, rtol=0)


@pytest.mark.slow
def test_random_weight_inception_matches_reference(random_inception, onnx_reference):
    (prob_ref, logit_ref), (prob, logit) = _compare_with_reference(random_inception, onnx_reference)
    assert np.abs(logit_ref).max() > 1.0
    np.testing.assert_allclose(logit, logit_ref, atol=2e-4 * np.abs(logit_ref).max(), rtol=0)
    np.testing.assert_allclose(prob, prob_ref, atol=1e-5, rtol=0)


def test_alexnet_grouped_convs_keep_their_groups(light_dir):
    gm = load_onnx(light_dir / "light_bvlc_alexnet.onnx").module
    groups = {name: m.groups for name, m in gm.named_modules() if isinstance(m, nn.Conv2d)}
    assert groups == {"conv1": 1, "conv2": 2, "conv3": 1, "conv4": 2, "conv5": 2}


def test_modules_are_stock_torch_modules_with_readable_names(light_dir):
    gm = load_onnx(light_dir / "light_inception_v1.onnx").module
    children = dict(gm.named_children())
    assert isinstance(children["conv1_7x7_s2"], nn.Conv2d)
    assert isinstance(children["conv1_7x7_s2_lrn"], nn.LocalResponseNorm)
    assert isinstance(children["inception_3a_5x5"], nn.Conv2d)
    assert children["inception_3a_5x5"].kernel_size == (5, 5)
    assert isinstance(children["loss3_classifier"], nn.Linear)
    assert all(type(m).__module__.startswith("torch.nn") for m in children.values())


def test_concat_nodes_are_named_after_their_block(light_dir):
    gm = load_onnx(light_dir / "light_inception_v1.onnx").module
    cats = [n for n in gm.graph.nodes if n.op == "call_function" and n.target is torch.cat]
    assert [n.meta["onnx_name"] for n in cats] == [
        "inception_3a", "inception_3b", "inception_4a", "inception_4b", "inception_4c",
        "inception_4d", "inception_4e", "inception_5a", "inception_5b"]
    assert cats[0].name == "inception_3a" and cats[0].meta["onnx_node"] == "n23"


def test_input_size_and_provenance_come_from_the_file(light_dir):
    path = light_dir / "light_bvlc_alexnet.onnx"
    loaded = load_onnx(path)
    assert loaded.input_size == (224, 224)
    assert loaded.provenance == f"ONNX file {path}"
    import hashlib

    assert loaded.weights_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_registry_dispatches_onnx_paths(light_dir):
    loaded = load_source(str(light_dir / "light_bvlc_alexnet.onnx"))
    assert isinstance(loaded.module, fx.GraphModule)


def _synthetic_model() -> onnx.ModelProto:
    """Ops and attributes the light fixtures do not exercise."""
    rng = np.random.default_rng(3)

    def init(name, *shape, scale=0.3):
        return numpy_helper.from_array((scale * rng.standard_normal(shape)).astype(np.float32), name)

    inits = [
        init("c1_W", 8, 3, 3, 3), init("c1_B", 8),
        init("bn_s", 8), init("bn_b", 8), init("bn_m", 8),
        numpy_helper.from_array((0.5 + rng.random(8)).astype(np.float32), "bn_v"),
        init("c2_W", 8, 4, 3, 3),
        init("fc_W", 16, 10), init("fc_B", 10),
        init("g_W", 10, 6), init("g_C", 6),
        numpy_helper.from_array(np.array([1, -1], np.int64), "shape2d"),
        numpy_helper.from_array(np.array(-0.5, np.float32), "lo"),
        numpy_helper.from_array(np.array(0.5, np.float32), "hi"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "c1_W", "c1_B"], ["c1"], name="conv_a", pads=[0, 1, 2, 1], strides=[2, 2]),
        helper.make_node("BatchNormalization", ["c1", "bn_s", "bn_b", "bn_m", "bn_v"], ["bn"], epsilon=1e-3),
        helper.make_node("LeakyRelu", ["bn"], ["act"], alpha=0.1),
        helper.make_node("MaxPool", ["act"], ["mp"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 0, 0, 1]),
        helper.make_node("AveragePool", ["act"], ["ap"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 0, 0, 1]),
        helper.make_node("Conv", ["mp", "c2_W"], ["c2"], group=2, auto_pad="SAME_UPPER", dilations=[2, 2]),
        helper.make_node("Add", ["c2", "ap"], ["sum"]),
        helper.make_node("Concat", ["sum", "mp"], ["cat"], axis=1),
        helper.make_node("GlobalAveragePool", ["cat"], ["gap"]),
        helper.make_node("Reshape", ["gap", "shape2d"], ["flat"]),
        helper.make_node("MatMul", ["flat", "fc_W"], ["mm"]),
        helper.make_node("Add", ["mm", "fc_B"], ["fc"]),
        helper.make_node("Clip", ["fc", "lo", "hi"], ["clip"]),
        helper.make_node("Gemm", ["clip", "g_W", "g_C"], ["out"], alpha=0.7, beta=0.3),
    ]
    graph = helper.make_graph(nodes, "synthetic",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 31, 29])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 6])], inits)
    # opset 14: onnx's reference runs opset-9 BatchNormalization in training mode
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])


def test_pads_pools_batchnorm_and_linear_ops_match_reference(tmp_path, onnx_reference):
    model = _synthetic_model()
    path = tmp_path / "synthetic.onnx"
    onnx.save(model, str(path))
    x = np.random.default_rng(4).standard_normal((1, 3, 31, 29)).astype(np.float32)
    (ref,) = onnx_reference(path, x)
    loaded = load_onnx(path)
    with torch.no_grad():
        out = loaded.module(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(out, ref, atol=1e-5, rtol=1e-5)
    assert loaded.input_size == (31, 29)
    kinds = {type(m).__name__ for m in loaded.module.modules()}
    assert {"ZeroPad2d", "ConstantPad2d", "BatchNorm2d", "Linear", "Hardtanh"} <= kinds
    assert any(n.target is operator.add for n in loaded.module.graph.nodes)


def test_unsupported_op_names_the_op_and_node(tmp_path):
    nodes = [helper.make_node("Relu", ["x"], ["r"], name="relu_ok"),
             helper.make_node("Erf", ["r"], ["y"], name="my_erf")]
    graph = helper.make_graph(nodes, "bad", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 8, 8])])
    path = tmp_path / "erf.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    with pytest.raises(ModularityError, match=r"ONNX op 'Erf' at node 'my_erf' is not supported; supported ops: Conv"):
        load_onnx(path)


def test_truncated_file_gives_one_line_error(light_dir, tmp_path):
    data = (light_dir / "light_inception_v1.onnx").read_bytes()
    path = tmp_path / "truncated.onnx"
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(ModularityError) as info:
        load_onnx(path)
    assert "truncated or corrupt" in str(info.value) and "\n" not in str(info.value)


def test_garbage_file_gives_one_line_error(tmp_path):
    path = tmp_path / "garbage.onnx"
    path.write_bytes(b"\xff\xfe not a protobuf at all \x00\x01" * 10)
    with pytest.raises(ModularityError, match="not a readable ONNX model"):
        load_onnx(path)


def test_explicit_input_size_overrides_default(light_dir):
    model = onnx.load(str(light_dir / "light_bvlc_alexnet.onnx"))
    gm, size = onnx_to_graph_module(model, input_size=(227, 227))
    assert size == (227, 227)
    with torch.no_grad():
        assert gm(torch.zeros(1, 3, 227, 227)).shape == (1, 1000)


def _trace():
    graph = pytest.importorskip("modularity.core.graph")
    if not hasattr(graph, "trace"):
        pytest.skip("modularity.core.graph.trace is not available yet")
    return graph.trace


def test_alexnet_conv1_branches_come_from_conv2_groups(light_dir):
    trace = _trace()
    g = trace(load_onnx(light_dir / "light_bvlc_alexnet.onnx").module)
    assert g.layers["conv1"].branches.tolist() == [0] * 48 + [1] * 48


def test_inception_concat_branches_follow_its_inputs(light_dir):
    trace = _trace()
    g = trace(load_onnx(light_dir / "light_inception_v1.onnx").module)
    layer = g.layers["inception_3a"]
    assert layer.kind == "concat"
    assert layer.branches.tolist() == [0] * 64 + [1] * 128 + [2] * 32 + [3] * 32
    assert layer.branch_names == ["inception_3a_1x1", "inception_3a_3x3", "inception_3a_5x5",
                                  "inception_3a_pool_proj"]


def test_torch_export_of_resnet18_round_trips_with_module_path_names(tmp_path):
    import torchvision

    model = torchvision.models.resnet18(weights=None).eval()
    path = tmp_path / "resnet18.onnx"
    x = torch.randn(1, 3, 224, 224)
    try:
        torch.onnx.export(model, (x,), str(path), dynamo=False, opset_version=13)
    except Exception as exc:  # the TorchScript exporter may be unavailable in a future torch
        pytest.skip(f"torch.onnx.export failed: {type(exc).__name__}")
    gm = load_onnx(path).module
    with torch.no_grad():
        np.testing.assert_allclose(gm(x).numpy(), model(x).numpy(), atol=1e-4, rtol=1e-4)
    names = dict(gm.named_modules())
    assert {"conv1", "layer1.0.conv1", "layer2.0.downsample.0", "fc"} <= set(names)


@pytest.mark.slow
def test_torch_export_layer_names_are_the_source_models_module_names(tmp_path):
    """The exporter's module paths (``/features/features.3/Concat``, ``features.3.squeeze.weight``) are kept dotted."""
    import torchvision

    from modularity.core.graph import trace

    model = torchvision.models.squeezenet1_0(weights=None).eval()
    path = tmp_path / "squeezenet.onnx"
    try:
        torch.onnx.export(model, (torch.randn(1, 3, 64, 64),), str(path), dynamo=False, opset_version=13)
    except Exception as exc:  # the TorchScript exporter may be unavailable in a future torch
        pytest.skip(f"torch.onnx.export failed: {type(exc).__name__}")
    imported = trace(load_onnx(path).module, input_size=(64, 64))
    source = trace(model, input_size=(64, 64))
    layers = {n: layer.kind for n, layer in imported.layers.items() if layer.kind != "input"}
    assert layers == {n: layer.kind for n, layer in source.layers.items() if layer.kind != "input"}
    modules = dict(model.named_modules())
    assert "features.3.squeeze" in layers and layers["features.3"] == "concat"
    assert all(n in modules for n, kind in layers.items() if kind in ("conv", "linear"))


# -- issue 8: opset-aware folding, the other light CNNs, and one-line refusals ------------------------------------

@pytest.mark.parametrize("stem", ["light_squeezenet", "light_inception_v2",
                                  pytest.param("light_densenet121", marks=pytest.mark.slow)])
@pytest.mark.slow
def test_more_light_fixtures_match_their_expected_output(light_dir, stem):
    loaded = load_onnx(light_dir / f"{stem}.onnx")
    with torch.no_grad():
        out = loaded.module(torch.zeros(1, 3, 224, 224)).numpy()
    np.testing.assert_allclose(out, _expected_output(light_dir, stem), rtol=1e-5, atol=1e-7)


def test_shufflenet_channel_shuffle_is_refused_naming_the_construct(light_dir):
    with pytest.raises(ModularityError) as err:
        load_onnx(light_dir / "light_shufflenet.onnx")
    msg = str(err.value)
    assert msg.startswith("ONNX channel shuffle at nodes 'n7' (Reshape) -> 'n8' (Transpose) -> 'n9' (Reshape) "
                          "(4 groups of 28 channels) is not supported yet")
    assert "\n" not in msg


@pytest.mark.slow
def test_every_light_cnn_imports_or_is_refused_with_one_line(light_dir):
    outcome = {}
    for path in sorted(light_dir.glob("light_*.onnx")):
        try:
            load_onnx(path)
            outcome[path.stem] = "ok"
        except ModularityError as exc:
            assert "\n" not in str(exc)
            outcome[path.stem] = str(exc)
    assert [k for k, v in outcome.items() if v != "ok"] == ["light_shufflenet"]
    assert "channel shuffle" in outcome["light_shufflenet"]


def _model(nodes, inits, opset, in_shape=(1, 3, 8, 8), out="y", out_shape=None):
    graph = helper.make_graph(nodes, "t", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(in_shape))],
                              [helper.make_tensor_value_info(out, TensorProto.FLOAT, out_shape)], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _f32(name, arr):
    return numpy_helper.from_array(np.asarray(arr, np.float32), name)


@pytest.mark.parametrize("opset", [9, 13])
def test_unsqueeze_is_folded_at_the_models_opset(opset):
    from modularity.zoo.onnx_import import fold_constants

    inits = [_f32("v", np.arange(4))]
    if opset >= 13:  # axes became an input in opset 13
        inits.append(numpy_helper.from_array(np.array([1, 2], np.int64), "axes"))
        node = helper.make_node("Unsqueeze", ["v", "axes"], ["u"])
    else:
        node = helper.make_node("Unsqueeze", ["v"], ["u"], axes=[1, 2])
    consts, origin, folded = fold_constants(_model([node], inits, opset, out="u"))
    assert consts["u"].shape == (4, 1, 1) and origin["u"] == "v" and folded == {0}


def _bn_scale_model(opset=9, channels=4):
    rng = np.random.default_rng(5)
    inits = [_f32("c_w", rng.standard_normal((channels, 3, 3, 3))),
             _f32("bn_s", rng.random(channels) + 0.5), _f32("bn_b", rng.standard_normal(channels)),
             _f32("bn_m", rng.standard_normal(channels)), _f32("bn_v", rng.random(channels) + 0.5),
             _f32("sc_w", rng.standard_normal(channels)), _f32("sc_b", rng.standard_normal(channels))]
    nodes = [helper.make_node("Conv", ["x", "c_w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("BatchNormalization", ["c", "bn_s", "bn_b", "bn_m", "bn_v"], ["bn"], epsilon=1e-3),
             helper.make_node("Unsqueeze", ["sc_w"], ["sw"], axes=[1, 2]),
             helper.make_node("Mul", ["bn", "sw"], ["m"]),
             helper.make_node("Unsqueeze", ["sc_b"], ["sb"], axes=[1, 2]),
             helper.make_node("Add", ["m", "sb"], ["a"]),
             helper.make_node("Relu", ["a"], ["y"])]
    return _model(nodes, inits, opset), {i.name: numpy_helper.to_array(i) for i in inits}


def test_batchnorm_scale_layer_is_fused_into_one_batchnorm(tmp_path):
    model, w = _bn_scale_model()
    onnx.save(model, str(tmp_path / "bn.onnx"))
    gm = load_onnx(tmp_path / "bn.onnx").module
    x = torch.randn(2, 3, 8, 8)
    t = {k: torch.tensor(v) for k, v in w.items()}
    c = torch.nn.functional.conv2d(x, t["c_w"], padding=1)
    bn = torch.nn.functional.batch_norm(c, t["bn_m"], t["bn_v"], t["bn_s"], t["bn_b"], eps=1e-3)
    ref = torch.relu(bn * t["sc_w"][:, None, None] + t["sc_b"][:, None, None])
    with torch.no_grad():
        torch.testing.assert_close(gm(x), ref, atol=1e-5, rtol=1e-5)
    kinds = [type(m).__name__ for m in gm.children()]
    assert kinds.count("BatchNorm2d") == 1
    assert not any(n.target in (operator.mul, operator.add) for n in gm.graph.nodes)


def test_mul_by_a_per_channel_constant_becomes_a_mul_node(tmp_path):
    rng = np.random.default_rng(6)
    inits = [_f32("c_w", rng.standard_normal((4, 3, 1, 1))), _f32("s", rng.standard_normal((4, 1, 1)))]
    nodes = [helper.make_node("Conv", ["x", "c_w"], ["c"]), helper.make_node("Mul", ["c", "s"], ["y"])]
    onnx.save(_model(nodes, inits, 13), str(tmp_path / "mul.onnx"))
    gm = load_onnx(tmp_path / "mul.onnx").module
    x = torch.randn(1, 3, 8, 8)
    ref = torch.nn.functional.conv2d(x, torch.tensor(numpy_helper.to_array(inits[0]))) * torch.tensor(
        numpy_helper.to_array(inits[1]))
    with torch.no_grad():
        torch.testing.assert_close(gm(x), ref)
    assert any(n.target is operator.mul for n in gm.graph.nodes)


def test_opset9_softmax_over_channels_of_a_1x1_map_imports(tmp_path):
    inits = [_f32("c_w", np.ones((5, 3, 1, 1)))]
    nodes = [helper.make_node("Conv", ["x", "c_w"], ["c"]), helper.make_node("GlobalAveragePool", ["c"], ["g"]),
             helper.make_node("Softmax", ["g"], ["y"], axis=1)]
    onnx.save(_model(nodes, inits, 9), str(tmp_path / "sm.onnx"))
    gm = load_onnx(tmp_path / "sm.onnx").module
    assert [m.dim for m in gm.modules() if isinstance(m, nn.Softmax)] == [1]
    with torch.no_grad():
        torch.testing.assert_close(gm(torch.randn(1, 3, 8, 8)).sum(), torch.tensor(1.0))


def test_opset9_softmax_over_channels_of_a_spatial_map_is_refused(tmp_path):
    inits = [_f32("c_w", np.ones((5, 3, 1, 1)))]
    nodes = [helper.make_node("Conv", ["x", "c_w"], ["c"]),
             helper.make_node("Softmax", ["c"], ["y"], axis=1, name="sm")]
    onnx.save(_model(nodes, inits, 9), str(tmp_path / "sm.onnx"))
    with pytest.raises(ModularityError, match=r"ONNX op 'Softmax' at node 'sm' is not supported with axis 1 on a "
                                              r"4-D input \[1, 5, 8, 8\] \(opset < 13 flattens\)"):
        load_onnx(tmp_path / "sm.onnx")


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_initializer_is_named(tmp_path, bad):
    w = np.ones((4, 3, 3, 3), np.float32)
    w[0, 0, 0, :2] = bad
    nodes = [helper.make_node("Conv", ["x", "conv1_w"], ["y"])]
    onnx.save(_model(nodes, [_f32("conv1_w", w)], 13), str(tmp_path / "nan.onnx"))
    with pytest.raises(ModularityError) as err:
        load_onnx(tmp_path / "nan.onnx")
    assert str(err.value) == "ONNX initializer 'conv1_w' has 2 NaN/Inf values (of 108); only finite weights can " \
                             "be analysed"


def test_non_finite_constant_node_weight_is_named(tmp_path):
    value = numpy_helper.from_array(np.full((4, 3, 1, 1), np.nan, np.float32), "v")
    nodes = [helper.make_node("Constant", [], ["conv_w"], value=value),
             helper.make_node("Conv", ["x", "conv_w"], ["y"])]
    onnx.save(_model(nodes, [], 13), str(tmp_path / "nan.onnx"))
    with pytest.raises(ModularityError, match=r"ONNX initializer 'conv_w' has 12 NaN/Inf values"):
        load_onnx(tmp_path / "nan.onnx")


def test_an_infinite_clip_bound_is_not_a_bad_weight(tmp_path):
    inits = [_f32("c_w", np.ones((4, 3, 1, 1))), _f32("lo", 0.0), _f32("hi", np.inf)]
    nodes = [helper.make_node("Conv", ["x", "c_w"], ["c"]), helper.make_node("Clip", ["c", "lo", "hi"], ["y"])]
    onnx.save(_model(nodes, inits, 13), str(tmp_path / "clip.onnx"))
    assert any(isinstance(m, nn.ReLU) for m in load_onnx(tmp_path / "clip.onnx").module.modules())


def test_a_graph_without_weighted_layers_is_refused(tmp_path):
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("MaxPool", ["r"], ["y"], kernel_shape=[2, 2])]
    onnx.save(_model(nodes, [], 13), str(tmp_path / "empty.onnx"))
    with pytest.raises(ModularityError, match=r"has no layer to analyse: no Conv, Gemm or MatMul node with constant "
                                              r"weights \(its ops: MaxPool, Relu\)"):
        load_onnx(tmp_path / "empty.onnx")


def test_a_huge_constant_of_shape_is_refused_before_allocating(tmp_path):
    shape = numpy_helper.from_array(np.array([1 << 16, 1 << 16, 3, 3], np.int64), "shape")
    nodes = [helper.make_node("ConstantOfShape", ["shape"], ["w"], name="bomb"),
             helper.make_node("Conv", ["x", "w"], ["y"])]
    onnx.save(_model(nodes, [shape], 13), str(tmp_path / "bomb.onnx"))
    with pytest.raises(ModularityError, match=r"ONNX node 'bomb' \(ConstantOfShape\) would make a constant of shape "
                                              r"\[65536, 65536, 3, 3\]"):
        load_onnx(tmp_path / "bomb.onnx")


def test_a_huge_declared_input_is_refused(tmp_path):
    nodes = [helper.make_node("Conv", ["x", "w"], ["y"])]
    onnx.save(_model(nodes, [_f32("w", np.ones((2, 3, 1, 1)))], 13, in_shape=(1, 3, 100000, 100000)),
              str(tmp_path / "big.onnx"))
    with pytest.raises(ModularityError, match=r"the ONNX graph input 'x' declares 3 x 100000 x 100000 values"):
        load_onnx(tmp_path / "big.onnx")


def test_a_feature_map_too_large_for_memory_is_refused(tmp_path):
    nodes = [helper.make_node("Conv", ["x", "w"], ["y"], name="wide")]
    onnx.save(_model(nodes, [_f32("w", np.ones((100000, 3, 1, 1)))], 13, in_shape=(1, 3, 224, 224)),
              str(tmp_path / "wide.onnx"))
    with pytest.raises(ModularityError, match=r"ONNX node 'wide' \(Conv\) would make a feature map"):
        load_onnx(tmp_path / "wide.onnx")


def test_an_initializer_with_the_wrong_amount_of_data_is_refused(tmp_path):
    w = _f32("w", np.ones((2, 3, 1, 1)))
    w.raw_data = w.raw_data[:-4]
    onnx.save(_model([helper.make_node("Conv", ["x", "w"], ["y"])], [w], 13), str(tmp_path / "short.onnx"))
    with pytest.raises(ModularityError, match=r"fails ONNX's own checks \(TensorProto \(tensor name: w\) raw_data size "
                                              r"\(20 bytes\) is too small"):
        load_onnx(tmp_path / "short.onnx")


@pytest.mark.parametrize("make, what", [(lambda p: p.mkdir(), "is a folder, not a file"),
                                        (lambda p: p.write_bytes(b""), "is empty (0 bytes)")])
def test_folder_and_empty_onnx_files_are_one_line(tmp_path, make, what):
    make(tmp_path / "m.onnx")
    with pytest.raises(ModularityError, match=f"ONNX file .*m.onnx {re.escape(what)}"):
        load_onnx(tmp_path / "m.onnx")


# -- ONNX's own structural checks, before any import ---------------------------------------------------------------

def _conv(**attrs):
    return helper.make_node("Conv", ["x", "w"], ["y"], name="conv1", **attrs)


_W = _f32("w", np.ones((4, 3, 3, 3)))


@pytest.mark.parametrize("model, message", [
    (lambda: _model([_conv()], [_W], 13, in_shape=(1, 3, -8, 8)),
     r"declares shape \[1, 3, -8, 8\], with a dimension of -8; every dimension must be positive"),
    (lambda: _model([_conv()], [_W], 13, in_shape=(1, 3, -2, 8)), r"with a dimension of -2"),
    (lambda: _model([_conv()], [_W], 13, in_shape=(1, 0, 8, 8)), r"with a dimension of 0"),
    (lambda: _model([_conv()], [_W], 13, in_shape=(0, 3, 8, 8)), r"with a dimension of 0"),
    (lambda: _model([_conv()], [_W], 99), r"declares ONNX opset 99, which this onnx .* does not know"),
    (lambda: _model([_conv()], [_W], 0), r"declares ONNX opset 0"),
    (lambda: _model([_conv(kernel_shape=[5, 5])], [_W], 13), r"declares kernel_shape \[5, 5\] but its weight has a "
                                                              r"\[3, 3\] kernel"),
    (lambda: _model([_conv(kernel_shape=[3, 3, 3])], [_W], 13), r"fails ONNX's own checks .*kernel_shape"),
    (lambda: _model([_conv(strides=[0, 0])], [_W], 13), r"fails ONNX's own checks .*strides"),
    (lambda: _model([_conv(pads=[-5, -5, -5, -5])], [_W], 13), r"fails ONNX's own checks .*pads"),
    (lambda: _model([_conv(bogus=3)], [_W], 13), r"fails ONNX's own checks \(Unrecognized attribute: bogus"),
    (lambda: _model([_conv(), helper.make_node("Relu", ["x"], ["y"], name="relu")], [_W], 13),
     r"tensor 'y' is produced twice \(by node 'conv1' and by node 'relu'\)"),
    (lambda: _model([helper.make_node("Relu", ["x"], ["w"], name="relu"), _conv()], [_W], 13),
     r"tensor 'w' is produced twice \(by an initializer and by node 'relu'\)"),
    (lambda: _model([_conv()], [_W, _W], 13), r"tensor 'w' is produced twice \(by an initializer and by an "
                                              r"initializer\)"),
    (lambda: _model([helper.make_node("Conv", ["x", "nowhere"], ["y"])], [_W], 13),
     r"fails ONNX's own checks .*nowhere"),
    (lambda: _model([_conv()], [_f32("w", np.ones((4, 3, 3)))], 13), r"fails ONNX's own checks .*spatial"),
], ids=["negative-dim", "minus-two", "zero-channels", "zero-batch", "opset-99", "opset-0", "kernel-shape-vs-weight",
        "kernel-shape-rank", "zero-strides", "negative-pads", "unknown-attribute", "duplicate-node-outputs",
        "node-output-shadows-initializer", "duplicate-initializers", "undefined-input", "weight-rank"])
def test_structurally_invalid_onnx_files_are_refused_in_one_line(tmp_path, model, message):
    onnx.save(model(), str(tmp_path / "m.onnx"))
    with pytest.raises(ModularityError, match=message) as err:
        load_onnx(tmp_path / "m.onnx")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("in_shape", [("N", 3, 8, 8), (-1, 3, 8, 8), (1, 3, "h", -1)], ids=str)
def test_symbolic_and_dynamic_dims_and_outputs_without_shapes_still_import(tmp_path, in_shape):
    # -1: paddle2onnx's spelling of a dynamic dimension (the packaged PaddleOCR models use it)
    model = _model([_conv()], [_W], 13, in_shape=in_shape)
    onnx.save(model, str(tmp_path / "m.onnx"))
    module = load_onnx(tmp_path / "m.onnx").module
    assert [type(m) for m in module.modules() if isinstance(m, nn.Conv2d)] == [nn.Conv2d]


def test_the_checks_do_not_copy_large_initializers():
    from modularity.zoo.onnx_import import _skeleton

    big = _f32("w", np.ones((64, 64, 3, 3)))
    skeleton = _skeleton(_model([_conv()], [big], 13))
    assert [i.name for i in skeleton.graph.initializer] == [] and "w" in [i.name for i in skeleton.graph.input]
    assert skeleton.ByteSize() < 1000


def test_a_module_called_twice_at_an_indexed_path_imports_with_one_dotted_name(tmp_path):
    """``features.1`` run twice: the second gets an identifier (``features.3_1`` would be no module path)."""

    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(nn.Conv2d(3, 4, 1), nn.ReLU(), nn.Conv2d(4, 4, 1))

        def forward(self, x):
            f = self.features
            return f[1](f[2](f[1](f[0](x))))

    path = tmp_path / "twice.onnx"
    try:
        torch.onnx.export(Twice().eval(), (torch.randn(1, 3, 8, 8),), str(path), dynamo=False, opset_version=13)
    except Exception as exc:  # the TorchScript exporter may be unavailable in a future torch
        pytest.skip(f"torch.onnx.export failed: {type(exc).__name__}")
    names = [n for n, m in load_onnx(path).module.named_modules() if not list(m.children())]
    assert names[:3] == ["features.0", "features.1", "features.2"] and len(names) == 4 and "." not in names[3]
