"""numsym_pl: do sequence models trained by next-token prediction grow symbol-like number variables?"""

__version__ = "0.1.0"
