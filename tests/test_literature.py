"""The literature network (neurodeploy/literature.py): Song, Miller & Abbott (2000), van Rossum, Bi &
Turrigiano (2000). Additive STDP splits the weights towards both bounds (bimodal); multiplicative
depression keeps them in one interior mode near w* = 1/alpha. Decided by the fraction of weights within
10% of each bound; the emulator runs the full network, Lava proves it bit for bit on a window.
Brian2 (hundreds of seconds for the full network) runs in scripts/sma2000.py (numbers in docs/literature.md)."""
import dataclasses

import numpy as np
import pytest

from neurodeploy import literature as L
from neurodeploy.targets import load_all
from neurodeploy.compile.compilation import compile_plans


@pytest.fixture(scope="module")
def networks():
    out = {}
    for kind in ("additive", "multiplicative"):
        rule = L.network_rule(kind)
        trains = L.network_trains(rule)
        out[kind] = (rule, trains, L.run_network(rule, trains, ["emu-fixed"], reference="emu-fixed")["emu-fixed"])
    return out


def test_additive_stdp_is_bimodal_on_emu_fixed(networks):
    rule, trains, run = networks["additive"]
    s = run["stats"]
    assert trains.steps == 200_000 and trains.n_pre == 250
    assert s["near_low"] + s["near_high"] >= 0.5, s  # most weights near the bounds
    assert s["near_low"] >= 0.05 and s["near_high"] >= 0.05, s  # at both bounds: two modes
    assert run["modality"] == "bimodal"
    assert 2 < s["rate_hz"] < 40  # the competition holds the post rate (it starts at ~50 Hz)


def test_multiplicative_depression_is_unimodal_on_emu_fixed(networks):
    rule, trains, run = networks["multiplicative"]
    s = run["stats"]
    alpha = rule.values["alpha"]
    assert alpha == 2.0
    assert s["near_low"] + s["near_high"] <= 0.1, s
    assert abs(s["w_mean"] - 1 / alpha) < 0.1, s  # w* = 1/alpha for uncorrelated inputs (closed form)
    assert s["w_std"] < 0.1
    assert run["modality"] == "unimodal"


@pytest.mark.parametrize("kind", ["additive"])
def test_lava_fixed_equals_emu_fixed_on_the_network(kind, networks):
    """The emulator that ran the full network equals lava-fixed bit for bit on its first 200 steps
    (250 inputs, the same plan and neuron)."""
    rule, trains, _ = networks[kind]
    registry = load_all()
    short = dataclasses.replace(trains, pre=trains.pre[:, :200], post=trains.post[:, :200])
    guess = dataclasses.replace(short, post=trains.pre[:1, :200])
    plans = compile_plans(rule, guess, approximate=True)
    lava = registry.get("lava-fixed").run(rule, short, plans)
    emu = registry.get("emu-fixed").run(rule, short, plans)
    assert lava.info["post_spikes"].sum() >= 3
    assert np.array_equal(lava.info["post_spikes"], emu.info["post_spikes"])
    assert np.ptp(lava.trajectory) > 0 and np.array_equal(lava.trajectory, emu.trajectory)
