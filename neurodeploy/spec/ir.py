"""The typed intermediate representation of a plasticity rule.

A rule is a set of traces and a weight update triggered by spikes:

.. math::

    \\frac{dx}{dt} = -\\frac{x - x_{rest}}{\\tau_x}, \\qquad x \\leftarrow x + J_x
    \\text{ at each spike of its neuron (pre or post), } d_x \\text{ after it}

    w \\leftarrow \\mathrm{clip}(w + f_{pre}(x, y, w), w_{min}, w_{max})
    \\text{ at each presynaptic spike}

    w \\leftarrow \\mathrm{clip}(w + f_{post}(x, y, w), w_{min}, w_{max})
    \\text{ at each postsynaptic spike}

    \\frac{dw}{dt} = g(x, y, w) \\text{ (the continuous term, every step)}

A trace is one of four kinds (``of``):

* ``pre`` / ``post``: one per neuron, jumps at that neuron's spikes. The jump
  ``J`` is a constant or an expression of the same side's traces (then the
  trace is *state-dependent*, e.g. a reset ``J = 1 - x`` or the utilisation
  of short-term plasticity ``J = U (1 - u)``); jumps of one spike are applied
  in file order, each reading the values already updated.
* ``reward``: one per postsynaptic neuron, jumps by ``J * r`` at each step
  where the third factor (reward, dopamine) input ``r`` is non-zero.
* ``synapse``: one per synapse (an eligibility trace, a calcium level), with
  its own ``on_pre``/``on_post`` increments, applied like ``w``'s.

``f_pre``/``f_post`` read the traces as they were just before the spike
(the spike's own jumps are applied after the weight update). Values are in SI
base units; every object is frozen and checks itself in ``__post_init__``,
raising :class:`~neurodeploy.errors.NeurodeployError` with the field path
(the loader adds the file name).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from neurodeploy.errors import NeurodeployError
from neurodeploy.limits import MAX_STEPS, _count
from neurodeploy.spec.units import DIMENSIONLESS, Quantity

PRE, POST, REWARD, SYNAPSE = "pre", "post", "reward", "synapse"
KINDS = (PRE, POST, REWARD, SYNAPSE)


def _check_finite(value: float, where: str, text: str) -> None:
    if not math.isfinite(value):
        raise NeurodeployError("", where, f"must be finite (got {text})")


@dataclass(frozen=True)
class Parameter:
    name: str  # identifier used in expressions
    quantity: Quantity  # value in SI with its dimension
    expression: str = ""  # a parameter defined from others: its expression as written (A_plus * 1.05)

    @property
    def value(self) -> float:
        return self.quantity.value


@dataclass(frozen=True)
class Trace:
    """A decaying trace, :math:`x \\leftarrow x_{rest} + (x - x_{rest}) e^{-dt/\\tau}`, plus its jumps."""

    name: str  # identifier used in expressions
    of: str  # "pre", "post", "reward" or "synapse": what makes it jump
    tau: float  # decay time constant in seconds
    jump: float  # added at each spike (constant jumps), in the trace's own units; 0 if jump_expr
    tau_text: str = ""  # as written, for messages and reports
    jump_text: str = ""
    dim: object = DIMENSIONLESS  # dimension of the trace (that of its jump)
    rest: float = 0.0  # value it relaxes to
    delay: float = 0.0  # seconds from the spike to the jump (pre/post traces)
    jump_expr: object = None  # sympy expression of the jump when it reads traces (state-dependent)
    on_pre: object = 0  # synapse traces: increment at a pre spike (sympy)
    on_post: object = 0  # synapse traces: increment at a post spike (sympy)
    on_pre_text: str = ""
    on_post_text: str = ""
    rest_text: str = ""  # as written ("NAME = value" when it names a parameter)
    delay_text: str = ""

    def __post_init__(self):
        where = f"traces.{self.name}"
        if self.of not in KINDS:
            raise NeurodeployError("", f"{where}.of", f"must be one of {', '.join(KINDS)} (got {self.of!r})")
        _check_finite(self.tau, f"{where}.tau", self.tau_text or repr(self.tau))
        if self.tau <= 0:
            raise NeurodeployError("", f"{where}.tau", f"must be > 0 (got {self.tau_text or self.tau})")
        _check_finite(self.jump, f"{where}.jump", self.jump_text or repr(self.jump))
        if self.of != SYNAPSE and self.jump_expr is None and self.jump == 0:
            raise NeurodeployError("", f"{where}.jump", f"must not be 0 (got {self.jump_text or self.jump})")
        if self.of == SYNAPSE and self.on_pre == 0 and self.on_post == 0:
            raise NeurodeployError("", where, "a synapse trace needs on_pre or on_post")
        _check_finite(self.rest, f"{where}.rest", repr(self.rest))
        _check_finite(self.delay, f"{where}.delay", repr(self.delay))
        if self.delay < 0:
            raise NeurodeployError("", f"{where}.delay", f"must be >= 0 (got {self.delay * 1e3:g} ms)")

    @property
    def state_dependent(self) -> bool:
        """True when the jump reads traces (a reset, a saturating jump)."""
        return self.jump_expr is not None

    def jump_of(self) -> sympy.Expr:
        """The jump as a sympy expression (a Float for constant jumps)."""
        import sympy
        return self.jump_expr if self.jump_expr is not None else sympy.Float(self.jump)


@dataclass(frozen=True)
class WeightRule:
    """What happens to ``w`` at a pre and at a post spike, and its bounds."""

    on_pre: sympy.Expr  # change of w at a presynaptic spike (symbols: parameters, traces, w)
    on_post: sympy.Expr  # change of w at a postsynaptic spike
    w_min: float  # lower bound (hard)
    w_max: float  # upper bound (hard)
    w_init: float  # initial weight of every synapse unless a protocol gives w0
    on_pre_text: str = ""
    on_post_text: str = ""
    dim: object = DIMENSIONLESS  # dimension of w (that of the bounds)
    continuous: object = 0  # dw/dt, integrated every step (sympy; 0 when absent)
    continuous_text: str = ""
    bounds_text: tuple = ("", "")  # as written ("NAME = value" when a bound names a parameter)
    init_text: str = ""

    def __post_init__(self):
        for name in ("w_min", "w_max", "w_init"):
            _check_finite(getattr(self, name), f"weight.{'bounds' if name != 'w_init' else 'init'}", repr(getattr(self, name)))
        if not self.w_min < self.w_max:
            raise NeurodeployError("", "weight.bounds", f"lower bound must be < upper bound (got [{self.w_min:g}, {self.w_max:g}])")
        if not self.w_min <= self.w_init <= self.w_max:
            raise NeurodeployError("", "weight.init", f"must lie within the bounds [{self.w_min:g}, {self.w_max:g}] (got {self.w_init:g})")

    @property
    def range(self) -> float:
        return self.w_max - self.w_min


@dataclass(frozen=True)
class Rule:
    """One plasticity rule, as loaded from its YAML file."""

    name: str  # identifier, also the stem of generated files
    source: str  # file name it was loaded from (for messages)
    parameters: tuple  # of Parameter, in file order
    traces: tuple  # of Trace, in file order
    weight: WeightRule
    dt: float = 1e-3  # simulation time step in seconds
    t_epoch: int = 1  # learning epoch in steps: weights change at the end of each epoch
    description: str = ""
    citation: str = ""
    text: str = field(default="", compare=False, repr=False)  # the file's content

    def __post_init__(self):
        _check_finite(self.dt, "simulation.dt", repr(self.dt))
        if self.dt <= 0:
            raise NeurodeployError("", "simulation.dt", f"must be > 0 (got {self.dt:g} s)")
        if not isinstance(self.t_epoch, int) or isinstance(self.t_epoch, bool) or not 1 <= self.t_epoch <= 63:
            raise NeurodeployError("", "simulation.t_epoch", f"must be a whole number of steps from 1 to 63 (got {self.t_epoch!r})")
        for trace in self.traces:
            if trace.tau < self.dt:
                raise NeurodeployError("", f"traces.{trace.name}.tau", f"must be at least one time step dt={self.dt * 1e3:g} ms (got {trace.tau_text})")
            steps = trace.delay / self.dt
            if steps > MAX_STEPS:  # never reached in a run, and the queues would not fit in memory
                raise NeurodeployError("", f"traces.{trace.name}.delay",
                                       f"must be at most {_count(MAX_STEPS)} steps, the longest run "
                                       f"(got {steps:.3g} steps of dt={self.dt * 1e3:g} ms)")
            if abs(steps - round(steps)) > 1e-6:
                raise NeurodeployError("", f"traces.{trace.name}.delay",
                                       f"must be a whole number of time steps dt={self.dt * 1e3:g} ms (got {trace.delay * 1e3:g} ms)")

    # -- derived views -------------------------------------------------------
    @property
    def values(self) -> dict:
        """Parameter name -> value in SI."""
        return {p.name: p.value for p in self.parameters}

    def trace(self, name: str) -> Trace:
        return next(t for t in self.traces if t.name == name)

    def traces_of(self, side: str) -> tuple:
        return tuple(t for t in self.traces if t.of == side)

    def numeric(self, expr: sympy.Expr) -> sympy.Expr:
        """``expr`` with every parameter replaced by its value."""
        import sympy
        subs = {sympy.Symbol(p.name, real=True): sympy.Float(p.value) for p in self.parameters}
        return expr.xreplace(subs)

    def tau_steps(self, trace: Trace) -> float:
        return trace.tau / self.dt

    def delay_steps(self, trace: Trace) -> int:
        return int(round(trace.delay / self.dt))

    @property
    def has_reward(self) -> bool:
        """The rule reads a third factor (it has a reward trace)."""
        return any(t.of == REWARD for t in self.traces)

    @property
    def clock_driven(self) -> bool:
        """Something changes between spikes: a continuous weight term or a reward input."""
        return self.weight.continuous != 0 or self.has_reward
