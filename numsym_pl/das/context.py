"""Context-distributed (Ctx-Distr) interventions: no learned rotation, a change of the context.

- ``context_substitution``: source and target trials with demo phases of equal length m (they
  differ in count through void tokens, so the task needs ``p_void > 0``). At a site, the target's
  states over a span [a, b] of demo-phase positions are replaced by the source's states at the same
  positions; the net continues. The label depends on the program: a Markovian program (Up-Down,
  Up-Up) reads the span as if the source's tokens up to b had been read (its state after b is the
  source's); Ctx-Distr reads it as if only the span's tokens were the source's. The expected
  response is R × (the program's count at T), then E.
- ``attention_hiding``: k chosen demo tokens of the target (1 <= k < n) are hidden from attention,
  as keys, for every query but their own position, in the chosen blocks (default all).
  Ctx-Distr recomputes the count from what it can see: R × (n - k), then E. Only transformers can
  be so manipulated and only Ctx-Distr defines a label for it.

Both are scored by the same whole-response ``IIA`` metric as DAS.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal, Sequence

import numpy as np
import torch

from numsym_pl.das.iia import IIA, exact_rows
from numsym_pl.das.protocol import AlignmentResult, Intervention
from numsym_pl.errors import ConfigError
from numsym_pl.das.pairs import counterfactual
from numsym_pl.programs import Program, TokenKinds, get_program
from numsym_pl.seeding import derive
from numsym_pl.tasks import VOCAB, NumericEquivalence, TaskFamily



@dataclass
class ContextPairs:
    source: torch.Tensor  # [N, L] (the target itself for attention hiding)
    cf: torch.Tensor  # [N, L] target up to T, then the program's response
    span: torch.Tensor  # [N, L] bool: substituted or hidden positions
    loss_mask: torch.Tensor  # [N, L - 1] bool: scored targets (responses and E)
    label_count: torch.Tensor  # [N] responses the program expects
    own_count: torch.Tensor  # [N] the target's own count: what the program expects without the intervention


def _response_sequence(program, tokens, trigger, counts, state_after_t, kinds, rng):
    """Target up to T, then the program's response from its state after T: (cf, scored, label)."""
    cf, loss_mask = counterfactual(program, tokens, trigger, state_after_t, {"count": counts}, kinds, rng,
                                   max_steps=2 * int(counts.max()) + 8)
    label = ((cf == kinds.resp) & (np.arange(cf.shape[1])[None] > trigger[:, None])).sum(1)
    return cf, loss_mask, label


def _to_length(x: np.ndarray, length: int) -> torch.Tensor:
    """Right-pad with 0 (PAD / False) or cut ``x`` [N, L] to ``length`` columns."""
    return torch.as_tensor(np.pad(x, ((0, 0), (0, max(0, length - x.shape[1]))))[:, :length])


def _state_after(program, tokens, kinds, counts, pos):
    state, _ = program.trace(tokens, kinds, {"count": counts})
    b = np.arange(len(pos))
    return {k: v[b, pos] for k, v in state.items()}


def _numeric_equivalence(task: TaskFamily) -> NumericEquivalence:
    if not isinstance(task, NumericEquivalence):
        raise ConfigError(f"intervention: context interventions are defined on the numeric-equivalence family, "
                          f"not {task.family!r}")
    return task


def substitution_pairs(task: TaskFamily, program: Program, n: int, seed: int, span: Literal["random", "all"] = "random") -> ContextPairs:
    """Pairs for ``context_substitution`` (see the module docstring)."""
    task = _numeric_equivalence(task)
    if task.p_void <= 0:
        raise ConfigError("p_void: context substitution needs a void-token task (p_void > 0), so that demo phases of "
                          "equal length can hold different counts")
    rng, kinds = np.random.default_rng(seed), TokenKinds.of(task)
    tgt = task.sample("train", n, rng)
    m = tgt.trigger - 1  # demo-phase length
    pool = np.sort(task.train_counts)
    n_ok = np.searchsorted(pool, m, side="right")  # counts <= m are possible for the source
    n_src = pool[(rng.random(n) * n_ok).astype(int)]
    src = task.trials(n_src, rng, voids=m - n_src)
    L = max(tgt.tokens.shape[1], src.tokens.shape[1])
    pad = lambda x: np.pad(x, ((0, 0), (0, L - x.shape[1])))
    s_tok, t_tok = pad(src.tokens), pad(tgt.tokens)
    if span == "all":
        a, b = np.ones(n, np.int64), m
    else:
        a = 1 + (rng.random(n) * m).astype(np.int64)
        b = a + (rng.random(n) * (m - a + 1)).astype(np.int64)
    j = np.arange(L)[None, :]
    in_span = (j >= a[:, None]) & (j <= b[:, None])
    spliced = np.where(j <= b[:, None] if program.markovian else in_span, s_tok, t_tok)
    state = _state_after(program, spliced, kinds, tgt.count, tgt.trigger)
    cf, loss_mask, label = _response_sequence(program, t_tok, tgt.trigger, tgt.count, state, kinds, rng)
    fit = lambda x: _to_length(x, cf.shape[1])
    return ContextPairs(fit(s_tok), torch.as_tensor(cf), fit(in_span), torch.as_tensor(loss_mask), torch.as_tensor(label),
                        torch.as_tensor(tgt.count))


def hiding_pairs(task: TaskFamily, program: Program, n: int, seed: int, n_hidden: int | None = None) -> ContextPairs:
    """Pairs for ``attention_hiding``: ``n_hidden`` (default: uniform in 1..n-1) demo tokens hidden."""
    task = _numeric_equivalence(task)
    if program.markovian:
        raise ConfigError(f"program: attention hiding has a label under ctx_distr only, not {program.name!r}")
    rng, kinds = np.random.default_rng(seed), TokenKinds.of(task)
    counts = task.sample_counts("train", n, rng)
    counts = np.where(counts < 2, 2, counts)  # at least one token stays visible
    tgt = task.trials(counts, rng)
    k = np.minimum(n_hidden, counts - 1) if n_hidden else 1 + (rng.random(n) * (counts - 1)).astype(np.int64)
    demo = np.isin(tgt.tokens, kinds.demo) & (np.arange(tgt.tokens.shape[1])[None] < tgt.trigger[:, None])
    keys = np.where(demo, rng.random(demo.shape), np.inf)
    hidden = np.argsort(np.argsort(keys, 1), 1) < k[:, None]
    seen = np.where(hidden, VOCAB.VOID, tgt.tokens)  # what Ctx-Distr counts: hidden tokens count for nothing
    state = _state_after(program, seen, kinds, tgt.count, tgt.trigger)
    cf, loss_mask, label = _response_sequence(program, tgt.tokens, tgt.trigger, tgt.count, state, kinds, rng)
    fit = lambda x: _to_length(x, cf.shape[1])
    return ContextPairs(fit(tgt.tokens), torch.as_tensor(cf), fit(hidden), torch.as_tensor(loss_mask), torch.as_tensor(label),
                        torch.as_tensor(tgt.count))


def hiding_attn_mask(hidden: torch.Tensor) -> torch.Tensor:
    """bool [B, L, L], True where query i may attend to key j: hidden keys only to themselves."""
    L = hidden.shape[1]
    eye = torch.eye(L, dtype=torch.bool, device=hidden.device)
    return ~hidden[:, None, :] | eye[None]


@torch.no_grad()
def context_correct(net, kind: str, site: str, pairs: ContextPairs, layers: Sequence[int] | None = None,
                    batch_size: int = 500) -> torch.Tensor:
    """[N] bool: which pairs of one context intervention ``net`` answers exactly under the label.
    ``kind`` is the intervention, or ``none`` (the net on the target, not intervened on: the floor)."""
    device = next(net.parameters()).device
    out = []
    for i in range(0, len(pairs.cf), batch_size):
        sl = slice(i, i + batch_size)
        cf, span_mask = pairs.cf[sl].to(device), pairs.span[sl].to(device)
        inputs, mask = cf[:, :-1], span_mask[:, :-1]
        if kind == "attention_hiding":
            logits = net(inputs, attn_mask=hiding_attn_mask(mask), mask_layers=layers)
        elif kind == "none":
            logits = net(inputs)
        else:
            src = net.states(pairs.source[sl].to(device)[:, :-1], site)  # [B, L-1, d]
            logits = net.forward_spliced(inputs, site, mask, src)
        out.append(exact_rows(logits, cf, pairs.loss_mask[sl].to(device)))
    return torch.cat(out)


class _ContextIntervention(Intervention):
    """A change of context, scored under the program's label: nothing is fitted, no subspace."""

    def run(self, net, task, alignment, settings, init_state=None):
        t0 = time.perf_counter()
        pairs = self.pairs(task, get_program(alignment.program), alignment, settings.n_test,
                           derive(settings.seed, "context"))
        ok = context_correct(net, self.name, alignment.site, pairs, alignment.layers)
        metric = IIA(sync_on_compute=False).to(ok.device)
        metric.update(ok, pairs.label_count.to(ok.device))
        # the floor: the net not intervened on, scored against the same labels; effective pairs are
        # those whose label differs from the target's own answer
        floor = context_correct(net, "none", alignment.site, pairs)
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


class ContextSubstitution(_ContextIntervention):
    name = "context_substitution"

    def controls(self, net, alignment, pairs):
        """The span from an unrelated trial: each target takes the states of another pair's source
        (of another demo length and count) over the same positions, scored against the same label."""
        unrelated = ContextPairs(pairs.source.roll(1, 0), pairs.cf, pairs.span, pairs.loss_mask, pairs.label_count,
                                 pairs.own_count)
        ok = context_correct(net, self.name, alignment.site, unrelated)
        return {"unrelated_span": {"iia": ok.float().mean().item(), "n": len(ok)}}

    def pairs(self, task, program, alignment, n, seed):
        return substitution_pairs(task, program, n, seed, alignment.span)


class AttentionHiding(_ContextIntervention):
    name = "attention_hiding"

    def check(self, net, alignment) -> None:
        if get_program(alignment.program).markovian:
            raise ConfigError(f"program: attention hiding has a label under ctx_distr only, not {alignment.program!r}")
        if "attention_mask" not in net.capabilities:
            raise ConfigError(f"intervention: attention hiding needs a transformer, not {type(net).__name__}")

    def pairs(self, task, program, alignment, n, seed):
        return hiding_pairs(task, program, n, seed)  # refuses programs without a label for it
