"""A network file's ``reward:`` section (neurodeploy/network.py, neurodeploy/schedules.py): the third factor of a
three-factor rule decided from the network's own spikes, through ``verify --network``."""
import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from neurodeploy.emu.network import simulate_network
from neurodeploy.errors import NeurodeployError
from neurodeploy.library import LIBRARY
from neurodeploy.network import network_from_dict, network_trains, with_spikes
from neurodeploy.schedules import DistalReward, RateReward
from neurodeploy.spec.loader import load_rule

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RSTDP = f"{LIBRARY}/rstdp.yaml"
NET = {"network": "distal_small", "steps": 1500, "seed": 1,
       "populations": {"inputs": {"poisson": 20, "rate": "5 Hz"}, "cue": {"poisson": 1, "rate": "5 Hz"},
                       "exc": {"lif": 4, "tau_u": "5 ms", "tau_v": "20 ms", "threshold": 2}},
       "projections": [{"from": "cue", "to": "exc", "plastic": True, "w0": 0.5},
                       {"from": "inputs", "to": "exc", "plastic": True, "w0": 0.3}],
       "reward": {"distal": {"pre": "cue", "post": "exc[2]", "window": "10 ms", "delay": ["100 ms", "300 ms"]}}}


def test_the_reward_section_names_neurons_and_times_in_the_rule_s_steps():
    rule = load_rule(RSTDP)
    net = network_from_dict(NET, "net.yaml", rule)
    r = net.reward
    assert isinstance(r, DistalReward)
    # sources: the Poisson populations in file order (inputs 0..19, cue 20), then the LIF neurons
    assert (r.pre, r.post, r.window, r.delay_min, r.delay_max) == (20, 2, 10, 100, 300)
    trains = network_trains(rule, net, 3)
    assert trains.reward_schedule is r and not trains.reward.any()
    rate = dict(NET, reward={"rate": {"population": "exc", "target": 3, "period": "50 ms", "delay": "200 ms"}})
    r = network_from_dict(rate, "net.yaml", rule).reward
    assert isinstance(r, RateReward) and r.neurons.tolist() == [0, 1, 2, 3]
    assert (r.target, r.period, r.delay, r.amount) == (3, 50, 200, 1.0)
    assert net.to_dict()["reward"]["kind"] == "distal"


@pytest.mark.parametrize("reward, field, problem", [
    ({"dopamine": {}}, "reward", "unknown kind 'dopamine' (kinds: distal, rate)"),
    ({"distal": {"pre": "cue", "post": "exc"}}, "reward.distal.post", "exc has 4 neurons: say which, e.g. 'exc[0]'"),
    ({"distal": {"pre": "cue", "post": "inputs[0]"}}, "reward.distal.post",
     "must be a LIF neuron (the neuron whose spikes are rewarded); inputs is a Poisson population"),
    ({"distal": {"pre": "cue", "post": "exc[4]"}}, "reward.distal.post", "exc has 4 neurons (0..3; got index 4)"),
    ({"distal": {"pre": "cu", "post": "exc[0]"}}, "reward.distal.pre", "unknown population 'cu'"),
    ({"distal": {"pre": "cue", "post": "exc[0]", "delay": ["3 s", "1 s"]}}, "reward.distal.delay",
     "the shortest must not exceed the longest"),
    ({"distal": {"pre": "cue", "post": "exc[0]", "window": "10 mV"}}, "reward.distal.window", "must be in a time"),
    ({"rate": {"population": "exc"}}, "reward.rate.target", "missing"),
    ({"rate": {"population": "exc", "target": 1, "delay": "0.1 ms"}}, "reward.rate.delay",
     "must be at least the rule's dt 1 ms"),
])
def test_a_bad_reward_is_one_line_naming_its_field(reward, field, problem):
    with pytest.raises(NeurodeployError) as e:
        network_from_dict(dict(NET, reward=reward), "net.yaml", load_rule(RSTDP))
    assert e.value.field == field and problem in str(e.value)


def test_a_reward_needs_a_rule_with_a_reward_trace():
    with pytest.raises(NeurodeployError) as e:
        network_from_dict(NET, "net.yaml", load_rule(f"{LIBRARY}/stdp_pair.yaml"))
    assert e.value.field == "reward" and "the rule stdp_pair has no reward trace" in str(e.value)


def test_replay_gives_the_rewards_the_run_received():
    """The schedule replayed on a run's own spikes delivers what the run's schedule delivered (its state
    after the run), so a closed loop replayed open loop receives the same third factor."""
    from neurodeploy.compile.compilation import compile_rule

    rule = load_rule(RSTDP)
    net = network_from_dict(NET, "net.yaml", rule)
    trains = network_trains(rule, net, 3)
    rng = np.random.default_rng(0)
    spikes0 = rng.random(trains.post.shape) < 0.02
    traffic = with_spikes(trains, spikes0)
    plan = compile_rule(rule, dataclasses.replace(traffic, reward=(rng.random(trains.reward.shape) < 0.005) * 1.0))["fixed"]
    state = {}
    _, spikes = simulate_network(rule, net, plan, trains.w0, trains.pre[: net.n_inputs], third_factor=net.reward,
                                 state=state)
    replayed = net.reward.replay(with_spikes(trains, spikes).pre, spikes)
    assert state["reward"].events, "the run earned no reward: the check would be empty"
    assert np.array_equal(replayed, state["reward"].pending.T)  # pending: (steps, n_lif)


def test_verify_runs_a_three_factor_network_with_its_file_s_reward(tmp_path):
    """Through the front door: the engine backends run the rule (not skipped for want of a reward), rewards
    are earned, and no link fails for the replay's want of the rewards."""
    path = tmp_path / "net.yaml"
    path.write_text(json.dumps(dict(NET, steps=800)))
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, "-m", "neurodeploy", "verify", RSTDP, "--network", str(path), "--out",
                        str(out), "--backends", "brian2,brian2-step,emu-float,emu-fixed", "--quiet"],
                       capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=ROOT), timeout=900)
    assert r.returncode in (0, 1), r.stderr
    report = json.loads((out / "report.json").read_text())
    ran = {b["name"]: b["ran"] for b in report["backends"]}
    assert ran == {"brian2": True, "brian2-step": True, "emu-float": True, "emu-fixed": True}
    assert report["network"]["reward"]["kind"] == "distal"
    assert not [c for c in report["comparisons"] if c["share"] in ("lowering", "rounding") and c["outcome"] == "failed"]
