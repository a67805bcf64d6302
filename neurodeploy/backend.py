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

from neurodeploy.compile.loihi import unsupported_reason


@dataclass(frozen=True)
class Recording:
    """What a run records: every ``every``-th step from step 0 (and the last), of the synapses in the
    sub-grid ``posts`` x ``pres`` (None: all), of the steps ``0 .. stop - 1`` it ran (None: all).

    The recorded steps are :func:`recorded_rows`; a trajectory is
    (len(rows), len(posts), len(pres))."""

    every: int = 1
    posts: tuple | None = None  # post neuron indices of the recorded sub-grid (None: every post neuron)
    pres: tuple | None = None  # pre neuron indices (None: every pre neuron)
    stop: int | None = None  # the run simulates steps 0 .. stop - 1 (a window of the protocol); None: all

    def rows(self, steps: int) -> np.ndarray:
        return recorded_rows(steps if self.stop is None else min(steps, self.stop), self.every)

    def post_index(self, n_post: int) -> np.ndarray:
        return np.arange(n_post) if self.posts is None else np.asarray(self.posts, dtype=np.intp)

    def pre_index(self, n_pre: int) -> np.ndarray:
        return np.arange(n_pre) if self.pres is None else np.asarray(self.pres, dtype=np.intp)

    @property
    def everything(self) -> bool:
        return self.every == 1 and self.posts is None and self.pres is None


def recorded_rows(steps: int, every: int = 1) -> np.ndarray:
    """0-based steps recorded when recording every ``every``-th step: ``0, every, 2 every, ...``
    and always the last step (what a Brian2 monitor with ``dt = every * dt`` records, plus the end)."""
    rows = np.arange(0, steps, every, dtype=np.int64)
    if steps and (rows.size == 0 or rows[-1] != steps - 1):
        rows = np.append(rows, steps - 1)
    return rows


def apply_recording(trajectory: np.ndarray, recording: "Recording | None", steps: int) -> np.ndarray:
    """The recorded part of a full (steps_run, n_post, n_pre) trajectory."""
    if recording is None or recording.everything:
        return trajectory
    rows = recorded_rows(trajectory.shape[0], recording.every)
    out = trajectory[rows]
    if recording.posts is not None:
        out = out[:, recording.post_index(out.shape[1])]
    if recording.pres is not None:
        out = out[:, :, recording.pre_index(out.shape[2])]
    return np.ascontiguousarray(out)


@dataclass
class RunResult:
    backend: str
    trajectory: np.ndarray  # (len(rows), len(posts), len(pres)), rule units; all steps and synapses by default
    seconds: float  # wall time of the simulation, set-up included
    info: dict = field(default_factory=dict)  # backend-specific facts for the report
    rows: np.ndarray | None = None  # 0-based steps of the trajectory's rows (None: every step from 0)
    posts: np.ndarray | None = None  # post indices of the recorded sub-grid (None: all)
    pres: np.ndarray | None = None  # pre indices (None: all)
    steps_run: int | None = None  # the run simulated steps 0 .. steps_run - 1 (None: trajectory.shape[0])

    def __post_init__(self):
        if self.rows is None:
            self.rows = np.arange(self.trajectory.shape[0], dtype=np.int64)
        if self.steps_run is None:
            self.steps_run = int(self.rows[-1]) + 1 if self.rows.size else 0

    @property
    def steps_per_second(self) -> float:
        return self.steps_run / self.seconds if self.seconds > 0 else float("inf")


class Backend:
    """Base class: subclasses set ``name``, ``description`` and implement ``simulate``."""

    name = ""
    description = ""
    closed_loop = False  # can simulate the closed-loop protocol's LIF (trains.neuron)
    networks = False  # can simulate a network (trains.network: populations, projections, recurrence)

    def unsupported_reason(self, rule) -> str | None:
        """None when this backend can run ``rule``, else a one-line reason (shown as is)."""
        return None

    def unsupported_trains(self, trains) -> str | None:
        """None when this backend can run these trains, else why not (the closed loop needs a neuron model)."""
        if trains.neuron is not None and not self.closed_loop:
            return "closed loop: no LIF model in this backend yet"
        if trains.network is not None and not self.networks:
            return "network: no network model in this backend yet"
        return None

    #: True when ``simulate`` takes ``recording=`` and records only that (memory O(recorded));
    #: otherwise the full trajectory is cut down after the run.
    records = False

    def simulate(self, rule, trains, plans: dict, progress=None) -> tuple:
        """Return (trajectory, info); call ``progress(step)`` now and then if given."""
        raise NotImplementedError(f"backend {self.name!r} does not implement simulate()")

    def run(self, rule, trains, plans: dict, progress=None, recording: Recording | None = None) -> RunResult:
        """Run on ``trains`` (the window ``recording.stop``: its first steps) and record ``recording``."""
        steps = trains.steps
        if recording is not None and recording.stop is not None and recording.stop < steps:
            trains = window(trains, recording.stop)
        start = time.perf_counter()
        if self.records and recording is not None and not recording.everything:
            trajectory, info = self.simulate(rule, trains, plans, progress, recording=recording)
        else:
            trajectory, info = self.simulate(rule, trains, plans, progress)
            trajectory = apply_recording(trajectory, recording, trains.steps)
        seconds = time.perf_counter() - start
        rec = recording or Recording()
        trajectory = absent_as_nan(trajectory, trains, rec)
        return RunResult(self.name, trajectory, seconds, info, rows=rec.rows(trains.steps),
                         posts=None if rec.posts is None else np.asarray(rec.posts),
                         pres=None if rec.pres is None else np.asarray(rec.pres), steps_run=trains.steps)


def absent_as_nan(trajectory: np.ndarray, trains, recording: Recording) -> np.ndarray:
    """``trajectory`` with the synapses the trains' ``mask`` leaves out set to NaN: they do not exist.

    Open loop (post spikes imposed) every synapse learns from its own pre and post train only, so a
    backend that runs the dense matrix computes the present synapses exactly as a sparse one would."""
    if trains.mask is None:
        return trajectory
    absent = ~trains.mask[np.ix_(recording.post_index(trains.n_post), recording.pre_index(trains.n_pre))]
    if not absent.any():
        return trajectory
    out = np.array(trajectory, dtype=float)
    out[:, absent] = np.nan
    return out


def window(trains, stop: int):
    """The first ``stop`` steps of ``trains`` (post spikes, rewards and the closed loop's raster alike)."""
    import dataclasses

    reward = None if trains.reward is None else trains.reward[..., :stop]
    return dataclasses.replace(trains, pre=trains.pre[:, :stop], post=trains.post[:, :stop], reward=reward)


class EngineBackend(Backend):
    """What the learning engine's backends share, Lava's (``lava-float``, ``lava-fixed``) and the
    emulator's (``emu-float``, ``emu-fixed``): the rule must lower to the engine in :attr:`mode`, and the
    same traffic is refused for the same reasons."""

    mode = ""
    lava_sparse = True  # a mask is Lava's LearningSparse (which drops zero weights); the emulator's is not

    def unsupported_reason(self, rule):

        return unsupported_reason(rule, self.mode)

    def unsupported_trains(self, trains):
        online = getattr(trains, "reward_schedule", None) is not None
        if trains.neuron is not None and trains.reward is not None and not online:
            return ("closed loop: a three-factor rule needs a reward schedule (the reward from the network's spikes, "
                    "neurodeploy.compile.reward) to compute its post and reward traces online")
        if trains.network is not None and trains.reward is not None and not online:
            return ("networks: a three-factor rule needs a reward schedule (the reward from the network's spikes, "
                    "neurodeploy.compile.reward) to compute its post and reward traces online")
        if self.lava_sparse and trains.network is None and trains.mask is not None and not trains.mask.all() \
                and np.any(trains.w0[trains.mask] == 0):
            return ("a synapse of the mask starts at weight 0: Lava's LearningSparse drops zero weights at the "
                    "first step (fixed point then stalls)")
        return super().unsupported_trains(trains)


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


