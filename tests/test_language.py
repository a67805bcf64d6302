"""The rule language: parameters defined from other parameters, parameter exponents,
hints for Brian2 statements, "did you mean", and negative trace jumps on the engine.

Every new message is checked by its full text; every value against arithmetic done here
by hand or against another backend."""
from __future__ import annotations

import math
import os

import numpy as np
import pytest

from conftest import GOOD_RULE_TEXT, ROOT, raster
from neurodeploy.targets import load_all
from neurodeploy.cli import main
from neurodeploy.errors import NeurodeployError, UnsupportedError
from neurodeploy.compile.lowering import lower
from neurodeploy.protocol import SpikeTrains, make_trains
from neurodeploy.spec.loader import load_rule
from neurodeploy.spec.units import DIMENSIONLESS, SECOND
from neurodeploy.compile.stepper import simulate

REG = load_all()
BRIAN2_STDP = os.path.join(ROOT, "reference", "examples", "stdp_brian2.yaml")
PARAMETERS = ("parameters: {A_plus: 0.01, A_minus: 0.0105, tau_plus: 20 ms, tau_minus: 20 ms,\n"
              "             w_min: 0, w_max: 1, w_init: 0.5}\n")


def with_parameters(text: str) -> str:
    """GOOD_RULE_TEXT with its parameters line replaced by ``text``."""
    assert GOOD_RULE_TEXT.count(PARAMETERS) == 1
    return GOOD_RULE_TEXT.replace(PARAMETERS, f"parameters: {text}\n")


def changed(old: str, new: str) -> str:
    assert GOOD_RULE_TEXT.count(old) == 1, old
    return GOOD_RULE_TEXT.replace(old, new)


def yq(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def error_of(write_rule, text: str) -> str:
    with pytest.raises(NeurodeployError) as info:
        load_rule(write_rule(text, "stdp_pair.yaml"))
    return str(info.value)


# --- 1. parameters defined from other parameters ----------------------------------

DERIVED = ("{A_minus: -A_plus * tau_plus / tau_minus * 1.05, dA: 0.01 * 0.01, A_plus: 0.01, "
           "tau_minus: 2 * tau_plus, tau_plus: 20 ms, w_min: 0, w_max: 1, w_init: w_max / 2}")


def test_derived_parameters_in_any_order_with_units(write_rule):
    rule = load_rule(write_rule(with_parameters(DERIVED)))
    p = {q.name: q for q in rule.parameters}
    assert p["tau_minus"].quantity.dim == SECOND and p["tau_minus"].value == pytest.approx(0.04, rel=1e-15)
    assert p["A_minus"].quantity.dim == DIMENSIONLESS
    assert p["A_minus"].value == pytest.approx(-0.01 * 0.020 / 0.040 * 1.05, rel=1e-15)
    assert p["dA"].value == pytest.approx(1e-4, rel=1e-15)
    assert p["w_init"].value == 0.5
    assert p["A_minus"].expression == "-A_plus * tau_plus / tau_minus * 1.05"
    assert p["A_plus"].expression == "" and p["tau_plus"].quantity.text == "20 ms"
    assert [q.name for q in rule.parameters][:3] == ["A_minus", "dA", "A_plus"]  # file order kept
    assert rule.trace("y").tau == pytest.approx(0.04, rel=1e-15)


def test_derived_parameters_run_as_the_numbers_they_stand_for(write_rule):
    """The same rule with the values written out (computed here) gives the identical trajectory."""
    derived = load_rule(write_rule(with_parameters(DERIVED), "derived.yaml"))
    a_minus = -0.01 * 0.02 / 0.04 * 1.05
    written = load_rule(write_rule(with_parameters(
        f"{{A_minus: {a_minus!r}, dA: 0.0001, A_plus: 0.01, tau_minus: 40 ms, tau_plus: 20 ms, "
        f"w_min: 0, w_max: 1, w_init: 0.5}}"), "written.yaml"))
    trains = make_trains(derived, "poisson", {"steps": 300, "n_pre": 3, "n_post": 3, "rate": 40}, 1)
    a = simulate(derived, trains.w0, trains.pre, trains.post)
    b = simulate(written, trains.w0, trains.pre, trains.post)
    assert np.abs(a - b).max() <= 1e-15 and np.abs(a - a[0]).max() > 1e-3


def test_generated_brian2_script_shows_the_expression(write_rule, tmp_path):
    from neurodeploy.codegen import emit_brian2
    text = emit_brian2(load_rule(write_rule(with_parameters(DERIVED))))
    # written as defined, after what it reads, so that an edit of those carries over (tests/test_codegen_params.py)
    assert "A_minus = -A_plus * tau_plus / tau_minus * 1.05  # -0.00525 (SI) at the rule file's values" in text
    assert "tau_minus = 2 * tau_plus  # 0.04 (SI) at the rule file's values" in text
    assert text.index("tau_plus = ") < text.index("tau_minus = ") < text.index("A_minus = ")


DERIVED_ERRORS = [
    ("cycle", "{a: 2 * b, b: c + 1, c: a, A_plus: 0.01, A_minus: 0.01, tau_plus: 20 ms, tau_minus: 20 ms, "
              "w_min: 0, w_max: 1, w_init: 0.5}",
     "stdp_pair.yaml: parameters.a: defined in a cycle: a -> b -> c -> a (got '2 * b')"),
    ("itself", "{A_plus: 2 * A_plus, A_minus: 0.01, tau_plus: 20 ms, tau_minus: 20 ms, w_min: 0, w_max: 1, "
               "w_init: 0.5}",
     "stdp_pair.yaml: parameters.A_plus: defined in a cycle: A_plus -> A_plus (got '2 * A_plus')"),
    ("a trace", "{A_plus: 0.01 * x, A_minus: 0.01, tau_plus: 20 ms, tau_minus: 20 ms, w_min: 0, w_max: 1, "
                "w_init: 0.5}",
     "stdp_pair.yaml: parameters.A_plus: must be a constant: 'x' is a trace (got '0.01 * x')"),
    ("w", "{A_plus: 0.01, A_minus: 0.01, tau_plus: 20 ms, tau_minus: 20 ms, w_min: 0, w_max: 1, w_init: w / 2}",
     "stdp_pair.yaml: parameters.w_init: must be a constant: 'w' is the weight (got 'w / 2')"),
    ("unknown name", "{A_plus: 0.01, A_minus: 1.05 * A_pluss, tau_plus: 20 ms, tau_minus: 20 ms, w_min: 0, "
                     "w_max: 1, w_init: 0.5}",
     "stdp_pair.yaml: parameters.A_minus: unknown name 'A_pluss', did you mean 'A_plus'? "
     "(known: A_minus, A_plus, tau_minus, tau_plus, w_init, w_max, w_min) (got '1.05 * A_pluss')"),
    ("not finite", "{A_plus: 0.01, A_minus: A_plus / (w_min - 0), tau_plus: 20 ms, tau_minus: 20 ms, w_min: 0, "
                   "w_max: 1, w_init: 0.5}",
     "stdp_pair.yaml: parameters.A_minus: is not a finite real number with these parameters "
     "(got 'A_plus / (w_min - 0)')"),
    ("complex", "{A_plus: 0.01, A_minus: sqrt(w_min - 1), tau_plus: 20 ms, tau_minus: 20 ms, w_min: 0, "
                "w_max: 1, w_init: 0.5}",
     "stdp_pair.yaml: parameters.A_minus: is not a finite real number with these parameters "
     "(got 'sqrt(w_min - 1)')"),
    ("unit clash", "{A_plus: 0.01, A_minus: A_plus + tau_plus, tau_plus: 20 ms, tau_minus: 20 ms, w_min: 0, "
                   "w_max: 1, w_init: 0.5}",
     "stdp_pair.yaml: parameters.A_minus: adds 'A_plus' (dimensionless) and 'tau_plus' (second) "
     "(got 'A_plus + tau_plus')"),
]


@pytest.mark.parametrize("params, expected", [c[1:] for c in DERIVED_ERRORS], ids=[c[0] for c in DERIVED_ERRORS])
def test_derived_parameter_errors(write_rule, params, expected):
    assert error_of(write_rule, with_parameters(params)) == expected


def test_derived_parameter_dimension_reaches_the_unit_checks(write_rule):
    """A parameter defined from a time is a time: as a tau it is accepted, as a jump it is refused."""
    text = with_parameters("{A_plus: 0.01, A_minus: 0.0105, tau_plus: 20 ms, tau_minus: tau_plus * 1.5, "
                           "J: tau_plus * 1, w_min: 0, w_max: 1, w_init: 0.5}")
    assert load_rule(write_rule(text)).trace("y").tau == pytest.approx(0.03, rel=1e-15)
    bad = text.replace("{of: pre,  tau: tau_plus,  jump: 1}", "{of: pre,  tau: tau_plus,  jump: J}")
    assert error_of(write_rule, bad) == ("stdp_pair.yaml: weight.on_post: must have the unit of w, dimensionless "
                                         "(got second from 'A_plus * x')")


# --- 2. parameter exponents (Gutig et al. 2003) -----------------------------------

GUTIG = """\
name: gutig
parameters: {A_plus: 0.01, alpha: 1.05, tau_plus: 20 ms, tau_minus: 20 ms, mu: MU}
traces:
  x: {of: pre,  tau: tau_plus,  jump: 1}
  y: {of: post, tau: tau_minus, jump: 1}
weight:
  on_pre:  ON_PRE
  on_post: ON_POST
  bounds: [0, 1]
"""


def gutig(write_rule, mu, exponent=True, name="gutig.yaml"):
    on_pre, on_post = ("-alpha * A_plus * w ** mu * y", "A_plus * (1 - w) ** mu * x") if exponent else \
        ("-alpha * A_plus * w * y", "A_plus * (1 - w) * x")
    text = GUTIG.replace("MU", repr(mu)).replace("ON_PRE", yq(on_pre)).replace("ON_POST", yq(on_post))
    return load_rule(write_rule(text, name))


def test_gutig_mu_1_is_the_rule_without_exponent(write_rule):
    powered, plain = gutig(write_rule, 1.0), gutig(write_rule, 1.0, exponent=False, name="plain.yaml")
    trains = make_trains(plain, "poisson", {"steps": 400, "n_pre": 4, "n_post": 4, "rate": 40}, 2)
    for backend in ("brian2-step", "brian2"):
        a = REG.get(backend).run(powered, trains, {}).trajectory
        b = REG.get(backend).run(plain, trains, {}).trajectory
        assert np.abs(a - b).max() <= 1e-15, backend
        assert np.abs(b - b[0]).max() > 1e-3  # the weights move


@pytest.mark.parametrize("backend", ["brian2", "brian2-step"])
def test_gutig_mu_half_matches_the_closed_form_of_two_pairs(write_rule, backend):
    """pre at 10, post at 15: w1 = w0 + A+ (1 - w0)^0.5 e^(-5 ms/tau+);
    post at 200 (x has decayed for 190 ms): w2 = w1 + A+ (1 - w1)^0.5 e^(-190 ms/tau+);
    pre at 208, y holding both post spikes: w3 = w2 - alpha A+ w2^0.5 (e^(-8 ms/tau-) + e^(-193 ms/tau-))."""
    rule = gutig(write_rule, 0.5)
    steps, w0 = 300, 0.3
    trains = SpikeTrains(raster(1, steps, [(0, 10), (0, 208)]), raster(1, steps, [(0, 15), (0, 200)]),
                         np.full((1, 1), w0), "pairs")
    w1 = w0 + 0.01 * (1 - w0) ** 0.5 * math.exp(-5 / 20)
    w2 = w1 + 0.01 * (1 - w1) ** 0.5 * math.exp(-190 / 20)
    w3 = w2 - 1.05 * 0.01 * w2 ** 0.5 * (math.exp(-8 / 20) + math.exp(-193 / 20))
    trajectory = REG.get(backend).run(rule, trains, {}).trajectory[:, 0, 0]
    assert trajectory[100] == pytest.approx(w1, abs=1e-12)
    assert trajectory[204] == pytest.approx(w2, abs=1e-12)
    assert trajectory[-1] == pytest.approx(w3, abs=1e-12)


def test_gutig_runs_on_lava_cpu_as_on_brian2_step(write_rule):
    rule = gutig(write_rule, 0.5)
    trains = make_trains(rule, "poisson", {"steps": 150, "n_pre": 3, "n_post": 2, "rate": 50}, 4)
    assert REG.get("lava-cpu").unsupported_reason(rule) is None
    cpu = REG.get("lava-cpu").run(rule, trains, {}).trajectory
    step = REG.get("brian2-step").run(rule, trains, {}).trajectory
    assert np.abs(cpu - step).max() <= 1e-9 and np.abs(step - step[0]).max() > 1e-4


def test_the_engine_refuses_a_parameter_exponent_with_its_reason(write_rule):
    from neurodeploy.compile.loihi import unsupported_reason
    rule = gutig(write_rule, 0.5)
    reason = ("weight.on_pre raises to a parameter ('w**mu', exponent mu): the learning engine's products have "
              "fixed whole exponents")
    with pytest.raises(UnsupportedError) as info:
        lower(rule)
    assert str(info.value) == reason
    for mode in ("float", "fixed"):
        assert unsupported_reason(rule, mode) == f"not deployable to the learning engine: {reason}"
    for backend in ("lava-float", "lava-fixed", "emu-float", "emu-fixed"):
        assert REG.get(backend).unsupported_reason(rule) is not None, backend


EXPONENT_ERRORS = [
    ("exponent with a unit", "A_plus * w ** tau_plus * x",
     "stdp_pair.yaml: weight.on_post: the exponent 'tau_plus' must be dimensionless, it is second "
     "(got 'A_plus * w ** tau_plus * x')"),
    ("base with a unit", "A_plus * (tau_plus / tau_minus) ** A_plus * x + tau_plus ** A_plus",
     "stdp_pair.yaml: weight.on_post: a parameter exponent needs a dimensionless base, 'tau_plus' is second "
     "(got 'A_plus * (tau_plus / tau_minus) ** A_plus * x + tau_plus ** A_plus')"),
    ("a trace as exponent", "A_plus * w ** x",
     "stdp_pair.yaml: weight.on_post: exponent must be a number or a parameter (got 'A_plus * w ** x')"),
]


@pytest.mark.parametrize("expression, expected", [c[1:] for c in EXPONENT_ERRORS], ids=[c[0] for c in EXPONENT_ERRORS])
def test_exponent_errors(write_rule, expression, expected):
    assert error_of(write_rule, changed("on_post:  A_plus * x", "on_post: " + yq(expression))) == expected


# --- 3. Brian2 statements -----------------------------------------------------------

HINTS = [
    ("w = clip(...)", "on_post:  A_plus * x", "w = clip(w + A_plus * x, w_min, w_max)",
     "stdp_pair.yaml: weight.on_post: a Brian2 statement; write only the change of w (A_plus * x), bounds go in "
     "weight.bounds (got 'w = clip(w + A_plus * x, w_min, w_max)')"),
    ("w +=", "on_post:  A_plus * x", "w += A_plus * x",
     "stdp_pair.yaml: weight.on_post: a Brian2 statement; write only the change of w (A_plus * x) "
     "(got 'w += A_plus * x')"),
    ("w -=", "on_pre:  -A_minus * y", "w -= A_minus * y",
     "stdp_pair.yaml: weight.on_pre: a Brian2 statement; write only the change of w (-(A_minus * y)) "
     "(got 'w -= A_minus * y')"),
    ("two statements", "on_pre:  -A_minus * y", "x += 1; w = clip(w - A_minus * y, 0, 1)",
     "stdp_pair.yaml: weight.on_pre: a Brian2 statement; write only the change of w (-(A_minus * y)), bounds go "
     "in weight.bounds, the jump of x in traces.x.jump (1) (got 'x += 1; w = clip(w - A_minus * y, 0, 1)')"),
    ("trace jump", "tau: tau_plus,  jump: 1}", "tau: tau_plus,  jump: 'x += 1'}",
     "stdp_pair.yaml: traces.x.jump: a Brian2 statement; write only the jump of x (1) (got 'x += 1')"),
    ("a parameter", "A_plus: 0.01", "A_plus: 'a = 0.02'",
     "stdp_pair.yaml: parameters.A_plus: a statement; a parameter is a number, a quantity or an expression of "
     "other parameters (write 0.02) (got 'a = 0.02')"),
    ("clip alone", "on_post:  A_plus * x", "clip(w + A_plus * x, 0, 1)",
     "stdp_pair.yaml: weight.on_post: clip() is Brian2's; write only the change, bounds go in weight.bounds "
     "(got 'clip(w + A_plus * x, 0, 1)')"),
]


@pytest.mark.parametrize("old, new, expected", [c[1:] for c in HINTS], ids=[c[0] for c in HINTS])
def test_brian2_statement_hints(write_rule, old, new, expected):
    text = changed(old, old.split(":")[0] + ": " + yq(new)) if old.startswith("on_") else changed(old, new)
    assert error_of(write_rule, text) == expected


# --- 4. did you mean ----------------------------------------------------------------

KNOWN = "A_minus, A_plus, tau_minus, tau_plus, w, w_init, w_max, w_min, x, y"
NEAR_MISSES = [
    ("name", changed("on_post:  A_plus * x", "on_post: A_pluss * x"),
     f"stdp_pair.yaml: weight.on_post: unknown name 'A_pluss', did you mean 'A_plus'? (known: {KNOWN}) "
     "(got 'A_pluss * x')"),
    ("parameter name in a field", changed("{of: pre,  tau: tau_plus,", "{of: pre,  tau: tau_pluss,"),
     "stdp_pair.yaml: traces.x.tau: unknown parameter 'tau_pluss', did you mean 'tau_plus'? (got 'tau_pluss')"),
    ("bound name", changed("bounds: [w_min, w_max]", "bounds: [w_min, wmax]"),
     "stdp_pair.yaml: weight.bounds: unknown parameter 'wmax', did you mean 'w_max'? (got 'wmax')"),
    ("a unit in an expression", changed("tau_minus: 20 ms", "tau_minus: 2 * 10 * ms"),
     "stdp_pair.yaml: parameters.tau_minus: unknown name 'ms', a unit: a unit follows a number, as in '2 ms' "
     "(known: A_minus, A_plus, tau_minus, tau_plus, w_init, w_max, w_min) (got '2 * 10 * ms')"),
    ("no close name", changed("on_post:  A_plus * x", "on_post: zebra * x"),
     f"stdp_pair.yaml: weight.on_post: unknown name 'zebra' (known: {KNOWN}) (got 'zebra * x')"),
    ("trace key", changed("{of: pre,  tau: tau_plus,  jump: 1}", "{of: pre,  tua: tau_plus,  jump: 1}"),
     "stdp_pair.yaml: traces.x.tua: unknown field, did you mean 'tau'? "
     "(allowed: of, tau, jump, rest, delay, on_pre, on_post)"),
    ("top-level key", changed("parameters:", "paramters:"),
     "stdp_pair.yaml: paramters: unknown field, did you mean 'parameters'? "
     "(allowed: name, description, citation, parameters, traces, weight, simulation)"),
    ("weight key", changed("  on_post:", "  on_psot:"),
     "stdp_pair.yaml: weight.on_psot: unknown field, did you mean 'on_post'? "
     "(allowed: on_pre, on_post, continuous, bounds, init)"),
    ("trace kind", changed("{of: post,", "{of: psot,"),
     "stdp_pair.yaml: traces.y.of: must be one of pre, post, reward, synapse, did you mean 'post'? (got 'psot')"),
    ("unit", changed("tau_plus: 20 ms", "tau_plus: 20 msec"),
     "stdp_pair.yaml: parameters.tau_plus: unknown unit 'msec', did you mean 'msecond'? (got '20 msec')"),
    ("unit in another case", changed("tau_plus: 20 ms", "tau_plus: 20 MSEC"),
     "stdp_pair.yaml: parameters.tau_plus: unknown unit 'MSEC', did you mean 'msecond'? (got '20 MSEC')"),
    ("two units in another case", changed("tau_plus: 20 ms", "tau_plus: 20 MS"),
     "stdp_pair.yaml: parameters.tau_plus: unknown unit 'MS', did you mean 'mS' or 'ms'? (got '20 MS')"),
    ("no close unit", changed("tau_plus: 20 ms", "tau_plus: 20 parsec"),
     "stdp_pair.yaml: parameters.tau_plus: unknown unit 'parsec' (got '20 parsec')"),
]


@pytest.mark.parametrize("text, expected", [c[1:] for c in NEAR_MISSES], ids=[c[0] for c in NEAR_MISSES])
def test_did_you_mean(write_rule, text, expected):
    assert error_of(write_rule, text) == expected


def run_cli(capsys, args):
    with pytest.raises(SystemExit) as info:
        main([str(a) for a in args])
    captured = capsys.readouterr()
    return info.value.code, captured.out, captured.err


@pytest.mark.parametrize("args, expected", [
    (["--backends", "brain2"], "--backends: unknown backend 'brain2', did you mean 'brian2'? (known: brian2, "
                               "brian2-step, lava-float, lava-fixed, lava-cpu, emu-float, emu-fixed)"),
    (["--protocol", "poison"], None),
])
def test_did_you_mean_on_the_command_line(capsys, tmp_path, args, expected):
    from neurodeploy.protocol import make_trains as make
    if expected is None:  # click's Choice refuses --protocol itself; the protocol table suggests
        with pytest.raises(NeurodeployError) as info:
            make(load_rule(os.path.join(ROOT, "reference", "rules", "stdp_pair.yaml")), "poison", {}, 0)
        assert str(info.value) == ("name: unknown protocol 'poison', did you mean 'poisson'? (known: poisson, "
                                   "pairing, correlated, hfs, lfs, stdp-window, frequency, closed-loop)")
        return
    code, out, err = run_cli(capsys, ["verify", os.path.join(ROOT, "reference", "rules", "stdp_pair.yaml"),
                                      "--out", str(tmp_path / "out")] + args)
    assert (code, out, err) == (2, "", f"neurodeploy: error: {expected}\n")
    assert not (tmp_path / "out").exists()


# --- 5. negative trace jumps on the learning engine -------------------------------

def test_brian2_stdp_example_is_rewritten_for_the_engine():
    rule = load_rule(BRIAN2_STDP)
    assert rule.trace("Apost").jump == pytest.approx(-0.0001 * 1.05, rel=1e-15)
    engine = lower(rule)
    assert engine.rule.trace("Apost").jump == pytest.approx(0.0001 * 1.05, rel=1e-15)
    assert engine.rewrites == (
        "trace 'Apost' jumps by -0.000105 (dApost): learning-engine traces are unsigned, so the engine's trace is "
        "Apost' = -Apost, jumping by +0.000105; weight.on_pre: Apost -> -Apost' (exact)",)
    # on_pre reads Apost as -Apost': the product of y1 at a pre spike has coefficient -1
    by_dependency = {(p.dependency, p.factors): p.coefficient for p in engine.products}
    assert by_dependency == {("x0", ("y1",)): -1.0, ("y0", ("x1",)): 1.0}


def test_brian2_stdp_example_verifies_on_the_emulator():
    from neurodeploy import verify
    rule = load_rule(BRIAN2_STDP)
    trains = make_trains(rule, "poisson", {"steps": 500, "n_pre": 5, "n_post": 5, "rate": 30}, 3)
    report = verify(rule, trains, ["brian2", "brian2-step", "emu-float", "emu-fixed"])
    step = report.results["brian2-step"].trajectory
    assert np.abs(report.results["emu-float"].trajectory - step).max() <= 1e-9 * 0.01
    assert np.abs(step - step[0]).max() > 1e-4  # the weights move (range 0.01)
    # the sign matters: depression at pre spikes; a wrong sign would be far off
    assert (np.diff(step, axis=0) < 0).any() and (np.diff(step, axis=0) > 0).any()
    assert report.outcome == "passed"


def test_check_prints_the_rewrite(capsys):
    main_args = ["check", BRIAN2_STDP]
    with pytest.raises(SystemExit) as info:
        main(main_args)
    out = capsys.readouterr().out
    assert info.value.code in (0, None)
    assert ("Rewritten for the engine (exact):\n- trace 'Apost' jumps by -0.000105 (dApost): learning-engine traces "
            "are unsigned, so the engine's trace is Apost' = -Apost, jumping by +0.000105; weight.on_pre: "
            "Apost -> -Apost' (exact)") in out
    assert "lava-fixed   yes" in out


def test_the_plan_file_carries_the_rewrite(tmp_path):
    import json

    from neurodeploy.codegen import write_compiled
    write_compiled(load_rule(BRIAN2_STDP), "lava", str(tmp_path))
    plan = json.loads((tmp_path / "stdp_brian2_plan.json").read_text())
    for mode in ("fixed", "float"):
        assert len(plan[mode]["rewrites"]) == 1
        assert plan[mode]["rewrites"][0].startswith("trace 'Apost' jumps by -0.000105")


NEGATIVE_REFUSED = [
    ("state-dependent", "  y: {of: post, tau: tau_minus, jump: 1}", "  y: {of: post, tau: tau_minus, jump: -0.5 * y}",
     "trace 'y' jumps by '-0.5 * y': learning-engine impulses are constants, they cannot read a trace"),
    ("three-factor", "  y: {of: post, tau: tau_minus, jump: 1}",
     "  y: {of: post, tau: tau_minus, jump: -1}\n  d: {of: reward, tau: tau_minus, jump: 1}",
     "trace 'y' jumps by -1: learning-engine traces are unsigned (a negative jump is rewritten as a positive one "
     "only in two-factor rules)"),
]


@pytest.mark.parametrize("old, new, expected", [c[1:] for c in NEGATIVE_REFUSED], ids=[c[0] for c in NEGATIVE_REFUSED])
def test_negative_jumps_the_rewrite_does_not_cover(write_rule, old, new, expected):
    rule = load_rule(write_rule(changed(old, new)))
    with pytest.raises(UnsupportedError) as info:
        lower(rule, approximate=True)
    assert str(info.value) == expected


@pytest.mark.parametrize("old, new, expected", [
    ("  on_pre: Apost", "  on_pre: 'w = clip(w + Apost, 0, wmax)'",
     "r.yaml: weight.on_pre: a Brian2 statement; write only the change of w (Apost), bounds go in weight.bounds "
     "(got 'w = clip(w + Apost, 0, wmax)')"),
    ("jump: dApre}", "jump: 'Apre += dApre'}",
     "r.yaml: traces.Apre.jump: a Brian2 statement; write only the jump of Apre (dApre) (got 'Apre += dApre')"),
])
def test_readme_hint_examples(write_rule, old, new, expected):
    """The two messages docs/rules.md shows, on the Brian2 example written as Brian2 writes it."""
    with open(BRIAN2_STDP, encoding="utf-8") as handle:
        text = handle.read()
    assert text.count(old) == 1
    with pytest.raises(NeurodeployError) as info:
        load_rule(write_rule(text.replace(old, new), "r.yaml"))
    assert str(info.value) == expected


def test_brian2_stdp_example_on_lava():
    """The rewritten rule on Lava itself (one short run): lava-float equals brian2-step, lava-fixed is bit-exact
    with emu-fixed, so the sign carried by the products is the one Lava applies."""
    from neurodeploy import verify
    rule = load_rule(BRIAN2_STDP)
    trains = make_trains(rule, "poisson", {"steps": 200, "n_pre": 4, "n_post": 3, "rate": 40}, 5)
    report = verify(rule, trains, ["brian2-step", "lava-float", "lava-fixed", "emu-fixed"])
    step = report.results["brian2-step"].trajectory
    assert np.abs(report.results["lava-float"].trajectory - step).max() <= 1e-9 * 0.01
    assert np.array_equal(report.results["lava-fixed"].trajectory, report.results["emu-fixed"].trajectory)
    assert (np.diff(step, axis=0) < 0).any()  # depression happened: the negated trace was read
    # every link passes; without brian2 (the model as written) the run's question stays open: not checked
    assert not [c for c in report.comparisons if c["outcome"] == "failed"]
    assert any(c["outcome"] == "passed" for c in report.comparisons)
    assert report.outcome == "not checked"
