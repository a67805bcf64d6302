"""The task runner (neurodeploy/tasks/runner.py): the verdict's power floor, the wrong deployments, the
rewards a schedule earns, the command's refusals. Independent expectations: scipy's exact permutation test,
the plan's own constants, a hand-replayed schedule."""
import dataclasses
import itertools
import os
import subprocess
import sys

import numpy as np
import pytest

from neurodeploy.tasks import runner, TASKS
from neurodeploy.tasks import distal_reward as task
from neurodeploy.verdict.distribution import ALPHA, two_sample

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_min_p_is_the_exact_permutation_floor():
    """2 / C(2n, n) is the smallest two-sided p of n against n runs: the exact permutation test of a
    completely separated pair of samples (every split enumerated here) gives it."""
    for n in (3, 4, 5):
        a, b = np.arange(n, dtype=float), 10.0 + np.arange(n)
        pooled = np.concatenate([a, b])
        observed = abs(a.mean() - b.mean())
        splits = [abs(pooled[list(c)].mean() - np.delete(pooled, list(c)).mean()) >= observed - 1e-12
                  for c in itertools.combinations(range(2 * n), n)]
        assert runner.min_p(n, n) == pytest.approx(np.mean(splits))


def test_below_min_seeds_the_verdict_cannot_fail_and_at_it_it_can():
    """Completely separated ensembles far beyond any margin: with min_seeds - 1 runs a side two_sample
    cannot reject (the check would be one that cannot fail, so the runner refuses it); with min_seeds it does."""
    names = task.METRICS
    n = runner.min_seeds(len(names))
    assert runner.min_p(n, n) < ALPHA / len(names) <= runner.min_p(n - 1, n - 1)
    for size, expect in ((n - 1, True), (n, False)):
        ref = np.tile(np.arange(size, dtype=float)[:, None], (1, len(names)))
        cand = ref + 1000.0 + np.arange(size)[:, None] * 0.5
        assert two_sample(ref, cand, names=names, margins={m: 0.0 for m in names})["passed"] is expect


def test_margins_come_from_the_reference_and_the_task_only():
    rng = np.random.default_rng(1)
    ref = rng.random((7, len(task.METRICS)))
    m1 = runner.margins(task, ref, 0.2)
    for k, name in enumerate(task.METRICS):
        assert m1[name] == pytest.approx(0.2 * np.abs(ref[:, k]).mean() + task.MARGIN_FLOORS.get(name, 0.0))
    # the candidate does not enter: judging two different candidates uses the same margins
    a = runner.judge(task, ref, ref + 0.01)["statistics"]
    b = runner.judge(task, ref, ref + 5.0)["statistics"]
    assert [a[m]["margin"] for m in task.METRICS] == [b[m]["margin"] for m in task.METRICS]


@pytest.fixture(scope="module")
def small():
    """The distal-reward task at 600 steps, compiled on Poisson traffic (no reference run needed here)."""
    from neurodeploy.compile.compilation import compile_rule
    from neurodeploy.network import with_spikes

    setup = task.setup(steps=600)
    member = task.member(setup, 1)
    rng = np.random.default_rng(0)
    traffic = with_spikes(member, rng.random(member.post.shape) < 0.01)
    traffic = dataclasses.replace(traffic, reward=(rng.random(member.post.shape) < 0.002) * 1.0)
    return setup, compile_rule(setup.rule, traffic)


def test_wrong_deployments_change_what_they_say(small):
    setup, compilation = small
    plan = compilation["fixed"]
    k = runner.dominant_product(plan)
    assert abs(plan.products[k].realised) == max(abs(p.realised) for p in plan.products)
    wrong = runner.wrong_deployments(setup, compilation)
    x2 = wrong["x2"][0]["fixed"].products[k]
    assert x2.realised == 2 * plan.products[k].realised
    assert wrong["sign"][0]["fixed"].products[k].realised == -plan.products[k].realised
    for label in ("x2", "sign"):  # one constant changed, nothing else
        other = wrong[label][0]["fixed"].products
        assert [p for j, p in enumerate(other) if j != k] == [p for j, p in enumerate(plan.products) if j != k]
    plans, net = wrong["lif-tau_v"]
    assert plans is compilation
    for p, q in zip(setup.net.populations, net.populations):
        assert q.tau_v_ms == (p.tau_v_ms / 2 if p.kind == "lif" else p.tau_v_ms)


def test_a_wrong_lif_constant_changes_the_deployed_spikes(small):
    """The LIF mutant reaches the emulator: the same inputs and plan, tau_v halved, fewer or other spikes."""
    setup, compilation = small
    member = task.member(setup, 2)
    _, spikes = runner.run_member(setup, "emu-fixed", compilation, member, 100)
    _, net = runner.wrong_deployments(setup, compilation)["lif-tau_v"]
    _, wrong = runner.run_member(setup, "emu-fixed", compilation, dataclasses.replace(member, network=net), 100)
    assert spikes.any() and not np.array_equal(spikes, wrong)


def test_earned_rewards_replay_the_schedule_by_hand(small):
    """Each cue spike followed 1..window steps later by exc[0] earns one reward at its drawn delay."""
    setup, _ = small
    member = task.member(setup, 3)
    steps, n_lif = member.steps, member.n_post
    rng = np.random.default_rng(5)
    spikes = rng.random((n_lif, steps)) < 0.05
    reward = runner.earned_rewards(member, spikes)
    p = setup.params
    cue = member.pre[0]
    delays = np.random.default_rng(0)  # the schedule's seed: one draw per earned reward, in order
    expected = np.zeros(steps)
    last = None
    for t in range(steps):
        if spikes[0, t] and last is not None and 1 <= t - last <= p["window"]:
            at = t + int(delays.integers(p["delay_min"], p["delay_max"] + 1))
            if at < steps:
                expected[at] += p["amount"]
        if cue[t]:
            last = t
    assert np.array_equal(reward, np.tile(expected, (n_lif, 1)))


def test_ensembles_on_worker_processes_are_the_runs_made_here(small):
    """Members run on 2 forked workers give the same metrics and curves, bit for bit, as the same members
    run one after another in this process (each member's inputs and random streams come from its seed),
    in the order of the groups and seeds asked for, whichever worker finished first."""
    setup, compilation = small
    groups = [("brian2", {}, [3, 1], None), ("emu-fixed", compilation, range(4, 7), None),
              ("emu-fixed", runner.wrong_deployments(setup, compilation)["sign"][0], [4], None)]
    here = runner.ensembles(task, setup, groups, jobs=1)
    targets = {}
    there = runner.ensembles(task, setup, groups, jobs=2, targets=targets)
    assert targets == {"brian2": ["numpy"]}  # a reward schedule runs numpy; the emulator has no Brian2 target
    assert [len(r) for r, _, _ in there] == [2, 3, 1]
    for (r1, c1, _), (r2, c2, _) in zip(here, there):
        assert np.array_equal(r1, r2)
        assert all(np.array_equal(a, b) for a, b in zip(c1, c2))
    assert not np.array_equal(here[0][0][0], here[0][0][1])  # seeds 3 and 1 are different members ...
    alone = runner.ensemble(task, setup, "brian2", {}, [1])[0]
    assert np.array_equal(alone[0], here[0][0][1])  # ... and seed 1 is the same member in any company


def test_tasks_are_registered_and_complete():
    for name in TASKS:
        module = runner.task_module(name)
        assert module.NAME == name
        for attr in ("TITLE", "METRICS", "DEFAULTS", "setup", "member", "evaluate", "figure"):
            assert hasattr(module, attr), (name, attr)


def _cli(*args, cwd):
    env = dict(os.environ, PYTHONPATH=ROOT)
    return subprocess.run([sys.executable, "-m", "neurodeploy", *args], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=300)


def test_the_command_refuses_a_verdict_that_cannot_fail(tmp_path):
    n = runner.min_seeds(len(task.METRICS))
    out = tmp_path / "out"
    r = _cli("task", "distal-reward", "--out", str(out), "--seeds", str(n - 1), cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        f"neurodeploy: error: --seeds: {n - 1} runs a side cannot show a difference in {len(task.METRICS)} metrics (the smallest "
        f"p-value is {runner.min_p(n - 1, n - 1):.2g}); use at least {n}"]
    assert not out.exists()
    r = _cli("task", "distal-reward", "--out", str(out), "--size", "huge", cwd=tmp_path)
    assert r.returncode == 2 and "unknown size 'huge' for distal-reward (sizes: paper)" in r.stderr
    assert not out.exists()


def test_false_alarms_count_verdicts_on_disjoint_seeds_with_an_exact_interval(monkeypatch):
    """Two verdicts of the correct deployment at 200 steps: the seeds are disjoint from each other and from
    the tuned ones, and the interval is scipy's exact (Clopper-Pearson) binomial interval."""
    from scipy.stats import binomtest

    seen = []
    real = runner.ensembles

    def spy(task_, setup, groups, jobs=1):
        seen.extend((backend, list(seeds)) for backend, _, seeds, _ in groups)
        return real(task_, setup, groups, jobs)

    monkeypatch.setattr(runner, "ensembles", spy)
    out = runner.false_alarms(task, 2, steps=200, first_seed=1000)
    n = runner.default_seeds(task)
    seeds = [s for _, ss in seen for s in ss]
    assert len(seeds) == len(set(seeds)) == 4 * n and min(seeds) == 1000
    assert [b for b, _ in seen] == ["brian2", "emu-fixed"] * 2
    ci = binomtest(out["not_passed"], out["verdicts"]).proportion_ci(confidence_level=0.95, method="exact")
    assert out["clopper_pearson_95"] == pytest.approx([ci.low, ci.high])


def test_null_false_alarms_judge_the_deployment_against_itself_on_disjoint_seeds(monkeypatch):
    """``null``: both sides are the deployment (its compiled plans on both), on disjoint seeds; the
    one-sided bound is the closed form 1 - 0.05^(1/n) at no failure and scipy's beta quantile otherwise."""
    from scipy.stats import beta

    seen = []
    real = runner.ensembles

    def spy(task_, setup, groups, jobs=1):
        seen.extend((backend, plans, list(seeds)) for backend, plans, seeds, _ in groups)
        return real(task_, setup, groups, jobs)

    monkeypatch.setattr(runner, "ensembles", spy)
    out = runner.false_alarms(task, 2, steps=200, first_seed=1000, null=True)
    n = runner.default_seeds(task)
    seeds = [s for _, _, ss in seen for s in ss]
    assert len(seeds) == len(set(seeds)) == 4 * n and min(seeds) == 1000
    assert [b for b, _, _ in seen] == ["emu-fixed"] * 4
    assert all(plans is seen[1][1] and plans for _, plans, _ in seen)  # the one compilation on both sides
    assert out["null"] is True and out["reference"] == out["candidate"] == "emu-fixed"
    assert runner.one_sided_upper(0, 299) == pytest.approx(1 - 0.05 ** (1 / 299)) and runner.one_sided_upper(0, 299) < 0.01
    assert runner.one_sided_upper(0, 298) > 0.01
    assert runner.one_sided_upper(3, 400) == pytest.approx(beta.ppf(0.95, 4, 397))
    assert runner.one_sided_upper(5, 5) == 1.0


def test_null_without_false_alarms_is_refused_in_one_line(tmp_path):
    out = tmp_path / "out"
    r = _cli("task", "distal-reward", "--out", str(out), "--null", cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        "neurodeploy: error: --null: only with --false-alarms N (it judges the deployment against itself)"]
    assert not out.exists()


def test_calibrate_judges_the_reference_against_itself_and_catches_a_shifted_pool(monkeypatch):
    """calibrate's pools from synthetic metrics (the runs themselves are tested above): the null pool is the
    reference's backend on the candidate's seeds (disjoint from the reference's), drawn from the same
    distribution as the reference, so its verdicts fail at about the nominal family-wise 1% (here at most
    5% of 100 drawn); a wrong deployment shifted by 10 reference spreads in one metric fails every verdict
    and is caught by that metric; the disjoint verdicts carry scipy's exact interval."""
    from scipy.stats import binomtest

    seen = []
    rng = np.random.default_rng(7)
    k = len(task.METRICS)
    base = np.linspace(1.0, 2.0, k)

    def fake(task_, setup, groups, jobs=1):
        out = []
        for backend, _, seeds, net in groups:
            seeds = list(seeds)
            seen.append((backend, seeds))
            rows = base + 0.1 * rng.standard_normal((len(seeds), k))
            if net is not None:  # lif-tau_v: the deployed network differs
                rows[:, 0] += 1.0
            out.append((rows, [], 0.0))
        return out

    monkeypatch.setattr(runner, "ensembles", fake)
    out = runner.calibrate(task, pool=20, draws=100, steps=200, wrong=("lif-tau_v",))
    ref_seeds = seen[0][1]
    assert seen[0][0] == seen[1][0] == runner.REFERENCE
    assert set(ref_seeds).isdisjoint(seen[1][1]) and min(ref_seeds) == 1000
    null, wrong = out["deployments"]["null"], out["deployments"]["lif-tau_v"]
    assert null["failed_drawn"] <= 0.05, null
    assert wrong["failed_drawn"] == 1.0 and max(wrong["rejected_by"], key=wrong["rejected_by"].get) == task.METRICS[0]
    ci = binomtest(null["failed_disjoint"], null["disjoint"]).proportion_ci(confidence_level=0.95, method="exact")
    assert null["clopper_pearson_95"] == pytest.approx([ci.low, ci.high])


def test_bench_refuses_an_unknown_task_in_one_line_before_running(tmp_path):
    out = tmp_path / "bench_tasks.json"
    r = subprocess.run([sys.executable, "-m", "neurodeploy.bench", "--tasks", "distal-reward,nope", "--out", str(out)],
                       capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        "neurodeploy bench: error: --tasks: unknown task 'nope' (tasks: distal-reward, pattern-detection, digits, "
        "song-miller-abbott)"]
    assert not out.exists()


def test_the_task_at_a_finer_step_keeps_its_spikes_and_its_neuron():
    """finer_setup / the refined members (the timing remedy): every input spike stays in its step (the
    refined raster summed over each step's k sub-steps is the task's raster), the rule and the neurons run
    at dt / k with thresholds k times the file's, and the deployed float LIF is then the same neuron in time:
    its membrane after one input converges, as k grows, to the continuous-time solution of
    du/dt = -u / tau_u, dv/dt = -v / tau_v + u / dt (the Brian2 reference's neuron at the task's dt)."""
    from neurodeploy.compile.loihi import CPU_SCALE, lif_params
    from neurodeploy.emu.closed_loop import Lif
    from neurodeploy.tasks import pattern_detection as pattern

    setup = runner.task_setup(pattern, steps=400, every=100)
    coarse = pattern.member(setup, 5)
    errors = []
    for k in (1, 2, 4, 8):
        fine_task, fine = runner.finer_setup(pattern, setup, k)
        assert fine.rule.dt == pytest.approx(setup.rule.dt / k) and fine.net.steps == setup.net.steps * k
        assert fine.params["every"] == setup.params["every"] * k
        m = fine_task.member(fine, 5)
        assert m.steps == coarse.steps * k and m.seed == 5
        n_in = setup.net.n_inputs
        assert np.array_equal(m.pre[:n_in].reshape(n_in, -1, k).sum(axis=2), coarse.pre[:n_in].astype(int))
        pop, pop0 = fine.net.lifs[0], setup.net.lifs[0]
        assert pop.threshold == pytest.approx(k * pop0.threshold)
        lif = Lif(1, lif_params("float", pop.tau_u_ms, pop.tau_v_ms, pop.threshold, CPU_SCALE, dt=fine.rule.dt * 1e3),
                  False)
        lif.vth = np.inf
        lif.step(np.array([1.0]))
        for _ in range(20 * k - 1):  # 20 ms after the input
            lif.step(np.array([0.0]))
        tu, tv, t = pop.tau_u_ms, pop.tau_v_ms, 20.0
        exact = tu * tv / (tv - tu) * (np.exp(-t / tv) - np.exp(-t / tu))  # per ms of the task's dt (1 ms)
        errors.append(abs(lif.v[0] / k - exact) / exact)
    # first order in dt: the error halves with each halving of the step (10% at the task's dt, 1.2% at dt / 8)
    assert all(b < 0.6 * a for a, b in zip(errors, errors[1:])) and errors[3] < 0.02, errors


def test_a_finer_step_for_a_reward_schedule_is_refused_before_anything_is_written(tmp_path):
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, "-m", "neurodeploy", "task", "distal-reward", "--out", str(out),
                        "--finer-dt", "2"], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip().splitlines() == [
        "neurodeploy: error: --finer-dt: distal-reward: a finer time step is not measured for a reward schedule "
        "(its delays and windows are in the task's steps)"]
    assert not out.exists()


@pytest.mark.parametrize("override, message", [
    ({"nope": 1}, "distal-reward: nope: unknown parameter (known: amount, cue_rate, cue_w0, delay_max, delay_min, "
                  "every, input_rate, n_exc, n_inputs, noise, noise_rate, noise_weight, steps, threshold, w0, window)"),
    ({"threshold": float("inf")}, "distal-reward: threshold: must be a finite number >= 0 (got inf)"),
    ({"steps": "10"}, "distal-reward: steps: must be a finite number >= 0 (got '10')"),
])
def test_distal_bad_parameters_refused_by_one_line(override, message):
    from neurodeploy.errors import NeurodeployError

    with pytest.raises(NeurodeployError) as info:
        task.setup(**override)
    assert str(info.value) == message


def test_bench_refuses_jobs_below_one_in_one_line_before_running(tmp_path):
    out = tmp_path / "bench_tasks.json"
    r = subprocess.run([sys.executable, "-m", "neurodeploy.bench", "--tasks", "distal-reward", "--jobs", "0",
                        "--out", str(out)], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == ["neurodeploy bench: error: --jobs: must be at least 1 (got 0)"]
    assert not out.exists()


def test_false_alarms_from_the_command_leave_their_file(tmp_path):
    """``task --false-alarms N --null`` exits 0 and leaves false_alarms.json with every verdict's runs (a
    SystemExit inside the output lock once took the file back on the way out)."""
    import json

    out = tmp_path / "out"
    r = _cli("task", "distal-reward", "--out", str(out), "--false-alarms", "1", "--null", "--steps", "200",
             "--quiet", "--jobs", "1", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    result = json.loads((out / "false_alarms.json").read_text())
    n = runner.default_seeds(task)
    assert result["verdicts"] == 1 and result["null"] is True and result["reference"] == "emu-fixed"
    assert len(result["runs"]) == 1 and np.shape(result["runs"][0]["reference"]) == (n, len(task.METRICS))
    assert "did not pass" in r.stdout and f"wrote {out / 'false_alarms.json'}" in r.stdout
    assert sorted(p.name for p in out.iterdir()) == ["false_alarms.json"]


def test_the_remedy_names_the_first_link_not_shown_when_none_fails():
    """A chain whose links pass up to a NOT SHOWN one names that link (and says it lies at the tolerance);
    a failing link still wins; all passing says so."""
    link = lambda backend, passed, unresolved=(): {"backend": backend, "what": dict(runner.LINKS)[backend],
                                                    "passed": passed, "unresolved": list(unresolved)}
    shown = runner._remedy([link("brian2-step", True), link("emu-float", True),
                            link("emu-fixed", None, ["accuracy"])])
    assert shown.startswith("no link fails beyond doubt; the deviation past the tolerance appears with emu-fixed "
                            "(quantization: accuracy not shown)")
    assert "timing" in runner._remedy([link("brian2-step", False), link("emu-float", None, ["accuracy"])])
    assert runner._remedy([link("brian2-step", True), link("emu-float", True)]) == "every link passes"


@pytest.mark.parametrize("option", [["--wrong"], ["--explain"], ["--finer-dt", "2"], ["--lava-window", "300"]])
def test_options_false_alarms_would_ignore_are_refused(tmp_path, option):
    """``--false-alarms N`` judges verdicts only: an option of one task run given with it would do nothing
    (the default --lava-window given explicitly too); refused in one line, nothing written."""
    out = tmp_path / "out"
    r = _cli("task", "digits", "--out", str(out), "--false-alarms", "3", *option, cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        f"neurodeploy: error: {option[0]}: not with --false-alarms N (it judges verdicts only: no wrong "
        "deployments, chain, finer dt or Lava window)"]
    assert not out.exists()


@pytest.mark.parametrize("name,module", [("song-miller-abbott", "song_miller_abbott"),
                                         ("pattern-detection", "pattern_detection"), ("distal-reward", "distal_reward")])
def test_steps_beyond_the_run_limits_are_refused_before_anything_is_drawn(tmp_path, name, module):
    """Was: 10^7 steps of song-miller-abbott drew its rasters for 50 s and then took all 23 GB (killed);
    pattern-detection died on numpy's "Unable to allocate 29.8 GiB". Now the limits of every front door
    (neuron-steps: steps x sources <= 2 10^8), checked on the task's network before its trains exist."""
    out = tmp_path / "out"
    r = _cli("task", name, "--out", str(out), "--steps", "10000000", cwd=tmp_path)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"neurodeploy: error: {module}: steps: run too large (10000000 steps")
    assert "200,000,000 neuron-steps" in lines[0]
    assert not out.exists()


def test_first_seed_reaches_the_false_alarm_verdicts_and_is_refused_alone(tmp_path, monkeypatch):
    """``--first-seed S`` moves the disjoint seeds of ``--false-alarms`` (to measure on seeds nobody has
    looked at); without ``--false-alarms`` it would do nothing: refused in one line."""
    import json as json_

    from neurodeploy import cli

    seen = {}

    def fake(module, verdicts, seeds, **kwargs):
        seen.update(kwargs, verdicts=verdicts)
        return {"task": module.NAME, "verdicts": verdicts, "seeds_per_side": 10, "failed": 0, "not_shown": 0,
                "not_passed": 0, "rate": 0.0, "clopper_pearson_95": [0.0, 0.5], "one_sided_95_upper": 0.4,
                "runs": [], "first_seed": kwargs["first_seed"], "null": kwargs["null"]}

    monkeypatch.setattr(cli, "false_alarms", fake)
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exc:
        cli.main(["task", "digits", "--out", str(out), "--false-alarms", "2", "--null", "--first-seed", "7000",
                  "--quiet"])
    assert exc.value.code == 0
    assert seen["first_seed"] == 7000 and seen["null"] is True and seen["verdicts"] == 2
    assert json_.loads((out / "false_alarms.json").read_text())["first_seed"] == 7000
    with pytest.raises(SystemExit) as exc:
        cli.main(["task", "digits", "--out", str(out), "--false-alarms", "2", "--quiet"])
    assert exc.value.code == 0 and seen["first_seed"] == 1000  # the default, as before
    r = _cli("task", "digits", "--out", str(tmp_path / "other"), "--first-seed", "7000", cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        "neurodeploy: error: --first-seed: only with --false-alarms N (the seeds of its verdicts)"]
    assert not (tmp_path / "other").exists()
