"""Brian2 model text for a rule: shared by the backends and the standalone code generator.

Two models:

* ``reference`` -- the rule as written. Event-driven traces,
  :math:`x(t) = x(t_0) e^{-(t - t_0)/\\tau}`, and on a pre spike
  ``w = clip(w + f_pre, w_min, w_max)`` followed by the pre traces' jumps
  (likewise on a post spike). At a step with both a pre and a post spike the
  pre pathway runs first (``order`` 0 and 1).
* ``step`` -- the learning engine's order per step: (1) every trace decays
  by ``exp(-1/tau_steps)``, (2) the step's spikes add their jumps, (3) each
  side's update term is evaluated with those traces (they include the
  same-step jumps) and remembered with the dependency ``x0``/``y0``,
  (4) at the end of each learning epoch ``w = clip(w + x0*pre_term +
  y0*post_term, w_min, w_max)`` and the epoch state resets.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from brian2.parsing.sympytools import sympy_to_str
from brian2.units.fundamentalunits import DIMENSIONLESS, get_unit

from neurodeploy.ir import Rule


def unit_text(dim) -> str:
    """Brian2 unit annotation for a model line: ``1`` or e.g. ``siemens``."""
    return "1" if dim == DIMENSIONLESS else repr(get_unit(dim))


def quantity_text(value: float, dim) -> str:
    return repr(float(value)) if dim == DIMENSIONLESS else f"{float(value)!r}*{unit_text(dim)}"


@dataclass(frozen=True)
class Brian2Model:
    model: str  # Synapses model equations
    on_pre: str  # on_pre statements
    on_post: str  # on_post statements
    regular: tuple  # (code, when, order) for Synapses.run_regularly, in order
    namespace: dict  # parameter name -> Brian2 Quantity


def _namespace(rule: Rule) -> dict:
    from brian2 import Quantity
    return {p.name: Quantity(p.value, dim=p.quantity.dim) for p in rule.parameters}


def reference_model(rule: Rule) -> Brian2Model:
    w_dim = rule.weight.dim
    trace_dims = {t.name: t.dim for t in rule.traces}
    wu = unit_text(w_dim)
    lo, hi = quantity_text(rule.weight.w_min, w_dim), quantity_text(rule.weight.w_max, w_dim)
    lines = [f"w : {wu}"]
    for t in rule.traces:
        lines.append(f"d{t.name}/dt = -{t.name} / ({t.tau!r}*second) : {unit_text(trace_dims[t.name])} (event-driven)")
    statements = {}
    for side, expr in (("pre", rule.weight.on_pre), ("post", rule.weight.on_post)):
        code = []
        if expr != 0:
            code.append(f"w = clip(w + ({sympy_to_str(expr)}), {lo}, {hi})")
        for t in rule.traces_of(side):
            code.append(f"{t.name} += {quantity_text(t.jump, trace_dims[t.name])}")
        statements[side] = "\n".join(code)
    return Brian2Model("\n".join(lines), statements["pre"], statements["post"], (), _namespace(rule))


def step_model(rule: Rule) -> Brian2Model:
    w_dim = rule.weight.dim
    trace_dims = {t.name: t.dim for t in rule.traces}
    wu = unit_text(w_dim)
    lo, hi = quantity_text(rule.weight.w_min, w_dim), quantity_text(rule.weight.w_max, w_dim)
    lines = [f"w : {wu}"]
    lines += [f"{t.name} : {unit_text(trace_dims[t.name])}" for t in rule.traces]
    lines += ["pre_spiked : 1", "post_spiked : 1", "x0 : 1", "y0 : 1",
              f"pre_term : {wu}", f"post_term : {wu}"]
    # np.exp, as Lava computes it, so that both decay by the same float
    decay = "\n".join(f"{t.name} = {t.name} * {float(np.exp(-1.0 / rule.tau_steps(t)))!r}" for t in rule.traces)
    statements = {}
    for side in ("pre", "post"):
        code = [f"{t.name} += {quantity_text(t.jump, trace_dims[t.name])}" for t in rule.traces_of(side)]
        code.append(f"{side}_spiked = 1")
        statements[side] = "\n".join(code)
    on_pre = sympy_to_str(rule.weight.on_pre) if rule.weight.on_pre != 0 else "0"
    on_post = sympy_to_str(rule.weight.on_post) if rule.weight.on_post != 0 else "0"
    evaluate = "\n".join([
        f"pre_term = pre_spiked * ({on_pre}) + (1 - pre_spiked) * pre_term",
        f"post_term = post_spiked * ({on_post}) + (1 - post_spiked) * post_term",
        "x0 = clip(x0 + pre_spiked, 0, 1)",
        "y0 = clip(y0 + post_spiked, 0, 1)",
        "pre_spiked = 0",
        "post_spiked = 0",
    ])
    apply = "\n".join([
        f"w = clip(w + epoch_end(t) * (x0 * pre_term + y0 * post_term), {lo}, {hi})",
        "x0 = x0 * (1 - epoch_end(t))",
        "y0 = y0 * (1 - epoch_end(t))",
    ])
    regular = ((decay, "before_synapses", 0), (evaluate, "after_synapses", 0), (apply, "end", 0))
    return Brian2Model("\n".join(lines), statements["pre"], statements["post"], regular, _namespace(rule))
