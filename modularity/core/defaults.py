"""Names of the measurement defaults, importable without numpy or torch (the command line reads them for --help).

The evidence for each lives with its implementation: :data:`DEFAULT_METHOD` in
:mod:`modularity.core.methods` and ``reports/methods.md``.
"""

DEFAULT_METHOD = "adaptive_sqrt_unit_r10"
"""The default co-clustering method (a key of :data:`modularity.core.methods.METHODS`)."""
