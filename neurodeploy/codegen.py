"""Standalone code generation: a rule compiled to scripts a person can read and deploy.

* :func:`emit_brian2` -- a Brian2 script (numpy and brian2 only) with the
  rule's parameters as named quantities and the same ``Synapses`` model as the
  ``brian2`` reference backend (:func:`~neurodeploy.brian2.model.reference_model`).
* :func:`emit_lava` -- a Lava script (numpy and lava only) with the plan's
  ``Loihi2FLearningRule`` written out literally (dw string, impulses, taus,
  epoch), the weight scale as a named constant, and the same ``LearningDense``
  wiring as :func:`neurodeploy.lava.backends.run_lava`. Its header states the
  traffic the trace scales assume (protocol, rate, seed, peak per trace); the
  fixed-point script warns at run time when a trace reaches 127. Constants under
  "parameters" each take effect when edited.
* :func:`emit_lava_cpu` -- for a rule the learning engine cannot express: a Lava
  script running the custom ``RuleSynapses`` process (imports neurodeploy),
  marked not deployable to the learning engine.
* :func:`write_compiled` -- writes them (and the plans and their traffic as JSON) atomically.

Both scripts drive the synapses with the default protocol (10 pre x 10 post,
100 steps of 10 Hz Poisson spikes, ``numpy.random.default_rng(0)``, pre drawn
before post, as :func:`neurodeploy.protocol.poisson`) when run, print the
final weights (n_post, n_pre) in rule units, and expose ``simulate(...)``
returning the weight after every step, (steps, n_post, n_pre).

Text from the rule file only ever reaches the scripts inside docstrings and
comments (escaped) or as ``repr`` literals; parameter names are identifiers
checked by the loader and are bound as module names only when they cannot
shadow anything the script uses.
"""
from __future__ import annotations

import builtins
import contextlib
import json
import keyword
import re
import math
import os
import tempfile

import numpy as np

from neurodeploy.brian2.model import (b2name, bounds_code, brian2_names, named_parameter, reference_model,
                                               unit_text)
from neurodeploy.errors import UnsupportedError
from neurodeploy.files import follow_umask
from neurodeploy.spec.ir import Rule
from neurodeploy.spec.units import _ALIASES, _QUANTITY, DIMENSIONLESS, Quantity, lookup_unit

#: The protocol the emitted scripts run when executed as scripts.
SCRIPT_PROTOCOL = {"n_pre": 10, "n_post": 10, "steps": 100, "rate": 10.0, "seed": 0}
#: A fixed-point trace at this value is saturated (7 bits).
TRACE_LIMIT = 127
TARGETS = ("brian2", "lava")

_BRIAN2_SCRIPT_NAMES = {
    "np", "b2", "second", "Quantity", "get_or_create_dimension",
    "NAMESPACE", "MODEL", "ON_PRE", "ON_POST", "WEIGHT_MIN", "WEIGHT_MAX", "WEIGHT_INIT", "WEIGHT_DIM",
    "DELAYED", "REGULAR", "REST", "TimedArray",
    "DT_SECONDS", "N_PRE", "N_POST", "STEPS", "RATE_HZ", "SEED",
    "poisson_trains", "simulate", "main",
}


def version() -> str:
    from neurodeploy.version import __version__
    return __version__


# -- safe text -------------------------------------------------------------------
def _python_expression(text: str, named: set) -> str | None:
    """``text`` (a parameter's definition, which the loader parsed with the rule language's whitelist)
    as Python for the script, when it is plain arithmetic of numbers and script variables (``named``);
    None otherwise (a function call, a name the script renames)."""
    import ast

    try:
        tree = ast.parse(" ".join(str(text).split()), mode="eval")
    except (SyntaxError, ValueError, RecursionError):
        return None
    allowed = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Constant, ast.Name, ast.Load, ast.Add, ast.Sub,
               ast.Mult, ast.Div, ast.Pow, ast.USub, ast.UAdd)
    for node in ast.walk(tree):
        if not isinstance(node, allowed) or (isinstance(node, ast.Name) and node.id not in named) or (
                isinstance(node, ast.Constant) and (isinstance(node.value, bool)
                                                    or not isinstance(node.value, (int, float)))):
            return None
    return ast.unparse(tree)


def _defined_first(parameters) -> list:
    """``parameters`` in file order, except that a parameter defined from others comes after them."""
    import re as _re

    names = {p.name for p in parameters}
    placed, order, pending = set(), [], list(parameters)
    while pending:
        progress = False
        for p in list(pending):
            needs = set(_re.findall(r"[A-Za-z_]\w*", p.expression or "")) & names - {p.name}
            if needs <= placed:
                order.append(p)
                placed.add(p.name)
                pending.remove(p)
                progress = True
        if not progress:  # cannot happen for a loaded rule (cycles are refused); keep file order
            return order + pending
    return order


def _clean(text) -> str:
    """``text`` without control characters other than newline and tab."""
    text = str(text).replace("\r\n", "\n").replace("\r", "\n")
    return "".join(c for c in text if c in "\n\t" or (c.isprintable() or c == " "))


def _doc(text) -> str:
    """``text`` made safe inside a triple-quoted (non-raw) docstring."""
    return _clean(text).replace("\\", "\\\\").replace('"""', '\\"\\"\\"')


def _comment(text, indent: str = "") -> list:
    """``text`` as ``# `` comment lines."""
    return [f"{indent}# {line}".rstrip() for line in _clean(text).split("\n")]


def _string_constant(name: str, text: str) -> list:
    """``NAME = '...'``, or one quoted line per line of a multi-line ``text``."""
    lines = text.split("\n")
    if len(lines) == 1:
        return [f"{name} = {text!r}"]
    return [f'{name} = "\\n".join(['] + [f"    {line!r}," for line in lines] + ["])"]


def _g(value: float) -> str:
    return f"{value:.6g}"


# -- Brian2 quantities as source ---------------------------------------------------
def _dim_source(dim) -> str:
    return f"get_or_create_dimension({list(int(d) if float(d).is_integer() else float(d) for d in dim._dims)!r})"


def _quantity_source(q: Quantity) -> tuple:
    """(Python expression, names to import from brian2.units) giving exactly ``q`` in Brian2."""
    if q.dim == DIMENSIONLESS:
        return repr(float(q.value)), set()
    match = _QUANTITY.match(q.text.split("=")[-1]) if q.text else None
    if match and match.group("unit"):
        unit_name = match.group("unit")
        unit = lookup_unit(unit_name)
        number = float(match.group("number"))
        if (unit is not None and unit_name not in _ALIASES and unit[1] == q.dim
                and float(number * unit[0]) == q.value):
            return f"{number!r} * {unit_name}", {unit_name}
    return f"Quantity({float(q.value)!r}, dim={_dim_source(q.dim)})", {"Quantity", "get_or_create_dimension"}


def _unit_name(dim) -> str:
    return unit_text(dim)


# -- rule text shared by both headers ----------------------------------------------
def _rule_lines(rule: Rule) -> list:
    wu = "" if rule.weight.dim == DIMENSIONLESS else f" ({_unit_name(rule.weight.dim)})"
    lines = ["Traces (exponential decay, jump at each spike of their neuron):"]
    for t in rule.traces:
        tau = t.tau_text or f"{_g(t.tau * 1e3)} ms"
        jump = t.jump_text or _g(t.jump)
        rest = f"({_g(t.rest)} - {t.name})" if t.rest else f"-{t.name}"
        if t.of == "synapse":
            event = f"{t.name} += {t.on_pre_text or 0} at each pre spike, += {t.on_post_text or 0} at each post spike"
        elif t.of == "reward":
            event = f"{t.name} += {jump} * reward every step"
        else:
            late = f" {_g(t.delay * 1e3)} ms after" if t.delay else " at"
            event = f"{t.name} += {jump}{late} each {t.of} spike"
        lines.append(f"    {t.name} ({t.of}): d{t.name}/dt = {rest} / tau_{t.name}, tau_{t.name} = {tau}; {event}")
    lo, hi = _g(rule.weight.w_min), _g(rule.weight.w_max)
    lines.append(f"Weight w{wu}, clipped to [{lo}, {hi}], initially {_g(rule.weight.w_init)}:")
    for side, text, expr in (("pre", rule.weight.on_pre_text, rule.weight.on_pre),
                             ("post", rule.weight.on_post_text, rule.weight.on_post)):
        lines.append(f"    at a {side} spike:  w = clip(w + ({text or expr}), {lo}, {hi})")
    if rule.weight.continuous != 0:
        lines.append(f"    every step dt:     w = clip(w + dt * ({rule.weight.continuous_text}), {lo}, {hi})")
    lines.append("The update reads the traces just before the spike's own jump. When a pre and a post")
    lines.append("spike fall in the same step, the pre update runs first.")
    if rule.parameters:
        lines.append("Parameters: " + ", ".join(f"{p.name} = {p.quantity.text}" for p in rule.parameters))
    lines.append(f"Time step dt = {_g(rule.dt * 1e3)} ms; learning epoch {rule.t_epoch} step(s).")
    return lines


def _header(rule: Rule, title: str) -> list:
    lines = [f"{rule.name} -- {title}, generated by neurodeploy {version()}.", "",
             f"Rule:      {rule.name} (from {rule.source or 'an in-memory rule'})"]
    if rule.description:
        desc = " ".join(rule.description.split())
        lines.append(f"About:     {desc}")
    if rule.citation:
        lines.append(f"Citation:  {' '.join(rule.citation.split())}")
    lines += ["", "The rule", "--------"] + _rule_lines(rule)
    return lines


def _protocol_constants(dt: float) -> list:
    p = SCRIPT_PROTOCOL
    return [
        "# -- time step and the input protocol run by main() ------------------------------",
        f"DT_SECONDS = {float(dt)!r}  # simulation time step, seconds",
        f"N_PRE, N_POST, STEPS = {p['n_pre']}, {p['n_post']}, {p['steps']}",
        f"RATE_HZ = {float(p['rate'])!r}  # Poisson rate of every neuron",
        f"SEED = {p['seed']}  # numpy.random.default_rng seed",
    ]


_POISSON_FUNCTION = '''\
def poisson_trains(n_pre=N_PRE, n_post=N_POST, steps=STEPS, rate_hz=RATE_HZ, seed=SEED):
    """Independent Bernoulli spikes, probability rate * dt per step.

    One generator: the pre raster (n_pre, steps) is drawn first, then the
    post raster (n_post, steps). Post spikes are imposed (no neuron model).
    """
    p = rate_hz * DT_SECONDS
    rng = np.random.default_rng(seed)
    pre = rng.random((n_pre, steps)) < p
    post = rng.random((n_post, steps)) < p
    return pre, post
'''


def _main_function(units: str) -> str:
    """The emitted scripts' entry point: 100 steps of Poisson input, print the final weights."""
    return f'''def main():
    pre, post = poisson_trains()
    w0 = np.full((N_POST, N_PRE), WEIGHT_INIT)
    trajectory = simulate(pre, post, w0)
    print(f"final weights after {{STEPS}} steps, (n_post, n_pre) = {{trajectory.shape[1:]}}{units}:")
    for row in trajectory[-1]:
        print(" ".join(f"{{value:.10g}}" for value in row))


if __name__ == "__main__":
    main()'''


# -- Brian2 ----------------------------------------------------------------------
def emit_brian2(rule: Rule) -> str:
    """Source of a standalone Brian2 script running ``rule`` as the ``brian2`` backend does."""
    model = reference_model(rule)
    w_dim = rule.weight.dim
    doc = _header(rule, "standalone Brian2 simulation")
    doc += ["", "Usage", "-----",
            f"    python {rule.name}_brian2.py   # prints the final weights, (n_post, n_pre)",
            "    simulate(pre, post, w0, dt) -> weights after every step, (steps, n_post, n_pre)",
            "", "Weights are in the rule's units (SI); only numpy and brian2 are needed."]

    # parameters: named module constants when the name is safe, else only in NAMESPACE
    sources = {p.name: _quantity_source(p.quantity) for p in rule.parameters}
    imports = {"second"}
    for _, names in sources.values():
        imports |= names
    # units the model text writes (``0.004*volt``): imported and in NAMESPACE
    text_units = set()
    for dim in {w_dim} | {t.dim for t in rule.traces}:
        if dim != DIMENSIONLESS:
            text_units |= set(re.findall(r"[A-Za-z_]\w*", unit_text(dim)))
    imports |= text_units
    rests = [t for t in rule.traces if t.rest]
    if w_dim != DIMENSIONLESS or any(t.dim != DIMENSIONLESS for t in rests):
        imports |= {"Quantity", "get_or_create_dimension"}
    taken = _BRIAN2_SCRIPT_NAMES | imports | set(dir(builtins))
    named = {p.name for p in rule.parameters
             if p.name not in taken and not keyword.iskeyword(p.name) and not p.name.startswith("_")}
    unit_imports = sorted(n for n in imports if n not in ("Quantity", "get_or_create_dimension"))
    core_imports = sorted(n for n in imports if n in ("Quantity", "get_or_create_dimension"))

    out = ['"""' + _doc("\n".join(doc)) + '\n"""', "import numpy as np", "", "import brian2 as b2"]
    if core_imports:
        out.append(f"from brian2 import {', '.join(core_imports)}")
    out.append(f"from brian2.units import {', '.join(unit_imports)}")
    out += ["", "# -- parameters of the rule, as written in the rule file ---------------------------"]
    for p in _defined_first(rule.parameters):
        if p.name in named:
            line = f"{p.name} = {sources[p.name][0]}"
            derived = _python_expression(p.expression, named) if p.expression else None
            if derived is not None:  # defined from others: the same expression, so an edit of those carries over
                out.append(f"{p.name} = {derived}  # {float(p.quantity.value)!r} (SI) at the rule file's values")
            elif p.expression:  # an expression the script cannot write (a function, a renamed name): its value
                out.append(f"{line}  # = {_clean(p.expression)}")
            else:
                out.append(f"{line}  # {_clean(p.quantity.text)}" if p.quantity.text and p.quantity.dim != DIMENSIONLESS
                           else line)
    names = brian2_names(rule)
    out.append("# the names the model text can use. It writes each name of the rule as r<position>_<name>")
    out.append("# (" + ", ".join(f"{k} -> {v}" for k, v in list(names.items())[:2] if k != "w") + ", ...), so that")
    out.append("# no rule name can mean a Brian2 unit, constant, function or synapse variable (pi, e, mV, i, t, N...).")
    if rule.parameters or text_units:
        out.append("NAMESPACE = {")
        for name in sorted(text_units):
            out.append(f"    {name!r}: {name},")
        for p in rule.parameters:
            out.append(f"    {b2name(rule, p.name)!r}: {p.name if p.name in named else sources[p.name][0]},")
        out.append("}")
    else:
        out.append("NAMESPACE = {}")

    out += ["", "# -- the plastic synapses ------------------------------------------------------------",
            "# Traces decay exactly, every step (clock-driven):" if rule.clock_driven else
            "# Traces decay exactly between events (event-driven: at each event, from nd_lastupdate):"]
    for t in rule.traces:
        jump = (f"on_pre {t.on_pre_text or 0}, on_post {t.on_post_text or 0}" if t.of == "synapse"
                else f"jump {t.jump_text or t.jump}" + (" x reward" if t.of == "reward" else ""))
        extra = (f", rest {t.rest!r}" if t.rest else "") + (f", {t.delay * 1e3:g} ms after the spike" if t.delay else "")
        out += _comment(f"  {b2name(rule, t.name)} = {t.name} ({t.of} trace): tau_{t.name} = {t.tau_text or t.tau} -> {t.tau!r} s, {jump}{extra}")
    out += _string_constant("MODEL", model.model)
    out.append("# at a pre spike: update w from the traces as they are, clip, then the pre traces jump")
    out += _string_constant("ON_PRE", model.on_pre)
    out.append("# at a post spike: likewise with the post traces")
    out += _string_constant("ON_POST", model.on_post)
    if model.delayed:
        out.append("# jumps that come a fixed delay after the spike: (pathway, side, delay in s, statements)")
        out.append("DELAYED = [")
        for name, side, delay, code in model.delayed:  # the delay parameter, where the traces name one
            texts = {t.delay_text for t in rule.traces
                     if t.of == side and t.delay and rule.delay_steps(t) * rule.dt == delay}
            param = named_parameter(rule, texts.pop()) if len(texts) == 1 else None
            out.append(f"    ({name!r}, {side!r}, {param} / second, {code!r}),  # rounded to whole steps by Brian2"
                       if param is not None and param in named else f"    ({name!r}, {side!r}, {delay!r}, {code!r}),")
        out.append("]")
    if model.regular:
        out.append("# every step: (statements, when)" + (" -- reward_input(t, j) is the third factor" if model.reward else ""))
        out.append("REGULAR = [")
        out += [f"    ({code!r}, {when!r})," for code, when, _ in model.regular]
        out.append("]")
    if rests:
        out.append("# traces that relax to a non-zero value start there")
        out.append("REST = {")
        for t in rests:
            source = named_parameter(rule, t.rest_text)  # a rest named by a parameter starts at its value
            if source is not None and source in named:
                out.append(f"    {b2name(rule, t.name)!r}: {source},")
            elif t.dim == DIMENSIONLESS:
                out.append(f"    {b2name(rule, t.name)!r}: {float(t.rest)!r},")
            else:
                out.append(f"    {b2name(rule, t.name)!r}: Quantity({float(t.rest)!r}, dim={_dim_source(t.dim)}),")
        out.append("}")
    unit = _unit_name(w_dim)
    lo, hi = bounds_code(rule)
    out.append(f"# hard bounds of w: clip(w, {lo}, {hi}) in the statements above "
               f"({unit if unit != '1' else 'dimensionless'})")
    init = named_parameter(rule, rule.weight.init_text)
    out.append(f"WEIGHT_INIT = {init}  # initial weight of every synapse in main() (the parameter above)"
               if init is not None and init in named else
               f"WEIGHT_INIT = {float(rule.weight.w_init)!r}  # initial weight of every synapse in main()")
    if w_dim != DIMENSIONLESS:
        out.append(f"WEIGHT_DIM = {_dim_source(w_dim)}  # {unit}")
    out.append("")
    out += _protocol_constants(rule.dt)
    out += ["", "", _POISSON_FUNCTION.rstrip("\n"), "", ""]
    set_w = ("syn.w[:] = np.asarray(w0, dtype=float)[j, i]" if w_dim == DIMENSIONLESS
             else "syn.w[:] = Quantity(np.asarray(w0, dtype=float)[j, i], dim=WEIGHT_DIM)")
    reward_arg = ", reward=None" if model.reward else ""
    reward_doc = ("\n    reward: third-factor input (n_post, steps) or (steps,); default none."
                  if model.reward else "")
    pathways = "on_pre={\"pre\": ON_PRE}, on_post={\"post\": ON_POST}, namespace=NAMESPACE"
    setup = ""
    if model.delayed or model.reward:
        pathways = "on_pre=on_pre, on_post=on_post, namespace=namespace"
        setup += "    on_pre, on_post, namespace = {\"pre\": ON_PRE}, {\"post\": ON_POST}, dict(NAMESPACE)\n"
    if model.delayed:
        setup += ("    for name, side, _, code in DELAYED:\n"
                  "        (on_pre if side == \"pre\" else on_post)[name] = code\n")
    if model.reward:
        setup += ("    reward = np.zeros((post.shape[0], pre.shape[1])) if reward is None else np.asarray(reward, dtype=float)\n"
                  "    reward = np.broadcast_to(reward, (post.shape[0], pre.shape[1]))\n"
                  "    namespace[\"reward_input\"] = b2.TimedArray(np.ascontiguousarray(reward.T), dt=dt)\n")
    after = ""
    if model.delayed:
        after += ("    for order, (name, _, delay, _) in enumerate(DELAYED, start=2):\n"
                  "        getattr(syn, name).order = order\n"
                  "        getattr(syn, name).delay = delay * second\n")
    if model.regular:
        after += ("    for code, when in REGULAR:\n"
                  "        syn.run_regularly(code, when=when, dt=dt)\n")
    if rests:
        after += ("    for name, value in REST.items():\n"
                  "        setattr(syn, name, value)\n")
    out.append(f'''\
def simulate(pre, post, w0, dt=DT_SECONDS{reward_arg}, mask=None):
    """Run the plastic synapses, all-to-all or on a mask, on imposed spike rasters.

    pre: bool (n_pre, steps); post: bool (n_post, steps).
    w0: initial weights (n_post, n_pre) in rule units (SI).
    dt: time step, seconds or a Brian2 quantity.{reward_doc}
    mask: bool (n_post, n_pre), the synapses that exist; default all to all.
    Returns the weight after every step, (steps, n_post, n_pre), rule units (SI);
    a synapse the mask leaves out has no weight: NaN.
    """
    b2.prefs.codegen.target = "numpy"
    if not isinstance(dt, b2.Quantity):
        dt = dt * second
    pre, post = np.asarray(pre, dtype=bool), np.asarray(post, dtype=bool)
    n_pre, steps = pre.shape
    n_post = post.shape[0]
    # spikes as (neuron, time) events
    pre_i, pre_t = np.nonzero(pre)
    post_i, post_t = np.nonzero(post)
    pre_group = b2.SpikeGeneratorGroup(n_pre, pre_i, pre_t * dt, dt=dt, name="pre")
    post_group = b2.SpikeGeneratorGroup(n_post, post_i, post_t * dt, dt=dt, name="post")
{setup}    syn = b2.Synapses(pre_group, post_group, model=MODEL, {pathways},
                      dt=dt, method="exact", name="plastic")
    if mask is None:
        syn.connect()  # every pre to every post
    else:  # only the synapses that exist, mask[post, pre]
        post_index, pre_index = np.nonzero(np.asarray(mask, dtype=bool))
        syn.connect(i=pre_index, j=post_index)
    # a pre and a post spike in the same step: the pre pathway runs first
    syn.pre.order = 0
    syn.post.order = 1
{after}    i, j = np.asarray(syn.i[:]), np.asarray(syn.j[:])  # pre and post index of each synapse
    {set_w}
    # record w at the end of every step, after both pathways
    monitor = b2.StateMonitor(syn, "w", record=True, when="end", order=100, dt=dt, name="weights")
    net = b2.Network(pre_group, post_group, syn, monitor)
    net.run(steps * dt, namespace={{}})
    trajectory = np.full((steps, n_post, n_pre), np.nan)  # NaN: no such synapse
    trajectory[:, j, i] = np.asarray(monitor.w[:]).T
    return trajectory


{_main_function("")}''')
    return "\n".join(out) + "\n"


# -- Lava ------------------------------------------------------------------------
_SIGN_MODES = {"excitatory": "EXCITATORY", "inhibitory": "INHIBITORY", "mixed": "MIXED"}

_BOUNDED_FLOAT_MODEL = '''\
@implements(proc=LearningDense, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyLearningDenseModelFloatBounded(PyLearningDenseModelFloat):
    """Lava's float LearningDense model, weights clipped to proc_params['weight_bounds'].

    The stock float model clips only the sign; the fixed-point model and the
    chip saturate at the 8-bit range. Clipping here keeps the rule's hard bounds.
    """

    def _saturate_synaptic_variable(self, name, values):
        values = super()._saturate_synaptic_variable(name, values)
        bounds = self.proc_params.get("weight_bounds", None)
        if name == "weights" and bounds is not None:
            values = np.clip(values, bounds[0], bounds[1])
        return values
'''


def traffic_text(traffic: dict | None) -> str:
    """One line: the spike traffic a plan was scaled on (:func:`neurodeploy.lava.deploy.describe_traffic`)."""
    if not traffic:
        return "not stated (the plan was given directly)"
    parts = [str(traffic.get("protocol"))]
    parts.append(f"{traffic.get('n_pre')} pre x {traffic.get('n_post')} post, {traffic.get('steps')} steps")
    if traffic.get("rate_hz") is not None:
        parts.append(f"{_g(traffic['rate_hz'])} Hz")
    if traffic.get("seed") is not None:
        parts.append(f"seed {traffic['seed']}")
    return ", ".join(parts)


def _traffic_lines(rule: Rule, plan, traffic: dict | None) -> list:
    fixed = plan.mode == "fixed"
    lines = ["", "The traffic the scaling assumes", "-------------------------------",
             f"Trace scales were chosen on: {traffic_text(traffic)}."]
    for t in plan.traces:
        trace = rule.trace(t.name)
        limit = f" of {TRACE_LIMIT} ({100 * t.peak_lava / TRACE_LIMIT:.0f}% of the 7-bit range)" if fixed else " (float: no limit)"
        lines.append(f"    peak of trace {t.name} ({trace.of}, {t.slot}): {_g(t.peak)} rule units = "
                     f"{_g(t.peak_lava)} Lava units{limit}")
    if fixed:
        lines += [f"Denser or more synchronous spikes push a trace to {TRACE_LIMIT}, where it saturates and the",
                  "rule is no longer the rule: run_lava() prints a warning when that happens. Recompile",
                  "for your traffic: neurodeploy compile RULE --target lava --rate HZ | --protocol NAME | --spikes FILE.npz"]
    return lines


def _reads(rule: Rule, text: str, name: str) -> bool:
    """True when a value written ``text`` names or reads the parameter ``name``."""
    if named_parameter(rule, text) == name:
        return True
    return bool(text) and re.search(rf"(?<![\w.]){re.escape(name)}(?!\w)", text) is not None


def parameter_destinations(rule: Rule, slots: dict) -> list:
    """(parameter, [where the learning-engine plan bakes it in]) for every parameter of the rule."""
    out = []
    for p in rule.parameters:
        where = []
        symbol_names = set()
        for expr in (rule.weight.on_pre, rule.weight.on_post, rule.weight.continuous):
            symbol_names |= {s.name for s in getattr(expr, "free_symbols", ())}
        for t in rule.traces_of("synapse"):
            for expr in (t.on_pre, t.on_post):
                symbol_names |= {s.name for s in getattr(expr, "free_symbols", ())}
        if p.name in symbol_names:
            where.append("the constants S*2^E of DW")
        for t in rule.traces:
            slot = slots.get(t.name)
            label = slot.upper() if slot else t.name
            if _reads(rule, t.tau_text, p.name):
                where.append(f"{label}_TAU" if slot else f"the decay of trace {t.name}")
            if _reads(rule, t.jump_text, p.name) or (t.jump_expr is not None and p.name in
                                                      {s.name for s in t.jump_expr.free_symbols}):
                where.append(f"{label}_IMPULSE" if slot else f"the jump of trace {t.name}")
        if any(_reads(rule, text, p.name) for text in rule.weight.bounds_text):
            where.append("WEIGHT_SCALE and WEIGHT_BOUNDS_LAVA (the bounds)")
        if _reads(rule, rule.weight.init_text, p.name):
            where.append("WEIGHT_INIT")
        out.append((p.name, where))
    return out


def _destination_lines(rule: Rule, slots: dict, mode: str) -> list:
    lines = ["", "The rule's parameters are compiled into the plan", "------------------------------------------------",
             "This script has no variable named after a parameter of the rule: each is baked into the",
             f"{mode} plan's constants below (quantized and scaled together in fixed point), so editing",
             "one here would not re-plan. To change a parameter, edit the rule file and re-plan:",
             f"    neurodeploy compile {rule.source or 'RULE.yaml'} --target lava --mode {mode} --out DIR "
             "[--rate HZ | --protocol NAME | --spikes FILE.npz]",
             "Where each went:"]
    for name, where in parameter_destinations(rule, slots):
        lines.append(f"    {name}: " + (", ".join(where) if where else "not used by the learning engine"))
    return lines


def emit_lava(rule: Rule, plan, traffic: dict | None = None) -> str:
    """Source of a standalone Lava script running ``rule`` under ``plan`` as ``run_lava`` does.

    ``traffic``: what the plan's trace scales assume (:func:`neurodeploy.lava.deploy.describe_traffic`),
    stated in the header and, for the fixed plan, in the saturation warning."""
    from neurodeploy.compile.loihi import RNG_SEED
    from neurodeploy.compile.lowering import lower

    if plan.mode not in ("fixed", "float"):
        raise ValueError(f"unknown plan mode {plan.mode!r}")
    if plan.three_factor:
        raise UnsupportedError("three-factor rules (a reward trace) have no standalone learning-engine script "
                               "yet: deploy them with neurodeploy.lava.deploy (mode float)")
    fixed = plan.mode == "fixed"
    select_tag = "fixed_pt" if fixed else "floating_pt"
    lowered = lower(rule)
    slots = dict(lowered.trace_slots)
    trace_of_slot = {slot: lowered.rule.trace(name) for name, slot in slots.items()}  # negative jumps rewritten

    doc = _header(rule, f"standalone Lava simulation ({plan.mode} plan, {select_tag})")
    doc += ["", "On the learning engine", "----------------------",
            "Once per learning epoch, dw = x0 * f_pre + y0 * f_post, expanded into products",
            "S * 2^E * dependency * traces * w (x0/y0: a pre/post spike in the epoch).",
            "Traces: " + ", ".join(f"{name} -> {slot}" for name, slot in slots.items()) + ".",
            f"Weights: w_rule = WEIGHT_SCALE * w_lava, WEIGHT_SCALE = {plan.weight_scale!r};",
            f"Lava bounds {list(plan.w_lava_bounds)} ({plan.sign_mode}).",
            f"Loihi2FLearningRule dw = {plan.dw}"]
    if plan.band:
        doc.append("Predicted deviation from the exact engine (fraction of the weight range): "
                   + ", ".join(f"{k} {_g(v)}" for k, v in sorted(plan.band.items())) + ".")
    doc += _traffic_lines(rule, plan, traffic)
    doc += _destination_lines(rule, slots, plan.mode)
    doc += ["", "Usage", "-----",
            f"    python {rule.name}_lava.py   # prints the final weights in rule units, (n_post, n_pre)",
            "    simulate(pre, post, w0_rule) -> weights after every step in rule units, (steps, n_post, n_pre)",
            "", "Every constant under 'parameters' takes effect when edited, as written (DW, impulses and",
            "taus are Lava's, not the rule's: the scaling was chosen for the compiled values); the",
            "constants under 'the compiled plan' follow from the rule: recompile to change them.",
            "Only numpy and lava are needed."]

    out = ['"""' + _doc("\n".join(doc)) + '\n"""']
    out.append("# Plan notes (what this deployment approximates):")
    if plan.notes:
        for note in plan.notes:
            out += _comment(f"  - {note}")
    else:
        out.append("#   - none: every constant is exact")
    out += ["import sys", "", "import numpy as np", ""]
    lava_imports = [
        "from lava.magma.core.learning.learning_rule import Loihi2FLearningRule",
        "from lava.magma.core.run_conditions import RunSteps",
        "from lava.magma.core.run_configs import Loihi2SimCfg",
        "from lava.proc.dense.process import LearningDense",
        "from lava.proc.io.source import RingBuffer",
        "from lava.proc.monitor.process import Monitor",
        "from lava.utils.weightutils import SignMode",
    ]
    if not fixed:
        lava_imports = [
            "from lava.magma.core.decorator import implements, requires, tag",
            "from lava.magma.core.resources import CPU",
            "from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol",
            "from lava.proc.dense.models import PyLearningDenseModelFloat",
        ] + lava_imports
    out += sorted(lava_imports)

    w_unit = _unit_name(rule.weight.dim)
    w_unit_text = "dimensionless" if w_unit == "1" else w_unit
    kwargs = plan.learning_rule_kwargs()
    out += ["", "# -- parameters: each takes effect when edited ------------------------------------------",
            f"WEIGHT_INIT = {float(rule.weight.w_init)!r}  # rule units, every synapse in main()",
            "# dw, one product per line (S*2^E  dependency  factors  <- the rule's term):"]
    for p in plan.products:
        off = "exact" if p.rel_error <= 1e-12 else f"{100 * p.rel_error:.2f}% off"
        shift = f", product shifted right {p.shift} bits" if p.shift else ""
        out += _comment(f"  {p.text:<28} <- {p.term}: wanted {_g(p.requested)}, "
                        f"got {_g(p.realised)} ({off}{shift})")
    out.append(f"DW = {plan.dw!r}")
    emitted = {"dw", "t_epoch"}
    for t in plan.traces:
        trace = trace_of_slot.get(t.slot) or rule.trace(t.name)
        up = t.slot.upper()
        out += _comment(f"trace {t.name} ({trace.of}) -> {t.slot}: {_g(t.scale)} Lava units per rule unit, "
                        f"peak on the assumed traffic {_g(t.peak_lava)}" + (f" of {TRACE_LIMIT}" if fixed else ""))
        out.append(f"{up}_IMPULSE = {float(kwargs[f'{t.slot}_impulse'])!r}  # jump {_g(trace.jump)} x {_g(t.scale)}")
        out.append(f"{up}_TAU = {float(kwargs[f'{t.slot}_tau'])!r}  # steps: tau_{trace.name} = {_clean(trace.tau_text) or _g(trace.tau) + ' s'} "
                   f"at dt = {_g(rule.dt * 1e3)} ms")
        emitted |= {f"{t.slot}_impulse", f"{t.slot}_tau"}
    if set(kwargs) != emitted:
        raise ValueError(f"plan has learning-rule arguments the emitter does not know: {sorted(set(kwargs) - emitted)}")
    out.append(f"T_EPOCH = {int(plan.t_epoch)}  # steps per learning epoch"
               + (" (continuous terms' constants assume this epoch)" if rule.weight.continuous != 0 else ""))
    out.append(f"RNG_SEED = {int(RNG_SEED)}  # seed of Lava's stochastic rounding")
    out.append(f"SIGN_MODE = SignMode.{_SIGN_MODES[plan.sign_mode]}  # sign of the weights"
               + ("; fixes the 8-bit range" if fixed else ""))
    out += [line if not line.startswith("DT_SECONDS") else
            f"DT_SECONDS = {float(rule.dt)!r}  # seconds: main()'s spike probability is RATE_HZ * DT_SECONDS "
            "(the taus are in steps)" for line in _protocol_constants(rule.dt)[1:]]

    out += ["", "# -- the compiled plan: follows from the rule and the traffic; recompile to change -------"]
    if fixed:
        scale_comment = (f"rule units ({w_unit_text}) per Lava weight unit: the larger bound "
                         f"{_g(max(abs(rule.weight.w_min), abs(rule.weight.w_max)))} / 255 (8-bit mantissa)")
    else:
        scale_comment = f"rule units ({w_unit_text}) per Lava weight unit (float)"
    out.append(f"WEIGHT_SCALE = {float(plan.weight_scale)!r}  # {scale_comment}")
    lo_rule, hi_rule = (float(b) * plan.weight_scale for b in plan.w_lava_bounds)
    bounds_comment = (f"= [{_g(lo_rule)}, {_g(hi_rule)}] in rule units (rule bounds "
                      f"[{_g(rule.weight.w_min)}, {_g(rule.weight.w_max)}])")
    if fixed:
        out.append("# the engine saturates the weights at the 8-bit range of the sign mode " + bounds_comment)
        out.append("WEIGHT_BOUNDS_LAVA = {SignMode.EXCITATORY: (0, 255), SignMode.INHIBITORY: (-255, 0),")
        out.append("                      SignMode.MIXED: (-256, 255)}[SIGN_MODE]")
    else:
        out.append(f"WEIGHT_BOUNDS_LAVA = {tuple(float(b) for b in plan.w_lava_bounds)!r}  # {bounds_comment}")
    out.append(f'SELECT_TAG = "{select_tag}"  # Lava model: {"bit-approximate fixed point" if fixed else "floating point"}')
    if fixed:
        out.append(f"TRACE_LIMIT = {TRACE_LIMIT}  # 7-bit traces saturate here")
        out.append(f"ASSUMED_TRAFFIC = {traffic_text(traffic)!r}  # what the trace impulses were scaled for")
        out.append("TRACES = {" + ", ".join(f"{t.slot!r}: {t.name!r}" for t in plan.traces) + "}  # Lava trace -> rule trace")
    out += ["", ""]
    if not fixed:
        out += [_BOUNDED_FLOAT_MODEL.rstrip("\n"), "", ""]

    rule_args = ",\n".join(f"        {slot}_impulse={slot.upper()}_IMPULSE, {slot}_tau={slot.upper()}_TAU"
                           for slot in (t.slot for t in plan.traces))
    if fixed:
        to_lava = '''\
def to_lava(w_rule):
    """Rule units -> Lava weights: rounded to whole units and saturated at the 8-bit bounds."""
    scaled = np.asarray(w_rule, dtype=float) / WEIGHT_SCALE
    return np.clip(np.rint(scaled), *WEIGHT_BOUNDS_LAVA).astype(int)'''
        run_cfg = '''\
def run_config():
    """Lava's bit-approximate fixed-point models (as the chip computes)."""
    return Loihi2SimCfg(select_tag=SELECT_TAG)


def warn_saturation(traces):
    """Print a warning for each trace that reached TRACE_LIMIT (traces: slot -> (steps, n) values)."""
    for slot, values in traces.items():
        hit = np.nonzero(np.asarray(values).reshape(len(values), -1).max(axis=1) >= TRACE_LIMIT)[0]
        if hit.size:
            print(f"warning: trace {TRACES[slot]} ({slot}) reached {TRACE_LIMIT}, the 7-bit limit, at step "
                  f"{hit[0]} ({hit.size} steps in all): the spikes are denser than the traffic the plan was "
                  f"scaled for ({ASSUMED_TRAFFIC}); recompile with --rate, --protocol or --spikes for yours",
                  file=sys.stderr)'''
        probe = '''
    trace_monitors = {}
    for slot in TRACES:  # the 7-bit traces, to warn when one saturates
        trace_monitors[slot] = Monitor()
        trace_monitors[slot].probe(getattr(conn, slot), steps)'''
        read = '''
        traces = {slot: np.asarray(m.get_data()[conn.name][slot]) for slot, m in trace_monitors.items()}'''
        after = "\n    warn_saturation(traces)"
    else:
        to_lava = '''\
def to_lava(w_rule):
    """Rule units -> Lava weights (float: a plain scaling)."""
    return np.asarray(w_rule, dtype=float) / WEIGHT_SCALE'''
        run_cfg = '''\
def run_config():
    """Lava's floating-point models, LearningDense with its weights clipped to the bounds."""
    return Loihi2SimCfg(select_tag=SELECT_TAG,
                        exception_proc_model_map={LearningDense: PyLearningDenseModelFloatBounded})'''
        probe = read = after = ""
    out.append(f'''\
def learning_rule():
    """The Loihi 2 learning rule: dw is applied at the end of every epoch of T_EPOCH steps."""
    return Loihi2FLearningRule(
        dw=DW,
{rule_args},
        t_epoch=T_EPOCH,
        rng_seed=RNG_SEED,
    )


{to_lava}


def from_lava(w_lava):
    """Lava weights -> rule units."""
    return np.asarray(w_lava, dtype=float) * WEIGHT_SCALE


{run_cfg}


def run_lava(w0_lava, pre, post):
    """LearningDense for pre.shape[1] steps; the weights after every step, (steps, n_post, n_pre), Lava units.

    Pre spikes enter s_in, post spikes the back-propagating input s_in_bap
    (post spikes are imposed); a Monitor records the weights every step.
    """
    steps = pre.shape[1]
    pre_source = RingBuffer(data=np.asarray(pre).astype(float))
    post_source = RingBuffer(data=np.asarray(post).astype(float))
    conn = LearningDense(weights=w0_lava, learning_rule=learning_rule(), sign_mode=SIGN_MODE,
                         weight_bounds=tuple(float(b) for b in WEIGHT_BOUNDS_LAVA))
    pre_source.s_out.connect(conn.s_in)
    post_source.s_out.connect(conn.s_in_bap)
    monitor = Monitor()
    monitor.probe(conn.weights, steps){probe}
    try:
        conn.run(condition=RunSteps(num_steps=steps), run_cfg=run_config())
        data = monitor.get_data(){read}
    finally:
        conn.stop()  # always release Lava's runtime processes{after}
    weights = np.asarray(data[conn.name]["weights"], dtype=float)
    return weights.reshape(steps, *np.shape(w0_lava))


def simulate(pre, post, w0_rule):
    """pre: bool (n_pre, steps); post: bool (n_post, steps); w0_rule: (n_post, n_pre), rule units.

    Returns the weight after every step, (steps, n_post, n_pre), in rule units.
    """
    pre, post = np.asarray(pre, dtype=bool), np.asarray(post, dtype=bool)
    return from_lava(run_lava(to_lava(w0_rule), pre, post))


{_POISSON_FUNCTION.rstrip()}


{_main_function(", rule units")}''')
    return "\n".join(out) + "\n"


def emit_lava_cpu(rule: Rule, reason: str) -> str:
    """Source of a Lava script running ``rule`` in the custom ``RuleSynapses`` process on the CPU
    (the ``lava-cpu`` backend), for a rule the learning engine cannot express (``reason``)."""
    if not rule.text:
        raise UnsupportedError("a lava-cpu script embeds the rule file: this rule has no file text")
    doc = _header(rule, "Lava simulation on the CPU (lava-cpu), NOT deployable to the learning engine")
    doc += ["", "Not deployable to the learning engine", "-------------------------------------",
            f"Why: {reason}.",
            "This script runs the rule's step semantics (neurodeploy.compile.stepper) inside Lava's runtime, in",
            "the custom process neurodeploy.lava.cpu.processes.RuleSynapses (floating point, CPU):",
            "pre spikes on s_in, post spikes on s_in_bap, the third factor on r_in. It is the",
            "reference a learning-engine deployment would be checked against, not a deployment.",
            "", "Usage", "-----",
            f"    python {rule.name}_lava.py   # prints the final weights in rule units, (n_post, n_pre)",
            "    simulate(pre, post, w0, reward=None) -> weights after every step, (steps, n_post, n_pre)",
            "", "PARAMETERS replace the rule file's parameters: edit them and the rule is rebuilt.",
            "Needs numpy, lava and neurodeploy."]
    params = {}
    for p in rule.parameters:
        params[p.name] = _clean(p.expression) if p.expression else (  # a derived parameter stays derived
            float(p.quantity.value) if p.quantity.dim == DIMENSIONLESS else _clean(p.quantity.text))
    out = ['"""' + _doc("\n".join(doc)) + '\n"""', "import os", "import tempfile", "", "import numpy as np",
           "import yaml", "",
           "from lava.magma.core.run_conditions import RunSteps",
           "from lava.magma.core.run_configs import Loihi2SimCfg",
           "from lava.proc.io.source import RingBuffer",
           "",
           "from neurodeploy.lava.cpu.processes import RuleSynapses",
           "from neurodeploy.spec.loader import rule_from_dict",
           "",
           "# -- parameters: each takes effect when edited ------------------------------------------",
           "PARAMETERS = {"]
    out += [f"    {name!r}: {value!r}," for name, value in params.items()]
    out.append("}")
    out.append("WEIGHT_INIT = None  # rule units, every synapse in main(); None: the rule's init")
    p = SCRIPT_PROTOCOL
    out += [f"N_PRE, N_POST, STEPS = {p['n_pre']}, {p['n_post']}, {p['steps']}",
            f"RATE_HZ = {float(p['rate'])!r}  # Poisson rate of every neuron in main()",
            f"SEED = {p['seed']}  # numpy.random.default_rng seed",
            "", "# -- the rule file (its parameters are replaced by PARAMETERS) ---------------------------",
            f"SOURCE = {_clean(rule.source or rule.name)!r}"]
    out += _string_constant("RULE_YAML", rule.text)
    out.append(f'''

def load_rule():
    """The rule of RULE_YAML with PARAMETERS, validated by neurodeploy's loader."""
    data = yaml.safe_load(RULE_YAML)
    data["parameters"] = dict(data.get("parameters") or {{}}, **PARAMETERS)
    return rule_from_dict(data, SOURCE, RULE_YAML)


def simulate(pre, post, w0, reward=None, rule=None):
    """pre: bool (n_pre, steps); post: bool (n_post, steps); w0: (n_post, n_pre), rule units;
    reward: the third factor, (n_post, steps) or (steps,), default none.

    Returns the weight after every step, (steps, n_post, n_pre), rule units.
    """
    rule = rule or load_rule()
    pre, post = np.asarray(pre, dtype=bool), np.asarray(post, dtype=bool)
    steps = pre.shape[1]
    w0 = np.asarray(w0, dtype=float)
    reward = np.zeros((post.shape[0], steps)) if reward is None else np.broadcast_to(
        np.asarray(reward, dtype=float), (post.shape[0], steps))
    with tempfile.TemporaryDirectory() as tmp:
        # the process writes its weights after every step into this .npy memory map
        history = os.path.join(tmp, "weights.npy")
        np.lib.format.open_memmap(history, mode="w+", dtype=float, shape=(steps,) + w0.shape).flush()
        np.lib.format.open_memmap(history + ".step.npy", mode="w+", dtype=np.int64, shape=(1,)).flush()
        synapses = RuleSynapses(rule=rule, weights=w0.copy(), history_path=history)
        RingBuffer(data=pre.astype(float)).s_out.connect(synapses.s_in)
        RingBuffer(data=post.astype(float)).s_out.connect(synapses.s_in_bap)
        RingBuffer(data=np.array(reward)).s_out.connect(synapses.r_in)
        try:
            synapses.run(condition=RunSteps(num_steps=steps), run_cfg=Loihi2SimCfg(select_tag="floating_pt"))
        finally:
            synapses.stop()  # always release Lava's runtime processes
        return np.array(np.load(history, mmap_mode="r"), dtype=float)


def poisson_trains(dt, n_pre=N_PRE, n_post=N_POST, steps=STEPS, rate_hz=RATE_HZ, seed=SEED):
    """Independent Bernoulli spikes, probability rate * dt per step (pre drawn first, then post)."""
    p = rate_hz * dt
    rng = np.random.default_rng(seed)
    pre = rng.random((n_pre, steps)) < p
    post = rng.random((n_post, steps)) < p
    return pre, post


def main():
    rule = load_rule()
    pre, post = poisson_trains(rule.dt)
    w0 = np.full((N_POST, N_PRE), rule.weight.w_init if WEIGHT_INIT is None else WEIGHT_INIT)
    trajectory = simulate(pre, post, w0, rule=rule)
    print(f"final weights after {{STEPS}} steps, (n_post, n_pre) = {{trajectory.shape[1:]}}, rule units:")
    for row in trajectory[-1]:
        print(" ".join(f"{{value:.10g}}" for value in row))


if __name__ == "__main__":
    main()''')
    return "\n".join(out) + "\n"


# -- plans and files -----------------------------------------------------------------
def plans_for(rule: Rule, trains=None) -> dict:
    """{"fixed": Plan, "float": Plan} scaled on ``trains`` (the default verify protocol if None)."""
    from neurodeploy.compile.compilation import compile_plans
    from neurodeploy.protocol import default_trains

    return compile_plans(rule, trains if trains is not None else default_trains(rule))


def _json_safe(value):
    """Non-finite floats -> None (strict JSON)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        return _json_safe(value.item())
    return value


def plans_json(plans: dict, mode: str | None = None, traffic: dict | None = None) -> str:
    """The plans as JSON; with ``mode``, which one the script runs, and ``traffic``, what they assume."""
    data = {m: p.to_dict() for m, p in plans.items()}
    if mode is not None:
        data["script_mode"] = mode
    if traffic is not None:
        data["traffic"] = dict(traffic, text=traffic_text(traffic))
    return json.dumps(_json_safe(data), indent=2, sort_keys=True, allow_nan=False) + "\n"


def write_atomic(path: str, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file in the same directory and ``os.replace``."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        follow_umask(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_compiled(rule: Rule, target: str, out_dir: str, trains=None, mode: str = "fixed") -> list:
    """Write the standalone script(s) for ``target`` into ``out_dir``; return the paths written.

    ``brian2``: ``<name>_brian2.py``. ``lava``: ``<name>_lava.py`` (the ``mode`` plan, fixed
    by default) and ``<name>_plan.json`` (fixed and float plans, the traffic they assume), the
    plans scaled on ``trains`` (default: :func:`neurodeploy.protocol.default_trains`, Poisson
    10 Hz). A rule the learning engine cannot express gets a ``lava-cpu`` script
    (:func:`emit_lava_cpu`) and no plan.
    """
    from neurodeploy.lava.deploy import describe_traffic
    from neurodeploy.compile.plan import engine_reason
    from neurodeploy.protocol import default_trains

    if target not in TARGETS:
        raise ValueError(f"unknown target {target!r} (choose from {', '.join(TARGETS)})")
    if mode not in ("fixed", "float"):
        raise ValueError(f"unknown mode {mode!r}")
    files = []
    if target == "brian2":
        files.append((f"{rule.name}_brian2.py", emit_brian2(rule)))
    elif engine_reason(rule) is not None:
        files.append((f"{rule.name}_lava.py", emit_lava_cpu(rule, engine_reason(rule))))
    else:
        trains = trains if trains is not None else default_trains(rule)
        plans = plans_for(rule, trains)
        traffic = describe_traffic(trains, plans[mode])
        files.append((f"{rule.name}_lava.py", emit_lava(rule, plans[mode], traffic)))
        files.append((f"{rule.name}_plan.json", plans_json(plans, mode, traffic)))
    os.makedirs(out_dir, exist_ok=True)
    paths = []
    for name, text in files:
        path = os.path.join(out_dir, name)
        write_atomic(path, text)
        paths.append(path)
    return paths
