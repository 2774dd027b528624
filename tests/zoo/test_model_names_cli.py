"""The command line names timm and Hugging Face models as the API does, and 'models' says how."""

from __future__ import annotations

import pytest

from modularity.cli import main


def test_models_lists_the_name_patterns_and_the_packaged_sources(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for text in ("timm/<name>[.<tag>]", "hf/<org>/<name>[@revision]", "model.safetensors.index.json",
                 "efficientnet_lite1", "craft_mlt_25k", "all_minilm_l6_v2", "fetch_packaged_weights.py"):
        assert text in out


@pytest.mark.parametrize("model, message", [
    ("timm/resnt18", "error: unknown timm model 'resnt18'; did you mean: timm/resnet18"),
    ("hf/org/absent", "error: org/absent is not in the Hugging Face cache: expected "),
])
def test_analyze_refuses_unknown_names_in_one_line_and_writes_nothing(tmp_path, monkeypatch, capsys, model, message):
    pytest.importorskip("timm")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    assert main(["analyze", model, "--out", str(tmp_path / "out"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1
    assert not (tmp_path / "out").exists()
