"""HTML and PDF reports: content, escaping and self-containment (rendering: test_browser.py)."""

from __future__ import annotations

import re

import pytest

from modularity.arrays import figure_arrays
from modularity.output.report import build_reports, findings
from modularity.pipeline import profiles_of


def test_findings_count_layers_beyond_null(planted):
    result, _ = planted()
    for layer in result.layers:
        layer.structure.ncut.p_value_bh = 0.01 if layer.name == "block" else 0.5
    text = " ".join(findings(result))
    assert "1 of 3 layers are more clusterable" in text


def test_findings_warn_when_permutations_cannot_reach_alpha(planted):
    result, _ = planted()
    assert any("cannot fall below" in p or "no n-cut p-value can fall below" in p for p in findings(result))


def test_findings_without_null_say_so(planted):
    result, _ = planted()
    result.settings = result.settings.replace(n_permutations=0)
    assert any("No null was computed" in p for p in findings(result))


def test_html_escapes_and_keeps_layer_names(report_folder):
    folder, _ = report_folder
    html = (folder / "report.html").read_text(encoding="utf-8")
    assert "blöck_ユニット_&lt;b&gt;&amp;" in html and "<b>&" not in html


def test_html_is_self_contained(report_folder):
    folder, _ = report_folder
    html = (folder / "report.html").read_text(encoding="utf-8")
    external = re.findall(r"""(?:src|href)=["'](?:https?:)?//""", html)
    assert external == [] and html.count('src="data:image/png;base64,') >= 5


def test_html_has_sortable_table_with_one_row_per_layer(report_folder):
    folder, result = report_folder
    html = (folder / "report.html").read_text(encoding="utf-8")
    body = html.split('<table id="layers" class="sortable">', 1)[1].split("</tbody>", 1)[0]
    assert body.count("<tr") == len(result.layers) + 1  # header row + one per layer


def test_html_explains_the_method(report_folder):
    folder, _ = report_folder
    html = (folder / "report.html").read_text(encoding="utf-8")
    for phrase in ("Downstream profile", "(r + 1) / (n + 1)", "Benjamini-Hochberg", "unit norm", "D_r^-1/2"):
        assert phrase in html, phrase


@pytest.mark.slow
def test_html_links_only_existing_files(planted, tmp_path):
    result, graph = planted()
    arrays = figure_arrays(graph, result, profiles_of(graph, result))
    build_reports(result, arrays, tmp_path)
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert 'href="report.pdf"' in html and 'href="unit_graph.graphml"' not in html


def test_pdf_pages_and_text(report_folder):
    pypdf = pytest.importorskip("pypdf", reason="pypdf is needed to read the PDF back")
    folder, result = report_folder
    reader = pypdf.PdfReader(str(folder / "report.pdf"))
    text = "\n".join(page.extract_text() or "" for page in reader.pages)
    n_sheet_pages = (len(result.layers) + 1) // 2
    assert len(reader.pages) >= 4 + n_sheet_pages
    for phrase in ("Findings", "Per-layer summary", "Method and null", "Appendix", result.model):
        assert phrase in text, phrase

