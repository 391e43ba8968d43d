import csv

import lightning.pytorch as pl

from callbacks.count_probe import CountProbe
from numsym_pl.data import TrialDataModule
from numsym_pl.lit_module import NextTokenLM
from numsym_pl.models import GRULM
from numsym_pl.tasks import VOCAB, NumericEquivalence


def test_readme_example_callback_logs_a_probe(tmp_path):
    pl.seed_everything(0)
    dm = TrialDataModule(NumericEquivalence("single", max_count=8, heldout_counts=(3,), ood_counts=(9,)),
                         train_size=256, val_size=32, batch_size=32)
    logger = pl.loggers.CSVLogger(tmp_path, name="p", version=0)
    trainer = pl.Trainer(max_epochs=4, logger=logger, callbacks=[CountProbe(every_n_epochs=2)], enable_progress_bar=False,
                         enable_checkpointing=False)
    trainer.fit(NextTokenLM(GRULM(VOCAB.size, 32), lr=3e-3, warmup_steps=1), dm)
    r2 = [float(r["probe/count_r2"]) for r in csv.DictReader(open(tmp_path / "p" / "version_0" / "metrics.csv"))
          if r.get("probe/count_r2")]
    assert len(r2) == 2 and all(-1 < v <= 1 for v in r2)
