"""The verdict in distribution: a plastic network judged by what it learns, not spike by spike.

Once two backends' post spike trains part in a closed loop (one spike one step
earlier is enough), their weight trajectories are different samples of the same
stochastic process: comparing them synapse by synapse means nothing. What a user
who deploys a plastic network needs to know is whether it still *learns the same
thing*. So both sides are run as **ensembles over input seeds** (the reference,
``brian2-step``, the rule in the engine's order in Brian2, on seeds ``seed+1 .. seed+K``;
the candidate on the disjoint seeds ``seed+K+1 .. seed+2K``: two independent samples),
and every run is reduced to
statistics of what it learned (:data:`STATISTICS`):

* ``w_mean``, ``w_std``: mean and standard deviation of the final weights, in
  units of the weight range ``w_max - w_min``;
* ``near_low``, ``near_high``: fraction of the final weights within 10% of the
  range of ``w_min`` / ``w_max`` (bimodal vs unimodal, Song, Miller & Abbott 2000);
* ``rate_hz``: the mean post rate over the run.

Per statistic a two-sided Brunner-Munzel test by permutation (:func:`two_sample_p`: it holds its
level when the spreads differ, as a fixed-point ensemble's do) compares the two
ensembles; a statistic fails when its p-value is below ``alpha / m`` (Bonferroni
over the ``m`` statistics that vary: a statistic constant and equal in both
ensembles says nothing and is left out, constant and different fails) **and** the
means differ by more than its margin significantly (:func:`beyond_margin_p` below
``alpha / m``; the margin, :func:`reference_margins`: the fidelity tolerance of the
reference's learned change, from the reference ensemble and the rule only). The reference is ``brian2``, the model as written (``brian2-step``
where brian2 did not run). Under the null hypothesis (the candidate's
runs are drawn from the reference's distribution) the family-wise false-alarm
rate is at most ``alpha`` (:data:`ALPHA`, 1%) by construction; the measured
rate, and the detection of a plan with one constant doubled, are in docs/verdict.md
(``scripts/distribution_calibration.py``).

A candidate ``lava-float``/``lava-fixed`` is run as its ensemble on the
emulator (``emu-float``/``emu-fixed``), which equals it to the bit in the closed
loop (the ``emulation`` link of the same run proves it on the run's own seed).
"""
from __future__ import annotations

import dataclasses
import time

import numpy as np

from neurodeploy.verdict import FAILED, NOT_CHECKED, PASSED
from neurodeploy.backend import Recording
from neurodeploy.protocol import poisson
from neurodeploy.targets import load_all

#: Runs per ensemble (each side).
ENSEMBLE = 16
#: Family-wise false-alarm rate of the comparison (Bonferroni over the statistics).
ALPHA = 0.01
#: Statistics of one run, in this order (a network: the weight statistics per plastic projection,
#: ``"<from>-><to>: w_mean"`` ..., then ``"<population>: rate_hz"`` per LIF population).
WEIGHT_STATISTICS = ("w_mean", "w_std", "near_low", "near_high")
STATISTICS = WEIGHT_STATISTICS + ("rate_hz",)
#: "Near a bound": within this fraction of the weight range.
NEAR = 0.1
#: The backend whose ensemble a candidate's stands for (twins in the closed loop: bit-exact in fixed point, 1e-12 in float).
ENSEMBLE_BACKEND = {"lava-float": "emu-float", "lava-fixed": "emu-fixed"}


def statistic_names(trains) -> tuple:
    """The statistics of a run of ``trains``: :data:`STATISTICS`, or a network's (see there)."""
    net = trains.network
    if net is None:
        return STATISTICS
    names = [f"{pr.name}: {s}" for pr in net.projections if pr.plastic and pr.mask.any() for s in WEIGHT_STATISTICS]
    return tuple(names + [f"{p.name}: rate_hz" for p in net.lifs])


def run_statistics(rule, w_final: np.ndarray, post: np.ndarray, trains=None) -> dict:
    """The statistics of one run (:func:`statistic_names`): final weights (rule units; a network's
    (n_lif, n_src) plastic block) and post raster (n_post, steps)."""
    net = getattr(trains, "network", None)
    if net is not None:
        w_final, post = np.asarray(w_final, dtype=float), np.asarray(post)
        out = {}
        for pr in net.projections:
            if pr.plastic and pr.mask.any():
                t, s = net.projection_slices(pr)
                one = _weight_statistics(rule, w_final[t, s][pr.mask], post)
                out.update({f"{pr.name}: {k}": one[k] for k in WEIGHT_STATISTICS})
        for p in net.lifs:
            out[f"{p.name}: rate_hz"] = _weight_statistics(rule, np.zeros(1), post[p.targets])["rate_hz"]
        return out
    return _weight_statistics(rule, w_final, post)


def _weight_statistics(rule, w_final, post) -> dict:
    lo, r = rule.weight.w_min, rule.weight.range
    z = (np.asarray(w_final, dtype=float).reshape(-1) - lo) / r
    z = z[~np.isnan(z)]  # absent synapses (a mask) have no weight; an inf or all-NaN run stays non-finite
    if z.size == 0:
        z = np.array([np.nan])
    post = np.asarray(post)
    seconds = post.shape[1] * rule.dt
    return {"w_mean": float(z.mean()), "w_std": float(z.std()),
            "near_low": float(np.mean(z <= NEAR)), "near_high": float(np.mean(z >= 1 - NEAR)),
            "rate_hz": float(post.sum() / post.shape[0] / seconds)}


def reseeded(rule, trains, seed: int):
    """The closed loop ``trains`` with its presynaptic Poisson trains drawn from ``seed`` (same size,
    rate, neuron and initial weights); a network: its inputs (same structure)."""

    if trains.network is not None:
        from neurodeploy.network import reseed

        return reseed(rule, trains, seed)

    fresh = poisson(rule, trains.n_pre, trains.n_post, trains.steps, trains.rate, seed)
    return dataclasses.replace(trains, pre=fresh.pre, seed=seed)


def ensemble_statistics(rule, backend: str, trains, plans, seeds) -> tuple:
    """(K, len(STATISTICS)) statistics of ``backend`` run on ``trains`` reseeded with each of
    ``seeds`` (the same plans for every member: one deployment, other inputs), and the seconds.

    A fixed-point backend starts from the initial weights rounded to its 8-bit grid (``w_init`` 0.5
    of [0, 1] is 128/255: +0.002 of the range, which 16 runs of a short protocol tell apart from the
    reference at p ~ 1e-5): that offset (:func:`initial_offset`) is taken out of its final weights,
    so that the verdict judges what was learned, not how ``w0`` rounds (reported as ``w0_lava_error_max``)."""

    registry = load_all()
    runner = registry.get(backend)
    last = Recording(every=trains.steps)  # the first and the last step only
    offset = initial_offset(backend, trains, plans)
    rows = []
    start = time.perf_counter()
    for s in seeds:
        member = reseeded(rule, trains, int(s))
        result = runner.run(rule, member, plans, recording=last)
        stats = run_statistics(rule, result.trajectory[-1] - offset, result.info["post_spikes"], member)
        rows.append([stats[k] for k in statistic_names(trains)])
    return np.array(rows, dtype=float), time.perf_counter() - start


def initial_offset(backend: str, trains, plans):
    """The deployed initial weights minus the protocol's, rule units: a fixed-point backend's 8-bit
    rounding of ``w0`` (0 elsewhere)."""
    plan = plans.get("fixed") if backend.endswith("-fixed") else None
    if plan is None:
        return 0.0
    return plan.weights_from_lava(plan.weights_to_lava(trains.w0)) - trains.w0


def _ranks_by_code(codes: np.ndarray, u: int) -> np.ndarray:
    """Average ranks (ties: the mean of their ranks, as ``scipy.stats.rankdata``) of each row of
    ``codes`` (integers in 0..u-1 that order as the values they stand for): per row the count of each code
    (one ``bincount``), and a value's rank = the count of smaller ones + (the count of equal ones + 1) / 2."""
    rows = codes.shape[0]
    counts = np.bincount((codes + u * np.arange(rows)[:, None]).ravel(), minlength=rows * u).reshape(rows, u)
    table = np.cumsum(counts, axis=1) - counts + (counts + 1) / 2.0
    return np.take_along_axis(table, codes, axis=1)


def _brunner_munzel_w(rcx, rcy, rx, ry) -> np.ndarray:
    """Brunner-Munzel's ``W`` per row from the pooled ranks (``rcx``, ``rcy``) and the ranks within each
    sample (``rx``, ``ry``), the formula of ``scipy.stats.brunnermunzel``; complete separation (no variance
    estimate) gives +-inf, the most extreme value, and equal mean ranks without variance 0."""
    n1, n2 = rcx.shape[-1], rcy.shape[-1]
    mx, my = rcx.mean(axis=-1), rcy.mean(axis=-1)
    sx = ((rcx - rx - mx[..., None] + (n1 + 1) / 2.0) ** 2).sum(axis=-1) / (n1 - 1)
    sy = ((rcy - ry - my[..., None] + (n2 + 1) / 2.0) ** 2).sum(axis=-1) / (n2 - 1)
    num = n1 * n2 * (my - mx)
    den = (n1 + n2) * np.sqrt(n1 * sx + n2 * sy)
    with np.errstate(divide="ignore", invalid="ignore"):
        w = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.sign(num) * np.inf)
    return np.where((den == 0) & (num == 0), 0.0, w)


def _coded(a: np.ndarray, b: np.ndarray) -> tuple:
    """(codes (1, n1 + n2), number of distinct values, pooled rank by code) of two samples pooled: a
    permutation moves values and their pooled ranks together, so the pooled ranks are looked up by code."""
    distinct, codes = np.unique(np.concatenate([a, b]), return_inverse=True)
    u = distinct.size
    codes = codes.reshape(1, -1)
    by_code = np.zeros(u)
    by_code[codes[0]] = _ranks_by_code(codes, u)[0]
    return codes, u, by_code


def _w_of(codes: np.ndarray, n1: int, u: int, by_code: np.ndarray) -> np.ndarray:
    """Brunner-Munzel's ``W`` of each row of ``codes`` (its first ``n1`` values one sample, the rest the other)."""
    r = by_code[codes]
    return _brunner_munzel_w(r[:, :n1], r[:, n1:], _ranks_by_code(codes[:, :n1], u), _ranks_by_code(codes[:, n1:], u))


def brunner_munzel_statistic(x, y) -> float:
    """Brunner-Munzel's studentized statistic ``W`` of two samples (what ``scipy.stats.brunnermunzel``
    returns as its statistic, tested; +-inf under complete separation)."""
    x, y = np.asarray(x, dtype=float).ravel(), np.asarray(y, dtype=float).ravel()
    codes, u, by_code = _coded(x, y)
    return float(_w_of(codes, x.size, u, by_code)[0])


#: Resamples of the permutation test: its smallest p-value is 2 / (RESAMPLES + 1) = 2e-4.
RESAMPLES = 9999


def two_sample_p(a: np.ndarray, b: np.ndarray, resamples: int = RESAMPLES, seed: int = 0x5EED) -> float:
    """Two-sided p-value that ``a`` and ``b`` come from one distribution, holding its level when their
    spreads differ (a fixed-point ensemble spreads wider than the float reference): the studentized
    permutation test of Brunner-Munzel's statistic (Neubert & Brunner 2007), ``resamples`` random
    reassignments of the pooled runs to the two sides (seeded: the same p for the same numbers). Its level
    is exact where the two samples are exchangeable (the null: one distribution), and the studentized
    statistic keeps Brunner-Munzel's robustness to unequal spreads. p = 2 min(P(W* <= W), P(W* >= W)),
    each ``(count + 1) / (resamples + 1)`` (scipy's ``permutation_test``); complete separation gives the
    floor, 2 / (resamples + 1).

    Until session 11 this was the t approximation (``scipy.stats.brunnermunzel``): at 10 runs a side it
    rejects at 0.002 three times as often as it should (0.58 % of 20,000 pairs of normal samples of one
    distribution; this test 0.05 %, 1 of 2,000)."""
    a, b = np.asarray(a, dtype=float).ravel(), np.asarray(b, dtype=float).ravel()
    codes, u, by_code = _coded(a, b)
    observed = float(_w_of(codes, a.size, u, by_code)[0])
    rng = np.random.default_rng(seed)
    null = _w_of(rng.permuted(np.tile(codes[0], (resamples, 1)), axis=1), a.size, u, by_code)
    slack = 1e-12 * abs(observed) if np.isfinite(observed) else 0.0  # equal statistics computed in another order
    below = (np.count_nonzero(null <= observed + slack) + 1) / (resamples + 1)
    above = (np.count_nonzero(null >= observed - slack) + 1) / (resamples + 1)
    return min(1.0, 2.0 * min(below, above))


def _excess(a: np.ndarray, b: np.ndarray, margin: float) -> tuple:
    """(var(a) / n_a, var(b) / n_b, |mean(b) - mean(a)| - margin): the squared standard errors of the two
    means and the excess of their difference over ``margin``."""
    return (np.var(a, ddof=1) / a.size, np.var(b, ddof=1) / b.size, abs(float(np.mean(b) - np.mean(a))) - margin)


def beyond_margin_p(a: np.ndarray, b: np.ndarray, margin: float) -> float:
    """One-sided p-value that the means of ``a`` and ``b`` differ by more than ``margin``: Welch's t of
    ``|mean(b) - mean(a)| - margin`` (the standard error from both ensembles' spreads, Welch-Satterthwaite
    degrees of freedom, so unequal spreads keep the level)."""
    from scipy import stats

    va, vb, excess = _excess(a, b, margin)
    se = float(np.sqrt(va + vb))
    if se == 0:
        return 0.0 if excess > 0 else 1.0
    df = (va + vb) ** 2 / ((va ** 2 / (a.size - 1) if va else 0.0) + (vb ** 2 / (b.size - 1) if vb else 0.0))
    return float(stats.t.sf(excess / se, df))


def two_sample(reference: np.ndarray, candidate: np.ndarray, alpha: float = ALPHA, names=STATISTICS,
               untested: dict | None = None, margins: dict | None = None) -> dict:
    """Per statistic (``names``, the columns) a two-sided test (:func:`two_sample_p`); a statistic fails
    when its p-value is below alpha / m (m: the statistics tested) *and* the ensembles' means differ by
    more than its margin (``margins``: name -> margin, from the fidelity tolerance and the reference).
    ``untested``: name -> reason, shown with their p-value but neither tested nor counted in m."""
    untested, margins = untested or {}, margins or {}
    tests, tested = {}, 0
    for k, name in enumerate(names):
        a, b = reference[:, k], candidate[:, k]
        entry = {"reference_mean": float(a.mean()), "reference_std": float(a.std(ddof=1)) if a.size > 1 else 0.0,
                 "candidate_mean": float(b.mean()), "candidate_std": float(b.std(ddof=1)) if b.size > 1 else 0.0}
        if name in untested:
            entry["p_value"] = None if np.ptp(np.concatenate([a, b])) == 0 or not (
                np.all(np.isfinite(a)) and np.all(np.isfinite(b))) else two_sample_p(a, b)
            entry["not_tested"] = untested[name]
            tests[name] = entry
            continue
        if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
            entry["p_value"] = 0.0  # a run without a finite statistic (NaN or inf weights) differs by definition
            entry["non_finite"] = True
            tested += 1
        elif np.ptp(np.concatenate([a, b])) == 0:
            entry["p_value"] = None  # constant and equal on both sides: no information
        else:
            entry["p_value"] = two_sample_p(a, b)
            tested += 1
        tests[name] = entry
    for name, margin in margins.items():
        if name in tests:
            tests[name]["margin"] = margin
    threshold = alpha / tested if tested else None
    for k, name in enumerate(names):
        e = tests[name]
        if name in margins and e["p_value"] is not None and "not_tested" not in e and not e.get("non_finite"):
            e["p_beyond_margin"] = beyond_margin_p(reference[:, k], candidate[:, k], margins[name])
    # a statistic fails when the two ensembles differ (p) *and* their difference lies beyond the margin
    # significantly (a deviation within the tolerance, however well resolved, is not a failure; one just
    # at it does not fail on a coin toss of seeds)
    rejected = [n for n, e in tests.items() if e["p_value"] is not None and "not_tested" not in e
                and e["p_value"] < threshold
                and (e.get("non_finite") or e.get("p_beyond_margin", e["p_value"]) < threshold)]
    # the ensembles differ and the mean difference lies beyond the margin, but not beyond doubt: not a
    # pass (the evidence points past the tolerance) and not a failure (not shown): NOT SHOWN, with the runs
    # a side that would show it if the difference and the spreads stayed as measured
    unresolved = [n for n, e in tests.items() if n not in rejected and "p_beyond_margin" in e
                  and e["p_value"] < threshold
                  and abs(e["candidate_mean"] - e["reference_mean"]) > e["margin"]]
    for k, name in enumerate(names):
        if name in unresolved:
            tests[name]["runs_to_decide"] = runs_to_decide(reference[:, k], candidate[:, k], margins[name], threshold)
    passed = None if not tested or (unresolved and not rejected) else not rejected
    return {"statistics": tests, "alpha": alpha, "threshold": threshold, "tested": tested, "rejected": rejected,
            "unresolved": unresolved, "passed": passed}


def runs_to_decide(a: np.ndarray, b: np.ndarray, margin: float, threshold: float) -> int:
    """Runs a side with which the excess of ``|mean(b) - mean(a)|`` over ``margin`` would be beyond doubt
    (one-sided p below ``threshold``, normal approximation) if the means and the spreads stayed as
    measured: ``n (z se_n / excess)^2`` rounded up."""
    from scipy import stats

    va, vb, excess = _excess(a, b, margin)
    se = float(np.sqrt(va + vb))
    n = max(a.size, b.size)
    return max(n + 1, int(np.ceil(n * (stats.norm.isf(threshold) * se / excess) ** 2)))


def _initial_means(rule, trains, names) -> dict:
    """name -> the mean initial weight (units of the range, from ``w_min``) of the weights a statistic
    ``name`` describes (a network: its projection's synapses)."""
    lo, r = rule.weight.w_min, rule.weight.range
    w0 = (np.asarray(trains.w0, dtype=float) - lo) / r
    net = trains.network
    out = {}
    if net is None:
        keep = trains.present()
        return {n: float(w0[keep].mean()) for n in names}
    for pr in net.projections:
        if pr.plastic and pr.mask.any():
            t, src = net.projection_slices(pr)
            for n in names:
                if n.startswith(f"{pr.name}: "):
                    out[n] = float(w0[t, src][pr.mask].mean())
    return out


def _synapse_counts(trains, names) -> dict:
    net = trains.network
    if net is None:
        return {n: int(trains.present().sum()) for n in names}
    return {n: int(pr.mask.sum()) for pr in net.projections if pr.plastic and pr.mask.any()
            for n in names if n.startswith(f"{pr.name}: ")}


def reference_margins(rule, trains, reference_stats: np.ndarray, names, tolerance: float, fixed: bool) -> dict:
    """name -> the margin a candidate ensemble's mean of statistic ``name`` may differ by, from the
    fidelity ``tolerance`` and the **reference** ensemble only (never the candidate):

    * ``w_mean``, ``w_std``: ``tolerance`` x the reference's learned change per synapse (rms of
      ``w(end) - w(0)`` over the synapses, from its mean and spread, mean over the ensemble), at least one
      8-bit weight step for a fixed-point candidate (what its weights can resolve: the rule's bounds);
    * ``near_low``, ``near_high``: ``tolerance`` x the reference's fraction, plus one synapse;
    * ``rate_hz``: ``tolerance`` x the reference's rate.

    Units: those of the statistic (the weight range for weights)."""
    w0 = _initial_means(rule, trains, names)
    n_syn = _synapse_counts(trains, names)
    col = {n: k for k, n in enumerate(names)}
    step = max(abs(rule.weight.w_min), abs(rule.weight.w_max)) / 255.0 / rule.weight.range
    out = {}
    for n in names:
        kind = n.split(": ")[-1]
        ref = reference_stats[:, col[n]]
        if kind in ("w_mean", "w_std"):
            prefix = n[: -len(kind)]
            mean, sd = reference_stats[:, col[prefix + "w_mean"]], reference_stats[:, col[prefix + "w_std"]]
            learned = float(np.mean(np.sqrt(sd ** 2 + (mean - w0[n]) ** 2)))
            out[n] = max(tolerance * learned, step if fixed else 0.0)
        elif kind in ("near_low", "near_high"):
            out[n] = tolerance * float(np.mean(ref)) + 1.0 / max(1, n_syn.get(n, 1))
        elif kind == "rate_hz":
            out[n] = tolerance * float(np.mean(ref))
    return out


def distribution_verdict(rule, trains, plans, candidate: str, seed: int, size: int = ENSEMBLE,
                         reference: str = "brian2", reference_stats: np.ndarray | None = None,
                         spikes: np.ndarray | None = None, tolerance: float | None = None) -> dict:
    """The ``distribution`` comparison of ``candidate`` against ``reference`` (see the module docstring).

    ``reference_stats``: the reference ensemble when already run (several candidates share it);
    ``spikes``: unused (kept for callers; the margins no longer read the candidate's spikes)."""
    if tolerance is None:
        from neurodeploy.verdict.fidelity import DEFAULT_FIDELITY

        tolerance = DEFAULT_FIDELITY
    ref_seeds = [seed + 1 + k for k in range(size)]
    cand_seeds = [seed + 1 + size + k for k in range(size)]
    seconds = {}
    runs_as = ENSEMBLE_BACKEND.get(candidate, candidate)
    refused = _refused(rule, trains, (reference, runs_as))
    if refused is None:
        if reference_stats is None:
            reference_stats, seconds[reference] = ensemble_statistics(rule, reference, trains, plans, ref_seeds)
        cand_stats, seconds[runs_as] = ensemble_statistics(rule, runs_as, trains, plans, cand_seeds)
    names = statistic_names(trains)
    margins, untested = {}, {}
    if refused is None:
        margins = reference_margins(rule, trains, reference_stats, names, tolerance, runs_as.endswith("-fixed"))
    test = two_sample(reference_stats, cand_stats, names=names, untested=untested,
                      margins=margins) if refused is None else {
        "statistics": {}, "alpha": ALPHA, "threshold": None, "tested": 0, "rejected": [], "passed": None}
    outcome = NOT_CHECKED if test["passed"] is None else (PASSED if test["passed"] else FAILED)
    if refused is not None:
        message = refused
    elif test["passed"] is None and test.get("unresolved"):
        message = "not shown: " + not_shown(test)
    elif test["passed"] is None:
        message = "every statistic constant and equal in both ensembles"
    elif test["rejected"]:
        message = "differ in distribution: " + ", ".join(
            f"{n} p={test['statistics'][n]['p_value']:.2g}" for n in test["rejected"])
    else:
        message = ""
    entry = {"reference": reference, "candidate": candidate, "share": "distribution",
             "max_abs_error": None, "rmse": None, "max_abs_error_normalized": None, "rmse_normalized": None,
             "tolerance": {"max_abs": None, "rmse": None, "family_wise_false_alarm": test["alpha"],
                           "per_statistic_p": test["threshold"]},
             "passed": outcome == PASSED, "outcome": outcome, "message": message,
             "ensemble": {"size": size, "reference_seeds": [ref_seeds[0], ref_seeds[-1]],
                          "candidate_seeds": [cand_seeds[0], cand_seeds[-1]], "candidate_runs_as": runs_as,
                          "seconds": {k: round(v, 3) for k, v in seconds.items()}},
             "test": test, "_reference_stats": reference_stats}
    return entry


def not_shown(test: dict) -> str:
    """The unresolved statistics of a :func:`two_sample` test in words."""
    parts = []
    for n in test["unresolved"]:
        e = test["statistics"][n]
        parts.append(f"{n} differs (p = {e['p_value']:.2g}) by {abs(e['candidate_mean'] - e['reference_mean']):.3g}, "
                     f"beyond its margin {e['margin']:.3g}, but not beyond doubt (p = {e['p_beyond_margin']:.2g}); "
                     f"about {e['runs_to_decide']} runs a side would decide it")
    return "; ".join(parts)


def _refused(rule, trains, backends) -> str | None:
    """Why an ensemble cannot run on one of ``backends`` (e.g. the emulator's all-to-all closed loop
    with a mask), or None."""

    for name in dict.fromkeys(backends):
        backend = load_all().get(name)
        reason = backend.unsupported_reason(rule) or backend.unsupported_trains(trains)
        if reason is not None:
            return f"the ensemble runs on {name}, which cannot run these trains: {reason}"
    return None


def describe(entry: dict) -> list:
    """Report lines of a ``distribution`` comparison: per statistic the two ensembles and the p-value."""
    e, t = entry["ensemble"], entry["test"]
    lines = [f"{entry['reference']} seeds {e['reference_seeds'][0]}..{e['reference_seeds'][1]} -> "
             f"{e['candidate_runs_as']} seeds {e['candidate_seeds'][0]}..{e['candidate_seeds'][1]} "
             f"({e['size']} runs each); "
             f"Brunner-Munzel per statistic, family-wise alpha {t['alpha']:g}"
             + (f" (p < {t['threshold']:.3g} fails)" if t["threshold"] is not None else "")]
    for name, s in t["statistics"].items():
        p = "constant, equal" if s["p_value"] is None else f"p = {s['p_value']:.3g}"
        if s.get("not_tested"):
            p += f" (not tested: {s['not_tested']})"
        if s.get("margin") is not None:
            p += (f"; beyond the margin {s['margin']:.3g} (the fidelity tolerance of the reference's learned change): "
                  f"p = {s['p_beyond_margin']:.3g}" if s.get("p_beyond_margin") is not None else
                  f"; margin {s['margin']:.3g}")
        lines.append(f"  {name:<10} {s['reference_mean']:.4g} +- {s['reference_std']:.2g} -> "
                     f"{s['candidate_mean']:.4g} +- {s['candidate_std']:.2g}  {p}")
    return lines
