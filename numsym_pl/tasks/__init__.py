"""Task families behind one interface (``base.TaskFamily``); numeric equivalence is the paper's."""

from numsym_pl.tasks.base import TaskConfigError, TaskFamily, Trials, Vocab, build_task
from numsym_pl.tasks.numeric_equivalence import VOCAB, CountTrials, NumericEquivalence, response_target_mask

__all__ = ["TaskConfigError", "TaskFamily", "Trials", "Vocab", "build_task", "VOCAB", "CountTrials",
           "NumericEquivalence", "response_target_mask"]
