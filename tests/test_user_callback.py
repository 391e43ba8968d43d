import csv

import lightning.pytorch as pl
import numpy as np
import pytest

from callbacks.count_probe import CountProbe
from numsym_pl.analysis import probe
from numsym_pl.data import TrialDataModule
from numsym_pl.lit_module import NextTokenLM
from numsym_pl.models import GRULM
from numsym_pl.tasks import VOCAB, NumericEquivalence


def test_readme_example_callback_logs_a_probe(tmp_path, monkeypatch):
    """Every second epoch the callback logs the probe of the net as it is then (the last row: the fitted net's,
    with the callback's seed), which reads the count and the phase far above the same probe on shuffled labels."""
    pl.seed_everything(0)
    dm = TrialDataModule(NumericEquivalence("single", max_count=8, heldout_counts=(3,), ood_counts=(9,)),
                         train_size=256, val_size=32, batch_size=32)
    logger = pl.loggers.CSVLogger(tmp_path, name="p", version=0)
    trainer = pl.Trainer(max_epochs=4, logger=logger, callbacks=[CountProbe(every_n_epochs=2)],
                         enable_progress_bar=False, enable_checkpointing=False)
    lm = NextTokenLM(GRULM(VOCAB.size, 32), lr=3e-3, warmup_steps=1)
    trainer.fit(lm, dm)
    with open(tmp_path / "p" / "version_0" / "metrics.csv") as f:
        rows = [r for r in csv.DictReader(f) if r.get("probe/count_r2")]
    assert [int(r["epoch"]) for r in rows] == [1, 3]
    logged = {k: float(rows[-1][f"probe/{k}"]) for k in ("count_r2", "phase_acc")}
    # the last probe ran on the net as fitted, with trials seeded by its epoch (3): the same probe, run here
    fitted = probe.linear_decodability(lm.net, dm.task, "state", 400, seed=3)
    assert logged == {k: pytest.approx(fitted[k], abs=1e-6) for k in logged}
    collect = probe.collect_states

    def shuffled(*args, **kwargs):  # the same states, each variable's values permuted across them
        states, values, trial = collect(*args, **kwargs)
        rng = np.random.default_rng(0)
        return states, {v: rng.permutation(x) for v, x in values.items()}, trial
    monkeypatch.setattr(probe, "collect_states", shuffled)
    chance = probe.linear_decodability(lm.net, dm.task, "state", 400, seed=3)
    assert chance["count_r2"] < 0.1 and chance["phase_acc"] < 0.6
    assert all(float(r["probe/count_r2"]) > chance["count_r2"] + 0.8 for r in rows)
    assert all(float(r["probe/phase_acc"]) > chance["phase_acc"] + 0.3 for r in rows)
