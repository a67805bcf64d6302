"""Plastic networks on Brian2 (``brian2``, ``brian2-step``; neurodeploy/brian2/network.py).

The expectation is a numpy simulation written here, independent of the Brian2 code: Lava's float LIF
(``protocol.closed_loop``'s docstring) with per-neuron constants, every projection delivering a spike of
step t in step t + 1 (the current reads w before step t's change), static and plastic weights, and
additive pair STDP (``stdp_pair``) in one of two orders:

* ``step`` (the learning engine's, ``stepper.py``; ``brian2-step``): x, y decay, then jump; a pre spike
  adds ``-A_minus * y`` and a post spike ``A_plus * x``, both traces read after this step's jumps, one
  clip per step;
* ``written`` (the rule as written; ``brian2``): at a pre spike ``w = clip(w - A_minus * y)`` with ``y``
  before this step's post jump (the pre pathway runs first), then at a post spike
  ``w = clip(w + A_plus * x)`` with ``x`` after the pre jump.

The two orders differ only at a step where a synapse's pre and post neurons both spike
(``-A_minus`` more in ``step``): the test checks that too.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from conftest import rule_path
from neurodeploy.backend import Recording, apply_recording
from neurodeploy.targets import load_all
from neurodeploy.network import network_from_dict, network_trains
from neurodeploy.spec.loader import load_rule

STEPS = 400

NETWORK = {
    "network": "small_ei",
    "steps": STEPS,
    "seed": 2,
    "populations": {
        "inputs": {"poisson": 12, "rate": "40 Hz"},
        "exc": {"lif": 6, "tau_u": "4 ms", "tau_v": "15 ms", "threshold": 3},
        "inh": {"lif": 3, "tau_u": "2 ms", "tau_v": "8 ms", "threshold": 1.5},
    },
    "projections": [
        {"from": "inputs", "to": "exc", "plastic": True, "p": 0.6},
        {"from": "exc", "to": "exc", "plastic": True, "p": 0.4, "w0": 0.8},
        {"from": "exc", "to": "inh", "weight": 0.7, "p": 0.7},
        {"from": "inputs", "to": "inh", "weight": 0.3, "p": 0.3},
        {"from": "inh", "to": "exc", "weight": -1.2, "p": 0.7},
    ],
}


def numpy_network(rule, network, inputs: np.ndarray, order: str) -> tuple:
    """(weights (steps, n_lif, n_src) with NaN where no plastic synapse, spikes (n_lif, steps)) of the
    network driven by ``inputs`` (n_inputs, steps), pair STDP in ``order`` ("step" or "written")."""
    p = {q.name: q.value for q in rule.parameters}
    n_in, n_lif, n_src, steps = network.n_inputs, network.n_lif, network.n_src, inputs.shape[1]
    du = rule.dt * 1e3 / network.lif_array("tau_u_ms")
    dv = rule.dt * 1e3 / network.lif_array("tau_v_ms")
    vth = network.lif_array("threshold") * (p["w_max"] - p["w_min"])
    mask = network.plastic_mask()
    w = network.plastic_w0().copy()
    static = network.static_weights()
    decay_x, decay_y = math.exp(-rule.dt / p["tau_plus"]), math.exp(-rule.dt / p["tau_minus"])
    u, v, a_next = np.zeros(n_lif), np.zeros(n_lif), np.zeros(n_lif)
    x, y = np.zeros(n_src), np.zeros(n_lif)
    weights = np.full((steps, n_lif, n_src), np.nan)
    spikes = np.zeros((n_lif, steps), dtype=bool)
    for t in range(steps):
        u = u * (1 - du) + a_next
        v = v * (1 - dv) + u
        fired = v > vth
        v[fired] = 0.0
        spikes[:, t] = fired
        s = np.concatenate([inputs[:, t], fired]).astype(float)
        a_next = (np.where(mask, w, 0.0) + static) @ s  # delivered next step, w before this step's change
        x *= decay_x
        y *= decay_y
        pre, post = s.astype(bool), fired
        if order == "step":
            x += s
            y += fired
            dw = -p["A_minus"] * np.outer(y, pre) + p["A_plus"] * np.outer(post, x)
            w = np.where(mask, np.clip(w + dw, p["w_min"], p["w_max"]), w)
        else:
            w = np.where(mask, np.clip(w - p["A_minus"] * np.outer(np.ones(n_lif), pre) * y[:, None],
                                       p["w_min"], p["w_max"]), w)
            x += s
            y += fired
            w = np.where(mask, np.clip(w + p["A_plus"] * np.outer(post, x), p["w_min"], p["w_max"]), w)
        weights[t] = np.where(mask, w, np.nan)
    return weights, spikes


@pytest.fixture(scope="module")
def setup():
    rule = load_rule(rule_path("stdp_pair"))
    network = network_from_dict(NETWORK, "small_ei.yaml", rule)
    trains = network_trains(rule, network, seed=5)
    return rule, network, trains


@pytest.fixture(scope="module")
def runs(setup):
    rule, network, trains = setup
    registry = load_all()
    return {b: registry.get(b).simulate(rule, trains, {}) for b in ("brian2", "brian2-step")}


def test_the_network_is_recurrent_masked_and_spiking(setup, runs):
    """The run exercises what it should: recurrent plastic synapses, absent ones, both populations spiking."""
    rule, network, trains = setup
    mask = network.plastic_mask()
    assert mask[:, network.n_inputs:].any() and not mask.all()
    assert (network.static_weights() < 0).any()
    spikes = runs["brian2-step"][1]["post_spikes"]
    assert spikes.shape == (network.n_lif, STEPS) and spikes.dtype == bool
    assert spikes[:6].sum() > 20 and spikes[6:].sum() > 20  # exc and inh both fire


@pytest.mark.parametrize("backend, order", [("brian2-step", "step"), ("brian2", "written")])
def test_network_equals_numpy(setup, runs, backend, order):
    rule, network, trains = setup
    expected_w, expected_spikes = numpy_network(rule, network, trains.pre[: network.n_inputs], order)
    trajectory, info = runs[backend]
    np.testing.assert_array_equal(info["post_spikes"], expected_spikes)
    assert trajectory.shape == (STEPS, network.n_lif, network.n_src)
    np.testing.assert_array_equal(np.isnan(trajectory), np.isnan(expected_w))  # NaN exactly where absent
    np.testing.assert_allclose(trajectory, expected_w, rtol=0, atol=1e-9)
    assert np.nanmax(np.abs(trajectory[-1] - trajectory[0])) > 0.02  # the weights did learn
    assert info["synapses"] == network.plastic_mask().sum()
    assert info["static_synapses"] == network.static_mask().sum()


def test_nan_exactly_where_no_plastic_synapse(setup, runs):
    rule, network, trains = setup
    absent = ~network.plastic_mask()
    for trajectory, _ in runs.values():
        np.testing.assert_array_equal(np.isnan(trajectory), np.broadcast_to(absent, trajectory.shape))


def test_the_two_orders_differ_only_at_same_step_pairs(setup, runs):
    """brian2 and brian2-step differ first through same-step pre/post pairs (the engine's pre term reads
    the post trace after the step's jump): before their spikes part, each synapse's first difference is
    at its first such pair and is -A_minus there; a synapse with no pair yet has no difference."""
    rule, network, trains = setup
    a_minus = {q.name: q.value for q in rule.parameters}["A_minus"]
    spikes, spikes_step = runs["brian2"][1]["post_spikes"], runs["brian2-step"][1]["post_spikes"]
    parted = np.nonzero((spikes != spikes_step).any(axis=0))[0]
    until = parted[0] if parted.size else STEPS  # the steps before the spikes part
    a, b = runs["brian2"][0][:until], runs["brian2-step"][0][:until]
    src = np.concatenate([trains.pre[: network.n_inputs], spikes])[:, :until]
    pairs = spikes[:, None, :until] & src[None, :, :]  # (n_lif, n_src, steps)
    differs = np.abs(b - a) > 1e-12  # (steps, n_lif, n_src)
    explained = 0
    for post, pre in zip(*np.nonzero(network.plastic_mask())):
        steps_differ = np.nonzero(differs[:, post, pre])[0]
        steps_paired = np.nonzero(pairs[post, pre])[0]
        if steps_paired.size == 0:
            assert steps_differ.size == 0, (post, pre)
            continue
        first = steps_paired[0]
        assert steps_differ[0] == first, (post, pre)
        w_before = network.plastic_w0()[post, pre] if first == 0 else a[first - 1, post, pre]
        step_change, written_change = b[first, post, pre] - w_before, a[first, post, pre] - w_before
        assert step_change - written_change == pytest.approx(-a_minus, abs=1e-12)
        explained += 1
    assert explained >= 5 and until > 50


def test_recording_sub_grid_equals_the_full_run(setup, runs):
    rule, network, trains = setup
    registry = load_all()
    recording = Recording(every=7, posts=(0, 4, 7), pres=(1, 5, 12, 14, 20))
    full = runs["brian2-step"][0]
    got, info = registry.get("brian2-step").simulate(rule, trains, {}, recording=recording)
    np.testing.assert_array_equal(got, apply_recording(full, recording, STEPS))
    np.testing.assert_array_equal(info["post_spikes"], runs["brian2-step"][1]["post_spikes"])


def _tiny(rule, inhibit: bool):
    """One input; LIFs with tau_u = tau_v = dt, so v(t) = the input delivered from step t - 1."""
    projections = [{"from": "inp", "to": "e", "plastic": True, "w0": 1.0},  # w = 1 > vth 0.5
                   {"from": "inp", "to": "i", "weight": 2.0}]  # i fires the step after each input spike
    if inhibit:
        projections.append({"from": "i", "to": "e", "weight": -1.5})
    data = {"network": "tiny", "steps": 12, "populations": {
        "inp": {"poisson": 1, "rate": "1 Hz"},
        "e": {"lif": 1, "tau_u": "1 ms", "tau_v": "1 ms", "threshold": 0.5},
        "i": {"lif": 1, "tau_u": "1 ms", "tau_v": "1 ms", "threshold": 1}}, "projections": projections}
    network = network_from_dict(data, "tiny.yaml", rule)
    trains = network_trains(rule, network, seed=0)
    pre = np.zeros_like(trains.pre)
    pre[0, [5, 6]] = True  # the input spikes at steps 5 and 6
    return dataclasses.replace(trains, pre=pre)


@pytest.mark.parametrize("backend", ["brian2", "brian2-step"])
def test_static_negative_weight_inhibits(backend):
    """By hand: input spikes at 5 and 6 make e and i fire at 6 and 7; with i -> e at -1.5 range, e's
    input at step 7 is w (~1) - 1.5 < 0.5: e fires at 6 only."""
    rule = load_rule(rule_path("stdp_pair"))
    registry = load_all()
    for inhibit, e_steps in ((False, [6, 7]), (True, [6])):
        _, info = registry.get(backend).simulate(rule, _tiny(rule, inhibit), {})
        spikes = info["post_spikes"]
        assert list(np.nonzero(spikes[0])[0]) == e_steps
        assert list(np.nonzero(spikes[1])[0]) == [6, 7]


def test_population_names_never_reach_brian2(setup, runs):
    """Populations named as the Brian2 objects (pre, post, plastic): the same numbers, to the bit."""
    rule, network, trains = setup
    rename = {"inputs": "pre", "exc": "post", "inh": "plastic"}
    data = dict(NETWORK, populations={rename[k]: v for k, v in NETWORK["populations"].items()},
                projections=[dict(p, **{"from": rename[p["from"]], "to": rename[p["to"]]})
                             for p in NETWORK["projections"]])
    renamed = network_from_dict(data, "renamed.yaml", rule)
    trajectory, info = load_all().get("brian2").simulate(rule, network_trains(rule, renamed, seed=5), {})
    np.testing.assert_array_equal(trajectory, runs["brian2"][0])
    np.testing.assert_array_equal(info["post_spikes"], runs["brian2"][1]["post_spikes"])


@pytest.mark.parametrize("backend", ["brian2", "brian2-step"])
def test_closed_loop_is_the_one_projection_network(backend):
    """The closed-loop protocol and the network file that says the same (one Poisson population onto
    one LIF population, plastic all-to-all; the same seed draws the same input spikes): the same
    weights and spikes, to the bit, the LIF columns (no recurrent synapse) NaN."""
    from neurodeploy.protocol import closed_loop

    rule = load_rule(rule_path("stdp_pair"))
    closed = closed_loop(rule, 8, 3, 300, 40.0, 5.0, 20.0, 5.0, 4)
    data = {"network": "layer", "steps": 300, "populations": {
        "inputs": {"poisson": 8, "rate": "40 Hz"},
        "out": {"lif": 3, "tau_u": "5 ms", "tau_v": "20 ms", "threshold": 5.0}},
        "projections": [{"from": "inputs", "to": "out", "plastic": True}]}
    trains = network_trains(rule, network_from_dict(data, "layer.yaml", rule), seed=4)
    np.testing.assert_array_equal(trains.pre[:8], closed.pre)
    backend = load_all().get(backend)
    expected, expected_info = backend.simulate(rule, closed, {})
    got, info = backend.simulate(rule, trains, {})
    assert expected_info["post_spikes"].sum() > 10
    np.testing.assert_array_equal(info["post_spikes"], expected_info["post_spikes"])
    np.testing.assert_array_equal(got[:, :, :8], expected)
    assert np.isnan(got[:, :, 8:]).all()


LIBRARY = ("stdp_pair", "ltp_ltd_soft", "stdp_multiplicative", "stdp_nearest", "stdp_triplet", "hebbian_rate", "oja",
           "bcm", "rstdp", "synaptic_scaling", "stp_tsodyks_markram", "calcium_graupner_brunel", "stdp_pair epoch 3")


def _library_rule(name: str):
    from neurodeploy.spec.loader import read_yaml, rule_from_dict

    if not name.endswith("epoch 3"):
        return load_rule(rule_path(name))
    data, _ = read_yaml(rule_path("stdp_pair"), "stdp_pair.yaml")
    return rule_from_dict(dict(data, simulation={"dt": "1 ms", "t_epoch": 3}), "stdp_pair.yaml")


@pytest.mark.parametrize("name", LIBRARY)
def test_network_plasticity_equals_the_open_loop_on_its_own_spikes(name):
    """Given the spikes, plasticity is open loop: brian2-step's network weights equal the engine's step
    semantics in numpy (``neurodeploy.compile.stepper``, no Brian2) run on the sources' and the LIFs' spikes
    brian2-step made (1e-9 of the range), and brian2's equal the open-loop brian2 backend (imposed
    spikes, ``SpikeGeneratorGroup``s) on its own spikes (1e-12); every rule of the library, delays,
    rewards and epochs included."""
    from neurodeploy.network import with_spikes
    from neurodeploy.protocol import default_reward
    from neurodeploy.compile.stepper import simulate

    rule = _library_rule(name)
    network = network_from_dict(dict(NETWORK, steps=250), "small_ei.yaml", rule)
    trains = network_trains(rule, network, seed=5)
    if rule.has_reward:
        trains = dataclasses.replace(trains, reward=default_reward(network.n_lif, trains.steps, rule, 5) * 3)
    registry = load_all()
    mask = network.plastic_mask()
    scale = rule.weight.range
    step, step_info = registry.get("brian2-step").simulate(rule, trains, {})
    made = with_spikes(trains, step_info["post_spikes"])
    assert step_info["post_spikes"].sum() > 10  # the LIFs fire (the fewest: stp_tsodyks_markram, 13)
    expected = simulate(rule, trains.w0, made.pre, made.post, trains.reward)
    np.testing.assert_array_equal(np.isnan(step), np.broadcast_to(~mask, step.shape))
    assert np.abs(step[:, mask] - expected[:, mask]).max() <= 1e-9 * scale
    assert np.abs(expected[:, mask] - trains.w0[mask]).max() > 1e-6 * scale  # the rule did something
    written, info = registry.get("brian2").simulate(rule, trains, {})
    imposed = dataclasses.replace(with_spikes(trains, info["post_spikes"]), network=None)
    open_loop, _ = registry.get("brian2").simulate(rule, imposed, {})
    np.testing.assert_array_equal(np.isnan(written), np.isnan(open_loop))
    assert np.abs(written[:, mask] - open_loop[:, mask]).max() <= 1e-12 * scale


def test_a_backend_without_networks_refuses_network_trains(setup):
    """A backend runs a network's trains only if it declares it (else its post spikes would be the
    protocol's zeros, an open loop that says nothing): the Brian2 backends do."""
    from neurodeploy.backend import Backend

    rule, network, trains = setup
    registry = load_all()
    assert Backend().unsupported_trains(trains) == "network: no network model in this backend yet"
    assert registry.get("brian2").unsupported_trains(trains) is None
    assert registry.get("brian2-step").unsupported_trains(trains) is None


def test_cpp_standalone_network_equals_numpy(setup, runs, monkeypatch, tmp_path):
    """Forced (NEURODEPLOY_BRIAN2_TARGET=cpp_standalone), a network runs on Brian2's cpp_standalone
    device: the numpy run's spikes and weights (a sub-grid of both plastic groups and absent synapses,
    every 6th step and the last, which the monitor does not reach). One build (~50 s on 2 cores)."""
    from neurodeploy.brian2 import backends as brian2_backends

    if not brian2_backends._can_compile():
        pytest.skip("no make and C++ compiler")
    rule, network, trains = setup
    monkeypatch.setenv("NEURODEPLOY_CACHE", str(tmp_path))
    monkeypatch.setattr(brian2_backends, "CODEGEN_TARGET", "cpp_standalone")
    mask, n_in = network.plastic_mask(), network.n_inputs
    post, pre = [int(k) for k in np.argwhere(mask[:, n_in:])[0]]  # a recurrent plastic synapse
    recording = Recording(every=6, posts=(post, 3, 7), pres=(0, 2, 11, n_in + pre, n_in + 5, n_in + 8))
    got, info = load_all().get("brian2-step").simulate(rule, trains, {}, recording=recording)
    assert info["brian2_target"] == "cpp_standalone"
    np.testing.assert_array_equal(info["post_spikes"], runs["brian2-step"][1]["post_spikes"])
    expected = apply_recording(runs["brian2-step"][0], recording, STEPS)
    assert got.shape == expected.shape and (STEPS - 1) % 6 != 0
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    assert (~np.isnan(expected[:, :, :3])).any() and (~np.isnan(expected[:, :, 3:])).any()
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
