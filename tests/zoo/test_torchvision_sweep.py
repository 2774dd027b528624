"""Every torchvision classification architecture, traced and one layer analysed (weights none).

Each name of ``torchvision.models.list_models(module=torchvision.models)`` either traces
into a channel graph and has one producer layer analysed by :func:`modularity.analyze`,
or is refused up front with a one-line :class:`ModularityError` naming the construct
(``REFUSED``). docs/usage.md's "Supported architectures" list is this table.

Speed (80 architectures, about 4.5 minutes on two busy cores): the networks are built
with torch's weight initialisers turned off (drawing ~600 M random numbers for
regnet_y_128gf or vit_h_14 alone takes longer than tracing the rest). Parameters of up
to 2^18 elements (norm scales, biases, small kernels, ConvNeXt's layer scales) are
filled from a fixed random block before tracing, since the trace folds some of them;
larger ones only once the layer to analyse is chosen, for it and the layers that read
it (the trace needs only their shapes). Buffers a constructor computes (batch-norm
statistics, Swin's relative-position index) are left as built. Inputs are as small as
each architecture allows; ``analyze`` runs with ``n_permutations=0`` (no null draws).
"""

from __future__ import annotations

import contextlib
import math

import numpy as np
import pytest
import torch
import torchvision.models as tvm
from torch import nn

import modularity
from modularity.core.graph import ChannelGraph, trace
from modularity.errors import ModularityError

NAMES = sorted(tvm.list_models(module=tvm))

# Architectures refused up front, with the construct the message must name.
REFUSED: dict[str, str] = {}

# Keyword arguments for the constructor (a smaller image for ViT: it needs image_size divisible by its patch).
_KWARGS = {
    "googlenet": {"aux_logits": False, "transform_input": False, "init_weights": False},
    "inception_v3": {"aux_logits": False, "transform_input": False, "init_weights": False},
    "vit_b_16": {"image_size": 32}, "vit_l_16": {"image_size": 32}, "vit_h_14": {"image_size": 28},
    "vit_b_32": {"image_size": 64}, "vit_l_32": {"image_size": 64},
}
# Input sizes: the smallest each family takes (MaxViT's 7x7 window partitions need 224).
_SIZES = {"inception_v3": (96, 96), "maxvit_t": (224, 224), "vit_b_16": (32, 32), "vit_l_16": (32, 32),
          "vit_h_14": (28, 28), "vit_b_32": (64, 64), "vit_l_32": (64, 64)}
_DEFAULT_SIZE = (64, 64)
# Branch labels worth analysing first, when a layer has them.
_PREFERRED = ("heads", "split", "concat", "consumer_groups", "groups")


@pytest.fixture(autouse=True)
def _memory_returned():
    """Give the freed weights back to the system after each architecture.

    glibc keeps freed blocks under its (growing) mmap threshold in the heap, so without a trim the peak of
    the file was the sum of its largest models (5.4 GB against 2.7 GB for vit_h_14 alone).
    """
    yield
    import ctypes
    import ctypes.util
    import gc

    gc.collect()
    with contextlib.suppress(OSError, AttributeError, TypeError):  # not glibc: nothing to trim
        ctypes.CDLL(ctypes.util.find_library("c")).malloc_trim(0)


@contextlib.contextmanager
def _initialisers_off():
    """Turn torch.nn.init's in-place initialisers into no-ops (modules call them as ``init.<name>``)."""
    names = [n for n in dir(nn.init) if n.endswith("_") and not n.startswith("_")]
    saved = {n: getattr(nn.init, n) for n in names}
    try:
        for n in names:
            setattr(nn.init, n, lambda tensor, *args, **kwargs: tensor)
        yield
    finally:
        for n, fn in saved.items():
            setattr(nn.init, n, fn)


_BLOCK = torch.rand(2 * 1_048_573, generator=torch.Generator().manual_seed(0)) * 2 - 1
_LARGE = 1 << 18  # parameters with more elements are filled only where the analysis reads them


def _fill(k: int, name: str, p: torch.Tensor) -> None:
    """Fill parameter number ``k`` from the fixed block.

    Norm scales near one, biases zero, weights ~ U(+-1/sqrt(fan-in)).
    """
    flat = p.detach().view(-1)
    if p.dim() <= 1 and name.endswith("bias"):
        flat.zero_()
        return
    m = _BLOCK.numel() // 2
    start = (k * 7919) % m
    for i in range(0, flat.numel(), m):
        flat[i:i + m].copy_(_BLOCK[start:start + min(m, flat.numel() - i)])
    if p.dim() <= 1 and name.endswith("weight"):
        flat.mul_(0.5).add_(1)  # norm scales: positive, near one
    else:
        flat.mul_(1 / math.sqrt(max(p[0].numel(), 1)))


def build_fast(name: str) -> nn.Module:
    """``name`` with weights none, built without running torch's initialisers.

    Parameters up to ``_LARGE`` elements are filled from a fixed random block; larger ones
    (conv and linear weights) are left as allocated until :func:`fill_large` fills those the
    analysis reads: the trace needs only shapes from them.
    """
    with _initialisers_off():
        model = tvm.get_model(name, weights=None, **_KWARGS.get(name, {}))
    with torch.no_grad():
        for k, (pname, p) in enumerate(model.named_parameters()):
            if p.numel() <= _LARGE:
                _fill(k, pname, p)
    return model.eval()


def fill_large(model: nn.Module, modules) -> None:
    """Fill the large parameters of ``modules`` (and, for a view of a fused projection, of its parent)."""
    ids = {id(p) for mod in modules for p in [*mod.parameters(), *getattr(getattr(mod, "_parent", None), "parameters",
                                                                           lambda: [])()]}
    with torch.no_grad():
        for k, (pname, p) in enumerate(model.named_parameters()):
            if p.numel() > _LARGE and id(p) in ids:
                _fill(k, pname, p)


def _layer_to_analyse(graph) -> str:
    """The first producer with branch labels of the most interesting kind, else the first producer."""
    names = graph.producer_names()
    for source in _PREFERRED:
        for n in names:
            if graph.layers[n].branch_source == source:
                return n
    return names[0]


def test_the_sweep_covers_every_torchvision_classification_architecture():
    assert len(NAMES) >= 80 and "swin_t" in NAMES and "vit_b_16" in NAMES
    assert set(REFUSED) <= set(NAMES)


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_architecture_traces_and_one_layer_is_analysed_or_is_refused_naming_the_construct(name):
    model = build_fast(name)
    size = _SIZES.get(name, _DEFAULT_SIZE)
    if name in REFUSED:
        with pytest.raises(ModularityError, match=REFUSED[name]) as info:
            trace(model, size)
        assert "\n" not in str(info.value)
        return
    executed: set[str] = set()
    # The trace's shape pass calls the model's own conv and linear modules: hooks see which ran.
    hooks = [m.register_forward_hook(lambda *_, n=n: executed.add(n))
             for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    try:
        graph = trace(model, size)
    finally:
        for h in hooks:
            h.remove()
    weighted = {n for n, layer in graph.layers.items() if layer.kind in ("conv", "linear")}
    # A fused q/k/v projection is split into <name>.q, .k and .v (MaxViT's to_qkv).
    weighted |= {n.rsplit(".", 1)[0] for n in weighted if n.rsplit(".", 1)[-1] in ("q", "k", "v")}
    # Weighted modules that are not layers (Swin v2's continuous position-bias MLP reads only constants)
    # are named in the notes.
    noted = {note.split(":")[0] for note in graph.notes if "not a layer here" in note}
    missing = executed - weighted - noted
    assert executed and not missing, f"modules that ran but are neither layers nor noted: {sorted(missing)[:5]}"
    layer = _layer_to_analyse(graph)
    # analyze() checks every weight of the graph for NaN/Inf first (seconds for the 600 M weights of
    # regnet_y_128gf or vit_h_14): hand it the layer, its consumers and theirs, which is all it reads.
    near = {layer, *graph.consumers(layer)}
    near |= {c for n in list(near) for c in graph.consumers(n)}
    small = ChannelGraph(graph.layers, graph.edges, {n: m for n, m in graph.modules.items() if n in near},
                         graph.notes)
    fill_large(model, small.modules.values())
    result = modularity.analyze(model, graph=small, layers=layer, n_permutations=0, n_label_permutations=200,
                                input_size=size)
    (res,) = result.layers
    assert res.name == layer and res.n_units == graph.layers[layer].n_units
    assert np.isfinite(res.structure.ncut.observed)
    assert len(res.clusters) == res.n_units and res.k >= 2
    if graph.layers[layer].branches is not None:
        assert res.recovery is not None and -1 <= res.recovery.ari <= 1
