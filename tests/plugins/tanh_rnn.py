"""A toy architecture, in one file: a plain tanh RNN. It only declares its site and passes the
state through its hook point; states and patched runs come from the SequenceModel base."""

import torch
from torch import nn

from numsym_pl.models import SequenceModel, Site


class TanhRNNLM(SequenceModel):
    """Embedding -> tanh RNN cell -> linear decoder. Site ``h``: the state after step t.

    Args:
        vocab_size: linked from the data module.
        hidden_size: state width.
    """

    capabilities = frozenset({"carried_state"})

    def __init__(self, vocab_size: int, hidden_size: int = 32):
        super().__init__()
        self.vocab_size = vocab_size
        self.embed, self.cell = nn.Embedding(vocab_size, hidden_size), nn.RNNCell(hidden_size, hidden_size)
        self.head = nn.Linear(hidden_size, vocab_size)

    @property
    def sites(self):
        return {"h": Site(self.cell.hidden_size, "h after the cell at step t", "[B, d] at each step t")}

    def forward(self, tokens, out_mask=None):
        x, h, hs = self.embed(tokens), None, []
        for t in range(tokens.shape[1]):
            h = self.hook("h", self.cell(x[:, t], h), t)  # [B, d]
            hs.append(h)
        h = torch.stack(hs, 1)  # [B, L, d]
        return self.head(h if out_mask is None else h[out_mask])
