"""The Lava scripts: the plan's ``Loihi2FLearningRule`` written out literally in a ``LearningDense`` (numpy and
lava only), or, for a rule the learning engine cannot express, the ``RuleSynapses`` process on the CPU."""
from __future__ import annotations

import re


from neurodeploy.brian2.model import (named_parameter)
from neurodeploy.codegen.text import (_POISSON_FUNCTION, SCRIPT_PROTOCOL, TRACE_LIMIT, _clean, _comment, _doc, _g, _header, _main_function, _protocol_constants,
                                      _string_constant, _unit_name)
from neurodeploy.errors import UnsupportedError
from neurodeploy.spec.ir import Rule
from neurodeploy.spec.units import DIMENSIONLESS


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
