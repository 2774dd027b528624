"""Every number of summary.json stays the same across refactors (fixed seeds, fixed nets).

The expected values in ``tests/data/golden_summary.json`` were written by
``python -m tests.test_golden``; regenerate them only in a commit that changes a
result on purpose, and say which and why.
"""

from __future__ import annotations

import json
from pathlib import Path

GOLDEN = Path(__file__).parent / "data" / "golden_summary.json"
VOLATILE = ("versions", "command", "runtime_s")


def _summaries() -> dict[str, dict]:
    from modularity import analyze
    from tests.nets import PlantedNet, grouped_net

    out = {}
    res = analyze(PlantedNet(signal=1.0, seed=2).eval(), layers="stem,branches.0,block", n_permutations=6,
                  seed=3, input_size=(16, 16))
    out["planted"] = res.to_dict()
    res = analyze(grouped_net(seed=1), layers="0,2", n_permutations=5, seed=4, input_size=(16, 16),
                  null="resample")
    out["grouped"] = res.to_dict()
    for d in out.values():
        for key in VOLATILE:
            d.pop(key, None)
    return out


def test_summary_numbers_are_unchanged():
    expected = json.loads(GOLDEN.read_text())
    assert json.loads(json.dumps(_summaries())) == expected


if __name__ == "__main__":
    GOLDEN.write_text(json.dumps(_summaries(), indent=1, sort_keys=True) + "\n")
    print(f"wrote {GOLDEN}")
