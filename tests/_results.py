"""Small analysis results shared by the output, export, plot and report tests (cached per session)."""

from __future__ import annotations

import copy
from functools import lru_cache

from modularity import analyze, trace
from modularity.graph import ChannelGraph
from modularity.results import AnalysisResult

from .nets import PlantedNet

SIZE = (16, 16)


@lru_cache(maxsize=None)
def _planted() -> tuple[AnalysisResult, ChannelGraph]:
    net = PlantedNet().eval()
    graph = trace(net, SIZE)
    result = analyze(net, layers="stem,branches.0,block", n_permutations=4, graph=graph, input_size=SIZE,
                     command="python -m modularity analyze planted --permutations 4")
    return result, graph


def planted() -> tuple[AnalysisResult, ChannelGraph]:
    """A PlantedNet result (stem, one branch conv, the 4-branch concat ``block``) and its graph.

    The result is a deep copy, so a test may modify it.
    """
    result, graph = _planted()
    return copy.deepcopy(result), graph
