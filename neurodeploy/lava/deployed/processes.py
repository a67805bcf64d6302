"""``BoundedLearningDense``: the learning connection a deployment puts into a Lava network.

A ``LearningDense`` whose two models are:

* ``PyBoundedLearningDenseFloat`` (``floating_pt``): Lava's float model with one
  addition, weights clipped to ``proc_params['weight_bounds']`` after each
  update. The stock float model clips only the sign (a rule with bounds
  [0, 1] drifted to 4.75..51); the chip and the fixed-point model saturate at
  the 8-bit range, which the fixed plan aligns with the rule's bounds.
* ``PyBoundedLearningDenseFixed`` (``bit_approximate_loihi``, ``fixed_pt``):
  Lava's bit-approximate model unchanged.

The verify backends run a subclass that also records its weights
(:mod:`neurodeploy.lava.recording.processes`), so what is deployed is what
was verified. Lava finds a process's models by its exact class, in its module.
"""
from __future__ import annotations

import numpy as np

from neurodeploy.lava.compat import import_lava

import_lava()

from lava.magma.core.decorator import implements, requires, tag  # noqa: E402
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol
from lava.proc.dense.models import PyLearningDenseModelBitApproximate, PyLearningDenseModelFloat
from lava.proc.dense.process import LearningDense


class BoundedLearningDense(LearningDense):
    """LearningDense whose float model keeps the weights within ``weight_bounds`` (Lava units)."""


class _Bounded:
    def _saturate_synaptic_variable(self, name, values):
        values = super()._saturate_synaptic_variable(name, values)
        bounds = self.proc_params.get("weight_bounds", None)
        if name == "weights" and bounds is not None:
            values = np.clip(values, bounds[0], bounds[1])
        return values


@implements(proc=BoundedLearningDense, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyBoundedLearningDenseFloat(_Bounded, PyLearningDenseModelFloat):
    implements_process = None  # re-bound by @implements (the parent implements LearningDense)


@implements(proc=BoundedLearningDense, protocol=LoihiProtocol)
@requires(CPU)
@tag("bit_approximate_loihi", "fixed_pt")
class PyBoundedLearningDenseFixed(PyLearningDenseModelBitApproximate):
    implements_process = None


#: mode -> the model of :class:`BoundedLearningDense` that a deployment runs
MODELS = {"float": PyBoundedLearningDenseFloat, "fixed": PyBoundedLearningDenseFixed}
