"""A study: a grid of ordinary ``fit`` + ``das`` runs, as one YAML file (the ``Study`` signature
is its schema).

    name: paper_main
    architectures:                 # name -> fit config, its alignments, how a size is set
      gru: {config: configs/gru.yaml, alignments: [{program: up_down, variables: [count], site: state}],
            size_args: {model.net.init_args.hidden_size: 1.0}}
    tasks: {multi: [], same: [configs/tasks/same_object.yaml]}   # name -> overlay configs
    seeds: [0, 1, 2, 3, 4]
    sizes: [null]                  # d values; null keeps each config's own size
    fit_args: [--config, configs/callbacks/checkpoint_only.yaml]
    das: {n_train: 10000, ...}     # numsym_pl.das.SearchSettings
    analyses: [gradience, ood_interventions, phase_flips]
    quick: {seeds: [0], das: {max_steps: 300}}   # merged over the rest by --quick

A cell is one (architecture, task, seed, size); its directory is ``<out_dir>/cells/<cell id>``.
"""

from __future__ import annotations

import itertools
from dataclasses import replace, dataclass, field
from pathlib import Path
from typing import Literal, Optional

from numsym_pl.checkpoints import device_name
from numsym_pl.das.alignment import Alignment, check_distinct
from numsym_pl.das.settings import SearchSettings
from numsym_pl.errors import ConfigError
from numsym_pl.seeding import derive

ANALYSES = ("gradience", "ood_interventions", "phase_flips")


@dataclass
class Architecture:
    """One architecture of a study.

    Args:
        config: the ``numsym_pl fit`` config file.
        alignments: what to align on each of its trained checkpoints.
        size_args: fit options set from the cell's size d, with a multiplier
            (``{model.net.init_args.hidden_size: 0.5}`` gives an LSTM whose [h; c] is d wide).
        fit_args: extra ``numsym_pl fit`` arguments for this architecture only.
    """

    config: str
    alignments: list[Alignment] = field(default_factory=list)
    size_args: dict[str, float] = field(default_factory=dict)
    fit_args: list[str] = field(default_factory=list)


@dataclass
class Cell:
    """One run of the grid: an ordinary fit, then DAS for each alignment, then the analyses."""

    id: str
    arch: str
    task: str
    seed: int
    size: Optional[int]
    fit_args: list[str]
    alignments: list[Alignment]
    das: SearchSettings
    analyses: list[str]
    dir: Path
    threads: int = 1
    device: str = "cpu"

    @property
    def das_seed(self) -> int:
        """The seed this cell's alignments are fitted from: a stream of the study's DAS seed and the
        cell's training seed, so that no two training seeds share pairs, starts or batch orders (the
        untrained-net controls, shared by the cells of an architecture and task, keep ``das.seed``)."""
        return derive(self.das.seed, "training_seed", self.seed)

    @property
    def labels(self) -> dict:
        return {"cell": self.id, "arch": self.arch, "task": self.task, "seed": self.seed, "size": self.size}


def scaled_subspace(alignment: Alignment, size: Optional[int]) -> Alignment:
    """The reference subspace is 16 of d = 128 (d / 8); the size sweep keeps that ratio, so
    small nets are not aligned with a subspace as wide as their whole state."""
    how = alignment.intervention
    if size is None or not how.learned:
        return alignment
    return replace(alignment, intervention=how.with_subspace(max(1, min(how.subspace, size // 8))))


class Study:
    """A grid of architectures x tasks x seeds x sizes, each cell a ``fit`` and its alignments.

    Args:
        name: the study's name (its directory under ``out_dir``'s parent by default).
        architectures: name -> ``Architecture``.
        tasks: name -> overlay configs (``[]`` is the architecture config's own task).
        seeds: ``seed_everything`` values.
        sizes: model widths d (``null`` keeps the config's); set through ``size_args``.
        fit_args: extra ``numsym_pl fit`` arguments for every cell.
        last_fit_args: ``numsym_pl fit`` arguments put last on every cell's command, after the
            architecture's own (``numsym_pl study ... -- --trainer.accelerator gpu`` sets them):
            what a run on another machine changes for all cells alike.
        das: DAS settings for every alignment (default: three DAS seeds); each cell fits from its own
            seed (``Cell.das_seed``).
        analyses: post-hoc analyses run on each cell (``gradience``, ``ood_interventions``,
            ``phase_flips``).
        out_dir: where cells and results go (default ``runs/studies/<name>``).
        max_parallel: cells run at once on this machine (each gets cores / max_parallel threads).
        device: where each cell's post-hoc alignments and their controls run: ``cpu`` (the
            default, where every figure in docs/findings was measured), ``cuda``, ``cuda:N`` or
            ``auto`` (CUDA when torch sees it). The fit runs where its trainer says (``--
            --trainer.accelerator gpu``); the analyses run on the CPU. Each alignment's record
            says its device.
        executor: ``local`` (processes on this machine) or ``submitit`` (SLURM, or submitit's
            local executor); see ``numsym_pl.study.executors``.
        executor_args: passed to ``submitit.AutoExecutor.update_parameters`` (e.g. ``slurm_partition``,
            ``timeout_min``, ``gpus_per_node``); ``cluster`` picks ``slurm`` / ``local``.
        quick: settings merged over these by ``--quick`` (a CPU-sized version of the study).
        task_alignments: task name -> alignments run on that task's cells, after the architecture's
            own (a family's competing programs: ``{two_type: [{program: two_counters, variables:
            [count_a]}, ...]}``); a site left out is each net's default site.
        wandb: log every finished cell as a wandb run (``numsym_pl.study.dashboard``):
            ``{project, entity, offline (default true), tags}``; none by default.
        claims: the claims file the report judges (``numsym_pl.analysis.claims``; default
            ``configs/claims/<name>.yaml`` where it exists); it decides no cell's numbers.
    """

    def __init__(self, name: str, architectures: dict[str, Architecture], tasks: Optional[dict[str, list[str]]] = None,
                 seeds: list[int] = (0,), sizes: list[Optional[int]] = (None,), fit_args: list[str] = (),
                 das: Optional[SearchSettings] = None, analyses: list[str] = (), out_dir: Optional[str] = None,
                 max_parallel: int = 2, executor: Literal["local", "submitit"] = "local",
                 executor_args: Optional[dict] = None, quick: Optional[dict] = None, wandb: Optional[dict] = None,
                 task_alignments: Optional[dict[str, list[Alignment]]] = None, last_fit_args: list[str] = (),
                 device: str = "cpu", claims: Optional[str] = None):
        if not architectures:
            raise ConfigError("architectures: a study needs at least one architecture")
        unknown = sorted(set(analyses) - set(ANALYSES))
        if unknown:
            raise ConfigError(f"analyses: unknown {unknown}; choose from {ANALYSES}")
        if max_parallel < 1:
            raise ConfigError(f"max_parallel: must be >= 1, got {max_parallel}")
        for arch_name, arch in architectures.items():
            if not Path(arch.config).is_file():
                raise ConfigError(f"architectures.{arch_name}.config: no such file {arch.config!r}")
            if any(s is not None for s in sizes) and not arch.size_args:
                raise ConfigError(f"architectures.{arch_name}.size_args: sizes are swept but this architecture "
                                  "does not say which option sets its size")
        self.name, self.architectures = name, architectures
        self.tasks = {"multi": []} if tasks is None else tasks
        self.seeds, self.sizes, self.fit_args = list(seeds), list(sizes), list(fit_args)
        self.last_fit_args, self.device = list(last_fit_args), device_name(device)
        self.das = das or SearchSettings(progress=False, seeds=3)
        self.analyses, self.max_parallel = list(analyses), max_parallel
        self.out_dir = Path(out_dir or Path("runs/studies") / name)
        self.executor, self.executor_args = executor, dict(executor_args or {})
        unknown = sorted(set(wandb or {}) - {"project", "entity", "offline", "tags"})
        if unknown:
            raise ConfigError(f"wandb: unknown settings {unknown}; "
                              "a study's wandb takes project, entity, offline, tags")
        self.wandb = None if wandb is None else dict(wandb)
        self.task_alignments = dict(task_alignments or {})
        if claims is not None and not Path(claims).is_file():
            raise ConfigError(f"claims: no such file {claims!r}")
        self.claims = claims
        unknown = sorted(set(self.task_alignments) - set(self.tasks))
        if unknown:
            raise ConfigError(f"task_alignments: {unknown} are not tasks of this study "
                              f"(its tasks are {sorted(self.tasks)})")

    def cells(self, threads: int = 1) -> list[Cell]:
        """Every cell of the grid, in a fixed order."""
        out = []
        for (arch_name, arch), (task_name, overlays), size, seed in itertools.product(
                self.architectures.items(), self.tasks.items(), self.sizes, self.seeds):
            args = ["--config", arch.config]
            for overlay in overlays:
                args += ["--config", overlay]
            args += [*self.fit_args, *arch.fit_args, "--seed_everything", str(seed), *self.last_fit_args]
            if size is not None:
                args += [a for key, mult in arch.size_args.items() for a in (f"--{key}", str(int(round(size * mult))))]
            cell_id = f"{arch_name}-{task_name}" + ("" if size is None else f"-d{size}") + f"-s{seed}"
            alignments = check_distinct([scaled_subspace(a, size)
                                         for a in [*arch.alignments, *self.task_alignments.get(task_name, [])]],
                                        f"architectures.{arch_name}.alignments")
            out.append(Cell(cell_id, arch_name, task_name, seed, size, args, alignments, self.das, self.analyses,
                            self.out_dir / "cells" / cell_id, threads, self.device))
        return out
