"""Same inputs, same outputs; numbers that go wrong; time limits."""
import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, rule_path
from neurodeploy.backend import RunResult
from neurodeploy.verification import verify
from neurodeploy.verdict.links import compare
from neurodeploy.protocol import poisson
from neurodeploy.spec.loader import load_rule

TIMING_KEYS = {"verdict_seconds", "seconds", "steps_per_second"}


def strip_timing(value):
    if isinstance(value, dict):
        return {k: strip_timing(v) for k, v in value.items() if k not in TIMING_KEYS}
    if isinstance(value, list):
        return [strip_timing(v) for v in value]
    return value


def test_verify_is_reproducible_across_processes(tmp_path):
    outs = []
    for name in ("a", "b"):
        out = tmp_path / name
        subprocess.run([sys.executable, "-m", "neurodeploy.cli", "verify", rule_path("ltp_ltd_soft"), "--out", str(out),
                        "--steps", "300", "--seed", "5", "--rate", "30"], cwd=ROOT, check=True, capture_output=True)
        outs.append(out)
    with np.load(outs[0] / "trajectories.npz") as x, np.load(outs[1] / "trajectories.npz") as y:
        assert sorted(x.files) == sorted(y.files)
        assert sorted(n for n in x.files if ":" not in n) == sorted(["brian2", "brian2-step", "lava-float", "lava-fixed"])
        for name in x.files:
            assert x[name].tobytes() == y[name].tobytes(), name
    a, b = (strip_timing(json.loads((o / "report.json").read_text())) for o in outs)
    assert a == b


def run_result(name, trajectory):
    return RunResult(name, trajectory, 1.0, {})


def test_non_finite_trajectory_fails_naming_backend_and_step():
    good = np.zeros((5, 2, 2))
    bad = good.copy()
    bad[3, 1, 0] = np.nan
    bad[4, 0, 0] = np.inf
    entry = compare(run_result("brian2", good), run_result("lava-fixed", bad), "end-to-end", 1.0,
                    {"max_abs": 1.0, "rmse": 1.0})
    assert entry["passed"] is False
    assert entry["message"] == "lava-fixed: non-finite weight at step 3"


def test_time_limit_fails_one_backend_and_keeps_the_others():
    rule = load_rule(rule_path("stdp_pair"))
    trains = poisson(rule, 3, 3, 15000, 10.0, 1)  # brian2 within 4 s, Lava not (its start alone ~5 s)
    report = verify(rule, trains, ("brian2", "lava-fixed"), timeout=4, lava_steps=0)  # Lava the whole run
    assert report.failed == {"lava-fixed": "timed out after 4 s"}
    assert "brian2" in report.results and report.results["brian2"].trajectory.shape == (15000, 3, 3)
    assert not report.passed and report.outcome == "failed"
    # brian2 -> lava-fixed is measured, not judged: the failed backend alone fails the run
    assert report.comparisons == [] and report.measured == []
