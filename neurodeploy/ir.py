"""The typed intermediate representation of a plasticity rule.

A rule is a set of synaptic traces and a weight update triggered by spikes:

.. math::

    \\frac{dx}{dt} = -\\frac{x}{\\tau_x}, \\qquad x \\leftarrow x + J_x
    \\text{ at each spike of its neuron (pre or post)}

    w \\leftarrow \\mathrm{clip}(w + f_{pre}(x, y, w), w_{min}, w_{max})
    \\text{ at each presynaptic spike}

    w \\leftarrow \\mathrm{clip}(w + f_{post}(x, y, w), w_{min}, w_{max})
    \\text{ at each postsynaptic spike}

``f_pre``/``f_post`` read the traces as they were just before the spike
(the spike's own jumps are applied after the weight update). Values are in SI
base units; every object is frozen and checks itself in ``__post_init__``,
raising :class:`~neurodeploy.errors.NeurodeployError` with the field path
(the loader adds the file name).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import sympy
from brian2.units.fundamentalunits import DIMENSIONLESS

from neurodeploy.errors import NeurodeployError
from neurodeploy.spec.units import Quantity

PRE, POST = "pre", "post"


def _check_finite(value: float, where: str, text: str) -> None:
    if not math.isfinite(value):
        raise NeurodeployError("", where, f"must be finite (got {text})")


@dataclass(frozen=True)
class Parameter:
    name: str  # identifier used in expressions
    quantity: Quantity  # value in SI with its dimension

    @property
    def value(self) -> float:
        return self.quantity.value


@dataclass(frozen=True)
class Trace:
    """An exponentially decaying spike trace, :math:`x \\leftarrow x e^{-dt/\\tau} (+ J)`."""

    name: str  # identifier used in expressions
    of: str  # "pre" or "post": whose spikes make it jump
    tau: float  # decay time constant in seconds
    jump: float  # added at each spike, in the trace's own units
    tau_text: str = ""  # as written, for messages and reports
    jump_text: str = ""
    dim: object = DIMENSIONLESS  # Brian2 dimension of the trace (that of its jump)

    def __post_init__(self):
        where = f"traces.{self.name}"
        if self.of not in (PRE, POST):
            raise NeurodeployError("", f"{where}.of", f"must be 'pre' or 'post' (got {self.of!r})")
        _check_finite(self.tau, f"{where}.tau", self.tau_text or repr(self.tau))
        if self.tau <= 0:
            raise NeurodeployError("", f"{where}.tau", f"must be > 0 (got {self.tau_text or self.tau})")
        _check_finite(self.jump, f"{where}.jump", self.jump_text or repr(self.jump))
        if self.jump == 0:
            raise NeurodeployError("", f"{where}.jump", f"must not be 0 (got {self.jump_text or self.jump})")


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
    dim: object = DIMENSIONLESS  # Brian2 dimension of w (that of the bounds)

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
        subs = {sympy.Symbol(p.name, real=True): sympy.Float(p.value) for p in self.parameters}
        return expr.xreplace(subs)

    def tau_steps(self, trace: Trace) -> float:
        return trace.tau / self.dt
