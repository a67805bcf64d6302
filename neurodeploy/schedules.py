"""Rewards decided from a network's own spikes (the third factor of a three-factor rule, online).

A :class:`RewardSchedule` observes each step's spikes and schedules rewards for later steps; every backend
runs its own fresh copy (:mod:`neurodeploy.compile.reward` turns the rewards into the rule's traces, online).
They sit at the bottom of the layers: a network file's ``reward:`` section (:mod:`neurodeploy.network`)
builds one, and every layer above runs it.
"""
from __future__ import annotations

import copy

import numpy as np


class RewardSchedule:
    """A reward computed from the network's own spikes: :meth:`observe` sees each step's spikes (every
    source, inputs then LIF neurons, and the LIF neurons) and schedules rewards for later steps;
    :meth:`deliver` returns the reward of a step (n_lif,). Each backend runs its own :meth:`fresh` copy
    (the same seed: the same delays for the same spikes). Subclasses implement :meth:`_observe`."""

    #: the smallest delay (steps) between the spikes a reward depends on and its delivery
    min_delay = 1

    def fresh(self, n_lif: int, steps: int) -> "RewardSchedule":
        """A copy ready to run ``steps`` steps for ``n_lif`` LIF neurons (state reset, generator seeded)."""
        other = copy.deepcopy(self)
        other._reset(int(n_lif), int(steps))
        return other

    def _reset(self, n_lif: int, steps: int) -> None:
        self.n_lif, self.steps = n_lif, steps
        self.pending = np.zeros((steps, n_lif))
        self.delivered = []  # (step, amount) for the report: every reward scheduled within the run
        self.events = []  # (step of the triggering spikes, step of delivery)

    def schedule(self, now: int, at: int, amount, neurons=slice(None)) -> None:
        if at <= now:
            raise ValueError(f"a reward decided in step {now} must come later (got step {at})")
        self.events.append((now, at))
        if at < self.steps:
            self.pending[at, neurons] += amount

    def deliver(self, t: int) -> np.ndarray:
        """The reward (n_lif,) of 0-based step ``t`` (decided in earlier steps)."""
        return self.pending[t]

    def replay(self, sources: np.ndarray, lifs: np.ndarray) -> np.ndarray:
        """The rewards (n_lif, steps) a fresh copy gives a run's spikes: ``sources`` (n_src, steps: the inputs'
        rows, then the LIF neurons'), ``lifs`` (n_lif, steps). What the run's rule received, so that a run
        replayed open loop on its own spikes receives the same third factor."""
        sources, lifs = np.asarray(sources, dtype=bool), np.asarray(lifs, dtype=bool)
        run = self.fresh(lifs.shape[0], lifs.shape[1])
        out = np.zeros(lifs.shape)
        for t in range(lifs.shape[1]):
            out[:, t] = run.deliver(t)
            run.observe(t, sources[:, t], lifs[:, t])
        return out

    def observe(self, t: int, sources: np.ndarray, lifs: np.ndarray) -> None:
        """Step ``t`` (0-based) spiked: ``sources`` (n_src,) bool, ``lifs`` (n_lif,) bool."""
        self._observe(t, np.asarray(sources, dtype=bool), np.asarray(lifs, dtype=bool))

    def _observe(self, t, sources, lifs):
        raise NotImplementedError

    def describe(self) -> dict:
        return {"kind": type(self).__name__}


class DistalReward(RewardSchedule):
    """Izhikevich (2007) Cereb Cortex 17:2443, Fig. 1: every time the LIF neuron ``post`` (a LIF index)
    fires within ``window`` steps after the source ``pre`` (a source index: inputs then LIF neurons) last
    fired (1..window steps after), a reward ``amount`` reaches every LIF neuron (dopamine is global) after
    a delay drawn uniformly from ``delay_min..delay_max`` steps (1-3 s in the paper), from ``seed``.

    ``pre``, ``post``: the rewarded synapse. Same-step pre and post spikes do not count (the engine's
    order of a same-step pair is not Brian2's: see the README's timing share)."""

    def __init__(self, pre: int, post: int, window: int = 10, delay_min: int = 1000, delay_max: int = 3000,
                 amount: float = 1.0, seed: int = 0):
        if not 1 <= int(delay_min) <= int(delay_max):
            raise ValueError(f"delays must satisfy 1 <= delay_min <= delay_max (got {delay_min}, {delay_max})")
        self.pre, self.post, self.window = int(pre), int(post), int(window)
        self.delay_min, self.delay_max = int(delay_min), int(delay_max)
        self.amount, self.seed = float(amount), int(seed)

    def _reset(self, n_lif, steps):
        super()._reset(n_lif, steps)
        self.rng = np.random.default_rng(self.seed)
        self.last_pre = None

    def _observe(self, t, sources, lifs):
        if lifs[self.post] and self.last_pre is not None and 1 <= t - self.last_pre <= self.window:
            delay = int(self.rng.integers(self.delay_min, self.delay_max + 1))
            self.schedule(t, t + delay, self.amount)
        if sources[self.pre]:
            self.last_pre = t

    def describe(self) -> dict:
        return {"kind": "distal", "pre": self.pre, "post": self.post, "window_steps": self.window,
                "delay_steps": [self.delay_min, self.delay_max], "amount": self.amount, "seed": self.seed}


class RateReward(RewardSchedule):
    """A reward for activity: every ``period`` steps, ``amount`` to every LIF neuron when the LIF neurons
    ``neurons`` fired more than ``target`` spikes in that period, delivered ``delay`` steps later
    (a reward that depends on the network's activity in the simplest way)."""

    def __init__(self, neurons, target: int, period: int = 100, delay: int = 1000, amount: float = 1.0):
        if int(delay) < 1 or int(period) < 1:
            raise ValueError("period and delay must be >= 1 step")
        self.neurons = np.asarray(neurons, dtype=np.intp)
        self.target, self.period, self.delay, self.amount = int(target), int(period), int(delay), float(amount)

    def _reset(self, n_lif, steps):
        super()._reset(n_lif, steps)
        self.count = 0

    def _observe(self, t, sources, lifs):
        self.count += int(lifs[self.neurons].sum())
        if (t + 1) % self.period == 0:
            if self.count > self.target:
                self.schedule(t, t + self.delay, self.amount)
            self.count = 0

    def describe(self) -> dict:
        return {"kind": "rate", "neurons": self.neurons.tolist(), "target": self.target, "period": self.period,
                "delay_steps": self.delay, "amount": self.amount}
