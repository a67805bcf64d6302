"""Plastic networks in Brian2 (``brian2`` and ``brian2-step``): Lava LIF neurons, Poisson inputs, plastic
and static projections (:mod:`neurodeploy.network`); the closed loop is the one-projection case.

The network is built from fixed Brian2 names (population names from the file never reach Brian2):

* ``pre``: a ``SpikeGeneratorGroup`` playing the input rows of ``trains.pre`` (absent without inputs);
* ``post``: one ``NeuronGroup`` for every LIF neuron, Lava's LIF with per-neuron ``du = dt/tau_u``,
  ``dv = dt/tau_v`` and ``vth = threshold (w_max - w_min)`` (constants of each neuron)::

      a_in = a_next; a_next = 0; u = u (1 - du) + a_in; v = v (1 - dv) + u; spike if v > vth, v = 0

  where ``a_next`` collects, during step ``t``, the weights of the synapses whose source spiked in
  step ``t``: it reaches ``u`` in step ``t + 1``, as Lava's dense connection delivers it;
* ``plastic`` (inputs -> LIF) and ``plastic_rec`` (LIF -> LIF): the rule's ``Synapses`` model, connected on
  the plastic mask's blocks; the pre pathway adds ``w`` to ``a_next_post`` before the rule changes
  ``w`` (the current of a spike uses the weight before this step's change);
* ``static`` and ``static_rec``: ``a_next_post += ws``, fixed weights (rule units, negative inhibits).

The trajectory is the (n_lif, n_src) plastic block, NaN where no plastic synapse exists. The target is
numpy, or Brian2's cpp_standalone device when forced (``NEURODEPLOY_BRIAN2_TARGET=cpp_standalone``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neurodeploy.brian2.model import set_up_synapses, unit_text
from neurodeploy.brian2.standalone import _make
from neurodeploy.spec.units import to_brian2
from neurodeploy.backend import Recording


@dataclass(frozen=True)
class Layout:
    """What Brian2 builds: the LIF neurons' constants and the (n_lif, n_src) blocks, sources = inputs then LIFs."""

    n_inputs: int
    du: np.ndarray  # (n_lif,) dt / tau_u
    dv: np.ndarray  # (n_lif,) dt / tau_v
    vth: np.ndarray  # (n_lif,) threshold, rule weight units
    plastic: np.ndarray  # bool (n_lif, n_src): the plastic synapses
    w0: np.ndarray  # (n_lif, n_src) initial plastic weights
    static: np.ndarray  # bool (n_lif, n_src): the static synapses
    weights: np.ndarray  # (n_lif, n_src) static weights, rule units

    @property
    def n_lif(self) -> int:
        return self.du.size


def layout(rule, trains) -> Layout:
    """The :class:`Layout` of a network's trains (``trains.network``) or of a closed loop (``trains.neuron``:
    the inputs onto one layer of LIF neurons, all-to-all or on ``trains.mask``)."""
    net = trains.network
    if net is not None:
        step_ms = rule.dt * 1e3
        return Layout(net.n_inputs, step_ms / net.lif_array("tau_u_ms"), step_ms / net.lif_array("tau_v_ms"),
                      net.lif_array("threshold") * rule.weight.range, np.asarray(trains.mask, dtype=bool),
                      np.asarray(trains.w0, dtype=float), net.static_mask(), net.static_weights())
    n = trains.neuron
    mask = np.ones((trains.n_post, trains.n_pre), dtype=bool) if trains.mask is None else trains.mask
    none = np.zeros((trains.n_post, trains.n_pre))
    return Layout(trains.n_pre, np.full(trains.n_post, float(n["du"])), np.full(trains.n_post, float(n["dv"])),
                  np.full(trains.n_post, float(n["vth"])), np.asarray(mask, dtype=bool),
                  np.asarray(trains.w0, dtype=float), none.astype(bool), none)


def _lif(b2, rule, lay: Layout, dt):
    """Lava's LIF in Brian2, one group for all LIF neurons, per-neuron constants."""
    unit = unit_text(rule.weight.dim)
    eqs = "\n".join([f"{v} : {unit}" for v in ("u", "v", "a_in", "a_next")] +
                    ["du : 1 (constant)", "dv : 1 (constant)", f"vth : {unit} (constant)"])
    group = b2.NeuronGroup(lay.n_lif, eqs, threshold="v > vth", reset="v = 0*vth", dt=dt, name="post",
                           namespace={})
    group.du = lay.du
    group.dv = lay.dv
    group.vth = b2.Quantity(lay.vth, dim=to_brian2(rule.weight.dim))
    group.run_regularly("a_in = a_next\na_next = 0*a_next\nu = u * (1 - du) + a_in\nv = v * (1 - dv) + u",
                        when="groups", dt=dt)
    return group


def _connect(syn, block: np.ndarray) -> tuple:
    """Connect ``syn`` on ``block[target, source]`` in ``connect()``'s all-to-all order (source-major);
    return (source, target) indices of the synapses, in Brian2's order."""
    n_target, n_source = block.shape
    i, j = np.repeat(np.arange(n_source), n_target), np.tile(np.arange(n_target), n_source)
    keep = block[j, i]
    i, j = i[keep], j[keep]
    syn.connect(i=i, j=j)
    return i, j


def build_and_run(b2, model, rule, trains, namespace: dict, progress, recording, check, run, build_dir=None) -> tuple:
    """Build the network of ``trains`` (a network or a closed loop) and run it; (trajectory, info).
    ``build_dir``: Brian2's cpp_standalone device is set, build and run there."""

    dt = rule.dt * b2.second
    lay = layout(rule, trains)
    n_in, n_lif, steps = lay.n_inputs, lay.n_lif, trains.steps
    n_src = lay.plastic.shape[1]  # a network's inputs then its LIFs; a closed loop's inputs
    w_dim = to_brian2(rule.weight.dim)
    post = _lif(b2, rule, lay, dt)
    objects = [post]
    pre = None
    if n_in:
        pre_i, pre_t = np.nonzero(trains.pre[:n_in])
        pre = b2.SpikeGeneratorGroup(n_in, pre_i, pre_t * dt, dt=dt, name="pre")
        objects.append(pre)
    sources = ((pre, slice(0, n_in), ""), (post, slice(n_in, n_src), "_rec"))
    on_post = {"post": model.on_post}
    for name, side, _, code in model.delayed:
        if side == "post":
            on_post[name] = code
    plastic = []  # (Synapses, global source columns, target rows), in the order of the concatenated weights
    for group, columns, suffix in sources:
        block = lay.plastic[:, columns]
        if group is None or not block.any():
            continue
        on_pre = {"pre": "a_next_post += w\n" + model.on_pre}  # the current uses w before this step's change
        for name, side, _, code in model.delayed:
            if side == "pre":
                on_pre[name] = code
        syn = b2.Synapses(group, post, model=model.model, on_pre=on_pre, on_post=on_post,
                          namespace=namespace, dt=dt, method="exact", name="plastic" + suffix)
        i, j = _connect(syn, block)
        set_up_synapses(b2, syn, model, rule, dt)
        syn.w[:] = b2.Quantity(lay.w0[j, i + columns.start], dim=w_dim)
        plastic.append((syn, i + columns.start, j))
        objects.append(syn)
        check()
    n_static = 0
    for group, columns, suffix in sources:
        block = lay.static[:, columns]
        if group is None or not block.any():
            continue
        syn = b2.Synapses(group, post, model=f"ws : {unit_text(rule.weight.dim)} (constant)",
                          on_pre="a_next_post += ws", namespace={}, dt=dt, name="static" + suffix)
        i, j = _connect(syn, block)
        syn.ws[:] = b2.Quantity(lay.weights[j, i + columns.start], dim=w_dim)
        n_static += i.size
        objects.append(syn)
    # index[target, source]: the synapse's position in the plastic groups' concatenated weights (-1: none)
    index = np.full((n_lif, n_src), -1, dtype=np.intp)
    offsets = [0]
    for syn, i, j in plastic:
        index[j, i] = np.arange(offsets[-1], offsets[-1] + i.size)
        offsets.append(offsets[-1] + i.size)
    n_plastic = offsets[-1]
    spikes = b2.SpikeMonitor(post, name="post_spikes")
    objects.append(spikes)
    if getattr(trains, "reward_schedule", None) is not None and model.reward:
        if build_dir is not None:
            raise ValueError("a reward computed online from the network's spikes runs on Brian2's numpy target "
                             "(a network_operation), not on cpp_standalone")
        objects.append(_online_reward(b2, trains, namespace, spikes, n_in, n_lif, steps, dt))
    info = {"synapses": int(n_plastic)}
    if trains.network is not None:
        info["static_synapses"] = int(n_static)
    if build_dir is not None:
        return _standalone(b2, rule, trains, lay, plastic, offsets, index, objects, spikes, info, recording, check,
                           build_dir)
    if recording is None or recording.everything:
        monitors = [b2.StateMonitor(syn, "w", record=True, when="end", order=100, dt=dt, name=f"weights{k}")
                    for k, (syn, _, _) in enumerate(plastic)]
        objects += monitors
    else:
        rows = recording.rows(steps)
        posts, pres = recording.post_index(n_lif), recording.pre_index(n_src)
        sub = index[np.ix_(posts, pres)]
        here = sub >= 0
        flat = sub[here]
        recorded = np.full((rows.size, posts.size, pres.size), np.nan)
        variables = [syn.variables["w"] for syn, _, _ in plastic]
        state = {"row": 0}

        @b2.network_operation(dt=dt, when="end", order=100, name="weights")
        def record(t):
            k = state["row"]
            if k < rows.size and int(round(float(t / dt))) == rows[k]:
                recorded[k][here] = np.concatenate([np.asarray(v.get_value()) for v in variables])[flat]
                state["row"] = k + 1

        objects.append(record)
    net = b2.Network(*objects)

    def report(elapsed, completed, start, duration):  # called between time steps: a safe point
        check()
        if progress is not None:
            progress(int(round(float(completed) * steps)))

    run(b2, net, steps * dt, report)
    check()
    if recording is None or recording.everything:
        trajectory = np.full((steps, n_lif, n_src), np.nan)
        for (syn, i, j), monitor in zip(plastic, monitors):
            trajectory[:, j, i] = np.asarray(monitor.w_[:]).T  # (synapses, steps) -> (steps, synapses)
    else:
        trajectory = recorded
    return trajectory, dict(info, brian2_target=b2.prefs.codegen.target, post_spikes=_raster(spikes, n_lif, steps, dt))


def _online_reward(b2, trains, namespace, spikes, n_in: int, n_lif: int, steps: int, dt):
    """A ``network_operation`` at the end of every step: the reward schedule (:mod:`neurodeploy.compile.reward`)
    observes the step's input and LIF spikes and writes the rewards it schedules straight into the
    ``reward_input`` TimedArray's values (its ``pending`` array *is* those values: (steps, n_lif)), ahead of
    the step that reads them (a reward comes at least one step after the spikes that decide it)."""
    schedule = trains.reward_schedule.fresh(n_lif, steps)
    values = namespace["reward_input"].values
    if values.shape != (steps, n_lif):
        raise ValueError(f"reward_input has shape {values.shape}, expected {(steps, n_lif)}")
    values[...] = 0.0
    schedule.pending = values  # the numpy target reads the TimedArray's values array in place
    inputs = np.asarray(trains.pre[:n_in], dtype=bool)
    seen = {"n": 0}
    index = spikes.variables["i"]

    @b2.network_operation(dt=dt, when="end", order=50, name="reward_schedule")
    def observe(t):
        k = int(round(float(t / dt)))
        n = int(spikes.num_spikes)
        lif = np.zeros(n_lif, dtype=bool)
        if n > seen["n"]:
            lif[np.asarray(index.get_value()[seen["n"]:n])] = True
            seen["n"] = n
        schedule.observe(k, np.concatenate([inputs[:, k], lif]), lif)

    observe.schedule = schedule
    return observe


def _raster(spikes, n: int, steps: int, dt):
    """bool (n, steps) of a SpikeMonitor's spikes."""
    raster = np.zeros((n, steps), dtype=bool)
    raster[np.asarray(spikes.i[:]), np.rint(np.asarray(spikes.t[:] / dt)).astype(int)] = True
    return raster



def _standalone(b2, rule, trains, lay: Layout, plastic, offsets, index, objects, spikes, info, recording, check,
                build_dir) -> tuple:
    """The cpp_standalone run: a monitor per plastic group every ``every`` steps (rows 0, K, 2K, ...) on the
    recorded synapses, the last step from the weights after the run."""

    dt = rule.dt * b2.second
    steps, n_lif, n_src = trains.steps, lay.n_lif, lay.plastic.shape[1]
    rec = recording or Recording()
    rows = rec.rows(steps)
    posts, pres = rec.post_index(n_lif), rec.pre_index(n_src)
    sub = index[np.ix_(posts, pres)]
    here = sub >= 0
    flat = sub[here]
    groups = []  # (Synapses, positions in flat, its own synapse indices, monitor)
    for k, (syn, _, _) in enumerate(plastic):
        position = np.nonzero((flat >= offsets[k]) & (flat < offsets[k + 1]))[0]
        local = flat[position] - offsets[k]
        monitor = None
        if local.size:
            monitor = b2.StateMonitor(syn, "w", record=local, when="end", order=100, dt=rec.every * dt,
                                      name=f"weights{k}")
            objects.append(monitor)
        groups.append((syn, position, local, monitor))
    net = b2.Network(*objects)
    net.run(steps * dt, namespace={})
    check()
    b2.device.build(directory=build_dir, compile=False, run=False, with_output=False)
    check()
    _make(b2, build_dir, check)
    check()
    b2.device.run(build_dir, "results", False)
    check()
    values = np.full((rows.size, flat.size), np.nan)
    for syn, position, local, monitor in groups:
        if monitor is None:
            continue
        got = np.asarray(monitor.w_[:])  # (recorded synapses, monitor rows)
        n_mon = min(got.shape[1], rows.size)
        values[:n_mon, position] = got[:, :n_mon].T
        if n_mon < rows.size:  # the last step
            values[-1, position] = np.asarray(syn.w_[:])[local]
    trajectory = np.full((rows.size, posts.size, pres.size), np.nan)
    trajectory[:, here] = values
    return trajectory, dict(info, brian2_target="cpp_standalone", post_spikes=_raster(spikes, n_lif, steps, dt))
