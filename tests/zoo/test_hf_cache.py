"""Finding files in a Hugging Face hub cache offline: the folder from the environment, refs and snapshots."""

from __future__ import annotations

import pytest

from modularity.errors import ModularityError
from modularity.zoo.hf_cache import find_cached_file, hub_cache_dir, repo_folder, snapshot_dir


def _snapshot(cache, repo="org/net", rev="0123abcd", ref=True, files=("model.safetensors",)):
    folder = cache / ("models--" + repo.replace("/", "--"))
    snap = folder / "snapshots" / rev
    snap.mkdir(parents=True)
    for name in files:
        (snap / name).write_bytes(b"x")
    if ref:
        (folder / "refs").mkdir()
        (folder / "refs" / "main").write_text(rev)
    return snap


@pytest.mark.parametrize("env, expected", [
    ({"HF_HUB_CACHE": "a", "HUGGINGFACE_HUB_CACHE": "b", "HF_HOME": "c"}, "a"),
    ({"HUGGINGFACE_HUB_CACHE": "b", "HF_HOME": "c"}, "b"),
    ({"HF_HOME": "c"}, "c/hub"),
    ({"XDG_CACHE_HOME": "d"}, "d/huggingface/hub"),
])
def test_cache_folder_follows_huggingface_hub_precedence(tmp_path, monkeypatch, env, expected):
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME", "XDG_CACHE_HOME"):
        monkeypatch.delenv(var, raising=False)
    for var, value in env.items():
        monkeypatch.setenv(var, str(tmp_path / value))
    assert hub_cache_dir() == tmp_path / expected


def test_main_resolves_through_refs_and_a_lone_snapshot_without_refs(tmp_path):
    snap = _snapshot(tmp_path / "c1")
    assert snapshot_dir("org/net", cache=tmp_path / "c1") == snap
    lone = _snapshot(tmp_path / "c2", ref=False)
    assert snapshot_dir("org/net", cache=tmp_path / "c2") == lone
    assert snapshot_dir("org/net", "0123abcd", cache=tmp_path / "c2") == lone  # a commit hash
    assert snapshot_dir("org/other", cache=tmp_path / "c2") is None


def test_first_cached_file_is_found_with_its_revision(tmp_path):
    _snapshot(tmp_path, files=("pytorch_model.bin",))
    found = find_cached_file("org/net", ("model.safetensors", "pytorch_model.bin"), cache=tmp_path)
    assert found.path.name == "pytorch_model.bin" and found.revision == "0123abcd"


def test_missing_file_names_where_it_would_be(tmp_path):
    with pytest.raises(ModularityError, match=r"expected .*models--org--net/snapshots/<revision>/model\.safetensors"
                                              r" \(or pytorch_model\.bin\); no download"):
        find_cached_file("org/net", ("model.safetensors", "pytorch_model.bin"), cache=tmp_path)


@pytest.mark.parametrize("repo", ["net", "org/../net", "org/net/extra", "/org"])
def test_malformed_repository_ids_are_refused(tmp_path, repo):
    with pytest.raises(ModularityError, match="not a Hugging Face repository id"):
        repo_folder(repo, tmp_path)
