"""The numpy learning-engine emulator against Lava itself.

``emu-fixed`` must equal Lava's bit-approximate model integer for integer at
every step; ``emu-float`` must equal Lava's float model (with the bounds clip)
to 1e-12 of the weight range. Lava runs are short (<= 600 steps).

Rules with a continuous term (Lava's ``u0`` dependency) are tested with their
parameters raised: with the library values the weights barely move and the
fixed-point plan drops the products.
"""
import dataclasses

import numpy as np
import pytest

from conftest import rule_path
from neurodeploy.targets import load_all
from neurodeploy.batch import rule_with
from neurodeploy.emu import CONN_VAR_SEED, kernel, recorded_steps, simulate
from neurodeploy.errors import UnsupportedError
from neurodeploy.compile.compilation import compile_plans, scale_plans
from neurodeploy.lava.backends import run_lava
from neurodeploy.compile.loihi import RNG_SEED
from neurodeploy.protocol import SpikeTrains, poisson
from neurodeploy.spec.loader import load_rule

RULES = ("stdp_pair", "ltp_ltd_soft")


def _trains(rule, n_pre, n_post, steps, rate, seed, random_w0):
    trains = poisson(rule, n_pre, n_post, steps, rate, seed)
    if random_w0:
        rng = np.random.default_rng(1000 + seed)
        w0 = rng.uniform(rule.weight.w_min, rule.weight.w_max, trains.w0.shape)
        trains = SpikeTrains(trains.pre, trains.post, w0, "poisson", seed, rate)
    return trains


def _assert_matches_lava(rule, plan, trains, rng_seed=RNG_SEED):
    w0 = plan.weights_to_lava(trains.w0)
    lava = run_lava(plan, w0, trains.pre, trains.post, rng_seed=rng_seed)
    emu = simulate(plan, w0, trains.pre, trains.post, rng_seed=rng_seed)
    assert emu.shape == lava.shape == (trains.steps, trains.n_post, trains.n_pre)
    assert np.ptp(lava) > 0, "the weights must move for the comparison to mean anything"
    if plan.mode == "fixed":
        assert np.array_equal(emu, lava), \
            f"first difference at (step, post, pre) {np.argwhere(emu != lava)[0].tolist()}"
        assert np.array_equal(emu, np.rint(emu))
    else:
        w_range = rule.weight.range / plan.weight_scale
        err = float(np.max(np.abs(emu - lava)))
        assert err <= 1e-12 * w_range, f"max |emu - lava| = {err:g}"
    return lava


# (n_pre, n_post, steps, rate Hz, spike seed, rng_seed, random w0)
CASES = [
    (1, 1, 600, 40.0, 1, RNG_SEED, False),
    (7, 5, 400, 20.0, 2, RNG_SEED, True),
    (20, 20, 300, 15.0, 3, 99, True),
    (5, 4, 300, 250.0, 4, RNG_SEED, True),  # high rate: traces and weights saturate
]


@pytest.mark.parametrize("mode", ["fixed", "float"])
@pytest.mark.parametrize("name", RULES)
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[1]}x{c[0]}-{c[3]:g}Hz-s{c[4]}-r{c[5]}")
def test_emulator_equals_lava(name, mode, case):
    n_pre, n_post, steps, rate, seed, rng_seed, random_w0 = case
    rule = load_rule(rule_path(name))
    trains = _trains(rule, n_pre, n_post, steps, rate, seed, random_w0)
    plan = compile_plans(rule, trains)[mode]
    lava = _assert_matches_lava(rule, plan, trains, rng_seed)
    if rate > 100 and name == "stdp_pair":  # ltp_ltd_soft's float weights approach the bounds only
        lo, hi = plan.w_lava_bounds
        assert np.any(lava == lo) or np.any(lava == hi), "the high-rate case must hit a bound"


def _variant(tmp_path, name, text):
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return load_rule(str(path))


@pytest.mark.parametrize("mode", ["fixed", "float"])
@pytest.mark.parametrize("seed,rng_seed", [(5, RNG_SEED), (6, 31)])
def test_emulator_equals_lava_t_epoch_2(tmp_path, mode, seed, rng_seed):
    """Epochs of two steps, at a rate where neurons spike twice in one epoch (Lava's tx/ty behaviour)."""
    with open(rule_path("stdp_pair")) as handle:
        text = handle.read()
    rule = _variant(tmp_path, "stdp_pair_te2", text + "simulation: {t_epoch: 2}\n")
    assert rule.t_epoch == 2
    trains = _trains(rule, 6, 5, 500, 150.0, seed, True)
    pairs = trains.pre[:, 0::2] & trains.pre[:, 1::2]
    assert pairs.any(), "some neuron must spike twice within an epoch"
    plan = compile_plans(rule, trains)[mode]
    _assert_matches_lava(rule, plan, trains, rng_seed)


@pytest.mark.parametrize("mode", ["fixed", "float"])
@pytest.mark.parametrize("bounds", ["mixed", "inhibitory"])
def test_emulator_equals_lava_sign_modes(tmp_path, mode, bounds):
    """Mixed (Lava truncates the LSB of the initial weights) and inhibitory weights."""
    with open(rule_path("stdp_pair")) as handle:
        text = handle.read()
    new = {"mixed": "w_min: -1, w_max: 1, w_init: 0.1", "inhibitory": "w_min: -1, w_max: 0, w_init: -0.5"}[bounds]
    rule = _variant(tmp_path, f"stdp_{bounds}", text.replace("w_min: 0, w_max: 1, w_init: 0.5", new))
    trains = _trains(rule, 6, 4, 400, 60.0, 7, True)
    plan = compile_plans(rule, trains)[mode]
    assert plan.sign_mode == bounds
    _assert_matches_lava(rule, plan, trains)


def test_emulator_equals_lava_fractional_impulses(tmp_path):
    """Fixed point with fractional impulses (stochastic impulse rounding) and t_epoch 2 (multi-spike adds)."""
    with open(rule_path("ltp_ltd_soft")) as handle:
        text = handle.read()
    rule = _variant(tmp_path, "soft_te2", text + "simulation: {t_epoch: 2}\n")
    trains = _trains(rule, 5, 5, 400, 120.0, 8, True)
    plan = compile_plans(rule, trains)["fixed"]
    traces = tuple(dataclasses.replace(t, impulse=t.impulse + f) for t, f in zip(plan.traces, (0.3, 0.71)))
    plan = dataclasses.replace(plan, traces=traces)
    assert all(t.impulse != int(t.impulse) for t in plan.traces)
    _assert_matches_lava(rule, plan, trains, rng_seed=3)


def test_random_streams_match_lava_generators():
    """Bulk draws equal the sequence of TraceRandom/ConnVarRandom advance() calls."""
    from lava.magma.core.learning.random import ConnVarRandom, TraceRandom

    seed, n = 11, 500
    tr, cv = TraceRandom(seed, seed + 1), ConnVarRandom()
    dec, imp, conn = [tr.random_trace_decay], [tr.random_impulse_addition], [cv.random_stochastic_round]
    for _ in range(n - 1):
        tr.advance()
        cv.advance()
        dec.append(tr.random_trace_decay)
        imp.append(tr.random_impulse_addition)
        conn.append(cv.random_stochastic_round)
    assert np.array_equal(dec, np.random.default_rng(seed).random(n))
    assert np.array_equal(imp, np.random.default_rng(seed + 1).integers(0, 128, size=n, dtype=int))
    assert np.array_equal(conn, np.random.default_rng(CONN_VAR_SEED).random(n))


@pytest.mark.parametrize("mode", ["fixed", "float"])
def test_reduced_recording_equals_full(mode):
    rule = load_rule(rule_path("ltp_ltd_soft"))
    trains = _trains(rule, 30, 20, 1000, 30.0, 9, True)
    plan = compile_plans(rule, trains)[mode]
    w0 = plan.weights_to_lava(trains.w0)
    full = simulate(plan, w0, trains.pre, trains.post)
    assert np.ptp(full) > 0
    for every in (1, 7, 10, 1000):
        idx = recorded_steps(trains.steps, every)
        got = simulate(plan, w0, trains.pre, trains.post, record_every=every)
        assert np.array_equal(got, full[idx])
    rng = np.random.default_rng(0)
    flat = rng.choice(20 * 30, size=37, replace=False)
    got = simulate(plan, w0, trains.pre, trains.post, record_every=3, record_synapses=flat)
    assert got.shape == (len(recorded_steps(1000, 3)), 37)
    assert np.array_equal(got, full[2::3].reshape(len(got), -1)[:, flat])
    rows, cols = np.unravel_index(flat, (20, 30))
    assert np.array_equal(simulate(plan, w0, trains.pre, trains.post, record_synapses=(rows, cols)),
                          full[:, rows, cols])
    mask = np.zeros((20, 30), dtype=bool)
    mask[rows, cols] = True
    assert np.array_equal(simulate(plan, w0, trains.pre, trains.post, record_synapses=mask),
                          full.reshape(1000, -1)[:, np.flatnonzero(mask)])


def test_emu_backends_registered_and_equal_lava_backends():
    registry = load_all()
    assert "emu-float" in registry and "emu-fixed" in registry
    rule = load_rule(rule_path("stdp_pair"))
    trains = _trains(rule, 4, 3, 300, 60.0, 12, False)
    plans = compile_plans(rule, trains)
    emu = registry.get("emu-fixed").run(rule, trains, plans)
    lava = registry.get("lava-fixed").run(rule, trains, plans)
    assert np.array_equal(emu.trajectory, lava.trajectory)
    assert emu.info == lava.info
    emu_float = registry.get("emu-float").run(rule, trains, plans)
    assert set(emu_float.info) == {"w0_lava_error_max"}
    assert registry.get("emu-fixed").unsupported_reason(rule) is None


# -- continuous terms: Lava's u0 dependency ------------------------------------------------------

#: rule -> (parameter overrides that make the weights move and keep every product in both plans,
#: number of u0 products, random w0)
CONTINUOUS = {
    "hebbian_rate": ({"eta": "1e-3 second"}, 1, False),  # saturates at w_max for some synapses
    "oja": ({"eta": "1e-3 second"}, 2, True),  # mixed sign mode (w0 in [-1, 1]), a w factor
    "bcm": ({"eta": "1e-6 second**2", "tau_theta": "50 ms"}, 2, False),  # three traces, a depressing term
}


def _continuous_rule(name):
    params, n_u0, random_w0 = CONTINUOUS[name]
    return rule_with(rule_path(name), params), n_u0, random_w0


def _assert_keeps_u0(plan, n_u0):
    """The plan realises every continuous term as a u0 product (nothing dropped)."""
    u0 = [p for p in plan.products if p.dependency == "u0" and p.mantissa != 0]
    assert len(u0) == n_u0, plan.dw
    assert plan.dw.count("u0") == n_u0, plan.dw
    assert not [n for n in plan.notes if "dropped" in n], plan.notes


@pytest.mark.parametrize("mode", ["fixed", "float"])
@pytest.mark.parametrize("name", sorted(CONTINUOUS))
def test_emulator_equals_lava_continuous(name, mode):
    rule, n_u0, random_w0 = _continuous_rule(name)
    trains = _trains(rule, 5, 5, 300, 30.0, 21, random_w0)
    plan = compile_plans(rule, trains)[mode]
    _assert_keeps_u0(plan, n_u0)
    lava = _assert_matches_lava(rule, plan, trains)
    # u0 changes synapses whose neurons did not spike in the step
    moved = np.diff(lava, axis=0) != 0
    quiet = ~trains.post[:, 1:].T[:, :, None] & ~trains.pre[:, 1:].T[:, None, :]  # (steps, post, pre)
    assert np.any(moved & quiet), "u0 products must move synapses without spikes"


def _stdp_with_continuous(tmp_path, eta_hz, t_epoch):
    """stdp_pair plus a continuous Hebbian term: x0, y0 and u0 products in one rule."""
    with open(rule_path("stdp_pair")) as handle:
        text = handle.read()
    text = text.replace("w_init: 0.5}", f"w_init: 0.5, eta: {eta_hz} Hz}}")
    text = text.replace("  bounds: [w_min, w_max]", "  continuous: eta * x * y\n  bounds: [w_min, w_max]")
    if t_epoch != 1:
        text += f"simulation: {{t_epoch: {t_epoch}}}\n"
    rule = _variant(tmp_path, f"stdp_continuous_te{t_epoch}", text)
    assert rule.weight.continuous != 0 and rule.t_epoch == t_epoch
    return rule


@pytest.mark.parametrize("mode", ["fixed", "float"])
@pytest.mark.parametrize("t_epoch,eta,rate", [(1, 10, 30.0), (2, 5, 60.0)])
def test_emulator_equals_lava_spike_and_continuous_terms(tmp_path, mode, t_epoch, eta, rate):
    """x0, y0 and u0 products together; with t_epoch 2 (numpy path) and neurons spiking twice per epoch."""
    rule = _stdp_with_continuous(tmp_path, eta, t_epoch)
    trains = _trains(rule, 6, 5, 300, rate, 22, True)
    if t_epoch == 2:
        assert (trains.pre[:, 0::2] & trains.pre[:, 1::2]).any(), "some neuron must spike twice within an epoch"
    # the float constant of eta*x*y is approximate here (compile_plans refuses the rule for the engine);
    # the emulator must still equal Lava on such a plan
    with pytest.raises(UnsupportedError):
        compile_plans(rule, trains)
    plan = scale_plans(rule, trains)[mode]
    _assert_keeps_u0(plan, 1)
    assert "x0" in plan.dw and "y0" in plan.dw
    _assert_matches_lava(rule, plan, trains)


@pytest.mark.parametrize("mode", ["fixed", "float"])
def test_emulator_equals_lava_decimated_u(mode):
    """u1 (Lava: u = 1 every second epoch), which the plans do not produce but the engine supports."""
    rule, n_u0, random_w0 = _continuous_rule("oja")
    trains = _trains(rule, 5, 5, 300, 30.0, 23, random_w0)
    plan = compile_plans(rule, trains)[mode]
    plan = dataclasses.replace(plan, dw=plan.dw.replace("u0", "u1"))
    lava = _assert_matches_lava(rule, plan, trains)
    quiet_steps = ~trains.pre.any(axis=0) & ~trains.post.any(axis=0)  # 0-based steps without spikes
    changed = np.r_[False, np.any(np.diff(lava, axis=0) != 0, axis=(1, 2))]
    assert not np.any(changed & quiet_steps & (np.arange(trains.steps) % 2 == 0)), "u = 0 at odd epochs"
    assert np.any(changed & quiet_steps), "u = 1 at even epochs"


@pytest.mark.parametrize("mode", ["fixed", "float"])
@pytest.mark.parametrize("name", sorted(CONTINUOUS))
def test_numpy_path_equals_kernel_continuous(monkeypatch, name, mode):
    """The compiled loop and the numpy implementation agree on u0 rules (larger, longer: no Lava)."""
    if kernel.numba is None:
        pytest.skip("numba is not installed")
    rule, _, random_w0 = _continuous_rule(name)
    trains = _trains(rule, 30, 20, 1000, 30.0, 24, random_w0)
    plan = compile_plans(rule, trains)[mode]
    w0 = plan.weights_to_lava(trains.w0)
    compiled = simulate(plan, w0, trains.pre, trains.post, record_every=5)
    monkeypatch.setattr(kernel, "numba", None)
    plain = simulate(plan, w0, trains.pre, trains.post, record_every=5)
    assert np.ptp(compiled) > 0
    assert np.array_equal(compiled, plain)


def test_emu_backends_run_continuous_rules():
    registry = load_all()
    rule, _, _ = _continuous_rule("hebbian_rate")
    for name in ("emu-float", "emu-fixed"):
        assert registry.get(name).unsupported_reason(rule) is None
    for name in ("hebbian_rate", "oja", "bcm"):  # the library rules themselves
        assert registry.get("emu-fixed").unsupported_reason(load_rule(rule_path(name))) is None
    trains = _trains(rule, 4, 3, 200, 40.0, 25, False)
    plans = compile_plans(rule, trains)
    emu = registry.get("emu-fixed").run(rule, trains, plans)
    lava = registry.get("lava-fixed").run(rule, trains, plans)
    assert np.ptp(lava.trajectory) > 0
    assert np.array_equal(emu.trajectory, lava.trajectory)
    assert emu.info == lava.info
    emu = registry.get("emu-float").run(rule, trains, plans)
    lava = registry.get("lava-float").run(rule, trains, plans)
    assert np.max(np.abs(emu.trajectory - lava.trajectory)) <= 1e-12 * rule.weight.range


# -- the closed loop: the emulator's LIF against Lava's ----------------------------------------------

@pytest.mark.parametrize("mode", ["float", "fixed"])
@pytest.mark.parametrize("name,seed,threshold", [("stdp_pair", 4, 3.0), ("ltp_ltd_soft", 5, 2.0)])
def test_closed_loop_emulator_equals_lava(name, seed, threshold, mode):
    """emu-float/emu-fixed simulate Lava's LIF (PyLifModelFloat / PyLifModelBitAcc) driven by the learning
    connection: the post spikes equal lava-float's / lava-fixed's exactly, the weights to 1e-12 of the
    range (float) or integer for integer (fixed), on 8x4 synapses for 300 steps."""
    from neurodeploy.protocol import make_trains

    registry = load_all()
    rule = load_rule(rule_path(name))
    trains = make_trains(rule, "closed-loop", {"steps": 300, "n_pre": 8, "n_post": 4, "rate": 40,
                                                "threshold": threshold}, seed=seed)
    plans = compile_plans(rule, trains)
    lava = registry.get(f"lava-{mode}").run(rule, trains, plans)
    emu = registry.get(f"emu-{mode}").run(rule, trains, plans)
    spikes = lava.info["post_spikes"]
    assert 20 < spikes.sum() < 0.8 * spikes.size, "the neurons must fire, and not at every step"
    assert np.array_equal(emu.info["post_spikes"], spikes)
    assert np.ptp(lava.trajectory) > 0.05 * rule.weight.range
    if mode == "fixed":
        assert np.array_equal(emu.trajectory, lava.trajectory)
    else:
        assert np.max(np.abs(emu.trajectory - lava.trajectory)) <= 1e-12 * rule.weight.range


def test_closed_loop_kernel_equals_numpy_loop(monkeypatch):
    """The compiled closed loop (fixed point) and the numpy loop give the same spikes and integers
    (40x3 synapses, 3000 steps: no Lava)."""
    if kernel.numba is None:
        pytest.skip("numba is not installed")
    from neurodeploy.compile.loihi import lif_params
    from neurodeploy.emu.closed_loop import simulate_closed_loop
    from neurodeploy.protocol import make_trains

    rule = load_rule(rule_path("stdp_pair"))
    trains = make_trains(rule, "closed-loop", {"steps": 3000, "n_pre": 40, "n_post": 3, "rate": 20,
                                                "threshold": 15}, seed=9)
    plan = compile_plans(rule, trains)["fixed"]
    lif = lif_params("fixed", 5.0, 20.0, trains.neuron["vth"], plan)
    w0 = plan.weights_to_lava(trains.w0)
    compiled = simulate_closed_loop(plan, w0, trains.pre, lif, record_rows=np.arange(0, 3000, 7))
    monkeypatch.setattr(kernel, "numba", None)
    plain = simulate_closed_loop(plan, w0, trains.pre, lif, record_rows=np.arange(0, 3000, 7))
    assert 100 < compiled[1].sum() < 0.5 * compiled[1].size
    assert np.array_equal(compiled[1], plain[1])
    assert np.ptp(compiled[0]) > 0 and np.array_equal(compiled[0], plain[0])
