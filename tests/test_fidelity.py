"""The fidelity verdict: a deployment is judged on what it learns, against brian2 (the model as written).

Expectations are closed forms (gain, net change, correlation of given arrays) and deployments that
learn something else by construction (a term the engine drops, every product dropped, the engine's
same-step order at 20 Hz), each against a correct deployment that must pass."""
import dataclasses
import os
import subprocess
import sys

import numpy as np
import pytest

from neurodeploy import verification
from neurodeploy.compile.compilation import compile_plans
from neurodeploy.protocol import make_trains, protocol_options
from neurodeploy.spec.loader import load_rule
from neurodeploy.verdict import FAILED, NOT_CHECKED, PASSED
from neurodeploy.verdict.fidelity import (DEFAULT_FIDELITY, attribution, check_tolerance, judge, refine,
                                          same_step_point)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RULES = os.path.join(ROOT, "reference", "rules")
EMU = ["brian2", "brian2-step", "emu-float", "emu-fixed"]

TRIPLET = """name: triplet_min
parameters: {A2_minus: 0.007, A3_plus: 0.0065, tau_plus: 16.8 ms, tau_minus: 33.7 ms, tau_y: 114 ms,
             w_min: 0, w_max: 1, w_init: 0.5}
traces:
  x:  {of: pre,  tau: tau_plus,  jump: 1}
  y:  {of: post, tau: tau_minus, jump: 1}
  y2: {of: post, tau: tau_y, jump: 1}
weight: {on_pre: -A2_minus * y, on_post: A3_plus * x * y2, bounds: [w_min, w_max]}
"""


def _verify(rule, protocol="poisson", seed=3, backends=EMU, **options):
    trains = make_trains(rule, protocol, protocol_options(protocol, options, "test"), seed)
    return verification.verify(rule, trains, backends)


def _fidelity(report, candidate):
    return next(c for c in report.comparisons if c["share"] == "fidelity" and c["candidate"] == candidate)


# -- the statistics, in closed form ---------------------------------------------------------------

def test_identical_change_passes_with_gain_one():
    rng = np.random.default_rng(1)
    ref = rng.normal(0.0, 0.01, 100)
    out = judge(ref, ref.copy(), 0.2, 1.0)
    assert out["outcome"] == PASSED
    assert out["gain"] == pytest.approx(1.0) and out["net_error"] == 0.0 and out["correlation"] == pytest.approx(1.0)


@pytest.mark.parametrize("factor, word", [(-1.0, "the opposite of"), (0.05, "nothing of"), (0.6, "60% of")])
def test_a_deployment_that_learns_a_fraction_or_the_opposite_fails(factor, word):
    rng = np.random.default_rng(2)
    ref = rng.normal(0.002, 0.01, 100)
    out = judge(ref, factor * ref, 0.2, 1.0)
    assert out["outcome"] == FAILED
    assert out["gain"] == pytest.approx(factor)
    assert out["message"].startswith(f"learns {word} the model's change (gain {factor:.3g}, allowed 1 +- 0.2)")


def test_nothing_learned_fails_at_any_resolution():
    ref = np.array([3e-5, -1e-5])  # below any 8-bit step: the resolution allowance is huge
    out = judge(ref, np.zeros(2), 0.2, 1.0, per_synapse_se=0.01)
    assert out["outcome"] == FAILED
    assert out["message"] == "learns nothing: every synapse ends where it started (the model's change: rms 2.24e-05)"


def test_net_drift_fails_although_every_synapse_correlates():
    rng = np.random.default_rng(3)
    ref = rng.normal(0.0, 0.02, 400)
    cand = ref - 0.3 * 0.02  # the same pattern, shifted: net drift 0.3 of the per-synapse change
    out = judge(ref, cand, 0.2, 1.0)
    assert out["correlation"] == pytest.approx(1.0)
    assert out["outcome"] == FAILED and "net change" in out["message"]
    assert out["net_error"] == pytest.approx(0.006 / np.sqrt(np.mean(ref ** 2)))


def test_scattered_synapses_fail_on_correlation():
    rng = np.random.default_rng(4)
    ref = rng.normal(0.0, 0.01, 200)
    cand = ref + rng.normal(0.0, 0.01, 200)  # correlation ~0.7
    out = judge(ref, cand, 0.2, 1.0)
    assert out["outcome"] == FAILED and "synapses disagree: correlation" in out["message"]


def test_the_tolerance_comes_from_the_reference_not_the_candidate():
    rng = np.random.default_rng(5)
    ref = rng.normal(0.001, 0.01, 100)
    good, bad = judge(ref, ref * 0.98, 0.2, 1.0), judge(ref, -3 * ref + 0.05, 0.2, 1.0)
    assert good["tolerance"] == bad["tolerance"]


def test_a_reference_that_learns_nothing_is_not_checked_unless_the_candidate_learns():
    zero = np.zeros(10)
    assert judge(zero, zero, 0.2, 1.0)["outcome"] == NOT_CHECKED
    assert judge(zero, np.full(10, 0.01), 0.2, 1.0)["outcome"] == FAILED


def test_attribution_shares_sum_to_one_and_project_on_the_total():
    ref = np.array([1.0, 0.0, -1.0, 2.0])
    a = ref + np.array([0.1, 0.0, 0.0, 0.0])
    b = a + np.array([0.0, 0.3, 0.0, 0.0])
    shares = attribution(ref, b, [("timing", a), ("rounding", b)])
    total = b - ref
    assert sum(s["share"] for s in shares) == pytest.approx(1.0)
    assert shares[0]["share"] == pytest.approx(0.01 / np.dot(total, total))


@pytest.mark.parametrize("value, message", [(0, "must be in (0, 1) (got 0)"), (1.5, "must be in (0, 1) (got 1.5)"),
                                            (float("nan"), "must be a number in (0, 1) (got nan)"),
                                            (True, "must be a number in (0, 1) (got True)")])
def test_bad_tolerances_are_refused(value, message):
    with pytest.raises(ValueError) as err:
        check_tolerance(value)
    assert str(err.value) == message


def test_the_fidelity_option_is_bad_input_in_one_line(tmp_path):
    cmd = [sys.executable, "-m", "neurodeploy.cli", "verify", os.path.join(RULES, "stdp_pair.yaml"),
           "--out", str(tmp_path / "out"), "--fidelity", "1.5"]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 2
    assert done.stderr.strip() == "neurodeploy: error: --fidelity: must be in (0, 1) (got 1.5)"
    assert not (tmp_path / "out").exists()


def test_refine_keeps_every_spike_in_its_bin():
    rule = load_rule(os.path.join(RULES, "stdp_pair.yaml"))
    trains = make_trains(rule, "poisson", protocol_options("poisson", {}, "t"), 9)
    fine_rule, fine = refine(rule, trains, 4, 9)
    assert fine_rule.dt == rule.dt / 4 and fine.steps == 4 * trains.steps
    for coarse, refined in ((trains.pre, fine.pre), (trains.post, fine.post)):
        assert refined.sum() == coarse.sum()
        assert np.array_equal(refined.reshape(refined.shape[0], -1, 4).any(axis=2), coarse)


def test_only_the_window_point_at_zero_is_a_same_step_point():
    curve = {"x_label": "dt = t_post - t_pre (ms)"}
    assert same_step_point(curve, 0.0, 1e-3) and not same_step_point(curve, 5.0, 1e-3)
    assert not same_step_point({"x_label": "pairing frequency (Hz), dt = 10 ms"}, 0.0, 1e-3)


# -- deployments that learn something else, and correct ones -------------------------------------

def test_a_dropped_ltp_term_is_not_passed_and_says_why(tmp_path):
    path = tmp_path / "triplet_min.yaml"
    path.write_text(TRIPLET)
    rule = load_rule(str(path))
    report = _verify(rule, "pairing", pairs=10, frequency=10.0)
    fixed, flt = _fidelity(report, "emu-fixed"), _fidelity(report, "emu-float")
    assert flt["outcome"] == PASSED
    assert fixed["outcome"] == FAILED and report.outcome == FAILED
    assert fixed["gain"] < 0  # potentiation turned into depression
    assert fixed["reason"].startswith("not faithfully deployable in fixed point: term '0.0065*x*y2' (0.0019 in Lava "
                                      "units) is below the engine's smallest scale 2^-7: dropped")
    assert "Measured remedy: lava-float" in fixed["message"]
    assert max(fixed["attribution"], key=lambda s: s["share"])["link"] == "constants"


def test_hebbian_rate_learns_nothing_in_fixed_point_and_fails():
    rule = load_rule(os.path.join(RULES, "hebbian_rate.yaml"))
    report = _verify(rule)
    assert _fidelity(report, "emu-float")["outcome"] == PASSED
    fixed = _fidelity(report, "emu-fixed")
    assert fixed["outcome"] == FAILED and fixed["candidate_learned"]["rms"] == 0.0
    assert report.exit_code == 1


def test_the_engine_order_at_20_hz_fails_with_a_measured_finer_dt():
    rule = load_rule(os.path.join(RULES, "stdp_pair.yaml"))
    report = _verify(rule, seed=5, rate=20.0, steps=4000)
    flt = _fidelity(report, "emu-float")
    assert flt["outcome"] == FAILED
    assert flt["candidate_learned"]["net"] < 5 * flt["reference_learned"]["net"] < 0  # net depression much stronger
    assert max(flt["attribution"], key=lambda s: s["share"])["link"] == "timing"
    finer = next(r for r in flt["remedies"] if r["remedy"].startswith("a finer time step"))
    assert finer["outcome"] == PASSED and finer["tried"][-1]["dt_ms"] < 1.0
    assert "Measured remedy: a finer time step: dt = " in flt["message"]


def test_the_flagship_rule_passes_at_its_defaults():
    rule = load_rule(os.path.join(RULES, "stdp_pair.yaml"))
    report = _verify(rule)
    for name in ("emu-float", "emu-fixed"):
        entry = _fidelity(report, name)
        assert entry["outcome"] == PASSED, entry.get("message")
        assert entry["tolerance"]["fidelity"] == DEFAULT_FIDELITY
    assert report.outcome == PASSED
    from neurodeploy.report import summary_table

    first = summary_table(report.to_dict()).splitlines()[2]
    assert first.startswith("Does the deployment learn what the model learns? Judged against brian2")


def test_a_wrong_deployment_of_the_flagship_rule_fails():
    """The deployment of A_plus halved: what Brian2 says the rule learns, against what is deployed."""
    from neurodeploy.backend import Recording
    from neurodeploy.targets import load_all
    from neurodeploy.verdict.fidelity import final_change

    rule = load_rule(os.path.join(RULES, "stdp_pair.yaml"))
    trains = make_trains(rule, "poisson", protocol_options("poisson", {"rate": 20.0}, "t"), 11)
    params = tuple(dataclasses.replace(p, quantity=dataclasses.replace(p.quantity, value=p.value * 0.5))
                   if p.name == "A_plus" else p for p in rule.parameters)
    wrong = dataclasses.replace(rule, parameters=params)
    reg = load_all()
    rec = Recording(every=trains.steps)
    ref = final_change(reg.get("brian2").run(rule, trains, {}, None, rec), trains.w0, trains.steps - 1).ravel()
    plans = compile_plans(wrong, trains, approximate=True)
    cand = final_change(reg.get("emu-float").run(wrong, trains, plans, None, rec), trains.w0,
                        trains.steps - 1).ravel()
    assert judge(ref, cand, DEFAULT_FIDELITY, 1.0)["outcome"] == FAILED


def test_curve_protocols_judge_the_curve_points_against_brian2():
    rule = load_rule(os.path.join(RULES, "stdp_pair.yaml"))
    report = _verify(rule, "stdp-window")
    entry = _fidelity(report, "emu-float")
    assert entry["outcome"] == PASSED
    assert entry["compared_synapses"] == f"all {len(report.trains.curve['x']) - 1}"  # dt = 0 apart
    [point] = entry["same_step_points"]
    assert point["x"] == 0.0 and point["reference"] > 0 > point["candidate"]  # Brian2's order: LTP; the engine's: LTD
    curves = [c for c in report.comparisons if c["share"] == "curve"]
    assert curves and all(c["reference"] == "brian2" for c in curves)


def test_a_protocol_where_nothing_is_learned_is_not_checked():
    """Was: no spikes (a rate of 1e-300 Hz), constant trajectories everywhere, PASSED. Nothing was learned,
    so nothing was tested: NOT CHECKED (exit 3)."""
    rule = load_rule(os.path.join(RULES, "stdp_pair.yaml"))
    report = _verify(rule, rate=1e-300, steps=300)
    learning = next(c for c in report.comparisons if c["share"] == "learning")
    assert learning["message"] == ("nothing was learned: brian2's weights never change on this protocol; "
                                   "agreement on constant weights tests nothing")
    assert report.outcome == NOT_CHECKED and report.exit_code == 3


def test_the_public_api_takes_paths_and_quantities_and_lists_itself():
    """Was: verify("rule.yaml") raised AttributeError; dir(neurodeploy) listed neither verify nor load_rule;
    poisson(rate=10*Hz) raised Brian2's DimensionMismatchError."""
    import neurodeploy
    from brian2 import Hz, ms

    from neurodeploy.errors import NeurodeployError

    for name in ("verify", "load_rule", "deploy", "deploy_network", "poisson", "load_network", "from_synapses",
                 "import_brian2"):
        assert name in dir(neurodeploy) and callable(getattr(neurodeploy, name))
    path = os.path.join(RULES, "stdp_pair.yaml")
    trains = neurodeploy.poisson(path, 2, 2, 200, 10 * Hz, 1)
    assert np.array_equal(trains.pre, neurodeploy.poisson(load_rule(path), 2, 2, 200, 10.0, 1).pre)
    with pytest.raises(NeurodeployError) as err:
        neurodeploy.poisson(path, 2, 2, 200, 10 * ms, 1)
    assert str(err.value) == "poisson.rate: must be a frequency (got 10. * msecond)"
    report = neurodeploy.verify(path, trains, ("brian2", "emu-float"))
    assert report.rule.name == "stdp_pair" and _fidelity(report, "emu-float")["outcome"] in (PASSED, FAILED)


def test_random_trains_get_the_stdp_window_of_a_spike_timing_rule():
    from neurodeploy.verification import add_window, window_reason

    rule = load_rule(os.path.join(RULES, "stdp_pair.yaml"))
    report = _verify(rule, steps=400)
    add_window(report)
    window = {c["candidate"]: c for c in report.comparisons if c["share"] == "window"}
    assert set(window) == {"emu-float", "emu-fixed"} and all(c["reference"] == "brian2" for c in window.values())
    assert window["emu-float"]["outcome"] == PASSED
    assert [p["x"] for p in window["emu-float"]["same_step_points"]] == [0.0]
    hebbian = load_rule(os.path.join(RULES, "hebbian_rate.yaml"))
    assert window_reason(hebbian, report.trains) == (
        "the rule is not a pure spike-timing rule (a continuous term, a synapse or reward trace): its window "
        "alone is not its character")


def test_verify_refuses_what_is_not_trains_or_a_tolerance_in_one_line():
    from neurodeploy.errors import NeurodeployError

    path = os.path.join(RULES, "stdp_pair.yaml")
    with pytest.raises(NeurodeployError) as err:
        verification.verify(path, 42)
    assert str(err.value) == "trains: must be SpikeTrains (neurodeploy.poisson(...), load_spikes(...)) (got int)"
    with pytest.raises(NeurodeployError) as err:
        verification.verify(path, None, ("brian2",), fidelity=0)
    assert str(err.value) == "fidelity: must be in (0, 1) (got 0)"


def test_without_the_reference_the_run_is_not_checked_however_well_its_links_agree():
    """The question a run answers is the deployment's fidelity to the model: with brian2 left out the links
    between the engine's own runs may all pass, yet the outcome is NOT CHECKED (exit 3), never PASSED."""
    from neurodeploy.library import LIBRARY
    from neurodeploy.verdict import EXIT_NOT_CHECKED

    rule = load_rule(os.path.join(LIBRARY, "stdp_pair.yaml"))
    report = _verify(rule, backends=["emu-float", "emu-fixed"])
    assert _fidelity(report, "emu-float, emu-fixed")["outcome"] == "not checked"
    assert any(c["outcome"] == "passed" for c in report.comparisons)
    assert report.outcome == "not checked" and report.exit_code == EXIT_NOT_CHECKED
