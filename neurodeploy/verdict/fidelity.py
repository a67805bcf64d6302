"""The fidelity verdict: does the deployment learn what the user's model learns?

The reference is ``brian2``, the rule as written (event-driven where Brian2 runs it so, Brian2's
own order of same-step pre/post spikes). A candidate is a deployment (``lava-float``,
``lava-fixed``, ``lava-cpu``) or its emulator twin. What is judged is the **learned change**
``dw = w(end) - w(0)`` of every synapse both recorded, over the steps both ran, in the terms a
scientist uses, each relative to the *reference's* learned change, never to the weight range:

.. math::

    S = \\sqrt{\\langle dw_{ref}^2 \\rangle}, \\quad
    g = \\frac{\\langle dw_{cand}\\, dw_{ref} \\rangle}{\\langle dw_{ref}^2 \\rangle}, \\quad
    e_{net} = \\frac{|\\langle dw_{cand} \\rangle - \\langle dw_{ref} \\rangle|}{S}, \\quad
    r = \\mathrm{corr}(dw_{cand}, dw_{ref})

* **gain** ``g``: how much of the reference's learned change the deployment learns (1: all of it,
  0: nothing, negative: the opposite); passes within ``1 +- f``;
* **net change** ``e_net``: the error of the mean learned change (its sign and size: the balance
  of potentiation and depression that decides what an additive network learns), in units of the
  reference's per-synapse change; passes at ``<= f``;
* **agreement across synapses** ``r`` (three synapses or more): the same synapses learn; passes at
  ``>= 1 - f``.

``f`` is the one fidelity tolerance (:data:`DEFAULT_FIDELITY`, ``verify --fidelity``). All three
margins come from ``f`` and the reference; the only other term is, for a fixed-point candidate, the
statistical resolution of its expected change (below), predicted from the rule's weight bounds and
the reference-side spike counts, never from the candidate's own spikes, plan or spread.

A fixed-point candidate is judged on its **expected** learned change: the mean of the rounding
ensemble (emu-fixed with ``K`` rounding seeds, the same plan and spikes; the single deployed run is
proven bit for bit equal to the emulator by the emulation link and inside the ensemble's envelope by
the rounding link). One run's rounding scatter (mean zero) is reported beside it, not judged: it is
noise of the deployment, not a change of what it learns. The ensemble mean's own resolution,
``z * (step / 2) * sqrt(updates / K)`` per synapse (one 8-bit weight step ``step`` of the rule's
bounds, at most half a step of stochastic rounding per update, the reference-side update count),
widens the gain and net margins by its standard error over the synapses.

Attribution (:func:`attribution`): the end-to-end deviation ``D = dw_cand - dw_ref`` is the sum of the
links' deviations (timing: brian2 -> brian2-step; lowering: -> the float engine; constants: -> the
realised constants; rounding: -> the fixed-point ensemble mean); each link's share is its projection
on ``D`` (``<d_k, D> / <D, D>``; the shares sum to 1). A share explains; it never waives.
"""
from __future__ import annotations

import math

import numpy as np

from neurodeploy.verdict import FAILED, NOT_CHECKED, PASSED
from neurodeploy.protocol import update_counts

#: Default fidelity tolerance: the deployment's learned change may differ from the reference's by this
#: fraction (gain within 1 +- f, net change within f of the per-synapse change, correlation >= 1 - f).
#: Why 0.2: the engine's order of same-step pre/post spikes alone moves the net change of additive STDP
#: at 10 Hz, dt = 1 ms, 2000 steps by 0.106 of the per-synapse change (median over 20 untuned seeds; up to
#: 0.17, gain down to 0.88): at 0.1 half the seeds of such a deployment would fail on a coin toss of
#: coincidences; 0.2 still fails a deployment that learns the opposite, nothing, 80% or less, or a net
#: drift of more than a fifth of the change (the 20 Hz case: 0.26). ``--fidelity 0.1`` is stricter and
#: then reports the finer dt that meets it.
DEFAULT_FIDELITY = 0.2
#: Standard errors of the fixed-point ensemble mean's resolution allowed on the gain and the net change.
RESOLUTION_Z = 4.0
#: Below this many synapses the correlation is not judged (it is not defined for one, trivial for two).
MIN_SYNAPSES_FOR_CORRELATION = 3
#: The order of the attribution's links.
LINKS = ("timing", "lowering", "constants", "rounding")
LINK_WORDS = {
    "timing": "the engine's step order (same-step pre/post pairs, epoch sampling): brian2 -> brian2-step",
    "lowering": "the lowering onto the engine's products: brian2-step -> the float engine",
    "constants": "fixed-point constants (dropped terms, S*2^E realisations): float engine -> realised constants",
    "rounding": "fixed-point rounding (traces, weights): realised constants -> the fixed-point ensemble mean",
}


def check_tolerance(value) -> float:
    """The fidelity tolerance as a float in (0, 1), or ValueError with the reason."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"must be a number in (0, 1) (got {value!r})")
    if not 0 < value < 1:
        raise ValueError(f"must be in (0, 1) (got {value:g})")
    return float(value)


def final_change(res, w0: np.ndarray, row_step: int) -> np.ndarray:
    """(len(posts), len(pres)) learned change of ``res`` (a RunResult) at recorded step ``row_step``."""
    k = int(np.searchsorted(res.rows, row_step))
    if k >= res.rows.size or res.rows[k] != row_step:
        raise ValueError(f"{res.backend} did not record step {row_step}")
    grid = np.ix_(np.arange(w0.shape[0]) if res.posts is None else res.posts,
                  np.arange(w0.shape[1]) if res.pres is None else res.pres)
    return np.asarray(res.trajectory[k], dtype=float) - w0[grid]


def _mean_updates(rule, trains, counts: dict | None) -> float:
    """Mean weight updates per synapse on ``trains``: the compilation's ``counts`` when given (the same
    traffic), else counted."""

    return (counts if counts else update_counts(rule, trains))["mean_updates"]


def resolution(rule, plan, trains, ensemble: int, counts: dict | None = None) -> float:
    """Per-synapse standard error (rule units) of a fixed-point ensemble mean's learned change:
    ``(step / 2) * sqrt(mean updates / K)``, from the rule's bounds (one 8-bit step of the larger
    bound) and the reference-side spike counts (the updates per synapse)."""
    if plan is None or ensemble < 1:
        return 0.0
    step = max(abs(rule.weight.w_min), abs(rule.weight.w_max)) / 255.0
    updates = _mean_updates(rule, trains, counts)
    return 0.5 * step * math.sqrt(max(updates, 1.0) / ensemble)


#: The rounding ensemble grows (from the default) until its mean resolves a quarter of the fidelity tolerance,
#: up to this many runs and :data:`ENSEMBLE_SYNAPSE_RUNS` synapse-runs.
ENSEMBLE_MAX, ENSEMBLE_SYNAPSE_RUNS = 1024, 4_000_000


def ensemble_for(rule, trains, reference, tolerance: float, default: int, counts: dict | None = None) -> int:
    """Rounding seeds the fixed-point chain needs so that its mean resolves the fidelity tolerance:
    ``RESOLUTION_Z`` standard errors of the gain (:func:`resolution`) at most a quarter of ``tolerance``,
    from the reference's learned change (``reference``: brian2's RunResult), the rule's bounds and the
    reference-side update counts; at least ``default``, at most :data:`ENSEMBLE_MAX` and
    :data:`ENSEMBLE_SYNAPSE_RUNS` / synapses."""
    last = trains.steps - 1
    if reference.steps_run < trains.steps or reference.rows[-1] != last:
        return default
    w0 = np.asarray(trains.w0, dtype=float)
    posts, pres = _grid(reference, trains.n_post, trains.n_pre)
    keep = trains.present()[np.ix_(posts, pres)].reshape(-1)
    dw = final_change(reference, w0, last).reshape(-1)[keep]
    S = float(np.sqrt(np.mean(dw ** 2))) if dw.size else 0.0
    if S <= 0 or not math.isfinite(S):
        return default
    step = max(abs(rule.weight.w_min), abs(rule.weight.w_max)) / 255.0
    sd_run = 0.5 * step * math.sqrt(max(_mean_updates(rule, trains, counts), 1.0))
    need = (RESOLUTION_Z * sd_run / (S * math.sqrt(dw.size)) / (tolerance / 4)) ** 2
    cap = max(default, min(ENSEMBLE_MAX, ENSEMBLE_SYNAPSE_RUNS // max(1, trains.n_pre * trains.n_post)))
    return int(min(cap, max(default, math.ceil(need))))


def learned_stats(dw: np.ndarray) -> dict:
    return {"net": float(np.mean(dw)), "rms": float(np.sqrt(np.mean(dw ** 2))),
            "potentiated": int(np.sum(dw > 0)), "depressed": int(np.sum(dw < 0))}


def judge(ref_dw: np.ndarray, cand_dw: np.ndarray, tolerance: float, w_range: float,
          per_synapse_se: float = 0.0, floor: float = 0.0) -> dict:
    """The fidelity statistics of ``cand_dw`` against ``ref_dw`` (1-D, the compared synapses) and the
    outcome. ``per_synapse_se``: the candidate's statistical resolution per synapse (rule units, from
    :func:`resolution`); ``floor``: the smallest change the candidate can show at all (rule units):
    below it a reference that learns nothing is matched by a candidate that learns nothing."""
    n = ref_dw.size
    ref, cand = learned_stats(ref_dw), learned_stats(cand_dw)
    out = {"synapses": int(n), "reference_learned": ref, "candidate_learned": cand}
    if n == 0:
        return dict(out, outcome=NOT_CHECKED, message="no synapse compared")
    if not np.isfinite(cand_dw).all():
        return dict(out, outcome=FAILED, message="non-finite learned change")
    S = ref["rms"]
    diff = cand_dw - ref_dw
    out["max_abs_error_normalized"] = float(np.max(np.abs(diff))) / w_range
    out["rmse_normalized"] = float(np.sqrt(np.mean(diff ** 2))) / w_range
    if S <= 1e-12 * w_range:
        if cand["rms"] <= max(1e-9 * w_range, floor):
            return dict(out, outcome=NOT_CHECKED,
                        message="the reference learns nothing on this protocol (and neither does the candidate)")
        return dict(out, outcome=FAILED, message=f"learns (rms change {cand['rms']:.3g}) where the model learns "
                                                 f"nothing (rms {S:.3g})")
    gain = float(np.dot(cand_dw, ref_dw) / np.dot(ref_dw, ref_dw))
    net_error = abs(cand["net"] - ref["net"]) / S
    scatter = float(np.sqrt(np.mean(diff ** 2))) / S
    se = per_synapse_se / S / math.sqrt(n)  # the ensemble mean's resolution of the gain and the net change
    allow = RESOLUTION_Z * se
    big = np.abs(ref_dw) >= tolerance * S
    sign_agree = float(np.mean(np.sign(cand_dw[big]) == np.sign(ref_dw[big]))) if big.any() else None
    corr = None
    if n >= MIN_SYNAPSES_FOR_CORRELATION and np.std(ref_dw) > 0 and np.std(cand_dw) > 0:
        corr = float(np.corrcoef(cand_dw, ref_dw)[0, 1])
    elif n >= MIN_SYNAPSES_FOR_CORRELATION and np.std(ref_dw) > 0:
        corr = 0.0  # the candidate learns the same change everywhere: no agreement across synapses
    out.update(gain=gain, net_error=net_error, scatter=scatter, correlation=corr, sign_agreement=sign_agree,
               net_sign=[int(np.sign(ref["net"])), int(np.sign(cand["net"]))],
               tolerance={"fidelity": tolerance, "gain": [1 - tolerance - allow, 1 + tolerance + allow],
                          "net_error": tolerance + allow,
                          "correlation": None if corr is None else 1 - tolerance,
                          "resolution_se": se,
                          "kind": f"{tolerance:g} of the reference's learned change"
                                  + (f" (+ {RESOLUTION_Z:g} standard errors of the ensemble mean: {allow:.3g})"
                                     if allow else "")})
    problems = []
    if cand["rms"] == 0:  # no rounding makes an expected change exactly zero: nothing is learned, at any resolution
        problems.append(f"learns nothing: every synapse ends where it started (the model's change: rms {S:.3g})")
    elif not (1 - tolerance - allow <= gain <= 1 + tolerance + allow):
        what = ("the opposite of" if gain < 0 else "nothing of" if abs(gain) < tolerance else
                f"{100 * gain:.0f}% of")
        problems.append(f"learns {what} the model's change (gain {gain:.3g}, allowed 1 +- {tolerance + allow:.3g})")
    if net_error > tolerance + allow:
        flipped = np.sign(cand["net"]) == -np.sign(ref["net"]) != 0 and abs(ref["net"]) >= tolerance * S
        problems.append(f"net change {cand['net']:+.4g} vs {ref['net']:+.4g}"
                        + (" (the opposite sign)" if flipped else "")
                        + f": {net_error:.3g} of the per-synapse change (allowed {tolerance + allow:.3g})")
    if corr is not None and corr < 1 - tolerance:
        problems.append(f"synapses disagree: correlation {corr:.3g} (allowed >= {1 - tolerance:.3g})")
    out["outcome"] = FAILED if problems else PASSED
    if problems:
        out["message"] = "; ".join(problems)
    return out


def attribution(ref_dw: np.ndarray, cand_dw: np.ndarray, pieces: list) -> list:
    """The links' shares of the end-to-end deviation ``cand_dw - ref_dw``. ``pieces``: [(link, dw at
    the link's end)] in chain order, the last being the candidate; a link's deviation is its end minus
    the previous end (the first starts at the reference). Share: projection on the total (sums to 1);
    ``size``: the link's deviation, rms, in units of the reference's per-synapse change."""
    total = cand_dw - ref_dw
    tt = float(np.dot(total, total))
    S = float(np.sqrt(np.mean(ref_dw ** 2))) or 1.0
    out, start = [], ref_dw
    for link, end in pieces:
        d = end - start
        out.append({"link": link, "explains": LINK_WORDS.get(link, link),
                    "share": float(np.dot(d, total) / tt) if tt > 0 else 0.0,
                    "size": float(np.sqrt(np.mean(d ** 2))) / S})
        start = end
    return out


def same_step_point(curve: dict, x: float, dt: float) -> bool:
    """A curve point whose pre and post spikes fall in one step (an STDP window's dt = 0): there the
    reference's own result is its simulator's scheduling convention (Brian2 runs on_pre before on_post;
    the engine, and brian2-step, in its order): reported as a timing finding, not judged as learning."""
    return curve["x_label"].startswith("dt = t_post - t_pre") and abs(float(x)) * 1e-3 < dt


def dropped_terms(plan) -> list:
    """The plan's terms whose constants the engine cannot represent (dropped), as (term, requested)."""
    if plan is None:
        return []
    return [(p.term, p.requested) for p in plan.products if p.mantissa == 0]


def reason_line(entry: dict, plan, rule) -> str | None:
    """Why a failed candidate is not faithfully deployable, in one line, from its dominant share."""
    shares = entry.get("attribution") or []
    if not shares:
        return None
    top = max(shares, key=lambda s: s["share"])
    if top["link"] in ("constants", "rounding"):
        terms = dropped_terms(plan)
        step = max(abs(rule.weight.w_min), abs(rule.weight.w_max)) / 255.0
        S = entry["reference_learned"]["rms"]
        if terms:
            return ("not faithfully deployable in fixed point: " + "; ".join(
                f"term '{t}' ({abs(r):.3g} in Lava units) is below the engine's smallest scale 2^-7"
                for t, r in terms) + f": dropped ({100 * top['share']:.0f}% of the deviation)")
        if S < step:
            return (f"not faithfully deployable in fixed point: the model's learned change per synapse (rms {S:.3g}) "
                    f"is below one 8-bit weight step ({step:.3g})")
        return (f"not faithfully deployable in fixed point: {top['explains']} "
                f"({100 * top['share']:.0f}% of the deviation)")
    return f"{top['explains']} ({100 * top['share']:.0f}% of the deviation)"


#: Deployments judged for fidelity, and the emulator twin that stands for each where it ran only a window.
DEPLOYED = ("lava-float", "lava-fixed", "lava-cpu")
TWINS = {"lava-float": "emu-float", "lava-fixed": "emu-fixed"}


def _grid(res, n_post, n_pre):
    return (np.arange(n_post) if res.posts is None else np.asarray(res.posts),
            np.arange(n_pre) if res.pres is None else np.asarray(res.pres))


def candidates(results: dict, steps: int) -> list:
    """(candidate, stands_for) to judge: each deployed Lava backend that ran the whole protocol; where it
    ran a window (or did not run), its emulator twin that ran the whole protocol, standing for it."""
    out = []
    for name in DEPLOYED:
        twin = TWINS.get(name)
        if name in results and results[name].steps_run == steps:
            out.append((name, None))
        elif twin in results and results[twin].steps_run == steps:
            out.append((twin, name if name in results else None))
    for twin in TWINS.values():  # an emulator asked for on its own
        if twin in results and not any(c == twin for c, _ in out) and \
                not any(TWINS.get(c) == twin for c, _ in out):
            out.append((twin, None))
    return out


def fidelity_comparisons(rule, trains, results: dict, plans: dict, chain: dict | None, tolerance: float,
                         ensemble: int, run=None) -> list:
    """Open loop: one ``fidelity`` entry per candidate (:func:`candidates`) against ``brian2``, with the
    attribution of its deviation and, where it fails, the measured alternatives. ``chain``: the
    fixed-point chain's finals (``mean``: the rounding ensemble's mean final weights, ``exact``,
    ``realised``: the float runs' final weights; rule units; full grid, or the rows of the post neurons
    ``posts`` where the chain ran on a sample of them) or None."""
    ref = results.get("brian2")
    if trains.closed:  # judged per synapse only where the neurons made brian2's spikes (else: in distribution)
        if ref is None or "post_spikes" not in ref.info:
            return []
        same = {n for n, r in results.items() if "post_spikes" in r.info
                and np.array_equal(r.info["post_spikes"], ref.info["post_spikes"])}
        results = {n: r for n, r in results.items() if n in same}
        if not any(c for c, _ in candidates(results, trains.steps)):
            return []
    if ref is None:
        return [{"reference": "brian2", "candidate": ", ".join(c for c, _ in candidates(results, trains.steps))
                 or "the deployment", "share": "fidelity", "outcome": NOT_CHECKED, "passed": False,
                 "tolerance": None, "max_abs_error_normalized": None, "rmse_normalized": None,
                 "message": "brian2 (the model as written) did not run: what the deployment learns is not judged "
                            "against it"}] if candidates(results, trains.steps) else []
    last = trains.steps - 1
    if ref.steps_run < trains.steps or ref.rows[-1] != last:
        return []
    w0 = np.asarray(trains.w0, dtype=float)
    posts, pres = _grid(ref, trains.n_post, trains.n_pre)
    present = trains.present()[np.ix_(posts, pres)]
    order_points = []
    if trains.curve is not None:  # a curve protocol: its points are its synapses, the others carry no pairing
        present = np.zeros_like(present)
        for x, (i, j) in zip(trains.curve["x"], trains.curve["synapses"]):
            if same_step_point(trains.curve, x, rule.dt):
                order_points.append((float(x), int(i), int(j)))
                continue
            present[np.searchsorted(posts, i), np.searchsorted(pres, j)] = True
    keep = present.reshape(-1)
    n_all = int(keep.sum()) if trains.curve is not None else int(trains.present().sum())
    ref_dw = final_change(ref, w0, last).reshape(-1)[keep]
    w_range = rule.weight.range

    chain_posts = None if chain is None else chain.get("posts")  # a sampled chain: its post neurons
    if chain_posts is not None and not np.isin(posts, chain_posts).all():
        raise ValueError("the fixed-point chain's sample of post neurons leaves out recorded ones")

    def on_grid(full, start):  # a chain's final weight's change from ``start``, on the compared synapses
        g = np.ix_(posts if chain_posts is None else np.searchsorted(chain_posts, posts), pres)
        return (np.asarray(full, dtype=float)[g] - np.asarray(start, dtype=float)[g]).reshape(-1)[keep]

    fixed_plan = plans.get("fixed")
    # a fixed-point deployment starts from the 8-bit weights nearest w0: its learned change counts from there
    w0_fixed = fixed_plan.weights_from_lava(fixed_plan.weights_to_lava(w0)) if fixed_plan is not None else w0

    def of(name):  # a backend's learned change on the reference's synapses, or None
        res = results.get(name)
        if res is None or res.steps_run < trains.steps or res.rows[-1] != last:
            return None
        if (res.posts is None) != (ref.posts is None) or (res.pres is None) != (ref.pres is None):
            return None
        return final_change(res, w0_fixed if name.endswith("-fixed") else w0, last).reshape(-1)[keep]

    step_dw = of("brian2-step")
    memo = {}
    out = []
    for name, stands_for in candidates(results, trains.steps):
        cand_run = of(name)
        if cand_run is None:
            continue
        fixed = name.endswith("-fixed")
        if fixed and chain is not None and chain.get("mean") is not None:
            judged = on_grid(chain["mean"], chain["start_mean"])
            se = resolution(rule, fixed_plan, trains, ensemble,
                            plans.counts if getattr(plans, "trains", None) is trains else None)
            floor = max(abs(rule.weight.w_min), abs(rule.weight.w_max)) / 255.0 / math.sqrt(max(ensemble, 1))
            judged_on = (f"the expected learned change: mean of emu-fixed x{ensemble} rounding seeds (the plan and "
                         f"spikes of {name}, which the emulation and rounding links prove it belongs to)")
        else:
            judged, se, floor = cand_run, 0.0, 0.0
            judged_on = f"{name}'s run"
        entry = {"reference": "brian2", "candidate": name, "share": "fidelity", "judged_on": judged_on,
                 "compared_steps": [0, last],
                 "compared_synapses": (f"all {n_all}" if ref_dw.size == n_all else
                                       f"{ref_dw.size} of {n_all} (the recorded sub-grid; the others not checked)")}
        if stands_for:
            entry["stands_for"] = (f"{stands_for} ran a window of the protocol; {name} runs the same plan on the "
                                   "whole protocol and is proven equal to it on the window (emulation link)")
        entry.update(judge(ref_dw, judged, tolerance, w_range, se, floor))
        if order_points:
            entry["same_step_points"] = [
                {"x": x, "reference": float(ref.trajectory[-1][np.searchsorted(posts, i), np.searchsorted(pres, j)]
                                            - w0[i, j]),
                 "candidate": float(results[name].trajectory[-1][np.searchsorted(posts, i), np.searchsorted(pres, j)]
                                    - (w0_fixed if fixed else w0)[i, j])} for x, i, j in order_points]
        if fixed and judged is not cand_run:
            single = judge(ref_dw, cand_run, tolerance, w_range)
            entry["single_run"] = {k: single.get(k) for k in ("gain", "net_error", "scatter", "correlation",
                                                             "candidate_learned")}
            entry["single_run"]["note"] = ("one deployed run, rounding noise included (mean zero): shown, not judged; "
                                           "its place in the ensemble is the rounding link's")
        pieces = []
        if step_dw is not None:
            pieces.append(("timing", step_dw))
        if fixed and chain is not None and chain.get("exact") is not None:
            pieces += [("lowering", on_grid(chain["exact"], w0)),
                       ("constants", on_grid(chain["realised"], chain["start_realised"])),
                       ("rounding", judged)]
        else:
            pieces.append(("lowering", judged))
        entry["attribution"] = attribution(ref_dw, judged, pieces)
        if entry["outcome"] == FAILED:
            entry["reason"] = reason_line(entry, fixed_plan if fixed else None, rule)
            remedies = []
            if fixed and chain is not None and chain.get("exact") is not None and "float" in plans:
                # (only where the float engine can run the rule: a saturation reset is fixed point only)
                f = judge(ref_dw, on_grid(chain["exact"], w0), tolerance, w_range)
                remedies.append({"remedy": "lava-float (the float learning engine, the same lowering)",
                                 "measured_as": "the fixed plan's scales with exact constants (emu-float)",
                                 "outcome": f["outcome"], "gain": f.get("gain"), "net_error": f.get("net_error"),
                                 "correlation": f.get("correlation")})
            if step_dw is not None:
                s = judge(ref_dw, step_dw, tolerance, w_range)
                remedies.append({"remedy": "lava-cpu (the rule as written, on the CPU, in the engine's step order)",
                                 "measured_as": "brian2-step (lava-cpu equals it to 1e-9: the lowering link)",
                                 "outcome": s["outcome"], "gain": s.get("gain"), "net_error": s.get("net_error"),
                                 "correlation": s.get("correlation")})
            top = max(entry["attribution"], key=lambda a: a["share"]) if entry["attribution"] else None
            if run is not None and top is not None and top["link"] == "timing":
                if "finer_dt" not in memo:
                    memo["finer_dt"] = finer_dt_remedy(rule, trains, run, tolerance)
                if memo["finer_dt"] is not None:
                    remedies.append(memo["finer_dt"])
            entry["remedies"] = remedies
            good = [r["remedy"] for r in remedies if r["outcome"] == PASSED]
            entry["message"] += ". " + (f"Measured remedy: {good[0]}" if good else
                                        "No measured remedy passes (" + ", ".join(r["remedy"].split(" (")[0]
                                                                                  for r in remedies) + " fail too)"
                                        if remedies else "No remedy measured")
        entry["passed"] = entry["outcome"] == PASSED
        out.append(entry)
    return out


#: The finer time steps tried as a remedy of a timing failure (dt / k), and the largest protocol
#: (synapse-steps at the finest dt) on which they are measured.
FINER_DT = (2, 4, 8)
FINER_DT_BUDGET = 2e8


def refine(rule, trains, k: int, seed: int):
    """(rule at dt / k, the trains at dt / k): each spike of step s moves to a step of k*s .. k*s + k - 1
    drawn uniformly (the same spike times, resolved k times finer; seeded), the reward held over each
    sub-step, the initial weights unchanged. A delay stays the same time (k times the steps)."""
    import dataclasses

    fine_rule = dataclasses.replace(rule, dt=rule.dt / k)
    rng = np.random.default_rng([int(seed), k, 0xD7])

    def split(raster):
        out = np.zeros((raster.shape[0], raster.shape[1] * k), dtype=bool)
        rows, cols = np.nonzero(raster)
        out[rows, cols * k + rng.integers(0, k, size=cols.size)] = True
        return out

    reward = None if trains.reward is None else np.repeat(trains.reward, k, axis=1)
    return fine_rule, dataclasses.replace(trains, pre=split(trains.pre), post=split(trains.post), reward=reward)


def finer_dt_remedy(rule, trains, run, tolerance: float) -> dict | None:
    """The measured remedy of a timing failure: the smallest dt / k (:data:`FINER_DT`) at which the
    engine's order (``brian2-step``, which lava-cpu and the float engine equal) learns what brian2 learns
    within ``tolerance`` on the same spike times resolved finer (:func:`refine`). ``run(name, rule,
    trains)``: a backend's RunResult. None when the protocol cannot be refined (closed loop, too large)."""
    if trains.closed or trains.curve is not None:
        return None
    tried = []
    for k in FINER_DT:
        if trains.steps * k * trains.n_pre * trains.n_post > FINER_DT_BUDGET:
            break
        fine_rule, fine = refine(rule, trains, k, int(trains.seed or 0))
        try:
            ref, step = run("brian2", fine_rule, fine), run("brian2-step", fine_rule, fine)
        except Exception as exc:  # a refinement a backend cannot run: say so, do not guess
            tried.append({"dt_ms": rule.dt * 1e3 / k, "outcome": NOT_CHECKED, "message": f"{type(exc).__name__}: {exc}"})
            break
        w0 = np.asarray(fine.w0, dtype=float)
        keep = fine.present().reshape(-1)
        last = fine.steps - 1
        r = final_change(ref, w0, last).reshape(-1)[keep]
        c = final_change(step, w0, last).reshape(-1)[keep]
        j = judge(r, c, tolerance, rule.weight.range)
        tried.append({"dt_ms": rule.dt * 1e3 / k, "outcome": j["outcome"], "gain": j.get("gain"),
                      "net_error": j.get("net_error"), "correlation": j.get("correlation")})
        if j["outcome"] == PASSED:
            break
    if not tried:
        return None
    good = [t for t in tried if t["outcome"] == PASSED]
    return {"remedy": (f"a finer time step: dt = {good[0]['dt_ms']:g} ms" if good else
                       f"a finer time step (tried down to dt = {tried[-1]['dt_ms']:g} ms)"),
            "measured_as": "brian2 and brian2-step on the same spike times resolved finer (t_epoch in steps unchanged)",
            "outcome": good[0]["outcome"] if good else tried[-1]["outcome"], "tried": tried}
