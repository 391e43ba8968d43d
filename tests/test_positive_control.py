"""The positive control of DAS: interchange intervention training (numsym_pl.iit) plants Up-Down
``count`` in the first coordinates of a net's site, and DAS finds it there."""

import lightning.pytorch as pl
import pytest
import torch

from numsym_pl.checkpoints import load_checkpoint
from numsym_pl.das import Alignment, SearchSettings, run_alignment
from numsym_pl.das.controls import permuted_null
from numsym_pl.das.interventions import Interchange
from numsym_pl.data import TrialDataModule
from numsym_pl.errors import ConfigError
from numsym_pl.iit import InterchangeLoss, InterchangeTraining
from numsym_pl.lit_module import NextTokenLM
from numsym_pl.models import GRULM, LSTMLM, TransformerLM
from numsym_pl.tasks import NumericEquivalence

#: counts 1..8: short trials, so a 32-wide GRU learns the task and the planted count in seconds
SMALL = NumericEquivalence(max_count=8, heldout_counts=(4,), ood_counts=(9, 10, 11))


def _grads(net, loss) -> dict[str, torch.Tensor]:
    net.zero_grad()
    loss.backward()
    return {n: p.grad.clone() for n, p in net.named_parameters()}


def _recurrent_by_hand(net, pairs, site: str, k: int) -> torch.Tensor:
    """The interchange loss written out pair by pair with the net's own ``nn.GRU`` / ``nn.LSTM``:
    the target run up to ``i_t``, its state's first k coordinates (of ``site``) taken from the
    source run's at ``i_s``, the rest of the counterfactual run from the patched state."""
    H, lstm = net.hidden_size, isinstance(net.rnn, torch.nn.LSTM)
    part = slice(H, 2 * H) if site == "c" else slice(0, 2 * H if lstm else H)
    flat = lambda hx: torch.cat([hx[0][0, 0], hx[1][0, 0]]) if lstm else hx[0, 0]  # noqa: E731
    nll, n = 0.0, 0
    for b in range(len(pairs)):
        x, i_t, i_s = net.embed(pairs.cf[b, :-1]), int(pairs.target_pos[b]), int(pairs.source_pos[b])
        target = flat(net.rnn(x[None, : i_t + 1])[1])
        source = flat(net.rnn(net.embed(pairs.source[b, : i_s + 1])[None])[1])
        swapped = source[part][:k]
        state = torch.cat([target[: part.start], swapped, target[part.start + k:]])
        hs = [state[:H]]
        if i_t + 1 < len(x):
            init = (state[:H].reshape(1, 1, H), state[H:].reshape(1, 1, H)) if lstm else state.reshape(1, 1, H)
            hs.append(net.rnn(x[None, i_t + 1:], init)[0][0])
        logits = net.decoder(torch.cat([h.reshape(-1, H) for h in hs]))  # positions i_t .. L-2
        mask = pairs.loss_mask[b, i_t:]
        nll = nll + torch.nn.functional.cross_entropy(logits[mask], pairs.cf[b, i_t + 1:][mask], reduction="sum")
        n += int(mask.sum())
    return nll / n


@pytest.mark.parametrize("make, site", [(lambda v: GRULM(v, 16), "state"), (lambda v: LSTMLM(v, 8), "state"),
                                        (lambda v: LSTMLM(v, 8), "c")])
def test_a_recurrent_net_gets_the_gradients_of_a_hand_made_patch(make, site):
    """The interchange loss equals, in value and in every weight's gradient, the patch written out
    by hand: gradients reach the net through the source run, the target run up to ``i_t`` (the
    coordinates not swapped) and the patched continuation."""
    torch.manual_seed(0)
    net = make(SMALL.vocab.size)
    objective = InterchangeLoss(InterchangeTraining(site=site, subspace=4, pairs_per_batch=8, pool_size=8))
    pairs = objective.batch(SMALL, 0)
    loss, ok = objective(net, pairs)
    module = _grads(net, loss)
    reference = _recurrent_by_hand(net, pairs, site, 4)
    assert torch.isfinite(loss) and ok.shape == (8,)
    assert loss.item() == pytest.approx(reference.item(), rel=1e-5)
    by_hand = _grads(net, reference)
    for name in module:
        assert module[name].abs().sum() > 0, name  # every weight learns from the interchange
        torch.testing.assert_close(module[name], by_hand[name], rtol=1e-4, atol=1e-6, msg=name)


def test_a_transformer_gets_the_gradients_of_a_hand_made_patch():
    """A transformer's interchange loss equals, in value and in every weight's gradient, a patch
    written out by hand: block 1 on the whole counterfactual, the source's planted coordinates
    copied in at ``i_t``, block 2 on the patched stream (which later positions attend to), the
    unpatched positions below the site keeping their gradients."""
    torch.manual_seed(0)
    net = TransformerLM(SMALL.vocab.size, d_model=16, n_layers=2)
    objective = InterchangeLoss(InterchangeTraining(site="resid.1", subspace=4, pairs_per_batch=16, pool_size=16))
    pairs = objective.batch(SMALL, 0)
    loss, ok = objective(net, pairs)
    module = _grads(net, loss)
    rows, tokens = torch.arange(len(pairs)), pairs.cf[:, :-1]
    source = net.blocks[0](net.embed(pairs.source))[rows, pairs.source_pos]  # [B, d]
    x = net.blocks[0](net.embed(tokens))  # [B, L, d]
    patched = x[rows, pairs.target_pos].clone()
    patched[:, :4] = source[:, :4]
    at = torch.zeros(x.shape[:2], dtype=torch.bool)
    at[rows, pairs.target_pos] = True
    x = torch.where(at[..., None], patched[:, None, :], x)
    logits = net.head(net.ln_f(net.blocks[1](x)))
    reference = torch.nn.functional.cross_entropy(logits[pairs.loss_mask], pairs.cf[:, 1:][pairs.loss_mask])
    assert torch.isfinite(loss) and ok.shape == (16,)
    assert loss.item() == pytest.approx(reference.item(), rel=1e-5)
    by_hand = _grads(net, reference)
    for name in module:
        assert module[name].abs().sum() > 0, name
        torch.testing.assert_close(module[name], by_hand[name], rtol=1e-4, atol=1e-6, msg=name)


def test_pairs_are_reproducible_per_step_and_rank():
    a = InterchangeLoss(InterchangeTraining(pairs_per_batch=8, pool_size=16))
    b = InterchangeLoss(InterchangeTraining(pairs_per_batch=8, pool_size=16))  # a resumed run
    keys = lambda loss, step, rank=0: loss.batch(SMALL, step, rank).key.tolist()  # noqa: E731
    assert keys(a, 3) == keys(b, 3) and keys(a, 0) == keys(b, 0)  # the same pairs whatever came before
    assert len({tuple(keys(a, s)) for s in range(4)}) == 4  # each step its own, across pools
    assert keys(a, 0) != keys(a, 0, rank=1)
    assert keys(a, 0) != keys(InterchangeLoss(InterchangeTraining(pairs_per_batch=8, pool_size=16, seed=1)), 0)


@pytest.mark.parametrize("args, needle", [
    ({"subspace": 0}, "subspace"), ({"weight": -1.0}, "weight"), ({"pairs_per_batch": 0}, "pairs_per_batch"),
    ({"pairs_per_batch": 64, "pool_size": 32}, "pool_size"), ({"variables": ["demo_count"]}, "demo_count"),
])
def test_bad_settings_are_named(args, needle):
    with pytest.raises(ConfigError, match=needle):
        InterchangeTraining(**args)


def test_a_subspace_wider_than_the_site_or_a_missing_site_is_named():
    net = GRULM(SMALL.vocab.size, 8)
    with pytest.raises(ConfigError, match="subspace"):
        InterchangeLoss(InterchangeTraining(subspace=16)).swap(net, "cpu")
    with pytest.raises(ConfigError, match="resid.1"):
        InterchangeLoss(InterchangeTraining(site="resid.1")).site(net)


def _fit(tmp_path, interchange: InterchangeTraining | None, epochs: int, seed: int = 0) -> NextTokenLM:
    pl.seed_everything(seed, verbose=False)
    data = TrialDataModule(task=SMALL, train_size=1000, batch_size=64, val_size=200)
    lm = NextTokenLM(GRULM(data.vocab_size, 32), lr=1e-2, warmup_steps=20, lr_decay="cosine", pad_id=data.pad_id,
                     interchange=interchange)
    trainer = pl.Trainer(max_epochs=epochs, logger=False, enable_progress_bar=False, enable_model_summary=False,
                         check_val_every_n_epoch=epochs, num_sanity_val_steps=0, default_root_dir=tmp_path,
                         accelerator="cpu")
    trainer.fit(lm, data)
    lm.metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    lm.ckpt = tmp_path / "last.ckpt"
    trainer.save_checkpoint(lm.ckpt)
    return lm


def test_a_fit_logs_the_interchange_and_its_checkpoint_keeps_the_settings(tmp_path):
    settings = InterchangeTraining(subspace=4, pairs_per_batch=16, pool_size=64, val_pairs=50)
    lm = _fit(tmp_path, settings, epochs=1)
    assert {"train/iit_loss_epoch", "train/iit_acc_epoch", "val/iit_acc", "train/loss_epoch"} <= set(lm.metrics)
    assert 0 < lm.metrics["train/iit_loss_epoch"] < float("inf") and 0 <= lm.metrics["val/iit_acc"] <= 1
    back, task = load_checkpoint(lm.ckpt)
    assert back.interchange.settings == settings and back.hparams["interchange"] == settings.config()
    assert task.config() == SMALL.config()


def test_training_makes_the_patched_net_follow_the_source_count(tmp_path):
    """Before training, swapping the planted coordinates gives the source's count almost never;
    ten epochs of the interchange loss make the patched net answer with it on most pairs."""
    settings = InterchangeTraining(subspace=4, pairs_per_batch=64, val_pairs=200)
    untrained = InterchangeLoss(settings)
    pl.seed_everything(0, verbose=False)
    before = untrained.correct(GRULM(SMALL.vocab.size, 32), untrained.validation_pairs(SMALL)).float().mean()
    lm = _fit(tmp_path, settings, epochs=10)
    assert before < 0.1 and lm.metrics["val/iit_acc"] >= 0.6, (before, lm.metrics)


PLANTED = 4  # coordinates of the 32-wide GRU state


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """A 32-wide GRU trained with the interchange loss, and the same net trained without it."""
    tmp = tmp_path_factory.mktemp("planted")
    (tmp / "iit").mkdir(), (tmp / "plain").mkdir()
    iit = _fit(tmp / "iit", InterchangeTraining(subspace=PLANTED, pairs_per_batch=64, val_pairs=200), epochs=20)
    plain = _fit(tmp / "plain", None, epochs=20)
    return iit, plain


def _das(net):
    alignment = Alignment("up_down", ["count"], "state", Interchange(subspace=PLANTED))
    result, _ = run_alignment(net, SMALL, alignment, SearchSettings(n_train=2000, n_val=500, n_test=500,
                                                                    progress=False))
    return result


@pytest.mark.slow
def test_das_finds_the_planted_count(planted):
    """Both nets learn the task. With the interchange loss, swapping the planted raw coordinates
    moves the answer to the source's count (``val/iit_acc``, and the identity baseline of DAS), and
    DAS at the default fit schedule finds the count there; without it, the same raw coordinates
    carry no count (the identity baseline stays near the no-op floor)."""
    iit, plain = planted
    for lm in planted:
        assert lm.metrics["val/acc_trial"] >= 0.95, lm.metrics
    assert iit.metrics["val/iit_acc"] >= 0.9, iit.metrics
    found, unplanted = _das(iit.net), _das(plain.net)
    assert found.iia >= 0.9 and found.iia_identity >= 0.9, (found.iia, found.iia_identity)
    # the same DAS against the program with its counts permuted does not align on the planted net
    null = permuted_null(iit.net, SMALL, Alignment("up_down", ["count"], "state", Interchange(subspace=PLANTED)),
                         SearchSettings(n_train=2000, n_val=500, n_test=500, progress=False))
    assert null["iia"] < 0.5, null["iia"]
    assert unplanted.iia_identity < 0.5 and unplanted.iia_identity < found.iia_identity - 0.4, unplanted.iia_identity
