"""Studies: a grid of fit + DAS cells (spec), how one cell runs (cell), where cells run (executors)."""
