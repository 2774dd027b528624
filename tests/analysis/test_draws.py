"""Null draws on the keyed route: the same numbers on every device, for any batch size, as the numpy twin."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from modularity.analysis import analyze_layer, matrix_statistics
from modularity.analysis.draws import DrawTask, expected_draws, keyed_route, prepared, run_draws
from modularity.backends import Backend
from modularity.core.engine.shuffle import twin_profile
from modularity.core.graph import trace
from modularity.core.keyed import draw_key
from modularity.core.magnitude import downstream_profile
from modularity.core.nulls import draw_rng, empirical_p, layer_rng
from modularity.errors import ModularityError
from modularity.settings import AnalysisSettings
from tests.nets import PlantedNet, grouped_net

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.fixture(scope="module")
def planted():
    return trace(PlantedNet(signal=0.6, seed=2).eval(), (16, 16))


def test_keyed_draws_equal_the_numpy_twin_and_give_its_p_value(planted):
    """Torch-built keyed draws re-fitted by the production method: the numpy twin's profiles give the same draws."""
    res = analyze_layer(planted, "block", n_permutations=8, seed=3, sequential_h=0, device="cpu")
    a = downstream_profile(planted, "block", "l1", "depthwise").matrix
    twin = []
    for i in range(8):
        profile = twin_profile(planted, "block", "l1", "depthwise", draw_key(3, "block", i))
        twin.append(matrix_statistics(profile, res.k, None, draw_rng(3, "block", i)).ncut)
    assert res.null_draws["ncut"] == pytest.approx(twin, rel=1e-9)
    assert res.structure.ncut.observed == matrix_statistics(a, res.k, None, layer_rng(3, "block")).ncut
    assert res.structure.ncut.p_value == pytest.approx(empirical_p(np.array(twin), res.structure.ncut.observed,
                                                                   "less"))


def test_the_observation_does_not_depend_on_the_route(planted):
    """The keyed route changes the null's draws, never the observed co-clustering or its statistics."""
    keyed = analyze_layer(planted, "block", n_permutations=3, seed=3, sequential_h=0)
    stream = analyze_layer(planted, "block", n_permutations=3, seed=3, sequential_h=0, null="shuffle-nonzero")
    assert keyed.clusters == stream.clusters and keyed.row_clusters == stream.row_clusters
    assert keyed.structure.ncut.observed == stream.structure.ncut.observed
    assert keyed.null_draws["ncut"] != stream.null_draws["ncut"]


class _Batches(Backend):
    """Draws in batches of six, in this process (run_draws batches twice the workers)."""

    workers = 3


@pytest.mark.parametrize("h", [0, 3])
def test_draws_do_not_depend_on_the_batch_size(planted, h):
    a = downstream_profile(planted, "block", "l1", "depthwise")
    task = DrawTask("block", tuple(a.consumers), "l1", "depthwise", "shuffle", 5, 4, None)
    observed = matrix_statistics(a.matrix, 4, None, np.random.default_rng(0))
    one = run_draws(planted, task, observed, 11, h)
    batched = run_draws(planted, task, observed, 11, h, _Batches(planted))
    assert [d.ncut for d in one] == [d.ncut for d in batched]
    assert [d.col_labels.tolist() for d in one] == [d.col_labels.tolist() for d in batched]


def test_keyed_draws_refit_branches_where_the_null_keeps_them():
    """Grouped consumers: the recovery is re-fitted on each keyed draw, as on the stream route."""
    g = trace(grouped_net(seed=1), (12, 12))
    res = analyze_layer(g, "0", n_permutations=5, seed=4, sequential_h=0, recovery_test="weight-shuffle")
    assert len(res.null_draws["ncut"]) == 5 and res.recovery is not None and len(res.null_draws["ari"]) == 5


def test_which_settings_take_the_keyed_route():
    assert keyed_route("shuffle", "depthwise") and keyed_route("shuffle", "none") and keyed_route("shuffle", "product")
    assert not keyed_route("shuffle", "signed")
    for null in ("shuffle-nonzero", "resample", "reinit", "degree"):
        assert not keyed_route(null, "depthwise")


def test_a_keyed_draw_depends_only_on_its_index(planted):
    a = downstream_profile(planted, "block", "l1", "depthwise")
    task = DrawTask("block", tuple(a.consumers), "l1", "depthwise", "shuffle", 5, 4, None)
    first = prepared(planted, task, fresh=True).keyed_profile(2)
    again = prepared(planted, task, fresh=True).keyed_profile(2)
    other = prepared(planted, task).keyed_profile(3)
    assert first.shape == a.matrix.shape and np.array_equal(first, again)
    assert not np.array_equal(first, other) and not np.allclose(first, a.matrix)


def test_device_is_a_recorded_setting():
    assert AnalysisSettings().device == "auto" and AnalysisSettings().record()["device"] == "auto"
    with pytest.raises(ModularityError, match="device"):
        AnalysisSettings(device="tpu")


def test_cuda_without_a_gpu_is_refused_before_tracing(monkeypatch):
    from modularity.analysis import analyze_model

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr("modularity.analysis.model.trace", lambda *a, **k: pytest.fail("traced"))
    with pytest.raises(ModularityError, match="no CUDA"):
        analyze_model(PlantedNet(signal=0.6, seed=2).eval(), AnalysisSettings(device="cuda", input_size=(16, 16)))


@cuda
def test_cpu_and_cuda_give_the_same_draws_and_p_values(planted):
    kw = dict(n_permutations=8, seed=3, sequential_h=0)
    cpu = analyze_layer(planted, "block", device="cpu", **kw)
    gpu = analyze_layer(planted, "block", device="cuda", **kw)
    assert gpu.null_draws["ncut"] == pytest.approx(cpu.null_draws["ncut"], rel=1e-9)
    assert gpu.structure.ncut.p_value == cpu.structure.ncut.p_value


def test_expected_draws_follows_the_share_of_draws_as_extreme_as_observed():
    """Progress only: about h / p draws in all, p read from the draws so far; the slowest statistic decides."""
    obs = SimpleNamespace(ncut=1.0, ari=0.5)
    half = [SimpleNamespace(ncut=x, ari=0.9) for x in (0.5, 2.0) * 6]  # 6 of 12 as extreme in n-cut
    assert expected_draws(obs, half, n=100, h=10, recovery=False) == 19  # ceil(10 * 13 / 7)
    assert expected_draws(obs, half[:4], n=100, h=10, recovery=False) == 100  # 2 of h = 10: too few to guess
    none = [SimpleNamespace(ncut=2.0, ari=0.1)] * 12  # nothing as extreme: a structured layer
    assert expected_draws(obs, none, n=100, h=10, recovery=False) == 100
    assert expected_draws(obs, none, n=30, h=0, recovery=False) == 30  # no stopping: every draw
    assert expected_draws(obs, half, n=100, h=10, recovery=True) == 19  # every ARI as extreme: n-cut decides
    low_ari = [SimpleNamespace(ncut=0.5, ari=0.1)] * 12  # n-cut always as extreme, ARI never
    assert expected_draws(obs, low_ari, n=100, h=10, recovery=True) == 100
