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

A pre or post trace that jumps by a negative constant ``J`` (Brian2's STDP example,
``Apost += dApost`` with ``dApost < 0``) is rewritten first (:func:`negate_traces`):
the engine's traces are unsigned, so its slot carries ``y' = -y`` (jumping by ``-J > 0``)
and every term reads ``y`` as ``-y'``; the rewrite is exact and listed in
:attr:`EngineRule.rewrites` (``neurodeploy check`` prints it).

This module is exact (no scaling): :mod:`neurodeploy.compile.plan` chooses the
trace impulses and weight scale and quantizes each coefficient.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import sympy

from neurodeploy.errors import UnsupportedError
from neurodeploy.spec.ir import POST, PRE, REWARD, SYNAPSE, Rule

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

    dependency: str  # "x0", "y0", "u0" or "uk" (every 2^k-th epoch)
    coefficient: float  # a, in rule units (target units per trace units^n)
    factors: tuple  # Lava factor names, sorted, repeated for powers: ("x1",), ("y1", "w"), ("t", "y2")
    term: str  # the rule's monomial, for messages and reports
    target: str = "dw"  # "dw" (the weight) or "dt" (the tag: a synapse trace)


@dataclass(frozen=True)
class Approximation:
    """One approximation the lowering made to put a rule on the learning engine."""

    kind: str  # "tag decay" or "saturation reset"
    trace: str  # the rule trace it concerns
    detail: str  # what was changed, in words, with numbers
    fixed_only: bool = False  # expressible in Lava's fixed-point model only (float traces do not saturate)


@dataclass(frozen=True)
class EngineRule:
    """A rule in the learning engine's vocabulary, before scaling."""

    rule: Rule
    trace_slots: tuple  # (rule trace name, Lava trace name) pairs, e.g. (("x", "x1"), ("y", "y1"))
    products: tuple  # of EngineProduct
    approximations: tuple = ()  # of Approximation: empty when the lowering is exact
    tag: str | None = None  # the rule's synapse trace that the engine's tag ``t`` holds
    saturating: tuple = ()  # slots whose reset is the 7-bit saturation (fixed point only)
    decimate_exponent: int | None = None  # k of the ``uk`` dependency of the continuous and decay terms
    rewrites: tuple = ()  # exact rewrites made before lowering (negative jumps), in words

    @property
    def exact(self) -> bool:
        return not self.approximations

    @property
    def fixed_only(self) -> bool:
        return any(a.fixed_only for a in self.approximations)

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


def reset_level(trace) -> float | None:
    """``a`` when the trace's jump is ``a - x`` (a reset to ``a > 0`` at each spike), else None."""
    if not trace.state_dependent:
        return None
    own = sympy.Symbol(trace.name, real=True)
    rest = sympy.expand(trace.jump_expr + own)
    if rest.is_number and float(rest) > 0:
        return float(rest)
    return None


def check_traces(rule: Rule, approximate: bool = False) -> None:
    """Refuse traces the learning engine's x1..y3 cannot be: they decay to 0 and jump by constants at the spike.

    ``approximate``: admit what :func:`lower` can approximate (one synapse trace as the tag with a
    decimated decay; a reset ``a - x`` as the 7-bit saturation)."""
    synapse = [t for t in rule.traces if t.of == SYNAPSE]
    if approximate and len(synapse) > 1:
        raise UnsupportedError(f"{len(synapse)} synapse traces ({', '.join(t.name for t in synapse)}): the learning "
                               f"engine has one tag that learns (t)")
    for trace in rule.traces:
        if trace.of == SYNAPSE and approximate:
            if trace.rest:
                raise UnsupportedError(
                    f"synapse trace '{trace.name}' relaxes to {trace.rest:g}: the engine's tag can only decay to 0")
            continue
        if trace.of == SYNAPSE:
            # the tag is the only per-synapse state; it has no decay of its own: a product
            # -S*2^E * u0 * t would have to remove exactly 1 - exp(-t_epoch/tau) per epoch
            decay = 1.0 - math.exp(-rule.t_epoch / rule.tau_steps(trace))
            raise UnsupportedError(
                f"synapse trace '{trace.name}' (the engine's tag) decays by {decay:.3g} per epoch; "
                f"the tag has no decay of its own and a product S*2^E * u0 * t (|S*2^E| >= 2^-7) "
                f"cannot remove exactly that")
        if trace.state_dependent and not (approximate and reset_level(trace) is not None
                                          and not _reads_own_side(rule, trace)):
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
    fields = [(f"weight.{key}", getattr(rule.weight, key)) for key in ("on_pre", "on_post", "continuous")]
    fields += [(f"traces.{t.name}.{key}", getattr(t, key)) for t in rule.traces for key in ("on_pre", "on_post")]
    fields += [(f"traces.{t.name}.jump", t.jump_expr) for t in rule.traces if t.jump_expr is not None]
    for where, expr in fields:
        powers = [] if not isinstance(expr, sympy.Basic) else \
            sorted((p for p in expr.atoms(sympy.Pow) if not p.exp.is_number), key=str)
        if powers:
            exponent = ", ".join(sorted(s.name for s in powers[0].exp.free_symbols))
            raise UnsupportedError(f"{where} raises to a parameter ('{powers[0]}', exponent {exponent}): the "
                                   f"learning engine's products have fixed whole exponents")


def _reads_own_side(rule: Rule, trace) -> bool:
    """True when a term of the trace's own side reads it (before its jump: a reset cannot give that)."""
    own = sympy.Symbol(trace.name, real=True)
    exprs = [rule.weight.on_pre if trace.of == PRE else rule.weight.on_post]
    exprs += [t.on_pre if trace.of == PRE else t.on_post for t in rule.traces if t.of == SYNAPSE]
    return any(e != 0 and e.has(own) for e in exprs)


def assign_trace_slots(rule: Rule, approximate: bool = False) -> tuple:
    """Map the rule's pre traces onto x1, x2 and post traces, then reward traces, onto y1..y3, in file order.

    With a reward trace the rule becomes three-factor (``Loihi3FLearningRule``): the y traces are
    then supplied every step by the postsynaptic side (:func:`neurodeploy.lava.backends.supplied_traces`)."""
    check_traces(rule, approximate)
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
            if trace.jump < 0 and not trace.state_dependent and (trace.of == REWARD or rule.has_reward):
                raise UnsupportedError(
                    f"trace '{trace.name}' jumps by {trace.jump:g}: learning-engine traces are unsigned (a negative "
                    f"jump is rewritten as a positive one only in two-factor rules)")
            pairs.append((trace.name, slot))
    return tuple(pairs)


def negated_traces(rule: Rule) -> tuple:
    """The pre and post traces that jump by a negative constant (the engine carries their negation)."""
    return tuple(t for t in rule.traces if t.of in (PRE, POST) and not t.state_dependent and t.jump < 0)


def negate_traces(rule: Rule) -> tuple:
    """(rule, rewrites): ``rule`` with every negative-jump trace ``y`` replaced by ``y' = -y``.

    ``y'`` keeps the name, decays the same way and jumps by ``-J > 0``; every expression that
    reads ``y`` reads ``-y'`` instead (``y -> -y'``). The weight's trajectory is unchanged: the
    rewrite is exact. ``rewrites`` says what changed, in words, for ``check`` and the plan."""
    import dataclasses

    negated = negated_traces(rule)
    if not negated:
        return rule, ()
    flip = {sympy.Symbol(t.name, real=True): -sympy.Symbol(t.name, real=True) for t in negated}

    def turned(expr):
        return expr.xreplace(flip) if isinstance(expr, sympy.Basic) else expr

    traces = []
    for t in rule.traces:
        changes = {"on_pre": turned(t.on_pre), "on_post": turned(t.on_post), "jump_expr": turned(t.jump_expr)}
        if t in negated:
            changes.update(jump=-t.jump, jump_text=f"-({t.jump_text or t.jump})")
        traces.append(dataclasses.replace(t, **changes))
    weight = dataclasses.replace(rule.weight, on_pre=turned(rule.weight.on_pre), on_post=turned(rule.weight.on_post),
                                 continuous=turned(rule.weight.continuous))
    rewritten = dataclasses.replace(rule, traces=tuple(traces), weight=weight)
    rewrites = []
    for t in negated:
        y = sympy.Symbol(t.name, real=True)
        shown = {y: -sympy.Symbol(f"{t.name}'", real=True)}  # y' as written in the message
        reads = [(f"weight.{key}", getattr(rule.weight, key)) for key in ("on_pre", "on_post", "continuous")]
        reads += [(f"traces.{u.name}.{key}", getattr(u, key)) for u in rule.traces for key in ("on_pre", "on_post")]
        reads = [f"{where}: {expr} -> {expr.xreplace(shown)}" for where, expr in reads
                 if isinstance(expr, sympy.Basic) and expr.has(y)]
        rewrites.append(f"trace '{t.name}' jumps by {t.jump:g} ({t.jump_text}): learning-engine traces are unsigned, "
                        f"so the engine's trace is {t.name}' = -{t.name}, jumping by +{-t.jump:g}"
                        + "".join(f"; {r}" for r in reads) + " (exact)")
    return rewritten, tuple(rewrites)


#: The tag's decay per decimated period must give a time constant within this fraction of the rule's.
TAG_TAU_TOLERANCE = 0.05
#: Largest decimation exponent k of Lava's ``uk`` dependency (one digit).
MAX_DECIMATE_EXPONENT = 9
#: Smallest and largest magnitude of a representable S*2^E.
_SCALES = sorted({s * 2.0 ** e for s in range(1, 9) for e in range(-7, 9)})


def tag_decay(rule: Rule, trace) -> tuple:
    """(k, v, tau_realised): the tag loses ``v = S*2^E`` of itself every ``2^k`` epochs.

    The synapse trace decays by ``q = 1 - exp(-2^k t_epoch / tau)`` per ``2^k`` epochs; ``v`` is the
    representable value nearest ``q`` and makes the time constant ``-2^k t_epoch / ln(1 - v)``. The
    smallest ``k`` whose time constant is within :data:`TAG_TAU_TOLERANCE` wins (the weight update
    of a continuous term then comes every ``2^k`` epochs too, Lava allows one ``uk``)."""
    tau = rule.tau_steps(trace)
    best = None
    for k in range(MAX_DECIMATE_EXPONENT + 1):
        period = 2 ** k * rule.t_epoch
        q = 1.0 - math.exp(-period / tau)
        v = min((v for v in _SCALES if v < 1.0), key=lambda v: abs(v - q))
        realised = -period / math.log(1.0 - v)
        err = abs(realised / tau - 1.0)
        if err <= TAG_TAU_TOLERANCE:
            return k, v, realised
        if best is None or err < best[0]:
            best = (err, k, v, realised)
    err, k, v, realised = best
    raise UnsupportedError(
        f"synapse trace '{trace.name}' (the engine's tag) decays by {1 - math.exp(-rule.t_epoch / tau):.3g} per "
        f"epoch; the nearest decay S*2^E * uk * t every 2^k epochs gives tau {realised * rule.dt:.4g} s instead of "
        f"{trace.tau:.4g} s ({100 * err:.0f}% off, more than {100 * TAG_TAU_TOLERANCE:g}%)")


@functools.lru_cache(maxsize=256)  # a rule is lowered once per process (rules are frozen and hashable)
@functools.lru_cache(maxsize=256)  # a pure function of a frozen rule: lowered once per rule, whoever asks
def lower(rule: Rule, approximate: bool = False) -> EngineRule:
    """The rule as learning-engine products; raises UnsupportedError when it cannot be expressed.

    ``approximate``: also lower what only an approximation puts on the engine, each listed in
    :attr:`EngineRule.approximations` (see :func:`tag_decay`, :func:`reset_level`)."""
    slots = dict(assign_trace_slots(rule, approximate))
    rule, rewrites = negate_traces(rule)
    w = sympy.Symbol("w", real=True)
    names = {sympy.Symbol(n, real=True): lava for n, lava in slots.items()}
    names[w] = "w"
    approximations, saturating = [], []
    tag = next((t for t in rule.traces if t.of == SYNAPSE), None)
    k = None
    if tag is not None:
        names[sympy.Symbol(tag.name, real=True)] = "t"
        k, decay, tau_real = tag_decay(rule, tag)
        exact = 1.0 - math.exp(-(2 ** k) * rule.t_epoch / rule.tau_steps(tag))
        approximations.append(Approximation(
            "tag decay", tag.name,
            f"synapse trace '{tag.name}' is the engine's tag t; it decays by {decay:g} every {2 ** k} epochs "
            f"(u{k}; exactly {exact:.4g}): tau {tau_real * rule.dt:.4g} s instead of {tag.tau:.4g} s "
            f"({100 * (tau_real / rule.tau_steps(tag) - 1):+.2f}%)"
            + (f"; the continuous term is integrated every {2 ** k} epochs" if rule.weight.continuous != 0 else "")))
    for name, slot in slots.items():
        level = reset_level(rule.trace(name))
        if level is not None:
            saturating.append(slot)
            approximations.append(Approximation(
                "saturation reset", name,
                f"trace '{name}' resets to {level:g} at each spike: impulse 127 saturates the 7-bit trace at "
                f"127 = {level:g}, a reset up to the decay's rounding (float traces do not saturate)",
                fixed_only=True))
    products = []
    targets = [("dw", rule.weight.on_pre, rule.weight.on_post)]
    if tag is not None:
        targets.append(("dt", tag.on_pre, tag.on_post))
    for target, on_pre, on_post in targets:
        for side, expr in ((PRE, on_pre), (POST, on_post)):
            # the engine reads a trace after the step's impulse; the rule reads its own side's
            # traces before the spike's jump: x -> x - J at that side's spike
            own = {sympy.Symbol(t.name, real=True): sympy.Symbol(t.name, real=True) - sympy.Float(t.jump)
                   for t in rule.traces_of(side) if not t.state_dependent}
            numeric = sympy.expand(rule.numeric(expr.xreplace(own)))
            if numeric == 0:
                continue
            for term in sympy.Add.make_args(numeric):
                products.append(_lower_term(term, DEPENDENCY[side], names, side, target))
    every = EVERY_EPOCH if k is None else f"u{k}"
    continuous = sympy.expand(rule.numeric(rule.weight.continuous) * rule.t_epoch * rule.dt * 2 ** (k or 0))
    if continuous != 0:
        for term in sympy.Add.make_args(continuous):
            products.append(_lower_term(term, every, names, "continuous"))
    if tag is not None:
        products.append(EngineProduct(every, -decay, ("t",), f"-{decay:g}*{tag.name} (decay)", "dt"))
    return EngineRule(rule, tuple(slots.items()), tuple(_merge(products)), tuple(approximations),
                      None if tag is None else tag.name, tuple(saturating), k, rewrites)


def _lower_term(term: sympy.Expr, dependency: str, names: dict, side: str, target: str = "dw") -> EngineProduct:
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
    return EngineProduct(dependency, float(coefficient), tuple(sorted(factors)), str(term), target)


def _where(side: str) -> str:
    return side if side == "continuous" else f"on_{side}"


_FUNCTION_NAMES = {sympy.Abs: "abs", sympy.exp: "exp", sympy.log: "log"}


def _merge(products):
    """Add products that share dependency and factors (``a*x*y0 + b*x*y0``)."""
    merged = {}
    for p in products:
        key = (p.target, p.dependency, p.factors)
        if key in merged:
            q = merged[key]
            merged[key] = EngineProduct(p.dependency, q.coefficient + p.coefficient, p.factors, f"{q.term} + {p.term}",
                                        p.target)
        else:
            merged[key] = p
    return [p for p in merged.values() if p.coefficient != 0]
