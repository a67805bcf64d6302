"""The network file: what it means (the block structure every backend shares) and what it refuses.

No backend runs here: the structure is checked against the file by hand, the refusals by their
full text (one line, exit 2, nothing written)."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import rule_path
from neurodeploy.errors import NeurodeployError
from neurodeploy.network import load_network, network_from_dict, network_trains, reseed, with_spikes
from neurodeploy.spec.loader import load_rule

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLE = os.path.join(ROOT, "reference", "networks", "ei_recurrent.yaml")


@pytest.fixture(scope="module")
def rule():
    return load_rule(rule_path("stdp_pair"))


def base():
    return {"network": "net", "steps": 500, "seed": 4,
            "populations": {"inp": {"poisson": 30, "rate": "50 Hz"},
                            "e": {"lif": 8, "tau_u": "5 ms", "tau_v": "20 ms", "threshold": 4},
                            "i": {"lif": 2, "tau_u": "2 ms", "tau_v": "10 ms", "threshold": 2}},
            "projections": [{"from": "inp", "to": "e", "plastic": True, "p": 0.5},
                            {"from": "e", "to": "e", "plastic": True, "p": 0.3, "w0": 0.25},
                            {"from": "e", "to": "i", "weight": 0.5},
                            {"from": "i", "to": "e", "weight": -2, "p": 0.9}]}


def test_block_structure(rule):
    net = network_from_dict(base(), "net.yaml", rule)
    # sources: the Poisson inputs first, then the LIF populations in file order; targets: the LIFs
    assert (net.n_src, net.n_lif, net.n_inputs) == (40, 10, 30)
    e, i = net.population("e"), net.population("i")
    assert (e.sources, e.targets, i.sources, i.targets) == (slice(30, 38), slice(0, 8), slice(38, 40), slice(8, 10))
    mask = net.plastic_mask()
    # inputs -> e at p 0.5, e -> e at p 0.3 without autapses, nothing plastic into i or from i
    assert 0.3 < mask[0:8, 0:30].mean() < 0.7
    assert not mask[8:10].any() and not mask[:, 38:40].any()
    assert not np.diag(mask[0:8, 30:38]).any()
    w0 = net.plastic_w0()
    assert np.all(w0[0:8, 0:30][mask[0:8, 0:30]] == rule.weight.w_init)
    assert np.all(w0[0:8, 30:38][mask[0:8, 30:38]] == rule.weight.w_min + 0.25 * rule.weight.range)
    static = net.static_weights()
    assert np.all(static[8:10, 30:38] == 0.5 * rule.weight.range)  # p 1: every synapse
    assert set(np.unique(static[0:8, 38:40])) <= {0.0, -2.0 * rule.weight.range}
    assert np.array_equal(net.static_mask()[0:8, 38:40], static[0:8, 38:40] != 0)
    assert np.array_equal(net.lif_array("tau_u_ms"), [5.0] * 8 + [2.0] * 2)
    assert np.array_equal(net.lif_array("threshold"), [4.0] * 8 + [2.0] * 2)
    # the structure seed fixes the masks; another seed draws others
    again = network_from_dict(base(), "net.yaml", rule)
    assert np.array_equal(again.plastic_mask(), mask)
    other = network_from_dict(dict(base(), seed=5), "net.yaml", rule)
    assert not np.array_equal(other.plastic_mask(), mask)


def test_trains(rule):
    net = network_from_dict(base(), "net.yaml", rule)
    trains = network_trains(rule, net, seed=7)
    assert trains.pre.shape == (40, 500) and trains.post.shape == (10, 500) and trains.w0.shape == (10, 40)
    assert trains.closed and trains.network is net and trains.protocol == "network:net"
    assert not trains.pre[30:].any() and not trains.post.any()  # the neurons' spikes come from the backends
    rate = trains.pre[:30].mean() / rule.dt
    assert 40 < rate < 60  # 50 Hz: 15000 Bernoulli draws, sd ~1.3 Hz
    assert np.array_equal(network_trains(rule, net, seed=7).pre, trains.pre)
    other = reseed(rule, trains, 8)
    assert other.seed == 8 and not np.array_equal(other.pre, trains.pre) and other.network is net
    assert np.array_equal(other.pre[:30], network_trains(rule, net, seed=8).pre[:30])
    spikes = np.random.default_rng(0).random((10, 500)) < 0.05
    made = with_spikes(trains, spikes)
    assert np.array_equal(made.post, spikes) and np.array_equal(made.pre[30:], spikes)
    assert np.array_equal(made.pre[:30], trains.pre[:30])


def test_example_file_loads(rule):
    net = load_network(EXAMPLE, rule)
    assert net.name == "ei_recurrent" and any(pr.source == pr.target and pr.plastic for pr in net.projections)
    assert any(not pr.plastic and pr.weight.min() < 0 for pr in net.projections)  # inhibition


def _without(d, *path):
    d = {k: (dict(v) if isinstance(v, dict) else v) for k, v in d.items()}
    d["populations"] = {k: dict(v) for k, v in d["populations"].items()}
    d["projections"] = [dict(p) for p in d["projections"]]
    return d


REFUSED = [
    (lambda d: d.pop("populations"), "net.yaml: populations: missing"),
    (lambda d: d.update(stepz=3), "net.yaml: stepz: unknown field, did you mean 'steps'? "
                                  "(allowed: network, description, steps, seed, populations, projections, reward)"),
    (lambda d: d.update(steps=0), "net.yaml: steps: must be between 1 and 10000000 (got 0)"),
    (lambda d: d["populations"]["inp"].update(rate="50 ms"), "net.yaml: populations.inp.rate: must be in Hz (got 50 ms, second)"),
    (lambda d: d["populations"]["inp"].update(rate="20 kHz"),
     "net.yaml: populations.inp.rate: must be at most one spike per step, 1000 Hz at the rule's dt (got 20 kHz)"),
    (lambda d: d["populations"]["inp"].pop("rate"), "net.yaml: populations.inp.rate: missing (a rate such as '20 Hz')"),
    (lambda d: d["populations"]["e"].update(poisson=3),
     "net.yaml: populations.e: must have exactly one of 'poisson: N' or 'lif: N' (got lif, tau_u, tau_v, threshold, poisson)"),
    (lambda d: d["populations"]["e"].update(tau_v="0.5 ms"),
     "net.yaml: populations.e.tau_v: must be at least the rule's dt 1 ms (got 0.5 ms)"),
    (lambda d: d["populations"]["e"].update(threshold=0), "net.yaml: populations.e.threshold: must be > 0 (got 0)"),
    (lambda d: d["populations"]["e"].update(lif=0), "net.yaml: populations.e.lif: must be between 1 and 100000 (got 0)"),
    (lambda d: d["populations"]["e"].update(tresh=1),
     "net.yaml: populations.e.tresh: unknown field, did you mean 'threshold'? (allowed: lif, tau_u, tau_v, threshold)"),
    (lambda d: d["projections"][0].update(to="inp"),
     "net.yaml: projections[0].to: must be a 'lif' population: 'inp' is a Poisson input, which receives nothing"),
    (lambda d: d["projections"][0].update(to="ee"),
     "net.yaml: projections[0].to: unknown population 'ee', did you mean 'e'? (populations: inp, e, i)"),
    (lambda d: d["projections"][0].update(p=1.5), "net.yaml: projections[0].p: must be between 0 and 1 (got 1.5)"),
    (lambda d: d["projections"][0].update(weight=1),
     "net.yaml: projections[0].weight: a plastic projection starts from 'w0' (0..1 within the rule's bounds), not 'weight'"),
    (lambda d: d["projections"][2].pop("weight"),
     "net.yaml: projections[2].weight: missing (a static projection's weight, in units of the rule's weight range; < 0 inhibits)"),
    (lambda d: d["projections"][0].update(autapses=True),
     "net.yaml: projections[0].autapses: only for a recurrent projection (from = to): inp -> e has no synapse of a "
     "neuron onto itself"),
    (lambda d: d["projections"][0].update(plastic="yes"), "net.yaml: projections[0].plastic: must be true or false (got 'yes')"),
    (lambda d: d["projections"].append({"from": "inp", "to": "e", "plastic": True}),
     "net.yaml: projections[4]: a second plastic projection inp -> e: merge them"),
    (lambda d: [d["projections"][k].update(p=0.0) for k in (0, 1)],
     "net.yaml: projections: needs at least one plastic projection with a synapse (plastic: true): the rule learns there"),
    (lambda d: d["populations"].pop("e") and d["populations"].pop("i") and d.update(projections=[]),
     "net.yaml: populations: needs at least one 'lif' population (the neurons that learn)"),
    # two halves linked by nothing: Lava runs only the part connected to the process it starts (audit)
    (lambda d: d["populations"].update(inp2={"poisson": 5, "rate": "10 Hz"}, z={"lif": 3, "tau_u": "5 ms",
                                                                                "tau_v": "20 ms", "threshold": 1})
     or d["projections"].append({"from": "inp2", "to": "z", "plastic": True}),
     "net.yaml: projections: the network falls into 2 unconnected parts ({inp, e, i} and {inp2, z}): Lava runs "
     "only the part connected to the process it starts; verify each part as its own network"),
    (lambda d: d["populations"].update(lonely={"lif": 1, "tau_u": "5 ms", "tau_v": "20 ms", "threshold": 1}),
     "net.yaml: projections: the network falls into 2 unconnected parts ({inp, e, i} and {lonely}): Lava runs "
     "only the part connected to the process it starts; verify each part as its own network"),
    # issue 19: a list where a name belongs was answered "did you mean 'inp'?"
    (lambda d: d["projections"][0].update({"from": ["inp"]}),
     "net.yaml: projections[0].from: must be the name of one population, not a list (populations: inp, e, i) "
     "(got ['inp'])"),
    (lambda d: d["projections"][0].update({"to": {"e": 1}}),
     "net.yaml: projections[0].to: must be the name of one population, not a mapping (populations: inp, e, i) "
     "(got {'e': 1})"),
    # issue 19: joined only by a projection without a synapse (p: 0): no backend builds it, Lava ran {i} apart
    # and lava-float recorded 0.0 for every i->i weight
    (lambda d: d.update(projections=[{"from": "inp", "to": "e", "plastic": True},
                                     {"from": "i", "to": "i", "plastic": True, "p": 1},
                                     {"from": "e", "to": "i", "weight": 0.5, "p": 0}]),
     "net.yaml: projections: the network falls into 2 unconnected parts ({inp, e} and {i}): Lava runs only the part "
     "connected to the process it starts; verify each part as its own network; projections[2] (e -> i, p 0) has no "
     "synapse: it connects nothing"),
    # dense blocks bounded before any mask is drawn (audit: 50,000 x 100,000 ran out of memory)
    (lambda d: d["populations"]["inp"].update(poisson=49000) or d["populations"]["e"].update(lif=50000),
     "net.yaml: populations: 50002 LIF neurons x 99002 sources = 4,950,298,004 weight entries, at most "
     "25,000,000 (the weights are held as dense LIF x source blocks)"),
]


@pytest.mark.parametrize("change,message", REFUSED)
def test_refused(rule, change, message):
    data = _without(base())
    change(data)
    with pytest.raises(NeurodeployError) as info:
        network_from_dict(data, "net.yaml", rule)
    assert str(info.value) == message


def _cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "neurodeploy.cli", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=120)


@pytest.mark.parametrize("extra,message", [
    ((), None),
    (("--rate", "5"), "neurodeploy: error: --network: takes only --steps of the protocol options (got --rate)"),
    (("--protocol", "pairing"), "neurodeploy: error: --network: is the protocol 'network': it cannot be combined "
                                "with --protocol pairing"),
    (("--steps", "20000000"), "neurodeploy: error: --steps: run too large (20000000 steps x 20x60 neurons; at most "
                              "10,000,000 steps, 20,000,000,000 synapse-steps and 200,000,000 neuron-steps)"),
])
def test_cli_refusals(tmp_path, extra, message):
    bad = tmp_path / "bad.yaml"
    bad.write_text("network: x\npopulations: {a: {lif: 2, tau_u: 5 ms, tau_v: 20 ms, threshold: 1}}\n"
                   "projections: [{from: a, to: a, weight: 1}]\n")
    out = tmp_path / "out"
    net = str(bad) if message is None else EXAMPLE
    done = _cli("verify", rule_path("stdp_pair"), "--network", net, "--out", str(out), *extra, cwd=tmp_path)
    expected = message or ("neurodeploy: error: bad.yaml: projections: needs at least one plastic projection with a "
                           "synapse (plastic: true): the rule learns there")
    assert done.returncode == 2 and done.stderr.strip() == expected and "Traceback" not in done.stderr
    assert not out.exists()
    done = _cli("verify", rule_path("stdp_pair"), "--protocol", "network", "--out", str(out), cwd=tmp_path)
    assert done.stderr.strip() == "neurodeploy: error: --protocol: network needs --network FILE (a network file: " \
                                  "populations, projections)" and done.returncode == 2


def test_batch_plan_takes_a_network(tmp_path):
    """A plan's protocol {name: network, network: FILE, steps: N}: one run per rule and seed, the file's
    text in the cache key; a file outside the plan's directory and an unknown option are refused."""
    from neurodeploy.batch import load_plan

    (tmp_path / "net.yaml").write_text(open(EXAMPLE).read())
    (tmp_path / "plan.yaml").write_text("rules: [stdp_pair]\nprotocols:\n  - {name: network, network: net.yaml, "
                                        "steps: 300}\nseeds: [1, 2]\n")
    _, specs = load_plan(str(tmp_path / "plan.yaml"))
    assert [s.run_id for s in specs] == ["stdp_pair-network-seed1", "stdp_pair-network-seed2"]
    assert specs[0].options["steps"] == 300 and specs[0].options["network_text"] == open(EXAMPLE).read()
    key = specs[0].key()
    (tmp_path / "net.yaml").write_text(open(EXAMPLE).read().replace("p: 0.2", "p: 0.3"))
    assert load_plan(str(tmp_path / "plan.yaml"))[1][0].key() != key  # an edited network is another run
    for entry, message in (("{name: network, network: ../x.yaml}", "plan.yaml: protocols[0].network: must be a file "
                            "under the plan's directory (--allow-outside-rules allows any path) (got '../x.yaml')"),
                           ("{name: network, network: net.yaml, rate: 3}", "plan.yaml: protocols[0].rate: not an "
                            "option of protocol 'network' (options: network, steps)"),
                           ("{name: network, network: nope.yaml}", "nope.yaml: no such file")):
        (tmp_path / "plan.yaml").write_text(f"rules: [stdp_pair]\nprotocols:\n  - {entry}\n")
        with pytest.raises(NeurodeployError) as info:
            load_plan(str(tmp_path / "plan.yaml"))
        assert str(info.value) == message


def test_three_factor_rule_in_a_network_runs_on_brian2_and_is_refused_by_the_engine():
    """A rule with a reward trace gets the protocols' default reward per LIF neuron; Brian2 runs it, the
    Lava and emulator backends are skipped with their reason (audit: the emulator raised a KeyError)."""
    from neurodeploy.verification import verify

    rstdp = load_rule(rule_path("rstdp"))
    trains = network_trains(rstdp, load_network(EXAMPLE, rstdp), seed=1, steps=100)
    assert trains.reward is not None and trains.reward.shape == (20, 100)
    report = verify(rstdp, trains, ("brian2-step", "emu-float", "lava-cpu"))
    assert set(report.results) == {"brian2-step"}
    assert report.skipped["emu-float"] == ("networks: a three-factor rule needs a reward schedule (the reward from "
                                          "the network's spikes, neurodeploy.compile.reward) to compute its post and "
                                          "reward traces online")
    assert report.skipped["lava-cpu"] == "networks: the supplied reward of a three-factor rule is not wired in " \
                                         "networks yet"


def test_batch_plan_applies_the_run_limits(tmp_path):
    """A plan's network run obeys verify's size limits, checked at load without building the trains."""
    from neurodeploy.batch import load_plan

    (tmp_path / "net.yaml").write_text(open(EXAMPLE).read())
    (tmp_path / "plan.yaml").write_text("rules: [stdp_pair]\nprotocols:\n  - {name: network, network: net.yaml, "
                                        "steps: 20000000}\n")
    with pytest.raises(NeurodeployError) as info:
        load_plan(str(tmp_path / "plan.yaml"))
    assert str(info.value) == ("plan.yaml: protocols[0].steps: run too large (20000000 steps x 20x60 neurons; at "
                               "most 10,000,000 steps, 20,000,000,000 synapse-steps and 200,000,000 neuron-steps)")


NET_FILE = """network: x
populations:
  inputs: {poisson: 4, rate: 10 Hz}
  a: {lif: 3, tau_u: 5 ms, tau_v: 20 ms, threshold: THRESHOLD}
projections:
  - {from: inputs, to: a, plastic: true, p: P}
"""


def test_network_file_reads_numbers_as_yaml_1_2(rule, tmp_path):
    """Issue 19: YAML 1.1 (PyYAML) reads 1e-9 as text ("must be a finite number (got '1e-9')"); a network
    file reads it, 2E3 and 5e-1 as the numbers they are; text stays text, an exponent in a count is refused."""
    path = tmp_path / "net.yaml"
    path.write_text(NET_FILE.replace("THRESHOLD", "1e-9").replace("P", "5e-1"))
    net = load_network(str(path), rule)
    assert net.lifs[0].threshold == 1e-9 and net.projections[0].p == 0.5
    path.write_text(NET_FILE.replace("THRESHOLD", "2E3").replace("P", "1"))
    assert load_network(str(path), rule).lifs[0].threshold == 2000.0
    path.write_text(NET_FILE.replace("THRESHOLD", "'1e-9'").replace("P", "1"))  # quoted: text
    with pytest.raises(NeurodeployError) as info:
        load_network(str(path), rule)
    assert str(info.value) == "net.yaml: populations.a.threshold: must be a finite number (got '1e-9')"
    path.write_text(NET_FILE.replace("THRESHOLD", "1").replace("P", "1") + "steps: 1e3\n")
    with pytest.raises(NeurodeployError) as info:
        load_network(str(path), rule)
    assert str(info.value) == "net.yaml: steps: must be an integer (got 1000.0)"


@pytest.mark.parametrize("text,message", [
    # issue 19: a merge key was reported as a tag
    (NET_FILE.replace("{lif: 3,", "{<<: {lif: 3},"), "net.yaml: invalid YAML at line 4: merge keys (<<) are not allowed"),
    ("<<: {steps: 100}\n" + NET_FILE, "net.yaml: invalid YAML at line 1: merge keys (<<) are not allowed"),
    (NET_FILE.replace("THRESHOLD", "!!python/object:os.system x"),
     "net.yaml: invalid YAML at line 4: tags (!name) are not allowed"),
    (NET_FILE + "x: &a 1\ny: *a\n", "net.yaml: invalid YAML at line 8: anchors and aliases are not allowed"),
    (NET_FILE + "network: y\n", "net.yaml: invalid YAML at line 7: duplicated key"),
])
def test_network_file_yaml_refusals(rule, tmp_path, text, message):
    path = tmp_path / "net.yaml"
    path.write_text(text.replace("THRESHOLD", "1").replace("P", "1"))
    with pytest.raises(NeurodeployError) as info:
        load_network(str(path), rule)
    assert str(info.value) == message
