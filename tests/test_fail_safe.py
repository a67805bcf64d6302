"""Issue 14, rules and names: what used to pass ``check`` and then crash ``verify``, ``compile`` or
``run`` (or take all memory) is refused at load with one line, exit 2, nothing written."""
from __future__ import annotations

import time

import numpy as np
import pytest

from test_errors import GOOD, assert_one_error_line, changed, on_post
from neurodeploy.targets import load_all
from neurodeploy.protocol import make_trains
from neurodeploy.spec.loader import load_rule, rule_from_dict

LONG_NAME = "r" * 300


@pytest.fixture
def write(tmp_path):
    def write(text, name="stdp_pair.yaml"):
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return str(path)
    return write


CASES = [
    ("unit exponent 0", changed("tau_plus: 20 ms", "tau_plus: 20 ms**0"),
     "stdp_pair.yaml: parameters.tau_plus: unit exponent must not be 0 (got '20 ms**0')"),
    ("unit exponent 0 in a tau", changed("tau: tau_plus,", "tau: 20 ms^0,"),
     "stdp_pair.yaml: traces.x.tau: unit exponent must not be 0 (got '20 ms^0')"),
    ("time over time is no time", changed("tau: tau_plus,", "tau: 20 ms/s,"),
     "stdp_pair.yaml: traces.x.tau: must be a time (got 20 ms/s, dimensionless)"),
    ("heaviside of a time", on_post("A_plus * heaviside(tau_plus) * x"),
     "stdp_pair.yaml: weight.on_post: heaviside() needs a dimensionless argument, 'tau_plus' is second "
     "(got 'A_plus * heaviside(tau_plus) * x')"),
    ("rule name of 300 characters", changed("name: stdp_pair", f"name: {LONG_NAME}"),
     "stdp_pair.yaml: name: must be at most 64 characters: it names the generated files (got 300)"),
    ("parameter name of 65 characters", changed("A_plus: 0.01", f"{'A' * 65}: 0.01"),
     f"stdp_pair.yaml: parameters.{'A' * 65}: must be at most 64 characters (got 65)"),
    ("delay beyond any run", changed("jump: 1}    #", "jump: 1, delay: 1e6 s}    #"),
     "stdp_pair.yaml: traces.x.delay: must be at most 100,000,000 steps, the longest run "
     "(got 1e+09 steps of dt=1 ms)"),
]


@pytest.mark.parametrize("command", ["check", "verify", "compile"])
@pytest.mark.parametrize("label, text, expected", CASES, ids=[c[0] for c in CASES])
def test_refused_at_load(capsys, tmp_path, write, command, label, text, expected):
    out = tmp_path / "out"
    args = {"check": ["check", write(text)],
            "verify": ["verify", write(text), "--out", out, "--quiet"],
            "compile": ["compile", write(text), "--target", "brian2", "--out", out]}[command]
    assert_one_error_line(capsys, args, expected)
    assert not out.exists()


def test_delay_too_long_for_the_run(capsys, tmp_path, write):
    """1e4 s is 1e7 steps: a rule may have it, but not with 2000 steps x 20 neurons of rasters."""
    out = tmp_path / "out"
    text = changed("jump: 1}    #", "jump: 1, delay: 1e4 s}    #")
    load_rule(write(text))  # a valid rule
    assert_one_error_line(capsys, ["verify", write(text), "--out", out, "--quiet"],
                          "stdp_pair.yaml: traces.x.delay: too long for protocol 'poisson': (2,000 + 10,000,000 delay) "
                          "steps x 20 neurons (at most 200,000,000 neuron-steps)")
    assert not out.exists()


def test_run_plan_with_a_long_rule_name(capsys, tmp_path, write):
    rule = write(changed("name: stdp_pair", f"name: {LONG_NAME}"))
    plan = tmp_path / "plan.yaml"
    plan.write_text(f"name: p\nrules: [{rule}]\nprotocols: [{{name: poisson, steps: 20}}]\n")
    out = tmp_path / "runs"
    from test_errors import run_cli
    code, stdout, err = run_cli(capsys, ["run", plan, "--out", out])
    assert code == 2 and stdout == "" and len(err.splitlines()) == 1
    assert "name: must be at most 64 characters: it names the generated files (got 300)" in err
    assert not out.exists()


def test_hundred_traces_are_cheap():
    """Independent decays are written out: no coupled exact integrator (sympy's jordan_form)."""
    traces = {}
    for k in range(50):
        traces[f"x{k}"] = {"of": "pre", "tau": f"{10 + k} ms", "jump": 1}
        traces[f"y{k}"] = {"of": "post", "tau": f"{10 + k} ms", "jump": 1}
    data = {"name": "many", "parameters": {"A": 0.001, "k": "1 Hz"}, "traces": traces,
            "weight": {"on_pre": "-A * (" + " + ".join(f"y{k}" for k in range(50)) + ")",
                       "on_post": "A * (" + " + ".join(f"x{k}" for k in range(50)) + ")",
                       "bounds": [0, 1]}}
    registry = load_all()
    for continuous in (None, "k * A * x3 * y7"):  # event-driven, then clock-driven
        if continuous:
            data["weight"]["continuous"] = continuous
        rule = rule_from_dict(data, "many.yaml")
        trains = make_trains(rule, "poisson", {"n_pre": 2, "n_post": 2, "steps": 100, "rate": 50.0}, seed=0)
        start = time.perf_counter()
        result = registry.get("brian2").run(rule, trains, {})
        assert time.perf_counter() - start < 60
        assert np.isfinite(result.trajectory).all()
