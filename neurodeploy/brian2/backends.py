"""The two Brian2 backends: ``brian2`` (the rule as written) and ``brian2-step``
(the learning engine's per-step order); see :mod:`neurodeploy.brian2.model`."""
from __future__ import annotations

import contextlib
import gc
import os
import signal
import threading
import time

import numpy as np

from neurodeploy.backend import REGISTRY, Backend, Recording
from neurodeploy.brian2.model import Brian2Model, reference_model, set_up_synapses, step_model, unit_namespace
from neurodeploy.brian2 import builds
from neurodeploy.brian2.standalone import _make, _standalone_dir
from neurodeploy.spec.units import to_brian2

#: Brian2's code-generation target: "auto" (default: :func:`choose_target`), "numpy" or "cpp_standalone",
#: from the environment variable NEURODEPLOY_BRIAN2_TARGET (see docs/performance.md for the
#: measurements). A cpp_standalone build is compiled by :func:`_make`, so Ctrl-C and SIGTERM stop it.
CODEGEN_TARGET = os.environ.get("NEURODEPLOY_BRIAN2_TARGET", "auto")
#: Measured (2 shared cores, stdp_pair, Poisson 10 Hz): numpy costs ~85 us per step plus ~12 ns per
#: synapse and step (event-driven reference) or ~100 ns (brian2-step: every synapse every step), plus
#: ~60 us per step for each run_regularly operation of the model (its own code object, run every step:
#: brian2-step at one synapse, pairing, nearly idle machine: 344 / 280 / 219 us per step with 3 operations
#: and an epoch_end lookup / 2 / 1); cpp_standalone costs a build of ~45 s plus ~2.3 ns per synapse and step.
NUMPY_STEP_S, NUMPY_SYNAPSE_STEP_S, NUMPY_SYNAPSE_STEP_ALL_S = 85e-6, 12e-9, 100e-9
NUMPY_REGULAR_STEP_S = 60e-6
STANDALONE_BUILD_S, STANDALONE_SYNAPSE_STEP_S = 45.0, 2.3e-9
#: A network (LIF neurons, its network operations): measured per step on 2 cores (pattern detection, one LIF
#: and 400 plastic synapses, 10^5 steps, two runs at once): numpy 0.37 ms, cpp_standalone 0.147 ms after
#: the build (its spikes equal numpy's, weights within 1e-12: tests/test_network_brian2.py).
NETWORK_NUMPY_STEP_S, NETWORK_STANDALONE_STEP_S = 370e-6, 147e-6


def choose_target(model: Brian2Model, trains) -> str:
    """numpy unless its estimated time exceeds cpp_standalone's build (its share, :mod:`.builds`)
    plus run (long runs at one synapse: lfs; 10^6 synapses; an ensemble of long network runs). The closed
    loop protocol, a network with a reward schedule (its network operation writes the rewards ahead: numpy
    only), and a machine without make and a C++ compiler run numpy."""
    if CODEGEN_TARGET != "auto":
        return CODEGEN_TARGET
    if trains.neuron is not None or not _can_compile():
        return "numpy"
    synapse_steps = float(trains.steps) * trains.n_pre * trains.n_post
    build = STANDALONE_BUILD_S / builds.BUILD_SHARED_BY
    if trains.closed:
        if trains.reward_schedule is not None:
            return "numpy"
        numpy_s = trains.steps * NETWORK_NUMPY_STEP_S + synapse_steps * NUMPY_SYNAPSE_STEP_S
        standalone_s = build + trains.steps * NETWORK_STANDALONE_STEP_S + synapse_steps * STANDALONE_SYNAPSE_STEP_S
        return "cpp_standalone" if numpy_s > standalone_s else "numpy"
    per_synapse = NUMPY_SYNAPSE_STEP_ALL_S if model.regular else NUMPY_SYNAPSE_STEP_S
    numpy_s = trains.steps * (NUMPY_STEP_S + len(model.regular) * NUMPY_REGULAR_STEP_S) + synapse_steps * per_synapse
    standalone_s = build + synapse_steps * STANDALONE_SYNAPSE_STEP_S
    return "cpp_standalone" if numpy_s > standalone_s else "numpy"


def _can_compile() -> bool:
    import shutil

    return shutil.which("make") is not None and any(shutil.which(c) for c in ("c++", "g++", "clang++"))


def unwrap(exc: BaseException) -> BaseException:
    """The exception Brian2 wrapped: ``BrianObjectException`` (``raise ... from exc``) around a
    timeout or anything else raised while a code object ran; ``exc`` itself if not wrapped."""
    from brian2.core.base import BrianObjectException

    seen = set()
    while isinstance(exc, BrianObjectException) and exc.__cause__ is not None and id(exc) not in seen:
        seen.add(id(exc))
        exc = exc.__cause__
    return exc


@contextlib.contextmanager
def _alarm_at_safe_points():
    """Hold back a SIGALRM (the harness's ``--timeout``) until ``check()`` is called, so that the timeout
    is raised between Brian2's time steps or set-up stages and never inside a code object, where Brian2
    would wrap it, log it and leave its objects half-built. Yields ``check``."""
    original = signal.getsignal(signal.SIGALRM)
    if not callable(original) or threading.current_thread() is not threading.main_thread():
        yield lambda: None
        return
    pending = []

    def hold(signum, frame):
        pending.append(signum)

    def check():
        if pending:
            pending.clear()
            original(signal.SIGALRM, None)  # the harness's handler: raises its timeout

    signal.signal(signal.SIGALRM, hold)
    try:
        yield check
    finally:
        signal.signal(signal.SIGALRM, original)
    check()


def _run(b2, net, duration, report):
    """``net.run`` whose interruptions are the caller's: a timeout (``BackendTimeout``) or an interrupt
    raised inside a code object comes out as itself, not wrapped in Brian2's ``BrianObjectException``;
    a run that Brian2 stopped early (its own Ctrl-C handler, when another program installed it) is a
    ``KeyboardInterrupt``, never a short trajectory."""
    from brian2.core.base import BrianObjectException

    try:
        net.run(duration, namespace={}, report=report, report_period=0.1 * b2.second)
    except BrianObjectException as exc:
        original = unwrap(exc)
        if original is exc:
            raise
        raise original from None
    finally:
        b2.Network._globally_running = False  # also when the report callback raised the timeout
    if b2.Network._globally_stopped or float(net.t) < float(duration) * (1 - 1e-12):
        b2.Network._globally_stopped = False
        raise KeyboardInterrupt("Brian2 stopped the simulation early")


def _simulate(model: Brian2Model, rule, trains, progress=None, recording=None) -> tuple:
    """(trajectory, info); with LIF neurons (a closed loop or a network) ``info["post_spikes"]`` is their raster.

    ``recording`` (a :class:`~neurodeploy.backend.Recording`): only its rows and sub-grid are
    kept (a ``network_operation`` copies them at the end of each recorded step), so memory
    is O(recorded) instead of O(steps x synapses). A ``--timeout`` lands at safe points only."""
    with _alarm_at_safe_points() as check:
        return _simulate_checked(model, rule, trains, progress, recording, check)


def _simulate_checked(model: Brian2Model, rule, trains, progress, recording, check) -> tuple:
    import brian2 as b2

    target = choose_target(model, trains)
    if trains.closed and target != "cpp_standalone":  # LIF neurons (brian2_network): numpy unless chosen
        b2.prefs.codegen.target = "numpy"
        return _build_and_run(b2, model, rule, trains, progress, recording, check)
    if target == "cpp_standalone":
        import fcntl

        from brian2.devices.device import reset_device

        # one build directory per model, kept: Brian2 rewrites only changed files, so make recompiles
        # little on the next run of the same model (the first build of a model takes ~45-100 s)
        build_dir = _standalone_dir(model)
        with open(build_dir + ".lock", "w") as lock:
            while True:  # concurrent runs of one model (batch --jobs) take turns; a --timeout lands meanwhile
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    check()
                    time.sleep(0.25)
            b2.set_device("cpp_standalone", directory=build_dir, build_on_run=False)
            try:
                return _build_and_run(b2, model, rule, trains, progress, recording, check, standalone=True,
                                      build_dir=build_dir)
            finally:
                b2.device.reinit()
                reset_device("runtime")
    b2.prefs.codegen.target = target
    return _build_and_run(b2, model, rule, trains, progress, recording, check)


def _build_and_run(b2, model, rule, trains, progress, recording, check=lambda: None, standalone=False,
                   build_dir=None) -> tuple:
    dt = rule.dt * b2.second
    n_pre, n_post, steps = trains.n_pre, trains.n_post, trains.steps
    epoch = np.zeros(steps)
    epoch[rule.t_epoch - 1::rule.t_epoch] = 1.0
    namespace = dict(unit_namespace(rule), **model.namespace)
    namespace["epoch_end"] = b2.TimedArray(epoch, dt=dt)
    namespace["epoch_step"] = b2.TimedArray(np.arange(steps) % rule.t_epoch + 1.0, dt=dt)  # 1..t_epoch
    if model.reward:
        namespace["reward_input"] = b2.TimedArray(trains.reward_or_zeros().T.copy(), dt=dt)
    if trains.closed:  # a network, or a closed loop: the one-projection network
        from neurodeploy.brian2 import network as brian2_network

        return brian2_network.build_and_run(b2, model, rule, trains, namespace, progress, recording, check, _run,
                                            build_dir=build_dir if standalone else None)
    pre_i, pre_t = np.nonzero(trains.pre)
    post_i, post_t = np.nonzero(trains.post)
    pre = b2.SpikeGeneratorGroup(n_pre, pre_i, pre_t * dt, dt=dt, name="pre")
    post = b2.SpikeGeneratorGroup(n_post, post_i, post_t * dt, dt=dt, name="post")
    on_pre = {"pre": model.on_pre}
    on_post = {"post": model.on_post}
    for name, side, _, code in model.delayed:
        (on_pre if side == "pre" else on_post)[name] = code
    syn = b2.Synapses(pre, post, model=model.model, on_pre=on_pre, on_post=on_post,
                      namespace=namespace, dt=dt, method="exact", name="plastic")
    check()
    masked = trains.mask is not None
    if standalone or masked:  # explicit indices: connect()'s all-to-all order, known before the build
        i, j = np.repeat(np.arange(n_pre), n_post), np.tile(np.arange(n_post), n_pre)
        if masked:  # only the synapses that exist (mask[post, pre])
            keep = trains.mask[j, i]
            i, j = i[keep], j[keep]
        syn.connect(i=i, j=j)
    else:
        syn.connect()
    set_up_synapses(b2, syn, model, rule, dt)
    if not (standalone or masked):
        i, j = np.asarray(syn.i[:]), np.asarray(syn.j[:])
    # index[post, pre]: the synapse's position in Brian2's arrays (-1: no such synapse)
    index = np.full((n_post, n_pre), -1, dtype=np.intp)
    index[j, i] = np.arange(i.size)
    w0 = trains.w0[j, i]
    syn.w[:] = b2.Quantity(w0, dim=to_brian2(rule.weight.dim))
    check()
    if standalone:  # a monitor every `every` steps (rows 0, K, 2K, ...); the last step from syn.w after the run
        every = 1 if recording is None else recording.every
        rows = (recording or Recording()).rows(steps)
        posts = np.arange(n_post) if recording is None else recording.post_index(n_post)
        pres = np.arange(n_pre) if recording is None else recording.pre_index(n_pre)
        sub = index[np.ix_(posts, pres)]
        flat = sub[sub >= 0]
        monitor = b2.StateMonitor(syn, "w", record=flat, when="end", order=100, dt=every * dt, name="weights")
        net = b2.Network(pre, post, syn, monitor)
        n_synapses = int(i.size)
        del i, j, index, w0  # the device keeps its own copies: ~4 GB at 1.2e8 synapses, freed before the binary runs
    elif recording is None or recording.everything:
        monitor = b2.StateMonitor(syn, "w", record=True, when="end", order=100, dt=dt, name="weights")
        net = b2.Network(pre, post, syn, monitor)
    else:
        rows = recording.rows(steps)
        posts, pres = recording.post_index(n_post), recording.pre_index(n_pre)
        sub = index[np.ix_(posts, pres)]
        here = sub >= 0
        flat = sub[here]
        recorded = np.full((rows.size, posts.size, pres.size), np.nan)
        w_var = syn.variables["w"]
        state = {"row": 0}

        @b2.network_operation(dt=dt, when="end", order=100, name="weights")
        def record(t):
            k = state["row"]
            if k < rows.size and int(round(float(t / dt))) == rows[k]:
                recorded[k][here] = np.asarray(w_var.get_value())[flat]
                state["row"] = k + 1

        net = b2.Network(pre, post, syn, record)
    report = None
    if not standalone:
        def report(elapsed, completed, start, duration):  # called between time steps: a safe point
            check()
            if progress is not None:
                progress(int(round(float(completed) * steps)))
    if standalone:
        net.run(steps * dt, namespace={})
        check()
        b2.device.build(directory=build_dir, compile=False, run=False, with_output=False)
        # the static arrays (synapse indices, initial weights) are on disk now, where the binary reads them, and
        # after the run every value comes from its results: the copies and the cached values here (the synapse
        # indices, ~30 B a synapse) are dropped before it runs (the names stay)
        b2.device.static_arrays = {name: np.empty(0, dtype=a.dtype) for name, a in b2.device.static_arrays.items()}
        for var in list(b2.device.array_cache):
            b2.device.array_cache[var] = None
        gc.collect()
        check()
        _make(b2, build_dir, check)  # Brian2's own compile step waits in os.system, which ignores Ctrl-C
        check()
        b2.device.run(build_dir, "results", False)  # subprocess.call: an interrupt kills the binary and propagates
        check()
        got = np.asarray(monitor.w_[:])  # (recorded synapses, monitor rows)
        trajectory = np.full((rows.size, posts.size, pres.size), np.nan)
        n_mon = min(got.shape[1], rows.size)
        trajectory[:n_mon, sub >= 0] = got[:, :n_mon].T
        if n_mon < rows.size:  # the last step
            trajectory[-1, sub >= 0] = np.asarray(syn.w_[:])[flat]
        if progress is not None:
            progress(steps)
        info = {"brian2_target": "cpp_standalone", "synapses": n_synapses}
        return trajectory, info
    _run(b2, net, steps * dt, report)
    check()
    if recording is None or recording.everything:
        w = np.asarray(monitor.w_[:])  # (synapses, steps)
        trajectory = np.full((steps, n_post, n_pre), np.nan)
        trajectory[:, j, i] = w.T
    else:
        trajectory = recorded
    info = {"brian2_target": b2.prefs.codegen.target, "synapses": int(i.size)}
    return trajectory, info


@REGISTRY.register
class Brian2Reference(Backend):
    closed_loop = True
    networks = True  # brian2_network
    name = "brian2"
    description = "Brian2 Synapses, the rule as written (event-driven traces, exact decay)"

    records = True

    def simulate(self, rule, trains, plans, progress=None, recording=None):
        return _simulate(reference_model(rule), rule, trains, progress, recording)


@REGISTRY.register
class Brian2Step(Backend):
    closed_loop = True
    networks = True  # brian2_network
    name = "brian2-step"
    description = "Brian2 Synapses in the learning engine's order (decay, impulse, dw, epoch-end update)"

    records = True

    def simulate(self, rule, trains, plans, progress=None, recording=None):
        return _simulate(step_model(rule), rule, trains, progress, recording)
