"""DASCallback: IIA recorded beside task accuracy during training (learning dynamics)."""

from __future__ import annotations

import contextlib
from typing import Optional
from pathlib import Path

import lightning.pytorch as pl
import torch
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities import rank_zero_info

from numsym_pl.analysis.figures import learning_dynamics
from numsym_pl.das.alignment import Alignment, check_distinct
from numsym_pl.das.background import BackgroundFits, fit_alignments, in_one_thread
from numsym_pl.das.record import BASELINE_FIELDS, ROW_FIELDS, ROWS_FILE, write_rows
from numsym_pl.das.run import check_alignment
from numsym_pl.das.settings import SearchSettings
from numsym_pl.errors import ConfigError
from numsym_pl.seeding import derive
from numsym_pl.tasks.base import TaskFamily



#: the columns of a fit's curve logged to wandb (``search.Fitted.history``)
CURVE_COLUMNS = ("step", "lr", "loss", "iia_train", "iia_val", "loss_val")


class DASCallback(pl.Callback):
    """Every ``every_n_epochs`` training epochs, and at the end of fit, fits DAS for each alignment
    on a frozen copy of the net (on one CPU thread, or on the GPU) and logs
    ``das/<program>.<variables>/<site>/iia`` (its 95 % interval ``iia_lo`` / ``iia_hi``, the floor
    ``iia_none``, ``iia_effective``, the baselines, steps and seconds) at the current epoch and
    global step, and keeps every row (``AlignmentResult.row``) in ``das_history.json`` in the run
    directory, which a study cell reads.

    DAS has its own RNG, seeded from ``settings.seed`` and the epoch, and the global RNG state is
    restored afterwards, so a run with this callback trains exactly like one without it. It runs
    identically on every DDP rank (same pairs and seeds, no collectives), so the logged IIA equals a
    single-process run on the same weights. Its state (history, last rotations) is checkpointed.

    Args:
        alignments: what to align, each ``{program, variables, site, intervention}`` (``Alignment``).
        every_n_epochs: run DAS after every N-th training epoch.
        settings: DAS settings (pairs, steps, lr, early stop, baselines); ``precision`` follows
            the trainer's unless set here to something other than ``32``.
        warm_start: start each fit from the previous rotation of the same alignment (fewer steps;
            report it, since the rotation then carries history).
        at_fit_end: also run once when fit ends (if the last epoch was not a DAS epoch).
        at_fit_start: also run once before the first training step of a fresh fit, on the net as
            initialised: the untrained-net control, logged as epoch -1 at step 0 (the curve's
            starting point, and the IIA a trained net must beat).
        figure: write ``figures/learning_dynamics.png`` into the run directory at the end of fit
            (and log it to wandb with a table of the values when wandb is the logger).
        dense_between: ``[lo, hi]``: also run after every training epoch whose validation trial
            accuracy lies in ``[lo, hi)``, so that the checks are dense around the accuracy
            transition (with validation every epoch, one check per epoch there).
        background: on a CPU, fit in a worker process beside training
            (``numsym_pl.das.background``) when the trainer has more than one thread (a core to
            spare; a study cell given one thread beside others fits here): epoch E's alignments
            are fitted on a snapshot of the net of epoch E while the next epochs train, and logged
            at epoch E's global step once back.
            Every fit is done before a checkpoint is written (so it holds the whole history) and
            before fit ends; the one at the end of fit runs here, beside the worker's last. On a
            CPU the callback fits on one thread either way (``das.background.in_one_thread``; the
            float sums of a fit depend on the thread count), so ``background`` changes when the rows
            come, never what they hold. On a GPU the callback fits in this process.
    """

    def __init__(self, alignments: list[Alignment] | None = None, every_n_epochs: int = 10,
                 settings: SearchSettings | None = None, warm_start: bool = False, at_fit_end: bool = True,
                 at_fit_start: bool = False, figure: bool = True, background: bool = False,
                 dense_between: Optional[tuple[float, float]] = None):
        if every_n_epochs < 1:
            raise ConfigError(f"every_n_epochs: must be >= 1, got {every_n_epochs}")
        if dense_between is not None and not 0 <= dense_between[0] < dense_between[1] <= 1:
            raise ConfigError(f"dense_between: must be [lo, hi] with 0 <= lo < hi <= 1, got {list(dense_between)}")
        self.dense_between = None if dense_between is None else tuple(dense_between)
        self.alignments = [a if isinstance(a, Alignment) else Alignment(**a) for a in (alignments or [Alignment()])]
        self.every_n_epochs, self.warm_start, self.at_fit_end, self.figure = (every_n_epochs, warm_start,
                                                                              at_fit_end, figure)
        self.at_fit_start = at_fit_start
        self.settings = settings or SearchSettings(n_train=2000, n_val=500, n_test=500, max_steps=300, progress=False)
        self.history: list[dict] = []  # one row per (epoch, alignment)
        self.accuracy: list[dict] = []  # one row per validation
        self.rotations: dict[str, dict] = {}
        self._last_epoch: int | None = None
        self._worker = BackgroundFits() if background else None
        self._trainer = None
        self._rows_path: Path | None = None

    # ---- hooks ----------------------------------------------------------------------------------
    def setup(self, trainer, pl_module, stage: str) -> None:
        self._trainer = trainer  # state_dict, which Lightning calls without it, logs the fits it waits for
        # asked once here, with every rank (log_dir is a collective), then written by rank zero as rows come
        self._rows_path = Path(trainer.log_dir or trainer.default_root_dir) / ROWS_FILE
        # sites filled in from the net, then refused if two would share a metric key
        self.alignments = check_distinct([a.for_net(pl_module.net) for a in self.alignments])
        for a in self.alignments:  # fail now, not after N epochs of training
            check_alignment(pl_module.net, a)

    def on_validation_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking or trainer.state.fn != "fit":
            return
        row = {"epoch": trainer.current_epoch, "step": trainer.global_step}
        row.update({k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/acc_trial")})
        self.accuracy = [r for r in self.accuracy if r["epoch"] != row["epoch"]] + [row]

    def on_train_start(self, trainer, pl_module) -> None:
        if self.at_fit_start and trainer.global_step == 0 and not any(r["epoch"] == -1 for r in self.history):
            self.run(trainer, pl_module, epoch=-1)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self._last_epoch = trainer.current_epoch
        self._collect(trainer)
        if (trainer.current_epoch + 1) % self.every_n_epochs == 0 or self._in_transition(trainer.current_epoch):
            self.run(trainer, pl_module)

    def on_fit_end(self, trainer, pl_module) -> None:
        last = self._last_epoch  # trainer.current_epoch has already moved past the last epoch here
        asked = {r["epoch"] for r in self.history} | ({tag[0] for tag in self._worker.asked} if self._worker else set())
        if self.at_fit_end and last is not None and last not in asked:
            if self.warm_start:  # it starts from the rotation of the worker's last fit
                self._collect(trainer, wait=True)
            fitted = self._fit_here(trainer, pl_module, last)  # nothing else to overlap now: here, beside the worker
            self._collect(trainer, wait=True)  # the rows in epoch order
            self._record(trainer, last, trainer.global_step, *fitted)
        self._collect(trainer, wait=True)
        if self.figure and self.history:
            run_dir = Path(trainer.log_dir or trainer.default_root_dir)  # a collective: every rank asks
            if trainer.is_global_zero:
                self.write_figure(trainer, run_dir)

    def teardown(self, trainer, pl_module, stage: str) -> None:
        if self._worker is not None:
            self._worker.close()

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        if self._worker is not None:
            self._worker.close(cancel=True)

    # ---- work -----------------------------------------------------------------------------------
    def _in_transition(self, epoch: int) -> bool:
        """Whether this epoch's validation put the trial accuracy inside ``dense_between``."""
        if self.dense_between is None:
            return False
        acc = next((r.get("val/acc_trial") for r in self.accuracy if r["epoch"] == epoch), None)
        return acc is not None and self.dense_between[0] <= acc < self.dense_between[1]

    def _task(self, trainer) -> TaskFamily:
        task = getattr(trainer.datamodule, "task", None)
        if task is None:
            raise ConfigError("DASCallback: the data module must expose `task` (use numsym_pl.data.TrialDataModule)")
        return task

    def _settings(self, trainer, epoch: int) -> SearchSettings:
        s = SearchSettings(**{**self.settings.__dict__})
        s.seed = derive(self.settings.seed, "epoch", epoch) if epoch >= 0 else derive(self.settings.seed, "untrained")
        if trainer.fast_dev_run:  # a smoke run exercises the DAS path, it does not measure anything
            s.n_train, s.n_val, s.n_test, s.max_steps, s.eval_every = 64, 32, 32, 2, 1
        if s.precision in ("32", "32-true") and str(trainer.precision).startswith(("bf16", "16")):
            s.precision = str(trainer.precision)  # the net runs under the trainer's autocast; the rotation stays fp32
        return s

    def _in_background(self, pl_module) -> bool:
        """Background fits need a core to spare: a trainer given one thread (a study cell beside
        others) fits here, which is faster there (and gives the same rows)."""
        return self._worker is not None and pl_module.device.type == "cpu" and torch.get_num_threads() > 1

    def _inits(self) -> dict[str, dict]:
        return {a.key: self.rotations[a.key] for a in self.alignments if self.warm_start and a.key in self.rotations}

    def _fit_here(self, trainer, pl_module, epoch: int) -> tuple[list, set[str]]:
        """(each alignment's result and learned state, the keys of those warm-started), fitted here."""
        task, settings, inits = self._task(trainer), self._settings(trainer, epoch), self._inits()
        cuda = [pl_module.device.index or 0] if pl_module.device.type == "cuda" else []
        threads = in_one_thread() if pl_module.device.type == "cpu" else contextlib.nullcontext()
        with threads, torch.random.fork_rng(devices=cuda), torch.inference_mode(False), torch.enable_grad():
            return fit_alignments(pl_module.net, task, self.alignments, settings, inits), set(inits)

    def run(self, trainer, pl_module, epoch: int | None = None) -> list[dict]:
        """Fit every alignment now and log the results (in the background: ask the worker, and
        return the rows of nothing yet)."""
        epoch = trainer.current_epoch if epoch is None else epoch
        if not self._in_background(pl_module):
            return self._record(trainer, epoch, trainer.global_step, *self._fit_here(trainer, pl_module, epoch))
        if self.warm_start:  # the previous rotation is where this fit starts
            self._collect(trainer, wait=True)
        inits = self._inits()
        self._worker.submit((epoch, trainer.global_step, set(inits)), pl_module.net, self._task(trainer),
                            self.alignments, self._settings(trainer, epoch), inits)
        return []

    def _collect(self, trainer, wait: bool = False) -> None:
        """Log what the worker has finished (with ``wait``, everything it was asked for)."""
        if self._worker is not None:
            for (epoch, step, warm), fitted in self._worker.done(wait):
                self._record(trainer, epoch, step, fitted, warm)

    def _record(self, trainer, epoch: int, step: int, fitted: list, warm: set[str]) -> list[dict]:
        """Keep and log the fits of ``epoch`` (at global step ``step``; ``warm``: the keys warm-started)."""
        rows = []
        for a, (result, state) in zip(self.alignments, fitted):
            if state is not None and epoch >= 0:  # the untrained control does not warm-start training's fits
                self.rotations[a.key] = state
            rows.append(result.row(epoch, step, a, warm_start=a.key in warm))
            full = "-" if result.iia_full_swap is None else f"{result.iia_full_swap:.3f}"
            rank_zero_info(f"[DAS] epoch {epoch} {a.key}: IIA {result.iia:.3f} (full swap {full}, "
                           f"{result.steps} steps, {result.seconds:.1f}s)")
        self.history = sorted([r for r in self.history if r["epoch"] != epoch] + rows, key=lambda r: r["epoch"])
        if self._rows_path is not None and trainer.is_global_zero:
            write_rows(self._rows_path, self.history)
        metrics = {"epoch": float(epoch)}
        for r in rows:
            metrics.update({f"das/{r['key']}/{name}": float(r[name]) for name in ROW_FIELDS if r[name] is not None})
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=step)
            if isinstance(logger, WandbLogger):  # each fit's curve: validation IIA and loss over its steps
                for a, (result, _) in zip(self.alignments, fitted):
                    curve = (result.fit or {}).get("history") or []
                    logger.log_table(key=f"das/{a.key}/fit_curve", columns=["epoch", *CURVE_COLUMNS],
                                     data=[[epoch, *(r.get(c) for c in CURVE_COLUMNS)] for r in curve])
        return rows

    def write_figure(self, trainer, run_dir: Path) -> Path:
        path = learning_dynamics(self.accuracy, self.history, run_dir / "figures" / "learning_dynamics.png")
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.log_image(key="figures/learning_dynamics", images=[str(path)])
                cols = ["epoch", "step", "key", "iia", "iia_lo", "iia_hi", *BASELINE_FIELDS.values(), "steps",
                        "seconds"]
                logger.log_table(key="das/history", columns=cols, data=[[r.get(c) for c in cols] for r in self.history])
        return path

    # ---- checkpointing --------------------------------------------------------------------------
    def state_dict(self) -> dict:
        if self._trainer is not None:  # a checkpoint holds every fit asked for before it
            self._collect(self._trainer, wait=True)
        return {"history": self.history, "accuracy": self.accuracy, "rotations": self.rotations}

    def load_state_dict(self, state: dict) -> None:
        self.history, self.accuracy = list(state["history"]), list(state["accuracy"])
        self.rotations = dict(state["rotations"])
