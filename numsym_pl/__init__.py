"""numsym_pl: do sequence models trained by next-token prediction grow symbol-like number variables?"""

__version__ = "0.1.0"

# numsym_pl sets no OpenMP wait policy: the runtime's default (threads spin briefly, then sleep) is
# the fast one here. Under OMP_WAIT_POLICY=PASSIVE every small multi-threaded op outside the
# recurrent scan (DAS's rotation, the decoder) waits ~100 us for a sleeping thread to wake: the
# reference GRU fit takes 1.4x as long (bench/omp_policy.py). The scan picks its threads by size
# alone (models/scan.py), so the policy changes speed, never numbers.


def __getattr__(name: str):
    """``numsym_pl.load``: imported on first use, so that ``import numsym_pl`` stays fast."""
    if name == "load":
        from numsym_pl.bridges.export import load

        return load
    raise AttributeError(f"module 'numsym_pl' has no attribute {name!r}")
