"""Symbolic programs behind one interface (``base.Program``): the paper's counting programs and
the competing programs of the harder families (two-type counting, arithmetic, comparison)."""

from numsym_pl.programs.base import (DEMO, PROGRAMS, PhasedProgram, Program, State, TokenKinds, follow_input,
                                     get_program, next_inputs, reference_trace, rollout)
from numsym_pl.programs.counting import CountingProgram, CtxDistr, UpDown, UpUp
from numsym_pl.programs.two_type import TotalAndFirst, TwoCounters, TwoTypeRecount
from numsym_pl.programs.arithmetic import Accumulator, ArithmeticRecount, Registers
from numsym_pl.programs.comparison import Difference, TwoCounts

__all__ = ["DEMO", "PROGRAMS", "PhasedProgram", "Program", "State", "TokenKinds", "follow_input", "get_program",
           "next_inputs", "reference_trace", "rollout", "CountingProgram", "CtxDistr", "UpDown", "UpUp",
           "TotalAndFirst", "TwoCounters", "TwoTypeRecount", "Accumulator", "ArithmeticRecount", "Registers",
           "Difference", "TwoCounts"]
