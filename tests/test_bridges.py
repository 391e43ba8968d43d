"""numsym_pl.bridges: the safetensors export and its loaders, TransformerLens, nnsight.

The TransformerLens and nnsight tests need the ``bridges`` extra and skip without it. nnsight changes
the interpreter it is imported into (``save`` on every object, a wrapped ``Tensor.backward``), so its
checks run in a child process: this file run as a script (``nnsight_figures``).
"""

import json
import subprocess
import sys
from pathlib import Path

import lightning
import pytest
import torch

import numsym_pl
from numsym_pl.checkpoints import load_checkpoint
from numsym_pl.errors import ConfigError
from numsym_pl.lit_module import NextTokenLM
from numsym_pl.models import GRULM, LSTMLM, TransformerLM
from numsym_pl.tasks import VOCAB, NumericEquivalence

NETS = {"gru": lambda: GRULM(VOCAB.size, hidden_size=16), "lstm": lambda: LSTMLM(VOCAB.size, hidden_size=8),
        "rope": lambda: TransformerLM(VOCAB.size, d_model=16, n_layers=2, n_heads=2, positional="rope"),
        "nope": lambda: TransformerLM(VOCAB.size, d_model=16, n_layers=2, n_heads=1, positional="nope")}


NO_EXTRA = "the bridges extra is not installed (pip install 'torch==2.13.0' -e '.[bridges]')"


def _net(arch: str, seed: int = 0):
    """A small net whose weights are all away from their initial values (LayerNorm weights not 1,
    biases not 0), so that a weight left behind by a conversion shows in the logits."""
    torch.manual_seed(seed)
    net = NETS[arch]()
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.2 * torch.randn_like(p))
    return net.eval()


def _tokens(net, n: int = 4, length: int = 24, seed: int = 1) -> torch.Tensor:
    return torch.randint(0, net.vocab_size, (n, length), generator=torch.Generator().manual_seed(seed))


def _checkpoint(tmp_path: Path, net) -> Path:
    """A checkpoint in the form ``numsym_pl fit`` writes (module and data hyper-parameters, the
    module's state), without training."""
    lm = NextTokenLM(net, lr=1e-3)
    path = tmp_path / "last.ckpt"
    torch.save({"state_dict": lm.state_dict(), "hyper_parameters": dict(lm.hparams), "epoch": 3, "global_step": 42,
                "datamodule_hyper_parameters": {"task": NumericEquivalence("multi", p_void=0.1).config()},
                "pytorch-lightning_version": lightning.__version__}, path)
    return path


@pytest.mark.parametrize("arch", ["gru", "rope"])
def test_export_then_load_gives_the_checkpoints_logits(arch, tmp_path):
    net = _net(arch)
    ckpt = _checkpoint(tmp_path, net)
    out = tmp_path / "export"
    from numsym_pl.bridges.export import export

    assert export(ckpt, out) == out
    assert {p.name for p in out.iterdir()} == {"model.safetensors", "config.json", "README.md"}
    x = _tokens(net)
    reference = load_checkpoint(ckpt)[0].net.eval()(x)
    exported = numsym_pl.load(out)
    assert (exported.net(x) - reference).abs().max().item() <= 1e-6
    assert exported.task.config() == NumericEquivalence("multi", p_void=0.1).config()
    assert exported.featurizer is None and exported.config["trained"] == {"epoch": 3, "global_step": 42}
    # the directory is a checkpoint to load_checkpoint (so to `numsym_pl das --ckpt_path DIR`)
    lm, task = load_checkpoint(out)
    assert (lm.net.eval()(x) - reference).abs().max().item() <= 1e-6
    assert lm.hparams["lr"] == 1e-3 and lm.hparams["net"] == net.init_config and task.config() == exported.task.config()
    card = (out / "README.md").read_text()
    assert type(net).__name__ in card and "NumericEquivalence" in card and "numsym_pl.load" in card
    assert json.loads((out / "config.json").read_text())["net"] == net.init_config


def test_a_das_result_is_reproduced_from_the_exported_files_alone(tmp_path):
    """The same alignment fitted on the checkpoint and on its export: the same record, to every digit."""
    from numsym_pl.bridges.export import export
    from numsym_pl.das import Alignment, Interchange, SearchSettings
    from numsym_pl.das.posthoc import align

    ckpt = _checkpoint(tmp_path, _net("gru"))
    settings = SearchSettings(n_train=128, n_val=64, n_test=64, max_steps=6, batch_size=32, eval_every=3,
                              progress=False, null=False)
    records = []
    for source in (ckpt, export(ckpt, tmp_path / "export")):
        lm, task = load_checkpoint(source)
        record, _ = align(lm.net, task, Alignment("up_down", "count", "state", Interchange(4)), settings)
        records.append({k: v for k, v in record.items() if k not in ("seconds", "ckpt_path")})
    assert records[0] == records[1] and records[0]["history"]


def test_export_with_a_das_result_carries_the_alignment_and_its_featurizer(tmp_path):
    from numsym_pl.bridges.export import export
    from numsym_pl.das import SubspaceSwap

    net = _net("gru")
    ckpt = _checkpoint(tmp_path, net)
    swap = SubspaceSwap(16, 4, 1, "rotation", seed=3)
    with torch.no_grad():
        for p in swap.parameters():
            p.add_(0.1 * torch.randn_like(p))
    das_dir = tmp_path / "das"
    das_dir.mkdir()
    # rotation.pt as `numsym_pl das` saves it
    torch.save({"width": swap.width, "subspace": swap.subspace, "n_blocks": swap.n_blocks,
                "orthogonal_map": swap.orthogonal_map, "featurizer": swap.featurizer_path,
                "state_dict": swap.state_dict()}, das_dir / "rotation.pt")
    record = {"key": "up_down.count/state", "alignment": {"program": "up_down", "site": "state"}, "iia": 0.8125,
              "n": 128, "iia_effective": 0.75, "iia_none": 0.25,
              "intervals": {"iia": [0.7375, 0.8714], "iia_effective": [0.65, 0.83]}}
    (das_dir / "das_result.json").write_text(json.dumps(record))
    out = export(ckpt, tmp_path / "export", das_dir / "das_result.json")

    assert {"featurizer.safetensors", "featurizer.json"} <= {p.name for p in out.iterdir()}
    exported = numsym_pl.load(out)
    assert exported.featurizer_config["site"] == "state" and exported.featurizer_config["key"] == record["key"]
    assert torch.equal(exported.featurizer.weight, swap.eval().weight)
    card = (out / "README.md").read_text()
    assert "`up_down.count/state` | 0.812 [0.738, 0.871] | 0.750 [0.650, 0.830] | 0.250 | 128 |" in card
    # exporting again without it leaves no featurizer behind
    export(ckpt, out)
    assert numsym_pl.load(out).featurizer is None and "Alignments" not in (out / "README.md").read_text()


def test_export_command_writes_the_directory_and_names_bad_input(tmp_path, cli):
    ckpt = _checkpoint(tmp_path, _net("rope"))
    ok = cli("export", "--ckpt_path", ckpt, "--out", tmp_path / "e", cwd=tmp_path)
    assert ok.returncode == 0 and "wrote" in ok.stdout and (tmp_path / "e" / "model.safetensors").is_file()
    (tmp_path / "not_a_record.json").write_text("[1, 2]")
    (tmp_path / "empty").mkdir()
    for args, needle in [
        (["--ckpt_path", tmp_path / "missing.ckpt"], "ckpt_path: no checkpoint file"),
        (["--ckpt_path", tmp_path / "empty"], "is not an exported net"),
        (["--ckpt_path", ckpt, "--das_result", tmp_path / "missing.json"], "das_result: no such file"),
        (["--ckpt_path", ckpt, "--das_result", tmp_path / "not_a_record.json"], "holds no alignment record"),
    ]:
        bad = cli("export", *args, "--out", tmp_path / "bad", cwd=tmp_path)
        assert bad.returncode == 2 and needle in bad.stderr and len(bad.stderr.strip().splitlines()) == 1, bad.stderr


def test_load_names_a_directory_that_is_not_an_export(tmp_path):
    with pytest.raises(ConfigError, match="path: .* is not an exported net"):
        numsym_pl.load(tmp_path)
    with pytest.raises(ConfigError, match="ckpt_path: .* is not an exported net"):
        load_checkpoint(tmp_path)


# ---- TransformerLens ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def transformer_lens():
    return pytest.importorskip("transformer_lens", reason=NO_EXTRA)


@pytest.mark.parametrize("arch", ["rope", "nope"])
def test_hooked_transformer_gives_the_logits_and_every_site(arch, transformer_lens):
    from numsym_pl.bridges.transformerlens import hook_name, site_states, to_hooked_transformer

    net = TransformerLM(VOCAB.size, d_model=32, n_layers=2, n_heads=4, positional=arch)
    torch.manual_seed(0)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.2 * torch.randn_like(p))
    net.eval()
    model = to_hooked_transformer(net, n_ctx=64)
    x = _tokens(net, length=48)
    with torch.no_grad():
        logits, cache = model.run_with_cache(x)
        assert (logits - net(x)).abs().max().item() <= 1e-5
        for site in net.sites:
            # float32 rounding only: TransformerLens's LayerNorm and attention are other kernels
            torch.testing.assert_close(site_states(cache, site), net.states(x, site), rtol=1e-5, atol=1e-5, msg=site)
    assert hook_name("resid.0") == ("blocks.0.hook_resid_pre", None)
    assert hook_name("head.2.3") == ("blocks.1.attn.hook_z", 3)
    for bad in ("state", "resid", "head.1", "mlp.x", "resid.-1"):
        with pytest.raises(ConfigError, match="site: "):
            hook_name(bad)


def test_hooked_transformer_refuses_a_recurrent_net(transformer_lens):
    from numsym_pl.bridges.transformerlens import to_hooked_transformer

    with pytest.raises(ConfigError, match="net: .*TransformerLM"):
        to_hooked_transformer(_net("gru"))


# ---- nnsight (in a child process) ---------------------------------------------------------------------


def nnsight_figures() -> dict[str, float]:
    """max |nnsight - numsym_pl| for a read and a patch of each net and site checked: the read equals
    ``net.states``, the patch (one vector at one position per row) ``net.forward_patched``."""
    from numsym_pl.bridges.nnsight import patched, site_envoy, traceable

    figures = {}
    for arch, sites in (("gru", ["state"]), ("lstm", ["c"]), ("rope", ["resid.1", "attn.2", "head.1.1"])):
        net = _net(arch)
        x = _tokens(net, length=12)
        positions = torch.tensor([0, 3, 7, 11])
        model = traceable(net)
        for site in sites:
            vector = torch.randn(net.site_width(site), generator=torch.Generator().manual_seed(5))
            with torch.no_grad():
                states = net.states(x, site)
                reference = net.forward_patched(x, site, positions, lambda s, v=vector: v.expand_as(s))
            read = []
            with model.trace(x) as tracer:
                if net.family == "recurrent":  # one occurrence of the site per step
                    for _ in tracer.iter[: x.shape[1]]:
                        read.append(site_envoy(model, site).output.save())
                else:
                    read.append(site_envoy(model, site).output.save())
            read = torch.stack(read, 1) if net.family == "recurrent" else read[0]
            with model.trace(x) as tracer:
                if net.family == "recurrent":
                    for step in tracer.iter[: x.shape[1]]:
                        envoy = site_envoy(model, site)
                        envoy.output = patched(envoy.output, positions, vector, step)
                else:
                    envoy = site_envoy(model, site)
                    envoy.output = patched(envoy.output, positions, vector)
                logits = model.output.save()
            figures[f"{arch} {site} read"] = (read - states).abs().max().item()
            figures[f"{arch} {site} patch"] = (logits - reference).abs().max().item()
            figures[f"{arch} {site} patch changed the logits"] = (reference - net(x)).abs().max().item()
    return figures


def test_nnsight_reads_and_patches_sites_as_the_net_does():
    pytest.importorskip("nnsight", reason=NO_EXTRA)
    run = subprocess.run([sys.executable, __file__], check=False, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    figures = json.loads(run.stdout.strip().splitlines()[-1])
    assert len(figures) == 15
    for name, value in figures.items():
        assert (value > 1e-2) if name.endswith("changed the logits") else (value <= 1e-5), (name, value)


if __name__ == "__main__":
    torch.set_num_threads(1)
    print(json.dumps(nnsight_figures()))
