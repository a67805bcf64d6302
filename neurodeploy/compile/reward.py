"""Three-factor rules in closed loops and networks: the post and reward traces computed online.

A three-factor plan (``Loihi3FLearningRule``) does not compute its y traces: the postsynaptic side
supplies y1..y3 every step (``s_in_y1..y3``). Open loop, :func:`neurodeploy.compile.loihi.supplied_traces`
computes them from whole rasters in advance. Where the post neurons spike on their own and the reward
depends on what the network does, they must be computed step by step, from this step's spikes and
this step's reward: :class:`OnlineTraces` does that with the same float operations in the same order
as ``supplied_traces`` (so an open-loop run given the spikes a closed loop made supplies the very same
values), and a :class:`RewardSchedule` decides the reward from the network's own spikes.

The same objects run in every backend, so the arithmetic is one code path:

* ``emu-float``/``emu-fixed``: :func:`neurodeploy.emu.engine.simulate_network` (``third_factor=``);
* ``lava-float``/``lava-fixed``: one :class:`neurodeploy.lava.reward.processes.RewardTraces` process per
  plastic projection (it receives the sources' and the LIF populations' spikes of the step and sends
  y1..y3 to the connection in the same step);
* ``brian2``/``brian2-step``: a ``network_operation`` at the end of each step observes the spikes and
  writes the scheduled rewards into the ``reward_input`` ``TimedArray`` ahead of time
  (:func:`neurodeploy.brian2.network.build_and_run`).

A reward decided in step ``t`` is delivered in a later step (``delay >= 1``): no backend can then
depend on the order in which a step's processes run.
"""
from __future__ import annotations

import copy

import numpy as np

from neurodeploy.compile.loihi import Y3F_DECAY

Y_SLOTS = ("y1", "y2", "y3")  # the learning engine's post-side trace slots


class OnlineTraces:
    """The supplied y values of a three-factor ``plan`` for ``n_post`` neurons, one step per call.

    Per y slot of the plan (a post trace or a reward trace of the rule): ``v = v a + drive``, with
    ``a = exp(-1 / tau_steps)`` and ``drive`` the step's post spikes times the jump (post traces) or the
    step's reward times the jump (reward traces); then in Lava units: fixed ``clip(rint(v k), -128, 127)``,
    float ``v k / Y3F_DECAY`` (Lava decays a received value once before reading it): exactly
    :func:`neurodeploy.compile.loihi.supplied_traces`."""

    def __init__(self, rule, plan, n_post: int):
        self.fixed = plan.mode == "fixed"
        self.decay_in = Y3F_DECAY
        self.n_post = int(n_post)
        self.slots = []  # (slot index, a, jump, is post trace, scale)
        for t in plan.traces:
            if not t.slot.startswith("y"):
                continue
            trace = rule.trace(t.name)
            a = float(np.exp(-1.0 / rule.tau_steps(trace)))
            self.slots.append((Y_SLOTS.index(t.slot), a, float(trace.jump), trace.of == "post", float(t.scale)))
        self.v = np.zeros((len(self.slots), self.n_post))
        self.dtype = np.int64 if self.fixed else float

    def step(self, post: np.ndarray, reward: np.ndarray) -> np.ndarray:
        """(3, n_post) y values (Lava units; zeros in unused slots) after this step's post spikes and reward."""
        out = np.zeros((3, self.n_post), dtype=self.dtype)
        post_f = np.asarray(post).astype(float)
        reward = np.broadcast_to(np.asarray(reward, dtype=float), (self.n_post,))
        for k, (slot, a, jump, of_post, scale) in enumerate(self.slots):
            drive = post_f * jump if of_post else reward * jump
            self.v[k] = self.v[k] * a + drive
            if self.fixed:
                out[slot] = np.clip(np.rint(self.v[k] * scale), -128, 127).astype(np.int64)
            else:
                out[slot] = self.v[k] * scale / self.decay_in
        return out


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


class ThirdFactor:
    """What one step of a network's third factor needs, per plastic projection: the reward schedule (one
    for the network) and an :class:`OnlineTraces` per plastic projection (its target population)."""

    def __init__(self, rule, plan, network, schedule: RewardSchedule, steps: int):
        self.schedule = schedule.fresh(network.n_lif, steps)
        self.network = network
        self.traces = {}
        for pr in network.projections:
            if pr.plastic and pr.mask.any():
                self.traces[pr.index] = OnlineTraces(rule, plan, network.population(pr.target).n)

    def supplied(self, projection, t: int, lif_spikes: np.ndarray) -> np.ndarray:
        """(3, n_target) y values of ``projection`` at 0-based step ``t`` (``lif_spikes``: every LIF neuron)."""
        target = self.network.population(projection.target).targets
        return self.traces[projection.index].step(lif_spikes[target], self.schedule.deliver(t)[target])
