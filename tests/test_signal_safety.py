"""Issue 19, in process and deterministic: a signal whose exception Python drops still ends the command
(130/143, nothing written); one run per output directory; a clean-up removes only its own files; a batch
run directory never holds files of two runs; mutate refuses to count nothing as passed."""
from __future__ import annotations

import gc
import json
import os
import signal
import time
import weakref

import pytest

from conftest import rule_path
from neurodeploy.cli import main, mutation_exit_code
from neurodeploy.files import DirectoryInUse, DirectoryLock, LOCK_NAME, identity, publish, staging_dir, unpublish
from neurodeploy.progress import catch_signals, check_signals

INTERRUPTED = "neurodeploy: interrupted (SIGINT): every Lava process stopped, no report written"
TERMINATED = "neurodeploy: terminated (SIGTERM): every Lava process stopped, no report written"


class _Tracked:
    pass


def _signal_in_a_weakref_callback(signum):
    """What Brian2's InstanceTrackerSet.remove did: the handler's exception raised inside a weakref
    callback, where Python prints "Exception ignored" and drops it."""
    obj = _Tracked()
    ref = weakref.ref(obj, lambda r: signal.raise_signal(signum))
    del obj
    gc.collect()
    return ref


def _run(capsys, args):
    start = time.perf_counter()
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err, time.perf_counter() - start


@pytest.mark.parametrize("signum,code,line", [(signal.SIGINT, 130, INTERRUPTED), (signal.SIGTERM, 143, TERMINATED)])
def test_signal_dropped_in_a_weakref_callback_is_delivered_again(capsys, monkeypatch, signum, code, line):
    """The dropped exception is raised again at once (not at the end of the command), and no
    "Exception ignored ... KeyboardInterrupt" is printed."""
    import neurodeploy.cli
    import neurodeploy.library

    def busy_matrix():
        _signal_in_a_weakref_callback(signum)
        for _ in range(100):  # a long computation: the signal must end it, not wait for its end
            time.sleep(0.1)
        raise AssertionError("the signal was lost")

    monkeypatch.setattr(neurodeploy.cli, "support_matrix", busy_matrix)  # where the command looks it up
    exit_code, out, err, seconds = _run(capsys, ["rules"])
    assert exit_code == code
    assert "Exception ignored" not in err and "Traceback" not in err, err
    assert err.strip().splitlines()[-1] == line
    assert seconds < 5


def test_a_signal_swallowed_anyhow_still_ends_the_command(capsys, monkeypatch):
    """An interrupt caught and dropped by someone else's code: the command still ends with 130."""
    import neurodeploy.cli
    import neurodeploy.library

    real = neurodeploy.library.support_matrix

    def swallowing_matrix():
        try:
            signal.raise_signal(signal.SIGINT)
        except KeyboardInterrupt:
            pass
        return real()

    monkeypatch.setattr(neurodeploy.cli, "support_matrix", swallowing_matrix)
    exit_code, out, err, _ = _run(capsys, ["rules"])
    assert exit_code == 130
    assert err.strip().splitlines()[-1] == INTERRUPTED


@pytest.mark.parametrize("signum,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_verify_writes_nothing_after_a_dropped_signal(capsys, monkeypatch, tmp_path, signum, code):
    """Was (issue 19): the dropped interrupt let verify write its report and exit 0 (PASSED)."""
    import neurodeploy.verification

    real = neurodeploy.verification.verify

    def verify_dropping_a_signal(*args, **kwargs):
        report = real(*args, **kwargs)
        _signal_in_a_weakref_callback(signum)  # at the very end: no Progress call comes after it
        return report

    monkeypatch.setattr(neurodeploy.verification, "verify", verify_dropping_a_signal)
    out = tmp_path / "out"
    exit_code, stdout, err, _ = _run(capsys, ["verify", rule_path("stdp_pair"), "--out", str(out), "--steps", "100",
                                              "--backends", "brian2-step,emu-fixed", "--quiet"])
    assert exit_code == code, err
    assert "Exception ignored" not in err and "Traceback" not in err
    assert stdout == ""
    assert not out.exists()


def test_signal_restores_handlers_after_main(capsys):
    before = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))
    import sys

    hook = sys.unraisablehook
    _run(capsys, ["rules", "--json"])
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before
    assert sys.unraisablehook is hook
    check_signals()  # no handlers of ours: a no-op


def test_catch_signals_keeps_an_ignored_sigint_ignored():
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        restore = catch_signals({signal.SIGINT: KeyboardInterrupt})
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        restore()
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)


# --- one run per output directory ----------------------------------------------------------------

def test_directory_lock_is_exclusive_and_leaves_nothing(tmp_path):
    first = DirectoryLock(str(tmp_path))
    with pytest.raises(DirectoryInUse) as refused:
        DirectoryLock(str(tmp_path))  # another open file description: refused, even in this process
    assert refused.value.pid == os.getpid()
    first.release()
    assert os.listdir(tmp_path) == []
    with DirectoryLock(str(tmp_path)):
        assert os.listdir(tmp_path) == [LOCK_NAME]
    assert os.listdir(tmp_path) == []


def test_directory_lock_survives_a_stale_lock_file(tmp_path):
    """A lock file left by a killed run (no lock on it) is taken over and removed at the end."""
    (tmp_path / LOCK_NAME).write_text("999999999\n")
    with DirectoryLock(str(tmp_path)):
        assert (tmp_path / LOCK_NAME).read_text() == f"{os.getpid()}\n"
    assert os.listdir(tmp_path) == []


def test_verify_in_a_directory_in_use_is_refused(capsys, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.json").write_text('{"passed": true}')  # the other run's
    with DirectoryLock(str(out)):
        exit_code, stdout, err, seconds = _run(capsys, ["verify", rule_path("stdp_pair"), "--out", str(out),
                                                        "--steps", "100", "--quiet"])
        assert exit_code == 2 and stdout == ""
        assert err.splitlines() == [f"neurodeploy: error: --out: is in use by another neurodeploy run "
                                    f"(pid {os.getpid()}): wait for it to end or choose another directory (got {out})"]
        assert sorted(os.listdir(out)) == [LOCK_NAME, "report.json"]
    for command in (["run", str(tmp_path / "plan.yaml")],):
        (tmp_path / "plan.yaml").write_text("rules: [stdp_pair]\nprotocols: [{name: poisson, steps: 20}]\n")
        with DirectoryLock(str(out)):
            exit_code, stdout, err, _ = _run(capsys, command + ["--out", str(out), "--quiet"])
            assert exit_code == 2 and len(err.splitlines()) == 1 and "is in use by another neurodeploy run" in err
            assert sorted(os.listdir(out)) == [LOCK_NAME, "report.json"]


def test_verify_creating_a_directory_refused_leaves_nothing(capsys, tmp_path, monkeypatch):
    """verify made DIR, another run took DIR's lock first: refused, and DIR (the other run's now) stays."""
    import neurodeploy.cli
    import neurodeploy.files

    out = tmp_path / "a" / "out"
    real = neurodeploy.files.DirectoryLock

    def raced(folder):
        other = real(folder)  # another run takes the lock between our mkdir and our lock
        raced.held.append(other)
        return real(folder)

    raced.held = []
    monkeypatch.setattr(neurodeploy.files, "DirectoryLock", raced)
    exit_code, _, err, _ = _run(capsys, ["verify", rule_path("stdp_pair"), "--out", str(out), "--steps", "100",
                                         "--quiet"])
    assert exit_code == 2 and "is in use" in err
    assert os.listdir(out) == [LOCK_NAME]
    raced.held[0].release()


# --- a clean-up removes only what its run wrote ----------------------------------------------------

def test_unpublish_removes_only_the_files_moved_and_still_the_same(tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "other.txt").write_text("another run's")
    stage = staging_dir(str(folder), "verify")
    for name in ("report.json", "report.md", "trajectories.npz"):
        with open(os.path.join(stage, name), "w") as handle:
            handle.write(name)
    moved = []
    publish(stage, str(folder), "report.json", moved)
    assert [name for name, _ in moved][-1] == "report.json"  # last: its presence means complete
    assert not os.path.exists(stage)
    # another writer replaced report.md after we moved it in: not ours any more
    (folder / "report.md.new").write_text("theirs")
    os.replace(folder / "report.md.new", folder / "report.md")
    unpublish(str(folder), moved)
    assert sorted(os.listdir(folder)) == ["other.txt", "report.md"]
    assert (folder / "report.md").read_text() == "theirs"
    assert identity(str(folder / "nothing")) is None


def test_interrupted_verify_keeps_other_files(capsys, monkeypatch, tmp_path):
    """Interrupted while its report is moved in: only what it moved is removed."""
    import neurodeploy.cli
    import neurodeploy.files

    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    real = neurodeploy.files.publish

    def publish_then_interrupt(stage, folder, last, moved):
        real(stage, folder, last, moved)
        raise KeyboardInterrupt()

    monkeypatch.setattr(neurodeploy.cli, "publish", publish_then_interrupt)
    exit_code, stdout, err, _ = _run(capsys, ["verify", rule_path("stdp_pair"), "--out", str(out), "--steps", "100",
                                              "--backends", "brian2,emu-fixed", "--quiet"])
    assert exit_code == 130
    assert sorted(os.listdir(out)) == ["notes.txt"]


# --- batch: a run directory holds one run's files ----------------------------------------------------

PLAN = "rules: [stdp_pair]\nprotocols: [{name: poisson, steps: 100, n_pre: 2, n_post: 2}]\n" \
       "backends: [brian2, emu-fixed]\nseeds: [1]\n"


def test_interrupted_forced_run_leaves_no_directory_of_two_runs(capsys, monkeypatch, tmp_path):
    """Was (issue 19): an interrupted `run --force` left a new trajectories.npz beside the old
    report.md saying PASSED."""
    import neurodeploy.report

    plan = tmp_path / "plan.yaml"
    plan.write_text(PLAN)
    out = tmp_path / "out"
    exit_code, _, err, _ = _run(capsys, ["run", str(plan), "--out", str(out), "--quiet"])
    assert exit_code == 0, err
    run_dir = out / "stdp_pair-poisson-seed1"
    assert "PASSED" in (run_dir / "report.md").read_text()

    def interrupted_plots(*args, **kwargs):  # after trajectories.npz, before report.md
        raise KeyboardInterrupt()

    monkeypatch.setattr(neurodeploy.report, "write_plots", interrupted_plots)
    exit_code, _, err, _ = _run(capsys, ["run", str(plan), "--out", str(out), "--force", "--quiet"])
    assert exit_code == 130
    assert sorted(os.listdir(out)) == []  # no old run (its result is void), no half-new one, no summary
    monkeypatch.undo()

    # uninterrupted, --force replaces the directory as a whole
    exit_code, _, err, _ = _run(capsys, ["run", str(plan), "--out", str(out), "--quiet"])
    assert exit_code == 0
    (run_dir / "left-over.txt").write_text("from an older neurodeploy")
    first = json.loads((run_dir / "run.json").read_text())
    exit_code, _, err, _ = _run(capsys, ["run", str(plan), "--out", str(out), "--force", "--quiet"])
    assert exit_code == 0
    assert "left-over.txt" not in os.listdir(run_dir)
    assert json.loads((run_dir / "run.json").read_text())["key"] == first["key"]
    assert sorted(os.listdir(out)) == ["stdp_pair-poisson-seed1", "summary.json", "summary.md"]
    mode = os.stat(run_dir).st_mode & 0o777
    mask = os.umask(0)
    os.umask(mask)
    assert mode == 0o777 & ~mask


# --- mutate: nothing checked is not a pass -------------------------------------------------------------

def test_mutate_refuses_zero_seeds(capsys, tmp_path):
    """Was (issue 19): `mutate --seeds 0` exited 0 with "false alarms: 0/0 seeds"."""
    out = tmp_path / "out"
    exit_code, stdout, err, seconds = _run(capsys, ["mutate", rule_path("stdp_pair"), "--seeds", "0", "--out", str(out)])
    assert exit_code == 2 and stdout == ""
    assert err.splitlines() == ["neurodeploy: error: --seeds: must be at least 1: the false-alarm rate needs seeds "
                                "to run on (got 0)"]
    assert not out.exists()
    assert seconds < 5


def test_mutation_exit_code_counts_nothing_checked_as_not_checked():
    assert mutation_exit_code({"mutation_score": 1.0, "false_alarm_rate": None}) == 3
    assert mutation_exit_code({"mutation_score": None, "false_alarm_rate": 0.0}) == 3
    assert mutation_exit_code({"mutation_score": 1.0, "false_alarm_rate": 0.0}) == 0
    assert mutation_exit_code({"mutation_score": 1.0, "false_alarm_rate": 0.02}) == 1
    assert mutation_exit_code({"mutation_score": 0.5, "false_alarm_rate": 0.0}) == 1


def test_self_test_without_seeds_says_not_checked():
    from neurodeploy.protocol import make_trains
    from neurodeploy.spec.loader import load_rule
    from neurodeploy.verdict.mutate import render, self_test

    rule = load_rule(rule_path("stdp_pair"))
    trains = lambda s: make_trains(rule, "poisson", {"steps": 200, "n_pre": 2, "n_post": 2}, s)  # noqa: E731
    summary = self_test(rule, trains, 3, seeds=0, k=4)
    assert summary["false_alarm_rate"] is None
    assert "false alarms of the unmutated plan: not checked (no seeds)" in render(summary)
    with pytest.raises(ValueError):
        self_test(rule, trains, 3, seeds=-1, k=4)
