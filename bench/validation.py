"""Validation: the logits a validation step reads (loss and scored positions: what
``NextTokenLM.validation_step`` asks the net for) against every logit (padding included, as before
2026-12-02), and the validation batch size (``data.val_batch_size``: 256 since 2026-12-02, one batch
of 1,000 per set before), on the reference nets and the three validation sets of 1,000 trials each,
alternated in one process; medians over rounds.

    python bench/validation.py [--archs gru,lstm,rope] [--rounds 5] [--task multi] [--batch_sizes 1000,256]

Prints, per architecture, the seconds of one validation (three sets) each way with what it measured
(trials answered right and the token-mean loss: must be equal every way), and the ratios last: every logit / read
positions (both at the first batch size), and the first batch size / each other one (read positions).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from numsym_pl.data import TrialDataModule
from numsym_pl.lit_module import NextTokenLM, response_correct
from numsym_pl.models import GRULM, LSTMLM, TransformerLM
from numsym_pl.tasks import VOCAB, NumericEquivalence

NETS = {"gru": lambda: GRULM(VOCAB.size, 128), "lstm": lambda: LSTMLM(VOCAB.size, 64),
        "rope": lambda: TransformerLM(VOCAB.size, 128, positional="rope")}


@torch.no_grad()
def validate(lm: NextTokenLM, batches: list[dict], read_only: bool) -> tuple[float, str]:
    """Seconds for one pass over the validation sets, and what it measured (trials answered right,
    the token-mean loss over the three sets: equal whichever way the pass ran)."""
    t0, correct, loss, tokens_in_loss = time.perf_counter(), 0, 0.0, 0
    for batch in batches:
        tokens, scored, loss_mask = batch["tokens"], batch["scored"], lm.loss_mask(batch)
        if read_only:
            at = loss_mask | scored
            logits = lm.net(tokens[:, :-1], out_mask=at)
            trial_ok, _, _ = response_correct(logits, tokens, scored, at)
            batch_loss = lm.loss(logits[loss_mask[at]], batch)
        else:
            logits = lm.net(tokens[:, :-1])
            trial_ok, _, _ = response_correct(logits, tokens, scored)
            batch_loss = lm.loss(logits, batch)
        correct += int(trial_ok.sum())
        loss, tokens_in_loss = loss + float(batch_loss) * int(loss_mask.sum()), tokens_in_loss + int(loss_mask.sum())
    return time.perf_counter() - t0, f"{correct} trials right, loss {loss / tokens_in_loss:.5f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--archs", default="gru,lstm,rope")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--task", default="multi", choices=["multi", "single", "same"])
    parser.add_argument("--batch_sizes", default="1000,256", help="the first is the baseline")
    args = parser.parse_args()
    sizes = [int(b) for b in args.batch_sizes.split(",")]
    batches = {}
    for size in sizes:
        dm = TrialDataModule(NumericEquivalence(args.task), val_size=1000, val_batch_size=size)
        dm.setup("fit")
        batches[size] = [b for loader in dm.val_dataloader() for b in loader]
    first = batches[sizes[0]]
    pad = (sum(int((b["tokens"][:, 1:] == VOCAB.PAD).sum()) for b in first)
           / sum(b["tokens"][:, 1:].numel() for b in first))
    print(f"validation sets ({args.task}) in batches of {sizes[0]}: {pad:.0%} of their positions padding; "
          f"{torch.get_num_threads()} thread(s), {args.rounds} alternated rounds")
    variants = [(False, sizes[0])] + [(True, size) for size in sizes]
    lines = []
    for arch in args.archs.split(","):
        torch.manual_seed(0)
        lm = NextTokenLM(NETS[arch]()).eval()
        validate(lm, first, True)  # warm-up
        times, correct = {v: [] for v in variants}, {}
        for _ in range(args.rounds):
            for read_only, size in variants:
                seconds, correct[(read_only, size)] = validate(lm, batches[size], read_only)
                times[(read_only, size)].append(seconds)
        med = {v: statistics.median(t) for v, t in times.items()}
        print(f"{arch}: " + ", ".join(f"{'read positions' if r else 'every logit'} @{b}: {med[(r, b)]:.3f} s "
                                       f"({correct[(r, b)]})" for r, b in variants))
        lines.append(f"{arch}: every logit / read positions {med[variants[0]] / med[(True, sizes[0])]:.2f}x; "
                     + ", ".join(f"batch {sizes[0]} / {b} {med[(True, sizes[0])] / med[(True, b)]:.2f}x"
                                 for b in sizes[1:]))
    print("ratios:\n  " + "\n  ".join(lines))


if __name__ == "__main__":
    main()
