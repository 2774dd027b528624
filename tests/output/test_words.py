"""The report's words are built from the run: the method, the null, the control and every count are this run's."""

from __future__ import annotations

import dataclasses

import pytest

from modularity import analyze
from modularity.core.defaults import METHOD_NAMES, NULL_MODELS
from modularity.output.words import (
    METHOD_TEXT,
    MOSTLY_WITHIN,
    NULL_NOUN,
    NULL_TEXT,
    findings,
    method_sections,
    run_metadata,
)
from tests.nets import PlantedNet


def _text(result) -> str:
    sections = " ".join(p for _, paragraphs in method_sections(result) for p in paragraphs)
    meta = " ".join(f"{k}: {v}" for k, v in run_metadata(result))
    return " ".join(findings(result)) + " " + sections + " " + meta


def test_every_method_and_null_has_its_own_sentence():
    assert set(METHOD_TEXT) == set(METHOD_NAMES) and set(NULL_TEXT) == set(NULL_MODELS) == set(NULL_NOUN)
    assert len(set(METHOD_TEXT.values())) == len(METHOD_TEXT) and len(set(NULL_TEXT.values())) == len(NULL_TEXT)


@pytest.mark.parametrize("method, null", [("sklearn_scc", "degree"), ("dhillon_km1_cols_sv_r10", "resample")])
def test_changing_method_and_null_changes_the_words(method, null):
    net = PlantedNet(signal=1.0, seed=1).eval()
    result = analyze(net, layers="block", n_permutations=3, n_label_permutations=200, input_size=(8, 8),
                     method=method, null=null)
    text = _text(result)
    assert METHOD_TEXT[method] in text and NULL_TEXT[null] in text and f"'{null}' null" in text
    for other in set(METHOD_NAMES) - {method}:
        assert METHOD_TEXT[other] not in text
    for other in set(NULL_MODELS) - {null}:
        assert NULL_TEXT[other] not in text
    assert "SpectralCoclustering" not in text or method == "sklearn_scc"
    # the figures' captions and titles name the same null
    from modularity.arrays import figure_arrays
    from modularity.core.graph import trace
    from modularity.output.figures import figure_infos
    from modularity.pipeline import profiles_of

    graph = trace(net, (8, 8))
    infos = figure_infos(result, figure_arrays(graph, result, profiles_of(graph, result)), featured=[0])
    captions = " ".join(info.caption for info in infos)
    assert NULL_NOUN[null] in captions and "shuffled" not in captions
    assert [i.draw.kwargs for i in infos if i.key.startswith("null:")] == [{"drawn": NULL_NOUN[null]}]


def test_the_default_run_names_the_default_method_and_the_shuffle_null(planted):
    result, _ = planted()
    text = _text(result)
    assert METHOD_TEXT[result.method] in text and NULL_TEXT["shuffle"] in text
    assert "SpectralCoclustering" not in text and "degree" not in text.split("null model: ")[1].split(" ")[0]


def test_groups_connect_mostly_within_themselves_only_where_they_hold_most_of_the_weight(planted):
    result, _ = planted()
    for layer in result.layers:
        layer.structure.ncut.p_value_bh = 0.001
        layer.structure.ncut.effect = 0.2
    for share, claimed in ((0.68, True), (0.32, False)):
        for layer in result.layers:
            layer.structure = dataclasses.replace(layer.structure, within_share=share)
        text = " ".join(findings(result))
        assert ("connect mostly within themselves" in text) is claimed, share
        assert ("most of the weight still crosses between the groups" in text) is (not claimed)
        assert f"{share:.0%}" in text and MOSTLY_WITHIN == 0.5


def test_every_labelled_layer_gets_its_verdict_and_scale_control(planted):
    result, _ = planted()
    text = " ".join(findings(result))
    labelled = [layer for layer in result.layers if layer.recovery is not None]
    assert labelled and "Detectability" in text and "Scale control" in text
    for layer in labelled:
        assert layer.verdict is not None and layer.name in text.split("Detectability", 1)[1]


def test_a_run_without_control_says_there_is_no_baseline(planted):
    result, _ = planted()
    assert result.control is None
    text = " ".join(findings(result))
    assert "No random-init control was run" in text or "random initial weights" in text


def test_featured_layers_are_chosen_by_effect_among_significant_layers(planted):
    from modularity.output.figures import featured_layers

    result, _ = planted()
    stem, conv, block = result.layers
    for layer, p, effect, z in ((stem, 0.001, 0.009, -29.0), (conv, 0.01, 0.30, -3.0), (block, 0.5, 0.9, -1.0)):
        layer.structure.ncut.p_value_bh, layer.structure.ncut.effect, layer.structure.ncut.z = p, effect, z
    block.recovery.p_value_bh = 0.5
    assert featured_layers(result, n=1) == [1]  # the visible effect, not the precise tiny one (large z)
    assert featured_layers(result, n=2) == [0, 1]  # significant ones before a larger but non-significant effect
