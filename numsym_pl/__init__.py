"""numsym_pl: do sequence models trained by next-token prediction grow symbol-like number variables?"""

__version__ = "0.1.0"

# numsym_pl sets no OpenMP wait policy: the runtime's default (threads spin briefly, then sleep) is
# the fast one here. Until 2026-12-06 it set OMP_WAIT_POLICY=PASSIVE, which made every small
# multi-threaded op outside the recurrent scan (DAS's rotation, the decoder) wait ~100 us for a
# sleeping thread to wake: the reference GRU fit took 1.4x as long (bench/omp_policy.py). The scan
# picks its threads by size alone (models/scan.py), so the policy changes speed, never numbers.
