"""Spike-pattern detection (Masquelier, Guyonneau & Thorpe 2008, PLoS ONE 3:e1377), reduced to one Lava LIF
neuron and the library's additive ``stdp_pair`` rule.

Input (:func:`member`, all of it drawn from the member's seed): ``n_inputs`` afferents, each a Poisson train at
its own rate (uniform in ``rate_min..rate_max``). Time is cut into slots of ``pattern_ms``; a slot holds the
pattern with the probability that makes ``pattern_fraction`` of the time pattern, never two slots in a row
(as the paper). The pattern is one frozen ``pattern_ms`` stretch of those Poisson trains over a random subset of
``pattern_share`` of the afferents; in each of its slots the subset replays it, every spike moved by a Gaussian
jitter (``jitter_ms``, rounded to steps, kept inside the slot), while the other afferents go on with their
Poisson trains: the pattern changes no afferent's rate. Spontaneous noise (``noise_rate``, Poisson) is added
everywhere, pattern slots included.

Network (:func:`network_dict`): the afferents onto one LIF (Lava's: ``tau_u``, ``tau_v``, ``threshold`` in units
of the weight range) through plastic synapses, all starting at ``w0`` (the paper: 0.475, enough for the neuron to
fire at a high rate at first). The rule: ``stdp_pair``, all pairs (the rule's traces), not the paper's nearest
spike, with the paper's time constants (``tau_plus`` 16.8 ms, ``tau_minus`` 33.7 ms) and ``A_plus`` 2^-6,
``A_minus`` 0.56 ``A_plus``: depression wins by 12 % (the paper's 0.85 ``A_plus``, 70 %, silences the neuron of
this reduction within seconds; 0.53 leaves it firing at 20 Hz unselective, 0.60 silences it: docs/tasks.md), so
the afferents that do not fire before the neuron in a repeated way lose their weights.

Metrics per run (:data:`METRICS`, over the last ``tail`` of the run): the hit rate (fraction of the pattern's
occurrences with a post spike in their slot), the false alarms (post spikes outside the pattern's slots per
second outside them), the latency (ms from the slot's start to its first post spike, over the hits; the slot's
length when there is none) and the weight contrast (:func:`contrast`: the fraction of the pattern afferents
whose final weight lies within 10 % of the range of ``w_max``, minus that fraction of the others; the paper's
bimodal weights). Four metrics: 6 runs a side can fail a verdict (7 for 5 or more). The curve
(:func:`evaluate`): the latency at each occurrence and the final weights.
"""
from __future__ import annotations

import dataclasses
import os

import numpy as np

from neurodeploy.batch import rule_with
from neurodeploy.errors import NeurodeployError
from neurodeploy.library import LIBRARY
from neurodeploy.network import network_from_dict
from neurodeploy.tasks.runner import Setup, numbers, template_trains

# The verdict judges the deployment against the rule as written (``brian2``), as every task does. At dt = 1 ms
# a pre and a post spike often fall in the same step (an afferent at 40 Hz: once in 25 post spikes); ``brian2``
# runs the pre pathway first, so such a pair only potentiates, while the engine (Lava, the emulator, and
# ``brian2-step``) both potentiates and depresses. That drops 0.56 ms x A_minus of the 2.07 ms x A_plus of net
# depression per post spike and afferent (27 %), and the task's window of the depression bias is narrow:
# measured, ``brian2`` fires at ~21 Hz without selectivity in 4 of 4 seeds where ``brian2-step`` learns in 3 of
# 4 (docs/tasks.md). The verdict says so: the chain's timing link (``brian2-step``) carries the deviation.
NAME = "pattern-detection"
TITLE = "Spike-pattern detection (Masquelier, Guyonneau & Thorpe 2008, PLoS ONE 3:e1377), stdp_pair, reduced"
METRICS = ("hit_rate", "false_alarm_hz", "latency_ms", "contrast")
DEFAULTS = {"steps": 100_000, "n_inputs": 400, "pattern_share": 0.5, "pattern_ms": 50, "pattern_fraction": 0.25,
            "rate_min": 0.0, "rate_max": 60.0, "noise_rate": 10.0, "jitter_ms": 1.0,
            "tau_u_ms": 2.5, "tau_v_ms": 10.0, "threshold": 100.0, "w0": 0.475,
            "A_plus": 2.0 ** -6, "A_minus_ratio": 0.56, "tau_plus_ms": 16.8, "tau_minus_ms": 33.7,
            "tail": 0.25, "every": 1000}
#: Absolute floors of the margins: one occurrence in 100 (hit rate), one post spike in 10 s (false alarms), one
#: step (latency), one afferent of the 200 pattern afferents (the contrast of fractions near w_max).
MARGIN_FLOORS = {"hit_rate": 0.01, "false_alarm_hz": 0.1, "latency_ms": 1.0, "contrast": 1 / 200}
#: Near the upper bound: within this fraction of the weight range of w_max.
NEAR = 0.1

_INT = ("steps", "n_inputs", "pattern_ms", "every")


def _check(p: dict) -> dict:
    """The parameters, validated: one line naming the field and the problem."""
    out = numbers(NAME, DEFAULTS, p, _INT)
    positive = ("steps", "n_inputs", "pattern_ms", "every", "tau_u_ms", "tau_v_ms", "threshold", "A_plus",
                "A_minus_ratio", "tau_plus_ms", "tau_minus_ms")
    for key in positive:
        if out[key] <= 0:
            raise NeurodeployError(NAME, key, f"must be > 0 (got {out[key]!r})")
    for key in ("pattern_share", "w0"):
        if not 0 <= out[key] <= 1:
            raise NeurodeployError(NAME, key, f"must be in 0..1 (got {out[key]!r})")
    for key, top in (("pattern_fraction", 0.5), ("tail", 1)):  # a pattern share above 1/2 needs two in a row
        if not 0 < out[key] <= top:
            raise NeurodeployError(NAME, key, f"must be in (0, {top}] (got {out[key]!r})")
    for key in ("rate_min", "rate_max", "noise_rate", "jitter_ms"):
        if out[key] < 0:
            raise NeurodeployError(NAME, key, f"must be >= 0 (got {out[key]!r})")
    if out["rate_max"] < out["rate_min"]:
        raise NeurodeployError(NAME, "rate_max", f"must be >= rate_min {out['rate_min']} (got {out['rate_max']})")
    if out["rate_max"] + out["noise_rate"] > 1000:
        raise NeurodeployError(NAME, "rate_max", "rate_max + noise_rate must be <= 1000 Hz at dt = 1 ms "
                                                 f"(got {out['rate_max'] + out['noise_rate']})")
    if round(out["pattern_share"] * out["n_inputs"]) < 1:
        raise NeurodeployError(NAME, "pattern_share", f"leaves no pattern afferent of {out['n_inputs']} "
                                                      f"(got {out['pattern_share']})")
    if out["steps"] < 4 * out["pattern_ms"]:
        raise NeurodeployError(NAME, "steps", f"must be at least 4 pattern slots, {4 * out['pattern_ms']} "
                                              f"(got {out['steps']})")
    if out["every"] > out["steps"]:
        raise NeurodeployError(NAME, "every", f"must be <= steps {out['steps']} (got {out['every']})")
    return out


def rule_for(p: dict):
    """``stdp_pair`` with the task's constants."""
    return rule_with(os.path.join(LIBRARY, "stdp_pair.yaml"),
                     {"A_plus": float(p["A_plus"]), "A_minus": float(p["A_plus"] * p["A_minus_ratio"]),
                      "tau_plus": f"{p['tau_plus_ms']} ms", "tau_minus": f"{p['tau_minus_ms']} ms",
                      "w_init": float(p["w0"])})


def network_dict(p: dict) -> dict:
    mean_rate = (p["rate_min"] + p["rate_max"]) / 2 + p["noise_rate"]
    return {"network": "pattern_detection", "steps": int(p["steps"]), "seed": 1,
            "populations": {"afferents": {"poisson": int(p["n_inputs"]), "rate": f"{mean_rate} Hz"},
                            "neuron": {"lif": 1, "tau_u": f"{p['tau_u_ms']} ms", "tau_v": f"{p['tau_v_ms']} ms",
                                       "threshold": float(p["threshold"])}},
            "projections": [{"from": "afferents", "to": "neuron", "plastic": True, "w0": float(p["w0"])}]}


def setup(rule=None, **overrides):
    """The rule (``stdp_pair`` with the task's constants unless given), the network, the template trains and the
    parameters."""
    p = _check(dict(DEFAULTS, **overrides))
    rule = rule or rule_for(p)
    if rule.dt != 1e-3:
        raise NeurodeployError(NAME, "rule.dt", f"the task's slots and jitter are in 1 ms steps (got {rule.dt} s)")
    net = network_from_dict(network_dict(p), "pattern_detection", rule)
    return Setup(rule, net, template_trains(rule, net), p)


@dataclasses.dataclass(frozen=True)
class Input:
    """What :func:`draw` made from one seed."""
    spikes: np.ndarray  # bool (n_inputs, steps)
    afferents: np.ndarray  # int: the pattern afferents, sorted
    starts: np.ndarray  # int: the steps at which the pattern's occurrences start
    pattern: np.ndarray  # bool (len(afferents), pattern_ms): the frozen pattern, before jitter
    rates: np.ndarray  # Hz (n_inputs,): each afferent's rate (without the spontaneous noise)


def slot_probability(fraction: float) -> float:
    """The probability of a pattern in a slot whose predecessor holds none, so that ``fraction`` of the slots
    hold the pattern when no two in a row may (stationary: f = q (1 - f), q = f / (1 - f))."""
    return fraction / (1 - fraction)


#: The last :func:`draw` of this process, by (parameters, seed): a member's run and its evaluation read the
#: same input, drawn once (half a member's time at the defaults). Its arrays are read-only.
_LAST_DRAW: dict = {}


def draw(p: dict, seed: int) -> Input:
    """The afferents' spikes of one member, and where the pattern is (everything from ``seed``; the same
    parameters and seed give the same arrays, read-only, from this process's last draw)."""
    key = (tuple(sorted(p.items())), int(seed))
    if key not in _LAST_DRAW:
        inp = _draw(p, seed)
        for a in (inp.spikes, inp.afferents, inp.starts, inp.pattern, inp.rates):
            a.setflags(write=False)
        _LAST_DRAW.clear()
        _LAST_DRAW[key] = inp
    return _LAST_DRAW[key]


def _draw(p: dict, seed: int) -> Input:
    rng = np.random.default_rng(seed)
    n, steps, length = p["n_inputs"], p["steps"], p["pattern_ms"]
    dt = 1e-3
    rates = rng.uniform(p["rate_min"], p["rate_max"], n)
    spikes = rng.random((n, steps)) < rates[:, None] * dt
    afferents = np.sort(rng.choice(n, int(round(p["pattern_share"] * n)), replace=False))
    pattern = rng.random((len(afferents), length)) < rates[afferents, None] * dt
    q = slot_probability(p["pattern_fraction"])
    slots = steps // length
    chosen, previous = [], True  # the first slot holds no pattern
    draws = rng.random(slots)
    for k in range(slots):
        previous = (not previous) and draws[k] < q
        if previous:
            chosen.append(k)
    starts = np.array(chosen, dtype=int) * length
    rows, cols = np.nonzero(pattern)
    for s in starts:
        shift = np.rint(rng.normal(0.0, p["jitter_ms"], len(cols))).astype(int) if p["jitter_ms"] > 0 else 0
        block = np.zeros((len(afferents), length), dtype=bool)
        block[rows, np.clip(cols + shift, 0, length - 1)] = True
        spikes[afferents, s:s + length] = block
    spikes |= rng.random((n, steps)) < p["noise_rate"] * dt
    return Input(spikes, afferents, starts, pattern, rates)


def member(setup, seed: int):
    """The template trains with the afferents' rows drawn from ``seed``."""
    inp = draw(setup.params, seed)
    pre = np.zeros_like(setup.trains.pre)
    pre[: setup.net.n_inputs] = inp.spikes
    return dataclasses.replace(setup.trains, pre=pre, seed=int(seed))


def scores(spikes: np.ndarray, starts: np.ndarray, length: int, steps: int, tail: float, dt: float = 1e-3):
    """(hit rate, false alarms per second, mean latency in ms, per-occurrence latencies) of one post train
    ``spikes`` (steps,) against the pattern's occurrences at ``starts`` (slots of ``length`` steps), the first
    three over the occurrences that start in the last ``tail`` of the run (and the time there)."""
    spikes = np.asarray(spikes, dtype=bool).reshape(-1)
    latencies = np.full(len(starts), np.nan)
    inside = np.zeros(steps, dtype=bool)
    for j, s in enumerate(starts):
        inside[s:s + length] = True
        hit = np.flatnonzero(spikes[s:s + length])
        if hit.size:
            latencies[j] = hit[0] * dt * 1e3
    first = int(steps - round(tail * steps))
    late = starts >= first
    hits = ~np.isnan(latencies[late])
    hit_rate = float(hits.mean()) if late.any() else 0.0
    outside = ~inside[first:]
    seconds = outside.sum() * dt
    false_alarms = float(spikes[first:][outside].sum() / seconds) if seconds > 0 else 0.0
    latency = float(latencies[late][hits].mean()) if hits.any() else float(length * dt * 1e3)
    return hit_rate, false_alarms, latency, latencies


def evaluate(setup, member, trajectory, spikes):
    """The run's :data:`METRICS` and its curve, a (2, M) array: row 0 the latency (ms) at each occurrence of the
    pattern (NaN where the neuron did not fire in the slot), row 1 the final weights (fraction of the range) of
    the pattern afferents, then of the others; both NaN-padded to M = the most occurrences the slots allow or the
    afferents, whichever is more."""
    p, rule = setup.params, setup.rule
    inp = draw(p, member.seed)
    spikes = np.asarray(spikes, dtype=bool)
    hit_rate, false_alarms, latency, latencies = scores(spikes[0], inp.starts, p["pattern_ms"], member.steps,
                                                        p["tail"], rule.dt)
    w = (np.asarray(trajectory)[-1, 0, : setup.net.n_inputs] - rule.weight.w_min) / rule.weight.range
    in_pattern = np.zeros(len(w), dtype=bool)
    in_pattern[inp.afferents] = True
    m = {"hit_rate": hit_rate, "false_alarm_hz": false_alarms, "latency_ms": latency,
         "contrast": contrast(w, in_pattern)}
    most = max((member.steps // p["pattern_ms"] + 1) // 2, len(w))
    curve = np.full((2, most), np.nan)
    curve[0, : len(latencies)] = latencies
    curve[1, : len(w)] = np.concatenate([w[in_pattern], w[~in_pattern]])
    return m, curve


def contrast(w: np.ndarray, in_pattern: np.ndarray) -> float:
    """The fraction of the pattern afferents whose weight ``w`` (fraction of the range) lies within :data:`NEAR` of
    w_max, minus that fraction of the other afferents (the paper: a part of the pattern afferents at w_max, the
    rest and all the others at w_min)."""
    high = np.asarray(w) >= 1 - NEAR
    others = high[~in_pattern].mean() if (~in_pattern).any() else 0.0
    return float(high[in_pattern].mean() - others)


def figure(fig, setup, runs: dict) -> None:
    """Left: the latency at each occurrence of the pattern (the paper's Fig. 5: it falls as the neuron learns;
    dots, and a running median of the last 25 hits per run). Right: the final weights of the pattern afferents
    and of the others (the paper's Fig. 4: bimodal, the pattern's selected afferents at w_max), every run of a
    backend pooled."""
    axes = fig.subplots(1, 2)
    colours = ("k", "tab:red", "tab:blue", "tab:green")
    p = setup.params
    n_pattern = int(round(p["pattern_share"] * p["n_inputs"]))
    bins = np.linspace(0, 1, 21)
    for j, ((label, rows), colour) in enumerate(zip(runs.items(), colours)):
        pattern, others = [], []
        for k, (_m, curve) in enumerate(rows):
            c = np.asarray(curve, dtype=float)
            lat = c[0]
            x = np.arange(1, len(lat) + 1)
            axes[0].plot(x, lat, ".", color=colour, alpha=0.15, markersize=2)
            axes[0].plot(x, _running_median(lat, 25), "-", color=colour, alpha=0.8, label=label if k == 0 else None)
            w = c[1][~np.isnan(c[1])]
            pattern.append(w[:n_pattern])
            others.append(w[n_pattern:])
        if pattern:
            axes[1].hist(np.concatenate(pattern), bins=bins, histtype="step", color=colour, linestyle="-",
                         label=f"{label}: pattern afferents")
            axes[1].hist(np.concatenate(others), bins=bins, histtype="step", color=colour, linestyle=":",
                         label=f"{label}: others")
    axes[0].set_xlabel("pattern presentation")
    axes[0].set_ylabel(f"latency (ms; no spike in {p['pattern_ms']} ms: none)")
    axes[0].legend(fontsize=7)
    axes[1].set_xlabel("final weight (fraction of the range)")
    axes[1].set_ylabel("afferents (all runs)")
    axes[1].set_yscale("log")
    axes[1].legend(fontsize=7)


def _running_median(c: np.ndarray, n: int) -> np.ndarray:
    """At each occurrence the median of the hits among the last ``n`` occurrences (NaN where there is none,
    and after the last hit)."""
    out = np.full(len(c), np.nan)
    real = np.flatnonzero(~np.isnan(c))
    for k in range(real[-1] + 1 if real.size else 0):
        window = c[max(0, k - n + 1): k + 1]
        window = window[~np.isnan(window)]
        if window.size:
            out[k] = np.median(window)
    return out
