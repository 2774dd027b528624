"""Planted-module generator and calibration runs (modularity.studies.calibration)."""

import numpy as np
import pytest
import torch

from modularity.core.graph import trace
from modularity.errors import ModularityError
from modularity.studies.calibration import PlantedModules, recovery_run


def test_concat_mode_exposes_true_branches_in_the_graph():
    net = PlantedModules(n_modules=3, width=4, n_out=6, signal=1.0, seed=0)
    g = trace(net, (8, 8))
    assert np.array_equal(g.layers["block"].branches, net.truth)


def test_signal_scales_exactly_the_diagonal_blocks():
    a = PlantedModules(signal=0.0, seed=5, mode="hidden").head.weight
    b = PlantedModules(signal=2.0, seed=5, mode="hidden")
    ratio = (b.head.weight / a)[:, :, 0, 0]
    truth = torch.as_tensor(b.truth)
    expected = torch.where(torch.arange(32)[:, None] // 8 == truth[None, :], 3.0, 1.0)
    assert torch.allclose(ratio, expected)


def test_hidden_mode_permutes_module_membership_reproducibly():
    a, b = PlantedModules(mode="hidden", seed=1), PlantedModules(mode="hidden", seed=1)
    assert np.array_equal(a.truth, b.truth) and not np.array_equal(a.truth, np.sort(a.truth))


def test_bad_arguments_raise():
    with pytest.raises(ModularityError, match="multiple"):
        PlantedModules(n_modules=3, n_out=32)
    with pytest.raises(ModularityError, match="mode"):
        PlantedModules(mode="grouped")


def test_strong_signal_is_recovered_and_significant():
    r = recovery_run(4.0, seed=0, n_permutations=19)
    assert r.ari == pytest.approx(1.0)
    # Label permutations resolve the p-value far below the 1/20 of 19 weight shuffles.
    assert r.p_values["recovery_ari"] < 1e-4


def test_hidden_modules_are_recovered_without_branch_labels():
    r = recovery_run(4.0, seed=0, mode="hidden", n_permutations=9)
    assert r.ari > 0.9 and r.p_values["recovery_ari"] is None


def test_null_network_p_values_are_not_concentrated_near_zero():
    p = [recovery_run(0.0, seed=s, mode="hidden", n_permutations=19).p_values["layer_ncut"] for s in range(12)]
    # Under the exact null each p is uniform on {1/20, ..., 1}: mean 0.525.
    assert 0.3 < np.mean(p) < 0.75
