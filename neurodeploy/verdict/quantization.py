"""The fixed-point verdict as a chain of links, each with its own share and tolerance.

::

    F  exact        the rule lowered to the engine, exact constants, run in floating point
    |  constants    the fixed plan's realised S*2^E, impulses, time constants, epoch, weight
    R  realised     scale and bounds, run in floating point (deterministic)
    |  rounding     the ensemble mean of emu-fixed over K rounding seeds follows R; the
    M  ensemble     single fixed-point run (lava-fixed or emu-fixed) lies in the ensemble
    |  emulation    lava-fixed equals emu-fixed bit for bit (a comparison of the harness)
    lava-fixed

**constants.** Nothing here is taken from what the plan under test says about
its own accuracy. From the lowering (the rule's products and coefficients)
and the plan's two free choices, the weight scale ``s_w`` and the whole-number
trace impulses ``m_t`` (scale ``k_t = m_t / J_t``), each product's constant
is recomputed, ``c = a s_w^(n_w - 1) prod k_t^(-n_t) 2^shift``, and with it the
nearest value the engine can realise, ``S 2^E`` with ``-8 <= S <= 7``,
``-7 <= E <= 8`` (:func:`nearest_representable`, written independently of the
planner). Two checks:

* structural: the plan's dw string (as Lava parses it) realises every product
  at least as well as the engine could (relative error within 1e-9 of the
  best), names no product the lowering does not have, and its impulses are
  whole numbers in 1..127;
* behavioural: ``I``, the same run with the engine's best constants, the
  rule's own time constants, epoch and the sign mode's 8-bit limits, deviates
  from ``F`` by what the engine's limits force, ``D_I``; ``R`` must stay within
  ``1.05 D_I + 1e-9`` of ``F`` (max over steps and synapses, normalized by the
  range). Per constant the report gives the trajectory's sensitivity ``G_p``
  (change of the trajectory per relative change of that constant, by a
  finite difference on ``I``) and so the smallest relative error of that
  constant the behavioural check is guaranteed to detect, ``(T + D)/G_p``.

**rounding.** Lava's fixed-point model rounds traces, weights and products
stochastically from per-step random numbers: unbiased except for the floor
of products whose width exceeds the accumulator (``shift > 0``: at most
``(1 - 2^-shift) 2^E`` Lava units lost per evaluation, a known one-sided
bias). ``emu-fixed`` runs ``K`` times (default :data:`ENSEMBLE_SIZE`) with
independent rounding seeds (both the trace seed and the weight-rounding
seed), derived from the spike-train seed. At checkpoints over the run, per
synapse:

* mean: ``mean - R`` lies in ``[-floor bias - q SE, q SE]``, ``SE`` the
  standard error (sample standard deviation, floored at
  :data:`SIGMA_FLOOR` Lava units for discrete distributions, over ``sqrt K``);
* envelope: the single fixed-point run lies within ``q sd sqrt(1 + 1/K)`` of
  the mean (a prediction interval);

``q`` is the Student-t quantile for a family-wise false-alarm rate
:data:`ALPHA` (Bonferroni over every test made). Synapse-steps from the first
time any run (R, a member, the single run) reached an 8-bit limit are left
out (the mean of a clipped variable is not the clipped mean) and counted.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np

from neurodeploy.backend import recorded_rows
from neurodeploy.verdict import FAILED, MAX_TOLERANCE, NOT_CHECKED, PASSED
from neurodeploy.emu.batch import simulate_batch
from neurodeploy.emu.engine import _parse, _tag_products, float_spec, shift_of, simulate

#: Rounding seeds in the ensemble.
ENSEMBLE_SIZE = 32
#: Family-wise false-alarm rate of the rounding link's tests.
ALPHA = 0.01
#: Smallest standard deviation assumed for a synapse-step (Lava weight units).
SIGMA_FLOOR = 0.5
#: Slack on the best realisation's deviation (float summation order) and absolute floor.
CONSTANTS_SLACK, CONSTANTS_FLOOR = 0.05, 1e-9
#: Relative step of the finite difference giving each constant's sensitivity.
SENSITIVITY_STEP = 1.0 / 16
#: Checkpoints of the rounding link's tests (evenly spaced, the last step included).
CHECKPOINTS = 40
#: Most float64 values one recorded trajectory may hold; longer runs are compared every k-th step.
RECORD_BUDGET = 4_000_000
TRACE_MAX = 127
WEIGHT_LIMITS = {"excitatory": (0, 255), "mixed": (-256, 255), "inhibitory": (-255, 0)}
WIDTH = {"x1": 7, "x2": 7, "y1": 7, "y2": 7, "y3": 7, "w": 9, "t": 9}
#: Time constant Loihi3FLearningRule gives the y traces the post side supplies (2^16 - 1 steps).
SUPPLIED_TAU = 2 ** 16 - 1


def nearest_representable(c: float) -> tuple:
    """(S, E, S*2^E) nearest to ``c`` among 4-bit mantissas -8..7 and exponents -7..8 (0 included)."""
    best = (0, 0, 0.0)
    for e in range(-7, 9):
        for s in range(-8, 8):
            v = s * 2.0 ** e
            if abs(v - c) < abs(best[2] - c) - 1e-300 or (abs(v - c) == abs(best[2] - c) and abs(s) < abs(best[0])):
                best = (s, e, v)
    return best


def _shift(factors) -> int:
    return max(0, sum(WIDTH[f] for f in factors) + 4 - 15)


def _key(dependency, factors, target="dw") -> tuple:
    return (target, "u" if dependency.startswith("u") else dependency, tuple(sorted(factors)))


@dataclass
class Realisation:
    """The independent realisation of a fixed plan (see the module docstring)."""

    weight_scale: float
    impulses: dict  # slot -> Lava impulse (the plan's)
    taus: dict  # slot -> steps (the rule's)
    sign_mode: str
    limits: tuple  # 8-bit limits of the sign mode
    products: list  # dicts: term, dependency, factors, target, requested, exact, best, realised, e_best, e_real, shift
    problems: list = field(default_factory=list)  # structural failures, in words
    supplied: tuple = ()  # y slots the post side supplies (three-factor plans): no impulse, tau 2^16 - 1


def realise(rule, engine, plan) -> Realisation:
    """Recompute every constant of ``plan`` from the lowering ``engine`` and the plan's scales
    (the weight scale, the trace impulses, the tag's scale)."""

    problems = []
    s_w = float(plan.weight_scale)
    sign_mode = "excitatory" if rule.weight.w_min >= 0 else ("inhibitory" if rule.weight.w_max <= 0 else "mixed")
    by_name = {t.name: t for t in plan.traces}
    impulses, taus, scales = {}, {}, {}
    for name, slot in engine.trace_slots:
        trace = engine.rule.trace(name)  # as lowered: a negative jump rewritten as a positive one
        taus[slot] = rule.tau_steps(trace)
        t = by_name.get(name)
        if t is None:
            problems.append(f"trace '{name}' has no impulse in the plan")
            impulses[slot], scales[slot] = 1.0, 1.0 / trace.jump
            continue
        if slot in getattr(plan, "saturating", ()):  # a reset to a: the scale is 127 / a
            from neurodeploy.compile.lowering import reset_level

            impulses[slot], scales[slot] = float(t.impulse), float(t.impulse) / reset_level(trace)
            if float(t.impulse) != TRACE_MAX:
                problems.append(f"trace '{name}': a saturation reset needs impulse {TRACE_MAX} (got {t.impulse:g})")
            continue
        m = float(t.impulse)
        if not (m == int(m) and 1 <= m <= TRACE_MAX):
            problems.append(f"trace '{name}': impulse {m:g} is not a whole number in 1..{TRACE_MAX} "
                            "(fractional impulses round with a bias)")
        impulses[slot], scales[slot] = m, m / trace.jump
    supplied = tuple(slot for _, slot in engine.trace_slots if plan.three_factor and slot.startswith("y"))
    if engine.tag:
        t = by_name.get(engine.tag)
        scales["t"] = float(t.scale) if t is not None else 1.0
        if t is None:
            problems.append(f"synapse trace '{engine.tag}' (the tag) has no scale in the plan")
    lava_rule, parsed = _parse(plan, 7)
    realised = {}
    for target, p in [("dw", p) for p in parsed] + [("dt", p) for p in _tag_products(lava_rule)]:
        key = _key(p.dependency, [f[0] for f in p.factors], target)
        if any(f[1] is not None or f[2] for f in p.factors):
            problems.append(f"product '{key}' has a constant or sgn() factor the lowering never makes")
        realised[key] = realised.get(key, 0.0) + p.mantissa * 2.0 ** (p.s_exp - 7)
    if engine.decimate_exponent is not None and lava_rule.decimate_exponent != engine.decimate_exponent:
        problems.append(f"u{lava_rule.decimate_exponent} instead of the lowering's u{engine.decimate_exponent}")
    if int(lava_rule.t_epoch) != rule.t_epoch:
        problems.append(f"t_epoch {lava_rule.t_epoch} instead of the rule's {rule.t_epoch}")
    for slot, tau in taus.items():
        got = float(getattr(lava_rule, f"{slot}_tau"))
        if slot in supplied:
            tau = SUPPLIED_TAU  # Loihi3FLearningRule's, for the values it receives
        if not math.isclose(got, tau, rel_tol=1e-12):
            problems.append(f"trace {slot}: tau {got:g} steps instead of the rule's {tau:g}")
    products = []
    unit = dict(scales, w=1.0 / s_w)  # Lava units per rule unit
    for p in engine.products:
        key = _key(p.dependency, p.factors, p.target)
        shift = _shift(p.factors)
        exact = p.coefficient * unit["t" if p.target == "dt" else "w"]
        for f in p.factors:
            exact /= unit[f]
        requested = exact * 2.0 ** shift
        s, e, best = nearest_representable(requested)
        real = realised.pop(key, 0.0)
        e_best = abs(best - requested) / abs(requested) if requested else 0.0
        e_real = abs(real - requested) / abs(requested) if requested else (0.0 if real == 0 else math.inf)
        products.append({"term": p.term, "dependency": p.dependency, "factors": list(p.factors), "target": p.target,
                         "requested": requested, "best": best, "best_S": s, "best_E": e, "realised": real,
                         "e_best": e_best, "e_real": e_real, "shift": shift, "exact": exact})
        if e_real > e_best + 1e-9:
            problems.append(f"constant of '{p.term}' realised as {real:.6g} ({100 * e_real:.3g}% off) where the "
                            f"engine realises {s}*2^{e} = {best:.6g} ({100 * e_best:.3g}% off)")
    for key, value in realised.items():
        if value != 0:
            problems.append(f"{key[0]} product {key[1]} * {' * '.join(key[2])} ({value:g}) is not in the lowered rule")
    return Realisation(s_w, impulses, taus, sign_mode, WEIGHT_LIMITS[sign_mode], products, problems, supplied)


class _Modes:
    """The plan-like object the emulator needs beside a RuleSpec."""

    def __init__(self, sign_mode, bounds, saturating=()):
        self.mode, self.sign_mode, self.w_lava_bounds = "float", sign_mode, bounds
        self.saturating = tuple(saturating)  # float traces clipped at 127: the image of a saturation reset


def record_stride(steps: int, synapses: int) -> int:
    return max(1, math.ceil(steps * synapses / RECORD_BUDGET))


def _run_spec(real: Realisation, rule, trains, coefficients, w0_lava, bounds, stride, saturating=(), supplied=None):

    impulses = {k: (0.0 if k in real.supplied else v) for k, v in real.impulses.items()}
    taus = {k: (SUPPLIED_TAU if k in real.supplied else v) for k, v in real.taus.items()}
    spec = float_spec([(p["dependency"], c, p["factors"], p["target"]) for p, c in zip(real.products, coefficients)],
                      impulses, taus, rule.t_epoch)
    return simulate(_Modes(real.sign_mode, bounds, saturating), w0_lava, trains.pre, trains.post, spec=spec,
                    supplied=supplied, record_rows=recorded_rows(trains.steps, stride), scale=real.weight_scale, mode="float")


def _fixed_w0(w0, s_w, limits, sign_mode):
    w = np.clip(np.rint(np.asarray(w0, dtype=float) / s_w), *limits).astype(np.int64)
    if sign_mode == "mixed":
        w = (w >> 1) << 1  # Lava truncates the LSB at the first step
    return w


def constants_margin(rule, plan, trains) -> float:
    """How far the engine's best constants alone move the mean weight from the exact rule's, in units
    of the range: the largest difference, over the recorded steps, of the mean over the present synapses
    (same initial weights, exact arithmetic, open loop on ``trains``). The realised constants cannot do
    better than the best ones (the constants link judges that); a difference in distribution of this size
    is the constants share, not the deployment's. Derived from the rule and the plan's scales, not from its
    constants: a plan with a wrong constant has the same margin."""
    from neurodeploy.compile.lowering import lower

    real = realise(rule, lower(rule, approximate=True), plan)
    stride = record_stride(trains.steps, trains.n_pre * trains.n_post)
    s_w = real.weight_scale
    exact = [p["exact"] for p in real.products]
    best = [p["best"] * 2.0 ** -p["shift"] for p in real.products]
    bounds = (rule.weight.w_min / s_w, rule.weight.w_max / s_w)
    w0 = np.asarray(trains.w0, dtype=float) / s_w
    sat = getattr(plan, "saturating", ())
    F = _run_spec(real, rule, trains, exact, w0, bounds, stride, sat)
    I = _run_spec(real, rule, trains, best, w0, bounds, stride, sat)
    present = np.ones(F.shape[1:], bool) if trains.mask is None else trains.mask
    if not present.any():
        return 0.0
    return float(np.max(np.abs(I[:, present].mean(axis=1) - F[:, present].mean(axis=1)))) / rule.weight.range


def rounding_bias(rule, plan, trains, k: int = 8) -> float:
    """How far Loihi's rounding alone moves the mean weight of ``plan`` on ``trains``, in units of the
    range: the largest difference, over the recorded steps, between the mean over the present synapses
    of ``k`` fixed-point runs (rounding seeds; one batched call) and of the same plan in exact arithmetic
    (its constants, impulses and initial weights). Lava's fixed point is biased downwards by the floors
    of shifted products and by its stochastic decays; this is the plan's own rounding, whatever its
    constants."""

    stride = record_stride(trains.steps, trains.n_pre * trains.n_post)
    rows = recorded_rows(trains.steps, stride)
    w0 = plan.weights_to_lava(trains.w0)
    w0_float = (np.asarray(w0, dtype=np.int64) >> 1) << 1 if plan.sign_mode == "mixed" else w0
    R = simulate(plan, w0_float, trains.pre, trains.post, record_rows=rows, scale=plan.weight_scale, mode="float")
    members, _ = simulate_batch(plan, w0, trains.pre, trains.post, ensemble_seeds(trains.seed, k), record_rows=rows,
                                limits=tuple(plan.w_lava_bounds))
    present = np.ones(R.shape[1:], bool) if trains.mask is None else trains.mask
    if not present.any():
        return 0.0
    fixed_mean = members[:, :, present].astype(float).mean(axis=(0, 2)) * plan.weight_scale
    return float(np.max(np.abs(fixed_mean - R[:, present].mean(axis=1)))) / rule.weight.range


def constants_link(rule, engine, plan, trains) -> tuple:
    """(entry, context) of the constants link; the context feeds the rounding link."""
    real = realise(rule, engine, plan)
    stride = record_stride(trains.steps, trains.n_pre * trains.n_post)
    s_w, w_range = real.weight_scale, rule.weight.range
    exact = [p["exact"] for p in real.products]
    best = [p["best"] * 2.0 ** -p["shift"] for p in real.products]
    f_bounds = (rule.weight.w_min / s_w, rule.weight.w_max / s_w)
    w0_best = _fixed_w0(trains.w0, s_w, real.limits, real.sign_mode)
    sat = getattr(plan, "saturating", ())
    sup_exact = sup = None
    if real.supplied:  # three-factor: F gets the exact supplied values, I and R the plan's integers
        from neurodeploy.compile.loihi import supplied_traces

        sup = supplied_traces(rule, plan, trains)
        sup_exact = supplied_traces(rule, plan, trains, rounded=False)
    F = _run_spec(real, rule, trains, exact, np.asarray(trains.w0, dtype=float) / s_w, f_bounds, stride, sat,
                  sup_exact)
    I = _run_spec(real, rule, trains, best, w0_best.astype(float), real.limits, stride, sat, sup)

    w0_plan = plan.weights_to_lava(trains.w0)
    if plan.sign_mode == "mixed":
        w0_plan = (np.asarray(w0_plan, dtype=np.int64) >> 1) << 1
    R = simulate(plan, w0_plan, trains.pre, trains.post, record_rows=recorded_rows(trains.steps, stride),
                 scale=plan.weight_scale, mode="float", supplied=sup)
    def on(x):  # the synapses that exist (a mask: the dense runs' other synapses are no synapses)
        return x if trains.mask is None else x[:, trains.mask]

    d_best = float(np.nanmax(np.abs(on(I) - on(F)))) / w_range if F.size else 0.0
    d = float(np.max(np.abs(on(R) - on(F)))) / w_range if F.size else 0.0
    if not np.isfinite(on(R)).all():
        d = math.inf
    tol = (1 + CONSTANTS_SLACK) * d_best + CONSTANTS_FLOOR
    constants = []
    for k, p in enumerate(real.products):
        g = None
        if best[k] != 0:
            bumped = list(best)
            bumped[k] = best[k] * (1 + SENSITIVITY_STEP)
            Ik = _run_spec(real, rule, trains, bumped, w0_best.astype(float), real.limits, stride, sat, sup)
            g = float(np.max(np.abs(on(Ik) - on(I)))) / w_range / SENSITIVITY_STEP
        constants.append({"term": p["term"], "dependency": p["dependency"], "factors": p["factors"],
                          "requested": p["requested"], "engine_best": p["best"], "realised": p["realised"],
                          "best_rel_error": p["e_best"], "rel_error": p["e_real"], "shift": p["shift"],
                          "sensitivity": g,
                          "smallest_detected_rel_error": (tol + d) / g if g else None})
    entry = {"reference": "float: exact", "candidate": "float: fixed constants",
             "share": "constants", "max_abs_error_normalized": d,
             "rmse_normalized": float(np.sqrt(np.mean((on(R) - on(F)) ** 2))) / w_range if F.size else 0.0,
             "tolerance": {"max_abs": tol, "rmse": None, "kind": "engine's best constants"},
             "best_realisation_error_normalized": d_best, "constants": constants,
             "structural_problems": list(real.problems), "compared_every": stride}
    if real.problems:
        entry.update(outcome=FAILED, message="; ".join(real.problems[:3]))
    elif not d <= tol:
        entry.update(outcome=FAILED, message=f"the plan's constants move the trajectory {d:.3g} of the range from "
                                             f"the exact rule; the engine's best constants {d_best:.3g}")
    elif tol > MAX_TOLERANCE:
        entry.update(outcome=NOT_CHECKED, message=f"the engine's best constants already deviate {d_best:.3g} of the "
                                                  "range (tolerance too wide)")
    else:
        entry["outcome"] = PASSED
    entry["passed"] = entry["outcome"] == PASSED
    return entry, {"R": R, "F": F, "stride": stride, "realisation": real, "supplied": sup,
                   "w0_realised": np.asarray(w0_plan, dtype=float) * plan.weight_scale}


def ensemble_seeds(seed, k: int) -> list:
    """(trace seed, weight-rounding seed) pairs of the ensemble, derived from the trains' seed."""
    base = 0 if seed is None else int(seed) % 2 ** 63
    states = np.random.SeedSequence([base, 0x5EED]).generate_state(2 * k, dtype=np.uint32)
    return [(int(states[2 * i]) % 2 ** 30, int(states[2 * i + 1]) % 2 ** 30) for i in range(k)]


def _floor_bias(plan, trains, rule, rows, block=None) -> np.ndarray:
    """Largest downward bias (Lava units) of shifted products' floors up to each recorded row: (rows, n_post,
    n_pre); ``block`` (a, b): of the post neurons a..b-1 only (the same numbers)."""

    lava_rule, products = _parse(plan, 7)
    e = rule.t_epoch
    steps = trains.steps
    a, b = (0, trains.n_post) if block is None else block
    epoch_end = np.zeros(steps, dtype=bool)
    epoch_end[e - 1::e] = True

    def cum_epochs(raster):
        n_epochs = -(-steps // e)
        pad = n_epochs * e - steps
        fired = np.pad(raster, ((0, 0), (0, pad))).reshape(raster.shape[0], n_epochs, e).any(axis=2)
        # count at step t: epochs ended by t with a spike
        per_step = np.zeros((raster.shape[0], steps), dtype=np.int64)
        ends = np.flatnonzero(epoch_end)
        per_step[:, ends] = fired[:, :ends.size]
        return np.cumsum(per_step, axis=1)[:, rows]

    out = np.zeros((rows.size, b - a, trains.n_pre))
    cum_pre = cum_post = None
    for p in products:
        shift = shift_of(p)
        if not shift:
            continue
        per_eval = (1 - 2.0 ** -shift) * 2.0 ** (p.s_exp - 7)
        if p.dependency == "x0":
            cum_pre = cum_epochs(trains.pre) if cum_pre is None else cum_pre
            out += per_eval * cum_pre.T[:, None, :]
        elif p.dependency == "y0":
            cum_post = cum_epochs(trains.post[a:b]) if cum_post is None else cum_post
            out += per_eval * cum_post.T[:, :, None]
        else:  # u epochs: every 2^k-th (Lava's uk: int(t / t_epoch) % 2^k == 0)
            k = lava_rule.decimate_exponent or 0
            u_end = epoch_end & ((np.arange(1, steps + 1) // e) % 2 ** k == 0)
            out += per_eval * np.cumsum(u_end)[rows][:, None, None]
    return out


#: Most bytes the rounding link holds for one block of post neurons (the K members' states and checkpoints,
#: their float copy, the tests' arrays); above it the ensemble runs block by block, each reduced to its mean
#: and variance before the next (exact: synapses do not interact, and every random number of a member is one
#: per step for the whole connection, so a block's members are the full run's rows bit for bit).
ROUNDING_BLOCK_BYTES = 2 ** 30
#: Float64 arrays of a block's checkpoints alive at once in the tests (mean, variance, R, d, sd, se, bias, ...).
_TEST_ARRAYS = 16


def rounding_blocks(n_post: int, n_pre: int, k: int, checkpoints: int, budget: int | None = None) -> list:
    """[(a, b)] post-neuron ranges of the rounding link's blocks: each within ``budget`` bytes
    (default :data:`ROUNDING_BLOCK_BYTES`); one block when the whole ensemble fits."""
    budget = ROUNDING_BLOCK_BYTES if budget is None else budget
    per_row = n_pre * (k * (2 + 2 * checkpoints + 8) + 8 * _TEST_ARRAYS * checkpoints)
    rows = max(1, min(n_post, int(budget // max(1, per_row))))
    return [(a, min(n_post, a + rows)) for a in range(0, n_post, rows)]


def rounding_link(rule, plan, trains, context, single=None, k: int = ENSEMBLE_SIZE, supplied=None,
                  block_bytes: int | None = None) -> dict:
    """The rounding link: ``k`` emu-fixed runs against R, and ``single`` (a fixed run) in the envelope.

    The ``k`` runs are one batched emulator call (:func:`neurodeploy.emu.batch.simulate_batch`) per block
    of post neurons (:func:`rounding_blocks`: one block unless the ensemble exceeds ``block_bytes``),
    recorded at the checkpoints only and reduced to their mean and variance block by block; the tests then
    run block by block too (their Bonferroni count from a first pass). ``single``: a
    :class:`~neurodeploy.backend.RunResult` (rule units; its recorded steps and synapses) or a (steps,
    n_post, n_pre) array of every step; ``supplied``: the y traces a three-factor plan gets from the post
    side (integers; the same in every run; one block)."""
    from scipy import stats

    R, stride = context["R"], context["stride"]
    s_w, w_range = plan.weight_scale, rule.weight.range
    lo, hi = plan.w_lava_bounds
    n_post, n_pre = trains.n_post, trains.n_pre
    w0 = plan.weights_to_lava(trains.w0)
    seeds = ensemble_seeds(trains.seed, k)
    rows_all = recorded_rows(trains.steps, stride)
    pick = np.unique(np.linspace(0, R.shape[0] - 1, min(CHECKPOINTS, R.shape[0])).round().astype(int))
    checks = rows_all[pick]
    blocks = [(0, n_post)] if supplied is not None else rounding_blocks(n_post, n_pre, k, pick.size, block_bytes)
    mean = np.empty((pick.size, n_post, n_pre))
    var = np.zeros((pick.size, n_post, n_pre))
    first = np.empty((n_post, n_pre), dtype=np.int64)
    for a, b in blocks:
        members, first[a:b] = simulate_batch(plan, w0[a:b], trains.pre, trains.post[a:b], seeds, record_rows=checks,
                                             limits=(lo, hi), supplied=supplied)
        for r in range(members.shape[1]):  # one checkpoint at a time: K x synapses float64
            m = members[:, r].astype(float)
            mean[r, a:b] = m.mean(axis=0)
            if k > 1:
                var[r, a:b] = m.var(axis=0, ddof=1)
        del members
    sub = None  # the single run at the checkpoints: its rows, values, limits and grid
    if single is not None:
        if isinstance(single, np.ndarray):
            s_rows, s_traj, posts, pres = np.arange(single.shape[0]), single, None, None
        else:
            s_rows, s_traj, posts, pres = single.rows, single.trajectory, single.posts, single.pres
        s_lava = np.rint(s_traj / s_w)
        at = np.maximum.accumulate((s_lava <= lo) | (s_lava >= hi), axis=0)
        idx = np.searchsorted(s_rows, checks)
        idx_c = np.minimum(idx, s_rows.size - 1)
        has = (idx < s_rows.size) & (s_rows[idx_c] == checks)  # checkpoints the single run recorded
        sub = (np.flatnonzero(has), idx_c, s_lava, at, np.arange(n_post) if posts is None else np.asarray(posts),
               np.arange(n_pre) if pres is None else np.asarray(pres))

    def block_ok(a, b):
        """(ok, single_lava) of posts a..b-1: the synapse-steps tested, the single run there (NaN: not recorded)."""
        R_lava = R[:, a:b] / s_w
        touched = np.maximum.accumulate((R_lava <= lo + 1e-9) | (R_lava >= hi - 1e-9), axis=0)
        ok = ~(touched[pick] | (first[None, a:b] <= checks[:, None, None]))
        if trains.mask is not None:
            ok &= trains.mask[None, a:b]  # only the synapses that exist
        single_lava = None
        if sub is not None:
            recorded, idx_c, s_lava, at, s_posts, s_pres = sub
            inside = (s_posts >= a) & (s_posts < b)
            grid = np.ix_(s_posts[inside] - a, s_pres)
            single_lava = np.full(ok.shape, np.nan)
            single_at = np.zeros(ok.shape, dtype=bool)
            for r in recorded:
                single_lava[r][grid] = s_lava[idx_c[r]][inside]
                single_at[r][grid] = at[idx_c[r]][inside]
            ok &= ~single_at
        return ok, R_lava[pick], single_lava

    tested = env_tested = 0
    for a, b in blocks:  # the count of tests (for q)
        ok, _, single_lava = block_ok(a, b)
        tested += int(ok.sum())
        env_tested += 0 if single_lava is None else int((ok & ~np.isnan(single_lava)).sum())
    n_tests = tested + env_tested
    entry = {"reference": "float: fixed constants", "candidate": f"emu-fixed x{k}",
             "share": "rounding", "ensemble_size": k, "compared_every": stride,
             "checkpoints": int(pick.size), "synapse_steps_tested": tested,
             "synapse_steps_left_out_at_limit": int(mean.size) - tested, "alpha": ALPHA,
             "ensemble_run": "one batched emulator call (simulate_batch)" if len(blocks) == 1 else
             f"one batched emulator call (simulate_batch) per block of {blocks[0][1]} post neurons ({len(blocks)} "
             "blocks, reduced block by block)"}
    if n_tests == 0:
        entry.update(outcome=NOT_CHECKED, passed=False, tolerance=None, max_abs_error_normalized=None,
                     rmse_normalized=None, message="every synapse reached an 8-bit limit: nothing left to test")
        return entry
    q = float(stats.t.ppf(1 - ALPHA / (2 * n_tests), k - 1))
    width_factor = math.sqrt(1 + 1 / k)
    max_d = tol = z_max = bias_max = sd_max = env_max = -np.inf
    sumsq = 0.0
    n_fail = n_out = 0
    worst = outside = None  # (key, message) of the worst mean failure, the first synapse-step outside
    for a, b in blocks:
        ok, R_pick, single_lava = block_ok(a, b)
        mean_b, var_b = mean[:, a:b], var[:, a:b]
        bias = _floor_bias(plan, trains, rule, checks, (a, b))
        sd = np.sqrt(var_b + SIGMA_FLOOR ** 2)
        se = sd / math.sqrt(k)
        d = mean_b - R_pick
        # inside [-bias - q se, q se]: distance beyond, in standard errors
        over = np.maximum(d - q * se, -bias - q * se - d)
        z_mean = np.where(ok, np.where(d > 0, d / se, np.maximum(0, -d - bias) / se), 0.0)
        mean_fail = ok & (over > 0)
        if ok.any():
            max_d = max(max_d, float(np.max(np.abs(d[ok]))))
            sumsq = sumsq + np.sum(d[ok] ** 2)
            tol = max(tol, float(np.max((q * se + bias)[ok])))
        z_max = max(z_max, float(z_mean.max()) if z_mean.size else -np.inf)
        bias_max = max(bias_max, float(bias.max()) if bias.size else -np.inf)
        sd_max = max(sd_max, float(np.sqrt(var_b).max()) if var_b.size else -np.inf)
        if mean_fail.any():
            n_fail += int(mean_fail.sum())
            r, i, j = np.argwhere(mean_fail)[np.argmax(np.where(mean_fail, over, -np.inf)[mean_fail])]
            key = (-float(over[r, i, j]), int(r), int(i) + a, int(j))
            if worst is None or key < worst[0]:
                worst = (key, f"ensemble mean off the realised-constants run at step {checks[r]} synapse ({i + a}, {j}): "
                              f"{d[r, i, j]:+.3g} Lava units, bound [{-bias[r, i, j] - q * se[r, i, j]:.3g}, "
                              f"{q * se[r, i, j]:.3g}]")
        if single_lava is not None:
            env_ok = ok & ~np.isnan(single_lava)
            width = q * sd * width_factor
            dev = np.nan_to_num(np.abs(single_lava - mean_b))
            env_fail = env_ok & (dev > width)
            env_max = max(env_max, float(np.max(np.where(env_ok, dev / width, 0))))
            if env_fail.any():
                n_out += int(env_fail.sum())
                r, i, j = np.argwhere(env_fail)[0]
                key = (int(r), int(i) + a, int(j))
                if outside is None or key < outside[0]:
                    outside = (key, f"the single fixed run leaves the ensemble's envelope at step {checks[r]} synapse "
                                    f"({i + a}, {j}): {dev[r, i, j]:.3g} Lava units from the mean, width "
                                    f"{width[r, i, j]:.3g}")
    entry.update(
        max_abs_error_normalized=max_d * s_w / w_range,
        rmse_normalized=float(np.sqrt(sumsq / tested)) * s_w / w_range,
        tolerance={"max_abs": tol * s_w / w_range, "rmse": None,
                   "kind": f"ensemble mean within q={q:.3g} standard errors (+ floor bias)"},
        q=q, largest_z_mean=z_max, floor_bias_max_lava=bias_max if bias_max > -np.inf else 0.0,
        ensemble_sd_max_normalized=sd_max * s_w / w_range)
    if checks[-1] == trains.steps - 1:  # the final step: for curves (popped by the harness)
        entry["_final"] = {"mean": mean[-1] * s_w, "k": k,
                           "se": np.sqrt(var[-1] + SIGMA_FLOOR ** 2) / math.sqrt(k) * s_w}
    problems = []
    if worst is not None:
        problems.append(worst[1] + f" ({n_fail} synapse-steps)")
    if sub is not None:
        entry["envelope"] = {"max_deviation_in_widths": env_max if env_max > -np.inf else 0.0,
                             "synapse_steps_outside": n_out, "synapse_steps_tested": env_tested}
        if outside is not None:
            problems.append(outside[1])
    if problems:
        entry.update(outcome=FAILED, message="; ".join(problems))
    elif entry["tolerance"]["max_abs"] > MAX_TOLERANCE:
        entry.update(outcome=NOT_CHECKED, message=f"the ensemble's bound {entry['tolerance']['max_abs']:.3g} is above "
                                                  f"{MAX_TOLERANCE:g} of the range (tolerance too wide)")
    else:
        entry["outcome"] = PASSED
    entry["passed"] = entry["outcome"] == PASSED
    return entry


#: The exact realisation against brian2-step: the same arithmetic in another order.
ANCHOR_TOLERANCE = 1e-9


def anchor_link(rule, context, step, steps: int, mask=None) -> dict:
    """brian2-step against F, the chain's exact start: the lowering and the fixed plan's scales
    (weight scale, impulses) realise the rule exactly before any rounding. ``step``: brian2-step's
    :class:`~neurodeploy.backend.RunResult` (its recorded steps and synapses) or its trajectory."""
    stride = context["stride"]
    F = context["F"]
    f_rows = recorded_rows(steps, stride)
    if isinstance(step, np.ndarray):
        s_rows, traj, posts, pres = np.arange(step.shape[0]), step, None, None
    else:
        s_rows, traj = step.rows, step.trajectory
        posts, pres = getattr(step, "posts", None), getattr(step, "pres", None)
    common, fi, si = np.intersect1d(f_rows, s_rows, return_indices=True)
    grid = np.ix_(np.arange(F.shape[1]) if posts is None else posts, np.arange(F.shape[2]) if pres is None else pres)
    diff = np.abs(F[fi][(slice(None),) + grid] - traj[si]) / rule.weight.range if common.size else np.zeros(0)
    if mask is not None and diff.size:  # ``mask``: the synapses that exist
        diff = diff[:, mask[grid]]
    d = float(np.max(diff)) if diff.size else 0.0
    entry = {"reference": "brian2-step", "candidate": "float: exact", "share": "lowering",
             "max_abs_error_normalized": d, "rmse_normalized": float(np.sqrt(np.mean(diff ** 2))) if diff.size else 0.0,
             "tolerance": {"max_abs": ANCHOR_TOLERANCE, "rmse": None, "kind": "exact"}, "compared_every": stride,
             "compared_rows": int(common.size),
             "outcome": PASSED if d <= ANCHOR_TOLERANCE else FAILED}
    if not common.size:
        entry.update(outcome=NOT_CHECKED, message="no step recorded by both")
    elif entry["outcome"] == FAILED:
        entry["message"] = "the fixed plan's scales with exact constants do not reproduce the rule"
    entry["passed"] = entry["outcome"] == PASSED
    return entry


#: Synapse-steps above which the chain's explanatory links (constants, anchor, rounding) run on a sample of
#: the post neurons, every pre neuron kept (:func:`chain_posts`): the protocols' own run limit
#: (:data:`neurodeploy.limits.MAX_SYNAPSE_STEPS`, 2e10), so that the chain never costs more than the largest
#: protocol a backend runs by default.
CHAIN_SYNAPSE_STEPS = 2 * 10 ** 10


def chain_posts(trains, keep=None, budget: float | None = None) -> np.ndarray | None:
    """Post neurons the chain runs on: None (every one) up to ``budget`` synapse-steps (default
    :data:`CHAIN_SYNAPSE_STEPS`); above it the post neurons ``keep`` (those the runs recorded: the
    fidelity verdict's and the envelope's synapses) and evenly spaced others up to ``budget / (n_pre x
    steps)`` neurons, sorted. Curve protocols and closed loops are never sampled."""
    budget = CHAIN_SYNAPSE_STEPS if budget is None else budget
    if trains.n_post * trains.n_pre * trains.steps <= budget or trains.curve is not None:
        return None
    n = max(1, int(budget // (trains.n_pre * trains.steps)))
    keep = np.unique(np.asarray([] if keep is None else keep, dtype=np.intp))
    extra = n - keep.size
    spaced = np.unique(np.linspace(0, trains.n_post - 1, extra).round().astype(np.intp)) if extra > 0 else keep[:0]
    rows = np.union1d(keep, spaced)
    return None if rows.size >= trains.n_post else rows


def _on_posts(res, rows):
    """A run (a RunResult, or a (steps, n_post, n_pre) array) on the post neurons ``rows`` only, its post
    indices renumbered to positions in ``rows``; None stays None."""
    if res is None:
        return None
    if isinstance(res, np.ndarray):
        return res[:, rows]
    if res.posts is None:
        return dataclasses.replace(res, trajectory=res.trajectory[:, rows])
    posts = np.asarray(res.posts)
    inside = np.isin(posts, rows)
    return dataclasses.replace(res, trajectory=res.trajectory[:, inside], posts=np.searchsorted(rows, posts[inside]))


def quantization_chain(rule, plans: dict, trains, single=None, k: int = ENSEMBLE_SIZE, step=None,
                       unanchored: str | None = None, posts=None) -> list:
    """The constants and rounding entries for ``plans["fixed"]`` on ``trains``;
    ``single``: a fixed-point run (a RunResult, rule units, or its trajectory) to place in the ensemble
    (lava-fixed's or emu-fixed's); ``step``: brian2-step's run, to anchor the chain's exact start (an
    extra lowering entry); ``unanchored``: why there is none (default: brian2-step did not run).

    Above :data:`CHAIN_SYNAPSE_STEPS` the links run on a sample of the post neurons (:func:`chain_posts`:
    ``posts``, the recorded ones of ``single`` and ``step``, and evenly spaced others; every pre neuron):
    the sample's runs are the full runs' rows bit for bit (synapses do not interact; every random number is
    one per step for the whole connection), the tolerances come from the rule and the plan as before (the
    Bonferroni count from the tests made), each entry says what was sampled (``sampled``) and the finals
    carry their post neurons (``posts``)."""
    from neurodeploy.compile.lowering import lower

    plan = plans["fixed"]
    keep = [np.asarray(p) for p in (posts, getattr(single, "posts", None), getattr(step, "posts", None))
            if p is not None]
    rows = chain_posts(trains, np.concatenate(keep) if keep else None)
    full = trains
    sampled = None
    if rows is not None:
        sampled = {"posts": int(rows.size), "of_posts": trains.n_post, "pres": trains.n_pre,
                   "synapses": int(rows.size) * trains.n_pre, "of_synapses": trains.n_post * trains.n_pre,
                   "how": f"above {CHAIN_SYNAPSE_STEPS:.0e} synapse-steps: the recorded post neurons and evenly spaced "
                          "others, every pre neuron (the full runs' rows, bit for bit)"}
        trains = dataclasses.replace(full, post=full.post[rows], w0=full.w0[rows],
                                     mask=None if full.mask is None else full.mask[rows],
                                     reward=None if full.reward is None else full.reward[rows])
        single, step = _on_posts(single, rows), _on_posts(step, rows)
    engine = lower(rule, approximate=True)
    constants, context = constants_link(rule, engine, plan, trains)
    if engine.approximations:
        step = None  # the exact start is the approximated rule: the approximation share compares it
    elif step is None and constants["outcome"] == PASSED:
        constants["message"] = "the exact start is not anchored to the reference: " + (
            unanchored or "brian2-step did not run")
    anchor = [] if step is None else [anchor_link(rule, context, step, trains.steps, trains.mask)]
    rounding = rounding_link(rule, plan, trains, context, single, k, context["supplied"])
    recorded = recorded_rows(trains.steps, context["stride"])
    if "_final" in rounding and recorded[-1] == trains.steps - 1:  # the fidelity verdict's expected learned change
        rounding["_finals"] = {"mean": rounding["_final"]["mean"], "exact": context["F"][-1], "realised": context["R"][-1],
                               "start_mean": plan.weights_from_lava(plan.weights_to_lava(trains.w0)),
                               "start_realised": context["w0_realised"], "posts": rows}
    if sampled is not None:
        for entry in anchor + [constants, rounding]:
            entry["sampled"] = dict(sampled)
        rounding.pop("_final", None)  # curves need every synapse (never sampled: curve protocols are small)
    return anchor + [constants, rounding]
