"""``RuleSynapses``: a Lava process that runs a rule's step semantics on the CPU.

For rules the learning engine cannot express (state-dependent or delayed
jumps, comparisons, eligibility traces, a third factor...). Its floating-point
``PyLoihiProcessModel`` keeps a :class:`neurodeploy.compile.stepper.Stepper` and
advances it once per time step with the pre spikes on ``s_in``, the post
spikes on ``s_in_bap`` and the third factor on ``r_in``; it writes the
weights after every step to the ``.npy`` memory map ``history_path``
(:mod:`neurodeploy.lava.history`). Not deployable to the learning
engine: a CPU reference that runs inside Lava's runtime.
"""
from __future__ import annotations

import numpy as np

from neurodeploy.lava.compat import import_lava
from neurodeploy.lava.history import History

import_lava()

from lava.magma.core.decorator import implements, requires, tag  # noqa: E402
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.process.variable import Var
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

from neurodeploy.compile.stepper import Stepper, max_delay  # noqa: E402


class RuleSynapses(AbstractProcess):
    """All-to-all plastic synapses following ``rule`` (a :class:`neurodeploy.spec.ir.Rule`).

    Ports: ``s_in`` (n_pre spikes), ``s_in_bap`` (n_post spikes), ``r_in``
    (n_post third-factor values), ``a_out`` (n_post): as Lava's ``Dense``, the summed weights
    (rule units) of the synapses whose pre neuron spiked, one step late (the weights after the
    previous step's update). Var ``weights`` (n_post, n_pre), rule units. ``mask`` (n_post, n_pre):
    the synapses that exist (the others carry no current; None: all to all)."""

    def __init__(self, *, rule, weights: np.ndarray, history_path: str | None = None, mask=None, **kwargs):
        super().__init__(rule=rule, history_path=history_path,
                         mask=None if mask is None else np.asarray(mask, dtype=bool), **kwargs)
        n_post, n_pre = weights.shape
        self.s_in = InPort(shape=(n_pre,))
        self.s_in_bap = InPort(shape=(n_post,))
        self.r_in = InPort(shape=(n_post,))
        self.a_out = OutPort(shape=(n_post,))
        self.weights = Var(shape=weights.shape, init=weights)


@implements(proc=RuleSynapses, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyRuleSynapsesFloat(PyLoihiProcessModel):
    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    s_in_bap: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    r_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    a_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    weights: np.ndarray = LavaPyType(np.ndarray, float)

    def __init__(self, proc_params):
        super().__init__(proc_params)
        self._stepper = None
        self._a_buff = None

    def run_spk(self):
        if self._a_buff is None:
            self._a_buff = np.zeros(self.weights.shape[0])
        self.a_out.send(self._a_buff)  # buffered in the previous step, as Lava's Dense
        pre = self.s_in.recv() != 0
        mask = self.proc_params["mask"]
        w = self.weights if mask is None else np.where(mask, self.weights, 0.0)
        self._a_buff = w[:, pre].sum(axis=1)
        post = self.s_in_bap.recv() != 0
        reward = self.r_in.recv()
        if self._stepper is None:
            rule = self.proc_params["rule"]
            self._stepper = Stepper(rule, self.weights)
            depth = max_delay(rule) + 1
            self._pre = np.zeros((pre.shape[0], depth), dtype=bool)  # column k: k steps ago
            self._post = np.zeros((post.shape[0], depth), dtype=bool)
            self._reward = rule.has_reward
            path = self.proc_params["history_path"]
            self._history = History(path) if path is not None else None
        self._pre = np.roll(self._pre, 1, axis=1)
        self._post = np.roll(self._post, 1, axis=1)
        self._pre[:, 0] = pre
        self._post[:, 0] = post
        self.weights = self._stepper.step(self._pre, self._post, reward if self._reward else None)
        if self._history is not None:
            self._history.write(self.time_step, self.weights)
