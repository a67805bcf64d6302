"""Every parameter at the top of a generated script takes effect when edited.

The expectation is independent of the emitter: the edited script's run must equal the ``brian2``
backend's run of the rule file edited the same way (loaded by the rule loader, on the same trains),
and differ from the unedited run (so the parameter was really used). The unedited script equals the
original rule's run.
"""
from __future__ import annotations

import importlib.util
import itertools
import re
import subprocess
import sys

import numpy as np
import pytest
import yaml

from conftest import rule_path
from neurodeploy import codegen
from neurodeploy.backend import REGISTRY
from neurodeploy.brian2 import backends as brian2_backends  # noqa: F401  (registers "brian2")
from neurodeploy.protocol import SpikeTrains, poisson
from neurodeploy.spec.loader import load_rule, rule_from_dict

_counter = itertools.count()

# (rule, parameter, new value as written in the rule file, the same as written in the script)
EDITS = [
    ("stdp_pair", "tau_plus", "40 ms", "40.0 * ms"),  # a trace's time constant
    ("stdp_pair", "w_max", 0.52, "0.52"),  # a bound
    ("stdp_pair", "w_min", 0.49, "0.49"),
    ("stdp_pair", "A_plus", 0.05, "0.05"),  # an update term (was already named)
    ("bcm", "tau_rate", "10 ms", "10.0 * ms"),  # time constant and jump 1 / tau_rate
    ("stp_tsodyks_markram", "U_SE", 0.2, "0.2"),  # a state-dependent jump
    ("stp_tsodyks_markram", "A_SE", "1000 pA", "1000.0 * pA"),  # a bound with a unit
    ("rstdp", "DA_reward", 2.0, "2.0"),  # a reward trace's jump
    ("calcium_graupner_brunel", "Cpre", 1.5, "1.5"),  # a delayed jump
    ("calcium_graupner_brunel", "D", "5 ms", "5.0 * ms"),  # the delay itself
]


def edited_rule(name: str, param: str, value):
    with open(rule_path(name)) as handle:
        data = yaml.safe_load(handle)
    data["parameters"][param] = value
    return rule_from_dict(data, f"{name}.yaml")


def edited_script(rule, tmp_path, param: str | None = None, value_text: str | None = None) -> str:
    (path,) = codegen.write_compiled(rule, "brian2", str(tmp_path))
    with open(path) as handle:
        source = handle.read()
    if param is not None:
        source, count = re.subn(rf"^{re.escape(param)} = .*$", f"{param} = {value_text}", source, flags=re.M)
        assert count == 1, f"no line '{param} = ...' at the top of the script"
        if "pA" in value_text and "import" in source and " pA" not in source.split("# -- parameters")[0]:
            source = source.replace("from brian2.units import ", "from brian2.units import pA, ", 1)
        with open(path, "w") as handle:
            handle.write(source)
    return path


def import_script(path):
    spec = importlib.util.spec_from_file_location(f"_edited_{next(_counter)}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def trains_for(rule):
    steps = 300 if rule.dt >= 1e-3 else 1500
    trains = poisson(rule, 3, 4, steps, 30.0, 2)
    rng = np.random.default_rng(9)
    w0 = rng.uniform(rule.weight.w_min, rule.weight.w_max, size=(4, 3))
    reward = None
    if rule.has_reward:
        reward = np.zeros((4, steps))
        reward[:, 50::60] = 1.0
    return SpikeTrains(trains.pre, trains.post, w0, "poisson", 2, 30.0, reward=reward)


def script_run(module, rule, trains):
    kwargs = {"reward": trains.reward} if trains.reward is not None else {}
    return module.simulate(trains.pre, trains.post, trains.w0, rule.dt, **kwargs)


@pytest.mark.parametrize("name, param, value, text", EDITS, ids=[f"{e[0]}-{e[1]}" for e in EDITS])
def test_edited_parameter_takes_effect(tmp_path, name, param, value, text):
    original = load_rule(rule_path(name))
    edited = edited_rule(name, param, value)
    trains = trains_for(original)
    backend = REGISTRY.get("brian2")
    expected_original = backend.run(original, trains, {}).trajectory
    expected_edited = backend.run(edited, trains, {}).trajectory
    tol = 1e-12 * original.weight.range
    assert np.abs(expected_edited - expected_original).max() > 1e3 * tol  # the edit changes the run
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    plain = import_script(edited_script(original, tmp_path / "a"))
    np.testing.assert_allclose(script_run(plain, original, trains), expected_original, rtol=0, atol=tol)
    changed = import_script(edited_script(original, tmp_path / "b", param, text))
    np.testing.assert_allclose(script_run(changed, original, trains), expected_edited, rtol=0, atol=tol)


def test_edited_w_init_changes_main(tmp_path):
    """w_init: the initial weight main() uses, run as a script (python file.py)."""
    original = load_rule(rule_path("stdp_pair"))
    edited = edited_rule("stdp_pair", "w_init", 0.8)
    path = edited_script(original, tmp_path, "w_init", "0.8")
    proc = subprocess.run([sys.executable, path], capture_output=True, text=True, timeout=300, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stdout.strip().splitlines() if line.strip()][1:]
    printed = np.array([[float(v) for v in line.split()] for line in lines])
    trains = poisson(edited, 10, 10, 100, 10.0, 0)  # the script's protocol (its constants)
    assert np.all(trains.w0 == 0.8)
    expected = REGISTRY.get("brian2").run(edited, trains, {}).trajectory[-1]
    np.testing.assert_allclose(printed, expected, rtol=0, atol=1e-9)
    assert np.abs(expected - REGISTRY.get("brian2").run(original, poisson(original, 10, 10, 100, 10.0, 0),
                                                           {}).trajectory[-1]).max() > 0.1


# -- the learning-engine script: the rule's parameters are baked into the plan, and the header says where

ENGINE_RULES = ["stdp_pair", "ltp_ltd_soft", "stdp_multiplicative", "stdp_triplet", "bcm", "oja", "hebbian_rate"]

STDP_PAIR_SECTION = """\
The rule's parameters are compiled into the plan
------------------------------------------------
This script has no variable named after a parameter of the rule: each is baked into the
fixed plan's constants below (quantized and scaled together in fixed point), so editing
one here would not re-plan. To change a parameter, edit the rule file and re-plan:
    neurodeploy compile stdp_pair.yaml --target lava --mode fixed --out DIR [--rate HZ | --protocol NAME | --spikes FILE.npz]
Where each went:
    A_plus: the constants S*2^E of DW
    A_minus: the constants S*2^E of DW
    tau_plus: X1_TAU
    tau_minus: Y1_TAU
    w_min: WEIGHT_SCALE and WEIGHT_BOUNDS_LAVA (the bounds)
    w_max: WEIGHT_SCALE and WEIGHT_BOUNDS_LAVA (the bounds)
    w_init: WEIGHT_INIT
"""


def lava_script(rule, tmp_path, mode="fixed") -> str:
    path = codegen.write_compiled(rule, "lava", str(tmp_path), mode=mode)[0]
    with open(path) as handle:
        return handle.read()


def test_lava_header_says_where_stdp_pairs_parameters_went(tmp_path):
    source = lava_script(load_rule(rule_path("stdp_pair")), tmp_path)
    assert STDP_PAIR_SECTION in source


@pytest.mark.parametrize("mode", ["fixed", "float"])
@pytest.mark.parametrize("name", ENGINE_RULES)
def test_lava_header_names_every_parameter_and_its_constants(tmp_path, name, mode):
    rule = load_rule(rule_path(name))
    source = lava_script(rule, tmp_path, mode)
    section = source.split("Where each went:\n", 1)[1].split("\n\n", 1)[0].splitlines()
    listed = dict(line.strip().split(": ", 1) for line in section)
    assert list(listed) == [p.name for p in rule.parameters]
    assert f"--target lava --mode {mode} --out DIR" in source
    assigned = {m.group(1): m.group(2) for m in re.finditer(r"^([A-Z][A-Z0-9_]*) = (.*?)(?:  #.*)?$", source, re.M)}
    for param, where in listed.items():
        assert where != "not used by the learning engine", param  # every library parameter reaches the engine
        for constant in re.findall(r"\b([XY][123]_(?:TAU|IMPULSE)|WEIGHT_INIT|WEIGHT_SCALE)\b", where):
            assert constant in assigned, (param, constant)
        for slot_tau in re.findall(r"\b([XY][123])_TAU\b", where):
            # independent expectation: the time constant in steps is the parameter / dt
            value = next(p.value for p in rule.parameters if p.name == param)
            assert float(assigned[f"{slot_tau}_TAU"]) == pytest.approx(value / rule.dt, rel=1e-12)


@pytest.mark.parametrize("name", ["stdp_pair", "rstdp"])
def test_brian2_script_simulates_a_mask_as_the_backend(tmp_path, name):
    import dataclasses

    rule = load_rule(rule_path(name))
    trains = trains_for(rule)
    mask = np.array([[1, 0, 1], [0, 1, 1], [1, 1, 0], [0, 0, 1]], dtype=bool)
    masked = dataclasses.replace(trains, mask=mask)
    expected = REGISTRY.get("brian2").run(rule, masked, {}).trajectory
    module = import_script(edited_script(rule, tmp_path))
    kwargs = {"reward": trains.reward} if trains.reward is not None else {}
    got = module.simulate(trains.pre, trains.post, trains.w0, rule.dt, mask=mask, **kwargs)
    assert np.isnan(got[:, ~mask]).all() and np.isnan(expected[:, ~mask]).all()
    np.testing.assert_allclose(got[:, mask], expected[:, mask], rtol=0, atol=1e-12 * rule.weight.range)
    assert np.ptp(expected[:, mask]) > 0


DERIVED = """\
name: derived
parameters: {A_minus: A_plus * tau_plus / tau_minus * 1.05, A_plus: 0.01, tau_plus: 20 ms,
             tau_minus: 2 * tau_plus, w_min: 0, w_max: 1, w_init: 0.5}
traces:
  x: {of: pre,  tau: tau_plus,  jump: 1}
  y: {of: post, tau: tau_minus, jump: 1}
weight: {on_pre: -A_minus * y, on_post: A_plus * x, bounds: [w_min, w_max], init: w_init}
"""


def test_a_derived_parameter_follows_an_edit_of_what_it_is_defined_from(tmp_path):
    """tau_minus = 2 * tau_plus and A_minus = A_plus * tau_plus / tau_minus * 1.05 (written before the
    parameters it reads): editing tau_plus in the script changes both, as editing it in the rule file does."""
    data = yaml.safe_load(DERIVED)
    original = rule_from_dict(data, "derived.yaml")
    edited = rule_from_dict(dict(data, parameters=dict(data["parameters"], tau_plus="35 ms")), "derived.yaml")
    assert {p.name: p.value for p in edited.parameters}["tau_minus"] == pytest.approx(0.07, rel=1e-15)
    trains = trains_for(original)
    backend = REGISTRY.get("brian2")
    expected_original = backend.run(original, trains, {}).trajectory
    expected_edited = backend.run(edited, trains, {}).trajectory
    tol = 1e-12 * original.weight.range
    assert np.abs(expected_edited - expected_original).max() > 1e3 * tol
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    plain = import_script(edited_script(original, tmp_path / "a"))
    np.testing.assert_allclose(script_run(plain, original, trains), expected_original, rtol=0, atol=tol)
    changed = import_script(edited_script(original, tmp_path / "b", "tau_plus", "35.0 * ms"))
    assert float(changed.tau_minus) == pytest.approx(0.07, rel=1e-15)
    np.testing.assert_allclose(script_run(changed, original, trains), expected_edited, rtol=0, atol=tol)


REST_RULE = """\
name: rested
parameters: {A: 0.01, tau: 20 ms, R0: 0.5, w_min: 0, w_max: 1, w_init: 0.5}
traces:
  x: {of: pre,  tau: tau, rest: R0, jump: 1}
  y: {of: post, tau: tau, jump: 1}
weight: {on_pre: -A * y, on_post: A * x, bounds: [w_min, w_max], init: w_init}
"""


def test_an_edited_rest_parameter_is_where_the_trace_starts_and_relaxes_to(tmp_path):
    """Was: the script's REST table kept the rule's number, so an edited R0 moved where the trace
    relaxes to but not where it starts (unlike the same edit in the rule file)."""
    data = yaml.safe_load(REST_RULE)
    original = rule_from_dict(data, "rested.yaml")
    edited = rule_from_dict(dict(data, parameters=dict(data["parameters"], R0=0.2)), "rested.yaml")
    trains = trains_for(original)
    backend = REGISTRY.get("brian2")
    expected_edited = backend.run(edited, trains, {}).trajectory
    tol = 1e-12 * original.weight.range
    assert np.abs(expected_edited - backend.run(original, trains, {}).trajectory).max() > 1e3 * tol
    changed = import_script(edited_script(original, tmp_path, "R0", "0.2"))
    np.testing.assert_allclose(script_run(changed, original, trains), expected_edited, rtol=0, atol=tol)
