"""Curve protocols: the trains are what they claim; the STDP window matches its closed form."""
import json
import math

import numpy as np
import pytest

from conftest import rule_path
from neurodeploy.errors import NeurodeployError
from neurodeploy.verification import verify
from neurodeploy.protocol import make_trains
from neurodeploy.spec.loader import load_rule


@pytest.fixture(scope="module")
def rule():
    return load_rule(rule_path("stdp_pair"))


def test_window_trains(rule):
    trains = make_trains(rule, "stdp-window", {"dt_min_ms": -40, "dt_max_ms": 30, "dt_step_ms": 10,
                                               "pairs": 4, "frequency": 5}, seed=0)
    assert trains.curve["x"] == [-40.0, -30.0, -20.0, -10.0, 0.0, 10.0, 20.0, 30.0]
    post = np.flatnonzero(trains.post[0])
    assert len(post) == 4 and np.all(np.diff(post) == 200)  # 5 Hz at 1 ms
    for m, dt in enumerate(trains.curve["x"]):
        pre = np.flatnonzero(trains.pre[m])
        assert np.array_equal(post - pre, np.full(4, int(dt)))
    assert trains.curve["synapses"] == [[0, m] for m in range(8)]


def test_frequency_trains(rule):
    trains = make_trains(rule, "frequency", {"frequencies": "0.5,10,50", "pairs": 6, "dt_ms": -10}, seed=0)
    assert trains.curve["x"] == [0.5, 10.0, 50.0]
    for k, f in enumerate([0.5, 10, 50]):
        pre, post = np.flatnonzero(trains.pre[k]), np.flatnonzero(trains.post[k])
        assert len(pre) == len(post) == 6
        assert np.all(post - pre == -10)
        assert np.allclose(np.diff(pre), 1000 / f, atol=1)


@pytest.mark.parametrize("options,message", [
    ({"frequencies": "1,0"}, "--frequencies: must be numbers > 0 (got '0')"),
    ({"frequencies": "1,x"}, "--frequencies: must be numbers > 0 (got 'x')"),
    ({"frequencies": "5000"}, "--frequencies: must be at most 1/dt = 1000 Hz (got 5000)"),
])
def test_frequency_option_errors(rule, options, message):
    with pytest.raises(NeurodeployError) as err:
        make_trains(rule, "frequency", options, 0, prefix="--")
    assert str(err.value) == message


def window(rule, delta_ms, same_step):
    v = rule.values
    if delta_ms > 0:
        return v["A_plus"] * math.exp(-delta_ms * 1e-3 / v["tau_plus"])
    if delta_ms < 0:
        return -v["A_minus"] * math.exp(delta_ms * 1e-3 / v["tau_minus"])
    return v["A_plus"] - (v["A_minus"] if same_step else 0.0)


def test_window_matches_closed_form_on_every_backend(rule):
    """Additive pair STDP: dw(dt) = sum over all pre/post pairs of W(t_post - t_pre)."""
    trains = make_trains(rule, "stdp-window", {"dt_min_ms": -60, "dt_max_ms": 60, "dt_step_ms": 10,
                                               "pairs": 3, "frequency": 4}, seed=0)
    report = verify(rule, trains, ("brian2", "brian2-step", "lava-float", "lava-fixed", "emu-fixed"))
    post = np.flatnonzero(trains.post[0])
    for backend, same_step, tol in (("brian2", False, 1e-12), ("brian2-step", True, 1e-12),
                                    ("lava-float", True, 1e-12),
                                    ("lava-fixed", True, report.plans["fixed"].band["max_abs"]),
                                    ("emu-fixed", True, report.plans["fixed"].band["max_abs"])):
        for m, dt in enumerate(trains.curve["x"]):
            pre = np.flatnonzero(trains.pre[m])
            expected = sum(window(rule, float(tp - tq), same_step) for tp in post for tq in pre)
            assert report.curve[backend][m] == pytest.approx(expected, abs=tol * rule.weight.range), (backend, dt)
    assert report.passed


def test_correlated_trains_have_the_asked_rate_and_correlation(rule):
    trains = make_trains(rule, "correlated", {"n_pre": 40, "n_post": 3, "steps": 200_000, "rate": 20,
                                              "correlation": 0.3}, seed=5)
    rates = trains.pre.mean(axis=1) / rule.dt
    assert np.allclose(rates, 20, rtol=0.1)
    # count correlation in 20 ms bins: c for a single-interaction mixture
    counts = trains.pre.reshape(40, -1, 20).sum(axis=2)
    corr = np.corrcoef(counts)[np.triu_indices(40, 1)].mean()
    assert corr == pytest.approx(0.3, abs=0.03)
    independent = make_trains(rule, "correlated", {"n_pre": 40, "n_post": 1, "steps": 200_000, "rate": 20,
                                                   "correlation": 0}, seed=5)
    counts = independent.pre.reshape(40, -1, 20).sum(axis=2)
    assert abs(np.corrcoef(counts)[np.triu_indices(40, 1)].mean()) < 0.01
    same = make_trains(rule, "correlated", {"n_pre": 40, "n_post": 3, "steps": 200_000, "rate": 20,
                                            "correlation": 0.3}, seed=5)
    assert np.array_equal(same.pre, trains.pre) and np.array_equal(same.post, trains.post)


def test_hfs_and_lfs_trains(rule):
    hfs = make_trains(rule, "hfs", {"bursts": 3, "spikes_per_burst": 4, "burst_rate": 100, "theta": 5,
                                    "post_dt_ms": 5}, seed=0)
    pre, post = np.flatnonzero(hfs.pre[0]), np.flatnonzero(hfs.post[0])
    assert len(pre) == 12 and np.array_equal(post - pre, np.full(12, 5))
    assert np.array_equal(np.diff(pre).reshape(-1)[:3], [10, 10, 10])  # 100 Hz within a burst
    assert pre[4] - pre[0] == 200 and pre[8] - pre[4] == 200            # 5 Hz theta
    lfs = make_trains(rule, "lfs", {"pulses": 30, "frequency": 1, "post_dt_ms": -10}, seed=0)
    pre, post = np.flatnonzero(lfs.pre[0]), np.flatnonzero(lfs.post[0])
    assert len(pre) == len(post) == 30 and np.all(np.diff(pre) == 1000) and np.all(post - pre == -10)


def test_hfs_potentiates_and_lfs_depresses_pair_stdp(rule):
    hfs = verify(rule, make_trains(rule, "hfs", {}, seed=0), ("brian2", "emu-fixed"))
    lfs = verify(rule, make_trains(rule, "lfs", {"pulses": 100}, seed=0), ("brian2", "emu-fixed"))
    for backend in ("brian2", "emu-fixed"):
        assert hfs.results[backend].trajectory[-1, 0, 0] > rule.weight.w_init + 0.05
        assert lfs.results[backend].trajectory[-1, 0, 0] < rule.weight.w_init - 0.05


@pytest.mark.parametrize("name,options,message", [
    ("correlated", {"correlation": 1.5}, "--correlation: must be at most 1 (got 1.5)"),
    ("correlated", {"correlation": -0.1}, "--correlation: must be >= 0 (got -0.1)"),
    ("correlated", {"correlation": 0.01, "rate": 50},
     "--rate: must be at most 10 Hz (the mother train spikes at rate/correlation <= 1/dt) (got 50)"),
    ("hfs", {"spikes_per_burst": 30, "burst_rate": 100, "theta": 5},
     "--theta: bursts overlap: a burst lasts 290 ms, theta period 200 ms"),
    ("lfs", {"frequency": 2000}, "--frequency: must be at most 1/dt = 1000 Hz (got 2000)"),
    ("stdp-window", {"dt_min_ms": 10, "dt_max_ms": -10}, "--dt-min-ms: must be <= dt_max_ms = -10 (got 10)"),
    ("pairing", {"dt_ms": 1e15}, "--dt-ms: run too large (1e+15 steps x 1x1 synapses; at most 100,000,000 steps, "
                                 "20,000,000,000 synapse-steps and 200,000,000 neuron-steps)"),    ("closed-loop", {"rate": 2000}, "--rate: must be at most 1/dt = 1000 Hz (got 2000)"),
    ("closed-loop", {"tau_v_ms": 0.5}, "--tau-v-ms: must be at least dt = 1 ms (got 0.5)"),
])
def test_protocol_option_errors(rule, name, options, message):
    with pytest.raises(NeurodeployError) as err:
        make_trains(rule, name, options, 0, prefix="--")
    assert str(err.value) == message


def test_reward_from_npz_and_default_reward(tmp_path):
    """A third factor comes from the NPZ (one row broadcast to every post neuron) or, when the
    file has none, from the default: unit rewards at DEFAULT_REWARD_RATE, reproducible from the seed."""
    from neurodeploy.protocol import DEFAULT_REWARD_RATE, default_trains, load_spikes

    rstdp = load_rule(rule_path("rstdp"))
    pre, post = np.zeros((2, 50), bool), np.zeros((3, 50), bool)
    reward = np.zeros(50)
    reward[[10, 20]] = [1.0, -0.5]
    path = tmp_path / "spikes.npz"
    np.savez(path, pre=pre, post=post, reward=reward)
    trains = load_spikes(str(path), rstdp)
    assert trains.reward.shape == (3, 50) and np.all(trains.reward == reward)
    np.savez(path, pre=pre, post=post)
    assert load_spikes(str(path), rstdp).reward.shape == (3, 50)
    assert load_spikes(str(path), load_rule(rule_path("stdp_pair"))).reward is None
    a, b = default_trains(rstdp), default_trains(rstdp)
    assert np.array_equal(a.reward, b.reward)
    assert set(np.unique(a.reward)) <= {0.0, 1.0} and np.all(a.reward == a.reward[0])
    events = a.reward[0].sum()
    expected = DEFAULT_REWARD_RATE * rstdp.dt * a.steps
    assert abs(events - expected) < 4 * math.sqrt(expected)
    assert default_trains(load_rule(rule_path("stdp_pair"))).reward is None


def test_closed_loop_end_to_end(tmp_path):
    """closed-loop: each backend simulates Lava's LIF; brian2-step and lava-float give the same
    spikes and weights; the spikes are those of an independent numpy LIF driven by the recorded
    weights (input at step t: the weights before step t-1's update times the pre spikes of t-1)."""
    from neurodeploy.cli import main

    rule = load_rule(rule_path("stdp_pair"))
    trains = make_trains(rule, "closed-loop", {"steps": 600, "n_pre": 10, "rate": 40, "threshold": 10}, seed=4)
    report = verify(rule, trains, ("brian2", "brian2-step", "lava-float", "lava-fixed"))
    assert report.passed
    lowering = next(c for c in report.comparisons if c["share"] == "lowering")
    assert lowering["post_spikes"]["first_difference_step"] is None
    assert lowering["max_abs_error_normalized"] <= 1e-9
    n = trains.neuron
    for name in ("brian2-step", "lava-float"):
        w = report.results[name].trajectory
        spikes = report.results[name].info["post_spikes"]
        assert spikes.sum() > 5
        u = v = np.zeros(trains.n_post)
        expected = np.zeros_like(spikes)
        for t in range(trains.steps):
            a = np.zeros(trains.n_post)
            if t >= 1:
                before = w[t - 2] if t >= 2 else trains.w0
                a = before @ trains.pre[:, t - 1]
            u = u * (1 - n["du"]) + a
            v = v * (1 - n["dv"]) + u
            expected[:, t] = v > n["vth"]
            v = np.where(expected[:, t], 0.0, v)
        assert np.array_equal(spikes, expected), name
    # the CLI writes every backend's post spikes and the comparison of the spike trains
    with pytest.raises(SystemExit) as exit_info:
        main(["verify", rule_path("stdp_pair"), "--protocol", "closed-loop", "--steps", "300", "--quiet",
              "--backends", "brian2,brian2-step", "--out", str(tmp_path)])
    report_json = json.loads((tmp_path / "report.json").read_text())
    (timing,) = report_json["comparisons"]
    # the two neurons' spikes part: the timing has no tolerance then, and nothing else was compared
    assert timing["post_spikes"]["first_difference_step"] is not None
    assert timing["outcome"] == "not checked" and timing["message"].startswith("post spikes part from step ")
    assert report_json["outcome"] == "not checked" and exit_info.value.code == 3
    data = np.load(tmp_path / "trajectories.npz")
    assert {"brian2:post_spikes", "brian2-step:post_spikes"} <= set(data.files)
    assert "Post spikes (closed loop)" in (tmp_path / "report.md").read_text()
