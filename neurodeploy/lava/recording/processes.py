"""A BoundedLearningDense that records its weights after every step, and its two models.

Reading a large Var back from a Lava process is slow (``Var.get`` of 10^6
values took 15 s, ``Monitor`` likewise: a 100x100 learning run fell from
~300 to ~6 steps/s). Here the connection's model writes ``weights`` after
each step's update (in the post-learning management phase) into a
``.npy`` memory map whose path comes in ``proc_params['history_path']``; the
caller reads the file after the run. ``<history_path>.step.npy`` holds the
last step written, for a progress bar.

The models are those of the deployed connection
(:mod:`neurodeploy.lava.deployed.processes`: float clipped to
``proc_params['weight_bounds']``, fixed Lava's bit-approximate model
unchanged) plus the recording: what is verified is what is deployed.
"""
from __future__ import annotations

import numpy as np

from neurodeploy.lava.compat import import_lava
from neurodeploy.lava.history import History

import_lava()

from lava.magma.core.decorator import implements, requires, tag  # noqa: E402
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

from neurodeploy.lava.deployed.processes import (BoundedLearningDense, BoundedLearningSparse,  # noqa: E402
                                                 PyBoundedLearningDenseFixed, PyBoundedLearningDenseFloat,
                                                 PyBoundedLearningSparseFixed, PyBoundedLearningSparseFloat,
                                                 dense_weights)


class RecordingLearningDense(BoundedLearningDense):
    """BoundedLearningDense that writes its weights after every step to ``history_path``.

    ``history_path`` must name an existing ``.npy`` file of shape
    (steps, n_post, n_pre) (``numpy.lib.format.open_memmap``)."""

    def __init__(self, *, weights: np.ndarray, history_path: str, **kwargs):
        super().__init__(weights=weights, history_path=history_path, **kwargs)


class _Recording:
    _history = None

    def post_guard(self):
        return True

    def run_post_mgmt(self):
        if self._history is None:
            self._history = History(self.proc_params["history_path"])
        self._history.write(self.time_step, dense_weights(self.weights))  # sparse: absent synapses NaN


@implements(proc=RecordingLearningDense, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyRecordingLearningDenseFloat(_Recording, PyBoundedLearningDenseFloat):
    implements_process = None  # re-bound by @implements (the parent implements BoundedLearningDense)


@implements(proc=RecordingLearningDense, protocol=LoihiProtocol)
@requires(CPU)
@tag("bit_approximate_loihi", "fixed_pt")
class PyRecordingLearningDenseFixed(_Recording, PyBoundedLearningDenseFixed):
    implements_process = None


#: mode -> the model of :class:`RecordingLearningDense` that a verify backend runs
MODELS = {"float": PyRecordingLearningDenseFloat, "fixed": PyRecordingLearningDenseFixed}


class RecordingLearningSparse(BoundedLearningSparse):
    """BoundedLearningSparse (a connectivity mask) that writes its weights after every step to
    ``history_path``, absent synapses as NaN."""

    def __init__(self, *, weights, history_path: str, **kwargs):
        super().__init__(weights=weights, history_path=history_path, **kwargs)


@implements(proc=RecordingLearningSparse, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyRecordingLearningSparseFloat(_Recording, PyBoundedLearningSparseFloat):
    implements_process = None


@implements(proc=RecordingLearningSparse, protocol=LoihiProtocol)
@requires(CPU)
@tag("bit_approximate_loihi", "fixed_pt")
class PyRecordingLearningSparseFixed(_Recording, PyBoundedLearningSparseFixed):
    implements_process = None


SPARSE_MODELS = {"float": PyRecordingLearningSparseFloat, "fixed": PyRecordingLearningSparseFixed}
