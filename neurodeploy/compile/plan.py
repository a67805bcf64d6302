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
  relative error is smallest wins. A tag ``t`` (a synapse trace, 8 bits and a
  sign; :func:`neurodeploy.compile.lowering.tag_decay`) gets the scale that puts
  its protocol peak within ``HEADROOM * 255``, or up to :data:`TAG_SPAN`
  octaves less, whichever makes its products most exact; then the impulses are
  chosen again with the tag's products. A saturation reset's trace gets
  impulse 127 (fixed point only: float traces do not saturate).

The plan records, per constant, the value asked for, the value realised
and the relative error, and predicts a deviation band for ``lava-fixed``
against ``lava-float`` (see :func:`_predict_band`).
"""
from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass

import numpy as np

from neurodeploy.compile.lowering import EngineRule
from neurodeploy.errors import UnsupportedError

#: Fraction of the 7-bit trace range the protocol's peak may use.
HEADROOM = 0.9
TRACE_MAX = 127  # 2**W_TRACE - 1
WEIGHT_MAX = 255  # 2**W_WEIGHTS_U - 1
FACTOR_WIDTH = {"x1": 7, "x2": 7, "y1": 7, "y2": 7, "y3": 7, "w": 9, "t": 9}
#: The tag t (Lava's tag_1) is a signed 8-bit synapse variable: [-257, 255].
TAG_MAX = 255
#: The tag's scale may go this many octaves below the one that fills its range (to keep products representable).
TAG_SPAN = 3
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
    target: str = "dw"  # "dw" (weight) or "dt" (tag)

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
    dt: str = ""  # Lava's tag update string (the rule's synapse trace), "" without a tag
    approximations: tuple = ()  # what the lowering approximated, in words (EngineRule.approximations)
    saturating: tuple = ()  # slots reset by the 7-bit saturation (impulse 127, fixed point only)
    supplied_rounding: str = ""  # three-factor fixed plans: how supplied y values become integers
    rewrites: tuple = ()  # exact rewrites of the lowering (a negative jump carried negated), in words

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
        if self.dt:
            kwargs["dt"] = self.dt
        for t in self.traces:
            if t.slot == "t":
                continue  # the tag has no impulse nor decay of its own: its products are in dt
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
        d["approximations"] = list(self.approximations)
        d["rewrites"] = list(self.rewrites)
        d["max_rel_error"] = self.max_rel_error
        return d


#: Lava's multiply-accumulate of a product is an int32 array (``learning_rule_applier``: ``np.ones(shape,
#: dtype=np.int32)``, then each factor and the mantissa multiplied in place): a mantissa is widened only while
#: the product of its factors' clip bounds and ``|S|`` stays below this.
MAC_LIMIT = 2 ** 31 - 1


def nearest_scale(value: float, wide: int = 0) -> tuple:
    """(S, E) with ``S * 2**E`` closest to ``value``. Among equal values (``S 2^E = 2S 2^(E-1)``) the
    narrowest mantissa, or with ``wide`` the widest with ``|S| <= wide`` (:func:`widest_mantissa`)."""
    if value == 0 or not math.isfinite(value):
        raise ValueError(f"cannot represent {value} as S*2^E")
    if wide:
        return min(((s, e) for s in MANTISSAS for e in EXPONENTS),
                   key=lambda se: (abs(se[0] * 2.0 ** se[1] - value), abs(se[0]) > wide, -abs(se[0])))
    return min(((s, e) for s in MANTISSAS for e in EXPONENTS),
               key=lambda se: (abs(se[0] * 2.0 ** se[1] - value), abs(se[0])))


def widest_mantissa(factors: tuple, mode: str) -> int:
    """The widest ``|S|`` worth choosing among equal realisations of a product's constant (0: keep the
    narrowest). Lava's fixed-point product is ``((D f_1 ... f_n S) >> shift) << (E + 7)``: where it drops
    ``shift > 0`` bits, ``S 2^E`` and ``2S 2^(E-1)`` are the same constant, but the wider mantissa floors one
    bit finer (the digits task: ``-2^-4 w y1 y1`` as ``-8 2^-7``, a bias 8 times smaller). Where nothing is
    dropped the two give the same integers, and the narrowest (the readable one) is kept. Bounded by
    :data:`MAC_LIMIT`: ``|S| 2^(sum of the factors' widths)`` must fit the int32 MAC."""
    if product_shift(factors, mode) == 0:
        return 0
    reach = 2 ** sum(FACTOR_WIDTH[f] for f in factors)
    return max(1, min(8, MAC_LIMIT // reach))


def product_shift(factors: tuple, mode: str) -> int:
    if mode != "fixed":
        return 0
    return max(0, sum(FACTOR_WIDTH[f] for f in factors) + 4 - 15)


def _unit(f, weight_scale, scales) -> float:
    """Lava units per rule unit of a factor or target: 1/s_w for w, k for a trace or the tag t."""
    return 1.0 / weight_scale if f == "w" else scales[f]


def _needs(p) -> list:
    """The scales a product's constant depends on (besides the weight scale)."""
    return [f for f in p.factors if f != "w"] + (["t"] if getattr(p, "target", "dw") == "dt" else [])


def _requested(p, weight_scale, scales, mode) -> float:
    c = p.coefficient * _unit("t" if getattr(p, "target", "dw") == "dt" else "w", weight_scale, scales)
    for f in p.factors:
        c /= _unit(f, weight_scale, scales)
    return c * 2.0 ** product_shift(p.factors, mode)


def _power(p, slot) -> int:
    """Power of the scale of ``slot`` in the product's constant."""
    return (1 if slot == "t" and getattr(p, "target", "dw") == "dt" else 0) - p.factors.count(slot)


def _scale_products(engine: EngineRule, weight_scale: float, scales: dict, mode: str) -> tuple:
    out = []
    for p in engine.products:
        req = _requested(p, weight_scale, scales, mode)
        s, e = nearest_scale(req, widest_mantissa(p.factors, mode))
        if abs(req) < 2.0 ** (EXPONENTS[0] - 1):  # nearer 0 than the smallest scale: dropped
            s = 0
        real = s * 2.0 ** e
        out.append(ScaledProduct(p.dependency, p.factors, p.term, p.coefficient, req, s, e, real,
                                 abs(real - req) / abs(req), product_shift(p.factors, mode), p.target))
    return tuple(out)


def _worst_error(engine, weight_scale, scales, mode, only=None) -> float:
    worst = 0.0
    for p in engine.products:
        traces = _needs(p)
        if any(f not in scales for f in traces):
            continue
        if only is not None and only not in traces:
            continue
        req = _requested(p, weight_scale, scales, mode)
        try:
            s, e = nearest_scale(req)
        except ValueError:
            return math.inf
        if abs(req) < 2.0 ** (EXPONENTS[0] - 1):  # dropped
            worst = max(worst, 1.0)
            continue
        worst = max(worst, abs(s * 2.0 ** e - req) / abs(req))
    return worst


def _sign_mode(w_min: float, w_max: float) -> str:
    if w_min >= 0:
        return "excitatory"
    if w_max <= 0:
        return "inhibitory"
    return "mixed"


def _slots(engine: EngineRule) -> list:
    """Scaled slots in file order, the tag ``t`` last."""
    return [slot for _, slot in engine.trace_slots] + (["t"] if engine.tag else [])


def _float_trace_scales(engine: EngineRule, weight_scale: float) -> dict:
    """k per slot (and the tag): the first product a slot completes becomes exactly ±2^E.

    Slots are visited in file order, again and again, until no product can
    complete another one (a product completes a slot when its other scales are
    known already); slots left over get 1."""
    scales = {}

    def complete(slot, p):
        n = _power(p, slot)
        rest = abs(_requested(p, weight_scale, dict({f: scales.get(f, 1.0) for f in _needs(p)}, **{slot: 1.0}),
                              "float"))
        exponent = min(8, max(-7, math.floor(math.log2(rest))))
        # rest * k^n = 2^exponent * (rest / 2^exponent)... choose k so that it is exactly 2^E
        if n < 0:
            scales[slot] = (rest / 2.0 ** exponent) ** (1.0 / -n)
        else:
            exponent = min(8, max(-7, math.ceil(math.log2(rest))))
            scales[slot] = (2.0 ** exponent / rest) ** (1.0 / n)

    slots = _slots(engine)
    while True:
        progress = False
        for slot in slots:
            if slot in scales:
                continue
            for p in engine.products:
                if _power(p, slot) != 0 and all(f in scales for f in _needs(p) if f != slot):
                    complete(slot, p)
                    progress = True
                    break
        if progress:
            continue
        # products whose scales are all unknown (x1*y1): the first slot takes the whole constant
        pending = [(slot, p) for slot in slots if slot not in scales
                   for p in engine.products if _power(p, slot) != 0]
        if not pending:
            break
        complete(*pending[0])
    for slot in slots:
        scales.setdefault(slot, 1.0)
    return scales


def _fixed_tag_scale(engine: EngineRule, weight_scale: float, scales: dict, peaks: dict) -> float:
    """The tag's scale: its protocol peak within ``HEADROOM * 255``, constants of its products most exact.

    Candidates make one product of the tag exactly representable; among those in
    ``[limit / 2^TAG_SPAN, limit]`` the one with the smallest worst error (a dropped product
    counts 100%) wins, then the largest (the tag's resolution)."""
    peak = max(peaks.get(engine.tag, 0.0), 1e-300)
    limit = HEADROOM * TAG_MAX / peak
    candidates = {limit}
    for p in engine.products:
        n = _power(p, "t")
        if n == 0:
            continue
        rest = abs(_requested(p, weight_scale, dict(scales, t=1.0), "fixed"))
        for s in range(1, 9):
            for e in EXPONENTS:
                k = (s * 2.0 ** e / rest) ** (1.0 / n)
                if limit / 2 ** TAG_SPAN <= k <= limit:
                    candidates.add(k)
    return min(candidates, key=lambda k: (_worst_error(engine, weight_scale, dict(scales, t=k), "fixed", only="t"), -k))


def _fixed_trace_scales(engine: EngineRule, weight_scale: float, peaks: dict, notes: list,
                        known: dict | None = None) -> dict:
    """Whole-number impulses that keep the peak in range and make the constants most exact.

    ``known``: scales fixed already (the tag's, on a second pass: its products then judge the impulses too)."""
    from neurodeploy.compile.lowering import reset_level

    scales = {k: v for k, v in (known or {}).items() if k == "t"}
    for name, slot in engine.trace_slots:
        trace = engine.rule.trace(name)
        if slot in engine.saturating:  # impulse 127: the trace saturates at 127 = the reset level
            scales[slot] = TRACE_MAX / reset_level(trace)
            continue
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
    :func:`neurodeploy.verification.compile_plans` assembles both.
    """
    rule = engine.rule
    w_min, w_max = rule.weight.w_min, rule.weight.w_max
    sign_mode = _sign_mode(w_min, w_max)
    notes = []
    peaks = peaks or {}
    if mode == "float" and engine.fixed_only:
        from neurodeploy.errors import UnsupportedError

        raise UnsupportedError(FLOAT_NO_SATURATION)
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
        if engine.tag:  # the tag's scale on the first impulses, then the impulses again with the tag's products
            scales["t"] = _fixed_tag_scale(engine, weight_scale, scales, peaks)
            scales = _fixed_trace_scales(engine, weight_scale, peaks, [], known=scales)
            scales["t"] = _fixed_tag_scale(engine, weight_scale, scales, peaks)
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
    from neurodeploy.compile.lowering import reset_level

    traces = []
    for name, slot in engine.trace_slots:
        trace = rule.trace(name)
        k = scales[slot]
        jump = reset_level(trace) if slot in engine.saturating else trace.jump
        peak = peaks.get(name, abs(jump))
        impulse = k * jump
        if mode == "fixed":  # a whole number m chosen by _fixed_trace_scales; (m / J) * J may be m - 1 ulp,
            impulse = float(round(impulse))  # which Lava would split into m - 1 and a fraction of 256/256
        traces.append(TracePlan(name, slot, rule.tau_steps(trace), k, impulse, peak, peak * k))
    if engine.tag:
        tag = rule.trace(engine.tag)
        peak = peaks.get(engine.tag, 0.0)
        traces.append(TracePlan(engine.tag, "t", rule.tau_steps(tag), scales["t"], 0.0, peak, peak * scales["t"]))
        if mode == "fixed" and peak * scales["t"] > TAG_MAX:
            notes.append(f"tag {engine.tag} (t) saturates at {TAG_MAX} on this protocol (peak {peak * scales['t']:.0f})")
    dw = " ".join(p.text for p in products if p.text and p.target == "dw").lstrip("+ ") or "0 * x0"
    dt = " ".join(p.text for p in products if p.text and p.target == "dt").lstrip("+ ")
    plan = Plan(mode, weight_scale, sign_mode, lava_bounds, tuple(traces), products, dw,
                rule.t_epoch, {}, tuple(notes), engine.three_factor, dt,
                tuple(a.detail for a in engine.approximations), engine.saturating,
                "nearest" if engine.three_factor and mode == "fixed" else "", engine.rewrites)
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
#: Why a rule reset by saturation has no float plan.
FLOAT_NO_SATURATION = ("a reset is expressible only as the 7-bit saturation of a fixed-point trace "
                       "(impulse 127); Lava's float traces do not saturate")


@functools.lru_cache(maxsize=128)  # asked by every backend and the report: computed once per rule
def engine_reason(rule) -> str | None:
    """None when the learning engine can run ``rule`` exactly in floating point, else why not.

    Lowering must succeed, and every constant of the float plan must be
    realised as ``S * 2**E`` within :data:`FLOAT_EXACT`: a product whose
    constant no trace scale can absorb (``u0 * w``) and that lies outside the
    scales is not expressible."""
    from neurodeploy.compile.lowering import lower

    try:
        engine = lower(rule)
        plan = make_plan(engine, "float")
    except UnsupportedError as exc:
        return str(exc)
    except (OverflowError, ZeroDivisionError, ValueError) as exc:
        return f"the rule's constants are outside what the learning engine can scale ({exc})"
    return inexact_reason(plan)


@functools.lru_cache(maxsize=256)  # asked per backend and mode: computed once per rule and mode
def approximation_reason(rule, mode: str) -> str | None:
    """None when the rule runs on the engine in ``mode`` ("float"/"fixed") through the lowering's
    approximations (:func:`neurodeploy.compile.lowering.lower` with ``approximate=True``), else why not.

    The approximated rule's float plan must realise every constant exactly (it is then the
    approximated rule run exactly in floating point); a rule whose approximation is fixed-point only
    (a saturation reset) has no float plan."""
    from neurodeploy.compile.lowering import lower

    try:
        engine = lower(rule, approximate=True)
        if engine.fixed_only:
            if mode == "float":
                return FLOAT_NO_SATURATION
            make_plan(engine, "fixed")
            return None
        plan = make_plan(engine, "float")
    except UnsupportedError as exc:
        return str(exc)
    except (OverflowError, ZeroDivisionError, ValueError) as exc:
        return f"the rule's constants are outside what the learning engine can scale ({exc})"
    return inexact_reason(plan)


def approximations(rule) -> tuple:
    """The lowering's approximations of ``rule`` (Approximation objects); () when it is exact or refused."""
    from neurodeploy.compile.lowering import lower

    try:
        return lower(rule, approximate=True).approximations
    except UnsupportedError:
        return ()


def tag_peaks(rule, trains) -> dict:
    """The largest magnitude of each synapse trace on ``trains`` (rule units), from the step semantics."""
    from neurodeploy.compile.stepper import Stepper

    synapse = [t for t in rule.traces if t.of == "synapse"]
    if not synapse or trains is None:
        return {}
    stepper = Stepper(rule, np.array(trains.w0, dtype=float))
    reward = trains.reward_or_zeros() if rule.has_reward else None
    peaks = {t.name: 0.0 for t in synapse}
    for n in range(trains.steps):
        stepper.step(trains.pre[:, n:n + 1], trains.post[:, n:n + 1], None if reward is None else reward[:, n])
        for t in synapse:
            peaks[t.name] = max(peaks[t.name], float(np.max(np.abs(stepper.values[t.name]))))
    return peaks


def inexact_reason(plan: Plan) -> str | None:
    """None when every constant of the float ``plan`` is realised exactly, else the first that is not."""
    for p in plan.products:
        if p.mantissa == 0 or p.rel_error > FLOAT_EXACT:
            return (f"term '{p.term}' ({'continuous, per step' if p.dependency == 'u0' else 'at a spike'}): "
                    f"constant {p.requested:.3g} is not S*2^E (|S| <= 8, E >= {EXPONENTS[0]}) and no trace "
                    f"scale can absorb it")
    return None
