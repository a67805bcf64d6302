"""The links of the verdict chain between two runs: their comparison (exact agreement, timing, curves),
the closed loop's distribution comparisons, what was proven on which steps, and fixed-point saturation."""
from __future__ import annotations

import numpy as np

from neurodeploy.backend import RunResult
from neurodeploy.protocol import SpikeTrains
from neurodeploy.running import mode_of
from neurodeploy.spec.ir import Rule
from neurodeploy.verdict import FAILED, MAX_TOLERANCE, NOT_CHECKED, PASSED
from neurodeploy.verdict.fidelity import DEFAULT_FIDELITY, same_step_point
from neurodeploy.protocol import decayed_trace
from neurodeploy.verdict.distribution import distribution_verdict, ENSEMBLE, ENSEMBLE_BACKEND


LOWERING_TOLERANCE = 1e-9


#: Comparisons between backends that ran (the timing share is judged per synapse, the others on the trajectories).
COMPARISONS = (
    ("brian2", "brian2-step", "timing"),
    ("brian2-step", "lava-float", "lowering"),
    ("brian2-step", "lava-cpu", "lowering"),
    ("brian2-step", "emu-float", "lowering"),
    ("lava-float", "emu-float", "emulation-float"),
    ("lava-fixed", "emu-fixed", "emulation-fixed"),
)


#: Measured and reported, not judged: the quantization chain judges these link by link.
MEASURED = (
    ("lava-float", "lava-fixed", "quantization"),
    ("brian2", "lava-fixed", "end-to-end"),
    ("emu-float", "emu-fixed", "quantization"),
    ("brian2", "emu-fixed", "end-to-end"),
)


#: emu-float against lava-float (normalized): equal to rounding; emu-fixed against lava-fixed: bit for bit.
EMULATION_TOLERANCE = {"emulation-float": 1e-12, "emulation-fixed": 0.0}


#: A curve (dw per protocol point) may differ from the reference curve by this fraction of its amplitude
#: (the fidelity tolerance: ``verify(fidelity=)`` passes its own).
CURVE_TOLERANCE = DEFAULT_FIDELITY


#: A curve point where the reference changes by at least this fraction of the amplitude and the
#: candidate not at all fails the curve.
CURVE_ZERO_FRACTION = 0.1


def nothing_learned(results: dict) -> dict | None:
    """A ``learning`` entry, not checked, when the reference (brian2, else brian2-step) learned nothing at
    all (every recorded weight constant: no spikes, a rate of 1e-300 Hz, a network without inputs): then
    agreement on constant weights tests nothing and the run is not checked; None otherwise."""
    ref = next((results[n] for n in ("brian2", "brian2-step") if n in results), None)
    if ref is None or ref.trajectory.size == 0:
        return None
    t = ref.trajectory
    if not np.isfinite(t).any() or np.nanmax(np.abs(t - t[:1])) > 0:
        return None
    spikes = ref.info.get("post_spikes")
    why = f" ({int(spikes.sum())} post spikes)" if spikes is not None else ""
    return {"reference": ref.backend, "candidate": "every backend", "share": "learning", "outcome": NOT_CHECKED,
            "passed": False, "tolerance": None, "max_abs_error_normalized": None, "rmse_normalized": None,
            "message": f"nothing was learned: {ref.backend}'s weights never change on this protocol{why}; "
                       "agreement on constant weights tests nothing"}


def _first_bad_step(trajectory: np.ndarray):
    bad = ~np.isfinite(trajectory.reshape(trajectory.shape[0], -1)).all(axis=1)
    return int(np.argmax(bad)) if bad.any() else None


def distribution_comparisons(rule, trains, plans, results, progress=None, tolerance: float = DEFAULT_FIDELITY) -> list:
    """Closed loop: the ``distribution`` comparisons (:mod:`neurodeploy.verdict.distribution`) of every
    engine backend whose post spikes part from the reference run's. The reference is ``brian2``, the
    model as written (``brian2-step`` where brian2 did not run): the engine's order of same-step pre/post
    pairs is a deviation the deployment really has, judged with the others. ``lava-*`` and ``emu-*`` of
    one mode share one ensemble (bit-exact twins in fixed point; equal to 1e-12 of the range in float);
    where spikes do not part the exact comparisons stand alone."""

    reference = next((n for n in ("brian2", "brian2-step") if n in results), None)  # the model as written
    if reference is None:
        return []
    out, done, reference_stats = [], set(), None
    for name in ("lava-float", "lava-fixed", "emu-float", "emu-fixed"):
        runs_as = ENSEMBLE_BACKEND.get(name, name)
        if name not in results or runs_as in done or mode_of(name) not in plans:
            continue
        spikes = compare_spikes(results[reference], results[name], rule.dt)
        if spikes["first_difference_step"] is None:
            continue
        done.add(runs_as)
        if progress:
            progress.start("verdict", 1, f"distribution: {reference} x{ENSEMBLE} -> {runs_as} x{ENSEMBLE} input seeds")
        entry = distribution_verdict(rule, trains, plans, name, int(trains.seed or 0), reference=reference,
                                     reference_stats=reference_stats, spikes=results[name].info["post_spikes"],
                                     tolerance=tolerance)
        if progress:
            progress.finish()
        reference_stats = entry.pop("_reference_stats")
        entry["post_spikes"] = spikes
        out.append(entry)
    # attribution: a statistic the float engine fails too is the engine's order (timing), not fixed point
    by = {e["ensemble"]["candidate_runs_as"]: e for e in out}
    flt, fix = by.get("emu-float"), by.get("emu-fixed")
    if flt is not None and fix is not None and fix["outcome"] == FAILED:
        shared = [n for n in fix["test"]["rejected"] if n in flt["test"]["rejected"]]
        if shared:
            fix["attribution"] = (f"timing: the float engine ({flt['candidate']}, no fixed point) fails "
                                  + ", ".join(shared) + " too: the engine's order of same-step pre/post spikes")
            fix["message"] += "; " + fix["attribution"]
    for e in out:
        if e["outcome"] == FAILED and e["reference"] == "brian2":
            e["remedy"] = ("not measured in closed loops and networks (a finer dt is measured open loop: verify "
                           "--protocol poisson at the network's rates); lava-cpu keeps the engine's same-step order")
    return out


def compare_spikes(ref: RunResult, cand: RunResult, dt: float) -> dict:
    """Closed loop: how the two backends' post spike trains differ (reported, not a pass/fail)."""
    a, b = ref.info["post_spikes"], cand.info["post_spikes"]
    differ = np.flatnonzero((a != b).any(axis=0))
    seconds = a.shape[1] * dt
    return {"first_difference_step": int(differ[0]) if differ.size else None,
            "steps_that_differ": int(differ.size),
            "counts": [int(a.sum()), int(b.sum())],
            "rate_hz": [float(a.sum() / a.shape[0] / seconds), float(b.sum() / b.shape[0] / seconds)]}


def common_rows(ref: RunResult, cand: RunResult) -> tuple:
    """(steps, rows of ref, rows of cand): the recorded steps both runs have (a windowed run and a
    full one: the common window; both every K-th step: those)."""
    steps, ia, ib = np.intersect1d(ref.rows, cand.rows, assume_unique=True, return_indices=True)
    return steps, ia, ib


def compared(ref: RunResult, cand: RunResult, steps: np.ndarray) -> dict:
    """What a comparison compared, for the report: which steps and which synapses."""
    out = {"compared_steps": [int(steps[0]), int(steps[-1])] if steps.size else None,
           "compared_rows": int(steps.size)}
    if steps.size > 1:
        gaps = np.unique(np.diff(steps))
        out["compared_every"] = int(gaps[0]) if gaps.size == 1 else [int(g) for g in gaps[:3]]
    else:
        out["compared_every"] = 1
    n = ref.trajectory.shape[1] * ref.trajectory.shape[2]
    out["compared_synapses"] = "all" if ref.posts is None and ref.pres is None else f"{n} (recorded sub-grid)"
    return out


def _synapse_at(res: RunResult, i: int, j: int) -> list:
    return [int(res.posts[i]) if res.posts is not None else int(i), int(res.pres[j]) if res.pres is not None else int(j)]


def present_grid(trains: SpikeTrains, res: RunResult) -> np.ndarray | None:
    """bool (recorded posts, recorded pres): the recorded synapses the trains' mask keeps (None: no mask)."""
    if trains.mask is None:
        return None
    return trains.mask[np.ix_(np.arange(trains.n_post) if res.posts is None else res.posts,
                              np.arange(trains.n_pre) if res.pres is None else res.pres)]


def compare(ref: RunResult, cand: RunResult, share: str, w_range: float, tolerance: dict | None,
            present: np.ndarray | None = None) -> dict:
    """Errors of ``cand`` against ``ref`` over the steps both recorded (:func:`common_rows`) and the
    recorded synapses, judged against ``tolerance`` (None: measured only, outcome "not checked"; above
    :data:`~neurodeploy.verdict.MAX_TOLERANCE`: not checked, tolerance too wide). ``present``
    (:func:`present_grid`): the synapses compared; the others do not exist (NaN in every backend)."""
    entry = {"reference": ref.backend, "candidate": cand.backend, "share": share}
    steps, ia, ib = common_rows(ref, cand)
    entry.update(compared(ref, cand, steps))
    a, b = ref.trajectory[ia], cand.trajectory[ib]
    if present is not None:  # absent synapses: left out (a synapse axis of the present ones)
        keep = np.flatnonzero(present.reshape(-1))
        entry["compared_synapses"] = f"{keep.size} present (mask) of {present.size}"
        a = a.reshape(a.shape[0], 1, -1)[:, :, keep]
        b = b.reshape(b.shape[0], 1, -1)[:, :, keep]
    for result, traj in ((ref, a), (cand, b)):
        row = _first_bad_step(traj)
        if row is not None:
            entry.update(max_abs_error=None, rmse=None, max_abs_error_normalized=None, rmse_normalized=None,
                         tolerance=tolerance, passed=False, outcome=FAILED,
                         message=f"{result.backend}: non-finite weight at step {int(steps[row])}")
            return entry
    if not steps.size:
        entry.update(max_abs_error=None, rmse=None, max_abs_error_normalized=None, rmse_normalized=None,
                     tolerance=tolerance, passed=False, outcome=NOT_CHECKED, message="no step recorded by both")
        return entry
    diff = np.abs(b - a)
    max_abs = float(diff.max())
    rmse = float(np.sqrt(np.mean(diff ** 2)))
    worst = np.unravel_index(int(np.argmax(diff)), diff.shape)
    if present is not None:
        worst = (worst[0],) + np.unravel_index(int(keep[worst[2]]), present.shape)
    entry.update(
        max_abs_error=max_abs, rmse=rmse,
        max_abs_error_normalized=max_abs / w_range, rmse_normalized=rmse / w_range,
        worst_step=int(steps[worst[0]]), worst_synapse=_synapse_at(ref, worst[1], worst[2]),
        tolerance=tolerance,
    )
    if tolerance is None:
        entry.update(outcome=NOT_CHECKED, message="measured, not judged")
    elif tolerance["max_abs"] > MAX_TOLERANCE:
        entry.update(outcome=NOT_CHECKED, message=f"tolerance {tolerance['max_abs']:.3g} above "
                                                  f"{MAX_TOLERANCE:g} of the range (tolerance too wide)")
    else:
        ok = max_abs / w_range <= tolerance["max_abs"] and (
            tolerance.get("rmse") is None or rmse / w_range <= tolerance["rmse"])
        entry["outcome"] = PASSED if ok else FAILED
    entry["passed"] = entry["outcome"] == PASSED
    return entry


def _tolerance(share: str, plans: dict) -> dict:
    if share == "lowering":
        tol = LOWERING_TOLERANCE + (plans["float"].band["max_abs"] if "float" in plans else 0.0)
        return {"max_abs": tol, "rmse": tol}
    tol = EMULATION_TOLERANCE[share]
    return {"max_abs": tol, "rmse": tol}


#: The family-wise error rate of the curve judge's test of the ensemble mean (its points Bonferroni-corrected).
CURVE_ALPHA = 0.01


def judge_curve(curve: dict, reference: str, candidate: str, w_range: float, expected=None, dt: float = 1e-3,
                tolerance: float = CURVE_TOLERANCE) -> dict:
    """A candidate's protocol curve against the reference's, relative to the reference curve's amplitude.

    ``expected`` (fixed-point candidates): (ensemble mean, its standard error, ensemble size k) per curve
    point, dw in rule units, from the rounding link. The amplitude criterion then applies to the
    deployment's expected curve, the ensemble mean (one stochastically rounded run is judged by the
    rounding link's envelope): a point fails when the mean's excess over the tolerance is beyond doubt,
    more than q standard errors of the estimate (Student t with k - 1 degrees of freedom, Bonferroni at
    :data:`CURVE_ALPHA` over the curve's judged points). The tolerance itself comes from the reference
    curve only; the standard error only says how well the ensemble knows the deployment's mean. A point
    is *lost* when the expected change is below a tenth of the reference's there, not merely when one run
    rounded it to zero."""
    ref = np.asarray(curve[reference], dtype=float)
    cand = np.asarray(curve[candidate], dtype=float)
    # an STDP window's same-step point (dt = 0) is the simulators' scheduling convention: shown, not judged
    order = np.array([same_step_point(curve, x, dt) for x in curve["x"]], dtype=bool)
    amplitude = float(np.max(np.abs(ref[~order]))) if (~order).any() else 0.0
    diff = np.abs(cand - ref)
    judged, allowance = cand, np.zeros_like(ref)
    if expected is not None:
        from scipy import stats

        points = max(1, int((~order).sum()))
        q = float(stats.t.ppf(1 - CURVE_ALPHA / (2 * points), max(1, int(expected[2]) - 1)))
        judged, allowance = np.asarray(expected[0], dtype=float), q * np.asarray(expected[1], dtype=float)
    jdiff = np.where(order, 0.0, np.maximum(0.0, np.abs(judged - ref) - allowance))
    entry = {"reference": reference, "candidate": candidate, "share": "curve",
             "max_abs_error_normalized": float(diff.max()) / w_range if diff.size else 0.0,
             "rmse_normalized": float(np.sqrt(np.mean(diff ** 2))) / w_range if diff.size else 0.0,
             "amplitude_normalized": amplitude / w_range,
             "tolerance": {"max_abs": tolerance * amplitude / w_range, "rmse": None,
                           "kind": f"{tolerance:g} of the curve's amplitude"
                                   + (" (the ensemble-mean curve: its excess beyond doubt, q standard errors)"
                                      if expected is not None else "")}}
    if not np.isfinite(cand).all():
        entry.update(outcome=FAILED, passed=False, message=f"{candidate}: non-finite curve point")
        return entry
    zero = [(curve["x"][k], float(ref[k])) for k in range(ref.size) if ref[k] != 0 and cand[k] == 0 and not order[k]]
    if order.any():
        entry["same_step_points"] = [{"x": curve["x"][k], "reference": float(ref[k]), "candidate": float(cand[k])}
                                     for k in np.flatnonzero(order)]
    entry["curve_rel_error"] = float(diff.max()) / amplitude if amplitude > 0 else None
    entry["zero_where_reference_is_not"] = [x for x, _ in zero]
    if amplitude == 0:
        entry.update(outcome=NOT_CHECKED, message="the reference curve is flat: no amplitude to judge against")
    elif tolerance * amplitude > MAX_TOLERANCE * w_range:
        entry.update(outcome=NOT_CHECKED, message=f"{tolerance:g} of the curve's amplitude is above "
                                                  f"{MAX_TOLERANCE:g} of the range (tolerance too wide)")
    else:
        if expected is None:
            lost = [x for x, v in zero if abs(v) >= CURVE_ZERO_FRACTION * amplitude]
        else:
            lost = [curve["x"][k] for k in range(ref.size) if not order[k]
                    and abs(ref[k]) >= CURVE_ZERO_FRACTION * amplitude and abs(judged[k]) < 0.1 * abs(ref[k])]
        problems = []
        if jdiff.max() > tolerance * amplitude:
            k = int(np.argmax(jdiff))
            what = "expected " if expected is not None else ""
            problems.append(f"{curve['x_label']} {curve['x'][k]:g}: {what}{judged[k]:.4g} vs {ref[k]:.4g} "
                            f"({100 * abs(judged[k] - ref[k]) / amplitude:.3g}% of the amplitude)")
        if lost:
            problems.append(("expected change lost" if expected is not None else "zero where the reference is not")
                            + f" at {curve['x_label']} " + ", ".join(f"{x:g}" for x in lost))
        entry["outcome"] = FAILED if problems else PASSED
        if problems:
            entry["message"] = "; ".join(problems)
        elif zero:
            entry["message"] = ("zero where the reference is not" + (
                " (this run's rounding; the expected change is kept)" if expected is not None else
                f" (below {CURVE_ZERO_FRACTION:g} of the amplitude)")
                + f" at {curve['x_label']} " + ", ".join(f"{x:g}" for x, _ in zero))
    entry["passed"] = entry["outcome"] == PASSED
    return entry


def proof_statement(results: dict, comparisons: list, steps: int) -> list:
    """What was proven on which steps: one line per comparison whose two runs covered different steps."""
    lines = []
    for c in comparisons:
        a, b = results.get(c.get("reference")), results.get(c.get("candidate"))
        if a is None or b is None or c.get("compared_steps") is None or c["share"] == "fidelity":
            continue
        lo, hi = c["compared_steps"]
        scope = "the whole protocol" if hi == steps - 1 and lo <= max(a.rows[0], b.rows[0]) else \
            f"the window steps 0..{hi} of 0..{steps - 1}"
        lines.append(f"{c['reference']} -> {c['candidate']} ({c['share']}, {c['outcome']}): {scope}, "
                     f"{c['compared_rows']} recorded steps, synapses: {c['compared_synapses']}")
    return lines


def fixed_saturation(plan, rule: Rule, trains: SpikeTrains, fixed_result) -> dict:
    """How often the fixed-point run is at a hardware limit.

    * ``trace_steps``: per Lava trace, neuron-steps whose value (impulse k per
      rule unit, exact decay) reaches the 7-bit limit 127;
    * ``weight_at_limit``: synapse-steps of lava-fixed at the 8-bit limits,
      split into limits that are the rule's own bounds and limits that are not;
    * ``accumulator``: products whose largest value exceeds the 16-bit
      accumulator (2^15 - 1) and would be clipped.
    """
    from neurodeploy.compile.plan import TRACE_MAX


    traces = {}
    for t in plan.traces:
        trace = rule.trace(t.name)
        if trace.of not in ("pre", "post") or t.slot in getattr(plan, "saturating", ()):
            continue  # supplied and tag values are not the engine's traces; a saturation reset is meant
        raster = trains.pre if trace.of == "pre" else trains.post
        decay = np.exp(-1.0 / t.tau_steps)
        traces[t.slot] = sum(int(np.count_nonzero(values >= TRACE_MAX))
                             for _, values in decayed_trace(raster, decay, t.impulse))
    maxima = {t.slot: TRACE_MAX for t in plan.traces}
    maxima["w"] = max(abs(b) for b in plan.w_lava_bounds)
    accumulator = []
    for p in plan.products:
        largest = abs(p.mantissa)
        for f in p.factors:
            largest *= maxima[f]
        largest = (int(largest) >> p.shift) << (p.exponent + 7)
        if largest > 2 ** 15 - 1:
            accumulator.append(p.text.lstrip("+- "))
    weights = {"at_rule_bound": 0, "at_other_limit": 0}
    if fixed_result is not None:
        weights["counted_on"] = (f"{fixed_result.backend}'s {fixed_result.rows.size} recorded steps x "
                                 f"{fixed_result.trajectory[0].size if fixed_result.trajectory.size else 0} recorded synapses")
        w_lava = np.rint(fixed_result.trajectory / plan.weight_scale)
        for bound, rule_value in zip(plan.w_lava_bounds, (rule.weight.w_min, rule.weight.w_max)):
            hits = int(np.sum(w_lava == bound))
            key = "at_rule_bound" if np.isclose(bound * plan.weight_scale, rule_value) else "at_other_limit"
            weights[key] += hits
    return {"trace_steps": traces, "weight_at_limit": weights, "accumulator_may_overflow": accumulator}


def saturation_notes(sat: dict) -> list:
    notes = [f"trace {slot} at the 7-bit limit in {n} neuron-steps" for slot, n in sat["trace_steps"].items() if n]
    if sat["weight_at_limit"]["at_other_limit"]:
        notes.append(f"weights at an 8-bit limit that is not a rule bound in {sat['weight_at_limit']['at_other_limit']} "
                     "synapse-steps")
    notes += [f"product '{p}' may overflow the 16-bit accumulator" for p in sat["accumulator_may_overflow"]]
    return notes
