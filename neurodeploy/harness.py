"""Drive every backend with the same spike trains and compare the trajectories.

Comparisons (each with its own tolerance, normalized by ``w_max - w_min``):

======================  ===============  ==============================================
reference -> candidate  share            tolerance
======================  ===============  ==============================================
brian2 -> brian2-step   timing           :func:`timing_band` (same-step pre/post order,
                                         event vs epoch-end clipping)
brian2-step -> lava-float  lowering      :data:`LOWERING_TOLERANCE` + float plan's constant band
lava-float -> lava-fixed   quantization  the fixed plan's predicted band (max and RMSE)
brian2 -> lava-fixed    end to end       timing + quantization
lava-* -> emu-*         emulation        1e-12 (float), 0 (fixed: bit for bit)
======================  ===============  ==============================================

The emulator backends are compared like their Lava twins (lowering,
quantization, end to end) and against them when both ran.

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
from neurodeploy.files import follow_umask
from neurodeploy.ir import Rule
from neurodeploy.protocol import SpikeTrains, trace_stats, update_counts

#: Smallest timing tolerance (normalized): float rounding of exact vs per-step decay.
TIMING_FLOOR = 1e-9
LOWERING_TOLERANCE = 1e-9
DEFAULT_BACKENDS = ("brian2", "brian2-step", "lava-float", "lava-fixed")
#: The default for rules the learning engine cannot express.
CPU_BACKENDS = ("brian2", "brian2-step", "lava-cpu")
COMPARISONS = (
    ("brian2", "brian2-step", "timing"),
    ("brian2-step", "lava-float", "lowering"),
    ("brian2-step", "lava-cpu", "lowering"),
    ("lava-float", "lava-fixed", "quantization"),
    ("brian2", "lava-fixed", "end-to-end"),
    # the emulator: against the step model like Lava, and against Lava itself
    ("brian2-step", "emu-float", "lowering"),
    ("emu-float", "emu-fixed", "quantization"),
    ("brian2", "emu-fixed", "end-to-end"),
    ("lava-float", "emu-float", "emulation-float"),
    ("lava-fixed", "emu-fixed", "emulation-fixed"),
)
#: emu-float against lava-float (normalized): equal to rounding; emu-fixed against lava-fixed: bit for bit.
EMULATION_TOLERANCE = {"emulation-float": 1e-12, "emulation-fixed": 0.0}


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


def compare(ref: RunResult, cand: RunResult, share: str, w_range: float, tolerance: dict) -> dict:
    """Errors of ``cand`` against ``ref`` over all steps and synapses."""
    entry = {"reference": ref.backend, "candidate": cand.backend, "share": share}
    for result in (ref, cand):
        step = _first_bad_step(result.trajectory)
        if step is not None:
            entry.update(max_abs_error=None, rmse=None, max_abs_error_normalized=None, rmse_normalized=None,
                         tolerance=tolerance, passed=False,
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
        passed=bool(tolerance is None
                    or (max_abs / w_range <= tolerance["max_abs"] and rmse / w_range <= tolerance["rmse"])),
    )
    if tolerance is None:
        entry["message"] = "no predicted band for this rule"
    return entry


def timing_band(rule: Rule, counts: dict) -> float:
    """Predicted brian2 vs brian2-step difference, normalized by the range.

    They differ only at epochs where a synapse sees both a pre and a post
    spike: brian2 evaluates ``on_pre`` before the post traces jump, the
    engine after. Per such epoch the difference is at most
    ``|f_pre(y + J_y) - f_pre(y)|``, bounded here with pre traces at 0, post
    traces at their jump and ``w`` at either bound; it adds up over the
    synapse's coincident epochs (x1.5 for the clipping order). Floor
    :data:`TIMING_FLOOR` (float rounding of event-driven vs per-step decay).
    """
    import sympy

    if rule.traces_of("synapse") or rule.has_reward:
        # not modelled: a synapse trace's one-step lag feeds w through the continuous term; a
        # reward trace scales the coincidence difference by its (input-dependent) value
        return None
    w = sympy.Symbol("w", real=True)
    expr = rule.numeric(rule.weight.on_pre)
    per_event = 0.0
    zero = {sympy.Symbol(t.name, real=True): t.rest for t in rule.traces}

    def jump(t):
        return float(rule.numeric(t.jump_of()).xreplace(zero)) if t.state_dependent else t.jump

    for w_value in (rule.weight.w_min, rule.weight.w_max):
        subs = {sympy.Symbol(t.name, real=True): (t.rest + jump(t) if t.of == "post" else t.rest) for t in rule.traces}
        subs[w] = w_value
        before = dict(zero)
        before[w] = w_value
        try:
            diff = abs(float(expr.xreplace(subs)) - float(expr.xreplace(before)))
        except (TypeError, ValueError):
            diff = rule.weight.range
        per_event = max(per_event, diff)
    band = 1.5 * counts.get("max_coincident_per_synapse", 0) * per_event / rule.weight.range
    return min(1.0, max(TIMING_FLOOR, band))


def _tolerances(plans: dict, timing: float) -> dict:
    lowering = LOWERING_TOLERANCE + (plans["float"].band["max_abs"] if plans else 0.0)
    quant = dict(plans["fixed"].band) if plans else {"max_abs": 0.0, "rmse": 0.0}
    return {
        # None: not predicted, shown and not checked
        "timing": {"max_abs": timing, "rmse": timing} if timing is not None else None,
        "lowering": {"max_abs": lowering, "rmse": lowering},
        "quantization": quant,
        "end-to-end": ({"max_abs": timing + quant["max_abs"], "rmse": timing + quant["rmse"]}
                       if timing is not None else None),
        **{share: {"max_abs": tol, "rmse": tol} for share, tol in EMULATION_TOLERANCE.items()},
    }


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

    @property
    def passed(self) -> bool:
        return bool(self.results) and not self.failed and all(c["passed"] for c in self.comparisons)

    def to_dict(self) -> dict:
        from neurodeploy.lava.plan import engine_reason

        backends = []
        for name, res in self.results.items():
            info = {k: v for k, v in res.info.items() if k != "post_spikes"}  # rasters go to the .npz
            backends.append({"name": name, "ran": True, "seconds": round(res.seconds, 3),
                             "steps_per_second": round(res.steps_per_second, 1), "info": info})
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
            "passed": self.passed,
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
        follow_umask(fd)  # mkstemp's 600 -> the mode a normal file gets
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
           timeout: float | None = None) -> Report:
    """Run ``backends`` on ``trains`` and compare them; nothing is written.

    ``timeout``: seconds per backend; a backend that exceeds it is stopped and
    reported as failed, the others' results are kept. ``progress``: a
    :class:`neurodeploy.progress.Progress` (or None)."""
    registry = load_all()
    backends = default_backends(rule) if backends is None else backends
    traces = trace_stats(rule, trains)
    try:
        plans = compile_plans(rule, trains, traces)
    except UnsupportedError:
        plans = {}
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
    counts = update_counts(rule, trains)
    # closed loop: the post spikes are the backends' own; the timing band assumes imposed ones
    tolerances = _tolerances(plans, timing_band(rule, counts) if trains.neuron is None else None)
    comparisons = []
    for a, b, share in COMPARISONS:
        if a in results and b in results:
            comparisons.append(compare(results[a], results[b], share, rule.weight.range, tolerances[share]))
            if trains.neuron is not None:
                entry = comparisons[-1]
                entry["post_spikes"] = spikes = compare_spikes(results[a], results[b], rule.dt)
                if spikes["first_difference_step"] is not None and share != "lowering":
                    # no band models diverging spike trains: reported, not checked (the lowering
                    # must still give the same spikes)
                    entry.update(tolerance=None, passed=entry["max_abs_error"] is not None,
                                 message=f"post spikes differ from step {spikes['first_difference_step']}: "
                                         f"{spikes['counts'][0]} vs {spikes['counts'][1]} spikes")
        elif (a in failed or b in failed) and {a, b} <= set(results) | set(failed):
            which = a if a in failed else b
            comparisons.append({"reference": a, "candidate": b, "share": share, "max_abs_error": None, "rmse": None,
                                "max_abs_error_normalized": None, "rmse_normalized": None,
                                "tolerance": tolerances[share], "passed": False,
                                "message": f"{which}: {failed[which]}"})
    post_spikes = int(trains.post.sum()) if trains.neuron is None else {
        name: int(r.info["post_spikes"].sum()) for name, r in results.items() if "post_spikes" in r.info}
    stats = dict(counts, trace_peaks={name: t["peak"] for name, t in traces.items()},
                 pre_spikes=int(trains.pre.sum()), post_spikes=post_spikes)
    if "fixed" in plans:
        fixed = results.get("lava-fixed")
        seen = trains  # closed loop: the post spikes lava-fixed made itself
        if trains.neuron is not None and fixed is not None:
            seen = dataclasses.replace(trains, post=fixed.info["post_spikes"])
        stats["fixed_point_saturation"] = fixed_saturation(plans["fixed"], rule, seen, fixed)
        notes = saturation_notes(stats["fixed_point_saturation"])
        for c in comparisons:
            if "lava-fixed" in (c["reference"], c["candidate"]) and notes:
                c["warnings"] = notes
    curve = None
    if trains.curve is not None:
        curve = {"x": list(trains.curve["x"]), "x_label": trains.curve["x_label"]}
        pairs = np.array(trains.curve["synapses"])
        w0 = trains.w0[pairs[:, 0], pairs[:, 1]]
        for name, res in results.items():
            curve[name] = (res.trajectory[-1, pairs[:, 0], pairs[:, 1]] - w0).tolist()
        for c in comparisons:
            if c["reference"] in curve and c["candidate"] in curve:
                diff = np.abs(np.array(curve[c["candidate"]]) - np.array(curve[c["reference"]]))
                c["curve_max_abs_error_normalized"] = float(diff.max()) / rule.weight.range
    return Report(rule, trains, results, skipped, plans, comparisons, stats, failed, curve)


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

    traces = {}
    for t in plan.traces:
        trace = rule.trace(t.name)
        raster = trains.pre if trace.of == "pre" else trains.post
        decay = np.exp(-1.0 / t.tau_steps)
        value = np.zeros(raster.shape[0])
        count = 0
        for step in range(raster.shape[1]):
            value = value * decay + t.impulse * raster[:, step]
            count += int(np.sum(value >= TRACE_MAX))
        traces[t.slot] = count
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
