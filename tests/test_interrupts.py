"""Ctrl-C and SIGTERM during verify and run: clean stop, nothing left behind, no report."""
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import ROOT, rule_path


def descendants(pid):
    """All live descendant pids of ``pid`` (from /proc)."""
    found, todo = set(), [pid]
    while todo:
        current = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{current}/task")
        except FileNotFoundError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{current}/task/{task}/children") as handle:
                    children = [int(c) for c in handle.read().split()]
            except FileNotFoundError:
                continue
            for child in children:
                if child not in found:
                    found.add(child)
                    todo.append(child)
    return found


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def shm():
    return set(os.listdir("/dev/shm")) if os.path.isdir("/dev/shm") else set()


def start(args, tmp_path):
    err = open(tmp_path / "stderr.txt", "w+")
    proc = subprocess.Popen([sys.executable, "-m", "neurodeploy.cli"] + args, cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=err, start_new_session=True)
    return proc, err


def wait_for_lava(proc, err, timeout=120):
    """Until the Lava backend has started its processes."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        err.seek(0)
        if "running lava" in err.read() and len(descendants(proc.pid)) >= 2:
            time.sleep(1.5)
            return
        if proc.poll() is not None:
            pytest.fail("the command ended before Lava started")
        time.sleep(0.2)
    pytest.fail("Lava did not start")


@pytest.mark.parametrize("sig,code,word,group", [
    (signal.SIGINT, 130, "interrupted (SIGINT)", True),   # Ctrl-C: the whole foreground group
    (signal.SIGTERM, 143, "terminated (SIGTERM)", False),  # kill PID
])
def test_signal_during_verify(tmp_path, sig, code, word, group):
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.json").write_text('{"passed": true}')  # a stale result from an earlier run
    before = shm()
    proc, err = start(["verify", rule_path("stdp_pair"), "--out", str(out), "--steps", "100000",
                       "--backends", "lava-fixed", "--n-pre", "2", "--n-post", "2"], tmp_path)
    wait_for_lava(proc, err)
    children = descendants(proc.pid)
    assert children
    if group:
        os.killpg(proc.pid, sig)
    else:
        os.kill(proc.pid, sig)
    assert proc.wait(timeout=60) == code
    err.seek(0)
    lines = err.read().strip().splitlines()
    assert lines[-1] == f"neurodeploy: {word}: every Lava process stopped, no report written"
    assert "Traceback" not in "\n".join(lines)
    time.sleep(0.5)
    assert not [c for c in children if alive(c)]
    assert shm() - before == set()
    assert not (out / "report.json").exists()


def children_of(pid):
    """The direct children of ``pid`` (a pool's workers)."""
    out = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as handle:
            out += [int(c) for c in handle.read().split()]
    return out


@pytest.mark.parametrize("target", ["parent", "group", "worker"])
def test_sigterm_during_batch_run_with_pool(tmp_path, target):
    """``kill PID``: the parent terminates its workers, which stop their Lava processes. A scheduler's
    SIGTERM reaches every process of the job (``kill -- -PGID``, scancel): the workers get it too, and then
    the parent's terminate() a second one while they unwind (was: a hang). Or only one worker is killed.
    Each way: exit 143, one line, no worker's traceback, nothing left running, no result (the runs take
    ~30 s each: none is complete when the signal comes ~7 s in)."""
    plan = tmp_path / "plan.yaml"
    plan.write_text("rules: [stdp_pair, ltp_ltd_soft]\n"
                    "protocols: [{name: poisson, steps: 400000, n_pre: 2, n_post: 2}]\n"
                    "backends: [lava-fixed]\n")
    out = tmp_path / "out"
    before = shm()
    proc, err = start(["run", str(plan), "--out", str(out), "--jobs", "2"], tmp_path)
    deadline = time.time() + 120
    while len(descendants(proc.pid)) < 4 and time.time() < deadline:  # 2 workers + their Lava processes
        time.sleep(0.5)
    time.sleep(3)
    children = descendants(proc.pid)
    workers = children_of(proc.pid)
    assert len(workers) >= 2
    if target == "parent":
        os.kill(proc.pid, signal.SIGTERM)
    elif target == "group":
        os.killpg(proc.pid, signal.SIGTERM)
    else:
        os.kill(workers[0], signal.SIGTERM)
    assert proc.wait(timeout=90) == 143
    err.seek(0)
    text = err.read()
    lines = text.strip().splitlines()
    word = "terminated (SIGTERM of a worker process)" if target == "worker" else "terminated (SIGTERM)"
    assert lines[-1] == f"neurodeploy: {word}: every Lava process stopped, no report written"
    assert "Traceback" not in text and "Process ForkProcess" not in text
    time.sleep(1)
    assert not [c for c in children if alive(c)]
    assert shm() - before == set()
    assert not (out / "summary.json").exists()
    assert not list(out.glob("*/run.json"))


def test_sigterm_to_the_group_during_a_task_ensemble(tmp_path):
    """``neurodeploy task --jobs 2`` killed as a scheduler kills a job (every process of the group): was a
    hang, the workers idle after their unwinding and the parent waiting for them at its exit."""
    out = tmp_path / "out"
    proc, err = start(["task", "digits", "--out", str(out), "--seeds", "6", "--jobs", "2"], tmp_path)
    wait_for(proc, err, "runs each on 2 processes")
    time.sleep(4)
    children = descendants(proc.pid)
    assert len(children) >= 2
    os.killpg(proc.pid, signal.SIGTERM)
    assert proc.wait(timeout=90) == 143
    err.seek(0)
    text = err.read()
    assert text.strip().splitlines()[-1] == ("neurodeploy: terminated (SIGTERM): every Lava process stopped, "
                                             "no report written")
    assert "Traceback" not in text
    time.sleep(1)
    assert not [c for c in children if alive(c)]
    assert not out.exists()


# --- Brian2 (issue 14): its own Ctrl-C handler, its exception wrapping ------------------------------

def wait_for(proc, err, text, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        err.seek(0)
        if text in err.read():
            return
        if proc.poll() is not None:
            pytest.fail(f"the command ended before {text!r}")
        time.sleep(0.1)
    pytest.fail(f"no {text!r} on stderr")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_sigint_during_brian2_run(tmp_path):
    """Was: Brian2's handler stopped the run early, the harness crashed on the short trajectory (exit 1)."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.json").write_text('{"passed": true}')
    proc, err = start(["verify", rule_path("stdp_pair"), "--out", str(out), "--steps", "2000000",
                       "--backends", "brian2", "--n-pre", "1", "--n-post", "1"], tmp_path)
    wait_for(proc, err, "running brian2", timeout=300)
    time.sleep(3)  # code generation done: inside Network.run
    os.killpg(proc.pid, signal.SIGINT)
    assert proc.wait(timeout=60) == 130
    err.seek(0)
    text = err.read()
    assert "Traceback" not in text
    assert text.strip().splitlines()[-1] == \
        "neurodeploy: interrupted (SIGINT): every Lava process stopped, no report written"
    assert not (out / "report.json").exists()
    assert sorted(os.listdir(out)) == []


def test_sigint_during_trace_statistics(tmp_path):
    """Was: Ctrl-C before any backend (trace statistics of a long run) went through Brian2's handler."""
    out = tmp_path / "out"
    # trace statistics are vectorized now: the longest run the limits allow keeps the trains and statistics busy
    proc, err = start(["verify", rule_path("stdp_pair"), "--out", str(out), "--steps", "100000000",
                       "--backends", "brian2", "--n-pre", "1", "--n-post", "1"], tmp_path)
    deadline = time.time() + 120
    # imports take ~2.5 s of CPU, the trains and statistics until "running" ~8 s: the middle of that window (at
    # 3.5 s a fresh clone's suite once caught it still importing, before the handler: exit -2)
    while cpu_seconds(proc.pid) < 5.0 and time.time() < deadline:
        time.sleep(0.2)
    err.seek(0)
    assert "running" not in err.read()
    os.killpg(proc.pid, signal.SIGINT)
    assert proc.wait(timeout=60) == 130
    err.seek(0)
    text = err.read()
    assert "Traceback" not in text
    assert text.strip().splitlines() == \
        ["neurodeploy: interrupted (SIGINT): every Lava process stopped, no report written"]
    assert not out.exists()


def test_timeout_on_brian2_is_a_failed_backend(tmp_path):
    """Was: Brian2 wrapped the timeout in BrianObjectException: traceback, no report."""
    import json

    out = tmp_path / "out"
    temp = tmp_path / "tmp"  # the child's temp folder: Brian2 must leave nothing in it
    temp.mkdir()
    proc = subprocess.run([sys.executable, "-m", "neurodeploy.cli", "verify", rule_path("stdp_pair"), "--out", str(out),
                           "--steps", "400000", "--backends", "brian2,brian2-step", "--n-pre", "1", "--n-post", "1",
                           "--timeout", "1", "--quiet"], cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, TMPDIR=str(temp)))
    assert "Traceback" not in proc.stderr
    assert proc.returncode == 1, proc.stderr
    report = json.loads((out / "report.json").read_text())
    failed = {b["name"]: b["reason"] for b in report["backends"] if b.get("failed")}
    assert failed == {"brian2": "timed out after 1 s", "brian2-step": "timed out after 1 s"}
    assert os.listdir(temp) == []


def _comm(pid):
    try:
        with open(f"/proc/{pid}/comm") as handle:
            return handle.read().strip()
    except FileNotFoundError:
        return ""


@pytest.mark.parametrize("sig,code,word,group", [
    (signal.SIGINT, 130, "interrupted (SIGINT)", True),   # Ctrl-C: the whole foreground group
    (signal.SIGTERM, 143, "terminated (SIGTERM)", False),  # kill PID: make is not signalled by anyone else
])
def test_signal_during_cpp_standalone_build(tmp_path, sig, code, word, group):
    """Was: Brian2 compiles in os.system, which ignores Ctrl-C in the caller: make died alone and the
    command reported a failed build (exit 1), or with kill PID the build went on for a minute."""
    out = tmp_path / "out"
    err = open(tmp_path / "stderr.txt", "w+")
    env = dict(os.environ, NEURODEPLOY_BRIAN2_TARGET="cpp_standalone", NEURODEPLOY_CACHE=str(tmp_path / "cache"))
    proc = subprocess.Popen([sys.executable, "-m", "neurodeploy.cli", "verify", rule_path("stdp_pair"), "--out",
                             str(out), "--backends", "brian2,emu-float", "--steps", "300"], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=err, start_new_session=True, env=env)
    deadline = time.time() + 240
    while not any(_comm(p) == "make" for p in descendants(proc.pid)):
        assert proc.poll() is None, "the command ended before make started"
        assert time.time() < deadline, "make did not start"
        time.sleep(0.1)
    time.sleep(1.0)  # the compilers are running
    build = descendants(proc.pid)
    if group:
        os.killpg(proc.pid, sig)
    else:
        os.kill(proc.pid, sig)
    assert proc.wait(timeout=60) == code
    err.seek(0)
    text = err.read()
    assert "Traceback" not in text and "failed" not in text
    assert text.strip().splitlines()[-1].startswith(f"neurodeploy: {word}")
    time.sleep(0.5)
    assert not [p for p in build if alive(p)], "make or a compiler outlived the command"
    assert not out.exists()


# --- issue 19: signals Python drops, signals during ensembles and mutate, one run per --out directory ---

def _child(args, tmp_path, name="stderr.txt"):
    """A neurodeploy child with SIGINT at its default (Popen from pytest: not a background job)."""
    err = open(tmp_path / name, "w+")
    proc = subprocess.Popen([sys.executable, "-m", "neurodeploy.cli"] + [str(a) for a in args], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
    return proc, err


def _stderr(err):
    err.seek(0)
    return err.read()


NETWORK = os.path.join(ROOT, "reference", "networks", "ei_recurrent.yaml")


#: A verdict phase that runs an ensemble: the arguments of a verify that reaches it, the seconds to wait in it.
ENSEMBLES = {
    "distribution": (["--network", NETWORK, "--steps", "300", "--backends", "brian2-step,emu-fixed"], 0.5),
    "fixed-point chain": (["--steps", "3000", "--backends", "brian2-step,emu-float,emu-fixed", "--ensemble", "512"],
                          0.5),
}


@pytest.mark.parametrize("phase", list(ENSEMBLES))
@pytest.mark.parametrize("sig,code,word,repeat", [
    (signal.SIGINT, 130, "interrupted (SIGINT)", 0),
    (signal.SIGINT, 130, "interrupted (SIGINT)", 1),
    (signal.SIGTERM, 143, "terminated (SIGTERM)", 0),
])
def test_signal_during_verdict_ensembles(tmp_path, phase, sig, code, word, repeat):
    """Was (issue 19): 0.5 s into the distribution verdict's Brian2 ensemble the KeyboardInterrupt (or
    Terminated) landed in a weakref callback of Brian2's (InstanceTrackerSet.remove), Python printed
    "Exception ignored ... KeyboardInterrupt" and dropped it: exit 0, PASSED, a report written (about
    half of such runs land in a callback; `repeat`: once more)."""
    out = tmp_path / "out"
    args, wait = ENSEMBLES[phase]
    proc, err = _child(["verify", rule_path("stdp_pair"), *args, "--out", out], tmp_path)
    wait_for(proc, err, f"running verdict: {phase}", timeout=300)
    time.sleep(wait)
    (os.killpg if sig == signal.SIGINT else os.kill)(proc.pid, sig)
    assert proc.wait(timeout=120) == code, _stderr(err)
    text = _stderr(err)
    assert "Traceback" not in text and "Exception ignored" not in text, text
    assert text.strip().splitlines()[-1] == f"neurodeploy: {word}: every Lava process stopped, no report written"
    assert not out.exists()


@pytest.mark.parametrize("sig,code,word", [(signal.SIGINT, 130, "interrupted (SIGINT)"),
                                           (signal.SIGTERM, 143, "terminated (SIGTERM)")])
def test_signal_during_mutate(tmp_path, sig, code, word):
    """mutate runs the emulator's ensembles for every mutant: a signal ends it, no mutation.json, no DIR.
    Was: a SIGTERM that landed inside numba's dispatcher came out as "SystemError: CPUDispatcher(...)
    returned a result with an exception set", a traceback and exit 1 (2 of 6 runs)."""
    out = tmp_path / "out"
    proc, err = _child(["mutate", rule_path("stdp_pair"), "--seeds", "50", "--out", out], tmp_path)
    wait_for(proc, err, "mutant ", timeout=300)
    time.sleep(0.3)
    (os.killpg if sig == signal.SIGINT else os.kill)(proc.pid, sig)
    assert proc.wait(timeout=60) == code
    text = _stderr(err)
    assert "Traceback" not in text and "Exception ignored" not in text, text
    assert text.strip().splitlines()[-1].startswith(f"neurodeploy: {word}")
    assert not out.exists()


def test_second_run_on_one_out_dir_is_refused_and_the_first_cleans_only_its_own(tmp_path):
    """Was (issue 19): run A (long) in DIR, run B (short) in DIR completed, SIGTERM to A: A's clean-up
    deleted B's report, trajectories, figures and DIR. Now B is refused at once (one line, exit 2, it
    touches nothing), and A, terminated, removes what it made: DIR too, which it created."""
    out = tmp_path / "out"
    proc, err = _child(["verify", rule_path("stdp_pair"), "--out", out, "--steps", "400000", "--backends", "brian2",
                        "--n-pre", "1", "--n-post", "1"], tmp_path)
    wait_for(proc, err, "running brian2", timeout=300)
    second = subprocess.run([sys.executable, "-m", "neurodeploy.cli", "verify", rule_path("stdp_pair"), "--out",
                             str(out), "--steps", "200", "--quiet"], cwd=ROOT, capture_output=True, text=True,
                            timeout=300)
    assert second.returncode == 2, second.stderr
    assert second.stdout == ""
    assert second.stderr.splitlines() == [
        f"neurodeploy: error: --out: is in use by another neurodeploy run (pid {proc.pid}): wait for it to end or "
        f"choose another directory (got {out})"]
    assert os.listdir(out) == [".neurodeploy.lock"]  # A's lock, nothing of B's
    os.kill(proc.pid, signal.SIGTERM)
    assert proc.wait(timeout=60) == 143
    assert not out.exists()
    # and the other way round: DIR holds a finished run; a run interrupted in it leaves DIR empty of
    # reports (the old one was removed when it started, as always) but never removes DIR or others' files
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    done = subprocess.run([sys.executable, "-m", "neurodeploy.cli", "verify", rule_path("stdp_pair"), "--out",
                           str(out), "--steps", "200", "--quiet"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    proc, err = _child(["verify", rule_path("stdp_pair"), "--out", out, "--steps", "400000", "--backends", "brian2",
                        "--n-pre", "1", "--n-post", "1"], tmp_path, "stderr2.txt")
    wait_for(proc, err, "running brian2", timeout=300)
    os.killpg(proc.pid, signal.SIGINT)
    assert proc.wait(timeout=60) == 130
    assert sorted(os.listdir(out)) == ["notes.txt"]


def test_batch_run_on_a_directory_in_use_is_refused(tmp_path):
    """`run --out DIR` while a verify writes into DIR: refused in one line, exit 2, DIR untouched."""
    plan = tmp_path / "plan.yaml"
    plan.write_text("rules: [stdp_pair]\nprotocols: [{name: poisson, steps: 50, n_pre: 1, n_post: 1}]\n"
                    "backends: [brian2]\n")
    out = tmp_path / "out"
    proc, err = _child(["verify", rule_path("stdp_pair"), "--out", out, "--steps", "400000", "--backends", "brian2",
                        "--n-pre", "1", "--n-post", "1"], tmp_path)
    try:
        wait_for(proc, err, "running brian2", timeout=300)
        second = subprocess.run([sys.executable, "-m", "neurodeploy.cli", "run", str(plan), "--out", str(out),
                                 "--quiet"], cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert second.returncode == 2, second.stderr
        assert len(second.stderr.splitlines()) == 1 and "--out: is in use by another neurodeploy run" in second.stderr
        assert os.listdir(out) == [".neurodeploy.lock"]
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)
    assert not out.exists()
