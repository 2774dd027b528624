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
