"""DAS step: numsym_pl against pyvene's RotatedSpaceIntervention on the same trained net, the same
pairs, the same initial rotation, optimizer and batches; seconds per step (alternated step by step,
median) and IIA on the same held-out pairs after the same number of steps.

    pip install -e '.[bench]'
    python bench/das_pyvene.py [--ckpt_path RUN/checkpoints/last.ckpt] [--steps 300]

Recurrent nets: the script first tries pyvene on its own GRU (pyvene.models.gru, unit "t": an
intervention at one time step per pair) and prints what happens. With pyvene 0.1.8 it fails: the
"t" branch of ``scatter_neurons`` indexes ``[batch, 1, d]`` and cannot take the ``[batch, d]`` state
(a shape error), and its stateful setter intervenes on every row at every time step, giving rows
not selected at that step a zero source (the line restoring them is commented out). So the
comparison runs on what pyvene can run: the RoPE transformer at ``resid.1`` (the output of block 0,
unit "pos"), where both compute the same patched logits (checked before timing).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
import types
from pathlib import Path

import torch
import torch.nn.functional as F

from numsym_pl.checkpoints import load_checkpoint
from numsym_pl.das.iia import exact_rows
from numsym_pl.das.interventions.swap import SubspaceSwap
from numsym_pl.das.pairs.counterfactual import make_pairs
from numsym_pl.das.interventions.patched import evaluate, patched_logits
from numsym_pl.das.pairs.sets import clean_cache, source_states
from numsym_pl.models import TransformerLM
from numsym_pl.programs import get_program
from numsym_pl.tasks import VOCAB

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CKPT = ROOT / "runs/studies/paper_main_quick/cells/rope-multi-s0/fit/checkpoints/last.ckpt"


def pyvene_gru_attempt(pv) -> str:
    """Run pyvene's rotated-space intervention on its GRU at one time step per pair; what happened."""
    from pyvene.models.gru.modelings_gru import GRUConfig, GRULMHeadModel

    model = GRULMHeadModel(GRUConfig(include_emb=True, vocab_size=VOCAB.size, n_layer=1, h_dim=32, pdrop=0.0)).eval()
    cfg = pv.IntervenableConfig(representations=[pv.RepresentationConfig(0, "cell_output", "t", 1)],
                                intervention_types=pv.RotatedSpaceIntervention)
    iv = pv.IntervenableModel(cfg, model)
    x, src = torch.randint(3, 9, (4, 10)), torch.randint(3, 9, (4, 10))
    try:
        iv({"input_ids": x}, [{"input_ids": src}], {"sources->base": ([[[2], [3], [4], [5]]], [[[1], [6], [2], [3]]])})
    except Exception as err:  # noqa: BLE001 - reported, it is the finding
        return f"fails: {type(err).__name__}: {str(err).splitlines()[0]}"
    return "ran (a pyvene newer than 0.1.8?): compare on the GRU too"


def pyvene_transformer(pv, net: TransformerLM, block: int, subspace: int):
    """An IntervenableModel on ``net`` whose rotated-space intervention sits on block ``block``'s output."""
    from pyvene.models.constants import CONST_OUTPUT_HOOK

    pv.type_to_module_mapping[TransformerLM] = {"block_output": ("blocks[%s]", CONST_OUTPUT_HOOK)}
    pv.type_to_dimension_mapping[TransformerLM] = {"block_output": ("d_model",)}
    net.config = types.SimpleNamespace(d_model=net.d_model)  # what pyvene reads of a model
    net.device = torch.device("cpu")
    cfg = pv.IntervenableConfig(representations=[pv.RepresentationConfig(block, "block_output", "pos", 1)],
                                intervention_types=pv.RotatedSpaceIntervention)
    iv = pv.IntervenableModel(cfg, net)
    iv.disable_model_gradients()
    inter = next(iter(iv.interventions.values()))
    inter = inter[0] if isinstance(inter, tuple) else inter
    inter.set_interchange_dim(subspace)
    return iv, inter


def pyvene_logits(iv, pairs):
    locs = {"sources->base": ([[[int(p)] for p in pairs.source_pos]], [[[int(p)] for p in pairs.target_pos]])}
    _, out = iv({"tokens": pairs.cf[:, :-1]}, [{"tokens": pairs.source}], locs)
    return out[0] if isinstance(out, tuple) else out


def loss_of(logits, batch):
    return F.cross_entropy(logits[batch.loss_mask].float(), batch.cf[:, 1:][batch.loss_mask])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ckpt_path", default=str(DEFAULT_CKPT))
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--n_train", type=int, default=4000)
    ap.add_argument("--n_test", type=int, default=500)
    ap.add_argument("--subspace", type=int, default=16)
    ap.add_argument("--program", default="up_down", help="up_down (count) or ctx_distr (balance: a high-IIA case)")
    args = ap.parse_args()
    try:
        import pyvene as pv
    except ImportError:
        sys.exit("pyvene is not installed: pip install -e '.[bench]' (after torch==2.13.0)")

    print(f"pyvene on its GRU, one time step per pair: {pyvene_gru_attempt(pv)}")
    if not Path(args.ckpt_path).is_file():
        print(f"no checkpoint at {args.ckpt_path}: training a RoPE transformer (60 epochs) first")
        subprocess.run([sys.executable, "-m", "numsym_pl", "fit",
                        "--config", str(ROOT / "configs/transformer_rope.yaml"),
                        "--config", str(ROOT / "configs/callbacks/checkpoint_only.yaml"), "--trainer.max_epochs", "60",
                        "--trainer.logger.init_args.save_dir", str(DEFAULT_CKPT.parents[3]),
                        "--trainer.logger.init_args.name", "", "--trainer.logger.init_args.version", "fit"], check=True)
    lm, task = load_checkpoint(args.ckpt_path)
    net, site = lm.net.eval().requires_grad_(False), "resid.1"
    program = get_program(args.program)
    variables = program.variables[:1]
    train = make_pairs(task, program, variables, args.n_train, seed=0)
    test = make_pairs(task, program, variables, args.n_test, seed=2)
    t0 = time.perf_counter()
    src_train, src_test = source_states(net, train, site), source_states(net, test, site)
    cache_train, cache_test = clean_cache(net, train, site), clean_cache(net, test, site)
    setup = time.perf_counter() - t0

    ours = SubspaceSwap(net.d_model, args.subspace, 1, "rotation", seed=0)
    iv, inter = pyvene_transformer(pv, net, block=0, subspace=args.subspace)
    with torch.no_grad():
        inter.rotate_layer.weight = ours.weight.detach().clone()  # the same initial rotation
    probe = train[:64]
    gap = (patched_logits(net, ours, site, probe, src_train[:64], cache_train[:64])
           - pyvene_logits(iv, probe))[probe.loss_mask].abs().max()
    print(f"same patched logits before training: max |difference| {gap.item():.2e}")

    opt_ours = torch.optim.Adam(ours.parameters(), lr=1e-3)
    opt_pv = torch.optim.Adam([p for p in inter.parameters() if p.requires_grad], lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    times = {"numsym_pl": [], "pyvene": []}
    for step in range(args.steps):
        idx = torch.randint(0, len(train), (128,), generator=gen)
        batch = train[idx]
        for name in (("numsym_pl", "pyvene") if step % 2 == 0 else ("pyvene", "numsym_pl")):
            t0 = time.perf_counter()
            if name == "numsym_pl":
                loss = loss_of(patched_logits(net, ours, site, batch, src_train[idx], cache_train[idx]), batch)
                opt_ours.zero_grad(set_to_none=True)
                loss.backward()
                opt_ours.step()
            else:
                loss = loss_of(pyvene_logits(iv, batch), batch)
                opt_pv.zero_grad(set_to_none=True)
                loss.backward()
                opt_pv.step()
            times[name].append(time.perf_counter() - t0)

    iia_ours = evaluate(net, ours, site, test, src_test, cache=cache_test).compute().item()
    with torch.no_grad():
        ok = []
        for i in range(0, len(test), 250):
            p = test[i: i + 250]
            ok.append(exact_rows(pyvene_logits(iv, p), p.cf, p.loss_mask))
    iia_pv = torch.cat(ok).float().mean().item()
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"threads {torch.get_num_threads()}, RoPE d={net.d_model} at {site}, {args.program}.{variables[0]}, "
          f"subspace {args.subspace}, batch 128, "
          f"{args.steps} steps; source states and clean runs below the site precomputed once by numsym_pl in "
          f"{setup:.2f} s (not in its step)")
    print(f"{'':<10}{'s/step (median)':>17}{'IIA after steps':>17}")
    for name in times:
        print(f"{name:<10}{med[name]:>17.4f}{(iia_ours if name == 'numsym_pl' else iia_pv):>17.3f}")
    print(f"ratio pyvene/numsym_pl per step: {med['pyvene'] / med['numsym_pl']:.2f}x "
          f"(IIA difference {abs(iia_ours - iia_pv):.3f})")


if __name__ == "__main__":
    main()
