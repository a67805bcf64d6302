"""Every user-facing error, checked by its full text.

Bad rule files are written into ``tmp_path`` from a copy of the good
``stdp_pair`` rule with one change, so each test names exactly what is wrong.
Nothing here runs a backend simulation.
"""
from __future__ import annotations

import os
import subprocess
import sys
import uuid
import zipfile

import numpy as np
import pytest

from conftest import rule_path
from neurodeploy.cli import main
from neurodeploy.errors import NeurodeployError, UnsupportedError
from neurodeploy.compile.lowering import lower
from neurodeploy.protocol import load_spikes
from neurodeploy.spec.loader import load_rule

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: A copy of reference/rules/stdp_pair.yaml (kept here so line numbers in
#: YAML messages do not move when the reference file is edited).
GOOD = """\
name: stdp_pair
description: Additive pair-based STDP with hard bounds.
citation: Song, Miller & Abbott (2000) Nat Neurosci 3:919
parameters: {A_plus: 0.01, A_minus: 0.0105, tau_plus: 20 ms, tau_minus: 20 ms,
             w_min: 0, w_max: 1, w_init: 0.5}
traces:
  x: {of: pre,  tau: tau_plus,  jump: 1}    # x += 1 at each pre spike
  y: {of: post, tau: tau_minus, jump: 1}
weight:
  on_pre:  -A_minus * y
  on_post:  A_plus * x
  bounds: [w_min, w_max]
  init: w_init
"""

TRACE_X = "  x: {of: pre,  tau: tau_plus,  jump: 1}    # x += 1 at each pre spike\n"
TRACES = "traces:\n" + TRACE_X + "  y: {of: post, tau: tau_minus, jump: 1}\n"
ON_POST = "on_post:  A_plus * x"
RESERVED = "abs, exp, heaviside, log, sqrt, w"
KNOWN = "A_minus, A_plus, tau_minus, tau_plus, w, w_init, w_max, w_min, x, y"


def changed(old: str, new: str) -> str:
    """GOOD with the one occurrence of ``old`` replaced by ``new``."""
    assert GOOD.count(old) == 1, old
    return GOOD.replace(old, new)


def yq(text: str) -> str:
    """``text`` as a single-quoted YAML scalar."""
    return "'" + text.replace("'", "''") + "'"


def on_post(expression: str) -> str:
    return changed(ON_POST, "on_post: " + yq(expression))


@pytest.fixture
def rule_file(tmp_path):
    """Write rule text (str) or bytes to tmp_path/stdp_pair.yaml; return its path."""
    def write(content, name="stdp_pair.yaml") -> str:
        path = tmp_path / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return str(path)
    return write


def load_error(path) -> str:
    with pytest.raises(NeurodeployError) as info:
        load_rule(path)
    return str(info.value)


def test_good_copy_loads(rule_file):
    rule = load_rule(rule_file(GOOD))
    assert rule.name == "stdp_pair"
    assert rule.weight.w_init == 0.5


# --- rule files: one change each ------------------------------------------------

RULE_CASES = [
    # missing fields
    ("missing name", changed("name: stdp_pair\n", ""),
     "stdp_pair.yaml: name: missing"),
    ("missing traces", changed(TRACES, ""),
     "stdp_pair.yaml: traces: missing"),
    ("missing weight", GOOD.split("weight:")[0],
     "stdp_pair.yaml: weight: missing"),
    ("missing weight.bounds", changed("  bounds: [w_min, w_max]\n", ""),
     "stdp_pair.yaml: weight.bounds: missing"),
    ("missing traces.x.of", changed("{of: pre,  tau: tau_plus,", "{tau: tau_plus,"),
     "stdp_pair.yaml: traces.x.of: missing"),
    ("missing traces.x.tau", changed("{of: pre,  tau: tau_plus,", "{of: pre,"),
     "stdp_pair.yaml: traces.x.tau: missing"),
    # unknown fields
    ("unknown top-level field", GOOD + "extra: 1\n",
     "stdp_pair.yaml: extra: unknown field "
     "(allowed: name, description, citation, parameters, traces, weight, simulation)"),
    ("unknown trace field", changed("tau: tau_plus,  jump: 1}", "tau: tau_plus,  jump: 1, decay: 2}"),
     "stdp_pair.yaml: traces.x.decay: unknown field, did you mean 'delay'? (allowed: of, tau, jump, rest, delay, on_pre, on_post)"),
    ("unknown simulation field", GOOD + "simulation: {foo: 1}\n",
     "stdp_pair.yaml: simulation.foo: unknown field (allowed: dt, t_epoch)"),
    # tau
    ("tau 0 ms", changed("tau: tau_plus,", "tau: 0 ms,"),
     "stdp_pair.yaml: traces.x.tau: must be > 0 (got 0 ms)"),
    ("tau parameter 0 ms", changed("tau_plus: 20 ms", "tau_plus: 0 ms"),
     "stdp_pair.yaml: traces.x.tau: must be > 0 (got tau_plus = 0 ms)"),
    ("tau negative", changed("tau: tau_plus,", "tau: -5 ms,"),
     "stdp_pair.yaml: traces.x.tau: must be > 0 (got -5 ms)"),
    ("tau in mV", changed("tau: tau_plus,", "tau: 20 mV,"),
     "stdp_pair.yaml: traces.x.tau: must be a time (got 20 mV, volt)"),
    ("tau parameter in mV", changed("tau_plus: 20 ms", "tau_plus: 20 mV"),
     "stdp_pair.yaml: traces.x.tau: must be a time (got tau_plus = 20 mV, volt)"),
    ("tau dimensionless", changed("tau: tau_plus,", "tau: 20,"),
     "stdp_pair.yaml: traces.x.tau: must be a time (got 20, dimensionless)"),
    ("tau shorter than dt", changed("tau: tau_plus,", "tau: 0.1 ms,"),
     "stdp_pair.yaml: traces.x.tau: must be at least one time step dt=1 ms (got 0.1 ms)"),
    ("tau as expression", changed("tau: tau_plus,", "tau: 2*tau_plus,"),
     "stdp_pair.yaml: traces.x.tau: must be a number with an optional unit such as '20 ms' "
     "(got '2*tau_plus')"),
    # units, NaN, inf
    ("unknown unit in tau", changed("tau: tau_plus,", "tau: 20 parsecs,"),
     "stdp_pair.yaml: traces.x.tau: unknown unit 'parsecs' (got '20 parsecs')"),
    ("unknown unit in parameter", changed("A_plus: 0.01", "A_plus: 0.01 furlongs"),
     "stdp_pair.yaml: parameters.A_plus: unknown unit 'furlongs' (got '0.01 furlongs')"),
    ("parameter NaN", changed("A_plus: 0.01", "A_plus: .nan"),
     "stdp_pair.yaml: parameters.A_plus: must be finite (got nan)"),
    ("parameter inf", changed("A_plus: 0.01", "A_plus: .inf"),
     "stdp_pair.yaml: parameters.A_plus: must be finite (got inf)"),
    ("parameter -inf", changed("A_plus: 0.01", "A_plus: -.inf"),
     "stdp_pair.yaml: parameters.A_plus: must be finite (got -inf)"),
    ("parameter 'nan' text", changed("A_plus: 0.01", "A_plus: 'nan'"),
     "stdp_pair.yaml: parameters.A_plus: unknown name 'nan' (known: A_minus, A_plus, tau_minus, tau_plus, w_init, w_max, w_min) (got 'nan')"),
    ("parameter overflows", changed("A_plus: 0.01", "A_plus: 1e400"),
     "stdp_pair.yaml: parameters.A_plus: must be finite (got '1e400')"),
    ("tau NaN", changed("tau: tau_plus,", "tau: .nan,"),
     "stdp_pair.yaml: traces.x.tau: must be finite (got nan)"),
    ("tau overflows after unit", changed("tau: tau_plus,", "tau: 1e306 ksecond,"),
     "stdp_pair.yaml: traces.x.tau: must be finite (got '1e306 ksecond')"),
    ("jump inf", changed("jump: 1}    #", "jump: .inf}    #"),
     "stdp_pair.yaml: traces.x.jump: must be finite (got inf)"),
    ("jump expression overflows", changed("jump: 1}    #", "jump: '1e308*10'}    #"),
     "stdp_pair.yaml: traces.x.jump: constant larger than 1e+300 (got '1e308*10')"),
    ("jump 0", changed("jump: 1}    #", "jump: 0}    #"),
     "stdp_pair.yaml: traces.x.jump: must not be 0 (got 0)"),
    ("parameter not a number", changed("A_plus: 0.01", "A_plus: [1]"),
     "stdp_pair.yaml: parameters.A_plus: must be a number with an optional unit (got [1])"),
    # bounds and init
    ("w_min == w_max", changed("w_min: 0,", "w_min: 1,"),
     "stdp_pair.yaml: weight.bounds: lower bound must be < upper bound (got [1, 1])"),
    ("w_min > w_max", changed("w_min: 0,", "w_min: 2,"),
     "stdp_pair.yaml: weight.bounds: lower bound must be < upper bound (got [2, 1])"),
    ("bounds NaN", changed("w_max: 1,", "w_max: .nan,"),
     "stdp_pair.yaml: parameters.w_max: must be finite (got nan)"),
    ("bounds of three", changed("bounds: [w_min, w_max]", "bounds: [0, 1, 2]"),
     "stdp_pair.yaml: weight.bounds: must be a list [lower, upper] (got [0, 1, 2])"),
    ("bounds with different units", changed("bounds: [w_min, w_max]", "bounds: [0 mV, 1]"),
     "stdp_pair.yaml: weight.bounds: bounds have different units (volt and dimensionless)"),
    ("init above bounds", changed("w_init: 0.5", "w_init: 1.5"),
     "stdp_pair.yaml: weight.init: must lie within the bounds [0, 1] (got 1.5)"),
    ("init below bounds", changed("init: w_init", "init: -0.25"),
     "stdp_pair.yaml: weight.init: must lie within the bounds [0, 1] (got -0.25)"),
    ("init with a unit", changed("w_init: 0.5", "w_init: 0.5 mV"),
     "stdp_pair.yaml: weight.init: must have the unit of the bounds, dimensionless (got w_init = 0.5 mV)"),
    # expressions
    ("unknown name", on_post("A_plus * z"),
     f"stdp_pair.yaml: weight.on_post: unknown name 'z' (known: {KNOWN}) (got 'A_plus * z')"),
    ("attribute access", on_post("w.__class__"),
     "stdp_pair.yaml: weight.on_post: attribute access is not allowed (got 'w.__class__')"),
    ("call of open", on_post("open('x')"),
     "stdp_pair.yaml: weight.on_post: function 'open' is not allowed (allowed: abs, exp, heaviside, log, sqrt) "
     "(got \"open('x')\")"),
    ("lambda", on_post("lambda: 1"),
     "stdp_pair.yaml: weight.on_post: lambda is not allowed (got 'lambda: 1')"),
    ("comprehension", on_post("[a for a in x]"),
     "stdp_pair.yaml: weight.on_post: comprehension is not allowed (got '[a for a in x]')"),
    ("subscript", on_post("x[0]"),
     "stdp_pair.yaml: weight.on_post: subscript is not allowed (got 'x[0]')"),
    ("conditional", on_post("A_plus * x if x else 0"),
     "stdp_pair.yaml: weight.on_post: conditional expression is not allowed (got 'A_plus * x if x else 0')"),
    ("comparison", on_post("x < y"),
     "stdp_pair.yaml: weight.on_post: comparison is not allowed (got 'x < y')"),
    ("modulo", on_post("abs(x) % 2"),
     "stdp_pair.yaml: weight.on_post: operator '%' is not allowed (got 'abs(x) % 2')"),
    ("string constant", on_post("'abc'"),
     "stdp_pair.yaml: weight.on_post: constant 'abc' is not a number (got \"'abc'\")"),
    ("statement after expression", on_post("A_plus * x; import os"),
     "stdp_pair.yaml: weight.on_post: invalid syntax at column 11 (got 'A_plus * x; import os')"),
    ("function not called", on_post("exp"),
     "stdp_pair.yaml: weight.on_post: function 'exp' must be called (got 'exp')"),
    ("function with two arguments", on_post("exp(x, y)"),
     "stdp_pair.yaml: weight.on_post: function 'exp' takes exactly one argument (got 'exp(x, y)')"),
    ("exponent not a literal", on_post("2**10**10"),
     "stdp_pair.yaml: weight.on_post: exponent must be a number or a parameter (got '2**10**10')"),
    ("exponent a name", on_post("A_plus ** x"),
     "stdp_pair.yaml: weight.on_post: exponent must be a number or a parameter (got 'A_plus ** x')"),
    ("exponent too large", on_post("2**100"),
     "stdp_pair.yaml: weight.on_post: exponent 100 is larger than 16 in magnitude (got '2**100')"),
    ("literal overflows", on_post("1e999"),
     "stdp_pair.yaml: weight.on_post: constant inf is not finite (got '1e999')"),
    ("division by zero", on_post("A_plus / 0"),
     "stdp_pair.yaml: weight.on_post: division by zero (got 'A_plus / 0')"),
    ("5000 nested parentheses", on_post("(" * 5000 + "x" + ")" * 5000),
     "stdp_pair.yaml: weight.on_post: expression longer than 2000 characters"),
    ("100 nested parentheses", on_post("(" * 100 + "x" + ")" * 100),
     "stdp_pair.yaml: weight.on_post: nested deeper than 64 levels"),
    ("dimension mismatch", on_post("A_plus + tau_plus"),
     "stdp_pair.yaml: weight.on_post: adds 'A_plus' (dimensionless) and 'tau_plus' (second) (got 'A_plus + tau_plus')"),
    ("exp of a time", on_post("exp(tau_plus)"),
     "stdp_pair.yaml: weight.on_post: exp() needs a dimensionless argument, 'tau_plus' is second (got 'exp(tau_plus)')"),
    ("on_pre with the wrong unit", changed("on_pre:  -A_minus * y", "on_pre: -tau_minus * y"),
     "stdp_pair.yaml: weight.on_pre: must have the unit of w, dimensionless (got second from '-tau_minus * y')"),
    ("on_pre not an expression", changed("on_pre:  -A_minus * y", "on_pre: [1]"),
     "stdp_pair.yaml: weight.on_pre: must be an expression (got list)"),
    ("no update at all", changed("on_pre:  -A_minus * y", "on_pre: 0").replace(ON_POST, "on_post: 0"),
     "stdp_pair.yaml: weight: needs on_pre, on_post or continuous"),
    ("jump dimension mismatch", changed("jump: 1}    #", "jump: A_plus + tau_plus}    #"),
     "stdp_pair.yaml: traces.x.jump: adds 'A_plus' (dimensionless) and 'tau_plus' (second) (got 'A_plus + tau_plus')"),
    # YAML
    ("alias", changed("parameters: {A_plus: 0.01,", "parameters: {A_plus: &a 0.01, B: *a,"),
     "stdp_pair.yaml: invalid YAML at line 4: anchors and aliases are not allowed"),
    ("duplicated key", changed("  init: w_init\n", "  init: w_init\n  init: 0.5\n"),
     "stdp_pair.yaml: invalid YAML at line 14: duplicated key"),
    ("duplicated nested key", changed("{of: pre,  tau: tau_plus,", "{of: pre, of: post, tau: tau_plus,"),
     "stdp_pair.yaml: invalid YAML at line 7: duplicated key"),
    ("invalid YAML syntax", changed("traces:", "traces: ["),
     "stdp_pair.yaml: invalid YAML at line 8: expected ',' or ']', but got '<scalar>'"),
    ("python tag", changed("A_plus: 0.01", "A_plus: !!python/object:os.system 'x'"),
     "stdp_pair.yaml: invalid YAML at line 4: tags (!name) are not allowed"),
    ("empty file", "",
     "stdp_pair.yaml: file is empty"),
    ("only a comment", "# nothing\n",
     "stdp_pair.yaml: file is empty"),
    ("top level is a list", "- 1\n- 2\n",
     "stdp_pair.yaml: must be a mapping (got list)"),
    ("file too large", "name: x\n" + "#" * 300_000,
     "stdp_pair.yaml: file too large (more than 16384 bytes)"),
    # names
    ("reserved parameter name w", changed("A_plus: 0.01", "w: 0.01"),
     f"stdp_pair.yaml: parameters.w: 'w' is reserved (reserved: {RESERVED})"),
    ("reserved parameter name exp", changed("A_plus: 0.01", "exp: 0.01"),
     f"stdp_pair.yaml: parameters.exp: 'exp' is reserved (reserved: {RESERVED})"),
    ("reserved trace name", changed("  x: {of", "  w: {of"),
     f"stdp_pair.yaml: traces.w: 'w' is reserved (reserved: {RESERVED})"),
    ("trace named like a parameter", changed("  x: {of", "  A_plus: {of"),
     "stdp_pair.yaml: traces.A_plus: 'A_plus' is already a parameter"),
    ("parameter not an identifier", changed("A_plus: 0.01", "1abc: 0.01"),
     "stdp_pair.yaml: parameters.1abc: must be an identifier such as 'tau_plus' (got '1abc')"),
    ("rule name not an identifier", changed("name: stdp_pair", "name: 'stdp pair'"),
     "stdp_pair.yaml: name: must be an identifier such as 'stdp_pair' (got 'stdp pair')"),
    ("trace of neither side", changed("of: pre,", "of: both,"),
     "stdp_pair.yaml: traces.x.of: must be one of pre, post, reward, synapse (got 'both')"),
    # traces of the other kinds, delays, rest values, continuous terms
    ("synapse without updates", changed(TRACE_X, TRACE_X + "  c: {of: synapse, tau: 1 s}\n"),
     "stdp_pair.yaml: traces.c: a synapse trace needs on_pre or on_post"),
    ("synapse with jump", changed(TRACE_X, TRACE_X + "  c: {of: synapse, tau: 1 s, jump: 1, on_pre: y}\n"),
     "stdp_pair.yaml: traces.c.jump: not a field of a synapse trace (allowed: of, tau, rest, on_pre, on_post)"),
    ("synapse update unit", changed(TRACE_X, TRACE_X + "  c: {of: synapse, tau: 1 s, on_pre: y, on_post: tau_plus}\n"),
     "stdp_pair.yaml: traces.c.on_post: must have the unit of c, dimensionless (got second from 'tau_plus')"),
    ("delay not whole steps", changed("jump: 1}    #", "jump: 1, delay: 1.5 ms}    #"),
     "stdp_pair.yaml: traces.x.delay: must be a whole number of time steps dt=1 ms (got 1.5 ms)"),
    ("negative delay", changed("jump: 1}    #", "jump: 1, delay: -2 ms}    #"),
     "stdp_pair.yaml: traces.x.delay: must be >= 0 (got -2 ms)"),
    ("delay not a time", changed("jump: 1}    #", "jump: 1, delay: 2 mV}    #"),
     "stdp_pair.yaml: traces.x.delay: must be a time (got 2 mV, volt)"),
    ("jump reads the other side", changed("jump: 1}    #", "jump: 1 - y}    #"),
     "stdp_pair.yaml: traces.x.jump: may read only presynaptic traces ('y' is a post trace)"),
    ("reward jump reads a trace", changed(TRACE_X, TRACE_X + "  r: {of: reward, tau: 1 s, jump: 1 - x}\n"),
     "stdp_pair.yaml: traces.r.jump: must be a constant: a reward trace jumps by jump * reward (got '1 - x')"),
    ("rest of another unit", changed("jump: 1}    #", "jump: 1, rest: 1 mV}    #"),
     "stdp_pair.yaml: traces.x.rest: must have the unit of the jump, dimensionless (got 1 mV)"),
    ("continuous not per second", changed("  on_pre:  -A_minus * y\n", "  on_pre:  -A_minus * y\n  continuous: x * y\n"),
     "stdp_pair.yaml: weight.continuous: must have the unit of w per second, hertz (got dimensionless from 'x * y')"),
    ("name nd_", changed("w_init: 0.5}", "w_init: 0.5, nd_x: 1}"),
     "stdp_pair.yaml: parameters.nd_x: names starting with nd_ are reserved for generated code (got 'nd_x')"),
    # simulation
    ("t_epoch 0", GOOD + "simulation: {t_epoch: 0}\n",
     "stdp_pair.yaml: simulation.t_epoch: must be a whole number of steps from 1 to 63 (got 0)"),
    ("t_epoch 64", GOOD + "simulation: {t_epoch: 64}\n",
     "stdp_pair.yaml: simulation.t_epoch: must be a whole number of steps from 1 to 63 (got 64)"),
    ("t_epoch fractional", GOOD + "simulation: {t_epoch: 1.5}\n",
     "stdp_pair.yaml: simulation.t_epoch: must be a whole number of steps from 1 to 63 (got 1.5)"),
    ("dt 0", GOOD + "simulation: {dt: 0 ms}\n",
     "stdp_pair.yaml: simulation.dt: must be > 0 (got 0 s)"),
    ("dt not a time", GOOD + "simulation: {dt: 1 mV}\n",
     "stdp_pair.yaml: simulation.dt: must be a time (got 1 mV)"),
]


@pytest.mark.parametrize("text, expected", [c[1:] for c in RULE_CASES], ids=[c[0] for c in RULE_CASES])
def test_rule_error(rule_file, text, expected):
    assert load_error(rule_file(text)) == expected


def test_import_call_is_refused_and_not_run(rule_file, tmp_path):
    target = tmp_path / f"pwned-{uuid.uuid4().hex}"
    expression = f"__import__('os').system('touch {target}')"
    path = rule_file(on_post(expression))
    assert load_error(path) == (
        "stdp_pair.yaml: weight.on_post: only abs, exp, heaviside, log, sqrt may be called, by name "
        "(attribute access is not allowed) "
        f"(got \"__import__('os').system('touch {target}')\")")
    assert not target.exists()


def test_plain_import_call_is_refused_and_not_run(rule_file, tmp_path):
    target = tmp_path / f"pwned-{uuid.uuid4().hex}"
    path = rule_file(on_post(f"__import__('pathlib').Path('{target}').touch()"))
    with pytest.raises(NeurodeployError):
        load_rule(path)
    assert not target.exists()


def test_non_utf8(rule_file):
    assert load_error(rule_file(b"name: caf\xe9\n")) == "stdp_pair.yaml: not UTF-8 text (byte 9)"


def test_directory(tmp_path):
    folder = tmp_path / "rules.d"
    folder.mkdir()
    assert load_error(str(folder)) == "rules.d: is a directory, not a file"


def test_missing_file(tmp_path):
    assert load_error(str(tmp_path / "nope.yaml")) == "nope.yaml: no such file"


def test_sequence_as_key(rule_file):
    assert load_error(rule_file(changed("  x: {of", "  [1]: {of"))) == \
        "stdp_pair.yaml: invalid YAML at line 7: keys must be plain values"


# --- spike files ------------------------------------------------------------------

@pytest.fixture
def rule(rule_file):
    return load_rule(rule_file(GOOD))


@pytest.fixture
def npz(tmp_path):
    def write(**arrays) -> str:
        path = tmp_path / "spikes.npz"
        np.savez(path, **arrays)
        return str(path)
    return write


PRE = np.zeros((2, 10), dtype=bool)
POST = np.zeros((3, 10), dtype=bool)


def spikes_error(path, rule) -> str:
    with pytest.raises(NeurodeployError) as info:
        load_spikes(path, rule)
    return str(info.value)


@pytest.mark.parametrize("arrays, expected", [
    (dict(pre=PRE), "spikes.npz: post: missing"),
    (dict(post=POST), "spikes.npz: pre: missing"),
    (dict(pre=PRE, post=np.zeros((3, 9), dtype=bool)),
     "spikes.npz: post: must have as many steps as pre (10) (got 9)"),
    (dict(pre=PRE, post=np.full((3, 10), 2, dtype=np.int64)),
     "spikes.npz: post: must be boolean or 0/1 (got dtype int64)"),
    (dict(pre=np.full((2, 10), 0.5), post=POST),
     "spikes.npz: pre: must be boolean or 0/1 (got dtype float64)"),
    (dict(pre=np.zeros(10, dtype=bool), post=POST),
     "spikes.npz: pre: must be a 2-D raster (neurons, steps) (got shape (10,))"),
    (dict(pre=PRE, post=POST, w0=np.zeros((2, 3))),
     "spikes.npz: w0: must be a number array of shape (n_post, n_pre) = (3, 2) (got (2, 3))"),
    (dict(pre=PRE, post=POST, w0=np.full((3, 2), 1.5)),
     "spikes.npz: w0: must lie within the rule's bounds [0, 1]"),
    (dict(pre=PRE, post=POST, w0=np.full((3, 2), np.nan)),
     "spikes.npz: w0: must lie within the rule's bounds [0, 1]"),
    (dict(pre=PRE, post=POST, reward=np.zeros(9)),
     "spikes.npz: reward: must be numbers of shape (steps,) = (10,) or (n_post, steps) = (3, 10) (got float64 (9,))"),
    (dict(pre=PRE, post=POST, reward=np.zeros((2, 10))),
     "spikes.npz: reward: must be numbers of shape (steps,) = (10,) or (n_post, steps) = (3, 10) (got float64 (2, 10))"),
    (dict(pre=PRE, post=POST, reward=np.full(10, np.inf)),
     "spikes.npz: reward: must be finite numbers"),
    (dict(pre=PRE, post=POST, reward=np.ones(10, dtype=bool)),
     "spikes.npz: reward: must be numbers of shape (steps,) = (10,) or (n_post, steps) = (3, 10) (got bool (10,))"),
], ids=["missing post", "missing pre", "mismatched steps", "value 2", "value 0.5", "1-D",
        "w0 wrong shape", "w0 outside bounds", "w0 NaN", "reward steps", "reward neurons", "reward inf",
        "reward bool"])
def test_spikes_error(npz, rule, arrays, expected):
    assert spikes_error(npz(**arrays), rule) == expected


def test_spikes_not_npz(tmp_path, rule):
    path = tmp_path / "spikes.npz"
    path.write_text("hello world")
    assert spikes_error(str(path), rule) == "spikes.npz: not a readable NPZ file (ValueError)"


def test_spikes_empty_file(tmp_path, rule):
    path = tmp_path / "spikes.npz"
    path.write_bytes(b"")
    assert spikes_error(str(path), rule) == "spikes.npz: not a readable NPZ file (EOFError)"


def test_spikes_missing_and_directory(tmp_path, rule):
    assert spikes_error(str(tmp_path / "nope.npz"), rule) == "nope.npz: no such file"
    assert spikes_error(str(tmp_path), rule) == f"{tmp_path.name}: is a directory, not a file"


def test_spikes_npy_instead_of_npz(tmp_path, rule):
    path = tmp_path / "spikes.npy"
    np.save(path, PRE)
    assert spikes_error(str(path), rule) == \
        "spikes.npy: not an NPZ archive (a single array: save pre and post with numpy.savez)"


def test_spikes_zip_with_garbage_members(tmp_path, rule):
    path = tmp_path / "spikes.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("pre.npy", b"garbage")
        archive.writestr("post.npy", b"garbage")
    assert spikes_error(str(path), rule) == "spikes.npz: pre: is not a numpy array"


# --- lowering to the learning engine ----------------------------------------------

THREE_PRE = changed("  y: {of: post",
                    "  z: {of: pre, tau: tau_plus, jump: 1}\n  v: {of: pre, tau: tau_plus, jump: 1}\n  y: {of: post")
FOUR_POST = changed("  y: {of: post",
                    "  z: {of: post, tau: tau_plus, jump: 1}\n  v: {of: post, tau: tau_plus, jump: 1}\n"
                    "  q: {of: post, tau: tau_plus, jump: 1}\n  y: {of: post")

LOWERING_CASES = [
    ("division by a trace", on_post("A_plus / x"),
     "term '0.01/x' (on_post): division by 'x': the learning engine can only multiply"),
    ("exp(w)", on_post("exp(w)"),
     "term 'exp(w)' (on_post): the learning engine has no exp()"),
    ("log of a trace", on_post("log(x)"),
     "term 'log(x)' (on_post): the learning engine has no log()"),
    ("square root of a trace", on_post("x**0.5"),
     "term 'sqrt(x)' (on_post): power 1/2 of 'x': only whole positive powers are products"),
    ("four factors", on_post("x**2 * y**2"),
     "term 'x**2*y**2' (on_post): 4 factors, at most 3 keep precision in the learning engine's 16-bit accumulator"),
    ("three pre traces", THREE_PRE,
     "3 presynaptic traces (x, z, v): the learning engine has 2 (x1, x2)"),
    ("four post traces", FOUR_POST,
     "4 postsynaptic traces (z, v, q, y): the learning engine has 3 (y1, y2, y3)"),
]


@pytest.mark.parametrize("text, expected", [c[1:] for c in LOWERING_CASES], ids=[c[0] for c in LOWERING_CASES])
def test_lowering_error(rule_file, text, expected):
    rule = load_rule(rule_file(text))  # the loader accepts these; the lowering must refuse
    with pytest.raises(UnsupportedError) as info:
        lower(rule)
    assert str(info.value) == expected


# --- command line -------------------------------------------------------------------

def run_cli(capsys, args):
    with pytest.raises(SystemExit) as info:
        main([str(a) for a in args])
    captured = capsys.readouterr()
    return info.value.code, captured.out, captured.err


def assert_one_error_line(capsys, args, expected):
    code, out, err = run_cli(capsys, args)
    assert code == 2
    assert out == ""
    assert err == f"neurodeploy: error: {expected}\n"


@pytest.fixture
def good_rule(rule_file):
    return rule_file(GOOD, name="good.yaml")


@pytest.fixture
def bad_rule(rule_file):
    return rule_file(changed("tau: tau_plus,", "tau: 0 ms,"))


def test_cli_verify_bad_rule_writes_nothing(capsys, tmp_path, bad_rule):
    out = tmp_path / "out"
    assert_one_error_line(capsys, ["verify", bad_rule, "--out", out],
                          "stdp_pair.yaml: traces.x.tau: must be > 0 (got 0 ms)")
    assert not out.exists()


def test_cli_check_bad_rule(capsys, bad_rule):
    assert_one_error_line(capsys, ["check", bad_rule], "stdp_pair.yaml: traces.x.tau: must be > 0 (got 0 ms)")


def test_cli_check_missing_file(capsys, tmp_path):
    assert_one_error_line(capsys, ["check", tmp_path / "nope.yaml"], "nope.yaml: no such file")


def test_cli_unknown_backend(capsys, tmp_path, good_rule):
    out = tmp_path / "out"
    assert_one_error_line(capsys, ["verify", good_rule, "--out", out, "--backends", "brian2,nest"],
                          "--backends: unknown backend 'nest' (known: brian2, brian2-step, lava-float, lava-fixed, lava-cpu, emu-float, emu-fixed)")
    assert not out.exists()


def test_cli_empty_and_repeated_backends(capsys, tmp_path, good_rule):
    out = tmp_path / "out"
    assert_one_error_line(capsys, ["verify", good_rule, "--out", out, "--backends", ","],
                          "--backends: needs at least one backend name")
    assert_one_error_line(capsys, ["verify", good_rule, "--out", out, "--backends", "brian2,brian2"],
                          "--backends: names a backend twice (got 'brian2,brian2')")
    assert not out.exists()


@pytest.mark.parametrize("option, value, expected", [
    ("--steps", "0", "--steps: must be >= 1 (got 0)"),
    ("--n-pre", "0", "--n-pre: must be >= 1 (got 0)"),
    ("--n-post", "100001", "--steps: run too large (2,000 steps x 100001x10 synapses; at most 100,000,000 steps, "
                           "20,000,000,000 synapse-steps and 200,000,000 neuron-steps)"),
    ("--rate", "5000", "--rate: must be at most 1/dt = 1000 Hz (got 5000)"),
    ("--rate", "0", "--rate: must be > 0 (got 0.0)"),
    ("--rate", "nan", "--rate: must be finite (got nan)"),
    ("--pairs", "3", "--pairs: not an option of protocol 'poisson' (options: n_pre, n_post, steps, rate)"),
    ("--steps", "abc", "Invalid value for '--steps': 'abc' is not a valid integer."),
    ("--protocol", "x", "Invalid value for '--protocol': 'x' is not one of 'poisson', 'pairing', 'correlated', 'hfs', 'lfs', 'stdp-window', 'frequency', 'closed-loop', 'network'."),
])
def test_cli_bad_option(capsys, tmp_path, good_rule, option, value, expected):
    out = tmp_path / "out"
    assert_one_error_line(capsys, ["verify", good_rule, "--out", out, option, value], expected)
    assert not out.exists()


def test_cli_bad_spikes_file(capsys, tmp_path, good_rule, npz):
    out = tmp_path / "out"
    spikes = npz(pre=PRE)
    assert_one_error_line(capsys, ["verify", good_rule, "--out", out, "--spikes", spikes],
                          "spikes.npz: post: missing")
    assert not out.exists()


def test_cli_missing_out(capsys, good_rule):
    assert_one_error_line(capsys, ["verify", good_rule], "Missing option '--out'.")


def test_cli_out_is_a_file(capsys, tmp_path, good_rule):
    file = tmp_path / "taken"
    file.write_text("")
    assert_one_error_line(capsys, ["verify", good_rule, "--out", file],
                          f"--out: exists and is not a directory (got {file})")


def test_cli_unknown_command(capsys):
    assert_one_error_line(capsys, ["frobnicate"], "No such command 'frobnicate'.")


def test_cli_compile_lava_unsupported(capsys, tmp_path, rule_file):
    """A rule the learning engine cannot express gets a lava-cpu script whose header says why."""
    out = tmp_path / "out"
    path = rule_file(on_post("A_plus / x"))
    with pytest.raises(SystemExit) as info:
        main(["compile", path, "--target", "lava", "--out", str(out)])
    assert info.value.code == 0
    text = (out / "stdp_pair_lava.py").read_text()
    assert ("Why: term '0.01/x' (on_post): division by 'x': the learning engine can only multiply." in text
            and "NOT deployable to the learning engine" in text)
    assert sorted(os.listdir(out)) == ["stdp_pair_lava.py"]  # no plan


def test_cli_compile_lava_cpu_script_for_what_lava_cpu_runs(capsys, tmp_path):
    """compile --target lava: a lava-cpu script exactly where the lava backends refuse, with the same reason."""
    out = tmp_path / "out"
    for name, reason in (("synaptic_scaling", "term '4.0e-7*w' (continuous, per step): constant 4e-07 is not "
                          "S*2^E (|S| <= 8, E >= -7) and no trace scale can absorb it"),
                         ("stdp_nearest", "trace 'x' jumps by '1 - x': learning-engine impulses are constants, "
                          "they cannot read a trace")):
        with pytest.raises(SystemExit) as info:
            main(["compile", rule_path(name), "--target", "lava", "--out", str(out)])
        assert info.value.code == 0
        assert f"Why: {reason}." in (out / f"{name}_lava.py").read_text()


def test_backend_reasons_for_new_rule_kinds():
    """The reasons `check`, `rules` and reports show for rules a backend does not run, by full text."""
    from neurodeploy.targets import load_all
    from neurodeploy.protocol import make_trains

    registry = load_all()
    rstdp, tm, gb = (load_rule(rule_path(n)) for n in ("rstdp", "stp_tsodyks_markram", "calcium_graupner_brunel"))
    from neurodeploy.compile.plan import engine_reason

    # exactly: refused; through the tag-decay approximation: deployable (tests/test_approximations.py)
    assert engine_reason(rstdp) == (
        "synapse trace 'c' (the engine's tag) decays by 0.001 per epoch; "
        "the tag has no decay of its own and a product S*2^E * u0 * t (|S*2^E| >= 2^-7) cannot remove exactly that")
    assert registry.get("lava-float").unsupported_reason(rstdp) is None
    assert registry.get("lava-float").unsupported_reason(gb) == (
        "not deployable to the learning engine: trace 'cpre' jumps 13.7 ms after the spike: learning-engine "
        "traces jump at the spike")
    assert registry.get("lava-cpu").unsupported_reason(tm) is None
    trains = make_trains(tm, "closed-loop", {"steps": 10}, 0)
    assert registry.get("lava-cpu").unsupported_trains(trains) == "closed loop: no LIF model in this backend yet"
    assert registry.get("brian2").unsupported_trains(trains) is None


def test_cli_compile_bad_rule(capsys, tmp_path, bad_rule):
    out = tmp_path / "out"
    assert_one_error_line(capsys, ["compile", bad_rule, "--target", "brian2", "--out", out],
                          "stdp_pair.yaml: traces.x.tau: must be > 0 (got 0 ms)")
    assert not out.exists()


def test_cli_compile_unknown_target(capsys, tmp_path, good_rule):
    out = tmp_path / "out"
    assert_one_error_line(capsys, ["compile", good_rule, "--target", "nest", "--out", out],
                          "Invalid value for '--target': 'nest' is not one of 'brian2', 'lava'.")
    assert not out.exists()


def test_cli_spikes_npy(capsys, tmp_path, good_rule):
    path = tmp_path / "spikes.npy"
    np.save(path, PRE)
    code, out, err = run_cli(capsys, ["verify", good_rule, "--out", tmp_path / "out", "--spikes", path])
    assert code == 2
    assert err == "neurodeploy: error: spikes.npy: not an NPZ archive (a single array: save pre and post with numpy.savez)\n"


def test_cli_subprocess_one_line_no_traceback(tmp_path, bad_rule):
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, "-m", "neurodeploy.cli", "verify", bad_rule, "--out", str(out)],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines() == ["neurodeploy: error: stdp_pair.yaml: traces.x.tau: must be > 0 (got 0 ms)"]
    assert result.stdout == ""
    assert not out.exists()
