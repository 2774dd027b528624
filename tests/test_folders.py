"""Folder safety: results folders are written whole, never outside themselves, never over a user's file."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from modularity.errors import ModularityError
from modularity.folders import (
    MARKER,
    PARTIAL_TAG,
    atomic_output_dir,
    check_output_dir,
    check_replaceable,
    copy_fresh,
    note_interrupt,
    published_folder,
    read_manifest,
    reset_interrupt,
)

TOOL_FILES = {"summary.json": b'{"a": 1}', "layers.csv": b"name\nconv1\n", "figures/overview.png": b"\x89PNG",
              "figures/layers/000.png": b"\x89PNG2"}


def _write_tool_folder(out: Path, files: dict[str, bytes] = TOOL_FILES) -> Path:
    with atomic_output_dir(out) as tmp:
        for rel, data in files.items():
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp / rel).write_bytes(data)
    return out


def _tree(root: Path) -> dict[str, str]:
    """Every entry under ``root``: content hash, 'dir', or a link's target (links not followed)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            rel = p.relative_to(root).as_posix()
            if p.is_symlink():
                out[rel] = "link:" + os.readlink(p)
            elif p.is_dir():
                out[rel] = "dir"
            elif p.is_file():
                out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
            else:
                out[rel] = "special"
    return out


@pytest.fixture(autouse=True)
def _no_recorded_interrupt():
    reset_interrupt()
    yield
    reset_interrupt()


# -- the manifest ---------------------------------------------------------------------------------------------------

def test_the_marker_lists_every_file_written_with_size_and_sha256(tmp_path):
    out = _write_tool_folder(tmp_path / "res")
    marker = json.loads((out / MARKER).read_text())
    files = marker["manifest"]["files"]
    assert sorted(files) == sorted(TOOL_FILES) and sorted(marker["manifest"]["dirs"]) == ["figures", "figures/layers"]
    assert files["layers.csv"] == [len(TOOL_FILES["layers.csv"]), hashlib.sha256(TOOL_FILES["layers.csv"]).hexdigest()]


def test_a_results_folder_holding_only_its_own_files_is_replaced_whole(tmp_path):
    out = _write_tool_folder(tmp_path / "res")
    (out / "figures" / "layers" / "000.png").unlink()  # a file of the tool removed: nothing of the user's to lose
    _write_tool_folder(out, {"summary.json": b"{}"})
    assert sorted(_tree(out)) == [MARKER, "summary.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["res"]  # no temporary folder left


@pytest.mark.parametrize("add, named", [
    (lambda out: (out / "notes.txt").write_text("mine"), "notes.txt"),
    (lambda out: (out / "figures" / "mine.png").write_bytes(b"x"), "figures/mine.png"),
    (lambda out: (out / "layers.csv").write_text("name\nconv2\n"), "layers.csv (changed)"),  # same size, new bytes
    (lambda out: (out / "summary.json").write_text("{}"), "summary.json (changed)"),
    (lambda out: (out / "mine").mkdir(), "mine/"),
    (lambda out: os.symlink("/etc/passwd", out / "link"), "link (a symbolic link)"),
    (lambda out: os.mkfifo(out / "pipe"), "pipe (a special file)"),
], ids=["file", "file-in-subfolder", "edited-same-size", "edited", "folder", "symlink", "fifo"])
def test_a_results_folder_with_anything_else_is_refused_naming_it(tmp_path, add, named):
    out = _write_tool_folder(tmp_path / "res")
    add(out)
    before = _tree(tmp_path)
    with pytest.raises(ModularityError, match="modularity did not write") as err:
        _write_tool_folder(out, {"summary.json": b"{}"})
    assert named in str(err.value) and "\n" not in str(err.value)
    assert _tree(tmp_path) == before


def test_the_message_names_the_first_few_unexpected_files_and_counts_them(tmp_path):
    out = _write_tool_folder(tmp_path / "res")
    for i in range(9):
        (out / f"mine{i}.txt").write_text("x")
    with pytest.raises(ModularityError, match=r"holds 9 files .*mine0\.txt, mine1\.txt, mine2\.txt, mine3\.txt and 5 "
                                              r"more"):
        check_output_dir(out)


@pytest.mark.parametrize("marker, why", [
    (lambda m: m.write_text(""), "marker is empty"),
    (lambda m: m.write_text(json.dumps({"tool": "modularity", "version": "0.2.0", "kind": "analyze"})),
     "lists no files"),
    (lambda m: m.write_text("not json"), "not the JSON"),
    (lambda m: m.write_text("[" * 100_000 + "]" * 100_000), "not the JSON"),
    (lambda m: m.write_text(json.dumps({"manifest": {"files": {"a": [1]}, "dirs": []}})), "damaged file list"),
    (lambda m: (m.unlink(), os.symlink("/etc/hostname", m)), "symbolic link"),
    (lambda m: (m.unlink(), m.mkdir()), "not a regular file"),
], ids=["empty", "old-version", "not-json", "deep", "damaged", "symlink", "folder"])
def test_an_untrusted_marker_is_refused_with_advice(tmp_path, marker, why):
    out = _write_tool_folder(tmp_path / "res")
    marker(out / MARKER)
    before = _tree(tmp_path)
    with pytest.raises(ModularityError, match=why) as err:
        check_output_dir(out)
    assert "remove the folder yourself" in str(err.value) and "choose another --out" in str(err.value)
    with pytest.raises(ModularityError, match=why):
        _write_tool_folder(out)
    assert _tree(tmp_path) == before


def test_report_inputs_may_change_but_nothing_else(tmp_path):
    out = _write_tool_folder(tmp_path / "res")
    (out / "summary.json").write_text('{"edited": true}')
    check_replaceable(out, option="report", keep=("summary.json",))
    with pytest.raises(ModularityError, match=r"layers\.csv \(changed\)"):
        (out / "layers.csv").write_text("x")
        check_replaceable(out, option="report", keep=("summary.json",))


# -- where --out may point ------------------------------------------------------------------------------------------

def test_the_current_folder_reached_through_a_symlinked_parent_is_refused(tmp_path, monkeypatch):
    out = _write_tool_folder(tmp_path / "res")
    os.symlink(tmp_path, tmp_path / "via")
    monkeypatch.chdir(out)
    before = _tree(tmp_path)
    for target in ("../via/res", str(tmp_path / "via" / "res"), "../via/res/../res"):
        with pytest.raises(ModularityError, match="current folder"):
            _write_tool_folder(Path(target), {"x": b"1"})
    assert _tree(tmp_path) == before


def test_a_symlink_as_out_is_refused_and_its_target_kept(tmp_path):
    target = _write_tool_folder(tmp_path / "res")
    os.symlink(target, tmp_path / "link")
    before = _tree(tmp_path)
    with pytest.raises(ModularityError, match="symbolic link"):
        _write_tool_folder(tmp_path / "link")
    assert _tree(tmp_path) == before


def test_out_through_a_symlinked_parent_writes_in_the_real_folder(tmp_path):
    (tmp_path / "real").mkdir()
    os.symlink(tmp_path / "real", tmp_path / "via")
    _write_tool_folder(tmp_path / "via" / "res")
    assert (tmp_path / "real" / "res" / "summary.json").is_file()
    _write_tool_folder(tmp_path / "via" / "res", {"x": b"1"})  # and replaces it again, as the same folder
    assert sorted(_tree(tmp_path / "real" / "res")) == [MARKER, "x"]


def test_a_mount_point_is_refused_before_any_work():
    mount = next((p for p in ("/proc", "/sys", "/dev/shm", "/dev") if os.path.ismount(p)), None)
    if mount is None:
        pytest.skip("no mount point to test with")
    with pytest.raises(ModularityError, match="mount point"):
        check_output_dir(mount)


def test_a_name_as_long_as_the_filesystem_allows_works_despite_the_temporary_siblings_longer_names(tmp_path):
    name_max = os.pathconf(tmp_path, "PC_NAME_MAX")
    out = _write_tool_folder(tmp_path / ("r" * name_max))
    assert (out / "summary.json").is_file()
    _write_tool_folder(out)  # and again, over itself
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name]


def test_a_name_longer_than_the_filesystem_allows_is_refused_up_front(tmp_path):
    name_max = os.pathconf(tmp_path, "PC_NAME_MAX")
    with pytest.raises(ModularityError, match=f"more than this filesystem allows \\({name_max}\\)"):
        check_output_dir(tmp_path / ("r" * (name_max + 1)))
    with pytest.raises(ModularityError, match="path is"):
        check_output_dir(tmp_path / "/".join(["d" * 200] * 21))
    assert list(tmp_path.iterdir()) == []


def test_a_read_only_results_folder_is_refused_up_front(tmp_path, monkeypatch):
    out = _write_tool_folder(tmp_path / "res")
    (out / "figures").chmod(0o555)
    if os.geteuid() == 0:  # root may write anywhere: let the permission check see what a user would
        import modularity.folders as folders

        real = os.access
        monkeypatch.setattr(folders.os, "access", lambda p, mode: real(p, mode) and not str(p).endswith("figures"))
    try:
        with pytest.raises(ModularityError, match=r"is read-only \(figures cannot be changed\)"):
            check_output_dir(out)
    finally:
        (out / "figures").chmod(0o755)


# -- failures while writing -----------------------------------------------------------------------------------------

def test_a_full_disk_while_writing_is_one_line_and_leaves_nothing(tmp_path):
    out = _write_tool_folder(tmp_path / "res")
    before = _tree(tmp_path)
    with pytest.raises(ModularityError) as err, atomic_output_dir(out) as tmp:
        (tmp / "summary.json").write_text("partial")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp / "figures" / "big.png"))
    message = str(err.value)
    assert message.startswith("no space left while writing --out") and "(figures/big.png)" in message
    assert "free on its filesystem" in message and "\n" not in message
    assert _tree(tmp_path) == before


def test_too_little_free_space_is_refused_before_writing(tmp_path):
    with (pytest.raises(ModularityError, match="needs about .* free"),
          atomic_output_dir(tmp_path / "res", expected_bytes=1 << 62)):
        pytest.fail("the body ran")
    assert list(tmp_path.iterdir()) == []


def test_a_file_size_limit_while_writing_is_one_line_and_leaves_nothing(tmp_path):
    # A real OS error on write (EFBIG under 'ulimit -f'), in a child process so the limit stays there.
    code = ("import resource, signal, sys\n"
            "from modularity.folders import atomic_output_dir\nfrom modularity.errors import ModularityError\n"
            "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
            "resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))\n"
            "try:\n"
            "    with atomic_output_dir(sys.argv[1]) as tmp:\n"
            "        (tmp / 'big.bin').write_bytes(bytes(1_000_000))\n"
            "except ModularityError as exc:\n"
            "    print(exc)\n")
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "res")], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert proc.stdout.startswith("a file grew past the file size limit while writing --out"), proc.stdout + proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_failure_in_the_body_leaves_the_previous_folder_untouched(tmp_path):
    out = _write_tool_folder(tmp_path / "res")
    before = _tree(tmp_path)
    with pytest.raises(RuntimeError), atomic_output_dir(out) as tmp:
        (tmp / "summary.json").write_text("new")
        raise RuntimeError("boom")
    assert _tree(tmp_path) == before


def test_a_recorded_interrupt_stops_the_folder_from_being_published(tmp_path):
    # The KeyboardInterrupt of a signal may be lost in a finaliser; the record is not.
    out = _write_tool_folder(tmp_path / "res")
    reset_interrupt()
    before = _tree(tmp_path)
    with pytest.raises(KeyboardInterrupt), atomic_output_dir(out) as tmp:
        (tmp / "summary.json").write_text("new")
        note_interrupt(15)
    assert _tree(tmp_path) == before and published_folder() is None


def test_a_published_folder_is_recorded(tmp_path):
    out = _write_tool_folder(tmp_path / "res")
    assert published_folder() == out


def test_stale_partials_of_dead_runs_are_removed_live_ones_kept(tmp_path):
    dead = tmp_path / f".res{PARTIAL_TAG}999999999-abc"
    alive = tmp_path / f".res{PARTIAL_TAG}1-abc"
    other = tmp_path / f".other{PARTIAL_TAG}999999999-abc"
    for p in (dead, alive, other):
        p.mkdir()
    _write_tool_folder(tmp_path / "res")
    assert not dead.exists() and alive.exists() and other.exists()


# -- copying for 'report' -------------------------------------------------------------------------------------------

def test_copy_fresh_refuses_links_and_copies_files_as_new_files(tmp_path):
    src = _write_tool_folder(tmp_path / "res")
    dst = tmp_path / "dst"
    dst.mkdir()
    copy_fresh(src, dst)
    assert {k: v for k, v in _tree(dst).items()} == {k: v for k, v in _tree(src).items() if k != MARKER}
    assert os.stat(dst / "layers.csv").st_ino != os.stat(src / "layers.csv").st_ino
    victim = tmp_path / "victim.txt"
    victim.write_text("keep")
    (src / "layers.csv").unlink()
    os.symlink(victim, src / "layers.csv")
    dst2 = tmp_path / "dst2"
    dst2.mkdir()
    with pytest.raises(ModularityError, match="symbolic link"):
        copy_fresh(src, dst2)
    assert victim.read_text() == "keep"


# -- the rules, on random trees -------------------------------------------------------------------------------------

_NAMES = st.sampled_from(["a", "b.txt", "notes.md", "summary.json", "layers.csv", "figures", "x.png", MARKER])
_PATHS = st.lists(_NAMES, min_size=1, max_size=3).map("/".join)

_ACTIONS = st.one_of(
    st.tuples(st.just("user_file"), _PATHS, st.binary(max_size=8)),
    st.tuples(st.just("user_dir"), _PATHS, st.just(b"")),
    st.tuples(st.just("edit"), st.sampled_from(sorted(TOOL_FILES)), st.binary(max_size=8)),
    st.tuples(st.just("delete"), st.sampled_from(sorted(TOOL_FILES)), st.just(b"")),
    st.tuples(st.just("link_file"), _PATHS, st.just(b"")),
    st.tuples(st.just("link_dir"), _PATHS, st.just(b"")),
    st.tuples(st.just("marker"), st.sampled_from(["empty", "old", "link", "garbage", "keep"]), st.just(b"")),
)


def _apply(out: Path, outside: Path, action: tuple[str, str, bytes]) -> None:
    """Change the results folder ``out`` as a user (or an attacker sharing it) might."""
    kind, rel, data = action
    path = out / rel
    if kind == "marker":
        marker = out / MARKER
        if rel == "keep" or not marker.is_file() or marker.is_symlink():
            return
        if rel == "link":
            marker.unlink()
            os.symlink(outside / "victim.txt", marker)
        else:
            marker.write_text({"empty": "", "old": '{"tool": "modularity", "kind": "analyze"}',
                               "garbage": "\x00{"}[rel])
        return
    if kind in ("edit", "delete"):
        if path.is_file() and not path.is_symlink():
            path.unlink() if kind == "delete" else path.write_bytes(data)
        return
    if not path.parent.is_dir() or path.parent.is_symlink() or os.path.lexists(path):
        return
    if kind == "user_file":
        path.write_bytes(data)
    elif kind == "user_dir":
        path.mkdir()
    elif kind == "link_file":
        os.symlink(outside / "victim.txt", path)
    else:
        os.symlink(outside, path)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(actions=st.lists(_ACTIONS, max_size=6), report=st.booleans())
def test_nothing_but_the_tools_own_files_is_ever_removed_or_written(actions, report):
    """Random user files, folders, edits, links and markers in a results folder, then a re-run or a report.

    The run replaces the folder exactly when it holds nothing but the tool's
    files, unchanged or deleted (for a report, its input ``summary.json`` may
    be edited: it is carried over). Otherwise it is refused with one line and
    every entry, inside the folder and outside it (where links point), is
    exactly as it was. No temporary folder is ever left behind.
    """
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        outside = root / "outside"
        outside.mkdir()
        (outside / "victim.txt").write_text("precious")
        out = _write_tool_folder(root / "res")
        original = _tree(out)
        for action in actions:
            _apply(out, outside, action)
        final = _tree(out)
        foreign = {k for k, v in final.items() if original.get(k) != v}
        if report and not (out / "summary.json").is_symlink():
            foreign.discard("summary.json")
        before = _tree(root)
        keep = ("summary.json",) if report else ()
        new = {"summary.json": b"{}", "figures/new.png": b"n"}
        try:
            with atomic_output_dir(out, keep=keep, option="report" if report else "--out") as tmp:
                if report:
                    copy_fresh(out, tmp)
                for rel, data in new.items():
                    (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
                    (tmp / rel).write_bytes(data)
        except ModularityError as exc:
            event(f"refused ({'report' if report else '--out'})")
            assert foreign, f"refused a folder holding only the tool's files: {exc}"
            assert "\n" not in str(exc)
            assert _tree(root) == before
        else:
            event(f"replaced ({'report' if report else '--out'})")
            assert not foreign, f"replaced a folder holding {sorted(foreign)}"
            after = _tree(root)
            assert {k: v for k, v in after.items() if not k.startswith("res/")} == \
                   {k: v for k, v in before.items() if not k.startswith("res/")}
            assert set(read_manifest(out)["manifest"]["files"]) >= set(new)
        assert (outside / "victim.txt").read_text() == "precious"
        assert [p.name for p in root.iterdir() if PARTIAL_TAG in p.name or ".modularity-old-" in p.name] == []
