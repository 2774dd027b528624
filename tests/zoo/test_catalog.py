"""The torch-free catalog of model names agrees with torchvision and the registry, so it cannot go stale."""

import subprocess
import sys

import pytest
import torchvision

from modularity.errors import ModularityError
from modularity.zoo import catalog
from modularity.zoo.registry import SOURCES, _ensure_registered


def test_the_torchvision_list_is_the_installed_releases():
    installed = torchvision.__version__.split("+")[0]
    if installed != catalog.TORCHVISION_RELEASE:
        pytest.fail(f"torchvision {installed} is installed but the catalog lists {catalog.TORCHVISION_RELEASE}'s "
                    "classifiers: regenerate TORCHVISION_CLASSIFIERS from torchvision.models.list_models()")
    assert catalog.catalog_is_current()
    assert tuple(sorted(torchvision.models.list_models(module=torchvision.models))) == catalog.TORCHVISION_CLASSIFIERS


def test_the_catalog_names_exactly_the_registered_sources():
    _ensure_registered()
    assert set(catalog.known_names()) == set(SOURCES)
    assert len(catalog.known_names()) == len(set(catalog.known_names()))


def test_an_unknown_name_is_refused_with_close_names():
    with pytest.raises(ModularityError, match=r"unknown model 'resnet5'; did you mean: .*resnet50"):
        catalog.check_model_name("resnet5")


def test_with_another_torchvision_an_unlisted_name_is_left_to_the_registry(monkeypatch):
    monkeypatch.setattr(catalog, "TORCHVISION_RELEASE", "0.0.1")
    assert catalog.check_model_name("a_future_architecture") == "unknown"
    assert catalog.check_model_name("alexnet") == "registered"


def test_the_catalog_does_not_import_torch():
    code = ("import sys\nfrom modularity.zoo.catalog import check_model_name\ncheck_model_name('alexnet')\n"
            "print('torch' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60).stdout.strip() == "False"


def test_the_timm_list_is_the_installed_releases():
    timm = pytest.importorskip("timm")
    if timm.__version__ != catalog.TIMM_RELEASE:
        pytest.fail(f"timm {timm.__version__} is installed but modularity/data/timm_models.txt lists "
                    f"{catalog.TIMM_RELEASE}'s models: regenerate it from sorted(timm.list_models())")
    assert catalog.timm_architectures() == tuple(sorted(timm.list_models()))


def test_an_unknown_timm_architecture_is_refused_like_timm_refuses_it():
    pytest.importorskip("timm")
    from modularity.zoo.timm_models import split_name

    with pytest.raises(ModularityError) as here:
        catalog.check_model_name("timm/resnet5")
    with pytest.raises(ModularityError) as there:
        split_name("timm/resnet5")
    assert str(here.value) == str(there.value) and "did you mean: timm/resnet50" in str(here.value)
    assert catalog.check_model_name("timm/resnet18.a1_in1k") == "timm"  # tags are timm's to judge
