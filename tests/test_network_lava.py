"""Plastic networks on Lava (lava-float, lava-fixed, built by deploy_network) and on the emulator.

``emu-fixed`` must equal ``lava-fixed`` integer for integer and spike for spike; ``emu-float`` equal
``lava-float`` to 1e-12 of the weight range with equal spikes. The networks are small (<= 60 neurons)
and short (<= 300 steps): each Lava process is an OS process.
"""
from __future__ import annotations

import dataclasses
import os

import numpy as np
import pytest

from conftest import ROOT, rule_path
from neurodeploy.targets import load_all
from neurodeploy.errors import NeurodeployError
from neurodeploy.compile.compilation import compile_plans, compile_rule
from neurodeploy.network import load_network, network_from_dict, network_trains, with_spikes
from neurodeploy.spec.loader import load_rule

EI = os.path.join(ROOT, "reference", "networks", "ei_recurrent.yaml")

#: A variant of ei_recurrent: a dense (p = 1) plastic input projection (Lava's LearningDense, numpy's
#: summation order in float) beside a sparse recurrent one (LearningSparse, scipy's order).
DENSE_INPUT = {
    "network": "dense_input", "seed": 4,
    "populations": {"inputs": {"poisson": 20, "rate": "20 Hz"},
                    "exc": {"lif": 10, "tau_u": "5 ms", "tau_v": "20 ms", "threshold": 12},
                    "inh": {"lif": 3, "tau_u": "5 ms", "tau_v": "10 ms", "threshold": 5}},
    "projections": [{"from": "inputs", "to": "exc", "plastic": True},
                    {"from": "exc", "to": "exc", "plastic": True, "p": 0.3},
                    {"from": "exc", "to": "inh", "weight": 0.6, "p": 0.6},
                    {"from": "inh", "to": "exc", "weight": -0.8, "p": 0.7}]}


def _network(which, rule):
    return load_network(EI, rule) if which == "ei_recurrent" else network_from_dict(DENSE_INPUT, "dense_input.yaml",
                                                                                      rule)


@pytest.mark.parametrize("mode", ["fixed", "float"])
@pytest.mark.parametrize("name,which", [("stdp_pair", "ei_recurrent"), ("stdp_triplet", "dense_input")])
def test_network_emulator_equals_lava(name, which, mode):
    """A recurrent E/I network (plastic feed-forward and recurrent projections with masks, static
    excitatory and inhibitory ones): the emulator's weights and spikes equal Lava's."""
    registry = load_all()
    rule = load_rule(rule_path(name))
    net = _network(which, rule)
    trains = network_trains(rule, net, seed=3, steps=300)
    plans = compile_plans(rule, trains)
    lava = registry.get(f"lava-{mode}").run(rule, trains, plans)
    emu = registry.get(f"emu-{mode}").run(rule, trains, plans)
    spikes = lava.info["post_spikes"]
    assert spikes.shape == (net.n_lif, 300)
    for pop in net.lifs:  # every population fires, none at every step
        rate = spikes[pop.targets].mean() / rule.dt
        assert 5 < rate < 100, (pop.name, rate)
    assert np.array_equal(emu.info["post_spikes"], spikes)
    mask = net.plastic_mask()
    assert np.array_equal(np.isnan(lava.trajectory[-1]), ~mask)
    assert np.array_equal(np.isnan(emu.trajectory), np.isnan(lava.trajectory))
    for pr in net.projections:  # both plastic projections learn
        if pr.plastic:
            t, s = net.projection_slices(pr)
            change = np.abs(lava.trajectory[-1, t, s] - trains.w0[t, s])[pr.mask]
            assert change.max() > 0.01 * rule.weight.range, pr.name
    if mode == "fixed":
        assert np.array_equal(emu.trajectory, lava.trajectory, equal_nan=True)
    else:
        assert np.nanmax(np.abs(emu.trajectory - lava.trajectory)) <= 1e-12 * rule.weight.range


FEED_FORWARD = {"network": "ff", "populations": {"inputs": {"poisson": 8, "rate": "40 Hz"},
                                                 "out": {"lif": 4, "tau_u": "5 ms", "tau_v": "20 ms", "threshold": 3}},
                "projections": [{"from": "inputs", "to": "out", "plastic": True}]}


@pytest.mark.parametrize("mode", ["fixed", "float"])
def test_feed_forward_network_equals_closed_loop(mode):
    """One plastic all-to-all projection onto one LIF population is the closed loop
    (``--protocol closed-loop``): same spikes, same weights to the bit, on the emulator; and
    lava-fixed's network equals lava-fixed's closed loop (the existing path) bit for bit."""
    from neurodeploy.protocol import make_trains

    registry = load_all()
    rule = load_rule(rule_path("stdp_pair"))
    loop = make_trains(rule, "closed-loop", {"steps": 300, "n_pre": 8, "n_post": 4, "rate": 40, "threshold": 3},
                       seed=4)
    net = network_from_dict(FEED_FORWARD, "ff.yaml", rule)
    trains = network_trains(rule, net, seed=4, steps=300)
    pre = np.zeros_like(trains.pre)
    pre[:8] = loop.pre
    w0 = np.zeros_like(trains.w0)
    w0[:, :8] = loop.w0
    trains = dataclasses.replace(trains, pre=pre, w0=w0)
    plans = compile_plans(rule, loop)
    backends = [f"emu-{mode}"] + (["lava-fixed"] if mode == "fixed" else [])
    for backend in backends:
        closed = registry.get(backend).run(rule, loop, plans)
        network = registry.get(backend).run(rule, trains, plans)
        spikes = closed.info["post_spikes"]
        assert 20 < spikes.sum() < 0.8 * spikes.size
        assert np.array_equal(network.info["post_spikes"], spikes), backend
        assert np.array_equal(network.trajectory[:, :, :8], closed.trajectory), backend
        assert np.isnan(network.trajectory[:, :, 8:]).all()


STATIC = {"network": "static", "populations": {"a": {"poisson": 2, "rate": "10 Hz"}, "b": {"poisson": 1, "rate": "10 Hz"},
                                               "out": {"lif": 1, "tau_u": "5 ms", "tau_v": "20 ms", "threshold": 50}},
          "projections": [{"from": "b", "to": "out", "plastic": True},
                          {"from": "a", "to": "out", "weight": 0.4}]}


@pytest.mark.parametrize("mode", ["float", "fixed"])
def test_static_projection_by_hand(mode):
    """One spike of each of the two neurons of ``a`` in step 1 through a static weight 0.4 (units of the
    weight range [0, 1]) reaches ``u`` in step 2: float ``u = 0 + 0.4 / s + 0.4 / s`` (s the plan's weight
    scale: 1 in float); fixed (s = 1/255): the integer weight rint(0.4 * 255) = 102, so ``u = (102 + 102) << 6`` (Loihi's
    LIF aligns its input 6 bits up). Built with deploy_network, the user's own RingBuffer as input."""
    from lava.proc.io.source import RingBuffer

    from neurodeploy.lava.deploy import deploy_network

    rule = load_rule(rule_path("stdp_pair"))
    net = network_from_dict(STATIC, "static.yaml", rule)
    plan = compile_plans(rule, network_trains(rule, net, 0, steps=100))[mode]
    assert plan.weight_scale == (1.0 if mode == "float" else pytest.approx(1 / 255))
    nd = deploy_network(rule, net, mode, plan=plan)
    spikes = np.zeros((2, 5))
    spikes[:, 0] = 1
    source = RingBuffer(data=spikes)
    nd.connect_input("a", source.s_out)
    try:
        nd.run(1)
        u1 = nd.lifs["out"].u.get().copy()
        nd.run(1)
        u2 = nd.lifs["out"].u.get().copy()
    finally:
        nd.stop()
    assert u1[0] == 0
    if mode == "float":
        w = 0.4 / plan.weight_scale
        assert u2[0] == 0.0 + w + w
        assert u2[0] == pytest.approx(0.8)
    else:
        assert u2[0] == (102 + 102) << 6


def test_deploy_network_user_reads_learned_weights():
    """A user's network: deploy_network from the files, a RingBuffer of their own into the input
    population, 200 steps, the learned weights read with ``weights()``: equal to the emulator's on the
    same spikes (fixed point: integer for integer), NaN where there is no plastic synapse."""
    from lava.proc.io.source import RingBuffer

    from neurodeploy.lava.deploy import deploy_network
    from neurodeploy.emu.network import simulate_network

    rule = load_rule(rule_path("stdp_pair"))
    nd = deploy_network(rule_path("stdp_pair"), EI, mode="fixed")
    net = nd.network
    spikes = np.random.default_rng(11).random((40, 200)) < 0.03
    nd.connect_input("inputs", RingBuffer(data=spikes.astype(float)).s_out)
    try:
        nd.run(200)
        learned = nd.weights()
    finally:
        nd.stop()
    expected, _ = simulate_network(rule, net, nd.plan, net.plastic_w0(), spikes, record_rows=[199])
    assert np.array_equal(np.isnan(learned), ~net.plastic_mask())
    assert np.array_equal(learned, expected[0], equal_nan=True)
    assert np.nanmax(np.abs(learned - net.plastic_w0())) > 0


def _error(tmp_path, text):
    path = tmp_path / "net.yaml"
    path.write_text(text)
    return str(path)


def test_network_refusals(tmp_path):
    """One line each: a static weight beyond 8 bits and a sign in fixed point, one that rounds to 0,
    a three-factor rule, an input port on a population that is not an input, a masked plastic projection
    starting at weight 0, an unknown mode; every
    Lava backend and the emulator accept networks."""
    from neurodeploy.lava.deploy import deploy_network
    from neurodeploy.compile.lowering import lower  # noqa: F401

    rule = load_rule(rule_path("stdp_pair"))
    big = dict(STATIC, projections=[STATIC["projections"][0], {"from": "a", "to": "out", "weight": 1.5}])
    net = network_from_dict(big, "big.yaml", rule)
    plan = compile_plans(rule, network_trains(rule, net, 0, steps=100))["fixed"]
    with pytest.raises(NeurodeployError) as exc:
        deploy_network(rule, net, "fixed", plan=plan)
    assert str(exc.value) == ("big.yaml: projections[1].weight: does not fit Loihi's 8 bits and a sign at the plan's "
                              "weight scale: 382.5 Lava units, at most 255 (got 1.5)")
    tiny = dict(STATIC, projections=[STATIC["projections"][0], {"from": "a", "to": "out", "weight": -0.001}])
    with pytest.raises(NeurodeployError) as exc:
        deploy_network(rule, network_from_dict(tiny, "tiny.yaml", rule), "fixed", plan=plan)
    assert str(exc.value) == ("tiny.yaml: projections[1].weight: rounds to 0 in fixed point at the plan's weight "
                              "scale: -0.255 Lava units (got -0.001)")
    rstdp = load_rule(rule_path("rstdp"))
    with pytest.raises(NeurodeployError) as exc:
        deploy_network(rstdp, network_from_dict(STATIC, "static.yaml", rstdp), "float")
    assert str(exc.value) == ("rstdp.yaml: weight: networks: a three-factor rule needs a reward schedule that "
                              "computes the reward from the network's spikes (deploy_network(..., "
                              "reward=RewardSchedule, steps=N))")
    nd = deploy_network(rule, network_from_dict(STATIC, "static.yaml", rule), "float")
    with pytest.raises(NeurodeployError) as exc:
        nd.connect_input("out", nd.lifs["out"].s_out)
    assert str(exc.value) == ("static.yaml: connect_input: not an input (Poisson) population: inputs are a, b "
                              "(got 'out')")
    zero = dict(DENSE_INPUT, projections=[dict(DENSE_INPUT["projections"][0], p=0.5, w0=0)]
                + DENSE_INPUT["projections"][1:])
    zero_net = network_from_dict(zero, "zero.yaml", rule)
    message = ("zero.yaml: projections[0].w0: a plastic projection with a mask cannot start at Lava weight 0: "
               "Lava's LearningSparse drops zero weights at the first step; raise w0, or use p: 1 (and "
               "autapses: true in a recurrent projection) (got 0)")
    for mode in ("float", "fixed"):  # Lava 0.10 stalls (fixed) or cannot read the weights back (float)
        with pytest.raises(NeurodeployError) as exc:
            deploy_network(rule, zero_net, mode)
        assert str(exc.value) == message
    from neurodeploy.emu.network import simulate_network
    zero_trains = network_trains(rule, zero_net, 0, steps=10)
    with pytest.raises(NeurodeployError) as exc:  # the emulator refuses what Lava cannot run
        simulate_network(rule, zero_net, compile_plans(rule, zero_trains)["fixed"], zero_trains.w0,
                         zero_trains.pre[:20])
    assert str(exc.value) == message
    static_net = network_from_dict(STATIC, "static.yaml", rule)
    with pytest.raises(NeurodeployError) as exc:
        nd.connect_input("a", nd.lifs["out"].s_out)
    assert str(exc.value) == "static.yaml: connect_input: population 'a' has 2 neurons: the port must have shape (2,) (got (1,))"
    w0 = static_net.plastic_w0()
    w0[0, 2] = 1.25
    with pytest.raises(NeurodeployError) as exc:
        deploy_network(rule, static_net, "float", w0=w0)
    assert str(exc.value) == "deploy: w0: must be within the rule's bounds [0, 1] at the plastic synapses (got 1.25)"
    with pytest.raises(NeurodeployError) as exc:
        deploy_network(rule, static_net, "float", w0=w0[:, :2])
    assert str(exc.value) == "deploy: w0: must have the shape (n_lif, n_src) = (1, 4) (got (1, 2))"
    registry = load_all()
    trains = network_trains(rule, static_net, 0, steps=10)
    for name in ("lava-cpu", "lava-float", "lava-fixed", "emu-float", "emu-fixed"):
        assert registry.get(name).unsupported_trains(trains) is None
    with pytest.raises(NeurodeployError) as exc:
        deploy_network(rule, network_from_dict(STATIC, "static.yaml", rule), "loihi")
    assert str(exc.value) == "deploy: mode: must be 'float', 'fixed' or 'cpu' (got 'loihi')"


@pytest.mark.parametrize("name,which", [("stdp_pair", "ei_recurrent"), ("stdp_triplet", "dense_input")])
def test_lava_cpu_network_equals_emulator_float(name, which):
    """lava-cpu (RuleSynapses driving float LIFs through its a_out, the rule's step semantics) against
    emu-float (Lava's float learning engine): the spikes do not part, the weights agree to 1e-9 of the range."""
    registry = load_all()
    rule = load_rule(rule_path(name))
    net = _network(which, rule)
    trains = network_trains(rule, net, seed=3, steps=300)
    plans = compile_plans(rule, trains)
    cpu = registry.get("lava-cpu").run(rule, trains, plans)
    emu = registry.get("emu-float").run(rule, trains, plans)
    spikes = cpu.info["post_spikes"]
    for pop in net.lifs:
        assert 5 < spikes[pop.targets].mean() / rule.dt < 100, pop.name
    assert np.array_equal(emu.info["post_spikes"], spikes)
    assert np.array_equal(np.isnan(cpu.trajectory), np.isnan(emu.trajectory))
    assert np.nanmax(np.abs(cpu.trajectory[-1] - trains.w0)) > 0.01 * rule.weight.range
    assert np.nanmax(np.abs(cpu.trajectory - emu.trajectory)) <= 1e-9 * rule.weight.range


@pytest.mark.parametrize("mode", ["fixed", "float"])
def test_masked_closed_loop_emulator_equals_lava(mode):
    """A closed loop with a mask (Lava: a LearningSparse driving the LIF through the present synapses
    only) runs on the emulator as a one-projection network: spikes equal lava's, weights integer for
    integer (fixed) or to 1e-12 of the range (float); the mask changes the spikes."""
    from neurodeploy.protocol import closed_loop

    registry = load_all()
    rule = load_rule(rule_path("stdp_pair"))
    trains = closed_loop(rule, 8, 3, 300, 40.0, 5.0, 20.0, 1.5, 2)
    mask = np.random.default_rng(5).random((3, 8)) < 0.6
    masked = dataclasses.replace(trains, mask=mask)
    plans = compile_plans(rule, trains)
    assert registry.get(f"emu-{mode}").unsupported_trains(masked) is None
    lava = registry.get(f"lava-{mode}").run(rule, masked, plans)
    emu = registry.get(f"emu-{mode}").run(rule, masked, plans)
    full = registry.get(f"emu-{mode}").run(rule, trains, plans)
    spikes = lava.info["post_spikes"]
    assert 20 < spikes.sum() < 0.8 * spikes.size
    assert not np.array_equal(full.info["post_spikes"], spikes)
    assert np.array_equal(emu.info["post_spikes"], spikes)
    assert np.array_equal(np.isnan(lava.trajectory[-1]), ~mask)
    if mode == "fixed":
        assert np.array_equal(emu.trajectory, lava.trajectory, equal_nan=True)
    else:
        assert np.array_equal(np.isnan(emu.trajectory), np.isnan(lava.trajectory))
        assert np.nanmax(np.abs(emu.trajectory - lava.trajectory)) <= 1e-12 * rule.weight.range


def test_docs_deploy_network_example_runs(monkeypatch):
    """The "Deploy a network" code of docs/deploy.md runs as written: the excitatory neurons fire and the plastic
    weights learn (NaN exactly where the network has no plastic synapse)."""
    import re

    with open(os.path.join(ROOT, "docs", "deploy.md")) as handle:
        text = handle.read()
    start = text.index("## Deploy a network\n")
    end = text.find("\n## ", start + 1)
    blocks = re.findall(r"```python\n(.*?)```", text[start:end if end > 0 else None], re.S)
    assert len(blocks) == 1
    monkeypatch.chdir(ROOT)
    namespace = {}
    exec(compile(blocks[0], "docs/deploy.md", "exec"), namespace)  # noqa: S102 - our own documentation
    nd, w = namespace["nd"], namespace["w"]
    assert namespace["exc"].shape == (16, 300) and namespace["exc"].any()
    assert np.array_equal(np.isnan(w), ~nd.network.plastic_mask())
    assert np.nanmax(np.abs(w - nd.network.plastic_w0())) > 0


#: Three inputs into ``exc`` (a dense plastic, a sparse plastic recurrent, a static inhibitory one) with
#: weights that are not sums of few powers of two: float sums depend on their order.
ORDER = dict(DENSE_INPUT, projections=[{"from": "inputs", "to": "exc", "plastic": True, "w0": 0.37},
                                       {"from": "exc", "to": "exc", "plastic": True, "p": 0.5, "w0": 0.29},
                                       {"from": "exc", "to": "inh", "weight": 0.3, "p": 0.6},
                                       {"from": "inh", "to": "exc", "weight": -0.7, "p": 0.9}])


def test_float_lif_state_equals_lava():
    """Lava's LIF sums its inputs ``0 + a_1 + a_2 + a_3`` in the order its compiler lists the connections
    (``find_processes`` walks a ``set`` of processes: the order changes from run to run, seen here as
    2.2e-16 differences of u between identical Lava runs); the emulator sums in the file's order. With
    three non-dyadic inputs into ``exc`` for 150 steps, u and v agree with Lava's to 1e-12 (a sum's order
    moves its last bit only), the spikes are equal; with one input (inh: ``0 + a``) bit for bit."""
    from lava.proc.io.source import RingBuffer

    from neurodeploy.lava.deploy import deploy_network
    from neurodeploy.emu.network import simulate_network

    rule = load_rule(rule_path("stdp_pair"))
    net = network_from_dict(ORDER, "order.yaml", rule)
    spikes = np.random.default_rng(2).random((20, 150)) < 0.08
    nd = deploy_network(rule, net, "float")
    nd.connect_input("inputs", RingBuffer(data=spikes.astype(float)).s_out)
    sinks = nd.spike_sinks(150)
    try:
        nd.run(150)
        lava = {name: (lif.u.get().copy(), lif.v.get().copy()) for name, lif in nd.lifs.items()}
        fired = np.concatenate([sinks[p.name].data.get() != 0 for p in net.lifs])
    finally:
        nd.stop()
    state = {}
    _, emu_spikes = simulate_network(rule, net, nd.plan, net.plastic_w0(), spikes, record_rows=[149], state=state)
    assert np.array_equal(emu_spikes, fired) and fired[net.population("inh").targets].sum() > 20
    for name, (u, v) in lava.items():
        assert np.abs(u).max() > 1 and np.abs(v).max() > 1
        np.testing.assert_allclose(state["lifs"][name].u, u, rtol=1e-12, atol=0)
        np.testing.assert_allclose(state["lifs"][name].v, v, rtol=1e-12, atol=0)
    assert np.array_equal(state["lifs"]["inh"].u, lava["inh"][0])


def test_emulator_network_records_what_is_asked():
    """emu-fixed/emu-float with a Recording (every 7th step, a sub-grid of synapses) give exactly those rows
    and synapses of the full trajectory (2000 steps of ei_recurrent, no Lava)."""
    from neurodeploy.backend import Recording

    registry = load_all()
    rule = load_rule(rule_path("stdp_pair"))
    net = load_network(EI, rule)
    trains = network_trains(rule, net, seed=5)
    plans = compile_plans(rule, trains)
    rec = Recording(every=7, posts=(0, 3, 17), pres=(1, 20, 45, 59))
    for mode in ("fixed", "float"):
        full = registry.get(f"emu-{mode}").run(rule, trains, plans)
        part = registry.get(f"emu-{mode}").run(rule, trains, plans, recording=rec)
        expected = full.trajectory[part.rows][:, list(rec.posts)][:, :, list(rec.pres)]
        assert np.array_equal(part.trajectory, expected, equal_nan=True)
        assert np.array_equal(part.info["post_spikes"], full.info["post_spikes"])
        assert part.rows[-1] == trains.steps - 1 and np.isfinite(expected).any() and np.isnan(expected).any()


def test_masked_deployment_starting_at_zero_is_refused_not_hung(tmp_path):
    """Lava 0.10's LearningSparse drops a zero weight at the first step and the fixed-point run then
    stalls for good: deploy(mask=) refuses it in one line, and verify skips the Lava backends with the reason
    (the emulator and Brian2 run it)."""
    from neurodeploy.lava.deploy import deploy
    from neurodeploy.errors import NeurodeployError
    from neurodeploy.verification import verify
    from neurodeploy.protocol import make_trains

    rule = load_rule(rule_path("stdp_pair"))
    mask = np.array([[True, False], [True, True]])
    w0 = np.array([[0.0, 0.5], [0.5, 0.5]])
    with pytest.raises(NeurodeployError) as info:
        deploy(rule, mode="fixed", w_init=w0, mask=mask)
    assert str(info.value) == ("deploy: w0: synapse (post 0, pre 0) of the mask starts at Lava weight 0: Lava's "
                               "LearningSparse drops zero weights at the first step (fixed point then stalls); "
                               "start it above 0 or drop the mask")
    trains = make_trains(rule, "poisson", {"n_pre": 2, "n_post": 2, "steps": 50}, seed=1)
    trains = dataclasses.replace(trains, w0=w0, mask=mask)
    report = verify(rule, trains, ("brian2-step", "lava-fixed", "emu-fixed"))
    assert "lava-fixed" in report.skipped and "LearningSparse drops zero weights" in report.skipped["lava-fixed"]
    assert "emu-fixed" in report.results


def test_deploy_network_arguments_are_checked_in_one_line():
    """Issue 19: a mapping for the network (TypeError), plan="x" (AttributeError), spike_sinks(-1) (Lava's
    ValueError), a bad rng_seed (Lava's child raised at run, then stop() hung): one line each, before any
    Lava process is built; a mapping is a network file's content and is accepted."""
    from neurodeploy.lava.deploy import deploy_network

    rule = load_rule(rule_path("stdp_pair"))
    seed = "deploy: rng_seed: must be a whole number from 0 to 4294967295"
    calls = [
        (lambda: deploy_network(rule, 5), "deploy: network: must be a Network, a network file or a mapping with a "
                                          "network file's content (got int)"),
        (lambda: deploy_network(rule, {"network": "x"}), "network: populations: missing"),
        (lambda: deploy_network({"name": "x"}, STATIC), "deploy: rule: must be a rule file or a loaded rule (got dict)"),
        (lambda: deploy_network(rule, STATIC, plan="x"),
         "deploy: plan: must be a Plan (neurodeploy.compile.plan.Plan, e.g. from compile_plans) (got str)"),
        (lambda: deploy_network(rule, STATIC, "cpu", plan="x"),
         "deploy: plan: only for the learning engine (float, fixed): mode cpu runs the rule as written in rule "
         "units (got a str)"),
        (lambda: deploy_network(rule, STATIC, rng_seed=-1), f"{seed} (got -1)"),
        (lambda: deploy_network(rule, STATIC, rng_seed=1.5), f"{seed} (got 1.5)"),
        (lambda: deploy_network(rule, STATIC, w0="abc"), "deploy: w0: must be an (n_lif, n_src) array of numbers "
                                                         "(got 'abc')"),
    ]
    for call, message in calls:
        with pytest.raises(NeurodeployError) as exc:
            call()
        assert str(exc.value) == message
    nd = deploy_network(rule, STATIC, "float")  # the mapping: a network file's content
    assert nd.network.name == "static" and nd.network.source == "network"
    for bad, message in ((-1, "must be a whole number >= 1 (got -1)"), (2.5, "must be a whole number >= 1 (got 2.5)"),
                         (True, "must be a whole number >= 1 (got True)"),
                         (10 ** 8, "must be at most 10,000,000 (got 100,000,000)")):
        with pytest.raises(NeurodeployError) as exc:
            nd.spike_sinks(bad)
        assert str(exc.value) == f"network: spike_sinks.steps: {message}"
    with pytest.raises(NeurodeployError) as exc:
        nd.run("10")
    assert str(exc.value) == "network: run.steps: must be a whole number >= 1 (got '10')"


# -- the recording of verify's Lava runs: every projection's weights read right ------------------------

#: Connected, and b never spikes (its only input is far below threshold): b->b is plastic and never changes.
QUIET = {"network": "quiet", "seed": 2,
         "populations": {"inputs": {"poisson": 6, "rate": "40 Hz"},
                         "a": {"lif": 3, "tau_u": "5 ms", "tau_v": "20 ms", "threshold": 2},
                         "b": {"lif": 3, "tau_u": "5 ms", "tau_v": "20 ms", "threshold": 50}},
         "projections": [{"from": "inputs", "to": "a", "plastic": True, "p": 0.7},
                         {"from": "b", "to": "b", "plastic": True, "p": 1},
                         {"from": "a", "to": "b", "weight": 0.01, "p": 1}]}


def _quiet_runs(net, rule, mode, steps=120):
    registry = load_all()
    trains = network_trains(rule, net, seed=2, steps=steps)
    plans = compile_plans(rule, trains)
    return trains, registry.get(f"lava-{mode}").run(rule, trains, plans), registry.get(f"emu-{mode}").run(rule, trains, plans)


def _assert_quiet_projection_read_right(net, rule, trains, lava, emu, mode):
    bb = next(pr for pr in net.projections if pr.name == "b->b")
    t, s = net.projection_slices(bb)
    block = lava.trajectory[:, t, s][:, bb.mask]
    assert block.size and np.all(block == block[0])  # constant at every step
    # w_init 0.5 (fixed point: its nearest Lava weight, 128/255), never 0.0
    start = np.abs(block[0] - trains.w0[t, s][bb.mask])
    assert np.all(start <= lava.info["w0_lava_error_max"]) and (mode == "fixed" or not start.any())
    assert not lava.info["post_spikes"][net.population("b").targets].any()
    assert lava.info["post_spikes"][net.population("a").targets].any()
    assert np.array_equal(lava.info["post_spikes"], emu.info["post_spikes"])
    if mode == "fixed":
        assert np.array_equal(lava.trajectory, emu.trajectory, equal_nan=True)
    else:
        assert np.nanmax(np.abs(lava.trajectory - emu.trajectory)) <= 1e-12 * rule.weight.range
    ia = next(pr for pr in net.projections if pr.name == "inputs->a")
    t, s = net.projection_slices(ia)
    assert np.abs(lava.trajectory[-1, t, s][ia.mask] - trains.w0[t, s][ia.mask]).max() > 0  # inputs->a learns


@pytest.mark.parametrize("mode", ["float", "fixed"])
def test_a_plastic_projection_that_does_not_change_is_recorded_right(mode):
    """Issue 19: lava-float reported 0.0 for every b->b weight (brian2-step and emu-float 0.5, the initial
    weight). Here the network is connected and b->b never changes: Lava's recording reads 0.5 at every
    step, as the emulator does."""
    rule = load_rule(rule_path("stdp_pair"))
    net = network_from_dict(QUIET, "quiet.yaml", rule)
    trains, lava, emu = _quiet_runs(net, rule, mode)
    _assert_quiet_projection_read_right(net, rule, trains, lava, emu, mode)


def test_every_part_of_the_lava_process_graph_runs():
    """The issue's network: the projection a->b has no synapse (p: 0), so Lava's processes fall into two
    parts ({inputs, a, inputs->a} and {b, b->b}) and running one process ran only the first; b->b's history
    was never written and read as 0.0. The network loader refuses such files; run_network, given one all the
    same, runs one Lava run per part, and a history Lava did not write for every step raises instead of
    reading as weights."""
    from neurodeploy.lava.backends import RecordingError, _history_file, read_history

    rule = load_rule(rule_path("stdp_pair"))
    net = network_from_dict(QUIET, "quiet.yaml", rule)
    cut = tuple(dataclasses.replace(pr, mask=np.zeros_like(pr.mask), weight=np.zeros_like(pr.weight), p=0.0)
                if pr.name == "a->b" else pr for pr in net.projections)
    net = dataclasses.replace(net, projections=cut)
    trains, lava, emu = _quiet_runs(net, rule, "float")
    _assert_quiet_projection_read_right(net, rule, trains, lava, emu, "float")

    path = _history_file(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".unwritten-history.npy"), (5, 2, 2))
    try:
        with pytest.raises(RecordingError, match=r"^projection 1 \(b -> b\): its weights were recorded for 0 of 5 "):
            read_history(path, 5, "projection 1 (b -> b)")
    finally:
        for name in (path, path + ".step.npy"):
            os.unlink(name)


ONE_PROJECTION = {"network": "one_projection", "populations": {"inputs": {"poisson": 30, "rate": "25 Hz"},
                                                               "out": {"lif": 3, "tau_u": "5 ms", "tau_v": "20 ms",
                                                                       "threshold": 8}},
                  "projections": [{"from": "inputs", "to": "out", "plastic": True}]}
#: The digits task's shape: a plastic input projection onto an excitatory population, static recurrent
#: inhibition through a second population, and a static input projection onto it.
RECURRENT = {"network": "recurrent", "populations": {"noise": {"poisson": 4, "rate": "40 Hz"},
                                                     "inputs": {"poisson": 30, "rate": "25 Hz"},
                                                     "exc": {"lif": 5, "tau_u": "5 ms", "tau_v": "20 ms",
                                                             "threshold": 4},
                                                     "inh": {"lif": 2, "tau_u": "2 ms", "tau_v": "10 ms",
                                                             "threshold": 1}},
             "projections": [{"from": "inputs", "to": "exc", "plastic": True},
                             {"from": "exc", "to": "inh", "weight": 0.45},
                             {"from": "noise", "to": "inh", "weight": 0.3},
                             {"from": "inh", "to": "exc", "weight": -0.45}]}


#: RECURRENT with a second plastic projection onto ``exc`` (its sources before the first one's): one engine.
TWO_PLASTIC = dict(RECURRENT, projections=RECURRENT["projections"] + [{"from": "noise", "to": "exc", "plastic": True}])
SHAPES = {"one": ONE_PROJECTION, "recurrent": RECURRENT, "two": TWO_PLASTIC}


@pytest.mark.parametrize("name,shape", [("stdp_pair", "one"), ("ltp_ltd_soft", "one"), ("stdp_triplet", "one"),
                                        ("stdp_multiplicative", "one"), ("stdp_pair", "recurrent"),
                                        ("ltp_ltd_soft", "recurrent"), ("oja", "recurrent"), ("stdp_pair", "two"),
                                        ("oja", "two")])
def test_compiled_network_path_equals_numpy_loop(monkeypatch, name, shape):
    """A fixed-point network with plastic projections onto one population (from the second input
    population, its columns starting at 4, in the recurrent shape; from both, the second first, in the
    two-plastic shape) and any static projections runs in the compiled loop
    where the kernel covers the rule; its spikes and every recorded weight equal the numpy loop's
    (``COMPILED = False``), and the sources without a plastic synapse stay NaN."""
    from neurodeploy.emu import kernel

    if kernel.numba is None:
        pytest.skip("numba is not installed")
    if name == "oja":  # the digits task's rule, learning faster
        from neurodeploy.tasks.digits import task_rule

        rule = task_rule({"eta": 2e-3, "beta": 4.0, "t_epoch": 1})
    else:
        rule = load_rule(rule_path(name))
    net = network_from_dict(SHAPES[shape], f"{shape}.yaml", rule)
    steps = 2000 if name != "oja" else 6000
    trains = network_trains(rule, net, seed=11, steps=steps)
    plan = compile_plans(rule, trains)["fixed"]
    rows = np.arange(0, steps, 13)
    (w_c, s_c), (w_n, s_n) = _spied_equal_runs(monkeypatch, rule, net, plan, trains.w0, trains.pre[: net.n_inputs],
                                               None, rows)  # the rules here are the compiled loop's
    for pop in net.lifs:  # every population fires, none all the time
        fired = s_n[pop.targets].sum()
        assert 10 < fired < 0.6 * s_n[pop.targets].size, (pop.name, fired)
    assert np.array_equal(s_c, s_n)
    plastic = net.plastic_mask()
    assert np.array_equal(~np.isnan(w_c[0]), plastic) and np.array_equal(np.isnan(w_c), np.isnan(w_n))
    assert np.array_equal(np.nan_to_num(w_c), np.nan_to_num(w_n))
    assert np.nanmax(np.abs(w_n[-1] - w_n[0])) > 0.05 * rule.weight.range  # it learned something to compare


def _spied_equal_runs(monkeypatch, rule, net, plan, w0, inputs, schedule, rows):
    """(compiled, numpy) runs of one network, asserting the compiled loop ran the first."""
    from neurodeploy.emu import network as emu_network

    calls = []
    real = emu_network._compiled_network

    def spy(*args, **kwargs):
        out = real(*args, **kwargs)
        calls.append(out is not None)
        return out

    monkeypatch.setattr(emu_network, "_compiled_network", spy)
    compiled = emu_network.simulate_network(rule, net, plan, w0, inputs, record_rows=rows, third_factor=schedule)
    monkeypatch.setattr(emu_network, "COMPILED", False)
    numpy_loop = emu_network.simulate_network(rule, net, plan, w0, inputs, record_rows=rows, third_factor=schedule)
    monkeypatch.setattr(emu_network, "COMPILED", True)
    assert calls == [True]
    return compiled, numpy_loop


@pytest.mark.parametrize("seed", [3, 4])
def test_compiled_network_runs_the_distal_reward_task_as_the_numpy_loop(monkeypatch, seed):
    """rstdp (a tag, a reward trace) in the distal-reward task's network, its reward from its own spikes
    (the delays shortened so that a short run earns several): two plastic projections onto one
    population, a static noise projection. The compiled loop's spikes, weights and rewards equal the
    numpy loop's (the engine per projection, ``OnlineTraces`` and ``DistalReward`` in Python)."""
    from neurodeploy.emu import kernel
    from neurodeploy.tasks import runner

    if kernel.numba is None:
        pytest.skip("numba is not installed")
    task = runner.task_module("distal-reward")
    setup = runner.task_setup(task, steps=6000, delay_min=100, delay_max=300)
    plan = runner.compile_task(task, setup).plans["fixed"]
    m = task.member(setup, seed)
    inputs = m.pre[: m.network.n_inputs]
    (w_c, s_c), (w_n, s_n) = _spied_equal_runs(monkeypatch, setup.rule, m.network, plan, m.w0, inputs,
                                               m.reward_schedule, np.arange(0, m.steps, 50))
    assert np.array_equal(s_c, s_n)
    assert np.array_equal(np.isnan(w_c), np.isnan(w_n)) and np.array_equal(np.nan_to_num(w_c), np.nan_to_num(w_n))
    rewards = m.reward_schedule.replay(np.concatenate([inputs, s_n]), s_n)
    assert (rewards[0] > 0).sum() >= 2  # the third factor arrived, more than once
    assert np.nanmax(np.abs(w_n[-1] - w_n[0])) > 0  # and the weights learned


def test_compiled_network_runs_the_distal_reward_task_as_lava_fixed(monkeypatch):
    """The distal task's network (two plastic rstdp projections onto one population side by side in the
    compiled loop, a static noise projection), rewards 5-20 steps after each rewarded pairing: the compiled
    loop makes lava-fixed's spikes and integers (Lava: two LearningDense connections, a RewardTraces
    process each)."""
    from neurodeploy.emu import kernel
    from neurodeploy.lava.backends import run_network
    from neurodeploy.tasks import runner

    if kernel.numba is None:
        pytest.skip("numba is not installed")
    task = runner.task_module("distal-reward")
    setup = runner.task_setup(task, steps=6000, delay_min=5, delay_max=20, cue_rate=40.0, threshold=4.0)
    plan = runner.compile_task(task, setup).plans["fixed"]
    m = task.member(setup, 2)
    inputs = m.pre[: m.network.n_inputs, :400]
    (w_c, s_c), _ = _spied_equal_runs(monkeypatch, setup.rule, m.network, plan, m.w0, inputs, m.reward_schedule,
                                      None)
    w_l, s_l = run_network(setup.rule, m.network, plan, m.w0, inputs, reward=m.reward_schedule)
    rewards = m.reward_schedule.replay(np.concatenate([inputs, s_c]), s_c)
    assert (rewards[0] > 0).sum() >= 2, "no reward arrived: the check would not reach the third factor"
    assert np.array_equal(s_c, s_l)
    assert np.array_equal(np.isnan(w_c), np.isnan(w_l)) and np.nanmax(np.abs(w_c - w_l)) == 0.0


def test_compiled_network_runs_a_rate_reward_as_the_numpy_loop(monkeypatch):
    """rstdp with a reward for activity (:class:`RateReward`): the compiled loop equals the numpy loop."""
    from neurodeploy.emu import kernel
    from neurodeploy.schedules import RateReward

    if kernel.numba is None:
        pytest.skip("numba is not installed")
    rule = load_rule(rule_path("rstdp"))
    net = network_from_dict(ONE_PROJECTION, "one.yaml", rule)
    trains = network_trains(rule, net, seed=5, steps=4000)
    schedule = RateReward(neurons=[0, 1, 2], target=3, period=50, delay=40, amount=1.0)
    rng = np.random.default_rng(0)  # traffic to compile on: post spikes and rewards
    traffic = with_spikes(trains, rng.random(trains.post.shape) < 0.02)
    plan = compile_rule(rule, dataclasses.replace(traffic, reward=(rng.random(trains.reward.shape) < 0.005) * 1.0))["fixed"]
    assert plan.three_factor
    inputs = trains.pre[: net.n_inputs]
    (w_c, s_c), (w_n, s_n) = _spied_equal_runs(monkeypatch, rule, net, plan, trains.w0, inputs, schedule,
                                               np.arange(0, 4000, 25))
    assert np.array_equal(s_c, s_n)
    assert np.array_equal(np.nan_to_num(w_c), np.nan_to_num(w_n))
    rewards = schedule.replay(np.concatenate([inputs, s_n]), s_n)
    assert (rewards[0] > 0).sum() >= 2 and np.nanmax(np.abs(w_n[-1] - w_n[0])) > 0


@pytest.mark.parametrize("seed,lo,hi", [(0, 1000, 3000), (3, 100, 300), (11, 1, 7), (2, 5, 5)])
def test_distal_delays_drawn_at_once_equal_the_scalar_draws(seed, lo, hi):
    """The network loop draws DistalReward's delays in one call; DistalReward draws them one at a time."""
    batch = np.random.default_rng(seed).integers(lo, hi + 1, size=500)
    rng = np.random.default_rng(seed)
    assert batch.tolist() == [int(rng.integers(lo, hi + 1)) for _ in range(500)]


def test_compiled_network_path_declines_what_it_does_not_cover():
    """A float plan, a request for the LIF state, plastic projections onto two populations, a reward
    schedule of its own kind: the numpy loop runs them."""
    from neurodeploy.emu.network import _compiled_network

    rule = load_rule(rule_path("stdp_pair"))
    one = network_from_dict(ONE_PROJECTION, "one.yaml", rule)
    trains = network_trains(rule, one, seed=3, steps=50)
    plans = compile_plans(rule, trains)
    args = (trains.w0, trains.pre[: one.n_inputs], 0, 0, None)
    assert _compiled_network(rule, one, plans["fixed"], *args, None, None) is not None
    assert _compiled_network(rule, one, plans["float"], *args, None, None) is None
    assert _compiled_network(rule, one, plans["fixed"], *args, {}, None) is None
    two = dict(RECURRENT, projections=RECURRENT["projections"] + [{"from": "noise", "to": "inh", "plastic": True}])
    net = network_from_dict(two, "two.yaml", rule)
    trains = network_trains(rule, net, seed=3, steps=50)
    assert _compiled_network(rule, net, plans["fixed"], trains.w0, trains.pre[: net.n_inputs], 0, 0, None, None,
                             None) is None
    sparse = dict(ONE_PROJECTION, projections=[{"from": "inputs", "to": "out", "plastic": True, "p": 0.5}])
    net = network_from_dict(sparse, "sparse.yaml", rule)
    trains = network_trains(rule, net, seed=3, steps=50)
    assert _compiled_network(rule, net, plans["fixed"], trains.w0, trains.pre[: net.n_inputs], 0, 0, None, None,
                             None) is None
    from neurodeploy.schedules import DistalReward

    class Mine(DistalReward):  # its own _observe: only Python knows what it does
        def _observe(self, t, sources, lifs):
            pass

    rstdp = load_rule(rule_path("rstdp"))
    trains = network_trains(rstdp, one, seed=3, steps=50)
    rng = np.random.default_rng(0)
    traffic = with_spikes(trains, rng.random(trains.post.shape) < 0.02)
    fixed = compile_rule(rstdp, dataclasses.replace(traffic, reward=(rng.random(trains.reward.shape) < 0.05) * 1.0))["fixed"]
    args = (trains.w0, trains.pre[: one.n_inputs], 0, 0, None, None)
    assert _compiled_network(rstdp, one, fixed, *args, DistalReward(pre=0, post=0, delay_min=5, delay_max=9)) is not None
    assert _compiled_network(rstdp, one, fixed, *args, Mine(pre=0, post=0, delay_min=5, delay_max=9)) is None
