"""The torch engine for null draws: shuffles, profiles, decompositions, k-means and scores of many draws at once.

One module per job, each a batched torch twin of a numpy step the analysis
uses (the numpy twins are named in each module and collected in
:mod:`~modularity.core.engine.twin`):

- :mod:`~modularity.core.engine.device`: ``auto`` / ``cpu`` / ``cuda``, CPU threads;
- :mod:`~modularity.core.engine.shuffle`: profiles under keyed shuffles of the consumers' weights;
- :mod:`~modularity.core.engine.spectra`: degree normalisation, leading singular triplets, the noise edge;
- :mod:`~modularity.core.engine.kmeans`: keyed k-means++ and Lloyd's iterations;
- :mod:`~modularity.core.engine.scores`: bipartite n-cut, ARI, NMI;
- :mod:`~modularity.core.engine.cocluster`: the co-clustering ``adaptive_sqrt_unit_r10`` assembled from those steps;
- :mod:`~modularity.core.engine.null`: :class:`NullEngine` (one layer's draws) and :func:`sequential_draws`.

Every random number comes from :mod:`modularity.core.keyed`, so a draw is the
same on the CPU and on a GPU.

What the analysis runs: :class:`~modularity.core.engine.shuffle.ShuffledProfiles`
builds the null profiles of the ``shuffle`` null on the settings' device, and
the production co-clustering re-fits each on the CPU (see
:mod:`modularity.analysis.draws` for which settings take which route).
:class:`NullEngine`'s batched statistics implement ``adaptive_sqrt_unit_r10``
(the embedding and k-means that the default ``spectral_refined`` starts from);
``scripts/benchmark_device.py`` times them on the CPU and a GPU.
"""

from .device import DEVICES, resolve_device
from .null import DrawBatch, NullEngine, sequential_draws

__all__ = ["DEVICES", "resolve_device", "NullEngine", "DrawBatch", "sequential_draws"]
