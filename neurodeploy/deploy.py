"""Deploy a rule into your own Lava network.

:func:`deploy` compiles a rule for Lava's learning engine and returns a
:class:`Deployment`: the connection process to wire into a network
(``s_in`` <- presynaptic spikes, ``a_out`` -> postsynaptic neurons,
``s_in_bap`` <- postsynaptic spikes), the run configuration that selects the
right models, and converters between rule units and Lava units::

    d = deploy("stdp_pair.yaml", shape=(n_post, n_pre), mode="fixed", traffic=10.0)
    source.s_out.connect(d.conn.s_in)
    neurons.s_out.connect(d.conn.s_in_bap)
    d.conn.run(condition=RunSteps(num_steps=200), run_cfg=d.run_cfg())
    w = d.weights()                    # rule units, from conn.weights.get()
    d.conn.stop()

The verify backends ``lava-float`` and ``lava-fixed`` (closed loop too) build
their connection with :meth:`Deployment.from_plan` and their LIF with
:func:`lif_params`: what is deployed is what was verified.

``traffic`` is what the fixed-point trace scales assume: each trace impulse is
chosen so that the trace's peak on that traffic stays within 90% of the 7-bit
range (127). Traffic much denser than assumed saturates the traces.
"""
from __future__ import annotations

import math
import numbers
import os
from dataclasses import dataclass

import numpy as np

from neurodeploy.errors import NeurodeployError, UnsupportedError

#: Seed of the learning rule's random generators (stochastic rounding) in fixed point.
RNG_SEED = 7
MODES = ("float", "fixed")
#: mode -> Lava's select_tag
SELECT_TAGS = {"float": "floating_pt", "fixed": "fixed_pt"}
#: Loihi's fixed-point LIF: decays are 12-bit fractions.
DECAY_UNITY = 4096
#: A trace at this value is saturated (7 bits).
TRACE_SATURATION = 127
#: Largest seed of the stochastic rounding (as a network file's seed).
MAX_RNG_SEED = 2 ** 32 - 1


# -- arguments ---------------------------------------------------------------------------------
def check_rng_seed(rng_seed, source: str = "deploy") -> int:
    """``rng_seed`` as an int: a whole number 0..MAX_RNG_SEED (not a bool); one line otherwise, before
    Lava starts (its child process would raise at ``run`` and ``stop`` would hang)."""
    if isinstance(rng_seed, bool) or not isinstance(rng_seed, numbers.Integral) or not 0 <= rng_seed <= MAX_RNG_SEED:
        raise NeurodeployError(source, "rng_seed", f"must be a whole number from 0 to {MAX_RNG_SEED} (got {rng_seed!r})")
    return int(rng_seed)


def check_steps(steps, field_name: str, source: str = "deploy", most: int | None = None) -> int:
    """``steps`` as an int: a whole number >= 1 (not a bool), at most ``most``."""
    if isinstance(steps, bool) or not isinstance(steps, numbers.Integral) or steps < 1:
        raise NeurodeployError(source, field_name, f"must be a whole number >= 1 (got {steps!r})")
    if most is not None and steps > most:
        raise NeurodeployError(source, field_name, f"must be at most {most:,} (got {int(steps):,})")
    return int(steps)


def _real(value, source: str, field_name: str, what: str = "a finite number") -> float:
    """``value`` as a float: a finite real number (not a bool, not text, not complex, not beyond a float)."""
    try:
        number = float(value) if isinstance(value, numbers.Real) and not isinstance(value, bool) else math.nan
    except OverflowError:  # an int beyond 1e308
        number = math.inf
    if not math.isfinite(number):
        raise NeurodeployError(source, field_name, f"must be {what} (got {value!r})")
    return number


def _real_array(value, source: str, field_name: str, what: str) -> np.ndarray:
    """``value`` as a float array: numbers only (no bools, text, complex or objects); one line otherwise."""
    if isinstance(value, (bool, np.bool_)):
        raise NeurodeployError(source, field_name, f"must be {what} (got {value!r})")
    try:
        a = np.asarray(value)
    except (ValueError, TypeError):  # ragged nested lists
        raise NeurodeployError(source, field_name, f"must be {what} (got {type(value).__name__})") from None
    if a.dtype.kind not in "iuf":
        got = repr(value) if a.ndim == 0 else f"an array of dtype {a.dtype}"
        raise NeurodeployError(source, field_name, f"must be {what} (got {got})")
    return a.astype(float)


def check_block(shape: tuple, source: str, field_name: str, what: str = "(n_post, n_pre)") -> None:
    """Refuse a dense weight block ``shape`` beyond :data:`neurodeploy.network.MAX_BLOCK` entries (as a
    network file does), with its size, before anything is allocated."""
    from neurodeploy.network import MAX_BLOCK

    entries = int(shape[0]) * int(shape[1])
    if entries > MAX_BLOCK:
        raise NeurodeployError(source, field_name, f"{int(shape[0]):,} x {int(shape[1]):,} = {entries:,} weights "
                                                   f"({_size(entries * 8)} as float64), at most {MAX_BLOCK:,} (the "
                                                   f"weights are held as a dense {what} array) (got {tuple(shape)})")


def _size(n_bytes: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n_bytes < 1024 or unit == "PiB":
            return f"{n_bytes:.0f} {unit}" if unit == "bytes" else f"{n_bytes:.1f} {unit}"
        n_bytes /= 1024


def _raster(value, side: str, source: str) -> np.ndarray:
    """A spike raster (n, steps) as bool: booleans or 0/1 numbers only (NaN, 2, text refused)."""
    what = f"a raster (n_{side}, steps) of booleans or 0/1"
    if isinstance(value, (bool, np.bool_)):
        raise NeurodeployError(source, side, f"must be {what} (got {value!r})")
    try:
        r = np.asarray(value)
    except (ValueError, TypeError):
        raise NeurodeployError(source, side, f"must be {what} (got {type(value).__name__})") from None
    if r.ndim != 2 or r.shape[1] == 0:
        raise NeurodeployError(source, side, f"must be a raster (n_{side}, steps) (got shape {r.shape})")
    if r.dtype == bool:
        return r
    if r.dtype.kind not in "iuf":
        raise NeurodeployError(source, side, f"must be {what} (got dtype {r.dtype})")
    bad = ~((r == 0) | (r == 1))
    if bad.any():
        raise NeurodeployError(source, side, f"must be {what} (got {float(r[bad][0]):g})")
    return r != 0


def unsupported_reason(rule, mode: str) -> str | None:
    """Why ``rule`` cannot run on the learning engine in ``mode`` (None when it can)."""
    from neurodeploy.lava.plan import engine_reason

    from neurodeploy.lava.plan import approximation_reason

    reason = engine_reason(rule)
    if reason is not None:  # what the lowering's approximations cannot put on the engine either
        reason = approximation_reason(rule, mode)
    if reason is None and rule.has_reward and rule.t_epoch > 1:
        reason = ("three-factor rules with t_epoch > 1: the engine reads the supplied y traces as they are "
                  "at the epoch's end, not at the spike")
    return None if reason is None else f"not deployable to the learning engine: {reason}"


# -- traffic --------------------------------------------------------------------------
def traffic_trains(rule, traffic=None, source: str = "traffic", prefix: str = ""):
    """The spike trains ``traffic`` stands for (:class:`~neurodeploy.protocol.SpikeTrains`).

    ``traffic``: None (the default protocol: Poisson 10 x 10, 2000 steps, 10 Hz, seed 3);
    a number (Poisson at that rate in Hz, otherwise the defaults); a protocol name;
    a dict ``{"protocol": name, "seed": s, **options}`` (options as ``verify``'s);
    :class:`~neurodeploy.protocol.SpikeTrains`; or recorded rasters ``(pre, post)`` /
    ``{"pre": ..., "post": ...}`` (bool (n, steps))."""
    from neurodeploy.protocol import DEFAULT_POISSON, SpikeTrains, default_trains, make_trains, with_reward

    if traffic is None:
        return default_trains(rule)
    if isinstance(traffic, SpikeTrains):
        return with_reward(rule, traffic)
    if isinstance(traffic, numbers.Real) and not isinstance(traffic, bool):
        return make_trains(rule, "poisson", {"rate": float(traffic)}, DEFAULT_POISSON["seed"], source, prefix)
    if isinstance(traffic, str):
        return make_trains(rule, traffic, {}, DEFAULT_POISSON["seed"], source, prefix)
    if isinstance(traffic, dict) and "protocol" in traffic:
        options = {k: v for k, v in traffic.items() if k not in ("protocol", "seed")}
        seed = traffic.get("seed", DEFAULT_POISSON["seed"])
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
            raise NeurodeployError(source, f"{prefix}seed", f"must be a whole number >= 0 (got {seed!r})")
        return make_trains(rule, traffic["protocol"], options, int(seed), source, prefix)
    if isinstance(traffic, dict) and {"pre", "post"} <= set(traffic):
        pre, post = traffic["pre"], traffic["post"]
    elif isinstance(traffic, (tuple, list)) and len(traffic) == 2:
        pre, post = traffic
    else:
        raise NeurodeployError(source, "", "must be a rate in Hz, a protocol name, {'protocol': name, ...}, "
                                           f"SpikeTrains or rasters (pre, post) (got {type(traffic).__name__})")
    pre, post = _raster(pre, "pre", source), _raster(post, "post", source)
    if pre.shape[1] != post.shape[1]:
        raise NeurodeployError(source, "post", f"must have as many steps as pre ({pre.shape[1]}) (got {post.shape[1]})")
    check_block((post.shape[0], pre.shape[0]), source, "", "(n_post, n_pre)")
    _check_run(pre.shape[0], post.shape[0], pre.shape[1], source)
    w0 = np.full((post.shape[0], pre.shape[0]), rule.weight.w_init)
    return with_reward(rule, SpikeTrains(pre, post, w0, "rasters"))


def _check_run(n_pre: int, n_post: int, steps: int, source: str) -> None:
    """Refuse rasters beyond the run limits of the protocols (:data:`neurodeploy.protocol.MAX_STEPS`, ...)."""
    from neurodeploy.protocol import MAX_NEURON_STEPS, MAX_STEPS, MAX_SYNAPSE_STEPS

    if not (steps <= MAX_STEPS and float(steps) * n_pre * n_post <= MAX_SYNAPSE_STEPS
            and steps * (n_pre + n_post) <= MAX_NEURON_STEPS):
        raise NeurodeployError(source, "", f"run too large ({steps:,} steps x {n_post}x{n_pre} synapses; at most "
                                           f"{MAX_STEPS:,} steps, {MAX_SYNAPSE_STEPS:,} synapse-steps and "
                                           f"{MAX_NEURON_STEPS:,} neuron-steps)")


def describe_traffic(trains, plan=None) -> dict:
    """What a plan's scaling assumes: protocol, rate, seed, size and, per trace, its peak."""
    out = {"protocol": trains.protocol, "rate_hz": trains.rate, "seed": trains.seed, "steps": trains.steps,
           "n_pre": trains.n_pre, "n_post": trains.n_post}
    if plan is not None:
        out["peaks"] = {t.name: {"slot": t.slot, "peak": float(t.peak), "peak_lava": float(t.peak_lava)}
                        for t in plan.traces}
    return out


# -- the neuron -------------------------------------------------------------------------
def lif_params(mode: str, tau_u: float, tau_v: float, threshold: float, plan, dt: float = 1.0) -> dict:
    """Keyword arguments of Lava's ``LIF`` for a neuron driven by the deployed connection.

    ``tau_u``, ``tau_v``: current and voltage time constants, in the unit of ``dt``
    (default: steps); ``threshold``: the spike threshold in rule weight units
    (the summed weights of the synapses that spiked in the previous step drive ``u``).

    * float: ``du = dt / tau_u``, ``dv = dt / tau_v``, ``vth = threshold / weight_scale``;
    * fixed (Loihi's LIF): 12-bit decays, ``du = round(4096 dt / tau_u) - 1`` (Loihi decays u by
      ``(4096 - du - 1) / 4096``: the offset of one), ``dv = round(4096 dt / tau_v)``, and ``vth``
      in Lava weight units, rounded (the model shifts it and the input by 6 bits alike).

    Every number must be finite; ``dt`` > 0, ``tau_u`` and ``tau_v`` at least ``dt`` (a shorter time
    constant decays by more than the whole value in one step), ``threshold`` > 0 (one line otherwise)."""
    _check_mode(mode)
    dt = _real(dt, "deploy", "dt", "a finite number > 0")
    if not dt > 0:
        raise NeurodeployError("deploy", "dt", f"must be a finite number > 0 (got {dt:g})")
    for name, tau in (("tau_u", tau_u), ("tau_v", tau_v)):
        if not _real(tau, "deploy", name, f"a finite number >= dt = {dt:g}") >= dt:
            raise NeurodeployError("deploy", name, f"must be at least dt = {dt:g}: a shorter time constant decays "
                                                   f"by more than the whole value in one step (got {float(tau):g})")
    if not _real(threshold, "deploy", "threshold", "a finite number > 0") > 0:
        raise NeurodeployError("deploy", "threshold", f"must be > 0 (got {float(threshold):g})")
    if plan is not CPU_SCALE:
        check_plan(plan)
    du, dv = dt / float(tau_u), dt / float(tau_v)
    if mode == "float":
        return {"du": du, "dv": dv, "vth": float(threshold) / plan.weight_scale, "bias_mant": 0.0}
    beyond = _vth_beyond(threshold, plan)
    if beyond is not None:
        raise NeurodeployError("deploy", "threshold", f"{beyond} (got {float(threshold):g})")
    return {"du": max(0, int(round(du * DECAY_UNITY)) - 1), "dv": int(round(dv * DECAY_UNITY)),
            "vth": int(round(float(threshold) / plan.weight_scale)), "bias_mant": 0}


def check_plan(plan, mode: str | None = None):
    """Refuse anything but a :class:`~neurodeploy.lava.plan.Plan` (of ``mode``, when given) in one line."""
    from neurodeploy.lava.plan import Plan

    if not isinstance(plan, Plan):
        raise NeurodeployError("deploy", "plan", f"must be a Plan (neurodeploy.lava.plan.Plan, e.g. from "
                                                 f"compile_plans) (got {type(plan).__name__})")
    if mode is not None and plan.mode != mode:
        raise NeurodeployError("deploy", "plan", f"is a {plan.mode} plan: mode is {mode!r} (got plan.mode {plan.mode!r})")
    return plan


def _check_mode(mode):
    if mode not in MODES:
        raise NeurodeployError("deploy", "mode", f"must be 'float' or 'fixed' (got {mode!r})")


# -- the deployment -------------------------------------------------------------------
@dataclass
class Deployment:
    """A rule compiled into a Lava connection process.

    Wire ``conn`` like Lava's ``LearningDense``: ``s_in`` (n_pre) takes the presynaptic
    spikes, ``a_out`` (n_post) drives the postsynaptic neurons, ``s_in_bap`` (n_post)
    takes their spikes; three-factor rules take the post and reward traces on
    ``s_in_y1..y3`` (:meth:`supply_traces`)."""

    conn: object  # the Lava process: BoundedLearningDense (or its recording subclass in verify)
    plan: object  # the neurodeploy.lava.plan.Plan it realises
    process_model: type  # the ProcessModel run_cfg() selects for conn
    rule: object = None  # the neurodeploy.ir.Rule (None when built from a plan alone)
    traffic: dict | None = None  # what the plan's scaling assumes (describe_traffic)
    rng_seed: int = RNG_SEED  # seed of the fixed-point stochastic rounding

    @classmethod
    def from_plan(cls, plan, w_lava, rule=None, rng_seed: int = RNG_SEED, record: str | None = None,
                  traffic: dict | None = None, mask=None) -> "Deployment":
        """The connection for ``plan`` with initial weights ``w_lava`` (n_post, n_pre), Lava units.

        ``record``: path of a ``.npy`` weight history (verify's recording connection,
        :mod:`neurodeploy.lava.recording.processes`); None for the plain connection. ``mask``:
        bool (n_post, n_pre), the synapses that exist: a ``LearningSparse`` connection whose
        structure is the mask (the others have no weight and never change); None: all to all."""
        from neurodeploy.lava.compat import import_lava

        rng_seed = check_rng_seed(rng_seed)
        check_plan(plan)
        import_lava()
        from lava.magma.core.learning.learning_rule import Loihi2FLearningRule, Loihi3FLearningRule
        from lava.utils.weightutils import SignMode

        rule_class = Loihi3FLearningRule if plan.three_factor else Loihi2FLearningRule
        learning_rule = rule_class(**plan.learning_rule_kwargs(), rng_seed=rng_seed)
        sign_mode = {"excitatory": SignMode.EXCITATORY, "inhibitory": SignMode.INHIBITORY,
                     "mixed": SignMode.MIXED}[plan.sign_mode]
        kwargs = dict(weights=w_lava, learning_rule=learning_rule, sign_mode=sign_mode,
                      weight_bounds=tuple(float(b) for b in plan.w_lava_bounds))
        if mask is not None and not np.asarray(mask, dtype=bool).all():
            from neurodeploy.lava.deployed.processes import masked_weights

            if plan.three_factor:  # measured: open loop and in networks, the run never ends
                raise NeurodeployError("deploy", "mask", "a three-factor rule on a connectivity mask: Lava 0.10's "
                                       "LearningSparse with Loihi3FLearningRule raises inside its process (the run "
                                       "hangs); connect all to all (p: 1, autapses: true)")

            zero = sparse_zero_starts(plan, w_lava, mask)
            if zero is not None:
                raise NeurodeployError("deploy", "w0", f"synapse (post {zero[0]}, pre {zero[1]}) of the mask starts "
                                       "at Lava weight 0: Lava's LearningSparse drops zero weights at the first "
                                       "step (fixed point then stalls); start it above 0 or drop the mask")

            kwargs["weights"] = masked_weights(w_lava, np.asarray(mask, dtype=bool))
            if record is None:
                from neurodeploy.lava.deployed.processes import SPARSE_MODELS as MODELS, BoundedLearningSparse
                conn = BoundedLearningSparse(**kwargs)
            else:
                from neurodeploy.lava.recording.processes import SPARSE_MODELS as MODELS, RecordingLearningSparse
                conn = RecordingLearningSparse(history_path=record, **kwargs)
        elif record is None:
            from neurodeploy.lava.deployed.processes import MODELS, BoundedLearningDense
            conn = BoundedLearningDense(**kwargs)
        else:
            from neurodeploy.lava.recording.processes import MODELS, RecordingLearningDense
            conn = RecordingLearningDense(history_path=record, **kwargs)
        return cls(conn, plan, MODELS[plan.mode], rule, traffic, rng_seed)

    @property
    def mode(self) -> str:
        return self.plan.mode

    @property
    def select_tag(self) -> str:
        return SELECT_TAGS[self.plan.mode]

    def run_cfg(self, **kwargs):
        """``Loihi2SimCfg`` with this mode's select_tag (for every process of the network:
        a fixed-point connection wants Loihi's fixed-point LIF) and the connection's model."""
        from lava.magma.core.run_configs import Loihi2SimCfg

        models = dict(kwargs.pop("exception_proc_model_map", None) or {})
        models.setdefault(type(self.conn), self.process_model)
        kwargs.setdefault("select_tag", self.select_tag)
        return Loihi2SimCfg(exception_proc_model_map=models, **kwargs)

    def to_lava(self, w) -> np.ndarray:
        """Rule units -> Lava weights (fixed: rounded and saturated at the 8-bit bounds)."""
        return self.plan.weights_to_lava(w)

    def from_lava(self, w_lava) -> np.ndarray:
        """Lava weights -> rule units."""
        return self.plan.weights_from_lava(w_lava)

    def weights(self, w_lava=None) -> np.ndarray:
        """The connection's weights in rule units, (n_post, n_pre): ``conn.weights.get()``
        (while the network is built: after ``run``, before ``stop``), or ``w_lava`` converted."""
        if w_lava is None:
            from neurodeploy.lava.deployed.processes import dense_weights

            w_lava = dense_weights(self.conn.weights.get())  # a mask's absent synapses: NaN
        return self.from_lava(w_lava)

    def lif_params(self, tau_u: float, tau_v: float, threshold: float, dt: float = 1.0) -> dict:
        """:func:`lif_params` for this deployment's mode and plan."""
        return lif_params(self.mode, tau_u, tau_v, threshold, self.plan, dt)

    def neurons(self, **lif_kwargs):
        """Lava's ``LIF`` for the n_post postsynaptic neurons, with ``lif_kwargs`` as
        :meth:`lif_params` returns them (float or Loihi fixed point, matching this deployment).
        Wire it ``conn.a_out -> lif.a_in`` and ``lif.s_out -> conn.s_in_bap``."""
        from lava.proc.lif.process import LIF

        return LIF(shape=(self.conn.weights.shape[0],), **lif_kwargs)

    def supplied_traces(self, post, reward=None) -> dict:
        """Three-factor rules: slot -> (n_post, steps) values of the post and reward traces
        (Lava units) that ``s_in_y1..y3`` must receive, from the post raster and the reward
        input ((steps,) or (n_post, steps); default none)."""
        from neurodeploy.protocol import SpikeTrains

        if not self.plan.three_factor:
            raise NeurodeployError("deploy", "supplied_traces", "only three-factor rules (a reward trace) read "
                                   f"supplied traces (got rule '{getattr(self.rule, 'name', '?')}')")
        if self.rule is None:
            raise NeurodeployError("deploy", "supplied_traces", "needs the rule: use deploy(rule, ...)")
        post = _raster(post, "post", "supplied_traces")
        if reward is not None:
            reward = _real_array(reward, "supplied_traces", "reward", "an array of numbers")
            if reward.shape not in ((post.shape[1],), post.shape):
                raise NeurodeployError("supplied_traces", "reward", f"must have the shape (steps,) or (n_post, steps) "
                                                                    f"= {post.shape} (got {reward.shape})")
            if not np.all(np.isfinite(reward)):
                raise NeurodeployError("supplied_traces", "reward", f"must be finite (got "
                                                                    f"{float(reward[~np.isfinite(reward)][0]):g})")
            reward = np.broadcast_to(reward, post.shape)
        w0 = np.zeros((post.shape[0], 1))
        trains = SpikeTrains(np.zeros((1, post.shape[1]), bool), post, w0, "supplied", reward=reward)
        return supplied_traces(self.rule, self.plan, trains)

    def supply_traces(self, post=None, reward=None, values: dict | None = None) -> list:
        """Three-factor rules: ``RingBuffer``\\ s playing the supplied traces into ``s_in_y1..y3``
        (zeros where a slot is unused); ``values`` as :meth:`supplied_traces` returns, or computed
        from ``post`` and ``reward``. Returns the sources (already connected)."""
        from lava.proc.io.source import RingBuffer

        if values is None:
            values = self.supplied_traces(post, reward)
        shape = next(iter(values.values())).shape if values else np.shape(post)
        sources = []
        for slot in ("y1", "y2", "y3"):
            source = RingBuffer(data=np.asarray(values.get(slot, np.zeros(shape)), dtype=float))
            source.s_out.connect(getattr(self.conn, f"s_in_{slot}"))
            sources.append(source)
        return sources


@dataclass
class CpuDeployment:
    """A rule as written, in a Lava process on the CPU (``RuleSynapses``, the ``lava-cpu`` backend):
    for rules the learning engine cannot express. Not deployable to Loihi; floating point, rule units.

    Wire ``conn`` like a connection: ``s_in`` (n_pre) presynaptic spikes, ``s_in_bap`` (n_post)
    postsynaptic spikes, ``r_in`` (n_post) the third factor (a reward input; zeros when unused).
    ``a_out`` (n_post) drives neurons as Lava's ``Dense`` does (rule units, one step late; float LIFs:
    :func:`lif_params` with ``CPU_SCALE``)."""

    conn: object  # neurodeploy.lava.cpu.processes.RuleSynapses
    rule: object  # the neurodeploy.ir.Rule it runs
    mode: str = "cpu"

    @classmethod
    def build(cls, rule, w0, record: str | None = None, mask=None) -> "CpuDeployment":
        """``RuleSynapses`` for ``rule`` with initial weights ``w0`` (n_post, n_pre), rule units;
        ``record``: path of a ``.npy`` weight history (verify's recording); ``mask``: the synapses that
        drive ``a_out`` (None: all)."""
        from neurodeploy.lava.compat import import_lava

        import_lava()
        from neurodeploy.lava.cpu.processes import RuleSynapses

        return cls(RuleSynapses(rule=rule, weights=np.array(w0, dtype=float), history_path=record, mask=mask), rule)

    @property
    def process_model(self):
        from neurodeploy.lava.cpu.processes import PyRuleSynapsesFloat

        return PyRuleSynapsesFloat

    def run_cfg(self, **kwargs):
        """``Loihi2SimCfg`` selecting the floating-point models."""
        from lava.magma.core.run_configs import Loihi2SimCfg

        kwargs.setdefault("select_tag", "floating_pt")
        return Loihi2SimCfg(**kwargs)

    def weights(self, w=None) -> np.ndarray:
        """The weights in rule units (``conn.weights.get()`` while the network is built)."""
        return np.asarray(self.conn.weights.get() if w is None else w, dtype=float)


def deploy(rule_or_path, shape=None, w_init=None, mode: str = "fixed", traffic=None,
           rng_seed: int = RNG_SEED, mask=None):
    """Compile ``rule_or_path`` (a rule file or a loaded rule) into a Lava connection.

    ``shape``: (n_post, n_pre) (optional when ``w_init`` is an array); ``w_init``: initial
    weights in rule units, a scalar or an (n_post, n_pre) array within the rule's bounds
    (default: the rule's ``init``); ``mode``: "float" (Lava's float model, weights clipped to
    the bounds) or "fixed" (Loihi's bit-approximate model); ``traffic``: what the trace scales
    assume (:func:`traffic_trains`; default Poisson 10 Hz); ``rng_seed``: the stochastic
    rounding's seed; ``mask``: bool (n_post, n_pre), the synapses that exist (a ``LearningSparse``
    connection: the others carry no current, have no weight and never learn; default all to all).
    Raises NeurodeployError for a rule the learning engine cannot run.

    ``mode="cpu"``: any rule as written, in a :class:`CpuDeployment` (the ``lava-cpu`` backend's
    process; not the learning engine, so ``traffic``, ``rng_seed`` and ``mask`` do not apply)."""
    from neurodeploy.harness import compile_plans
    from neurodeploy.ir import Rule

    if mode not in MODES + ("cpu",):
        raise NeurodeployError("deploy", "mode", f"must be 'float', 'fixed' or 'cpu' (got {mode!r})")
    if isinstance(rule_or_path, Rule):
        rule = rule_or_path
    elif isinstance(rule_or_path, (str, os.PathLike)):
        from neurodeploy.spec.loader import load_rule
        rule = load_rule(os.fspath(rule_or_path))
    else:
        raise NeurodeployError("deploy", "rule", f"must be a rule file or a loaded rule (got {type(rule_or_path).__name__})")
    rng_seed = check_rng_seed(rng_seed)
    source = rule.source or rule.name
    if mode == "cpu":
        if traffic is not None:
            raise NeurodeployError(source, "traffic", "only for the learning engine (float, fixed): "
                                                      f"mode cpu runs the rule as written (got {traffic!r})")
        if mask is not None:
            raise NeurodeployError(source, "mask", "only for the learning engine's sparse connection (float, "
                                                   "fixed): RuleSynapses is all to all (got a mask)")
        return CpuDeployment.build(rule, _initial_weights(rule, shape, w_init))
    reason = unsupported_reason(rule, mode)
    if reason is not None:
        raise NeurodeployError(source, "weight", reason)
    w0 = _initial_weights(rule, shape, w_init)
    mask = _mask(mask, w0.shape)
    trains = traffic_trains(rule, traffic)
    try:
        plan = compile_plans(rule, trains)[mode]
    except UnsupportedError as exc:
        raise NeurodeployError(source, "weight", f"not deployable to the learning engine: {exc}") from None
    return Deployment.from_plan(plan, plan.weights_to_lava(w0), rule, rng_seed,
                                traffic=describe_traffic(trains, plan), mask=mask)


def _mask(mask, shape: tuple):
    """``mask`` as a bool (n_post, n_pre) array (None when absent or all True); one-line errors."""
    if mask is None:
        return None
    m = np.asarray(mask)
    if m.shape != shape:
        raise NeurodeployError("deploy", "mask", f"must be a boolean array of shape (n_post, n_pre) = {shape} "
                                                 f"(got {m.shape})")
    if m.dtype != bool:
        if m.dtype.kind not in "iuf" or not np.all((m == 0) | (m == 1)):
            raise NeurodeployError("deploy", "mask", f"must be boolean or 0/1 (got dtype {m.dtype})")
        m = m != 0
    if not m.any():
        raise NeurodeployError("deploy", "mask", f"must keep at least one synapse (got all {shape[0]}x{shape[1]} False)")
    return None if m.all() else m


def _initial_weights(rule, shape, w_init) -> np.ndarray:
    lo, hi = rule.weight.w_min, rule.weight.w_max
    w = _real_array(rule.weight.w_init if w_init is None else w_init, "deploy", "w_init",
                    "a number or an (n_post, n_pre) array of numbers")
    if shape is None:
        if w.ndim != 2:
            raise NeurodeployError("deploy", "shape", "needed unless w_init is an (n_post, n_pre) array (got None)")
        shape = w.shape
    if (not isinstance(shape, (tuple, list)) or len(shape) != 2
            or not all(isinstance(n, numbers.Integral) and not isinstance(n, bool) and n >= 1 for n in shape)):
        raise NeurodeployError("deploy", "shape", f"must be (n_post, n_pre), two whole numbers >= 1 (got {shape!r})")
    shape = (int(shape[0]), int(shape[1]))
    check_block(shape, "deploy", "shape")
    if w.ndim == 2 and w.shape != shape:
        raise NeurodeployError("deploy", "w_init", f"must have the shape {shape} (got {w.shape})")
    if w.ndim not in (0, 2):
        raise NeurodeployError("deploy", "w_init", f"must be a number or an (n_post, n_pre) array (got shape {w.shape})")
    if not np.all(np.isfinite(w)) or np.any(w < lo) or np.any(w > hi):
        bad = w if w.ndim == 0 else w[~(np.isfinite(w) & (w >= lo) & (w <= hi))][0]
        raise NeurodeployError("deploy", "w_init", f"must be within the rule's bounds [{lo:g}, {hi:g}] (got {float(bad):g})")
    return np.broadcast_to(w, shape).copy()


# -- networks ------------------------------------------------------------------------------
#: The "plan" of a network on lava-cpu: weights in rule units (RuleSynapses), float LIFs and Dense.
CPU_SCALE = type("CpuScale", (), {"weight_scale": 1.0, "mode": "float"})()

#: Loihi's static weights: 8 bits and a sign (``clip_weights(num_bits=8)`` in Lava's bit-accurate Dense).
STATIC_WEIGHT_MAX = 255


def static_weights_lava(network, projection, plan, rule) -> np.ndarray:
    """The static ``projection``'s weights (n_target, n_source) as its Lava ``Dense`` gets them:
    float: rule units over ``plan.weight_scale``; fixed: integers at that scale (rounded), refused with
    one line when one does not fit 8 bits and a sign, or when a non-zero weight rounds to 0."""
    w = np.asarray(projection.weight, dtype=float) / plan.weight_scale
    if plan.mode == "float":
        return w
    w_int = np.rint(w)
    where = f"projections[{projection.index}].weight"
    present = w[projection.mask]
    value = float(present[0]) if present.size else 0.0  # one weight per projection
    given = value * plan.weight_scale / rule.weight.range  # the file's number (units of the weight range)
    if np.any(np.abs(w_int) > STATIC_WEIGHT_MAX):
        raise NeurodeployError(network.source, where, f"does not fit Loihi's 8 bits and a sign at the plan's weight "
                                                      f"scale: {value:g} Lava units, at most {STATIC_WEIGHT_MAX} "
                                                      f"(got {given:g})")
    if np.any((w_int == 0) & (w != 0)):
        raise NeurodeployError(network.source, where, f"rounds to 0 in fixed point at the plan's weight scale: "
                                                      f"{value:g} Lava units (got {given:g})")
    return w_int.astype(np.int32)


def sparse_zero_starts(plan, w_lava, mask) -> tuple | None:
    """(post, pre) of the first synapse of ``mask`` whose initial Lava weight is 0 (fixed: after the
    sign mode's 8-bit truncation), or None: Lava 0.10's ``LearningSparse`` drops such a synapse."""
    w = np.asarray(w_lava)
    if plan.mode == "fixed":
        w = np.rint(w).astype(np.int64)
        if plan.sign_mode == "mixed":
            w = (w >> 1) << 1
    zero = np.asarray(mask, dtype=bool) & (w == 0)
    return tuple(int(k) for k in np.argwhere(zero)[0]) if zero.any() else None


#: Loihi's fixed-point LIF holds v in 24 bits; the threshold is compared after a 6-bit shift.
LIF_VTH_MAX = (2 ** 23 - 1) >> 6


def _vth_beyond(threshold: float, plan) -> str | None:
    """In fixed point, why ``threshold`` (rule units) is beyond Loihi's 24-bit voltage (None when it is not)."""
    if plan.mode != "fixed":
        return None
    vth = float(threshold) / plan.weight_scale
    if np.isfinite(vth) and int(round(vth)) <= LIF_VTH_MAX:
        return None
    return (f"beyond Loihi's 24-bit voltage at the plan's weight scale: {vth:.0f} Lava units, at most {LIF_VTH_MAX} "
            "(the neurons could never spike)")


def check_lif_threshold(network, pop, threshold: float, plan) -> None:
    """Refuse a fixed-point LIF population whose threshold (``threshold``: rule units; in Lava units, shifted
    by 6 bits) is beyond the 24-bit voltage: it could never spike. Before :func:`lif_params`, which refuses
    the same without naming the network file."""
    reason = _vth_beyond(threshold, plan)
    if reason is not None:
        raise NeurodeployError(network.source, f"populations.{pop.name}.threshold", f"{reason} (got {pop.threshold:g})")


def network_plan_reason(rule, network, plan, w0=None) -> str | None:
    """Why ``network`` cannot be deployed with ``plan`` (a static weight or a threshold beyond Loihi's
    integers, a masked synapse starting at 0), or None: what :func:`deploy_network` would refuse, checked
    before anything runs (verify skips that mode's backends with this reason)."""
    w0 = network.plastic_w0() if w0 is None else w0
    try:
        for pr in network.projections:
            if not pr.plastic:
                static_weights_lava(network, pr, plan, rule)
            elif pr.mask.any():
                t, s = network.projection_slices(pr)
                block = w0[t, s]
                check_sparse_start(network, pr, plan.weights_to_lava(np.where(pr.mask, block, rule.weight.w_init)),
                                   plan, rule, block)
        for pop in network.lifs:
            check_lif_threshold(network, pop, pop.threshold * rule.weight.range, plan)
            lif_params(plan.mode, pop.tau_u_ms, pop.tau_v_ms, pop.threshold * rule.weight.range, plan, dt=rule.dt * 1e3)
    except NeurodeployError as exc:
        return str(exc)
    return None


def check_sparse_start(network, projection, w_lava: np.ndarray, plan, rule, w_rule: np.ndarray) -> None:
    """Refuse a masked plastic projection with a synapse whose initial Lava weight is 0 (fixed: after the
    8-bit truncation of the sign mode): Lava 0.10's ``LearningSparse`` drops zero weights from its
    structure at the first step (fixed point: the run stalls; float: the weights cannot be read back).
    Weights that reach 0 while learning stay present. ``w_rule``: the projection's initial weights, rule units."""
    if projection.mask.all():
        return
    w = np.asarray(w_lava)
    if plan.mode == "fixed":
        w = w.astype(np.int64)
        if plan.sign_mode == "mixed":
            w = (w >> 1) << 1
    zero = projection.mask & (w == 0)
    if zero.any():
        i, j = np.argwhere(zero)[0]
        position = (w_rule[i, j] - rule.weight.w_min) / rule.weight.range  # as the file's w0
        raise NeurodeployError(network.source, f"projections[{projection.index}].w0",
                               f"a plastic projection with a mask cannot start at Lava weight 0: Lava's "
                               f"LearningSparse drops zero weights at the first step; raise w0, or use p: 1 (and autapses: true in a recurrent projection) "
                               f"(got {position:g})")


def network_unsupported_reason(rule) -> str | None:
    """Why ``rule`` cannot learn in a network's plastic projections (None when it can)."""
    if rule.has_reward:
        return ("networks: a three-factor rule needs a reward schedule that computes the reward from the "
                "network's spikes (deploy_network(..., reward=RewardSchedule, steps=N))")
    return None


@dataclass
class NetworkDeployment:
    """A :class:`~neurodeploy.network.Network` built in Lava: one ``LIF`` per LIF population, one
    :class:`Deployment` (the learning connection) per plastic projection, one ``Dense`` per static
    projection, all wired. Connect your spike sources to the input populations with
    :meth:`connect_input`, then ``run``/``stop`` (or run any of its processes with :meth:`run_cfg`).

    Timing: every connection is Lava's dense one: a spike in step ``t`` reaches its target's ``u``
    in step ``t + 1``. A LIF's ``a_in`` sums its incoming projections in the network file's order."""

    network: object  # neurodeploy.network.Network
    plan: object  # the neurodeploy.lava.plan.Plan every plastic projection shares (one weight scale)
    rule: object
    lifs: dict  # LIF population name -> Lava LIF process
    plastic: list  # (Projection, Deployment), file order
    static: list  # (Projection, Lava Dense), file order
    rng_seed: int = RNG_SEED
    third_factor: list = None  # three-factor rules: a RewardTraces process per plastic projection (lava/reward)

    @property
    def mode(self) -> str:
        """"float", "fixed" (the learning engine) or "cpu" (RuleSynapses, float LIFs)."""
        return "cpu" if self.plan is CPU_SCALE else self.plan.mode

    def projections_from(self, name: str) -> list:
        """The connection processes (learning or Dense) of the projections from population ``name``."""
        return ([d.conn for pr, d in self.plastic if pr.source == name]
                + [c for pr, c in self.static if pr.source == name])

    def connect_input(self, name: str, out_port) -> None:
        """Connect ``out_port`` (a spike source's ``s_out``, shape (n,)) to every projection from the
        input population ``name``."""
        inputs = [p.name for p in self.network.inputs]
        if name not in inputs:
            from neurodeploy.errors import did_you_mean
            raise NeurodeployError(self.network.source, "connect_input", f"not an input (Poisson) population"
                                   f"{did_you_mean(str(name), inputs)}: inputs are {', '.join(inputs) or 'none'} "
                                   f"(got {name!r})")
        n = self.network.population(name).n
        if tuple(out_port.shape) != (n,):
            raise NeurodeployError(self.network.source, "connect_input", f"population {name!r} has {n} neurons: "
                                   f"the port must have shape ({n},) (got {tuple(out_port.shape)})")
        for conn in self.projections_from(name):
            out_port.connect(conn.s_in)
        if self.third_factor:  # the reward schedules see the inputs' spikes too
            from neurodeploy.lava.reward.processes import input_ports

            for port in input_ports(self, name):
                out_port.connect(port)

    def spike_sinks(self, steps: int) -> dict:
        """A ``RingBuffer`` sink (``lava.proc.io.sink``) of ``steps`` steps on every LIF population that has an
        incoming projection (the others never spike), connected; read ``sink.data.get()`` before ``stop()``."""
        from neurodeploy.network import MAX_STEPS

        from neurodeploy.protocol import MAX_NEURON_STEPS

        steps = check_steps(steps, "spike_sinks.steps", self.network.source, MAX_STEPS)
        n = sum(p.n for p in self.network.lifs if any(pr.target == p.name for pr in self.network.projections))
        if steps * n > MAX_NEURON_STEPS:
            raise NeurodeployError(self.network.source, "spike_sinks.steps", f"{steps:,} steps x {n} neurons = "
                                   f"{steps * n:,} buffered spikes, at most {MAX_NEURON_STEPS:,} (got {steps})")
        from lava.proc.io.sink import RingBuffer as Sink

        sinks = {}
        for name, lif in self.lifs.items():
            if any(pr.target == name for pr in self.network.projections):
                sinks[name] = Sink(shape=(self.network.population(name).n,), buffer=steps)
                lif.s_out.connect(sinks[name].a_in)
        return sinks

    @property
    def process(self):
        """A process of the network to call ``run``/``stop`` on (Lava runs everything connected to it)."""
        return self.plastic[0][1].conn

    def run_cfg(self, **kwargs):
        """``Loihi2SimCfg`` with this mode's select_tag (Loihi's fixed-point LIF and Dense in fixed) and the
        learning connections' models."""
        from lava.magma.core.run_configs import Loihi2SimCfg

        models = dict(kwargs.pop("exception_proc_model_map", None) or {})
        for _, d in self.plastic:
            models.setdefault(type(d.conn), d.process_model)
        kwargs.setdefault("select_tag", SELECT_TAGS.get(self.mode, "floating_pt"))
        return Loihi2SimCfg(exception_proc_model_map=models, **kwargs)

    def run(self, steps: int, **kwargs) -> None:
        """Run the network ``steps`` steps (blocking)."""
        from lava.magma.core.run_conditions import RunSteps

        steps = check_steps(steps, "run.steps", self.network.source)
        self.process.run(condition=RunSteps(num_steps=steps), run_cfg=self.run_cfg(**kwargs))

    def stop(self) -> None:
        self.process.stop()

    def weights(self) -> np.ndarray:
        """The plastic weights (n_lif, n_src), rule units, NaN where there is no plastic synapse (while the
        network is built: after ``run``, before ``stop``)."""
        out = np.full((self.network.n_lif, self.network.n_src), np.nan)
        for pr, d in self.plastic:
            t, s = self.network.projection_slices(pr)
            out[t, s] = np.where(pr.mask, d.weights(), np.nan)
        return out


def deploy_network(rule, network, mode: str = "fixed", plan=None, w0=None, rng_seed: int = RNG_SEED,
                   record: dict | None = None, traffic=None, reward=None, steps: int | None = None) -> NetworkDeployment:
    """Build ``network`` (a :class:`~neurodeploy.network.Network` or a network file) in Lava with ``rule``
    learning in its plastic projections.

    ``mode``: "float" or "fixed" (the learning engine), or "cpu" (the rule as written in
    ``RuleSynapses`` processes, weights in rule units, float LIFs; no plan); ``plan``: the
    :class:`~neurodeploy.lava.plan.Plan` (default: compiled on the network's own input trains, or on
    ``traffic``); ``w0``: initial plastic weights (n_lif, n_src),
    rule units (default the network's); ``rng_seed``: every learning connection's stochastic-rounding seed
    (each Lava learning connection owns its generators); ``traffic``: what the plan is scaled on when
    ``plan`` is None (as :func:`deploy`'s; default the network's own trains from its seed);
    ``record``: projection index -> ``.npy`` weight history path (verify's recording connections).
    ``reward`` (three-factor rules, the learning engine): a :class:`neurodeploy.emu.reward.RewardSchedule`
    that decides the reward from the network's spikes; each plastic projection then gets a
    :class:`neurodeploy.lava.reward.processes.RewardTraces` computing its post and reward traces online
    for ``steps`` steps (``.third_factor``)."""
    from neurodeploy.ir import Rule
    from neurodeploy.network import Network, load_network

    if mode not in MODES + ("cpu",):
        raise NeurodeployError("deploy", "mode", f"must be 'float', 'fixed' or 'cpu' (got {mode!r})")
    rng_seed = check_rng_seed(rng_seed)
    if mode == "cpu" and plan is not None:
        raise NeurodeployError("deploy", "plan", f"only for the learning engine (float, fixed): mode cpu runs the "
                                                 f"rule as written in rule units (got a {type(plan).__name__})")
    if plan is not None:
        check_plan(plan, mode)
    if not isinstance(rule, Rule):
        if not isinstance(rule, (str, os.PathLike)):
            raise NeurodeployError("deploy", "rule", f"must be a rule file or a loaded rule (got {type(rule).__name__})")
        from neurodeploy.spec.loader import load_rule
        rule = load_rule(os.fspath(rule))
    if isinstance(network, dict):  # a network file's content, already parsed
        from neurodeploy.network import network_from_dict
        network = network_from_dict(network, "network", rule)
    elif isinstance(network, (str, os.PathLike)):
        network = load_network(os.fspath(network), rule)
    elif not isinstance(network, Network):
        raise NeurodeployError("deploy", "network", f"must be a Network, a network file or a mapping with a network "
                                                    f"file's content (got {type(network).__name__})")
    source = rule.source or rule.name
    reason = (None if reward is not None and mode != "cpu" else network_unsupported_reason(rule)) or (
        None if mode == "cpu" else unsupported_reason(rule, mode))
    if reward is not None and not rule.has_reward:
        raise NeurodeployError(source, "reward", "only three-factor rules (a reward trace) read a reward")
    if reward is not None:
        steps = check_steps(steps, "steps", "deploy")
    if reason is not None:
        raise NeurodeployError(source, "weight", reason)
    if w0 is not None:
        w0 = _real_array(w0, "deploy", "w0", "an (n_lif, n_src) array of numbers")
    if mode == "cpu":
        plan = CPU_SCALE
    elif plan is None:
        from neurodeploy.harness import compile_plans
        from neurodeploy.network import network_trains

        trains = network_trains(rule, network, network.seed) if traffic is None else traffic_trains(rule, traffic)
        try:
            plan = compile_plans(rule, trains)[mode]
        except UnsupportedError as exc:
            raise NeurodeployError(source, "weight", f"not deployable to the learning engine: {exc}") from None
    w0 = network.plastic_w0() if w0 is None else w0
    if w0.shape != (network.n_lif, network.n_src):
        raise NeurodeployError("deploy", "w0", f"must have the shape (n_lif, n_src) = "
                                               f"{(network.n_lif, network.n_src)} (got {w0.shape})")
    present = w0[network.plastic_mask()]
    bad = present[~(np.isfinite(present) & (present >= rule.weight.w_min) & (present <= rule.weight.w_max))]
    if bad.size:
        raise NeurodeployError("deploy", "w0", f"must be within the rule's bounds [{rule.weight.w_min:g}, "
                                               f"{rule.weight.w_max:g}] at the plastic synapses (got {float(bad[0]):g})")
    from neurodeploy.lava.compat import import_lava

    import_lava()
    from lava.proc.dense.process import Dense
    from lava.proc.lif.process import LIF

    statics = [(pr, static_weights_lava(network, pr, plan, rule)) for pr in network.projections if not pr.plastic]
    lifs = {}
    for pop in network.lifs:
        check_lif_threshold(network, pop, pop.threshold * rule.weight.range, plan)
        params = lif_params(plan.mode, pop.tau_u_ms, pop.tau_v_ms, pop.threshold * rule.weight.range, plan,
                            dt=rule.dt * 1e3)
        lifs[pop.name] = LIF(shape=(pop.n,), **params, name=f"lif_{pop.name}")
    plastic, static = [], []
    static_w = dict((pr.index, w) for pr, w in statics)
    for pr in network.projections:  # file order: the order each LIF's a_in sums its inputs
        if not pr.mask.any():
            continue  # no synapse: nothing to build
        t, s = network.projection_slices(pr)
        if pr.plastic:
            block = w0[t, s]
            history = None if record is None else record.get(pr.index)
            if mode == "cpu":
                d = CpuDeployment.build(rule, np.where(pr.mask, block, rule.weight.w_init), history,
                                        mask=None if pr.mask.all() else pr.mask)
            else:
                w_lava = plan.weights_to_lava(np.where(pr.mask, block, rule.weight.w_init))
                check_sparse_start(network, pr, w_lava, plan, rule, block)
                d = Deployment.from_plan(plan, w_lava,
                                         rule, rng_seed, record=history, mask=pr.mask)
            plastic.append((pr, d))
            conn = d.conn
            lifs[pr.target].s_out.connect(conn.s_in_bap)
        else:
            conn = Dense(weights=static_w[pr.index], name=f"dense_{pr.index}")
            static.append((pr, conn))
        conn.a_out.connect(lifs[pr.target].a_in)
        if pr.source in lifs:
            lifs[pr.source].s_out.connect(conn.s_in)
    nd = NetworkDeployment(network, plan, rule, lifs, plastic, static, rng_seed)
    if reward is not None:
        from neurodeploy.lava.reward.processes import attach

        nd.third_factor = attach(nd, reward, steps)
    return nd


#: Loihi3FLearningRule gives y1..y3 a time constant of 2^16 - 1 steps, and Lava decays the values
#: it receives once before using them: the supplied values are divided by this in advance.
Y3F_DECAY = float(np.exp(-1.0 / np.iinfo(np.uint16).max))


def supplied_traces(rule, plan, trains, rounded: bool | None = None) -> dict:
    """Three-factor plans: the y traces the postsynaptic side supplies each step, in Lava units.

    Post traces and reward traces follow the step semantics (:mod:`neurodeploy.stepper`): decay,
    then the step's jump (``J`` at a post spike, ``J * r`` for a reward ``r``), times the
    plan's scale. Float plans divide by :data:`Y3F_DECAY` (Lava decays received values once);
    fixed plans round to the nearest integer (``plan.supplied_rounding``) within -128..127 (the factor width of a
    7-bit trace in the MAC): Lava's stochastic decay by ``exp(-1/65535)`` then takes 1 off a value ``v`` with
    probability about ``v / 65535`` per step, which integers cannot anticipate. ``rounded=False``: a
    fixed plan's values unrounded (divided by the decay, as in float), for the verdict's exact run."""
    rounded = plan.mode == "fixed" if rounded is None else rounded
    out = {}
    for t in plan.traces:
        if not t.slot.startswith("y"):
            continue
        trace = rule.trace(t.name)
        a = float(np.exp(-1.0 / rule.tau_steps(trace)))
        drive = trains.post.astype(float) * trace.jump if trace.of == "post" else trains.reward_or_zeros() * trace.jump
        values = np.empty_like(drive)
        v = np.zeros(drive.shape[0])
        for n in range(drive.shape[1]):
            v = v * a + drive[:, n]
            values[:, n] = v
        if rounded:
            out[t.slot] = np.clip(np.rint(values * t.scale), -128, 127).astype(np.int64)
        else:
            out[t.slot] = values * t.scale / Y3F_DECAY
    return out


__all__ = ["Deployment", "NetworkDeployment", "deploy", "deploy_network", "lif_params", "supplied_traces",
           "traffic_trains", "describe_traffic",
           "unsupported_reason", "RNG_SEED"]
