"""The Brian2 script: the rule's parameters as named quantities and the reference backend's ``Synapses``
model (numpy and brian2 only)."""
from __future__ import annotations

import builtins
import keyword
import re


from neurodeploy.brian2.model import (b2name, bounds_code, brian2_names, named_parameter, reference_model,
                                      unit_text)
from neurodeploy.codegen.text import (_POISSON_FUNCTION, _clean, _comment, _defined_first,
                                      _dim_source, _doc, _header, _main_function, _protocol_constants,
                                      _python_expression, _quantity_source, _string_constant, _unit_name)
from neurodeploy.spec.ir import Rule
from neurodeploy.spec.units import DIMENSIONLESS


_BRIAN2_SCRIPT_NAMES = {
    "np", "b2", "second", "Quantity", "get_or_create_dimension",
    "NAMESPACE", "MODEL", "ON_PRE", "ON_POST", "WEIGHT_MIN", "WEIGHT_MAX", "WEIGHT_INIT", "WEIGHT_DIM",
    "DELAYED", "REGULAR", "REST", "TimedArray",
    "DT_SECONDS", "N_PRE", "N_POST", "STEPS", "RATE_HZ", "SEED",
    "poisson_trains", "simulate", "main",
}


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
