"""The emulator's networks: LIF populations, static and plastic projections (one engine per plastic
projection, each with its own random generators), as ``deploy_network`` builds them in Lava."""
from __future__ import annotations

import numpy as np

from neurodeploy.compile.loihi import RNG_SEED
from neurodeploy.emu.closed_loop import LIF_DECAY_UNITY, LIF_DM_OFFSET, LIF_DS_OFFSET, LIF_VTH_SHIFT, Lif
from neurodeploy.emu.engine import CONN_VAR_SEED, _Engine, _kernel_covers, _rows
from neurodeploy.compile.loihi import check_sparse_start, lif_params, static_weights_lava
from neurodeploy.compile.reward import OnlineTraces, ThirdFactor
from neurodeploy.schedules import DistalReward, RateReward


# -- networks: LIF populations, plastic and static projections -----------------------------------
def dense_static_weights(w_lava: np.ndarray, fixed: bool) -> np.ndarray:
    """A static projection's weights as Lava's Dense model holds them while it runs."""
    if not fixed:
        return np.asarray(w_lava, dtype=float)
    from lava.utils.weightutils import clip_weights, determine_sign_mode, truncate_weights

    w = np.asarray(w_lava).astype(np.int32)
    sign_mode = determine_sign_mode(w)
    return truncate_weights(clip_weights(w, sign_mode, num_bits=8), sign_mode, 8).astype(np.int64)


class _SparseInput:
    """A ``LearningSparse`` connection's input to its neurons: ``weights[:, s_in].sum(axis=1).A1`` on
    the ``csr_matrix`` whose structure is the mask, the same scipy call as Lava's model (float: the
    summation order of a CSR row); the weights come from the dense engine each step."""

    def __init__(self, mask: np.ndarray):
        from scipy.sparse import csr_matrix

        rows, cols = np.nonzero(mask)
        self.rows, self.cols = rows, cols
        probe = csr_matrix((np.arange(rows.size, dtype=float) + 1, (rows, cols)), shape=mask.shape)
        self.indices, self.indptr = probe.indices.copy(), probe.indptr.copy()
        self.order = (probe.data - 1).astype(np.intp)  # csr position -> (rows, cols) position
        self.shape = mask.shape

    def __call__(self, w: np.ndarray, s_pre: np.ndarray) -> np.ndarray:
        from scipy.sparse import csr_matrix

        data = w[self.rows, self.cols][self.order]
        m = csr_matrix((data, self.indices, self.indptr), shape=self.shape)
        return np.asarray(m[:, s_pre].sum(axis=1)).reshape(-1)


#: The compiled path (:func:`_compiled_network`) where it applies; ``False`` runs every network
#: in the numpy loop below (the tests compare the two bit for bit).
COMPILED = True


def _third_factor_arrays(rule, plan, engine, schedule, n_lif: int, steps: int) -> tuple:
    """The network loop's three-factor arguments: the online y slots (:class:`OnlineTraces`' own slots:
    slot, decay, jump, post trace or reward, scale) and the reward schedule's (kind, integers, amount,
    delays, neurons counted, pending rewards (steps, n_lif)); empty without a third factor. The distal
    schedule's delays are drawn in advance from its generator, one per possible event (at most one a
    step), in one call: the same values its scalar draws give in turn (Generator.integers draws a bounded
    integer from the bit stream the same way either way; ``tests/test_network_lava.py`` checks it)."""
    from neurodeploy.emu import kernel

    slots = OnlineTraces(rule, plan, engine.n_post).slots if schedule is not None else []
    tf = (np.array([s[0] for s in slots], dtype=np.int64), np.array([s[1] for s in slots], dtype=float),
          np.array([s[2] for s in slots], dtype=float), np.array([s[3] for s in slots], dtype=np.bool_),
          np.array([s[4] for s in slots], dtype=float))
    kind = kernel.SCHEDULE_CODES[None if schedule is None else type(schedule).__name__]
    ints = np.zeros(6, dtype=np.int64)
    amount, delays, neurons = 0.0, np.zeros(0, dtype=np.int64), np.zeros(n_lif, dtype=np.bool_)
    if kind == 1:
        ints[:3] = schedule.pre, schedule.post, schedule.window
        amount = schedule.amount
        delays = np.random.default_rng(schedule.seed).integers(schedule.delay_min, schedule.delay_max + 1,
                                                                size=steps).astype(np.int64)
    elif kind == 2:
        ints[3:] = schedule.period, schedule.target, schedule.delay
        amount = schedule.amount
        neurons[schedule.neurons] = True
    pending = np.zeros((steps if kind else 0, n_lif), dtype=float)
    return tf, (kind, ints, float(amount), delays, neurons, pending)


def _compiled_network(rule, network, plan, w0, input_spikes, rng_seed, conn_seed, record_rows, state,
                      third_factor):
    """A fixed-point network with plastic projections onto one population (every synapse of each block)
    and any static projections and LIF populations, its rule one the compiled loops cover (one-step
    epochs; a tag; a third factor from a distal or rate reward schedule), run in
    :func:`neurodeploy.emu.kernel.fixed_network_loop`: the integer operations of the numpy loop of
    :func:`simulate_network`, in its order (the LIF steps, then each projection's buffered
    input, then the traces and the learning). ``None`` where it does not apply (and when ``state`` asks
    for the LIF state after the run, which the compiled loop keeps to itself)."""
    from neurodeploy.emu import kernel

    three = bool(getattr(plan, "three_factor", False))
    if kernel.numba is None or plan.mode != "fixed" or state is not None:
        return None
    if three != (third_factor is not None) or (three and type(third_factor) not in (DistalReward, RateReward)):
        return None  # a schedule of another kind (a subclass too: its own _observe) runs the numpy loop
    live = [pr for pr in network.projections if pr.mask.any()]
    plastic = [pr for pr in live if pr.plastic]
    if not plastic or any(not pr.mask.all() or pr.target != plastic[0].target for pr in plastic):
        return None  # every plastic projection all-to-all onto one population: side by side, one engine
    slices = [network.projection_slices(pr) for pr in plastic]
    t_rows = slices[0][0]
    src_cols = np.concatenate([np.arange(network.n_src)[s] for _, s in slices]).astype(np.int64)
    if np.unique(src_cols).size != src_cols.size:
        return None  # two plastic projections from one source
    col_of_src = np.full(network.n_src, -1, dtype=np.int64)
    col_of_src[src_cols] = np.arange(src_cols.size)
    inputs = np.asarray(input_spikes).astype(bool, copy=False)
    steps = inputs.shape[1]
    w0 = np.asarray(w0, dtype=float)
    blocks = []
    for pr, (tt, ss) in zip(plastic, slices):
        w_lava = plan.weights_to_lava(w0[tt, ss])
        check_sparse_start(network, pr, w_lava, plan, rule, w0[tt, ss])  # as deploy_network
        blocks.append(w_lava)
    w_lava = np.concatenate(blocks, axis=1)
    engine = _Engine(plan, w_lava, src_cols.size, w_lava.shape[0], steps, int(rng_seed), int(conn_seed))
    if engine.t_epoch != 1:
        return None
    covered = _kernel_covers(engine, network=True)
    if covered is None:
        return None
    arrays, x_on, y_on = covered
    tag_on = engine.tag is not None
    t_arrays = kernel.product_arrays(engine.tag_products, tag=True)
    if t_arrays is None:
        return None
    n_lif, n_src = network.n_lif, network.n_src
    fu, fv, vth = (np.zeros(n_lif, dtype=np.int64) for _ in range(3))
    for pop in network.lifs:
        params = lif_params(plan.mode, pop.tau_u_ms, pop.tau_v_ms, pop.threshold * rule.weight.range, plan,
                            dt=rule.dt * 1e3)
        lif = Lif(pop.n, params, True)
        fu[pop.targets] = LIF_DECAY_UNITY - (lif.du + LIF_DS_OFFSET)
        fv[pop.targets] = LIF_DECAY_UNITY - (lif.dv + LIF_DM_OFFSET)
        vth[pop.targets] = lif.vth >> LIF_VTH_SHIFT
    ws = np.zeros((n_lif, n_src), dtype=np.int64)
    for other in live:
        if not other.plastic:
            tt, ss = network.projection_slices(other)
            ws[tt, ss] += dense_static_weights(static_weights_lava(network, other, plan, rule), True)
    rows = _rows(steps, 1, record_rows)
    n_post, n_pre = engine.n_post, engine.n_pre
    rec = np.empty((rows.size, n_post * n_pre), dtype=float)
    spikes_t = np.zeros((steps, n_lif), dtype=np.bool_)
    w = np.ascontiguousarray(engine.w, dtype=np.int64)
    tag = np.ascontiguousarray(engine.tag if tag_on else np.zeros((0, 0)), dtype=np.int64)
    tf, sched = _third_factor_arrays(rule, plan, engine, third_factor, n_lif, steps)
    a, ta = arrays, t_arrays
    kernel.fixed_network_loop(w, np.ascontiguousarray(inputs.T), n_src, fu, fv, vth, ws, len(live) > 1,
                              t_rows.start, col_of_src, src_cols, x_on, y_on, engine.x_decay, engine.y_decay,
                              engine.x_int, engine.x_frac, engine.y_int, engine.y_frac,
                              engine.xr_dec, engine.xr_imp, engine.yr_dec, engine.yr_imp, engine.conn_r,
                              a["dep"], a["mant"], a["sexp"], a["shift"], a["nfac"], a["fac"], a["width"],
                              a["nw"], engine.w_lo, engine.w_hi, kernel.SIGN_CODES[engine.sign_mode],
                              0 if engine.decimate_exponent is None else 2 ** int(engine.decimate_exponent),
                              rows + 1, float(plan.weight_scale), rec, spikes_t, tag_on, tag,
                              ta["dep"], ta["mant"], ta["sexp"], ta["shift"], ta["nfac"], ta["fac"], ta["width"],
                              *tf, *sched)
    out = np.full((rows.size, n_lif, n_src), np.nan)
    out[:, t_rows, src_cols] = rec.reshape(rows.size, n_post, n_pre)
    return out, np.ascontiguousarray(spikes_t.T)


def simulate_network(rule, network, plan, w0: np.ndarray, input_spikes: np.ndarray, rng_seed: int = RNG_SEED,
                     conn_seed: int = CONN_VAR_SEED, record_rows=None, state: dict | None = None,
                     third_factor=None) -> tuple:
    """A network as ``lava-float``/``lava-fixed`` run it (:func:`neurodeploy.lava.deploy.deploy_network`):
    a :class:`Lif` per LIF population, an :class:`_Engine` per plastic projection (each Lava learning
    connection owns its random generators: every one seeded ``rng_seed`` and :data:`CONN_VAR_SEED`),
    static projections as Lava's Dense. Per step ``t``: each LIF integrates the sum of its incoming
    projections' buffered inputs (``0 + a_1 + a_2 + ...`` in the file's order; Lava's ``PyInPort.recv``
    reduces its connections in the order its compiler lists them, which with three inputs or more changes
    from run to run in float: ``find_processes`` walks a ``set`` of processes, so a float sum of three
    may differ from Lava's in its last bit; integers are exact) and spikes; each connection buffers this
    step's input from the sources' spikes (input rows and the LIF spikes of step ``t``), receives them and
    its target's spikes and learns at an epoch's end.

    ``w0`` (n_lif, n_src) rule units; ``input_spikes`` (n_inputs, steps). Returns ``(weights, spikes)``:
    plastic weights (len(record_rows) or steps, n_lif, n_src) rule units, NaN where there is no plastic
    synapse; the LIF spikes (n_lif, steps) bool. ``state``: a dict that receives ``"lifs"`` (population
    name -> its :class:`Lif` after the run: ``u``, ``v``; with ``third_factor`` also ``"reward"``, the
    schedule after the run: its ``events`` and ``pending`` rewards).

    ``third_factor`` (three-factor plans): a :class:`neurodeploy.compile.reward.RewardSchedule`; the post and
    reward traces every plastic projection receives are computed online from the step's LIF spikes and
    the schedule's reward (:class:`neurodeploy.compile.reward.ThirdFactor`), as the Lava deployment's
    ``RewardTraces`` processes compute them."""

    compiled = _compiled_network(rule, network, plan, w0, input_spikes, rng_seed, conn_seed, record_rows,
                                 state, third_factor) if COMPILED else None
    if compiled is not None:
        return compiled
    tf = None
    if getattr(plan, "three_factor", False):
        if third_factor is None:
            raise ValueError("networks: a three-factor rule needs a reward schedule (third_factor=) to compute "
                             "its post and reward traces online")
        tf = ThirdFactor(rule, plan, network, third_factor, np.asarray(input_spikes).shape[1])
    fixed = plan.mode == "fixed"
    inputs = np.asarray(input_spikes).astype(bool, copy=False)
    steps = inputs.shape[1]
    n_in, n_src, n_lif = network.n_inputs, network.n_src, network.n_lif
    lifs = {}
    for pop in network.lifs:
        params = lif_params(plan.mode, pop.tau_u_ms, pop.tau_v_ms, pop.threshold * rule.weight.range, plan,
                            dt=rule.dt * 1e3)
        lifs[pop.name] = Lif(pop.n, params, fixed)
    projections = []  # (projection, target slice within its population's rows, source slice, engine or weights, input)
    w0 = np.asarray(w0, dtype=float)
    for pr in network.projections:
        if not pr.mask.any():
            continue
        t, s = network.projection_slices(pr)
        if pr.plastic:
            w_lava = plan.weights_to_lava(np.where(pr.mask, w0[t, s], rule.weight.w_init))
            check_sparse_start(network, pr, w_lava, plan, rule, w0[t, s])  # as deploy_network
            engine = _Engine(plan, w_lava, pr.mask.shape[1], pr.mask.shape[0], steps, int(rng_seed), int(conn_seed))
            mask = pr.mask
            if mask.all():
                reduce = None
            elif fixed:  # integer sums: any order is exact; the absent synapses carry nothing
                reduce = (lambda m: lambda w, s_pre: (w[:, s_pre] * m[:, s_pre]).sum(axis=1))(mask.astype(np.int64))
            else:  # float: scipy's order, as Lava's LearningSparse
                reduce = _SparseInput(mask)
            projections.append((pr, s, engine, reduce, mask))
        else:
            weights = dense_static_weights(static_weights_lava(network, pr, plan, rule), fixed)
            projections.append((pr, s, weights, None, pr.mask))
    incoming = {name: [k for k, p in enumerate(projections) if p[0].target == name] for name in lifs}
    dtype = np.int64 if fixed else float
    a_buff = [np.zeros(p[0].mask.shape[0], dtype=dtype) for p in projections]
    rows = _rows(steps, 1, record_rows)
    out = np.full((rows.size, n_lif, n_src), np.nan)
    spikes = np.zeros((n_lif, steps), dtype=bool)
    inputs_t = np.ascontiguousarray(inputs.T)
    s_all = np.zeros(n_src, dtype=bool)
    ptr = 0
    for t in range(1, steps + 1):
        s_all[:n_in] = inputs_t[t - 1]
        for pop in network.lifs:
            a = np.zeros(pop.n, dtype=dtype)
            for k in incoming[pop.name]:
                a = a + a_buff[k]
            fired = lifs[pop.name].step(a)
            spikes[pop.targets, t - 1] = fired
            s_all[pop.sources] = fired
        for k, (pr, s, engine, reduce, mask) in enumerate(projections):
            s_pre = s_all[s]
            if not pr.plastic:
                a_buff[k] = engine[:, s_pre].sum(axis=1)
                continue
            w = engine.w
            a_buff[k] = w[:, s_pre].sum(axis=1) if reduce is None else reduce(w, s_pre)
            if tf is not None:
                engine.supplied_now = tf.supplied(pr, t - 1, spikes[:, t - 1])
            engine.spikes(t, s_pre, spikes[network.population(pr.target).targets, t - 1])
            if t % engine.t_epoch == 0:
                engine.learn(t)
        if tf is not None:
            tf.schedule.observe(t - 1, s_all, spikes[:, t - 1])
        if ptr < rows.size and t == rows[ptr] + 1:
            for pr, s, engine, reduce, mask in projections:
                if pr.plastic:
                    tt, _ = network.projection_slices(pr)
                    out[ptr, tt, s] = np.where(mask, engine.w * plan.weight_scale, np.nan)
            ptr += 1
    if state is not None:
        state["lifs"] = lifs
        if tf is not None:
            state["reward"] = tf.schedule
    return out, spikes


