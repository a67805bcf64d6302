"""The approximation share: how far the rule as the lowering approximated it is from the rule as written.

Some rules reach the learning engine only through an approximation the
lowering makes and lists (:attr:`neurodeploy.compile.lowering.EngineRule.approximations`):

* **tag decay**: a synapse trace (an eligibility trace) becomes the engine's tag
  ``t``, which has no decay of its own; it loses ``S*2^E`` of itself every
  ``2^k`` epochs (``uk * t``), a time constant a few percent off, and the
  continuous term that reads it is integrated every ``2^k`` epochs;
* **saturation reset**: a trace reset at each spike (``jump: a - x``) becomes a
  7-bit fixed-point trace with impulse 127, which saturates at 127 = ``a``: in
  exact arithmetic that *is* the reset; Lava's fixed-point model then decays it
  with stochastic rounding (judged by the rounding link). Float traces do not
  saturate: no float backend runs these rules.

The entry compares the approximated rule run exactly in floating point with
the reference in the engine's step order (``brian2-step``; ``brian2`` when it
did not run), over the steps both recorded (a windowed Lava run: its window)
and the recorded synapses:

* with a float plan, the approximated rule *is* the float plan (every constant
  realised exactly): ``lava-float`` or ``emu-float`` when they ran (the one
  that ran more of the protocol: beside a windowed ``lava-float``, its
  emulator twin ``emu-float``, which the emulation share proves equal to it
  on the window), else the emulator's float model run here (equal to
  ``lava-float`` to 1e-12 of the range, the emulation link);
* without one (saturation), the emulator's float model with the exact constants
  and the traces clipped at 127: the image of the saturation in exact arithmetic.

Outcome: a tag-decay approximation has no tolerance derived for it (how a 2%
longer eligibility and an 8-step Euler step move the weights depends on the
trains and the rewards): measured, ``not checked``. A saturation reset is
exact in floating point: judged against the lowering tolerance.
"""
from __future__ import annotations

import numpy as np

from neurodeploy.verdict import FAILED, NOT_CHECKED, PASSED

#: Tolerance of an approximation that is exact in floating point (the saturation reset): the lowering's.
EXACT_TOLERANCE = 1e-9


def _float_image(rule, plans, trains) -> tuple:
    """(name, trajectory in rule units) of the approximated rule run exactly in floating point."""
    from neurodeploy.emu.engine import simulate
    from neurodeploy.compile.loihi import RNG_SEED, supplied_traces

    if "float" in plans:
        plan = plans["float"]
        supplied = supplied_traces(rule, plan, trains) if plan.three_factor else None
        return "emu-float (approximated rule)", simulate(plan, plan.weights_to_lava(trains.w0), trains.pre,
                                                         trains.post, rng_seed=RNG_SEED, scale=plan.weight_scale,
                                                         supplied=supplied)
    from neurodeploy.compile.lowering import lower
    from neurodeploy.verdict.quantization import _Modes, _run_spec, realise

    plan = plans["fixed"]
    real = realise(rule, lower(rule, approximate=True), plan)
    s_w = real.weight_scale
    bounds = (rule.weight.w_min / s_w, rule.weight.w_max / s_w)
    trajectory = _run_spec(real, rule, trains, [p["exact"] for p in real.products],
                           np.asarray(trains.w0, dtype=float) / s_w, bounds, 1, saturating=plan.saturating)
    return "float: exact constants, traces saturating at 127", trajectory


def _candidate(rule, plans, trains, results, ref):
    """(name, RunResult) of the approximated rule: ``lava-float`` or ``emu-float`` when they ran (the one
    that covers more of the protocol: a windowed Lava run's emulator twin, proven equal to it on the
    window by the emulation share), else the float image run here, on the reference's recorded grid."""
    from neurodeploy.backend import RunResult

    ran = [n for n in ("lava-float", "emu-float") if n in results]
    if ran:
        name = max(ran, key=lambda n: (int(results[n].steps_run), -ran.index(n)))
        return name, results[name]
    name, image = _float_image(rule, plans, trains)
    image = np.asarray(image)[:, ref.posts if ref.posts is not None else slice(None)]
    image = image[:, :, ref.pres] if ref.pres is not None else image
    return name, RunResult(name, image, 0.0, rows=np.arange(image.shape[0], dtype=np.int64),
                           posts=ref.posts, pres=ref.pres)


def approximation_entries(rule, plans: dict, trains, results: dict) -> list:
    """The ``approximation`` comparison (one entry) when the plans approximate the rule, else [].

    Compared over the steps both runs recorded (:func:`neurodeploy.verification.common_rows`: a windowed
    Lava run against the whole reference, its window) and the recorded synapses; the entry says which
    (``compared_steps``, ``compared_rows``, ...) and, for a window, so in its message."""
    plan = plans.get("float") or plans.get("fixed")
    if plan is None or not plan.approximations or trains.closed:
        return []
    ref_name = next((n for n in ("brian2-step", "brian2") if n in results), None)
    if ref_name is None:
        return []
    from neurodeploy.verdict.links import common_rows, compared, present_grid

    ref = results[ref_name]
    cand_name, cand = _candidate(rule, plans, trains, results, ref)
    steps, ia, ib = common_rows(ref, cand)
    reference, candidate = ref.trajectory[ia], cand.trajectory[ib]
    synapses = None
    entry = {"reference": ref_name, "candidate": cand_name, "share": "approximation",
             "approximations": list(plan.approximations), **compared(ref, cand, steps)}
    if trains.mask is not None:  # only the synapses that exist (the others are NaN in every backend)
        present = present_grid(trains, ref)
        synapses = np.argwhere(present)
        candidate, reference = candidate[:, present][:, None, :], reference[:, present][:, None, :]
        entry["compared_synapses"] = f"{int(present.sum())} present (mask) of {present.size}"
    window = ""
    if steps.size and int(steps[-1]) < trains.steps - 1:
        window = (f" (over the window steps {int(steps[0])}..{int(steps[-1])} of 0..{trains.steps - 1}: "
                  f"{cand_name} ran {int(cand.steps_run)} steps)")
    w_range = rule.weight.range
    if not steps.size:
        entry.update(max_abs_error_normalized=None, rmse_normalized=None, tolerance=None, outcome=NOT_CHECKED,
                     passed=False, message="no step recorded by both")
        return [entry]
    if not (np.isfinite(candidate).all() and np.isfinite(reference).all()):
        entry.update(max_abs_error_normalized=None, rmse_normalized=None, tolerance=None, outcome=FAILED,
                     passed=False, message="non-finite weights" + window)
        return [entry]
    diff = np.abs(candidate - reference)
    worst = np.unravel_index(int(np.argmax(diff)), diff.shape)
    if synapses is not None:
        at = [int(v) for v in synapses[worst[2]]]
    else:
        at = [int(worst[1]), int(worst[2])]
    if ref.posts is not None:
        at[0] = int(ref.posts[at[0]])
    if ref.pres is not None:
        at[1] = int(ref.pres[at[1]])
    entry.update(max_abs_error=float(diff.max()), rmse=float(np.sqrt(np.mean(diff ** 2))),
                 max_abs_error_normalized=float(diff.max()) / w_range,
                 rmse_normalized=float(np.sqrt(np.mean(diff ** 2))) / w_range,
                 worst_step=int(steps[worst[0]]), worst_synapse=at)
    exact_in_float = "float" not in plans  # only saturation resets: exact in floating point
    if exact_in_float:
        entry["tolerance"] = {"max_abs": EXACT_TOLERANCE, "rmse": EXACT_TOLERANCE,
                              "kind": "the saturation reset is the reset in exact arithmetic"}
        ok = entry["max_abs_error_normalized"] <= EXACT_TOLERANCE
        entry["outcome"] = PASSED if ok else FAILED
        entry["message"] = ("saturation at 127 equals the reset in exact arithmetic; in fixed point they differ by "
                            "the decay's stochastic rounding (the rounding link)" if ok else
                            "the float image of the saturation differs from the reset") + window
    else:
        entry["tolerance"] = None
        entry["outcome"] = NOT_CHECKED
        entry["message"] = ("measured, not judged: no tolerance is derived for this approximation (" +
                            "; ".join(plan.approximations) + ")" + window)
    entry["passed"] = entry["outcome"] == PASSED
    return [entry]
