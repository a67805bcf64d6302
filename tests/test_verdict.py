"""The verdict can fail: three outcomes, the fixed-point chain, per-synapse timing, curves, mutants.

Expectations are independent of the code under test: closed forms of the
pair rule, deliberately broken plans, and seeds the verdict was not tuned on.
"""
import dataclasses
import json

import numpy as np
import pytest

from conftest import raster, rule_path, saturating_plan
from neurodeploy.backend import RunResult
from neurodeploy.cli import main
from neurodeploy.emu.engine import simulate
from neurodeploy.verdict.links import judge_curve
from neurodeploy.compile.compilation import compile_plans
from neurodeploy.protocol import SpikeTrains, make_trains, poisson
from neurodeploy.spec.loader import load_rule
from neurodeploy.verdict import EXIT_NOT_CHECKED, overall
from neurodeploy.verdict.mutate import mutants, self_test
from neurodeploy.verdict.quantization import nearest_representable, quantization_chain
from neurodeploy.verdict.timing import timing_verdict


@pytest.fixture(scope="module")
def pair():
    return load_rule(rule_path("stdp_pair"))


def _single(plan, trains):
    return simulate(plan, plan.weights_to_lava(trains.w0), trains.pre, trains.post, scale=plan.weight_scale)


def _chain(rule, plans, trains, fixed=None, k=32):
    fixed = fixed or plans["fixed"]
    return {e["share"]: e for e in quantization_chain(rule, dict(plans, fixed=fixed), trains, _single(fixed, trains), k)}


# -- three outcomes ---------------------------------------------------------------------------------------

def test_nothing_compared_is_not_passed(tmp_path, capsys):
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_info:
        main(["verify", rule_path("stdp_pair"), "--out", str(out), "--backends", "brian2", "--steps", "200",
              "--quiet"])
    assert exit_info.value.code == EXIT_NOT_CHECKED == 3
    report = json.loads((out / "report.json").read_text())
    assert report["comparisons"] == [] and report["passed"] is False and report["outcome"] == "not checked"
    assert report["counts"] == {"passed": 0, "failed": 0, "not checked": 0}
    assert capsys.readouterr().out.splitlines()[-2] == (
        "NOT CHECKED (nothing was checked): 0 passed, 0 failed, 0 not checked")


def test_overall_outcome():
    ok, bad, unchecked = {"outcome": "passed"}, {"outcome": "failed"}, {"outcome": "not checked"}
    assert overall([]) == "not checked"
    assert overall([unchecked]) == "not checked"
    assert overall([ok, unchecked]) == "passed"
    assert overall([ok, bad]) == "failed"
    assert overall([ok], {"lava-fixed": "timed out after 4 s"}) == "failed"
    nothing = {"share": "learning", "outcome": "not checked"}  # nothing learned: agreement tests nothing
    assert overall([ok, nothing]) == "not checked" and overall([bad, nothing]) == "failed"


# -- the fixed-point chain ----------------------------------------------------------------------------------

def test_nearest_representable_is_nearest():
    grid = sorted({s * 2.0 ** e for s in range(-8, 8) for e in range(-7, 9)})
    rng = np.random.default_rng(0)
    for c in np.concatenate([rng.uniform(-300, 300, 200), 10.0 ** rng.uniform(-4, 2, 200)]):
        s, e, v = nearest_representable(c)
        assert v == s * 2.0 ** e and -8 <= s <= 7 and -7 <= e <= 8
        assert abs(v - c) == min(abs(g - c) for g in grid)


@pytest.mark.parametrize("name", ["stdp_pair", "ltp_ltd_soft", "stdp_triplet"])
def test_correct_plan_passes_the_chain(name):
    rule = load_rule(rule_path(name))
    trains = make_trains(rule, "poisson", {}, 3)
    chain = _chain(rule, compile_plans(rule, trains), trains)
    assert chain["constants"]["outcome"] == "passed", chain["constants"].get("message")
    assert chain["rounding"]["outcome"] == "passed", chain["rounding"].get("message")
    assert chain["constants"]["structural_problems"] == []


def test_doubled_constant_fails_the_constants_link_with_its_term(pair):
    trains = make_trains(pair, "poisson", {}, 3)
    plans = compile_plans(pair, trains)
    fixed = plans["fixed"]
    k = next(i for i, p in enumerate(fixed.products) if p.dependency == "y0")  # LTP: A_plus * x
    p = fixed.products[k]
    doubled = dataclasses.replace(p, exponent=p.exponent + 1, realised=2 * p.realised)
    products = fixed.products[:k] + (doubled,) + fixed.products[k + 1:]
    wrong = dataclasses.replace(fixed, products=products,
                                dw=" ".join(q.text for q in products if q.text).lstrip("+ "))
    chain = _chain(pair, plans, trains, wrong)
    constants = chain["constants"]
    assert constants["outcome"] == "failed"
    assert constants["message"].startswith("constant of '0.01*x' realised as 0.125")
    # the trajectories show it too: beyond the engine's best constants' deviation
    assert constants["max_abs_error_normalized"] > 2 * constants["tolerance"]["max_abs"]


def test_plan_worse_than_the_engine_could_fails_even_if_honest(pair):
    """S one step off the nearest: the plan reports its own (larger) error honestly; still a failure."""
    trains = make_trains(pair, "poisson", {}, 3)
    plans = compile_plans(pair, trains)
    fixed = plans["fixed"]
    p = fixed.products[0]
    s = p.mantissa + (1 if p.mantissa > 0 else -1)
    off = dataclasses.replace(p, mantissa=s, realised=s * 2.0 ** p.exponent,
                              rel_error=abs(s * 2.0 ** p.exponent - p.requested) / abs(p.requested))
    products = (off,) + fixed.products[1:]
    wrong = dataclasses.replace(fixed, products=products, dw=" ".join(q.text for q in products if q.text).lstrip("+ "))
    constants = _chain(pair, plans, trains, wrong)["constants"]
    assert constants["outcome"] == "failed"
    assert "where the engine realises" in constants["message"]


def test_wrong_time_constant_fails(pair):
    """A plan whose trace decays with the wrong tau: the constants are right, the trajectory is not."""
    trains = make_trains(pair, "poisson", {}, 3)
    plans = compile_plans(pair, trains)
    fixed = plans["fixed"]
    traces = (dataclasses.replace(fixed.traces[0], tau_steps=2 * fixed.traces[0].tau_steps),) + fixed.traces[1:]
    constants = _chain(pair, plans, trains, dataclasses.replace(fixed, traces=traces))["constants"]
    assert constants["outcome"] == "failed"
    assert "instead of the rule's 20" in constants["message"]


def test_single_run_outside_the_envelope_fails_the_rounding_link(pair):
    trains = make_trains(pair, "poisson", {}, 3)
    plans = compile_plans(pair, trains)
    fixed = plans["fixed"]
    single = _single(fixed, trains)
    single[1500:, 4, 7] += 12 * fixed.weight_scale  # 12 LSB off on one synapse from step 1500
    chain = {e["share"]: e for e in quantization_chain(pair, plans, trains, single, 32)}
    assert chain["constants"]["outcome"] == "passed"
    rounding = chain["rounding"]
    assert rounding["outcome"] == "failed"
    assert "leaves the ensemble's envelope" in rounding["message"] and "synapse (4, 7)" in rounding["message"]


def test_saturating_traces_fail_the_rounding_link(pair):
    """Impulses of 127 on 20 Hz trains (the plan chose 27 and 34): the 7-bit traces clip, the float
    realisation does not; the ensemble mean parts from it (a bias no rounding seed removes)."""
    trains = poisson(pair, 10, 10, 1000, 20.0, 4)
    plans = compile_plans(pair, trains)
    wrong = saturating_plan(plans["fixed"])
    chain = _chain(pair, plans, trains, wrong)
    assert chain["constants"]["outcome"] == "passed", chain["constants"].get("message")
    assert chain["rounding"]["outcome"] == "failed"
    assert chain["rounding"]["message"].startswith("ensemble mean off the realised-constants run")


def test_rounding_link_false_alarm_rate_on_untuned_seeds(pair):
    """The chain was tuned on seed 3 (and 4..23 by hand); seeds 5000.. were never looked at.
    With a nominal family-wise rate of 1%, 2 or more failures in 40 has probability 6e-2 at 1%,
    3 or more 7.5e-3: at most 2 may fail."""
    failures = []
    for seed in range(5000, 5040):
        trains = make_trains(pair, "poisson", {"steps": 1000}, seed)
        chain = _chain(pair, compile_plans(pair, trains), trains)
        if any(e["outcome"] == "failed" for e in chain.values()):
            failures.append(seed)
    assert len(failures) <= 2, failures


def test_mutation_self_test_catches_most_mutants(pair):
    summary = self_test(pair, lambda s: make_trains(pair, "poisson", {}, s), 3, seeds=5)
    assert summary["mutants"] == len(mutants(compile_plans(pair, make_trains(pair, "poisson", {}, 3))["fixed"])) == 12
    assert summary["mutation_score"] >= 0.9 and summary["caught_by_trajectories"] >= 0.9 * summary["mutants"]
    assert summary["false_alarms"] == 0
    assert set(summary["smallest_detected_rel_error"]) == {"-0.0105*y", "0.01*x"}


# -- timing, per synapse --------------------------------------------------------------------------------------

def _result(name, trajectory):
    return RunResult(name, trajectory, 1.0, {})


def test_timing_is_judged_per_synapse(pair):
    """Synapse (0, 0) sees 3 same-step pre/post spikes, the others none. Its bound is
    1.5 x 3 x A_minus x J_y (the LTD read before/after y's jump); every other synapse is held to 1e-9."""
    pre = raster(2, 200, [(0, 10), (0, 60), (0, 110), (1, 30)])
    post = raster(2, 200, [(0, 10), (0, 60), (0, 110), (1, 150)])
    trains = SpikeTrains(pre, post, np.full((2, 2), 0.5), "test")
    ref = np.full((200, 2, 2), 0.5)
    cand = ref.copy()
    cand[110:, 0, 0] += 0.02  # within the conflicting synapse's own bound
    a_minus = pair.values["A_minus"]
    entry = timing_verdict(pair, trains, _result("brian2", ref), _result("brian2-step", cand), {"x": 1.0, "y": 1.0})
    assert entry["outcome"] == "passed"
    ps = entry["per_synapse"]
    assert (ps["checked_exactly"], ps["checked_with_bound"], ps["not_checked"]) == (3, 1, 0)
    assert ps["largest_bound_checked"] == pytest.approx(1.5 * 3 * a_minus * 1.0)
    # 1e-6 on a synapse without conflicts fails, although it is far inside (0, 0)'s bound
    cand[150:, 1, 0] += 1e-6
    entry = timing_verdict(pair, trains, _result("brian2", ref), _result("brian2-step", cand), {"x": 1.0, "y": 1.0})
    assert entry["outcome"] == "failed"
    assert entry["per_synapse"]["failing_synapses"] == [[1, 0]]
    assert entry["message"].startswith("1 synapse(s) beyond their own bound; worst (1, 0): 1e-06 against 1e-09")


def test_timing_bound_too_wide_is_not_checked(pair):
    """Many conflicts on every synapse: bounds above 10% of the range are never a pass."""
    steps = np.arange(0, 2000, 25)
    pre = raster(1, 2000, [(0, int(t)) for t in steps])
    post = raster(1, 2000, [(0, int(t)) for t in steps])
    trains = SpikeTrains(pre, post, np.full((1, 1), 0.5), "test")
    ref = np.full((2000, 1, 1), 0.5)
    entry = timing_verdict(pair, trains, _result("brian2", ref), _result("brian2-step", ref + 0.3), {})
    assert entry["outcome"] == "not checked"
    assert entry["message"] == "no synapse checked: bound above 0.1 of the range (tolerance too wide)"


# -- curves ------------------------------------------------------------------------------------------------------

def test_curve_zero_where_reference_is_not_is_named():
    curve = {"x": [-20.0, -10.0, 10.0, 20.0, 30.0], "x_label": "dt_ms",
             "brian2-step": [-0.01, -0.02, 0.03, 0.015, 0.008], "lava-fixed": [-0.01, -0.02, 0.03, 0.015, 0.0]}
    entry = judge_curve(curve, "brian2-step", "lava-fixed", 1.0)
    assert entry["outcome"] == "failed"
    assert entry["zero_where_reference_is_not"] == [30.0]
    assert entry["message"] == ("dt_ms 30: 0 vs 0.008 (26.7% of the amplitude); "
                                "zero where the reference is not at dt_ms 30")
    # judged against the curve's amplitude (0.03), not the weight range: 0.008 off is 27%
    curve["lava-fixed"][4] = 0.016
    entry = judge_curve(curve, "brian2-step", "lava-fixed", 1.0)
    assert entry["outcome"] == "failed" and entry["message"].startswith("dt_ms 30: 0.016 vs 0.008 (26.7% of the amplitude)")
    curve["lava-fixed"][4] = 0.009
    assert judge_curve(curve, "brian2-step", "lava-fixed", 1.0)["outcome"] == "passed"


# -- closed loop: plans and statistics from the spikes the neurons made -------------------------------------------

def test_closed_loop_plans_on_the_neurons_own_spikes(pair):
    trains = make_trains(pair, "closed-loop", {"steps": 400, "n_pre": 10, "rate": 40, "threshold": 10}, seed=4)
    assert not trains.post.any()  # the imposed raster is empty: the neurons make the post spikes
    from neurodeploy.verification import verify

    report = verify(pair, trains, ("brian2", "lava-fixed"))
    made = report.results["brian2"].info["post_spikes"]
    assert made.any()
    assert report.stats["plans_scaled_on"] == "the post spikes brian2's neuron made"
    # the y trace's peak on brian2's own spikes, by the closed form of a unit-jump trace
    decay = np.exp(-pair.dt / pair.values["tau_minus"])
    value, peak = np.zeros(made.shape[0]), 0.0
    for t in range(made.shape[1]):
        value = value * decay + made[:, t]
        peak = max(peak, value.max())
    y = next(t for t in report.plans["fixed"].traces if t.name == "y")
    assert y.peak == pytest.approx(peak, rel=1e-12)
    both = (made.astype(int) @ trains.pre.T.astype(int))
    assert report.stats["coincident_epochs"] == int(both.sum())
    # the fixed-point chain replays lava-fixed's own spikes: lava-fixed lies in the ensemble's envelope
    rounding = next(c for c in report.comparisons if c["share"] == "rounding")
    assert rounding["single_run"] == "lava-fixed" and rounding["outcome"] == "passed"
    assert rounding["envelope"]["synapse_steps_outside"] == 0


def test_fixed_curve_is_judged_by_its_expected_change():
    """A fixed-point candidate: one run's zero is rounding when the ensemble keeps the change; the
    point is lost when the ensemble's expected change is gone too."""
    curve = {"x": [-20.0, 10.0, 30.0], "x_label": "dt_ms", "brian2-step": [-0.02, 0.03, 0.008],
             "lava-fixed": [-0.0196, 0.0314, 0.0]}
    kept = (np.array([-0.0201, 0.0298, 0.0079]), np.full(3, 0.0006), 32)
    entry = judge_curve(curve, "brian2-step", "lava-fixed", 1.0, kept)
    assert entry["outcome"] == "passed"
    assert entry["message"] == ("zero where the reference is not (this run's rounding; the expected change is kept) "
                                "at dt_ms 30")
    lost = (np.array([-0.0201, 0.0298, 0.0004]), np.full(3, 0.0006), 32)
    entry = judge_curve(curve, "brian2-step", "lava-fixed", 1.0, lost)
    assert entry["outcome"] == "failed" and entry["message"] == "expected change lost at dt_ms 30"


def test_fixed_curve_fails_when_the_excess_over_the_tolerance_is_beyond_doubt():
    """The ensemble mean's allowance is q standard errors of its estimate, q the Student t quantile of
    k - 1 degrees of freedom Bonferroni-corrected over the curve's judged points (scipy here); the tolerance
    itself is 0.2 of the reference amplitude. Off by tolerance + 0.9 q se passes, by tolerance + 1.1 q se
    fails; with a 4x larger ensemble (half the standard error) the first fails too."""
    from scipy.stats import t

    ref = [-0.02, 0.03, 0.008]
    curve = {"x": [-20.0, 10.0, 30.0], "x_label": "dt_ms", "brian2-step": ref, "lava-fixed": ref}
    se, k = 0.0005, 32
    q = t.ppf(1 - 0.01 / (2 * 3), k - 1)
    tol = 0.2 * 0.03
    for factor, outcome in ((0.9, "passed"), (1.1, "failed")):
        mean = np.array([-0.02, 0.03 + tol + factor * q * se, 0.008])
        assert judge_curve(curve, "brian2-step", "lava-fixed", 1.0, (mean, np.full(3, se), k))["outcome"] == outcome
    mean = np.array([-0.02, 0.03 + tol + 0.9 * q * se, 0.008])
    q4 = t.ppf(1 - 0.01 / (2 * 3), 4 * k - 1)
    assert 0.9 * q * se > q4 * se / 2  # the larger ensemble knows the mean better
    assert judge_curve(curve, "brian2-step", "lava-fixed", 1.0, (mean, np.full(3, se / 2), 4 * k))["outcome"] == "failed"


def test_wide_curve_tolerance_is_not_checked():
    """20% of an amplitude of 0.6 ranges is 0.12 of the range: never a pass."""
    curve = {"x": [10.0], "x_label": "dt_ms", "brian2-step": [0.6], "lava-fixed": [0.6]}
    entry = judge_curve(curve, "brian2-step", "lava-fixed", 1.0)
    assert entry["outcome"] == "not checked"
    assert entry["message"] == "0.2 of the curve's amplitude is above 0.1 of the range (tolerance too wide)"


@pytest.mark.parametrize("args,message", [
    (["mutate", rule_path("calcium_graupner_brunel"), "--seeds", "1"],
     "calcium_graupner_brunel.yaml: weight: no fixed-point plan to mutate: not deployable to the learning engine: "
     "trace 'cpre' jumps 13.7 ms after the spike: learning-engine traces jump at the spike"),
    (["mutate", rule_path("stdp_pair"), "--seed", "-1"], "--seed: must be a whole number >= 0 (got -1)"),
    (["mutate", rule_path("stdp_pair"), "--seeds", "-3"],
     "Invalid value for '--seeds': -3 is not in the range 0<=x<=10000."),
])
def test_mutate_errors(args, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(args + ["--out", str(tmp_path / "out"), "--quiet"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == f"neurodeploy: error: {message}\n"
    assert not (tmp_path / "out").exists()


def test_the_sign_mutant_of_a_minus_8_mantissa_is_the_same_constant_negated():
    """-8 x 2^e negated does not fit a 4-bit mantissa (-8..7); 4 x 2^(e+1) is exactly its negation (was: no
    sign mutant, so the digits task's Oja plan, dominant -8 x 2^-7, had no wrong-sign deployment)."""
    from neurodeploy.verdict.mutate import _mutated_product

    pair = load_rule(rule_path("stdp_pair"))
    plan = compile_plans(pair, make_trains(pair, "poisson", {}, 3))["fixed"]
    for e in (-7, 0, 7):
        p = dataclasses.replace(plan.products[0], mantissa=-8, exponent=e, realised=-8 * 2.0 ** e)
        q = _mutated_product(p, "sign")
        assert (q.mantissa, q.exponent) == (4, e + 1) and q.realised == -p.realised == 8 * 2.0 ** e
    top = dataclasses.replace(plan.products[0], mantissa=-8, exponent=8, realised=-8 * 2.0 ** 8)
    assert _mutated_product(top, "sign") is None  # +8 x 2^8 exists in no 4-bit form: no mutant
    three = dataclasses.replace(plan.products[0], mantissa=3, exponent=-2, realised=0.75)
    assert (_mutated_product(three, "sign").mantissa, _mutated_product(three, "sign").exponent) == (-3, -2)
