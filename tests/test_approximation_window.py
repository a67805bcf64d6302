"""The approximation share compares what both runs recorded (issue 19: ``verify rstdp.yaml --steps 6000``
ended in ``operands could not be broadcast together with shapes (2000,10,10) (6000,10,10)``).

Like every other comparison it takes the steps both runs recorded (:func:`neurodeploy.verification.common_rows`)
and the recorded synapses, and says which: a windowed Lava run is compared on its window, and the entry
says so; beside it the emulator twin, which ran the whole protocol, is the candidate."""
from __future__ import annotations

import numpy as np

from conftest import rule_path
from neurodeploy.backend import Recording
from neurodeploy.targets import load_all
from neurodeploy.compile.compilation import compile_plans
from neurodeploy.protocol import make_trains
from neurodeploy.spec.loader import load_rule
from neurodeploy.verdict.approximation import approximation_entries

REG = load_all()


def _rstdp(steps=600):
    rule = load_rule(rule_path("rstdp"))
    trains = make_trains(rule, "poisson", {"steps": steps, "n_pre": 4, "n_post": 3}, 3)
    return rule, trains, compile_plans(rule, trains, approximate=True)


def test_a_windowed_candidate_is_compared_on_its_window():
    rule, trains, plans = _rstdp()
    reference = REG.get("brian2-step").run(rule, trains, plans)
    window = REG.get("emu-float").run(rule, trains, plans, None, Recording(every=1, stop=200))
    window.backend = "lava-float"  # a Lava run of the first 200 steps (its emulator is equal to it)
    assert window.trajectory.shape[0] == 200 != reference.trajectory.shape[0]
    (entry,) = approximation_entries(rule, plans, trains, {"brian2-step": reference, "lava-float": window})
    assert entry["candidate"] == "lava-float" and entry["outcome"] == "not checked"
    assert entry["compared_steps"] == [0, 199] and entry["compared_rows"] == 200
    assert entry["message"].endswith("(over the window steps 0..199 of 0..599: lava-float ran 200 steps)")
    diff = np.abs(window.trajectory - reference.trajectory[:200]).max() / rule.weight.range
    assert entry["max_abs_error_normalized"] == diff > 0
    assert 0 <= entry["worst_step"] <= 199

    # the emulator twin ran the whole protocol: it is the candidate, over every step
    whole = REG.get("emu-float").run(rule, trains, plans)
    (entry,) = approximation_entries(rule, plans, trains,
                                     {"brian2-step": reference, "lava-float": window, "emu-float": whole})
    assert entry["candidate"] == "emu-float" and entry["compared_steps"] == [0, 599]
    assert "window" not in entry["message"]


def test_the_float_image_is_compared_on_the_recorded_rows_and_synapses():
    """No float backend ran: the float image (every step, every synapse) against a reference recorded
    every 7th step on a sub-grid; the saturation reset (stdp_nearest) passes there, the tag decay
    (rstdp) is measured, and both name a real step and synapse."""
    rec = Recording(every=7, posts=(0, 2), pres=(1, 3))
    for name in ("stdp_nearest", "rstdp"):
        rule = load_rule(rule_path(name))
        trains = make_trains(rule, "poisson", {"steps": 500, "n_pre": 4, "n_post": 4, "rate": 30}, 2)
        plans = compile_plans(rule, trains, approximate=True)
        reference = REG.get("brian2-step").run(rule, trains, plans, None, rec)
        assert reference.trajectory.shape == (reference.rows.size, 2, 2) and reference.rows.size < 500
        (entry,) = approximation_entries(rule, plans, trains, {"brian2-step": reference})
        assert entry["compared_rows"] == reference.rows.size and entry["compared_steps"] == [0, 499]
        assert entry["compared_synapses"] == "4 (recorded sub-grid)"
        assert entry["worst_step"] in reference.rows.tolist()
        assert entry["worst_synapse"][0] in rec.posts and entry["worst_synapse"][1] in rec.pres
        assert entry["outcome"] == ("passed" if name == "stdp_nearest" else "not checked"), entry["message"]


def test_verify_with_a_lava_window_compares_the_approximation():
    """verify itself, Lava running 120 of 300 steps (the issue's case, smaller): no traceback; the
    approximation entry is over the whole protocol (emu-float, added beside the window) and the
    emulation link proves emu-float equal to lava-float on the window."""
    from neurodeploy.verification import verify

    rule, trains, _ = _rstdp(steps=300)
    report = verify(rule, trains, backends=["brian2-step", "lava-float"], lava_steps=120)
    assert report.results["lava-float"].steps_run == 120 and report.results["emu-float"].steps_run == 300
    (entry,) = [c for c in report.comparisons if c["share"] == "approximation"]
    assert entry["candidate"] == "emu-float" and entry["compared_steps"] == [0, 299]
    (emulation,) = [c for c in report.comparisons if c["share"] == "emulation-float"]
    assert emulation["outcome"] == "passed" and emulation["compared_steps"] == [0, 119]
    # without the twin (it did not run): the window, and the entry says so
    results = {k: v for k, v in report.results.items() if k != "emu-float"}
    (entry,) = approximation_entries(rule, report.plans, trains, results)
    assert entry["candidate"] == "lava-float" and entry["compared_steps"] == [0, 119]
    assert "over the window steps 0..119 of 0..299" in entry["message"]
    assert any(line.startswith("brian2-step -> emu-float (approximation, not checked): the whole protocol")
               for line in report.proof)
