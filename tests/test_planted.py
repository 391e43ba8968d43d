"""DAS proven to discriminate, on nets whose answer is known.

``PlantedCounter`` is a hand-built recurrent net. Its state is ``h = Q z``, with ``Q`` a random
rotation. ``z[0]`` is the Up-Down count, ``z[1]`` the phase, and the rest is filler that the token
stream drives but no output reads. Each step reads the count and phase back from the (possibly
patched) state ``h``, so an interchange on the count direction steers every later answer.
DAS must find that direction (IIA >= 0.99), while swapping raw neurons stays near the no-op floor.

With ``planted=False`` the same net keeps its count and phase in a private accumulator outside
its state. The site holds only the filler, so there is no count variable there to find, and DAS
must stay near the floor.
"""

import numpy as np
import torch
from torch import nn

from numsym_pl.das.interventions import Interchange
from numsym_pl.das import Alignment, SearchSettings, run_alignment
from numsym_pl.models import SequenceModel, Site
from numsym_pl.tasks import VOCAB, NumericEquivalence


class PlantedCounter(SequenceModel):
    family = "recurrent"
    capabilities = frozenset({"carried_state"})

    def __init__(self, vocab_size: int, hidden_size: int = 16, planted: bool = True, seed: int = 0):
        super().__init__()
        self.vocab_size, self.planted = vocab_size, planted
        g = torch.Generator().manual_seed(seed)
        self.register_buffer("Q", torch.linalg.qr(torch.randn(hidden_size, hidden_size, generator=g))[0])
        self.register_buffer("filler_in", torch.randn(vocab_size, hidden_size - 2, generator=g))
        self.unused = nn.Parameter(torch.zeros(1))  # DAS finds the device through a parameter
        self.demo = torch.tensor([VOCAB.D0, VOCAB.D1, VOCAB.D2])

    @property
    def sites(self):
        return {"state": Site(self.Q.shape[0], "h = Q z: z[0] count, z[1] phase, z[2:] filler",
                              "[B, d] at each step t")}

    def forward(self, tokens, out_mask=None):
        B, L = tokens.shape
        z = torch.zeros(B, self.Q.shape[0])
        private = torch.zeros(B, 2)  # count, phase when not planted in the state
        h, logits = z @ self.Q.T, []
        for t in range(L):
            x = tokens[:, t]
            z = h @ self.Q  # read back the state, patched or not
            count, phase = (z[:, 0], z[:, 1]) if self.planted else (private[:, 0], private[:, 1])
            is_obj = torch.isin(x, self.demo) | (x == VOCAB.RESP)
            count = count + is_obj.float() * (1 - 2 * (phase > 0.5).float())
            phase = torch.maximum(phase, (x == VOCAB.TRIG).float())
            filler = 0.5 * z[:, 2:] + self.filler_in[x]
            private = torch.stack([count, phase], 1)
            kept = (count, phase) if self.planted else (torch.zeros_like(count), torch.zeros_like(phase))
            h = self.hook("state", torch.cat([torch.stack(kept, 1), filler], 1) @ self.Q.T, t)
            c = (h @ self.Q)[:, 0] if self.planted else private[:, 0]
            out = torch.full((B, self.vocab_size), -10.0)
            read = 1e-3 * h.sum(1)  # the output reads the state (a gradient path), never enough to change an answer
            out[:, VOCAB.RESP], out[:, VOCAB.EOS] = 8 * (c - 0.5) + read, -8 * (c - 0.5) + read
            logits.append(out)
        y = torch.stack(logits, 1)
        return y if out_mask is None else y[out_mask]


# a random start: the count hides among the filler's principal axes, and a 1-wide fit started there
# stalls (docs/method.md, "Where the principal-axes start fails")
SETTINGS = SearchSettings(n_train=2000, n_val=300, n_test=500, max_steps=400, batch_size=128, eval_every=50, lr=0.01,
                          patience=2, progress=False, random_seeds=3, start="random")
TASK = NumericEquivalence("multi", max_count=10, heldout_counts=(4,), ood_counts=(12,))


def _align(planted: bool):
    torch.manual_seed(0)
    net = PlantedCounter(VOCAB.size, planted=planted)
    result, _ = run_alignment(net, TASK, Alignment("up_down", "count", "state", Interchange(1)), SETTINGS)
    return result


def test_the_planted_net_does_the_task():
    trials = TASK.sample("train", 64, np.random.default_rng(0))
    tokens = torch.as_tensor(trials.tokens)
    for planted in (True, False):
        logits = PlantedCounter(VOCAB.size, planted=planted)(tokens[:, :-1])
        scored = torch.as_tensor(trials.scored)
        assert (logits.argmax(-1)[scored] == tokens[:, 1:][scored]).all()


def test_das_finds_a_planted_count_and_raw_neurons_do_not():
    r = _align(planted=True)
    assert r.iia >= 0.99 and r.iia_effective >= 0.99 and r.discriminating
    assert r.iia_identity < r.iia_none + 0.1  # swapping one raw neuron is about doing nothing
    assert r.controls["random_subspace"]["mean"] < r.iia_none + 0.1


def test_das_finds_nothing_where_no_count_is_kept():
    r = _align(planted=False)
    assert r.iia < r.iia_none + 0.05 and r.iia_effective < 0.05 and not r.discriminating
