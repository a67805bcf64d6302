"""Learning epochs longer than one step: ``brian2-step`` and the numpy stepper (``lava-cpu``)
follow the learning engine's epoch bookkeeping, so they equal ``emu-float`` (bit-equal to
``lava-float``) to 1e-9 of the weight range at any epoch length."""
from __future__ import annotations

import numpy as np
import pytest
import yaml

from conftest import rule_path
from neurodeploy.backends import load_all
from neurodeploy.harness import compile_plans
from neurodeploy.protocol import make_trains
from neurodeploy.spec.loader import rule_from_dict
from neurodeploy.stepper import simulate

REG = load_all()
TOL = 1e-9


def rule_with_epoch(name, t_epoch):
    with open(rule_path(name)) as handle:
        data = yaml.safe_load(handle)
    data["simulation"] = {"dt": "1 ms", "t_epoch": t_epoch}
    return rule_from_dict(data, f"{name}.yaml")


def trajectories(rule, backends, steps=400):
    # 40 Hz: several spikes of one neuron within the longer epochs
    trains = make_trains(rule, "poisson", {"n_pre": 4, "n_post": 3, "steps": steps, "rate": 40.0}, seed=7)
    plans = compile_plans(rule, trains)
    out = {b: REG.get(b).run(rule, trains, plans).trajectory for b in backends}
    out["stepper"] = simulate(rule, trains.w0, trains.pre, trains.post)
    return out, trains


@pytest.mark.parametrize("t_epoch", [2, 3, 63])
@pytest.mark.parametrize("name", ["stdp_pair", "stdp_triplet"])
def test_step_semantics_equal_the_engine(name, t_epoch):
    rule = rule_with_epoch(name, t_epoch)
    out, trains = trajectories(rule, ("emu-float", "brian2-step"))
    scale = rule.weight.range
    assert np.abs(out["brian2-step"] - out["emu-float"]).max() <= TOL * scale
    assert np.abs(out["stepper"] - out["emu-float"]).max() <= TOL * scale
    assert np.abs(out["emu-float"] - trains.w0).max() > 1e-3 * scale  # the rule did something


def test_lava_float_anchor_at_epoch_2():
    """One run of Lava itself: emu-float is bit-equal to it, and brian2-step within 1e-9."""
    rule = rule_with_epoch("stdp_pair", 2)
    out, _ = trajectories(rule, ("lava-float", "emu-float", "brian2-step"), steps=200)
    assert np.abs(out["emu-float"] - out["lava-float"]).max() <= 1e-12 * rule.weight.range
    assert np.abs(out["brian2-step"] - out["lava-float"]).max() <= TOL * rule.weight.range
