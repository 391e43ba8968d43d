"""Next-token models behind one interface (see ``interface.SequenceModel``)."""

from numsym_pl.models.interface import SequenceModel, Site
from numsym_pl.models.recurrent import GRULM, LSTMLM, RecurrentLM
from numsym_pl.models.transformer import TransformerLM

__all__ = ["SequenceModel", "Site", "RecurrentLM", "GRULM", "LSTMLM", "TransformerLM"]
