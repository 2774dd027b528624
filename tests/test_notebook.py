"""The example notebook (docs/example.ipynb) runs from top to bottom on the installed package."""

from __future__ import annotations

from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOK = Path(__file__).resolve().parents[1] / "docs" / "example.ipynb"


@pytest.mark.slow
def test_example_notebook_executes_and_shows_a_table_per_layer(tmp_path):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    for cell in nb.cells:  # execute from scratch, not the stored outputs
        if cell.cell_type == "code":
            cell.outputs = []
    nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    html = [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs
            if "text/html" in out.get("data", {})]
    errors = [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs
              if out.output_type == "error"]
    # the result's HTML summary, the per-layer and the per-unit frames render as HTML
    assert (errors, len(html) >= 3, "inception3b" in html[1]["data"]["text/html"]) == ([], True, True)
