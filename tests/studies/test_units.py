"""First-layer unit properties and the 'without branches' analysis (modularity.studies.units)."""

import numpy as np
import pytest
import torch
import torchvision
from torch import nn

from modularity.core.graph import trace
from modularity.errors import ModularityError
from modularity.studies.units import colour_score, dominant_frequency, first_layer_analysis, first_layers


def test_grey_filter_scores_zero_and_opponent_filter_scores_one():
    rng = np.random.default_rng(0)
    spatial = rng.standard_normal((5, 5))
    grey = np.stack([spatial] * 3)[None]
    opponent = np.stack([spatial, -spatial, np.zeros((5, 5))])[None]
    assert colour_score(np.concatenate([grey, opponent])) == pytest.approx([0.0, 1.0])


def test_random_filters_score_two_thirds_on_average():
    w = np.random.default_rng(1).standard_normal((2000, 3, 3, 3))
    assert colour_score(w).mean() == pytest.approx(2 / 3, abs=0.01)


def test_colour_score_rejects_non_rgb_weights():
    with pytest.raises(ModularityError, match="units, 3, kh, kw"):
        colour_score(np.zeros((4, 8, 3, 3)))


@pytest.mark.parametrize("period, expected", [(2, 0.5), (4, 0.25), (8, 0.125)])
def test_dominant_frequency_of_stripes(period, expected):
    x = np.arange(16)
    stripes = np.cos(2 * np.pi * x / period)[None, :] * np.ones((16, 1))
    w = np.stack([stripes] * 3)[None]
    assert dominant_frequency(w, pad=16)[0] == pytest.approx(expected)


def test_constant_filter_has_zero_frequency():
    assert dominant_frequency(np.ones((1, 3, 7, 7)))[0] == 0.0


def test_first_layers_finds_the_rgb_reader():
    g = trace(torchvision.models.alexnet(weights=None), (224, 224))
    assert first_layers(g) == ["features.0"]


class _ColourNet(nn.Module):
    """conv1 has grey and colour filters; conv2 reads colour units much more strongly in its first half."""

    def __init__(self, seed: int = 0, signal: float = 4.0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.conv1 = nn.Conv2d(3, 24, 5)
        self.conv2 = nn.Conv2d(24, 32, 3)
        with torch.no_grad():
            spatial = torch.randn(24, 1, 5, 5, generator=g)
            mix = torch.rand(24, generator=g)  # 0 = grey, 1 = opponent
            grey = torch.ones(3) / 3 ** 0.5
            opp = torch.tensor([1.0, -1.0, 0.0]) / 2 ** 0.5
            chans = (1 - mix)[:, None] * grey + mix[:, None] * opp
            self.conv1.weight.copy_(spatial * chans[:, :, None, None])
            w2 = torch.randn(32, 24, 3, 3, generator=g).abs() * 0.1
            score = torch.as_tensor(colour_score(self.conv1.weight), dtype=torch.float32)
            w2[:16] *= 1 + signal * score[None, :, None, None]
            self.conv2.weight.copy_(w2)

    def forward(self, x):
        return self.conv2(torch.relu(self.conv1(x)))


def test_planted_colour_factor_is_found_with_a_small_permutation_p():
    g = trace(_ColourNet(), (16, 16))
    res = first_layer_analysis(g, n_permutations=199, seed=0)
    assert res.layer == "conv1" and len(res.colour) == 24
    assert abs(res.best["colour"]["spearman"]) > 0.8
    assert res.best["colour"]["p_max"] == pytest.approx(1 / 200)


def test_without_signal_the_colour_factor_is_not_significant():
    g = trace(_ColourNet(signal=0.0, seed=3), (16, 16))
    res = first_layer_analysis(g, n_permutations=199, seed=0)
    assert res.best["colour"]["p_max"] > 0.05


def test_permutation_p_values_are_reproducible_and_in_range():
    g = trace(_ColourNet(), (16, 16))
    a = first_layer_analysis(g, n_permutations=50, seed=1)
    b = first_layer_analysis(g, n_permutations=50, seed=1)
    assert [c.p_spearman for c in a.correlations] == [c.p_spearman for c in b.correlations]
    assert all(1 / 51 <= c.p_spearman <= 1 and c.p_max >= c.p_spearman for c in a.correlations)


def test_expanded_profile_reaches_through_the_bottleneck():
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 4, 1), nn.ReLU(), nn.Conv2d(4, 16, 3))
    g = trace(model, (16, 16))
    res = first_layer_analysis(g, n_permutations=0)
    assert res.consumers == ["4 <- 2"]
    assert all(c.p_spearman is None for c in res.correlations)


def test_network_without_rgb_reader_is_refused():
    g = trace(nn.Sequential(nn.Conv2d(1, 4, 3)), (8, 8), in_channels=1)
    with pytest.raises(ModularityError, match="RGB"):
        first_layer_analysis(g)
