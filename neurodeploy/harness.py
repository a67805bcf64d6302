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
from dataclasses import dataclass, field

import numpy as np

import neurodeploy
from neurodeploy.backends import RunResult, load_all
from neurodeploy.errors import UnsupportedError
from neurodeploy.ir import Rule
from neurodeploy.protocol import SpikeTrains, trace_stats, update_counts
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
#: A curve (dw per protocol point) may differ from the reference curve by this fraction of its amplitude.
CURVE_TOLERANCE = 0.2
#: A curve point where the reference changes by at least this fraction of the amplitude and the
#: candidate not at all fails the curve.
CURVE_ZERO_FRACTION = 0.1


def default_backends(rule: Rule) -> tuple:
    """:data:`DEFAULT_BACKENDS` when the learning engine can express ``rule``, else :data:`CPU_BACKENDS`."""
    from neurodeploy.lava.plan import engine_reason

    return CPU_BACKENDS if engine_reason(rule) else DEFAULT_BACKENDS


def compile_plans(rule: Rule, trains: SpikeTrains | None = None, stats: dict | None = None) -> dict:
    """Float and fixed plans for ``rule``, scaled on ``trains`` (``stats``: their
    :func:`~neurodeploy.protocol.trace_stats`, if already computed).

    Raises UnsupportedError with the reason when the learning engine cannot express the rule,
    or cannot realise every float constant exactly (as :func:`neurodeploy.lava.plan.engine_reason`)."""
    from neurodeploy.lava.plan import inexact_reason

    plans = scale_plans(rule, trains, stats)
    reason = inexact_reason(plans["float"])
    if reason is not None:
        raise UnsupportedError(reason)
    return plans


def scale_plans(rule: Rule, trains: SpikeTrains | None = None, stats: dict | None = None) -> dict:
    """:func:`compile_plans` without the exactness check (a plan whose float constants are
    approximate still runs on Lava and its emulator)."""
    from neurodeploy.lava.lowering import lower
    from neurodeploy.lava.plan import make_plan

    engine = lower(rule)
    peaks, counts = None, None
    if trains is not None:
        stats = stats if stats is not None else trace_stats(rule, trains)
        peaks = {name: s["peak"] for name, s in stats.items()}
        counts = dict(update_counts(rule, trains), trace_means={name: s["mean"] for name, s in stats.items()})
    try:
        return {mode: make_plan(engine, mode, peaks, counts) for mode in ("float", "fixed")}
    except (OverflowError, ZeroDivisionError, ValueError) as exc:
        raise UnsupportedError(f"the rule's constants are outside what the learning engine can scale ({exc})") from None


def _first_bad_step(trajectory: np.ndarray):
    bad = ~np.isfinite(trajectory.reshape(trajectory.shape[0], -1)).all(axis=1)
    return int(np.argmax(bad)) if bad.any() else None


def compare_spikes(ref: RunResult, cand: RunResult, dt: float) -> dict:
    """Closed loop: how the two backends' post spike trains differ (reported, not a pass/fail)."""
    a, b = ref.info["post_spikes"], cand.info["post_spikes"]
    differ = np.flatnonzero((a != b).any(axis=0))
    seconds = a.shape[1] * dt
    return {"first_difference_step": int(differ[0]) if differ.size else None,
            "steps_that_differ": int(differ.size),
            "counts": [int(a.sum()), int(b.sum())],
            "rate_hz": [float(a.sum() / a.shape[0] / seconds), float(b.sum() / b.shape[0] / seconds)]}


def compare(ref: RunResult, cand: RunResult, share: str, w_range: float, tolerance: dict | None) -> dict:
    """Errors of ``cand`` against ``ref`` over all steps and synapses, judged against ``tolerance``
    (None: measured only, outcome "not checked"; above :data:`~neurodeploy.verdict.MAX_TOLERANCE`:
    not checked, tolerance too wide)."""
    entry = {"reference": ref.backend, "candidate": cand.backend, "share": share}
    for result in (ref, cand):
        step = _first_bad_step(result.trajectory)
        if step is not None:
            entry.update(max_abs_error=None, rmse=None, max_abs_error_normalized=None, rmse_normalized=None,
                         tolerance=tolerance, passed=False, outcome=FAILED,
                         message=f"{result.backend}: non-finite weight at step {step}")
            return entry
    diff = np.abs(cand.trajectory - ref.trajectory)
    max_abs = float(diff.max())
    rmse = float(np.sqrt(np.mean(diff ** 2)))
    worst = np.unravel_index(int(np.argmax(diff)), diff.shape)
    entry.update(
        max_abs_error=max_abs, rmse=rmse,
        max_abs_error_normalized=max_abs / w_range, rmse_normalized=rmse / w_range,
        worst_step=int(worst[0]), worst_synapse=[int(worst[1]), int(worst[2])],
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
        tol = LOWERING_TOLERANCE + (plans["float"].band["max_abs"] if plans else 0.0)
        return {"max_abs": tol, "rmse": tol}
    tol = EMULATION_TOLERANCE[share]
    return {"max_abs": tol, "rmse": tol}


def judge_curve(curve: dict, reference: str, candidate: str, w_range: float) -> dict:
    """A candidate's protocol curve against the reference's, relative to the reference curve's amplitude."""
    ref = np.asarray(curve[reference], dtype=float)
    cand = np.asarray(curve[candidate], dtype=float)
    amplitude = float(np.max(np.abs(ref))) if ref.size else 0.0
    diff = np.abs(cand - ref)
    entry = {"reference": reference, "candidate": candidate, "share": "curve",
             "max_abs_error_normalized": float(diff.max()) / w_range if diff.size else 0.0,
             "rmse_normalized": float(np.sqrt(np.mean(diff ** 2))) / w_range if diff.size else 0.0,
             "amplitude_normalized": amplitude / w_range,
             "tolerance": {"max_abs": CURVE_TOLERANCE * amplitude / w_range, "rmse": None,
                           "kind": f"{CURVE_TOLERANCE:g} of the curve's amplitude"}}
    if not np.isfinite(cand).all():
        entry.update(outcome=FAILED, passed=False, message=f"{candidate}: non-finite curve point")
        return entry
    zero = [(curve["x"][k], float(ref[k])) for k in range(ref.size) if ref[k] != 0 and cand[k] == 0]
    entry["curve_rel_error"] = float(diff.max()) / amplitude if amplitude > 0 else None
    entry["zero_where_reference_is_not"] = [x for x, _ in zero]
    if amplitude == 0:
        entry.update(outcome=NOT_CHECKED, message="the reference curve is flat: no amplitude to judge against")
    else:
        lost = [x for x, v in zero if abs(v) >= CURVE_ZERO_FRACTION * amplitude]
        problems = []
        if diff.max() > CURVE_TOLERANCE * amplitude:
            k = int(np.argmax(diff))
            problems.append(f"{curve['x_label']} {curve['x'][k]:g}: {cand[k]:.4g} vs {ref[k]:.4g} "
                            f"({100 * diff[k] / amplitude:.3g}% of the amplitude)")
        if lost:
            problems.append(f"zero where the reference is not at {curve['x_label']} "
                            + ", ".join(f"{x:g}" for x in lost))
        entry["outcome"] = FAILED if problems else PASSED
        if problems:
            entry["message"] = "; ".join(problems)
        elif zero:
            entry["message"] = (f"zero where the reference is not (below {CURVE_ZERO_FRACTION:g} of the amplitude) "
                                f"at {curve['x_label']} " + ", ".join(f"{x:g}" for x, _ in zero))
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
        from neurodeploy.lava.plan import engine_reason

        backends = []
        for name, res in self.results.items():
            info = {k: v for k, v in res.info.items() if k != "post_spikes"}  # rasters go to the .npz
            backends.append({"name": name, "ran": True, "seconds": round(res.seconds, 3),
                             "steps_per_second": round(res.steps_per_second, 1), "info": info,
                             "steps": [0, int(res.trajectory.shape[0])]})
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
            "steps_ran": self.steps_ran, "measured": self.measured,
            "engine": engine_reason(self.rule),  # None: the learning engine runs the rule
            "backends": backends,
            "comparisons": self.comparisons,
            "protocol_stats": self.stats,
            "quantization_plan": {m: p.to_dict() for m, p in self.plans.items()},
            **({"curve": self.curve} if self.curve is not None else {}),
            **({"neuron": self.trains.neuron} if self.trains.neuron is not None else {}),
        }

    def write(self, out_dir: str) -> list:
        """Write trajectories.npz, report.json and report.md atomically into ``out_dir``."""
        from neurodeploy.report import render_markdown

        os.makedirs(out_dir, exist_ok=True)
        data = self.to_dict()
        paths = []
        arrays = {name: res.trajectory for name, res in self.results.items()}
        # closed loop: each backend's post spikes, "<backend>:post_spikes" (n_post, steps)
        rasters = {f"{name}:post_spikes": res.info["post_spikes"] for name, res in self.results.items()
                   if "post_spikes" in res.info}
        paths.append(_atomic(out_dir, "trajectories.npz", lambda f: np.savez_compressed(f, **arrays, **rasters),
                             binary=True))
        from neurodeploy.plots import write_plots

        for name in ("trajectories.png", "errors.png", "curve.png", "quantization.png"):  # none stale
            if os.path.isfile(os.path.join(out_dir, name)):
                os.unlink(os.path.join(out_dir, name))
        figures = write_plots(data, arrays, out_dir)
        paths += [os.path.join(out_dir, f) for f in figures]
        paths.append(_atomic(out_dir, "report.md", lambda f: f.write(render_markdown(data, figures))))
        # report.json last: its presence means the others are complete
        paths.append(_atomic(out_dir, "report.json",
                             lambda f: f.write(json.dumps(_jsonable(data), indent=2, sort_keys=True) + "\n")))
        return paths


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
        with os.fdopen(fd, "wb" if binary else "w") as handle:
            write(handle)
        os.replace(tmp, final)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return final


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


def verify(rule: Rule, trains: SpikeTrains, backends=None, progress=None,
           timeout: float | None = None, ensemble: int | None = None) -> Report:
    """Run ``backends`` on ``trains`` and judge them (:mod:`neurodeploy.verdict`); nothing is written.

    ``timeout``: seconds per backend; a backend that exceeds it is stopped and
    reported as failed, the others' results are kept. ``progress``: a
    :class:`neurodeploy.progress.Progress` (or None). ``ensemble``: rounding
    seeds of the fixed-point verdict (default
    :data:`neurodeploy.verdict.quantization.ENSEMBLE_SIZE`).

    Closed loop: the plans are scaled on the post spikes the first backend's
    neuron made (``brian2`` by default), not on the imposed raster; the
    fixed-point chain replays lava-fixed's own spikes."""
    from neurodeploy.verdict.quantization import ENSEMBLE_SIZE, quantization_chain
    from neurodeploy.verdict.timing import timing_verdict

    registry = load_all()
    backends = default_backends(rule) if backends is None else backends
    ensemble = ENSEMBLE_SIZE if ensemble is None else ensemble
    traces = trace_stats(rule, trains)
    try:
        plans = compile_plans(rule, trains, traces)
    except UnsupportedError:
        plans = {}
    planned_on = "the protocol's spike trains"
    results, skipped, failed = {}, {}, {}
    for name in backends:
        backend = registry.get(name)
        reason = backend.unsupported_reason(rule) or backend.unsupported_trains(trains)
        if reason is not None:
            skipped[name] = reason
            continue
        if progress:
            progress.start(name, trains.steps, f"{trains.steps} steps, {trains.n_post}x{trains.n_pre} synapses")
        try:
            with time_limit(timeout):
                results[name] = backend.run(rule, trains, plans, progress.update if progress else None)
        except BackendTimeout:
            failed[name] = f"timed out after {timeout:g} s"
        finally:
            if progress:
                progress.finish()
        if trains.neuron is not None and name in results and planned_on.startswith("the protocol"):
            # the second pass: scale the plans on the spikes a neuron actually made
            made = dataclasses.replace(trains, post=results[name].info["post_spikes"])
            traces = trace_stats(rule, made)
            try:
                plans = compile_plans(rule, made, traces)
            except UnsupportedError:
                plans = {}
            planned_on = f"the post spikes {name}'s neuron made"
    w_range = rule.weight.range
    comparisons, measured = [], []
    for a, b, share in COMPARISONS:
        if a in results and b in results:
            ra, rb = results[a], results[b]
            spikes = compare_spikes(ra, rb, rule.dt) if trains.neuron is not None else None
            parted = spikes is not None and spikes["first_difference_step"] is not None
            if share == "timing":
                if parted:
                    entry = compare(ra, rb, share, w_range, None)
                    entry.update(outcome=NOT_CHECKED, passed=False,
                                 message=f"post spikes part from step {spikes['first_difference_step']}: "
                                         f"{spikes['counts'][0]} vs {spikes['counts'][1]} spikes")
                else:
                    seen = trains if spikes is None else dataclasses.replace(trains, post=ra.info["post_spikes"])
                    entry = timing_verdict(rule, seen, ra, rb, {n: t["peak"] for n, t in trace_stats(rule, seen).items()}
                                           if spikes is not None else {n: t["peak"] for n, t in traces.items()})
            else:
                # the lowering and the emulation must agree exactly, spikes included
                entry = compare(ra, rb, share, w_range, _tolerance(share, plans))
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
            m = compare(results[a], results[b], share, w_range, None)
            measured.append({k: v for k, v in m.items() if k not in ("outcome", "passed", "message", "tolerance")})
    steps_ran = {name: f"steps 0..{r.trajectory.shape[0] - 1}" for name, r in results.items()}
    fixed_run = next((results[n] for n in ("lava-fixed", "emu-fixed") if n in results), None)
    if "fixed" in plans and fixed_run is not None:
        seen = trains
        if trains.neuron is not None:
            seen = dataclasses.replace(trains, post=fixed_run.info["post_spikes"], neuron=None)
        if progress:
            progress.start("verdict", 1, f"fixed-point chain: emu-float realisations, emu-fixed x{ensemble}")
        chain = quantization_chain(rule, plans, seen, fixed_run.trajectory, ensemble)
        if progress:
            progress.finish()
        for entry in chain:
            entry["single_run"] = fixed_run.backend
        comparisons += chain
        steps_ran["verdict (internal emulator runs)"] = (
            f"steps 0..{seen.steps - 1}: emu-float x{3 + sum(1 for c in chain[0]['constants'] if c['sensitivity'] is not None)}"
            f" (exact, realised, best constants, sensitivities), emu-fixed x{ensemble} rounding seeds"
            + (f"; on {fixed_run.backend}'s own post spikes" if trains.neuron is not None else ""))
    counts = update_counts(rule, trains)
    post_spikes = int(trains.post.sum()) if trains.neuron is None else {
        name: int(r.info["post_spikes"].sum()) for name, r in results.items() if "post_spikes" in r.info}
    stats = dict(counts, trace_peaks={name: t["peak"] for name, t in traces.items()},
                 pre_spikes=int(trains.pre.sum()), post_spikes=post_spikes, plans_scaled_on=planned_on)
    if "fixed" in plans:
        fixed = results.get("lava-fixed") or results.get("emu-fixed")
        seen = trains  # closed loop: the post spikes lava-fixed made itself
        if trains.neuron is not None and fixed is not None:
            seen = dataclasses.replace(trains, post=fixed.info["post_spikes"])
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
            curve[name] = (res.trajectory[-1, pairs[:, 0], pairs[:, 1]] - w0).tolist()
        reference = next((n for n in ("brian2-step", "brian2") if n in curve), None)
        for name in ("lava-float", "lava-fixed", "lava-cpu", "emu-float", "emu-fixed"):
            if reference is not None and name in curve:
                comparisons.append(judge_curve(curve, reference, name, w_range))
    return Report(rule, trains, results, skipped, plans, comparisons, stats, failed, curve, measured, steps_ran)


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
