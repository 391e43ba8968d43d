import lightning.pytorch as pl
import numpy as np
import pytest
import torch

from numsym_pl.data import TrialDataModule
from numsym_pl.lit_module import NextTokenLM, greedy_decode, response_correct
from numsym_pl.tasks import NumericEquivalence, VOCAB


def _batch(variant="multi", n=64, seed=0, p_void=0.0):
    task = NumericEquivalence(variant, p_void=p_void)
    rng = np.random.default_rng(seed)
    tr = task.sample("train", n, rng)
    return {"tokens": torch.as_tensor(tr.tokens), "count": torch.as_tensor(tr.count),
            "trigger": torch.as_tensor(tr.trigger), "scored": torch.as_tensor(tr.scored)}


class Oracle(torch.nn.Module):
    """Counts like Up-Down, but errs on purpose at chosen counts, to give accuracy a known value."""

    def __init__(self, wrong_counts=()):
        super().__init__()
        self.wrong = set(wrong_counts)
        self.vocab_size = VOCAB.size

    def forward(self, tokens):
        demo = torch.isin(tokens, torch.tensor([VOCAB.D0, VOCAB.D1, VOCAB.D2]))
        phase = (tokens == VOCAB.TRIG).cumsum(1)
        count = (demo & (phase == 0)).cumsum(1)
        seen = ((tokens == VOCAB.RESP) & (phase == 1)).cumsum(1)
        out = torch.where(seen < count, VOCAB.RESP, VOCAB.EOS)
        for c in self.wrong:  # answer E one step early for this count
            out = torch.where((count == c) & (seen == c - 1), VOCAB.EOS, out)
        return torch.nn.functional.one_hot(out, VOCAB.size).float()


def test_trial_accuracy_counts_whole_trials():
    batch = _batch("single", 400)
    for wrong, expected in [((), 1.0), ((3, 5), None)]:
        logits = Oracle(wrong)(batch["tokens"][:, :-1])
        trial_ok, token_ok, mask = response_correct(logits, batch["tokens"], batch["scored"])
        truth = ~torch.isin(batch["count"], torch.tensor(list(wrong), dtype=torch.long))
        assert torch.equal(trial_ok, truth)
        if expected:
            assert trial_ok.float().mean() == expected


def test_one_pass_trial_accuracy_equals_free_running_greedy_decoding(small_net):
    """The fast metric and an explicit step-by-step greedy decoder agree trial by trial, on
    untrained nets (random outputs) and on a partly right oracle."""
    batch = _batch("multi", 80, p_void=0.2)
    steps = int(batch["count"].max()) + 1
    for net in (small_net, Oracle((2, 7, 11))):
        decoded = greedy_decode(net, batch["tokens"], batch["trigger"], steps)
        truth = torch.full_like(decoded, VOCAB.PAD)
        for b, (n, t) in enumerate(zip(batch["count"], batch["trigger"])):
            truth[b, : n + 1] = batch["tokens"][b, t + 1: t + n + 2]
        free_ok = torch.stack([(decoded[b, : n + 1] == truth[b, : n + 1]).all() for b, n in enumerate(batch["count"])])
        trial_ok, _, _ = response_correct(net(batch["tokens"][:, :-1]), batch["tokens"], batch["scored"])
        assert torch.equal(trial_ok, free_ok)
    assert free_ok.float().mean() < 1  # the oracle's planted errors were seen


@pytest.mark.parametrize("loss_on", ["all", "response"])
def test_validation_metrics_from_the_logits_they_read_equal_those_from_every_logit(small_net, loss_on):
    """Validation asks the net for the logits at the loss and scored positions only (padding costs
    nothing); trial and token accuracy and the loss are those of the full logits."""
    batch = _batch("multi", 64, p_void=0.2)
    lm = NextTokenLM(small_net, loss_on=loss_on)
    full = small_net(batch["tokens"][:, :-1])
    at = lm.loss_mask(batch) | batch["scored"]
    assert at.sum() < at.numel()  # there is padding to skip
    part = small_net(batch["tokens"][:, :-1], out_mask=at)
    torch.testing.assert_close(part, full[at], atol=1e-5, rtol=1e-5)
    for a, b in zip(response_correct(full, batch["tokens"], batch["scored"]),
                    response_correct(part, batch["tokens"], batch["scored"], at)):
        assert torch.equal(a[batch["scored"]] if a.dim() == 2 else a, b[batch["scored"]] if b.dim() == 2 else b)
    torch.testing.assert_close(lm.loss(part[lm.loss_mask(batch)[at]], batch), lm.loss(full, batch))


def test_loss_on_response_ignores_demo_tokens():
    batch = _batch("multi", 32)
    lm = NextTokenLM(Oracle(), loss_on="response")
    logits = torch.randn(*batch["tokens"][:, :-1].shape, VOCAB.size)
    base = lm.loss(logits, batch)
    demo = torch.isin(batch["tokens"][:, 1:], torch.tensor([VOCAB.D0, VOCAB.D1, VOCAB.D2]))
    logits2 = logits.clone()
    logits2[demo] += 10 * torch.randn_like(logits2[demo])
    assert torch.allclose(lm.loss(logits2, batch), base)
    assert not torch.allclose(NextTokenLM(Oracle(), loss_on="all").loss(logits2, batch),
                              NextTokenLM(Oracle(), loss_on="all").loss(logits, batch))


def test_bad_switch_is_named():
    with pytest.raises(ValueError, match="^loss_on:"):
        NextTokenLM(Oracle(), loss_on="demo")


@pytest.mark.parametrize("precision", ["32-true", "bf16-mixed"])
def test_trains_and_validates_every_arch(small_net, precision, tmp_path):
    dm = TrialDataModule(NumericEquivalence(max_count=8, heldout_counts=(3,), ood_counts=(9, 10)),
                         train_size=64, val_size=32, batch_size=32)
    lm = NextTokenLM(small_net, lr=3e-3, warmup_steps=1)
    trainer = pl.Trainer(max_epochs=2, precision=precision, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path)
    before = [p.detach().clone() for p in lm.parameters()]
    trainer.fit(lm, dm)
    metrics = trainer.callback_metrics
    for key in ["train/loss", "val/acc_trial", "val/acc_trial_heldout", "val/acc_trial_ood", "val/acc_token"]:
        assert key in metrics and torch.isfinite(metrics[key])
    assert any(not torch.equal(a, b) for a, b in zip(before, lm.parameters()))
    assert all(p.dtype == torch.float32 for p in lm.parameters())


def test_validation_metrics_do_not_depend_on_the_validation_batch_size(small_net):
    """val/loss is the token mean of each set (weighted by loss tokens, not by trials), the
    accuracies are per trial and per token: cutting a set into uneven batches changes none."""
    task = NumericEquivalence(max_count=8, heldout_counts=(3,), ood_counts=(9, 10))
    lm = NextTokenLM(small_net)
    runs = []
    for val_batch_size in (40, 7):
        dm = TrialDataModule(task, train_size=32, val_size=40, val_batch_size=val_batch_size)
        trainer = pl.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False,
                             enable_model_summary=False)
        runs.append({k: float(v) for per_set in trainer.validate(lm, dm, verbose=False) for k, v in per_set.items()})
    assert runs[0].keys() == runs[1].keys() and "val/loss_ood" in runs[0]
    for key, value in runs[0].items():
        assert runs[1][key] == pytest.approx(value, rel=1e-5, abs=1e-6), key


def test_val_batch_size_must_be_positive():
    with pytest.raises(ValueError, match="^val_batch_size:"):
        TrialDataModule(val_batch_size=0)


def test_loading_a_checkpoint_of_another_net_is_refused_by_name():
    from numsym_pl.models import GRULM, LSTMLM

    gru = NextTokenLM(GRULM(VOCAB.size, 16))
    ckpt = {"hyper_parameters": dict(gru.hparams), "state_dict": gru.state_dict()}
    NextTokenLM(GRULM(VOCAB.size, 16)).on_load_checkpoint(ckpt)  # same net: fine
    for other in (LSTMLM(VOCAB.size, 16), GRULM(VOCAB.size, 32)):
        with pytest.raises(ValueError, match="^ckpt_path: it holds a GRULM"):
            NextTokenLM(other).on_load_checkpoint(ckpt)
