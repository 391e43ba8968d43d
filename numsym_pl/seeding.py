"""One seeding scheme: every random stream is ``np.random.default_rng([seed, *stream])``, with the
stream named by strings and integers (``rng(settings.seed, "pairs", "train")``), and torch
generators or integer-seeded APIs take ``derive(seed, *stream)``. Streams never collide the way
``seed * 1000 + i`` and ``seed + 1`` do, and a new stream cannot shift an old one."""

from __future__ import annotations

import zlib

import numpy as np


def _entropy(seed: int, stream: tuple) -> list[int]:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed: must be a non-negative integer, got {seed!r}")
    tags = [zlib.crc32(s.encode()) if isinstance(s, str) else int(s) for s in stream]
    if any(t < 0 for t in tags):
        raise ValueError(f"seed stream: integers must be non-negative, got {stream!r}")
    return [int(seed), *tags]


def rng(seed: int, *stream: str | int) -> np.random.Generator:
    """The numpy generator of one named stream of ``seed``."""
    return np.random.default_rng(_entropy(seed, stream))


def derive(seed: int, *stream: str | int) -> int:
    """An integer seed (< 2**63) for one named stream of ``seed``: for ``torch.Generator().manual_seed``
    and for functions that take an integer seed."""
    state = np.random.SeedSequence(_entropy(seed, stream)).generate_state(2, np.uint64)
    return int(state[0] >> np.uint64(1))
