"""The quantization plan: how a lowered rule is scaled onto the learning engine.

Lava works in its own units. With a weight scale :math:`s_w` (rule units
per Lava weight unit) and a trace scale :math:`k_t` (Lava trace units per rule
trace unit), a product :math:`a \\, D \\prod_t t^{n_t} w^{n_w}` of the rule
becomes, in Lava units,

.. math::

    c = a \\, s_w^{\\,n_w - 1} \\prod_t k_t^{-n_t}, \\qquad
    \\Delta w_L \\mathrel{+}= S 2^E \\, D \\prod_t t_L^{n_t} w_L^{n_w}

and ``S * 2**E`` (``S`` a 4-bit signed mantissa, ``-8 <= S <= 7``,
``-7 <= E <= 8``) must equal :math:`c` (float) or
:math:`c \\cdot 2^{shift}` (fixed point, where Lava's bit-approximate model
drops ``shift = max(0, sum of factor widths + 4 - 15)`` bits of a wide
product: widths are 7 per trace, 9 for w).

* ``float``: :math:`s_w` and :math:`k_t` are free floats. Each trace's scale
  is chosen so that the first product it completes is exactly ``±2**E``;
  the weight scale is the candidate (1, the range, the larger bound) with
  the smallest worst constant error. For both spine rules every constant is
  exact.
* ``fixed``: the weight scale maps the larger bound onto the 8-bit mantissa
  (255), so the engine's saturation is the rule's hard bound where the bound
  is 0 or the largest magnitude. Trace impulses are whole numbers (Lava's
  fractional impulses round with probability ``frac/128`` per spike, a
  bias), at most 127 and small enough that the protocol's peak trace stays
  within ``HEADROOM * 127``; among those, the impulse whose products' worst
  relative error is smallest wins.

The plan records, per constant, the value asked for, the value realised
and the relative error, and predicts a deviation band for ``lava-fixed``
against ``lava-float`` (see :func:`_predict_band`).
"""
from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass

import numpy as np

from neurodeploy.lava.lowering import EngineRule

#: Fraction of the 7-bit trace range the protocol's peak may use.
HEADROOM = 0.9
TRACE_MAX = 127  # 2**W_TRACE - 1
WEIGHT_MAX = 255  # 2**W_WEIGHTS_U - 1
FACTOR_WIDTH = {"x1": 7, "x2": 7, "y1": 7, "y2": 7, "y3": 7, "w": 9}
MANTISSAS = [s for s in range(-8, 8) if s != 0]
EXPONENTS = list(range(-7, 9))


@dataclass(frozen=True)
class ScaledProduct:
    dependency: str  # "x0", "y0" or "u0"
    factors: tuple  # Lava factors, e.g. ("w", "x1")
    term: str  # the rule's monomial
    coefficient: float  # a: the rule's constant (rule units)
    requested: float  # S*2^E that would make the product exact
    mantissa: int  # S
    exponent: int  # E
    realised: float  # S * 2**E
    rel_error: float  # |realised - requested| / |requested|
    shift: int  # bits Lava's fixed-point product drops (0 in float)

    @property
    def text(self) -> str:
        scale = f"{self.mantissa}*2^{self.exponent}" if abs(self.mantissa) != 1 else f"2^{self.exponent}"
        scale = scale.lstrip("-")
        if self.mantissa == 0:
            return ""
        body = " * ".join((scale, self.dependency) + self.factors)
        return ("- " if self.mantissa < 0 else "+ ") + body


@dataclass(frozen=True)
class TracePlan:
    name: str  # rule trace name
    slot: str  # Lava trace: x1, x2, y1, y2, y3
    tau_steps: float  # decay time constant in steps
    scale: float  # k: Lava trace units per rule trace unit
    impulse: float  # Lava impulse = k * jump
    peak: float  # largest value of the rule trace on the protocol (rule units)
    peak_lava: float  # peak * k; must stay <= 127 in fixed point


@dataclass(frozen=True)
class Plan:
    mode: str  # "float" or "fixed"
    weight_scale: float  # s_w: rule weight units per Lava weight unit
    sign_mode: str  # "excitatory", "inhibitory" or "mixed"
    w_lava_bounds: tuple  # bounds in Lava units that the backend enforces
    traces: tuple  # of TracePlan
    products: tuple  # of ScaledProduct
    dw: str  # the Loihi2FLearningRule dw string
    t_epoch: int
    band: dict  # predicted deviation (fixed): {"max_abs": .., "rmse": ..} normalized by the range
    notes: tuple  # what is approximated, in words
    three_factor: bool = False  # Loihi3FLearningRule: the y traces are supplied, not computed by the engine

    @property
    def max_rel_error(self) -> float:
        return max((p.rel_error for p in self.products), default=0.0)

    def weights_to_lava(self, w: np.ndarray) -> np.ndarray:
        scaled = np.asarray(w, dtype=float) / self.weight_scale
        if self.mode == "fixed":
            return np.clip(np.rint(scaled), *self.w_lava_bounds).astype(int)
        return scaled

    def weights_from_lava(self, w_lava: np.ndarray) -> np.ndarray:
        return np.asarray(w_lava, dtype=float) * self.weight_scale

    def learning_rule_kwargs(self) -> dict:
        """Keyword arguments of ``Loihi2FLearningRule`` (the rng seed aside)."""
        kwargs = {"dw": self.dw, "t_epoch": self.t_epoch}
        for t in self.traces:
            if self.three_factor and t.slot.startswith("y"):
                continue  # Loihi3FLearningRule takes no y parameters: the neuron supplies y1..y3
            kwargs[f"{t.slot}_impulse"] = t.impulse
            kwargs[f"{t.slot}_tau"] = t.tau_steps
        return kwargs

    def to_dict(self) -> dict:
        d = asdict(self)
        d["products"] = [dict(asdict(p), text=p.text) for p in self.products]
        d["w_lava_bounds"] = list(self.w_lava_bounds)
        d["notes"] = list(self.notes)
        d["max_rel_error"] = self.max_rel_error
        return d


def nearest_scale(value: float) -> tuple:
    """(S, E) with ``S * 2**E`` closest to ``value`` in relative terms."""
    if value == 0 or not math.isfinite(value):
        raise ValueError(f"cannot represent {value} as S*2^E")
    best = min(((s, e) for s in MANTISSAS for e in EXPONENTS),
               key=lambda se: (abs(se[0] * 2.0 ** se[1] - value), abs(se[0])))
    return best


def product_shift(factors: tuple, mode: str) -> int:
    if mode != "fixed":
        return 0
    return max(0, sum(FACTOR_WIDTH[f] for f in factors) + 4 - 15)


def _requested(p, weight_scale, scales, mode) -> float:
    n_w = p.factors.count("w")
    c = p.coefficient * weight_scale ** (n_w - 1)
    for f in p.factors:
        if f != "w":
            c /= scales[f]
    return c * 2.0 ** product_shift(p.factors, mode)


def _scale_products(engine: EngineRule, weight_scale: float, scales: dict, mode: str) -> tuple:
    out = []
    for p in engine.products:
        req = _requested(p, weight_scale, scales, mode)
        s, e = nearest_scale(req)
        if abs(req) < 2.0 ** (EXPONENTS[0] - 1):  # nearer 0 than the smallest scale: dropped
            s = 0
        real = s * 2.0 ** e
        out.append(ScaledProduct(p.dependency, p.factors, p.term, p.coefficient, req, s, e, real,
                                 abs(real - req) / abs(req), product_shift(p.factors, mode)))
    return tuple(out)


def _worst_error(engine, weight_scale, scales, mode, only=None) -> float:
    worst = 0.0
    for p in engine.products:
        traces = [f for f in p.factors if f != "w"]
        if any(f not in scales for f in traces):
            continue
        if only is not None and only not in traces:
            continue
        req = _requested(p, weight_scale, scales, mode)
        try:
            s, e = nearest_scale(req)
        except ValueError:
            return math.inf
        worst = max(worst, abs(s * 2.0 ** e - req) / abs(req))
    return worst


def _sign_mode(w_min: float, w_max: float) -> str:
    if w_min >= 0:
        return "excitatory"
    if w_max <= 0:
        return "inhibitory"
    return "mixed"


def _float_trace_scales(engine: EngineRule, weight_scale: float) -> dict:
    """k per slot: the first product a trace completes becomes exactly ±2^E.

    Slots are visited in file order, again and again, until no product can
    complete another one (a product completes a slot when its other traces have
    scales already); slots left over get 1."""
    scales = {}

    def complete(slot, p):
        traces = [f for f in p.factors if f != "w"]
        rest = p.coefficient * weight_scale ** (p.factors.count("w") - 1)
        for f in traces:
            if f != slot:
                rest /= scales.get(f, 1.0)
        exponent = min(8, max(-7, math.floor(math.log2(abs(rest)))))
        scales[slot] = (abs(rest) / 2.0 ** exponent) ** (1.0 / traces.count(slot))

    while True:
        progress = False
        for _, slot in engine.trace_slots:
            if slot in scales:
                continue
            for p in engine.products:
                traces = [f for f in p.factors if f != "w"]
                if slot in traces and all(f in scales for f in traces if f != slot):
                    complete(slot, p)
                    progress = True
                    break
        if progress:
            continue
        # products whose traces are all unscaled (x1*y1): the first slot takes the whole constant
        pending = [(slot, p) for _, slot in engine.trace_slots if slot not in scales
                   for p in engine.products if slot in p.factors]
        if not pending:
            break
        complete(*pending[0])
    for _, slot in engine.trace_slots:
        scales.setdefault(slot, 1.0)
    return scales


def _fixed_trace_scales(engine: EngineRule, weight_scale: float, peaks: dict, notes: list) -> dict:
    """Whole-number impulses that keep the peak in range and make the constants most exact."""
    scales = {}
    for name, slot in engine.trace_slots:
        trace = engine.rule.trace(name)
        per_jump_peak = max(peaks.get(name, abs(trace.jump)) / abs(trace.jump), 1.0)
        m_max = max(1, min(TRACE_MAX, math.floor(HEADROOM * TRACE_MAX / per_jump_peak)))
        best = None
        for m in range(m_max, max(1, m_max // 2) - 1, -1):
            trial = dict(scales, **{slot: m / trace.jump})
            err = _worst_error(engine, weight_scale, trial, "fixed", only=slot)
            if best is None or err < best[0] - 1e-12:
                best = (err, m)
        scales[slot] = best[1] / trace.jump
        if per_jump_peak * best[1] > TRACE_MAX:
            notes.append(f"trace {name} ({slot}) saturates at 127 on this protocol "
                         f"(peak {per_jump_peak * best[1]:.0f})")
    return scales


def make_plan(engine: EngineRule, mode: str, peaks: dict | None = None, counts: dict | None = None) -> Plan:
    """Scale ``engine`` onto Lava's ``mode`` ("float" or "fixed").

    ``peaks``: rule trace name -> largest value on the protocol (rule units,
    :func:`neurodeploy.protocol.trace_stats`); ``counts``: weight updates per
    synapse on the protocol (:func:`neurodeploy.protocol.update_counts`) and
    ``trace_means`` (rule trace name -> mean value), for the predicted band.
    :func:`neurodeploy.harness.compile_plans` assembles both.
    """
    rule = engine.rule
    w_min, w_max = rule.weight.w_min, rule.weight.w_max
    sign_mode = _sign_mode(w_min, w_max)
    notes = []
    peaks = peaks or {}
    if mode == "float":
        candidates = [1.0, rule.weight.range, max(abs(w_min), abs(w_max))]
        best = None
        for s_w in candidates:
            scales = _float_trace_scales(engine, s_w)
            err = _worst_error(engine, s_w, scales, "float")
            if best is None or err < best[0]:
                best = (err, s_w, scales)
        _, weight_scale, scales = best
        lava_bounds = (w_min / weight_scale, w_max / weight_scale)
    elif mode == "fixed":
        weight_scale = max(abs(w_min), abs(w_max)) / WEIGHT_MAX
        scales = _fixed_trace_scales(engine, weight_scale, peaks, notes)
        lo = {"excitatory": 0, "inhibitory": -WEIGHT_MAX, "mixed": -WEIGHT_MAX - 1}[sign_mode]
        hi = {"excitatory": WEIGHT_MAX, "inhibitory": 0, "mixed": WEIGHT_MAX}[sign_mode]
        lava_bounds = (lo, hi)
        for bound, value in (("lower", w_min), ("upper", w_max)):
            realised = (lo if bound == "lower" else hi) * weight_scale
            if not math.isclose(realised, value, rel_tol=1e-9, abs_tol=1e-12):
                notes.append(f"{bound} bound {value:g} is realised as the 8-bit saturation {realised:g}")
    else:
        raise ValueError(f"unknown mode {mode!r}")
    products = _scale_products(engine, weight_scale, scales, mode)
    for p in products:
        if p.mantissa == 0:
            notes.append(f"term '{p.term}' dropped: its constant {p.requested:.3g} is below the smallest "
                         f"scale 2^{EXPONENTS[0]}")
        elif p.rel_error > 1e-12:
            notes.append(f"constant of '{p.term}' realised as {p.mantissa}*2^{p.exponent} = {p.realised:.6g} "
                         f"instead of {p.requested:.6g} ({100 * p.rel_error:.2f}% off)")
    traces = []
    for name, slot in engine.trace_slots:
        trace = rule.trace(name)
        k = scales[slot]
        peak = peaks.get(name, abs(trace.jump))
        impulse = k * trace.jump
        if mode == "fixed":  # a whole number m chosen by _fixed_trace_scales; (m / J) * J may be m - 1 ulp,
            impulse = float(round(impulse))  # which Lava would split into m - 1 and a fraction of 256/256
        traces.append(TracePlan(name, slot, rule.tau_steps(trace), k, impulse, peak, peak * k))
    dw = " ".join(p.text for p in products if p.text).lstrip("+ ") or "0 * x0"
    plan = Plan(mode, weight_scale, sign_mode, lava_bounds, tuple(traces), products, dw,
                rule.t_epoch, {}, tuple(notes), engine.three_factor)
    band = _predict_band(plan, rule, counts or {})
    return Plan(**{**plan.__dict__, "band": band})


def _predict_band(plan: Plan, rule, counts: dict) -> dict:
    """Predicted deviation of this plan's backend from the exact engine (normalized by the range).

    Float: only the constant errors, ``N * sum_p |c_p| err_p * prod(typical factors)``
    (a trace's typical value is its mean on the protocol, w's its largest).
    Fixed, per synapse with N updates (epochs with a pre or post spike), in
    weight LSBs:

    * initial weights rounded to integers: 0.5;
    * stochastic rounding of each update: variance <= 1/4;
    * trace stochastic rounding: a trace's steady-state error has variance
      ``(1/4) / (1 - d**2) ~ tau/8`` (d = exp(-1/tau)), which scales its products;
    * constant errors and the floor of shifted products: systematic.

    ``max_abs = 0.5 + N_max e_sys + 4.5 sqrt(N_max v)``;
    ``rmse = 1.5 sqrt(0.25 + N_mean v) + N_mean e_sys``.
    """
    n_max = float(counts.get("max_updates", 0))
    n_mean = float(counts.get("mean_updates", 0))
    range_lava = rule.weight.range / plan.weight_scale
    maxima = {t.slot: max(t.peak_lava, t.impulse) for t in plan.traces}
    maxima["w"] = max(abs(b) for b in plan.w_lava_bounds)
    # systematic errors accumulate with the typical factor value, not the peak
    means = counts.get("trace_means", {})
    typical = {t.slot: means.get(t.name, t.peak) * t.scale for t in plan.traces}
    typical["w"] = maxima["w"]
    sigma_trace = {t.slot: math.sqrt(0.25 / max(1e-12, 1 - math.exp(-2 / t.tau_steps))) for t in plan.traces}
    n_epochs = float(counts.get("epochs", 0))
    e_sys, var, e_every, var_every = 0.0, 0.0, 0.0, 0.0
    for p in plan.products:
        spike_sys, spike_var = e_sys, var
        magnitude = abs(p.realised) * 2.0 ** -p.shift
        size, usual = magnitude, magnitude
        for f in p.factors:
            size *= maxima[f]
            usual *= typical[f]
        e_sys += usual * p.rel_error
        if plan.mode == "fixed":
            e_sys += 2.0 ** (p.exponent) if p.shift else 0.0
            for f in set(p.factors) - {"w"}:
                var += (size / maxima[f] * sigma_trace[f]) ** 2
        if p.dependency == "u0":  # applied every epoch, not at spikes
            e_every += e_sys - spike_sys
            var_every += var - spike_var
            e_sys, var = spike_sys, spike_var
    if plan.mode == "float":
        return {"max_abs": (n_max * e_sys + n_epochs * e_every) / range_lava,
                "rmse": (n_mean * e_sys + n_epochs * e_every) / range_lava}
    var += 0.25
    max_abs = 0.5 + n_max * e_sys + n_epochs * e_every + 4.5 * math.sqrt(n_max * var + n_epochs * var_every)
    rmse = 1.5 * math.sqrt(0.25 + n_mean * var + n_epochs * var_every) + n_mean * e_sys + n_epochs * e_every
    return {"max_abs": min(1.0, max_abs / range_lava), "rmse": min(1.0, rmse / range_lava)}


#: Largest relative error of a float-plan constant: the float engine must realise the rule exactly.
FLOAT_EXACT = 1e-9


@functools.lru_cache(maxsize=128)  # asked by every backend and the report: computed once per rule
def engine_reason(rule) -> str | None:
    """None when the learning engine can run ``rule`` exactly in floating point, else why not.

    Lowering must succeed, and every constant of the float plan must be
    realised as ``S * 2**E`` within :data:`FLOAT_EXACT`: a product whose
    constant no trace scale can absorb (``u0 * w``) and that lies outside the
    scales is not expressible."""
    from neurodeploy.errors import UnsupportedError
    from neurodeploy.lava.lowering import lower

    try:
        engine = lower(rule)
        plan = make_plan(engine, "float")
    except UnsupportedError as exc:
        return str(exc)
    except (OverflowError, ZeroDivisionError, ValueError) as exc:
        return f"the rule's constants are outside what the learning engine can scale ({exc})"
    return inexact_reason(plan)


def inexact_reason(plan: Plan) -> str | None:
    """None when every constant of the float ``plan`` is realised exactly, else the first that is not."""
    for p in plan.products:
        if p.mantissa == 0 or p.rel_error > FLOAT_EXACT:
            return (f"term '{p.term}' ({'continuous, per step' if p.dependency == 'u0' else 'at a spike'}): "
                    f"constant {p.requested:.3g} is not S*2^E (|S| <= 8, E >= {EXPONENTS[0]}) and no trace "
                    f"scale can absorb it")
    return None
