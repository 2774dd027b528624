"""Whole-network clusterability (modularity.studies.clusterability)."""

import json
from collections import OrderedDict

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.metrics import adjusted_rand_score
from torch import nn

from modularity.core.graph import trace
from modularity.errors import ModularityError
from modularity.studies.clusterability import clusterability, ncut, network_adjacency, network_graph, spectral_clusters
from tests.nets import PlantedNet, grouped_net


def _blocks(sizes, p_in=1.0, p_out=0.02, seed=0):
    """A weighted graph of dense blocks joined by weak edges."""
    rng = np.random.default_rng(seed)
    n = sum(sizes)
    truth = np.repeat(np.arange(len(sizes)), sizes)
    a = rng.uniform(0.5, 1.0, (n, n)) * np.where(truth[:, None] == truth[None, :], p_in, p_out)
    a = np.triu(a, 1)
    return a + a.T, truth


def test_ncut_matches_a_hand_computation():
    a = np.array([[0, 2, 1, 0], [2, 0, 0, 0], [1, 0, 0, 3], [0, 0, 3, 0]], dtype=float)
    # Cluster {0,1}: vol = 3 + 2 = 5, cut = 1; cluster {2,3}: vol = 4 + 3 = 7, cut = 1.
    assert ncut(a, np.array([0, 0, 1, 1])) == pytest.approx(1 / 5 + 1 / 7)


def test_ncut_ignores_unlabelled_nodes():
    a = np.array([[0, 1, 5], [1, 0, 0], [5, 0, 0]], dtype=float)
    assert ncut(a, np.array([0, 0, -1])) == pytest.approx(0.0)


def test_spectral_clusters_recover_planted_blocks():
    a, truth = _blocks([30, 20, 25], seed=1)
    labels = spectral_clusters(sp.csr_matrix(a), 3, seed=0)
    assert adjusted_rand_score(truth, labels) == pytest.approx(1.0)


def test_spectral_clusters_sparse_solver_agrees_with_dense():
    a, truth = _blocks([400, 300, 350], p_out=0.01, seed=2)  # above the dense limit: eigsh path
    labels = spectral_clusters(sp.csr_matrix(a), 3, seed=0)
    assert adjusted_rand_score(truth, labels) == pytest.approx(1.0)


def test_isolated_nodes_get_minus_one_and_components_are_separated():
    a, _ = _blocks([10, 10], p_out=0.0)
    a = np.pad(a, ((0, 2), (0, 2)))  # two isolated nodes
    labels = spectral_clusters(a, 2, seed=0)
    assert list(labels[-2:]) == [-1, -1]
    assert len(set(labels[:10])) == 1 and len(set(labels[10:20])) == 1 and labels[0] != labels[10]
    assert ncut(a, labels) == pytest.approx(0.0)


def test_graph_nodes_are_conv_units_and_input_channels_without_concats():
    g = trace(PlantedNet(), (8, 8))
    net = network_graph(g)
    assert net.layers[0] == "input" and "block" not in net.layers
    assert net.n_nodes == 3 + 8 + 4 * 8 + 32


def test_adjacency_uses_bn_folded_l1_magnitudes_through_the_concat():
    g = trace(PlantedNet(), (8, 8))
    net = network_graph(g)
    adj = network_adjacency(g, net).toarray()
    assert np.allclose(adj, adj.T)
    head0 = net.offsets["head"][0]
    b1 = net.offsets["branches.1"][0]
    # head reads concat column 8 = unit 0 of branches.1
    expected = g.weight("head")[0, 8].abs().sum().item()
    assert adj[head0, b1] == pytest.approx(expected, rel=1e-6)
    assert adj[head0, net.offsets["stem"][0]] == 0.0


def test_batch_norm_scale_is_folded_into_edges():
    model = nn.Sequential(nn.Conv2d(3, 4, 1, bias=False), nn.BatchNorm2d(4)).eval()
    with torch.no_grad():
        model[1].running_var.fill_(3.0)
        model[1].weight.fill_(2.0)
    g = trace(model, (4, 4))
    adj = network_adjacency(g, network_graph(g)).toarray()
    w = model[0].weight[:, :, 0, 0].abs().detach().numpy() * 2.0 / np.sqrt(3.0 + 1e-5)
    assert np.allclose(adj[3:, :3], w, rtol=1e-5)


def test_residual_stream_links_the_consumer_to_every_writer():
    class Res(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b, self.c = nn.Conv2d(3, 4, 1), nn.Conv2d(4, 4, 1), nn.Conv2d(4, 2, 1)

        def forward(self, x):
            h = self.a(x)
            return self.c(h + self.b(h))

    g = trace(Res(), (4, 4))
    net = network_graph(g)
    adj = network_adjacency(g, net).toarray()
    c0, a0, b0 = net.offsets["c"][0], net.offsets["a"][0], net.offsets["b"][0]
    assert adj[c0, a0] > 0 and adj[c0, a0] == pytest.approx(adj[c0, b0])


def test_grouped_conv_edges_stay_inside_groups():
    g = trace(grouped_net(groups=4, width=32), (8, 8))
    net = network_graph(g)
    adj = network_adjacency(g, net).toarray()
    s0, s2 = net.offsets["0"][0], net.offsets["2"][0]
    block = adj[s2:s2 + 32, s0:s0 + 32]
    mask = np.kron(np.eye(4), np.ones((8, 8))) > 0
    assert np.all(block[~mask] == 0) and np.all(block[mask] > 0)


def test_linear_layers_only_with_include_linear():
    # alexnet's shape in small (conv, pool, flatten of 12 x 3 x 3, two linear layers): the full alexnet took
    # 105 s and most of the fast lane's 7 GB peak, for the same check
    torch.manual_seed(0)
    model = nn.Sequential(OrderedDict(
        conv1=nn.Conv2d(3, 8, 3), relu1=nn.ReLU(), pool=nn.MaxPool2d(2), conv2=nn.Conv2d(8, 12, 3), relu2=nn.ReLU(),
        avgpool=nn.AdaptiveAvgPool2d((3, 3)), flatten=nn.Flatten(), fc1=nn.Linear(108, 20), relu3=nn.ReLU(),
        fc2=nn.Linear(20, 10))).eval()
    g = trace(model, (32, 32))
    assert "fc1" not in network_graph(g).layers and network_graph(g).n_nodes == 3 + 8 + 12
    net = network_graph(g, include_linear=True)
    assert "fc1" in net.layers and "fc2" in net.layers and net.n_nodes == 3 + 8 + 12 + 20 + 10


def test_clusterability_result_fields_and_reproducibility():
    g = trace(PlantedNet(signal=3.0, seed=0), (8, 8))
    a = clusterability(g, k=4, n_shuffles=5, seed=3)
    b = clusterability(g, k=4, n_shuffles=5, seed=3)
    assert a.null_ncuts == b.null_ncuts and a.ncut == b.ncut
    assert len(a.null_ncuts) == 5 and a.p_value == pytest.approx(
        (sum(x <= a.ncut + 1e-12 for x in a.null_ncuts) + 1) / 6)
    assert sum(sum(v) for v in a.cluster_sizes.values()) == a.n_nodes - a.n_isolated
    json.dumps(a.to_dict(), allow_nan=False)


def test_clusterability_result_prints_its_headline_in_one_short_line():
    res = clusterability(trace(PlantedNet(signal=3.0, seed=0), (8, 8)), k=4, n_shuffles=5, seed=3)
    text = repr(res)
    assert len(text) < 300 and f"{res.n_nodes} units in {len(res.layers)} layers, k=4" in text, text
    assert "5 shuffles (shuffle)" in text and f"p={res.p_value:.3g}" in text
    assert res._repr_html_().count("<tr>") == len(res.cluster_sizes) + 1


def test_planted_modules_make_the_network_more_clusterable_than_shuffles():
    class Towers(nn.Module):
        """Two separate towers joined by near-zero weights."""

        def __init__(self):
            super().__init__()
            self.c1, self.c2, self.c3 = nn.Conv2d(3, 16, 1), nn.Conv2d(16, 16, 1), nn.Conv2d(16, 16, 1)
            with torch.no_grad():
                for conv in (self.c2, self.c3):
                    mask = torch.kron(torch.eye(2), torch.ones(8, 8)) * 0.99 + 0.01
                    conv.weight.mul_(mask[:, :, None, None])

        def forward(self, x):
            return self.c3(torch.relu(self.c2(torch.relu(self.c1(x)))))

    res = clusterability(Towers(), k=2, n_shuffles=19, seed=0, input_size=(4, 4))
    assert res.ncut < res.null_mean and res.p_value == pytest.approx(1 / 20)


def test_zero_shuffles_give_no_null():
    res = clusterability(trace(PlantedNet(), (8, 8)), k=3, n_shuffles=0)
    assert res.null_ncuts == [] and res.p_value is None and res.z is None and res.null_mean is None
    assert "no null" in res.summary()


def test_bad_k_and_shuffles_raise_clear_errors():
    g = trace(PlantedNet(), (8, 8))
    with pytest.raises(ModularityError, match="larger than the number of units"):
        clusterability(g, k=1000, n_shuffles=0)
    with pytest.raises(ModularityError, match="at least 2"):
        clusterability(g, k=1, n_shuffles=0)
    with pytest.raises(ModularityError, match="0 or more"):
        clusterability(g, k=2, n_shuffles=-1)


def test_network_without_convs_is_refused():
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 4))
    with pytest.raises(ModularityError, match="no conv layers"):
        clusterability(model, k=2, n_shuffles=0, input_size=(2, 2))


def test_cli_reports_a_too_large_k_as_one_line_and_writes_nothing(tmp_path, capsys):
    from modularity.cli import main

    out = tmp_path / "res"
    code = main(["clusterability", "alexnet", "--k", "5000", "--shuffles", "0", "--quiet", "--out", str(out)])
    assert code == 2 and not out.exists()
    assert "larger than the number of units" in capsys.readouterr().err


def test_degree_null_runs_and_is_recorded():
    res = clusterability(PlantedNet(), k=3, n_shuffles=3, input_size=(8, 8), null="degree")
    assert res.null == "degree" and len(res.null_ncuts) == 3 and all(np.isfinite(res.null_ncuts))


def test_graph_ncut_of_the_bipartite_graph_equals_the_bipartite_ncut():
    # One formula, two data layouts: the per-layer statistic (dense biadjacency, per null draw)
    # and the whole-network one (sparse adjacency of 21k nodes) must agree on a bipartite graph.
    from modularity.core.spectral import bipartite_ncut

    rng = np.random.default_rng(3)
    a = rng.random((7, 9)) * (rng.random((7, 9)) < 0.6)
    rows, cols = rng.integers(0, 3, 7), rng.integers(0, 3, 9)
    adj = sp.bmat([[None, sp.csr_matrix(a)], [sp.csr_matrix(a.T), None]]).tocsr()
    assert ncut(adj, np.concatenate([rows, cols])) == pytest.approx(bipartite_ncut(a, rows, cols), rel=1e-12)


def test_the_shuffled_networks_are_the_same_for_any_number_of_workers():
    graph = trace(PlantedNet(signal=1.0, seed=2), (8, 8))
    one = clusterability(graph, k=3, n_shuffles=4, seed=5, jobs=1)
    two = clusterability(graph, k=3, n_shuffles=4, seed=5, jobs=2)
    assert (two.null_ncuts, two.ncut) == (one.null_ncuts, one.ncut)


def test_the_summary_states_its_null_and_the_floor_of_its_p_value():
    from types import SimpleNamespace

    from modularity.studies.clusterability import ClusterabilityResult

    fields = {f: None for f in ClusterabilityResult.__dataclass_fields__}
    fields.update(model="m", n_nodes=10, layers=["a"], n_edges=5, n_isolated=0, k=2, ncut=0.5, n_shuffles=19,
                  null_mean=0.8, null_sd=0.1, z=-3.0, p_value=0.05, runtime_s=1.0, null="degree")
    text = ClusterabilityResult.summary(SimpleNamespace(**fields))
    assert "'degree' null" in text and "1/(19+1) = 0.05" in text and "within-layer" not in text
