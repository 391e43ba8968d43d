"""Pre-LayerNorm causal transformer with RoPE or NoPE (docs/method.md#architectures)."""

from __future__ import annotations

from typing import Literal, Sequence

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from numsym_pl.errors import ConfigError
from numsym_pl.models.interface import PatchFn, SequenceModel, Site


def rope_angles(length: int, head_dim: int, base: float = 10000.0, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin [L, head_dim] for rotary embeddings in the rotate-half layout: channel i and
    i + head_dim/2 form a pair rotated by angle ``pos * base^(-2i/head_dim)``."""
    inv_freq = base ** (-torch.arange(0, head_dim, 2, device=device, dtype=torch.float32) / head_dim)
    ang = torch.arange(length, device=device, dtype=torch.float32)[:, None] * inv_freq[None, :]  # [L, hd/2]
    ang = torch.cat([ang, ang], -1)  # [L, hd]
    return ang.cos(), ang.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate ``x`` [..., L, head_dim] by the angles of its position."""
    x1, x2 = x.chunk(2, -1)
    rotated = torch.cat([-x2, x1], -1)
    return (x * cos + rotated * sin).to(x.dtype)


class Block(nn.Module):
    """x + Attn(LN(x)), then x + FFN(LN(x))."""

    def __init__(self, d_model: int, n_heads: int, ffn_mult: int, rope: bool, rope_base: float, dropout: float):
        super().__init__()
        self.n_heads, self.rope, self.rope_base, self.dropout = n_heads, rope, rope_base, dropout
        self.ln1, self.ln2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)
        self.ffn = nn.Sequential(nn.Linear(d_model, ffn_mult * d_model), nn.GELU(),
                                 nn.Linear(ffn_mult * d_model, d_model), nn.Dropout(dropout))

    def _qkv(self, x: torch.Tensor, pos: torch.Tensor | None = None, parts: slice = slice(0, 3),
             length: int | None = None) -> list[torch.Tensor]:
        """Queries, keys, values [B, h, L, e] of LN(x), RoPE applied to queries and keys. ``pos``
        [B, L]: the position of each row of ``x`` (default 0..L-1), all below ``length`` (the
        caller's sequence length; read from ``pos`` with a host sync when not given); ``parts``:
        which of the three to project (``slice(1, 3)``: keys and values only)."""
        d = x.shape[-1]
        w, b = self.qkv.weight[parts.start * d: parts.stop * d], self.qkv.bias[parts.start * d: parts.stop * d]
        out = list(rearrange(F.linear(self.ln1(x), w, b), "b l (n h e) -> n b h l e", n=parts.stop - parts.start,
                             h=self.n_heads))
        if self.rope:
            if pos is None:
                length = x.shape[1]
            elif length is None:
                length = int(pos.max()) + 1
            cos, sin = rope_angles(length, out[0].shape[-1], self.rope_base, x.device)
            if pos is not None:
                cos, sin = cos[pos][:, None], sin[pos][:, None]  # [B, 1, L, e]
            out = [t if kind == 2 else apply_rope(t, cos, sin) for kind, t in zip(range(parts.start, parts.stop), out)]
        return out

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None, hook=None) -> torch.Tensor:
        """``attn_mask``: bool [B, L, L], True where query t may attend to key s (causality is
        added here); ``None`` is plain causal attention. ``hook(name, x)`` (or None: the fast
        path) is called on each head's output (``head.<h>``, [B, L, e], before the output
        projection), the attention output (``attn``, [B, L, d], before the residual add) and the
        MLP hidden (``mlp``, [B, L, ffn_mult * d], after the GELU)."""
        L = x.shape[1]
        q, k, v = self._qkv(x)
        p = self.dropout if self.training else 0.0
        if attn_mask is None:
            a = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=p)
        else:
            causal = torch.ones(L, L, dtype=torch.bool, device=x.device).tril()
            a = F.scaled_dot_product_attention(q, k, v, attn_mask=(attn_mask & causal)[:, None], dropout_p=p)
        if hook is None:
            x = x + self.out(rearrange(a, "b h l e -> b l (h e)"))
            return x + self.ffn(self.ln2(x))
        a = torch.stack([hook(f"head.{h}", a[:, h]) for h in range(self.n_heads)], 1)
        x = x + hook("attn", self.out(rearrange(a, "b h l e -> b l (h e)")))
        up, act, down, drop = self.ffn
        return x + drop(down(hook("mlp", act(up(self.ln2(x))))))

    def parts(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The block's pieces on plain causal attention, each [B, L, .]: ``attn`` (its output before
        the residual add), ``mid`` (x + attn), ``mlp`` (the MLP hidden after the GELU), ``out``."""
        a = F.scaled_dot_product_attention(*self._qkv(x), is_causal=True)
        attn = self.out(rearrange(a, "b h l e -> b l (h e)"))
        up, act, down, drop = self.ffn
        mid = x + attn
        hidden = act(up(self.ln2(mid)))
        return {"attn": attn, "mid": mid, "mlp": hidden, "out": mid + drop(down(hidden))}

    def from_inner(self, kind: str, base: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        """The block's output at one position from a (patched) ``attn`` or ``mlp`` value there and
        what it adds to (``base``: the block's input for ``attn``, ``mid`` for ``mlp``): [B, d]."""
        up, act, down, drop = self.ffn
        if kind == "mlp":
            return base + drop(down(value))
        mid = base + value
        return mid + drop(down(act(up(self.ln2(mid)))))

    def forward_at(self, x: torch.Tensor, qpos: torch.Tensor, valid: torch.Tensor | None = None,
                   clean: torch.Tensor | None = None, at: torch.Tensor | None = None) -> torch.Tensor:
        """The block's output at positions ``qpos`` [B, Q] of each row only, [B, Q, d]: keys and
        values over the whole causal prefix, the query, projection and FFN at those positions.
        ``valid`` [B, Q] bool: only those slots are wanted, [M, d] (the rest pad ``qpos``, and skip
        the projection and the FFN). With ``clean`` (``x`` as it was before a patch) and ``at`` [B]
        (the one position of each row where ``x`` differs from it), keys and values come from
        ``clean`` without autograd but at ``at``, and queries are projected at ``qpos`` only: the
        same numbers for less work."""
        L, e = x.shape[1], x.shape[2] // self.n_heads
        rows = x.gather(1, qpos[..., None].expand(-1, -1, x.shape[2]))  # [B, Q, d]
        if clean is None:
            q, k, v = self._qkv(x)
            q = q.gather(2, qpos[:, None, :, None].expand(-1, self.n_heads, -1, e))  # [B, h, Q, e]
        else:
            with torch.no_grad():
                k, v = self._qkv(clean, parts=slice(1, 3))
            (q,) = self._qkv(rows, qpos, slice(0, 1), L)
            k_at, v_at = self._qkv(x[torch.arange(len(x), device=x.device), at][:, None], at[:, None], slice(1, 3), L)
            hit = (torch.arange(L, device=x.device)[None, :] == at[:, None])[:, None, :, None]  # [B, 1, L, 1]
            k, v = torch.where(hit, k_at, k), torch.where(hit, v_at, v)
        causal = torch.arange(L, device=x.device)[None, None, :] <= qpos[..., None]  # [B, Q, L]
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=causal[:, None])
        a = rearrange(a, "b h q e -> b q (h e)")
        if valid is not None:
            rows, a = rows[valid], a[valid]
        y = rows + self.out(a)
        return y + self.ffn(self.ln2(y))


def _block_site(name: str, k: int) -> str:
    """A block's hook name as the model's site: ``attn`` -> ``attn.k``, ``head.h`` -> ``head.k.h``."""
    kind, _, rest = name.partition(".")
    return f"{kind}.{k}" + (f".{rest}" if rest else "")


class TransformerLM(SequenceModel):
    """Decoder-only transformer: embedding -> n_layers pre-LN blocks -> final LN -> vocab.

    Sites (blocks k = 1..n_layers, heads h = 0..n_heads-1), each [B, L, width] over the sequence:

    - ``resid.k``: the residual stream after block k (width d); ``resid.0`` is the token embedding;
    - ``attn.k``: block k's attention output after its output projection, before the residual add (d);
    - ``mlp.k``: block k's MLP hidden after the GELU (ffn_mult * d);
    - ``head.k.h``: head h's attention output in block k, before the output projection (d / n_heads).

    The residual, ``attn`` and ``mlp`` sites have fast paths (what lies below a patch runs once, and
    is cached across DAS steps; a patch of block k's attention output or MLP hidden at one position
    changes block k's output there only; when only some logits are asked for, the last block runs at
    those positions only, and when the patch is its input it takes keys and values from the clean
    stream but at the patched position); the head sites run through the hook points.

    Args:
        vocab_size: linked from the data module.
        d_model: residual width d.
        n_layers: number of blocks.
        n_heads: attention heads per block (d_model must be divisible by it).
        ffn_mult: FFN hidden width as a multiple of d_model.
        positional: ``rope`` (rotary, on queries and keys) or ``nope`` (no positional information
            but the causal mask).
        rope_base: RoPE frequency base.
        dropout: dropout in attention and FFN (default 0).
    """

    capabilities = frozenset({"attention_mask"})
    family = "transformer"

    def __init__(self, vocab_size: int, d_model: int = 128, n_layers: int = 2, n_heads: int = 1,
                 ffn_mult: int = 4, positional: Literal["rope", "nope"] = "rope", rope_base: float = 10000.0,
                 dropout: float = 0.0):
        super().__init__()
        if d_model % n_heads or (positional == "rope" and (d_model // n_heads) % 2):
            raise ConfigError(f"n_heads: d_model={d_model} must split into {n_heads} heads of even width")
        if positional not in ("rope", "nope"):
            raise ConfigError(f"positional: must be 'rope' or 'nope', got {positional!r}")
        self.vocab_size, self.d_model, self.positional = vocab_size, d_model, positional
        self.embed = nn.Embedding(vocab_size, d_model)
        self.blocks = nn.ModuleList(
            Block(d_model, n_heads, ffn_mult, positional == "rope", rope_base, dropout) for _ in range(n_layers)
        )
        self.ln_f = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab_size)

    @property
    def sites(self) -> dict[str, Site]:
        d, seq = self.d_model, "[B, L, width] over the sequence"
        s = {"resid.0": Site(d, "token embeddings (input of block 1)", seq)}
        for k, block in enumerate(self.blocks, 1):
            s[f"resid.{k}"] = Site(d, f"residual stream after block {k}", seq)
            s[f"attn.{k}"] = Site(d, f"attention output of block {k}, before the residual add", seq)
            s[f"mlp.{k}"] = Site(block.ffn[0].out_features, f"MLP hidden of block {k}, after the GELU", seq)
            s.update({f"head.{k}.{h}": Site(d // block.n_heads,
                                            f"head {h}'s output in block {k}, before the output projection", seq)
                      for h in range(block.n_heads)})
        return s

    @property
    def default_site(self) -> str:
        """The residual stream in the middle of the net (``resid.1`` of the 2-block reference)."""
        return f"resid.{len(self.blocks) // 2}"

    def _on_residual(self, site: str, attn_mask=None) -> bool:
        """The fast paths below know the residual stream; any other hook point takes the base
        class's hook path (which runs no attention mask)."""
        if self.check_site(site).startswith("resid."):
            return True
        if attn_mask is not None:
            raise ConfigError(f"site: attention masks run at the residual sites only, not at {site!r}")
        return False

    def _layer(self, site: str) -> int:
        return int(self.check_site(site).split(".")[1])

    def _inner(self, site: str, attn_mask=None) -> bool:
        """``attn.k`` / ``mlp.k`` on plain causal attention: the inner fast path."""
        return attn_mask is None and self.check_site(site).split(".")[0] in ("attn", "mlp")

    @torch.no_grad()
    def _inner_cache(self, tokens: torch.Tensor, site: str, positions: torch.Tensor) -> torch.Tensor:
        """What the inner fast path reuses, as one tensor [B, E + L, d]: the first ``E = 1 + w / d``
        rows hold, at each row's patch position, what the site's value adds to and the clean value
        (w wide, in rows of d); then the clean residual stream after the site's block."""
        kind, k = site.split(".")[0], self._layer(site)
        x = self._run(self.embed(tokens), 0, k - 1, None, None)
        parts = self.blocks[k - 1].parts(x)
        b = torch.arange(len(tokens), device=tokens.device)
        base = (x if kind == "attn" else parts["mid"])[b, positions]
        clean = parts[kind][b, positions].reshape(len(tokens), -1, self.d_model)
        return torch.cat([base[:, None], clean, parts["out"]], 1)

    def _run(self, x: torch.Tensor, start: int, stop: int, attn_mask, mask_layers) -> torch.Tensor:
        for i in range(start, stop):
            use = attn_mask is not None and (mask_layers is None or i in mask_layers)
            inner = (lambda name, y, k=i + 1: self.hook(_block_site(name, k), y)) if self.hooks_active else None
            x = self.hook(f"resid.{i + 1}", self.blocks[i](x, attn_mask if use else None, inner))  # [B, L, d]
        return x

    def forward(self, tokens: torch.Tensor, attn_mask: torch.Tensor | None = None,
                mask_layers: Sequence[int] | None = None, out_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Logits [B, L, V] (with ``out_mask`` [B, L]: those positions only, [M, V]). ``attn_mask``
        (bool [B, L, L], True = may attend) is the attention-manipulation hook, applied in the
        blocks listed in ``mask_layers`` (0-based; ``None`` = all)."""
        x = self._run(self.hook("resid.0", self.embed(tokens)), 0, len(self.blocks), attn_mask, mask_layers)
        return self.head(self.ln_f(x if out_mask is None else x[out_mask]))

    def states(self, tokens: torch.Tensor, site: str) -> torch.Tensor:
        if not self._on_residual(site):
            return super().states(tokens, site)
        return self._run(self.embed(tokens), 0, self._layer(site), None, None)  # [B, L, d]

    def forward_spliced(self, tokens: torch.Tensor, site: str, mask: torch.Tensor, replacement: torch.Tensor,
                        attn_mask: torch.Tensor | None = None,
                        mask_layers: Sequence[int] | None = None) -> torch.Tensor:
        """Residual stream at ``site`` replaced by ``replacement`` [B, L, d] where ``mask`` [B, L]
        is True (context substitution); the blocks above see the spliced stream."""
        if not self._on_residual(site, attn_mask):
            return super().forward_spliced(tokens, site, mask, replacement)
        k = self._layer(site)
        with torch.no_grad():
            x = self._run(self.embed(tokens), 0, k, attn_mask, mask_layers)
            x = torch.where(mask[..., None], replacement.to(x.dtype), x)
            x = self._run(x, k, len(self.blocks), attn_mask, mask_layers)
        return self.head(self.ln_f(x))

    @torch.no_grad()
    def patch_cache(self, tokens: torch.Tensor, site: str, positions: torch.Tensor) -> torch.Tensor:
        """The clean residual stream at the site, every position [B, L, d]: the blocks below the
        site do not depend on the patch (``attn.k`` / ``mlp.k``: ``_inner_cache``)."""
        if self._inner(site):
            return self._inner_cache(tokens, site, positions)
        return self.states(tokens, site) if self._on_residual(site) else None

    def forward_patched(self, tokens: torch.Tensor, site: str, positions: torch.Tensor, patch_fn: PatchFn,
                        out_mask: torch.Tensor | None = None, cache: torch.Tensor | None = None,
                        attn_mask: torch.Tensor | None = None,
                        mask_layers: Sequence[int] | None = None) -> torch.Tensor:
        """Blocks up to the site run once without grad (or come from ``cache``); only the blocks
        above it are rerun. With ``out_mask`` ([B, L] bool) the sequence is cut after the last
        masked position (attention is causal) and only the masked logits are computed (others are 0)."""
        inner = self._inner(site, attn_mask)
        if not inner and not self._on_residual(site, attn_mask):
            return super().forward_patched(tokens, site, positions, patch_fn, out_mask)
        k = self._layer(site)
        B, L = tokens.shape
        if inner and cache is None:
            cache = self._inner_cache(tokens, site, positions)
        if out_mask is not None:
            last = int(torch.where(out_mask, torch.arange(L, device=tokens.device), -1).max())  # one host sync
            if last < 0:  # no logit asked for: nothing to run
                return self.head.weight.new_zeros(B, L, self.head.out_features)
            cut = max(last + 1, int(positions.max()) + 1)
            tokens = tokens[:, :cut]
            attn_mask = attn_mask[:, :cut, :cut] if attn_mask is not None else None
        b = torch.arange(len(tokens), device=tokens.device)
        if inner:  # block k's output at the patch position from the patched attention output / MLP hidden
            E = 1 + self.site_width(site) // self.d_model
            x = cache[:, E: E + tokens.shape[1]]
            value = patch_fn(cache[:, 1:E].reshape(B, -1))  # [B, w]
            patched = self.blocks[k - 1].from_inner(site.split(".")[0], cache[:, 0], value.to(cache.dtype))
        else:
            if cache is not None:
                x = cache[:, : tokens.shape[1]]
            else:
                with torch.no_grad():
                    x = self._run(self.embed(tokens), 0, k, attn_mask, mask_layers)  # [B, L', d]
            patched = patch_fn(x[b, positions])  # [B, d]
        hit = torch.zeros(x.shape[:2], dtype=torch.bool, device=x.device)
        hit[b, positions] = True
        clean, x = x, torch.where(hit[..., None], patched.to(x.dtype)[:, None, :].expand_as(x), x)
        if out_mask is None or attn_mask is not None or k == len(self.blocks):
            x = self._run(x, k, len(self.blocks), attn_mask, mask_layers)
            if out_mask is None:
                return self.head(self.ln_f(x))
            rows, cols = out_mask[:, : x.shape[1]].nonzero(as_tuple=True)
            y = x[rows, cols]
        else:  # the last block only at the positions whose logits are asked for
            below = k == len(self.blocks) - 1  # the patch is the last block's input: its clean keys serve
            x = self._run(x, k, len(self.blocks) - 1, None, None)
            mask = out_mask[:, : x.shape[1]]
            n = mask.sum(1)  # [B]; each row's asked positions first, in order, then its last one repeated
            t = torch.arange(x.shape[1], device=x.device)
            order = torch.sort(torch.where(mask, t, x.shape[1] + t), 1).values[:, : int(n.max())]
            last = torch.where(n > 0, order.gather(1, (n - 1).clamp(min=0)[:, None])[:, 0],
                               0)  # a row asking for none: 0
            qpos = torch.where(order < x.shape[1], order, last[:, None])
            valid = torch.arange(qpos.shape[1], device=x.device)[None, :] < n[:, None]
            y = self.blocks[-1].forward_at(x, qpos, valid, *((clean, positions) if below else ()))  # [M, d]
            rows, slot = valid.nonzero(as_tuple=True)
            cols = qpos[rows, slot]
        logits = self.head(self.ln_f(y))  # [M, V]
        return logits.new_zeros(B, L, logits.shape[-1]).index_put((rows, cols), logits)
