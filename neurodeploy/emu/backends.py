"""The emulator backends ``emu-float`` and ``emu-fixed``: Lava's learning engine in numpy.

Same plans, same units and same report facts as ``lava-float`` / ``lava-fixed``
(:mod:`neurodeploy.lava.backends`), without starting Lava: the fixed-point
trajectory is bit-identical to ``lava-fixed``, the float one equal to
``lava-float`` to rounding (:mod:`neurodeploy.emu.engine`).
"""
from __future__ import annotations

import numpy as np

from neurodeploy.backends import REGISTRY
from neurodeploy.emu.engine import simulate as emulate
from neurodeploy.lava.backends import RNG_SEED, _LavaBackend


class _EmuBackend(_LavaBackend):
    """``unsupported_reason`` as the Lava backends (the rule must lower to the learning engine)."""

    def simulate(self, rule, trains, plans):
        plan = plans[self.mode]
        w0 = plan.weights_to_lava(trains.w0)
        weights = emulate(plan, w0, trains.pre, trains.post, rng_seed=RNG_SEED)
        info = {"w0_lava_error_max": float(np.max(np.abs(plan.weights_from_lava(w0) - trains.w0)))}
        if self.mode == "fixed":
            lo, hi = plan.w_lava_bounds
            info["saturated_weight_steps"] = int(np.sum((weights <= lo) | (weights >= hi)))
        return plan.weights_from_lava(weights), info


@REGISTRY.register
class EmuFloat(_EmuBackend):
    name = "emu-float"
    description = "numpy emulator of Lava's floating_pt learning model (weights clipped to the rule's bounds)"
    mode = "float"


@REGISTRY.register
class EmuFixed(_EmuBackend):
    name = "emu-fixed"
    description = "numpy emulator of Lava's fixed_pt bit-approximate learning model (bit-exact)"
    mode = "fixed"
