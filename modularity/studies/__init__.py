"""Studies built on the core: whole-network clusterability, unit properties, enrichment, agreement, calibration."""
