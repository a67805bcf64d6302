"""Benchmarks: compile times, every backend's speed and memory, the emulator's speed-up.

``python -m neurodeploy.bench [--quick] [--rule NAME|PATH] [--out build/bench.json]``
(``scripts/bench``) writes ``build/bench.json`` and prints tables.

What is measured (every figure a median over repeats):

* compile time per reference rule: lowering + both quantization plans
  (``compile_plans`` on the default protocol) and code generation
  (``codegen.write_compiled`` into a temporary directory) for brian2 and lava;
* per backend and size (n x n synapses, Poisson spikes at the default rate):
  steps per second of ``Backend.run`` (set-up included, as the harness counts
  it) and peak memory;
* ``lava-fixed`` and ``emu-fixed`` on the same 100x100 trains, alternated in
  one process: the speed-up and whether the two trajectories were identical;
* ``emu-fixed`` on 10^6 synapses x 10^4 steps recording every 100th step
  (``--quick``: 10^5 synapses x 10^3 steps, every 10th), called directly;
* the goals of "verify at scale", each a whole ``neurodeploy verify`` command in its own process
  (wall time start to report, peak RSS of the largest process, per backend steps/s and the
  steps it ran, the report's outcome): (1) 100x100 x 10^4 steps, default backends; (2) every
  protocol at its defaults, default backends; (3) 10^6 synapses x 10^4 steps, ``brian2`` and
  ``emu-fixed``, the verdict included; and (4) the verdict's ensemble, K = 32 rounding seeds at
  100x100 x 2000 steps as one batched emulator call, against the same members run one by one.

Every backend runs once untimed before its measured repeats (imports, JIT
compilation and caches are one-time costs; Lava's process start-up is paid
by every run and stays in).

Memory: every measurement runs in its own subprocess (``--worker``).
``peak_rss_delta_mb`` is that process's ``getrusage`` ``ru_maxrss`` after the
runs minus its value after the set-up (imports, spike trains, plans): the
extra peak resident memory the runs needed. ``children_peak_rss_mb`` is
``RUSAGE_CHILDREN``'s ``ru_maxrss`` when the runs raised it: the largest of
the processes Lava spawns (absolute; None for backends without children).

All backends use the same plans, scaled on the default protocol (as
``neurodeploy compile``); the spike trains of a size are the same for every
backend (seed 3).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

from neurodeploy.goals import _table

from neurodeploy.backend import recorded_rows
from neurodeploy.emu import simulate, simulate_batch
from neurodeploy.protocol import DEFAULT_POISSON, default_trains, poisson
from neurodeploy.spec.loader import load_rule
from neurodeploy.tasks import TASKS
from neurodeploy.tasks.runner import WRONG, calibrate, task_module
from neurodeploy.targets import load_all
from neurodeploy.verdict.quantization import ensemble_seeds, record_stride
from neurodeploy.version import __version__

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BACKENDS = ("brian2", "brian2-step", "lava-float", "lava-fixed", "lava-cpu", "emu-float", "emu-fixed")
SEED = 3
RESULT_TAG = "NEURODEPLOY_BENCH_RESULT "

#: Per mode: sizes with steps, which backends run at 1000x1000, repeats.
SETTINGS = {
    "full": {
        "sizes": [(10, 2000), (100, 2000), (300, 1000), (1000, 200)],
        "big_backends": ("brian2", "brian2-step", "emu-float", "emu-fixed"),
        "repeats": 3, "compile_repeats": 5,
        "speedup": {"n": 100, "steps": 2000},
        "large": {"n_pre": 1000, "n_post": 1000, "steps": 10_000, "record_every": 100},
        "speedups": [{"n": 100, "steps": 2000}, {"n": 300, "steps": 1000}],
        "goal1": ["--n-pre", "100", "--n-post", "100", "--steps", "10000"],
        "goal2": ["poisson", "pairing", "correlated", "hfs", "lfs", "stdp-window", "frequency", "closed-loop"],
        "goal3": ["--n-pre", "1000", "--n-post", "1000", "--steps", "10000", "--backends", "brian2,emu-fixed"],
        "ensemble": {"n": 100, "steps": 2000, "k": 32, "singles": 4},
    },
    "quick": {
        "sizes": [],  # per-backend steps/s come from the verify runs below
        "big_backends": ("emu-float", "emu-fixed"),
        "repeats": 1, "compile_repeats": 1,
        "speedup": {"n": 100, "steps": 500},
        "large": {"n_pre": 250, "n_post": 400, "steps": 1000, "record_every": 10},
        "speedups": [{"n": 300, "steps": 200}],
        "goal1": ["--n-pre", "100", "--n-post", "100", "--steps", "2000"],
        "goal2": ["pairing"],
        "goal3": ["--n-pre", "250", "--n-post", "400", "--steps", "1000", "--backends", "brian2,emu-fixed"],
        "ensemble": {"n": 100, "steps": 2000, "k": 32, "singles": 2},
    },
}


def _rss_mb(who=resource.RUSAGE_SELF) -> float:
    return resource.getrusage(who).ru_maxrss / 1024.0  # Linux: kilobytes


def _load_rule(spec: str):

    path = spec if os.path.exists(spec) else os.path.join(ROOT, "reference", "rules", f"{spec}.yaml")
    return load_rule(path)


def _setup(rule_spec: str, n_pre: int, n_post: int, steps: int):
    from neurodeploy.compile.compilation import compile_plans

    rule = _load_rule(rule_spec)
    plans = compile_plans(rule, default_trains(rule))
    trains = poisson(rule, n_pre, n_post, steps, DEFAULT_POISSON["rate"], SEED)
    return rule, trains, plans


# -- workers (one subprocess per measurement) ----------------------------------------
def _work_backend(job: dict) -> dict:

    registry = load_all()
    rule, trains, plans = _setup(job["rule"], job["n"], job["n"], job["steps"])
    backend = registry.get(job["backend"])
    base, children_base = _rss_mb(), _rss_mb(resource.RUSAGE_CHILDREN)
    backend.run(rule, trains, plans)  # warm-up, not timed (imports, JIT compilation); its memory counts
    seconds = []
    for _ in range(job["repeats"]):
        result = backend.run(rule, trains, plans)
        seconds.append(result.seconds)
        del result
    median = statistics.median(seconds)
    children = _rss_mb(resource.RUSAGE_CHILDREN)
    return {"seconds": seconds, "seconds_median": median, "steps_per_second": job["steps"] / median,
            "peak_rss_delta_mb": _rss_mb() - base, "peak_rss_mb": _rss_mb(),
            # None: no child process of the runs grew beyond those of the set-up (imports)
            "children_peak_rss_mb": children if children > children_base else None,
            "children_setup_rss_mb": children_base}


def _work_speedup(job: dict) -> dict:

    registry = load_all()
    rule, trains, plans = _setup(job["rule"], job["n"], job["n"], job["steps"])
    lava, emu = registry.get("lava-fixed"), registry.get("emu-fixed")
    lava.run(rule, trains, plans)  # warm-up of both, not timed (imports, JIT compilation)
    emu.run(rule, trains, plans)
    t_lava, t_emu, exact = [], [], True
    for _ in range(job["repeats"]):
        a = lava.run(rule, trains, plans)
        b = emu.run(rule, trains, plans)
        t_lava.append(a.seconds)
        t_emu.append(b.seconds)
        exact = exact and bool(np.array_equal(a.trajectory, b.trajectory))
        del a, b
    return {"lava_fixed_seconds": t_lava, "emu_fixed_seconds": t_emu,
            "lava_fixed_steps_per_second": job["steps"] / statistics.median(t_lava),
            "emu_fixed_steps_per_second": job["steps"] / statistics.median(t_emu),
            "speedup": statistics.median(t_lava) / statistics.median(t_emu), "bit_exact": exact}


def _work_large(job: dict) -> dict:

    rule, trains, plans = _setup(job["rule"], job["n_pre"], job["n_post"], job["steps"])
    plan = plans["fixed"]
    w0 = plan.weights_to_lava(trains.w0)
    base = _rss_mb()
    start = time.perf_counter()
    out = simulate(plan, w0, trains.pre, trains.post, record_every=job["record_every"])
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "steps_per_second": job["steps"] / seconds,
            "synapse_steps_per_second": job["steps"] * job["n_pre"] * job["n_post"] / seconds,
            "recorded_shape": list(out.shape), "recorded_mb": out.nbytes / 2 ** 20,
            "peak_rss_delta_mb": _rss_mb() - base, "peak_rss_mb": _rss_mb(),
            "weights_changed": bool(np.any(out[-1] != w0))}


def _work_compile(job: dict) -> dict:
    from neurodeploy.codegen import write_compiled
    from neurodeploy.compile.compilation import compile_plans
    from neurodeploy.compile.plan import engine_reason

    out = {}
    rules_dir = os.path.join(ROOT, "reference", "rules")
    for file in sorted(os.listdir(rules_dir)):
        if not file.endswith(".yaml"):
            continue
        rule = _load_rule(os.path.join(rules_dir, file))
        trains = default_trains(rule)
        engine = engine_reason(rule) is None  # lava-cpu rules: no plans, no Lava script
        times = {"lowering_plans": [], "codegen_brian2": [], "codegen_lava": []} if engine else {"codegen_brian2": []}
        for _ in range(job["repeats"]):
            if engine:
                start = time.perf_counter()
                compile_plans(rule, trains)
                times["lowering_plans"].append(time.perf_counter() - start)
            for target in ("brian2", "lava") if engine else ("brian2",):
                with tempfile.TemporaryDirectory(prefix="neurodeploy-bench-") as tmp:
                    start = time.perf_counter()
                    write_compiled(rule, target, tmp)
                    times[f"codegen_{target}"].append(time.perf_counter() - start)
        out[rule.name] = {key: statistics.median(v) for key, v in times.items()}
        out[rule.name]["first_call_seconds"] = {key: v[0] for key, v in times.items()}
    return out


def _work_ensemble(job: dict) -> dict:

    rule, trains, plans = _setup(job["rule"], job["n"], job["n"], job["steps"])
    plan = plans["fixed"]
    w0 = plan.weights_to_lava(trains.w0)
    seeds = ensemble_seeds(SEED, job["k"])
    rows = recorded_rows(trains.steps, record_stride(trains.steps, job["n"] * job["n"]))
    simulate_batch(plan, w0, trains.pre[:, :20], trains.post[:, :20], seeds[:2])  # JIT, not timed
    simulate(plan, w0, trains.pre[:, :20], trains.post[:, :20])
    base = _rss_mb()
    start, cpu = time.perf_counter(), time.process_time()
    batch, _ = simulate_batch(plan, w0, trains.pre, trains.post, seeds, record_rows=rows)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    start, exact = time.perf_counter(), True
    for k in range(job["singles"]):
        one = simulate(plan, w0, trains.pre, trains.post, rng_seed=seeds[k][0], conn_seed=seeds[k][1], record_rows=rows)
        exact = exact and bool(np.array_equal(one, batch[k].astype(float)))
    single = (time.perf_counter() - start) / job["singles"]
    return {"seconds": seconds, "cpu_seconds": cpu, "single_run_seconds": single,
            "members_one_by_one_seconds": single * job["k"], "members_bit_exact": exact,
            "members_checked": job["singles"], "peak_rss_delta_mb": _rss_mb() - base,
            "load_average": os.getloadavg()[0]}


def _work_verify(job: dict) -> dict:
    """One ``neurodeploy verify`` command in a child process: wall time, peak RSS, the report's facts."""
    out = tempfile.mkdtemp(prefix="neurodeploy-bench-verify-")
    cmd = [sys.executable, "-m", "neurodeploy.cli", "verify", _rule_path(job["rule"]), "--out", out, "--quiet",
           *job["args"]]
    load = os.getloadavg()[0]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - start
    peak = _rss_mb(resource.RUSAGE_CHILDREN)
    result = {"command": "neurodeploy verify " + " ".join([job["rule"]] + job["args"]), "exit_code": proc.returncode,
              "wall_seconds": wall, "peak_rss_mb": peak, "load_average_before": load,
              "load_average_after": os.getloadavg()[0]}
    try:
        with open(os.path.join(out, "report.json")) as handle:
            report = json.load(handle)
    except OSError:
        result["error"] = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no report"]
        return result
    result.update(outcome=report["outcome"], counts=report["counts"], steps=report["steps"],
                  synapses=report["n_pre"] * report["n_post"], phases=report.get("seconds"),
                  recording=report.get("recording"), proof=report.get("proof"),
                  backends={b["name"]: {"seconds": b["seconds"], "steps_per_second": b["steps_per_second"],
                                        "steps": b["steps"], "target": b["info"].get("brian2_target")}
                            for b in report["backends"] if b.get("ran")},
                  trajectories_mb=os.path.getsize(os.path.join(out, "trajectories.npz")) / 2 ** 20)
    import shutil

    shutil.rmtree(out, ignore_errors=True)
    return result


def _rule_path(spec: str) -> str:
    return spec if os.path.exists(spec) else os.path.join(ROOT, "reference", "rules", f"{spec}.yaml")


WORKERS = {"backend": _work_backend, "speedup": _work_speedup, "large": _work_large, "compile": _work_compile,
           "ensemble": _work_ensemble, "verify": _work_verify}


def _run_worker(job: dict, timeout: float = 3600) -> dict:
    """Run ``job`` in a fresh interpreter; its result dict, or {"error": ...}."""
    cmd = [sys.executable, "-m", "neurodeploy.bench", "--worker", json.dumps(job)]
    try:
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_TAG):
            return json.loads(line[len(RESULT_TAG):])
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
    return {"error": f"exit {proc.returncode}: " + " | ".join(tail)}


# -- driver ----------------------------------------------------------------------------
def _fmt(value, digits=1):
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def _components(data: dict, s: dict, rule: str, progress) -> None:
    """Compile times, every backend per size, the emulator's speed-ups and its large run."""
    progress("compile times ...")
    data["compile"] = _run_worker({"kind": "compile", "repeats": s["compile_repeats"]})
    for n, steps in s["sizes"]:
        for name in BACKENDS:
            if n >= 1000 and name not in s["big_backends"]:
                continue
            progress(f"{name} {n}x{n}, {steps} steps ...")
            res = _run_worker({"kind": "backend", "rule": rule, "backend": name, "n": n, "steps": steps,
                               "repeats": s["repeats"]})
            data["backends"].append(dict(backend=name, n_pre=n, n_post=n, steps=steps, **res))
    sp = s["speedup"]
    progress(f"lava-fixed vs emu-fixed {sp['n']}x{sp['n']}, {sp['steps']} steps ...")
    speed = _run_worker({"kind": "speedup", "rule": rule, "repeats": s["repeats"], **sp})
    data["speedup"] = dict(sp, **speed)
    data["emulator_speedup_vs_lava_fixed"] = speed.get("speedup")
    data["emulator_bit_exact"] = speed.get("bit_exact")
    large = s["large"]
    progress(f"emu-fixed {large['n_pre'] * large['n_post']:.0e} synapses x {large['steps']:.0e} steps ...")
    data["emulator_large"] = dict(large, synapses=large["n_pre"] * large["n_post"],
                                  **_run_worker({"kind": "large", "rule": rule, **large}))
    for sp in s["speedups"]:
        progress(f"lava-fixed vs emu-fixed {sp['n']}x{sp['n']}, {sp['steps']} steps ...")
        data["speedups"].append(dict(sp, **_run_worker({"kind": "speedup", "rule": rule, "repeats": s["repeats"], **sp})))


def run(quick: bool, rule: str, out_path: str, progress=print, goals_only: bool = False) -> dict:

    s = SETTINGS["quick" if quick else "full"]
    started = time.time()
    data = {
        "neurodeploy_version": __version__, "quick": quick, "goals_only": goals_only, "rule": rule,
        "rate_hz": DEFAULT_POISSON["rate"], "seed": SEED, "repeats": s["repeats"],
        "memory_method": ("one subprocess per measurement; peak_rss_delta_mb = getrusage(RUSAGE_SELF).ru_maxrss "
                          "after the runs minus after set-up; children_peak_rss_mb = RUSAGE_CHILDREN ru_maxrss "
                          "when the runs raised it (Lava's runtime processes, absolute)"),
        "steps_per_second_method": "steps / median Backend.run seconds (set-up included, trajectory returned)",
        "machine": {"python": platform.python_version(), "numpy": np.__version__, "cpus": os.cpu_count(),
                    "platform": platform.platform(), "load_average_at_start": os.getloadavg()},
    }
    data["compile"], data["backends"], data["speedups"] = {}, [], []
    if not goals_only:
        _components(data, s, rule, progress)
    goals = data["goals"] = {}
    progress(f"goal 1: verify {' '.join(s['goal1'])} ...")
    goals["1_verify_100x100"] = _run_worker({"kind": "verify", "rule": rule, "args": s["goal1"]})
    goals["2_protocols"] = {}
    for name in s["goal2"]:
        progress(f"goal 2: verify --protocol {name} (defaults) ...")
        goals["2_protocols"][name] = _run_worker({"kind": "verify", "rule": rule, "args": ["--protocol", name]})
    progress(f"goal 3: verify {' '.join(s['goal3'])} ...")
    goals["3_verify_large"] = _run_worker({"kind": "verify", "rule": rule, "args": s["goal3"]})
    en = s["ensemble"]
    progress(f"goal 4: ensemble K={en['k']} at {en['n']}x{en['n']} x {en['steps']} steps ...")
    goals["4_ensemble"] = dict(en, **_run_worker({"kind": "ensemble", "rule": rule, **en}))
    data["total_seconds"] = time.time() - started
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    tmp = out_path + ".tmp"
    with open(tmp, "w") as handle:
        json.dump(data, handle, indent=2, sort_keys=True)
        handle.write("\n")
    os.replace(tmp, out_path)
    return data


def render(data: dict) -> str:
    parts = [f"neurodeploy bench ({'quick' if data['quick'] else 'full'}), rule {data['rule']}, "
             f"Poisson {data['rate_hz']:g} Hz, medians of {data['repeats']} runs"]
    comp = data.get("compile", {})
    if data.get("goals_only"):
        parts[0] += " (goals only: --goals)"
    if not comp:
        pass
    elif "error" in comp:
        parts.append(f"compile: ERROR {comp['error']}")
    else:
        rows = [(name, _fmt(v["lowering_plans"] * 1e3) if "lowering_plans" in v else "- (lava-cpu)",
                 _fmt(v["codegen_brian2"] * 1e3), _fmt(v["codegen_lava"] * 1e3) if "codegen_lava" in v else "-")
                for name, v in comp.items()]
        parts.append("\ncompile time (ms)\n" + _table(
            ["rule", "lowering+plans", "codegen brian2", "codegen lava (incl. plans)"], rows))
    rows = []
    for b in data["backends"]:
        size = f"{b['n_post']}x{b['n_pre']}"
        if "error" in b:
            rows.append((b["backend"], size, b["steps"], "ERROR", b["error"][:60], "", ""))
            continue
        rows.append((b["backend"], size, b["steps"], _fmt(b["steps_per_second"]), _fmt(b["seconds_median"], 3),
                     _fmt(b["peak_rss_delta_mb"]), _fmt(b["children_peak_rss_mb"])))
    if rows:
        parts.append("\nbackends\n" + _table(
            ["backend", "synapses", "steps", "steps/s", "s (median)", "peak RSS +MB", "children RSS MB"], rows))
    sp = data.get("speedup", {})
    if not sp:
        pass
    elif "error" in sp:
        parts.append(f"\nspeed-up: ERROR {sp['error']}")
    else:
        parts.append(f"\nemu-fixed vs lava-fixed, {sp['n']}x{sp['n']}, {sp['steps']} steps, same process: "
                     f"{sp['emu_fixed_steps_per_second']:,.0f} vs {sp['lava_fixed_steps_per_second']:,.0f} steps/s, "
                     f"speed-up x{sp['speedup']:,.1f}, bit-exact: {sp['bit_exact']}")
    lg = data.get("emulator_large", {})
    if not lg:
        pass
    elif "error" in lg:
        parts.append(f"large emu-fixed: ERROR {lg['error']}")
    else:
        parts.append(f"emu-fixed {lg['synapses']:,} synapses x {lg['steps']:,} steps (record every {lg['record_every']}): "
                     f"{lg['seconds']:.1f} s, {lg['steps_per_second']:,.0f} steps/s, "
                     f"{lg['synapse_steps_per_second']:.3g} synapse-steps/s, peak RSS +{lg['peak_rss_delta_mb']:,.0f} MB "
                     f"(recording {lg['recorded_mb']:,.0f} MB)")
    for sp in data.get("speedups", []):
        if "error" in sp:
            parts.append(f"speed-up {sp['n']}x{sp['n']}: ERROR {sp['error']}")
        else:
            parts.append(f"emu-fixed vs lava-fixed, {sp['n']}x{sp['n']}, {sp['steps']} steps: "
                         f"{sp['emu_fixed_steps_per_second']:,.0f} vs {sp['lava_fixed_steps_per_second']:,.0f} steps/s, "
                         f"speed-up x{sp['speedup']:,.1f}, bit-exact: {sp['bit_exact']}")
    goals = data.get("goals")
    if goals:
        parts.append("\nverify at scale (one neurodeploy verify per row, start to report; peak RSS of the largest "
                     "process; load average before the run)")
        rows = []

        def row(label, g):
            if "error" in g and "outcome" not in g:
                rows.append((label, "ERROR", str(g["error"])[:50], "", "", "", ""))
                return
            per = ", ".join(f"{n} {b['steps_per_second']:,.0f}/s [{b['steps'][0]}, {b['steps'][1]})"
                            + (" cpp" if b.get("target") == "cpp_standalone" else "")
                            for n, b in g["backends"].items())
            rows.append((label, f"{g['steps']:,} x {g['synapses']:,}", _fmt(g["wall_seconds"]),
                         _fmt(g["peak_rss_mb"], 0), g["outcome"], _fmt(g["load_average_before"]), per))

        row("1: 100x100 default", goals["1_verify_100x100"])
        for name, g in goals["2_protocols"].items():
            row(f"2: {name}", g)
        row("3: large brian2+emu-fixed", goals["3_verify_large"])
        parts.append(_table(["goal", "steps x synapses", "wall s", "peak MB", "outcome", "load", "steps/s [steps ran)"],
                            rows))
        en = goals["4_ensemble"]
        if "error" in en:
            parts.append(f"4: ensemble ERROR {en['error']}")
        else:
            parts.append(f"4: ensemble K={en['k']} at {en['n']}x{en['n']} x {en['steps']} steps, one batched call: "
                         f"{en['seconds']:.2f} s wall, {en['cpu_seconds']:.2f} s CPU (one by one: "
                         f"{en['members_one_by_one_seconds']:.2f} s); members bit-exact: {en['members_bit_exact']} "
                         f"({en['members_checked']} checked); load {en['load_average']:.1f}")
    return "\n".join(parts)


def _calibrate_tasks(names: str, pool: int, out: str, draws: int = 1000, wrong: bool = True, jobs: int = 1) -> int:
    """``--tasks``: :func:`neurodeploy.tasks.runner.calibrate` per task, one JSON file (the other tasks'
    earlier results in it kept), one table."""
    if out == os.path.join(ROOT, "build", "bench.json"):
        out = os.path.join(ROOT, "build", "bench_tasks.json")
    chosen = list(TASKS) if names == "all" else names.split(",")
    unknown = [n for n in chosen if n not in TASKS]
    if unknown:
        print(f"neurodeploy bench: error: --tasks: unknown task {unknown[0]!r} (tasks: {', '.join(TASKS)})",
              file=sys.stderr)
        return 2
    data = {"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(), "tasks": {}}
    if os.path.exists(out):
        try:
            with open(out) as f:
                data["tasks"] = json.load(f).get("tasks", {})
        except (OSError, ValueError):
            pass
    rows = []
    for name in chosen:
        start = time.perf_counter()
        result = calibrate(task_module(name), pool=pool, draws=draws, wrong=WRONG if wrong else (), jobs=jobs,
                           progress=lambda m: print(m, file=sys.stderr, flush=True))
        result["seconds"] = round(time.perf_counter() - start, 1)
        data["tasks"][name] = result
        for label, d in result["deployments"].items():
            lo, hi = d["clopper_pearson_95"]
            rows.append([name, label, f"{d['failed_drawn']:.1%}", f"{d['failed_disjoint']}/{d['disjoint']}",
                         f"{lo:.0%}..{hi:.0%}", ", ".join(sorted(d["rejected_by"], key=d["rejected_by"].get,
                                                                   reverse=True)[:3])])
        os.makedirs(os.path.dirname(out), exist_ok=True)
        with open(out, "w") as f:
            json.dump(data, f, indent=1)
    print(_table(["task", "deployment", "FAILED (drawn)", "FAILED (disjoint)", "95% CP", "caught by"], rows))
    print(f"\nwrote {os.path.relpath(out, os.getcwd())}")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m neurodeploy.bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="smaller goals, no per-size backend table, one repeat (a few minutes)")
    parser.add_argument("--goals", action="store_true",
                        help="the performance goals of chip scale (neurodeploy.goals: chip-scale verify, Lava on "
                             "tiles, the emulator at the limit, the ensemble and plans on a cluster); "
                             "writes build/bench_goals.json")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="with --goals: the chip-scale synapses (1.2e8) times this (e.g. 0.01 to develop)")
    parser.add_argument("--verify-scale", type=float, default=None,
                        help="with --goals: goal 1 (the whole chip-scale verify) at this scale (default --scale)")
    parser.add_argument("--max-rss-gb", type=float, default=None,
                        help="with --goals: stop a goal's process tree above this many GB (default 18)")
    parser.add_argument("--skip", default="", help="with --goals: goals not to run, e.g. 1,2")
    parser.add_argument("--tasks", default=None,
                        help="the learning tasks' verdicts calibrated instead (comma-separated names, or all): false "
                             "alarms and detection of the wrong deployments on untuned seeds; writes build/bench_tasks.json")
    parser.add_argument("--pool", type=int, default=20, help="with --tasks: runs per pool (default 20)")
    parser.add_argument("--draws", type=int, default=1000, help="with --tasks: verdicts drawn from the pools (default 1000)")
    parser.add_argument("--no-wrong", action="store_true", help="with --tasks: no wrong deployments (the null and the "
                                                                 "correct deployment only)")
    parser.add_argument("--jobs", type=int, default=None,
                        help="with --tasks: worker processes for the pools' runs (default: this machine's cores)")
    parser.add_argument("--rule", default="stdp_pair", help="reference rule name or YAML path (default stdp_pair)")
    parser.add_argument("--out", default=os.path.join(ROOT, "build", "bench.json"), help="JSON output path")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        job = json.loads(args.worker)
        result = WORKERS[job["kind"]](job)
        sys.stdout.write(RESULT_TAG + json.dumps(result) + "\n")
        sys.stdout.flush()
        return 0
    if args.jobs is not None and args.jobs < 1:
        print(f"neurodeploy bench: error: --jobs: must be at least 1 (got {args.jobs})", file=sys.stderr)
        return 2
    if args.tasks:
        return _calibrate_tasks(args.tasks, args.pool, args.out, args.draws, not args.no_wrong,
                                args.jobs or len(os.sched_getaffinity(0)))
    if args.goals:
        from neurodeploy import goals

        out = args.out if args.out != os.path.join(ROOT, "build", "bench.json") else \
            os.path.join(ROOT, "build", "bench_goals.json")
        return goals.main(["--scale", str(args.scale), "--out", out, "--skip", args.skip]
                          + ([] if args.max_rss_gb is None else ["--max-rss-gb", str(args.max_rss_gb)])
                          + ([] if args.verify_scale is None else ["--verify-scale", str(args.verify_scale)]))
    data = run(args.quick, args.rule, args.out, progress=lambda m: print(m, file=sys.stderr, flush=True))
    print(render(data))
    print(f"\nwrote {os.path.relpath(args.out, os.getcwd())}")
    failed = [b for b in data["backends"] if "error" in b] + [
        d for d in (data["compile"], data.get("speedup", {}), data.get("emulator_large", {})) if "error" in d] + [
        d for d in data.get("speedups", []) if "error" in d]
    return 1 if failed or data.get("emulator_bit_exact") is False else 0


if __name__ == "__main__":
    sys.exit(main())
