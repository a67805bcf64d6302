"""The Lava backends: ``LearningDense`` with a generated ``Loihi2FLearningRule``.

Pre spikes come from a ``RingBuffer`` into ``s_in``, post spikes from a second
``RingBuffer`` into ``s_in_bap``; a ``Monitor`` records the weights after
every step. ``lava-float`` runs Lava's floating-point model with one
addition: weights are clipped to the rule's bounds after each update (the
stock float model clips only the sign; the fixed-point model and the chip
saturate at the 8-bit range, which the fixed plan aligns with the bounds).
``lava-fixed`` runs Lava's bit-approximate model unchanged.
"""
from __future__ import annotations

import numpy as np

from neurodeploy.backends import REGISTRY, Backend
from neurodeploy.errors import UnsupportedError

#: Seed of the learning rule's random generators (stochastic rounding) in fixed point.
RNG_SEED = 7


def _bounded_float_model():
    from lava.magma.core.decorator import implements, requires, tag
    from lava.magma.core.resources import CPU
    from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol
    from lava.proc.dense.models import PyLearningDenseModelFloat
    from lava.proc.dense.process import LearningDense

    @implements(proc=LearningDense, protocol=LoihiProtocol)
    @requires(CPU)
    @tag("floating_pt")
    class PyLearningDenseModelFloatBounded(PyLearningDenseModelFloat):
        """Lava's float LearningDense model, weights clipped to ``proc_params['weight_bounds']``."""

        def _saturate_synaptic_variable(self, name, values):
            values = super()._saturate_synaptic_variable(name, values)
            bounds = self.proc_params.get("weight_bounds", None)
            if name == "weights" and bounds is not None:
                values = np.clip(values, bounds[0], bounds[1])
            return values

    return LearningDense, PyLearningDenseModelFloatBounded


_MODEL_CACHE = {}


def run_lava(plan, w0_lava: np.ndarray, pre: np.ndarray, post: np.ndarray, rng_seed: int = RNG_SEED) -> np.ndarray:
    """Run LearningDense for ``pre.shape[1]`` steps; return weights (steps, n_post, n_pre) in Lava units."""
    from lava.magma.core.learning.learning_rule import Loihi2FLearningRule
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.io.source import RingBuffer
    from lava.proc.monitor.process import Monitor
    from lava.utils.weightutils import SignMode

    if "float" not in _MODEL_CACHE:
        _MODEL_CACHE["float"] = _bounded_float_model()
    LearningDense, BoundedFloat = _MODEL_CACHE["float"]
    steps = pre.shape[1]
    rule = Loihi2FLearningRule(**plan.learning_rule_kwargs(), rng_seed=rng_seed)
    sign_mode = {"excitatory": SignMode.EXCITATORY, "inhibitory": SignMode.INHIBITORY,
                 "mixed": SignMode.MIXED}[plan.sign_mode]
    pre_source = RingBuffer(data=pre.astype(float))
    post_source = RingBuffer(data=post.astype(float))
    conn = LearningDense(weights=w0_lava, learning_rule=rule, sign_mode=sign_mode,
                         weight_bounds=tuple(float(b) for b in plan.w_lava_bounds))
    pre_source.s_out.connect(conn.s_in)
    post_source.s_out.connect(conn.s_in_bap)
    monitor = Monitor()
    monitor.probe(conn.weights, steps)
    if plan.mode == "float":
        cfg = Loihi2SimCfg(select_tag="floating_pt", exception_proc_model_map={LearningDense: BoundedFloat})
    else:
        cfg = Loihi2SimCfg(select_tag="fixed_pt")
    try:
        conn.run(condition=RunSteps(num_steps=steps), run_cfg=cfg)
        data = monitor.get_data()
    finally:
        conn.stop()
    weights = np.asarray(data[conn.name]["weights"], dtype=float)
    return weights.reshape(steps, *w0_lava.shape)


class _LavaBackend(Backend):
    mode = ""

    def unsupported_reason(self, rule):
        from neurodeploy.lava.lowering import lower
        try:
            lower(rule)
        except UnsupportedError as exc:
            return str(exc)
        return None

    def simulate(self, rule, trains, plans):
        plan = plans[self.mode]
        w0 = plan.weights_to_lava(trains.w0)
        weights = run_lava(plan, w0, trains.pre, trains.post)
        info = {"w0_lava_error_max": float(np.max(np.abs(plan.weights_from_lava(w0) - trains.w0)))}
        if self.mode == "fixed":
            lo, hi = plan.w_lava_bounds
            info["saturated_weight_steps"] = int(np.sum((weights <= lo) | (weights >= hi)))
        return plan.weights_from_lava(weights), info


@REGISTRY.register
class LavaFloat(_LavaBackend):
    name = "lava-float"
    description = "Lava LearningDense, floating_pt model (weights clipped to the rule's bounds)"
    mode = "float"


@REGISTRY.register
class LavaFixed(_LavaBackend):
    name = "lava-fixed"
    description = "Lava LearningDense, fixed_pt bit-approximate model"
    mode = "fixed"
