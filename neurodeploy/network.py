"""Plastic networks: populations of Lava LIF neurons, Poisson inputs, plastic and static projections.

A network file (YAML, like a plan) describes the network; one rule (the one being verified)
learns in every plastic projection. ``verify RULE --network NET.yaml`` runs it on every backend
(protocol ``network``). Example (``reference/networks/ei_recurrent.yaml``)::

    network: ei_recurrent
    steps: 2000
    seed: 1                       # draws the connectivity masks (inputs are drawn from verify's --seed)
    populations:
      inputs: {poisson: 40, rate: 20 Hz}
      exc: {lif: 16, tau_u: 5 ms, tau_v: 20 ms, threshold: 20}
      inh: {lif: 4, tau_u: 5 ms, tau_v: 10 ms, threshold: 6}
    projections:
      - {from: inputs, to: exc, plastic: true, p: 0.5}
      - {from: exc, to: exc, plastic: true, p: 0.2}      # recurrent (no self-connections)
      - {from: exc, to: inh, weight: 0.5, p: 0.5}         # static, excitatory
      - {from: inh, to: exc, weight: -1, p: 0.5}          # static, inhibitory (fixed point: |weight| <= 1)

Units of the numbers that are not quantities: ``threshold`` and a static ``weight`` are in units of
the rule's weight range ``w_max - w_min`` (so that one network serves rules with any weight unit);
a plastic projection's ``w0`` is a position in the bounds, ``w_min + w0 (w_max - w_min)`` (0..1;
default the rule's ``w_init``); ``p`` the probability of each synapse (Bernoulli, default 1).

The compiled network is a block structure every backend shares:

* **sources**: the Poisson populations, then the LIF populations, in file order (``n_src`` rows of
  ``SpikeTrains.pre``: the inputs' rows drawn from the seed, the LIF rows the spikes each backend
  makes itself, zero in the protocol's trains);
* **targets**: the LIF populations in file order (``n_lif`` rows of ``SpikeTrains.post``);
* the plastic weights are one ``(n_lif, n_src)`` matrix whose mask is the union of the plastic
  projections (``SpikeTrains.mask``): the trajectory every backend returns and the verdict
  compares; the static weights another (:meth:`Network.static_weights`), rule units.

Every projection is Lava's dense connection: a spike in step ``t`` reaches its targets' ``u`` in
step ``t + 1``. The LIF is Lava's (:func:`neurodeploy.protocol.closed_loop`).
"""
from __future__ import annotations

import functools
import math
import os
import re
from dataclasses import dataclass, field

import numpy as np

from neurodeploy.errors import NeurodeployError, did_you_mean
from neurodeploy.limits import MAX_NEURON_STEPS, MAX_SYNAPSE_STEPS
from neurodeploy.protocol import SpikeTrains, with_reward
from neurodeploy.schedules import DistalReward, RateReward
from neurodeploy.spec.loader import _check_keys, _identifier, _StrictLoader, MAX_FILE_BYTES, parse_yaml, read_yaml
from neurodeploy.spec.units import dim_name, parse_quantity, SECOND

#: Largest network accepted: neurons, synapses (plastic and static) and steps.
MAX_NEURONS, MAX_SYNAPSES, MAX_STEPS = 100_000, 10_000_000, 10_000_000
#: Largest weight block (LIF neurons x sources): the backends hold the plastic and static weights, and
#: the masks are drawn, as dense (n_lif, n_src) arrays.
MAX_BLOCK = 25_000_000

_TOP = ("network", "description", "steps", "seed", "populations", "projections", "reward")
#: A network's reward (three-factor rules): kind -> its fields (neurodeploy.schedules).
_REWARD = {"distal": ("pre", "post", "window", "delay", "amount", "seed"),
           "rate": ("population", "target", "period", "delay", "amount")}
_POISSON = ("poisson", "rate")
_LIF = ("lif", "tau_u", "tau_v", "threshold")
_PROJECTION = ("from", "to", "plastic", "p", "weight", "w0", "autapses")


@dataclass(frozen=True)
class Population:
    name: str
    kind: str  # "poisson" or "lif"
    n: int
    rate_hz: float | None = None  # poisson
    tau_u_ms: float | None = None  # lif: current time constant
    tau_v_ms: float | None = None  # lif: membrane time constant
    threshold: float | None = None  # lif: in units of the weight range
    offset: int = 0  # first row among the sources (inputs then LIFs)
    lif_offset: int | None = None  # lif: first row among the targets (the LIF neurons)

    @property
    def sources(self) -> slice:
        return slice(self.offset, self.offset + self.n)

    @property
    def targets(self) -> slice:
        return slice(self.lif_offset, self.lif_offset + self.n)


@dataclass(frozen=True)
class Projection:
    index: int  # position in the file's list
    source: str  # population names
    target: str
    plastic: bool
    mask: np.ndarray = field(repr=False)  # bool (n_target, n_source): the synapses that exist
    weight: np.ndarray = field(repr=False)  # float (n_target, n_source), rule units (plastic: w0); 0 where absent
    p: float = 1.0

    @property
    def name(self) -> str:
        return f"{self.source}->{self.target}"


@dataclass(frozen=True)
class Network:
    name: str
    source: str  # the file's base name
    steps: int
    seed: int
    populations: tuple  # Population, in the file's order
    projections: tuple  # Projection, in the file's order
    description: str = ""
    reward: object = None  # a neurodeploy.schedules.RewardSchedule (the file's reward:), three-factor rules only

    @property
    def inputs(self) -> tuple:
        return tuple(p for p in self.ordered if p.kind == "poisson")

    @property
    def lifs(self) -> tuple:
        return tuple(p for p in self.populations if p.kind == "lif")

    @property
    def ordered(self) -> tuple:
        """The populations in source order: the Poisson ones, then the LIF ones (each in file order)."""
        return tuple(sorted(self.populations, key=lambda p: p.offset))

    def population(self, name: str) -> Population:
        return next(p for p in self.populations if p.name == name)

    @property
    def n_src(self) -> int:
        return sum(p.n for p in self.populations)

    @property
    def n_lif(self) -> int:
        return sum(p.n for p in self.lifs)

    @property
    def n_inputs(self) -> int:
        return self.n_src - self.n_lif

    def lif_array(self, attribute: str) -> np.ndarray:
        """Per LIF neuron (n_lif,): ``tau_u_ms``, ``tau_v_ms`` or ``threshold`` of its population."""
        return np.concatenate([np.full(p.n, float(getattr(p, attribute))) for p in self.lifs])

    def _block(self, plastic: bool, what: str) -> np.ndarray:
        out = np.zeros((self.n_lif, self.n_src), dtype=bool if what == "mask" else float)
        for pr in self.projections:
            if pr.plastic == plastic:
                t, s = self.projection_slices(pr)
                out[t, s] = pr.mask if what == "mask" else pr.weight
        return out

    def plastic_mask(self) -> np.ndarray:
        """bool (n_lif, n_src): the plastic synapses (the union of the plastic projections)."""
        return self._block(True, "mask")

    def plastic_w0(self) -> np.ndarray:
        """(n_lif, n_src) initial plastic weights, rule units (0 where there is no plastic synapse)."""
        return self._block(True, "weight")

    def static_mask(self) -> np.ndarray:
        return self._block(False, "mask")

    def static_weights(self) -> np.ndarray:
        """(n_lif, n_src) static weights, rule units (0 where there is no static synapse)."""
        return self._block(False, "weight")

    def projection_slices(self, projection: Projection) -> tuple:
        """(target rows, source columns) of ``projection`` in the (n_lif, n_src) blocks."""
        return self.population(projection.target).targets, self.population(projection.source).sources

    def input_spikes(self, steps: int, seed: int, dt: float) -> np.ndarray:
        """bool (n_inputs, steps): the Poisson populations' spikes, in source order, from one
        ``numpy.random.default_rng(seed)`` (population by population, as ``protocol.poisson`` draws)."""
        rng = np.random.default_rng(seed)
        rows = [rng.random((p.n, steps)) < p.rate_hz * dt for p in self.inputs]
        return np.concatenate(rows) if rows else np.zeros((0, steps), dtype=bool)

    def to_dict(self) -> dict:
        return {"network": self.name, "file": self.source, "steps": self.steps, "structure_seed": self.seed,
                "populations": [{k: v for k, v in (("name", p.name), ("kind", p.kind), ("n", p.n),
                                                   ("rate_hz", p.rate_hz), ("tau_u_ms", p.tau_u_ms),
                                                   ("tau_v_ms", p.tau_v_ms), ("threshold", p.threshold))
                                 if v is not None} for p in self.populations],
                "projections": [{"from": pr.source, "to": pr.target, "plastic": pr.plastic, "p": pr.p,
                                 "synapses": int(pr.mask.sum())} for pr in self.projections],
                **({"reward": self.reward.describe()} if self.reward is not None else {})}


#: YAML 1.2's (and JSON's) floats: ``1e-9`` and ``2E3`` too, which YAML 1.1 (PyYAML) reads as text.
_YAML12_FLOAT = re.compile(r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$")
_MERGE_TAG = "tag:yaml.org,2002:merge"


@functools.lru_cache(maxsize=None)
def _network_loader():
    """The rule loader's strict YAML (no aliases, no duplicated keys, no tags) reading numbers as YAML 1.2
    does (``1e-9`` is a number) and refusing merge keys (``<<``) as what they are (PyYAML resolves them to
    a tag of their own, which the strict loader reported as a tag)."""
    import yaml


    class NetworkLoader(_StrictLoader):
        def construct_mapping(self, node, deep=False):
            for key_node, _ in node.value:
                if key_node.tag == _MERGE_TAG:
                    raise yaml.constructor.ConstructorError(None, None, "merge keys (<<) are not allowed",
                                                            key_node.start_mark)
            return super().construct_mapping(node, deep=deep)

    NetworkLoader.add_implicit_resolver("tag:yaml.org,2002:float", _YAML12_FLOAT, list("-+.0123456789"))
    return NetworkLoader


def _parse(text: str, source: str):
    """``text`` parsed by :func:`_network_loader`; problems as the rule loader words them (one line)."""

    return parse_yaml(text, source, _network_loader())


def read_network(path: str) -> tuple:
    """(data, source) of the network file at ``path``: read and parsed, not yet validated (that needs
    the rule: :func:`network_from_dict`). Cheap: a command refuses a bad file before loading the rule.

    The file's checks (a regular file, its size, UTF-8, nesting) and its strict YAML are the rule
    loader's (:func:`neurodeploy.spec.loader.read_yaml`); the text is then read with YAML 1.2's numbers
    (:func:`_network_loader`)."""

    source = os.path.basename(os.fspath(path)) or os.fspath(path)
    try:
        _, text = read_yaml(path, source)
    except NeurodeployError as exc:
        if not exc.message.endswith("tags (!name) are not allowed"):
            raise
        try:  # the file passed read_yaml's checks: a merge key is worded as such
            with open(path, "rb") as handle:
                text = handle.read(MAX_FILE_BYTES + 1).decode("utf-8")
        except (OSError, UnicodeDecodeError):
            raise exc from None
        _parse(text, source)
        raise
    data = _parse(text, source)
    if data is None:
        raise NeurodeployError(source, "", "file is empty")
    return data, source


def load_network(path: str, rule) -> Network:
    """Load and validate the network file at ``path`` for ``rule`` (weights in its units)."""
    data, source = read_network(path)
    return network_from_dict(data, source, rule)


def _int(value, source, field_name, lo, hi):
    if isinstance(value, bool) or not isinstance(value, int):
        raise NeurodeployError(source, field_name, f"must be an integer (got {value!r})")
    if not lo <= value <= hi:
        raise NeurodeployError(source, field_name, f"must be between {lo} and {hi} (got {value})")
    return value


def _number(value, source, field_name, lo=-math.inf, hi=math.inf, lo_open=False):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(float(value)):
        raise NeurodeployError(source, field_name, f"must be a finite number (got {value!r})")
    value = float(value)
    if value < lo or value > hi or (lo_open and value == lo):
        bound = f"> {lo:g}" if lo_open and hi == math.inf else (f">= {lo:g}" if hi == math.inf else
                                                                 f"between {lo:g} and {hi:g}")
        raise NeurodeployError(source, field_name, f"must be {bound} (got {value:g})")
    return value


def _quantity(value, source, field_name, unit: str, dim) -> float:

    q = parse_quantity(value, source, field_name)
    if q.dim != dim:
        raise NeurodeployError(source, field_name, f"must be in {unit} (got {q.text}, {dim_name(q.dim)})")
    if not q.value > 0:
        raise NeurodeployError(source, field_name, f"must be > 0 (got {q.text})")
    return q.value


def network_from_dict(data, source: str, rule) -> Network:

    if not isinstance(data, dict):
        raise NeurodeployError(source, "", f"must be a mapping with 'network', 'populations' and 'projections' "
                                           f"(got {type(data).__name__})")
    _check_keys(data, _TOP, source, "")
    for key in ("network", "populations", "projections"):
        if key not in data:
            raise NeurodeployError(source, key, "missing")
    name = _identifier(data["network"], source, "network")
    description = data.get("description") or ""
    if not isinstance(description, str):
        raise NeurodeployError(source, "description", f"must be text (got {type(description).__name__})")
    steps = _int(data.get("steps", 2000), source, "steps", 1, MAX_STEPS)
    seed = _int(data.get("seed", 0), source, "seed", 0, 2 ** 32 - 1)
    raw_pops = data["populations"]
    if not isinstance(raw_pops, dict) or not raw_pops:
        raise NeurodeployError(source, "populations", "must be a non-empty mapping of name -> population")
    hertz = SECOND ** -1
    specs = []
    for pname, raw in raw_pops.items():
        where = f"populations.{pname}"
        _identifier(pname, source, where)
        if not isinstance(raw, dict):
            raise NeurodeployError(source, where, f"must be a mapping such as {{poisson: 40, rate: 20 Hz}} or "
                                                  f"{{lif: 16, tau_u: 5 ms, tau_v: 20 ms, threshold: 20}} "
                                                  f"(got {type(raw).__name__})")
        kinds = [k for k in ("poisson", "lif") if k in raw]
        if len(kinds) != 1:
            raise NeurodeployError(source, where, "must have exactly one of 'poisson: N' or 'lif: N' "
                                                  f"(got {', '.join(map(str, raw)) or 'neither'})")
        kind = kinds[0]
        _check_keys(raw, _POISSON if kind == "poisson" else _LIF, source, where)
        n = _int(raw[kind], source, f"{where}.{kind}", 1, MAX_NEURONS)
        if kind == "poisson":
            if "rate" not in raw:
                raise NeurodeployError(source, f"{where}.rate", "missing (a rate such as '20 Hz')")
            rate = _quantity(raw["rate"], source, f"{where}.rate", "Hz", hertz)
            if rate * rule.dt > 1:
                raise NeurodeployError(source, f"{where}.rate", f"must be at most one spike per step, "
                                                                f"{1 / rule.dt:g} Hz at the rule's dt (got {raw['rate']})")
            specs.append(dict(name=pname, kind=kind, n=n, rate_hz=rate))
        else:
            for key in ("tau_u", "tau_v", "threshold"):
                if key not in raw:
                    raise NeurodeployError(source, f"{where}.{key}", "missing")
            tau_u = _quantity(raw["tau_u"], source, f"{where}.tau_u", "a time such as '5 ms'", SECOND) * 1e3
            tau_v = _quantity(raw["tau_v"], source, f"{where}.tau_v", "a time such as '20 ms'", SECOND) * 1e3
            for key, tau in (("tau_u", tau_u), ("tau_v", tau_v)):
                if tau < rule.dt * 1e3:
                    raise NeurodeployError(source, f"{where}.{key}", f"must be at least the rule's dt "
                                                                     f"{rule.dt * 1e3:g} ms (got {raw[key]})")
            threshold = _number(raw["threshold"], source, f"{where}.threshold", 0, lo_open=True)
            specs.append(dict(name=pname, kind=kind, n=n, tau_u_ms=tau_u, tau_v_ms=tau_v, threshold=threshold))
    if sum(s["n"] for s in specs) > MAX_NEURONS:
        raise NeurodeployError(source, "populations", f"at most {MAX_NEURONS} neurons in all "
                                                      f"(got {sum(s['n'] for s in specs)})")
    populations, offset, lif_offset = {}, 0, 0
    for kind in ("poisson", "lif"):  # sources: the inputs first, then the LIF neurons
        for s in specs:
            if s["kind"] == kind:
                populations[s["name"]] = Population(**s, offset=offset,
                                                    lif_offset=lif_offset if kind == "lif" else None)
                offset += s["n"]
                lif_offset += s["n"] if kind == "lif" else 0
    if not any(p.kind == "lif" for p in populations.values()):
        raise NeurodeployError(source, "populations", "needs at least one 'lif' population (the neurons that learn)")
    n_lif = sum(p.n for p in populations.values() if p.kind == "lif")
    if n_lif * offset > MAX_BLOCK:
        raise NeurodeployError(source, "populations", f"{n_lif} LIF neurons x {offset} sources = {n_lif * offset:,} "
                                                      f"weight entries, at most {MAX_BLOCK:,} (the weights are held as "
                                                      "dense LIF x source blocks)")

    raw_proj = data["projections"]
    if not isinstance(raw_proj, list) or not raw_proj:
        raise NeurodeployError(source, "projections", "must be a non-empty list of {from, to, ...}")
    rng = np.random.default_rng(seed)
    w = rule.weight
    projections, seen, synapses = [], set(), 0
    for k, raw in enumerate(raw_proj):
        where = f"projections[{k}]"
        if not isinstance(raw, dict):
            raise NeurodeployError(source, where, f"must be a mapping such as {{from: inputs, to: exc, plastic: true}} "
                                                  f"(got {type(raw).__name__})")
        _check_keys(raw, _PROJECTION, source, where)
        ends = {}
        for end in ("from", "to"):
            if end not in raw:
                raise NeurodeployError(source, f"{where}.{end}", "missing")
            pop = raw[end]
            if not isinstance(pop, str):
                kind = "list" if isinstance(pop, list) else "mapping" if isinstance(pop, dict) else type(pop).__name__
                raise NeurodeployError(source, f"{where}.{end}", f"must be the name of one population, not a {kind} "
                                       f"(populations: {', '.join(populations)}) (got {pop!r})")
            if pop not in populations:
                raise NeurodeployError(source, f"{where}.{end}", f"unknown population {pop!r}"
                                       f"{did_you_mean(str(pop), list(populations))} (populations: "
                                       f"{', '.join(populations)})")
            ends[end] = populations[pop]
        pre, post = ends["from"], ends["to"]
        if post.kind != "lif":
            raise NeurodeployError(source, f"{where}.to", f"must be a 'lif' population: '{post.name}' is a "
                                                          "Poisson input, which receives nothing")
        plastic = raw.get("plastic", False)
        if not isinstance(plastic, bool):
            raise NeurodeployError(source, f"{where}.plastic", f"must be true or false (got {plastic!r})")
        if (pre.name, post.name, plastic) in seen:
            raise NeurodeployError(source, where, f"a second {'plastic' if plastic else 'static'} projection "
                                                  f"{pre.name} -> {post.name}: merge them")
        seen.add((pre.name, post.name, plastic))
        p = _number(raw.get("p", 1.0), source, f"{where}.p", 0, 1)
        autapses = raw.get("autapses", False)
        if not isinstance(autapses, bool):
            raise NeurodeployError(source, f"{where}.autapses", f"must be true or false (got {autapses!r})")
        if "autapses" in raw and pre.name != post.name:
            raise NeurodeployError(source, f"{where}.autapses", f"only for a recurrent projection (from = to): "
                                                                f"{pre.name} -> {post.name} has no synapse of a neuron "
                                                                "onto itself")
        if plastic:
            if "weight" in raw:
                raise NeurodeployError(source, f"{where}.weight", "a plastic projection starts from 'w0' "
                                                                  "(0..1 within the rule's bounds), not 'weight'")
            if "w0" in raw:
                position = _number(raw["w0"], source, f"{where}.w0", 0, 1)
                value = w.w_min + position * w.range
            else:
                value = w.w_init
        else:
            if "w0" in raw:
                raise NeurodeployError(source, f"{where}.w0", "a static projection has a 'weight' (in units of "
                                                              "the weight range), not 'w0'")
            if "weight" not in raw:
                raise NeurodeployError(source, f"{where}.weight", "missing (a static projection's weight, in "
                                                                  "units of the rule's weight range; < 0 inhibits)")
            value = _number(raw["weight"], source, f"{where}.weight", -1e6, 1e6) * w.range
        mask = rng.random((post.n, pre.n)) < p
        if pre.name == post.name and not autapses:
            np.fill_diagonal(mask, False)
        synapses += int(mask.sum())
        if synapses > MAX_SYNAPSES:
            raise NeurodeployError(source, where, f"at most {MAX_SYNAPSES} synapses in all (got more)")
        projections.append(Projection(k, pre.name, post.name, plastic, mask, np.where(mask, value, 0.0), p))
    if not any(pr.plastic and pr.mask.any() for pr in projections):
        raise NeurodeployError(source, "projections", "needs at least one plastic projection with a synapse "
                                                      "(plastic: true): the rule learns there")
    parts = _parts(populations, projections)
    if len(parts) > 1:
        shown = " and ".join("{" + ", ".join(part) + "}" for part in parts[:3]) + (" ..." if len(parts) > 3 else "")
        empty = [pr for pr in projections if not pr.mask.any()]
        joining = [pr for pr in empty if _part_of(parts, pr.source) != _part_of(parts, pr.target)]
        why = "".join(f"; projections[{pr.index}] ({pr.source} -> {pr.target}, p {pr.p:g}) has no synapse: it "
                      "connects nothing" for pr in joining[:3])
        raise NeurodeployError(source, "projections", f"the network falls into {len(parts)} unconnected parts "
                                                      f"({shown}): Lava runs only the part connected to the process "
                                                      f"it starts; verify each part as its own network{why}")
    reward = _reward(data["reward"], source, populations, rule) if data.get("reward") is not None else None
    return Network(name, source, steps, seed, tuple(populations.values()), tuple(projections), description.strip(),
                   reward)


def _steps(value, source, field_name, rule) -> int:
    """A time such as '10 ms' in whole steps of the rule's dt (at least one)."""
    seconds = _quantity(value, source, field_name, "a time such as '10 ms'", SECOND)
    steps = int(round(seconds / rule.dt))
    if steps < 1:
        raise NeurodeployError(source, field_name, f"must be at least the rule's dt {rule.dt * 1e3:g} ms (got {value})")
    return steps


def _neuron(value, source, field_name, populations: dict, lif: bool) -> int:
    """'name[i]' (or 'name' of a one-neuron population): its row among the sources, or among the LIF
    neurons (``lif``)."""
    m = re.fullmatch(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:\[\s*([0-9]+)\s*\])?\s*", value) \
        if isinstance(value, str) else None
    if m is None:
        raise NeurodeployError(source, field_name, f"must name one neuron, such as 'exc[0]' (got {value!r})")
    name, index = m.group(1), m.group(2)
    if name not in populations:
        raise NeurodeployError(source, field_name, f"unknown population {name!r}" + did_you_mean(name, populations)
                               + f" (populations: {', '.join(populations)})")
    pop = populations[name]
    if lif and pop.kind != "lif":
        raise NeurodeployError(source, field_name, f"must be a LIF neuron (the neuron whose spikes are rewarded); "
                                                   f"{name} is a Poisson population")
    if index is None:
        if pop.n != 1:
            raise NeurodeployError(source, field_name, f"{name} has {pop.n} neurons: say which, e.g. '{name}[0]'")
        index = 0
    index = int(index)
    if index >= pop.n:
        raise NeurodeployError(source, field_name, f"{name} has {pop.n} neurons (0..{pop.n - 1}; got index {index})")
    return (pop.lif_offset if lif else pop.offset) + index


def _reward(raw, source, populations: dict, rule):
    """The file's ``reward:`` section: a :class:`neurodeploy.schedules.RewardSchedule`."""
    example = "{distal: {pre: cue, post: 'exc[0]', window: 10 ms, delay: [1 s, 3 s]}}"
    if not any(t.of == "reward" for t in rule.traces):
        raise NeurodeployError(source, "reward", f"the rule {rule.name} has no reward trace (of: reward): a reward "
                                                 "is the third factor of a three-factor rule")
    if not isinstance(raw, dict) or len(raw) != 1:
        raise NeurodeployError(source, "reward", f"must be one kind of reward, distal or rate, such as {example} "
                                                 f"(got {raw!r})")
    (kind, fields), = raw.items()
    if kind not in _REWARD:
        raise NeurodeployError(source, "reward", f"unknown kind {kind!r}" + did_you_mean(str(kind), _REWARD)
                               + " (kinds: distal, rate)")
    where = f"reward.{kind}"
    if not isinstance(fields, dict):
        raise NeurodeployError(source, where, f"must be a mapping of its fields ({', '.join(_REWARD[kind])}) "
                                              f"(got {type(fields).__name__})")
    _check_keys(fields, _REWARD[kind], source, where)
    amount = _number(fields.get("amount", 1.0), source, f"{where}.amount", -1e6, 1e6)
    if kind == "distal":
        for key in ("pre", "post"):
            if key not in fields:
                raise NeurodeployError(source, f"{where}.{key}", "missing (one neuron, such as 'exc[0]')")
        pre = _neuron(fields["pre"], source, f"{where}.pre", populations, lif=False)
        post = _neuron(fields["post"], source, f"{where}.post", populations, lif=True)
        window = _steps(fields.get("window", "10 ms"), source, f"{where}.window", rule)
        delay = fields.get("delay", ["1 s", "3 s"])
        if not isinstance(delay, list) or len(delay) != 2:
            raise NeurodeployError(source, f"{where}.delay", f"must be [shortest, longest], such as [1 s, 3 s] "
                                                             f"(got {delay!r})")
        lo, hi = (_steps(d, source, f"{where}.delay", rule) for d in delay)
        if lo > hi:
            raise NeurodeployError(source, f"{where}.delay", f"the shortest must not exceed the longest (got {delay})")
        seed = _int(fields.get("seed", 0), source, f"{where}.seed", 0, 2 ** 32 - 1)
        return DistalReward(pre, post, window, lo, hi, amount, seed)
    if "population" not in fields:
        raise NeurodeployError(source, f"{where}.population", "missing (the LIF population whose rate is rewarded)")
    name = fields["population"]
    pop = populations.get(name) if isinstance(name, str) else None
    if pop is None or pop.kind != "lif":
        raise NeurodeployError(source, f"{where}.population", f"must be a LIF population "
                               f"({', '.join(n for n, p in populations.items() if p.kind == 'lif')}) (got {name!r})")
    if "target" not in fields:
        raise NeurodeployError(source, f"{where}.target", "missing (spikes per period above which the reward comes)")
    target = _int(fields["target"], source, f"{where}.target", 0, 10 ** 9)
    period = _steps(fields.get("period", "100 ms"), source, f"{where}.period", rule)
    delay = _steps(fields.get("delay", "1 s"), source, f"{where}.delay", rule)
    return RateReward(np.arange(pop.lif_offset, pop.lif_offset + pop.n), target, period, delay, amount)


def _part_of(parts: list, name: str) -> int:
    return next(k for k, part in enumerate(parts) if name in part)


def _parts(populations: dict, projections: list) -> list:
    """The connected parts of the network (populations linked by a projection with at least one synapse,
    in either direction), each a list of names in file order. A projection without a synapse (``p: 0``)
    connects nothing: no backend builds it (Lava would not run what only it joins)."""
    parent = {name: name for name in populations}

    def root(name):
        while parent[name] != name:
            parent[name] = parent[parent[name]]
            name = parent[name]
        return name

    for pr in projections:
        if pr.mask.any():
            parent[root(pr.source)] = root(pr.target)
    groups = {}
    for name in populations:
        groups.setdefault(root(name), []).append(name)
    return list(groups.values())


def check_size(network: Network, steps: int, source: str, field_name: str) -> None:
    """Refuse a run of ``network`` for ``steps`` beyond the run limits of every protocol
    (:data:`neurodeploy.protocol.MAX_SYNAPSE_STEPS`, ``MAX_NEURON_STEPS``) or :data:`MAX_STEPS`;
    ``source``/``field_name`` name where ``steps`` came from."""

    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise NeurodeployError(source, field_name, f"must be a whole number >= 1 (got {steps!r})")
    if steps > MAX_STEPS or float(steps) * network.n_lif * network.n_src > MAX_SYNAPSE_STEPS \
            or steps * network.n_src > MAX_NEURON_STEPS:
        raise NeurodeployError(source, field_name,
                               f"run too large ({steps} steps x {network.n_lif}x{network.n_src} neurons; at most "
                               f"{MAX_STEPS:,} steps, {MAX_SYNAPSE_STEPS:,} synapse-steps and {MAX_NEURON_STEPS:,} "
                               "neuron-steps)")


def network_trains(rule, network: Network, seed: int, steps: int | None = None):
    """The protocol ``network``: :class:`neurodeploy.protocol.SpikeTrains` whose ``pre`` rows are the
    sources (the inputs' Poisson spikes from ``seed``; the LIF rows zero: each backend's neurons make
    them), ``post`` the LIF neurons (zero), ``w0``/``mask`` the plastic block and ``network`` the rest."""

    steps = network.steps if steps is None else int(steps)
    pre = np.zeros((network.n_src, steps), dtype=bool)
    pre[: network.n_inputs] = network.input_spikes(steps, seed, rule.dt)
    post = np.zeros((network.n_lif, steps), dtype=bool)
    rates = [p.rate_hz for p in network.inputs]

    # a three-factor rule: the protocols' default reward per LIF neuron (Brian2 runs it; the engine's
    # supplied y traces need the post spikes in advance: the Lava and emulator backends refuse it)
    trains = with_reward(rule, SpikeTrains(pre, post, network.plastic_w0(), f"network:{network.name}", seed,
                                           rates[0] if len(set(rates)) == 1 else None, mask=network.plastic_mask(),
                                           network=network))
    if network.reward is not None:  # the file's reward, decided online from the network's own spikes
        import dataclasses

        trains = dataclasses.replace(trains, reward=np.zeros_like(trains.reward), reward_schedule=network.reward)
    return trains


def with_spikes(trains, lif_spikes: np.ndarray):
    """``trains`` with the LIF neurons' spikes (n_lif, steps) a backend made: as ``post`` and as the LIF
    rows of ``pre`` (recurrent projections read them there); a plain closed loop: ``post`` only."""
    import dataclasses

    lif_spikes = np.asarray(lif_spikes, dtype=bool)
    if getattr(trains, "network", None) is None:
        return dataclasses.replace(trains, post=lif_spikes)
    pre = trains.pre.copy()
    pre[trains.network.n_inputs:] = lif_spikes
    return dataclasses.replace(trains, pre=pre, post=lif_spikes)


def reseed(rule, trains, seed: int):
    """The network ``trains`` with its inputs drawn from ``seed`` (same structure, weights, steps)."""
    import dataclasses

    pre = np.zeros_like(trains.pre)
    pre[: trains.network.n_inputs] = trains.network.input_spikes(trains.steps, seed, rule.dt)
    return dataclasses.replace(trains, pre=pre, seed=seed)


def closed_loop_network(trains):
    """The closed loop ``trains`` (``trains.neuron``, an optional ``mask``) as a one-projection network: its
    pre neurons an input population, its LIF neurons one population, one plastic projection with the mask
    (Lava's closed loop with a mask: a ``LearningSparse`` driving the LIF). Returns (network, w0 (n_post,
    n_pre + n_post))."""
    n = trains.neuron
    n_pre, n_post = trains.n_pre, trains.n_post
    mask = np.ones((n_post, n_pre), dtype=bool) if trains.mask is None else np.asarray(trains.mask, dtype=bool)
    pops = (Population("pre", "poisson", n_pre, rate_hz=trains.rate or 0.0, offset=0),
            Population("post", "lif", n_post, tau_u_ms=n["tau_u_ms"], tau_v_ms=n["tau_v_ms"],
                       threshold=n["threshold"], offset=n_pre, lif_offset=0))
    projection = Projection(0, "pre", "post", True, mask, np.where(mask, trains.w0, 0.0))
    w0 = np.zeros((n_post, n_pre + n_post))
    w0[:, :n_pre] = trains.w0
    return Network("closed_loop", "closed-loop", trains.steps, 0, pops, (projection,)), w0
