"""A fast, vectorized numpy emulator of Lava's learning engine (``emu-float``, ``emu-fixed``).

:func:`simulate` reproduces Lava 0.10.0's ``LearningDense`` process models step
for step: the bit-approximate (fixed-point) model bit for bit, the floating-point
model (with neurodeploy's clip to the rule's bounds) to rounding.

One core, :mod:`.engine` (the learning engine's step, open loop), with the compiled loops of
:mod:`.kernel`; around it :mod:`.closed_loop` (Loihi's LIF driven by the connection), :mod:`.network`
(populations and projections as ``deploy_network`` builds them), :mod:`.batch` (rounding ensembles in
one call) and :mod:`.backends` (``emu-float``, ``emu-fixed``).
"""
from neurodeploy.emu.engine import CONN_VAR_SEED, recorded_steps, simulate
from neurodeploy.emu.batch import simulate_batch

__all__ = ["CONN_VAR_SEED", "recorded_steps", "simulate", "simulate_batch"]
