"""numsym_pl: do sequence models trained by next-token prediction grow symbol-like number variables?"""

import os

__version__ = "0.1.0"

# The recurrent scan's small per-step matmuls run on one thread (models/scan.py); the other threads
# must sleep meanwhile, not spin, or they slow it down. Set before torch starts its OpenMP runtime,
# which is why it lives here: every entry point (the CLI, study cells, benches) imports numsym_pl
# first. A policy the caller exported is kept; it changes speed, never the numbers.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
