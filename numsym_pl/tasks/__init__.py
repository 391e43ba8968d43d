"""Task families behind one interface (``base.TaskFamily``); numeric equivalence is the paper's;
two-type counting, arithmetic and comparison are the harder families with competing programs."""

from numsym_pl.tasks.base import TaskConfigError, TaskFamily, Trials, Vocab, build_task
from numsym_pl.tasks.base import response_target_mask
from numsym_pl.tasks.numeric_equivalence import VOCAB, CountTrials, NumericEquivalence
from numsym_pl.tasks.arithmetic import Arithmetic
from numsym_pl.tasks.comparison import Comparison
from numsym_pl.tasks.two_type_counting import TwoTypeCounting

__all__ = ["TaskConfigError", "TaskFamily", "Trials", "Vocab", "build_task", "VOCAB", "CountTrials",
           "NumericEquivalence", "response_target_mask", "Arithmetic", "Comparison", "TwoTypeCounting"]
