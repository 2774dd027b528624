"""The torch engine for null draws (modularity.core.engine) against its numpy twins, across batches and devices."""

import numpy as np
import pytest
import torch
from torch import nn

from modularity.core.engine import NullEngine, resolve_device, scores, sequential_draws, spectra
from modularity.core.engine import kmeans as tk
from modularity.core.engine.null import DrawBatch
from modularity.core.engine.shuffle import ShuffledProfiles, twin_profile
from modularity.core.engine.twin import twin_statistics
from modularity.core.graph import trace
from modularity.core.keyed import OBSERVED, KeyedUniforms, draw_key
from modularity.core.metrics import adjusted_rand, normalized_mutual_info
from modularity.core.spectral import bipartite_ncut, degree_normalised, kmeans, top_singular
from modularity.errors import ModularityError
from tests.nets import PlantedNet, TinyEncoder, grouped_net

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


class _Flatten(nn.Module):
    """conv -> BN -> conv -> pool -> flatten -> linear -> linear: a linear layer reading channels at 9 positions."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 6, 3),
                                      nn.ReLU(), nn.AdaptiveAvgPool2d(3))
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(54, 10), nn.ReLU(), nn.Linear(10, 5))

    def forward(self, x):
        return self.classifier(self.features(x))


class _Depthwise(nn.Module):
    """A 1x1 conv read directly and through a depthwise conv with batch norm (expand='depthwise')."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 8, 1)
        self.dw = nn.Conv2d(8, 8, 3, groups=8, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.pw = nn.Conv2d(8, 12, 1)
        self.b2 = nn.Conv2d(8, 4, 3)

    def forward(self, x):
        a = self.a(x)
        return self.pw(self.bn(self.dw(a))).mean((2, 3)) + self.b2(a).mean((2, 3)).repeat(1, 3)


def _scaled(model: nn.Module) -> nn.Module:
    """Non-trivial batch-norm and layer-norm scales, so row and column scales are folded."""
    torch.manual_seed(0)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 2.0)
            if isinstance(m, nn.LayerNorm):
                m.weight.uniform_(-2.0, 2.0)
    return model.eval()


@pytest.fixture(scope="module")
def graphs():
    torch.manual_seed(1)
    nets = [(_Flatten(), (12, 12)), (_Depthwise(), (8, 8)), (TinyEncoder(), (4, 4)),
            (PlantedNet(signal=1.0, seed=2), (16, 16)), (grouped_net(seed=1), (16, 16))]
    return [trace(_scaled(m), size) for m, size in nets]


# ---------------------------------------------------------------- shuffled profiles

@pytest.fixture(params=["host", "feistel"])
def permutations(request, monkeypatch):
    """Both kinds of keyed permutation: drawn on the host (these small layers' own) and by the Feistel network."""
    if request.param == "feistel":
        monkeypatch.setattr("modularity.core.keyed.HOST_MAX", 0)
    return request.param


@pytest.mark.parametrize("norm", ["l1", "l2", "max"])
@pytest.mark.parametrize("expand", ["none", "depthwise", "product"])
def test_shuffled_profiles_equal_the_numpy_twin(graphs, norm, expand, permutations):
    for g in graphs:
        for p in g.producer_names():
            key = draw_key(3, p, 5)
            got = ShuffledProfiles(g, p, norm, expand, chunk=37)([key])[0].numpy()
            want = twin_profile(g, p, norm, expand, key)
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15 * np.abs(want).max(), err_msg=p)


def test_a_batch_of_draws_gives_each_draw_its_own_profile(graphs, permutations):
    for g in graphs:
        for p in g.producer_names():
            keys = [draw_key(2, p, i) for i in range(5)]
            batch = ShuffledProfiles(g, p, "l2", "depthwise")(keys)
            for b, key in enumerate(keys):
                one = ShuffledProfiles(g, p, "l2", "depthwise")([key])[0].numpy()
                np.testing.assert_allclose(batch[b].numpy(), one, rtol=1e-13, atol=1e-300)


@pytest.mark.parametrize("norm", ["l1", "l2", "max"])
def test_the_observed_profile_is_the_same_scatter_unshuffled(graphs, norm):
    from modularity.core.magnitude import downstream_profile

    for g in graphs:
        for p in g.producer_names():
            want = downstream_profile(g, p, norm, "depthwise").matrix
            got = ShuffledProfiles(g, p, norm, "depthwise", chunk=5).observed().numpy()
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15 * np.abs(want).max(), err_msg=p)


def test_worker_threads_give_the_same_profiles_to_the_bit(graphs, permutations):
    for g in graphs[:3]:
        for p in g.producer_names():
            key = draw_key(1, p, 0)
            one = ShuffledProfiles(g, p, "l1", "depthwise", chunk=7)([key])
            many = ShuffledProfiles(g, p, "l1", "depthwise", chunk=7, workers=3)([key])
            assert torch.equal(one, many), p


def test_a_draw_is_a_permutation_of_the_weights(graphs):
    """Shuffling keeps the multiset of entries: a 1x1 consumer's profile holds the same |w| values, moved."""
    g = graphs[3]  # PlantedNet: block is read by the 1x1 head only
    key = draw_key(0, "block", 2)
    drawn = ShuffledProfiles(g, "block", "l1", "none")([key])[0].numpy()
    observed = np.abs(g.weight("head").reshape(g.weight("head").shape[0], -1).numpy().astype(np.float64))
    assert np.array_equal(np.sort(drawn.ravel()), np.sort(observed.ravel()))
    assert not np.array_equal(drawn, observed)


# ---------------------------------------------------------------- steps against numpy

def test_top_singular_triplets_match_numpy(monkeypatch):
    monkeypatch.setattr(spectra, "KRYLOV_MIN", {"cpu": 1000})  # the 1100-wide case by block Krylov
    rng = np.random.default_rng(0)
    for m, n in [(40, 30), (30, 70), (1200, 1100)]:
        a = rng.random((m, n)) * rng.random((m, 1))
        an, dr, dc = degree_normalised(a)
        u0, s0, v0 = top_singular(an, 12)
        u, s, v = spectra.top_singular(torch.from_numpy(an)[None], 12, "torch",
                                       (torch.from_numpy(dr)[None], torch.from_numpy(dc)[None]))
        np.testing.assert_allclose(s[0].numpy(), s0, rtol=1e-9)
        # vectors up to sign (all singular values are distinct here)
        for x, x0 in ((u[0].numpy(), u0), (v[0].numpy(), v0)):
            np.testing.assert_allclose(np.abs(np.sum(x * x0, axis=0)), 1.0, atol=1e-7)


def test_noise_edge_matches_numpy():
    from modularity.core.methods import noise_edge

    a = np.random.default_rng(1).random((50, 20))
    an, dr, dc = degree_normalised(a)
    got = spectra.noise_edge(*(torch.from_numpy(x)[None] for x in (an, dr, dc)))
    assert float(got[0]) == pytest.approx(noise_edge(an, dr, dc), rel=1e-12)


def test_batched_kmeans_gives_numpys_labels_for_the_same_uniforms():
    rng = np.random.default_rng(2)
    for n, d, k in [(60, 3, 4), (200, 5, 7), (9, 2, 9)]:
        x = rng.normal(size=(n, d))
        u = rng.random((10, k))
        want = kmeans(x, k, KeyedUniforms(u), n_init=10)
        got = tk.kmeans(torch.from_numpy(x)[None], k, torch.from_numpy(u)[None])[0].numpy()
        assert adjusted_rand(want, got) == 1.0


def test_batched_scores_match_numpy():
    rng = np.random.default_rng(3)
    a = rng.random((4, 30, 20))
    rows, cols = rng.integers(-1, 4, (4, 30)), rng.integers(-1, 4, (4, 20))
    got = scores.bipartite_ncut(torch.from_numpy(a), torch.from_numpy(rows), torch.from_numpy(cols))
    for i in range(4):
        assert float(got[i]) == pytest.approx(bipartite_ncut(a[i], rows[i], cols[i]), rel=1e-12)
    truth = rng.integers(0, 3, 20)
    ari, nmi = scores.ari_nmi(torch.from_numpy(truth), torch.from_numpy(cols))
    for i in range(4):
        live = cols[i] >= 0
        assert float(ari[i]) == pytest.approx(adjusted_rand(truth[live], cols[i][live]), abs=1e-12)
        assert float(nmi[i]) == pytest.approx(normalized_mutual_info(truth[live], cols[i][live]), abs=1e-12)


# ---------------------------------------------------------------- whole draws

def _engine(g, layer, k=4, branches=None, **kw):
    return NullEngine(g, layer, k=k, branches=branches, seed=3, device="cpu", **kw)


def _check_against_twin(g, layer, engine, batch, index_of_row):
    for row, index in enumerate(index_of_row):
        a = twin_profile(g, layer, "l1", "depthwise", draw_key(3, layer, index))
        want = twin_statistics(a, engine.k, engine.branches, engine.grids(index))
        assert np.array_equal(batch.col_labels[row], want["cols"])
        assert np.array_equal(batch.row_labels[row], want["rows"])
        assert batch.ncut[row] == pytest.approx(want["ncut"], rel=1e-10, abs=1e-12)
        np.testing.assert_allclose(batch.values(row), want["top"], rtol=1e-9)
        if engine.branches is not None:
            for key in ("ari", "nmi", "ari_unit_norm", "ari_column_norms"):
                assert getattr(batch, key)[row] == pytest.approx(want[key], abs=1e-12), key


@pytest.mark.parametrize("route", ["torch", "numpy"])
def test_draws_equal_the_numpy_twin(graphs, route):
    g = graphs[3]
    engine = _engine(g, "block", branches=g.layers["block"].branches, batch_size=3, route=route)
    _check_against_twin(g, "block", engine, engine.draws(range(5)), range(5))
    engine = _engine(g, "stem", k=3, route=route)
    _check_against_twin(g, "stem", engine, engine.draws([0, 4]), [0, 4])


def test_torch_and_numpy_kmeans_give_the_same_coclusters(graphs):
    from modularity.core.engine.cocluster import cocluster_adaptive

    g = graphs[0]
    p = ShuffledProfiles(g, "features.3", "l1", "depthwise")([draw_key(0, "x", i) for i in range(6)])
    u = torch.rand(6, 10, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    a = cocluster_adaptive(p, 3, u, 5, kmeans_backend="torch")
    b = cocluster_adaptive(p, 3, u, 5, kmeans_backend="numpy")
    assert torch.equal(a.cols, b.cols) and torch.equal(a.rows, b.rows)


@pytest.mark.parametrize("route", ["torch", "numpy"])
def test_draws_do_not_depend_on_the_batch_or_on_the_other_draws(graphs, route):
    g = graphs[4]  # grouped consumers
    runs = [_engine(g, "0", batch_size=b, route=route).draws(range(6)) for b in (1, 4, 6)]
    single = _engine(g, "0", route=route).draws([4])
    for other in runs[1:] + [single]:
        rows = range(6) if len(other) == 6 else [4]
        ref = runs[0]
        for j, i in enumerate(rows):
            assert np.array_equal(other.col_labels[j], ref.col_labels[i])
            assert other.ncut[j] == pytest.approx(ref.ncut[i], rel=1e-12, abs=1e-14)


def test_the_observation_goes_through_the_same_code(graphs):
    from modularity.core.magnitude import downstream_profile

    g = graphs[3]
    engine = _engine(g, "block", branches=g.layers["block"].branches)
    a = downstream_profile(g, "block", "l1", "depthwise").matrix
    obs = engine.observed(a)
    want = twin_statistics(a, 4, engine.branches, engine.grids(OBSERVED))
    assert np.array_equal(obs.col_labels[0], want["cols"])
    assert obs.ncut[0] == pytest.approx(want["ncut"], rel=1e-10)
    assert obs.ari[0] == pytest.approx(want["ari"], abs=1e-12)
    assert engine.observed(a, branches=None).ari is None


def test_a_dead_unit_is_left_out_of_its_own_draw():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 6, 1), nn.ReLU(), nn.Conv2d(6, 5, 1)).eval()
    with torch.no_grad():
        net[2].weight.zero_()
        net[2].weight[:, :3] = torch.rand(5, 3, 1, 1) + 0.1  # 15 non-zero entries of 30
    g = trace(net, (4, 4))
    engine = NullEngine(g, "0", k=2, seed=0, device="cpu", batch_size=8)
    batch = engine.draws(range(8))
    for i in range(8):
        a = twin_profile(g, "0", "l1", "depthwise", draw_key(0, "0", i))
        want = twin_statistics(a, 2, None, engine.grids(i))
        assert np.array_equal(batch.col_labels[i], want["cols"])
        assert np.array_equal(batch.row_labels[i], want["rows"])
        assert batch.ncut[i] == pytest.approx(want["ncut"], abs=1e-12)


def test_sequential_draws_stop_by_besag_clifford_whatever_the_batch(graphs):
    g = graphs[3]
    obs = DrawBatch(np.array([OBSERVED]), np.array([np.inf]), np.zeros((1, 20)), np.zeros((1, 32), dtype=int),
                    np.zeros((1, 32), dtype=int))  # every draw is at least as extreme: stop at the h-th
    for b in (1, 3, 16):
        got = sequential_draws(_engine(g, "block", batch_size=b), obs, 50, h=4)
        assert got.indices.tolist() == [0, 1, 2, 3]
    obs.ncut[0] = -np.inf  # none is: every draw is used
    assert len(sequential_draws(_engine(g, "block", batch_size=7), obs, 9, h=4)) == 9
    assert len(sequential_draws(_engine(g, "block"), obs, 0, h=4)) == 0


def test_unsupported_configurations_and_devices_are_refused(graphs):
    g = graphs[3]
    with pytest.raises(ModularityError, match="null 'degree'"):
        NullEngine(g, "block", k=2, null="degree", device="cpu")
    with pytest.raises(ModularityError, match="method"):
        NullEngine(g, "block", k=2, method="sklearn_scc", device="cpu")
    with pytest.raises(ModularityError, match="unknown device"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ModularityError, match="no CUDA"):
            resolve_device("cuda")
    assert resolve_device("cpu").type == "cpu"


# ---------------------------------------------------------------- devices

@cuda
def test_cpu_and_cuda_draw_the_same_null(graphs):
    for g, layer, k in ((graphs[3], "block", 4), (graphs[0], "features.3", 3), (graphs[4], "0", 4)):
        cpu = NullEngine(g, layer, k=k, seed=5, device="cpu").draws(range(6))
        gpu = NullEngine(g, layer, k=k, seed=5, device="cuda").draws(range(6))
        for i in range(6):
            assert adjusted_rand(cpu.col_labels[i], gpu.col_labels[i]) == 1.0
        np.testing.assert_allclose(gpu.ncut, cpu.ncut, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(gpu.top, cpu.top, rtol=1e-9)
