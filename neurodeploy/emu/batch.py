"""The emulator's rounding ensembles: K seeds of the same run in one batched call (the members' random
streams side by side), each member equal to its single run bit for bit; the members can be spread over
threads or a Dask cluster (:mod:`neurodeploy.cluster`)."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from neurodeploy.emu.engine import CONN_VAR_SEED, W_TRACE, _Engine, _rows, _synapse_selection, simulate


#: Steps per call of the batched kernel: its random numbers are drawn chunk by chunk (memory O(chunk x K)).
BATCH_CHUNK = 32768


class _BatchStreams:
    """Per member the random streams :class:`_Engine` draws (``TraceRandom``: seeds s..s+3 advanced twice
    per step; ``ConnVarRandom``: once per epoch), drawn chunk by chunk, keeping what step t uses: the
    2t-th trace advance and the t-th connection random. Doubles drawn in pieces are the same
    sequence as drawn at once; the impulse randoms (bounded integers, buffered per call) are drawn
    at once, and only when an impulse has a fractional part (whole-number impulses never read them)."""

    def __init__(self, seeds, steps, fractional: bool):
        self.gens = [[np.random.default_rng(s), np.random.default_rng(s + 2), np.random.default_rng(c)]
                     for s, c in seeds]
        for g in self.gens:  # advance 0 and the conn random of epoch 0 are never read
            g[0].random(2)
            g[1].random(2)
            g[2].random(1)
        self.imp = None
        if fractional:
            n_adv = 2 * steps + 1
            self.imp = [(np.random.default_rng(s + 1).integers(0, 2 ** W_TRACE, size=n_adv, dtype=int)[2::2],
                         np.random.default_rng(s + 3).integers(0, 2 ** W_TRACE, size=n_adv, dtype=int)[2::2])
                        for s, _ in seeds]
        self.done = 0

    def next(self, n: int) -> tuple:
        k = len(self.gens)
        xd, yd, cr = np.empty((n, k)), np.empty((n, k)), np.empty((n, k))
        for m, (gx, gy, gc) in enumerate(self.gens):
            xd[:, m] = gx.random(2 * n)[::2]  # draws 2t (used) and 2t + 1 (unused here)
            yd[:, m] = gy.random(2 * n)[::2]
            cr[:, m] = gc.random(n)
        if self.imp is None:
            xi = yi = np.zeros((n, k), dtype=np.int64)
        else:
            xi = np.ascontiguousarray(np.stack([a[self.done:self.done + n] for a, _ in self.imp], axis=1))
            yi = np.ascontiguousarray(np.stack([b[self.done:self.done + n] for _, b in self.imp], axis=1))
        self.done += n
        return xd, xi, yd, yi, cr


#: Where :func:`simulate_batch` runs its members: None (this call), threads (an int) or a Dask client
#: (:mod:`neurodeploy.cluster`; ``cluster.use(...)`` sets it for a block).
BATCH_SPREAD = None


def simulate_batch(plan, w0_lava, pre, post, seeds, record_rows=None, record_synapses=None,
                   limits=None, supplied=None, spread=None) -> tuple:
    """``len(seeds)`` fixed-point runs of ``plan`` that differ only in their rounding seeds
    ``seeds`` = [(rng_seed, conn_seed), ...], in one pass over the spikes.

    Member ``k`` equals ``simulate(plan, w0_lava, pre, post, rng_seed=seeds[k][0],
    conn_seed=seeds[k][1], record_rows=record_rows, record_synapses=record_synapses)`` bit for bit.
    Returns ``(weights, first)``: ``weights`` int16 Lava units (K, len(record_rows), n_post, n_pre)
    (or (K, rows, n_selected)); ``first`` (n_post, n_pre): the first 0-based step at which any member's
    weight was at or beyond ``limits`` (default ``plan.w_lava_bounds``), ``steps`` if never.
    The compiled batch (:func:`neurodeploy.emu.kernel.fixed_batch_loop`) runs one-step epochs; other
    rules (and three-factor plans, whose ``supplied`` y traces go to every member) run member by member.
    ``spread``: threads (an int) or a Dask client to split the members over (:mod:`neurodeploy.cluster`;
    default :data:`BATCH_SPREAD`; False: here); the same result."""
    from neurodeploy.emu import kernel

    spread = BATCH_SPREAD if spread is None else spread
    if spread is not False and spread is not None and len(seeds) > 1:  # the members over threads or a cluster
        return spread_batch(spread, plan, w0_lava, pre, post, seeds, record_rows=record_rows,
                            record_synapses=record_synapses, limits=limits, supplied=supplied)
    pre = np.asarray(pre).astype(bool, copy=False)
    post = np.asarray(post).astype(bool, copy=False)
    n_pre, steps = pre.shape
    n_post = post.shape[0]
    rows = _rows(steps, 1, record_rows)
    sel = _synapse_selection(record_synapses, (n_post, n_pre))
    n_sel = n_post * n_pre if sel is None else sel.size
    lo, hi = plan.w_lava_bounds if limits is None else limits
    n_k = len(seeds)
    out = np.empty((n_k, rows.size, n_sel), dtype=np.int16)
    first = np.full((n_post, n_pre), steps, dtype=np.int64)
    # one engine for the rule's constants (its random streams are drawn per member below, in chunks)
    e0 = _Engine(plan, w0_lava, n_pre, n_post, 1, 0, CONN_VAR_SEED, "fixed") if seeds else None
    arrays = kernel.product_arrays(e0.products) if e0 is not None and kernel.numba is not None else None
    usable = (arrays is not None and e0.t_epoch == 1 and supplied is None and not getattr(plan, "three_factor", False)
              and getattr(e0, "tag", None) is None and not getattr(e0, "saturating", None)
              and not np.any(e0.x_tau[[k in e0.xs for k in range(2)]] == 0)
              and not np.any(e0.y_tau[[k in e0.ys for k in range(3)]] == 0))
    if usable:
        flat = np.zeros(0, dtype=np.int64) if sel is None else np.asarray(sel, dtype=np.int64) % (n_post * n_pre)
        rec_i, rec_j = np.divmod(flat, n_pre)
        w = np.ascontiguousarray(np.repeat(e0.w[:, :, None], n_k, axis=2).astype(np.int16))
        x = np.zeros((2, n_pre, n_k), dtype=np.int64)
        y = np.zeros((3, n_post, n_k), dtype=np.int64)
        a = arrays
        u_period = 0 if e0.decimate_exponent is None else 2 ** int(e0.decimate_exponent)
        pre_t, post_t = np.ascontiguousarray(pre.T), np.ascontiguousarray(post.T)
        streams = _BatchStreams(seeds, steps, bool(np.any(e0.x_frac) or np.any(e0.y_frac)))
        ptr = 0
        for t_first in range(1, steps + 1, BATCH_CHUNK):
            t_last = min(steps, t_first + BATCH_CHUNK - 1)
            xd, xi, yd, yi, cr = streams.next(t_last - t_first + 1)
            ptr = kernel.fixed_batch_loop(
                w, x, y, t_first, t_last, ptr, pre_t, post_t,
                np.array([k in e0.xs for k in range(2)]), np.array([k in e0.ys for k in range(3)]),
                e0.x_decay, e0.y_decay, e0.x_int, e0.x_frac, e0.y_int, e0.y_frac, xd, xi, yd, yi, cr,
                a["dep"], a["mant"], a["sexp"], a["shift"], a["nfac"], a["fac"], a["width"], a["nw"],
                e0.w_lo, e0.w_hi, kernel.SIGN_CODES[e0.sign_mode], u_period, int(lo), int(hi),
                rows + 1, rec_i, rec_j, out, first)
        # the kernel counts steps from 1
        first = np.where(first < steps, first - 1, steps)
    else:
        for k, (a, b) in enumerate(seeds):
            run = simulate(plan, w0_lava, pre, post, rng_seed=a, conn_seed=b, mode="fixed", supplied=supplied)
            at = ((run <= lo) | (run >= hi)).reshape(steps, -1)
            hit = np.where(at.any(axis=0), np.argmax(at, axis=0), steps).reshape(n_post, n_pre)
            first = np.minimum(first, hit)
            picked = run[rows].reshape(rows.size, -1)
            out[k] = picked if sel is None else picked[:, sel]
    shape = (n_k, rows.size, n_post, n_pre) if sel is None else (n_k, rows.size, n_sel)
    return out.reshape(shape), first


def groups(k: int, parts: int) -> list:
    """Seed index ranges of ``parts`` (at most ``k``) nearly equal groups, in order."""
    parts = max(1, min(int(parts), k))
    edges = np.linspace(0, k, parts + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:]) if b > a]


def _part(plan, w0_lava, pre, post, seeds, kwargs):
    return simulate_batch(plan, w0_lava, pre, post, seeds, spread=False, **kwargs)


def _workers(client) -> int:
    return max(1, sum(w.get("nthreads", 1) for w in client.scheduler_info()["workers"].values()))


def spread_batch(spread, plan, w0_lava, pre, post, seeds, **kwargs) -> tuple:
    """``simulate_batch(plan, w0_lava, pre, post, seeds, **kwargs)`` with its members split over
    ``spread`` (threads: an int; a ``distributed.Client``): the same (weights, first), bit for bit."""
    seeds = list(seeds)
    if isinstance(spread, (int, np.integer)):
        parts = groups(len(seeds), int(spread))
        with ThreadPoolExecutor(max_workers=len(parts)) as pool:
            results = list(pool.map(lambda g: _part(plan, w0_lava, pre, post, seeds[g[0]:g[1]], kwargs), parts))
    else:  # a Dask client: the big arrays go to every worker once
        client = spread
        parts = groups(len(seeds), _workers(client))
        big = client.scatter([np.asarray(w0_lava), np.asarray(pre), np.asarray(post)], broadcast=True)
        futures = [client.submit(_part, plan, big[0], big[1], big[2], seeds[a:b], kwargs, pure=False)
                   for a, b in parts]
        results = client.gather(futures)
    weights = np.concatenate([r[0] for r in results], axis=0)
    first = results[0][1]
    for r in results[1:]:
        first = np.minimum(first, r[1])
    return weights, first
