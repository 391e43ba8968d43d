"""Symbolic programs behind one interface (``base.Program``); the counting programs are the paper's."""

from numsym_pl.programs.base import DEMO, PROGRAMS, Program, State, TokenKinds, get_program, reference_trace, rollout
from numsym_pl.programs.counting import CountingProgram, CtxDistr, UpDown, UpUp

__all__ = ["DEMO", "PROGRAMS", "Program", "State", "TokenKinds", "get_program", "reference_trace", "rollout",
           "CountingProgram", "CtxDistr", "UpDown", "UpUp"]
