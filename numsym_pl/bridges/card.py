"""The model card (``README.md``) of an exported net: its architecture, its task, how it was
trained, how to load it, and the DAS alignments found in it (each IIA with its 95 % interval)."""

from __future__ import annotations

import json

from torch import nn


def _args(config: dict) -> str:
    """``Name(arg=value, ...)`` of a ``{"class_path", "init_args"}`` config."""
    name = config.get("class_path", "?").rsplit(".", 1)[-1]
    return f"{name}({', '.join(f'{k}={json.dumps(v)}' for k, v in (config.get('init_args') or {}).items())})"


def _iia(record: dict, field: str) -> str:
    """``0.912 [0.890, 0.930]``: an IIA of ``record`` with its interval; ``-`` when absent."""
    value = record.get(field)
    if value is None:
        return "-"
    lo_hi = (record.get("intervals") or {}).get(field)
    return f"{value:.3f}" + (f" [{lo_hi[0]:.3f}, {lo_hi[1]:.3f}]" if lo_hi else "")


def alignment_table(records: list[dict]) -> list[str]:
    """Markdown table lines: one row per alignment record (``das_result.json``)."""
    lines = ["| alignment | IIA [95 % interval] | effective IIA [95 % interval] | no-op floor | test pairs |",
             "| --- | --- | --- | --- | --- |"]
    for r in records:
        floor = "-" if r.get("iia_none") is None else f"{r['iia_none']:.3f}"
        cells = [f"`{r.get('key', '?')}`", _iia(r, "iia"), _iia(r, "iia_effective"), floor, str(r.get("n", "-"))]
        lines.append(f"| {' | '.join(cells)} |")
    return lines


def model_card(net: nn.Module, config: dict, records: list[dict], featurizer: dict | None) -> str:
    """The README.md text of an export: ``config`` is what ``config.json`` holds, ``records`` the
    alignments (may be empty), ``featurizer`` what ``featurizer.json`` holds (or None)."""
    n_params = sum(p.numel() for p in net.parameters())
    module, trained = config.get("module") or {}, config.get("trained") or {}
    sites = ", ".join(f"`{s}`" for s in net.sites)
    lines = [f"# numsym_pl {type(net).__name__}", "",
             "A next-token model trained by numsym_pl on a counting task, exported to safetensors.", "",
             "## Architecture", "", f"`{_args(config['net'])}`: {n_params:,} parameters.", "",
             f"Sites (DAS hook points): {sites}.", "", "## Task", "", f"`{_args(config['task'])}`", ""]
    if module:
        where = f"; checkpoint at epoch {trained.get('epoch')}, step {trained.get('global_step')}" if trained else ""
        lines += ["## Training", "", ", ".join(f"{k}={json.dumps(v)}" for k, v in module.items()) + where + ".", ""]
    lines += ["## Files", "", "- `model.safetensors`: the net's weights (its `state_dict`)",
              "- `config.json`: the net's class path and arguments, the task's, the training settings"]
    if featurizer:
        lines.append(f"- `featurizer.safetensors` + `featurizer.json`: the DAS featurizer fitted at site "
                     f"`{featurizer.get('site')}` ({featurizer.get('key')})")
    lines += ["", "## Loading", "", "```python", "import numsym_pl", "", "exported = numsym_pl.load(\"DIR\")",
              "logits = exported.net(tokens)  # tokens: [B, L] ids of exported.task.vocab", "```", "",
              "`numsym_pl das --ckpt_path DIR ...` runs DAS on it again.", ""]
    if records:
        lines += ["## Alignments (DAS)", "", *alignment_table(records), "",
                  ("IIA: interchange-intervention accuracy on held-out counterfactual pairs; effective IIA: on "
                   "the pairs whose label the intervention must change; no-op floor: IIA without intervening."), ""]
    return "\n".join(lines)
