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


import numpy as np

from neurodeploy.compile.loihi import Y3F_DECAY
from neurodeploy.schedules import DistalReward, RateReward, RewardSchedule  # noqa: F401 (the schedules' home is below)

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
