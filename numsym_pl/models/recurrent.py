"""GRU and LSTM next-token models (docs/method.md#architectures); both recurrences run ``models.scan``."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from numsym_pl.errors import ConfigError
from numsym_pl.models.interface import PatchFn, SequenceModel, Site, last_masked
from numsym_pl.models.scan import scan


class RecurrentLM(SequenceModel):
    """Embedding -> one recurrent layer (zero initial state) -> MLP decoder (d -> 4d -> GELU -> vocab).

    The DAS site ``state`` is the recurrent state right after the cell at step t: ``h`` for a GRU,
    ``[h; c]`` for an LSTM (so its width is twice the hidden size). The LSTM also has its halves
    as sites of their own, ``h`` and ``c``. The decoder reads ``h``.
    """

    cell_type: type[nn.RNNBase]
    family = "recurrent"
    capabilities = frozenset({"carried_state"})

    def __init__(self, vocab_size: int, hidden_size: int, embed_size: int | None = None,
                 decoder_mult: int = 4, dropout: float = 0.0):
        super().__init__()
        if hidden_size < 1:
            raise ConfigError(f"hidden_size: must be >= 1, got {hidden_size}")
        self.vocab_size, self.hidden_size = vocab_size, hidden_size
        embed_size = embed_size or hidden_size
        self.embed = nn.Embedding(vocab_size, embed_size)
        self.rnn = self.cell_type(embed_size, hidden_size, batch_first=True)
        self.decoder = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(hidden_size, decoder_mult * hidden_size), nn.GELU(),
            nn.Linear(decoder_mult * hidden_size, vocab_size),
        )

    @property
    def is_lstm(self) -> bool:
        return isinstance(self.rnn, nn.LSTM)

    @property
    def sites(self) -> dict[str, Site]:
        H, step = self.hidden_size, "[B, width] at each step t"
        if not self.is_lstm:
            return {"state": Site(H, "h after the cell at step t", step)}
        return {"state": Site(2 * H, "[h; c] after the cell at step t", step),
                "h": Site(H, "h (the output the decoder reads) after step t", step),
                "c": Site(H, "the cell state c after step t", step)}

    def _part(self, site: str) -> slice:
        """Where ``site`` lies in the ``state`` [h; c]."""
        H = self.hidden_size
        return {"state": slice(None), "h": slice(0, H), "c": slice(H, 2 * H)}[self.check_site(site)]

    def _on_state(self, site: str, patch_fn: PatchFn) -> PatchFn:
        """``patch_fn`` of a part of the state as a patch of the whole state."""
        part = self._part(site)
        if part == slice(None):
            return patch_fn

        def patch(state):
            new = state.clone()
            new[:, part] = patch_fn(state[:, part]).to(state.dtype)
            return new
        return patch

    # ---- state <-> the rnn's (h, c) ---------------------------------------------------------------
    def _to_site(self, hx) -> torch.Tensor:  # rnn final state -> [B, d]
        return torch.cat([hx[0][0], hx[1][0]], -1) if self.is_lstm else hx[0]

    def _from_site(self, s: torch.Tensor):  # [B, d] -> rnn initial state
        s = s.unsqueeze(0).contiguous()
        return tuple(s.chunk(2, -1)) if self.is_lstm else s

    def forward(self, tokens: torch.Tensor, out_mask: torch.Tensor | None = None) -> torch.Tensor:
        if self.hooks_active:  # the scan runs every step at once and calls no hook: go step by step
            logits = self.decoder(self._stepwise(tokens))
            return logits if out_mask is None else logits[out_mask]
        x, H = self.embed(tokens), self.hidden_size
        if out_mask is None:
            return self.decoder(scan(self.rnn, x)[0][..., :H])  # [B, L, V]
        if not out_mask.any():
            return self.decoder(x.new_zeros(0, H))
        lengths = last_masked(out_mask) + 1  # each row runs up to its last needed step
        return self.decoder(scan(self.rnn, x, lengths, at=out_mask.nonzero(as_tuple=True))[0][:, :H])  # [M, V]

    def forward_spliced(self, tokens: torch.Tensor, site: str, mask: torch.Tensor,
                        replacement: torch.Tensor) -> torch.Tensor:
        """The fast path of the splice: the future of a recurrent net depends on its last state
        only, so patching each row's last masked position is exact after it (logits at earlier
        masked positions are the clean run's)."""
        last = last_masked(mask)
        rows = torch.arange(len(tokens), device=tokens.device)
        return self.forward_patched(tokens, site, last, lambda h: replacement[rows, last].to(h.dtype))

    def _stepwise(self, tokens: torch.Tensor) -> torch.Tensor:
        """h [B, L, H] by one cell call per step, the site's state passing its hook point each step
        (the reference the scan's fast paths are tested against)."""
        x = self.embed(tokens)
        s = x.new_zeros(len(tokens), self.sites["state"].width)
        hs = []
        for t in range(tokens.shape[1]):
            _, hx = self.rnn(x[:, t: t + 1], self._from_site(s))
            s = self.hook("state", self._to_site(hx), t)  # [B, d]
            if self.is_lstm:
                H = self.hidden_size
                s = torch.cat([self.hook("h", s[:, :H], t), self.hook("c", s[:, H:], t)], -1)
            hs.append(s[:, : self.hidden_size])
        return torch.stack(hs, 1)

    def states(self, tokens: torch.Tensor, site: str = "state") -> torch.Tensor:
        return scan(self.rnn, self.embed(tokens))[0][..., self._part(site)]  # [B, L, width]

    @torch.no_grad()
    def patch_cache(self, tokens: torch.Tensor, site: str, positions: torch.Tensor) -> torch.Tensor:
        """The clean state at each row's position [B, d]: all a patched continuation needs."""
        return self._prefix(self.embed(tokens), positions)[1]

    def _prefix(self, x: torch.Tensor, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Run each row up to its position: (hidden [B, L, H], zeros after the position; site state [B, d])."""
        out, state = scan(self.rnn, x, positions + 1)
        return F.pad(out[..., : self.hidden_size], (0, 0, 0, x.shape[1] - out.shape[1])), state

    def forward_patched(self, tokens: torch.Tensor, site: str, positions: torch.Tensor, patch_fn: PatchFn,
                        out_mask: torch.Tensor | None = None, cache: torch.Tensor | None = None) -> torch.Tensor:
        """Prefix (up to each positions[b]) once without grad as a packed sequence (or taken from
        ``cache``); the patched state starts the suffixes, left-aligned so one fused call runs them
        all. With ``out_mask`` ([B, L] bool) only those logits are computed (others are 0) and each
        suffix stops at its row's last masked position."""
        patch_fn = self._on_state(site, patch_fn)
        if cache is not None and out_mask is None:
            raise ValueError("forward_patched: a cache needs an out_mask (logits before the positions are not kept)")
        B, L = tokens.shape
        if cache is None:
            with torch.no_grad():
                prefix_h, clean = self._prefix(self.embed(tokens), positions)
        else:
            prefix_h, clean = None, cache.to(self.embed.weight.dtype)
        state = patch_fn(clean)  # [B, d]
        h_patched = state[:, : self.hidden_size]
        t = torch.arange(L, device=tokens.device)
        if out_mask is None:
            steps = torch.full_like(positions, L - 1) - positions  # suffix steps after each position
        else:
            steps = (last_masked(out_mask) - positions).clamp(min=0)
        S = int(steps.max())
        x_suffix = None
        if S > 0:
            idx = (positions[:, None] + 1 + torch.arange(S, device=tokens.device)).clamp(max=L - 1)  # [B, S]
            x_suffix = self.embed(tokens.gather(1, idx))
        if out_mask is None:
            seq = h_patched[:, None]  # [B, 1 + S, H]; index j <-> position p + j
            if S > 0:
                seq = torch.cat([seq, scan(self.rnn, x_suffix, None, state)[0][..., : self.hidden_size].to(seq.dtype)],
                                1)
            rel = (t[None, :] - positions[:, None]).clamp(0, S)  # [B, L]
            h = torch.where((t[None, :] >= positions[:, None])[..., None],
                            seq.gather(1, rel[..., None].expand(-1, -1, seq.shape[-1])), prefix_h.to(seq.dtype))
            return self.decoder(h)
        # only the masked positions: rows stop at their own last needed step; each needed state is
        # the patched one (at the position), a suffix state (after it) or a clean prefix state (before
        # it; with the cache there is none, every needed logit is at or after its row's position)
        b, tt = out_mask.nonzero(as_tuple=True)
        rel = tt - positions[b]
        after = rel > 0
        parts = [h_patched]
        if S > 0:
            suffix, _ = scan(self.rnn, x_suffix, steps.clamp(min=1), state, at=(b[after], rel[after] - 1))
            parts.append(suffix[:, : self.hidden_size].to(h_patched.dtype))
        where = torch.where(after, B + torch.cumsum(after, 0) - 1, b)  # into [h_patched; suffix]
        if prefix_h is not None:
            where = torch.where(rel < 0, B + int(after.sum()) + b * L + tt, where)
            parts.append(prefix_h.flatten(0, 1).to(h_patched.dtype))
        logits = self.decoder(torch.cat(parts).index_select(0, where))
        return logits.new_zeros(B, L, logits.shape[-1]).index_put((b, tt), logits)


class GRULM(RecurrentLM):
    """GRU next-token model (reference: hidden_size 128).

    Args:
        vocab_size: linked from the data module.
        hidden_size: GRU state width d (the DAS site width).
        embed_size: token embedding width (default: hidden_size).
        decoder_mult: decoder MLP hidden width as a multiple of d.
        dropout: dropout before the decoder (the reference code's 0.5 is doubtful; default 0).
    """

    cell_type = nn.GRU

    def __init__(self, vocab_size: int, hidden_size: int = 128, embed_size: int | None = None,
                 decoder_mult: int = 4, dropout: float = 0.0):
        super().__init__(vocab_size, hidden_size, embed_size, decoder_mult, dropout)


class LSTMLM(RecurrentLM):
    """LSTM next-token model (reference: hidden and cell 64 each, so the ``state`` site is 128-d).

    Args:
        vocab_size: linked from the data module.
        hidden_size: width of h and of c; the DAS site ``state`` = [h; c] is twice as wide.
        embed_size: token embedding width (default: hidden_size).
        decoder_mult: decoder MLP hidden width as a multiple of hidden_size.
        dropout: dropout before the decoder (default 0).
    """

    cell_type = nn.LSTM

    def __init__(self, vocab_size: int, hidden_size: int = 64, embed_size: int | None = None,
                 decoder_mult: int = 4, dropout: float = 0.0):
        super().__init__(vocab_size, hidden_size, embed_size, decoder_mult, dropout)
