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
    pre, post = np.asarray(pre), np.asarray(post)
    for side, raster in (("pre", pre), ("post", post)):
        if raster.ndim != 2 or raster.shape[1] == 0:
            raise NeurodeployError(source, side, f"must be a raster (n_{side}, steps) (got shape {raster.shape})")
    if pre.shape[1] != post.shape[1]:
        raise NeurodeployError(source, "post", f"must have as many steps as pre ({pre.shape[1]}) (got {post.shape[1]})")
    w0 = np.full((post.shape[0], pre.shape[0]), rule.weight.w_init)
    return with_reward(rule, SpikeTrains(pre != 0, post != 0, w0, "rasters"))


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
      in Lava weight units, rounded (the model shifts it and the input by 6 bits alike)."""
    _check_mode(mode)
    du, dv = dt / tau_u, dt / tau_v
    if mode == "float":
        return {"du": du, "dv": dv, "vth": threshold / plan.weight_scale, "bias_mant": 0.0}
    return {"du": max(0, int(round(du * DECAY_UNITY)) - 1), "dv": int(round(dv * DECAY_UNITY)),
            "vth": int(round(threshold / plan.weight_scale)), "bias_mant": 0}


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
        post = np.asarray(post) != 0
        if reward is not None:
            reward = np.broadcast_to(np.asarray(reward, dtype=float), post.shape)
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
    It has no ``a_out``: it learns, it does not drive neurons."""

    conn: object  # neurodeploy.lava.cpu.processes.RuleSynapses
    rule: object  # the neurodeploy.ir.Rule it runs
    mode: str = "cpu"

    @classmethod
    def build(cls, rule, w0, record: str | None = None) -> "CpuDeployment":
        """``RuleSynapses`` for ``rule`` with initial weights ``w0`` (n_post, n_pre), rule units;
        ``record``: path of a ``.npy`` weight history (verify's recording)."""
        from neurodeploy.lava.compat import import_lava

        import_lava()
        from neurodeploy.lava.cpu.processes import RuleSynapses

        return cls(RuleSynapses(rule=rule, weights=np.array(w0, dtype=float), history_path=record), rule)

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
    w = np.asarray(rule.weight.w_init if w_init is None else w_init, dtype=float)
    if shape is None:
        if w.ndim != 2:
            raise NeurodeployError("deploy", "shape", "needed unless w_init is an (n_post, n_pre) array (got None)")
        shape = w.shape
    if (not isinstance(shape, (tuple, list)) or len(shape) != 2
            or not all(isinstance(n, numbers.Integral) and not isinstance(n, bool) and n >= 1 for n in shape)):
        raise NeurodeployError("deploy", "shape", f"must be (n_post, n_pre), two whole numbers >= 1 (got {shape!r})")
    shape = (int(shape[0]), int(shape[1]))
    if w.ndim == 2 and w.shape != shape:
        raise NeurodeployError("deploy", "w_init", f"must have the shape {shape} (got {w.shape})")
    if w.ndim not in (0, 2):
        raise NeurodeployError("deploy", "w_init", f"must be a number or an (n_post, n_pre) array (got shape {w.shape})")
    if not np.all(np.isfinite(w)) or np.any(w < lo) or np.any(w > hi):
        bad = w if w.ndim == 0 else w[~(np.isfinite(w) & (w >= lo) & (w <= hi))][0]
        raise NeurodeployError("deploy", "w_init", f"must be within the rule's bounds [{lo:g}, {hi:g}] (got {float(bad):g})")
    return np.broadcast_to(w, shape).copy()


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


__all__ = ["Deployment", "deploy", "lif_params", "supplied_traces", "traffic_trains", "describe_traffic",
           "unsupported_reason", "RNG_SEED"]
