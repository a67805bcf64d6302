"""Spike trains that every backend is driven with, and their statistics.

A protocol is a pair of boolean rasters ``pre`` (n_pre, steps) and ``post``
(n_post, steps) plus the initial weights ``w0`` (n_post, n_pre). Post spikes
are imposed, so every backend sees exactly the same pre/post pairs.
"""
from __future__ import annotations

import dataclasses

import os
from collections.abc import Mapping
import zipfile
from dataclasses import dataclass

import numpy as np

from neurodeploy.errors import NeurodeployError, did_you_mean
from neurodeploy.limits import MAX_NEURON_STEPS, MAX_STEPS, MAX_SYNAPSE_STEPS, _count
from neurodeploy.spec.ir import Rule


@dataclass(frozen=True)
class SpikeTrains:
    pre: np.ndarray  # bool (n_pre, steps): pre[j, t] = neuron j spikes in step t
    post: np.ndarray  # bool (n_post, steps)
    w0: np.ndarray  # float (n_post, n_pre), rule units
    protocol: str  # "poisson", "pairing", "stdp-window", "frequency" or "file:<name>"
    seed: int | None = None
    rate: float | None = None  # Hz, for poisson
    curve: dict | None = None  # curve protocols: {"x": [...], "x_label": str, "synapses": [[post, pre], ...]}
    reward: np.ndarray | None = None  # float (n_post, steps): third-factor input, for rules with a reward trace
    neuron: dict | None = None  # closed loop: the LIF that makes the post spikes (``post`` is then unused)
    mask: np.ndarray | None = None  # bool (n_post, n_pre): the synapses that exist (None: all to all)
    network: object = None  # protocol "network": a neurodeploy.network.Network (pre: its sources, post: its LIFs)
    # closed loops and networks of three-factor rules: a neurodeploy.compile.reward.RewardSchedule that decides the
    # reward from the network's own spikes, online in every backend (``reward`` is then unused)
    reward_schedule: object = None

    @property
    def closed(self) -> bool:
        """The post spikes come from neurons the backends simulate (closed loop or network)."""
        return self.neuron is not None or self.network is not None

    def present(self) -> np.ndarray:
        """bool (n_post, n_pre): the synapses that exist (the mask, or every one)."""
        return self.mask if self.mask is not None else np.ones((self.n_post, self.n_pre), dtype=bool)

    def reward_or_zeros(self) -> np.ndarray:
        return self.reward if self.reward is not None else np.zeros((self.n_post, self.steps))

    @property
    def steps(self) -> int:
        return self.pre.shape[1]

    @property
    def n_pre(self) -> int:
        return self.pre.shape[0]

    @property
    def n_post(self) -> int:
        return self.post.shape[0]


#: The default protocol of ``verify``, ``check`` and ``compile`` (plans are scaled on it).
DEFAULT_POISSON = {"n_pre": 10, "n_post": 10, "steps": 2000, "rate": 10.0, "seed": 3}


def default_trains(rule: Rule) -> "SpikeTrains":
    """Poisson trains with :data:`DEFAULT_POISSON`."""
    p = DEFAULT_POISSON
    return with_reward(rule, poisson(rule, p["n_pre"], p["n_post"], p["steps"], p["rate"], p["seed"]))


def as_rule(rule) -> Rule:
    """A Rule from a Rule, a rule file's path, or a mapping with a rule file's content (such as
    ``import_brian2``'s result): the public API takes any of them."""
    if isinstance(rule, Rule):
        return rule
    if isinstance(rule, Mapping):
        from neurodeploy.spec.loader import rule_from_dict

        return rule_from_dict(dict(rule), f"{rule.get('name', 'rule')} (a mapping)")
    if isinstance(rule, (str, os.PathLike)):
        from neurodeploy.spec.loader import load_rule

        return load_rule(os.fspath(rule))
    raise NeurodeployError("", "rule", f"must be a rule file's path, a loaded rule or a mapping with a rule file's "
                                       f"content (got {type(rule).__name__})")


def in_hz(value, field: str) -> float:
    """A rate in Hz from a number or a Brian2 quantity of frequency; one-line errors otherwise."""
    if hasattr(value, "dim") and not isinstance(value, (int, float)):
        from brian2 import Hz, have_same_dimensions

        if not have_same_dimensions(value, Hz):
            raise NeurodeployError("", field, f"must be a frequency (got {value!r})")
        value = float(value / Hz)
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or \
            not np.isfinite(value) or value < 0:
        raise NeurodeployError("", field, f"must be a finite rate >= 0 in Hz (got {value!r})")
    return float(value)


def poisson(rule: Rule, n_pre: int, n_post: int, steps: int, rate: float, seed: int) -> SpikeTrains:
    """Independent Bernoulli spikes with probability ``rate * dt`` per step.

    Pre spikes are drawn first, then post spikes, from one
    ``numpy.random.default_rng(seed)``: the same seed gives the same trains. ``rule``: a Rule or a rule
    file's path; ``rate``: Hz, a number or a Brian2 quantity (``10*Hz``).
    """
    rule = as_rule(rule)
    rate = in_hz(rate, "poisson.rate")
    p = rate * rule.dt
    rng = np.random.default_rng(seed)
    pre = rng.random((n_pre, steps)) < p
    post = rng.random((n_post, steps)) < p
    w0 = np.full((n_post, n_pre), rule.weight.w_init)
    return SpikeTrains(pre, post, w0, "poisson", seed, rate)


def pairing(rule: Rule, n_pre: int, n_post: int, pairs: int, dt_ms: float, frequency: float,
            seed: int | None = None) -> SpikeTrains:
    """``pairs`` pre/post pairs at offset ``dt_ms = t_post - t_pre``, repeated at ``frequency`` Hz.

    Every pre neuron spikes at ``t_k = t_0 + k / frequency`` (rounded to the
    step), every post neuron at ``t_k + dt_ms``; ``t_0`` leaves room for a
    negative offset. After the last pair the run goes on for five times the
    longest trace time constant, so the weights settle. Deterministic:
    ``seed`` is recorded, not used.
    """
    step_ms = rule.dt * 1e3
    offset = int(round(dt_ms / step_ms))
    period = 1000.0 / frequency / step_ms
    start = max(0, -offset) + 1
    pre_steps = [start + int(round(k * period)) for k in range(pairs)]
    post_steps = [t + offset for t in pre_steps]
    tail = int(np.ceil(5 * max((rule.tau_steps(t) for t in rule.traces), default=1.0)))
    steps = max(pre_steps[-1], post_steps[-1]) + tail + 1
    pre = np.zeros((n_pre, steps), dtype=bool)
    post = np.zeros((n_post, steps), dtype=bool)
    pre[:, pre_steps] = True
    post[:, post_steps] = True
    w0 = np.full((n_post, n_pre), rule.weight.w_init)
    return SpikeTrains(pre, post, w0, "pairing", seed, None)


def correlated(rule: Rule, n_pre: int, n_post: int, steps: int, rate: float, correlation: float,
               seed: int) -> SpikeTrains:
    """Presynaptic Poisson trains with pairwise correlation ``correlation`` (Song, Miller & Abbott 2000).

    Single-interaction-process mixture (Kuhn, Aertsen & Rotter 2003): a
    mother train spikes with probability ``rate * dt / c`` per step; each
    presynaptic neuron copies every mother spike with probability ``c``, so
    each train has rate ``rate`` and any two have count correlation ``c``.
    ``c = 0`` gives independent trains. Post spikes are independent Poisson
    at ``rate``. One ``default_rng(seed)``: mother, copies, then post."""
    p = rate * rule.dt
    rng = np.random.default_rng(seed)
    if correlation > 0:
        mother = rng.random(steps) < min(1.0, p / correlation)
        pre = (rng.random((n_pre, steps)) < correlation) & mother[None, :]
    else:
        pre = rng.random((n_pre, steps)) < p
    post = rng.random((n_post, steps)) < p
    w0 = np.full((n_post, n_pre), rule.weight.w_init)
    return SpikeTrains(pre, post, w0, "correlated", seed, rate)


def induction(rule: Rule, name: str, pre_steps: np.ndarray, post_dt_ms: float | None, n_pre: int, n_post: int,
              seed: int | None = None) -> SpikeTrains:
    """All pre neurons spike at ``pre_steps``; each post neuron ``post_dt_ms`` after each pre spike
    (no post spikes when None: the rule then sees presynaptic activity only)."""
    step_ms = rule.dt * 1e3
    offset = 0 if post_dt_ms is None else int(round(post_dt_ms / step_ms))
    shift = max(0, -offset) + 1
    pre_steps = np.asarray(pre_steps, dtype=np.int64) + shift
    steps = int(pre_steps[-1] + max(offset, 0)) + _tail(rule) + 1
    pre = np.zeros((n_pre, steps), dtype=bool)
    post = np.zeros((n_post, steps), dtype=bool)
    pre[:, pre_steps] = True
    if post_dt_ms is not None:
        post[:, pre_steps + offset] = True
    w0 = np.full((n_post, n_pre), rule.weight.w_init)
    return SpikeTrains(pre, post, w0, name, seed, None)


def theta_burst_steps(bursts: int, spikes_per_burst: int, burst_rate: float, theta: float, step_ms: float) -> np.ndarray:
    """Pre spike steps of theta-burst stimulation: ``bursts`` bursts at ``theta`` Hz, each
    ``spikes_per_burst`` spikes at ``burst_rate`` Hz."""
    within = np.rint(np.arange(spikes_per_burst) * 1000.0 / burst_rate / step_ms).astype(np.int64)
    starts = np.rint(np.arange(bursts) * 1000.0 / theta / step_ms).astype(np.int64)
    return (starts[:, None] + within[None, :]).reshape(-1)


def _pair_times(first: float, pairs: int, frequency: float, step_ms: float) -> np.ndarray:
    """Steps of ``pairs`` events from step ``first`` at ``frequency`` Hz."""
    period = 1000.0 / frequency / step_ms
    return np.array([first + int(round(k * period)) for k in range(pairs)], dtype=np.int64)


def _tail(rule: Rule) -> int:
    return int(np.ceil(5 * max((rule.tau_steps(t) for t in rule.traces), default=1.0)))


def stdp_window(rule: Rule, dt_min_ms: float, dt_max_ms: float, dt_step_ms: float, pairs: int,
                frequency: float, seed: int | None = None) -> SpikeTrains:
    """The pairing protocol swept over ``dt = t_post - t_pre``, all offsets in one run.

    One post neuron spikes at ``t_k = t_0 + k / frequency``; pre neuron ``m``
    spikes at ``t_k - dt_m``. Synapse (0, m) therefore sees exactly the
    pairing protocol at offset ``dt_m`` and the curve is ``dw(dt_m)``, the
    weight change of that synapse over the run."""
    step_ms = rule.dt * 1e3
    dts = np.arange(dt_min_ms, dt_max_ms + dt_step_ms / 2, dt_step_ms)
    offsets = np.rint(dts / step_ms).astype(np.int64)
    post_steps = _pair_times(max(0, int(offsets.max())) + 1, pairs, frequency, step_ms)
    steps = int(max(post_steps[-1], post_steps[-1] - offsets.min())) + _tail(rule) + 1
    pre = np.zeros((len(dts), steps), dtype=bool)
    post = np.zeros((1, steps), dtype=bool)
    post[0, post_steps] = True
    for m, offset in enumerate(offsets):
        pre[m, post_steps - offset] = True
    w0 = np.full((1, len(dts)), rule.weight.w_init)
    curve = {"x": [float(d) for d in offsets * step_ms], "x_label": "dt = t_post - t_pre (ms)",
             "synapses": [[0, m] for m in range(len(dts))]}
    return SpikeTrains(pre, post, w0, "stdp-window", seed, None, curve)


def frequency_sweep(rule: Rule, frequencies, pairs: int, dt_ms: float, seed: int | None = None) -> SpikeTrains:
    """Pairing at offset ``dt_ms`` repeated ``pairs`` times at each frequency (Sjostrom et al. 2001).

    Pre neuron ``k`` and post neuron ``k`` pair at ``frequencies[k]``; the
    curve is the weight change of the diagonal synapses (k, k), ``dw(f)``.
    The other synapses see unrelated trains and are not part of the curve."""
    step_ms = rule.dt * 1e3
    offset = int(round(dt_ms / step_ms))
    starts = [_pair_times(max(0, -offset) + 1, pairs, f, step_ms) for f in frequencies]
    steps = int(max(s[-1] + max(offset, 0) for s in starts)) + _tail(rule) + 1
    n = len(frequencies)
    pre = np.zeros((n, steps), dtype=bool)
    post = np.zeros((n, steps), dtype=bool)
    for k, pre_steps in enumerate(starts):
        pre[k, pre_steps] = True
        post[k, pre_steps + offset] = True
    w0 = np.full((n, n), rule.weight.w_init)
    curve = {"x": [float(f) for f in frequencies], "x_label": f"pairing frequency (Hz), dt = {dt_ms:g} ms",
             "synapses": [[k, k] for k in range(n)]}
    return SpikeTrains(pre, post, w0, "frequency", seed, None, curve)


def closed_loop(rule: Rule, n_pre: int, n_post: int, steps: int, rate: float, tau_u_ms: float, tau_v_ms: float,
                threshold: float, seed: int) -> SpikeTrains:
    """Poisson presynaptic trains driving a LIF per postsynaptic neuron through the plastic weights.

    The neuron is Lava's LIF (``lava.proc.lif``), in the weight's units, per step::

        u = u (1 - du) + a;   v = v (1 - dv) + u;   spike if v > vth, then v = 0

    with ``du = dt / tau_u``, ``dv = dt / tau_v``, ``vth = threshold * (w_max - w_min)``
    and ``a`` the sum of the weights of the synapses whose presynaptic neuron
    spiked in the previous step (Lava's dense connection delivers one step late).
    The post spikes come from the backends; ``post`` is all zeros here."""
    trains = poisson(rule, n_pre, n_post, steps, rate, seed)
    neuron = {"du": rule.dt * 1e3 / tau_u_ms, "dv": rule.dt * 1e3 / tau_v_ms,
              "vth": threshold * rule.weight.range, "tau_u_ms": tau_u_ms, "tau_v_ms": tau_v_ms,
              "threshold": threshold}
    return SpikeTrains(trains.pre, np.zeros_like(trains.post), trains.w0, "closed-loop", seed, rate, neuron=neuron)


@dataclass(frozen=True)
class Option:
    name: str  # option name in plans; the CLI spells it --name-with-dashes
    type: type  # int or float
    default: object
    minimum: float  # smallest allowed value; 0 means "> 0" unless inclusive
    help: str
    inclusive: bool = False  # a minimum of 0 is allowed


#: The protocols ``verify`` and batch plans know, with their options.
PROTOCOLS = {
    "poisson": (
        Option("n_pre", int, DEFAULT_POISSON["n_pre"], 1, "presynaptic neurons"),
        Option("n_post", int, DEFAULT_POISSON["n_post"], 1, "postsynaptic neurons"),
        Option("steps", int, DEFAULT_POISSON["steps"], 1, "time steps"),
        Option("rate", float, DEFAULT_POISSON["rate"], 0, "Poisson rate in Hz (pre and post)"),
    ),
    "pairing": (
        Option("n_pre", int, 1, 1, "presynaptic neurons"),
        Option("n_post", int, 1, 1, "postsynaptic neurons"),
        Option("pairs", int, 60, 1, "number of pre/post pairs"),
        Option("dt_ms", float, 10.0, -1e6, "t_post - t_pre in ms"),
        Option("frequency", float, 1.0, 0, "pairing frequency in Hz"),
    ),
    "correlated": (
        Option("n_pre", int, 10, 1, "presynaptic neurons"),
        Option("n_post", int, 10, 1, "postsynaptic neurons"),
        Option("steps", int, 2000, 1, "time steps"),
        Option("rate", float, 10.0, 0, "rate of every train in Hz"),
        Option("correlation", float, 0.2, 0, "pairwise correlation of the presynaptic trains, 0..1", inclusive=True),
    ),
    "hfs": (
        Option("n_pre", int, 1, 1, "presynaptic neurons"),
        Option("n_post", int, 1, 1, "postsynaptic neurons"),
        Option("bursts", int, 10, 1, "theta bursts"),
        Option("spikes_per_burst", int, 4, 1, "pre spikes per burst"),
        Option("burst_rate", float, 100.0, 0, "spike rate within a burst in Hz"),
        Option("theta", float, 5.0, 0, "burst rate in Hz"),
        Option("post_dt_ms", float, 5.0, -1e6, "each post spike this long after its pre spike (ms)"),
    ),
    "lfs": (
        Option("n_pre", int, 1, 1, "presynaptic neurons"),
        Option("n_post", int, 1, 1, "postsynaptic neurons"),
        Option("pulses", int, 900, 1, "pre pulses"),
        Option("frequency", float, 1.0, 0, "pulse rate in Hz"),
        Option("post_dt_ms", float, -10.0, -1e6, "each post spike this long after its pre spike (ms; < 0: before)"),
    ),
    "stdp-window": (
        Option("dt_min_ms", float, -100.0, -1e6, "smallest t_post - t_pre in ms"),
        Option("dt_max_ms", float, 100.0, -1e6, "largest t_post - t_pre in ms"),
        Option("dt_step_ms", float, 5.0, 0, "step of the dt sweep in ms"),
        Option("pairs", int, 10, 1, "number of pre/post pairs"),
        Option("frequency", float, 1.0, 0, "pairing frequency in Hz"),
    ),
    "frequency": (
        Option("frequencies", tuple, (1.0, 5.0, 10.0, 20.0, 40.0, 50.0), 0,
               "pairing frequencies in Hz (comma-separated); Sjostrom et al. 2001 go down to 0.1 Hz"),
        Option("pairs", int, 60, 1, "number of pre/post pairs"),
        Option("dt_ms", float, 10.0, -1e6, "t_post - t_pre in ms"),
    ),
    "closed-loop": (
        Option("n_pre", int, 20, 1, "presynaptic neurons"),
        Option("n_post", int, 1, 1, "postsynaptic neurons"),
        Option("steps", int, 2000, 1, "time steps"),
        Option("rate", float, 20.0, 0, "Poisson rate of the presynaptic trains in Hz"),
        Option("tau_u_ms", float, 5.0, 0, "LIF current time constant in ms (closed loop)"),
        Option("tau_v_ms", float, 20.0, 0, "LIF membrane time constant in ms (closed loop)"),
        Option("threshold", float, 20.0, 0, "LIF threshold in units of the weight range (closed loop)"),
    ),
}


def _number_list(value, source: str, field: str) -> tuple:
    """``[1, 5, 10]`` or ``"1,5,10"`` -> (1.0, 5.0, 10.0); each > 0 and finite."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not items or len(items) > 1000:
        raise NeurodeployError(source, field, f"must be a list of numbers such as 1,5,10 (got {value!r})")
    numbers = []
    for item in items:
        try:
            number = float(item) if not isinstance(item, bool) else None
        except (TypeError, ValueError):
            number = None
        if number is None or not np.isfinite(number) or number <= 0:
            raise NeurodeployError(source, field, f"must be numbers > 0 (got {item!r})")
        numbers.append(number)
    return tuple(numbers)


def _spell(prefix: str, key: str) -> str:
    """``protocols[0].`` + ``n_pre``, or for the command line ``--`` + ``n-pre``."""
    return f"--{key.replace('_', '-')}" if prefix == "--" else f"{prefix}{key}"


def protocol_options(name: str, given: dict, source: str, prefix: str = "") -> dict:
    """Validate ``given`` options of protocol ``name``; return them with defaults filled in.

    Errors name ``source`` and the option (``prefix`` + name), e.g.
    ``smoke.yaml: protocols[1].rate: must be > 0 (got -1)``."""
    if name not in PROTOCOLS:
        raise NeurodeployError(source, f"{prefix}name".rstrip("."),
                               f"unknown protocol '{name}'{did_you_mean(name, PROTOCOLS)} (known: {', '.join(PROTOCOLS)})")
    spec = {o.name: o for o in PROTOCOLS[name]}
    values = {}
    for key, value in given.items():
        if key not in spec:
            raise NeurodeployError(source, _spell(prefix, key), f"not an option of protocol '{name}' "
                                                             f"(options: {', '.join(spec)})")
        option = spec[key]
        if option.type is tuple:
            values[key] = _number_list(value, source, _spell(prefix, key))
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise NeurodeployError(source, _spell(prefix, key), f"must be {'a whole number' if option.type is int else 'a number'} (got {value!r})")
        try:
            number = float(value)
        except OverflowError:
            number = float("inf")
        if not np.isfinite(number):
            shown = str(value) if len(str(value)) <= 40 else str(value)[:37] + "..."
            raise NeurodeployError(source, _spell(prefix, key), f"must be finite (got {shown})")
        if option.type is int and not number.is_integer():
            raise NeurodeployError(source, _spell(prefix, key), f"must be a whole number (got {value!r})")
        strict = option.minimum == 0 and not option.inclusive
        if (strict and value <= 0) or (not strict and value < option.minimum):
            bound = "> 0" if strict else f">= {option.minimum:g}"
            raise NeurodeployError(source, _spell(prefix, key), f"must be {bound} (got {value!r})")
        values[key] = option.type(value)
    for option in PROTOCOLS[name]:
        values.setdefault(option.name, option.default)
    return values


def _estimated_size(rule: Rule, name: str, o: dict) -> tuple:
    """(steps, n_pre, n_post, parts) of protocol ``name``, computed before anything is allocated.

    ``parts`` maps an option (or ``"tail"``: five times the rule's longest
    trace time constant, the settling time after the last spike) to the steps
    it contributes, so a size error can blame the right one."""
    step_ms = rule.dt * 1e3
    tail = 5 * max((rule.tau_steps(t) for t in rule.traces), default=1.0) + 2
    if name in ("poisson", "correlated", "closed-loop"):
        return float(o["steps"]), o["n_pre"], o["n_post"], {"steps": float(o["steps"])}
    if name == "pairing":
        parts = {"dt_ms": abs(o["dt_ms"]) / step_ms, "pairs": (o["pairs"] - 1) * 1000.0 / o["frequency"] / step_ms}
        n_pre, n_post = o["n_pre"], o["n_post"]
    elif name == "stdp-window":
        n_pre, n_post = int((o["dt_max_ms"] - o["dt_min_ms"]) / o["dt_step_ms"]) + 1, 1
        parts = {"dt_max_ms": 2 * max(abs(o["dt_min_ms"]), abs(o["dt_max_ms"])) / step_ms,
                 "pairs": (o["pairs"] - 1) * 1000.0 / o["frequency"] / step_ms}
    elif name == "frequency":
        n_pre = n_post = len(o["frequencies"])
        parts = {"dt_ms": abs(o["dt_ms"]) / step_ms,
                 "pairs": (o["pairs"] - 1) * 1000.0 / min(o["frequencies"]) / step_ms}
    elif name == "hfs":
        n_pre, n_post = o["n_pre"], o["n_post"]
        parts = {"bursts": o["bursts"] * 1000.0 / o["theta"] / step_ms, "post_dt_ms": abs(o["post_dt_ms"]) / step_ms}
    else:  # lfs
        n_pre, n_post = o["n_pre"], o["n_post"]
        parts = {"pulses": o["pulses"] * 1000.0 / o["frequency"] / step_ms, "post_dt_ms": abs(o["post_dt_ms"]) / step_ms}
    parts["tail"] = tail
    return sum(parts.values()), n_pre, n_post, parts


def make_trains(rule: Rule, name: str, options: dict, seed: int, source: str = "", prefix: str = "") -> SpikeTrains:
    """Spike trains of protocol ``name`` with validated ``options`` (and the default reward if the rule reads one)."""
    return with_reward(rule, _make_trains(rule, name, options, seed, source, prefix))


def _make_trains(rule: Rule, name: str, options: dict, seed: int, source: str, prefix: str) -> SpikeTrains:
    o = protocol_options(name, options, source, prefix)
    if name == "stdp-window" and o["dt_min_ms"] > o["dt_max_ms"]:
        raise NeurodeployError(source, _spell(prefix, "dt_min_ms"),
                               f"must be <= dt_max_ms = {o['dt_max_ms']:g} (got {o['dt_min_ms']:g})")
    steps, n_pre, n_post, parts = _estimated_size(rule, name, o)
    if not (steps <= MAX_STEPS and steps * n_pre * n_post <= MAX_SYNAPSE_STEPS
            and steps * (n_pre + n_post) <= MAX_NEURON_STEPS):
        limits = (f"at most {_count(MAX_STEPS)} steps, {_count(MAX_SYNAPSE_STEPS)} synapse-steps and "
                  f"{_count(MAX_NEURON_STEPS)} neuron-steps")
        blame = max(parts, key=parts.get) if steps > MAX_STEPS else max(
            (k for k in parts if k != "tail"), key=parts.get)
        if blame == "tail":
            longest = max(rule.traces, key=lambda t: t.tau)
            raise NeurodeployError(rule.source, f"traces.{longest.name}.tau",
                                   f"too long for protocol '{name}': the run settles for 5 tau = "
                                   f"{_count(parts['tail'])} steps after the last spike ({limits})")
        raise NeurodeployError(source, _spell(prefix, blame),
                               f"run too large ({_count(steps)} steps x {n_post}x{n_pre} synapses; {limits})")
    check_delays(rule, steps, n_pre, n_post, f"protocol '{name}'")
    if name == "poisson":
        if o["rate"] * rule.dt > 1:
            raise NeurodeployError(source, _spell(prefix, "rate"), f"must be at most 1/dt = {1 / rule.dt:g} Hz (got {o['rate']:g})")
        return poisson(rule, o["n_pre"], o["n_post"], o["steps"], o["rate"], seed)
    if name in ("hfs", "lfs"):
        step_ms = rule.dt * 1e3
        if name == "hfs":
            top = max(o["burst_rate"], o["theta"])
            within_ms = (o["spikes_per_burst"] - 1) * 1000.0 / o["burst_rate"]
            if within_ms >= 1000.0 / o["theta"]:
                raise NeurodeployError(source, _spell(prefix, "theta"),
                                       f"bursts overlap: a burst lasts {within_ms:g} ms, theta period {1000 / o['theta']:g} ms")
            steps = theta_burst_steps(o["bursts"], o["spikes_per_burst"], o["burst_rate"], o["theta"], step_ms)
            field = "burst_rate" if o["burst_rate"] >= o["theta"] else "theta"
        else:
            top, field = o["frequency"], "frequency"
            steps = _pair_times(0, o["pulses"], o["frequency"], step_ms)
        if 1000.0 / top < step_ms:
            raise NeurodeployError(source, _spell(prefix, field), f"must be at most 1/dt = {1 / rule.dt:g} Hz (got {top:g})")
        return induction(rule, name, steps, o["post_dt_ms"], o["n_pre"], o["n_post"], seed)
    if name == "closed-loop":
        if o["rate"] * rule.dt > 1:
            raise NeurodeployError(source, _spell(prefix, "rate"), f"must be at most 1/dt = {1 / rule.dt:g} Hz (got {o['rate']:g})")
        for key in ("tau_u_ms", "tau_v_ms"):
            if o[key] < rule.dt * 1e3:
                raise NeurodeployError(source, _spell(prefix, key), f"must be at least dt = {rule.dt * 1e3:g} ms (got {o[key]:g})")
        return closed_loop(rule, o["n_pre"], o["n_post"], o["steps"], o["rate"], o["tau_u_ms"], o["tau_v_ms"],
                           o["threshold"], seed)
    if name == "correlated":
        if o["correlation"] > 1:
            raise NeurodeployError(source, _spell(prefix, "correlation"), f"must be at most 1 (got {o['correlation']:g})")
        limit = (o["correlation"] if o["correlation"] > 0 else 1.0) / rule.dt
        if o["rate"] > limit:
            raise NeurodeployError(source, _spell(prefix, "rate"), f"must be at most {limit:g} Hz "
                                   f"(the mother train spikes at rate/correlation <= 1/dt) (got {o['rate']:g})")
        return correlated(rule, o["n_pre"], o["n_post"], o["steps"], o["rate"], o["correlation"], seed)
    if name == "stdp-window":
        if 1000.0 / o["frequency"] < rule.dt * 1e3:
            raise NeurodeployError(source, _spell(prefix, "frequency"), f"must be at most 1/dt = {1 / rule.dt:g} Hz (got {o['frequency']:g})")
        return stdp_window(rule, o["dt_min_ms"], o["dt_max_ms"], o["dt_step_ms"], o["pairs"], o["frequency"], seed)
    if name == "frequency":
        top = max(o["frequencies"])
        if 1000.0 / top < rule.dt * 1e3:
            raise NeurodeployError(source, _spell(prefix, "frequencies"), f"must be at most 1/dt = {1 / rule.dt:g} Hz (got {top:g})")
        return frequency_sweep(rule, o["frequencies"], o["pairs"], o["dt_ms"], seed)
    period_ms = 1000.0 / o["frequency"]
    if period_ms < rule.dt * 1e3:
        raise NeurodeployError(source, _spell(prefix, "frequency"), f"must be at most 1/dt = {1 / rule.dt:g} Hz (got {o['frequency']:g})")
    return pairing(rule, o["n_pre"], o["n_post"], o["pairs"], o["dt_ms"], o["frequency"], seed)


def check_delays(rule: Rule, steps: int, n_pre: int, n_post: int, what: str) -> None:
    """Refuse a trace delay whose delayed rasters (steps + delay per neuron) exceed the run limits."""
    delayed = [t for t in rule.traces if rule.delay_steps(t) > 0]
    if not delayed:
        return
    longest = max(delayed, key=rule.delay_steps)
    delay = rule.delay_steps(longest)
    if (steps + delay) * (n_pre + n_post) > MAX_NEURON_STEPS:
        raise NeurodeployError(rule.source, f"traces.{longest.name}.delay",
                               f"too long for {what}: ({_count(steps)} + {_count(delay)} delay) steps x "
                               f"{n_pre + n_post} neurons (at most {_count(MAX_NEURON_STEPS)} neuron-steps)")


def check_transposed(source: str, steps: int, n_pre: int, n_post: int, shaped: bool) -> None:
    """Warn (one line on stderr) when both rasters have fewer steps than neurons: the sign of rasters
    saved (steps, neurons). Not an error: a large network on a short run is legitimate; a ``w0`` or
    ``mask`` of shape (n_post, n_pre) (``shaped``) confirms the reading and silences the warning."""
    import sys

    if shaped or not (steps < n_pre and steps < n_post):
        return
    print(f"neurodeploy: warning: {source}: pre, post: read as {n_pre} and {n_post} neurons x {steps} steps "
          f"(fewer steps than neurons): rasters are (neurons, steps); if they were saved (steps, neurons), "
          f"save pre.T and post.T", file=sys.stderr)


#: The members a spike file may hold (``numpy.savez`` names them ``<name>.npy``).
SPIKE_MEMBERS = ("pre", "post", "w0", "reward", "mask")
#: Largest .npy header read (numpy's own default limit).
_MAX_NPY_HEADER = 10_000


def _npy_header(archive: zipfile.ZipFile, info: zipfile.ZipInfo, source: str, key: str) -> tuple:
    """(shape, dtype) from a member's .npy header, read without decompressing its data."""
    from numpy.lib import format as npy

    try:
        with archive.open(info) as handle:
            version = npy.read_magic(handle)
            if version == (1, 0):
                shape, _, dtype = npy.read_array_header_1_0(handle, max_header_size=_MAX_NPY_HEADER)
            elif version == (2, 0):
                shape, _, dtype = npy.read_array_header_2_0(handle, max_header_size=_MAX_NPY_HEADER)
            else:
                raise ValueError(f"unsupported .npy version {version}")
    except (ValueError, OSError, zipfile.BadZipFile, EOFError, NotImplementedError, RuntimeError):
        raise NeurodeployError(source, key, "is not a numpy array") from None
    return tuple(shape), dtype


def _real(dtype, key: str, source: str, allow_bool: bool) -> None:
    """bool (rasters only), integer or real floating point: no complex, datetime, strings or objects."""
    kinds = "biuf" if allow_bool else "iuf"
    if dtype.hasobject or dtype.kind not in kinds or dtype.fields is not None or dtype.subdtype is not None:
        what = "boolean or 0/1" if allow_bool else "real numbers"
        raise NeurodeployError(source, key, f"must be {what} (got dtype {dtype})")


def load_spikes(path: str, rule: Rule) -> SpikeTrains:
    """Read ``pre``, ``post`` and optional ``w0`` and ``reward`` from an NPZ file.

    Only a regular file; only the members :data:`SPIKE_MEMBERS`; every member's
    shape and dtype are read from its .npy header and checked (bool, integer or
    real float; the run within the protocols' size limits, :data:`MAX_STEPS`...)
    before any data is decompressed; no pickles."""
    import stat

    source = os.path.basename(path) or path
    if os.path.isdir(path):
        raise NeurodeployError(source, "", "is a directory, not a file")
    try:
        info = os.stat(path)
    except OSError:
        raise NeurodeployError(source, "", "no such file") from None
    if not stat.S_ISREG(info.st_mode):  # a FIFO or a device: reading could block or never end
        raise NeurodeployError(source, "", "not a regular file")
    try:
        with open(path, "rb") as handle:
            magic = handle.read(6)
    except OSError as exc:
        raise NeurodeployError(source, "", f"cannot be read ({exc.strerror or exc.__class__.__name__})") from None
    if magic == b"\x93NUMPY":
        raise NeurodeployError(source, "", "not an NPZ archive (a single array: save pre and post with numpy.savez)")
    if not magic:
        raise NeurodeployError(source, "", "not a readable NPZ file (EOFError)")
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        raise NeurodeployError(source, "", "not a readable NPZ file (ValueError)") from None
    with archive:
        members = {}
        for entry in archive.infolist():
            key = entry.filename[:-4] if entry.filename.endswith(".npy") else entry.filename
            if key not in SPIKE_MEMBERS or not entry.filename.endswith(".npy"):
                raise NeurodeployError(source, entry.filename, f"unknown member (allowed: "
                                       f"{', '.join(m + '.npy' for m in SPIKE_MEMBERS)})")
            if key in members:
                raise NeurodeployError(source, key, "is in the archive twice")
            members[key] = entry
        for key in ("pre", "post"):
            if key not in members:
                raise NeurodeployError(source, key, "missing")
        headers = {key: _npy_header(archive, entry, source, key) for key, entry in members.items()}
        for key in ("pre", "post"):
            shape, dtype = headers[key]
            if len(shape) != 2 or shape[0] < 1 or shape[1] < 1:
                raise NeurodeployError(source, key, f"must be a 2-D raster (neurons, steps) (got shape {shape})")
            _real(dtype, key, source, allow_bool=True)
        (n_pre, steps), (n_post, post_steps) = headers["pre"][0], headers["post"][0]
        if post_steps != steps:
            raise NeurodeployError(source, "post", f"must have as many steps as pre ({steps}) (got {post_steps})")
        if not (steps <= MAX_STEPS and steps * n_pre * n_post <= MAX_SYNAPSE_STEPS
                and steps * (n_pre + n_post) <= MAX_NEURON_STEPS):  # the limit of make_trains
            raise NeurodeployError(source, "pre", f"run too large ({_count(steps)} steps x {n_post}x{n_pre} synapses; "
                                   f"at most {_count(MAX_STEPS)} steps, {_count(MAX_SYNAPSE_STEPS)} synapse-steps "
                                   f"and {_count(MAX_NEURON_STEPS)} neuron-steps)")
        shape = (n_post, n_pre)
        if "w0" in headers:
            w_shape, w_dtype = headers["w0"]
            if w_shape != shape:
                raise NeurodeployError(source, "w0", f"must be a number array of shape (n_post, n_pre) = {shape} "
                                                     f"(got {w_shape})")
            _real(w_dtype, "w0", source, allow_bool=False)
        if "reward" in headers:
            r_shape, r_dtype = headers["reward"]
            if r_shape not in ((steps,), (n_post, steps)) or r_dtype.kind not in "iuf":
                raise NeurodeployError(source, "reward", f"must be numbers of shape (steps,) = ({steps},) or "
                                       f"(n_post, steps) = ({n_post}, {steps}) (got {r_dtype} {r_shape})")
            _real(r_dtype, "reward", source, allow_bool=False)
        if "mask" in headers:
            m_shape, m_dtype = headers["mask"]
            if m_shape != shape:
                raise NeurodeployError(source, "mask", f"must be a boolean array of shape (n_post, n_pre) = {shape} "
                                                       f"(got {m_shape})")
            _real(m_dtype, "mask", source, allow_bool=True)
        arrays = {}
        for key, entry in members.items():  # sizes known and bounded: now the data
            try:
                with archive.open(entry) as handle:
                    arrays[key] = np.lib.format.read_array(handle, allow_pickle=False,
                                                           max_header_size=_MAX_NPY_HEADER)
            except (ValueError, OSError, zipfile.BadZipFile, EOFError, RuntimeError) as exc:
                raise NeurodeployError(source, key, f"cannot be read ({exc.__class__.__name__})") from None
    rasters = {}
    for key in ("pre", "post"):
        a = arrays[key]
        if a.dtype != bool:
            if not np.all((a == 0) | (a == 1)):
                raise NeurodeployError(source, key, f"must be boolean or 0/1 (got dtype {a.dtype})")
            a = a.astype(bool)
        rasters[key] = a
    if "w0" in arrays:
        w0 = arrays["w0"].astype(float)
        lo, hi = rule.weight.w_min, rule.weight.w_max
        if not np.all(np.isfinite(w0)) or w0.min() < lo or w0.max() > hi:
            raise NeurodeployError(source, "w0", f"must lie within the rule's bounds [{lo:g}, {hi:g}]")
    else:
        w0 = np.full(shape, rule.weight.w_init)
    reward = None
    if "reward" in arrays:
        r = np.array(np.broadcast_to(arrays["reward"], (n_post, steps)), dtype=float)
        if not np.all(np.isfinite(r)):
            raise NeurodeployError(source, "reward", "must be finite numbers")
        reward = r
    elif rule.has_reward:
        reward = default_reward(n_post, steps, rule, 0)
    mask = None
    if "mask" in arrays:
        m = arrays["mask"]
        if m.dtype != bool:
            if not np.all((m == 0) | (m == 1)):
                raise NeurodeployError(source, "mask", f"must be boolean or 0/1 (got dtype {m.dtype})")
            m = m.astype(bool)
        if not m.any():
            raise NeurodeployError(source, "mask", f"must keep at least one synapse (got all {shape[0]}x{shape[1]} "
                                                   "False)")
        mask = None if m.all() else m
    check_delays(rule, steps, rasters["pre"].shape[0], n_post, f"spike file {source}")
    check_transposed(source, steps, n_pre, n_post, "w0" in headers or "mask" in headers)
    return SpikeTrains(rasters["pre"], rasters["post"], w0, f"file:{source}", reward=reward, mask=mask)


#: The default third-factor input of rules with a reward trace: unit rewards
#: at random steps (Bernoulli, this rate), the same for every postsynaptic neuron.
DEFAULT_REWARD_RATE = 2.0


def default_reward(n_post: int, steps: int, rule: Rule, seed: int) -> np.ndarray:
    """(n_post, steps) rewards of 1 at Bernoulli(``DEFAULT_REWARD_RATE * dt``) steps, from ``seed + 1``."""
    rng = np.random.default_rng(None if seed is None else seed + 1)
    events = (rng.random(steps) < DEFAULT_REWARD_RATE * rule.dt).astype(float)
    return np.repeat(events[np.newaxis, :], n_post, axis=0)


def with_reward(rule: Rule, trains: SpikeTrains) -> SpikeTrains:
    """``trains`` with the default reward added when the rule needs one and they carry none."""
    if not rule.has_reward or trains.reward is not None:
        return trains
    return dataclasses.replace(trains, reward=default_reward(trains.n_post, trains.steps, rule, trains.seed or 0))


def decayed_trace(raster: np.ndarray, decay: float, jump: float, chunk: int = 65536):
    """Yield ``(start, values)`` blocks of the trace ``v[t] = decay * v[t-1] + jump * raster[:, t]``
    (v[-1] = 0), (neurons, steps) in blocks of ``chunk`` steps: a linear filter
    (:func:`scipy.signal.lfilter`, no Python loop per step), memory O(neurons x chunk)."""
    from scipy.signal import lfilter

    state = np.zeros((raster.shape[0], 1))
    for start in range(0, raster.shape[1], chunk):
        block = raster[:, start:start + chunk].astype(float) * jump
        values, state = lfilter([1.0], [1.0, -decay], block, axis=1, zi=state)
        yield start, values


def trace_stats(rule: Rule, trains: SpikeTrains) -> dict:
    """Per trace: its largest and its mean value over these trains.

    Returns {name: {"peak": .., "mean": ..}} (rule units; decay, then jump, per
    step); ``mean`` averages the trace over all neurons and steps."""
    stats = {}
    for trace in rule.traces:
        if trace.of not in ("pre", "post") or trace.state_dependent:
            continue  # only the learning engine's traces are scaled from these
        raster = trains.pre if trace.of == "pre" else trains.post
        decay = np.exp(-1.0 / rule.tau_steps(trace))
        peak, total = 0.0, 0.0
        for _, values in decayed_trace(raster, decay, trace.jump):
            if values.size:
                peak = max(peak, float(np.max(np.abs(values))))
                total += float(np.sum(np.abs(values)))
        stats[trace.name] = {"peak": peak or abs(trace.jump), "mean": total / raster.size}
    return stats


def update_counts(rule: Rule, trains: SpikeTrains) -> dict:
    """Learning epochs per synapse with a pre or post spike (each is one weight update)."""
    e = rule.t_epoch
    n_epochs = -(-trains.steps // e)
    pad = n_epochs * e - trains.steps
    from scipy import sparse

    pre = np.pad(trains.pre, ((0, 0), (0, pad))).reshape(trains.n_pre, n_epochs, e).any(axis=2)
    post = np.pad(trains.post, ((0, 0), (0, pad))).reshape(trains.n_post, n_epochs, e).any(axis=2)
    # epochs in which both spiked, per synapse: a sparse integer product (its work is the coincident pairs,
    # not n_post x n_pre x epochs; exact: counts below 2^31)
    both = (sparse.csr_matrix(post, dtype=np.int32) @ sparse.csc_matrix(pre.T, dtype=np.int32)).toarray()
    both = both.astype(np.int64)
    updates = pre.sum(axis=1)[None, :] + post.sum(axis=1)[:, None] - both
    if getattr(trains, "mask", None) is not None:  # only the synapses that exist
        updates, both = updates[trains.mask], both[trains.mask]
    return {"max_updates": int(updates.max()), "mean_updates": float(updates.mean()), "epochs": n_epochs,
            "coincident_epochs": int(both.sum()), "max_coincident_per_synapse": int(both.max())}
