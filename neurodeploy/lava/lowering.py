"""Lower a rule's weight update to the learning engine's sum of products.

Loihi's learning engine computes, once per learning epoch,

.. math::

    \\Delta w = \\sum_p S_p 2^{E_p} \\, D_p \\prod_{f \\in F_p} f

where the dependency :math:`D_p` is ``x0`` (a presynaptic spike in the
epoch) or ``y0`` (a postsynaptic spike), the factors are the traces
``x1 x2`` (pre) and ``y1 y2 y3`` (post) and the weight ``w``, and the scale is
a 4-bit signed mantissa ``S`` times a power of two ``E``.

A rule written as ``on_pre``/``on_post`` (and ``continuous``, :math:`g`) becomes

.. math::

    \\Delta w = x_0 \\, f_{pre}(x - J_x, y, w) + y_0 \\, f_{post}(x, y - J_y, w)
               + u_0 \\, t_{epoch} \\, dt \\, g(x, y, w)

expanded into monomials: the engine reads a trace after the step's impulse,
the rule reads its own side's traces before the spike's jump (hence
``x - J``); ``u0`` is the every-epoch dependency. Each monomial must be a
constant times traces and ``w`` raised to positive whole powers; anything else
(a division by a trace, ``exp(w)``, ``heaviside``, more than
:data:`MAX_FACTORS` factors, too many traces of a side, a trace the engine's
x1..y3 cannot be) is refused with :class:`~neurodeploy.errors.UnsupportedError` naming
the term and the reason.

This module is exact (no scaling): :mod:`neurodeploy.lava.plan` chooses the
trace impulses and weight scale and quantizes each coefficient.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import sympy

from neurodeploy.errors import UnsupportedError
from neurodeploy.ir import POST, PRE, REWARD, SYNAPSE, Rule

#: Lava trace slots per side.
TRACE_SLOTS = {PRE: ("x1", "x2"), POST: ("y1", "y2", "y3")}
#: Dependency per side: the spike that triggers the update.
DEPENDENCY = {PRE: "x0", POST: "y0"}
#: Dependency of the continuous term: every epoch (``u0``, decimation 2^0), traces at the epoch's end.
EVERY_EPOCH = "u0"
#: Most factors (traces and w) in one product. With four, Lava's fixed-point
#: product (7-bit traces, 9-bit signed w, 4-bit mantissa in a 16-bit
#: accumulator) is shifted right by 19 bits and keeps almost no precision.
MAX_FACTORS = 3


@dataclass(frozen=True)
class EngineProduct:
    """One product :math:`a \\, D \\prod f` of the unscaled learning rule."""

    dependency: str  # "x0" or "y0"
    coefficient: float  # a, in rule units (weight units per trace units^n)
    factors: tuple  # Lava factor names, sorted, repeated for powers: ("x1",), ("y1", "w")
    term: str  # the rule's monomial, for messages and reports


@dataclass(frozen=True)
class EngineRule:
    """A rule in the learning engine's vocabulary, before scaling."""

    rule: Rule
    trace_slots: tuple  # (rule trace name, Lava trace name) pairs, e.g. (("x", "x1"), ("y", "y1"))
    products: tuple  # of EngineProduct

    @property
    def three_factor(self) -> bool:
        """A reward trace takes a y slot: ``Loihi3FLearningRule``, every y trace supplied from outside."""
        return self.rule.has_reward

    @property
    def slot(self) -> dict:
        return dict(self.trace_slots)

    @property
    def rule_trace(self) -> dict:
        """Lava trace name -> rule Trace."""
        return {lava: self.rule.trace(name) for name, lava in self.trace_slots}


def check_traces(rule: Rule) -> None:
    """Refuse traces the learning engine's x1..y3 cannot be: they decay to 0 and jump by constants at the spike."""
    for trace in rule.traces:
        if trace.of == SYNAPSE:
            # the tag is the only per-synapse state; it has no decay of its own: a product
            # -S*2^E * u0 * t would have to remove exactly 1 - exp(-t_epoch/tau) per epoch
            decay = 1.0 - math.exp(-rule.t_epoch / rule.tau_steps(trace))
            raise UnsupportedError(
                f"synapse trace '{trace.name}' (the engine's tag) decays by {decay:.3g} per epoch; "
                f"the tag has no decay of its own and a product S*2^E * u0 * t (|S*2^E| >= 2^-7) "
                f"cannot remove exactly that")
        if trace.state_dependent:
            raise UnsupportedError(
                f"trace '{trace.name}' jumps by '{trace.jump_text}': learning-engine impulses are constants, "
                f"they cannot read a trace")
        if trace.rest:
            raise UnsupportedError(
                f"trace '{trace.name}' relaxes to {trace.rest:g}: learning-engine traces decay to 0")
        if trace.delay:
            raise UnsupportedError(
                f"trace '{trace.name}' jumps {trace.delay * 1e3:g} ms after the spike: learning-engine traces "
                f"jump at the spike")
    for key, expr in (("on_pre", rule.weight.on_pre), ("on_post", rule.weight.on_post),
                      ("continuous", rule.weight.continuous)):
        if expr != 0 and expr.has(sympy.Heaviside):
            raise UnsupportedError(f"weight.{key} uses heaviside(): the learning engine has no comparisons")


def assign_trace_slots(rule: Rule) -> tuple:
    """Map the rule's pre traces onto x1, x2 and post traces, then reward traces, onto y1..y3, in file order.

    With a reward trace the rule becomes three-factor (``Loihi3FLearningRule``): the y traces are
    then supplied every step by the postsynaptic side (:func:`neurodeploy.lava.backends.supplied_traces`)."""
    check_traces(rule)
    pairs = []
    for side, slots in TRACE_SLOTS.items():
        traces = rule.traces_of(side) + (rule.traces_of(REWARD) if side == POST else ())
        if len(traces) > len(slots):
            names = ", ".join(t.name for t in traces)
            raise UnsupportedError(
                f"{len(traces)} {side}synaptic {'and reward ' if side == POST and rule.has_reward else ''}traces "
                f"({names}): the learning engine has {len(slots)} "
                f"({', '.join(slots)})")
        for trace, slot in zip(traces, slots):
            if trace.jump < 0:
                raise UnsupportedError(
                    f"trace '{trace.name}' jumps by {trace.jump:g}: learning-engine traces are unsigned")
            pairs.append((trace.name, slot))
    return tuple(pairs)


@functools.lru_cache(maxsize=128)  # a rule is lowered once per process (rules are frozen and hashable)
def lower(rule: Rule) -> EngineRule:
    """The rule as learning-engine products; raises UnsupportedError when it cannot be expressed."""
    slots = dict(assign_trace_slots(rule))
    w = sympy.Symbol("w", real=True)
    names = {sympy.Symbol(n, real=True): lava for n, lava in slots.items()}
    names[w] = "w"
    products = []
    for side, expr in ((PRE, rule.weight.on_pre), (POST, rule.weight.on_post)):
        # the engine reads a trace after the step's impulse; the rule reads its own side's
        # traces before the spike's jump: x -> x - J at that side's spike
        own = {sympy.Symbol(t.name, real=True): sympy.Symbol(t.name, real=True) - sympy.Float(t.jump)
               for t in rule.traces_of(side)}
        numeric = sympy.expand(rule.numeric(expr.xreplace(own)))
        if numeric == 0:
            continue
        for term in sympy.Add.make_args(numeric):
            products.append(_lower_term(term, DEPENDENCY[side], names, side))
    continuous = sympy.expand(rule.numeric(rule.weight.continuous) * rule.t_epoch * rule.dt)
    if continuous != 0:
        for term in sympy.Add.make_args(continuous):
            products.append(_lower_term(term, EVERY_EPOCH, names, "continuous"))
    return EngineRule(rule, tuple(slots.items()), tuple(_merge(products)))


def _lower_term(term: sympy.Expr, dependency: str, names: dict, side: str) -> EngineProduct:
    coefficient, rest = term.as_coeff_Mul()
    factors = []
    for base, power in rest.as_powers_dict().items():
        if base == 1:
            continue
        if (base ** power).is_number:  # a constant such as exp(2) or sqrt(2)
            coefficient = coefficient * (base ** power)
            continue
        if base not in names:
            if base == sympy.E:
                reason = "the learning engine has no exp()"
            elif base.is_Function:
                reason = f"the learning engine has no {_FUNCTION_NAMES.get(type(base), type(base).__name__)}()"
            else:
                reason = "the learning engine can only multiply traces, w and constants"
            raise UnsupportedError(f"term '{term}' ({_where(side)}): {reason}")
        if not (power.is_Integer and power > 0):
            if power.is_negative:
                reason = f"division by '{base}': the learning engine can only multiply"
            else:
                reason = f"power {power} of '{base}': only whole positive powers are products"
            raise UnsupportedError(f"term '{term}' ({_where(side)}): {reason}")
        factors.extend([names[base]] * int(power))
    if len(factors) > MAX_FACTORS:
        raise UnsupportedError(
            f"term '{term}' ({_where(side)}): {len(factors)} factors, at most {MAX_FACTORS} keep precision "
            f"in the learning engine's 16-bit accumulator")
    if not coefficient.is_number or not coefficient.is_real or not coefficient.is_finite:
        raise UnsupportedError(f"term '{term}' ({_where(side)}): coefficient is not a finite real constant")
    return EngineProduct(dependency, float(coefficient), tuple(sorted(factors)), str(term))


def _where(side: str) -> str:
    return side if side == "continuous" else f"on_{side}"


_FUNCTION_NAMES = {sympy.Abs: "abs", sympy.exp: "exp", sympy.log: "log"}


def _merge(products):
    """Add products that share dependency and factors (``a*x*y0 + b*x*y0``)."""
    merged = {}
    for p in products:
        key = (p.dependency, p.factors)
        if key in merged:
            q = merged[key]
            merged[key] = EngineProduct(p.dependency, q.coefficient + p.coefficient, p.factors, f"{q.term} + {p.term}")
        else:
            merged[key] = p
    return [p for p in merged.values() if p.coefficient != 0]
