"""Fixtures of the output tests: one small analysis, computed once per session."""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest

from modularity import analyze, trace
from modularity.core.graph import ChannelGraph
from modularity.results import AnalysisResult
from tests.nets import PlantedNet

SIZE = (16, 16)


@pytest.fixture(scope="session")
def planted() -> Callable[[], tuple[AnalysisResult, ChannelGraph]]:
    """A factory of a PlantedNet result (stem, one branch conv, the 4-branch concat ``block``) and its graph.

    The analysis runs once per session; each call returns a deep copy of the
    result, so a test may modify it.
    """
    net = PlantedNet().eval()
    graph = trace(net, SIZE)
    result = analyze(net, layers="stem,branches.0,block", n_permutations=4, graph=graph, input_size=SIZE,
                     command="python -m modularity analyze planted --permutations 4")

    def make() -> tuple[AnalysisResult, ChannelGraph]:
        return copy.deepcopy(result), graph

    return make


WEIRD = "blöck_ユニット_<b>&\"x\"_" + "very_long_layer_name_" * 6 + "$a$"


@pytest.fixture(scope="session")
def report_folder(planted, tmp_path_factory):
    """Reports of a PlantedNet result whose concat layer got a non-ASCII, markup-like, very long name."""
    from modularity.arrays import figure_arrays
    from modularity.output.report import build_reports
    from modularity.pipeline import profiles_of

    result, graph = planted()
    arrays = figure_arrays(graph, result, profiles_of(graph, result))
    result.layers[-1].name = WEIRD
    folder = tmp_path_factory.mktemp("report")
    build_reports(result, arrays, folder)
    return folder, result
