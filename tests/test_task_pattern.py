"""The pattern-detection task (neurodeploy/tasks/pattern_detection.py, Masquelier et al. 2008).

Independent expectations: the drawn trains against the pattern and its times (exact without jitter; with a 1 ms
Gaussian jitter the share of spikes within one step, from the normal distribution's CDF; the slots' pattern share
from the chain's stationary probability); the metrics on hand-made rasters against values computed by hand; the
learning in the engine's same-step order (brian2-step) at a small size against the paper's outcome (hits, no false alarms, pattern
afferents at w_max), and the sign-flipped deployment against the same criterion."""
import math

import numpy as np
import pytest

from neurodeploy.errors import NeurodeployError
from neurodeploy.tasks import pattern_detection as task
from neurodeploy.tasks import runner, TASKS

#: A small size for the drawing tests (no simulation).
DRAW = dict(task.DEFAULTS, steps=40_000, n_inputs=200, noise_rate=0.0, jitter_ms=0.0)


def test_registered():
    assert TASKS[task.NAME] == "neurodeploy.tasks.pattern_detection"
    assert runner.task_module("pattern-detection") is task


def test_without_jitter_and_noise_the_pattern_repeats_exactly_at_the_drawn_times_and_nowhere_else():
    inp = task.draw(DRAW, 3)
    length = DRAW["pattern_ms"]
    assert inp.pattern.sum() > 100  # a pattern worth the name (200 afferents x 50 ms at 0..60 Hz: ~150 spikes)
    assert np.all(inp.starts % length == 0) and np.all(np.diff(inp.starts) > length)  # slots, never two in a row
    slots = np.arange(0, DRAW["steps"] - length + 1, length)
    equal = np.array([np.array_equal(inp.spikes[inp.afferents, s:s + length], inp.pattern) for s in slots])
    assert np.array_equal(slots[equal], inp.starts)


def test_the_pattern_takes_its_share_of_the_time_and_changes_no_rate():
    p = dict(DRAW, steps=200_000)
    inp = task.draw(p, 5)
    slots = p["steps"] // p["pattern_ms"]
    share = len(inp.starts) / slots
    # the chain's stationary share is pattern_fraction; 4000 slots: sd below 0.01
    assert abs(share - p["pattern_fraction"]) < 0.03
    inside = np.zeros(p["steps"], dtype=bool)
    for s in inp.starts:
        inside[s:s + p["pattern_ms"]] = True
    others = np.setdiff1d(np.arange(p["n_inputs"]), inp.afferents)
    # the other afferents: Poisson at their rates everywhere (their summed rate inside = outside, ~2%)
    rate_in = inp.spikes[others][:, inside].mean() * 1e3
    rate_out = inp.spikes[others][:, ~inside].mean() * 1e3
    expected = inp.rates[others].mean()
    assert abs(rate_in - expected) < 0.05 * expected and abs(rate_out - expected) < 0.05 * expected
    # the pattern afferents inside the pattern: one frozen draw at their rates (~150 spikes: within 4 sd)
    expected_count = inp.rates[inp.afferents].sum() * p["pattern_ms"] * 1e-3
    assert abs(inp.pattern.sum() - expected_count) < 4 * math.sqrt(expected_count)


def test_a_one_ms_jitter_keeps_the_share_of_spikes_within_one_step_the_normal_law_gives():
    p = dict(DRAW, jitter_ms=1.0)
    inp = task.draw(p, 7)
    length = p["pattern_ms"]
    rows, cols = np.nonzero(inp.pattern)
    inner = (cols >= 2) & (cols < length - 2)  # away from the slot's edges (where a spike is kept inside)
    near = []
    for s in inp.starts:
        block = inp.spikes[inp.afferents, s:s + length]
        near.append([block[r, c - 1: c + 2].any() for r, c in zip(rows[inner], cols[inner])])
    # P(|round(N(0, 1))| <= 1) = P(|N| < 1.5) = erf(1.5 / sqrt 2) = 0.866; other spikes of the same afferent
    # can only add, and there are none at the pattern's rates beyond a few %
    expected = math.erf(1.5 / math.sqrt(2))
    assert abs(np.mean(near) - expected) < 0.04


def test_same_seed_same_trains_and_another_seed_other_trains():
    setup = task.setup(steps=2000, n_inputs=50)
    a, b, c = task.member(setup, 4), task.member(setup, 4), task.member(setup, 5)
    assert np.array_equal(a.pre, b.pre) and not np.array_equal(a.pre, c.pre)
    assert a.pre[setup.net.n_inputs:].sum() == 0  # the LIF's row: its backend's spikes


def test_scores_on_a_hand_made_raster():
    starts, length, steps = np.array([100, 300]), 50, 400
    spikes = np.zeros(steps, dtype=bool)
    spikes[[110, 250, 305, 320]] = True  # a hit at 10 ms, a false alarm, a hit at 5 ms and a second spike in it
    hit, fa, latency, latencies = task.scores(spikes, starts, length, steps, tail=1.0)
    assert (hit, latency) == (1.0, 7.5) and list(latencies) == [10.0, 5.0]
    assert fa == pytest.approx(1 / 0.300)  # one spike in the 300 steps outside the two slots
    hit, fa, latency, _ = task.scores(spikes, starts, length, steps, tail=0.5)  # steps 200..399
    assert (hit, latency) == (1.0, 5.0) and fa == pytest.approx(1 / 0.150)
    spikes[:] = False
    spikes[[349, 350]] = True  # the last step of the slot is a hit; the step after the slot a false alarm
    hit, fa, latency, _ = task.scores(spikes, starts, length, steps, tail=0.5)
    assert (hit, latency) == (1.0, 49.0) and fa == pytest.approx(1 / 0.150)
    hit, _, latency, _ = task.scores(np.zeros(steps, bool), starts, length, steps, tail=1.0)
    assert (hit, latency) == (0.0, 50.0)  # no hit: the slot's length


def test_contrast_on_hand_made_weights():
    w = np.array([1.0, 0.95, 0.2, 0.0, 0.91, 0.0, 0.5, 0.0])
    in_pattern = np.array([True, True, True, True, False, False, False, False])
    assert task.contrast(w, in_pattern) == pytest.approx(2 / 4 - 1 / 4)


@pytest.mark.parametrize("override, message", [
    ({"n_inputs": 0}, "pattern-detection: n_inputs: must be > 0 (got 0)"),
    ({"pattern_fraction": 0.6}, "pattern-detection: pattern_fraction: must be in (0, 0.5] (got 0.6)"),
    ({"steps": 100}, "pattern-detection: steps: must be at least 4 pattern slots, 200 (got 100)"),
    ({"jitter": 1}, "pattern-detection: jitter: unknown parameter"),
    ({"rate_max": "fast"}, "pattern-detection: rate_max: must be a finite number (got 'fast')"),
])
def test_bad_parameters_refused_by_one_line(override, message):
    with pytest.raises(NeurodeployError) as err:
        task.setup(**override)
    assert str(err.value).startswith(message)


#: The small size of the learning tests: the defaults (400 afferents) for 30 s instead of 100 s. Measured on
#: emu-float at this length (seeds 1..4): seed 1 learns (hit rate 0.92, no false alarm, latency 8 ms), the other
#: seeds not yet (they do by 100 s in 2 of 3: docs/tasks.md); the tests use seed 1.
SMALL = {"steps": 30_000}
SEED = 1


def _learned(m: dict) -> bool:
    """The paper's outcome: the neuron fires in most of the pattern's occurrences, rarely outside them, and a
    part of the pattern afferents sits at w_max while the others do not."""
    return m["hit_rate"] >= 0.8 and m["false_alarm_hz"] <= 1.0 and m["contrast"] >= 0.025  # 5 of 200 afferents


@pytest.fixture(scope="module")
def small():
    """The task at the small size, compiled on Poisson post spikes at 20 Hz (no reference run needed; the
    reference's calibration run gives the same y-trace impulse, 18)."""
    from neurodeploy.compile.compilation import compile_rule
    from neurodeploy.network import with_spikes

    setup = task.setup(**SMALL)
    member = task.member(setup, SEED)
    traffic = with_spikes(member, np.random.default_rng(0).random(member.post.shape) < 0.02)
    return setup, member, compile_rule(setup.rule, traffic)


def test_brian2_in_the_engines_order_learns_the_pattern_and_its_latency_falls(small):
    """The task itself is learnable: Brian2 with the engine's same-step order (the chain's timing link)."""
    setup, member, _ = small
    trajectory, spikes = runner.run_member(setup, "brian2-step", {}, member, setup.params["every"])
    m, curve = task.evaluate(setup, member, trajectory, spikes)
    assert _learned(m), m
    latencies = curve[0][~np.isnan(curve[0])]
    assert np.median(latencies[-20:]) < np.median(latencies[:20]) - 5  # ms: earlier and earlier in the pattern


def test_the_deployment_learns_it_and_the_sign_flipped_deployment_does_not(small):
    """emu-fixed learns on the same seed; the dominant constant (A_plus) negated: every pairing depresses, the
    weights fall, no hit."""
    setup, member, compilation = small
    trajectory, spikes = runner.run_member(setup, runner.CANDIDATE, compilation, member, setup.params["every"])
    m, _ = task.evaluate(setup, member, trajectory, spikes)
    assert _learned(m), m
    plans, _ = runner.wrong_deployments(setup, compilation)["sign"]
    trajectory, spikes = runner.run_member(setup, runner.CANDIDATE, plans, member, setup.params["every"])
    m, _ = task.evaluate(setup, member, trajectory, spikes)
    assert not _learned(m) and m["hit_rate"] < 0.1 and m["contrast"] <= 0.0, m


def test_the_command_refuses_bad_steps_in_one_line_before_running(tmp_path):
    import os
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, "-m", "neurodeploy", "task", "pattern-detection", "--out", str(out),
                        "--steps", "150"], capture_output=True, text=True, cwd=tmp_path, timeout=120,
                       env=dict(os.environ, PYTHONPATH=root))
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        "neurodeploy: error: pattern-detection: steps: must be at least 4 pattern slots, 200 (got 150)"]
    assert not out.exists()
