"""Batch plans: run, skip unchanged, force, process pool, Dask, broken plans."""
import json
import os
import shutil

import numpy as np
import pytest

from conftest import ROOT, rule_path
from neurodeploy.batch import load_plan, run_plan
from neurodeploy.cli import main
from neurodeploy.protocol import make_trains
from neurodeploy.spec.loader import load_rule

TINY = """name: tiny
rules: [stdp_pair, {rule}]
protocols:
  - {{name: poisson, steps: 200, n_pre: 3, n_post: 2, rate: 30}}
  - {{name: pairing, pairs: 5, dt_ms: -10, frequency: 20}}
backends: [brian2, brian2-step, lava-fixed]
seeds: [1]
grid: {{A_plus: [0.005, 0.02]}}
"""


@pytest.fixture
def plan(tmp_path):
    shutil.copy(rule_path("ltp_ltd_soft"), tmp_path / "soft.yaml")
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY.format(rule="soft.yaml"))
    return str(path)


def entries(summary_path):
    with open(summary_path) as handle:
        data = json.load(handle)
    return [{k: v for k, v in e.items() if k not in ("seconds", "skipped")} for e in data["entries"]]


def test_plan_runs_skips_and_forces(plan, tmp_path, capsys):
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as first:
        main(["run", plan, "--out", str(out)])
    assert first.value.code == 0
    data = json.loads((out / "summary.json").read_text())
    # stdp_pair x 2 grid points x 2 protocols + soft (no A_plus) x 2 protocols
    assert data["runs"] == 6 and data["passed"]
    runs = {e["run"]: e for e in data["entries"]}
    assert "stdp_pair-poisson-seed1-A_plus=0.005" in runs and "ltp_ltd_soft-pairing-seed1" in runs
    for e in data["entries"]:
        assert {"rule", "protocol", "params", "seed", "backends", "comparisons", "passed", "seconds"} <= set(e)
        files = os.listdir(out / e["run"])
        assert f"{e['rule']}_brian2.py" in files and f"{e['rule']}_lava.py" in files and "report.json" in files
    # the grid changes the rule: different A_plus, different final weights
    a = np.load(out / "stdp_pair-pairing-seed1-A_plus=0.005" / "trajectories.npz")["brian2"][-1]
    b = np.load(out / "stdp_pair-pairing-seed1-A_plus=0.02" / "trajectories.npz")["brian2"][-1]
    assert not np.allclose(a, b)
    # outcome statistics: the final weights per backend, as stored in the run's trajectories
    assert data["outcomes"] == {"passed": 6, "failed": 0, "not checked": 0}
    stats = runs["stdp_pair-pairing-seed1-A_plus=0.02"]["final_weights"]["brian2"]
    assert stats["mean"] == pytest.approx(float(b.mean()), abs=1e-12) and stats["std"] == pytest.approx(float(b.std()), abs=1e-12)
    assert "Final weights per backend" in (out / "summary.md").read_text()
    first_entries = entries(out / "summary.json")

    summary = run_plan(plan, str(out))
    assert all(e["skipped"] for e in summary.entries)
    assert entries(out / "summary.json") == first_entries

    # a changed rule file reruns exactly its runs
    soft = tmp_path / "soft.yaml"
    soft.write_text(soft.read_text().replace("eta1: 0.02", "eta1: 0.03"))
    summary = run_plan(plan, str(out))
    assert {e["run"] for e in summary.entries if not e["skipped"]} == {"ltp_ltd_soft-poisson-seed1",
                                                                       "ltp_ltd_soft-pairing-seed1"}
    summary = run_plan(plan, str(out), force=True)
    assert not any(e["skipped"] for e in summary.entries)


def test_process_pool_and_dask_equal_local(plan, tmp_path):
    import dask
    from distributed import LocalCluster

    run_plan(plan, str(tmp_path / "local"))
    run_plan(plan, str(tmp_path / "pool"), jobs=2)
    assert entries(tmp_path / "pool" / "summary.json") == entries(tmp_path / "local" / "summary.json")
    with dask.config.set({"distributed.worker.daemon": False}):
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
            run_plan(plan, str(tmp_path / "dask"), scheduler=cluster.scheduler_address)
    assert entries(tmp_path / "dask" / "summary.json") == entries(tmp_path / "local" / "summary.json")


BROKEN = [
    ("backends: [brian2, brian2-step, lava-fixed]", "backends: [brian2, nest]",
     "tiny.yaml: backends[1]: unknown backend 'nest' (known: brian2, brian2-step, lava-float, lava-fixed, lava-cpu, emu-float, emu-fixed)"),
    ("rules: [stdp_pair, soft.yaml]", "rules: [stdp_pair, missing.yaml]",
     "tiny.yaml: rules[1]: no rule 'missing.yaml' (neither in the library nor a file)"),
    ("rate: 30", "rate: -1", "tiny.yaml: protocols[0].rate: must be > 0 (got -1)"),
    ("dt_ms: -10", "delay: -10", "tiny.yaml: protocols[1].delay: not an option of protocol 'pairing' "
                                 "(options: n_pre, n_post, pairs, dt_ms, frequency)"),
    ("seeds: [1]", "seeds: [one]", "tiny.yaml: seeds[0]: must be a whole number >= 0 (got 'one')"),
    ("name: tiny", "name: tiny\ncolour: blue", "tiny.yaml: colour: unknown field "
                                                "(allowed: name, rules, protocols, backends, seeds, grid)"),
    ("grid: {A_plus: [0.005, 0.02]}", "grid: {A_plus: [0.005, 1 parsec]}",
     "stdp_pair.yaml: parameters.A_plus: unknown unit 'parsec' (got '1 parsec')"),
    ("name: poisson, steps", "name: tetanus, steps", "tiny.yaml: protocols[0].name: unknown protocol 'tetanus' (known: poisson, pairing, correlated, hfs, lfs, stdp-window, frequency, closed-loop)"),
]


@pytest.mark.parametrize("old,new,message", BROKEN)
def test_broken_plan_exits_2_with_one_line(plan, tmp_path, capsys, old, new, message):
    text = open(plan).read()
    assert old in text
    with open(plan, "w") as handle:
        handle.write(text.replace(old, new))
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_info:
        main(["run", plan, "--out", str(out)])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == f"neurodeploy: error: {message}\n"
    assert not out.exists()


def test_library_plans_load():
    """The smoke plan mixes engine and lava-cpu rules; the full plan covers the library. Without
    `backends`, each run gets its rule's default."""
    from neurodeploy.running import CPU_BACKENDS, DEFAULT_BACKENDS, default_backends
    from neurodeploy.library import rule_files

    _, specs = load_plan(os.path.join(ROOT, "reference", "plans", "smoke.yaml"))
    assert {s.rule_file for s in specs} == {rule_path(n) for n in
                                            ("stdp_pair", "ltp_ltd_soft", "stdp_nearest", "stp_tsodyks_markram")}
    for s in specs:
        engine = os.path.basename(s.rule_file) in ("stdp_pair.yaml", "ltp_ltd_soft.yaml")
        # stdp_nearest: lava-cpu runs it exactly, lava-fixed through the saturation reset
        saturation = os.path.basename(s.rule_file) == "stdp_nearest.yaml"
        assert s.backends == (DEFAULT_BACKENDS if engine else CPU_BACKENDS + ("lava-fixed",) if saturation
                              else CPU_BACKENDS)
        assert s.backends == default_backends(load_rule(s.rule_file))
    _, specs = load_plan(os.path.join(ROOT, "reference", "plans", "full.yaml"))
    assert {s.rule_file for s in specs} == set(rule_files())


@pytest.mark.parametrize("dt_ms,frequency,pairs", [(10, 1, 60), (-10, 20, 7), (0, 50, 3), (25.0, 10, 4)])
def test_pairing_trains_are_what_they_claim(dt_ms, frequency, pairs):
    rule = load_rule(rule_path("stdp_pair"))
    trains = make_trains(rule, "pairing", {"pairs": pairs, "dt_ms": dt_ms, "frequency": frequency,
                                           "n_pre": 2, "n_post": 3}, seed=0)
    pre_t = np.flatnonzero(trains.pre[0])
    post_t = np.flatnonzero(trains.post[0])
    assert len(pre_t) == len(post_t) == pairs
    assert (trains.pre == trains.pre[0]).all() and (trains.post == trains.post[0]).all()
    assert np.all(post_t - pre_t == round(dt_ms))  # dt = 1 ms
    if pairs > 1:
        assert np.allclose(np.diff(pre_t), 1000 / frequency, atol=1)
    assert trains.steps - max(pre_t[-1], post_t[-1]) > 5 * 20  # five trace time constants to settle


ONE_RUN = "rules: [stdp_pair]\nprotocols: [{name: poisson, steps: 50, n_pre: 2, n_post: 2}]\nbackends: [brian2, brian2-step]\n"


def test_jobs_capped_at_the_runs(tmp_path, capsys):
    """Was: run --jobs 64 started 64 workers for a plan of fewer runs."""
    plan = tmp_path / "one.yaml"
    plan.write_text(ONE_RUN)
    with pytest.raises(SystemExit) as info:
        main(["run", str(plan), "--out", str(tmp_path / "out"), "--jobs", "64", "--quiet"])
    assert info.value.code == 0
    assert capsys.readouterr().err == "neurodeploy: --jobs 64: using 1 worker, one per run of the plan\n"


def test_stale_summary_removed_before_any_run(tmp_path, monkeypatch):
    """Was: an interrupted run --force left the old summary.json saying passed: true."""
    import neurodeploy.batch as batch

    plan = tmp_path / "one.yaml"
    plan.write_text(ONE_RUN)
    out = tmp_path / "out"
    out.mkdir()
    (out / "summary.json").write_text('{"passed": true}')
    (out / "summary.md").write_text("all passed")

    def interrupted(spec, out_dir):
        assert not (out / "summary.json").exists() and not (out / "summary.md").exists()
        raise KeyboardInterrupt()

    monkeypatch.setattr(batch, "run_one", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_plan(str(plan), str(out), force=True)
    assert sorted(os.listdir(out)) == []


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o077])
def test_written_files_follow_the_umask(tmp_path, mask):
    """Was: report.json, summary.json, trajectories.npz, plots were created 600 (tempfile.mkstemp)."""
    from neurodeploy.codegen import write_atomic
    from neurodeploy.files import _atomic
    from matplotlib.figure import Figure

    from neurodeploy.plots import _save

    old = os.umask(mask)
    try:
        _atomic(str(tmp_path), "report.json", lambda f: f.write("{}"))
        _atomic(str(tmp_path), "trajectories.npz", lambda f: np.savez_compressed(f, a=np.zeros(2)), binary=True)
        write_atomic(str(tmp_path / "rule_brian2.py"), "print(1)\n")
        fig = Figure()
        _save(fig, str(tmp_path), "errors.png")
    finally:
        os.umask(old)
    modes = {name: os.stat(tmp_path / name).st_mode & 0o777 for name in os.listdir(tmp_path)}
    assert modes == {name: 0o666 & ~mask for name in ("report.json", "trajectories.npz", "rule_brian2.py", "errors.png")}
