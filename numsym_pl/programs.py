"""Symbolic programs (causal models) of the numeric-equivalence task (SPEC §3).

Each program reads the token stream and keeps named variables. Two implementations of each:

- ``step(state, token, kinds)``: the per-token reference. It is written with numpy ops, so it
  steps one trial (0-d values) or a batch ([N] arrays) alike; ``rollout`` uses it to generate
  counterfactual continuations.
- ``trace(tokens, kinds, counts)``: the vectorised version over a whole batch of trials, built from
  cumulative sums; it returns every state component at every position and the next-token prediction.
  Tests check that it equals stepping the reference token by token.

State at position t is the state *after reading* token t, i.e. what predicts token t + 1 (the same
convention as a network's state at t). ``variables`` are the components an intervention may
overwrite; other components are bookkeeping the program's definition needs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from numsym_pl.errors import ConfigError
from numsym_pl.tasks import VOCAB, Task

#: sentinel prediction "some demo token" (which one is random in the task)
DEMO = -1

State = dict[str, np.ndarray]


@dataclass(frozen=True)
class TokenKinds:
    """What a program needs to know of a task's tokens."""

    demo: tuple[int, ...]
    resp: int

    @classmethod
    def of(cls, task: Task) -> "TokenKinds":
        return cls(tuple(task.demo_tokens), task.response_token)

    def classify(self, token, phase):
        """(is demo token, is response token, is trigger) of ``token`` read in ``phase``."""
        is_demo = np.isin(token, self.demo) & (phase == 0)
        is_resp = (token == self.resp) & (phase == 1)
        return is_demo, is_resp, token == VOCAB.TRIG


class Program:
    """Base: subclasses define ``variables``, ``components``, ``step`` core, ``predict`` and ``trace``."""

    name: str = ""
    #: Markovian programs carry their state from token to token; a context-distributed one
    #: recomputes it from the whole context. This decides how a substituted context span is read.
    markovian: bool = True
    variables: tuple[str, ...] = ()
    components: tuple[str, ...] = ()  # every state component, variables included

    def check_variables(self, variables) -> tuple[str, ...]:
        variables = (variables,) if isinstance(variables, str) else tuple(variables)
        unknown = [v for v in variables if v not in self.variables]
        if unknown or not variables:
            raise ConfigError(f"variables: program {self.name!r} has no variable(s) {unknown or variables}; "
                              f"its variables are {list(self.variables)}")
        if len(set(variables)) != len(variables):
            raise ConfigError(f"variables: {list(variables)} names a variable twice")
        return variables

    def init(self, shape=()) -> State:
        return {c: np.zeros(shape, dtype=np.int64) for c in self.components}

    def step(self, state: State, token, kinds: TokenKinds) -> State:
        raise NotImplementedError

    def predict(self, state: State, count, kinds: TokenKinds):
        """Next token: in the demo phase ``DEMO`` while fewer than ``count`` objects are in, then
        T; in the response phase R or E by the program's rule."""
        raise NotImplementedError

    def trace(self, tokens: np.ndarray, kinds: TokenKinds, counts: np.ndarray) -> tuple[State, np.ndarray]:
        """Every component [N, L] after each token, and the prediction [N, L] of the next token
        (PAD after E)."""
        raise NotImplementedError

    # shared pieces of the traces ------------------------------------------------------------
    @staticmethod
    def _phase_and_counts(tokens, kinds):
        phase = (np.cumsum(tokens == VOCAB.TRIG, 1) > 0).astype(np.int64)
        is_demo, is_resp, _ = kinds.classify(tokens, phase)  # a demo/resp token never flips the phase
        return phase, np.cumsum(is_demo, 1), np.cumsum(is_resp, 1)

    @staticmethod
    def _finish(pred, tokens):
        ended = np.cumsum(tokens == VOCAB.EOS, 1) > 0
        return np.where(ended | (tokens == VOCAB.PAD), VOCAB.PAD, pred)


class UpDown(Program):
    """``count`` goes up with each demo token (U adds 0), T flips ``phase``, each response token
    read takes 1 off; respond R while count > 0, then E."""

    name, variables, components = "up_down", ("count", "phase"), ("count", "phase")

    def step(self, state, token, kinds):
        is_demo, is_resp, is_trig = kinds.classify(token, state["phase"])
        return {"count": state["count"] + is_demo - is_resp, "phase": np.where(is_trig, 1, state["phase"])}

    def predict(self, state, count, kinds):
        demo = np.where(state["count"] < count, DEMO, VOCAB.TRIG)
        resp = np.where(state["count"] > 0, kinds.resp, VOCAB.EOS)
        return np.where(state["phase"] == 1, resp, demo)

    def trace(self, tokens, kinds, counts):
        phase, demo, resp = self._phase_and_counts(tokens, kinds)
        state = {"count": demo - resp, "phase": phase}
        return state, self._finish(self.predict(state, counts[:, None], kinds), tokens)


class UpUp(Program):
    """``demo_count`` counts demo tokens, ``resp_count`` counts response tokens; respond R while
    resp_count < demo_count, E at equality. The baseline hypothesis."""

    name, variables, components = "up_up", ("demo_count", "resp_count", "phase"), ("demo_count", "resp_count", "phase")

    def step(self, state, token, kinds):
        is_demo, is_resp, is_trig = kinds.classify(token, state["phase"])
        return {"demo_count": state["demo_count"] + is_demo, "resp_count": state["resp_count"] + is_resp,
                "phase": np.where(is_trig, 1, state["phase"])}

    def predict(self, state, count, kinds):
        demo = np.where(state["demo_count"] < count, DEMO, VOCAB.TRIG)
        resp = np.where(state["resp_count"] < state["demo_count"], kinds.resp, VOCAB.EOS)
        return np.where(state["phase"] == 1, resp, demo)

    def trace(self, tokens, kinds, counts):
        phase, demo, resp = self._phase_and_counts(tokens, kinds)
        state = {"demo_count": demo, "resp_count": resp, "phase": phase}
        return state, self._finish(self.predict(state, counts[:, None], kinds), tokens)


class CtxDistr(Program):
    """Context-distributed: no cumulative state. At every step the quantity is recomputed from the
    whole context, ``balance`` = (#response tokens) - (#demo tokens) in the prefix (a sum; its sign,
    all the rule uses, is that of the average); respond R while balance < 0, E when it balances.

    The program's only variable is ``balance``; ``context_sum`` and ``phase`` are read off the
    context itself. Overwriting ``balance`` therefore changes the very next prediction only: the
    next step recomputes it from the context ("anti-Markovian").
    """

    name, variables, components = "ctx_distr", ("balance",), ("balance", "context_sum", "phase")
    markovian = False

    def step(self, state, token, kinds):
        is_demo, is_resp, is_trig = kinds.classify(token, state["phase"])
        ctx = state["context_sum"] + is_resp - is_demo
        return {"balance": ctx, "context_sum": ctx, "phase": np.where(is_trig, 1, state["phase"])}

    def predict(self, state, count, kinds):
        demo = np.where(-state["balance"] < count, DEMO, VOCAB.TRIG)
        resp = np.where(state["balance"] < 0, kinds.resp, VOCAB.EOS)
        return np.where(state["phase"] == 1, resp, demo)

    def trace(self, tokens, kinds, counts):
        phase, demo, resp = self._phase_and_counts(tokens, kinds)
        state = {"balance": resp - demo, "context_sum": resp - demo, "phase": phase}
        return state, self._finish(self.predict(state, counts[:, None], kinds), tokens)


PROGRAMS: dict[str, Program] = {p.name: p for p in (UpDown(), UpUp(), CtxDistr())}


def get_program(name: str) -> Program:
    if name not in PROGRAMS:
        raise ConfigError(f"program: unknown program {name!r}; choose one of {sorted(PROGRAMS)}")
    return PROGRAMS[name]


def reference_trace(program: Program, tokens: np.ndarray, kinds: TokenKinds, count: int) -> tuple[list[State], list[int]]:
    """Step one trial token by token with the reference ``step``: states and predictions."""
    state, states, preds, ended = program.init(), [], [], False
    for tok in tokens:
        state = program.step(state, np.int64(tok), kinds)
        ended = ended or tok == VOCAB.EOS
        states.append({k: int(v) for k, v in state.items()})
        preds.append(VOCAB.PAD if ended or tok == VOCAB.PAD else int(program.predict(state, count, kinds)))
    return states, preds


def rollout(program: Program, state: State, counts: np.ndarray, kinds: TokenKinds, rng: np.random.Generator,
            max_steps: int) -> np.ndarray:
    """Roll the program forward from ``state`` ([N] per component), feeding each prediction back
    as the next token, until it emits E. Demo tokens are drawn at random from ``kinds.demo``.
    Returns the emitted tokens [N, S], PAD after E."""
    N = len(counts)
    out = np.full((N, max_steps), VOCAB.PAD, dtype=np.int64)
    done = np.zeros(N, dtype=bool)
    demo_choices = np.asarray(kinds.demo)
    for s in range(max_steps):
        tok = program.predict(state, counts, kinds)
        tok = np.where(tok == DEMO, demo_choices[rng.integers(0, len(demo_choices), N)], tok)
        tok = np.where(done, VOCAB.PAD, tok)
        out[:, s] = tok
        state = program.step(state, tok, kinds)
        done |= tok == VOCAB.EOS
        if done.all():
            return out[:, : s + 1]
    raise RuntimeError(f"rollout: {int((~done).sum())} continuations did not reach E within {max_steps} steps")
