"""Names of the measurement defaults, importable without numpy or torch (the command line reads them for --help).

The evidence for each lives with its implementation: the co-clustering methods
in :mod:`modularity.core.methods` and ``reports/methods.md``.
"""

DEFAULT_METHOD = "adaptive_sqrt_unit_r10"
"""The default co-clustering method (a key of :data:`modularity.core.methods.METHODS`)."""

METHOD_NAMES = ("adaptive_sqrt_unit_r10", "spectral_refined", "dhillon_km1_cols_sv_r10", "sklearn_scc",
                "sklearn_sbc_bistochastic", "sklearn_sbc_log")
"""Every production co-clustering method, the default first (the keys of :data:`modularity.core.methods.METHODS`)."""
