"""The measurement defaults and the choices of every setting, importable without numpy or torch.

The command line reads them to offer choices and to check arguments before
anything heavy is imported; :mod:`modularity.settings` declares its
constraints with them. The evidence for each default lives with its
implementation: :data:`DEFAULT_METHOD` in :mod:`modularity.core.methods` and
``reports/methods.md``.
"""

DEFAULT_METHOD = "spectral_refined"
"""The default co-clustering method (a key of :data:`modularity.core.methods.METHODS`)."""

METHOD_NAMES = ("spectral_refined", "adaptive_sqrt_unit_r10", "dhillon_km1_cols_sv_r10", "sklearn_scc",
                "sklearn_sbc_bistochastic", "sklearn_sbc_log")
"""The production co-clusterings, the default first (the keys of :data:`modularity.core.methods.METHODS`): the
refined spectral co-clustering, the previous default (its embedding and k-means without the refinement) and
scikit-learn's two (``SpectralCoclustering``; ``SpectralBiclustering`` with its bistochastic and log normalisations)."""

NULL_MODELS = ("shuffle", "shuffle-nonzero", "resample", "reinit", "degree")
"""Null models of a layer's weights (:mod:`modularity.core.nulls`)."""

EXCHANGEABLE_NULLS = ("shuffle", "resample", "reinit")
"""Nulls that draw every consumer's entries exchangeably, so that label permutation is their exact recovery null."""

NORMS = ("l1", "l2", "max")
"""Kernel norms for connection magnitudes (:func:`modularity.core.magnitude.reduce_kernel`)."""

EXPAND_MODES = ("none", "depthwise", "product", "signed")
"""Expanded connections (:func:`modularity.core.magnitude.downstream_profile`)."""

RECOVERY_TESTS = ("auto", "label-permutation", "weight-shuffle")
"""How the recovery p-value is obtained (:func:`modularity.analysis.analyze_layer`)."""

CONTROLS = ("auto", "none", "random-init")
"""Controls: ``random-init`` also analyses the same architecture at random initialisation; ``auto`` does so for
trained weights (a model loaded by name with trained weights or a checkpoint) and not for random ones."""

DEVICES = ("auto", "cpu", "cuda")
"""Where the shuffle null's draws are built (:mod:`modularity.core.engine`): ``auto`` is ``cuda`` where torch sees a
GPU, else ``cpu``; every device draws the same keyed permutations, so the numbers do not depend on it."""

BACKENDS = ("local", "dask")
"""Where layers and null draws run (:mod:`modularity.backends`)."""
