"""``RewardTraces``: the post and reward traces of a three-factor rule, computed online in a Lava process.

A ``Loihi3FLearningRule`` connection reads y1..y3 from its ports ``s_in_y1..y3`` in the same step as
``s_in_bap`` (Lava's ``recv_traces``). One ``RewardTraces`` per plastic projection receives, in step
``t``, the spikes of every source population (``s_0, s_1, ...`` in source order: the input
populations, then the LIF populations) and computes, for the projection's target population:

* the reward of step ``t``, decided in earlier steps by a
  :class:`neurodeploy.compile.reward.RewardSchedule` from the network's own spikes (then it observes step
  ``t``'s spikes, scheduling later rewards);
* the y values (:class:`neurodeploy.compile.reward.OnlineTraces`: the post trace from the target's spikes,
  the reward trace from the reward), float or Loihi's 7-bit integers (the ``fixed_pt`` model sends
  ``int32``, as the connection's fixed-point ports take them),

and sends them in the same step. The emulator runs the same two objects
(:func:`neurodeploy.emu.engine.simulate_network` with ``third_factor=``): one code path.

Why not Lava's own third-factor path: ``LearningLIF`` sends the third factor it receives on
``a_third_factor_in`` unchanged as y2/y3 (no decaying reward trace with the rule's time constant) and
its post trace needs ``s_out_bap``, which deadlocks on the CPU backend in Lava 0.10; a reward that
depends on other neurons' spikes has no port there at all.
"""
from __future__ import annotations

import numpy as np

from neurodeploy.lava.compat import import_lava
from neurodeploy.compile.reward import OnlineTraces

import_lava()

from lava.magma.core.decorator import implements, requires, tag  # noqa: E402
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

#: Source populations a RewardTraces process can listen to (its ports s_0 .. s_7).
MAX_POPULATIONS = 8


class RewardTraces(AbstractProcess):
    """The y1..y3 a three-factor connection onto ``n_target`` neurons receives (see the module docstring).

    ``sizes``: neurons per source population (source order); ``n_inputs``: how many of the first
    sources are inputs (the rest are the LIF neurons, in target order); ``target``: (first, stop) rows of
    the target population among the LIF neurons; ``schedule``: a RewardSchedule (copied fresh for
    ``steps`` steps); ``rule``, ``plan``: the rule and the connection's plan (mode, trace scales)."""

    def __init__(self, *, sizes, n_inputs: int, target: tuple, schedule, rule, plan, steps: int, **kwargs):
        sizes = [int(n) for n in sizes]
        if not 1 <= len(sizes) <= MAX_POPULATIONS:
            raise ValueError(f"RewardTraces listens to 1..{MAX_POPULATIONS} source populations (got {len(sizes)})")
        super().__init__(sizes=sizes, n_inputs=int(n_inputs), target=tuple(int(v) for v in target),
                         schedule=schedule, rule=rule, plan=plan, steps=int(steps), **kwargs)
        for k in range(MAX_POPULATIONS):  # unused ports: shape (1,), unconnected (recv gives zeros)
            setattr(self, f"s_{k}", InPort(shape=(sizes[k] if k < len(sizes) else 1,)))
        n_target = int(target[1]) - int(target[0])
        self.y1 = OutPort(shape=(n_target,))
        self.y2 = OutPort(shape=(n_target,))
        self.y3 = OutPort(shape=(n_target,))

    def source_port(self, k: int):
        return getattr(self, f"s_{k}")


class _RewardTracesModel(PyLoihiProcessModel):
    s_0: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    s_1: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    s_2: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    s_3: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    s_4: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    s_5: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    s_6: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    s_7: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)

    def __init__(self, proc_params):
        super().__init__(proc_params)
        self._traces = None

    def run_spk(self):

        p = self.proc_params
        sizes = p["sizes"]
        parts = [getattr(self, f"s_{k}").recv() for k in range(len(sizes))]
        s_all = np.concatenate(parts) != 0
        lifs = s_all[p["n_inputs"]:]
        first, stop = p["target"]
        if self._traces is None:
            self._schedule = p["schedule"].fresh(lifs.size, p["steps"])
            self._traces = OnlineTraces(p["rule"], p["plan"], stop - first)
        t = self.time_step - 1
        y = self._traces.step(lifs[first:stop], self._schedule.deliver(t)[first:stop])
        self._schedule.observe(t, s_all, lifs)
        self.y1.send(y[0])
        self.y2.send(y[1])
        self.y3.send(y[2])


@implements(proc=RewardTraces, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyRewardTracesFloat(_RewardTracesModel):
    y1: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    y2: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    y3: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)


@implements(proc=RewardTraces, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyRewardTracesFixed(_RewardTracesModel):
    y1: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=7)
    y2: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=7)
    y3: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=7)


def attach(nd, schedule, steps: int) -> list:
    """Give every plastic projection of the network deployment ``nd`` (a three-factor rule) a
    :class:`RewardTraces` wired to its connection's ``s_in_y1..y3``, listening to every LIF population
    (connected here) and every input population (connected by ``nd.connect_input``). Returns the
    processes (``nd.third_factor``)."""
    net = nd.network
    ordered = net.ordered
    if len(ordered) > MAX_POPULATIONS:
        raise ValueError(f"a three-factor network: at most {MAX_POPULATIONS} populations (got {len(ordered)})")
    out = []
    for pr, d in nd.plastic:
        target = net.population(pr.target).targets
        proc = RewardTraces(sizes=[p.n for p in ordered], n_inputs=net.n_inputs, target=(target.start, target.stop),
                            schedule=schedule, rule=nd.rule, plan=nd.plan, steps=steps, name=f"reward_{pr.index}")
        for k, pop in enumerate(ordered):
            if pop.kind == "lif":
                nd.lifs[pop.name].s_out.connect(proc.source_port(k))
        for slot in ("y1", "y2", "y3"):
            getattr(proc, slot).connect(getattr(d.conn, f"s_in_{slot}"))
        out.append(proc)
    return out


def input_ports(nd, name: str) -> list:
    """The RewardTraces ports that listen to input population ``name``."""
    k = [p.name for p in nd.network.ordered].index(name)
    return [proc.source_port(k) for proc in getattr(nd, "third_factor", [])]
