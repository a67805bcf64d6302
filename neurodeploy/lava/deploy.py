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
from collections.abc import Mapping
import os
from dataclasses import dataclass

import numpy as np

from neurodeploy.compile.loihi import (CPU_SCALE, MODES, RNG_SEED, SELECT_TAGS, _real_array, check_lif_threshold,
                                      check_plan, check_rng_seed, check_sparse_start, lif_params,
                                      network_unsupported_reason, sparse_zero_starts, static_weights_lava,
                                      supplied_traces, unsupported_reason)
from neurodeploy.errors import NeurodeployError, UnsupportedError
from neurodeploy.lava.compat import import_lava
from neurodeploy.limits import MAX_NEURON_STEPS, MAX_STEPS, MAX_SYNAPSE_STEPS
from neurodeploy.network import MAX_BLOCK, Network, load_network
from neurodeploy.network import MAX_STEPS as NETWORK_MAX_STEPS
from neurodeploy.protocol import DEFAULT_POISSON, default_trains, make_trains, SpikeTrains, with_reward
from neurodeploy.spec.ir import Rule


def check_steps(steps, field_name: str, source: str = "deploy", most: int | None = None) -> int:
    """``steps`` as an int: a whole number >= 1 (not a bool), at most ``most``."""
    if isinstance(steps, bool) or not isinstance(steps, numbers.Integral) or steps < 1:
        raise NeurodeployError(source, field_name, f"must be a whole number >= 1 (got {steps!r})")
    if most is not None and steps > most:
        raise NeurodeployError(source, field_name, f"must be at most {most:,} (got {int(steps):,})")
    return int(steps)


def check_block(shape: tuple, source: str, field_name: str, what: str = "(n_post, n_pre)") -> None:
    """Refuse a dense weight block ``shape`` beyond :data:`neurodeploy.network.MAX_BLOCK` entries (as a
    network file does), with its size, before anything is allocated."""

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


# -- traffic --------------------------------------------------------------------------
def traffic_trains(rule, traffic=None, source: str = "traffic", prefix: str = ""):
    """The spike trains ``traffic`` stands for (:class:`~neurodeploy.protocol.SpikeTrains`).

    ``traffic``: None (the default protocol: Poisson 10 x 10, 2000 steps, 10 Hz, seed 3);
    a number (Poisson at that rate in Hz, otherwise the defaults); a protocol name;
    a dict ``{"protocol": name, "seed": s, **options}`` (options as ``verify``'s);
    :class:`~neurodeploy.protocol.SpikeTrains`; or recorded rasters ``(pre, post)`` /
    ``{"pre": ..., "post": ...}`` (bool (n, steps))."""

    if traffic is None:
        return default_trains(rule)
    if isinstance(traffic, SpikeTrains):
        return with_reward(rule, traffic)
    if hasattr(traffic, "dim") and not isinstance(traffic, (int, float)):  # a Brian2 rate: 10*Hz
        from neurodeploy.protocol import in_hz

        traffic = in_hz(traffic, "traffic")
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


# -- the deployment -------------------------------------------------------------------
class _RunsItsConnection:
    """``run``/``stop`` of a deployment whose ``conn`` is its Lava process (with its own ``run_cfg``)."""

    def run(self, steps: int, **kwargs) -> None:
        """Run ``steps`` steps of everything connected to ``conn`` (blocking), with :meth:`run_cfg`
        (``kwargs`` go to it). Call :meth:`stop` when done (in a ``finally``: every Lava process is an
        OS process)."""
        from lava.magma.core.run_conditions import RunSteps

        steps = check_steps(steps, "run.steps", "deploy")
        self.conn.run(condition=RunSteps(num_steps=steps), run_cfg=self.run_cfg(**kwargs))

    def stop(self) -> None:
        """Stop every process connected to ``conn``."""
        self.conn.stop()


@dataclass
class Deployment(_RunsItsConnection):
    """A rule compiled into a Lava connection process.

    Wire ``conn`` like Lava's ``LearningDense``: ``s_in`` (n_pre) takes the presynaptic
    spikes, ``a_out`` (n_post) drives the postsynaptic neurons, ``s_in_bap`` (n_post)
    takes their spikes; three-factor rules take the post and reward traces on
    ``s_in_y1..y3`` (:meth:`supply_traces`)."""

    conn: object  # the Lava process: BoundedLearningDense (or its recording subclass in verify)
    plan: object  # the neurodeploy.compile.plan.Plan it realises
    process_model: type  # the ProcessModel run_cfg() selects for conn
    rule: object = None  # the neurodeploy.spec.ir.Rule (None when built from a plan alone)
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
        """:func:`lif_params` for this deployment's mode and plan (times with Brian2 units: ``dt`` defaults
        to the rule's time step)."""
        return lif_params(self.mode, tau_u, tau_v, threshold, self.plan, _dt_for(tau_u, dt, self.rule))

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


def _dt_for(tau, dt, rule):
    """``dt`` as given; with Brian2 times and the default ``dt`` (1.0), the rule's time step as a quantity."""
    if hasattr(tau, "dim") and not isinstance(tau, (int, float)) and dt == 1.0 and rule is not None:
        from brian2 import second

        return rule.dt * second
    return dt


@dataclass
class CpuDeployment(_RunsItsConnection):
    """A rule as written, in a Lava process on the CPU (``RuleSynapses``, the ``lava-cpu`` backend):
    for rules the learning engine cannot express. Not deployable to Loihi; floating point, rule units.

    Wire ``conn`` like a connection: ``s_in`` (n_pre) presynaptic spikes, ``s_in_bap`` (n_post)
    postsynaptic spikes, ``r_in`` (n_post) the third factor (a reward input; zeros when unused).
    ``a_out`` (n_post) drives neurons as Lava's ``Dense`` does (rule units, one step late; float LIFs:
    :func:`lif_params` with ``CPU_SCALE``)."""

    conn: object  # neurodeploy.lava.cpu.processes.RuleSynapses
    rule: object  # the neurodeploy.spec.ir.Rule it runs
    mode: str = "cpu"

    @classmethod
    def build(cls, rule, w0, record: str | None = None, mask=None) -> "CpuDeployment":
        """``RuleSynapses`` for ``rule`` with initial weights ``w0`` (n_post, n_pre), rule units;
        ``record``: path of a ``.npy`` weight history (verify's recording); ``mask``: the synapses that
        drive ``a_out`` (None: all)."""

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

    def lif_params(self, tau_u: float, tau_v: float, threshold: float, dt: float = 1.0) -> dict:
        """:func:`lif_params` of a float LIF driven by this connection (``a_out`` is in rule units:
        :data:`~neurodeploy.compile.loihi.CPU_SCALE`)."""
        return lif_params("float", tau_u, tau_v, threshold, CPU_SCALE, _dt_for(tau_u, dt, self.rule))

    def neurons(self, **lif_kwargs):
        """Lava's ``LIF`` for the n_post postsynaptic neurons, with ``lif_kwargs`` as :meth:`lif_params`
        returns them. Wire it ``conn.a_out -> lif.a_in`` and ``lif.s_out -> conn.s_in_bap``."""
        from lava.proc.lif.process import LIF

        return LIF(shape=(self.conn.weights.shape[0],), **lif_kwargs)


def deploy(rule_or_path, shape=None, w_init=None, mode: str = "fixed", traffic=None,
           rng_seed: int = RNG_SEED, mask=None):
    """Compile ``rule_or_path`` (a rule file, a loaded rule, or its
    :class:`~neurodeploy.compile.compilation.Compilation`, e.g. the one a verify report holds as
    ``report.plans``: then its plans are deployed as verified, and ``traffic`` must be None) into a
    Lava connection.

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
    from neurodeploy.compile.compilation import Compilation, compile_rule

    if mode not in MODES + ("cpu",):
        raise NeurodeployError("deploy", "mode", f"must be 'float', 'fixed' or 'cpu' (got {mode!r})")
    compilation = None
    if isinstance(rule_or_path, Compilation):
        compilation, rule = rule_or_path, rule_or_path.rule
        if traffic is not None:
            raise NeurodeployError(rule.source or rule.name, "traffic", "a compilation is already scaled on its "
                                   f"traffic ({compilation.trains.protocol if compilation.trains else 'unscaled'}): "
                                   f"pass the rule to scale on other traffic (got {traffic!r})")
    elif isinstance(rule_or_path, Rule):
        rule = rule_or_path
    elif isinstance(rule_or_path, (str, os.PathLike)):
        from neurodeploy.spec.loader import load_rule
        rule = load_rule(os.fspath(rule_or_path))
    else:
        raise NeurodeployError("deploy", "rule", f"must be a rule file, a loaded rule or a Compilation "
                                                 f"(got {type(rule_or_path).__name__})")
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
    if compilation is None:
        compilation = compile_rule(rule, traffic_trains(rule, traffic))
    trains = compilation.trains
    try:
        plan = compilation.exact_plans()[mode]
    except UnsupportedError as exc:
        raise NeurodeployError(source, "weight", f"not deployable to the learning engine: {exc}") from None
    return Deployment.from_plan(plan, plan.weights_to_lava(w0), rule, rng_seed,
                                traffic=None if trains is None else describe_traffic(trains, plan), mask=mask)


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


@dataclass
class NetworkDeployment:
    """A :class:`~neurodeploy.network.Network` built in Lava: one ``LIF`` per LIF population, one
    :class:`Deployment` (the learning connection) per plastic projection, one ``Dense`` per static
    projection, all wired. Connect your spike sources to the input populations with
    :meth:`connect_input`, then ``run``/``stop`` (or run any of its processes with :meth:`run_cfg`).

    Timing: every connection is Lava's dense one: a spike in step ``t`` reaches its target's ``u``
    in step ``t + 1``. A LIF's ``a_in`` sums its incoming projections in the network file's order."""

    network: object  # neurodeploy.network.Network
    plan: object  # the neurodeploy.compile.plan.Plan every plastic projection shares (one weight scale)
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
        steps = check_steps(steps, "spike_sinks.steps", self.network.source, NETWORK_MAX_STEPS)
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

    def neurons(self, name: str | None = None):
        """The Lava ``LIF`` process of population ``name``; without a name, every LIF population's
        (name -> process)."""
        if name is None:
            return dict(self.lifs)
        if name not in self.lifs:
            from neurodeploy.errors import did_you_mean
            raise NeurodeployError(self.network.source, "neurons", f"not a LIF population"
                                   f"{did_you_mean(str(name), list(self.lifs))}: LIF populations are "
                                   f"{', '.join(self.lifs)} (got {name!r})")
        return self.lifs[name]

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
    :class:`~neurodeploy.compile.plan.Plan`, or a :class:`~neurodeploy.compile.compilation.Compilation`
    (its plan of ``mode``: what a verify compiled; default: compiled on the network's own input trains, or
    on ``traffic``); ``w0``: initial plastic weights (n_lif, n_src),
    rule units (default the network's); ``rng_seed``: every learning connection's stochastic-rounding seed
    (each Lava learning connection owns its generators); ``traffic``: what the plan is scaled on when
    ``plan`` is None (as :func:`deploy`'s; default the network's own trains from its seed);
    ``record``: projection index -> ``.npy`` weight history path (verify's recording connections).
    ``reward`` (three-factor rules, the learning engine): a :class:`neurodeploy.compile.reward.RewardSchedule`
    that decides the reward from the network's spikes; each plastic projection then gets a
    :class:`neurodeploy.lava.reward.processes.RewardTraces` computing its post and reward traces online
    for ``steps`` steps (``.third_factor``)."""

    if mode not in MODES + ("cpu",):
        raise NeurodeployError("deploy", "mode", f"must be 'float', 'fixed' or 'cpu' (got {mode!r})")
    rng_seed = check_rng_seed(rng_seed)
    if mode == "cpu" and plan is not None:
        raise NeurodeployError("deploy", "plan", f"only for the learning engine (float, fixed): mode cpu runs the "
                                                 f"rule as written in rule units (got a {type(plan).__name__})")
    if plan is not None and not isinstance(plan, Mapping):
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
    elif isinstance(plan, Mapping):  # a Compilation (or plans by mode): its plan of this mode, as verified
        try:
            plan = check_plan(plan.exact_plans()[mode] if hasattr(plan, "exact_plans") else plan[mode], mode)
        except UnsupportedError as exc:
            raise NeurodeployError(source, "weight", f"not deployable to the learning engine: {exc}") from None
        except KeyError:
            raise NeurodeployError("deploy", "plan", f"has no {mode} plan (got modes {sorted(plan)})") from None
    elif plan is None:
        from neurodeploy.compile.compilation import compile_rule
        from neurodeploy.network import network_trains

        trains = network_trains(rule, network, network.seed) if traffic is None else traffic_trains(rule, traffic)
        try:
            plan = compile_rule(rule, trains).exact_plans()[mode]
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


__all__ = ["Deployment", "CpuDeployment", "NetworkDeployment", "deploy", "deploy_network", "traffic_trains",
           "describe_traffic"]
