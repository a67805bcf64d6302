"""The timing share, per synapse: ``brian2`` (events in time order) against ``brian2-step``
(the learning engine's order within a step or epoch).

The two differ only at a synapse's *conflicting epochs*: epochs in which the
synapse sees more than one spike event (with one-step epochs: a pre and a
post spike in the same step). Elsewhere they are the same arithmetic and
must agree to :data:`TIMING_FLOOR`. At a conflicting epoch:

* with one-step epochs ``brian2`` evaluates ``on_pre`` before the post
  traces jump, the engine after: the difference is at most
  ``|f_pre(y + J_y) - f_pre(y)|``, bounded over the corners of the traces'
  ranges on these trains (rest and peak) and ``w`` at either bound;
* with longer epochs the engine applies one update per side and epoch, from
  the state at the epoch's start: a whole update (``max |f_pre|``, ``max
  |f_post|`` over the same corners) may differ.

Each synapse's bound is ``1.5 x`` (clipping order) its own number of
conflicting epochs times that per-event bound; a synapse's bound never
comes from another synapse.

With longer epochs the engine also *moves* every update to the end of its
epoch (docs/rules.md: the terms are sampled once per epoch and ``w`` changes at the
epoch's end), so between a spike and the end of its epoch ``brian2`` has
applied the update and the engine not yet, conflict or none. At the last
step of each epoch both have applied it: there the bound above holds. At
the other steps of an epoch a synapse's bound adds its *pending* updates:
the most spike events the synapse sees in one epoch before that epoch's
last step (:func:`pending`, from the reference-side spikes), times the
largest whole update (:func:`whole_update_bound`, from the rule on the
traces' corners). Both numbers come from the rule and the spikes, never from
either trajectory; a synapse that drifts (a wrong candidate) still fails at
the epoch ends. A synapse whose bound exceeds
:data:`~neurodeploy.verdict.MAX_TOLERANCE` of the range is *not checked*
(tolerance too wide). Rules with synapse or reward traces: a difference at
one epoch propagates through the eligibility and the third factor in ways
not bounded here (also without conflicts: the reward and the continuous
term's order within a step), so their timing is not checked.
"""
from __future__ import annotations

import itertools
import math

import numpy as np
import sympy

from neurodeploy.verdict import FAILED, MAX_TOLERANCE, NOT_CHECKED, PASSED

#: Smallest timing tolerance (normalized): float rounding of exact vs per-step decay.
TIMING_FLOOR = 1e-9
#: Clipping after each event (brian2) or once per epoch (engine): margin on the per-event bound.
CLIP_MARGIN = 1.5


def conflicts(rule, trains) -> np.ndarray:
    """(n_post, n_pre): epochs in which each synapse sees more than one spike event."""
    e = rule.t_epoch
    n_epochs = -(-trains.steps // e)
    pad = n_epochs * e - trains.steps

    def per_epoch(raster):
        r = np.pad(raster, ((0, 0), (0, pad))).reshape(raster.shape[0], n_epochs, e)
        return r.sum(axis=2).astype(np.int64)

    pre, post = per_epoch(trains.pre), per_epoch(trains.post)
    if e == 1:
        # a pre and a post spike in the same step (float64 BLAS: exact for counts below 2^53)
        return np.rint(post.astype(float) @ pre.T.astype(float)).astype(np.int64)
    # events of synapse (i, j) in epoch k: pre[j, k] + post[i, k]; conflict when >= 2
    out = np.zeros((trains.n_post, trains.n_pre), dtype=np.int64)
    for k in np.flatnonzero((pre.sum(axis=0) > 0) | (post.sum(axis=0) > 0)):
        out += (post[:, k][:, None] + pre[:, k][None, :]) >= 2
    return out


def pending(rule, trains) -> np.ndarray:
    """(n_post, n_pre): the most spike events a synapse sees in one epoch at steps before that epoch's
    last step: the updates the engine has not applied yet there (it applies them at the epoch's end)
    while ``brian2`` has (0 everywhere with one-step epochs)."""
    e = rule.t_epoch
    if e == 1:
        return np.zeros((trains.n_post, trains.n_pre), dtype=np.int64)
    n_epochs = -(-trains.steps // e)
    pad = n_epochs * e - trains.steps

    def early(raster):  # spikes per epoch, the epoch's last step left out
        r = np.pad(np.asarray(raster, dtype=np.int64), ((0, 0), (0, pad))).reshape(raster.shape[0], n_epochs, e)
        return r[:, :, :-1].sum(axis=2)

    pre, post = early(trains.pre), early(trains.post)
    out = np.zeros((trains.n_post, trains.n_pre), dtype=np.int64)
    for k in np.flatnonzero((pre.sum(axis=0) > 0) | (post.sum(axis=0) > 0)):
        np.maximum(out, post[:, k][:, None] + pre[:, k][None, :], out=out)
    return out


def per_event_bound(rule, peaks: dict) -> float | None:
    """Largest weight difference one conflicting epoch can make (rule units), or None if not modelled."""
    bounds = _corner_bounds(rule, peaks)
    if bounds is None:
        return None
    order, whole = bounds
    return max(order, whole) if rule.t_epoch > 1 else order


def whole_update_bound(rule, peaks: dict) -> float | None:
    """Largest whole update one spike event makes (``max |f_pre|``, ``max |f_post|`` over the corners of
    the traces' ranges on these trains and ``w`` at either bound; rule units), or None if not modelled."""
    bounds = _corner_bounds(rule, peaks)
    return None if bounds is None else bounds[1]


def _corner_bounds(rule, peaks: dict) -> tuple | None:
    """(order, whole): over the corners, ``max |f_pre(y + J_y) - f_pre(y)|`` (the order of a same-step
    pre and post spike) and ``max(|f_pre|, |f_post|)`` (a whole update); None if not modelled."""
    if rule.traces_of("synapse") or rule.has_reward:
        return None
    w = sympy.Symbol("w", real=True)
    syms = {t.name: sympy.Symbol(t.name, real=True) for t in rule.traces}
    on_pre = rule.numeric(rule.weight.on_pre)
    on_post = rule.numeric(rule.weight.on_post)

    def span(t):
        lo = t.rest
        hi = peaks.get(t.name)
        if hi is None:
            try:
                hi = t.rest + abs(t.jump) if not t.state_dependent else t.rest + 1.0
            except (TypeError, ValueError):
                hi = t.rest + 1.0
        return (min(lo, hi), max(lo, hi))

    def jump(t, values):
        if t.state_dependent:
            return float(rule.numeric(t.jump_of()).xreplace(values))
        return float(t.jump)

    traces = [t for t in rule.traces if t.of in ("pre", "post")]
    worst, whole = 0.0, 0.0
    for corner in itertools.product(*[span(t) for t in traces]):
        base = {syms[t.name]: v for t, v in zip(traces, corner)}
        after = dict(base)
        for t in traces:
            if t.of == "post":
                after[syms[t.name]] = base[syms[t.name]] + jump(t, base)
        for w_value in (rule.weight.w_min, rule.weight.w_max):
            b, a = {**base, w: w_value}, {**after, w: w_value}
            try:
                diff = abs(float(on_pre.xreplace(a)) - float(on_pre.xreplace(b)))
                full = max(abs(float(on_pre.xreplace(b))), abs(float(on_post.xreplace(b))),
                           abs(float(on_pre.xreplace(a))), abs(float(on_post.xreplace(a))))
            except (TypeError, ValueError):
                return None
            worst, whole = max(worst, diff), max(whole, full)
    if not (math.isfinite(worst) and math.isfinite(whole)):
        return None
    return worst, whole


def _at(res, i, j) -> list:
    return [int(res.posts[i]) if res.posts is not None else int(i), int(res.pres[j]) if res.pres is not None else int(j)]


def timing_verdict(rule, trains, ref, cand, peaks: dict) -> dict:
    """The ``timing`` comparison entry: per-synapse bounds, per-synapse errors, one outcome.

    With ``t_epoch > 1`` each synapse has two bounds: at the last step of an epoch (both runs have
    applied the epoch's updates) its conflict bound, at the epoch's other steps that bound plus its
    pending updates (:func:`pending` x :func:`whole_update_bound`)."""
    w_range = rule.weight.range
    c = conflicts(rule, trains)
    event = per_event_bound(rule, peaks)
    whole = whole_update_bound(rule, peaks) if rule.t_epoch > 1 else 0.0
    if event is None:
        band = np.full(c.shape, np.inf)
        reason = ("synapse or reward traces: the event order's effect (conflicting epochs, reward and continuous "
                  "terms within a step) is not bounded")
    else:
        band = np.maximum(TIMING_FLOOR, CLIP_MARGIN * c * event / w_range)
        reason = f"bound above {MAX_TOLERANCE:g} of the range (tolerance too wide)"
    moved = pending(rule, trains)
    within = band + (moved * whole / w_range if whole else 0.0)  # inf stays inf
    from neurodeploy.verdict.links import common_rows, compared

    steps, ia, ib = common_rows(ref, cand)
    if ref.posts is not None or ref.pres is not None:  # the recorded sub-grid
        grid = np.ix_(ref.posts if ref.posts is not None else np.arange(band.shape[0]),
                      ref.pres if ref.pres is not None else np.arange(band.shape[1]))
        band, within, c, moved = band[grid], within[grid], c[grid], moved[grid]
    present = np.ones(band.shape, dtype=bool)
    if trains.mask is not None:  # synapses the mask leaves out do not exist (NaN in every backend)
        present = trains.mask[np.ix_(ref.posts if ref.posts is not None else np.arange(trains.n_post),
                                     ref.pres if ref.pres is not None else np.arange(trains.n_pre))]
    diff = np.abs(cand.trajectory[ib] - ref.trajectory[ia]) / w_range
    at_end = (steps % rule.t_epoch) == rule.t_epoch - 1  # rows where both runs have applied the epoch's updates

    def worst_of(rows):
        return diff[rows].max(axis=0) if rows.any() else np.zeros_like(band)

    per_end, per_within = worst_of(at_end), worst_of(~at_end)  # NaN stays NaN (and fails)
    checked = (band <= MAX_TOLERANCE) & present
    checked_within = checked & (within <= MAX_TOLERANCE)  # else: this synapse is judged at its epochs' ends
    exact = checked & (c == 0)
    bad_end = checked & ~(per_end <= band)  # NaN fails
    bad_within = checked_within & ~(per_within <= within)
    bad = bad_end | bad_within
    # the epochs' ends alone judge a synapse whose pending bound is too wide (its within-epoch rows are left out)
    unjudged_within = checked & ~checked_within & (~at_end).any()
    entry = {
        "reference": ref.backend, "candidate": cand.backend, "share": "timing",
        # every number shown is over the synapses checked; the unchecked ones' error apart
        "max_abs_error_normalized": float(np.nanmax(diff[:, checked])) if diff.size and checked.any() else None,
        "rmse_normalized": float(np.sqrt(np.nanmean(diff[:, checked] ** 2))) if diff.size and checked.any() else None,
        "max_abs_error_not_checked_normalized": float(np.nanmax(diff[:, present & ~checked]))
        if diff.size and (present & ~checked).any() else None,
        "per_synapse": {
            "synapses": int(present.sum()), "checked_exactly": int(exact.sum()),
            "checked_with_bound": int((checked & ~exact).sum()), "not_checked": int((present & ~checked).sum()),
            "conflicting_epochs_max": int(c.max()) if c.size else 0,
            "per_event_bound": event,
            "largest_bound_checked": float(band[checked].max()) if checked.any() else None,
            "failing_synapses": [_at(ref, i, j) for i, j in zip(*np.nonzero(bad))][:20],
        },
        **compared(ref, cand, steps),
        "tolerance": {"max_abs": float(band[checked].max()) if checked.any() else None,
                      "rmse": None, "kind": "per synapse"},
    }
    if rule.t_epoch > 1:
        entry["per_synapse"]["epoch_sampling"] = {
            "epoch_end_rows": int(at_end.sum()), "within_epoch_rows": int((~at_end).sum()),
            "pending_updates_max": int(moved.max()) if moved.size else 0,
            "whole_update_bound": whole,
            "largest_within_epoch_bound": float(within[checked_within].max()) if checked_within.any() else None,
            "within_epoch_not_checked": int(unjudged_within.sum()),
            "rule": ("the engine applies an epoch's updates at its last step: there each synapse is held to its "
                     "conflict bound (1e-9 without conflicts), at the epoch's other steps to that bound plus its "
                     "pending updates (most spike events before an epoch's last step x the largest whole update)"),
        }
        entry["tolerance"]["within_epoch_max_abs"] = entry["per_synapse"]["epoch_sampling"]["largest_within_epoch_bound"]
    if trains.mask is not None:
        entry["compared_synapses"] = f"{int(present.sum())} present (mask) of {present.size}"
    if bad.any():
        ratio_end = np.where(bad_end, np.nan_to_num(per_end / band, nan=np.inf), -np.inf)
        ratio_within = np.where(bad_within, np.nan_to_num(per_within / within, nan=np.inf), -np.inf)
        ratio = np.maximum(ratio_end, ratio_within)
        i, j = np.unravel_index(int(np.argmax(ratio)), ratio.shape)
        if ratio_end[i, j] >= ratio_within[i, j]:
            error, bound, where = per_end[i, j], band[i, j], ""
            if rule.t_epoch > 1:
                where = ", at an epoch's end"
        else:
            error, bound = per_within[i, j], within[i, j]
            where = f", within an epoch: {int(moved[i, j])} pending update(s)"
        entry.update(outcome=FAILED, message=(
            f"{int(bad.sum())} synapse(s) beyond their own bound; worst {tuple(_at(ref, i, j))}: {error:.3g} "
            f"against {bound:.3g} ({int(c[i, j])} conflicting epochs{where})"))
    elif not checked.any():
        entry.update(outcome=NOT_CHECKED, message=f"no synapse checked: {reason}")
    else:
        entry.update(outcome=PASSED)
        notes = []
        if (present & ~checked).any():
            notes.append(f"passed on {int(checked.sum())} of {int(present.sum())} synapses; "
                         f"{int((present & ~checked).sum())} not checked: {reason} (their largest error "
                         f"{entry['max_abs_error_not_checked_normalized']:.3g} of the range is not in the numbers shown)")
        if unjudged_within.any():
            notes.append(f"{int(unjudged_within.sum())} synapse(s) judged at the epochs' ends only (pending updates "
                         f"above {MAX_TOLERANCE:g} of the range within an epoch)")
        if notes:
            entry["message"] = "; ".join(notes)
    entry["passed"] = entry["outcome"] == PASSED
    return entry
