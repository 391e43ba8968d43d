"""Bridges from numsym_pl to other tools: a trained net as safetensors (``export``), as a
TransformerLens ``HookedTransformer`` (``transformerlens``) and traced by nnsight (``nnsight``).

The submodules import their tool only when imported themselves: ``export`` needs safetensors (a core
dependency); ``transformerlens`` and ``nnsight`` need the ``bridges`` extra
(``pip install 'numsym_pl[bridges]'``).
"""
