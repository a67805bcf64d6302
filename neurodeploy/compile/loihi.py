"""What Loihi's learning engine realises of a compiled rule, shared by every engine target (Lava and its
emulator): the seeds of the stochastic rounding, the LIF constants in 12-bit decays, static weights in
8 bits and a sign, the supplied y traces of three-factor rules, and why a rule, a mode or a network
cannot be deployed. No Lava import: the emulator and the verdict use these without Lava."""
from __future__ import annotations

import math
import numbers

import numpy as np

from neurodeploy.errors import NeurodeployError


#: Seed of the learning rule's random generators (stochastic rounding) in fixed point.
RNG_SEED = 7


MODES = ("float", "fixed")


#: mode -> Lava's select_tag
SELECT_TAGS = {"float": "floating_pt", "fixed": "fixed_pt"}


#: Loihi's fixed-point LIF: decays are 12-bit fractions.
DECAY_UNITY = 4096


#: A trace at this value is saturated (7 bits).
TRACE_SATURATION = 127


#: Largest seed of the stochastic rounding (as a network file's seed).
MAX_RNG_SEED = 2 ** 32 - 1


# -- arguments ---------------------------------------------------------------------------------
def check_rng_seed(rng_seed, source: str = "deploy") -> int:
    """``rng_seed`` as an int: a whole number 0..MAX_RNG_SEED (not a bool); one line otherwise, before
    Lava starts (its child process would raise at ``run`` and ``stop`` would hang)."""
    if isinstance(rng_seed, bool) or not isinstance(rng_seed, numbers.Integral) or not 0 <= rng_seed <= MAX_RNG_SEED:
        raise NeurodeployError(source, "rng_seed", f"must be a whole number from 0 to {MAX_RNG_SEED} (got {rng_seed!r})")
    return int(rng_seed)


def _real(value, source: str, field_name: str, what: str = "a finite number") -> float:
    """``value`` as a float: a finite real number (not a bool, not text, not complex, not beyond a float)."""
    try:
        number = float(value) if isinstance(value, numbers.Real) and not isinstance(value, bool) else math.nan
    except OverflowError:  # an int beyond 1e308
        number = math.inf
    if not math.isfinite(number):
        raise NeurodeployError(source, field_name, f"must be {what} (got {value!r})")
    return number


def _real_array(value, source: str, field_name: str, what: str) -> np.ndarray:
    """``value`` as a float array: numbers only (no bools, text, complex or objects); one line otherwise."""
    if isinstance(value, (bool, np.bool_)):
        raise NeurodeployError(source, field_name, f"must be {what} (got {value!r})")
    try:
        a = np.asarray(value)
    except (ValueError, TypeError):  # ragged nested lists
        raise NeurodeployError(source, field_name, f"must be {what} (got {type(value).__name__})") from None
    if a.dtype.kind not in "iuf":
        got = repr(value) if a.ndim == 0 else f"an array of dtype {a.dtype}"
        raise NeurodeployError(source, field_name, f"must be {what} (got {got})")
    return a.astype(float)


def unsupported_reason(rule, mode: str) -> str | None:
    """Why ``rule`` cannot run on the learning engine in ``mode`` (None when it can)."""
    from neurodeploy.compile.plan import approximation_reason, engine_reason

    reason = engine_reason(rule)
    if reason is not None:  # what the lowering's approximations cannot put on the engine either
        reason = approximation_reason(rule, mode)
    if reason is None and rule.has_reward and rule.t_epoch > 1:
        reason = ("three-factor rules with t_epoch > 1: the engine reads the supplied y traces as they are "
                  "at the epoch's end, not at the spike")
    return None if reason is None else f"not deployable to the learning engine: {reason}"


# -- the neuron -------------------------------------------------------------------------
def lif_params(mode: str, tau_u: float, tau_v: float, threshold: float, plan, dt: float = 1.0) -> dict:
    """Keyword arguments of Lava's ``LIF`` for a neuron driven by the deployed connection.

    ``tau_u``, ``tau_v``: current and voltage time constants, in the unit of ``dt``
    (default: steps); ``threshold``: the spike threshold in rule weight units
    (the summed weights of the synapses that spiked in the previous step drive ``u``).

    * float: ``du = dt / tau_u``, ``dv = dt / tau_v``, ``vth = threshold / weight_scale``;
    * fixed (Loihi's LIF): 12-bit decays, ``du = round(4096 dt / tau_u) - 1`` (Loihi decays u by
      ``(4096 - du - 1) / 4096``: the offset of one), ``dv = round(4096 dt / tau_v)``, and ``vth``
      in Lava weight units, rounded (the model shifts it and the input by 6 bits alike).

    Every number must be finite; ``dt`` > 0, ``tau_u`` and ``tau_v`` at least ``dt`` (a shorter time
    constant decays by more than the whole value in one step), ``threshold`` > 0 (one line otherwise).
    Brian2 quantities are taken for the times (``tau_u=5*ms, tau_v=10*ms, dt=1*ms``): all three then."""
    _check_mode(mode)
    if any(hasattr(v, "dim") and not isinstance(v, (int, float)) for v in (tau_u, tau_v, dt)):
        tau_u, tau_v, dt = (_seconds(v, name) for v, name in ((tau_u, "tau_u"), (tau_v, "tau_v"), (dt, "dt")))
    dt = _real(dt, "deploy", "dt", "a finite number > 0")
    if not dt > 0:
        raise NeurodeployError("deploy", "dt", f"must be a finite number > 0 (got {dt:g})")
    for name, tau in (("tau_u", tau_u), ("tau_v", tau_v)):
        if not _real(tau, "deploy", name, f"a finite number >= dt = {dt:g}") >= dt:
            raise NeurodeployError("deploy", name, f"must be at least dt = {dt:g}: a shorter time constant decays "
                                                   f"by more than the whole value in one step (got {float(tau):g})")
    if not _real(threshold, "deploy", "threshold", "a finite number > 0") > 0:
        raise NeurodeployError("deploy", "threshold", f"must be > 0 (got {float(threshold):g})")
    if plan is not CPU_SCALE:
        check_plan(plan)
    du, dv = dt / float(tau_u), dt / float(tau_v)
    if mode == "float":
        return {"du": du, "dv": dv, "vth": float(threshold) / plan.weight_scale, "bias_mant": 0.0}
    beyond = _vth_beyond(threshold, plan)
    if beyond is not None:
        raise NeurodeployError("deploy", "threshold", f"{beyond} (got {float(threshold):g})")
    return {"du": max(0, int(round(du * DECAY_UNITY)) - 1), "dv": int(round(dv * DECAY_UNITY)),
            "vth": int(round(float(threshold) / plan.weight_scale)), "bias_mant": 0}


def _seconds(value, field_name: str) -> float:
    """A Brian2 time quantity in seconds; a number is refused (times are given all with units or none)."""
    if not (hasattr(value, "dim") and not isinstance(value, (int, float))):
        raise NeurodeployError("deploy", field_name, f"must be a time with its unit like the others (e.g. 1*ms) "
                                                     f"(got {value!r})")
    from brian2 import have_same_dimensions, second

    if not have_same_dimensions(value, second):
        raise NeurodeployError("deploy", field_name, f"must be a time (got {value!r})")
    return float(value / second)


def check_plan(plan, mode: str | None = None):
    """Refuse anything but a :class:`~neurodeploy.compile.plan.Plan` (of ``mode``, when given) in one line."""
    from neurodeploy.compile.plan import Plan

    if not isinstance(plan, Plan):
        raise NeurodeployError("deploy", "plan", f"must be a Plan (neurodeploy.compile.plan.Plan, e.g. from "
                                                 f"compile_plans) (got {type(plan).__name__})")
    if mode is not None and plan.mode != mode:
        raise NeurodeployError("deploy", "plan", f"is a {plan.mode} plan: mode is {mode!r} (got plan.mode {plan.mode!r})")
    return plan


def _check_mode(mode):
    if mode not in MODES:
        raise NeurodeployError("deploy", "mode", f"must be 'float' or 'fixed' (got {mode!r})")


# -- networks ------------------------------------------------------------------------------
#: The "plan" of a network on lava-cpu: weights in rule units (RuleSynapses), float LIFs and Dense.
CPU_SCALE = type("CpuScale", (), {"weight_scale": 1.0, "mode": "float"})()


#: Loihi's static weights: 8 bits and a sign (``clip_weights(num_bits=8)`` in Lava's bit-accurate Dense).
STATIC_WEIGHT_MAX = 255


def static_weights_lava(network, projection, plan, rule) -> np.ndarray:
    """The static ``projection``'s weights (n_target, n_source) as its Lava ``Dense`` gets them:
    float: rule units over ``plan.weight_scale``; fixed: integers at that scale (rounded), refused with
    one line when one does not fit 8 bits and a sign, or when a non-zero weight rounds to 0."""
    w = np.asarray(projection.weight, dtype=float) / plan.weight_scale
    if plan.mode == "float":
        return w
    w_int = np.rint(w)
    where = f"projections[{projection.index}].weight"
    present = w[projection.mask]
    value = float(present[0]) if present.size else 0.0  # one weight per projection
    given = value * plan.weight_scale / rule.weight.range  # the file's number (units of the weight range)
    if np.any(np.abs(w_int) > STATIC_WEIGHT_MAX):
        raise NeurodeployError(network.source, where, f"does not fit Loihi's 8 bits and a sign at the plan's weight "
                                                      f"scale: {value:g} Lava units, at most {STATIC_WEIGHT_MAX} "
                                                      f"(got {given:g})")
    if np.any((w_int == 0) & (w != 0)):
        raise NeurodeployError(network.source, where, f"rounds to 0 in fixed point at the plan's weight scale: "
                                                      f"{value:g} Lava units (got {given:g})")
    return w_int.astype(np.int32)


def sparse_zero_starts(plan, w_lava, mask) -> tuple | None:
    """(post, pre) of the first synapse of ``mask`` whose initial Lava weight is 0 (fixed: after the
    sign mode's 8-bit truncation), or None: Lava 0.10's ``LearningSparse`` drops such a synapse."""
    w = np.asarray(w_lava)
    if plan.mode == "fixed":
        w = np.rint(w).astype(np.int64)
        if plan.sign_mode == "mixed":
            w = (w >> 1) << 1
    zero = np.asarray(mask, dtype=bool) & (w == 0)
    return tuple(int(k) for k in np.argwhere(zero)[0]) if zero.any() else None


#: Loihi's fixed-point LIF holds v in 24 bits; the threshold is compared after a 6-bit shift.
LIF_VTH_MAX = (2 ** 23 - 1) >> 6


def _vth_beyond(threshold: float, plan) -> str | None:
    """In fixed point, why ``threshold`` (rule units) is beyond Loihi's 24-bit voltage (None when it is not)."""
    if plan.mode != "fixed":
        return None
    vth = float(threshold) / plan.weight_scale
    if np.isfinite(vth) and int(round(vth)) <= LIF_VTH_MAX:
        return None
    return (f"beyond Loihi's 24-bit voltage at the plan's weight scale: {vth:.0f} Lava units, at most {LIF_VTH_MAX} "
            "(the neurons could never spike)")


def check_lif_threshold(network, pop, threshold: float, plan) -> None:
    """Refuse a fixed-point LIF population whose threshold (``threshold``: rule units; in Lava units, shifted
    by 6 bits) is beyond the 24-bit voltage: it could never spike. Before :func:`lif_params`, which refuses
    the same without naming the network file."""
    reason = _vth_beyond(threshold, plan)
    if reason is not None:
        raise NeurodeployError(network.source, f"populations.{pop.name}.threshold", f"{reason} (got {pop.threshold:g})")


def network_plan_reason(rule, network, plan, w0=None) -> str | None:
    """Why ``network`` cannot be deployed with ``plan`` (a static weight or a threshold beyond Loihi's
    integers, a masked synapse starting at 0), or None: what :func:`deploy_network` would refuse, checked
    before anything runs (verify skips that mode's backends with this reason)."""
    w0 = network.plastic_w0() if w0 is None else w0
    try:
        for pr in network.projections:
            if not pr.plastic:
                static_weights_lava(network, pr, plan, rule)
            elif pr.mask.any():
                t, s = network.projection_slices(pr)
                block = w0[t, s]
                check_sparse_start(network, pr, plan.weights_to_lava(np.where(pr.mask, block, rule.weight.w_init)),
                                   plan, rule, block)
        for pop in network.lifs:
            check_lif_threshold(network, pop, pop.threshold * rule.weight.range, plan)
            lif_params(plan.mode, pop.tau_u_ms, pop.tau_v_ms, pop.threshold * rule.weight.range, plan, dt=rule.dt * 1e3)
    except NeurodeployError as exc:
        return str(exc)
    return None


def check_sparse_start(network, projection, w_lava: np.ndarray, plan, rule, w_rule: np.ndarray) -> None:
    """Refuse a masked plastic projection with a synapse whose initial Lava weight is 0 (fixed: after the
    8-bit truncation of the sign mode): Lava 0.10's ``LearningSparse`` drops zero weights from its
    structure at the first step (fixed point: the run stalls; float: the weights cannot be read back).
    Weights that reach 0 while learning stay present. ``w_rule``: the projection's initial weights, rule units."""
    if projection.mask.all():
        return
    w = np.asarray(w_lava)
    if plan.mode == "fixed":
        w = w.astype(np.int64)
        if plan.sign_mode == "mixed":
            w = (w >> 1) << 1
    zero = projection.mask & (w == 0)
    if zero.any():
        i, j = np.argwhere(zero)[0]
        position = (w_rule[i, j] - rule.weight.w_min) / rule.weight.range  # as the file's w0
        raise NeurodeployError(network.source, f"projections[{projection.index}].w0",
                               f"a plastic projection with a mask cannot start at Lava weight 0: Lava's "
                               f"LearningSparse drops zero weights at the first step; raise w0, or use p: 1 (and autapses: true in a recurrent projection) "
                               f"(got {position:g})")


def network_unsupported_reason(rule) -> str | None:
    """Why ``rule`` cannot learn in a network's plastic projections (None when it can)."""
    if rule.has_reward:
        return ("networks: a three-factor rule needs a reward schedule that computes the reward from the "
                "network's spikes (deploy_network(..., reward=RewardSchedule, steps=N))")
    return None


#: Loihi3FLearningRule gives y1..y3 a time constant of 2^16 - 1 steps, and Lava decays the values
#: it receives once before using them: the supplied values are divided by this in advance.
Y3F_DECAY = float(np.exp(-1.0 / np.iinfo(np.uint16).max))


def supplied_traces(rule, plan, trains, rounded: bool | None = None) -> dict:
    """Three-factor plans: the y traces the postsynaptic side supplies each step, in Lava units.

    Post traces and reward traces follow the step semantics (:mod:`neurodeploy.compile.stepper`): decay,
    then the step's jump (``J`` at a post spike, ``J * r`` for a reward ``r``), times the
    plan's scale. Float plans divide by :data:`Y3F_DECAY` (Lava decays received values once);
    fixed plans round to the nearest integer (``plan.supplied_rounding``) within -128..127 (the factor width of a
    7-bit trace in the MAC): Lava's stochastic decay by ``exp(-1/65535)`` then takes 1 off a value ``v`` with
    probability about ``v / 65535`` per step, which integers cannot anticipate. ``rounded=False``: a
    fixed plan's values unrounded (divided by the decay, as in float), for the verdict's exact run."""
    rounded = plan.mode == "fixed" if rounded is None else rounded
    out = {}
    for t in plan.traces:
        if not t.slot.startswith("y"):
            continue
        trace = rule.trace(t.name)
        a = float(np.exp(-1.0 / rule.tau_steps(trace)))
        drive = trains.post.astype(float) * trace.jump if trace.of == "post" else trains.reward_or_zeros() * trace.jump
        values = np.empty_like(drive)
        v = np.zeros(drive.shape[0])
        for n in range(drive.shape[1]):
            v = v * a + drive[:, n]
            values[:, n] = v
        if rounded:
            out[t.slot] = np.clip(np.rint(values * t.scale), -128, 127).astype(np.int64)
        else:
            out[t.slot] = values * t.scale / Y3F_DECAY
    return out
