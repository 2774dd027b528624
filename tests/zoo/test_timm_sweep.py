"""timm, one architecture per family, traced into a channel graph (random init, each at its own input size).

``scripts/timm_sweep.py`` traces the smallest variant of every family (``timm.list_modules()``) and
writes ``reports/timm_sweep.md`` and ``.json``; its rules and bounds are stated there. This test
re-traces them from that report, within CI's budget:

- every family whose recorded build + trace time is at most ``FAST_S`` seconds, and every ViT-line
  family (``VIT_FAMILIES``: each must get its attention heads as branches) recorded at most
  ``VIT_S`` seconds. The rest (a 412 M-parameter DeepSeek ViT at 546 x 546, Gemma 4's and Qwen 3's
  at 768 x 768, SAM 2's Hiera at 896 x 896, ...) are covered by the script alone;
- for each, the graph must match the report (layers, layers with branch labels, layers labelled
  by head) and every conv and linear module that ran must be a layer or be named in the notes.

The report must have been made with the installed timm (the picks and counts depend on it);
otherwise the per-family tests skip, asking for ``python scripts/timm_sweep.py --write``.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

timm = pytest.importorskip("timm")

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("timm_sweep", ROOT / "scripts" / "timm_sweep.py")
sweep = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sweep)

REPORT = json.loads(sweep.REPORT_JSON.read_text(encoding="utf-8"))
RECORDS = {r["family"]: r for r in REPORT["records"]}
SAME_TIMM = REPORT["meta"]["timm"] == timm.__version__
FAST_S = 5.0
VIT_S = 20.0
SELECTED = sorted(f for f, r in RECORDS.items() if r.get("traced") and (
    r["seconds"] <= FAST_S or (f in sweep.VIT_FAMILIES and r["seconds"] <= VIT_S)))


def test_the_report_covers_every_family_and_meets_the_targets():
    if SAME_TIMM:
        assert set(RECORDS) == set(timm.list_modules())
    traced = [r for r in RECORDS.values() if r.get("traced")]
    assert len(traced) >= 0.9 * len(RECORDS)
    assert all(not r["unaccounted"] for r in traced)
    for family in sweep.VIT_FAMILIES:
        if family in RECORDS:
            assert RECORDS[family].get("head_layers", 0) > 0, family
    assert len(SELECTED) >= 60 and set(sweep.VIT_FAMILIES) & set(RECORDS) <= set(SELECTED)


@pytest.mark.slow
@pytest.mark.parametrize("family", SELECTED)
def test_family_traces_as_recorded_with_every_weighted_module_mapped(family):
    if not SAME_TIMM:
        pytest.skip(f"reports/timm_sweep.json was made with timm {REPORT['meta']['timm']}, not "
                    f"{timm.__version__}: run python scripts/timm_sweep.py --write")
    want = RECORDS[family]
    got = sweep.trace_one(want["model"], tuple(want["input"]), which_tracer=False)
    assert got["traced"], got["error"]
    assert got["unaccounted"] == []
    assert (got["layers"], got["layers_with_branches"], got["head_layers"]) == (
        want["layers"], want["layers_with_branches"], want["head_layers"])
    if family in sweep.VIT_FAMILIES:
        assert got["head_layers"] > 0
