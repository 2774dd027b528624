import os
import pickle

import pytest
import torch
from torch import nn

from modularity.errors import ModularityError
from modularity.zoo.checkpoints import apply_state_dict, load_state_dict_file
from modularity.zoo.registry import architecture_signatures


def _net():
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.LazyLinear(2))


def _small():
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))


def test_state_dict_round_trip_pth(tmp_path):
    m = _small()
    torch.save(m.state_dict(), tmp_path / "w.pth")
    state = load_state_dict_file(tmp_path / "w.pth")
    assert torch.equal(state["0.weight"], m[0].weight)


def test_safetensors_round_trip(tmp_path):
    from safetensors.torch import save_file

    m = _small()
    save_file(m.state_dict(), str(tmp_path / "w.safetensors"))
    assert torch.equal(load_state_dict_file(tmp_path / "w.safetensors")["0.weight"], m[0].weight)


def test_wrapped_state_dict_and_dataparallel_prefix_are_unwrapped(tmp_path):
    m = _small()
    torch.save({"epoch": 3, "state_dict": {f"module.{k}": v for k, v in m.state_dict().items()}}, tmp_path / "c.pt")
    assert set(load_state_dict_file(tmp_path / "c.pt")) == set(m.state_dict())


def test_whole_pickled_module_is_refused_with_advice(tmp_path):
    torch.save(_small(), tmp_path / "model.pt")
    with pytest.raises(ModularityError, match=r"refused for safety.*model.state_dict\(\)"):
        load_state_dict_file(tmp_path / "model.pt")


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_pickle_with_code_is_refused_and_not_executed(tmp_path, capfd):
    with open(tmp_path / "evil.pth", "wb") as fh:
        pickle.dump({"w": _Evil()}, fh)
    with pytest.raises(ModularityError) as err:
        load_state_dict_file(tmp_path / "evil.pth")
    assert "pwned" not in capfd.readouterr().out
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", b"PK\x03\x04truncated zip"])
def test_corrupt_files_give_one_line(tmp_path, content):
    (tmp_path / "bad.pth").write_bytes(content)
    with pytest.raises(ModularityError) as err:
        load_state_dict_file(tmp_path / "bad.pth")
    assert "\n" not in str(err.value) and "bad.pth" in str(err.value)


def test_truncated_safetensors_gives_one_line(tmp_path):
    from safetensors.torch import save_file

    save_file(_small().state_dict(), str(tmp_path / "w.safetensors"))
    data = (tmp_path / "w.safetensors").read_bytes()
    (tmp_path / "w.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModularityError, match="not a readable safetensors file"):
        load_state_dict_file(tmp_path / "w.safetensors")


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ModularityError, match="weights file not found: .*nope.pth"):
        load_state_dict_file(tmp_path / "nope.pth")


def test_mismatch_lists_missing_unexpected_and_wrong_shapes():
    m = _small()
    state = dict(m.state_dict())
    state.pop("0.bias")
    state["extra.weight"] = torch.zeros(1)
    state["0.weight"] = torch.zeros(5, 3, 3, 3)
    with pytest.raises(ModularityError) as err:
        apply_state_dict(m, state, source="x.pth", architecture="tiny")
    msg = str(err.value)
    assert "1 missing: 0.bias" in msg and "1 unexpected: extra.weight" in msg
    assert "0.weight model (4, 3, 3, 3) file (5, 3, 3, 3)" in msg and "\n" not in msg


def test_checkpoint_of_another_architecture_is_recognised():
    import torchvision

    state = torchvision.models.resnet18(weights=None).state_dict()
    with pytest.raises(ModularityError, match="its keys look like 'resnet18'"):
        apply_state_dict(torchvision.models.alexnet(weights=None), state, source="r.pth", architecture="alexnet",
                         signatures=architecture_signatures)


# -- every way a weights file can be wrong: one line naming the file and the fault ------------------------------

def _one_line(err) -> str:
    msg = str(err.value)
    assert "\n" not in msg and "Traceback" not in msg
    return msg


def _refused(path) -> str:
    with pytest.raises(ModularityError) as err:
        load_state_dict_file(path)
    return _one_line(err)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_values_name_the_tensor_and_count(tmp_path, bad):
    state = _small().state_dict()
    state["0.weight"][0, 0, 0, :3] = bad
    torch.save(state, tmp_path / "x.pth")
    assert _refused(tmp_path / "x.pth") == (f"weights in {tmp_path / 'x.pth'}: tensor '0.weight' has 3 NaN/Inf "
                                            "values (of 108); only finite weights can be analysed")


def test_non_finite_values_in_safetensors_are_refused(tmp_path):
    from safetensors.torch import save_file

    save_file({"w": torch.tensor([1.0, float("nan")])}, str(tmp_path / "x.safetensors"))
    assert "tensor 'w' has 1 NaN/Inf value (of 2)" in _refused(tmp_path / "x.safetensors")


def test_complex_weights_name_the_tensor(tmp_path):
    torch.save({"conv.weight": torch.zeros(2, 2, dtype=torch.complex64)}, tmp_path / "c.pth")
    assert "tensor 'conv.weight' is complex (torch.complex64)" in _refused(tmp_path / "c.pth")


def test_complex_weights_in_safetensors_name_the_tensor(tmp_path):
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2, dtype=torch.complex64)}, str(tmp_path / "c.safetensors"))
    assert "tensor 'w' is complex" in _refused(tmp_path / "c.safetensors")


def test_a_folder_is_refused(tmp_path):
    (tmp_path / "x.pth").mkdir()
    assert _refused(tmp_path / "x.pth") == f"weights file {tmp_path / 'x.pth'} is a folder, not a file"


def test_an_unreadable_file_is_refused(tmp_path, monkeypatch):
    import modularity.zoo.files as files

    torch.save(_small().state_dict(), tmp_path / "x.pth")

    def denied(*args, **kwargs):  # chmod 000 does not stop root, so the denial is simulated
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(files, "open", denied, raising=False)
    assert _refused(tmp_path / "x.pth") == f"cannot read weights file {tmp_path / 'x.pth'} (Permission denied)"


def test_an_empty_file_is_refused(tmp_path):
    (tmp_path / "x.pth").write_bytes(b"")
    assert _refused(tmp_path / "x.pth") == f"weights file {tmp_path / 'x.pth'} is empty (0 bytes)"


@pytest.mark.parametrize("content", [bytes(range(7, 250)) * 8, b"\0" * 4096, b"(dp0\nS'a'\np1\nI1\ns."])
def test_unknown_bytes_are_not_called_a_pickle(tmp_path, content):
    (tmp_path / "x.pth").write_bytes(content)
    msg = _refused(tmp_path / "x.pth")
    assert "is not a PyTorch checkpoint (zip or legacy format) nor a safetensors file" in msg
    assert "pickle" not in msg.lower()


def test_truncated_zip_checkpoint_is_refused(tmp_path):
    torch.save(_small().state_dict(), tmp_path / "x.pth")
    data = (tmp_path / "x.pth").read_bytes()
    (tmp_path / "x.pth").write_bytes(data[: len(data) // 2])
    assert "is a truncated or corrupt zip file, not a complete PyTorch checkpoint" in _refused(tmp_path / "x.pth")


def test_a_zip_that_is_not_a_checkpoint_is_refused(tmp_path):
    import zipfile

    with zipfile.ZipFile(tmp_path / "x.pth", "w") as zf:
        zf.writestr("notes.txt", "garbage")
    assert "is a zip file but not a PyTorch checkpoint (it has no data.pkl)" in _refused(tmp_path / "x.pth")


def test_a_checkpoint_zip_with_a_garbage_record_is_refused(tmp_path):
    import zipfile

    with zipfile.ZipFile(tmp_path / "x.pth", "w") as zf:
        zf.writestr("archive/data.pkl", b"\x80\x02garbage that is no pickle")
    assert "could not be read as a PyTorch checkpoint" in _refused(tmp_path / "x.pth")


def test_torchscript_archive_is_refused_unloaded(tmp_path):
    import zipfile

    with zipfile.ZipFile(tmp_path / "x.pt", "w") as zf:  # the layout torch.jit.save writes
        zf.writestr("x/data.pkl", b"")
        zf.writestr("x/constants.pkl", b"")
        zf.writestr("x/code/__torch__.py", "def forward(self): ...")
    assert "is a TorchScript archive" in _refused(tmp_path / "x.pt")


@pytest.mark.parametrize("obj, what", [({"0.weight": torch.zeros(4, 3, 3, 3), "epoch": 3}, "entry 'epoch' is a int"),
                                       ({"a": torch.zeros(1), "b": "text"}, "entry 'b' is a str"),
                                       ({3: torch.zeros(1)}, "key 3 is a int")])
def test_non_tensor_values_and_keys_are_refused(tmp_path, obj, what):
    torch.save(obj, tmp_path / "x.pth")
    assert what in _refused(tmp_path / "x.pth")


@pytest.mark.parametrize("obj, what", [(torch.zeros(3), "holds a single tensor"), ([1, 2], "holds a list"),
                                       ({}, "holds no tensors (an empty state dict)")])
def test_things_that_are_not_state_dicts_are_refused(tmp_path, obj, what):
    torch.save(obj, tmp_path / "x.pth")
    assert what in _refused(tmp_path / "x.pth")


def test_sparse_tensors_are_refused(tmp_path):
    torch.save({"w": torch.eye(3).to_sparse()}, tmp_path / "x.pth")
    assert "tensor 'w' is sparse" in _refused(tmp_path / "x.pth")


@pytest.mark.parametrize("key", ["state_dict", "model", "model_state_dict"])
def test_each_wrapper_key_is_unwrapped(tmp_path, key):
    m = _small()
    torch.save({key: m.state_dict(), "epoch": 7, "optimizer": {"lr": 0.1}}, tmp_path / "c.pt")
    state = load_state_dict_file(tmp_path / "c.pt")
    assert set(state) == set(m.state_dict()) and torch.equal(state["0.weight"], m[0].weight)


def test_nested_wrappers_are_unwrapped(tmp_path):
    m = _small()
    torch.save({"model": {"state_dict": m.state_dict()}}, tmp_path / "c.pt")
    assert set(load_state_dict_file(tmp_path / "c.pt")) == set(m.state_dict())


def test_dataparallel_prefix_is_removed_from_a_bare_state_dict(tmp_path):
    m = _small()
    torch.save({f"module.{k}": v for k, v in m.state_dict().items()}, tmp_path / "ddp.pth")
    assert set(load_state_dict_file(tmp_path / "ddp.pth")) == set(m.state_dict())


def test_a_prefix_collision_is_refused(tmp_path):
    torch.save({"module.w": torch.zeros(1), "w": torch.ones(1)}, tmp_path / "x.pth")
    assert "'module.w' and 'w' both name parameter 'w'" in _refused(tmp_path / "x.pth")


def test_legacy_format_checkpoint_loads(tmp_path):
    m = _small()
    torch.save(m.state_dict(), tmp_path / "old.pth", _use_new_zipfile_serialization=False)
    assert torch.equal(load_state_dict_file(tmp_path / "old.pth")["0.weight"], m[0].weight)


def test_format_comes_from_the_content_not_the_name(tmp_path):
    m = _small()
    torch.save(m.state_dict(), tmp_path / "misnamed.safetensors")
    assert torch.equal(load_state_dict_file(tmp_path / "misnamed.safetensors")["0.weight"], m[0].weight)


def _safetensors_with_header(path, header: dict, data: bytes = b"\0" * 8):
    import json
    import struct

    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data)
    return path


@pytest.mark.parametrize("shape, offsets", [([100000, 100000, 1000], [0, 8]), ([2 ** 62, 4], [0, 2 ** 64 - 1])])
def test_huge_shapes_in_a_safetensors_header_are_refused_without_allocating(tmp_path, shape, offsets):
    path = _safetensors_with_header(tmp_path / "x.safetensors",
                                    {"w": {"dtype": "F32", "shape": shape, "data_offsets": offsets}})
    assert "is not a readable safetensors file" in _refused(path)


def test_a_huge_safetensors_header_length_is_refused(tmp_path):
    import struct

    (tmp_path / "x.safetensors").write_bytes(struct.pack("<Q", 2 ** 60) + b"{" + b"\0" * 16)
    assert "is not a readable safetensors file" in _refused(tmp_path / "x.safetensors")


def test_a_path_no_file_can_have_is_refused(tmp_path):
    with pytest.raises(ModularityError) as err:
        load_state_dict_file(tmp_path / ("a" * 5000 + ".pth"))
    assert "cannot be opened" in _one_line(err) or "not found" in _one_line(err)


@pytest.mark.parametrize("dtype", [torch.float8_e4m3fn, torch.float8_e5m2, torch.float8_e4m3fnuz],
                         ids=lambda d: str(d).removeprefix("torch."))
@pytest.mark.parametrize("fmt", ["pth", "safetensors"])
def test_float8_weights_name_the_dtype_and_what_is_accepted(tmp_path, dtype, fmt):
    state = {k: v.to(dtype) if v.is_floating_point() else v for k, v in _small().state_dict().items()}
    path = tmp_path / f"w.{fmt}"
    if fmt == "pth":
        torch.save(state, path)
    else:
        from safetensors.torch import save_file

        save_file(state, str(path))
    name = str(dtype).removeprefix("torch.")
    with pytest.raises(ModularityError, match=f"tensor '0.(weight|bias)' has dtype {name}, .*accepted: float16, "
                                              "bfloat16, float32 or float64"):
        load_state_dict_file(path)


@pytest.mark.parametrize("dtype", [torch.int8, torch.uint8, torch.int32, torch.bool])
def test_integer_and_boolean_weights_are_refused_by_name_not_cast(tmp_path, dtype):
    m = _small()
    state = {k: (v * 100).to(dtype) if v.is_floating_point() else v for k, v in m.state_dict().items()}
    torch.save(state, tmp_path / "w.pth")
    loaded = load_state_dict_file(tmp_path / "w.pth")  # a state dict may hold integer buffers
    name = str(dtype).removeprefix("torch.")
    with pytest.raises(ModularityError, match=f"tensor '0.weight' is {name}, not floating point \\(6 such tensors\\)"):
        apply_state_dict(_small(), loaded, source="w.pth")


def test_integer_buffers_where_the_model_has_them_still_load(tmp_path):
    m = _small()
    state = m.state_dict()
    assert state["1.num_batches_tracked"].dtype == torch.int64
    apply_state_dict(_small(), state, source="w.pth")


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_other_float_dtypes_load(tmp_path, dtype):
    m = _small()
    state = {k: v.to(dtype) if v.is_floating_point() else v for k, v in m.state_dict().items()}
    torch.save(state, tmp_path / "w.pth")
    target = _small()
    apply_state_dict(target, load_state_dict_file(tmp_path / "w.pth"), source="w.pth")
    assert torch.allclose(target[0].weight, m[0].weight.to(dtype).float())
