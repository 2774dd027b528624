import json

import numpy as np
import pytest
import torch
import torchvision
from torch import nn

from modularity import analyze
from modularity.analysis import analyze_layer, select_layers
from modularity.core.graph import trace
from modularity.errors import ModularityError
from tests.nets import PlantedNet, grouped_net


def test_planted_branches_are_recovered_beyond_the_null():
    g = trace(PlantedNet(signal=3.0, seed=1), (8, 8))
    res = analyze_layer(g, "block", n_permutations=19, seed=0, n_label_permutations=20_000)
    assert res.k == 4 and res.k_source == "branches"
    assert res.recovery.ari >= 0.95
    # Dense consumers: the exact null is the label permutation of the table, resolved beyond 1/20.
    assert res.recovery.method == "label-permutation"
    assert res.recovery.p_value == pytest.approx(1 / 20_001) and res.recovery.n_permutations == 20_000


def test_label_permutation_p_values_need_no_refit(monkeypatch):
    import modularity.analysis.statistics as statistics

    calls = []
    real = statistics.cocluster

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(statistics, "cocluster", counting)
    g = trace(PlantedNet(signal=1.0, seed=1), (8, 8))
    res = analyze_layer(g, "block", n_permutations=7, seed=0, sequential_h=0)
    assert res.structure.ncut.n == 7 and res.recovery.method in ("label-permutation", "exact")
    # The observation and its unit-norm control, then one co-clustering per draw: no control re-fit per draw.
    assert len(calls) == 2 + 7


def test_grouped_consumers_keep_the_weight_shuffle_null():
    from modularity.analysis import units_exchangeable

    g = trace(grouped_net(groups=4, width=32), (8, 8))
    assert not units_exchangeable(g, "0") and units_exchangeable(g, "2")
    assert analyze_layer(g, "0", n_permutations=5).recovery.method == "sequential"


def test_sequential_stopping_ends_an_unstructured_layer_early():
    g = trace(PlantedNet(signal=0.0, seed=4), (8, 8))
    res = analyze_layer(g, "stem", n_permutations=200, seed=1, sequential_h=5)
    assert res.structure.ncut.n < 200 and res.structure.ncut.method == "sequential"
    assert res.structure.ncut.p_value == pytest.approx(5 / res.structure.ncut.n)


def test_draws_do_not_depend_on_how_many_ran_before():
    g = trace(PlantedNet(signal=0.5, seed=3), (8, 8))
    short = analyze_layer(g, "stem", n_permutations=3, seed=2, sequential_h=0)
    long = analyze_layer(g, "stem", n_permutations=6, seed=2, sequential_h=0)
    assert long.null_draws["ncut"][:3] == short.null_draws["ncut"]


def test_unplanted_weights_give_chance_false_positive_rate():
    p_values = []
    for seed in range(20):
        g = trace(PlantedNet(signal=0.0, seed=100 + seed), (8, 8))
        p_values.append(analyze_layer(g, "block", n_permutations=1, seed=seed,
                                      n_label_permutations=2000).recovery.p_value)
    p_values = np.array(p_values)
    # Binomial(20, 0.05): P(X >= 4) = 0.016, so more than 3 rejections would be suspicious.
    assert np.sum(p_values <= 0.05) <= 3
    assert 0.25 <= p_values.mean() <= 0.75


def test_grouped_conv_groups_are_recovered_exactly():
    g = trace(grouped_net(groups=4, width=32), (8, 8))
    res = analyze_layer(g, "0", n_permutations=5, sequential_h=0)
    assert res.recovery.ari == 1.0 and res.k == 4
    # The groups are imposed by the architecture, so shuffled weights recover them too.
    assert res.recovery.null_ari_mean == pytest.approx(1.0)


def test_results_are_reproducible_with_a_seed():
    g = trace(PlantedNet(signal=0.5, seed=3), (8, 8))
    a = analyze_layer(g, "block", n_permutations=5, seed=7)
    b = analyze_layer(g, "block", n_permutations=5, seed=7)
    assert a.clusters == b.clusters and a.recovery == b.recovery and a.structure == b.structure


class _DeadNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 6, 1)
        self.b = nn.Conv2d(6, 4, 1)
        self.one = nn.Conv2d(4, 1, 1)
        self.c = nn.Conv2d(1, 3, 1)
        with torch.no_grad():
            self.b.weight[:, :2] = 0  # units 0 and 1 of a are dead downstream
            self.c.weight.zero_()  # the one-unit layer's profile is all zero

    def forward(self, x):
        return self.c(self.one(self.b(self.a(x))))


def test_dead_units_one_unit_layers_and_zero_matrices_give_no_nan():
    res = analyze(_DeadNet(), n_permutations=3, k=None)
    layer_a, layer_one = res.layer("a"), res.layer("one")
    assert layer_a.clusters[:2] == [-1, -1] and layer_a.n_dead == 2
    assert layer_one.clusters == [-1] and layer_one.n_units == 1
    text = json.dumps(res.to_dict(), allow_nan=False)  # raises on NaN or infinity
    assert "NaN" not in text


def test_k_larger_than_the_live_units_is_refused():
    with pytest.raises(ModularityError, match=r"k = 50 is outside 2\.\.4 for layer 'b'"):
        analyze(_DeadNet(), layers="b", n_permutations=0, k=50)


def test_a_bad_regex_is_one_clear_error():
    g = trace(torchvision.models.alexnet(weights=None))
    with pytest.raises(ModularityError, match="not a valid regular expression"):
        select_layers(g, "/[/")


def test_layers_pattern_matching_nothing_lists_the_layers():
    g = trace(torchvision.models.alexnet(weights=None))
    with pytest.raises(ModularityError, match=r"matches no layer; available layers: features\.0, features\.3"):
        select_layers(g, "nonexistent*")


def test_layers_pattern_accepts_globs_and_regex():
    g = trace(torchvision.models.alexnet(weights=None))
    assert select_layers(g, "features.[03]") == ["features.0", "features.3"]
    assert select_layers(g, "/^classifier/") == ["classifier.1", "classifier.4"]


def test_negative_permutations_are_refused():
    with pytest.raises(ModularityError, match="permutations"):
        analyze(_DeadNet(), n_permutations=-1)


def test_summary_has_the_documented_keys():
    res = analyze(torchvision.models.alexnet(weights=None), layers="features.0", n_permutations=2)
    d = res.to_dict()
    assert {"model", "weights", "settings", "layers"} <= set(d) and d["settings"]["seed"] == 0
    layer = d["layers"][0]
    assert {"name", "n_units", "consumers", "branches", "singular_values", "clusters", "recovery"} <= set(layer)
    assert layer["consumers"] == ["features.3"] and layer["recovery"] is None
    assert layer["singular_values"] == sorted(layer["singular_values"], reverse=True)


@pytest.mark.slow
def test_worker_processes_give_the_same_result():
    model = PlantedNet(signal=1.0, seed=5)
    one = analyze(model, n_permutations=4, seed=3)
    two = analyze(model, n_permutations=4, seed=3, jobs=2)
    assert [a.clusters for a in one.layers] == [b.clusters for b in two.layers]
    assert [a.structure for a in one.layers] == [b.structure for b in two.layers]


def test_degree_null_refits_recovery_and_keeps_margins():
    from modularity.analysis import units_exchangeable

    g = trace(PlantedNet(signal=2.0, seed=1), (8, 8))
    assert not units_exchangeable(g, "block", null="degree")  # column totals are kept: units are not exchangeable
    res = analyze_layer(g, "block", n_permutations=6, seed=0, null="degree", sequential_h=0)
    assert res.recovery.method == "weight-shuffle" and res.structure.ncut.n == 6


def test_modules_that_cannot_be_analysed_are_one_clear_error():
    with torch.device("meta"):
        meta = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Conv2d(4, 4, 3))
    with pytest.raises(ModularityError, match="meta device"):
        analyze(meta, n_permutations=0, input_size=(16, 16))
    nan = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Conv2d(4, 4, 3))
    with torch.no_grad():
        nan[1].weight[0, 0, 0, 0] = float("inf")
    with pytest.raises(ModularityError, match="layer '1' has 1 NaN/Inf weight values"):
        analyze(nan, n_permutations=0, input_size=(16, 16))


def test_a_submodule_name_that_is_not_an_identifier_is_one_clear_error():
    class Quoted(nn.Module):
        def __init__(self):
            super().__init__()
            self.add_module('a"b', nn.Conv2d(3, 4, 3))

        def forward(self, x):
            return getattr(self, 'a"b')(x)

    with pytest.raises(ModularityError, match="could not trace Quoted"):
        analyze(Quoted(), n_permutations=0, input_size=(16, 16))


@pytest.mark.slow
def test_draws_shared_by_worker_processes_give_the_same_result():
    model = PlantedNet(signal=0.5, seed=6)
    one = analyze(model, layers="block", n_permutations=9, seed=2, input_size=(8, 8))
    two = analyze(model, layers="block", n_permutations=9, seed=2, input_size=(8, 8), jobs=2)
    assert one.layers[0].null_draws == two.layers[0].null_draws
    assert one.layers[0].structure == two.layers[0].structure and one.layers[0].recovery == two.layers[0].recovery


def test_a_module_with_nothing_to_analyse_is_refused():
    with pytest.raises(ModularityError, match="has no layer to analyse"):
        analyze(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()), n_permutations=0, input_size=(16, 16))


def test_another_method_can_be_chosen_and_is_recorded():
    res = analyze(PlantedNet(signal=2.0, seed=1), layers="block", n_permutations=2, method="sklearn_scc",
                  input_size=(8, 8))
    assert res.method == "sklearn_scc" and res.layers[0].recovery.ari > 0.5
    assert min(res.layers[0].row_clusters) >= 0
    with pytest.raises(ModularityError, match=r"method \(--method\) must be one of"):
        analyze(PlantedNet(), layers="block", n_permutations=0, method="nope", input_size=(8, 8))


class _DepthwiseFlattenNet(nn.Module):
    """conv -> depthwise conv -> 1x1 conv -> flatten -> linear: expansion and combined flatten columns."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 8, 3, padding=1)
        self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.bn = nn.BatchNorm2d(8)
        self.pw = nn.Conv2d(8, 6, 1)
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.fc = nn.Linear(6 * 4, 5)

    def forward(self, x):
        x = torch.relu(self.a(x))
        x = torch.relu(self.bn(self.dw(x)))
        return self.fc(torch.flatten(self.pool(self.pw(x)), 1))


def test_profile_builder_rebuilds_downstream_profiles_to_the_bit():
    from modularity.core.magnitude import ProfileBuilder, downstream_profile, layer_magnitude

    torch.manual_seed(0)
    graphs = [trace(PlantedNet(signal=1.0, seed=2).eval(), (8, 8)), trace(grouped_net(seed=1), (12, 12)),
              trace(_DepthwiseFlattenNet().eval(), (8, 8))]
    for g in graphs:
        for name in g.producer_names():
            for expand in ("none", "depthwise", "product"):
                for norm in ("l1", "l2", "max"):
                    ref = downstream_profile(g, name, norm, expand)
                    builder = ProfileBuilder(g, name, norm, expand)
                    assert builder.consumers == ref.consumers
                    rebuilt = builder(lambda c, g=g, norm=norm: layer_magnitude(g, c, norm))
                    assert np.array_equal(rebuilt, ref.matrix), (name, expand, norm)


@pytest.mark.parametrize("null", ["shuffle", "resample"])
def test_prepared_null_draws_equal_the_general_route(null):
    """The per-layer preparation (|W| read once, profile layout once) changes no draw: same profile to the bit."""
    from modularity.analysis.draws import DrawTask as _DrawTask
    from modularity.analysis.draws import null_profile as _null_profile
    from modularity.analysis.draws import prepared as _prepared
    from modularity.core.magnitude import downstream_profile
    from modularity.core.nulls import draw_rng

    for g, name in ((trace(PlantedNet(signal=1.0, seed=2).eval(), (8, 8)), "block"),
                    (trace(grouped_net(seed=1), (12, 12)), "0"),
                    (trace(_DepthwiseFlattenNet().eval(), (8, 8)), "a")):
        consumers = tuple(downstream_profile(g, name, "l1", "depthwise").consumers)
        task = _DrawTask(name, consumers, "l1", "depthwise", null, 5, 2, None)
        prepared = _prepared(g, task, fresh=True)
        for i in range(4):
            expected = _null_profile(g, name, list(consumers), "l1", "depthwise", null, draw_rng(5, name, i))
            assert np.array_equal(prepared.profile(g, draw_rng(5, name, i)), expected)


def test_prepared_draws_follow_weights_changed_between_analyses():
    """Weights changed in place between two analyses of one graph: the second draws from the new weights."""
    net = PlantedNet(signal=1.0, seed=2).eval()
    g = trace(net, (8, 8))
    first = analyze_layer(g, "block", n_permutations=4, seed=1, sequential_h=0)
    with torch.no_grad():
        net.head.weight.mul_(torch.linspace(0.1, 3.0, net.head.weight.shape[0])[:, None, None, None])
    second = analyze_layer(g, "block", n_permutations=4, seed=1, sequential_h=0)
    fresh = analyze_layer(trace(net, (8, 8)), "block", n_permutations=4, seed=1, sequential_h=0)
    assert second.null_draws == fresh.null_draws
    assert second.null_draws != first.null_draws


def test_a_profile_dropped_during_the_draws_is_rebuilt_the_same(monkeypatch):
    import modularity.analysis.layer as analysis_module

    model = PlantedNet(signal=0.5, seed=3).eval()
    kwargs = dict(layers="block", n_permutations=4, seed=1, input_size=(8, 8), sequential_h=0)
    kept = analyze(model, **kwargs).to_dict()
    monkeypatch.setattr(analysis_module, "_KEEP_PROFILE_BYTES", 0)  # every profile is dropped and rebuilt
    rebuilt = analyze(model, **kwargs)
    assert rebuilt.layers[0].profile is not None
    kept.pop("runtime_s"), kept.pop("versions", None)
    again = rebuilt.to_dict()
    again.pop("runtime_s"), again.pop("versions", None)
    assert again == kept


def test_every_layer_has_a_detectability_verdict():
    """Planted branches far above the limit are 'detectable and recovered'; a layer without branches gets the
    noise-edge verdict, and random weights have no structure above the edge."""
    g = trace(PlantedNet(signal=3.0, seed=1).eval(), (8, 8))
    strong = analyze_layer(g, "block", n_permutations=0, n_label_permutations=2000)
    assert strong.detectability.ratio > 1 and strong.verdict == "detectable and recovered"
    assert strong.detectability.expected_ari > 0.5 and strong.recovery.ari >= strong.detectability.expected_ari_low
    stem = analyze_layer(g, "stem", n_permutations=0)
    assert stem.detectability.ratio is None and stem.verdict in ("structure above the noise edge",
                                                                 "no structure above the noise edge")
    flat = analyze_layer(trace(PlantedNet(signal=0.0, seed=1).eval(), (8, 8)), "block", n_permutations=0,
                         n_label_permutations=2000)
    assert flat.detectability.ratio < 1 and flat.verdict.startswith("below the limit")
    assert flat.row().verdict == "below_limit" and strong.row().verdict == "recovered"


def test_the_progress_bar_counts_each_layers_estimated_work_up_to_its_total(monkeypatch):
    import tqdm.auto

    from modularity.analysis.model import analyze_model, layer_work
    from modularity.settings import AnalysisSettings

    closed = []

    class Recording(tqdm.auto.tqdm):
        def close(self):
            closed.append((self.n, self.total))
            super().close()

    monkeypatch.setattr(tqdm.auto, "tqdm", Recording)
    net = PlantedNet(seed=2)
    graph = trace(net, (8, 8))
    settings = AnalysisSettings(n_permutations=3, n_label_permutations=100)
    res = analyze_model(net, settings, graph=graph, progress=True)
    work = [layer_work(graph, layer.name, settings) for layer in res.layers]
    assert len(work) >= 2 and set(closed) == {(sum(work), sum(work))}  # tqdm may close a bar twice
    assert len(set(work)) > 1  # weighted by each layer's cost, not a count of layers
    assert layer_work(graph, res.layers[0].name, settings.replace(n_permutations=99)) > work[0]  # and its draws


def test_the_progress_bar_moves_per_draw_and_drops_draws_that_sequential_stopping_saved(monkeypatch):
    """Each null draw moves the bar; a layer that will stop early takes its unmade draws out of the total as its
    draws show it (a jump of the bar would read as speed and shorten the ETA), and the bar still ends full."""
    import tqdm.auto

    from modularity.analysis.model import analyze_model, layer_work
    from modularity.settings import AnalysisSettings

    bars = []

    class Recording(tqdm.auto.tqdm):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.steps: list[int] = []
            self.totals: list[tuple[int, int]] = []
            bars.append(self)

        def update(self, n=1):
            self.steps.append(n)
            out = super().update(n)
            self.totals.append((self.n, self.total))
            return out

    monkeypatch.setattr(tqdm.auto, "tqdm", Recording)
    net = PlantedNet(signal=0.0, seed=1)  # no structure: sequential stopping ends the draws early
    graph = trace(net, (8, 8))
    settings = AnalysisSettings(n_permutations=60, sequential_h=2, n_label_permutations=100)
    res = analyze_model(net, settings, graph=graph, progress=True)
    made = [len(layer.null_draws["ncut"]) for layer in res.layers]
    assert any(m < settings.n_permutations for m in made)  # the case under test
    bar = bars[0]
    planned = sum(layer_work(graph, layer.name, settings) for layer in res.layers)
    assert bar.n == bar.total < planned
    assert len([s for s in bar.steps if s > 0]) >= sum(made)  # one step per draw at least
    first_layer = layer_work(graph, res.layers[0].name, settings)
    # the total drops while the first layer's draws run, before the layer ends, as they show it will stop early
    assert any(total < planned and n < first_layer for n, total in bar.totals)
