"""CPU thread counts set for a stretch of work and restored after it."""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch


@contextlib.contextmanager
def cpu_threads(n: int) -> Iterator[None]:
    """Run the body on ``n`` CPU threads (torch's intra-op pool), then restore the count before."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
