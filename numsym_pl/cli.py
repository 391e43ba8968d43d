"""The ``numsym_pl`` command: LightningCLI (fit / validate / test / predict) plus the extra
subcommands of ``numsym_pl.commands``."""

from __future__ import annotations

import sys
from pathlib import Path

from jsonargparse import Namespace
from lightning.pytorch.cli import LightningCLI, SaveConfigCallback

from numsym_pl.commands import COMMANDS, run_command
from numsym_pl.last_checkpoint import LastCheckpoint
from numsym_pl.trained_at import TrainedAt
from numsym_pl.data import TrialDataModule
from numsym_pl.errors import NumSymError
from numsym_pl.loggers import fall_back_from_unreachable_loggers, keep_csv_history_on_resume
from numsym_pl.preflight import check_output_dirs, check_resume_checkpoint
from numsym_pl.lit_module import NextTokenLM


class SaveConfigToLoggers(SaveConfigCallback):
    """Writes config.yaml into the run directory and hands the full config to every logger
    (wandb shows it as the run's config; CSV/TensorBoard write it to hparams.yaml)."""

    def save_config(self, trainer, pl_module, stage: str) -> None:
        config = self.config.as_dict()
        for logger in trainer.loggers:
            logger.log_hyperparams({"config": config})


class NumSymCLI(LightningCLI):
    """LightningCLI whose model's ``vocab_size`` and ``pad_id`` come from the data module, and
    which checks outputs, the checkpoint to resume from and the loggers before a fit starts.

    Two callbacks every run has are config groups of their own, beside ``trainer.callbacks``, so
    that an overlay changes one argument (``checkpoint: {every_n_epochs: 10}``,
    ``trained_at: {stop: false}``) without repeating a callback list: ``checkpoint`` (Lightning's
    ModelCheckpoint, as ``numsym_pl.last_checkpoint.LastCheckpoint``, whose ``last.ckpt`` is the final net;
    configs/base/checkpoint.yaml) and ``trained_at`` (numsym_pl.trained_at.TrainedAt:
    the paper's criterion, stopping the fit once met, ``trainer.max_epochs`` the ceiling).
    ``trainer.callbacks`` holds the rest (the DAS callback, user callbacks)."""

    def add_arguments_to_parser(self, parser) -> None:
        parser.add_lightning_class_args(LastCheckpoint, "checkpoint")
        parser.add_lightning_class_args(TrainedAt, "trained_at")
        parser.link_arguments("data.vocab_size", "model.net.init_args.vocab_size", apply_on="instantiate")
        parser.link_arguments("data.pad_id", "model.pad_id", apply_on="instantiate")

    def parse_arguments(self, parser, args) -> None:
        """After parsing and before LightningCLI reads the checkpoint's hyper-parameters into the
        model config: refuse, by name, a checkpoint that is missing, unreadable or holds another
        net than the config asks for."""
        super().parse_arguments(parser, args)
        sub = self.config.get("subcommand")
        if sub:
            net = self.config[sub]["model"]["net"]
            check_resume_checkpoint(self.config[sub].get("ckpt_path"),
                                    net.as_dict() if hasattr(net, "as_dict") else net)

    def before_instantiate_classes(self) -> None:
        """A logger whose ``name`` is null (configs/base/trainer.yaml) is named after the first
        ``--config`` file: ``configs/gru.yaml`` logs to ``runs/gru/``."""
        cfg = self.config[self.config.subcommand] if self.config.get("subcommand") else self.config
        logger, configs = cfg.get("trainer", {}).get("logger"), cfg.get("config") or []
        args = logger.get("init_args") if isinstance(logger, Namespace) else None
        if args is not None and "name" in args and args.name is None and configs:
            args.name = Path(str(configs[0])).stem

    def before_fit(self) -> None:
        check_output_dirs(self.trainer)
        ckpt_path = self.config[self.subcommand].get("ckpt_path")
        fall_back_from_unreachable_loggers(self.trainer)
        keep_csv_history_on_resume(self.trainer, ckpt_path)


def lightning_main(args: list[str] | None = None) -> NumSymCLI:
    return NumSymCLI(
        NextTokenLM,
        TrialDataModule,
        seed_everything_default=0,
        save_config_callback=SaveConfigToLoggers,
        save_config_kwargs={"overwrite": True},
        args=args,
    )


def named_error(err: BaseException) -> NumSymError | None:
    """The NumSymError behind ``err``: itself, or one it was raised from (jsonargparse wraps an
    error raised while instantiating a class of an Optional/Union type in a ValueError)."""
    seen = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, NumSymError):
            return err
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return None


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    try:
        if args and args[0] in COMMANDS:
            run_command(args[0], args[1:])
        else:
            lightning_main(argv)
    except Exception as err:
        named = named_error(err)
        if named is None:
            raise
        print(f"error: {named}", file=sys.stderr)  # names its field, file, epoch or step: no traceback needed
        sys.exit(named.exit_code)


if __name__ == "__main__":
    main()
