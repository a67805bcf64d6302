"""Brian2 model text for a rule: shared by the backends and the standalone code generator.

Two models:

* ``reference`` -- the rule as written. Event-driven traces,
  :math:`x(t) = x_{rest} + (x(t_0) - x_{rest}) e^{-(t - t_0)/\\tau}`, and on a
  pre spike ``w = clip(w + f_pre, w_min, w_max)`` (synapse traces likewise,
  all reading the state before the spike) followed by the pre traces' jumps
  (likewise on a post spike). At a step with both a pre and a post spike the
  pre pathway runs first (``order`` 0 and 1); delayed jumps run on their own
  pathways. With a continuous term or a reward trace the traces are
  clock-driven (exact linear decay) and ``w += dt * g`` runs every step.
* ``step`` -- the learning engine's order per step, as
  :mod:`neurodeploy.stepper` states it: (1) every trace decays by
  ``exp(-1/tau_steps)`` (toward its rest value), reward traces jump, (2) the
  step's spikes add their jumps, (3) each side's update terms are evaluated
  with that side's traces before this step's jumps and the others after them,
  and kept with the dependency ``x0``/``y0``, (4) at the end of each learning
  epoch ``w = clip(w + x0*pre_term + y0*post_term + t_epoch*dt*g, w_min,
  w_max)``, synapse traces likewise, and the epoch state resets.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import sympy
import neurodeploy.brian2_setup  # noqa: F401 - before any other Brian2 import
from brian2.parsing.sympytools import sympy_to_str
from brian2.units.fundamentalunits import DIMENSIONLESS, get_unit

from neurodeploy.ir import POST, PRE, REWARD, SYNAPSE, Rule


def unit_text(dim) -> str:
    """Brian2 unit annotation for a model line: ``1`` or e.g. ``siemens``."""
    return "1" if dim == DIMENSIONLESS else repr(get_unit(dim))


def quantity_text(value: float, dim) -> str:
    return repr(float(value)) if dim == DIMENSIONLESS else f"{float(value)!r}*{unit_text(dim)}"


@dataclass(frozen=True)
class Brian2Model:
    model: str  # Synapses model equations
    on_pre: str  # on_pre statements of the "pre" pathway
    on_post: str  # on_post statements of the "post" pathway
    regular: tuple  # (code, when, order) for Synapses.run_regularly, in order
    namespace: dict  # parameter name -> Brian2 Quantity
    delayed: tuple = ()  # (pathway name, "pre"/"post", delay in s, statements) for delayed jumps
    reward: bool = False  # the model reads reward_input(t, j), a TimedArray (steps, n_post)


def _namespace(rule: Rule) -> dict:
    from brian2 import Quantity
    return {p.name: Quantity(p.value, dim=p.quantity.dim) for p in rule.parameters}


def unit_namespace(rule: Rule) -> dict:
    """The Brian2 units the model text names (it writes e.g. ``0.004*volt``), by name."""
    from brian2.units import allunits

    names = set()
    for dim in {rule.weight.dim} | {t.dim for t in rule.traces}:
        if dim != DIMENSIONLESS:
            names |= set(re.findall(r"[A-Za-z_]\w*", unit_text(dim)))
    return {n: getattr(allunits, n) for n in sorted(names)}


def brian2_expr(expr) -> str:
    """Brian2 text of a sympy expression; ``heaviside(a)`` becomes ``int((a) > 0)``."""
    heavisides = list(expr.atoms(sympy.Heaviside))
    if not heavisides:
        return sympy_to_str(expr)
    placeholders = {h: sympy.Symbol(f"nd_heaviside_{k}", real=True) for k, h in enumerate(heavisides)}
    text = sympy_to_str(expr.xreplace(placeholders))
    for h, symbol in placeholders.items():
        text = re.sub(rf"\b{symbol.name}\b", f"int(({brian2_expr(h.args[0])}) > 0)", text)
    return text


def _jump_line(rule: Rule, t) -> str:
    if t.jump_expr is not None:
        return f"{t.name} += {brian2_expr(t.jump_expr)}"
    return f"{t.name} += {quantity_text(t.jump, t.dim)}"


def _delayed_pathways(rule: Rule, model_jumps) -> tuple:
    """One pathway per (side, delay) with the jumps of the traces delayed by it."""
    groups = {}
    for t in rule.traces:
        if t.of in (PRE, POST) and rule.delay_steps(t) > 0:
            groups.setdefault((t.of, rule.delay_steps(t)), []).append(t)
    return tuple((f"{side}_d{steps}", side, steps * rule.dt, "\n".join(model_jumps(t) for t in traces))
                 for (side, steps), traces in sorted(groups.items()))


def _decay_rhs(t) -> str:
    tau = f"({t.tau!r}*second)"
    if t.rest:
        return f"({quantity_text(t.rest, t.dim)} - {t.name}) / {tau}"
    return f"-{t.name} / {tau}"


def _targets(rule: Rule, side: str) -> list:
    """(target, expression) updated at a ``side`` spike: ``w`` first, then synapse traces."""
    out = []
    expr = rule.weight.on_pre if side == PRE else rule.weight.on_post
    if expr != 0:
        out.append(("w", expr))
    for t in rule.traces_of(SYNAPSE):
        expr = t.on_pre if side == PRE else t.on_post
        if expr != 0:
            out.append((t.name, expr))
    return out


def reference_model(rule: Rule) -> Brian2Model:
    w_dim = rule.weight.dim
    wu = unit_text(w_dim)
    lo, hi = quantity_text(rule.weight.w_min, w_dim), quantity_text(rule.weight.w_max, w_dim)
    driven = "clock-driven" if rule.clock_driven else "event-driven"
    lines = [f"w : {wu}"]
    for t in rule.traces:
        lines.append(f"d{t.name}/dt = {_decay_rhs(t)} : {unit_text(t.dim)} ({driven})")
    statements = {}
    for side in (PRE, POST):
        targets = _targets(rule, side)
        code = []
        if len(targets) == 1 and targets[0][0] == "w":
            code.append(f"w = clip(w + ({brian2_expr(targets[0][1])}), {lo}, {hi})")
        elif targets:  # every update reads the state before the spike
            code += [f"nd_d{name} = {brian2_expr(expr)}" for name, expr in targets]
            code += [f"w = clip(w + nd_dw, {lo}, {hi})" if name == "w" else f"{name} += nd_d{name}"
                     for name, expr in targets]
        for t in rule.traces_of(side):
            if rule.delay_steps(t) == 0:
                code.append(_jump_line(rule, t))
        statements[side] = "\n".join(code)
    regular = []
    if rule.has_reward:
        regular.append(("\n".join(f"{t.name} += {quantity_text(t.jump, t.dim)} * reward_input(t, j)"
                                   for t in rule.traces_of(REWARD)), "before_synapses", 0))
    if rule.weight.continuous != 0:  # forward Euler, once per step after the spikes
        regular.append((f"w = clip(w + dt * ({brian2_expr(rule.weight.continuous)}), {lo}, {hi})", "end", 0))
    return Brian2Model("\n".join(lines), statements[PRE], statements[POST], tuple(regular), _namespace(rule),
                       _delayed_pathways(rule, lambda t: _jump_line(rule, t)), rule.has_reward)


def _own_reads(rule: Rule, side: str) -> list:
    """Traces of ``side`` read by that side's updates: they need their value before the step's jumps."""
    names = {s.name for _, expr in _targets(rule, side) for s in expr.free_symbols}
    return [t for t in rule.traces_of(side) if t.name in names]


def step_model(rule: Rule) -> Brian2Model:
    w_dim = rule.weight.dim
    wu = unit_text(w_dim)
    lo, hi = quantity_text(rule.weight.w_min, w_dim), quantity_text(rule.weight.w_max, w_dim)
    lines = [f"w : {wu}"]
    lines += [f"{t.name} : {unit_text(t.dim)}" for t in rule.traces]
    lines += ["pre_spiked : 1", "post_spiked : 1", "x0 : 1", "y0 : 1"]
    kept = {}  # (side, target) -> variable holding the side's term until the epoch ends
    for side in (PRE, POST):
        for target, _ in _targets(rule, side):
            kept[(side, target)] = f"{side}_term" if target == "w" else f"nd_{side}_{target}"
    for side in (PRE, POST):  # w's terms always exist (0 when the rule has none), as before
        kept.setdefault((side, "w"), f"{side}_term")
    units = {t.name: unit_text(t.dim) for t in rule.traces}
    units["w"] = wu
    lines += [f"{var} : {units[target]}" for (side, target), var in kept.items()]
    befores = {side: _own_reads(rule, side) for side in (PRE, POST)}
    lines += [f"nd_before_{t.name} : {units[t.name]}" for side in (PRE, POST) for t in befores[side]]
    # np.exp, as Lava computes it, so that both decay by the same float
    decay = []
    for t in rule.traces:
        a = float(np.exp(-1.0 / rule.tau_steps(t)))
        if t.rest:
            rest = quantity_text(t.rest, t.dim)
            decay.append(f"{t.name} = {rest} + ({t.name} - {rest}) * {a!r}")
        else:
            decay.append(f"{t.name} = {t.name} * {a!r}")
    # the values before this step's jumps, taken after the decay. (Not in the pathway's code:
    # Brian2 2.9's numpy target aliases `a = x` with `x += 1` in one block, so a would read 1.25.)
    decay += [f"nd_before_{t.name} = {t.name}" for side in (PRE, POST) for t in befores[side]]
    statements = {}
    for side in (PRE, POST):
        code = [_jump_line(rule, t) for t in rule.traces_of(side) if rule.delay_steps(t) == 0]
        code.append(f"{side}_spiked = 1")
        statements[side] = "\n".join(code)
    evaluate = []
    for side in (PRE, POST):
        targets = dict(_targets(rule, side))
        rename = {sympy.Symbol(t.name, real=True): sympy.Symbol(f"nd_before_{t.name}", real=True) for t in befores[side]}
        for (s, target), var in kept.items():
            if s != side:
                continue
            expr = targets.get(target, 0)
            if expr == 0 and w_dim != DIMENSIONLESS:  # (Brian2 loses the unit of `0*volt` in a product)
                evaluate.append(f"{var} = (1 - {side}_spiked) * {var}")
                continue
            text = brian2_expr(expr.xreplace(rename)) if expr != 0 else "0"
            evaluate.append(f"{var} = {side}_spiked * ({text}) + (1 - {side}_spiked) * {var}")
    evaluate += ["x0 = clip(x0 + pre_spiked, 0, 1)", "y0 = clip(y0 + post_spiked, 0, 1)",
                 "pre_spiked = 0", "post_spiked = 0"]
    synapse = [t.name for t in rule.traces_of(SYNAPSE)]
    if not synapse and rule.weight.continuous == 0:
        apply = [f"w = clip(w + epoch_end(t) * (x0 * pre_term + y0 * post_term), {lo}, {hi})"]
    else:  # every change reads the state before any of them
        change = {}
        for (side, target), var in kept.items():
            change.setdefault(target, []).append(f"{'x0' if side == PRE else 'y0'} * {var}")
        if rule.weight.continuous != 0:
            change.setdefault("w", []).append(f"({rule.t_epoch} * dt) * ({brian2_expr(rule.weight.continuous)})")
        apply = [f"nd_d{target} = epoch_end(t) * ({' + '.join(parts)})" for target, parts in change.items()]
        apply += [f"w = clip(w + nd_dw, {lo}, {hi})" if target == "w" else f"{target} = {target} + nd_d{target}"
                  for target in change]
    apply += ["x0 = x0 * (1 - epoch_end(t))", "y0 = y0 * (1 - epoch_end(t))"]
    if rule.has_reward:
        decay += [f"{t.name} = {t.name} + {quantity_text(t.jump, t.dim)} * reward_input(t, j)"
                  for t in rule.traces_of(REWARD)]
    regular = (("\n".join(decay), "before_synapses", 0), ("\n".join(evaluate), "after_synapses", 0),
               ("\n".join(apply), "end", 0))
    return Brian2Model("\n".join(lines), statements[PRE], statements[POST], regular, _namespace(rule),
                       _delayed_pathways(rule, lambda t: _jump_line(rule, t)), rule.has_reward)
