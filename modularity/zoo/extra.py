"""Registers the model sources beyond torchvision and the offline default.

Each source module defines a ``register_source()`` function, called once here
(``registry._ensure_registered`` imports this module).
"""

from __future__ import annotations

from . import alexnet_bvlc, inceptionv1_lucid, tfjs

__all__: list[str] = []

alexnet_bvlc.register_source()
inceptionv1_lucid.register_source()
tfjs.register_source()
