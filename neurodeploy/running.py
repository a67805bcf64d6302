"""Running: drive the backends with spike trains and record (which backends, which steps and synapses,
the Lava window, time limits, the closed loop's plan scaling)."""
from __future__ import annotations

import contextlib
import functools
import math
import signal
import threading
import time

import numpy as np

from neurodeploy.backend import Recording
from neurodeploy.compile.compilation import Compilation, compile_rule
from neurodeploy.protocol import SpikeTrains
from neurodeploy.compile.loihi import network_plan_reason
from neurodeploy.progress import catch_signals, check_signals, unwound


DEFAULT_BACKENDS = ("brian2", "brian2-step", "lava-float", "lava-fixed")


#: The default for rules the learning engine cannot express.
CPU_BACKENDS = ("brian2", "brian2-step", "lava-cpu")


#: Most weight values one backend's recorded trajectory holds by default (float64: 32 MB); a longer
#: run is recorded every K-th step (``--record-every``), the smallest K within the budget.
RECORD_BUDGET = 4_000_000


#: Most synapses recorded by default: larger networks record an evenly spaced sub-grid (``--record-synapses``).
RECORD_SYNAPSES = 10_000


#: Lava backends run at most this many synapse-steps of a protocol by default (``--lava-steps``):
#: measured ~500-900 steps/s at 100x100 on a loaded 2-core machine, so ~2.5-4 s per Lava backend there.
LAVA_SYNAPSE_STEPS = 20_000_000


#: ... and at least this many steps (or the whole protocol), at most :data:`LAVA_MAX_STEPS`
#: (Lava's cost per step at small sizes is fixed: measured 5 ms per step at one synapse under load).
LAVA_MIN_STEPS, LAVA_MAX_STEPS = 1000, 2000


LAVA_BACKENDS = ("lava-float", "lava-fixed", "lava-cpu")


#: The emulator twin that runs the whole protocol where its Lava backend runs a window.
EMU_TWIN = {"lava-float": "emu-float", "lava-fixed": "emu-fixed"}


def default_backends(rule) -> tuple:
    """:data:`DEFAULT_BACKENDS` when the learning engine can express ``rule`` (a rule or its
    :class:`~neurodeploy.compile.compilation.Compilation`), else :data:`CPU_BACKENDS`, plus, when the
    lowering's approximations put the rule on the engine, the Lava backends that run it so (the rule
    itself runs exactly on ``lava-cpu``; the approximation has its own share)."""
    compilation = rule if isinstance(rule, Compilation) else compile_rule(rule)
    if compilation.engine is None:
        return DEFAULT_BACKENDS
    lava = tuple(b for b, mode in (("lava-float", "float"), ("lava-fixed", "fixed"))
                 if compilation.approximation[mode] is None)
    return CPU_BACKENDS + lava


#: Closed loop and networks: the backends whose spikes scale the plans, by preference (they run no plan).
PLAN_FREE = ("brian2", "brian2-step", "lava-cpu")


def network_refusals(rule, trains, plans) -> dict:
    """A network's engine backends that cannot deploy it with the plans (a static weight or a threshold
    beyond Loihi's integers, a masked synapse starting at 0): backend -> the one-line reason."""

    out = {}
    if trains.network is None:
        return out
    for mode, plan in plans.items():
        reason = network_plan_reason(rule, trains.network, plan, trains.w0)
        if reason is not None:
            out.update({f"lava-{mode}": reason, f"emu-{mode}": reason})
    return out


def _replan(compilation, spikes) -> tuple:
    """(trains with the neurons' ``spikes``, their trace statistics, the compilation scaled on them, which
    has no plans when the engine cannot run the rule): a closed loop's or network's plans, on spikes a
    neuron made (:meth:`~neurodeploy.compile.compilation.Compilation.on_spikes`)."""
    made = compilation.on_spikes(spikes)
    return made.trains, made.traces, made


def _plan_scaler(registry, rule, trains, backends, refused=None) -> tuple:
    """(scaler, backends in run order, pre_run): the backend whose neurons' spikes scale the plans of a
    closed loop or network: the first of :data:`PLAN_FREE` that runs (moved to the front), else the first
    backend that runs, in a preliminary run (``pre_run``) whose result is not reported, so that every
    reported backend ran the reported plans and the backends' order changes no number."""
    runs = [n for n in backends if registry.get(n).unsupported_reason(rule) is None
            and registry.get(n).unsupported_trains(trains) is None and n not in (refused or {})]
    free = [n for n in PLAN_FREE if n in runs]
    if free:
        return free[0], [free[0]] + [n for n in backends if n != free[0]], False
    return (runs[0] if runs else None), list(backends), bool(runs)


def mode_of(backend: str) -> str:
    return "fixed" if backend.endswith("-fixed") else "float"


class BackendTimeout(Exception):
    """A backend ran longer than its time limit."""


@contextlib.contextmanager
def time_limit(seconds):
    """Raise BackendTimeout in the main thread after ``seconds`` (None: no limit).

    Uses SIGALRM, so it interrupts Brian2 and the wait for Lava alike; Lava's
    ``stop()`` still runs in its ``finally``."""
    if not seconds:
        yield
        return
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("a backend time limit needs the main thread (not available on Dask workers)")

    def expire(signum, frame):
        raise BackendTimeout()

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, float(seconds))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def grid(n: int, count: int) -> np.ndarray:
    """``count`` evenly spaced indices of ``range(n)`` (first and last included)."""
    return np.unique(np.linspace(0, n - 1, max(1, min(n, count))).round().astype(np.intp))


def default_recording(trains: SpikeTrains, every: int | None = None, synapses=None) -> Recording:
    """What ``verify`` records: every synapse up to :data:`RECORD_SYNAPSES` (else an evenly spaced
    sub-grid of about that many), every step up to :data:`RECORD_BUDGET` values (else every K-th).

    ``synapses``: None (that default), ``"all"``, an int N (an evenly spaced sub-grid of about N), or
    (posts, pres) index lists. A curve protocol's synapses are always recorded."""
    n_post, n_pre = trains.n_post, trains.n_pre
    if synapses is None:
        synapses = None if n_post * n_pre <= RECORD_SYNAPSES else RECORD_SYNAPSES
    if synapses == "all" or synapses is None:
        posts = pres = None
    elif isinstance(synapses, (int, np.integer)):
        side = math.sqrt(int(synapses) * n_post / n_pre)
        posts = grid(n_post, int(round(side)))
        pres = grid(n_pre, int(round(int(synapses) / len(posts))))
    else:
        posts, pres = (np.unique(np.asarray(v, dtype=np.intp)) for v in synapses)
    if trains.curve is not None and posts is not None:
        pairs = np.asarray(trains.curve["synapses"], dtype=np.intp).reshape(-1, 2)
        posts, pres = np.union1d(posts, pairs[:, 0]), np.union1d(pres, pairs[:, 1])
    if posts is not None and len(posts) == n_post and pres is not None and len(pres) == n_pre:
        posts = pres = None
    n_rec = (n_post if posts is None else len(posts)) * (n_pre if pres is None else len(pres))
    if every is None:
        every = max(1, math.ceil(trains.steps * n_rec / RECORD_BUDGET))
    return Recording(every=int(every), posts=None if posts is None else tuple(int(i) for i in posts),
                     pres=None if pres is None else tuple(int(i) for i in pres))


def lava_window(trains: SpikeTrains, lava_steps: int | None = None) -> int:
    """Steps the Lava backends run (from step 0): ``lava_steps`` (0: the whole protocol) or by default
    :data:`LAVA_SYNAPSE_STEPS` / synapses within [:data:`LAVA_MIN_STEPS`, :data:`LAVA_MAX_STEPS`]."""
    if trains.closed or lava_steps == 0:
        return trains.steps  # the closed loop's spikes depend on every step: never windowed
    if lava_steps is None:
        synapses = trains.n_pre * trains.n_post
        lava_steps = int(min(LAVA_MAX_STEPS, max(LAVA_MIN_STEPS, LAVA_SYNAPSE_STEPS // max(1, synapses))))
    return int(min(trains.steps, lava_steps))


# -- a local process pool (batch --jobs, task --jobs) ---------------------------------------------------

#: Seconds a terminated pool worker has to unwind its run (Lava's stop()) before it is killed.
STOP_SECONDS = 60.0


class WorkerTerminated(SystemExit):
    """SIGTERM in a pool worker. It unwinds the worker's run (Lava's ``stop()`` in ``finally``) and, at the
    top of the worker, ends it quietly with status 143: a ``SystemExit``, for which multiprocessing prints
    no traceback (a scheduler's SIGTERM to the whole job, ``kill -- -PGID``, reaches every worker, and
    the parent's ``terminate()`` then lands a second one in the unwinding). In the parent :func:`fork_map`
    raises :class:`WorkerLost` instead (a library call should not raise ``SystemExit``)."""

    def __init__(self, *args):
        super().__init__(128 + signal.SIGTERM)


class WorkerLost(RuntimeError):
    """A worker process of :func:`fork_map`, not this process, was terminated (SIGTERM): the results are
    incomplete, the other workers stopped."""


def worker_signals():
    """In a pool worker: Ctrl-C is the parent's to handle; SIGTERM unwinds (Lava's stop() runs), once:
    a second SIGTERM (the parent's terminate() after a SIGTERM to the whole group) is ignored, or it would
    cut Lava's stop() short and leave its processes running, the worker waiting for them at exit."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    catch_signals({signal.SIGTERM: WorkerTerminated}, once=True)  # never lost in a Brian2 weakref callback


def _checked(function, x):
    """``function(x)`` in a worker, unless the worker was terminated (its item after a SIGTERM: not run).
    Once the run has unwound, a further SIGTERM ends the worker wherever it waits."""
    try:
        check_signals()
        return function(x)
    except BaseException:
        unwound()
        raise


def fork_map(function, items, jobs: int) -> list:
    """``[function(x) for x in items]``, in ``jobs`` forked worker processes when ``jobs > 1`` (the
    workers inherit this process's memory: module globals set before the call are theirs too). The
    results come back in the order of ``items``, whatever finishes first: the same as ``jobs=1``. On
    Ctrl-C or SIGTERM the workers get SIGTERM and the exception is raised here."""
    items = list(items)
    jobs = min(int(jobs), len(items))
    if jobs <= 1:
        return [function(x) for x in items]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    pool = ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("fork"),
                               initializer=worker_signals)
    try:
        out = list(pool.map(functools.partial(_checked, function), items))
    except BaseException as exc:
        processes = list(getattr(pool, "_processes", {}).values())
        for process in processes:
            process.terminate()
        pool.shutdown(wait=True, cancel_futures=True)
        # a worker ignores SIGTERM while its run unwinds (Lava's stop()); once it is idle the next one ends
        # it: until every worker is gone (SIGKILL after STOP_SECONDS), or this process would wait for them
        # at its exit
        deadline = time.monotonic() + STOP_SECONDS
        for process in processes:
            while process.is_alive() and time.monotonic() < deadline:
                process.terminate()
                process.join(0.5)
            if process.is_alive():
                process.kill()
                process.join()
        if isinstance(exc, WorkerTerminated):
            raise WorkerLost("a worker process was terminated (SIGTERM)") from None
        raise
    pool.shutdown(wait=True)
    return out
