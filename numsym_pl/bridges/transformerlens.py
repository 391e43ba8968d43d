"""A numsym_pl ``TransformerLM`` as a TransformerLens ``HookedTransformer``, and its sites as
TransformerLens hook names.

    from numsym_pl.bridges.transformerlens import to_hooked_transformer, site_states
    tl = to_hooked_transformer(net)                   # same logits as net(tokens), to ~1e-6
    logits, cache = tl.run_with_cache(tokens)
    site_states(cache, "head.1.0")                    # == net.states(tokens, "head.1.0")

The two architectures are the same maths: pre-LN blocks (``x + attn(LN1 x)``, then
``x + MLP(LN2 x)``), LayerNorms with weight and bias (eps 1e-5), biases on Q, K, V, O and both MLP
layers, exact (erf) GELU, attention scaled by 1/sqrt(head width), a final LayerNorm and an untied
unembedding with a bias. Positions:

- RoPE: numsym_pl rotates queries and keys in the rotate-half layout (channel i pairs with
  i + e/2, e the head width) over the whole head, angle ``pos * base^(-2i/e)``; TransformerLens's
  ``positional_embedding_type="rotary"`` with ``rotary_adjacent_pairs=False`` (its GPT-NeoX
  layout), ``rotary_dim=e`` and ``rotary_base=base`` is that rotation, so the weights need no
  reordering. The angles are computed in two float32 ways (``pos * base^-x`` here, ``pos / base^x``
  there), which differ in the last bits only.
- NoPE: TransformerLens has no position-free setting, so it gets ``"standard"`` learned positional
  embeddings set to zero (``blocks.0.hook_resid_pre`` is then the token embedding exactly). The
  zero ``pos_embed.W_pos`` is a parameter: leave it out of any optimisation.

Needs the ``bridges`` extra and TransformerLens 3.x: 4.0 removed ``HookedTransformer`` (its
replacement, ``TransformerBridge``, wraps Hugging Face models only).
"""

from __future__ import annotations

import warnings

import torch

from numsym_pl.errors import ConfigError
from numsym_pl.models import TransformerLM


def hooked_config(net: TransformerLM, n_ctx: int = 1024):
    """The ``HookedTransformerConfig`` of ``net``'s architecture; ``n_ctx``: the longest sequence
    the converted model takes (numsym_pl's transformer has no limit of its own)."""
    from transformer_lens import HookedTransformerConfig

    block = net.blocks[0]
    n_heads = block.n_heads
    rope = net.positional == "rope"
    return HookedTransformerConfig(
        d_model=net.d_model, d_head=net.d_model // n_heads, n_heads=n_heads, n_layers=len(net.blocks),
        n_ctx=n_ctx, d_vocab=net.vocab_size, d_vocab_out=net.head.out_features, d_mlp=block.ffn[0].out_features,
        act_fn="gelu", normalization_type="LN", eps=block.ln1.eps, attn_only=False,
        positional_embedding_type="rotary" if rope else "standard",
        rotary_dim=net.d_model // n_heads if rope else None, rotary_base=block.rope_base, rotary_adjacent_pairs=False,
        use_attn_scale=True, default_prepend_bos=False, tie_word_embeddings=False, init_weights=False,
        dtype=net.embed.weight.dtype, model_name=f"numsym_pl.{type(net).__name__}")


def hooked_state_dict(net: TransformerLM) -> dict[str, torch.Tensor]:
    """``net``'s weights under TransformerLens's parameter names and shapes (W_Q: [heads, d, e], ...)."""
    d, h = net.d_model, net.blocks[0].n_heads
    e = d // h
    sd = {"embed.W_E": net.embed.weight, "ln_final.w": net.ln_f.weight, "ln_final.b": net.ln_f.bias,
          "unembed.W_U": net.head.weight.T, "unembed.b_U": net.head.bias}
    for i, block in enumerate(net.blocks):
        p = f"blocks.{i}."
        w, b = block.qkv.weight.reshape(3, h, e, d), block.qkv.bias.reshape(3, h, e)  # rows: (q|k|v, head, e)
        for j, name in enumerate("QKV"):
            sd[p + f"attn.W_{name}"] = w[j].transpose(1, 2)  # [h, d, e]
            sd[p + f"attn.b_{name}"] = b[j]
        sd[p + "attn.W_O"] = block.out.weight.T.reshape(h, e, d)  # out's inputs are the heads in order
        sd[p + "attn.b_O"] = block.out.bias
        up, _, down, _ = block.ffn
        sd.update({p + "ln1.w": block.ln1.weight, p + "ln1.b": block.ln1.bias,
                   p + "ln2.w": block.ln2.weight, p + "ln2.b": block.ln2.bias,
                   p + "mlp.W_in": up.weight.T, p + "mlp.b_in": up.bias,
                   p + "mlp.W_out": down.weight.T, p + "mlp.b_out": down.bias})
    return sd


def to_hooked_transformer(net: TransformerLM, n_ctx: int = 1024):
    """A TransformerLens ``HookedTransformer`` computing what ``net`` computes (in eval mode: it
    has no dropout), on ``net``'s device, sharing no tensors with it."""
    from transformer_lens import HookedTransformer

    if not isinstance(net, TransformerLM):
        raise ConfigError(f"net: TransformerLens takes a numsym_pl TransformerLM, not a {type(net).__name__}")
    with warnings.catch_warnings():  # 3.x warns that HookedTransformer goes in 4.0; see the module docstring
        warnings.simplefilter("ignore", DeprecationWarning)
        model = HookedTransformer(hooked_config(net, n_ctx), move_to_device=False)
    weights = hooked_state_dict(net)
    if net.positional == "nope":
        weights["pos_embed.W_pos"] = torch.zeros_like(model.pos_embed.W_pos)
    params = dict(model.named_parameters())
    if params.keys() != weights.keys():
        raise RuntimeError(f"TransformerLens parameters {sorted(params.keys() ^ weights.keys())} have no numsym_pl "
                           "counterpart (or the reverse): this TransformerLens version builds another architecture")
    with torch.no_grad():
        for name, value in weights.items():
            params[name].copy_(value)
    return model.to(net.embed.weight.device, print_details=False).eval()


def hook_name(site: str) -> tuple[str, int | None]:
    """The TransformerLens hook holding ``site``, and the head index for a head site:
    ``resid.0`` -> ``blocks.0.hook_resid_pre``; ``resid.k`` -> ``blocks.{k-1}.hook_resid_post``;
    ``attn.k`` -> ``blocks.{k-1}.hook_attn_out``; ``mlp.k`` -> ``blocks.{k-1}.mlp.hook_post``;
    ``head.k.h`` -> (``blocks.{k-1}.attn.hook_z``, h), whose activation is [B, L, heads, e]."""
    kind, *rest = site.split(".")
    try:
        k, head = int(rest[0]), (int(rest[1]) if kind == "head" else None)
    except (IndexError, ValueError):
        k = head = -1
    if k == 0 and kind == "resid" and len(rest) == 1:
        return "blocks.0.hook_resid_pre", None
    names = {"resid": "hook_resid_post", "attn": "hook_attn_out", "mlp": "mlp.hook_post", "head": "attn.hook_z"}
    if kind not in names or k < 1 or len(rest) != (2 if kind == "head" else 1) or (head is not None and head < 0):
        raise ConfigError(f"site: {site!r} is not a transformer site (resid.k, attn.k, mlp.k, head.k.h)")
    return f"blocks.{k - 1}.{names[kind]}", head


def site_states(cache, site: str) -> torch.Tensor:
    """``site``'s activation [B, L, width] from a TransformerLens ``ActivationCache`` (or any
    mapping of hook names to activations): what ``net.states(tokens, site)`` gives."""
    name, head = hook_name(site)
    value = cache[name]
    return value if head is None else value[:, :, head]
