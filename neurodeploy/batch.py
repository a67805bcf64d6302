"""Batch plans: compile and verify every combination of rules, protocols, seeds and parameters.

A plan file::

    name: smoke
    rules: [stdp_pair, ltp_ltd_soft]        # library names or paths (relative to the plan)
    protocols:
      - {name: poisson, steps: 500, n_pre: 5, n_post: 5, rate: 10}
      - {name: pairing, pairs: 20, dt_ms: 10, frequency: 5}
    backends: [brian2, brian2-step, lava-float, lava-fixed]   # default: these four, or
                                                              # brian2, brian2-step, lava-cpu where the
                                                              # learning engine cannot express the rule
    seeds: [1, 2]                            # default: [3]
    grid: {A_plus: [0.005, 0.01]}            # optional; applied to the rules that have the parameter

Each run (rule x grid point x protocol x seed) gets ``DIR/<run>/`` with the
standalone code (``compile``), the verify report and ``run.json``; the plan
gets ``DIR/summary.json`` and ``DIR/summary.md``. A run whose inputs (rule
file content, parameters, protocol and options, seed, backends, neurodeploy
version) are unchanged is skipped unless ``force``. Runs execute in this
process (``jobs=1``), in a local process pool, or on a Dask cluster.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from neurodeploy.version import __version__
from neurodeploy.errors import NeurodeployError, UnsupportedError, did_you_mean
from neurodeploy.report import _jsonable
from neurodeploy.files import _atomic
from neurodeploy.running import default_backends, fork_map
from neurodeploy.library import LIBRARY
from neurodeploy.protocol import make_trains, protocol_options
from neurodeploy.spec.loader import read_yaml, rule_from_dict

from neurodeploy.backend import ORDER
from neurodeploy.files import locked, remove_tree, staging_dir
from neurodeploy.network import check_size, network_from_dict, network_trains, read_network
from neurodeploy.progress import check_signals
from neurodeploy.verdict import EXIT_NOT_CHECKED, OUTCOMES

_PLAN_KEYS = ("name", "rules", "protocols", "backends", "seeds", "grid")
MAX_RUNS = 10_000


@dataclass(frozen=True)
class RunSpec:
    """One run of a plan: everything needed to redo it, and nothing else."""

    run_id: str  # directory name under the plan's output
    rule_file: str  # path of the rule file
    rule_text: str  # its content (part of the cache key)
    params: dict  # parameter overrides from the grid: name -> value as written
    protocol: str
    options: dict  # protocol options, defaults filled in
    seed: int
    backends: tuple
    version: str = __version__

    def key(self) -> str:
        data = {k: v for k, v in asdict(self).items() if k not in ("run_id", "rule_file")}
        return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def _inside(path: str, folder: str) -> bool:
    path, folder = os.path.realpath(path), os.path.realpath(folder)
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


#: The option of ``neurodeploy run`` that lets a plan name rule files anywhere.
OUTSIDE_OPTION = "--allow-outside-rules"


def resolve_rule(entry, plan_dir: str, source: str, field_name: str, allow_outside: bool = False) -> str:
    """The rule file of a plan's ``rules`` entry: a library name, or a path relative to the plan.

    Unless ``allow_outside``, the file (symbolic links resolved) must be under the plan's
    directory or the rule library: a plan cannot make neurodeploy read (and quote) any file."""
    if not isinstance(entry, str) or not entry.strip():
        raise NeurodeployError(source, field_name, f"must be a rule name or path (got {entry!r})")
    candidates = [os.path.join(plan_dir, entry)]
    if re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", entry):
        candidates.insert(0, os.path.join(LIBRARY, f"{entry}.yaml"))
    if not allow_outside and not any(_inside(p, plan_dir) or _inside(p, LIBRARY) for p in candidates):
        raise NeurodeployError(source, field_name, f"must be a library rule or a file under the plan's directory "
                                                   f"({OUTSIDE_OPTION} allows any path) (got {entry!r})")
    for path in candidates:
        if os.path.isfile(path) and (allow_outside or _inside(path, plan_dir) or _inside(path, LIBRARY)):
            return path
    raise NeurodeployError(source, field_name, f"no rule '{entry}' (neither in the library nor a file)")


def rule_with(path: str, params: dict):
    """The rule at ``path`` with parameters overridden (validated like the file itself)."""
    source = os.path.basename(path)
    data, text = read_yaml(path, source)
    if data is None:
        raise NeurodeployError(source, "", "file is empty")
    if params:
        if not isinstance(data, dict) or not isinstance(data.get("parameters"), dict):
            raise NeurodeployError(source, "parameters", "missing")
        data = dict(data, parameters=dict(data["parameters"], **params))
    return rule_from_dict(data, source, text)


def _list(value, source, field_name, default=None):
    if value is None and default is not None:
        return list(default)
    if not isinstance(value, list) or not value:
        raise NeurodeployError(source, field_name, f"must be a non-empty list (got {value!r})")
    return value


def load_plan(path: str, allow_outside: bool = False) -> tuple:
    """(plan name, [RunSpec]) from a plan file; every rule and option is validated first.

    ``allow_outside``: rule paths may lead outside the plan's directory and the library."""

    source = os.path.basename(path) or path
    data, _ = read_yaml(path, source)
    if not isinstance(data, dict):
        raise NeurodeployError(source, "", "must be a mapping with rules and protocols")
    for key in data:
        if key not in _PLAN_KEYS:
            raise NeurodeployError(source, str(key), f"unknown field (allowed: {', '.join(_PLAN_KEYS)})")
    name = data.get("name", os.path.splitext(source)[0])
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise NeurodeployError(source, "name", f"must be a plain name (got {name!r})")
    plan_dir = os.path.dirname(os.path.abspath(path))
    rule_files = [resolve_rule(r, plan_dir, source, f"rules[{i}]", allow_outside)
                  for i, r in enumerate(_list(data.get("rules"), source, "rules"))]
    backends = _list(data.get("backends"), source, "backends") if "backends" in data else None
    for i, b in enumerate(backends or ()):
        if b not in ORDER:
            raise NeurodeployError(source, f"backends[{i}]", f"unknown backend '{b}'{did_you_mean(b, ORDER)} (known: {', '.join(ORDER)})")
    seeds = _list(data.get("seeds"), source, "seeds", [3])
    for i, s in enumerate(seeds):
        if isinstance(s, bool) or not isinstance(s, int) or s < 0:
            raise NeurodeployError(source, f"seeds[{i}]", f"must be a whole number >= 0 (got {s!r})")
    protocols = []
    for i, p in enumerate(_list(data.get("protocols"), source, "protocols", [{"name": "poisson"}])):
        if not isinstance(p, dict) or "name" not in p:
            raise NeurodeployError(source, f"protocols[{i}]", f"must be a mapping with a name (got {p!r})")
        options = {k: v for k, v in p.items() if k != "name"}
        if p["name"] == "network":  # a network file beside the plan: validated per rule below
            protocols.append(("network", _network_entry(options, plan_dir, source, f"protocols[{i}]", allow_outside)))
            continue
        protocols.append((p["name"], protocol_options(p["name"], options, source, f"protocols[{i}].")))
    names_used = [p for p, _ in protocols]
    labels = [p if names_used.count(p) == 1 else f"{p}{i}" for i, p in enumerate(names_used)]
    grid = data.get("grid") or {}
    if not isinstance(grid, dict):
        raise NeurodeployError(source, "grid", f"must be a mapping parameter -> list of values (got {grid!r})")
    points_total = 1
    for key, values in grid.items():
        points_total *= len(_list(values, source, f"grid.{key}"))
    total = len(rule_files) * points_total * len(protocols) * len(seeds)
    if total > MAX_RUNS:  # checked before any rule is loaded per grid point
        raise NeurodeployError(source, "", f"{total} runs, at most {MAX_RUNS}")
    bases = {rule_file: rule_with(rule_file, {}) for rule_file in rule_files}
    for key in grid:  # a grid key no rule has (a typo) would silently give one run without it
        if not any(key in {p.name for p in base.parameters} for base in bases.values()):
            known = sorted({p.name for base in bases.values() for p in base.parameters})
            raise NeurodeployError(source, f"grid.{key}", f"not a parameter of "
                                   f"{', '.join(base.name for base in bases.values())} "
                                   f"(parameters: {', '.join(known)})")
    specs = []
    for rule_file in rule_files:
        base = bases[rule_file]
        names = {p.name for p in base.parameters}
        axes = [(k, v) for k, v in grid.items() if k in names]
        points = [{}]
        for key, values in axes:
            points = [dict(pt, **{key: v}) for pt in points for v in values]
        with open(rule_file, encoding="utf-8") as handle:
            text = handle.read()
        for params in points:
            rule = rule_with(rule_file, params)  # a bad grid value fails here, before anything runs
            for index, (label, (protocol, options)) in enumerate(zip(labels, protocols)):
                plan_trains(rule, protocol, options, 0, source, f"protocols[{index}]", check_only=True)  # sizes, rates
                for seed in seeds:
                    suffix = "".join(f"-{k}={v}" for k, v in params.items())
                    run_id = re.sub(r"[^A-Za-z0-9_.=+-]", "_", f"{rule.name}-{label}-seed{seed}{suffix}")
                    chosen = tuple(backends) if backends is not None else default_backends(rule)
                    specs.append(RunSpec(run_id, rule_file, text, params, protocol, options, seed, chosen))
    if len({s.run_id for s in specs}) != len(specs):
        raise NeurodeployError(source, "rules", "two runs would share a directory (a rule listed twice?)")
    if len(specs) > MAX_RUNS:
        raise NeurodeployError(source, "", f"{len(specs)} runs, at most {MAX_RUNS}")
    return name, specs


def _weight_stats(w) -> dict:
    w = np.asarray(w, dtype=float)
    w = w[~np.isnan(w)] if np.isnan(w).any() and not np.isnan(w).all() else w  # absent synapses (a mask)
    return {"mean": float(w.mean()), "std": float(w.std()), "min": float(w.min()), "max": float(w.max())}


def _network_entry(options: dict, plan_dir: str, source: str, where: str, allow_outside: bool) -> dict:
    """A plan's ``{name: network, network: FILE, steps: N}``: the file (under the plan's directory
    unless ``allow_outside``), its text (part of the runs' cache key) and the optional steps."""

    for key in options:
        if key not in ("network", "steps"):
            raise NeurodeployError(source, f"{where}.{key}", "not an option of protocol 'network' (options: network, steps)")
    entry = options.get("network")
    if not isinstance(entry, str) or not entry.strip():
        raise NeurodeployError(source, f"{where}.network", f"must be the path of a network file (got {entry!r})")
    path = os.path.join(plan_dir, entry)
    if not allow_outside and not _inside(path, plan_dir):
        raise NeurodeployError(source, f"{where}.network", f"must be a file under the plan's directory "
                                                           f"({OUTSIDE_OPTION} allows any path) (got {entry!r})")
    read_network(path)  # readable, YAML
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    out = {"network": os.path.abspath(path), "network_text": text}
    if "steps" in options:
        steps = options["steps"]
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise NeurodeployError(source, f"{where}.steps", f"must be a whole number >= 1 (got {steps!r})")
        out["steps"] = steps
    return out


def plan_trains(rule, protocol: str, options: dict, seed: int, source: str = "", where: str = "",
                check_only: bool = False):
    """The spike trains of one run: a protocol with options, or a network file (``check_only``: the
    network and the run's size validated, no trains built)."""
    if protocol != "network":
        return make_trains(rule, protocol, options, seed, source, f"{where}." if where else "")

    data, net_source = read_network(options["network"])
    network = network_from_dict(data, net_source, rule)
    if "steps" in options:
        check_size(network, options["steps"], source, f"{where}.steps")
    else:
        check_size(network, network.steps, net_source, "steps")
    return None if check_only else network_trains(rule, network, seed, options.get("steps"))


def run_one(spec: RunSpec, out_dir: str) -> dict:
    """Compile and verify one run; write its directory; return its summary entry.

    The run directory holds one run's files or none: the old one is discarded before the run starts
    (no old result survives a failed or interrupted run), the new one is written aside (a hidden
    ``.<run>.*.partial`` directory beside it) and renamed into place complete, ``run.json`` last."""
    from neurodeploy.codegen import write_compiled
    from neurodeploy.verification import verify

    start = time.perf_counter()
    run_dir = os.path.join(out_dir, spec.run_id)
    os.makedirs(out_dir, exist_ok=True)
    _discard_run_dir(out_dir, spec.run_id)
    stage = staging_dir(out_dir, spec.run_id)
    try:
        rule = rule_with(spec.rule_file, spec.params)
        trains = plan_trains(rule, spec.protocol, spec.options, spec.seed)
        compiled = write_compiled(rule, "brian2", stage)
        try:
            compiled += write_compiled(rule, "lava", stage, trains=trains)
        except UnsupportedError:
            pass
        report = verify(rule, trains, spec.backends)
        check_signals()  # a signal whose exception Python dropped ends the run here, before anything is kept
        report.write(stage)
        data = report.to_dict()
        entry = {
            "run": spec.run_id, "rule": rule.name, "rule_file": os.path.basename(spec.rule_file),
            "protocol": spec.protocol, "options": {k: v for k, v in spec.options.items() if k != "network_text"},
            "params": spec.params, "seed": spec.seed,
            "backends": [b["name"] for b in data["backends"] if b["ran"]],
            "skipped_backends": {b["name"]: b["reason"] for b in data["backends"] if not b["ran"]},
            "comparisons": [{k: c.get(k) for k in ("reference", "candidate", "share", "max_abs_error_normalized",
                                                   "rmse_normalized", "passed", "outcome")} for c in data["comparisons"]],
            "passed": data["passed"], "outcome": data["outcome"], "counts": data["counts"],
            # what the runs learned, per backend: the final weights' mean, spread and range (rule units)
            "final_weights": {name: _weight_stats(res.trajectory[-1]) for name, res in report.results.items()},
            "files": sorted(os.path.basename(p) for p in compiled),
            "seconds": round(time.perf_counter() - start, 3),
        }
        _atomic(stage, "run.json", lambda f: f.write(json.dumps(_jsonable({"key": spec.key(), "entry": entry}),
                                                                 indent=2, sort_keys=True) + "\n"))
        check_signals()
        os.rename(stage, run_dir)  # the complete run appears at once
    except BaseException:
        remove_tree(stage)
        raise
    return entry


def _discard_run_dir(out_dir: str, run_id: str) -> None:
    """Remove the directory of an earlier run of ``run_id``: renamed aside at once (no half-removed
    directory with an old report in it), then deleted."""

    run_dir = os.path.join(out_dir, run_id)
    if not os.path.lexists(run_dir):
        return
    if os.path.islink(run_dir) or not os.path.isdir(run_dir):
        raise NeurodeployError(os.path.basename(os.path.normpath(out_dir)) or out_dir, run_id,
                               "exists and is not a run directory: neurodeploy will not replace it")
    trash = staging_dir(out_dir, f"{run_id}.old")
    try:
        os.rename(run_dir, trash)
    finally:
        remove_tree(trash)


def _cached(spec: RunSpec, out_dir: str):
    path = os.path.join(out_dir, spec.run_id, "run.json")
    try:
        with open(path) as handle:
            stored = json.load(handle)
    except (OSError, ValueError):
        return None
    if stored.get("key") != spec.key() or not os.path.exists(os.path.join(out_dir, spec.run_id, "report.json")):
        return None
    return stored["entry"]


@dataclass
class Summary:
    plan: str
    entries: list = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(e["passed"] for e in self.entries)

    @property
    def outcomes(self) -> dict:
        """Runs per outcome (passed, failed, not checked)."""

        return {o: sum(1 for e in self.entries if e.get("outcome", "passed" if e["passed"] else "failed") == o)
                for o in OUTCOMES}

    @property
    def exit_code(self) -> int:
        """0 every run passed, 1 a run failed, 3 none failed but a run checked nothing."""

        n = self.outcomes
        return 1 if n["failed"] else (EXIT_NOT_CHECKED if n["not checked"] else 0)

    def to_dict(self) -> dict:
        return {"plan": self.plan, "neurodeploy_version": __version__, "runs": len(self.entries),
                "passed": self.passed, "outcomes": self.outcomes, "entries": self.entries}


def run_plan(path: str, out_dir: str, jobs: int = 1, force: bool = False, scheduler: str | None = None,
             progress=None, allow_outside: bool = False) -> Summary:
    """Run every run of the plan at ``path`` that is not up to date; write the summary.

    ``jobs`` is capped at the number of runs to do; ``allow_outside``: see :func:`load_plan`."""

    name, specs = load_plan(path, allow_outside)
    os.makedirs(out_dir, exist_ok=True)
    with locked(out_dir):  # one plan run at a time in a directory (another is refused: bad input)
        return _run_locked(name, specs, out_dir, jobs, force, scheduler, progress)


def _run_locked(name, specs, out_dir, jobs, force, scheduler, progress) -> Summary:

    results = {}
    todo = []
    for spec in specs:
        entry = None if force else _cached(spec, out_dir)
        if entry is not None:
            results[spec.run_id] = dict(entry, skipped=True)
        else:
            todo.append(spec)
    if progress:
        progress(f"{len(specs)} runs: {len(specs) - len(todo)} up to date, {len(todo)} to run")
    if todo:
        for stale in ("summary.json", "summary.md"):  # no old "passed" may survive an interrupted run
            if os.path.isfile(os.path.join(out_dir, stale)):
                os.unlink(os.path.join(out_dir, stale))
        jobs = min(jobs, len(todo))
        if scheduler:
            from distributed import Client  # the [cluster] extra
            with Client(scheduler) as client:
                futures = client.map(run_one, todo, out_dir=out_dir, pure=False)
                entries = client.gather(futures)
        elif jobs > 1 and len(todo) > 1:
            from neurodeploy.lava.compat import import_lava
            import_lava()  # before the fork, so workers inherit Lava
            # Ctrl-C or SIGTERM: workers get SIGTERM, which stops their Lava processes
            entries = fork_map(functools.partial(run_one, out_dir=out_dir), todo, jobs)
        else:
            entries = []
            for spec in todo:
                if progress:
                    progress(f"run {spec.run_id}")
                entries.append(run_one(spec, out_dir))
        for spec, entry in zip(todo, entries):
            results[spec.run_id] = dict(entry, skipped=False)
    check_signals()  # a signal whose exception Python dropped: no summary
    summary = Summary(name, [results[s.run_id] for s in specs])
    data = _jsonable(summary.to_dict())
    _atomic(out_dir, "summary.md", lambda f: f.write(render_summary(data)))
    _atomic(out_dir, "summary.json", lambda f: f.write(json.dumps(data, indent=2, sort_keys=True) + "\n"))
    return summary


def render_summary(data: dict) -> str:
    out = [f"# neurodeploy run: {data['plan']}", "",
           f"{data['runs']} runs: " + ", ".join(f"{n} {o}" for o, n in data.get("outcomes", {}).items()) + ".", "",
           "| run | rule | protocol | params | seed | backends | timing | lowering | constants | rounding | outcome | seconds |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for e in data["entries"]:
        shares = {c["share"]: c for c in e["comparisons"]}

        def cell(share):
            c = shares.get(share)
            if c is None or c["max_abs_error_normalized"] is None:
                return "-" if c is None else c.get("outcome", "-")
            mark = {"passed": "", "failed": " FAIL", "not checked": " (not checked)"}.get(c.get("outcome"), "")
            return f"{c['max_abs_error_normalized']:.3g}{mark}"

        params = ", ".join(f"{k}={v}" for k, v in e["params"].items()) or "-"
        out.append(f"| {e['run']} | {e['rule']} | {e['protocol']} | {params} | {e['seed']} | {', '.join(e['backends'])} | "
                   f"{cell('timing')} | {cell('lowering')} | {cell('constants')} | {cell('rounding')} | "
                   f"{e.get('outcome', 'passed' if e['passed'] else 'failed')} | {e['seconds']}{' (cached)' if e.get('skipped') else ''} |")
    out += ["", "Errors: max |error| over steps and synapses, divided by the weight range."]
    if any(e.get("final_weights") for e in data["entries"]):
        out += ["", "Final weights per backend (rule units): mean ± standard deviation [min, max].", "",
                "| run | backend | final weights |", "|---|---|---|"]
        for e in data["entries"]:
            for name, st in (e.get("final_weights") or {}).items():
                out.append(f"| {e['run']} | {name} | {st['mean']:.4g} ± {st['std']:.3g} [{st['min']:.4g}, {st['max']:.4g}] |")
    return "\n".join(out) + "\n"
