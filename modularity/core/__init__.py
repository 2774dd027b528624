"""The measurement kernels: channel graph, connection magnitudes, spectral methods, metrics and nulls.

Plain data in, plain data out; nothing here loads models by name, writes files or plots.
"""
