"""``emu-fixed`` on a sparse connection: memory and work O(present synapses).

The dense emulator (:func:`neurodeploy.emu.engine.simulate`) holds every synapse of the
(n_post, n_pre) matrix; a masked connection of 10^8 present synapses at 10 % density would be
10^9 of them. Here only the present synapses are held (int16, CSR order, plus an int32 column
index and a by-column view: 2 + 4 + 8 bytes a synapse) and a step updates those of the rows of the
post neurons that spiked and of the columns of the pre neurons that spiked, with the dense compiled
loop's arithmetic (:func:`neurodeploy.emu.kernel.sparse_fixed_loop`). Synapses do not interact (the
traces are per neuron, the stochastic rounding draws one number per step for all), so each present
synapse follows the dense run's trajectory bit for bit (``tests/test_event_driven.py``).

Fixed point, one-step epochs and the kernel's rules (no tag, no three-factor plans, no tau = 0
trace); other rules raise ``NotImplementedError``.
"""
from __future__ import annotations

import numpy as np

from neurodeploy.emu.engine import CONN_VAR_SEED, _Engine, _kernel_covers, _rows
from neurodeploy.compile.loihi import RNG_SEED


class SparseConnection:
    """The present synapses (``rows``, ``cols``: post and pre index per synapse, any order) of an
    (n_post, n_pre) connection, in CSR order with a by-column view."""

    def __init__(self, rows, cols, n_post: int, n_pre: int):
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        cols = np.asarray(cols, dtype=np.int64).reshape(-1)
        if rows.shape != cols.shape:
            raise ValueError(f"rows {rows.shape} and cols {cols.shape} must have one entry per synapse")
        if rows.size and (rows.min() < 0 or rows.max() >= n_post or cols.min() < 0 or cols.max() >= n_pre):
            raise ValueError(f"synapse indices out of range for {n_post}x{n_pre}")
        flat = rows * n_pre + cols
        if flat.size < 2 or bool(np.all(flat[1:] > flat[:-1])):
            order = np.arange(flat.size)  # already in CSR order (by row, then column)
        else:
            order = np.argsort(flat, kind="stable")
            flat = flat[order]
            if np.any(flat[1:] == flat[:-1]):
                raise ValueError("a synapse is listed twice")
        del flat
        self.n_post, self.n_pre, self.nnz = int(n_post), int(n_pre), int(rows.size)
        self.order = order  # CSR position -> given position
        self.position = np.empty_like(order)
        self.position[order] = np.arange(order.size)  # given position -> CSR position
        self.indices = cols[order].astype(np.int32)
        self.indptr = np.zeros(n_post + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=n_post), out=self.indptr[1:])
        by_col = np.argsort(self.indices, kind="stable")  # CSR positions by column (then row: stable)
        self.col_pos = by_col.astype(np.int64)
        self.col_rows = rows[order][by_col].astype(np.int32)
        self.col_ptr = np.zeros(n_pre + 1, dtype=np.int64)
        np.cumsum(np.bincount(cols, minlength=n_pre), out=self.col_ptr[1:])

    @classmethod
    def from_mask(cls, mask):
        mask = np.asarray(mask, dtype=bool)
        rows, cols = np.nonzero(mask)
        return cls(rows, cols, *mask.shape)

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.indices, self.indptr, self.col_pos, self.col_rows, self.col_ptr))


def simulate_sparse(plan, conn: SparseConnection, w0_lava, pre, post, rng_seed: int = RNG_SEED,
                    conn_seed: int = CONN_VAR_SEED, record_rows=None, record_synapses=None,
                    scale: float = 1.0) -> np.ndarray:
    """Lava's fixed-point learning on the present synapses of ``conn``; ``w0_lava`` (nnz,) their initial
    weights (Lava units) in ``conn``'s given order; ``pre`` (n_pre, steps), ``post`` (n_post, steps).

    Returns float64 weights times ``scale``, (len(record_rows), len(record_synapses)): the weights after
    the 0-based steps ``record_rows`` (default: the last) of the synapses at the positions
    ``record_synapses`` of the given order (default: all), equal to the dense emulator's."""
    from neurodeploy.emu import kernel

    pre = np.asarray(pre).astype(bool, copy=False)
    post = np.asarray(post).astype(bool, copy=False)
    steps = pre.shape[1]
    if pre.shape[0] != conn.n_pre or post.shape[0] != conn.n_post or post.shape[1] != steps:
        raise ValueError(f"pre {pre.shape} and post {post.shape} do not fit a {conn.n_post}x{conn.n_pre} connection")
    if plan.mode != "fixed" or kernel.numba is None:
        raise NotImplementedError("the sparse emulator runs fixed-point plans with numba")
    # the rule's constants and random streams (neither depends on the synapses)
    engine = _Engine(plan, np.zeros((1, 1)), 1, 1, steps, int(rng_seed), int(conn_seed))
    covered = _kernel_covers(engine) if engine.t_epoch == 1 else None
    if covered is None:
        raise NotImplementedError("the sparse emulator runs one-step epochs of the compiled loop's rules")
    arrays, x_on, y_on = covered
    w = np.asarray(w0_lava).reshape(-1)
    if w.size != conn.nnz:
        raise ValueError(f"w0_lava has {w.size} values, the connection {conn.nnz} synapses")
    data = w[conn.order].astype(np.int32).astype(np.int64)
    if engine.sign_mode == "mixed":  # truncate_weights at the first run_spk
        data = (data >> 1) << 1
    data = np.ascontiguousarray(data.astype(np.int16))
    rows = _rows(steps, 1, [steps - 1] if record_rows is None else record_rows)
    picked = np.arange(conn.nnz) if record_synapses is None else np.asarray(record_synapses, dtype=np.int64)
    rec_k = conn.position[picked].astype(np.int64)
    out = np.empty((rows.size, rec_k.size), dtype=float)
    a = arrays
    u_period = 0 if engine.decimate_exponent is None else 2 ** int(engine.decimate_exponent)
    kernel.sparse_fixed_loop(data, conn.indptr, conn.indices, conn.col_ptr, conn.col_rows, conn.col_pos, conn.n_pre,
                             np.ascontiguousarray(pre.T), np.ascontiguousarray(post.T), x_on, y_on,
                             engine.x_decay, engine.y_decay, engine.x_int, engine.x_frac, engine.y_int, engine.y_frac,
                             engine.xr_dec, engine.xr_imp, engine.yr_dec, engine.yr_imp, engine.conn_r,
                             a["dep"], a["mant"], a["sexp"], a["shift"], a["nfac"], a["fac"], a["width"], a["nw"],
                             engine.w_lo, engine.w_hi, kernel.SIGN_CODES[engine.sign_mode], u_period,
                             rows + 1, rec_k, float(scale), out)
    return out
