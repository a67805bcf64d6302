"""Compiled (numba) inner loop of the emulator for the common case: one-step epochs.

Same arithmetic as :class:`neurodeploy.emu.engine._Engine`, the same operations
in the same order (compiled without fastmath: no fused multiply-adds, no
reassociation; the float loops equal the numpy path bit for bit on any CPU),
written as scalar loops that numba compiles, so a step costs what its spikes cost: traces decay
per neuron, and only synapses whose pre or post neuron spiked are updated
(for the others Lava's update is the identity). The engine uses it when the
rule has ``t_epoch == 1``, no bracket constants or ``sgn()`` factors and no
``tau == 0`` trace; otherwise it runs the numpy implementation.

With t_epoch = 1 every factor of a product whose dependency fired is the
trace's value after this step's decay and impulse (Lava's history index
``tx``/``ty`` is 1, and ``u`` products read the history's last row), which is
what the kernels read. At a step where ``u`` is 1 (every ``2^k``-th step for
``uk``; every step for ``u0``) every synapse is updated.
"""
from __future__ import annotations

import numpy as np

try:
    import numba
except ImportError:  # pragma: no cover - numba is a dependency; keep the numpy path usable without it
    numba = None

#: Factor codes: 0..1 pre traces x1, x2; 2..4 post traces y1, y2, y3; 5 the weight; 6 the tag (Lava's tag_1,
#: the network loop's only: :func:`product_arrays` ``tag=True``).
FACTOR_CODES = {"x1": 0, "x2": 1, "y1": 2, "y2": 3, "y3": 4, "w": 5}
TAG_CODE = 6
#: Reward schedules the network loop runs (:mod:`neurodeploy.schedules`): none, distal, rate.
SCHEDULE_CODES = {None: 0, "DistalReward": 1, "RateReward": 2}
#: Dependency codes: pre spike, post spike, every 2^k-th epoch (Lava's "u").
DEPENDENCY_CODES = {"x0": 0, "y0": 1, "u": 2}
ACC_MIN, ACC_MAX = -(2 ** 15) - 1, 2 ** 15 - 1


def _jit(fn):
    # fastmath off (numba's default, stated): no contraction of a * b + c into one FMA, no reassociation, no
    # approximate functions, so the float loops perform the numpy implementation's IEEE operations in its
    # order (no transcendental function runs here: the decays come in computed) and equal it bit for bit
    return numba.njit(cache=True, nogil=True, fastmath=False)(fn) if numba is not None else None


def _record_py(out, row, w, rec_i, rec_j, scale):
    """out[row] = w * scale at the recorded synapses (all of them when rec_i is empty)."""
    if rec_i.shape[0] == 0:
        n_pre = w.shape[1]
        for i in range(w.shape[0]):
            base = i * n_pre
            for j in range(n_pre):
                out[row, base + j] = np.float64(w[i, j]) * scale
    else:
        for s in range(rec_i.shape[0]):
            out[row, s] = np.float64(w[rec_i[s], rec_j[s]]) * scale


def _jit_inline(fn):
    # a per-synapse function inlined into its callers at numba's IR level (a call passing a dozen arrays
    # costs more than the update itself)
    return numba.njit(cache=True, nogil=True, fastmath=False, inline="always")(fn) if numba is not None else None


_record = _jit(_record_py)


def _mac_py(acc, i, j, xj, yi, u, x, y, wij, tij, dep, mant, sexp, shift, nfac, fac, width):
    """Lava's fixed-point multiply-accumulate of the products onto ``acc`` (a synapse variable << 7) for
    synapse (i, j): each product's clipped factors (the weight ``wij`` and the tag ``tij`` read as codes 5
    and 6) times its mantissa, the bits its width drops shifted out, saturated."""
    for p in range(dep.shape[0]):
        if (dep[p] == 0 and not xj) or (dep[p] == 1 and not yi) or (dep[p] == 2 and not u):
            continue
        cur = np.int64(1)
        for f in range(nfac[p]):
            code = fac[p, f]
            if code < 2:
                v = x[code, j]
            elif code < 5:
                v = y[code - 2, i]
            elif code == 5:
                v = wij
            else:
                v = tij
            v = min(max(v, -(1 << width[p, f])), (1 << width[p, f]) - 1)
            cur = cur * v
        cur = cur * mant[p]
        cur = (cur >> shift[p]) << sexp[p]
        cur = min(max(cur, ACC_MIN), ACC_MAX)
        acc = min(max(acc + cur, ACC_MIN), ACC_MAX)
    return acc


_mac = _jit_inline(_mac_py)


def _rounded_py(acc, r, lo, hi, sign_mode):
    """A synapse variable from its accumulator (the variable << 7): the sign mode's clamp, Lava's
    stochastic rounding of the low 7 bits with the epoch's random ``r``, then ``[lo, hi]``."""
    if sign_mode == 1:
        acc = max(acc, 0)
    elif sign_mode == -1:
        acc = min(acc, 0)
    new = (acc >> 7) + (1 if r < (acc & 127) / 128.0 else 0)
    return min(max(new, lo), hi)


_rounded = _jit_inline(_rounded_py)


def _fixed_synapse_py(w, i, j, xj, yi, u, x, y, r, dep, mant, sexp, shift, nfac, fac, width, w_lo, w_hi,
                      sign_mode):
    """Lava's fixed-point update of synapse (i, j) (post i, pre j) at an epoch end."""
    wij = np.int64(w[i, j])
    acc = _mac(wij << 7, i, j, xj, yi, u, x, y, wij, np.int64(0), dep, mant, sexp, shift, nfac, fac, width)
    w[i, j] = _rounded(acc, r, w_lo, w_hi, sign_mode)


def _float_synapse_py(w, i, j, xj, yi, u, x, y, dep, coef, nfac, fac, b_lo, b_hi, sign_mode, jx=-1, iy=-1):
    """Lava's float update of synapse (i, j), in its applier string's operation order (``jx``, ``iy``: the
    pre and post neuron when ``w[i, j]`` is a buffer's entry, not the matrix's)."""
    wij = w[i, j]
    if jx >= 0:
        j_w = j
        j = jx
    else:
        j_w = j
    if iy >= 0:
        i_w = i
        i = iy
    else:
        i_w = i
    total = 0.0
    for p in range(dep.shape[0]):
        d = 1.0 if ((dep[p] == 0 and xj) or (dep[p] == 1 and yi) or (dep[p] == 2 and u)) else 0.0
        term = coef[p] * d
        for f in range(nfac[p]):
            code = fac[p, f]
            if code < 2:
                term = term * x[code, j]
            elif code < 5:
                term = term * y[code - 2, i]
            else:
                term = term * wij
        total = term if p == 0 else total + term
    nw = wij + total
    if sign_mode == 1:
        nw = max(0.0, nw)
    elif sign_mode == -1:
        nw = min(0.0, nw)
    w[i_w, j_w] = min(max(nw, b_lo), b_hi)


_fixed_synapse = _jit_inline(_fixed_synapse_py)
_float_synapse = _jit_inline(_float_synapse_py)


def _fixed_traces_py(traces, on, decay, imp_int, imp_frac, r_decay, r_impulse, spiked):
    """One step of Lava's 7-bit traces: stochastic decay, then impulse (stochastic) and saturation."""
    for k in range(traces.shape[0]):
        if on[k]:
            for n in range(traces.shape[1]):
                v = decay[k] * traces[k, n]
                fl = np.floor(v)
                nv = np.int64(fl) + (1 if r_decay < v - fl else 0)
                if spiked[n]:
                    nv = min(max(nv + imp_int[k] + (1 if r_impulse < imp_frac[k] else 0), 0), 127)
                traces[k, n] = nv


def _float_traces_py(traces, on, decay, impulse, spiked):
    """One step of Lava's float traces: decay, then impulse."""
    for k in range(traces.shape[0]):
        if on[k]:
            for n in range(traces.shape[1]):
                v = decay[k] * traces[k, n]
                if spiked[n]:
                    v = v + impulse[k]
                traces[k, n] = v


_fixed_traces = _jit(_fixed_traces_py)
_float_traces = _jit(_float_traces_py)


def _fixed_step_py(w, pre_t, post_t, every, u, x, y, r, dep, mant, sexp, shift, nfac, fac, width, w_lo, w_hi,
                   sign_mode):
    """One step's weight updates: every synapse (``every``: the first epoch brings every weight into
    range; u products change every weight), else the synapses of the neurons that spiked (post first,
    then pre without post, so that no synapse is updated twice)."""
    n_post, n_pre = w.shape
    if every:
        for i in range(n_post):
            for j in range(n_pre):
                _fixed_synapse(w, i, j, pre_t[j], post_t[i], u, x, y, r, dep, mant, sexp, shift,
                               nfac, fac, width, w_lo, w_hi, sign_mode)
        return
    for i in range(n_post):
        if post_t[i]:
            for j in range(n_pre):
                _fixed_synapse(w, i, j, pre_t[j], True, False, x, y, r, dep, mant, sexp, shift, nfac,
                               fac, width, w_lo, w_hi, sign_mode)
    for j in range(n_pre):
        if pre_t[j]:
            for i in range(n_post):
                if not post_t[i]:
                    _fixed_synapse(w, i, j, True, False, False, x, y, r, dep, mant, sexp, shift, nfac, fac,
                                   width, w_lo, w_hi, sign_mode)


_fixed_step = _jit(_fixed_step_py)


def _fixed_loop(w, pre, post, x_on, y_on, x_decay, y_decay, x_int, x_frac, y_int, y_frac,
                xr_dec, xr_imp, yr_dec, yr_imp, conn_r,
                dep, mant, sexp, shift, nfac, fac, width, w_lo, w_hi, sign_mode, u_period,
                rec_t, rec_i, rec_j, scale, out):
    steps = pre.shape[0]
    ptr = 0
    n_pre = pre.shape[1]
    n_post = post.shape[1]
    x = np.zeros((2, n_pre), dtype=np.int64)
    y = np.zeros((3, n_post), dtype=np.int64)
    for t in range(1, steps + 1):
        a = 2 * t
        _fixed_traces(x, x_on, x_decay, x_int, x_frac, xr_dec[a], xr_imp[a], pre[t - 1])
        _fixed_traces(y, y_on, y_decay, y_int, y_frac, yr_dec[a], yr_imp[a], post[t - 1])
        r = conn_r[t]
        u = u_period > 0 and t % u_period == 0
        _fixed_step(w, pre[t - 1], post[t - 1], t == 1 or u, u, x, y, r, dep, mant, sexp, shift, nfac, fac, width,
                    w_lo, w_hi, sign_mode)
        if ptr < rec_t.shape[0] and t == rec_t[ptr]:
            _record(out, ptr, w, rec_i, rec_j, scale)
            ptr += 1
    return w


def _float_loop(w, pre, post, x_on, y_on, x_decay, y_decay, x_imp, y_imp,
                dep, coef, nfac, fac, b_lo, b_hi, sign_mode, u_period, rec_t, rec_i, rec_j, scale, out):
    steps = pre.shape[0]
    ptr = 0
    n_pre = pre.shape[1]
    n_post = post.shape[1]
    x = np.zeros((2, n_pre))
    y = np.zeros((3, n_post))
    col = np.zeros((n_post, 1))
    for t in range(1, steps + 1):
        _float_traces(x, x_on, x_decay, x_imp, pre[t - 1])
        _float_traces(y, y_on, y_decay, y_imp, post[t - 1])
        u = u_period > 0 and t % u_period == 0
        if t == 1 or u:
            for i in range(n_post):
                for j in range(n_pre):
                    _float_synapse(w, i, j, pre[t - 1, j], post[t - 1, i], u, x, y, dep, coef, nfac, fac, b_lo, b_hi,
                                   sign_mode)
        else:
            for i in range(n_post):
                if post[t - 1, i]:
                    for j in range(n_pre):
                        _float_synapse(w, i, j, pre[t - 1, j], True, False, x, y, dep, coef, nfac, fac, b_lo, b_hi,
                                       sign_mode)
            for j in range(n_pre):
                if pre[t - 1, j]:  # the column gathered, updated in place there, scattered back (see _fast_step)
                    for i in range(n_post):
                        col[i, 0] = w[i, j]
                    for i in range(n_post):
                        if not post[t - 1, i]:
                            _float_synapse(col, i, 0, True, False, False, x, y, dep, coef, nfac, fac, b_lo, b_hi,
                                           sign_mode, j, i)
                    for i in range(n_post):
                        w[i, j] = col[i, 0]
        if ptr < rec_t.shape[0] and t == rec_t[ptr]:
            _record(out, ptr, w, rec_i, rec_j, scale)
            ptr += 1
    return w


fixed_loop = _jit(_fixed_loop)
float_loop = _jit(_float_loop)


# -- the event-driven fixed-point loop: int16 weights, per-neuron factor parts, row sweeps ----------
def _fixed_parts_py(x, y, on_x, on_y, dep, nfac, fac, width, xpart, ypart):
    """Per product ``p`` the product of its clipped trace factors, split by side: ``xpart[p, j]`` over
    the pre traces of neuron j, ``ypart[p, i]`` over the post traces of neuron i (1 without any). A
    product's integer value is then ``xpart[p, j] * ypart[p, i] * clip(w)^n``: the same integers as
    :func:`_fixed_synapse` multiplies (products of at most 4 factors of at most 9 bits and a sign: no
    int64 overflow, so the order of the multiplications cannot change the result)."""
    for p in range(dep.shape[0]):
        for j in range(xpart.shape[1]):
            xpart[p, j] = 1
        for i in range(ypart.shape[1]):
            ypart[p, i] = 1
        for f in range(nfac[p]):
            code = fac[p, f]
            lo = -(np.int64(1) << width[p, f])
            hi = (np.int64(1) << width[p, f]) - 1
            if code < 2 and on_x:
                for j in range(xpart.shape[1]):
                    xpart[p, j] = xpart[p, j] * min(max(x[code, j], lo), hi)
            elif 2 <= code < 5 and on_y:
                for i in range(ypart.shape[1]):
                    ypart[p, i] = ypart[p, i] * min(max(y[code - 2, i], lo), hi)


_fixed_parts = _jit(_fixed_parts_py)


def _fast_value_py(wij, i, j, xj, yi, u, xpart, ypart, r, dep, mant, sexp, shift, nw, w_lo, w_hi, sign_mode):
    """The new weight of synapse (i, j) from ``wij`` (int64): :func:`_fixed_synapse`'s arithmetic with the
    trace factors read from the per-neuron parts (``nw[p]``: how many factors of product p are the
    weight, clipped to its 9 bits and a sign)."""
    acc = wij << 7
    for p in range(dep.shape[0]):
        if (dep[p] == 0 and not xj) or (dep[p] == 1 and not yi) or (dep[p] == 2 and not u):
            continue
        cur = xpart[p, j] * ypart[p, i]
        if nw[p] > 0:
            wc = min(max(wij, -512), 511)
            for _ in range(nw[p]):
                cur = cur * wc
        cur = cur * mant[p]
        cur = (cur >> shift[p]) << sexp[p]
        cur = min(max(cur, ACC_MIN), ACC_MAX)
        acc = min(max(acc + cur, ACC_MIN), ACC_MAX)
    return _rounded(acc, r, w_lo, w_hi, sign_mode)


_fast_value = _jit_inline(_fast_value_py)


def _fast_synapse_py(w, i, j, xj, yi, u, xpart, ypart, r, dep, mant, sexp, shift, nw, w_lo, w_hi, sign_mode):
    """Synapse (i, j) of the dense matrix ``w`` updated in place (:func:`_fast_value`)."""
    w[i, j] = _fast_value(np.int64(w[i, j]), i, j, xj, yi, u, xpart, ypart, r, dep, mant, sexp, shift, nw,
                          w_lo, w_hi, sign_mode)


_fast_synapse = _jit_inline(_fast_synapse_py)


def _fast_step_py(w, pre_t, post_t, every, u, xpart, ypart, r, dep, mant, sexp, shift, nw, w_lo, w_hi, sign_mode,
                  col):
    """One step's weight updates as :func:`_fixed_step` (each synapse at most once: the rows of the post
    neurons that spiked, then the columns of the pre neurons that spiked in the other rows; a column
    walk measured as fast as a row sweep here: ~10 ns an update, one cache line each, the latency of
    memory). Synapses do not interact within a step (traces are per neuron, the rounding random is one
    per step), so the order is free."""
    n_post, n_pre = w.shape
    if every:
        for i in range(n_post):
            for j in range(n_pre):
                _fast_synapse(w, i, j, pre_t[j], post_t[i], u, xpart, ypart, r, dep, mant, sexp, shift, nw,
                              w_lo, w_hi, sign_mode)
        return
    for i in range(n_post):
        if post_t[i]:
            for j in range(n_pre):
                _fast_synapse(w, i, j, pre_t[j], True, False, xpart, ypart, r, dep, mant, sexp, shift, nw,
                              w_lo, w_hi, sign_mode)
    for j in range(n_pre):
        if pre_t[j]:
            # the column in three passes: gather (independent loads, many cache misses in flight), update in
            # the buffer ``col``, scatter back (the lines are still in cache): memory latency overlapped
            for i in range(n_post):
                col[i] = w[i, j]
            for i in range(n_post):
                if not post_t[i]:
                    col[i] = _fast_value(col[i], i, j, True, False, False, xpart, ypart, r, dep, mant, sexp, shift,
                                         nw, w_lo, w_hi, sign_mode)
            for i in range(n_post):
                w[i, j] = col[i]


_fast_step = _jit(_fast_step_py)


def _fast_fixed_loop(w, pre, post, x_on, y_on, x_decay, y_decay, x_int, x_frac, y_int, y_frac,
                     xr_dec, xr_imp, yr_dec, yr_imp, conn_r,
                     dep, mant, sexp, shift, nfac, fac, width, nw, w_lo, w_hi, sign_mode, u_period,
                     rec_t, rec_i, rec_j, scale, out):
    """:func:`_fixed_loop` on ``w`` of any integer dtype (int16: 2 bytes a synapse), event-driven in
    memory order (:func:`_fast_step`); the same random draws and integers."""
    steps = pre.shape[0]
    ptr = 0
    n_pre = pre.shape[1]
    n_post = post.shape[1]
    n_p = dep.shape[0]
    x = np.zeros((2, n_pre), dtype=np.int64)
    y = np.zeros((3, n_post), dtype=np.int64)
    xpart = np.ones((n_p, n_pre), dtype=np.int64)
    ypart = np.ones((n_p, n_post), dtype=np.int64)
    col = np.zeros(n_post, dtype=np.int64)
    for t in range(1, steps + 1):
        a = 2 * t
        _fixed_traces(x, x_on, x_decay, x_int, x_frac, xr_dec[a], xr_imp[a], pre[t - 1])
        _fixed_traces(y, y_on, y_decay, y_int, y_frac, yr_dec[a], yr_imp[a], post[t - 1])
        _fixed_parts(x, y, True, True, dep, nfac, fac, width, xpart, ypart)
        r = conn_r[t]
        u = u_period > 0 and t % u_period == 0
        _fast_step(w, pre[t - 1], post[t - 1], t == 1 or u, u, xpart, ypart, r, dep, mant, sexp, shift, nw,
                   w_lo, w_hi, sign_mode, col)
        if ptr < rec_t.shape[0] and t == rec_t[ptr]:
            _record(out, ptr, w, rec_i, rec_j, scale)
            ptr += 1
    return w


fast_fixed_loop = _jit(_fast_fixed_loop)


def _sparse_fixed_loop(data, indptr, indices, col_ptr, col_rows, col_pos, n_pre, pre, post, x_on, y_on, x_decay,
                       y_decay, x_int, x_frac, y_int, y_frac, xr_dec, xr_imp, yr_dec, yr_imp, conn_r,
                       dep, mant, sexp, shift, nfac, fac, width, nw, w_lo, w_hi, sign_mode, u_period,
                       rec_t, rec_k, scale, out):
    """:func:`_fast_fixed_loop` on a sparse connection: only the present synapses, ``data`` (nnz,) in CSR
    order (``indptr``, ``indices``: row pointers and columns; ``col_ptr``, ``col_rows``, ``col_pos``: the
    same synapses by column, their rows and positions in ``data``). Memory and work O(present synapses):
    the rows of the post neurons that spiked, the columns of the pre neurons that spiked. ``rec_k``: the
    positions in ``data`` recorded at the steps ``rec_t``."""
    steps = pre.shape[0]
    n_post = post.shape[1]
    n_p = dep.shape[0]
    x = np.zeros((2, n_pre), dtype=np.int64)
    y = np.zeros((3, n_post), dtype=np.int64)
    xpart = np.ones((n_p, n_pre), dtype=np.int64)
    ypart = np.ones((n_p, n_post), dtype=np.int64)
    ptr = 0
    for t in range(1, steps + 1):
        a = 2 * t
        _fixed_traces(x, x_on, x_decay, x_int, x_frac, xr_dec[a], xr_imp[a], pre[t - 1])
        _fixed_traces(y, y_on, y_decay, y_int, y_frac, yr_dec[a], yr_imp[a], post[t - 1])
        _fixed_parts(x, y, True, True, dep, nfac, fac, width, xpart, ypart)
        r = conn_r[t]
        u = u_period > 0 and t % u_period == 0
        pre_s = pre[t - 1]
        post_s = post[t - 1]
        if t == 1 or u:
            for i in range(n_post):
                for k in range(indptr[i], indptr[i + 1]):
                    j = indices[k]
                    data[k] = _fast_value(np.int64(data[k]), i, j, pre_s[j], post_s[i], u, xpart, ypart, r, dep,
                                          mant, sexp, shift, nw, w_lo, w_hi, sign_mode)
        else:
            for i in range(n_post):
                if post_s[i]:
                    for k in range(indptr[i], indptr[i + 1]):
                        j = indices[k]
                        data[k] = _fast_value(np.int64(data[k]), i, j, pre_s[j], True, False, xpart, ypart, r,
                                              dep, mant, sexp, shift, nw, w_lo, w_hi, sign_mode)
            for j in range(n_pre):
                if pre_s[j]:
                    for q in range(col_ptr[j], col_ptr[j + 1]):
                        i = col_rows[q]
                        if not post_s[i]:
                            k = col_pos[q]
                            data[k] = _fast_value(np.int64(data[k]), i, j, True, False, False, xpart, ypart, r,
                                                  dep, mant, sexp, shift, nw, w_lo, w_hi, sign_mode)
        if ptr < rec_t.shape[0] and t == rec_t[ptr]:
            for s in range(rec_k.shape[0]):
                out[ptr, s] = np.float64(data[rec_k[s]]) * scale
            ptr += 1
    return data


sparse_fixed_loop = _jit(_sparse_fixed_loop)


def _fixed_lif_loop(w, pre, post, x_on, y_on, x_decay, y_decay, x_int, x_frac, y_int, y_frac,
                    xr_dec, xr_imp, yr_dec, yr_imp, conn_r,
                    dep, mant, sexp, shift, nfac, fac, width, w_lo, w_hi, sign_mode, u_period,
                    du, dv, vth, rec_t, rec_i, rec_j, scale, out):
    """:func:`_fixed_loop` in the closed loop: each step Lava's fixed-point LIF (``PyLifModelBitAcc``,
    bias 0; see :class:`neurodeploy.emu.closed_loop.Lif`) integrates the connection's buffered input and
    writes its spikes into ``post`` (steps, n_post), then the connection buffers this step's input
    (the weights before this step's update, summed over the pre neurons that spiked) and learns."""
    steps = pre.shape[0]
    ptr = 0
    n_pre = pre.shape[1]
    n_post = post.shape[1]
    x = np.zeros((2, n_pre), dtype=np.int64)
    y = np.zeros((3, n_post), dtype=np.int64)
    u_lif = np.zeros(n_post, dtype=np.int64)
    v_lif = np.zeros(n_post, dtype=np.int64)
    a_buff = np.zeros(n_post, dtype=np.int64)
    uv_max = np.int64(1) << 23
    fu = 4096 - (du + 1)
    fv = 4096 - dv
    vth_s = np.int64(vth) << 6
    for t in range(1, steps + 1):
        for i in range(n_post):
            d = u_lif[i] * fu
            d = (d >> 12) if d >= 0 else -((-d) >> 12)
            d = d + (a_buff[i] << 6)
            if d > uv_max:
                d -= 2 * uv_max
            elif d <= -uv_max:
                d += 2 * uv_max
            u_lif[i] = d
            e = v_lif[i] * fv
            e = (e >> 12) if e >= 0 else -((-e) >> 12)
            e = min(max(e + d, -uv_max + 1), uv_max - 1)
            spike = e > vth_s
            post[t - 1, i] = spike
            v_lif[i] = 0 if spike else e
            acc = np.int64(0)
            for j in range(n_pre):
                if pre[t - 1, j]:
                    acc += w[i, j]
            a_buff[i] = acc
        a = 2 * t
        _fixed_traces(x, x_on, x_decay, x_int, x_frac, xr_dec[a], xr_imp[a], pre[t - 1])
        _fixed_traces(y, y_on, y_decay, y_int, y_frac, yr_dec[a], yr_imp[a], post[t - 1])
        r = conn_r[t]
        u = u_period > 0 and t % u_period == 0
        _fixed_step(w, pre[t - 1], post[t - 1], t == 1 or u, u, x, y, r, dep, mant, sexp, shift, nfac, fac, width,
                    w_lo, w_hi, sign_mode)
        if ptr < rec_t.shape[0] and t == rec_t[ptr]:
            _record(out, ptr, w, rec_i, rec_j, scale)
            ptr += 1
    return w


fixed_lif_loop = _jit(_fixed_lif_loop)



#: Lava's tag_1 range (8 bits and a sign) after each update (:data:`neurodeploy.emu.engine.TAG_RANGE`).
TAG_LO, TAG_HI = -(2 ** 8) - 1, 2 ** 8 - 1


def _tag_step_py(w, tag, pre_t, post_t, u, x, y, r, dep, mant, sexp, shift, nfac, fac, width, tdep, tmant, tsexp,
                 tshift, tnfac, tfac, twidth, w_lo, w_hi, sign_mode):
    """One epoch of a rule with a tag: every synapse's tag and weight, both from the state before either
    (the engine's ``_update`` with a tag), the same rounding random for both; the tag is not sign-clamped."""
    n_post, n_pre = w.shape
    for i in range(n_post):
        for j in range(n_pre):
            wij = np.int64(w[i, j])
            tij = np.int64(tag[i, j])
            acc_t = _mac(tij << 7, i, j, pre_t[j], post_t[i], u, x, y, wij, tij, tdep, tmant, tsexp, tshift,
                         tnfac, tfac, twidth)
            tag[i, j] = _rounded(acc_t, r, TAG_LO, TAG_HI, 0)  # the tag: no sign clamp
            acc = _mac(wij << 7, i, j, pre_t[j], post_t[i], u, x, y, wij, tij, dep, mant, sexp, shift, nfac,
                       fac, width)
            w[i, j] = _rounded(acc, r, w_lo, w_hi, sign_mode)


_tag_step = _jit(_tag_step_py)


def _fixed_network_loop(w, inputs, n_src, lif_fu, lif_fv, lif_vth, ws, static_on, rows_lo, col_of_src, src_cols,
                        x_on, y_on, x_decay, y_decay, x_int, x_frac, y_int, y_frac,
                        xr_dec, xr_imp, yr_dec, yr_imp, conn_r,
                        dep, mant, sexp, shift, nfac, fac, width, nw, w_lo, w_hi, sign_mode, u_period,
                        rec_t, scale, out, spikes, tag_on, tag, tdep, tmant, tsexp, tshift, tnfac, tfac, twidth,
                        tf_slot, tf_a, tf_jump, tf_post, tf_scale, sched_kind, sched_int, sched_amount, sched_delays,
                        sched_neurons, pending):
    """:func:`_fixed_lif_loop` for a network (:func:`neurodeploy.emu.network.simulate_network`, fixed
    point): LIF neurons of any populations (``lif_fu``/``lif_fv``: each neuron's decay factors
    ``4096 - (du + 1)`` and ``4096 - dv``; ``lif_vth`` its threshold, unshifted), static projections as
    one (n_lif, n_src) integer matrix ``ws`` (``static_on``: there is one), and one plastic block, every
    synapse of it, ``w`` (n_post, n_pre) from the sources ``src_cols`` (``col_of_src``: each source's
    column, -1 for none) onto LIF rows ``rows_lo..``: one plastic projection, or several onto one
    population (Lava seeds every connection's generators alike, so their traces and rounding draw the
    same randoms: side by side they are one engine). Per step: every LIF integrates the sum of its buffered inputs and spikes (``spikes``
    (steps, n_lif)); every projection buffers the weights (before this step's update) summed over the
    sources that spiked this step (the inputs and the LIF neurons); the plastic projection's traces and
    weights learn (:func:`_fast_step`: the trace factors multiplied once per neuron, the same integers).
    Integer sums: the same in any order. ``out`` (rows, n_post * n_pre): the plastic weights times
    ``scale`` at the steps ``rec_t``.

    ``tag_on``: the rule has a tag ``tag`` (n_post, n_pre; its products ``t*``, factor code 6): every
    synapse learns every epoch (:func:`_tag_step`). Three-factor rules (``tf_slot`` not empty): the post
    side's y values computed online as :class:`neurodeploy.compile.reward.OnlineTraces` computes them
    (per slot ``tf_slot[k]``: ``v = v a + drive``, the drive the post spike or the step's reward times
    the jump, then ``clip(rint(v scale), -128, 127)``), written into y before its traces advance, as the
    engine receives them; the reward of 0-based step t is ``pending[t]`` (n_lif), which the schedule
    (``sched_kind``: :data:`SCHEDULE_CODES`) fills from each step's spikes at the step's end:
    distal (``sched_int``: pre source, post LIF, window; ``sched_delays``: the delays, in the order the
    events draw them) or rate (``sched_int[3:6]``: period, target, delay; ``sched_neurons``: the LIF
    neurons counted). Returns the number of rewards scheduled."""
    steps = inputs.shape[0]
    n_in = inputs.shape[1]
    n_lif = lif_fu.shape[0]
    n_post, n_pre = w.shape
    ptr = 0
    x = np.zeros((2, n_pre), dtype=np.int64)
    y = np.zeros((3, n_post), dtype=np.int64)
    u_lif = np.zeros(n_lif, dtype=np.int64)
    v_lif = np.zeros(n_lif, dtype=np.int64)
    a_static = np.zeros(n_lif, dtype=np.int64)
    a_plastic = np.zeros(n_post, dtype=np.int64)
    s_all = np.zeros(n_src, dtype=np.bool_)
    active = np.zeros(n_src, dtype=np.int64)
    pre = np.zeros(n_pre, dtype=np.bool_)
    n_p = dep.shape[0]
    xpart = np.ones((n_p, n_pre), dtype=np.int64)
    ypart = np.ones((n_p, n_post), dtype=np.int64)
    col = np.zeros(n_post, dtype=np.int64)
    n_tf = tf_slot.shape[0]
    tf_v = np.zeros((n_tf, n_post), dtype=np.float64)
    last_pre = np.int64(-1)
    count = np.int64(0)
    events = 0
    uv_max = np.int64(1) << 23
    for t in range(1, steps + 1):
        for j in range(n_in):
            s_all[j] = inputs[t - 1, j]
        for i in range(n_lif):
            a_in = a_static[i]
            if rows_lo <= i < rows_lo + n_post:
                a_in += a_plastic[i - rows_lo]
            d = u_lif[i] * lif_fu[i]
            d = (d >> 12) if d >= 0 else -((-d) >> 12)
            d = d + (a_in << 6)
            if d > uv_max:
                d -= 2 * uv_max
            elif d <= -uv_max:
                d += 2 * uv_max
            u_lif[i] = d
            e = v_lif[i] * lif_fv[i]
            e = (e >> 12) if e >= 0 else -((-e) >> 12)
            e = min(max(e + d, -uv_max + 1), uv_max - 1)
            spike = e > (np.int64(lif_vth[i]) << 6)
            spikes[t - 1, i] = spike
            s_all[n_in + i] = spike
            v_lif[i] = 0 if spike else e
        n_active = 0
        for k in range(n_src):
            if s_all[k]:
                active[n_active] = k
                n_active += 1
        if static_on:
            for i in range(n_lif):
                acc = np.int64(0)
                for q in range(n_active):
                    acc += ws[i, active[q]]
                a_static[i] = acc
        for i in range(n_post):
            acc = np.int64(0)
            for q in range(n_active):
                k = col_of_src[active[q]]
                if k >= 0:
                    acc += w[i, k]
            a_plastic[i] = acc
        for j in range(n_pre):
            pre[j] = s_all[src_cols[j]]
        post = spikes[t - 1, rows_lo:rows_lo + n_post]
        a = 2 * t
        if n_tf > 0:  # the post side's y values of this step replace the engine's y (zeros in unused slots)
            for k in range(3):
                for i in range(n_post):
                    y[k, i] = 0
            for k in range(n_tf):
                for i in range(n_post):
                    if tf_post[k]:
                        drive = np.float64(post[i]) * tf_jump[k]
                    else:
                        drive = pending[t - 1, rows_lo + i] * tf_jump[k]
                    tf_v[k, i] = tf_v[k, i] * tf_a[k] + drive
                    q = min(max(np.rint(tf_v[k, i] * tf_scale[k]), -128.0), 127.0)
                    y[tf_slot[k], i] = np.int64(q)
        _fixed_traces(x, x_on, x_decay, x_int, x_frac, xr_dec[a], xr_imp[a], pre)
        _fixed_traces(y, y_on, y_decay, y_int, y_frac, yr_dec[a], yr_imp[a], post)
        r = conn_r[t]
        u = u_period > 0 and t % u_period == 0
        if tag_on:
            _tag_step(w, tag, pre, post, u, x, y, r, dep, mant, sexp, shift, nfac, fac, width, tdep, tmant, tsexp,
                      tshift, tnfac, tfac, twidth, w_lo, w_hi, sign_mode)
        else:
            _fixed_parts(x, y, True, True, dep, nfac, fac, width, xpart, ypart)
            _fast_step(w, pre, post, t == 1 or u, u, xpart, ypart, r, dep, mant, sexp, shift, nw, w_lo, w_hi,
                       sign_mode, col)
        tt = t - 1
        if sched_kind == 1:  # DistalReward._observe
            if spikes[tt, sched_int[1]] and last_pre >= 0 and 1 <= tt - last_pre <= sched_int[2]:
                at = tt + sched_delays[events]
                events += 1
                if at < steps:
                    for i in range(n_lif):
                        pending[at, i] += sched_amount
            if s_all[sched_int[0]]:
                last_pre = tt
        elif sched_kind == 2:  # RateReward._observe
            for i in range(n_lif):
                if sched_neurons[i] and spikes[tt, i]:
                    count += 1
            if (tt + 1) % sched_int[3] == 0:
                if count > sched_int[4]:
                    at = tt + sched_int[5]
                    events += 1
                    if at < steps:
                        for i in range(n_lif):
                            pending[at, i] += sched_amount
                count = 0
        if ptr < rec_t.shape[0] and t == rec_t[ptr]:
            for i in range(n_post):
                base = i * n_pre
                for j in range(n_pre):
                    out[ptr, base + j] = np.float64(w[i, j]) * scale
            ptr += 1
    return events


fixed_network_loop = _jit(_fixed_network_loop)


def _batch_synapse_py(w, i, j, xj, yi, u, x, y, r, dep, mant, sexp, shift, nfac, fac, width, w_lo, w_hi,
                      sign_mode, b_lo, b_hi, first, t):
    """:func:`_fixed_synapse` for every member k of a batch (``w`` (n_post, n_pre, K) int16, traces
    (slots, neurons, K), ``r`` (K,)); ``first[i, j]``: the first step any member was at ``b_lo``/``b_hi``."""
    for k in range(w.shape[2]):
        wij = np.int64(w[i, j, k])
        acc = wij << 7
        for p in range(dep.shape[0]):
            if (dep[p] == 0 and not xj) or (dep[p] == 1 and not yi) or (dep[p] == 2 and not u):
                continue
            cur = np.int64(1)
            for f in range(nfac[p]):
                code = fac[p, f]
                if code < 2:
                    v = x[code, j, k]
                elif code < 5:
                    v = y[code - 2, i, k]
                else:
                    v = wij
                v = min(max(v, -(1 << width[p, f])), (1 << width[p, f]) - 1)
                cur = cur * v
            cur = cur * mant[p]
            cur = (cur >> shift[p]) << sexp[p]
            cur = min(max(cur, ACC_MIN), ACC_MAX)
            acc = min(max(acc + cur, ACC_MIN), ACC_MAX)
        if sign_mode == 1:
            acc = max(acc, 0)
        elif sign_mode == -1:
            acc = min(acc, 0)
        nw = (acc >> 7) + (1 if r[k] < (acc & 127) / 128.0 else 0)
        nw = min(max(nw, w_lo), w_hi)
        w[i, j, k] = nw
        if (nw <= b_lo or nw >= b_hi) and first[i, j] > t:
            first[i, j] = t


_batch_synapse = _jit_inline(_batch_synapse_py)


def _batch_traces_py(traces, on, decay, imp_int, imp_frac, r_decay, r_impulse, spiked):
    """:func:`_fixed_traces` for every member: ``traces`` (slots, neurons, K), randoms (K,)."""
    for k in range(traces.shape[0]):
        if on[k]:
            for n in range(traces.shape[1]):
                for m in range(traces.shape[2]):
                    v = decay[k] * traces[k, n, m]
                    fl = np.floor(v)
                    nv = np.int64(fl) + (1 if r_decay[m] < v - fl else 0)
                    if spiked[n]:
                        nv = min(max(nv + imp_int[k] + (1 if r_impulse[m] < imp_frac[k] else 0), 0), 127)
                    traces[k, n, m] = nv


_batch_traces = _jit(_batch_traces_py)


def _batch_parts_py(x, y, dep, nfac, fac, width, xpart, ypart):
    """:func:`_fixed_parts` for every member: traces (slots, neurons, K), parts (products, neurons, K)."""
    for p in range(dep.shape[0]):
        xpart[p] = 1
        ypart[p] = 1
        for f in range(nfac[p]):
            code = fac[p, f]
            lo = -(np.int64(1) << width[p, f])
            hi = (np.int64(1) << width[p, f]) - 1
            if code < 2:
                for j in range(xpart.shape[1]):
                    for k in range(xpart.shape[2]):
                        xpart[p, j, k] = xpart[p, j, k] * min(max(x[code, j, k], lo), hi)
            elif code < 5:
                for i in range(ypart.shape[1]):
                    for k in range(ypart.shape[2]):
                        ypart[p, i, k] = ypart[p, i, k] * min(max(y[code - 2, i, k], lo), hi)


_batch_parts = _jit(_batch_parts_py)


def _batch_fast_synapse_py(w, i, j, xj, yi, u, xpart, ypart, rq, dep, mant, sexp, shift, nw, w_lo, w_hi,
                           sign_mode, b_lo, b_hi, first, t, acc):
    """:func:`_batch_synapse` with the members innermost (loops over K without branches, which the
    compiler vectorizes) and the trace factors from the per-neuron parts (:func:`_batch_parts`); ``acc``
    (K,) a buffer; ``rq`` (K,) each member's rounding random as ``floor(128 r)`` (:func:`_round_thresholds`:
    ``r < f / 128`` is ``f > floor(128 r)`` for the whole numbers f = 0..127, so the rounding is integer
    only). The same integers: products of at most four clipped factors and the mantissa, exact in int64 in
    any order."""
    n_k = w.shape[2]
    for k in range(n_k):
        acc[k] = np.int64(w[i, j, k]) << 7
    for p in range(dep.shape[0]):
        if (dep[p] == 0 and not xj) or (dep[p] == 1 and not yi) or (dep[p] == 2 and not u):
            continue
        m = mant[p]
        sh = shift[p]
        se = sexp[p]
        if nw[p] == 0:
            for k in range(n_k):
                cur = xpart[p, j, k] * ypart[p, i, k] * m
                cur = min(max((cur >> sh) << se, ACC_MIN), ACC_MAX)
                acc[k] = min(max(acc[k] + cur, ACC_MIN), ACC_MAX)
        else:
            for k in range(n_k):
                wc = min(max(np.int64(w[i, j, k]), -512), 511)
                cur = xpart[p, j, k] * ypart[p, i, k]
                for _ in range(nw[p]):
                    cur = cur * wc
                cur = cur * m
                cur = min(max((cur >> sh) << se, ACC_MIN), ACC_MAX)
                acc[k] = min(max(acc[k] + cur, ACC_MIN), ACC_MAX)
    a_lo = ACC_MIN if sign_mode != 1 else 0
    a_hi = ACC_MAX if sign_mode != -1 else 0
    hit = 0
    for k in range(n_k):
        a = min(max(acc[k], a_lo), a_hi)
        nwk = (a >> 7) + ((a & 127) > rq[k])
        nwk = min(max(nwk, w_lo), w_hi)
        w[i, j, k] = nwk
        hit |= (nwk <= b_lo) | (nwk >= b_hi)
    if hit and first[i, j] > t:
        first[i, j] = t


_batch_fast_synapse = _jit_inline(_batch_fast_synapse_py)


def _fixed_batch_loop(w, x, y, t_first, t_last, ptr, pre, post, x_on, y_on, x_decay, y_decay, x_int, x_frac, y_int,
                      y_frac, xr_dec, xr_imp, yr_dec, yr_imp, conn_r,
                      dep, mant, sexp, shift, nfac, fac, width, nw, w_lo, w_hi, sign_mode, u_period,
                      b_lo, b_hi, rec_t, rec_i, rec_j, out, first):
    """K fixed-point runs that differ only in their random streams, in one pass over the spikes, for
    steps ``t_first .. t_last`` (1-based; the state ``w`` (n_post, n_pre, K), traces ``x``, ``y``
    (slots, neurons, K) carries over between calls). Row ``t - t_first`` of ``xr_dec`` ... ``conn_r``
    (chunk, K) holds the randoms of step t: the 2t-th trace advances and the t-th ``ConnVarRandom``.
    ``out`` (K, len(rec_t), len(rec_i)) int16 Lava units; returns the next row to record."""
    n_pre = pre.shape[1]
    n_post = post.shape[1]
    n_k = w.shape[2]
    n_p = dep.shape[0]
    xpart = np.ones((n_p, n_pre, n_k), dtype=np.int64)
    ypart = np.ones((n_p, n_post, n_k), dtype=np.int64)
    acc = np.zeros(n_k, dtype=np.int64)
    rq = np.zeros(n_k, dtype=np.int64)
    for t in range(t_first, t_last + 1):
        c = t - t_first
        _batch_traces(x, x_on, x_decay, x_int, x_frac, xr_dec[c], xr_imp[c], pre[t - 1])
        _batch_traces(y, y_on, y_decay, y_int, y_frac, yr_dec[c], yr_imp[c], post[t - 1])
        _batch_parts(x, y, dep, nfac, fac, width, xpart, ypart)
        for k in range(n_k):  # r < f / 128 for f = 0..127 is f > floor(128 r) (128 r is exact)
            rq[k] = np.int64(np.floor(conn_r[c, k] * 128.0))
        r = rq
        u = u_period > 0 and t % u_period == 0
        if t == 1 or u:
            for i in range(n_post):
                for j in range(n_pre):
                    _batch_fast_synapse(w, i, j, pre[t - 1, j], post[t - 1, i], u, xpart, ypart, r, dep, mant, sexp,
                                        shift, nw, w_lo, w_hi, sign_mode, b_lo, b_hi, first, t, acc)
        else:
            for i in range(n_post):
                if post[t - 1, i]:
                    for j in range(n_pre):
                        _batch_fast_synapse(w, i, j, pre[t - 1, j], True, False, xpart, ypart, r, dep, mant, sexp, shift,
                                            nw, w_lo, w_hi, sign_mode, b_lo, b_hi, first, t, acc)
            for j in range(n_pre):
                if pre[t - 1, j]:
                    for i in range(n_post):
                        if not post[t - 1, i]:
                            _batch_fast_synapse(w, i, j, True, False, False, xpart, ypart, r, dep, mant, sexp, shift, nw,
                                                w_lo, w_hi, sign_mode, b_lo, b_hi, first, t, acc)
        if ptr < rec_t.shape[0] and t == rec_t[ptr]:
            if rec_i.shape[0] == 0:
                for i in range(n_post):
                    for j in range(n_pre):
                        for k in range(n_k):
                            out[k, ptr, i * n_pre + j] = w[i, j, k]
            else:
                for s in range(rec_i.shape[0]):
                    for k in range(n_k):
                        out[k, ptr, s] = w[rec_i[s], rec_j[s], k]
            ptr += 1
    return ptr


fixed_batch_loop = _jit(_fixed_batch_loop)


SIGN_CODES = {"excitatory": 1, "mixed": 0, "inhibitory": -1}


def product_arrays(products, tag: bool = False):
    """Kernel arrays for the engine's products, or None when a product needs the numpy path (``tag``: the
    tag may be a factor, code :data:`TAG_CODE`: the network loop's products only)."""
    n = len(products)
    dep = np.zeros(n, dtype=np.int64)
    mant = np.zeros(n, dtype=np.int64)
    sexp = np.zeros(n, dtype=np.int64)
    shift = np.zeros(n, dtype=np.int64)
    nfac = np.zeros(n, dtype=np.int64)
    fac = np.zeros((n, 4), dtype=np.int64)
    width = np.zeros((n, 4), dtype=np.int64)
    coef = np.zeros(n, dtype=float)
    nw = np.zeros(n, dtype=np.int64)
    for p, product in enumerate(products):
        if len(product.factors) > 4:
            return None
        if product.dependency not in DEPENDENCY_CODES:
            return None
        dep[p] = DEPENDENCY_CODES[product.dependency]
        mant[p], sexp[p], coef[p] = product.mantissa, product.s_exp, product.coefficient
        widths = 0
        for f, (name, const, sgn) in enumerate(product.factors):
            if const is not None or sgn or not (name in FACTOR_CODES or (tag and name == "t")):
                return None
            fac[p, f] = TAG_CODE if name == "t" else FACTOR_CODES[name]
            nw[p] += name == "w"
            width[p, f] = 9 if name in ("w", "t") else 7
            widths += width[p, f]
        nfac[p] = len(product.factors)
        shift[p] = max(0, widths + 4 - 15)
    return {"dep": dep, "mant": mant, "sexp": sexp, "shift": shift, "nfac": nfac, "fac": fac,
            "width": width, "coef": coef, "nw": nw}
