"""One runner for every literature learning task: the reference and the deployment, judged in the task's metric.

A task is a module (:data:`neurodeploy.tasks.TASKS`) with ``NAME``, ``TITLE``, ``METRICS``, ``DEFAULTS``,
optional ``SIZES`` (named larger sizes) and ``MARGIN_FLOORS`` (metric -> absolute floor of its margin), and
four functions:

* ``setup(rule=None, **overrides) -> Setup``: the rule, the network, the template trains, the parameters;
* ``member(setup, seed) -> SpikeTrains``: one ensemble member, its inputs drawn from ``seed``;
* ``evaluate(setup, member, trajectory, spikes) -> (metrics, curve)``: the run's metrics and one curve;
* ``figure(fig, setup, runs)``: the paper's figure, ``runs`` = {backend: [(metrics, curve), ...]}.

What the runner does, the same for every task (:func:`run_task`):

1. **One compilation** (:func:`compile_task`), scaled on the reference's own traffic: the reference runs a
   calibration member (seed 0, in no ensemble), and the rule is compiled on its post spikes (and, for a
   three-factor rule, the rewards its spikes earned). Both ensembles and every wrong deployment use it.
2. **The ensembles**: the reference (``brian2``, the rule as written) on seeds ``1..n``, the deployment
   (``emu-fixed``: bit for bit ``lava-fixed``) on ``n+1..2n``: disjoint inputs, so the verdict compares what
   is learned in distribution, not run by run.
3. **The verdict** (:func:`judge`): per metric the two-sample test of
   :func:`neurodeploy.verdict.distribution.two_sample` (Brunner-Munzel by permutation; family-wise alpha 1 %); a metric fails
   when the ensembles differ *and* their means differ by more than its margin beyond doubt. The margin is
   ``tolerance`` x the reference ensemble's mean magnitude plus the task's floor: from the reference and
   the task, never from the deployment's runs. A test that cannot reject with ``n`` runs a side is refused
   (:func:`min_seeds`): the smallest p-value of ``n`` against ``n`` runs must lie below alpha / m.
4. **The proof**: ``lava-fixed`` against ``emu-fixed`` on the first ``lava_window`` steps of a member,
   spikes and weights bit for bit.
5. **Where a deviation comes from** (:func:`attribution`, when the verdict fails or on request): the chain
   ``brian2`` -> ``brian2-step`` (timing) -> ``emu-float`` (approximation) -> ``emu-fixed`` (quantization) on
   the deployment's seeds; per link its verdict against the reference and its share of each metric's
   deviation; the first failing link names the remedy, measured by the links before it passing.
6. **Wrong deployments** (:func:`wrong_deployments`, the candidate only): the fixed plan's dominant constant
   doubled (``x2``), its sign flipped (``sign``), the deployed LIF neurons' membrane time constant halved
   (``lif-tau_v``). Each must FAIL; the report lists which metric caught it.
"""
from __future__ import annotations

import dataclasses
import importlib
import json
import math
import os
import time
from dataclasses import dataclass

import numpy as np

from neurodeploy.backend import Recording
from neurodeploy.brian2.builds import builds_shared_by
from neurodeploy.emu.network import simulate_network
from neurodeploy.lava.backends import run_network
from neurodeploy.compile.compilation import compile_rule
from neurodeploy.errors import NeurodeployError
from neurodeploy.network import check_size, network_trains, with_spikes
from neurodeploy.running import fork_map
from neurodeploy.targets import load_all
from neurodeploy.tasks import TASKS
from neurodeploy.verdict.distribution import ALPHA, two_sample
from neurodeploy.verdict.fidelity import refine
from neurodeploy.verdict.mutate import mutated_plan

#: The reference and the deployment every task compares.
REFERENCE, CANDIDATE = "brian2", "emu-fixed"
#: The fidelity tolerance of a task metric: a share of the reference ensemble's mean magnitude.
TOLERANCE = 0.2
#: Runs a side by default: above the power floor (:func:`min_seeds`, 7 for 6 metrics), so that a wrong
#: deployment is caught against an ensemble that spreads as widely as a learning task's does.
DEFAULT_SEEDS = 10
#: The wrong deployments every task must fail.
WRONG = ("x2", "sign", "lif-tau_v")
#: The links between the reference and the deployment, each one change: (backend, what it adds).
LINKS = (("brian2-step", "timing: the engine's order of a same-step pre and post spike"),
         ("emu-float", "approximation: the rule as the learning engine computes it, in float"),
         ("emu-fixed", "quantization: Loihi's fixed point (8-bit weights, 7-bit traces, stochastic rounding)"))


@dataclass(frozen=True)
class Setup:
    rule: object
    net: object  # neurodeploy.network.Network
    trains: object  # the template SpikeTrains (protocol "network"; trains.network is net)
    params: dict


def numbers(task_name: str, defaults: dict, p: dict, integers=()) -> dict:
    """A task's parameters ``p`` checked against its ``defaults``: each known, a finite number (not a
    bool), the ``integers`` whole; one line naming the field and the problem otherwise."""
    unknown = sorted(set(p) - set(defaults))
    if unknown:
        raise NeurodeployError(task_name, unknown[0], f"unknown parameter (known: {', '.join(sorted(defaults))})")
    out = {}
    for key, value in p.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise NeurodeployError(task_name, key, f"must be a finite number (got {value!r})")
        if key in integers:
            if int(value) != value:
                raise NeurodeployError(task_name, key, f"must be an integer (got {value!r})")
            value = int(value)
        out[key] = value
    return out


def task_module(name: str):
    """The task module of CLI name ``name`` (:data:`neurodeploy.tasks.TASKS`)."""
    if name not in TASKS:
        raise NeurodeployError("task", "", f"unknown task {name!r} (tasks: {', '.join(TASKS)})")
    return importlib.import_module(TASKS[name])


def template_trains(rule, net):
    """A task's template trains (seed 0), within the run limits of every front door
    (:func:`neurodeploy.network.check_size`), refused before its rasters are drawn: a ``--steps`` beyond
    them would take the memory of the machine, not a minute."""
    check_size(net, net.steps, net.source, "steps")
    return network_trains(rule, net, 0)


def task_setup(task, size: str | None = None, **overrides) -> Setup:
    sizes = getattr(task, "SIZES", {})
    if size is not None and size not in sizes:
        raise NeurodeployError("--size", "", f"unknown size {size!r} for {task.NAME} (sizes: "
                                             f"{', '.join(sizes) or 'none'})")
    params = dict(sizes.get(size, {}), **{k: v for k, v in overrides.items() if v is not None})
    return task.setup(**params)


# -- the statistics -------------------------------------------------------------------------------------

def min_p(n_ref: int, n_cand: int) -> float:
    """The smallest two-sided p-value a rank test of ``n_ref`` against ``n_cand`` runs can give (complete
    separation; the permutation test's ``2 / C(n_ref + n_cand, n_ref)``)."""
    return 2.0 / math.comb(n_ref + n_cand, n_ref)


def min_seeds(metrics: int, alpha: float = ALPHA) -> int:
    """The fewest runs a side with which a difference in one of ``metrics`` metrics can be detected at all
    (family-wise ``alpha``): below it the verdict cannot fail."""
    n = 2
    while min_p(n, n) >= alpha / max(1, metrics):
        n += 1
    return n


def default_seeds(task) -> int:
    return max(DEFAULT_SEEDS, min_seeds(len(task.METRICS)))


def margins(task, reference: np.ndarray, tolerance: float) -> dict:
    """Per metric: ``tolerance`` x the reference ensemble's mean magnitude + the task's floor; from the
    reference and the task only."""
    floors = getattr(task, "MARGIN_FLOORS", {})
    return {name: tolerance * float(np.mean(np.abs(reference[:, k]))) + float(floors.get(name, 0.0))
            for k, name in enumerate(task.METRICS)}


def judge(task, reference: np.ndarray, candidate: np.ndarray, tolerance: float = TOLERANCE) -> dict:
    """The verdict in the task's metrics (:func:`neurodeploy.verdict.distribution.two_sample`)."""
    return two_sample(reference, candidate, names=task.METRICS, margins=margins(task, reference, tolerance))


# -- running --------------------------------------------------------------------------------------------

def run_member(setup: Setup, backend: str, plans, member, every: int, info: dict | None = None):
    """(trajectory, spikes) of one member on ``backend``; ``info`` receives the run's Brian2 target
    (``brian2_target``, Brian2 backends only)."""
    result = load_all().get(backend).run(setup.rule, member, plans, recording=Recording(every=every))
    if info is not None and "brian2_target" in result.info:
        info["brian2_target"] = result.info["brian2_target"]
    return result.trajectory, np.asarray(result.info["post_spikes"], dtype=bool)


def earned_rewards(member, spikes: np.ndarray) -> np.ndarray:
    """The reward raster (n_lif, steps) a member's reward schedule gives the spikes of a run (replayed)."""
    return member.reward_schedule.replay(with_spikes(member, spikes).pre, spikes)


def compile_task(task, setup: Setup, reference: str = REFERENCE, every: int | None = None):
    """The one compilation of a task: the rule compiled on the traffic of the reference's calibration run
    (member seed 0: its LIF spikes; a reward schedule: the rewards they earned)."""
    every = every or int(setup.params.get("every", 100))
    calibration = task.member(setup, 0)
    _, spikes = run_member(setup, reference, {}, calibration, every)
    traffic = with_spikes(calibration, spikes)
    if calibration.reward_schedule is not None:
        traffic = dataclasses.replace(traffic, reward=earned_rewards(calibration, spikes))
    compilation = compile_rule(setup.rule, traffic)
    if compilation.refusal is not None:
        raise NeurodeployError("task", task.NAME, f"the engine cannot run this rule: {compilation.refusal}")
    return compilation


def ensemble(task, setup: Setup, backend: str, plans, seeds, net=None, jobs: int = 1) -> tuple:
    """(metrics (runs, METRICS), curves, seconds) over ``seeds``; ``net``: the deployed network when it
    differs from the task's (a wrong deployment)."""
    return ensembles(task, setup, [(backend, plans, seeds, net)], jobs)[0]


#: The members a pool's workers run (:func:`ensembles` sets it before the fork; the workers inherit it).
_MEMBERS: list = []


def _member_run(k: int) -> tuple:
    task, setup, backend, plans, seed, net = _MEMBERS[k]
    start = time.perf_counter()
    member = task.member(setup, seed)
    run = member if net is None else dataclasses.replace(member, network=net)
    info = {}
    trajectory, spikes = run_member(setup, backend, plans, run, int(setup.params.get("every", 100)), info)
    metrics, curve = task.evaluate(setup, member, trajectory, spikes)
    return ([float(metrics[m]) for m in task.METRICS], np.asarray(curve, dtype=float), time.perf_counter() - start,
            info.get("brian2_target"))


def ensembles(task, setup: Setup, groups, jobs: int = 1, targets: dict | None = None) -> list:
    """Per group ``(backend, plans, seeds, net)`` its :func:`ensemble` ``(rows, curves, seconds)``, every
    member of every group on ``jobs`` worker processes (:func:`neurodeploy.running.fork_map`). Each member's
    inputs and random streams come from its seed alone, so the rows are the same for any ``jobs``;
    ``seconds`` is the sum of the group's member run times (with ``jobs > 1``, more than the wall time).
    ``targets``: receives backend -> the Brian2 targets its members ran on (Brian2 backends)."""
    global _MEMBERS
    _MEMBERS = [(task, setup, backend, plans, seed, net) for backend, plans, seeds, net in groups for seed in seeds]
    # the groups' members taken in turn (a Brian2 build directory is one run's at a time: two workers on the
    # same model would wait for each other), the results put back in the groups' order
    starts = np.cumsum([0] + [len(g[2]) for g in groups])
    order = [starts[g] + i for i in range(max((len(g[2]) for g in groups), default=0))
             for g in range(len(groups)) if i < len(groups[g][2])]
    runs = {}
    for backend, _, seeds, _ in groups:
        runs[backend] = runs.get(backend, 0) + len(seeds)
    try:
        with builds_shared_by(max([n for b, n in runs.items() if b.startswith("brian2")], default=1)):
            done = dict(zip(order, fork_map(_member_run, order, jobs)))
    finally:
        _MEMBERS = []
    out = []
    for g, (backend, _, seeds, _) in enumerate(groups):
        part = [done[starts[g] + i] for i in range(len(seeds))]
        out.append((np.array([r for r, _, _, _ in part]), [c for _, c, _, _ in part], sum(t for _, _, t, _ in part)))
        if targets is not None:
            ran = sorted({b2 for _, _, _, b2 in part if b2})
            if ran:
                targets[backend] = sorted(set(targets.get(backend, [])) | set(ran))
    return out


# -- wrong deployments ----------------------------------------------------------------------------------

def dominant_product(plan) -> int:
    """Index of the fixed plan's largest realised constant (ties: the first)."""
    sizes = [abs(p.realised) if p.mantissa != 0 else -1.0 for p in plan.products]
    return int(np.argmax(sizes))


def wrong_deployments(setup: Setup, compilation) -> dict:
    """label -> (plans, network): the deliberately wrong deployments (the candidate only)."""
    plan = compilation["fixed"]
    k = dominant_product(plan)
    out = {}
    for label, kind in (("x2", "E+1"), ("sign", "sign")):
        mutated = mutated_plan(plan, k, kind)
        if mutated is not None:
            out[label] = ({"fixed": mutated}, None)
    lifs = tuple(dataclasses.replace(p, tau_v_ms=p.tau_v_ms / 2) if p.kind == "lif" else p
                 for p in setup.net.populations)
    out["lif-tau_v"] = (compilation, dataclasses.replace(setup.net, populations=lifs))
    return out


def describe_wrong(setup: Setup, compilation) -> dict:
    plan = compilation["fixed"]
    p = plan.products[dominant_product(plan)]
    what = f"{p.term} of {p.target}: {p.mantissa} x 2^{p.exponent}"
    return {"x2": f"the dominant constant ({what}) doubled", "sign": f"the dominant constant ({what}) negated",
            "lif-tau_v": "the deployed LIF neurons' tau_v halved"}


# -- where a deviation comes from ------------------------------------------------------------------------

def attribution(task, setup: Setup, compilation, reference: np.ndarray, candidate: np.ndarray, seeds,
                tolerance: float, done: dict | None = None, jobs: int = 1) -> dict:
    """The chain reference -> brian2-step -> emu-float -> emu-fixed on the deployment's seeds: per link the
    ensemble's verdict against the reference (the first link that passes is the measured remedy: deploy at
    that link), and per metric the share of the deviation each link adds (mean change / total change)."""
    done = dict(done or {})
    names = [b for b, _ in LINKS]
    chain = LINKS[: names.index(task_candidate(done)) + 1] if task_candidate(done) in names else LINKS
    rows = {b: done[b] for b, _ in chain if b in done}
    todo = [b for b, _ in chain if b not in done]
    runs = ensembles(task, setup, [(b, {} if b.startswith("brian2") else compilation, seeds, None) for b in todo], jobs)
    rows.update({b: r for b, (r, _, _) in zip(todo, runs)})
    links, previous = [], reference
    total = candidate.mean(axis=0) - reference.mean(axis=0)
    for backend, what in chain:
        step = rows[backend].mean(axis=0) - previous.mean(axis=0)
        test = judge(task, reference, rows[backend], tolerance)
        links.append({"backend": backend, "what": what, "passed": test["passed"], "rejected": test["rejected"],
                      "unresolved": test["unresolved"],
                      "change": dict(zip(task.METRICS, step.tolist())),
                      "share": {m: (float(step[k] / total[k]) if total[k] != 0 else None)
                                for k, m in enumerate(task.METRICS)}})
        previous = rows[backend]
    return {"links": links, "remedy": _remedy(links)}


def task_candidate(done: dict):
    """The deployment whose rows ``done`` holds (the chain ends there)."""
    return next(iter(done), None)


def _remedy(links) -> str:
    first_failing = next((k for k, link in enumerate(links) if link["passed"] is False), None)
    if first_failing is None:
        shown = next((link for link in links if link["passed"] is None and link.get("unresolved")), None)
        if shown is None:
            return "every link passes"
        return (f"no link fails beyond doubt; the deviation past the tolerance appears with {shown['backend']} "
                f"({shown['what'].split(':')[0]}: {', '.join(shown['unresolved'])} not shown), the links before "
                f"it pass: it lies at the tolerance, where more runs a side would decide it")
    link = links[first_failing]
    if link["backend"] == "brian2-step":
        return ("the deviation appears with the engine's same-step order (timing): a smaller dt (fewer same-step "
                "pairs) or a rule whose window is continuous at 0 removes it")
    if link["backend"] == "emu-float":
        return ("the deviation appears with the engine's form of the rule (approximation): no engine deployment "
                "removes it; a custom CPU process (lava-cpu) runs the rule as written")
    return ("the deviation appears with fixed point only (quantization): the float deployment (lava-float, "
            "emu-float) passes, measured above; in fixed point the plan's rounding is the cause (see the "
            "verify report's constants and rounding links for which product)")


# -- the remedy of a timing deviation: the task at a finer time step --------------------------------------

class _Finer:
    """``task`` at ``dt / k``: each member is the task's own member (same seed) with every input spike moved
    to a sub-step of its step drawn uniformly (the same spike times resolved k times finer, seeded as the
    fidelity verdict's :func:`neurodeploy.verdict.fidelity.refine`), and each run is judged by the task's own
    ``evaluate`` on its spikes coarsened back to the task's steps (a spike in any sub-step) and its weights at
    the ends of the task's recorded steps."""

    def __init__(self, task, coarse: Setup, k: int):
        self.task, self.coarse, self.k = task, coarse, int(k)
        self.NAME, self.TITLE, self.METRICS = task.NAME, task.TITLE, task.METRICS
        self.MARGIN_FLOORS = getattr(task, "MARGIN_FLOORS", {})

    def member(self, setup: Setup, seed: int):
        _, fine = refine(self.coarse.rule, self.task.member(self.coarse, seed), self.k, int(seed))
        return dataclasses.replace(fine, network=setup.net, seed=int(seed))

    def evaluate(self, setup: Setup, member, trajectory, spikes):
        coarse = self.task.member(self.coarse, member.seed)
        spikes = np.asarray(spikes, dtype=bool)
        spikes = spikes.reshape(spikes.shape[0], -1, self.k).any(axis=2)
        return self.task.evaluate(self.coarse, coarse, trajectory, spikes)


def finer_setup(task, setup: Setup, k: int) -> tuple:
    """(the task at dt / k, its Setup): the rule at ``dt / k`` (its time constants in seconds unchanged,
    ``t_epoch`` in steps unchanged), the LIF neurons' decays at ``dt / k`` and their thresholds k times the
    file's (Lava's LIF adds ``u`` to ``v`` once a step: k times as many steps integrate k times as much, so
    the threshold keeps the same neuron in time), recording every ``k x every`` steps (the task's rows)."""
    if setup.trains.reward_schedule is not None:
        raise NeurodeployError("--finer-dt", "", f"{task.NAME}: a finer time step is not measured for a reward "
                                                 "schedule (its delays and windows are in the task's steps)")
    k = int(k)
    rule = dataclasses.replace(setup.rule, dt=setup.rule.dt / k)
    pops = tuple(dataclasses.replace(p, threshold=p.threshold * k) if p.kind == "lif" else p
                 for p in setup.net.populations)
    net = dataclasses.replace(setup.net, populations=pops, steps=setup.net.steps * k)
    params = dict(setup.params, every=int(setup.params.get("every", 100)) * k)
    trains = dataclasses.replace(setup.trains, network=net)
    return _Finer(task, setup, k), Setup(rule, net, trains, params)


def finer_dt_remedy(task, setup: Setup, k: int, reference: np.ndarray, ref_seeds, cand_seeds,
                    tolerance: float, candidate: str = CANDIDATE, jobs: int = 1, progress=None) -> dict:
    """The timing remedy measured: the task at ``dt / k`` (:func:`finer_setup`), compiled on its own
    reference calibration run, the reference and the deployment as ensembles on the task's seeds. Three
    verdicts: the deployment at ``dt / k`` against the model as written (``reference``, at the task's dt: the
    remedy passes only if this passes), against the reference at ``dt / k``, and the reference at ``dt / k``
    against itself as written (does the model learn the same at the finer step?)."""
    say = progress or (lambda message: None)
    fine_task, fine = finer_setup(task, setup, k)
    dt_ms = fine.rule.dt * 1e3
    say(f"{task.NAME}: a finer time step, dt = {dt_ms:g} ms: compiling on a calibration run of {REFERENCE}")
    compilation = compile_task(fine_task, fine, REFERENCE)
    say(f"{task.NAME}: dt = {dt_ms:g} ms: {REFERENCE} and {candidate}, {len(ref_seeds)} runs each")
    (ref_k, _, ref_s), (cand_k, _, cand_s) = ensembles(
        fine_task, fine, [(REFERENCE, {}, ref_seeds, None), (candidate, compilation, cand_seeds, None)], jobs)
    verdicts = {"deployment_vs_model_as_written": judge(task, reference, cand_k, tolerance),
                "deployment_vs_reference_at_finer_dt": judge(task, ref_k, cand_k, tolerance),
                "reference_at_finer_dt_vs_as_written": judge(task, reference, ref_k, tolerance)}
    return {"dt_ms": dt_ms, "k": int(k), "passed": verdicts["deployment_vs_model_as_written"]["passed"],
            "verdicts": {name: {"passed": v["passed"], "rejected": v["rejected"]} for name, v in verdicts.items()},
            "means": {"reference": dict(zip(task.METRICS, ref_k.mean(axis=0).tolist())),
                      "candidate": dict(zip(task.METRICS, cand_k.mean(axis=0).tolist()))},
            "metrics": {"reference": ref_k.tolist(), "candidate": cand_k.tolist()},
            "seconds": {REFERENCE: round(ref_s, 1), candidate: round(cand_s, 1)}}


# -- the proof ------------------------------------------------------------------------------------------

def window_proof(setup: Setup, task, compilation, steps: int) -> dict:
    """``lava-fixed`` against ``emu-fixed`` on the first ``steps`` steps of member seed 1: spikes and
    weights bit for bit."""
    member = task.member(setup, 1)
    net, plan = setup.net, compilation["fixed"]
    pre = member.pre[: net.n_inputs, :steps]
    start = time.perf_counter()
    w_l, s_l = run_network(setup.rule, net, plan, member.w0, pre, reward=member.reward_schedule)
    lava_s = time.perf_counter() - start
    w_e, s_e = simulate_network(setup.rule, net, plan, member.w0, pre, third_factor=member.reward_schedule)
    equal = bool(np.array_equal(s_l, s_e) and np.array_equal(np.isnan(w_l), np.isnan(w_e))
                 and np.nanmax(np.abs(w_l - w_e)) == 0.0)
    return {"steps": int(steps), "bit_exact": equal, "post_spikes": int(s_e.sum()), "lava_seconds": round(lava_s, 2)}


# -- the task -------------------------------------------------------------------------------------------

def run_task(task, out_dir: str, seeds: int | None = None, reference: str = REFERENCE, candidate: str = CANDIDATE,
             tolerance: float = TOLERANCE, lava_window: int = 300, wrong: tuple = WRONG, size: str | None = None,
             first_seed: int = 1, progress=None, explain: bool = False, jobs: int = 1, finer_dt: int | None = None,
             **overrides) -> dict:
    """Run ``task`` on the reference and the deployment, judge it in its metrics, prove the window on Lava,
    run the wrong deployments; write ``report.json`` and ``<NAME>.png`` into ``out_dir``. Returns the report.

    ``first_seed``: the reference's seeds are ``first_seed ..``, the deployment's the next ``seeds``.
    ``explain``: run the chain (:func:`attribution`) even when the verdict passes (it always runs when it
    fails). ``jobs``: worker processes for the ensembles' runs (the same numbers for any ``jobs``).
    ``finer_dt``: k; also measure the task at ``dt / k`` (:func:`finer_dt_remedy`), the remedy of a timing
    deviation."""
    say = progress or (lambda message: None)
    needed = min_seeds(len(task.METRICS))
    seeds = default_seeds(task) if seeds is None else int(seeds)
    if seeds < needed:
        raise NeurodeployError("--seeds", "", f"{seeds} runs a side cannot show a difference in {len(task.METRICS)} "
                                              f"metrics at family-wise alpha {ALPHA:g} (the smallest p-value is "
                                              f"{min_p(seeds, seeds):.2g}); use at least {needed}")
    setup = task_setup(task, size, **overrides)
    if finer_dt:
        finer_setup(task, setup, finer_dt)  # refused before anything runs
    start = time.perf_counter()
    say(f"{task.NAME}: compiling on a calibration run of {reference}")
    compilation = compile_task(task, setup, reference)
    compile_s = time.perf_counter() - start
    ref_seeds = list(range(first_seed, first_seed + seeds))
    cand_seeds = list(range(first_seed + seeds, first_seed + 2 * seeds))
    say(f"{task.NAME}: {reference} and {candidate}, {seeds} runs each" + (f" on {jobs} processes" if jobs > 1 else ""))
    targets = {}
    (ref, ref_curves, ref_s), (cand, cand_curves, cand_s) = ensembles(
        task, setup, [(reference, {}, ref_seeds, None), (candidate, compilation, cand_seeds, None)], jobs, targets)
    verdict = judge(task, ref, cand, tolerance)
    wrongs, labels = {}, describe_wrong(setup, compilation)
    deployments = wrong_deployments(setup, compilation)
    for label in wrong:
        if label not in deployments:
            wrongs[label] = {"what": labels[label], "skipped": "the engine cannot express this constant"}
    todo = [label for label in wrong if label in deployments]
    if todo:
        say(f"{task.NAME}: wrong deployments {', '.join(todo)}")
    runs = ensembles(task, setup, [(candidate, deployments[label][0], cand_seeds, deployments[label][1])
                                   for label in todo], jobs)
    for label, (rows, _, secs) in zip(todo, runs):
        test = judge(task, ref, rows, tolerance)
        wrongs[label] = {"what": labels[label], "failed": test["passed"] is False, "caught_by": test["rejected"],
                         "means": dict(zip(task.METRICS, rows.mean(axis=0).tolist())), "seconds": round(secs, 1)}
    chain = None
    if verdict["passed"] is False or verdict["unresolved"] or explain:
        say(f"{task.NAME}: the chain brian2-step -> emu-float -> {candidate} on the deployment's seeds")
        chain = attribution(task, setup, compilation, ref, cand, cand_seeds, tolerance, done={candidate: cand},
                            jobs=jobs)
    finer = None
    if finer_dt:
        finer = finer_dt_remedy(task, setup, finer_dt, ref, ref_seeds, cand_seeds, tolerance, candidate, jobs,
                                progress)
    proof = None
    if lava_window:
        say(f"{task.NAME}: lava-fixed on the first {lava_window} steps")
        proof = window_proof(setup, task, compilation, lava_window)
    report = {"task": task.NAME, "title": task.TITLE, "parameters": setup.params, "rule": setup.rule.name,
              "reference": reference, "candidate": candidate, "tolerance": tolerance,
              "seeds": {"reference": ref_seeds, "candidate": cand_seeds, "calibration": 0},
              "metrics": {"names": list(task.METRICS), "reference": ref.tolist(), "candidate": cand.tolist()},
              "margins": margins(task, ref, tolerance), "verdict": verdict["passed"], "test": verdict,
              "wrong_deployments": wrongs, "lava_window": proof, "chain": chain, "finer_dt": finer,
              "seconds": {"compile": round(compile_s, 1), reference: round(ref_s, 1), candidate: round(cand_s, 1)},
              "brian2_targets": targets}
    os.makedirs(out_dir, exist_ok=True)
    figure_path = os.path.join(out_dir, task.NAME.replace("-", "_") + ".png")
    _figure(task, setup, figure_path, {reference: list(zip(_dicts(task, ref), ref_curves)),
                                       candidate: list(zip(_dicts(task, cand), cand_curves))})
    report["figure"] = os.path.basename(figure_path)
    with open(os.path.join(out_dir, "report.json"), "w") as f:
        json.dump(report, f, indent=1, default=float)
    return report


def _dicts(task, rows: np.ndarray) -> list:
    return [dict(zip(task.METRICS, map(float, r))) for r in rows]


def _figure(task, setup, path, runs):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 3.8))
    task.figure(fig, setup, runs)
    fig.suptitle(task.TITLE)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def clopper_pearson(k: int, n: int) -> list:
    """The exact (Clopper-Pearson) 95 % interval of a rate of ``k`` events in ``n`` independent trials."""
    from scipy.stats import beta

    lo = 0.0 if k == 0 else float(beta.ppf(0.025, k, n - k + 1))
    hi = 1.0 if k == n else float(beta.ppf(0.975, k + 1, n - k))
    return [lo, hi]


def one_sided_upper(k: int, n: int, level: float = 0.95) -> float:
    """The exact one-sided upper ``level`` bound of a rate of ``k`` events in ``n`` independent trials
    (Clopper-Pearson; ``k = 0``: ``1 - (1 - level)^(1/n)``, below 1 % from 299 trials)."""
    from scipy.stats import beta

    return 1.0 if k >= n else float(beta.ppf(level, k + 1, n - k))


def false_alarms(task, verdicts: int, seeds: int | None = None, first_seed: int = 1000, reference: str = REFERENCE,
                 candidate: str = CANDIDATE, tolerance: float = TOLERANCE, progress=None, size: str | None = None,
                 jobs: int = 1, null: bool = False, **overrides) -> dict:
    """The correct deployment judged ``verdicts`` times on disjoint untuned seeds (from ``first_seed``): the
    fraction of FAILED verdicts, with its Clopper-Pearson 95 % interval.

    ``null``: the deployment judged against itself instead (both ensembles ``candidate``, on disjoint
    seeds, the reference's side giving the margins as the reference does). Both sides then learn alike by
    construction, so every FAILED verdict is a false alarm of the verdict itself: its false-alarm rate at
    the task's own distribution of metrics, measured where runs are cheap (the emulator as the statistics
    engine). The compilation is still the reference's (:func:`compile_task`)."""
    say = progress or (lambda message: None)
    seeds = seeds or default_seeds(task)
    setup = task_setup(task, size, **overrides)
    compilation = compile_task(task, setup, reference)
    ref_side = (candidate, compilation) if null else (reference, {})
    failed, not_shown, rejected, unresolved, rows = 0, 0, {}, {}, []
    for v in range(verdicts):
        base = first_seed + 2 * seeds * v
        (ref, _, _), (cand, _, _) = ensembles(task, setup, [(*ref_side, range(base, base + seeds), None),
                                                            (candidate, compilation, range(base + seeds, base + 2 * seeds), None)], jobs)
        test = judge(task, ref, cand, tolerance)
        failed += test["passed"] is False
        not_shown += test["passed"] is None and bool(test["unresolved"])
        for name in test["rejected"]:
            rejected[name] = rejected.get(name, 0) + 1
        for name in test["unresolved"]:
            unresolved[name] = unresolved.get(name, 0) + 1
        rows.append({"reference": ref.tolist(), "candidate": cand.tolist()})  # to judge them again
        said = "FAILED" if test["passed"] is False else "NOT SHOWN" if test["unresolved"] else "PASSED"
        say(f"{task.NAME}: verdict {v + 1}/{verdicts}: {said}")
    # not PASSED: FAILED or NOT SHOWN (a correct deployment that does not pass is a false alarm either way)
    alarms = failed + not_shown
    return {"task": task.NAME, "verdicts": verdicts, "seeds_per_side": seeds, "failed": failed,
            "not_shown": not_shown, "not_passed": alarms, "rate": alarms / verdicts,
            "clopper_pearson_95": clopper_pearson(alarms, verdicts),
            "one_sided_95_upper": one_sided_upper(alarms, verdicts), "rejected": rejected, "unresolved": unresolved,
            "runs": rows,
            "first_seed": first_seed, "null": bool(null), "reference": ref_side[0], "candidate": candidate}


def calibrate(task, pool: int = 20, seeds: int | None = None, draws: int = 1000, first_seed: int = 1000,
              reference: str = REFERENCE, candidate: str = CANDIDATE, tolerance: float = TOLERANCE,
              wrong: tuple = WRONG, size: str | None = None, progress=None, null: bool = True,
              jobs: int = 1, **overrides) -> dict:
    """False alarms and detection power of the task's verdict, on seeds it was never tuned on (``first_seed``..).

    Pools of ``pool`` runs: the reference, the correct deployment and each wrong deployment (the same seeds
    as the correct one). ``null``: also the reference judged against itself on the candidate's seeds (pool
    ``null``): there the deviation is zero by construction, so every FAILED verdict is a false alarm of the
    verdict itself, whatever the deployment does. Verdicts of ``seeds`` runs a side: the ``pool // seeds`` disjoint ones (independent:
    Clopper-Pearson 95 % intervals) and ``draws`` drawn from the pools without replacement within a verdict
    (a finer estimate of the same rates, its draws not independent of each other)."""
    say = progress or (lambda message: None)
    n = seeds or default_seeds(task)
    if pool < n:
        raise ValueError(f"a pool of {pool} runs cannot hold a verdict of {n} runs a side")
    setup = task_setup(task, size, **overrides)
    compilation = compile_task(task, setup, reference)
    ref_seeds = range(first_seed, first_seed + pool)
    cand_seeds = range(first_seed + pool, first_seed + 2 * pool)
    groups = {"reference": (reference, {}, ref_seeds, None)}
    if null:  # the reference again on the candidate's seeds: the null, the reference against itself
        groups["null"] = (reference, {}, cand_seeds, None)
    groups["correct"] = (candidate, compilation, cand_seeds, None)
    for label, (plans, net) in wrong_deployments(setup, compilation).items():
        if label in wrong:
            groups[label] = (candidate, plans, cand_seeds, net)
    say(f"{task.NAME}: pools of {pool} runs: {', '.join(groups)}" + (f" on {jobs} processes" if jobs > 1 else ""))
    runs = dict(zip(groups, ensembles(task, setup, list(groups.values()), jobs)))
    ref, _, ref_s = runs.pop("reference")
    pools = {label: rows for label, (rows, _, _) in runs.items()}
    rng = np.random.default_rng(0)
    picks = [(rng.choice(pool, n, replace=False), rng.choice(pool, n, replace=False)) for _ in range(draws)]

    out = {"task": task.NAME, "pool": pool, "seeds_per_side": n, "first_seed": first_seed, "draws": draws,
           "seconds_reference_pool": round(ref_s, 1), "deployments": {}}
    blocks = pool // n
    for label, rows in pools.items():
        exact = [judge(task, ref[b * n:(b + 1) * n], rows[b * n:(b + 1) * n], tolerance) for b in range(blocks)]
        drawn = [judge(task, ref[i], rows[j], tolerance) for i, j in picks]
        # not PASSED (FAILED or NOT SHOWN): a false alarm for the null and the correct deployment, a catch
        # for a wrong one
        failed_exact = sum(t["passed"] is not True for t in exact)
        failed_drawn = sum(t["passed"] is not True for t in drawn)
        caught_by = {}
        for t in drawn:
            for name in t["rejected"]:
                caught_by[name] = caught_by.get(name, 0) + 1
        out["deployments"][label] = {
            "failed_disjoint": failed_exact, "disjoint": blocks,
            "clopper_pearson_95": clopper_pearson(failed_exact, blocks),
            "failed_drawn": failed_drawn / draws, "rejected_by": caught_by,
            "means": dict(zip(task.METRICS, rows.mean(axis=0).tolist())),
            "rows": rows.tolist()}  # every run's metrics: the pool can be judged again without running it
        say(f"{task.NAME}: {label}: {failed_drawn / draws:.1%} of {draws} drawn verdicts did not pass "
            f"({failed_exact} of {blocks} disjoint)")
    out["reference_means"] = dict(zip(task.METRICS, ref.mean(axis=0).tolist()))
    out["reference_rows"] = ref.tolist()
    return out
