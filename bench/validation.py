"""Validation: the logits a validation step reads (loss and scored positions: what
``NextTokenLM.validation_step`` asks the net for) against every logit (padding included, as before
2026-12-02), on the reference nets and the three validation sets of 1,000 trials each, alternated
in one process; medians over rounds.

    python bench/validation.py [--archs gru,lstm,rope] [--rounds 5] [--task multi]

Prints, per architecture, the seconds of one validation (three sets) both ways, the trial accuracy
both ways (must be equal), and the ratio (every logit / read positions) last.
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
def validate(lm: NextTokenLM, batches: list[dict], read_only: bool) -> tuple[float, list[float]]:
    """Seconds for one pass over the validation sets, and each set's trial accuracy."""
    t0, accs = time.perf_counter(), []
    for batch in batches:
        tokens, scored = batch["tokens"], batch["scored"]
        if read_only:
            loss_mask = lm.loss_mask(batch)
            at = loss_mask | scored
            logits = lm.net(tokens[:, :-1], out_mask=at)
            trial_ok, _, _ = response_correct(logits, tokens, scored, at)
            lm.loss(logits[loss_mask[at]], batch)
        else:
            logits = lm.net(tokens[:, :-1])
            trial_ok, _, _ = response_correct(logits, tokens, scored)
            lm.loss(logits, batch)
        accs.append(float(trial_ok.float().mean()))
    return time.perf_counter() - t0, accs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--archs", default="gru,lstm,rope")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--task", default="multi", choices=["multi", "single", "same"])
    args = parser.parse_args()
    dm = TrialDataModule(NumericEquivalence(args.task), val_size=1000)
    dm.setup("fit")
    batches = [b for loader in dm.val_dataloader() for b in loader]
    pad = sum(int((b["tokens"][:, 1:] == VOCAB.PAD).sum()) for b in batches) / sum(b["tokens"][:, 1:].numel() for b in batches)
    print(f"{len(batches)} validation batches ({args.task}), {pad:.0%} of their positions padding; "
          f"{torch.get_num_threads()} thread(s), {args.rounds} alternated rounds")
    ratios = {}
    for arch in args.archs.split(","):
        torch.manual_seed(0)
        lm = NextTokenLM(NETS[arch]()).eval()
        validate(lm, batches, True)  # warm-up
        times = {False: [], True: []}
        for _ in range(args.rounds):
            for read_only in (False, True):
                seconds, accs = validate(lm, batches, read_only)
                times[read_only].append(seconds)
                times.setdefault(("acc", read_only), accs)
        full, part = statistics.median(times[False]), statistics.median(times[True])
        ratios[arch] = full / part
        print(f"{arch}: every logit {full:.3f} s, read positions {part:.3f} s per validation; trial accuracy "
              f"{times[('acc', False)]} vs {times[('acc', True)]}")
    print("ratio every logit / read positions: " + ", ".join(f"{a} {r:.2f}x" for a, r in ratios.items()))


if __name__ == "__main__":
    main()
