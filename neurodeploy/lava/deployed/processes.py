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
from lava.proc.sparse.models import PyLearningSparseModelBitApproximate, PyLearningSparseModelFloat
from lava.proc.sparse.process import LearningSparse
from scipy.sparse import csr_matrix


class BoundedLearningDense(LearningDense):
    """LearningDense whose float model keeps the weights within ``weight_bounds`` (Lava units)."""


class _Bounded:
    def _saturate_synaptic_variable(self, name, values):
        values = super()._saturate_synaptic_variable(name, values)
        bounds = self.proc_params.get("weight_bounds", None)
        if name == "weights" and bounds is not None:
            if isinstance(values, csr_matrix):  # only the synapses that exist (explicit zeros included)
                values.data = np.clip(values.data, bounds[0], bounds[1])
            else:
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


class BoundedLearningSparse(LearningSparse):
    """LearningSparse (a connectivity mask) whose float model keeps the weights within ``weight_bounds``.

    Its synapses are the stored entries of ``weights`` (a ``csr_matrix``, explicit zeros included:
    :func:`masked_weights`); the learning engine updates those only, so an absent synapse stays absent."""


def masked_weights(w: np.ndarray, mask: np.ndarray) -> csr_matrix:
    """``w`` (n_post, n_pre) at the synapses of ``mask`` as a ``csr_matrix`` whose structure is the
    mask: a present synapse of weight 0 is an explicit zero, not an absent synapse."""
    rows, cols = np.nonzero(mask)
    w = np.asarray(w)
    matrix = csr_matrix((w[rows, cols], (rows, cols)), shape=mask.shape, dtype=w.dtype)
    assert matrix.nnz == rows.size  # explicit zeros kept
    return matrix


def dense_weights(w, absent=np.nan) -> np.ndarray:
    """Weights as an (n_post, n_pre) array; a sparse connection's absent synapses are ``absent``."""
    if isinstance(w, csr_matrix) or hasattr(w, "tocoo"):
        coo = w.tocoo()
        out = np.full(coo.shape, absent, dtype=float)
        out[coo.row, coo.col] = coo.data
        return out
    return np.asarray(w)


def _sign_saturated(values: csr_matrix, sign_mode) -> csr_matrix:
    """The sign mode's saturation on the stored entries (Lava 0.10 calls ``np.maximum(0, csr)``, which
    scipy refuses: ">= and <= don't work with 0")."""
    from lava.utils.weightutils import SignMode

    values = values.copy()
    if sign_mode == SignMode.EXCITATORY:
        values.data = np.maximum(0, values.data)
    elif sign_mode == SignMode.INHIBITORY:
        values.data = np.minimum(0, values.data)
    return values


class _SparseSigns:
    """Two repairs of Lava 0.10's LearningSparse models: the sign saturation of the weights done on
    the stored entries, and the learning rule evaluated on dense arrays (its string multiplies
    ``weights * y1``, which for a scipy matrix is a matrix product: "matmul: dimension mismatch");
    the result is written back to the stored entries only, as Lava does."""

    def _extract_applier_args(self, *args, **kwargs):
        applier_args = super()._extract_applier_args(*args, **kwargs)
        for name in ("weights", "tag_1", "tag_2"):
            if isinstance(applier_args.get(name), csr_matrix):
                applier_args[name] = applier_args[name].toarray()
        return applier_args

    def _saturate_synaptic_variable_accumulator(self, name, values):
        if name == "weights" and isinstance(values, csr_matrix):
            return _sign_saturated(values, self.sign_mode)
        return super()._saturate_synaptic_variable_accumulator(name, values)


class _SparseBounded(_SparseSigns, _Bounded):
    """The float model's saturation (sign, then the rule's bounds) on the stored entries."""

    def _saturate_synaptic_variable(self, name, values):
        if name == "weights" and isinstance(values, csr_matrix):
            values = _sign_saturated(values, self.sign_mode)
            bounds = self.proc_params.get("weight_bounds", None)
            if bounds is not None:
                values.data = np.clip(values.data, bounds[0], bounds[1])
            return values
        return super()._saturate_synaptic_variable(name, values)


@implements(proc=BoundedLearningSparse, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyBoundedLearningSparseFloat(_SparseBounded, PyLearningSparseModelFloat):
    implements_process = None  # re-bound by @implements (the parent implements LearningSparse)


@implements(proc=BoundedLearningSparse, protocol=LoihiProtocol)
@requires(CPU)
@tag("bit_approximate_loihi", "fixed_pt")
class PyBoundedLearningSparseFixed(_SparseSigns, PyLearningSparseModelBitApproximate):
    implements_process = None


#: mode -> the model of :class:`BoundedLearningSparse` that a masked deployment runs
SPARSE_MODELS = {"float": PyBoundedLearningSparseFloat, "fixed": PyBoundedLearningSparseFixed}
