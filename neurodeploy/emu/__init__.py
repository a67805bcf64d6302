"""A fast, vectorized numpy emulator of Lava's learning engine (``emu-float``, ``emu-fixed``).

:func:`simulate` reproduces Lava 0.10.0's ``LearningDense`` process models step
for step: the bit-approximate (fixed-point) model bit for bit, the floating-point
model (with neurodeploy's clip to the rule's bounds) to rounding. See
:mod:`neurodeploy.emu.engine`.
"""
from neurodeploy.emu.engine import CONN_VAR_SEED, recorded_steps, simulate, simulate_batch

__all__ = ["CONN_VAR_SEED", "recorded_steps", "simulate", "simulate_batch"]
