# %% [markdown]
# # Tutorial: does a GRU carry a count?
#
# This notebook trains a small GRU on the Multi-Object task, asks with Distributed Alignment
# Search (DAS) whether its state holds the Up-Down program's `count`, reads the result beside its
# controls, and then tries a rival program, Up-Up's `demo_count`.
#
# It runs as a notebook or as a plain script (`python docs/tutorials/tutorial.py`). With
# `NUMSYM_TUTORIAL_QUICK=1` every budget is tiny (under a minute on a 2-core CPU; the numbers then
# mean nothing); without it, the net trains until it solves the task and DAS gets its reference
# budget (about five minutes on a 2-core CPU).

# %%
import os

QUICK = os.environ.get("NUMSYM_TUTORIAL_QUICK") == "1"

# %% [markdown]
# ## 1. Train a GRU on Multi-Object
#
# A trial is `B D×n T R×n E`: after the begin token, `n` demo tokens (each one of three types on
# Multi-Object), the trigger `T`, then the net must answer with exactly `n` `R`s and the end token
# `E`. The objects below are what `configs/gru.yaml` builds from its YAML: the `__init__`
# arguments are the config keys.

# %%
import lightning.pytorch as pl
import torch

from numsym_pl.data import TrialDataModule
from numsym_pl.lit_module import NextTokenLM
from numsym_pl.models import GRULM
from numsym_pl.tasks import NumericEquivalence
from numsym_pl.trained_at import TrainedAt

pl.seed_everything(0)
task = NumericEquivalence(variant="multi")
data = TrialDataModule(task=task, train_size=1000, val_size=200 if QUICK else 1000, batch_size=128, seed=0)
net = GRULM(vocab_size=data.vocab_size, hidden_size=128)
lm = NextTokenLM(net, lr=5e-4, warmup_steps=100, lr_decay="cosine", pad_id=data.pad_id)

trained_at = TrainedAt()  # stop once trial accuracy >= 0.999 (in distribution and held out) twice running
trainer = pl.Trainer(
    max_epochs=10 if QUICK else 150,
    check_val_every_n_epoch=5,
    callbacks=[trained_at],
    logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
)
trainer.fit(lm, data)
print({k: round(float(v), 3) for k, v in trainer.callback_metrics.items() if k.startswith("val/acc_trial")})
print("trained at epoch", trained_at.reached["epoch"] if trained_at.reached else "- (not trained)")

# %% [markdown]
# `val/acc_trial` is in-distribution trial accuracy (a trial counts only if greedy decoding
# reproduces every `R` and the `E`), `val/acc_trial_heldout` the counts {4, 9, 14, 17} never
# trained on, `val/acc_trial_ood` the counts 21..30.
#
# ## 2. Align Up-Down's `count` with the GRU's state
#
# An `Alignment` names the hypothesis: a program, its variable(s), and the site of the net
# (`state`, the GRU's hidden state after each step); its intervention defaults to the interchange
# (a learned rotation, 16 coordinates swapped). `SearchSettings` sets the budget: pairs and steps.

# %%
from numsym_pl.das import Alignment, SearchSettings, run_alignment

if QUICK:
    settings = SearchSettings(n_train=500, n_val=200, n_test=200, max_steps=60, eval_every=20, random_seeds=2,
                              progress=False)
else:
    settings = SearchSettings(progress=False)  # reference: 10k / 1k / 1k pairs, Adam 1e-3, up to 2,000 steps

up_down = Alignment(program="up_down", variables=["count"], site="state")  # interchange, subspace 16, rotation
result, rotation = run_alignment(lm.net, task, up_down, settings)

# %% [markdown]
# The untrained-net control: the same alignment, settings and pairs on a GRU of the same width that
# never trained. An expressive enough featurizer could align a random net; this one should not.

# %%
torch.manual_seed(1)
untrained = GRULM(vocab_size=data.vocab_size, hidden_size=128)
control, _ = run_alignment(untrained, task, up_down, settings)

# %% [markdown]
# ## 3. Read the result and its controls
#
# - `iia`: interchange-intervention accuracy on the held-out pairs, with its 95 % Wilson interval.
# - `iia_none`: the no-op floor, the same pairs with no intervention at all; `iia_effective` is the
#   IIA on the `n_effective` pairs where the intervention must change the answer.
# - the baselines: raw neurons (`identity`), the whole state (`full`), random rotations (`random`);
# - the untrained net's IIA, from the control above.

# %%
def show(result):
    lo, hi = result.intervals()["iia"]
    print(f"{result.alignment['program']}.{'+'.join(result.alignment['variables'])} at {result.alignment['site']}")
    print(f"  IIA                {result.iia:.3f} [{lo:.3f}, {hi:.3f}] on {result.n} pairs")
    print(f"  IIA, effective     {result.iia_effective:.3f} on {result.n_effective} pairs")
    print(f"  floor (no swap)    {result.iia_none:.3f}   discriminating: {result.discriminating}")
    print(f"  raw neurons        {result.iia_identity:.3f}")
    print(f"  full-state swap    {result.iia_full_swap:.3f}")
    print(f"  random rotations   {result.iia_random:.3f}")
    print(f"  {result.steps} steps, {result.seconds:.1f} s")


show(result)
print(f"  untrained net      {control.iia:.3f}")

# %% [markdown]
# ## 4. IIA over the fit, and by count
#
# `result.fit["history"]` holds the fit's checks (train and validation IIA every `eval_every`
# steps); `result.per_count` the test IIA for each count the source carried.

# %%
import matplotlib.pyplot as plt

history = result.fit["history"]
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.5))
ax1.plot([h["step"] for h in history], [h["iia_val"] for h in history], marker="o", label="validation pairs")
ax1.plot([h["step"] for h in history], [h["iia_train"] for h in history], marker=".", label="training pairs")
ax1.axhline(result.iia_none, color="grey", ls="--", label="no-op floor")
ax1.set(xlabel="DAS step", ylabel="IIA", ylim=(0, 1.02), title="Up-Down count: IIA during the fit")
ax1.legend()
counts = sorted(result.per_count, key=int)
ax2.bar([int(c) for c in counts], [result.per_count[c] for c in counts])
ax2.set(xlabel="count carried by the source", ylabel="IIA", ylim=(0, 1.02), title="IIA per count")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 5. A rival program: Up-Up's `demo_count`
#
# Up-Up counts the demo tokens up and the responses up too, and stops at equality. It predicts
# other counterfactuals than Up-Down: if the GRU runs Up-Down, the Up-Up alignment scores lower.

# %%
rival, _ = run_alignment(lm.net, task, Alignment(program="up_up", variables=["demo_count"], site="state"), settings)
show(rival)

# %% [markdown]
# ## Next
#
# - The same from the command line: `numsym_pl fit --config configs/gru.yaml`, then
#   `numsym_pl das --ckpt_path runs/gru/version_0/checkpoints/last.ckpt --program up_down --variables count --controls`
#   ([DAS after training](../../how-to/das/)).
# - Other sites, subspace sizes and featurizers at once: `numsym_pl sweep` ([Sweeps](../../how-to/sweeps/)).
# - What every number means: [the method](../../method/).
