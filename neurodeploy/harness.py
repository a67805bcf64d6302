"""Drive every backend with the same spike trains and compare the trajectories.

Comparisons (each with its own tolerance, normalized by ``w_max - w_min``):

======================  ===============  ==============================================
reference -> candidate  share            tolerance
======================  ===============  ==============================================
brian2 -> brian2-step   timing           :data:`TIMING_TOLERANCE` (same-step pre/post order,
                                         event vs epoch-end clipping)
brian2-step -> lava-float  lowering      :data:`LOWERING_TOLERANCE` + float plan's constant band
lava-float -> lava-fixed   quantization  the fixed plan's predicted band (max and RMSE)
brian2 -> lava-fixed    end to end       timing + quantization
======================  ===============  ==============================================

A trajectory with NaN or inf fails every comparison it is in, naming the
backend and the first bad step.
"""
from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import dataclass, field

import numpy as np

import neurodeploy
from neurodeploy.backends import RunResult, load_all
from neurodeploy.errors import UnsupportedError
from neurodeploy.ir import Rule
from neurodeploy.protocol import SpikeTrains, trace_peaks, update_counts

TIMING_TOLERANCE = 0.05
LOWERING_TOLERANCE = 1e-9
DEFAULT_BACKENDS = ("brian2", "brian2-step", "lava-float", "lava-fixed")
COMPARISONS = (
    ("brian2", "brian2-step", "timing"),
    ("brian2-step", "lava-float", "lowering"),
    ("lava-float", "lava-fixed", "quantization"),
    ("brian2", "lava-fixed", "end-to-end"),
)


def compile_plans(rule: Rule, trains: SpikeTrains | None = None) -> dict:
    """Float and fixed plans for ``rule`` ({} when the learning engine cannot express it).

    Raises UnsupportedError with the reason when it cannot."""
    from neurodeploy.lava.lowering import lower
    from neurodeploy.lava.plan import make_plan

    engine = lower(rule)
    peaks = trace_peaks(rule, trains) if trains is not None else None
    counts = update_counts(rule, trains) if trains is not None else None
    return {mode: make_plan(engine, mode, peaks, counts) for mode in ("float", "fixed")}


def _first_bad_step(trajectory: np.ndarray):
    bad = ~np.isfinite(trajectory.reshape(trajectory.shape[0], -1)).all(axis=1)
    return int(np.argmax(bad)) if bad.any() else None


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
        passed=bool(max_abs / w_range <= tolerance["max_abs"] and rmse / w_range <= tolerance["rmse"]),
    )
    return entry


def _tolerances(plans: dict) -> dict:
    lowering = LOWERING_TOLERANCE + (plans["float"].band["max_abs"] if plans else 0.0)
    quant = dict(plans["fixed"].band) if plans else {"max_abs": 0.0, "rmse": 0.0}
    return {
        "timing": {"max_abs": TIMING_TOLERANCE, "rmse": TIMING_TOLERANCE},
        "lowering": {"max_abs": lowering, "rmse": lowering},
        "quantization": quant,
        "end-to-end": {"max_abs": TIMING_TOLERANCE + quant["max_abs"], "rmse": TIMING_TOLERANCE + quant["rmse"]},
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

    @property
    def passed(self) -> bool:
        return bool(self.results) and all(c["passed"] for c in self.comparisons)

    def to_dict(self) -> dict:
        backends = []
        for name, res in self.results.items():
            backends.append({"name": name, "ran": True, "seconds": round(res.seconds, 3),
                             "steps_per_second": round(res.steps_per_second, 1), "info": res.info})
        for name, reason in self.skipped.items():
            backends.append({"name": name, "ran": False, "reason": reason})
        t = self.trains
        return {
            "neurodeploy_version": neurodeploy.__version__,
            "rule": self.rule.name, "rule_file": self.rule.source, "citation": self.rule.citation,
            "protocol": t.protocol, "seed": t.seed, "rate_hz": t.rate,
            "steps": t.steps, "n_pre": t.n_pre, "n_post": t.n_post,
            "dt_ms": self.rule.dt * 1e3, "t_epoch": self.rule.t_epoch,
            "weight_range": [self.rule.weight.w_min, self.rule.weight.w_max],
            "passed": self.passed,
            "backends": backends,
            "comparisons": self.comparisons,
            "protocol_stats": self.stats,
            "quantization_plan": {m: p.to_dict() for m, p in self.plans.items()},
        }

    def write(self, out_dir: str) -> list:
        """Write trajectories.npz, report.json and report.md atomically into ``out_dir``."""
        from neurodeploy.report import render_markdown

        os.makedirs(out_dir, exist_ok=True)
        data = self.to_dict()
        paths = []
        arrays = {name: res.trajectory for name, res in self.results.items()}
        paths.append(_atomic(out_dir, "trajectories.npz", lambda f: np.savez_compressed(f, **arrays), binary=True))
        paths.append(_atomic(out_dir, "report.md", lambda f: f.write(render_markdown(data))))
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


def verify(rule: Rule, trains: SpikeTrains, backends=DEFAULT_BACKENDS, progress=None) -> Report:
    """Run ``backends`` on ``trains`` and compare them; nothing is written."""
    registry = load_all()
    try:
        plans = compile_plans(rule, trains)
        lava_reason = None
    except UnsupportedError as exc:
        plans, lava_reason = {}, str(exc)
    results, skipped = {}, {}
    for name in backends:
        backend = registry.get(name)
        reason = backend.unsupported_reason(rule)
        if reason is None and name.startswith("lava") and lava_reason:
            reason = lava_reason
        if reason is not None:
            skipped[name] = f"not deployable to the learning engine: {reason}"
            continue
        if progress:
            progress(f"{name}: {trains.steps} steps, {trains.n_post}x{trains.n_pre} synapses")
        results[name] = backend.run(rule, trains, plans)
    tolerances = _tolerances(plans)
    comparisons = [compare(results[a], results[b], share, rule.weight.range, tolerances[share])
                   for a, b, share in COMPARISONS if a in results and b in results]
    stats = dict(update_counts(rule, trains), trace_peaks=trace_peaks(rule, trains),
                 pre_spikes=int(trains.pre.sum()), post_spikes=int(trains.post.sum()))
    return Report(rule, trains, results, skipped, plans, comparisons, stats)
