"""A toy architecture, in one file: a plain tanh RNN behind the SequenceModel interface."""

import torch
from torch import nn

from numsym_pl.models import SequenceModel


class TanhRNNLM(SequenceModel):
    """Embedding -> tanh RNN cell -> linear decoder. Site ``h``: the state after step t.

    Args:
        vocab_size: linked from the data module.
        hidden_size: state width.
    """

    def __init__(self, vocab_size: int, hidden_size: int = 32):
        super().__init__()
        self.vocab_size = vocab_size
        self.embed, self.cell = nn.Embedding(vocab_size, hidden_size), nn.RNNCell(hidden_size, hidden_size)
        self.head = nn.Linear(hidden_size, vocab_size)

    @property
    def sites(self):
        return {"h": (self.cell.hidden_size, "h after the cell at step t")}

    def _run(self, tokens, positions=None, patch_fn=None):  # states [B, L, d], patched at positions
        x, h, hs = self.embed(tokens), None, []
        for t in range(tokens.shape[1]):
            h = self.cell(x[:, t], h)
            if patch_fn is not None and (positions == t).any():
                h = torch.where((positions == t)[:, None], patch_fn(h), h)
            hs.append(h)
        return torch.stack(hs, 1)

    def forward(self, tokens, out_mask=None):
        h = self._run(tokens)
        return self.head(h if out_mask is None else h[out_mask])

    def states(self, tokens, site):
        return self._run(tokens)[..., : self.site_width(site)]

    def forward_patched(self, tokens, site, positions, patch_fn, out_mask=None, cache=None):
        self.check_site(site)
        logits = self.head(self._run(tokens, positions, patch_fn))
        return logits if out_mask is None else logits * out_mask[..., None]
