"""Deploying a rule into one's own Lava network (neurodeploy.lava.deploy), and compile's scripts.

The Lava runs are short (200 steps, 5x5): each costs seconds."""
import ast
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, rule_path
from neurodeploy import Deployment, NeurodeployError, deploy, lif_params
from neurodeploy.cli import main
from neurodeploy.verification import verify
from neurodeploy.compile.compilation import compile_plans
from neurodeploy.protocol import default_trains, poisson
from neurodeploy.spec.loader import load_rule


def run_user_network(d: Deployment, pre, post):
    """A user's network: RingBuffer sources -> the deployed connection, post spikes into s_in_bap."""
    from lava.magma.core.run_conditions import RunSteps
    from lava.proc.io.source import RingBuffer

    RingBuffer(data=pre.astype(float)).s_out.connect(d.conn.s_in)
    RingBuffer(data=post.astype(float)).s_out.connect(d.conn.s_in_bap)
    try:
        d.conn.run(condition=RunSteps(num_steps=pre.shape[1]), run_cfg=d.run_cfg())
        return d.weights()
    finally:
        d.conn.stop()


# stdp_pair against verify's Lava backends; ltp_ltd_soft against the emulator (bit-exact with
# lava-fixed, 1e-12 with lava-float; no Lava run)
@pytest.mark.parametrize("name,backends", [("stdp_pair", "lava"), ("ltp_ltd_soft", "emu")])
def test_user_network_equals_verify(name, backends):
    rule = load_rule(rule_path(name))
    trains = poisson(rule, 5, 5, 200, 40.0, 2)
    report = verify(rule, trains, (f"{backends}-float", f"{backends}-fixed"))
    for mode in ("float", "fixed"):
        d = deploy(rule, shape=(5, 5), mode=mode, traffic=trains)
        assert d.plan == report.plans[mode]  # the same traffic, the same plan
        w = run_user_network(d, trains.pre, trains.post)
        expected = report.results[f"{backends}-{mode}"].trajectory[-1]
        assert np.ptp(report.results[f"{backends}-{mode}"].trajectory[:, 0, 0]) > 0  # the rule did something
        if mode == "fixed":
            np.testing.assert_array_equal(w, expected)
        else:
            np.testing.assert_allclose(w, expected, rtol=0, atol=1e-12 * rule.weight.range)


def test_cpu_deployment_equals_the_engine_order_reference():
    """A rule the engine cannot express, deployed with mode="cpu" into a user's network: its weights
    equal brian2-step's (Brian2 in the engine's order per step, an independent implementation) to 1e-9."""
    from lava.magma.core.run_conditions import RunSteps
    from lava.proc.io.source import RingBuffer

    rule = load_rule(rule_path("stp_tsodyks_markram"))
    trains = poisson(rule, 3, 2, 150, 40.0, 4)
    report = verify(rule, trains, ("brian2-step",))
    d = deploy(rule, shape=(2, 3), mode="cpu")
    assert d.mode == "cpu" and d.weights().shape == (2, 3)
    RingBuffer(data=trains.pre.astype(float)).s_out.connect(d.conn.s_in)
    RingBuffer(data=trains.post.astype(float)).s_out.connect(d.conn.s_in_bap)
    RingBuffer(data=np.zeros((2, 150))).s_out.connect(d.conn.r_in)
    try:
        d.conn.run(condition=RunSteps(num_steps=150), run_cfg=d.run_cfg())
        w = d.weights()
    finally:
        d.conn.stop()
    expected = report.results["brian2-step"].trajectory[-1]
    assert np.ptp(report.results["brian2-step"].trajectory[:, 0, 0]) > 0
    np.testing.assert_allclose(w, expected, rtol=0, atol=1e-9 * rule.weight.range)


def test_deployment_neurons_are_the_lif_of_the_mode():
    d = deploy(rule_path("stdp_pair"), shape=(3, 4), mode="fixed")
    lif = d.neurons(**d.lif_params(tau_u=5.0, tau_v=10.0, threshold=0.5))
    assert lif.a_in.shape == (3,)
    # Loihi's 12-bit decays: du = round(4096/5) - 1, dv = round(4096/10); vth in Lava weight units
    assert int(lif.du.get()) == 818 and int(lif.dv.get()) == 410
    assert int(lif.vth.get()) == int(round(0.5 / d.plan.weight_scale))


def test_deployment_parts():
    rule = load_rule(rule_path("stdp_pair"))
    fixed = deploy(rule_path("stdp_pair"), shape=(2, 3), mode="fixed")
    from lava.utils.weightutils import SignMode

    from neurodeploy.lava.deployed.processes import (BoundedLearningDense, PyBoundedLearningDenseFixed,
                                                     PyBoundedLearningDenseFloat)
    assert type(fixed.conn) is BoundedLearningDense and fixed.process_model is PyBoundedLearningDenseFixed
    assert fixed.conn.proc_params["sign_mode"] == SignMode.EXCITATORY
    cfg = fixed.run_cfg()
    assert cfg.select_tag == "fixed_pt" and cfg.exception_proc_model_map == {BoundedLearningDense: PyBoundedLearningDenseFixed}
    # default traffic: the default protocol, so the plan of compile and check
    assert fixed.plan == compile_plans(rule, default_trains(rule))["fixed"]
    assert fixed.traffic["protocol"] == "poisson" and fixed.traffic["rate_hz"] == 10.0 and fixed.traffic["seed"] == 3
    assert set(fixed.traffic["peaks"]) == {"x", "y"}
    assert np.array_equal(fixed.conn.weights.init, np.full((2, 3), 128))  # 0.5 -> 128 of 255
    np.testing.assert_array_equal(fixed.weights(fixed.conn.weights.init), np.full((2, 3), 128 / 255))
    w0 = np.array([[0.0, 0.25, 1.0], [0.5, 0.75, 0.1]])
    flt = deploy(rule, w_init=w0, mode="float", traffic={"protocol": "poisson", "rate": 20, "seed": 1})
    assert flt.process_model is PyBoundedLearningDenseFloat and flt.run_cfg().select_tag == "floating_pt"
    np.testing.assert_allclose(flt.weights(flt.conn.weights.init), w0, rtol=0, atol=1e-15)
    assert flt.traffic["rate_hz"] == 20.0 and flt.traffic["seed"] == 1
    assert deploy(rule, shape=(1, 1), traffic=20.0).traffic["rate_hz"] == 20.0
    pairing = deploy(rule, shape=(1, 1), traffic="pairing").traffic
    assert pairing["protocol"] == "pairing" and pairing["rate_hz"] is None


def test_lif_params_float_and_fixed():
    rule = load_rule(rule_path("stdp_pair"))
    plans = compile_plans(rule, default_trains(rule))
    # the closed loop's neuron: tau_u 5 ms, tau_v 20 ms at dt 1 ms, threshold 20 x the weight range
    assert lif_params("float", 5.0, 20.0, 20.0, plans["float"]) == {
        "du": 0.2, "dv": 0.05, "vth": 20.0 / plans["float"].weight_scale, "bias_mant": 0.0}
    # Loihi: 12-bit decays, u's with an offset of one; vth in Lava weight units
    assert lif_params("fixed", 5.0, 20.0, 20.0, plans["fixed"]) == {"du": 818, "dv": 205, "vth": 5100, "bias_mant": 0}
    assert lif_params("fixed", 0.005, 0.02, 20.0, plans["fixed"], dt=0.001) == lif_params("fixed", 5, 20, 20.0, plans["fixed"])


@pytest.mark.parametrize("call,message", [
    (lambda: deploy(rule_path("stdp_pair"), shape=(2, 2), w_init=1.5),
     "deploy: w_init: must be within the rule's bounds [0, 1] (got 1.5)"),
    (lambda: deploy(rule_path("stdp_pair"), shape=(2, 2), w_init=np.zeros((3, 2))),
     "deploy: w_init: must have the shape (2, 2) (got (3, 2))"),
    (lambda: deploy(rule_path("stdp_pair")),
     "deploy: shape: needed unless w_init is an (n_post, n_pre) array (got None)"),
    (lambda: deploy(rule_path("stdp_pair"), shape=(0, 2)),
     "deploy: shape: must be (n_post, n_pre), two whole numbers >= 1 (got (0, 2))"),
    (lambda: deploy(rule_path("stdp_pair"), shape=(2, 2), traffic=object()),
     "traffic: must be a rate in Hz, a protocol name, {'protocol': name, ...}, SpikeTrains or rasters "
     "(pre, post) (got object)"),
    (lambda: deploy(rule_path("stdp_pair"), shape=(2, 2), traffic=-5),
     "traffic: rate: must be > 0 (got -5.0)"),
    (lambda: deploy(rule_path("stdp_pair"), shape=(2, 2), traffic={"protocol": "poisson", "rat": 5}),
     "traffic: rat: not an option of protocol 'poisson' (options: n_pre, n_post, steps, rate)"),
    (lambda: deploy(rule_path("stdp_nearest"), shape=(2, 2)),
     "stdp_nearest.yaml: weight: not deployable to the learning engine: trace 'x' jumps by '1 - x': "
     "learning-engine impulses are constants, they cannot read a trace"),
    (lambda: deploy(rule_path("stdp_pair"), shape=(2, 2), mode="gpu"),
     "deploy: mode: must be 'float', 'fixed' or 'cpu' (got 'gpu')"),
    (lambda: deploy(rule_path("stp_tsodyks_markram"), shape=(2, 2), mode="cpu", traffic=10.0),
     "stp_tsodyks_markram.yaml: traffic: only for the learning engine (float, fixed): mode cpu runs the rule "
     "as written (got 10.0)"),
    (lambda: deploy(rule_path("stp_tsodyks_markram"), shape=(2, 2), mode="cpu", mask=np.eye(2, dtype=bool)),
     "stp_tsodyks_markram.yaml: mask: only for the learning engine's sparse connection (float, fixed): "
     "RuleSynapses is all to all (got a mask)"),
    (lambda: deploy(rule_path("stdp_pair"), shape=(2, 2)).supplied_traces(np.zeros((2, 5))),
     "deploy: supplied_traces: only three-factor rules (a reward trace) read supplied traces (got rule 'stdp_pair')"),
])
def test_deploy_errors(call, message):
    with pytest.raises(NeurodeployError) as info:
        call()
    assert str(info.value) == message


# -- every argument of the deploy API is checked before anything runs (issue 19) --------------
def _stdp_pair_plans():
    rule = load_rule(rule_path("stdp_pair"))
    return compile_plans(rule, default_trains(rule))


_RASTER = "traffic: pre: must be a raster (n_pre, steps) of booleans or 0/1"
_W_INIT = "deploy: w_init: must be a number or an (n_post, n_pre) array of numbers"
_SEED = "deploy: rng_seed: must be a whole number from 0 to 4294967295"


@pytest.mark.parametrize("call,message", [
    # a seed Lava's child process raises on at run (then stop() hung 60 s and left /tmp/pymp-*)
    (lambda: deploy(rule_path("stdp_pair"), shape=(2, 2), rng_seed=7.9), f"{_SEED} (got 7.9)"),
    (lambda: deploy(rule_path("stdp_pair"), shape=(2, 2), rng_seed=-1), f"{_SEED} (got -1)"),
    (lambda: deploy(rule_path("stdp_pair"), shape=(2, 2), rng_seed="a"), f"{_SEED} (got 'a')"),
    (lambda: deploy(rule_path("stdp_pair"), shape=(2, 2), rng_seed=True), f"{_SEED} (got True)"),
    (lambda: deploy(rule_path("stdp_pair"), shape=(2, 2), rng_seed=2 ** 32), f"{_SEED} (got 4294967296)"),
    (lambda: Deployment.from_plan(_stdp_pair_plans()["fixed"], np.zeros((2, 2)), rng_seed=None), f"{_SEED} (got None)"),
    (lambda: Deployment.from_plan("x", np.zeros((2, 2))),
     "deploy: plan: must be a Plan (neurodeploy.compile.plan.Plan, e.g. from compile_plans) (got str)"),
    # the neuron: a negative or zero time constant, a negative or NaN threshold (du = 0, vth = -255 silently,
    # ZeroDivisionError, ValueError)
    (lambda: lif_params("fixed", -5, 20, 20, _stdp_pair_plans()["fixed"]),
     "deploy: tau_u: must be at least dt = 1: a shorter time constant decays by more than the whole value in one "
     "step (got -5)"),
    (lambda: lif_params("fixed", 0, 20, 20, _stdp_pair_plans()["fixed"]),
     "deploy: tau_u: must be at least dt = 1: a shorter time constant decays by more than the whole value in one "
     "step (got 0)"),
    (lambda: lif_params("float", 5, 0.5, 20, _stdp_pair_plans()["float"]),
     "deploy: tau_v: must be at least dt = 1: a shorter time constant decays by more than the whole value in one "
     "step (got 0.5)"),
    (lambda: lif_params("fixed", 5, float("inf"), 20, _stdp_pair_plans()["fixed"]),
     "deploy: tau_v: must be a finite number >= dt = 1 (got inf)"),
    (lambda: lif_params("fixed", 5, 20, -1, _stdp_pair_plans()["fixed"]), "deploy: threshold: must be > 0 (got -1)"),
    (lambda: lif_params("fixed", 5, 20, float("nan"), _stdp_pair_plans()["fixed"]),
     "deploy: threshold: must be a finite number > 0 (got nan)"),
    (lambda: lif_params("fixed", 5, 20, "20", _stdp_pair_plans()["fixed"]),
     "deploy: threshold: must be a finite number > 0 (got '20')"),
    (lambda: lif_params("fixed", 5, 20, 1e308, _stdp_pair_plans()["fixed"]),  # was OverflowError
     "deploy: threshold: beyond Loihi's 24-bit voltage at the plan's weight scale: inf Lava units, at most 131071 "
     "(the neurons could never spike) (got 1e+308)"),
    (lambda: lif_params("fixed", 5, 20, 600.0, _stdp_pair_plans()["fixed"]),
     "deploy: threshold: beyond Loihi's 24-bit voltage at the plan's weight scale: 153000 Lava units, at most 131071 "
     "(the neurons could never spike) (got 600)"),
    (lambda: lif_params("fixed", 5, 20, 10 ** 400, _stdp_pair_plans()["fixed"]),
     "deploy: threshold: must be a finite number > 0 (got " + "1" + "0" * 400 + ")"),
    (lambda: lif_params("float", 5, 20, 20, _stdp_pair_plans()["float"], dt=0),
     "deploy: dt: must be a finite number > 0 (got 0)"),
    (lambda: lif_params("float", 5, 20, 20, None),
     "deploy: plan: must be a Plan (neurodeploy.compile.plan.Plan, e.g. from compile_plans) (got NoneType)"),
    (lambda: deploy(rule_path("stdp_pair"), shape=(2, 2)).lif_params(tau_u=5, tau_v=20, threshold=0),
     "deploy: threshold: must be > 0 (got 0)"),
    # recorded rasters: NaN (counted as spikes), 2, text
    (lambda: deploy(rule_path("stdp_pair"), shape=(2, 2), traffic=(np.full((2, 10), np.nan), np.zeros((2, 10)))),
     f"{_RASTER} (got nan)"),
    (lambda: deploy(rule_path("stdp_pair"), shape=(2, 2), traffic=(np.full((2, 10), 2), np.zeros((2, 10)))),
     f"{_RASTER} (got 2)"),
    (lambda: deploy(rule_path("stdp_pair"), shape=(2, 2), traffic={"pre": [["a"] * 10] * 2, "post": np.zeros((2, 10))}),
     f"{_RASTER} (got dtype <U1)"),
    # initial weights: a bool, text, complex (accepted, or raw ValueError / TypeError)
    (lambda: deploy(rule_path("stdp_pair"), shape=(2, 2), w_init=True), f"{_W_INIT} (got True)"),
    (lambda: deploy(rule_path("stdp_pair"), shape=(2, 2), w_init="abc"), f"{_W_INIT} (got 'abc')"),
    (lambda: deploy(rule_path("stdp_pair"), shape=(2, 2), w_init=0.5j), f"{_W_INIT} (got 0.5j)"),
    (lambda: deploy(rule_path("stdp_pair"), w_init=np.full((2, 2), 0.5 + 0j)),
     f"{_W_INIT} (got an array of dtype complex128)"),
    (lambda: deploy(rule_path("stdp_pair"), shape=(2, 2), w_init=np.full((2, 2), True)),
     f"{_W_INIT} (got an array of dtype bool)"),
    # a dense block of 7.3 TiB (MemoryError), refused with its size as a network file refuses one
    (lambda: deploy(rule_path("stdp_pair"), shape=(10 ** 6, 10 ** 6)),
     "deploy: shape: 1,000,000 x 1,000,000 = 1,000,000,000,000 weights (7.3 TiB as float64), at most 25,000,000 "
     "(the weights are held as a dense (n_post, n_pre) array) (got (1000000, 1000000))"),
    (lambda: deploy(rule_path("stdp_pair"), shape=(10 ** 6, 10 ** 6), mode="cpu"),
     "deploy: shape: 1,000,000 x 1,000,000 = 1,000,000,000,000 weights (7.3 TiB as float64), at most 25,000,000 "
     "(the weights are held as a dense (n_post, n_pre) array) (got (1000000, 1000000))"),
])
def test_deploy_arguments_are_checked_in_one_line(call, message):
    with pytest.raises(NeurodeployError) as info:
        call()
    assert str(info.value) == message


def test_a_bad_seed_is_refused_before_lava_starts(monkeypatch):
    """rng_seed=7.9 used to build the connection: Lava's child process raised at run and stop() hung.
    Now nothing of Lava is built: the refusal comes before the plan is compiled."""
    import neurodeploy.compile.compilation

    def compile_rule_called(*args, **kwargs):
        raise AssertionError("the plan was compiled before rng_seed was checked")

    monkeypatch.setattr(neurodeploy.compile.compilation, "compile_rule", compile_rule_called)
    with pytest.raises(NeurodeployError) as info:
        deploy(rule_path("stdp_pair"), shape=(2, 2), rng_seed=7.9)
    assert str(info.value) == f"{_SEED} (got 7.9)"


def test_valid_arguments_still_deploy():
    """What the checks accept: numpy integers as seeds, 0/1 rasters as numbers, integer weights."""
    d = deploy(rule_path("stdp_pair"), shape=(2, 2), rng_seed=np.int64(3), w_init=1,
               traffic=(np.eye(2, 10), np.zeros((2, 10), dtype=int)))
    assert d.rng_seed == 3 and type(d.rng_seed) is int and d.traffic["steps"] == 10
    np.testing.assert_array_equal(d.weights(d.conn.weights.init), np.ones((2, 2)))


# -- the examples of docs/deploy.md ------------------------------------------------------
def docs_blocks(section: str) -> list:
    with open(os.path.join(ROOT, "docs", "deploy.md")) as handle:
        text = handle.read()
    start = text.index(f"## {section}\n")
    end = text.find("\n## ", start + 1)
    return re.findall(r"```python\n(.*?)```", text[start:end if end > 0 else None], re.S)


def test_docs_deploy_example_runs(monkeypatch, capsys):
    blocks = docs_blocks("Deploy into your own network")
    assert len(blocks) == 2
    monkeypatch.chdir(ROOT)
    namespace = {}
    exec(compile(blocks[0], "docs/deploy.md", "exec"), namespace)  # noqa: S102 - our own documentation
    w = namespace["w"]
    assert w.shape == (4, 5) and np.all((w >= 0) & (w <= 1))
    assert not np.all(w == w[0, 0])  # it learned
    exec(compile(blocks[1], "docs/deploy.md", "exec"), namespace)  # noqa: S102 - the closed-loop variant
    assert namespace["spikes"].shape == (2, 300) and namespace["spikes"].any()


# -- compile --target lava: scripts that say what they assume ---------------------------------
def compile_cli(*args):
    with pytest.raises(SystemExit) as info:
        main(["compile", *args])
    return info.value.code


def run_script(path, steps=60, edits=()):
    """Run a generated script as a subprocess with STEPS (and ``edits``: (old, new) texts) changed."""
    with open(path) as handle:
        source = handle.read()
    for old, new in (("N_PRE, N_POST, STEPS = 10, 10, 100", f"N_PRE, N_POST, STEPS = 10, 10, {steps}"),) + tuple(edits):
        assert source.count(old) == 1, old
        source = source.replace(old, new)
    edited = path.replace(".py", "_edited.py")
    with open(edited, "w") as handle:
        handle.write(source)
    proc = subprocess.run([sys.executable, edited], capture_output=True, text=True, timeout=300,
                          cwd=os.path.dirname(path), env=dict(os.environ, PYTHONPATH=ROOT))
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stdout.strip().splitlines() if line.strip()]
    assert lines[0].startswith(f"final weights after {steps} steps"), proc.stdout
    return np.array([[float(v) for v in line.split()] for line in lines[1:]]), proc.stderr


def constants_all_read(source: str) -> list:
    """Module-level UPPER_CASE names that nothing reads (an edit of them would change nothing)."""
    tree = ast.parse(source)
    assigned = set()
    for node in tree.body:
        if isinstance(node, ast.Assign):
            for target in node.targets:
                for name in ast.walk(target):
                    if isinstance(name, ast.Name) and name.id.isupper():
                        assigned.add(name.id)
    read = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    return sorted(assigned - read)


@pytest.fixture(scope="module")
def scripts(tmp_path_factory):
    out = tmp_path_factory.mktemp("scripts")
    paths = {}
    for key, args in {"fixed": ["stdp_pair", "--rate", "20"], "float": ["stdp_pair", "--mode", "float"],
                      "cpu": ["stdp_nearest"], "sparse": ["stdp_pair", "--rate", "1"]}.items():
        with pytest.raises(SystemExit) as info:
            main(["compile", rule_path(args[0]), "--target", "lava", "--out", str(out / key), *args[1:]])
        assert info.value.code == 0
        paths[key] = str(out / key / f"{args[0]}_lava.py")
    return paths


def test_lava_scripts_state_their_traffic(scripts):
    with open(scripts["fixed"]) as handle:
        source = handle.read()
    doc = ast.get_docstring(ast.parse(source))
    assert "Trace scales were chosen on: poisson, 10 pre x 10 post, 2000 steps, 20 Hz, seed 3." in doc
    assert re.search(r"peak of trace x \(pre, x1\): [0-9.]+ rule units = [0-9.]+ Lava units of 127", doc)
    assert "ASSUMED_TRAFFIC = 'poisson, 10 pre x 10 post, 2000 steps, 20 Hz, seed 3'" in source
    with open(os.path.join(os.path.dirname(scripts["fixed"]), "stdp_pair_plan.json")) as handle:
        plan = json.load(handle)
    assert plan["script_mode"] == "fixed"
    assert {k: plan["traffic"][k] for k in ("protocol", "rate_hz", "seed", "steps")} == {
        "protocol": "poisson", "rate_hz": 20.0, "seed": 3, "steps": 2000}
    assert set(plan["traffic"]["peaks"]) == {"x", "y"}
    assert plan["traffic"]["peaks"]["x"]["peak_lava"] <= 0.9 * 127 + 1e-9
    with open(scripts["float"]) as handle:
        assert 'SELECT_TAG = "floating_pt"' in handle.read()
    with open(scripts["cpu"]) as handle:
        cpu = handle.read()
    doc = ast.get_docstring(ast.parse(cpu))
    assert "NOT deployable to the learning engine" in doc.splitlines()[0]
    assert "Why: trace 'x' jumps by '1 - x': learning-engine impulses are constants, they cannot read a trace." in doc
    assert "from neurodeploy.lava.cpu.processes import RuleSynapses" in cpu


@pytest.mark.parametrize("key", ["fixed", "float", "cpu"])
def test_every_script_constant_is_read(scripts, key):
    with open(scripts[key]) as handle:
        assert constants_all_read(handle.read()) == []


def test_fixed_script_runs_and_an_edit_takes_effect(scripts):
    w, err = run_script(scripts["fixed"])
    assert w.shape == (10, 10) and "warning" not in err
    edited, _ = run_script(scripts["fixed"], edits=[("X1_TAU = 20.0", "X1_TAU = 2.0")])
    assert not np.array_equal(w, edited)


def test_float_script_runs(scripts):
    w, err = run_script(scripts["float"])
    assert w.shape == (10, 10) and np.all((w >= 0) & (w <= 1)) and err == ""


def test_cpu_script_runs_and_an_edit_takes_effect(scripts):
    rule = load_rule(rule_path("stdp_nearest"))
    w, _ = run_script(scripts["cpu"])
    pre = np.random.default_rng(0)
    from neurodeploy.lava.backends import run_rule_process
    p = pre.random((10, 60)) < 0.01
    q = pre.random((10, 60)) < 0.01
    expected = run_rule_process(rule, np.full((10, 10), 0.5), p, q, None)[-1]
    np.testing.assert_allclose(w, expected, rtol=0, atol=1e-9)  # the lava-cpu backend, printed to 10 digits
    edited, _ = run_script(scripts["cpu"], edits=[("'A_plus': 0.005,", "'A_plus': 0.05,")])
    assert not np.array_equal(w, edited)


def test_fixed_script_warns_when_a_trace_saturates(scripts):
    """Scaled for 1 Hz, run at 10 Hz: the 7-bit traces reach 127 and the script says so."""
    _, err = run_script(scripts["sparse"], steps=100)
    assert re.search(r"warning: trace [xy] \([xy]1\) reached 127, the 7-bit limit, at step \d+ \(\d+ steps in all\): "
                     r"the spikes are denser than the traffic the plan was scaled for \(poisson, 10 pre x 10 post, "
                     r"2000 steps, 1 Hz, seed 3\); recompile with --rate, --protocol or --spikes for yours", err), err


@pytest.mark.parametrize("args,message", [
    (["stdp_pair", "--target", "brian2", "--rate", "20"],
     "--rate: only for --target lava: the Brian2 script runs the rule as written, with no scaling (got 20.0)"),
    (["stdp_pair", "--target", "brian2", "--mode", "float"],
     "--mode: only for --target lava: the Brian2 script runs the rule as written, with no scaling (got float)"),
    (["stdp_nearest", "--target", "lava", "--mode", "fixed"],
     "--mode: rule 'stdp_nearest' is not deployable to the learning engine (a lava-cpu script, no plan to scale) "
     "(got fixed)"),
    (["stdp_nearest", "--target", "lava", "--protocol", "pairing"],
     "--protocol: rule 'stdp_nearest' is not deployable to the learning engine (a lava-cpu script, no plan to "
     "scale) (got pairing)"),
    (["stdp_pair", "--target", "lava", "--spikes", "x.npz", "--rate", "3"],
     "--spikes: cannot be combined with other traffic options (got --rate)"),
    (["stdp_pair", "--target", "lava", "--protocol", "closed-loop"],
     "--protocol: closed-loop makes its post spikes while it runs; the plan scales on given spikes: use poisson "
     "or --spikes (got closed-loop)"),
    (["stdp_pair", "--target", "lava", "--rate", "0"], "--rate: must be > 0 (got 0.0)"),
    (["stdp_pair", "--target", "lava", "--protocol", "pairing", "--rate", "3"],
     "--rate: not an option of protocol 'pairing' (options: n_pre, n_post, pairs, dt_ms, frequency)"),
    (["stdp_pair", "--target", "lava", "--spikes", "missing.npz"], "missing.npz: no such file"),
])
def test_compile_errors(tmp_path, capsys, args, message):
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as info:
        main(["compile", rule_path(args[0]), "--out", str(out), *args[1:]])
    assert info.value.code == 2
    assert capsys.readouterr().err == f"neurodeploy: error: {message}\n"
    assert not out.exists()


def test_compile_scales_on_a_protocol_and_on_spikes(tmp_path):
    rule = load_rule(rule_path("stdp_pair"))
    assert compile_cli(rule_path("stdp_pair"), "--target", "lava", "--out", str(tmp_path / "p"),
                       "--protocol", "pairing", "--dt-ms", "-10", "--seed", "1") == 0
    with open(tmp_path / "p" / "stdp_pair_plan.json") as handle:
        traffic = json.load(handle)["traffic"]
    assert (traffic["protocol"], traffic["seed"], traffic["rate_hz"]) == ("pairing", 1, None)
    assert traffic["text"] == f"pairing, 1 pre x 1 post, {traffic['steps']} steps, seed 1"
    trains = poisson(rule, 3, 2, 400, 30.0, 5)
    np.savez(tmp_path / "spikes.npz", pre=trains.pre, post=trains.post)
    assert compile_cli(rule_path("stdp_pair"), "--target", "lava", "--out", str(tmp_path / "s"),
                       "--spikes", str(tmp_path / "spikes.npz")) == 0
    with open(tmp_path / "s" / "stdp_pair_plan.json") as handle:
        data = json.load(handle)
    assert data["traffic"]["protocol"] == "file:spikes.npz" and data["traffic"]["steps"] == 400
    assert data["fixed"]["dw"] == compile_plans(rule, trains)["fixed"].dw


def test_three_factor_deployment_supplies_the_traces(write_rule):
    """A reward rule: the user's network gets the post and reward traces from supply_traces and
    ends where lava-float ends; fixed point deploys too (supplied integer traces)."""
    from test_rule_library import GATED

    from neurodeploy.backend import REGISTRY
    from neurodeploy.protocol import SpikeTrains

    rule = load_rule(write_rule(GATED, "gated_stdp.yaml"))
    assert deploy(rule, shape=(3, 4), mode="fixed").plan.three_factor
    rng = np.random.default_rng(8)
    pre, post = rng.random((4, 200)) < 0.05, rng.random((3, 200)) < 0.05
    reward = np.zeros(200)
    reward[[60, 150]] = 1.0
    trains = SpikeTrains(pre, post, np.full((3, 4), 0.5), "test", reward=np.tile(reward, (3, 1)))
    d = deploy(rule, shape=(3, 4), mode="float", traffic=trains)
    d.supply_traces(post, reward)
    w = run_user_network(d, pre, post)
    expected = REGISTRY.get("lava-float").run(rule, trains, compile_plans(rule, trains)).trajectory[-1]
    assert np.abs(expected - 0.5).max() > 1e-3
    np.testing.assert_allclose(w, expected, rtol=0, atol=1e-12)


def test_supplied_traces_check_their_inputs(write_rule):
    """A NaN in the post raster counted as a spike; a reward of text or of another shape raised numpy's errors."""
    from test_rule_library import GATED

    d = deploy(load_rule(write_rule(GATED, "gated_stdp.yaml")), shape=(3, 4), mode="float")
    post = np.zeros((3, 20))
    for call, message in (
            (lambda: d.supplied_traces(np.full((3, 20), np.nan)),
             "supplied_traces: post: must be a raster (n_post, steps) of booleans or 0/1 (got nan)"),
            (lambda: d.supplied_traces(post, np.zeros(7)),
             "supplied_traces: reward: must have the shape (steps,) or (n_post, steps) = (3, 20) (got (7,))"),
            (lambda: d.supplied_traces(post, np.full(20, np.inf)), "supplied_traces: reward: must be finite (got inf)"),
            (lambda: d.supplied_traces(post, "abc"), "supplied_traces: reward: must be an array of numbers (got 'abc')")):
        with pytest.raises(NeurodeployError) as info:
            call()
        assert str(info.value) == message
    assert set(d.supplied_traces(post, np.ones(20))) <= {"y1", "y2", "y3"}
