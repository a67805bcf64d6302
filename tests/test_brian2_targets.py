"""Brian2's cpp_standalone target (chosen by `auto` for long or large runs) gives the numpy target's
trajectories: the event-driven reference and brian2-step, full and recorded (every k-th step, a sub-grid)."""
import numpy as np
import pytest

from conftest import rule_path
from neurodeploy.backend import Recording
from neurodeploy.targets import load_all
from neurodeploy.brian2 import backends as brian2_backends
from neurodeploy.protocol import make_trains, poisson
from neurodeploy.spec.loader import load_rule


@pytest.mark.skipif(not brian2_backends._can_compile(), reason="no make and C++ compiler")
@pytest.mark.parametrize("backend", ["brian2", "brian2-step"])
def test_cpp_standalone_equals_numpy(backend, monkeypatch, tmp_path):
    monkeypatch.setenv("NEURODEPLOY_CACHE", str(tmp_path))
    rule = load_rule(rule_path("stdp_triplet"))
    trains = poisson(rule, n_pre=4, n_post=3, steps=400, rate=30.0, seed=5)
    runner = load_all().get(backend)
    recording = Recording(every=7, posts=(0, 2), pres=(1, 3))
    monkeypatch.setattr(brian2_backends, "CODEGEN_TARGET", "numpy")
    full = runner.run(rule, trains, {}).trajectory
    part = runner.run(rule, trains, {}, recording=recording).trajectory
    monkeypatch.setattr(brian2_backends, "CODEGEN_TARGET", "cpp_standalone")
    full_cpp = runner.run(rule, trains, {})
    part_cpp = runner.run(rule, trains, {}, recording=recording).trajectory
    assert full_cpp.info["brian2_target"] == "cpp_standalone"
    assert np.ptp(full) > 0.01  # the weights moved
    np.testing.assert_allclose(full_cpp.trajectory, full, rtol=0, atol=1e-12)
    np.testing.assert_allclose(part_cpp, part, rtol=0, atol=1e-12)


@pytest.mark.skipif(not brian2_backends._can_compile(), reason="no make and C++ compiler: auto always runs numpy")
def test_auto_chooses_cpp_standalone_only_where_numpy_is_slower():
    rule = load_rule(rule_path("stdp_pair"))
    model = brian2_backends.reference_model(rule)
    short = poisson(rule, n_pre=100, n_post=100, steps=10_000, rate=10.0, seed=0)
    long = poisson(rule, n_pre=1, n_post=1, steps=900_000, rate=10.0, seed=0)
    big = poisson(rule, n_pre=1000, n_post=1000, steps=20, rate=10.0, seed=0)
    target = brian2_backends.choose_target
    old = brian2_backends.CODEGEN_TARGET
    try:
        brian2_backends.CODEGEN_TARGET = "auto"
        # numpy: 10^4 x 85 us + 10^8 x 12 ns = 2.05 s < 45 s build; 9e5 x 85 us = 76 s > 45 s
        assert [target(model, t) for t in (short, long)] == ["numpy", "cpp_standalone"]
        assert target(model, big) == "numpy"  # 20 steps of 10^6 synapses: 0.24 s
    finally:
        brian2_backends.CODEGEN_TARGET = old


def test_make_runs_as_many_compilers_as_cores(tmp_path, monkeypatch):
    """Brian2's default make arguments are ['-j'] (unbounded: dozens of compilers at once on 2 cores);
    neurodeploy's build bounds it by the core count and keeps any other argument."""
    import os
    import subprocess

    import neurodeploy.brian2_setup  # noqa: F401  (before brian2)
    import brian2 as b2

    from neurodeploy.brian2 import standalone as B

    seen = []

    class Done:
        pid = 0

        def __init__(self, command, **kwargs):
            seen.append(command)

        def wait(self, timeout=None):
            return 0

    monkeypatch.setattr(subprocess, "Popen", Done)
    prefs = b2.prefs.devices.cpp_standalone
    before = list(prefs.extra_make_args_unix)
    prefs.extra_make_args_unix = ["-j", "--quiet"]  # Brian2's preferences cannot be deleted: set and restored
    try:
        B._make(b2, str(tmp_path))
    finally:
        prefs.extra_make_args_unix = before
    assert seen and seen[0][-2:] == [f"-j{os.cpu_count()}", "--quiet"]


@pytest.mark.skipif(not brian2_backends._can_compile(), reason="no make and C++ compiler: auto always runs numpy")
def test_auto_counts_each_run_regularly_operation():
    """numpy's estimate adds NUMPY_REGULAR_STEP_S per step for each run_regularly operation: brian2-step's
    one operation (stdp_pair) makes it cost 85 + 60 = 145 us a step against the reference's 85."""
    rule = load_rule(rule_path("stdp_pair"))
    reference, step = brian2_backends.reference_model(rule), brian2_backends.step_model(rule)
    assert (len(reference.regular), len(step.regular)) == (0, 1)
    # 1x1, 4e5 steps: reference 4e5 x 85 us = 34 s < 45 s build; brian2-step 4e5 x 145 us = 58 s > 45 s
    long = poisson(rule, n_pre=1, n_post=1, steps=400_000, rate=1.0, seed=0)
    pairing = make_trains(rule, "pairing", {}, seed=3)  # 59,112 steps: 8.6 s under numpy
    old = brian2_backends.CODEGEN_TARGET
    try:
        brian2_backends.CODEGEN_TARGET = "auto"
        target = brian2_backends.choose_target
        assert [target(reference, long), target(step, long)] == ["numpy", "cpp_standalone"]
        assert [target(reference, pairing), target(step, pairing)] == ["numpy", "numpy"]
    finally:
        brian2_backends.CODEGEN_TARGET = old


@pytest.mark.skipif(not brian2_backends._can_compile(), reason="no make and C++ compiler: auto always runs numpy")
def test_auto_for_a_network_weighs_the_build_against_the_runs_that_share_it():
    """A network run: numpy's 370 us a step against cpp_standalone's 147 us plus its build. One run of the
    pattern-detection network (10^5 steps): 37 s < 45 + 14.7 s, numpy; the same run in an ensemble of 20
    sharing the build (2.25 + 14.7 s): cpp_standalone; a network with a reward schedule: numpy always (its
    network operation writes the rewards ahead); 2,000 steps in an ensemble of 20: 0.74 s < 2.25 + 0.29 s, numpy."""
    from neurodeploy.tasks import distal_reward, pattern_detection, runner

    pattern = runner.task_setup(pattern_detection)
    model = brian2_backends.reference_model(pattern.rule)
    short = runner.task_setup(pattern_detection, steps=2000, every=100)
    distal = runner.task_setup(distal_reward, steps=400_000)
    old = brian2_backends.CODEGEN_TARGET
    try:
        brian2_backends.CODEGEN_TARGET = "auto"
        target = brian2_backends.choose_target
        assert target(model, pattern.trains) == "numpy"
        from neurodeploy.brian2 import builds

        with builds.builds_shared_by(20):
            assert target(model, pattern.trains) == "cpp_standalone"
            assert target(model, short.trains) == "numpy"
            assert target(brian2_backends.reference_model(distal.rule), distal.trains) == "numpy"
        assert builds.BUILD_SHARED_BY == 1
    finally:
        brian2_backends.CODEGEN_TARGET = old
