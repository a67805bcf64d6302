"""The numpy learning-engine emulator against Lava itself.

``emu-fixed`` must equal Lava's bit-approximate model integer for integer at
every step; ``emu-float`` must equal Lava's float model (with the bounds clip)
to 1e-12 of the weight range. Lava runs are short (<= 600 steps).
"""
import dataclasses

import numpy as np
import pytest

from conftest import rule_path
from neurodeploy.backends import load_all
from neurodeploy.emu import CONN_VAR_SEED, recorded_steps, simulate
from neurodeploy.harness import compile_plans
from neurodeploy.lava.backends import RNG_SEED, run_lava
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
