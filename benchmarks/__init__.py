"""The recovery benchmark's code that the package does not ship (not installed; run from the repository root).

:mod:`benchmarks.candidates` holds every co-clustering the method benchmark
(``scripts/method_benchmark.py``) compares, the production ones of
:mod:`modularity.core.methods` included; ``reports/methods.md`` has the numbers.
"""
