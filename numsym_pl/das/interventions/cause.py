"""Cause and isolation of a learned intervention, as RAVEL scores them (Huang et al. 2024).

On the pairs of a test set the program says which scored targets the intervention changes
(``PairBatch.changed``: its label differs there from what it predicts on the same inputs without
the intervention) and which it must leave alone (the other scored targets: the outputs that
depend only on variables not intervened on). *Cause* is the fraction of pairs with a changed
target on which the patched net gets every changed target right; *isolation* the fraction of
pairs with a target to leave alone on which it gets every such target right. On a set that
intervenes on one variable of a multi-variable alignment (``test.<variable>``), isolation is how
well the other variables' outputs survive the swap.
"""

from __future__ import annotations

import torch

from numsym_pl.das.iia import exact_rows, wilson_interval
from numsym_pl.das.interventions.patched import patched_logits
from numsym_pl.das.settings import autocast, eval_batch


@torch.no_grad()
def cause_isolation(net, swap, site: str, sets, name: str = "test", batch_size: int | None = None,
                    precision: str = "32") -> tuple[dict, torch.Tensor]:
    """(``{cause, n_cause, cause_ci, isolation, n_isolation, isolation_ci}``, [N] bool: every scored
    target right, IIA's unit) of ``swap`` on ``sets.pairs[name]``, from one patched run of the pairs."""
    pairs, src, cache = sets.pairs[name], sets.src[name], sets.cache[name]
    batch_size = batch_size or eval_batch(src.device)
    rows, exact = [], []
    for i in range(0, len(pairs), batch_size):
        p = pairs[i: i + batch_size]
        with autocast(src.device, precision):
            logits = patched_logits(net, swap, site, p, src[i: i + batch_size],
                                    None if cache is None else cache[i: i + batch_size])
        rows.append(cause_isolation_rows(logits.argmax(-1) == p.cf[:, 1:], p.loss_mask, p.changed))
        exact.append(exact_rows(logits, p.cf, p.loss_mask))
    return summarize(torch.cat([c for c, _ in rows]), torch.cat([s for _, s in rows])), torch.cat(exact)


def cause_isolation_rows(ok: torch.Tensor, scored: torch.Tensor,
                         changed: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per pair (NaN where it has no such target): whether every changed target is right (cause),
    and every scored target left unchanged (isolation). ``ok``, ``scored``, ``changed``: [N, T] bool."""
    kept = scored & ~changed
    cause = torch.where(changed.any(1), (ok | ~changed).all(1).float(), float("nan"))
    isolation = torch.where(kept.any(1), (ok | ~kept).all(1).float(), float("nan"))
    return cause, isolation


def summarize(cause: torch.Tensor, isolation: torch.Tensor) -> dict:
    out = {}
    for field, values in (("cause", cause), ("isolation", isolation)):
        seen = values[~values.isnan()]
        rate = seen.mean().item() if len(seen) else None
        out.update({field: rate, f"n_{field}": len(seen), f"{field}_ci": wilson_interval(rate, len(seen))})
    return out
