"""The Brian2 reference and step backends against closed forms."""
import math

import numpy as np
import pytest

from conftest import raster, rule_path
from neurodeploy.targets import load_all
from neurodeploy.protocol import SpikeTrains
from neurodeploy.spec.loader import load_rule

REG = load_all()


def one_pair(rule, t_pre, t_post, steps=80, w0=None):
    w0 = np.full((1, 1), rule.weight.w_init if w0 is None else w0)
    return SpikeTrains(raster(1, steps, [(0, t_pre)]), raster(1, steps, [(0, t_post)]), w0, "pair")


@pytest.mark.parametrize("backend", ["brian2", "brian2-step"])
@pytest.mark.parametrize("delta", [1, 5, 10, 20, 40])
def test_stdp_pair_single_pair_matches_window(backend, delta):
    """pre then post at dt: w0 + A_plus exp(-dt/tau_plus); post then pre: w0 - A_minus exp(-dt/tau_minus)."""
    rule = load_rule(rule_path("stdp_pair"))
    v = rule.values
    ltp = REG.get(backend).run(rule, one_pair(rule, 10, 10 + delta), {}).trajectory
    assert ltp[-1, 0, 0] == pytest.approx(0.5 + v["A_plus"] * math.exp(-delta * 1e-3 / v["tau_plus"]), abs=1e-12)
    ltd = REG.get(backend).run(rule, one_pair(rule, 10 + delta, 10), {}).trajectory
    assert ltd[-1, 0, 0] == pytest.approx(0.5 - v["A_minus"] * math.exp(-delta * 1e-3 / v["tau_minus"]), abs=1e-12)
    # the change happens at the second spike's step, not before
    assert ltp[10 + delta - 1, 0, 0] == 0.5 and ltp[10 + delta, 0, 0] != 0.5


def test_coincident_spikes_are_the_timing_share():
    """At a same-step pre/post pair brian2 applies on_pre first (y before its jump), the engine reads both jumps."""
    rule = load_rule(rule_path("stdp_pair"))
    v = rule.values
    trains = one_pair(rule, 10, 10)
    ref = REG.get("brian2").run(rule, trains, {}).trajectory[-1, 0, 0]
    step = REG.get("brian2-step").run(rule, trains, {}).trajectory[-1, 0, 0]
    assert ref == pytest.approx(0.5 + v["A_plus"], abs=1e-12)
    assert step == pytest.approx(0.5 + v["A_plus"] - v["A_minus"], abs=1e-12)


def test_soft_bound_closed_form_potentiation():
    """Repeated pre->post pairs: each post spike moves w a fraction eta1*x of the way to W_max."""
    rule = load_rule(rule_path("ltp_ltd_soft"))
    v = rule.values
    period, delta, n = 200, 5, 8
    steps = period * n
    pre = raster(1, steps, [(0, k * period) for k in range(n)])
    post = raster(1, steps, [(0, k * period + delta) for k in range(n)])
    trains = SpikeTrains(pre, post, np.full((1, 1), 0.2), "pairs")
    # the traces between events decay exactly: x(t) = x(t0) exp(-(t - t0)/tau)
    dx, dy = (lambda s: math.exp(-s * 1e-3 / v["tau_ltp"])), (lambda s: math.exp(-s * 1e-3 / v["tau_ltd"]))
    w, x, y = 0.2, 0.0, 0.0  # x: pre trace after the last pre spike, y: post trace after the last post spike
    for k in range(n):
        y_at_pre = y * dy(period - delta) if k else 0.0
        w = w - v["eta2"] * y_at_pre * w          # pre spike: depression by the post trace
        x = (x * dx(period) if k else 0.0) + 1.0  # then the pre trace jumps
        w = w + v["eta1"] * x * dx(delta) * (v["W_max"] - w)  # post spike: soft-bound potentiation
        y = y_at_pre * dy(delta) + 1.0
    for backend in ("brian2", "brian2-step"):
        got = REG.get(backend).run(rule, trains, {}).trajectory[-1, 0, 0]
        assert got == pytest.approx(w, abs=1e-12), backend


def test_soft_bound_never_leaves_bounds(write_rule):
    """Even with huge learning rates and dense spiking the soft bound keeps w in [0, W_max]."""
    text = open(rule_path("ltp_ltd_soft")).read().replace("eta1: 0.02", "eta1: 0.3").replace("eta2: 0.02", "eta2: 0.3")
    rule = load_rule(write_rule(text, "soft_fast.yaml"))
    rng = np.random.default_rng(0)
    trains = SpikeTrains(rng.random((5, 1500)) < 0.2, rng.random((5, 1500)) < 0.2,
                         rng.uniform(0, 1, (5, 5)), "dense")
    for backend in ("brian2", "brian2-step"):
        traj = REG.get(backend).run(rule, trains, {}).trajectory
        assert traj.min() >= 0.0 and traj.max() <= 1.0
        assert traj.max() > 0.9 and traj.min() < 0.1  # the bounds are actually approached
