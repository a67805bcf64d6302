"""The two Brian2 backends: ``brian2`` (the rule as written) and ``brian2-step``
(the learning engine's per-step order); see :mod:`.brian2_model`."""
from __future__ import annotations

import contextlib
import signal
import threading

import numpy as np

from neurodeploy.backends import REGISTRY, Backend
from neurodeploy.backends.brian2_model import Brian2Model, b2name, reference_model, step_model, unit_namespace


def _lif(b2, rule, trains, dt):
    """Lava's LIF in Brian2 (see :func:`neurodeploy.protocol.closed_loop`): the input ``a_next`` collected
    in a step is used in the next one, as Lava's dense connection delivers it."""
    from neurodeploy.backends.brian2_model import unit_text

    unit = unit_text(rule.weight.dim)
    n = trains.neuron
    eqs = "\n".join(f"{v} : {unit}" for v in ("u", "v", "a_in", "a_next"))
    group = b2.NeuronGroup(trains.n_post, eqs, threshold="v > vth", reset="v = 0*vth", dt=dt, name="post",
                           namespace={"du": n["du"], "dv": n["dv"],
                                      "vth": b2.Quantity(n["vth"], dim=rule.weight.dim)})
    group.run_regularly("a_in = a_next\na_next = 0*a_next\nu = u * (1 - du) + a_in\nv = v * (1 - dv) + u",
                        when="groups", dt=dt)
    return group


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


def _simulate(model: Brian2Model, rule, trains, progress=None) -> tuple:
    """(trajectory, info); in a closed loop ``info["post_spikes"]`` is the LIF's raster."""
    with _alarm_at_safe_points() as check:
        return _simulate_checked(model, rule, trains, progress, check)


def _simulate_checked(model: Brian2Model, rule, trains, progress, check) -> tuple:
    import brian2 as b2

    b2.prefs.codegen.target = "numpy"
    dt = rule.dt * b2.second
    n_pre, n_post, steps = trains.n_pre, trains.n_post, trains.steps
    pre_i, pre_t = np.nonzero(trains.pre)
    post_i, post_t = np.nonzero(trains.post)
    pre = b2.SpikeGeneratorGroup(n_pre, pre_i, pre_t * dt, dt=dt, name="pre")
    closed = trains.neuron is not None
    post = _lif(b2, rule, trains, dt) if closed else b2.SpikeGeneratorGroup(n_post, post_i, post_t * dt, dt=dt, name="post")
    epoch = np.zeros(steps)
    epoch[rule.t_epoch - 1::rule.t_epoch] = 1.0
    namespace = dict(unit_namespace(rule), **model.namespace)
    namespace["epoch_end"] = b2.TimedArray(epoch, dt=dt)
    namespace["epoch_step"] = b2.TimedArray(np.arange(steps) % rule.t_epoch + 1.0, dt=dt)  # 1..t_epoch
    if model.reward:
        namespace["reward_input"] = b2.TimedArray(trains.reward_or_zeros().T.copy(), dt=dt)
    # closed loop: the current of a pre spike uses w before this step's change
    on_pre = {"pre": ("a_next_post += w\n" + model.on_pre) if closed else model.on_pre}
    on_post = {"post": model.on_post}
    for name, side, _, code in model.delayed:
        (on_pre if side == "pre" else on_post)[name] = code
    syn = b2.Synapses(pre, post, model=model.model, on_pre=on_pre, on_post=on_post,
                      namespace=namespace, dt=dt, method="exact", name="plastic")
    check()
    syn.connect()
    # same-step pre before post, then the delayed jumps (Brian2 otherwise orders by name)
    syn.pre.order = 0
    syn.post.order = 1
    for order, (name, _, delay, _) in enumerate(model.delayed, start=2):
        pathway = getattr(syn, name)
        pathway.order = order
        pathway.delay = delay * b2.second
    for code, when, order in model.regular:
        syn.run_regularly(code, when=when, order=order, dt=dt)
    for t in rule.traces:  # traces start at rest
        if t.rest:
            setattr(syn, b2name(rule, t.name), b2.Quantity(t.rest, dim=t.dim))
    i, j = np.asarray(syn.i[:]), np.asarray(syn.j[:])
    w0 = trains.w0[j, i]
    syn.w[:] = b2.Quantity(w0, dim=rule.weight.dim)
    monitor = b2.StateMonitor(syn, "w", record=True, when="end", order=100, dt=dt, name="weights")
    check()
    net = b2.Network(pre, post, syn, monitor)
    spikes = None
    if closed:
        spikes = b2.SpikeMonitor(post, name="post_spikes")
        net.add(spikes)
    def report(elapsed, completed, start, duration):  # called between time steps: a safe point
        check()
        if progress is not None:
            progress(int(round(float(completed) * steps)))
    _run(b2, net, steps * dt, report)
    check()
    w = np.asarray(monitor.w[:])  # (synapses, steps)
    trajectory = np.empty((steps, n_post, n_pre))
    trajectory[:, j, i] = w.T
    info = {}
    if closed:
        raster = np.zeros((n_post, steps), dtype=bool)
        raster[np.asarray(spikes.i[:]), np.rint(np.asarray(spikes.t[:] / dt)).astype(int)] = True
        info["post_spikes"] = raster
    return trajectory, info


@REGISTRY.register
class Brian2Reference(Backend):
    closed_loop = True
    name = "brian2"
    description = "Brian2 Synapses, the rule as written (event-driven traces, exact decay)"

    def simulate(self, rule, trains, plans, progress=None):
        return _simulate(reference_model(rule), rule, trains, progress)


@REGISTRY.register
class Brian2Step(Backend):
    closed_loop = True
    name = "brian2-step"
    description = "Brian2 Synapses in the learning engine's order (decay, impulse, dw, epoch-end update)"

    def simulate(self, rule, trains, plans, progress=None):
        return _simulate(step_model(rule), rule, trains, progress)
