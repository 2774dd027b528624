"""Writing a results folder: pages drawn in worker processes, progress that counts what is done."""

from __future__ import annotations

import pytest

from modularity.errors import ModularityError
from modularity.output.pdf import PdfReport
from modularity.output.render import draw_pages, progress_bar
from modularity.pipeline import write_results


def _text_pages(tmp_path, n: int) -> PdfReport:
    pdf = PdfReport(tmp_path / "r.pdf")
    for k in range(n):
        pdf.text([("heading", f"Section {k}"), ("text", "word " * 40)])
        pdf.end_flow()
    return pdf


def test_pages_drawn_in_workers_come_back_in_page_order(tmp_path):
    pypdf = pytest.importorskip("pypdf")
    pdf = _text_pages(tmp_path, 4)
    rendered = draw_pages(pdf.pages, tmp_path, jobs=2)
    assert [r.number for r in rendered] == [1, 2, 3, 4]
    pdf.write([r.pdf for r in rendered])
    text = [page.extract_text() for page in pypdf.PdfReader(str(pdf.path)).pages]
    assert [f"Section {k}" in t for k, t in enumerate(text)] == [True] * 4


class _Bar:
    def __init__(self) -> None:
        self.n, self.total = 0, 0

    def update(self, n: int = 1) -> None:
        self.n += n

    def refresh(self) -> None:
        pass


def test_the_progress_bar_counts_every_page_and_every_task(tmp_path):
    pdf = _text_pages(tmp_path, 3)
    bar, done = _Bar(), []
    draw_pages(pdf.pages, tmp_path, jobs=1, bar=bar, alongside=[lambda: done.append(1)] * 2)
    assert (bar.n, len(done)) == (3 + 2, 2)


def test_no_progress_bar_writes_nothing(capsys):
    with progress_bar(False, 10, "saving results") as bar:
        bar.update(3)
    assert capsys.readouterr().err == ""


def test_an_unknown_unit_graph_choice_is_refused_before_writing(planted, tmp_path):
    result, graph = planted()
    with pytest.raises(ModularityError, match="unit_graph"):
        write_results(result, graph, tmp_path, unit_graph="some")
    assert list(tmp_path.iterdir()) == []
