"""The performance goals of issue #22, side by side: ``scripts/bench --goals [--scale S]``.

Writes ``build/bench_goals.json`` and prints one table per goal (not timed tests: measurements).

0. The machine's limits, measured here, one thread: streaming bandwidth (``np.copyto`` of 1 GiB:
   read + write), and the rate of random cache-line updates in a 1 GiB array (a numba loop: read,
   modify, write of one int16 per line): the event-driven emulator's bound, one line per touched
   synapse.
1. Chip scale: ``neurodeploy verify stdp_pair --n-pre N --n-post M --steps 10000 --backends
   brian2,emu-fixed`` (1.2e8 synapses at ``--scale 1``: 12,000 x 10,000; the
   sides scale by ``sqrt(scale)``) in its own process tree, its resident memory sampled every 0.5 s and
   the tree stopped above ``--max-rss-gb`` (default 18). Per part: seconds, steps/s, synapse updates
   (the synapses of the neurons that spiked, the emulator's work) per second, against the measured
   limit; Brian2's resident bytes per synapse.
2. Lava on tiles: the same plan (scaled on the whole connection's trains, as verify scales it),
   ``lava-fixed`` on sub-blocks (tiles of ``TILE`` x ``TILE`` synapses, along the diagonal and a
   corner) for Lava's window of steps, against the emulator run on the whole connection recording
   those synapses: bit for bit, every step.
3. The emulator at the limit: ``emu-fixed`` synapse-steps/s at 10^4, 10^6 and 10^8 synapses (10^8 from
   ``--scale 0.1``, below that 10^9 x scale, at least 10^6), dense (all to all) and sparse (a 10 % mask, :mod:`neurodeploy.emu.sparse`),
   against the measured limits: bandwidth (4 bytes a synapse-step if every synapse were updated) and
   the random-line rate (the touched synapses).
4. Cluster: the verdict's ensemble (K = 32, 1000 x 1000 x 1000 steps) in one call, on 2 threads, and on a
   Dask ``LocalCluster`` of 1 and 2 worker processes (bit for bit the same members); a ``run`` plan
   (4 runs) locally and on a ``LocalCluster`` of 2 workers (the same summaries).

Every measurement runs in its own process (``--worker``); Brian2's target is its best (``auto``:
cpp_standalone at these sizes).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import resource
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np

from neurodeploy import limits
from neurodeploy.backend import Recording
from neurodeploy.compile.loihi import RNG_SEED
from neurodeploy.emu import simulate, simulate_batch
from neurodeploy.emu.engine import _Engine
from neurodeploy.emu.sparse import simulate_sparse, SparseConnection
from neurodeploy.protocol import default_trains, make_trains, poisson, SpikeTrains, trace_stats
from neurodeploy.spec.loader import load_rule
from neurodeploy.targets import load_all
from neurodeploy.verdict.quantization import ensemble_seeds

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULT_TAG = "NEURODEPLOY_GOALS_RESULT "
RULE = "stdp_pair"
SEED = 3
#: One Loihi 2 chip: up to 1.2e8 synapses (12,000 post x 10,000 pre at scale 1).
CHIP_POST, CHIP_PRE = 12_000, 10_000
CHIP_STEPS = 10_000
#: Lava's tiles: side (synapses TILE x TILE) and how many.
TILE, TILES = 48, 4
#: Most steps Lava runs per tile (its window; verify's default window at this size is 2000).
TILE_STEPS = 1000
MAX_RSS_GB = 18.0


#: The protocols' run limits (``neurodeploy.protocol``: 2e10 synapse-steps, 2e8 neuron-steps, a guard against
#: runs that cannot finish) are raised for the goals: the chip is 1.2e12 synapse-steps and 2.2e8 neuron-steps.
CHIP_LIMITS = {"MAX_SYNAPSE_STEPS": 2 * 10 ** 12, "MAX_NEURON_STEPS": 10 ** 9}


@contextlib.contextmanager
def chip_limits():
    """Within the block, the run limits (:mod:`neurodeploy.limits`) raised to :data:`CHIP_LIMITS` in every
    loaded neurodeploy module that holds them (and in those loaded later, which read
    :mod:`neurodeploy.limits`); restored after it."""

    saved = []
    for module in [limits] + [m for n, m in list(sys.modules.items()) if n.startswith("neurodeploy.") and m]:
        for name, value in CHIP_LIMITS.items():
            if hasattr(module, name):
                saved.append((module, name, getattr(module, name)))
                setattr(module, name, max(getattr(module, name), value))
    try:
        yield
    finally:
        for module, name, value in reversed(saved):
            setattr(module, name, value)


def _rss_mb(who=resource.RUSAGE_SELF) -> float:
    return resource.getrusage(who).ru_maxrss / 1024.0


def _rule_path(name: str = RULE) -> str:
    return os.path.join(ROOT, "reference", "rules", f"{name}.yaml")


def chip_shape(scale: float) -> tuple:
    """(n_post, n_pre) of the chip-scale connection at ``scale`` (sides by sqrt(scale))."""
    f = math.sqrt(scale)
    return max(2, int(round(CHIP_POST * f))), max(2, int(round(CHIP_PRE * f)))


def touched_updates(pre: np.ndarray, post: np.ndarray) -> int:
    """Synapse updates of the event-driven emulator: at each step the rows of the post neurons that
    spiked and the columns of the pre neurons that spiked in the other rows; every synapse at step 0."""
    n_pre, n_post = pre.shape[0], post.shape[0]
    a = post.sum(axis=0).astype(np.int64)
    b = pre.sum(axis=0).astype(np.int64)
    per = a * n_pre + b * (n_post - a)
    per[0] = n_pre * n_post
    return int(per.sum())


# -- process trees: sampled resident memory, a limit -------------------------------------------
def _tree_rss(pid: int) -> int:
    """Resident bytes of ``pid`` and all its descendants (from /proc)."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(entry))
        except (OSError, IndexError, ValueError):
            continue
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        todo.extend(children.get(p, []))
        try:
            with open(f"/proc/{p}/statm") as handle:
                total += int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):
            continue
    return total


def run_tree(cmd, limit_gb: float, timeout: float, nice: int = 0) -> dict:
    """Run ``cmd`` in its own process group, sampling the tree's resident memory every 0.5 s; stopped
    (SIGKILL to the group) above ``limit_gb`` or after ``timeout`` seconds."""
    prefix = ["nice", "-n", str(nice)] if nice else []
    start = time.perf_counter()
    proc = subprocess.Popen(prefix + list(cmd), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    peak, stopped = 0, None
    import threading

    out = {}

    def drain(name, stream):
        out[name] = stream.read()

    threads = [threading.Thread(target=drain, args=(n, s), daemon=True)
               for n, s in (("stdout", proc.stdout), ("stderr", proc.stderr))]
    for t in threads:
        t.start()
    while proc.poll() is None:
        peak = max(peak, _tree_rss(proc.pid))
        elapsed = time.perf_counter() - start
        if peak > limit_gb * 2 ** 30 or elapsed > timeout:
            stopped = (f"stopped: the process tree's resident memory passed {limit_gb:g} GB" if peak > limit_gb * 2 ** 30
                       else f"stopped: over {timeout:.0f} s")
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            break
        time.sleep(0.5)
    for t in threads:
        t.join(5)
    return {"wall_seconds": time.perf_counter() - start, "tree_peak_rss_mb": peak / 2 ** 20,
            "exit_code": proc.returncode, "stopped": stopped, "stdout": out.get("stdout", ""),
            "stderr": out.get("stderr", "")}


def _worker(job: dict, limit_gb: float = MAX_RSS_GB, timeout: float = 7200, nice: int = 0) -> dict:
    cmd = [sys.executable, "-m", "neurodeploy.goals", "--worker", json.dumps(job)]
    res = run_tree(cmd, limit_gb, timeout, nice)
    for line in reversed(res["stdout"].splitlines()):
        if line.startswith(RESULT_TAG):
            data = json.loads(line[len(RESULT_TAG):])
            data["tree_peak_rss_mb"] = res["tree_peak_rss_mb"]
            data["process_wall_seconds"] = res["wall_seconds"]
            return data
    tail = (res["stderr"] or res["stdout"]).strip().splitlines()[-3:]
    return {"error": res["stopped"] or f"exit {res['exit_code']}: " + " | ".join(tail),
            "tree_peak_rss_mb": res["tree_peak_rss_mb"], "process_wall_seconds": res["wall_seconds"]}


# -- 0: the machine's limits ----------------------------------------------------------------------
def _work_limits(job: dict) -> dict:
    import numba

    @numba.njit(nogil=True)
    def random_lines(a, idx):  # one int16 read-modify-write per random cache line (32 int16 a line)
        for k in range(idx.shape[0]):
            p = idx[k]
            a[p] = a[p] + 1
        return a[0]

    n = 2 ** 29  # 1 GiB of int16
    a = np.ones(n, dtype=np.int16)
    b = np.empty_like(a)
    np.copyto(b, a)
    copies = []
    for _ in range(3):
        start = time.perf_counter()
        np.copyto(b, a)
        copies.append(time.perf_counter() - start)
    stream = 2 * a.nbytes / min(copies)  # read + write
    idx = (np.random.default_rng(0).integers(0, n // 32, size=20_000_000) * 32).astype(np.int64)
    random_lines(a, idx[:1000])
    lines = []
    for _ in range(3):
        start = time.perf_counter()
        random_lines(a, idx)
        lines.append(time.perf_counter() - start)
    return {"stream_bytes_per_second": stream, "random_lines_per_second": idx.size / min(lines),
            "random_line_ns": min(lines) / idx.size * 1e9, "array_gib": a.nbytes / 2 ** 30,
            "method": "np.copyto of 1 GiB int16 (2 x bytes / best of 3); numba loop: +1 on an int16 at 20e6 "
                      "random cache-line-aligned positions of 1 GiB (best of 3); one thread"}


# -- 1: chip scale, one neurodeploy verify ------------------------------------------------------
def _work_chip(job: dict) -> dict:

    n_post, n_pre, steps = job["n_post"], job["n_pre"], job["steps"]
    out = tempfile.mkdtemp(prefix="neurodeploy-goal1-")
    # neurodeploy verify with the run limits raised (CHIP_LIMITS)
    cmd = [sys.executable, "-m", "neurodeploy.goals", "--cli-with-chip-limits", "verify", _rule_path(), "--out", out,
           "--quiet",
           "--n-pre", str(n_pre), "--n-post", str(n_post), "--steps", str(steps), "--backends", "brian2,emu-fixed"]
    # the ensemble in one call: spreading its members over this machine's 2 cores (--scheduler local) was measured
    # 2.3-2.7x slower (the batched kernel is memory-bound; docs/performance.md, goal 4)
    cmd += job.get("extra", [])
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - start
    result = {"command": "neurodeploy verify " + " ".join(cmd[5:]).replace(out, "OUT").replace(ROOT + "/", ""),
              "limits_raised": CHIP_LIMITS, "exit_code": proc.returncode,
              "wall_seconds": wall, "largest_process_peak_rss_mb": _rss_mb(resource.RUSAGE_CHILDREN),
              "synapses": n_post * n_pre, "steps": steps, "n_post": n_post, "n_pre": n_pre}
    try:
        with open(os.path.join(out, "report.json")) as handle:
            report = json.load(handle)
    except OSError:
        result["error"] = ((proc.stderr or proc.stdout).strip().splitlines() or ["no report"])[-1]
        return result
    rule = load_rule(_rule_path())
    with chip_limits():
        trains = make_trains(rule, "poisson", {"n_pre": n_pre, "n_post": n_post, "steps": steps}, SEED)
    touched = touched_updates(trains.pre, trains.post)
    del trains
    fid = next((c for c in report["comparisons"] if c["share"] == "fidelity"), {})
    rounding = next((c for c in report["comparisons"] if c["share"] == "rounding"), {})
    result.update(outcome=report["outcome"], phases=report.get("seconds"), touched_updates=touched,
                  pre_spikes=report.get("stats", {}).get("pre_spikes"), post_spikes=report.get("stats", {}).get("post_spikes"),
                  fidelity={k: fid.get(k) for k in ("outcome", "message", "gain", "correlation", "judged_on")},
                  ensemble_size=rounding.get("ensemble_size"), chain_sampled=rounding.get("sampled"),
                  ensemble_run=rounding.get("ensemble_run"),
                  backends={b["name"]: {"seconds": b["seconds"], "steps_per_second": b["steps_per_second"],
                                        "steps": b["steps"], "target": b["info"].get("brian2_target")}
                            for b in report["backends"] if b.get("ran")})
    import shutil

    shutil.rmtree(out, ignore_errors=True)
    return result


# -- 2: Lava on tiles --------------------------------------------------------------------------------
def choose_tiles(n_post: int, n_pre: int, side: int = TILE, count: int = TILES) -> list:
    """``count`` tiles (post start, pre start, side) spread along the diagonal, the last in the far corner."""
    side = min(side, n_post, n_pre)
    out = []
    for k in range(count):
        f = k / max(1, count - 1)
        out.append((int(round(f * (n_post - side))), int(round(f * (n_pre - side))), side))
    return sorted(set(out))


def _work_tiles(job: dict) -> dict:
    from neurodeploy.compile.compilation import compile_plans

    n_post, n_pre, steps, window = job["n_post"], job["n_pre"], job["steps"], job["window"]
    rule = load_rule(_rule_path())
    with chip_limits():
        trains = make_trains(rule, "poisson", {"n_pre": n_pre, "n_post": n_post, "steps": steps}, SEED)
    start = time.perf_counter()
    plans = compile_plans(rule, trains, trace_stats(rule, trains), approximate=True)  # as verify plans
    plan = plans["fixed"]
    plan_seconds = time.perf_counter() - start
    # the window's random streams are the first of the whole run's (bulk draws: a prefix)
    short = _Engine(plan, np.zeros((1, 1)), 1, 1, window, RNG_SEED)
    full = _Engine(plan, np.zeros((1, 1)), 1, 1, steps, RNG_SEED)
    prefix = all(np.array_equal(getattr(short, a), getattr(full, a)[:getattr(short, a).size])
                 for a in ("xr_dec", "xr_imp", "yr_dec", "yr_imp", "conn_r"))
    tiles = choose_tiles(n_post, n_pre, job.get("side", TILE), job.get("count", TILES))
    flat = np.concatenate([((r0 + np.arange(s))[:, None] * n_pre + (c0 + np.arange(s))[None, :]).reshape(-1)
                           for r0, c0, s in tiles])
    w0 = plan.weights_to_lava(trains.w0)
    start = time.perf_counter()
    emu = simulate(plan, w0, trains.pre[:, :window], trains.post[:, :window], record_rows=np.arange(window),
                   record_synapses=flat)  # the whole connection, its window of steps, the tiles' synapses
    emu_seconds = time.perf_counter() - start
    del w0
    lava = load_all().get("lava-fixed")
    out, offset = [], 0
    for r0, c0, s in tiles:
        rows, cols = slice(r0, r0 + s), slice(c0, c0 + s)
        tile = SpikeTrains(trains.pre[cols], trains.post[rows], trains.w0[rows, cols], "poisson", SEED,
                           trains.rate)
        start = time.perf_counter()
        res = lava.run(rule, tile, plans, None, Recording(every=1, stop=window))
        seconds = time.perf_counter() - start
        got = np.rint(res.trajectory / plan.weight_scale).reshape(window, -1)
        mine = emu[:, offset:offset + s * s]
        offset += s * s
        diff = np.argwhere(got != mine)
        out.append({"posts": [r0, r0 + s - 1], "pres": [c0, c0 + s - 1], "synapses": s * s, "steps": [0, window - 1],
                    "bit_exact": bool(diff.size == 0), "first_difference": diff[0].tolist() if diff.size else None,
                    "weights_moved": int(np.sum(mine[-1] != mine[0])), "lava_seconds": seconds,
                    "lava_steps_per_second": window / seconds})
    return {"tiles": out, "window_steps": window, "emulator_seconds": emu_seconds, "plan_seconds": plan_seconds,
            "random_streams_prefix": prefix, "all_bit_exact": all(t["bit_exact"] for t in out),
            "peak_rss_mb": _rss_mb(), "lava_children_peak_rss_mb": _rss_mb(resource.RUSAGE_CHILDREN)}


# -- 3: the emulator at the limit --------------------------------------------------------------------
def _sparse_pairs(n_post: int, n_pre: int, density: float, seed: int) -> tuple:
    """(rows, cols) of a random mask of ``density``, drawn row block by row block (no dense mask held)."""
    rng = np.random.default_rng(seed)
    rows, cols = [], []
    block = max(1, int(2 ** 26 // max(1, n_pre)))
    for r0 in range(0, n_post, block):
        m = rng.random((min(block, n_post - r0), n_pre), dtype=np.float32) < density
        r, c = np.nonzero(m)
        rows.append((r + r0).astype(np.int32))
        cols.append(c.astype(np.int32))
    return np.concatenate(rows), np.concatenate(cols)


def _work_emulator(job: dict) -> dict:
    from neurodeploy.compile.compilation import compile_plans

    rule = load_rule(_rule_path())
    plan = compile_plans(rule, default_trains(rule))["fixed"]
    synapses, steps, kind = job["synapses"], job["steps"], job["kind_of"]
    warm = poisson(rule, 4, 4, 20, 10.0, 1)
    if kind == "dense":
        n_post = int(round(math.sqrt(synapses * 1.2)))
        n_pre = int(round(synapses / n_post))
        trains = poisson(rule, n_pre, n_post, steps, 10.0, SEED)
        w0 = plan.weights_to_lava(trains.w0)
        simulate(plan, plan.weights_to_lava(warm.w0), warm.pre, warm.post)  # numba's cache, not timed
        base = _rss_mb()
        start = time.perf_counter()
        simulate(plan, w0, trains.pre, trains.post, record_rows=[steps - 1], record_synapses=np.arange(16))
        seconds = time.perf_counter() - start
        present = n_post * n_pre
        bytes_per_synapse = 2
    else:
        density = job.get("density", 0.1)
        side = math.sqrt(synapses / density)
        n_post, n_pre = int(round(side * 1.1)), int(round(side / 1.1))
        rng = np.random.default_rng(SEED)  # Bernoulli rasters as poisson() draws them, without its dense w0
        pre = rng.random((n_pre, steps), dtype=np.float32) < 10.0 * rule.dt
        post = rng.random((n_post, steps), dtype=np.float32) < 10.0 * rule.dt
        rows, cols = _sparse_pairs(n_post, n_pre, density, SEED)
        present = rows.size
        conn = SparseConnection(rows, cols, n_post, n_pre)
        w0 = np.full(present, plan.weights_to_lava(np.array([rule.weight.w_init]))[0])
        del rows, cols
        wc = SparseConnection([0, 1], [1, 2], 4, 4)
        simulate_sparse(plan, wc, np.zeros(2), warm.pre, warm.post)  # numba's cache, not timed
        base = _rss_mb()
        start = time.perf_counter()
        simulate_sparse(plan, conn, w0, pre, post, record_synapses=np.arange(16))
        seconds = time.perf_counter() - start
        bytes_per_synapse = 2 + (conn.nbytes / present)
    if kind == "dense":
        touched = touched_updates(trains.pre, trains.post)
    else:  # present synapses of the touched rows and columns, estimated by the density
        touched = int(round(touched_updates(pre, post) * present / (n_post * n_pre)))
    return {"kind": kind, "synapses": present, "n_post": n_post, "n_pre": n_pre, "steps": steps, "seconds": seconds,
            "synapse_steps_per_second": present * steps / seconds, "touched_updates": touched,
            "touched_per_second": touched / seconds, "touched_fraction": touched / (present * steps),
            "bytes_per_synapse": bytes_per_synapse, "peak_rss_mb": _rss_mb(), "run_rss_delta_mb": _rss_mb() - base}


# -- 4: cluster ------------------------------------------------------------------------------------------
def _work_cluster(job: dict) -> dict:
    from distributed import Client, LocalCluster

    from neurodeploy.compile.compilation import compile_plans

    rule = load_rule(_rule_path())
    n, steps, k = job["n"], job["steps"], job["k"]
    trains = poisson(rule, n, n, steps, 10.0, SEED)
    plan = compile_plans(rule, default_trains(rule))["fixed"]
    w0 = plan.weights_to_lava(trains.w0)
    seeds = ensemble_seeds(SEED, k)
    rows = [steps // 2, steps - 1]
    simulate_batch(plan, w0[:4, :4], trains.pre[:4, :20], trains.post[:4, :20], seeds[:2], spread=False)  # JIT
    out = {"n": n, "steps": steps, "k": k, "runs": {}}

    def timed(label, spread):
        start = time.perf_counter()
        got = simulate_batch(plan, w0, trains.pre, trains.post, seeds, record_rows=rows, spread=spread)
        out["runs"][label] = {"seconds": time.perf_counter() - start}
        return got

    ref = timed("one call", False)
    same = timed("2 threads", 2)
    out["runs"]["2 threads"]["identical"] = bool(np.array_equal(ref[0], same[0]) and np.array_equal(ref[1], same[1]))
    for workers in (1, 2):
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None) as lc, \
                Client(lc) as client:
            client.run(lambda: __import__("neurodeploy.emu.kernel"))
            client.submit(simulate_batch, plan, w0[:4, :4], trains.pre[:4, :20], trains.post[:4, :20], seeds[:2],
                          spread=False, pure=False).result()  # each worker's numba cache
            label = f"LocalCluster {workers} worker{'s' if workers > 1 else ''}"
            got = timed(label, client)
            out["runs"][label]["identical"] = bool(np.array_equal(ref[0], got[0]) and np.array_equal(ref[1], got[1]))
    one = out["runs"]["one call"]["seconds"]
    for r in out["runs"].values():
        r["speedup"] = one / r["seconds"]
    out["plan"] = _plan_over_cluster()
    return out


PLAN = """name: goals-cluster
rules: [stdp_pair, ltp_ltd_soft]
protocols:
  - {name: poisson, steps: 2000, n_pre: 30, n_post: 30, rate: 10}
seeds: [1, 2]
backends: [brian2, emu-float, emu-fixed]
"""


def _plan_over_cluster() -> dict:
    """A ``run`` plan of 4 runs locally (one process) and on a LocalCluster of 2 worker processes."""
    from distributed import LocalCluster

    from neurodeploy.batch import run_plan

    tmp = tempfile.mkdtemp(prefix="neurodeploy-goal4-")
    path = os.path.join(tmp, "plan.yaml")
    with open(path, "w") as handle:
        handle.write(PLAN)
    start = time.perf_counter()
    local = run_plan(path, os.path.join(tmp, "local"))
    t_local = time.perf_counter() - start
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as lc:
        from distributed import Client

        with Client(lc) as client:  # the workers' imports (Brian2, Lava, numba's cache), not timed
            client.run(lambda: [__import__(m) for m in ("neurodeploy.verification", "neurodeploy.emu.kernel", "brian2")])
        start = time.perf_counter()
        remote = run_plan(path, os.path.join(tmp, "dask"), scheduler=lc.scheduler_address)
        t_dask = time.perf_counter() - start

    def facts(summary):
        return [{k: v for k, v in e.items() if k not in ("seconds", "skipped")} for e in summary.to_dict()["entries"]]

    import shutil

    identical = facts(local) == facts(remote)
    shutil.rmtree(tmp, ignore_errors=True)
    return {"runs": len(local.entries), "local_seconds": t_local, "cluster_seconds": t_dask,
            "speedup": t_local / t_dask, "identical": identical}


WORKERS = {"limits": _work_limits, "chip": _work_chip, "tiles": _work_tiles, "emulator": _work_emulator,
           "cluster": _work_cluster}


# -- driver ----------------------------------------------------------------------------------------------
def run(scale: float, out_path: str, progress=print, max_rss_gb: float = MAX_RSS_GB, skip=(), nice: int = 10,
        verify_scale: float | None = None) -> dict:
    """The goals at ``scale`` (goal 1 at ``verify_scale``, default ``scale``)."""
    import neurodeploy

    n_post, n_pre = chip_shape(scale)
    v_post, v_pre = chip_shape(scale if verify_scale is None else verify_scale)
    data = {"neurodeploy_version": neurodeploy.__version__, "scale": scale, "verify_scale": verify_scale or scale,
            "rule": RULE, "seed": SEED,
            "max_rss_gb": max_rss_gb,
            "machine": {"python": platform.python_version(), "numpy": np.__version__, "cpus": os.cpu_count(),
                        "platform": platform.platform(), "load_average_at_start": os.getloadavg(),
                        "memory_gb": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2 ** 30}}
    started = time.time()
    progress("goal 0: the machine's limits ...")
    data["limits"] = _worker({"kind": "limits"}, max_rss_gb, 600, nice)
    if "3" not in skip:
        data["emulator"] = []
        top = int(min(10 ** 8, max(10 ** 6, 10 ** 8 * scale * 10)))  # 10^8 from --scale 0.1
        for synapses, steps in ((10 ** 4, 10_000), (10 ** 6, 2000), (top, 1000)):
            for kind in ("dense", "sparse"):
                progress(f"goal 3: emu-fixed {kind} {synapses:.0e} synapses x {steps} steps ...")
                data["emulator"].append(dict(_worker({"kind": "emulator", "synapses": synapses, "steps": steps,
                                                      "kind_of": kind}, max_rss_gb, 3600, nice),
                                             requested=synapses))
    if "4" not in skip:
        progress("goal 4: the ensemble and a run plan over threads and a Dask LocalCluster ...")
        data["cluster"] = _worker({"kind": "cluster", "n": 1000, "steps": 1000, "k": 32}, max_rss_gb, 1800, nice)
    if "2" not in skip:
        progress(f"goal 2: lava-fixed on {TILES} tiles of the {n_post}x{n_pre} connection ...")
        data["tiles"] = _worker({"kind": "tiles", "n_post": n_post, "n_pre": n_pre, "steps": CHIP_STEPS,
                                 "window": TILE_STEPS}, max_rss_gb, 3600, nice)
    if "1" not in skip:
        progress(f"goal 1: verify {v_post}x{v_pre} x {CHIP_STEPS} steps (brian2, emu-fixed, the verdict) ...")
        data["chip"] = _worker({"kind": "chip", "n_post": v_post, "n_pre": v_pre, "steps": CHIP_STEPS},
                               max_rss_gb, 4 * 3600, nice)
    data["total_seconds"] = time.time() - started
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    with open(out_path + ".tmp", "w") as handle:
        json.dump(data, handle, indent=2, sort_keys=True)
        handle.write("\n")
    os.replace(out_path + ".tmp", out_path)
    return data


def _fmt(v, digits=1):
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.{digits}f}" if abs(v) < 1e6 else f"{v:.3g}"
    return str(v)


def render(data: dict) -> str:

    lim = data.get("limits", {})
    parts = [f"neurodeploy bench --goals (scale {data['scale']:g}, verify at {data.get('verify_scale', data['scale']):g}), rule {data['rule']}, Poisson 10 Hz, "
             f"{data['machine']['cpus']} cores, load {data['machine']['load_average_at_start'][0]:.1f} at start"]
    if "error" in lim:
        parts.append(f"limits: ERROR {lim['error']}")
        bw = lines = None
    else:
        bw, lines = lim["stream_bytes_per_second"], lim["random_lines_per_second"]
        parts.append(f"\n0: machine limits (one thread): stream {bw / 1e9:.1f} GB/s (copy, read + write); random cache-line "
                     f"updates {lines / 1e6:.1f} M/s ({lim['random_line_ns']:.1f} ns each)")
    chip = data.get("chip")
    if chip:
        if "outcome" not in chip:
            parts.append(f"\n1: chip scale: ERROR {chip.get('error')} (tree peak {chip.get('tree_peak_rss_mb', 0) / 1024:.1f} GB,"
                         f" {chip.get('process_wall_seconds', 0):.0f} s)")
        else:
            rows = []
            ph = chip["phases"] or {}
            syn, steps = chip["synapses"], chip["steps"]
            for name, b in chip["backends"].items():
                s = b["seconds"]
                ratio = "-"
                if name == "emu-fixed" and lines:
                    ratio = f"{chip['touched_updates'] / s / lines:.2f} of the random-line rate"
                rows.append((name + (" (cpp_standalone)" if b.get("target") == "cpp_standalone" else ""), _fmt(s),
                             _fmt(b["steps_per_second"]), f"{syn * steps / s:.3g}", f"{chip['touched_updates'] / s:.3g}", ratio))
            chain = ph.get("fixed-point chain (emulator runs)")
            if chain:
                k = chip.get("ensemble_size") or 32
                sampled = chip.get("chain_sampled")
                share = sampled["synapses"] / sampled["of_synapses"] if sampled else 1.0  # about: touched ~ synapses
                work = chip["touched_updates"] * share * (k + 5)
                on = f", on {sampled['posts']} of {sampled['of_posts']} post neurons" if sampled else ""
                rows.append((f"verdict chain (emu-float x5, emu-fixed x{k}{on})", _fmt(chain), "-", "-",
                             f"{work / chain:.3g}",
                             f"{work / chain / lines:.2f} of the random-line rate" if lines else "-"))
            parts.append(f"\n1: chip scale: {chip['n_post']:,} x {chip['n_pre']:,} = {syn:.3g} synapses x {steps:,} steps, "
                         f"{chip['command']}\n   wall {chip['wall_seconds']:.0f} s, tree peak RSS "
                         f"{chip['tree_peak_rss_mb'] / 1024:.2f} GB (largest process {chip['largest_process_peak_rss_mb'] / 1024:.2f} GB, "
                         f"{chip['largest_process_peak_rss_mb'] * 2 ** 20 / syn:.0f} B a synapse), outcome {chip['outcome']}"
                         f"; fidelity: {chip['fidelity'].get('outcome')}")
            parts.append(_table(["part", "seconds", "steps/s", "synapse-steps/s", "touched updates/s", "against the limit"],
                                rows))
            parts.append("   phases: " + ", ".join(f"{k} {v:.0f} s" for k, v in ph.items() if v >= 1))
    tiles = data.get("tiles")
    if tiles:
        if "error" in tiles:
            parts.append(f"\n2: Lava tiles: ERROR {tiles['error']}")
        else:
            rows = [(f"posts {t['posts'][0]}-{t['posts'][1]}, pres {t['pres'][0]}-{t['pres'][1]}", t["synapses"],
                     f"{t['steps'][0]}-{t['steps'][1]}", "yes" if t["bit_exact"] else f"NO at {t['first_difference']}",
                     t["weights_moved"], _fmt(t["lava_steps_per_second"])) for t in tiles["tiles"]]
            parts.append(f"\n2: lava-fixed on tiles of the chip-scale connection, the same plan, against the emulator run on the "
                         f"whole connection ({tiles['emulator_seconds']:.1f} s for {tiles['window_steps']} steps; random streams "
                         f"a prefix of the whole run's: {tiles['random_streams_prefix']}); all bit-exact: {tiles['all_bit_exact']}")
            parts.append(_table(["tile", "synapses", "steps", "bit-exact", "weights moved", "lava steps/s"], rows))
    emu = data.get("emulator")
    if emu:
        rows = []
        for e in emu:
            if "error" in e:
                rows.append((f"{e['requested']:.0e}", "?", "ERROR", str(e["error"])[:60], "", "", "", ""))
                continue
            dense_limit = bw / 4 if bw else None
            rows.append((e["kind"], f"{e['synapses']:.3g}", e["steps"], _fmt(e["seconds"]), f"{e['synapse_steps_per_second']:.3g}",
                         f"{e['touched_fraction']:.3f}", f"{e['touched_per_second']:.3g}",
                         f"{e['touched_per_second'] / lines:.2f}" if lines else "-",
                         f"{e['synapse_steps_per_second'] / dense_limit:.1f}" if dense_limit else "-",
                         _fmt(e["peak_rss_mb"], 0)))
        parts.append("\n3: emu-fixed at the limit (touched: synapses of the neurons that spiked, updated; limits: random "
                     "line rate for touched updates, stream bandwidth / 4 bytes for every synapse every step)")
        parts.append(_table(["connection", "synapses", "steps", "seconds", "synapse-steps/s", "touched share",
                             "touched/s", "x random-line limit", "x dense bandwidth limit", "peak MB"], rows))
    cl = data.get("cluster")
    if cl:
        if "error" in cl:
            parts.append(f"\n4: cluster: ERROR {cl['error']}")
        else:
            rows = [(label, _fmt(r["seconds"], 2), f"x{r['speedup']:.2f}", r.get("identical", "(reference)"))
                    for label, r in cl["runs"].items()]
            parts.append(f"\n4: the verdict's ensemble K={cl['k']} at {cl['n']}x{cl['n']} x {cl['steps']} steps")
            parts.append(_table(["where", "seconds", "speed-up", "identical"], rows))
            p = cl["plan"]
            parts.append(f"   run plan ({p['runs']} runs): local {p['local_seconds']:.1f} s, LocalCluster 2 workers "
                         f"{p['cluster_seconds']:.1f} s (x{p['speedup']:.2f}); summaries identical: {p['identical']}")
    parts.append(f"\ntotal {data['total_seconds']:.0f} s")
    return "\n".join(parts)


def _table(headers, rows) -> str:
    cells = [[str(h) for h in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["--cli-with-chip-limits"]:  # goal 1's verify: the CLI with CHIP_LIMITS
        from neurodeploy.cli import main as cli_main

        with chip_limits():
            return cli_main(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m neurodeploy.goals", description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="chip-scale synapses times this (default 1: 1.2e8)")
    parser.add_argument("--out", default=os.path.join(ROOT, "build", "bench_goals.json"))
    parser.add_argument("--verify-scale", type=float, default=None,
                        help="goal 1 (the whole verify) at this scale instead (default --scale)")
    parser.add_argument("--max-rss-gb", type=float, default=MAX_RSS_GB, help="stop a goal's process tree above this")
    parser.add_argument("--skip", default="", help="goals not to run, e.g. 1,2")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        job = json.loads(args.worker)
        result = WORKERS[job["kind"]](job)
        sys.stdout.write(RESULT_TAG + json.dumps(result) + "\n")
        sys.stdout.flush()
        return 0
    for name, value in (("--scale", args.scale), ("--verify-scale", args.verify_scale)):
        if value is not None and not 0 < value <= 1:
            print(f"{name}: must be in (0, 1] (got {value:g})", file=sys.stderr)
            return 2
    data = run(args.scale, args.out, progress=lambda m: print(m, file=sys.stderr, flush=True),
               max_rss_gb=args.max_rss_gb, skip=set(args.skip.split(",")) - {""}, verify_scale=args.verify_scale)
    print(render(data))
    print(f"\nwrote {os.path.relpath(args.out, os.getcwd())}")
    bad = [k for k in ("limits", "chip", "tiles", "cluster") if isinstance(data.get(k), dict) and "error" in data[k]]
    return 1 if bad or (data.get("tiles") or {}).get("all_bit_exact") is False else 0


if __name__ == "__main__":
    sys.exit(main())

