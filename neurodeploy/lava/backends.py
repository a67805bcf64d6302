"""The Lava backends: ``LearningDense`` with a generated ``Loihi2FLearningRule``.

The connection is the one :mod:`neurodeploy.lava.deploy` gives users (built by
:meth:`~neurodeploy.lava.deploy.Deployment.from_plan`, the LIF of the closed loop by
:func:`~neurodeploy.compile.loihi.lif_params`), in a subclass that records its weights after
every step (:mod:`neurodeploy.lava.recording.processes`). Pre spikes come from a
``RingBuffer`` into ``s_in``, post spikes from a second ``RingBuffer`` into
``s_in_bap``. ``lava-float`` runs Lava's
floating-point model with one addition: weights are clipped to the rule's
bounds after each update. ``lava-fixed`` runs Lava's bit-approximate model
unchanged.
"""
from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import tempfile
import threading

import numpy as np

from neurodeploy.backend import REGISTRY, Backend, EngineBackend

from neurodeploy.compile.loihi import RNG_SEED, lif_params, supplied_traces
from neurodeploy.lava.compat import import_lava
from neurodeploy.lava.deploy import CpuDeployment, deploy_network, Deployment


@contextlib.contextmanager
def _signals_ignored():
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    saved = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def _watch(history_path: str, steps: int, progress):
    """Report the step the Lava model has reached (it writes it to ``<history>.step``) while waiting."""
    if progress is None:
        yield
        return
    done = threading.Event()

    def poll():
        counter = None
        while not done.wait(0.25):
            try:
                if counter is None:
                    counter = np.lib.format.open_memmap(history_path + ".step.npy", mode="r")
                progress(int(counter[0]))
            except (OSError, ValueError):
                counter = None

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


def run_lava(plan, w0_lava: np.ndarray, pre: np.ndarray, post: np.ndarray, rng_seed: int = RNG_SEED,
             progress=None, neuron: dict | None = None, supplied: dict | None = None, mask=None):
    """Run the learning connection for ``pre.shape[1]`` steps; weights (steps, n_post, n_pre) in Lava units.

    The connection is the one users deploy (:meth:`neurodeploy.lava.deploy.Deployment.from_plan`), in
    its recording subclass. ``neuron`` (closed loop): keyword arguments of Lava's ``LIF``
    (:func:`neurodeploy.compile.loihi.lif_params`), which makes the post spikes instead of ``post``;
    the connection's ``a_out`` drives it (one step late, as Lava's dense connection buffers it), its
    ``s_out`` goes to ``s_in_bap``. Returns (weights, post spike raster) then.

    ``supplied`` (three-factor plans): slot -> (n_post, steps) values that ``RingBuffer``\\ s play
    into ``s_in_y1..y3`` (:func:`neurodeploy.compile.loihi.supplied_traces`).

    ``mask`` (n_post, n_pre): the synapses that exist; the connection is then a ``LearningSparse``
    and the weights of the absent synapses are NaN.

    Every Lava process is an OS process: ``stop()`` runs in ``finally``, also on Ctrl-C."""

    _check_not_daemon()
    import_lava()
    from lava.proc.io.source import RingBuffer


    steps = pre.shape[1]
    sinks = []

    def build(history_path):
        deployment = Deployment.from_plan(plan, w0_lava, rng_seed=rng_seed, record=history_path, mask=mask)
        conn = deployment.conn
        RingBuffer(data=pre.astype(float)).s_out.connect(conn.s_in)
        if plan.three_factor:  # the postsynaptic side supplies y1..y3 (zeros where unused)
            deployment.supply_traces(post=post, values=supplied or {})
        if neuron is None:
            RingBuffer(data=post.astype(float)).s_out.connect(conn.s_in_bap)
            return conn, deployment.run_cfg()
        from lava.proc.io.sink import RingBuffer as Sink

        n_post = w0_lava.shape[0]
        lif = deployment.neurons(**neuron)
        conn.a_out.connect(lif.a_in)
        lif.s_out.connect(conn.s_in_bap)
        sink = Sink(shape=(n_post,), buffer=steps)
        lif.s_out.connect(sink.a_in)
        sinks.append(sink)
        return conn, deployment.run_cfg()

    collected = {}

    def collect():
        if sinks:
            collected["post"] = np.asarray(sinks[0].data.get()) != 0

    weights = _execute(build, (steps,) + w0_lava.shape, progress, collect)
    return weights if neuron is None else (weights, collected["post"])


def _execute(build, shape: tuple, progress=None, collect=None) -> np.ndarray:
    """Build the network (``build(history_path)`` returns the recording process and its run
    configuration), run it for
    ``shape[0]`` steps and return the recorded history of shape ``shape``; ``collect()`` runs
    after the run and before ``stop()`` (to read Vars).

    Lava forks one OS process per Lava process when the run starts. They must
    not see Ctrl-C themselves (they would die mid-message and leave shared
    memory behind): they start with SIGINT/SIGTERM ignored, and this process
    waits where an interrupt reaches ``finally`` and ``stop()`` ends them."""
    with tempfile.TemporaryDirectory(prefix="neurodeploy-lava-") as tmp:
        history_path = _history_file(os.path.join(tmp, "weights.npy"), shape)
        proc, cfg = build(history_path)
        _run_built(proc, cfg, shape[0], history_path, progress, collect)
        return read_history(history_path, shape[0])


def _history_file(path: str, shape: tuple) -> str:
    """An unwritten weight history ``path`` (NaN, so that nothing unwritten reads as a weight) and its
    step counter (0: no step written) for a recording connection."""
    weights = np.lib.format.open_memmap(path, mode="w+", dtype=float, shape=shape)
    weights[...] = np.nan
    weights.flush()
    np.lib.format.open_memmap(path + ".step.npy", mode="w+", dtype=np.int64, shape=(1,)).flush()
    return path


class RecordingError(RuntimeError):
    """A recording connection's history was not written for every step of the run."""


def read_history(path: str, steps: int, what: str = "the learning connection") -> np.ndarray:
    """The weight history at ``path`` (float), after checking that its model wrote all ``steps`` steps
    (its step counter): a connection Lava did not run, or stopped early, raises :class:`RecordingError`
    instead of reading as weights."""
    written = int(np.load(path + ".step.npy")[0])
    if written != steps:
        raise RecordingError(f"{what}: its weights were recorded for {written} of {steps} steps (Lava did not run "
                             "its process for the whole run)")
    return np.array(np.load(path, mmap_mode="r"), dtype=float)


def run_parts(roots: list) -> list:
    """The runs that cover every process of ``roots``: Lava compiles and runs only the processes connected
    to the one it runs, so a network whose processes fall into parts needs one run per part.
    Returns ``[(process to run, ids of the processes that run covers)]``, in the order of ``roots``."""
    from lava.magma.compiler.compiler_graphs import find_processes

    parts, covered = [], set()
    for proc in roots:
        if id(proc) in covered:
            continue
        members = {id(p) for p in find_processes(proc)}
        covered |= members
        parts.append((proc, members))
    return parts


def _run_built(proc, cfg, steps: int, history_path: str, progress=None, collect=None) -> None:
    """Run the built network through ``proc`` for ``steps`` steps; ``collect()`` before ``stop()``,
    which runs in ``finally`` (see :func:`_execute`)."""
    from lava.magma.core.run_conditions import RunSteps

    try:
        with _signals_ignored():
            proc.run(condition=RunSteps(num_steps=steps, blocking=False), run_cfg=cfg)
        with _watch(history_path, steps, progress):
            proc.wait()
        if collect is not None:
            collect()
    finally:
        proc.stop()


def run_network(rule, network, plan, w0: np.ndarray, input_spikes: np.ndarray, rng_seed: int = RNG_SEED,
                progress=None, mode: str | None = None, reward=None, state: dict | None = None) -> tuple:
    """Run ``network`` as :func:`neurodeploy.lava.deploy.deploy_network` builds it (recording connections),
    ``RingBuffer``\\ s playing ``input_spikes`` (n_inputs, steps; the input populations' rows in source
    order) into the input populations, sinks on the LIF populations.

    ``mode="cpu"`` (``plan`` None): ``RuleSynapses`` processes (lava-cpu).

    ``reward`` (three-factor rules): the :class:`neurodeploy.compile.reward.RewardSchedule` whose rewards the
    ``RewardTraces`` processes compute online from the network's spikes (``deploy_network(reward=)``).

    Returns ``(weights, spikes)``: the plastic weights (steps, n_lif, n_src) in rule units, NaN where
    there is no plastic synapse, and the LIF neurons' spikes (n_lif, steps) bool."""

    _check_not_daemon()
    import_lava()
    from lava.proc.io.source import RingBuffer


    steps = input_spikes.shape[1]
    plastic = [pr for pr in network.projections if pr.plastic and pr.mask.any()]
    with tempfile.TemporaryDirectory(prefix="neurodeploy-lava-") as tmp:
        record = {pr.index: _history_file(os.path.join(tmp, f"weights{pr.index}.npy"),
                                          (steps, pr.mask.shape[0], pr.mask.shape[1])) for pr in plastic}
        mode = mode or plan.mode
        nd = deploy_network(rule, network, mode, plan=None if mode == "cpu" else plan, w0=w0, rng_seed=rng_seed,
                            record=record, reward=reward, steps=steps if reward is not None else None)
        for pop in network.inputs:
            if nd.projections_from(pop.name):
                source = RingBuffer(data=np.asarray(input_spikes[pop.offset:pop.offset + pop.n], dtype=float))
                nd.connect_input(pop.name, source.s_out)
        sinks = nd.spike_sinks(steps)
        spikes = np.zeros((network.n_lif, steps), dtype=bool)
        conns = [(pr, d.conn) for pr, d in nd.plastic]
        # every recording connection and every sink runs: one run per part of the process graph (one run
        # in a connected network; a projection without synapses is not built and connects nothing)
        for proc, members in run_parts([c for _, c in conns] + list(sinks.values())):
            history = next((record[pr.index] for pr, c in conns if id(c) in members), None)

            def collect(members=members):
                for name, sink in sinks.items():
                    if id(sink) in members:
                        spikes[network.population(name).targets] = np.asarray(sink.data.get()) != 0

            _run_built(proc, nd.run_cfg(), steps, history, progress if history is not None else None, collect)
        weights = np.full((steps, network.n_lif, network.n_src), np.nan)
        for pr in plastic:
            t, s = network.projection_slices(pr)
            block = read_history(record[pr.index], steps, f"projection {pr.index} ({pr.source} -> {pr.target})")
            block = block if mode == "cpu" else plan.weights_from_lava(block)
            weights[:, t, s] = np.where(pr.mask, block, np.nan)
    return weights, spikes


def run_rule_process(rule, w0: np.ndarray, pre: np.ndarray, post: np.ndarray, reward: np.ndarray | None,
                     progress=None) -> np.ndarray:
    """Run ``rule`` as a :class:`~neurodeploy.lava.cpu.processes.RuleSynapses` process; weights (steps, n_post, n_pre)."""

    _check_not_daemon()
    import_lava()
    from lava.proc.io.source import RingBuffer


    steps = pre.shape[1]
    r = reward if reward is not None else np.zeros((post.shape[0], steps))

    def build(history_path):
        deployment = CpuDeployment.build(rule, w0, record=history_path)  # as deploy(rule, mode="cpu")
        proc = deployment.conn
        RingBuffer(data=pre.astype(float)).s_out.connect(proc.s_in)
        RingBuffer(data=post.astype(float)).s_out.connect(proc.s_in_bap)
        RingBuffer(data=np.asarray(r, dtype=float)).s_out.connect(proc.r_in)
        return proc, deployment.run_cfg()

    return _execute(build, (steps,) + w0.shape, progress)


def _check_not_daemon():
    if multiprocessing.current_process().daemon:
        raise RuntimeError("Lava starts a process per Lava process, which a daemonic process cannot: "
                           "start Dask workers with DASK_DISTRIBUTED__WORKER__DAEMON=False")


class _LavaBackend(EngineBackend):
    networks = True  # built by deploy_network (neurodeploy.lava.deploy), as users deploy a network

    def trajectory(self, plan, w0_lava, trains, progress=None) -> np.ndarray:
        """Weights after each step, rule units (a mask: a LearningSparse connection, absent synapses NaN)."""
        return plan.weights_from_lava(run_lava(plan, w0_lava, trains.pre, trains.post, progress=progress,
                                               mask=trains.mask))

    def simulate(self, rule, trains, plans, progress=None):
        plan = plans[self.mode]
        w0 = plan.weights_to_lava(trains.w0)
        # weights at the 8-bit limits are counted by the harness (fixed_point_saturation)
        info = {"w0_lava_error_max": float(np.max(np.abs(plan.weights_from_lava(w0) - trains.w0)))}
        schedule = getattr(trains, "reward_schedule", None) if plan.three_factor else None
        if trains.network is not None:  # built by deploy_network, as users deploy it
            net = trains.network
            weights, spikes = run_network(rule, net, plan, trains.w0, trains.pre[: net.n_inputs], progress=progress,
                                          reward=schedule)
            info["post_spikes"] = spikes
            return weights, info
        if trains.neuron is not None and schedule is not None:  # the one-projection network, traces online
            from neurodeploy.network import closed_loop_network

            net, w0_net = closed_loop_network(trains)
            weights, spikes = run_network(rule, net, plan, w0_net, trains.pre, progress=progress, reward=schedule)
            info["post_spikes"] = spikes
            return np.ascontiguousarray(weights[:, :, : trains.n_pre]), info
        if trains.neuron is not None:
            n = trains.neuron  # Lava's LIF as a deployment builds it, tau and dt in ms
            lif = lif_params(plan.mode, n["tau_u_ms"], n["tau_v_ms"], n["vth"], plan, dt=rule.dt * 1e3)
            weights, post = run_lava(plan, w0, trains.pre, trains.post, progress=progress, neuron=lif,
                                     mask=trains.mask)
            info["post_spikes"] = post
            return plan.weights_from_lava(weights), info
        if plan.three_factor:
            weights = run_lava(plan, w0, trains.pre, trains.post, progress=progress,
                               supplied=supplied_traces(rule, plan, trains), mask=trains.mask)
            return plan.weights_from_lava(weights), dict(info, three_factor=True)
        return self.trajectory(plan, w0, trains, progress), info


@REGISTRY.register
class LavaFloat(_LavaBackend):
    closed_loop = True
    name = "lava-float"
    description = "Lava LearningDense, floating_pt model (weights clipped to the rule's bounds)"
    mode = "float"


@REGISTRY.register
class LavaFixed(_LavaBackend):
    closed_loop = True
    name = "lava-fixed"
    description = "Lava LearningDense, fixed_pt bit-approximate model"
    mode = "fixed"


@REGISTRY.register
class LavaCpu(Backend):
    networks = True  # RuleSynapses (a_out) between float LIFs: deploy_network(mode="cpu")
    name = "lava-cpu"
    description = ("custom Lava process (floating_pt PyLoihiProcessModel) running the rule's step semantics; "
                   "runs any rule, not deployable to the learning engine")

    def unsupported_trains(self, trains):
        if trains.network is not None and trains.reward is not None:
            return "networks: the supplied reward of a three-factor rule is not wired in networks yet"
        return super().unsupported_trains(trains)

    def simulate(self, rule, trains, plans, progress=None):
        if trains.network is not None:  # RuleSynapses drive float LIFs (deploy_network "cpu")
            net = trains.network
            weights, spikes = run_network(rule, net, None, trains.w0, trains.pre[: net.n_inputs], progress=progress,
                                          mode="cpu")
            return weights, {"deployable": False, "post_spikes": spikes}
        trajectory = run_rule_process(rule, trains.w0, trains.pre, trains.post, trains.reward, progress)
        return trajectory, {"deployable": False}
