"""One typed, validated settings object for an analysis, shared by the command line, the API and the sweep.

:class:`AnalysisSettings` is a frozen dataclass whose every field carries a
declared constraint (:data:`AnalysisSettings.constraints`, in the manner of
scikit-learn's ``_parameter_constraints``). It is checked once, when it is
made, and then passed whole: the command line builds it from its arguments,
:func:`modularity.analyze` from its keywords, and the pipeline, the analysis,
the random-init control and the sweep read their settings from it. The
settings that change numbers are recorded in ``summary.json``
(:meth:`AnalysisSettings.record`); where the work runs (``jobs``, ``backend``,
``scheduler``) does not change any number and is not recorded.

This module imports neither numpy nor torch, so the command line refuses a
bad argument before loading anything.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from numbers import Integral
from typing import Any, ClassVar

from .core.defaults import (
    BACKENDS,
    CONTROLS,
    DEFAULT_METHOD,
    DEVICES,
    EXPAND_MODES,
    METHOD_NAMES,
    NORMS,
    NULL_MODELS,
    RECOVERY_TESTS,
)
from .errors import ModularityError

__all__ = ["AnalysisSettings", "Interval", "Options", "LayerPattern", "InputSize", "Text", "MAX_PERMUTATIONS",
           "MAX_LABEL_PERMUTATIONS", "MAX_JOBS", "MAX_K", "MAX_SEED", "check_scheduler_address"]

MAX_PERMUTATIONS = 100_000
"""Most null draws per layer: each re-fits a co-clustering, so more would run for days on a big layer."""
MAX_LABEL_PERMUTATIONS = 10_000_000
"""Most label permutations per recovery test (p resolves to 1e-7; 10^5 take well under a second)."""
MAX_JOBS = 1024
"""Most worker processes asked for; a run uses at most one per core and one per task."""
MAX_K = 4096
"""Most co-clusters; a layer also refuses more than its live units."""
MAX_SEED = 2**63 - 1
MAX_PATTERN = 10_000
"""Longest layer pattern, in characters."""


class Constraint:
    """A declared constraint on one setting: :meth:`Constraint.holds` checks a value, :meth:`Constraint.describe`
    says what is accepted."""

    def holds(self, value: Any) -> bool:  # pragma: no cover - interface
        """Whether ``value`` satisfies the constraint."""
        raise NotImplementedError

    def describe(self) -> str:  # pragma: no cover - interface
        """What the constraint accepts, as the error message and the documentation say it."""
        raise NotImplementedError


@dataclass(frozen=True)
class Interval(Constraint):
    """An integer from ``low`` to ``high`` (both included)."""

    low: int
    high: int

    def holds(self, value: Any) -> bool:
        return isinstance(value, Integral) and not isinstance(value, bool) and self.low <= int(value) <= self.high

    def describe(self) -> str:
        return f"an integer from {self.low} to {self.high}"


@dataclass(frozen=True)
class Options(Constraint):
    """One of a fixed set of strings."""

    choices: tuple[str, ...]

    def holds(self, value: Any) -> bool:
        return isinstance(value, str) and value in self.choices

    def describe(self) -> str:
        return "one of " + ", ".join(self.choices)


@dataclass(frozen=True)
class Text(Constraint):
    """A non-empty string without control characters, at most ``max_length`` long."""

    max_length: int = 1000

    def holds(self, value: Any) -> bool:
        return (isinstance(value, str) and 0 < len(value) <= self.max_length
                and not any(ord(c) < 32 or ord(c) == 127 for c in value))

    def describe(self) -> str:
        return f"a non-empty text of at most {self.max_length} characters without control characters"


class LayerPattern(Constraint):
    """Comma-separated shell globs of layer names, or a ``/regular expression/``: never an empty pattern."""

    def holds(self, value: Any) -> bool:
        if not isinstance(value, str) or not value.strip() or len(value) > MAX_PATTERN:
            return False
        if any(ord(c) < 32 for c in value):
            return False
        if _is_regex(value):
            body = value[1:-1]
            if not body:
                return False
            try:
                re.compile(body)
            except re.error:
                return False
            return True
        return any(part.strip() for part in value.split(","))

    def describe(self) -> str:
        return ("comma-separated shell globs of layer names such as 'inception??,conv1', or a non-empty "
                "/regular expression/")

    def reason(self, value: Any) -> str | None:
        """Why a regular expression is refused, where that is the reason."""
        if isinstance(value, str) and _is_regex(value) and value[1:-1]:
            try:
                re.compile(value[1:-1])
            except re.error as exc:
                return f"not a valid regular expression: {exc}"
        return None


class InputSize(Constraint):
    """Height and width in pixels, each from 8 to 4096."""

    def holds(self, value: Any) -> bool:
        return (isinstance(value, tuple) and len(value) == 2
                and all(isinstance(v, Integral) and not isinstance(v, bool) and 8 <= int(v) <= 4096 for v in value))

    def describe(self) -> str:
        return "two integers (height, width), each from 8 to 4096"


_ADDRESS = re.compile(r"(?P<scheme>[a-z]+)://(?P<host>\[[0-9a-fA-F:.]+\]|[A-Za-z0-9_.-]+):(?P<port>[0-9]{1,5})")
_SCHEMES = ("tcp", "tls", "ws", "wss")


def check_scheduler_address(address: str) -> str:
    """Check the form of a Dask scheduler address before connecting: ``scheme://host:port``.

    Raises
    ------
    ModularityError
        Naming what is wrong (scheme, host, port) and an example of a good address.
    """
    match = _ADDRESS.fullmatch(address)
    example = "give the address of a running scheduler such as tcp://127.0.0.1:8786"
    if match is None:
        raise ModularityError(f"--scheduler {address!r} is not a Dask scheduler address (scheme://host:port); "
                              f"{example}")
    if match["scheme"] not in _SCHEMES:
        raise ModularityError(f"--scheduler {address!r}: unknown scheme '{match['scheme']}' (one of "
                              f"{', '.join(_SCHEMES)}); {example}")
    if not 1 <= int(match["port"]) <= 65535:
        raise ModularityError(f"--scheduler {address!r}: port {match['port']} is not from 1 to 65535; {example}")
    return address


def _is_regex(pattern: str) -> bool:
    return len(pattern) > 1 and pattern.startswith("/") and pattern.endswith("/")


def _setting(default: Any, option: str, *, recorded: bool = True) -> Any:
    """A field with the command-line option that sets it and whether ``summary.json`` records it."""
    return field(default=default, metadata={"option": option, "recorded": recorded})


@dataclass(frozen=True)
class AnalysisSettings:
    """Everything that says how a model is analysed, checked once when made.

    Parameters
    ----------
    layers : str or None
        Producer layers to analyse: comma-separated shell globs of names
        (``"inception??,conv1"``) or a ``/regular expression/``; None: every
        producer layer.
    reduction : {"l1", "l2", "max"}
        Kernel norm for connection magnitudes.
    expand : {"none", "depthwise", "product", "signed"}
        Expanded connections: through depthwise consumers (default), also
        through 1x1 bottlenecks (``product``: product of magnitudes;
        ``signed``: magnitude of the composed signed kernel), or none.
    k : int or None
        Number of co-clusters; None: the number of true branches where a layer
        has them, else the largest eigengap in ``2..k_max``.
    k_max : int
        Upper bound of the eigengap choice of ``k``.
    n_permutations : int
        Most null draws of every consumer's weights per layer, each re-fitted
        (0 skips them).
    seed : int
        Seeds random initial weights, null draws, label permutations and
        k-means; results depend only on it.
    null : str
        Null model of the weights (:data:`~modularity.core.defaults.NULL_MODELS`).
    n_label_permutations : int
        Label permutations of a recovery test where the units are exchangeable
        under the null.
    sequential_h : int
        Besag-Clifford stopping: a layer's draws end once this many are at
        least as extreme as observed (0: every draw is used).
    method : str
        Co-clustering (:data:`~modularity.core.defaults.METHOD_NAMES`).
    recovery_test : {"auto", "label-permutation", "weight-shuffle"}
        ``auto`` permutes labels where the units are exchangeable under the
        null and re-fits weight draws elsewhere; the other two force one route
        (to compare them).
    input_size : (int, int) or None
        Height and width the model is traced at; None: the model's own.
    control : {"auto", "none", "random-init"}
        ``random-init`` also analyses the same architecture at random
        initialisation with these settings, so that every number of the
        trained weights stands beside what the architecture alone gives;
        ``auto`` (the default) does so for trained weights (a model loaded by
        name with trained weights or a checkpoint) and not for random ones or
        a module passed in directly; a result records the control that ran.
    device : {"auto", "cpu", "cuda"}
        Where the ``shuffle`` null's draws are built (keyed permutations,
        :mod:`modularity.core.engine`): ``auto`` is ``cuda`` where torch sees a
        GPU, else ``cpu``; the numbers are the same on every device (recorded
        all the same, as the other settings are).
    jobs : int
        Worker processes (0: one per core); results do not depend on it.
    backend : {"local", "dask"}
        Where layers and null draws run; results do not depend on it.
    scheduler : str or None
        Address of a running Dask scheduler (``backend="dask"`` only).

    Raises
    ------
    ModularityError
        When a value breaks its declared constraint (the message names the
        setting, its command-line option, what is accepted and what was
        given), or two settings do not go together.

    Examples
    --------
    >>> AnalysisSettings(n_permutations=20).n_permutations
    20
    >>> AnalysisSettings(null="bogus")
    Traceback (most recent call last):
    ...
    modularity.errors.ModularityError: null (--null) must be one of shuffle, shuffle-nonzero, resample, reinit, \
degree; got 'bogus'
    """

    layers: str | None = _setting(None, "--layers")
    reduction: str = _setting("l1", "--reduction")
    expand: str = _setting("depthwise", "--expand")
    k: int | None = _setting(None, "--k")
    k_max: int = _setting(12, "--k-max")
    n_permutations: int = _setting(100, "--permutations")
    seed: int = _setting(0, "--seed")
    null: str = _setting("shuffle", "--null")
    n_label_permutations: int = _setting(100_000, "--label-permutations")
    sequential_h: int = _setting(10, "--stop-after")
    method: str = _setting(DEFAULT_METHOD, "--method")
    recovery_test: str = _setting("auto", "--recovery-test")
    input_size: tuple[int, int] | None = _setting(None, "--input-size")
    control: str = _setting("auto", "--control")
    device: str = _setting("auto", "--device")
    jobs: int = _setting(1, "--jobs", recorded=False)
    backend: str = _setting("local", "--backend", recorded=False)
    scheduler: str | None = _setting(None, "--scheduler", recorded=False)

    constraints: ClassVar[Mapping[str, tuple[Constraint | None, ...]]] = {
        "layers": (LayerPattern(), None),
        "reduction": (Options(NORMS),),
        "expand": (Options(EXPAND_MODES),),
        "k": (Interval(2, MAX_K), None),
        "k_max": (Interval(2, 64),),
        "n_permutations": (Interval(0, MAX_PERMUTATIONS),),
        "seed": (Interval(0, MAX_SEED),),
        "null": (Options(NULL_MODELS),),
        "n_label_permutations": (Interval(1, MAX_LABEL_PERMUTATIONS),),
        "sequential_h": (Interval(0, MAX_PERMUTATIONS),),
        "method": (Options(METHOD_NAMES),),
        "recovery_test": (Options(RECOVERY_TESTS),),
        "input_size": (InputSize(), None),
        "control": (Options(CONTROLS),),
        "device": (Options(DEVICES),),
        "jobs": (Interval(0, MAX_JOBS),),
        "backend": (Options(BACKENDS),),
        "scheduler": (Text(), None),
    }
    """The declared constraint of every field: a value must satisfy one of them (None: the value None)."""

    def __post_init__(self) -> None:
        if isinstance(self.input_size, list):  # JSON and argparse give lists
            object.__setattr__(self, "input_size", tuple(self.input_size))
        for f in fields(self):
            self._check(f.name, getattr(self, f.name))
        if self.null == "degree" and self.expand == "signed":
            raise ModularityError("null 'degree' randomises magnitudes, so it cannot drive expand 'signed' (which "
                                  "composes signed kernels); use expand 'product' or another null")
        if self.scheduler is not None:
            if self.backend != "dask":
                raise ModularityError("scheduler (--scheduler) needs backend 'dask' (--backend dask)")
            check_scheduler_address(self.scheduler)

    @classmethod
    def _check(cls, name: str, value: Any) -> None:
        allowed = cls.constraints[name]
        if any(value is None if c is None else c.holds(value) for c in allowed):
            return
        described = [c.describe() for c in allowed if c is not None]
        if None in allowed:
            described.append("None (the default)")
        option = cls.__dataclass_fields__[name].metadata["option"]
        reasons = [r for c in allowed if c is not None and (r := getattr(c, "reason", lambda v: None)(value))]
        why = f" ({reasons[0]})" if reasons else ""
        raise ModularityError(f"{name} ({option}) must be {' or '.join(described)}; got {_show(value)}{why}")

    def replace(self, **changes: Any) -> AnalysisSettings:
        """A copy with ``changes`` applied, checked again.

        Raises
        ------
        ModularityError
            For a name that is not a setting, or a value out of its constraint.
        """
        unknown = sorted(set(changes) - {f.name for f in fields(self)})
        if unknown:
            raise ModularityError(f"unknown setting{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; the "
                                  f"settings are {', '.join(f.name for f in fields(self))}")
        return dataclasses.replace(self, **changes)

    @classmethod
    def of(cls, settings: AnalysisSettings | None = None, **changes: Any) -> AnalysisSettings:
        """``settings`` (or the defaults) with ``changes`` applied: how keyword arguments become settings."""
        return (settings or cls()).replace(**changes) if changes else (settings or cls())

    def record(self) -> dict[str, Any]:
        """The settings that change numbers, as ``summary.json`` records them."""
        out = {}
        for f in fields(self):
            if f.metadata["recorded"]:
                value = getattr(self, f.name)
                out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_record(cls, data: Mapping[str, Any]) -> AnalysisSettings:
        """Settings from :meth:`record`'s dict (execution settings take their defaults); checked as ever."""
        known = {f.name for f in fields(cls) if f.metadata["recorded"]}
        return cls(**{k: v for k, v in data.items() if k in known})

    def __repr__(self) -> str:
        changed = [f"{f.name}={getattr(self, f.name)!r}" for f in fields(self) if getattr(self, f.name) != f.default]
        return f"AnalysisSettings({', '.join(changed)})"


def _show(value: Any) -> str:
    """A value for a one-line message: short, and with control characters escaped."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
