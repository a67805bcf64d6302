"""The emulator's closed loop: Loihi's fixed-point LIF (and Lava's float LIF) driven by the learning
connection, the post spikes made step by step, bit for bit as ``lava-fixed`` makes them."""
from __future__ import annotations

import numpy as np

from neurodeploy.compile.loihi import RNG_SEED
from neurodeploy.emu.engine import CONN_VAR_SEED, _Engine, _kernel_covers, _rows


# -- the closed loop: Lava's LIF driven by the learning connection ------------------------------
#: Loihi's fixed-point LIF (``lava.proc.lif.models.AbstractPyLifModelFixed``): 24-bit u and v,
#: 12-bit decays, input and threshold MSB-aligned by 6 bits; u decays by ``4096 - (du + 1)``.
LIF_UV_MAX = 2 ** 23


LIF_DECAY_SHIFT = 12


LIF_DECAY_UNITY = 2 ** LIF_DECAY_SHIFT


LIF_ACT_SHIFT = 6


LIF_VTH_SHIFT = 6


class Lif:
    """Lava 0.10.0's ``LIF`` process models, one step per call, bias 0 (as the closed loop builds them).

    ``float`` (``PyLifModelFloat``)::

        u = u (1 - du) + a;   v = v (1 - dv) + u;   spike if v > vth;   v[spike] = 0

    ``fixed`` (``PyLifModelBitAcc``), integers: ``u = sgn(u') (|u'| >> 12)`` with
    ``u' = u (4096 - du - 1)``, plus ``a << 6``, wrapped at 24 bits; ``v`` likewise with
    ``4096 - dv``, plus ``u``, clipped to ``[-2^23 + 1, 2^23 - 1]``; spike if ``v > vth << 6``.
    ``params``: :func:`neurodeploy.compile.loihi.lif_params` (du, dv, vth, bias_mant)."""

    def __init__(self, n: int, params: dict, fixed: bool):
        self.fixed = fixed
        if float(params.get("bias_mant", 0)) != 0:
            raise ValueError("the emulator's LIF has no bias (the closed loop sets bias_mant 0)")
        if fixed:
            self.u = np.zeros(n, dtype=np.int64)
            self.v = np.zeros(n, dtype=np.int64)
            self.du, self.dv = int(params["du"]), int(params["dv"])
            self.vth = int(params["vth"]) << LIF_VTH_SHIFT
        else:
            self.u = np.zeros(n, dtype=float)
            self.v = np.zeros(n, dtype=float)
            self.du, self.dv, self.vth = float(params["du"]), float(params["dv"]), float(params["vth"])

    @staticmethod
    def _decay(x, factor):
        d = x * factor
        return np.sign(d) * (np.abs(d) >> LIF_DECAY_SHIFT)

    def step(self, a: np.ndarray) -> np.ndarray:
        """One ``run_spk`` with input ``a`` (the dense connection's buffered ``a_out``); the spikes."""
        if self.fixed:
            u = self._decay(self.u, LIF_DECAY_UNITY - (self.du + LIF_DS_OFFSET))
            u = u + (np.asarray(a, dtype=np.int64) << LIF_ACT_SHIFT)
            u = np.where(u > LIF_UV_MAX, u - 2 * LIF_UV_MAX, u)
            u = np.where(u <= -LIF_UV_MAX, u + 2 * LIF_UV_MAX, u)
            self.u = u
            v = self._decay(self.v, LIF_DECAY_UNITY - (self.dv + LIF_DM_OFFSET)) + self.u
            self.v = np.clip(v, -LIF_UV_MAX + 1, LIF_UV_MAX - 1)
        else:
            self.u = self.u * (1 - self.du)
            self.u += a
            self.v = self.v * (1 - self.dv) + self.u + 0.0
        spikes = self.v > self.vth
        self.v[spikes] = 0
        return spikes


def simulate_closed_loop(plan, w0_lava, pre, neuron: dict, rng_seed: int = RNG_SEED, scale: float = 1.0,
                         conn_seed: int = CONN_VAR_SEED, record_rows=None) -> tuple:
    """The closed loop as ``lava-float``/``lava-fixed`` run it: the learning connection's ``a_out``
    drives a :class:`Lif` per postsynaptic neuron, whose spikes are the connection's ``s_in_bap``.

    Per step ``t`` (Lava's ``LearningDense`` and ``LIF`` models): the neuron integrates the
    connection's buffered input (the weights after the previous step's learning phase summed over
    the presynaptic neurons that spiked in step ``t - 1``; 0 at the first step) and spikes; the
    connection buffers this step's input, receives the pre and post spikes of step ``t`` and, at an
    epoch's end, learns. ``neuron``: :func:`neurodeploy.compile.loihi.lif_params` for ``plan.mode``.

    Returns ``(weights, post)``: weights (len(record_rows) or steps, n_post, n_pre) in Lava units
    times ``scale``, post spikes (n_post, steps) bool."""
    pre = np.asarray(pre).astype(bool, copy=False)
    n_pre, steps = pre.shape
    w0 = np.asarray(w0_lava)
    n_post = w0.shape[0]
    if getattr(plan, "three_factor", False):
        raise ValueError("closed loop: the supplied y traces of a three-factor rule need the post spikes in advance")
    engine = _Engine(plan, w0, n_pre, n_post, steps, int(rng_seed), int(conn_seed))
    lif = Lif(n_post, neuron, engine.fixed)
    rows = _rows(steps, 1, record_rows)
    out = np.empty((rows.size, n_post, n_pre), dtype=float)
    if _run_lif_kernel(engine, lif, pre, rows + 1, out, float(scale)):
        return out, engine.post_closed_loop
    post = np.zeros((n_post, steps), dtype=bool)
    pre_t = np.ascontiguousarray(pre.T)
    a_buff = np.zeros(n_post, dtype=np.int64 if engine.fixed else float)
    e, ptr = engine.t_epoch, 0
    for t in range(1, steps + 1):
        s_pre = pre_t[t - 1]
        spikes = lif.step(a_buff)
        post[:, t - 1] = spikes
        a_buff = engine.w[:, s_pre].sum(axis=1)  # Lava: weights[:, s_in].sum(axis=1), weight_exp 0
        engine.spikes(t, s_pre, spikes)
        if t % e == 0:
            engine.learn(t)
        if ptr < rows.size and t == rows[ptr] + 1:
            out[ptr] = engine.w
            ptr += 1
    if scale != 1.0:
        out *= scale
    return out, post


def _run_lif_kernel(engine, lif, pre, rec_t, out, scale) -> bool:
    """The closed loop in the compiled loop (fixed point, one-step epochs, the kernel's rules); sets
    ``engine.post_closed_loop`` (n_post, steps). False when the numpy loop must run it (float: Lava sums
    the input with numpy's pairwise summation, which the numpy loop reproduces to the bit)."""
    from neurodeploy.emu import kernel

    if kernel.numba is None or not engine.fixed or engine.t_epoch != 1:
        return False
    covered = _kernel_covers(engine)
    if covered is None:
        return False
    arrays, x_on, y_on = covered
    n_post, n_pre = engine.n_post, engine.n_pre
    pre_t = np.ascontiguousarray(pre.T)
    post_t = np.zeros((pre.shape[1], n_post), dtype=np.bool_)
    a = arrays
    empty = np.zeros(0, dtype=np.int64)
    w = np.ascontiguousarray(engine.w, dtype=np.int64)
    kernel.fixed_lif_loop(w, pre_t, post_t, x_on, y_on, engine.x_decay, engine.y_decay,
                          engine.x_int, engine.x_frac, engine.y_int, engine.y_frac,
                          engine.xr_dec, engine.xr_imp, engine.yr_dec, engine.yr_imp, engine.conn_r,
                          a["dep"], a["mant"], a["sexp"], a["shift"], a["nfac"], a["fac"], a["width"],
                          engine.w_lo, engine.w_hi, kernel.SIGN_CODES[engine.sign_mode],
                          0 if engine.decimate_exponent is None else 2 ** int(engine.decimate_exponent),
                          lif.du, lif.dv, lif.vth >> LIF_VTH_SHIFT, rec_t, empty, empty, scale,
                          out.reshape(out.shape[0], -1))
    engine.post_closed_loop = np.ascontiguousarray(post_t.T)
    return True


LIF_DS_OFFSET, LIF_DM_OFFSET = 1, 0
