"""The learning engine's step semantics for any rule, in numpy.

This is what ``brian2-step`` states in Brian2 and what ``lava-cpu`` runs
inside a Lava process; the learning engine (``lava-float``) is the special
case the lowering can express. One step :math:`n`:

1. every trace decays, :math:`v \\leftarrow v_{rest} + (v - v_{rest}) e^{-1/\\tau_{steps}}`;
2. the step's spikes (each trace's own, ``delay`` steps late) add their jumps,
   pre traces then post traces, in file order, each jump reading the values
   already updated; reward traces add ``J * r[n]``;
3. where a neuron spiked this step, its side's terms are evaluated and kept
   until the epoch ends: :math:`f_{pre}` (of ``w`` and of every synapse trace)
   reads the presynaptic traces *as they were before this step's jumps* and
   every other trace after them; :math:`f_{post}` likewise with the post side;
4. at the end of each learning epoch (every ``t_epoch`` steps), from the
   state before any of these changes,

   .. math::

       c \\leftarrow c + x_0 f^c_{pre} + y_0 f^c_{post}, \\qquad
       w \\leftarrow \\mathrm{clip}(w + x_0 f_{pre} + y_0 f_{post}
       + t_{epoch}\\,dt\\, g(\\cdot), w_{min}, w_{max})

   where :math:`x_0, y_0` say whether the pre/post neuron spiked in the
   epoch and :math:`g` is the continuous term, read at the epoch's last step.

Epochs longer than one step (``t_epoch > 1``) follow the learning engine's
bookkeeping (Lava's ``LearningDense``, :mod:`neurodeploy.emu.engine`), not
a trace sampled at every spike:

* during the epoch the pre and post traces keep their epoch-start value;
  a neuron's spike that is not its first in the epoch adds its jump to that
  stored value (the earlier spike's impulse moves to the epoch's start: it
  decays over the whole epoch), and each trace remembers the step of its
  last jump;
* at the epoch's end the epoch is replayed from the stored values, step by
  step: decay, and each trace's jump only at its last jump's step;
* a side's terms (steps 3 and 4 above) are read in the replay at the step of
  that neuron's *last* spike in the epoch (own-side traces before that
  step's jumps, the others after them; synapse and reward traces as they
  were at that step), so a neuron's earlier spikes in the epoch change
  ``w`` only through the traces;
* the continuous term reads the replay's last step; the traces continue
  from the replay's end values.

With ``t_epoch = 1`` this is exactly steps 1-4. For rules with constant jumps
and no own-side reads it is Lava's ``LearningDense`` float model (checked to
1e-16 by the tests, at epochs of 1, 2, 3 and 63 steps).
"""
from __future__ import annotations

import numpy as np
import sympy

from neurodeploy.spec.ir import POST, PRE, REWARD, SYNAPSE, Rule

_FUNCTIONS = {
    sympy.exp: np.exp,
    sympy.log: np.log,
    sympy.Abs: np.abs,
}


def evaluate(expr: sympy.Expr, env: dict):
    """Value of a numeric sympy expression (parameters substituted) over numpy arrays in ``env``.

    A small tree walk: no code is generated or executed from the expression."""
    if expr.is_Symbol:
        return env[expr.name]
    if expr.is_Number:
        return float(expr)
    if expr.is_Add:
        total = 0.0
        for arg in expr.args:
            total = total + evaluate(arg, env)
        return total
    if expr.is_Mul:
        total = 1.0
        for arg in expr.args:
            total = total * evaluate(arg, env)
        return total
    if expr.is_Pow:
        base = evaluate(expr.base, env)
        exponent = expr.exp
        if exponent == sympy.Rational(1, 2):
            return np.sqrt(base)
        return np.power(base, float(exponent)) if not exponent.is_Integer else base ** int(exponent)
    if isinstance(expr, sympy.Heaviside):
        return np.heaviside(evaluate(expr.args[0], env), 0.0)
    for function, implementation in _FUNCTIONS.items():
        if isinstance(expr, function):
            return implementation(evaluate(expr.args[0], env))
    raise TypeError(f"cannot evaluate {expr!r}")  # the parser admits nothing else


class Stepper:
    """State and one-step update of a rule on ``n_pre x n_post`` all-to-all synapses.

    ``values`` holds the synapse and reward traces as they are, and the pre and
    post traces as the engine stores them during an epoch: the epoch-start value
    plus the jumps of the neuron's earlier spikes in the epoch (with
    ``t_epoch = 1`` simply the trace after the step)."""

    def __init__(self, rule: Rule, w0: np.ndarray):
        self.rule = rule
        self.n_post, self.n_pre = w0.shape
        self.w = np.array(w0, dtype=float)
        self.values = {}
        self.shapes = shapes = {PRE: (1, self.n_pre), POST: (self.n_post, 1), REWARD: (self.n_post, 1),
                                SYNAPSE: (self.n_post, self.n_pre)}
        for t in rule.traces:
            self.values[t.name] = np.full(shapes[t.of], t.rest, dtype=float)
        self.decay = {t.name: float(np.exp(-1.0 / rule.tau_steps(t))) for t in rule.traces}
        self.jumps = {t.name: rule.numeric(t.jump_of()) for t in rule.traces if t.of in (PRE, POST)}
        synapse = [t for t in rule.traces if t.of == SYNAPSE]
        self.terms = {PRE: {}, POST: {}}  # side -> target ("w" or synapse trace) -> expression
        for side in (PRE, POST):
            expr = rule.weight.on_pre if side == PRE else rule.weight.on_post
            if expr != 0:
                self.terms[side]["w"] = rule.numeric(expr)
            for t in synapse:
                expr = t.on_pre if side == PRE else t.on_post
                if expr != 0:
                    self.terms[side][t.name] = rule.numeric(expr)
        self.continuous = rule.numeric(rule.weight.continuous) if rule.weight.continuous != 0 else None
        self.spiking = [t for t in rule.traces if t.of in (PRE, POST)]
        self.others = [t for t in rule.traces if t.of not in (PRE, POST)]
        # position in the epoch (1..t_epoch; 0: none) of each trace's last jump and each neuron's last spike
        self.last_jump = {t.name: np.zeros(shapes[t.of], dtype=np.int64) for t in self.spiking}
        self.last_spike = {PRE: np.zeros(shapes[PRE], dtype=np.int64), POST: np.zeros(shapes[POST], dtype=np.int64)}
        # synapse and reward traces at each side's last spike
        self.at_spike = {side: {t.name: np.zeros((self.n_post, self.n_pre)) for t in self.others}
                         for side in (PRE, POST)}
        self.step_index = 0
        self.delays = {t.name: rule.delay_steps(t) for t in self.spiking}

    def _decayed(self, t, v):
        return t.rest + (v - t.rest) * self.decay[t.name] if t.rest else v * self.decay[t.name]

    def step(self, pre_history: np.ndarray, post_history: np.ndarray, reward: np.ndarray | None = None):
        """Advance one step. ``pre_history[:, k]`` is the pre spike vector ``k`` steps ago (k=0: now);
        it must reach back at least the longest delay. ``reward``: (n_post,) or None."""
        rule = self.rule
        values = self.values
        position = self.step_index % rule.t_epoch + 1
        for t in self.others:
            values[t.name] = self._decayed(t, values[t.name])
        if reward is not None:
            r = np.asarray(reward, dtype=float).reshape(self.n_post, 1)
            for t in rule.traces_of(REWARD):
                values[t.name] = values[t.name] + t.jump * r
        full = (self.n_post, self.n_pre)
        for side, history in ((PRE, pre_history), (POST, post_history)):
            for t in rule.traces_of(side):
                spiking = history[:, self.delays[t.name]].astype(bool).reshape(self.shapes[side])
                if not spiking.any():
                    continue
                earlier = spiking & (self.last_jump[t.name] > 0)
                if earlier.any():  # moves to the epoch's start: added to the stored value
                    jump = evaluate(self.jumps[t.name], values)
                    values[t.name] = np.where(earlier, values[t.name] + jump, values[t.name])
                self.last_jump[t.name][spiking] = position
            spiked = history[:, 0].astype(bool).reshape(self.shapes[side])
            if spiked.any():
                self.last_spike[side][spiked] = position
                mask = np.broadcast_to(spiked, full)
                for t in self.others:
                    self.at_spike[side][t.name] = np.where(mask, np.broadcast_to(values[t.name], full),
                                                           self.at_spike[side][t.name])
        self.step_index += 1
        if position == rule.t_epoch:
            self._end_epoch()
        return self.w

    def _end_epoch(self):
        """Replay the epoch from the stored values with each trace's last jump at its step; the terms
        read the replay at their neuron's last spike; then ``w`` and the synapse traces change."""
        rule = self.rule
        full = (self.n_post, self.n_pre)
        h = {t.name: self.values[t.name] for t in self.spiking}
        kept = {side: {target: np.zeros(full) for target in self.terms[side]} for side in (PRE, POST)}
        for k in range(1, rule.t_epoch + 1):
            for t in self.spiking:
                h[t.name] = self._decayed(t, h[t.name])
            before = dict(h)
            for t in self.spiking:
                mask = self.last_jump[t.name] == k
                if mask.any():
                    jump = evaluate(self.jumps[t.name], h)
                    h[t.name] = np.where(mask, h[t.name] + jump, h[t.name])
            for side in (PRE, POST):
                at_k = self.last_spike[side] == k
                if not self.terms[side] or not at_k.any():
                    continue
                env = dict(h, w=self.w)
                env.update({t.name: before[t.name] for t in rule.traces_of(side)})
                env.update(self.at_spike[side])
                mask = np.broadcast_to(at_k, full)
                for target, expr in self.terms[side].items():
                    value = np.broadcast_to(evaluate(expr, env), full)
                    kept[side][target] = np.where(mask, value, kept[side][target])
        changes = {}
        for side in (PRE, POST):
            dep = (self.last_spike[side] > 0).astype(float)
            for target, value in kept[side].items():
                changes[target] = changes.get(target, 0.0) + dep * value
        if self.continuous is not None:
            env = dict(h, w=self.w)
            env.update({t.name: self.values[t.name] for t in self.others})
            changes["w"] = changes.get("w", 0.0) + (rule.t_epoch * rule.dt) * np.broadcast_to(
                evaluate(self.continuous, env), full)
        for target, change in changes.items():
            if target == "w":
                self.w = np.clip(self.w + change, rule.weight.w_min, rule.weight.w_max)
            else:
                self.values[target] = self.values[target] + change
        self.values.update(h)
        for last in list(self.last_jump.values()) + list(self.last_spike.values()):
            last[:] = 0


def max_delay(rule: Rule) -> int:
    return max([rule.delay_steps(t) for t in rule.traces if t.of in (PRE, POST)] + [0])


def simulate(rule: Rule, w0: np.ndarray, pre: np.ndarray, post: np.ndarray, reward: np.ndarray | None = None,
             progress=None) -> np.ndarray:
    """Weights after each step, (steps, n_post, n_pre): the step semantics without Lava (for tests)."""
    stepper = Stepper(rule, w0)
    steps = pre.shape[1]
    depth = max_delay(rule) + 1
    pre_pad = np.concatenate([np.zeros((pre.shape[0], depth - 1), dtype=bool), pre.astype(bool)], axis=1)
    post_pad = np.concatenate([np.zeros((post.shape[0], depth - 1), dtype=bool), post.astype(bool)], axis=1)
    out = np.empty((steps,) + stepper.w.shape)
    for n in range(steps):
        pre_hist = pre_pad[:, n + depth - 1::-1][:, :depth]
        post_hist = post_pad[:, n + depth - 1::-1][:, :depth]
        r = None if reward is None else reward[:, n]
        out[n] = stepper.step(pre_hist, post_hist, r)
        if progress is not None and n % 500 == 0:
            progress(n)
    return out
