"""Everything written from results: tables, graph files, figure data, figures and reports (no analysis here)."""
