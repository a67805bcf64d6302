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
  :mod:`neurodeploy.compile.stepper` states it: (1) every trace decays by
  ``exp(-1/tau_steps)`` (toward its rest value), reward traces jump, (2) the
  step's spikes add their jumps, (3) each side's update terms are evaluated
  with that side's traces before this step's jumps and the others after them,
  and kept with the dependency ``x0``/``y0``, (4) at the end of each learning
  epoch ``w = clip(w + x0*pre_term + y0*post_term + t_epoch*dt*g, w_min,
  w_max)``, synapse traces likewise, and the epoch state resets. With
  ``t_epoch > 1`` the pre and post traces follow the learning engine's
  epoch bookkeeping (see :mod:`neurodeploy.compile.stepper`): the traces keep their
  epoch-start value, a neuron's earlier spikes in the epoch add their jump to
  it, and at the epoch's end the epoch is replayed step by step (unrolled,
  ``t_epoch`` steps) with only each trace's last jump at its step; the terms
  read the replayed values at their neuron's last spike. With ``t_epoch = 1``
  a step costs one ``run_regularly`` operation after the pathways (the
  evaluation, the change of w and the next step's decay), two where a reward
  trace jumps or a trace with a rest value is read before its jump (the decay
  then stays at the step's start): the same float operations in the same
  order as a decay before the pathways, an evaluation after them and the
  change at the step's end, in one or two code objects a step instead of three.

Names: every parameter and trace of the rule appears in the Brian2 code as
``r<position>_<name>`` (``r03_tau_plus``, ``r08_x``; :func:`brian2_names`), so no rule name can mean one of
the names Brian2 or sympy resolve by themselves (units such as ``mV``,
constants ``pi``/``e``, functions ``exp``/``rand``, group variables ``i``,
``t``, ``N``, ``lastupdate``, sympy's ``S``/``E``/``I``...). Traces are not
differential equations: each decays by its exact factor written explicitly
(``x * exp(-(t - nd_lastupdate)/tau)`` between events, ``x * exp(-dt/tau)``
every step when clock-driven), so the cost does not grow with the coupled
system Brian2's ``exact`` integrator would solve.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import sympy
import neurodeploy.brian2_setup  # noqa: F401 - before any other Brian2 import
from brian2.parsing.sympytools import sympy_to_str
from brian2.units.fundamentalunits import get_unit

from neurodeploy.spec.ir import POST, PRE, REWARD, SYNAPSE, Rule
from neurodeploy.spec.units import DIMENSIONLESS, to_brian2


#: Every rule identifier appears in Brian2 code as ``r<position>_<name>``: ``r01_A_plus``.
PREFIX = "r"


def brian2_names(rule: Rule) -> dict:
    """Rule identifier -> its Brian2 name: ``r<k>_<name>``, ``k`` its position (parameters in file
    order, then traces), zero-padded to one width. ``w`` stays ``w``.

    No Brian2 unit, constant, function or variable and no sympy name has this form, so every
    name means the rule's value. And since sympy orders the factors of a product and the terms
    of a sum by name, names that sort by position make the generated code, and its rounding,
    the same whatever the rule's names are."""
    ids = [p.name for p in rule.parameters] + [t.name for t in rule.traces]
    width = max(2, len(str(len(ids))))
    # `pre` and `post` would end in Brian2's group suffixes (`r01_pre`): they get a trailing `_`
    names = {name: f"{PREFIX}{k:0{width}d}_{name}" + ("_" if name in ("pre", "post") else "")
             for k, name in enumerate(ids, 1)}
    names["w"] = "w"
    return names


def b2name(rule: Rule, name: str) -> str:
    """The Brian2 name of the rule identifier ``name``."""
    return brian2_names(rule)[name]


def b2code(rule: Rule, expr, extra: dict | None = None) -> str:
    """Brian2 text of a rule expression over the Brian2 names (``extra``: other renames by rule name)."""
    names = brian2_names(rule)
    extra = extra or {}
    rename = {s: sympy.Symbol(extra.get(s.name, names[s.name]), real=True) for s in expr.free_symbols}
    return brian2_expr(expr.xreplace(rename))


def unit_text(dim) -> str:
    """Brian2 unit annotation for a model line: ``1`` or e.g. ``siemens``."""
    return "1" if dim == DIMENSIONLESS else repr(get_unit(to_brian2(dim)))


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
    return {b2name(rule, p.name): Quantity(p.value, dim=to_brian2(p.quantity.dim)) for p in rule.parameters}


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


def named_parameter(rule: Rule, text: str) -> str | None:
    """The parameter a value's text names (the loader writes ``NAME = value``), else None."""
    name = text.split(" = ", 1)[0].strip() if " = " in text else ""
    return name if name in {p.name for p in rule.parameters} else None


def value_code(rule: Rule, text: str, value: float, dim) -> str:
    """Brian2 text of a constant of the rule (a time constant, a jump, a bound, a rest value): the
    parameter's Brian2 name, or the expression of parameters, as written, when it reads any, so
    that the namespace decides its value (editing a parameter changes the run); else the number."""
    name = named_parameter(rule, text)
    if name is not None:
        return b2name(rule, name)
    if text and any(p.name in text for p in rule.parameters):
        from neurodeploy.errors import NeurodeployError
        from neurodeploy.spec.expr import parse_expression

        symbols = {p.name: sympy.Symbol(p.name, real=True) for p in rule.parameters}
        try:
            expr = parse_expression(text, symbols, rule.source, "")
        except NeurodeployError:  # a quantity literal (``0.5 nS``): its value
            expr = None
        if expr is not None and expr.free_symbols:
            return b2code(rule, expr)
    return quantity_text(value, dim)


def _jump_text(rule: Rule, t) -> str:
    return b2code(rule, t.jump_expr) if t.jump_expr is not None else value_code(rule, t.jump_text, t.jump, t.dim)


def _jump_line(rule: Rule, t) -> str:
    return f"{b2name(rule, t.name)} += {_jump_text(rule, t)}"


def _delay_groups(rule: Rule) -> list:
    """((side, delay in steps), traces delayed by it), sorted."""
    groups = {}
    for t in rule.traces:
        if t.of in (PRE, POST) and rule.delay_steps(t) > 0:
            groups.setdefault((t.of, rule.delay_steps(t)), []).append(t)
    return sorted(groups.items())


def _delayed_pathways(rule: Rule, model_jumps) -> tuple:
    """One pathway per (side, delay) with the jumps of the traces delayed by it."""
    return tuple((f"{side}_d{steps}", side, steps * rule.dt, "\n".join(model_jumps(t) for t in traces))
                 for (side, steps), traces in _delay_groups(rule))


def _decay_line(rule: Rule, t, elapsed: str) -> str:
    """The exact decay of trace ``t`` over ``elapsed`` (a Brian2 time expression)."""
    tau = named_parameter(rule, t.tau_text)
    name, factor = b2name(rule, t.name), (f"exp(-{elapsed} / {b2name(rule, tau)})" if tau is not None
                                          else f"exp(-{elapsed} / ({t.tau!r}*second))")
    if t.rest:
        rest = value_code(rule, t.rest_text, t.rest, t.dim)
        return f"{name} = {rest} + ({name} - {rest}) * {factor}"
    return f"{name} = {name} * {factor}"


def _targets(rule: Rule, side: str) -> list:
    """(target, expression) updated at a ``side`` spike: ``w`` first, then synapse traces."""
    out = []
    expr = rule.weight.on_pre if side == PRE else rule.weight.on_post
    if expr != 0:
        out.append(("w", expr))
    for t in rule.traces_of(SYNAPSE):
        expr = t.on_pre if side == PRE else t.on_post
        if expr != 0:
            out.append((b2name(rule, t.name), expr))
    return out


def bounds_code(rule: Rule) -> tuple:
    """Brian2 text of the weight bounds (parameter names where the rule names parameters)."""
    w = rule.weight
    return value_code(rule, w.bounds_text[0], w.w_min, w.dim), value_code(rule, w.bounds_text[1], w.w_max, w.dim)


def reference_model(rule: Rule) -> Brian2Model:
    w_dim = rule.weight.dim
    wu = unit_text(w_dim)
    lo, hi = bounds_code(rule)
    lines = [f"w : {wu}"] + [f"{b2name(rule, t.name)} : {unit_text(t.dim)}" for t in rule.traces]
    # event-driven: each pathway first decays every trace from the synapse's last event
    catch_up = []
    if not rule.clock_driven:
        lines.append("nd_lastupdate : second")
        catch_up = [_decay_line(rule, t, "(t - nd_lastupdate)") for t in rule.traces]

    def pathway(code):
        return "\n".join(catch_up + code + (["nd_lastupdate = t"] if catch_up else []))

    statements = {}
    for side in (PRE, POST):
        targets = _targets(rule, side)
        code = []
        if len(targets) == 1 and targets[0][0] == "w":
            code.append(f"w = clip(w + ({b2code(rule, targets[0][1])}), {lo}, {hi})")
        elif targets:  # every update reads the state before the spike
            code += [f"nd_d{name} = {b2code(rule, expr)}" for name, expr in targets]
            code += [f"w = clip(w + nd_dw, {lo}, {hi})" if name == "w" else f"{name} += nd_d{name}"
                     for name, expr in targets]
        for t in rule.traces_of(side):
            if rule.delay_steps(t) == 0:
                code.append(_jump_line(rule, t))
        statements[side] = pathway(code)
    regular = []
    if rule.clock_driven:  # exact decay every step, where Brian2's state updater would run
        regular.append(("\n".join(_decay_line(rule, t, "dt") for t in rule.traces), "groups", 0))
    if rule.has_reward:
        regular.append(("\n".join(f"{b2name(rule, t.name)} += {_jump_text(rule, t)} * reward_input(t, j)"
                                   for t in rule.traces_of(REWARD)), "before_synapses", 0))
    if rule.weight.continuous != 0:  # forward Euler, once per step after the spikes
        regular.append((f"w = clip(w + dt * ({b2code(rule, rule.weight.continuous)}), {lo}, {hi})", "end", 0))
    delayed = tuple((name, side, delay, pathway(code.split("\n")))
                    for name, side, delay, code in _delayed_pathways(rule, lambda t: _jump_line(rule, t)))
    return Brian2Model("\n".join(lines), statements[PRE], statements[POST], tuple(regular), _namespace(rule),
                       delayed, rule.has_reward)


def _own_reads(rule: Rule, side: str) -> list:
    """Traces of ``side`` read by that side's updates: they need their value before the step's jumps."""
    names = {s.name for _, expr in _targets(rule, side) for s in expr.free_symbols}
    return [t for t in rule.traces_of(side) if t.name in names]


def step_model(rule: Rule) -> Brian2Model:
    if rule.t_epoch > 1:
        return _epoch_step_model(rule)
    w_dim = rule.weight.dim
    wu = unit_text(w_dim)
    lo, hi = quantity_text(rule.weight.w_min, w_dim), quantity_text(rule.weight.w_max, w_dim)
    lines = [f"w : {wu}"]
    lines += [f"{b2name(rule, t.name)} : {unit_text(t.dim)}" for t in rule.traces]
    lines += ["pre_spiked : 1", "post_spiked : 1"]
    kept = _kept(rule)
    units = _units(rule)
    lines += [f"{var} : {units[target]}" for (side, target), var in kept.items()]
    befores = {side: _own_reads(rule, side) for side in (PRE, POST)}
    lines += [f"nd_before_{b2name(rule, t.name)} : {units[b2name(rule, t.name)]}" for side in (PRE, POST) for t in befores[side]]
    # np.exp, as Lava computes it, so that both decay by the same float
    decay = [_step_decay(rule, t, b2name(rule, t.name)) for t in rule.traces]
    # the values before this step's jumps, taken after the decay. (Not in the pathway's code:
    # Brian2 2.9's numpy target aliases `a = x` with `x += 1` in one block, so a would read 1.25.)
    decay += [f"nd_before_{b2name(rule, t.name)} = {b2name(rule, t.name)}" for side in (PRE, POST) for t in befores[side]]
    statements = {}
    for side in (PRE, POST):
        code = [_jump_line(rule, t) for t in rule.traces_of(side) if rule.delay_steps(t) == 0]
        code.append(f"{side}_spiked = 1")
        statements[side] = "\n".join(code)
    evaluate = []
    for side in (PRE, POST):
        targets = dict(_targets(rule, side))
        rename = {t.name: f"nd_before_{b2name(rule, t.name)}" for t in befores[side]}
        for (s, target), var in kept.items():
            if s != side:
                continue
            expr = targets.get(target, 0)
            if expr == 0 and w_dim != DIMENSIONLESS:  # (Brian2 loses the unit of `0*volt` in a product)
                evaluate.append(f"{var} = (1 - {side}_spiked) * {var}")
                continue
            text = b2code(rule, expr, rename) if expr != 0 else "0"
            evaluate.append(f"{var} = {side}_spiked * ({text}) + (1 - {side}_spiked) * {var}")
    # every step ends an epoch (t_epoch = 1): w changes at every step, and the dependencies x0 and y0
    # (clip(0 + spiked, 0, 1), reset to 0 at each epoch's end) are the step's pre_spiked and post_spiked
    apply = _apply(rule, kept, b2code(rule, rule.weight.continuous) if rule.weight.continuous != 0 else None,
                   every_step=True)
    apply += ["pre_spiked = 0", "post_spiked = 0"]
    if rule.has_reward:
        decay += _reward_jumps(rule)
    # Each run_regularly costs ~60 us a step under numpy, so: the evaluation and the epoch-end change in one
    # operation after the pathways (nothing between after_synapses and end touches the synapses), and,
    # where the run starts with every trace and copy at its value before any spike, the decay of the next
    # step at the end of this one, the same operations on the same values: every trace starts at rest, where
    # the decay of step 0 leaves it (rest + 0.0 * a), and a copy nd_before_* starts at 0 as its trace must.
    # A reward trace jumps by this step's reward_input(t, j) after its decay: it keeps the decay in its step.
    ahead = not rule.has_reward and not any(t.rest for side in (PRE, POST) for t in befores[side])
    if ahead:
        regular = (("\n".join(evaluate + apply + decay), "after_synapses", 0),)
    else:
        regular = (("\n".join(decay), "before_synapses", 0), ("\n".join(evaluate + apply), "after_synapses", 0))
    return Brian2Model("\n".join(lines), statements[PRE], statements[POST], regular, _namespace(rule),
                       _delayed_pathways(rule, lambda t: _jump_line(rule, t)), rule.has_reward)


def _kept(rule: Rule) -> dict:
    """(side, target) -> variable holding the side's term until the epoch ends."""
    kept = {}
    for side in (PRE, POST):
        for target, _ in _targets(rule, side):
            kept[(side, target)] = f"{side}_term" if target == "w" else f"nd_{side}_{target}"
    for side in (PRE, POST):  # w's terms always exist (0 when the rule has none), as before
        kept.setdefault((side, "w"), f"{side}_term")
    return kept


def _units(rule: Rule) -> dict:
    units = {b2name(rule, t.name): unit_text(t.dim) for t in rule.traces}
    units["w"] = unit_text(rule.weight.dim)
    return units


def _step_decay(rule: Rule, t, var: str, src: str | None = None) -> str:
    """``var = src`` (default ``var``: trace ``t`` or a copy) decayed by one step, ``np.exp(-1/tau_steps)``
    as Lava computes it."""
    a = float(np.exp(-1.0 / rule.tau_steps(t)))
    src = src or var
    if t.rest:
        rest = quantity_text(t.rest, t.dim)
        return f"{var} = {rest} + ({src} - {rest}) * {a!r}"
    return f"{var} = {src} * {a!r}"


def _reward_jumps(rule: Rule) -> list:
    return [f"{b2name(rule, t.name)} = {b2name(rule, t.name)} + {quantity_text(t.jump, t.dim)} * reward_input(t, j)"
            for t in rule.traces_of(REWARD)]


def _apply(rule: Rule, kept: dict, continuous: str | None, every_step: bool = False) -> list:
    """The epoch-end change of w and the synapse traces, every change from the state before any of them.
    ``every_step`` (t_epoch = 1): every step ends an epoch, so the change is not gated by ``epoch_end(t)``
    (a TimedArray lookup, ~20 us a step under numpy, that would always read 1: ``1.0 * d`` is ``d``), and
    the dependencies x0/y0 are the step's own pre_spiked/post_spiked (the same 0.0 or 1.0)."""
    lo, hi = (quantity_text(b, rule.weight.dim) for b in (rule.weight.w_min, rule.weight.w_max))
    gate = "" if every_step else "epoch_end(t) * "
    if not rule.traces_of(SYNAPSE) and continuous is None:
        if every_step:  # a temporary keeps the sum's grouping: Brian2 would turn w + (a + b) into (w + a) + b
            return ["nd_dw = pre_spiked * pre_term + post_spiked * post_term", f"w = clip(w + nd_dw, {lo}, {hi})"]
        return [f"w = clip(w + epoch_end(t) * (x0 * pre_term + y0 * post_term), {lo}, {hi})"]
    change = {}
    for (side, target), var in kept.items():
        dependency = f"{side}_spiked" if every_step else {PRE: "x0", POST: "y0"}[side]
        change.setdefault(target, []).append(f"{dependency} * {var}")
    if continuous is not None:
        change.setdefault("w", []).append(f"({rule.t_epoch} * dt) * ({continuous})")
    apply = [f"nd_d{target} = {gate}({' + '.join(parts)})" for target, parts in change.items()]
    apply += [f"w = clip(w + nd_dw, {lo}, {hi})" if target == "w" else f"{target} = {target} + nd_d{target}"
              for target in change]
    return apply


def _epoch_step_model(rule: Rule) -> Brian2Model:
    """``t_epoch > 1``: the learning engine's epoch bookkeeping (see :mod:`neurodeploy.compile.stepper`)."""
    e = rule.t_epoch
    units = _units(rule)
    spiking = [t for t in rule.traces if t.of in (PRE, POST)]
    others = [t for t in rule.traces if t.of not in (PRE, POST)]
    kept = _kept(rule)
    lines = [f"w : {units['w']}"]
    lines += [f"{b2name(rule, t.name)} : {unit_text(t.dim)}" for t in rule.traces]
    lines += ["x0 : 1", "y0 : 1", "nd_tspre : 1", "nd_tspost : 1"]
    lines += [f"{var} : {units[target]}" for (side, target), var in kept.items()]
    for t in spiking:
        n = b2name(rule, t.name)
        lines += [f"nd_tj_{n} : 1", f"nd_h_{n} : {units[n]}", f"nd_before_{n} : {units[n]}"]
    lines += [f"nd_at_{side}_{b2name(rule, t.name)} : {units[b2name(rule, t.name)]}" for side in (PRE, POST) for t in others]
    # every step: synapse and reward traces decay (pre/post traces keep their epoch-start value)
    decay = [_step_decay(rule, t, b2name(rule, t.name)) for t in others] + _reward_jumps(rule)

    def jumps(t):  # a spike: an earlier spike of the neuron in this epoch adds its jump to the stored value
        n = b2name(rule, t.name)
        return [f"{n} = {n} + int(nd_tj_{n} > 0) * ({_jump_text(rule, t)})", f"nd_tj_{n} = epoch_step(t)"]

    statements = {}
    for side in (PRE, POST):
        code = [line for t in rule.traces_of(side) if rule.delay_steps(t) == 0 for line in jumps(t)]
        code.append(f"nd_ts{side} = epoch_step(t)")
        code += [f"nd_at_{side}_{b2name(rule, t.name)} = {b2name(rule, t.name)}" for t in others]
        statements[side] = "\n".join(code)
    # the epoch's end: replay the epoch, each trace's last jump at its step, the terms at each side's last spike
    h = {t.name: f"nd_h_{b2name(rule, t.name)}" for t in spiking}
    # Each statement assigns a variable its right-hand side does not read: Brian2's numpy target
    # turns `a = a * c` into an in-place update, which would also change an array `a` aliases.
    before = {t.name: f"nd_before_{b2name(rule, t.name)}" for t in spiking}
    replay = []
    for k in range(1, e + 1):
        for t in spiking:  # decay into nd_before (from the stored value at the first step)
            src = b2name(rule, t.name) if k == 1 else h[t.name]
            replay.append(_step_decay(rule, t, before[t.name], src))
        for index, t in enumerate(spiking):  # jumps in file order, each reading the values already updated
            if t.jump_expr is not None:
                reads = dict(before)
                reads.update({u.name: h[u.name] for u in spiking[:index]})
                jump = b2code(rule, t.jump_expr, reads)
            else:
                jump = quantity_text(t.jump, t.dim)
            replay.append(f"{h[t.name]} = {before[t.name]} + int(nd_tj_{b2name(rule, t.name)} == {k}) * ({jump})")
        for side in (PRE, POST):
            targets = dict(_targets(rule, side))
            rename = dict(h)
            rename.update({t.name: f"nd_before_{b2name(rule, t.name)}" for t in rule.traces_of(side)})
            rename.update({t.name: f"nd_at_{side}_{b2name(rule, t.name)}" for t in others})
            for (s, target), var in kept.items():
                expr = targets.get(target, 0)
                if s != side or expr == 0:
                    continue
                replay.append(f"{var} = int(nd_ts{side} == {k}) * ({b2code(rule, expr, rename)})"
                              f" + (1 - int(nd_ts{side} == {k})) * {var}")
    replay += ["x0 = int(nd_tspre > 0)", "y0 = int(nd_tspost > 0)"]
    continuous = b2code(rule, rule.weight.continuous, h) if rule.weight.continuous != 0 else None
    replay += _apply(rule, kept, continuous)
    for t in spiking:
        n = b2name(rule, t.name)
        replay += [f"{n} = epoch_end(t) * nd_h_{n} + (1 - epoch_end(t)) * {n}",
                   f"nd_tj_{n} = nd_tj_{n} * (1 - epoch_end(t))"]
    replay += [f"nd_ts{side} = nd_ts{side} * (1 - epoch_end(t))" for side in (PRE, POST)]
    regular = (("\n".join(decay), "before_synapses", 0),) if decay else ()
    regular += (("\n".join(replay), "end", 0),)
    delayed = tuple((f"{side}_d{steps}", side, steps * rule.dt, "\n".join(line for t in traces for line in jumps(t)))
                    for (side, steps), traces in _delay_groups(rule))
    return Brian2Model("\n".join(lines), statements[PRE], statements[POST], regular, _namespace(rule),
                       delayed, rule.has_reward)


def set_up_synapses(b2, syn, model, rule, dt) -> None:
    """The rule's pathways and operations on a connected ``Synapses``: same-step pre before post, then
    the delayed jumps (Brian2 otherwise orders by name), the per-step operations, traces at rest."""
    syn.pre.order = 0
    syn.post.order = 1
    for order, (name, _, delay, _) in enumerate(model.delayed, start=2):
        pathway = getattr(syn, name)
        pathway.order = order
        pathway.delay = delay * b2.second
    for code, when, order in model.regular:
        syn.run_regularly(code, when=when, order=order, dt=dt)
    for t in rule.traces:  # traces start at rest
        if t.rest:
            setattr(syn, b2name(rule, t.name), b2.Quantity(t.rest, dim=to_brian2(t.dim)))
