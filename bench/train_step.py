"""Training step: the Lightning Trainer against a plain PyTorch loop on the same net, batches and
optimizer, alternated in one process; tokens/s and effective GFLOP/s against a large fp32 matmul
measured in the same run (the machine's ceiling).

    python bench/train_step.py [--arch gru|lstm|rope] [--epochs 6] [--rounds 3]

Prints a table per architecture and the wall ratio (Lightning / plain) last.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import lightning.pytorch as pl
import torch
import torch.nn.functional as F

from numsym_pl.data import TrialDataModule
from numsym_pl.lit_module import NextTokenLM
from numsym_pl.models import GRULM, LSTMLM, TransformerLM
from numsym_pl.tasks import VOCAB

NETS = {"gru": lambda: GRULM(VOCAB.size, 128), "lstm": lambda: LSTMLM(VOCAB.size, 64),
        "rope": lambda: TransformerLM(VOCAB.size, 128, positional="rope")}


def matmul_gflops(n: int = 2048, repeats: int = 5) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    t0 = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n**3 * repeats / (time.perf_counter() - t0) / 1e9


def flops_per_token(net) -> float:
    """Forward + backward ~ 3x forward multiply-adds of the dense layers (2 FLOPs each)."""
    macs = 0
    for m in net.modules():
        if isinstance(m, torch.nn.Linear):
            macs += m.in_features * m.out_features
        elif isinstance(m, (torch.nn.GRU, torch.nn.LSTM)):
            macs += m.weight_ih_l0.numel() + m.weight_hh_l0.numel()
    return 3 * 2 * macs


def plain_epochs(net, dm, epochs: int) -> tuple[float, int]:
    opt = torch.optim.Adam(net.parameters(), lr=5e-4)
    tokens = 0
    t0 = time.perf_counter()
    for _ in range(epochs):
        for batch in dm.train_dataloader():
            x = batch["tokens"]
            target = x[:, 1:]
            mask = target != VOCAB.PAD
            loss = F.cross_entropy(net(x[:, :-1], out_mask=mask), target[mask])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            tokens += int(mask.sum())
    return time.perf_counter() - t0, tokens


def lightning_epochs(net, dm, epochs: int) -> float:
    trainer = pl.Trainer(max_epochs=epochs, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, limit_val_batches=0, num_sanity_val_steps=0)
    lm = NextTokenLM(net, lr=5e-4, warmup_steps=1)
    t0 = time.perf_counter()
    trainer.fit(lm, dm)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--arch", choices=sorted(NETS), nargs="*", default=sorted(NETS))
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    ceiling = matmul_gflops()
    print(f"threads {torch.get_num_threads()}, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '')}, "
          f"fp32 matmul ceiling {ceiling:.1f} GFLOP/s")
    print(f"{'arch':<6}{'plain s':>9}{'lightning s':>13}{'tokens/s':>11}{'GFLOP/s':>9}{'of ceiling':>12}{'ratio':>8}")
    for arch in args.arch:
        dm = TrialDataModule(batch_size=128)
        dm.setup()
        plain, light, toks = [], [], 0
        for r in range(args.rounds):  # alternate which runs first
            order = ("plain", "lightning") if r % 2 == 0 else ("lightning", "plain")
            for which in order:
                torch.manual_seed(r)
                net = NETS[arch]()
                if which == "plain":
                    t, toks = plain_epochs(net, dm, args.epochs)
                    plain.append(t)
                else:
                    light.append(lightning_epochs(net, dm, args.epochs))
        p, lt = statistics.median(plain), statistics.median(light)
        tps = toks / p
        gf = tps * flops_per_token(NETS[arch]()) / 1e9
        print(f"{arch:<6}{p:>9.2f}{lt:>13.2f}{tps:>11.0f}{gf:>9.2f}{gf / ceiling:>12.1%}{lt / p:>8.2f}")


if __name__ == "__main__":
    main()
