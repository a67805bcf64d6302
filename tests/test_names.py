"""Names never change numbers: a rule whose parameters and traces are renamed to names Brian2
or sympy resolve by themselves (units, functions, constants, group variables, sympy's single
letters) gives bit-identical trajectories on ``brian2`` and ``brian2-step``, or is refused with
one line (the words of the rule language itself: ``w`` and the functions).

The names are taken from Brian2 and sympy, not written here; a deterministic sample keeps the
test short."""
from __future__ import annotations

import importlib.util
import random
import re
import string
import sys

import brian2
import numpy as np
import pytest
import sympy
import yaml
from brian2.core.functions import DEFAULT_CONSTANTS, DEFAULT_FUNCTIONS
from brian2.units.allunits import all_units

from conftest import rule_path
from neurodeploy import codegen
from neurodeploy.targets import load_all
from neurodeploy.errors import NeurodeployError
from neurodeploy.protocol import make_trains
from neurodeploy.spec.loader import _IDENT, MAX_NAME, RESERVED, _looks_quantity, rule_from_dict

REG = load_all()
RULES = ["stdp_pair", "stdp_triplet", "rstdp", "stp_tsodyks_markram"]
BACKENDS = ("brian2", "brian2-step")
#: Names the issue names; the sources below must contain each of them.
HEADLINE = ["pi", "e", "inf", "E", "S", "Q", "O", "I", "N", "radian", "N_incoming", "N_outgoing",
            "t_in_timesteps", "volt", "ms", "mV", "sin", "rand", "clip", "delay", "lastupdate",
            "i", "j", "t", "dt", "exp"]
ROUNDS = 3


def brian2_and_sympy_names() -> dict:
    """Source -> names Brian2 or sympy resolve without being told (identifiers only)."""
    source = brian2.SpikeGeneratorGroup(1, [], [] * brian2.ms)
    neurons = brian2.NeuronGroup(1, "v : 1", threshold="v > 1", refractory=1 * brian2.ms)
    synapses = brian2.Synapses(source, neurons, "w : 1\ndx/dt = -x / (10*ms) : 1 (event-driven)",
                               on_pre="x += 1")
    brian2.Network(source, neurons, synapses)  # (used: no warning when they are collected)
    units = {u.name for u in all_units}
    units |= {n for n in dir(brian2.units) if isinstance(getattr(brian2.units, n), brian2.Unit)}
    return {
        "units": units,
        "functions": set(DEFAULT_FUNCTIONS),
        "constants": set(DEFAULT_CONSTANTS),
        "group variables": set(synapses.variables) | set(synapses.pre.variables) | set(neurons.variables),
        "sympy": {c for c in string.ascii_letters if hasattr(sympy, c)},
    }


def candidates() -> list:
    """Every identifier a rule file could use from the sources, headline names first, then a
    deterministic shuffle of the rest."""
    names = set().union(*brian2_and_sympy_names().values())
    names = {n for n in names if _IDENT.match(n) and len(n) <= MAX_NAME
             and not n.endswith(("_pre", "_post")) and not n.startswith("nd_")}
    rest = sorted(names - set(HEADLINE))
    random.Random(14).shuffle(rest)
    return HEADLINE + rest


def rename(data: dict, mapping: dict) -> dict:
    """The rule file ``data`` with every parameter and trace renamed by ``mapping`` (all at once)."""
    def text(value):
        if isinstance(value, str) and not _looks_quantity(value):
            return re.sub(r"[A-Za-z_][A-Za-z0-9_]*", lambda m: mapping.get(m.group(0), m.group(0)), value)
        if isinstance(value, list):
            return [text(v) for v in value]
        return value

    out = dict(data)
    out["parameters"] = {mapping.get(k, k): text(v) for k, v in data.get("parameters", {}).items()}
    out["traces"] = {mapping.get(k, k): {f: text(v) for f, v in spec.items()} for k, spec in data["traces"].items()}
    out["weight"] = {f: text(v) for f, v in data["weight"].items()}
    return out


def identifiers(data: dict) -> list:
    return list(data.get("parameters", {})) + list(data["traces"])


def load(name):
    with open(rule_path(name)) as handle:
        return yaml.safe_load(handle)


def run(rule, trains):
    return {b: REG.get(b).run(rule, trains, {}).trajectory for b in BACKENDS}


def test_sources_hold_the_names_of_the_issue():
    names = set().union(*brian2_and_sympy_names().values())
    assert set(HEADLINE) <= names, sorted(set(HEADLINE) - names)


def test_sympy_letters_stay_plain_symbols():
    data = rename(load("stdp_pair"), {"A_plus": "S", "A_minus": "Q", "x": "E", "y": "I", "tau_plus": "O",
                                      "tau_minus": "N"})
    rule = rule_from_dict(data, "stdp_pair.yaml")
    assert {s.name for s in rule.weight.on_pre.free_symbols} == {"Q", "I"}
    assert {s.name for s in rule.weight.on_post.free_symbols} == {"S", "E"}
    assert all(isinstance(s, sympy.Symbol) for s in rule.weight.on_post.free_symbols)


@pytest.mark.parametrize("name", RULES)
def test_renamed_rules_give_bit_identical_trajectories(name):
    data = load(name)
    rule = rule_from_dict(data, f"{name}.yaml")
    trains = make_trains(rule, "poisson", {"n_pre": 3, "n_post": 2, "steps": 300, "rate": 30.0}, seed=5)
    reference = run(rule, trains)
    pool = [n for n in candidates() if n not in RESERVED]
    ids = identifiers(data)
    start = RULES.index(name) * 7  # each rule starts elsewhere in the pool, the headline names first
    for round_ in range(ROUNDS):
        chosen = [pool[(start + round_ * len(ids) + k) % len(pool)] for k in range(len(ids))]
        mapping = dict(zip(ids, chosen))
        renamed = rule_from_dict(rename(data, mapping), f"{name}.yaml")
        got = run(renamed, trains)
        for backend in BACKENDS:
            assert np.array_equal(got[backend], reference[backend]), (backend, mapping)
        assert np.abs(reference["brian2"] - trains.w0).max() > 0  # the rule did something


@pytest.mark.parametrize("reserved", sorted(RESERVED))
def test_words_of_the_rule_language_are_refused(reserved):
    data = rename(load("stdp_pair"), {"A_plus": reserved})
    with pytest.raises(NeurodeployError) as info:
        rule_from_dict(data, "stdp_pair.yaml")
    assert str(info.value) == (f"stdp_pair.yaml: parameters.{reserved}: '{reserved}' is reserved "
                               f"(reserved: {', '.join(sorted(RESERVED))})")


def test_standalone_brian2_script_with_colliding_names(tmp_path):
    """The emitted script binds the renamed parameters and reproduces the backend to the bit."""
    mapping = {"A_plus": "pi", "A_minus": "e", "tau_plus": "ms", "tau_minus": "t", "w_min": "N", "w_max": "volt",
               "w_init": "S", "x": "i", "y": "lastupdate"}
    rule = rule_from_dict(rename(load("stdp_pair"), mapping), "stdp_pair.yaml")
    (path,) = codegen.write_compiled(rule, "brian2", str(tmp_path))
    spec = importlib.util.spec_from_file_location("_emitted_names", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["_emitted_names"] = module
    spec.loader.exec_module(module)
    trains = make_trains(rule, "poisson", {"n_pre": 3, "n_post": 2, "steps": 200, "rate": 30.0}, seed=1)
    expected = REG.get("brian2").run(rule, trains, {}).trajectory
    got = module.simulate(trains.pre, trains.post, trains.w0)
    assert np.array_equal(got, expected)
    source = open(path).read()
    assert "r01_pi" in source and "'r01_pi': pi" in source
