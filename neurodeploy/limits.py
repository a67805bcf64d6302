"""The run limits every front door enforces before anything runs (steps, synapse-steps, neuron-steps)."""
from __future__ import annotations

#: Largest run accepted from options: steps, synapse-steps (compute: 10^6 synapses x 2 10^4
#: steps; memory is bounded by recording within a budget, see :func:`neurodeploy.verification.default_recording`)
#: and neuron-steps (the rasters and their random draws).
MAX_STEPS = 100_000_000
MAX_SYNAPSE_STEPS = 20_000_000_000
MAX_NEURON_STEPS = 200_000_000


def _count(value: float) -> str:
    return f"{int(value):,}" if value < 1e15 else f"{value:.3g}"
