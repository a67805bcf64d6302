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
import time

import numpy as np

from neurodeploy.backend import Recording
from neurodeploy.compile.compilation import compile_rule
from neurodeploy.errors import NeurodeployError
from neurodeploy.network import with_spikes
from neurodeploy.protocol import SpikeTrains, trace_stats
from neurodeploy.report import Report
from neurodeploy.running import (EMU_TWIN, LAVA_BACKENDS, BackendTimeout, _plan_scaler, _replan, default_backends,
                                 default_recording, lava_window, network_refusals, time_limit)
from neurodeploy.spec.ir import Rule
from neurodeploy.targets import load_all
from neurodeploy.verdict import FAILED, NOT_CHECKED
from neurodeploy.verdict.fidelity import DEFAULT_FIDELITY, ensemble_for, fidelity_comparisons
from neurodeploy.verdict.fidelity import candidates as fidelity_candidates
from neurodeploy.verdict.links import (COMPARISONS, MEASURED, _tolerance, compare, compare_spikes,
                                       distribution_comparisons, fixed_saturation, judge_curve, nothing_learned,
                                       present_grid, proof_statement, saturation_notes)
from neurodeploy.protocol import as_rule, default_trains, make_trains, protocol_options
from neurodeploy.verdict.approximation import approximation_entries
from neurodeploy.verdict.fidelity import check_tolerance
from neurodeploy.verdict.quantization import ENSEMBLE_SIZE, quantization_chain


def _approximates(plans) -> tuple:
    """What the plans approximate, in words (() when they compute the rule exactly)."""
    plan = plans.get("float") or plans.get("fixed")
    return tuple(plan.approximations) if plan is not None else ()


def verify(rule: Rule, trains: SpikeTrains | None = None, backends=None, progress=None,
           timeout: float | None = None, ensemble: int | None = None, record_every: int | None = None,
           record_synapses=None, lava_steps: int | None = None, fidelity: float = DEFAULT_FIDELITY) -> Report:
    """Run ``backends`` on ``trains`` and judge them (:mod:`neurodeploy.verdict`); nothing is written.

    ``timeout``: seconds per backend; a backend that exceeds it is stopped and
    reported as failed, the others' results are kept. ``progress``: a
    :class:`neurodeploy.progress.Progress`, True (one on stderr, as the CLI shows it) or None. ``ensemble``: rounding
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
    from neurodeploy.verdict.timing import timing_verdict

    rule = as_rule(rule)  # a path or a loaded rule
    if progress is True:  # as the CLI shows it, on stderr
        from neurodeploy.progress import Progress

        progress = Progress()
    trains = default_trains(rule) if trains is None else trains
    if not isinstance(trains, SpikeTrains):
        raise NeurodeployError("", "trains", f"must be SpikeTrains (neurodeploy.poisson(...), load_spikes(...)) "
                                             f"(got {type(trains).__name__})")
    try:
        fidelity = check_tolerance(fidelity)
    except ValueError as exc:
        raise NeurodeployError("", "fidelity", str(exc)) from None
    registry = load_all()
    backends = list(backends) if backends is not None else None
    ensemble_given = ensemble is not None
    ensemble = ENSEMBLE_SIZE if ensemble is None else ensemble
    recording = default_recording(trains, record_every, record_synapses)
    window = lava_window(trains, lava_steps)
    if window < trains.steps and window > recording.every:
        window -= (window - 1) % recording.every  # the window's last step is one every backend records
    clock = time.perf_counter()
    seconds = {}

    def lap(name):
        nonlocal clock
        now = time.perf_counter()
        seconds[name] = round(seconds.get(name, 0.0) + now - clock, 3)
        clock = now

    plans = compile_rule(rule, trains)  # the compilation: made once for this traffic, handed down
    traces = plans.traces
    lap("statistics and plans")
    if backends is None:
        backends = list(default_backends(plans))
    if window < trains.steps:  # the emulator carries the whole protocol where Lava runs a window
        for lava, emu in EMU_TWIN.items():
            if lava in backends and emu not in backends:
                backends.append(emu)
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
                plan_trains, traces, plans = _replan(plans, first.info["post_spikes"])
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
            plan_trains, traces, plans = _replan(plans, results[name].info["post_spikes"])
            planned_on = f"the post spikes {name}'s neuron made"
        lap(f"backend {name}")
    w_range = rule.weight.range
    comparisons, measured = [], []

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
            elif share == "lowering" and trains.closed and _approximates(plans):
                # closed loop, an approximating plan: the approximation is a deviation the deployment really
                # has, judged with the others in distribution; the exact link does not exist (measured only)
                entry = compare(ra, rb, share, w_range, None, present_grid(trains, ra))
                entry["message"] = ("the plan approximates the rule (" + "; ".join(_approximates(plans)) + "): no "
                                    "exact lowering to check; in a closed loop the approximation is judged in "
                                    "distribution")
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
            own = fixed_run.info["post_spikes"]
            seen = dataclasses.replace(with_spikes(trains, own), neuron=None, network=None)
            if trains.reward_schedule is not None:  # and the rewards those spikes earned, as the run received them
                sources = seen.pre if trains.network is not None else np.concatenate([trains.pre, own])
                seen = dataclasses.replace(seen, reward=trains.reward_schedule.replay(sources, own),
                                           reward_schedule=None)
        if progress:
            progress.start("verdict", 1, f"fixed-point chain: emu-float realisations, emu-fixed x{ensemble}")
        step = results.get("brian2-step")
        chain_start = time.perf_counter()
        if not ensemble_given and not trains.closed and "brian2" in results:  # resolve the fidelity tolerance
            ensemble = ensemble_for(rule, trains, results["brian2"], fidelity, ensemble, plans.counts)
        # the post neurons any run recorded: a chain on a sample of them keeps these (the fidelity verdict's)
        recorded_posts = np.arange(trains.n_post) if any(r.posts is None for r in results.values()) else \
            np.unique(np.concatenate([np.asarray(r.posts) for r in results.values()]))
        chain = quantization_chain(rule, plans, seen, fixed_run, ensemble,
                                   step if step is not None and not trains.closed else None,
                                   posts=recorded_posts,
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
            + (f", {chain[-1]['sampled']['synapses']} synapses ({chain[-1]['sampled']['posts']} of "
               f"{chain[-1]['sampled']['of_posts']} post neurons, every pre neuron)" if "sampled" in chain[-1]
               else ", every synapse")
            + f", compared {_every(chain[-1].get('compared_every', 1))}"
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
    counts = plans.counts  # closed loop: of the spikes the plans were scaled on
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
                                final_expected["se"][pairs[:, 0], pairs[:, 1]], final_expected["k"])
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
