"""Model alignment search (numsym_pl.das.model_alignment): the cross-model swap is the within-net
swap when both nets are one, a net aligned with itself scores its own DAS IIA, a trained net
aligned with an untrained one scores at the floor, CKA and RSA are what they claim, and the
command writes its records and names bad input in one line."""

import copy
import json
import shutil

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from numsym_pl.analysis.mas_section import arch_pair_rows, load_mas, mas_section
from numsym_pl.das import Alignment, SearchSettings, run_alignment
from numsym_pl.das.controls import untrained_like
from numsym_pl.das.interventions import Interchange
from numsym_pl.das.interventions.patched import patched_logits
from numsym_pl.das.interventions.swap import SubspaceSwap
from numsym_pl.das.model_alignment import CrossSwap, ModelAlignment, NetPair, align_models, linear_cka, rsa
from numsym_pl.das.model_alignment.matrix import matrix_record
from numsym_pl.das.model_alignment.run import check_same_task
from numsym_pl.das.model_alignment.similarity import distinct_rows
from numsym_pl.data import TrialDataModule
from numsym_pl.errors import ConfigError
from numsym_pl.lit_module import NextTokenLM
from numsym_pl.models import GRULM
from numsym_pl.tasks import NumericEquivalence

#: counts 1..8: short trials, so a 16-wide GRU learns the task in seconds
SMALL = NumericEquivalence(max_count=8, heldout_counts=(4,), ood_counts=(9, 10, 11))
SETTINGS = SearchSettings(n_train=1000, n_val=200, n_test=400, max_steps=150, batch_size=64, eval_every=50,
                          progress=False, null=False, baselines=False, drift=False, random_seeds=1)
SPEC = ModelAlignment("up_down", "count", subspace=4, resamples=0)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 16-wide GRU trained on SMALL to trial accuracy 1 (10 epochs, a few seconds)."""
    pl.seed_everything(0, verbose=False)
    data = TrialDataModule(task=SMALL, train_size=1000, batch_size=64, val_size=200)
    lm = NextTokenLM(GRULM(data.vocab_size, 16), lr=1e-2, warmup_steps=20, lr_decay="cosine", pad_id=data.pad_id)
    trainer = pl.Trainer(max_epochs=10, logger=False, enable_progress_bar=False, enable_model_summary=False,
                         check_val_every_n_epoch=10, num_sanity_val_steps=0, accelerator="cpu",
                         enable_checkpointing=False, default_root_dir=tmp_path_factory.mktemp("mas_fit"))
    trainer.fit(lm, data)
    assert float(trainer.callback_metrics["val/acc_trial"]) >= 0.95
    return lm.net.eval()


def _pair(net, other, kind: str = "rotation") -> NetPair:
    pair = NetPair([net, other], [None, None], SMALL, "up_down", ["count"], 4, "rotation", SETTINGS, "cpu")
    if kind != "rotation":
        pair.swaps = [SubspaceSwap(16, 4, 1, kind) for _ in range(2)]
    return pair


def test_the_cross_swap_of_identity_featurizers_on_two_copies_is_the_within_net_swap(trained):
    """Sources from copy A, targets run on copy B, raw coordinates swapped: the same logits, bit for
    bit, as the within-net identity swap on one net, and as a hand-made swap of the first 4 units."""
    pair = _pair(trained, copy.deepcopy(trained), kind="identity")
    test, src_a = pair.pairs["test"][:64], pair.sets[0].src["test"][:64]
    cross = patched_logits(pair.nets[1], CrossSwap(*pair.swaps), "state", test, src_a)
    within = patched_logits(pair.nets[0], pair.swaps[0], "state", test, src_a)
    by_hand = pair.nets[0].forward_patched(test.cf[:, :-1], "state", test.target_pos,
                                           lambda h: torch.cat([src_a[:, :4], h[:, 4:]], 1))
    assert torch.equal(cross, within)
    assert torch.allclose(cross[test.loss_mask], by_hand[test.loss_mask], atol=1e-6)
    # and the scored directions agree: a->b on the copies is a->a
    assert torch.equal(pair.scores(0, 1, "test", loss=False)[0], pair.scores(0, 0, "test", loss=False)[0])


def test_the_cross_swap_encodes_with_the_source_featurizer_and_decodes_with_the_target_one():
    """Two nets of different widths, a fixed random rotation each: the swap equals
    ``decode_T([encode_S(h_s)[:r], encode_T(h_t)[r:]])`` by hand, on the linear path and on the
    general encode/decode path, and with a block mask only the masked rows change."""
    g = torch.Generator().manual_seed(0)
    src_swap, tgt_swap = SubspaceSwap(24, 3, 2, "random", seed=1), SubspaceSwap(16, 3, 2, "random", seed=2)
    h_s, h_t = torch.randn(5, 24, generator=g), torch.randn(5, 16, generator=g)
    z_s, z_t = h_s @ src_swap.rotation.weight, h_t @ tgt_swap.rotation.weight
    by_hand = torch.cat([z_s[:, :6], z_t[:, 6:]], 1) @ tgt_swap.rotation.weight.T
    swap = CrossSwap(src_swap, tgt_swap)
    assert torch.allclose(swap(h_t, h_s), by_hand, atol=1e-5)
    swap.source.linear = swap.target.linear = False  # the general path: encode, swap, decode
    assert torch.allclose(swap(h_t, h_s), by_hand, atol=1e-5)
    blocks = torch.tensor([[True, True], [False, False], [True, True], [False, False], [True, True]])
    masked = swap(h_t, h_s, blocks)
    assert torch.allclose(masked[blocks[:, 0]], by_hand[blocks[:, 0]], atol=1e-5)
    assert torch.allclose(masked[~blocks[:, 0]], h_t[~blocks[:, 0]], atol=1e-5)
    with pytest.raises(ConfigError, match="shared subspace needs one size"):
        CrossSwap(SubspaceSwap(24, 4), tgt_swap)


def test_a_cross_direction_trains_both_featurizers(trained):
    pair = _pair(trained, untrained_like(trained, 1))
    batch, idx = pair.pairs["train"][:32], torch.arange(32)
    logits = pair.logits(0, 1, batch, idx)
    F.cross_entropy(logits[batch.loss_mask], batch.cf[:, 1:][batch.loss_mask]).backward()
    for swap in pair.swaps:
        grads = [p.grad for p in swap.parameters() if p.requires_grad]
        assert grads and all(g is not None and g.abs().sum() > 0 for g in grads)


def test_a_net_aligned_with_itself_scores_its_own_das_iia(trained):
    """The same settings and pairs: MAS of the net with a copy of itself scores, in every direction,
    within the Wilson interval of the net's own DAS IIA (and DAS's within MAS's); CKA and RSA are 1."""
    das, _ = run_alignment(trained, SMALL, Alignment("up_down", "count", "state", Interchange(4)), SETTINGS)
    lo, hi = das.intervals()["iia"]
    assert das.discriminating and das.iia > 0.5, das.iia  # the net carries the count: a test with teeth
    record = align_models(trained, copy.deepcopy(trained), SMALL, SPEC, SETTINGS)
    for name, d in record["directions"].items():
        assert lo <= d["iia"] <= hi and d["interval"][0] <= das.iia <= d["interval"][1], (name, d["iia"], das.iia)
    assert record["similarity"]["cka"] == pytest.approx(1.0) and record["similarity"]["rsa"] == pytest.approx(1.0)
    assert record["directions"]["a->b"]["n"] == das.n and record["directions"]["a->b"]["iia_none"] == das.iia_none


def test_a_trained_net_aligned_with_an_untrained_one_scores_at_the_floor(trained):
    """Writing the trained net's count into an untrained net of the same architecture does not make
    it answer: the interval of IIA A->B reaches its floor's, while A's own swap aligns."""
    record = align_models(trained, untrained_like(trained, 7), SMALL, SPEC, SETTINGS)
    d = record["directions"]
    into_untrained = d["a->b"]
    assert into_untrained["interval"][0] <= into_untrained["none_interval"][1], into_untrained
    assert d["a->a"]["discriminating"] and d["a->a"]["iia"] > into_untrained["iia"] + 0.3, d["a->a"]


def test_cka_and_rsa_are_invariant_to_rotation_and_scale_and_low_for_unrelated_states():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 8, generator=g)
    q, _ = torch.linalg.qr(torch.randn(8, 8, generator=g))
    wide = torch.cat([3.0 * x @ q, torch.zeros(200, 4)], 1)  # another width too
    assert linear_cka(x, wide) == pytest.approx(1.0) and rsa(x, wide) == pytest.approx(1.0)
    unrelated = torch.randn(200, 12, generator=g)
    assert linear_cka(x, unrelated) < 0.2 and abs(rsa(x, unrelated)) < 0.2
    # repeated inputs are counted once
    a, b = distinct_rows(torch.cat([x, x[:10]]), torch.cat([wide, wide[:10]]))
    assert len(a) == len(b) == 200


def test_check_same_task_names_both_nets():
    with pytest.raises(ConfigError, match=r"^net_b: trained on numeric_equivalence with max_count=9, "
                       r"ood_counts=\[10\], but net_a on max_count=8, ood_counts=\[9, 10, 11\];"):
        check_same_task(SMALL, NumericEquivalence(max_count=9, heldout_counts=(4,), ood_counts=(10,)))


def test_a_featurizer_with_its_own_width_is_refused(trained):
    with pytest.raises(ConfigError, match="mas: featurizer 'boundless' learns its own width"):
        NetPair([trained, trained], [None, None], SMALL, "up_down", ["count"], 4, "boundless", SETTINGS, "cpu")


TINY = ["--subspace", "4", "--resamples", "5", "--settings.n_train", "64", "--settings.n_val", "32",
        "--settings.n_test", "64", "--settings.max_steps", "4", "--settings.eval_every", "2",
        "--settings.progress", "false", "--device", "cpu"]


def test_the_command_writes_a_pair_record_and_a_matrix_with_its_figure(tiny_ckpt, tmp_path, cli):
    out = cli("mas", "--net_a", tiny_ckpt, "--net_b", tiny_ckpt, "--labels", "one", "two",
              "--out", tmp_path / "mas" / "pair", *TINY, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "one -> two *" in out.stdout and "linear CKA" in out.stdout and "null" in out.stdout
    record = json.loads((tmp_path / "mas" / "pair" / "mas_result.json").read_text())
    assert set(record["directions"]) == {"a->b", "b->a", "a->a", "b->b"}
    assert record["null"]["map"]["count"]["images"] and record["settings"]["max_steps"] == 4
    assert record["ckpt_paths"] == {"one": str(tiny_ckpt), "two": str(tiny_ckpt)}
    out = cli("mas", "--nets", tiny_ckpt, tiny_ckpt, tiny_ckpt, "--labels", "x", "y", "z", "--out", tmp_path / "mas",
              "--settings.null", "false", *TINY, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    matrix = json.loads((tmp_path / "mas" / "mas_matrix.json").read_text())
    assert matrix["labels"] == ["x", "y", "z"] and len(matrix["pairs"]) == 3
    assert matrix["cka"][0][0] == 1.0 and matrix["iia"][0][1] is not None
    assert (tmp_path / "mas" / "mas_matrix.png").is_file()
    assert np.isclose(matrix["iia"][1][2], matrix["pairs"][2]["directions"]["a->b"]["iia"])
    # a study's report reads <study>/mas/: the matrix and the pair record found there
    section = mas_section(load_mas(tmp_path), tmp_path)
    assert section.startswith("## Model alignment search") and "figures/mas_matrix.png" in section
    assert "figures/mas_matrix_1.png" in section and "one -> two" in section  # the pair record: a matrix of its own
    assert (tmp_path / "figures" / "mas_matrix.png").is_file()
    assert mas_section(load_mas(tmp_path / "mas"), tmp_path) is None  # no mas/ inside mas/
    # run again with one more net: the three pairs already there are taken, only the new net's are fitted
    out = cli("mas", "--nets", tiny_ckpt, tiny_ckpt, tiny_ckpt, tiny_ckpt, "--labels", "x", "y", "z", "w",
              "--out", tmp_path / "mas", "--settings.null", "false", *TINY, cwd=tmp_path)
    grown = json.loads((tmp_path / "mas" / "mas_matrix.json").read_text())
    assert out.returncode == 0 and len(grown["pairs"]) == 6 and grown["pairs"][:2] == matrix["pairs"][:2]
    assert grown["pairs"][3] == matrix["pairs"][2]  # y-z: the order of pairs is (x,y) (x,z) (x,w) (y,z) ...
    # another net under an old label: its pairs are fitted again
    shutil.copy(tiny_ckpt, tmp_path / "other.ckpt")
    out = cli("mas", "--nets", tmp_path / "other.ckpt", tiny_ckpt, "--labels", "x", "y", "--out", tmp_path / "mas",
              "--settings.null", "false", *TINY, cwd=tmp_path)
    moved = json.loads((tmp_path / "mas" / "mas_matrix.json").read_text())
    assert out.returncode == 0 and moved["pairs"][0]["seconds"] != grown["pairs"][0]["seconds"]
    # other settings decide other numbers: nothing is taken
    out = cli("mas", "--nets", tiny_ckpt, tiny_ckpt, "--labels", "x", "y", "--out", tmp_path / "mas",
              "--settings.null", "false", *TINY[:-2], "--settings.seed", "5", "--device", "cpu", cwd=tmp_path)
    refit = json.loads((tmp_path / "mas" / "mas_matrix.json").read_text())
    assert out.returncode == 0 and refit["pairs"][0]["settings"]["seed"] == 5
    assert refit["pairs"][0]["seconds"] != matrix["pairs"][0]["seconds"]


PAIR = ["--net_a", "{ckpt}", "--net_b", "{ckpt}", "--out", "o"]


@pytest.mark.parametrize("args, needle", [
    (["--net_a", "{ckpt}"], "net_b: give --net_a and --net_b"),
    ([*PAIR, "--nets", "{ckpt}", "{ckpt}"], "nets: give either"),
    (["--nets", "{ckpt}", "--out", "m"], "nets: at least two nets"),
    (["--nets", "{ckpt}", "{ckpt}"], "out: --nets writes"),
    (["--nets", "{ckpt}", "{ckpt}", "--out", "m", "--site_a", "state"], "site_a: with --nets"),
    (["--net_a", "{ckpt}", "--net_b", "missing.ckpt"], "net_b: no checkpoint file or export directory at missing.ckpt"),
    ([*PAIR, "--subspace", "17"], "subspace: 1 block(s) of 17 coordinates"),
    ([*PAIR, "--site_b", "resid.1"], "site: GRULM has no site 'resid.1'"),
    ([*PAIR, "--settings.seeds", "2"], "settings.seeds: MAS fits one seed"),
    ([*PAIR, "--featurizer", "boundless"], "featurizer 'boundless' learns its own width"),
    ([*PAIR, "--labels", "a"], "labels: one per net"),
    ([*PAIR, "--variables", "nope"], "nope"),
])
def test_bad_input_is_named_in_one_line(tiny_ckpt, tmp_path, cli, args, needle):
    out = cli("mas", *[a.format(ckpt=tiny_ckpt) for a in args], "--device", "cpu", cwd=tmp_path)
    assert out.returncode != 0 and needle in out.stderr, out.stderr
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr


def _pair_record(a: tuple[str, str], b: tuple[str, str], cross: float, null: float, cka: float) -> dict:
    """A pair record as align_models writes it, with the fields the report reads."""
    d = lambda iia: {"iia": iia, "interval": [iia - 0.01, iia + 0.01], "iia_none": 0.1,  # noqa: E731
                     "none_interval": [0.09, 0.11], "iia_effective": iia, "effective_interval": None, "n_effective": 9}
    return {"kind": "mas", "program": "up_down", "variables": ["count"], "subspace": 4, "task_family": "counting",
            "nets": {"a": {"label": a[0], "arch": a[1]}, "b": {"label": b[0], "arch": b[1]}},
            "directions": {"a->b": d(cross), "b->a": d(cross - 0.1), "a->a": d(0.99), "b->b": d(0.97)},
            "null": {"directions": {"a->b": {"iia": null}, "b->a": {"iia": null}}},
            "similarity": {"cka": cka, "rsa": cka - 0.1}}


def test_the_section_sums_up_each_pair_of_architectures():
    records = [_pair_record(("g0", "GRULM"), ("g1", "GRULM"), 0.9, 0.05, 0.99),
               _pair_record(("g0", "GRULM"), ("l0", "LSTMLM"), 0.5, 0.07, 0.6),
               _pair_record(("l0", "LSTMLM"), ("g1", "GRULM"), 0.3, 0.09, 0.4)]
    rows = {r[0]: r for r in arch_pair_rows(matrix_record(["g0", "g1", "l0"], records))}
    assert set(rows) == {"GRULM ~ GRULM", "GRULM ~ LSTMLM"}  # LSTM -> GRU and GRU -> LSTM are one group
    assert rows["GRULM ~ GRULM"][1:4] == ["1", "2", "0.850 (0.800–0.900)"]
    assert rows["GRULM ~ LSTMLM"][1:5] == ["2", "4", "0.350 (0.200–0.500)", "0.080 (0.070–0.090)"]
    assert rows["GRULM ~ LSTMLM"][6] == "0.980 (0.970–0.990)" and rows["GRULM ~ LSTMLM"][7] == "0.500 (0.400–0.600)"
