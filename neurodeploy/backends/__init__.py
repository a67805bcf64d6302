"""The registry of backends: every target a rule can be run on.

A backend turns (rule, spike trains) into a weight trajectory of shape
(steps, n_post, n_pre) in rule units, the weight after each step. Backends
register themselves with :data:`REGISTRY`; each declares, per rule, whether
it can run it and if not, why (``unsupported_reason``).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np


@dataclass
class RunResult:
    backend: str
    trajectory: np.ndarray  # (steps, n_post, n_pre), rule units
    seconds: float  # wall time of the simulation, set-up included
    info: dict = field(default_factory=dict)  # backend-specific facts for the report

    @property
    def steps_per_second(self) -> float:
        return self.trajectory.shape[0] / self.seconds if self.seconds > 0 else float("inf")


class Backend:
    """Base class: subclasses set ``name``, ``description`` and implement ``simulate``."""

    name = ""
    description = ""
    closed_loop = False  # can simulate the closed-loop protocol's LIF (trains.neuron)

    def unsupported_reason(self, rule) -> str | None:
        """None when this backend can run ``rule``, else a one-line reason (shown as is)."""
        return None

    def unsupported_trains(self, trains) -> str | None:
        """None when this backend can run these trains, else why not (the closed loop needs a neuron model)."""
        if trains.neuron is not None and not self.closed_loop:
            return "closed loop: no LIF model in this backend yet"
        return None

    def simulate(self, rule, trains, plans: dict, progress=None) -> tuple:
        """Return (trajectory, info); call ``progress(step)`` now and then if given."""
        raise NotImplementedError(f"backend {self.name!r} does not implement simulate()")

    def run(self, rule, trains, plans: dict, progress=None) -> RunResult:
        start = time.perf_counter()
        trajectory, info = self.simulate(rule, trains, plans, progress)
        return RunResult(self.name, trajectory, time.perf_counter() - start, info)


#: The order reports, messages and the support matrix list backends in.
ORDER = ("brian2", "brian2-step", "lava-float", "lava-fixed", "lava-cpu", "emu-float", "emu-fixed")


class Registry:
    """Name -> backend instance."""

    def __init__(self):
        self._backends = {}

    def register(self, cls):
        self._backends[cls.name] = cls()
        return cls

    def names(self) -> list:
        """Backend names in :data:`ORDER` (then any others in registration order), whatever
        order their modules were imported in."""
        known = [n for n in ORDER if n in self._backends]
        return known + [n for n in self._backends if n not in ORDER]

    def get(self, name: str) -> Backend:
        return self._backends[name]

    def __contains__(self, name) -> bool:
        return name in self._backends


REGISTRY = Registry()


def load_all():
    """Import the backend modules so they register (Brian2 and Lava imports are slow: done lazily)."""
    from neurodeploy.backends import brian2_backends  # noqa: F401
    from neurodeploy.lava import backends  # noqa: F401
    from neurodeploy.emu import backends as _emu  # noqa: F401
    return REGISTRY
