"""What the context interventions share: their pairs (``ContextPairs``), the response a program
expects after the trigger, the scoring of a patched run (``context_correct``) and the run itself
(``ContextIntervention``): no learned map, a change of the context, scored under the program's label
by the same whole-response ``IIA`` as DAS.

They read a task through its token roles (``trigger``, ``demo``, ``void``) and through the
count-trial interface ``count_trial_task`` checks for, so any family that offers both can be used.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from numsym_pl.das.iia import IIA, exact_rows
from numsym_pl.das.interventions.base import Intervention
from numsym_pl.das.pairs.counterfactual import counterfactual
from numsym_pl.das.record import AlignmentResult
from numsym_pl.errors import ConfigError
from numsym_pl.seeding import derive
from numsym_pl.tasks.base import TaskFamily

#: what a context intervention asks of a task: one count per trial, drawn and laid out on demand
COUNT_TRIAL_METHODS = ("sample_counts", "trials", "train_counts")
COUNT_TRIAL_ROLES = ("trigger", "demo", "void")


def count_trial_task(task: TaskFamily) -> TaskFamily:
    """``task``, if it offers what the context interventions read (``COUNT_TRIAL_METHODS``: counts
    of a split, trials of given counts and void tokens, whose ``trigger`` and ``count`` they expose;
    the token roles ``COUNT_TRIAL_ROLES``); a ConfigError naming what it lacks otherwise."""
    missing = [m for m in COUNT_TRIAL_METHODS if not hasattr(task, m)]
    missing += [f"token role {r!r}" for r in COUNT_TRIAL_ROLES if r not in task.token_roles]
    if missing:
        raise ConfigError(f"intervention: context interventions need a task with one count per trial; "
                          f"{task.family} lacks {', '.join(missing)}")
    return task


@dataclass
class ContextPairs:
    source: torch.Tensor  # [N, L] (the target itself for attention hiding)
    cf: torch.Tensor  # [N, L] target up to T, then the program's response
    span: torch.Tensor  # [N, L] bool: substituted or hidden positions
    loss_mask: torch.Tensor  # [N, L - 1] bool: scored targets (responses and E)
    label_count: torch.Tensor  # [N] responses the program expects
    own_count: torch.Tensor  # [N] the target's own count: what the program expects without the intervention


def response_sequence(program, tokens, trigger, counts, state_after_t, kinds, rng):
    """Target up to T, then the program's response from its state after T: (cf, scored, label)."""
    cf, loss_mask = counterfactual(program, tokens, trigger, state_after_t, {"count": counts}, kinds, rng,
                                   max_steps=2 * int(counts.max()) + 8)
    label = ((cf == kinds.resp) & (np.arange(cf.shape[1])[None] > trigger[:, None])).sum(1)
    return cf, loss_mask, label


def to_length(x: np.ndarray, length: int) -> torch.Tensor:
    """Right-pad with 0 (PAD / False) or cut ``x`` [N, L] to ``length`` columns."""
    return torch.as_tensor(np.pad(x, ((0, 0), (0, max(0, length - x.shape[1]))))[:, :length])


def state_after(program, tokens, kinds, counts, pos):
    state, _ = program.trace(tokens, kinds, {"count": counts})
    b = np.arange(len(pos))
    return {k: v[b, pos] for k, v in state.items()}


@torch.no_grad()
def context_correct(net, pairs: ContextPairs, patched: Callable, batch_size: int = 500) -> torch.Tensor:
    """[N] bool: which pairs ``net`` answers exactly under the label, run through ``patched(net,
    inputs, span, source)`` (the logits of the counterfactual inputs [B, L-1] with the intervention
    over ``span`` [B, L-1], ``source`` [B, L] the rows' source trials)."""
    device = next(net.parameters()).device
    out = []
    for i in range(0, len(pairs.cf), batch_size):
        sl = slice(i, i + batch_size)
        cf, span_mask = pairs.cf[sl].to(device), pairs.span[sl].to(device)
        logits = patched(net, cf[:, :-1], span_mask[:, :-1], pairs.source[sl].to(device))
        out.append(exact_rows(logits, cf, pairs.loss_mask[sl].to(device)))
    return torch.cat(out)


def unpatched(net, inputs, span, source) -> torch.Tensor:
    """The net on the target, not intervened on: the floor."""
    return net(inputs)


class ContextIntervention(Intervention):
    """A change of context, scored under the program's label: nothing is fitted, no subspace.
    Subclasses define ``pairs`` and ``patched`` (and may add ``controls``)."""

    def pairs(self, task, program, alignment, n: int, seed: int) -> ContextPairs:
        raise NotImplementedError

    def patched(self, net, inputs, span, source) -> torch.Tensor:
        raise NotImplementedError

    def run(self, net, task, alignment, settings, init_state=None):
        t0 = time.perf_counter()
        pairs = self.pairs(count_trial_task(task), alignment.program_object(), alignment, settings.n_test,
                           derive(settings.seed, "context"))
        ok = context_correct(net, pairs, lambda *a: self.patched(*a, site=alignment.site))
        metric = IIA(sync_on_compute=False).to(ok.device)
        metric.update(ok, pairs.label_count.to(ok.device))
        # the floor: the net not intervened on, scored against the same labels; effective pairs are
        # those whose label differs from the target's own answer
        floor = context_correct(net, pairs, unpatched)
        effective = (pairs.label_count != pairs.own_count).to(ok.device)
        controls = self.controls(net, alignment, pairs)
        return AlignmentResult(alignment.identity, iia=metric.compute().item(), n=len(pairs.cf),
                               per_count=metric.per_group(), seconds=time.perf_counter() - t0,
                               iia_none=floor.float().mean().item(), n_effective=int(effective.sum()),
                               iia_effective=ok[effective].float().mean().item() if effective.any() else None,
                               controls=controls), None

    def controls(self, net, alignment, pairs: ContextPairs) -> dict | None:
        """Controls of this intervention beyond the floor (None: none)."""
        return None
