"""Drive every backend with the same spike trains and judge the trajectories.

The verdict (:mod:`neurodeploy.verdict`) is a chain of shares, each with its
own tolerance, normalized by ``w_max - w_min``, and one of three outcomes
(passed, failed, not checked):

=============================  ===============  ===========================================
reference -> candidate         share            tolerance
=============================  ===============  ===========================================
brian2 -> brian2-step          timing           per synapse, from its own conflicting epochs
                                                (:mod:`neurodeploy.verdict.timing`)
brian2-step -> lava-float,     lowering         :data:`LOWERING_TOLERANCE`
lava-cpu, emu-float
exact -> realised constants    constants        the engine's best constants
                                                (:mod:`neurodeploy.verdict.quantization`)
realised -> emu-fixed x K      rounding         ensemble statistics (mean, envelope)
lava-* -> emu-*                emulation        1e-12 (float), 0 (fixed: bit for bit)
brian2-step -> fixed (curves)  curve            :data:`CURVE_TOLERANCE` of the curve's amplitude
=============================  ===============  ===========================================

The total errors lava-float -> lava-fixed and brian2 -> lava-fixed are
measured and reported (``measured``), judged link by link above.

A trajectory with NaN or inf fails every comparison it is in, naming the
backend and the first bad step.
"""
from __future__ import annotations

import dataclasses

import contextlib
import json
import math
import os
import signal
import tempfile
import threading
import time
from dataclasses import dataclass, field

import numpy as np

import neurodeploy
from neurodeploy.backends import Recording, RunResult, load_all
from neurodeploy.errors import NeurodeployError, UnsupportedError
from neurodeploy.files import follow_umask
from neurodeploy.ir import Rule
from neurodeploy.protocol import SpikeTrains, trace_stats, update_counts
from neurodeploy.network import with_spikes
from neurodeploy.verdict.fidelity import DEFAULT_FIDELITY, ensemble_for, fidelity_comparisons, same_step_point
from neurodeploy.verdict.fidelity import candidates as fidelity_candidates
from neurodeploy.verdict import EXIT_CODES, FAILED, MAX_TOLERANCE, NOT_CHECKED, PASSED, counts, overall

LOWERING_TOLERANCE = 1e-9
DEFAULT_BACKENDS = ("brian2", "brian2-step", "lava-float", "lava-fixed")
#: The default for rules the learning engine cannot express.
CPU_BACKENDS = ("brian2", "brian2-step", "lava-cpu")
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
#: Most weight values one backend's recorded trajectory holds by default (float64: 32 MB); a longer
#: run is recorded every K-th step (``--record-every``), the smallest K within the budget.
RECORD_BUDGET = 4_000_000
#: Most synapses recorded by default: larger networks record an evenly spaced sub-grid (``--record-synapses``).
RECORD_SYNAPSES = 10_000
#: Lava backends run at most this many synapse-steps of a protocol by default (``--lava-steps``):
#: measured ~500-900 steps/s at 100x100 on a loaded 2-core machine, so ~2.5-4 s per Lava backend there.
LAVA_SYNAPSE_STEPS = 20_000_000
#: ... and at least this many steps (or the whole protocol), at most :data:`LAVA_MAX_STEPS`
#: (Lava's cost per step at small sizes is fixed: measured 5 ms per step at one synapse under load).
LAVA_MIN_STEPS, LAVA_MAX_STEPS = 1000, 2000
LAVA_BACKENDS = ("lava-float", "lava-fixed", "lava-cpu")
#: The emulator twin that runs the whole protocol where its Lava backend runs a window.
EMU_TWIN = {"lava-float": "emu-float", "lava-fixed": "emu-fixed"}
#: A curve (dw per protocol point) may differ from the reference curve by this fraction of its amplitude
#: (the fidelity tolerance: ``verify(fidelity=)`` passes its own).
CURVE_TOLERANCE = DEFAULT_FIDELITY
#: A curve point where the reference changes by at least this fraction of the amplitude and the
#: candidate not at all fails the curve.
CURVE_ZERO_FRACTION = 0.1


def default_backends(rule: Rule) -> tuple:
    """:data:`DEFAULT_BACKENDS` when the learning engine can express ``rule``, else :data:`CPU_BACKENDS`,
    plus, when the lowering's approximations put the rule on the engine, the Lava backends that run
    it so (the rule itself runs exactly on ``lava-cpu``; the approximation has its own share)."""
    from neurodeploy.lava.plan import approximation_reason, engine_reason

    if engine_reason(rule) is None:
        return DEFAULT_BACKENDS
    lava = tuple(b for b, mode in (("lava-float", "float"), ("lava-fixed", "fixed"))
                 if approximation_reason(rule, mode) is None)
    return CPU_BACKENDS + lava


def compile_plans(rule: Rule, trains: SpikeTrains | None = None, stats: dict | None = None,
                  approximate: bool = False) -> dict:
    """Float and fixed plans for ``rule``, scaled on ``trains`` (``stats``: their
    :func:`~neurodeploy.protocol.trace_stats`, if already computed).

    Raises UnsupportedError with the reason when the learning engine cannot express the rule,
    or cannot realise every float constant exactly (as :func:`neurodeploy.lava.plan.engine_reason`).
    ``approximate``: plans of the rule as the lowering approximates it (:attr:`Plan.approximations`;
    no float plan when the approximation is fixed-point only)."""
    from neurodeploy.lava.plan import inexact_reason

    plans = scale_plans(rule, trains, stats, approximate)
    reason = inexact_reason(plans["float"]) if "float" in plans else None
    if reason is not None:
        raise UnsupportedError(reason)
    return plans


def scale_plans(rule: Rule, trains: SpikeTrains | None = None, stats: dict | None = None,
                approximate: bool = False) -> dict:
    """:func:`compile_plans` without the exactness check (a plan whose float constants are
    approximate still runs on Lava and its emulator)."""
    from neurodeploy.lava.lowering import lower
    from neurodeploy.lava.plan import make_plan, tag_peaks

    engine = lower(rule, approximate)
    peaks, counts = None, None
    if trains is not None:
        stats = stats if stats is not None else trace_stats(rule, trains)
        peaks = dict({name: s["peak"] for name, s in stats.items()}, **tag_peaks(rule, trains))
        counts = dict(update_counts(rule, trains), trace_means={name: s["mean"] for name, s in stats.items()})
    modes = ("fixed",) if engine.fixed_only else ("float", "fixed")
    try:
        return {mode: make_plan(engine, mode, peaks, counts) for mode in modes}
    except (OverflowError, ZeroDivisionError, ValueError) as exc:
        raise UnsupportedError(f"the rule's constants are outside what the learning engine can scale ({exc})") from None


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
    from neurodeploy.verdict.distribution import ENSEMBLE, ENSEMBLE_BACKEND, distribution_verdict

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


#: Closed loop and networks: the backends whose spikes scale the plans, by preference (they run no plan).
PLAN_FREE = ("brian2", "brian2-step", "lava-cpu")


def network_refusals(rule, trains, plans) -> dict:
    """A network's engine backends that cannot deploy it with the plans (a static weight or a threshold
    beyond Loihi's integers, a masked synapse starting at 0): backend -> the one-line reason."""
    from neurodeploy.deploy import network_plan_reason

    out = {}
    if trains.network is None:
        return out
    for mode, plan in plans.items():
        reason = network_plan_reason(rule, trains.network, plan, trains.w0)
        if reason is not None:
            out.update({f"lava-{mode}": reason, f"emu-{mode}": reason})
    return out


def _replan(rule, trains, spikes) -> tuple:
    """(trains with the neurons' ``spikes``, their trace statistics, the plans scaled on them; {} when the
    engine cannot run the rule): a closed loop's or network's plans, on spikes a neuron made."""
    made = with_spikes(trains, spikes)
    traces = trace_stats(rule, made)
    try:
        return made, traces, compile_plans(rule, made, traces, approximate=True)
    except UnsupportedError:
        return made, traces, {}


def _plan_scaler(registry, rule, trains, backends, refused=None) -> tuple:
    """(scaler, backends in run order, pre_run): the backend whose neurons' spikes scale the plans of a
    closed loop or network: the first of :data:`PLAN_FREE` that runs (moved to the front), else the first
    backend that runs, in a preliminary run (``pre_run``) whose result is not reported, so that every
    reported backend ran the reported plans and the backends' order changes no number."""
    runs = [n for n in backends if registry.get(n).unsupported_reason(rule) is None
            and registry.get(n).unsupported_trains(trains) is None and n not in (refused or {})]
    free = [n for n in PLAN_FREE if n in runs]
    if free:
        return free[0], [free[0]] + [n for n in backends if n != free[0]], False
    return (runs[0] if runs else None), list(backends), bool(runs)


def mode_of(backend: str) -> str:
    return "fixed" if backend.endswith("-fixed") else "float"


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


def judge_curve(curve: dict, reference: str, candidate: str, w_range: float, expected=None, dt: float = 1e-3,
                tolerance: float = CURVE_TOLERANCE) -> dict:
    """A candidate's protocol curve against the reference's, relative to the reference curve's amplitude.

    ``expected`` (fixed-point candidates): (ensemble mean, half-width) per curve point, dw in rule
    units, from the rounding link. The amplitude criterion then applies to the deployment's expected
    curve, the ensemble mean (its half-width allowed: one stochastically rounded run is judged by the
    rounding link's envelope), and a point is *lost* when the expected change is below a tenth of the
    reference's there, not merely when one run rounded it to zero."""
    ref = np.asarray(curve[reference], dtype=float)
    cand = np.asarray(curve[candidate], dtype=float)
    # an STDP window's same-step point (dt = 0) is the simulators' scheduling convention: shown, not judged
    order = np.array([same_step_point(curve, x, dt) for x in curve["x"]], dtype=bool)
    amplitude = float(np.max(np.abs(ref[~order]))) if (~order).any() else 0.0
    diff = np.abs(cand - ref)
    judged, allowance = cand, np.zeros_like(ref)
    if expected is not None:
        judged, allowance = np.asarray(expected[0], dtype=float), np.asarray(expected[1], dtype=float)
    jdiff = np.where(order, 0.0, np.maximum(0.0, np.abs(judged - ref) - allowance))
    entry = {"reference": reference, "candidate": candidate, "share": "curve",
             "max_abs_error_normalized": float(diff.max()) / w_range if diff.size else 0.0,
             "rmse_normalized": float(np.sqrt(np.mean(diff ** 2))) / w_range if diff.size else 0.0,
             "amplitude_normalized": amplitude / w_range,
             "tolerance": {"max_abs": tolerance * amplitude / w_range, "rmse": None,
                           "kind": f"{tolerance:g} of the curve's amplitude"
                                   + (" (the ensemble-mean curve, its standard error allowed)" if expected is not None
                                      else "")}}
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


@dataclass
class Report:
    rule: Rule
    trains: SpikeTrains
    results: dict  # backend name -> RunResult
    skipped: dict  # backend name -> reason
    plans: dict  # "float"/"fixed" -> Plan
    comparisons: list
    stats: dict = field(default_factory=dict)
    failed: dict = field(default_factory=dict)  # backend name -> why it did not finish
    curve: dict | None = None  # curve protocols: {"x", "x_label", backend: [dw per x]}
    measured: list = field(default_factory=list)  # total errors, reported and not judged
    steps_ran: dict = field(default_factory=dict)  # what each backend and internal run simulated, in words
    recording: dict = field(default_factory=dict)  # what was recorded: every K-th step, which synapses
    proof: list = field(default_factory=list)  # what was proven on which steps (windowed Lava runs)
    seconds: dict = field(default_factory=dict)  # wall time per phase: where the time goes
    fidelity: float = DEFAULT_FIDELITY  # the fidelity tolerance the run was judged with

    @property
    def outcome(self) -> str:
        """passed, failed or not checked (:func:`neurodeploy.verdict.overall`)."""
        return overall(self.comparisons, self.failed)

    @property
    def passed(self) -> bool:
        return self.outcome == PASSED

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.outcome]

    def to_dict(self) -> dict:
        from neurodeploy.lava.plan import approximation_reason, approximations, engine_reason

        engine = engine_reason(self.rule)
        approximated = ()
        if engine is not None and any(approximation_reason(self.rule, m) is None for m in ("float", "fixed")):
            engine, approximated = None, approximations(self.rule)

        backends = []
        for name, res in self.results.items():
            info = {k: v for k, v in res.info.items() if k != "post_spikes"}  # rasters go to the .npz
            backends.append({"name": name, "ran": True, "seconds": round(res.seconds, 3),
                             "steps_per_second": round(res.steps_per_second, 1), "info": info,
                             "steps": [0, int(res.steps_run)], "recorded_rows": int(res.rows.size),
                             "window": res.steps_run < self.trains.steps,
                             "stored_as": ("int16 Lava units" if name in FIXED_BACKENDS and "fixed" in self.plans
                                           else "float64 rule units")})
        for name, reason in self.skipped.items():
            backends.append({"name": name, "ran": False, "reason": reason})
        for name, reason in self.failed.items():
            backends.append({"name": name, "ran": False, "failed": True, "reason": reason})
        t = self.trains
        return {
            "neurodeploy_version": neurodeploy.__version__,
            "rule": self.rule.name, "rule_file": self.rule.source, "citation": self.rule.citation,
            "protocol": t.protocol, "seed": t.seed, "rate_hz": t.rate,
            "steps": t.steps, "n_pre": t.n_pre, "n_post": t.n_post,
            "dt_ms": self.rule.dt * 1e3, "t_epoch": self.rule.t_epoch,
            "weight_range": [self.rule.weight.w_min, self.rule.weight.w_max],
            "outcome": self.outcome, "passed": self.passed, "counts": counts(self.comparisons),
            "fidelity": self.fidelity,
            "steps_ran": self.steps_ran, "measured": self.measured,
            "recording": self.recording, "proof": self.proof, "seconds": self.seconds,
            "engine": engine,  # None: the learning engine runs the rule (exactly, or through the approximations)
            "engine_approximations": [a.detail for a in approximated],
            "backends": backends,
            "comparisons": self.comparisons,
            "protocol_stats": self.stats,
            "quantization_plan": {m: p.to_dict() for m, p in self.plans.items()},
            **({"curve": self.curve} if self.curve is not None else {}),
            **({"neuron": self.trains.neuron} if self.trains.neuron is not None else {}),
            **({"network": self.trains.network.to_dict()} if self.trains.network is not None else {}),
            **({"mask": {"present": int(t.mask.sum()), "synapses": int(t.mask.size),
                         "absent": "NaN in trajectories.npz (mask alongside); left out of every comparison"}}
               if t.mask is not None else {}),
        }

    def write(self, out_dir: str) -> list:
        """Write trajectories.npz, report.json and report.md atomically into ``out_dir``."""
        from neurodeploy.report import render_markdown

        os.makedirs(out_dir, exist_ok=True)
        start = time.perf_counter()
        data = self.to_dict()
        paths = []
        arrays = {name: res.trajectory for name, res in self.results.items()}
        stored = {}
        for name, res in self.results.items():
            stored[name], _ = _storage(name, res, self.plans)
            if name in FIXED_BACKENDS and "fixed" in self.plans:
                stored[f"{name}:scale"] = np.float64(self.plans["fixed"].weight_scale)
            if not (res.rows.size == res.steps_run == self.trains.steps):
                stored[f"{name}:steps"] = res.rows
        first = next(iter(self.results.values()), None)
        if first is not None and first.posts is not None:
            stored["synapses:post"] = first.posts
        if first is not None and first.pres is not None:
            stored["synapses:pre"] = first.pres
        if self.trains.mask is not None:  # the synapses that exist; the others are NaN in every trajectory
            stored["mask"] = self.trains.mask
        # closed loop: each backend's post spikes, "<backend>:post_spikes" (n_post, steps)
        rasters = {f"{name}:post_spikes": res.info["post_spikes"] for name, res in self.results.items()
                   if "post_spikes" in res.info}
        paths.append(_atomic(out_dir, "trajectories.npz", lambda f: np.savez(f, **stored, **rasters), binary=True))
        data["seconds"] = dict(data["seconds"], **{"write trajectories.npz": round(time.perf_counter() - start, 3)})
        start = time.perf_counter()
        rows = {name: res.rows for name, res in self.results.items()}
        from neurodeploy.plots import write_plots

        for name in ("trajectories.png", "errors.png", "curve.png", "quantization.png"):  # none stale
            if os.path.isfile(os.path.join(out_dir, name)):
                os.unlink(os.path.join(out_dir, name))
        figures = write_plots(data, arrays, out_dir, rows=rows)
        paths += [os.path.join(out_dir, f) for f in figures]
        data["seconds"]["figures"] = round(time.perf_counter() - start, 3)
        paths.append(_atomic(out_dir, "report.md", lambda f: f.write(render_markdown(data, figures))))
        # report.json last: its presence means the others are complete
        paths.append(_atomic(out_dir, "report.json",
                             lambda f: f.write(json.dumps(_jsonable(data), indent=2, sort_keys=True) + "\n")))
        return paths


FIXED_BACKENDS = ("lava-fixed", "emu-fixed")


def _storage(name: str, res: RunResult, plans: dict) -> tuple:
    """(array, description) of a backend's trajectory as stored: fixed point as the Lava integers
    (int16; ``<backend>:scale`` rule units per Lava unit alongside), else float64 rule units."""
    if name in FIXED_BACKENDS and "fixed" in plans:
        lava = np.rint(res.trajectory / plans["fixed"].weight_scale)
        if np.all(np.isfinite(lava)) and lava.size and np.abs(lava).max() < 2 ** 15:
            return lava.astype(np.int16), "int16 Lava units (times <backend>:scale = rule units)"
    return res.trajectory, "float64 rule units"


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    return value


def _atomic(out_dir: str, name: str, write, binary: bool = False) -> str:
    final = os.path.join(out_dir, name)
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", dir=out_dir)
    try:
        follow_umask(fd)  # mkstemp's 600 -> the mode a normal file gets
        with os.fdopen(fd, "wb" if binary else "w") as handle:
            write(handle)
        os.replace(tmp, final)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return final


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


class BackendTimeout(Exception):
    """A backend ran longer than its time limit."""


@contextlib.contextmanager
def time_limit(seconds):
    """Raise BackendTimeout in the main thread after ``seconds`` (None: no limit).

    Uses SIGALRM, so it interrupts Brian2 and the wait for Lava alike; Lava's
    ``stop()`` still runs in its ``finally``."""
    if not seconds:
        yield
        return
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("a backend time limit needs the main thread (not available on Dask workers)")

    def expire(signum, frame):
        raise BackendTimeout()

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, float(seconds))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def grid(n: int, count: int) -> np.ndarray:
    """``count`` evenly spaced indices of ``range(n)`` (first and last included)."""
    return np.unique(np.linspace(0, n - 1, max(1, min(n, count))).round().astype(np.intp))


def default_recording(trains: SpikeTrains, every: int | None = None, synapses=None) -> Recording:
    """What ``verify`` records: every synapse up to :data:`RECORD_SYNAPSES` (else an evenly spaced
    sub-grid of about that many), every step up to :data:`RECORD_BUDGET` values (else every K-th).

    ``synapses``: None (that default), ``"all"``, an int N (an evenly spaced sub-grid of about N), or
    (posts, pres) index lists. A curve protocol's synapses are always recorded."""
    n_post, n_pre = trains.n_post, trains.n_pre
    if synapses is None:
        synapses = None if n_post * n_pre <= RECORD_SYNAPSES else RECORD_SYNAPSES
    if synapses == "all" or synapses is None:
        posts = pres = None
    elif isinstance(synapses, (int, np.integer)):
        side = math.sqrt(int(synapses) * n_post / n_pre)
        posts = grid(n_post, int(round(side)))
        pres = grid(n_pre, int(round(int(synapses) / len(posts))))
    else:
        posts, pres = (np.unique(np.asarray(v, dtype=np.intp)) for v in synapses)
    if trains.curve is not None and posts is not None:
        pairs = np.asarray(trains.curve["synapses"], dtype=np.intp).reshape(-1, 2)
        posts, pres = np.union1d(posts, pairs[:, 0]), np.union1d(pres, pairs[:, 1])
    if posts is not None and len(posts) == n_post and pres is not None and len(pres) == n_pre:
        posts = pres = None
    n_rec = (n_post if posts is None else len(posts)) * (n_pre if pres is None else len(pres))
    if every is None:
        every = max(1, math.ceil(trains.steps * n_rec / RECORD_BUDGET))
    return Recording(every=int(every), posts=None if posts is None else tuple(int(i) for i in posts),
                     pres=None if pres is None else tuple(int(i) for i in pres))


def lava_window(trains: SpikeTrains, lava_steps: int | None = None) -> int:
    """Steps the Lava backends run (from step 0): ``lava_steps`` (0: the whole protocol) or by default
    :data:`LAVA_SYNAPSE_STEPS` / synapses within [:data:`LAVA_MIN_STEPS`, :data:`LAVA_MAX_STEPS`]."""
    if trains.closed or lava_steps == 0:
        return trains.steps  # the closed loop's spikes depend on every step: never windowed
    if lava_steps is None:
        synapses = trains.n_pre * trains.n_post
        lava_steps = int(min(LAVA_MAX_STEPS, max(LAVA_MIN_STEPS, LAVA_SYNAPSE_STEPS // max(1, synapses))))
    return int(min(trains.steps, lava_steps))


def verify(rule: Rule, trains: SpikeTrains | None = None, backends=None, progress=None,
           timeout: float | None = None, ensemble: int | None = None, record_every: int | None = None,
           record_synapses=None, lava_steps: int | None = None, fidelity: float = DEFAULT_FIDELITY) -> Report:
    """Run ``backends`` on ``trains`` and judge them (:mod:`neurodeploy.verdict`); nothing is written.

    ``timeout``: seconds per backend; a backend that exceeds it is stopped and
    reported as failed, the others' results are kept. ``progress``: a
    :class:`neurodeploy.progress.Progress` (or None). ``ensemble``: rounding
    seeds of the fixed-point verdict (default
    :data:`neurodeploy.verdict.quantization.ENSEMBLE_SIZE`).

    Recording (:func:`default_recording`): every ``record_every``-th step (and the last) of the
    synapses ``record_synapses``; comparisons use what both sides recorded. ``lava_steps``
    (:func:`lava_window`): the Lava backends run the protocol's first steps only when it is longer;
    then the emulator (``emu-float``/``emu-fixed``, added when asked for its Lava twin) runs the
    whole protocol, is proven equal to Lava on the window, and carries the verdict beyond it.

    Closed loop: the plans are scaled on the post spikes the first backend's
    neuron made (``brian2`` by default), not on the imposed raster; the
    fixed-point chain replays lava-fixed's own spikes."""
    from neurodeploy.protocol import as_rule, default_trains
    from neurodeploy.verdict.fidelity import check_tolerance
    from neurodeploy.verdict.quantization import ENSEMBLE_SIZE, quantization_chain
    from neurodeploy.verdict.timing import timing_verdict

    rule = as_rule(rule)  # a path or a loaded rule
    trains = default_trains(rule) if trains is None else trains
    if not isinstance(trains, SpikeTrains):
        raise NeurodeployError("", "trains", f"must be SpikeTrains (neurodeploy.poisson(...), load_spikes(...)) "
                                             f"(got {type(trains).__name__})")
    try:
        fidelity = check_tolerance(fidelity)
    except ValueError as exc:
        raise NeurodeployError("", "fidelity", str(exc)) from None
    registry = load_all()
    backends = list(default_backends(rule) if backends is None else backends)
    ensemble_given = ensemble is not None
    ensemble = ENSEMBLE_SIZE if ensemble is None else ensemble
    recording = default_recording(trains, record_every, record_synapses)
    window = lava_window(trains, lava_steps)
    if window < trains.steps and window > recording.every:
        window -= (window - 1) % recording.every  # the window's last step is one every backend records
    if window < trains.steps:  # the emulator carries the whole protocol where Lava runs a window
        for lava, emu in EMU_TWIN.items():
            if lava in backends and emu not in backends:
                backends.append(emu)
    clock = time.perf_counter()
    seconds = {}

    def lap(name):
        nonlocal clock
        now = time.perf_counter()
        seconds[name] = round(seconds.get(name, 0.0) + now - clock, 3)
        clock = now

    traces = trace_stats(rule, trains)
    try:
        plans = compile_plans(rule, trains, traces, approximate=True)
    except UnsupportedError:
        plans = {}
    lap("statistics and plans")
    planned_on, plan_trains = "the protocol's spike trains", trains
    results, skipped, failed = {}, {}, {}
    scaler = None
    refused = network_refusals(rule, trains, plans)  # what deploy_network would refuse, before anything runs
    if trains.closed:  # the plans are scaled on spikes the neurons make: whose, whatever the backends' order
        scaler, backends, pre_run = _plan_scaler(registry, rule, trains, backends, refused)
        if pre_run:  # only engine backends: a preliminary run (not reported) with the protocol's plans
            if progress:
                progress.start(scaler, trains.steps, "preliminary run: its neurons' spikes scale the plans")
            try:
                with time_limit(timeout):
                    first = registry.get(scaler).run(rule, trains, plans, None, Recording(every=trains.steps))
            except BackendTimeout:
                first = None
            finally:
                if progress:
                    progress.finish()
            if first is not None:
                plan_trains, traces, plans = _replan(rule, trains, first.info["post_spikes"])
                planned_on = (f"the post spikes {scaler}'s neurons made in a preliminary run with the plans of "
                              "the protocol's spike trains")
            lap("preliminary run (plan scaling)")
    for name in backends:
        backend = registry.get(name)
        reason = backend.unsupported_reason(rule) or backend.unsupported_trains(trains) or refused.get(name)
        if reason is not None:
            skipped[name] = reason
            continue
        rec = dataclasses.replace(recording, stop=window) if name in LAVA_BACKENDS and window < trains.steps \
            else recording
        run_steps = trains.steps if rec.stop is None else rec.stop
        if progress:
            progress.start(name, run_steps, f"{run_steps} steps, {trains.n_post}x{trains.n_pre} synapses")
        try:
            with time_limit(timeout):
                results[name] = backend.run(rule, trains, plans, progress.update if progress else None, rec)
        except BackendTimeout:
            failed[name] = f"timed out after {timeout:g} s"
        finally:
            if progress:
                progress.finish()
        if name == scaler and name in results and planned_on.startswith("the protocol"):
            # the second pass: scale the plans on the spikes a neuron actually made
            plan_trains, traces, plans = _replan(rule, trains, results[name].info["post_spikes"])
            planned_on = f"the post spikes {name}'s neuron made"
        lap(f"backend {name}")
    w_range = rule.weight.range
    comparisons, measured = [], []
    from neurodeploy.verdict.approximation import approximation_entries

    approximated = approximation_entries(rule, plans, trains, results)
    comparisons += approximated
    for a, b, share in COMPARISONS:
        if approximated and share == "lowering" and b in ("lava-float", "emu-float"):
            continue  # the approximation entry: the float plan is the approximated rule, exactly
        if a in results and b in results:
            ra, rb = results[a], results[b]
            spikes = compare_spikes(ra, rb, rule.dt) if trains.closed else None
            parted = spikes is not None and spikes["first_difference_step"] is not None
            if share == "timing":
                if parted:
                    entry = compare(ra, rb, share, w_range, None, present_grid(trains, ra))
                    entry.update(outcome=NOT_CHECKED, passed=False,
                                 message=f"post spikes part from step {spikes['first_difference_step']}: "
                                         f"{spikes['counts'][0]} vs {spikes['counts'][1]} spikes")
                else:
                    seen = trains if spikes is None else with_spikes(trains, ra.info["post_spikes"])
                    entry = timing_verdict(rule, seen, ra, rb, {n: t["peak"] for n, t in trace_stats(rule, seen).items()}
                                           if spikes is not None else {n: t["peak"] for n, t in traces.items()})
            else:
                # the lowering and the emulation must agree exactly, spikes included
                entry = compare(ra, rb, share, w_range, _tolerance(share, plans), present_grid(trains, ra))
            if spikes is not None:
                entry["post_spikes"] = spikes
            comparisons.append(entry)
        elif (a in failed or b in failed) and {a, b} <= set(results) | set(failed):
            which = a if a in failed else b
            comparisons.append({"reference": a, "candidate": b, "share": share, "max_abs_error": None, "rmse": None,
                                "max_abs_error_normalized": None, "rmse_normalized": None,
                                "tolerance": None, "passed": False, "outcome": FAILED,
                                "message": f"{which}: {failed[which]}"})
    for a, b, share in MEASURED:
        if a in results and b in results:
            m = compare(results[a], results[b], share, w_range, None, present_grid(trains, results[a]))
            measured.append({k: v for k, v in m.items() if k not in ("outcome", "passed", "message", "tolerance")})
    steps_ran = {}
    for name, r in results.items():
        text = f"steps 0..{r.steps_run - 1}"
        text += " (the whole protocol)" if r.steps_run == trains.steps else \
            f" of 0..{trains.steps - 1} (a window: Lava runs at most {window} steps here, --lava-steps)"
        if r.rows.size != r.steps_run:
            text += f", recorded {_every(recording.every)} and the last ({r.rows.size} steps)"
        steps_ran[name] = text
    lap("comparisons")
    if trains.closed:
        distribution = distribution_comparisons(rule, trains, plans, results, progress, fidelity)
        comparisons += distribution
        if distribution:
            d = distribution[0]["ensemble"]
            steps_ran["verdict (distribution ensembles)"] = (
                f"steps 0..{trains.steps - 1} x {d['size']} input seeds per side: "
                + ", ".join(f"{e['reference']} seeds {d['reference_seeds'][0]}..{d['reference_seeds'][1]} -> "
                            f"{e['ensemble']['candidate_runs_as']} seeds {e['ensemble']['candidate_seeds'][0]}.."
                            f"{e['ensemble']['candidate_seeds'][1]}" for e in distribution))
        lap("distribution ensembles")
    # the single fixed run placed in the ensemble: one that ran the whole protocol (emu-fixed beside a window)
    fixed_run = next((results[n] for n in ("lava-fixed", "emu-fixed")
                      if n in results and results[n].steps_run == trains.steps), None)
    fixed_run = fixed_run or next((results[n] for n in ("lava-fixed", "emu-fixed") if n in results), None)
    final_expected = None  # the rounding ensemble's mean and half-width at the last step (curves)
    chain_finals = None  # the fixed-point chain's final weights (ensemble mean, exact, realised): fidelity
    if "fixed" in plans and fixed_run is not None:
        seen = trains
        if trains.closed:  # replayed open loop: the spikes lava-fixed's neurons made, imposed
            seen = dataclasses.replace(with_spikes(trains, fixed_run.info["post_spikes"]), neuron=None, network=None)
        if progress:
            progress.start("verdict", 1, f"fixed-point chain: emu-float realisations, emu-fixed x{ensemble}")
        step = results.get("brian2-step")
        chain_start = time.perf_counter()
        if not ensemble_given and not trains.closed and "brian2" in results:  # resolve the fidelity tolerance
            ensemble = ensemble_for(rule, trains, results["brian2"], fidelity, ensemble)
        chain = quantization_chain(rule, plans, seen, fixed_run, ensemble,
                                   step if step is not None and not trains.closed else None,
                                   unanchored=(f"closed loop: the chain replays {fixed_run.backend}'s own spikes, "
                                               "which brian2-step's run did not make (the lowering entry anchors "
                                               "the float engine where spikes agree)") if trains.closed else None)
        if progress:
            progress.finish()
        for entry in chain:
            chain_finals = entry.pop("_finals", None) or chain_finals
            final = entry.pop("_final", None)
            if final is not None:
                final_expected = final
            entry["single_run"] = fixed_run.backend
            entry["verdict_seconds"] = round(time.perf_counter() - chain_start, 3)  # the whole chain's time
        comparisons += chain
        steps_ran["verdict (internal emulator runs)"] = (
            f"steps 0..{seen.steps - 1}: emu-float x{3 + sum(1 for e in chain for c in e.get('constants', []) if c['sensitivity'] is not None)}"
            f" (exact, realised, best constants, sensitivities), emu-fixed x{ensemble} rounding seeds (one batched call)"
            f", every synapse, compared {_every(chain[-1].get('compared_every', 1))}"
            + (f"; on {fixed_run.backend}'s own post spikes" if trains.closed else ""))
    lap("fixed-point chain (emulator runs)")
    def run_one(name, fine_rule, fine_trains):  # the finer-dt remedy's runs (every step, every synapse)
        with time_limit(timeout):
            return registry.get(name).run(fine_rule, fine_trains, {}, None, Recording(every=fine_trains.steps))

    judging = progress is not None and not trains.closed and bool(fidelity_candidates(results, trains.steps))
    if judging:
        progress.start("verdict", 1, "fidelity: the learned change against brian2 (and measured remedies)")
    fidelity_entries = fidelity_comparisons(rule, trains, results, plans, chain_finals, fidelity, ensemble, run_one)
    if judging:
        progress.finish()
    comparisons[:0] = fidelity_entries  # first: what the deployment learns; then the links that explain it
    nothing = nothing_learned(results)
    if nothing is not None:
        comparisons.insert(0, nothing)
    lap("fidelity")
    proof = proof_statement(results, comparisons, trains.steps)
    counts = update_counts(rule, plan_trains)  # closed loop: of the spikes the plans were scaled on
    post_spikes = int(trains.post.sum()) if not trains.closed else {
        name: int(r.info["post_spikes"].sum()) for name, r in results.items() if "post_spikes" in r.info}
    stats = dict(counts, trace_peaks={name: t["peak"] for name, t in traces.items()},
                 pre_spikes=int(trains.pre.sum()), post_spikes=post_spikes, plans_scaled_on=planned_on)
    if "fixed" in plans:
        fixed = fixed_run
        seen = trains  # closed loop: the post spikes lava-fixed made itself
        if trains.closed and fixed is not None:
            seen = with_spikes(trains, fixed.info["post_spikes"])
        stats["fixed_point_saturation"] = fixed_saturation(plans["fixed"], rule, seen, fixed)
        notes = saturation_notes(stats["fixed_point_saturation"])
        for c in comparisons:
            if c["share"] in ("constants", "rounding", "emulation-fixed") and notes:
                c["warnings"] = notes
    curve = None
    if trains.curve is not None:
        curve = {"x": list(trains.curve["x"]), "x_label": trains.curve["x_label"]}
        pairs = np.array(trains.curve["synapses"])
        w0 = trains.w0[pairs[:, 0], pairs[:, 1]]
        for name, res in results.items():
            if res.steps_run < trains.steps:  # a window has no final weight of the protocol
                steps_ran[name] += "; not in the curve"
                continue
            ii = pairs[:, 0] if res.posts is None else np.searchsorted(res.posts, pairs[:, 0])
            jj = pairs[:, 1] if res.pres is None else np.searchsorted(res.pres, pairs[:, 1])
            curve[name] = (res.trajectory[-1, ii, jj] - w0).tolist()
        reference = next((n for n in ("brian2", "brian2-step") if n in curve), None)  # the model as written
        for name in ("lava-float", "lava-fixed", "lava-cpu", "emu-float", "emu-fixed"):
            if reference is not None and name in curve:
                expected = None
                if name.endswith("-fixed") and final_expected is not None:
                    expected = (final_expected["mean"][pairs[:, 0], pairs[:, 1]] - w0,
                                final_expected["halfwidth"][pairs[:, 0], pairs[:, 1]])
                comparisons.append(judge_curve(curve, reference, name, w_range, expected, rule.dt, fidelity))
    rec_dict = {"every": recording.every, "last_step_always": True,
                "synapses": "all" if recording.posts is None and recording.pres is None else {
                    "posts": list(recording.post_index(trains.n_post)), "pres": list(recording.pre_index(trains.n_pre)),
                    "count": int(len(recording.post_index(trains.n_post)) * len(recording.pre_index(trains.n_pre)))},
                "lava_window_steps": window}
    lap("counts, saturation, curve")
    return Report(rule, trains, results, skipped, plans, comparisons, stats, failed, curve, measured, steps_ran,
                  rec_dict, proof, seconds, fidelity)


def _every(k: int) -> str:
    return "every step" if k == 1 else f"every {k}th step"


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
    from neurodeploy.lava.plan import TRACE_MAX

    from neurodeploy.protocol import decayed_trace

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


#: The emulator twin that stands for a deployed backend in the window check (Lava is the proof on the
#: main protocol; the emulator is the statistics engine).
WINDOW_TWIN = {"lava-float": "emu-float", "lava-fixed": "emu-fixed", "lava-cpu": "brian2-step",
               "emu-float": "emu-float", "emu-fixed": "emu-fixed"}


def window_reason(rule: Rule, trains: SpikeTrains) -> str | None:
    """Why the STDP window is not added to a verify of ``trains`` (None: it is added)."""
    if trains.closed or trains.curve is not None or trains.protocol in ("pairing", "hfs", "lfs"):
        return "the protocol is a pairing protocol, a curve or a closed loop: it shows the timing itself"
    if rule.weight.continuous != 0 or any(t.of in ("reward", "synapse") for t in rule.traces):
        return ("the rule is not a pure spike-timing rule (a continuous term, a synapse or reward trace): "
                "its window alone is not its character")
    if rule.weight.on_pre == 0 and rule.weight.on_post == 0:
        return "the rule changes w at no spike"
    return None


def add_window(report: "Report", progress=None, timeout=None) -> None:
    """Add the STDP window (``stdp-window`` at its defaults: dt from -100 to +100 ms, 10 pairs at 1 Hz)
    to a verify of a spike-timing rule on random trains, which mix LTP and LTD and cannot show the rule's
    character (its sign at dt near 0, the balance of its lobes): brian2 against each deployment's emulator
    twin (:data:`WINDOW_TWIN`), judged as the curve protocol is (``window`` and ``window curve`` entries);
    or a note why not (``steps_ran``)."""
    from neurodeploy.protocol import make_trains, protocol_options

    reason = window_reason(report.rule, report.trains)
    if reason is not None:
        report.steps_ran["stdp window"] = f"not added: {reason}"
        return
    twins = list(dict.fromkeys(WINDOW_TWIN[n] for n in report.results if n in WINDOW_TWIN))
    if not twins:
        return
    trains = make_trains(report.rule, "stdp-window", protocol_options("stdp-window", {}, "window"), 0)
    window = verify(report.rule, trains, ["brian2"] + [t for t in twins if t != "brian2"], progress=progress,
                    timeout=timeout, fidelity=report.fidelity)
    added = []
    for c in window.comparisons:
        if c["share"] in ("fidelity", "curve") and c["reference"] == "brian2":
            c = dict(c, share="window" if c["share"] == "fidelity" else "window curve",
                     protocol="stdp-window (dt -100..100 ms, 10 pairs at 1 Hz), added: random trains mix LTP and LTD")
            added.append(c)
    report.comparisons.extend(added)
    report.steps_ran["stdp window"] = (f"steps 0..{trains.steps - 1} of the stdp-window protocol on brian2, "
                                       + ", ".join(t for t in twins) + " (the deployments' emulator twins)")
