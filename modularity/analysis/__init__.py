"""Analyse one model: for every producer layer, its spectrum, co-clusters, branch recovery and nulls.

This package orchestrates the algorithm modules of :mod:`modularity.core`; it
does no I/O and no plotting. Its steps, one module each:

* :mod:`~modularity.analysis.select`: which layers, and are their weights finite;
* :mod:`~modularity.analysis.statistics`: a profile's co-clustering and the
  statistics that get a null (the same function for the observation and
  every draw);
* :mod:`~modularity.analysis.draws`: the null draws of one layer, with
  Besag-Clifford sequential stopping (``h`` draws at least as extreme end the
  test, so unstructured layers stop after about ``2h`` draws);
* :mod:`~modularity.analysis.recovery`: the recovery of true branches, by
  label permutation where the units are exchangeable under the null, from the
  re-fitted draws elsewhere;
* :mod:`~modularity.analysis.layer`: one layer, step by step;
* :mod:`~modularity.analysis.model`: every selected layer of a model, on the
  settings' backend, with p-values adjusted across layers.
"""

from .draws import DrawTask, null_profile, run_draws
from .layer import analyze_layer, choose_clusters
from .model import analyze_model
from .recovery import units_exchangeable
from .select import check_finite, select_layers
from .statistics import MatrixStatistics, matrix_statistics

__all__ = ["analyze_model", "analyze_layer", "select_layers", "check_finite", "matrix_statistics",
           "MatrixStatistics", "units_exchangeable", "choose_clusters", "DrawTask", "run_draws", "null_profile"]
