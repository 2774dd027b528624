"""The channel graph's objects print as notebook-sized summaries (modularity.core.channel_graph)."""

import numpy as np
import torchvision.models as tvm

from modularity.core.graph import trace
from modularity.core.magnitude import downstream_profile
from modularity.core.methods import CoClusters
from modularity.core.spectral import SVDResult


def test_a_traced_googlenet_prints_its_counts_in_one_short_line():
    graph = trace(tvm.googlenet(weights=None, aux_logits=False, init_weights=True).eval())
    text = repr(graph)
    assert len(text) < 300 and "\n" not in text, text
    kinds = [layer.kind for layer in graph.layers.values()]
    for count in (f"{len(graph.layers) - 1} layers", f"{kinds.count('conv')} conv", f"{kinds.count('concat')} concat",
                  f"{len(graph.edges)} edges", f"{len(graph.producer_names())} producers"):
        assert count in text, (count, text)
    block = repr(graph.layers["inception3a"])
    assert len(block) < 300 and "'inception3a', concat, 256 units" in block and "64/128/32/32" in block, block
    conv = repr(graph.layers["conv1.conv"])
    assert conv == "Layer('conv1.conv', conv 7x7, 3 -> 64 units)", conv
    for edge in graph.edges:
        assert len(repr(edge)) < 300
    profile = repr(downstream_profile(graph, "inception3a"))
    assert len(profile) < 300 and "352 x 256" in profile and "4 consumer blocks" in profile, profile


def test_spectral_results_print_shapes_not_arrays():
    svd = SVDResult("normalised", np.linspace(1, 0, 300), np.zeros((500, 3)), np.zeros((300, 3)))
    assert repr(svd) == "SVDResult('normalised', 300 values [1, 0.997, 0.993, 0.99, ...], u 500 x 3, v 300 x 3)"
    co = CoClusters(np.zeros(1000, int), np.r_[np.zeros(600, int), np.ones(399, int), -1], np.ones(3))
    assert repr(co) == "CoClusters(1000 rows x 1000 columns, column clusters 600/399, 1 dead columns, 3 values)"
