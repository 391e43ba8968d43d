"""The program interface: a symbolic program (causal model) over a task family's tokens.

A program reads the token stream and keeps named variables. It says which token roles and which
trial quantities it reads (``reads``, ``reads_quantities``), so it fits any task family that
declares them (``check_task``). Two implementations of its dynamics:

- ``step(state, token, kinds)``: the per-token reference, written with numpy ops so that it steps
  one trial (0-d values) or a batch ([N] arrays) alike; ``rollout`` uses it to generate
  counterfactual continuations.
- ``trace(tokens, kinds, quantities)``: the vectorised version over a whole batch of trials; it
  returns every state component at every position and the next-token prediction. Tests check that
  it equals stepping the reference token by token.

``predict(state, quantities, kinds)`` is the program's output (the next token, or ``DEMO`` where
the task draws it at random). Where the task gives the next token instead (an operand, an operator,
a void: the input phase of a family that declares the role ``inputs``), the program reads it from
``quantities["next_input"]``, the trial's next token: ``trace`` and ``reference_trace`` supply it
from the trial, ``rollout`` from the target trial while the continuation still follows it (so a
counterfactual keeps the target's remaining inputs and the program answers them from its
intervened state; ``follow_input``). ``scored(state)`` says which outputs are deterministic
answers a counterfactual is scored on. State at position t is the state *after reading* token t,
i.e. what predicts token t + 1 (the same convention as a network's state at t). ``variables`` are the
components an intervention may overwrite; other components are bookkeeping.

Programs register by ``name`` when their class is defined; ``get_program`` also takes a class path
(``mypackage.MyProgram``), which imports and registers a program from outside the package.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from numsym_pl.errors import ConfigError
from numsym_pl.registry import lookup

#: sentinel prediction "some demo token" (which one is random in the task)
DEMO = -1


def next_inputs(tokens: np.ndarray, pad: int) -> np.ndarray:
    """[N, L] the token after each position (pad after the last): ``quantities["next_input"]`` of a trace."""
    return np.concatenate([tokens[:, 1:], np.full((len(tokens), 1), pad, tokens.dtype)], 1)


def follow_input(next_input, kinds: "TokenKinds"):
    """The input phase's output: the task's next token while it is an input-phase token (role
    ``inputs``, the trigger among them), else the trigger (a continuation whose intervened phase
    went back to the inputs while the target had none left to give)."""
    return np.where(np.isin(next_input, kinds.inputs), next_input, kinds.trigger)


State = dict[str, np.ndarray]
PROGRAMS: dict[str, "Program"] = {}


@dataclass(frozen=True)
class TokenKinds:
    """The token roles of a task (``TaskFamily.token_roles``), as attributes: ``kinds.trigger``."""

    roles: dict

    @classmethod
    def of(cls, task) -> "TokenKinds":
        return cls(dict(task.token_roles))

    def __getattr__(self, role: str):
        roles = self.__dict__.get("roles", {})
        if role not in roles:
            raise AttributeError(f"the task declares no token role {role!r} (it has {sorted(roles)})")
        return roles[role]


class Program:
    """Base: subclasses define ``name``, ``variables``, ``components``, ``reads``, ``step``,
    ``predict``, ``scored`` and ``trace``."""

    name: str = ""
    #: Markovian programs carry their state from token to token; a context-distributed one
    #: recomputes it from the whole context. This decides how a substituted context span is read.
    markovian: bool = True
    variables: tuple[str, ...] = ()
    components: tuple[str, ...] = ()  # every state component, variables included
    reads: tuple[str, ...] = ()  # token roles the program reads
    reads_quantities: tuple[str, ...] = ()  # trial quantities its outputs depend on

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("name"):  # a class names itself; a subclass that does not is not registered
            PROGRAMS[cls.name] = cls()

    def check_variables(self, variables) -> tuple[str, ...]:
        variables = (variables,) if isinstance(variables, str) else tuple(variables)
        unknown = [v for v in variables if v not in self.variables]
        if unknown or not variables:
            raise ConfigError(f"variables: program {self.name!r} has no variable(s) {unknown or variables}; "
                              f"its variables are {list(self.variables)}")
        if len(set(variables)) != len(variables):
            raise ConfigError(f"variables: {list(variables)} names a variable twice")
        return variables

    def check_task(self, task) -> None:
        """Refuse, by name, a task that lacks a token role or quantity this program reads."""
        roles, quantities = set(task.token_roles), set(task.quantities)
        missing = [r for r in self.reads if r not in roles] + [q for q in self.reads_quantities if q not in quantities]
        if missing:
            raise ConfigError(f"program: {self.name!r} reads {missing}, which task {task.family!r} does not declare "
                              f"(its token roles are {sorted(roles)}, its quantities {sorted(quantities)})")

    def init(self, shape=()) -> State:
        return {c: np.zeros(shape, dtype=np.int64) for c in self.components}

    def step(self, state: State, token, kinds: TokenKinds) -> State:
        raise NotImplementedError

    def predict(self, state: State, quantities: dict, kinds: TokenKinds):
        raise NotImplementedError

    def scored(self, state: State):
        """bool (per trial): whether the output from ``state`` is a scored (deterministic) answer."""
        raise NotImplementedError

    def trace(self, tokens: np.ndarray, kinds: TokenKinds, quantities: dict) -> tuple[State, np.ndarray]:
        """Every component [N, L] after each token, and the prediction [N, L] of the next token
        (pad after the end token)."""
        raise NotImplementedError

    @staticmethod
    def _finish(pred, tokens, kinds: TokenKinds):
        ended = np.cumsum(tokens == kinds.eos, 1) > 0
        return np.where(ended | (tokens == kinds.pad), kinds.pad, pred)


class PhasedProgram(Program):
    """A program of a family laid out ``B <inputs> T <answer> E`` (role ``inputs``): in the input
    phase it outputs the task's next input (``follow_input``), after the trigger its ``answer``;
    the answer phase's outputs are the scored ones. ``phase`` is a state component."""

    def answer(self, state: State, kinds: TokenKinds):
        raise NotImplementedError

    def predict(self, state, quantities, kinds):
        return np.where(state["phase"] == 1, self.answer(state, kinds), follow_input(quantities["next_input"], kinds))

    def scored(self, state):
        return state["phase"] == 1

    @staticmethod
    def phase_of(tokens: np.ndarray, kinds: TokenKinds) -> np.ndarray:
        """[N, L] 1 from the trigger on (the trigger only ever moves the phase forward)."""
        return (np.cumsum(tokens == kinds.trigger, 1) > 0).astype(np.int64)

    def finish_trace(self, state: State, tokens: np.ndarray, kinds: TokenKinds) -> tuple[State, np.ndarray]:
        """``trace``'s return value from its state: the predictions, given the trial's own next inputs."""
        return state, self._finish(self.predict(state, {"next_input": next_inputs(tokens, kinds.pad)}, kinds),
                                   tokens, kinds)


def get_program(name: str) -> Program:
    """A registered program by name, or a program class by its import path."""
    return lookup(name, PROGRAMS, Program, "program")


def reference_trace(program: Program, tokens: np.ndarray, kinds: TokenKinds,
                    quantities: dict) -> tuple[list[State], list[int]]:
    """Step one trial token by token with the reference ``step``: states and predictions
    (``quantities`` holds that trial's values as scalars)."""
    state, states, preds, ended = program.init(), [], [], False
    following = np.append(np.asarray(tokens)[1:], kinds.pad)
    for tok, nxt in zip(tokens, following):
        state = program.step(state, np.int64(tok), kinds)
        ended = ended or tok == kinds.eos
        states.append({k: int(v) for k, v in state.items()})
        q = {**quantities, "next_input": np.int64(nxt)}
        preds.append(kinds.pad if ended or tok == kinds.pad else int(program.predict(state, q, kinds)))
    return states, preds


def rollout(program: Program, state: State, quantities: dict, kinds: TokenKinds, rng: np.random.Generator,
            max_steps: int, inputs: np.ndarray | None = None,
            pos: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Roll the program forward from ``state`` ([N] per component), feeding each prediction back
    as the next token, until it emits the end token. Demo tokens are drawn at random from
    ``kinds.demo``. ``inputs`` [N, L] and ``pos`` [N]: the trial the state was taken from and the
    position it was taken at; while every emitted token equals that trial's next one, the program
    sees it as ``quantities["next_input"]`` (pad once the continuation has left it). Returns the
    emitted tokens [N, S] (pad after the end) and which of them are scored answers [N, S]."""
    N = len(next(iter(state.values())))
    out, scored = [], []  # one column per step, stacked once: max_steps is only the bound
    done = np.zeros(N, dtype=bool)
    demo_choices = np.atleast_1d(np.asarray(kinds.roles.get("demo", ()), dtype=np.int64))
    following = np.ones(N, dtype=bool)
    rows = np.arange(N)
    for k in range(max_steps):
        if inputs is not None:
            at = pos + 1 + k
            given = np.where(at < inputs.shape[1], inputs[rows, np.minimum(at, inputs.shape[1] - 1)], kinds.pad)
            quantities = {**quantities, "next_input": np.where(following, given, kinds.pad)}
        tok = program.predict(state, quantities, kinds)
        if demo_choices.size:
            tok = np.where(tok == DEMO, demo_choices[rng.integers(0, len(demo_choices), N)], tok)
        scored.append(program.scored(state) & ~done)
        tok = np.where(done, kinds.pad, tok)
        if inputs is not None:
            following &= tok == given
        out.append(tok)
        state = program.step(state, tok, kinds)
        done |= tok == kinds.eos
        if done.all():
            return np.stack(out, 1).astype(np.int64, copy=False), np.stack(scored, 1)
    raise RuntimeError(f"rollout: {int((~done).sum())} continuations did not reach the end within {max_steps} steps")
