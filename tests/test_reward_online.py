"""Three-factor rules in networks with the reward computed from the network's own spikes (emu/reward.py,
lava/reward/processes.py): the engine's post and reward traces computed online."""
import dataclasses

import numpy as np
import pytest

from neurodeploy.compile.reward import DistalReward, OnlineTraces, RateReward
from neurodeploy.compile.compilation import compile_plans
from neurodeploy.library import LIBRARY
from neurodeploy.network import network_from_dict, network_trains
from neurodeploy.spec.loader import load_rule

RSTDP = f"{LIBRARY}/rstdp.yaml"
NET = {"network": "ei3f", "steps": 300, "seed": 1,
       "populations": {"inputs": {"poisson": 30, "rate": "20 Hz"},
                       "exc": {"lif": 5, "tau_u": "5 ms", "tau_v": "20 ms", "threshold": 2.0},
                       "inh": {"lif": 2, "tau_u": "5 ms", "tau_v": "10 ms", "threshold": 1.0}},
       "projections": [{"from": "inputs", "to": "exc", "plastic": True},
                       {"from": "exc", "to": "exc", "plastic": True, "autapses": True},
                       {"from": "exc", "to": "inh", "weight": 0.5},
                       {"from": "inh", "to": "exc", "weight": -0.5}]}


def _setup(steps=300):
    rule = load_rule(RSTDP)
    net = network_from_dict(dict(NET, steps=steps), "ei3f.yaml", rule)
    trains = network_trains(rule, net, 3)
    rng = np.random.default_rng(0)
    traffic = dataclasses.replace(trains, post=rng.random(trains.post.shape) < 0.02,
                                  reward=(rng.random(trains.reward.shape) < 0.01) * 1.0)
    return rule, net, trains, compile_plans(rule, traffic, approximate=True)


def _replay(schedule, net, inputs, spikes):
    """The schedule run on recorded spikes: the rewards a backend's own spikes earned."""
    s = schedule.fresh(net.n_lif, spikes.shape[1])
    for k in range(spikes.shape[1]):
        s.observe(k, np.concatenate([inputs[:, k], spikes[:, k]]), spikes[:, k])
    return s


@pytest.mark.parametrize("mode", ["fixed", "float"])
def test_online_traces_equal_the_supplied_traces_of_the_same_rasters(mode):
    """Step by step, the y values equal deploy.supplied_traces on the whole rasters (to the bit)."""
    from neurodeploy.compile.loihi import supplied_traces
    from neurodeploy.emu.engine import Y_SLOTS
    from neurodeploy.protocol import default_trains

    rule = load_rule(RSTDP)
    trains = default_trains(rule)
    plan = compile_plans(rule, trains, approximate=True)[mode]
    want = supplied_traces(rule, plan, trains)
    online = OnlineTraces(rule, plan, trains.n_post)
    got = np.stack([online.step(trains.post[:, t], trains.reward[:, t]) for t in range(trains.steps)], axis=-1)
    assert set(want) == {"y1", "y2"}
    for slot, values in want.items():
        assert np.array_equal(got[Y_SLOTS.index(slot)], values)
    assert not got[Y_SLOTS.index("y3")].any()


def test_distal_reward_schedule_follows_izhikevich():
    """A reward for each post spike 1..window steps after the pre's last spike, delivered after a delay
    drawn in [delay_min, delay_max]; a same-step pair or a later one earns nothing."""
    sched = DistalReward(pre=0, post=1, window=10, delay_min=5, delay_max=7, seed=4).fresh(2, 100)
    src = np.zeros((3, 100), bool)
    lif = np.zeros((2, 100), bool)
    src[0, [10, 40, 70]] = True
    lif[1, [15, 40, 85]] = True  # 5 after: rewarded; same step: no; 15 after: no
    for k in range(100):
        sched.observe(k, src[:, k], lif[:, k])
    assert [e[0] for e in sched.events] == [15]
    assert 20 <= sched.events[0][1] <= 22
    assert sched.pending.sum(axis=0).tolist() == [1.0, 1.0] and sched.pending[sched.events[0][1]].tolist() == [1, 1]
    with pytest.raises(ValueError):
        DistalReward(0, 0, delay_min=0)


def test_emulator_equals_lava_in_a_network_with_an_online_reward():
    """rstdp in an E/I network (plastic feed-forward and recurrent projections), the reward from the network's
    own spikes: emu-fixed equals lava-fixed integer for integer and spike for spike, emu-float equals
    lava-float (1e-12 of the range), and the reward changed the weights (a run without rewards differs)."""
    from neurodeploy.emu.network import simulate_network
    from neurodeploy.lava.backends import run_network

    rule, net, trains, plans = _setup()
    inputs = trains.pre[: net.n_inputs]
    schedule = RateReward(neurons=np.arange(5), target=2, period=20, delay=10)
    for mode in ("fixed", "float"):
        state = {}
        w_emu, s_emu = simulate_network(rule, net, plans[mode], trains.w0, inputs, third_factor=schedule, state=state)
        w_lava, s_lava = run_network(rule, net, plans[mode], trains.w0, inputs, reward=schedule)
        assert len(state["reward"].events) >= 5
        assert np.array_equal(s_emu, s_lava)
        if mode == "fixed":
            assert np.array_equal(np.isnan(w_emu), np.isnan(w_lava))
            assert np.nanmax(np.abs(w_emu - w_lava)) == 0.0
        else:
            assert np.nanmax(np.abs(w_emu - w_lava)) <= 1e-12 * rule.weight.range
        silent = RateReward(neurons=np.arange(5), target=10 ** 6, period=20, delay=10)
        w_none, _ = simulate_network(rule, net, plans[mode], trains.w0, inputs, third_factor=silent)
        learned = np.abs(w_emu[-1] - w_none[-1])
        assert np.nansum(learned > 0.02 * rule.weight.range) >= 10


def test_brian2_online_reward_equals_the_replayed_reward():
    """brian2's network_operation writes each reward ahead of the step that reads it: the run equals the
    offline run given, as a reward array, the rewards its own spikes earned (bit for bit)."""
    from neurodeploy.targets import load_all

    rule, net, trains, plans = _setup(600)
    schedule = DistalReward(pre=3, post=0, window=10, delay_min=5, delay_max=30, seed=2)
    online = dataclasses.replace(trains, reward=np.zeros_like(trains.reward), reward_schedule=schedule)
    b2 = load_all().get("brian2")
    run = b2.run(rule, online, plans)
    spikes = run.info["post_spikes"]
    replayed = _replay(schedule, net, trains.pre[: net.n_inputs], spikes)
    assert len(replayed.events) >= 3
    offline = b2.run(rule, dataclasses.replace(trains, reward=replayed.pending.T.copy()), plans)
    assert np.array_equal(offline.info["post_spikes"], spikes)
    assert np.array_equal(np.isnan(offline.trajectory), np.isnan(run.trajectory))
    assert np.nanmax(np.abs(offline.trajectory - run.trajectory)) == 0.0
    zero = b2.run(rule, dataclasses.replace(trains, reward=np.zeros_like(trains.reward)), plans)
    assert np.nanmax(np.abs(zero.trajectory[-1] - run.trajectory[-1])) > 0.01 * rule.weight.range


def test_backends_run_the_online_reward_and_refuse_without_it():
    """The engine backends run a three-factor network when the trains carry a reward schedule, and skip it
    with the reason without one."""
    from neurodeploy.targets import load_all

    rule, net, trains, plans = _setup(200)
    emu = load_all().get("emu-fixed")
    assert "needs a reward schedule" in emu.unsupported_trains(trains)
    online = dataclasses.replace(trains, reward_schedule=RateReward(np.arange(5), 1, 20, 10))
    assert emu.unsupported_trains(online) is None
    result = emu.run(rule, online, plans)
    assert result.info["post_spikes"].shape == (7, 200)


def test_closed_loop_with_an_online_reward_emulator_equals_lava_fixed():
    """The closed-loop protocol with rstdp and a distal reward from its own spikes: emu-fixed and lava-fixed
    (through the backends, as verify runs them) make the same spikes and the same integers, and learn."""
    from neurodeploy.targets import load_all
    from neurodeploy.protocol import make_trains

    rule = load_rule(RSTDP)
    trains = make_trains(rule, "closed-loop", {"n_pre": 20, "n_post": 2, "steps": 300, "threshold": 2}, 3)
    trains = dataclasses.replace(trains, reward_schedule=DistalReward(0, 0, delay_min=5, delay_max=20))
    rng = np.random.default_rng(0)
    plans = compile_plans(rule, dataclasses.replace(trains, post=rng.random(trains.post.shape) < 0.02),
                          approximate=True)
    emu, lava = (load_all().get(b).run(rule, trains, plans) for b in ("emu-fixed", "lava-fixed"))
    assert np.array_equal(emu.info["post_spikes"], lava.info["post_spikes"])
    assert np.max(np.abs(emu.trajectory - lava.trajectory)) == 0.0
    assert np.abs(emu.trajectory[-1] - trains.w0).max() > 0.1 * rule.weight.range
