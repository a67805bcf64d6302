"""Inputs that say what they mean: a connectivity mask in ``--spikes`` and rasters that look transposed.

The mask's expectation is independent of the mask code: in the open loop (post spikes imposed) a
synapse learns from its own pre and post trains only, so each backend's present synapses must equal,
to the bit, the same backend's run of the same trains without a mask; the absent ones are NaN.
"""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from conftest import rule_path
from neurodeploy import deploy
from neurodeploy.cli import main
from neurodeploy.errors import NeurodeployError
from neurodeploy.verification import verify
from neurodeploy.protocol import load_spikes, poisson
from neurodeploy.spec.loader import load_rule

ALL = ["brian2", "brian2-step", "lava-float", "lava-fixed", "lava-cpu", "emu-float", "emu-fixed"]
N, STEPS = 5, 120


def _masks() -> dict:
    no_self = ~np.eye(N, dtype=bool)
    rng = np.random.default_rng(11)
    random = rng.random((N, N)) < 0.5
    random[0, 0] = True  # at least one present, one absent
    random[0, 1] = False
    return {"no self-synapses": no_self, "random": random}


@pytest.fixture(scope="module")
def runs():
    rule = load_rule(rule_path("stdp_pair"))
    trains = poisson(rule, N, N, STEPS, 40.0, 5)
    plain = verify(rule, trains, backends=ALL, ensemble=4)
    masked = {name: verify(rule, dataclasses.replace(trains, mask=m), backends=ALL, ensemble=4)
              for name, m in _masks().items()}
    return plain, masked


@pytest.mark.parametrize("mask_name", list(_masks()))
@pytest.mark.parametrize("backend", ALL)
def test_mask_present_synapses_equal_the_unmasked_run(runs, mask_name, backend):
    plain, masked = runs
    mask = _masks()[mask_name]
    a = plain.results[backend].trajectory
    b = masked[mask_name].results[backend].trajectory
    assert a.shape == b.shape == (STEPS, N, N)
    assert np.array_equal(a[:, mask], b[:, mask])  # bit for bit
    assert np.isfinite(b[:, mask]).all()
    assert np.isnan(b[:, ~mask]).all()  # absent: no weight, at every step
    assert np.isfinite(a).all()
    assert not np.array_equal(a[0], a[-1])  # the trains do make the weights move


@pytest.mark.parametrize("mask_name", list(_masks()))
def test_mask_brian2_connects_only_the_mask(runs, mask_name):
    plain, masked = runs
    mask = _masks()[mask_name]
    assert plain.results["brian2"].info["synapses"] == N * N
    for backend in ("brian2", "brian2-step"):
        assert masked[mask_name].results[backend].info["synapses"] == int(mask.sum())


@pytest.mark.parametrize("mask_name", list(_masks()))
def test_mask_verdict_compares_present_synapses_only(runs, mask_name, tmp_path):
    plain, masked = runs
    report = masked[mask_name]
    mask = _masks()[mask_name]
    assert report.outcome == plain.outcome == "passed"
    by_share = {(c["reference"], c["candidate"]): c for c in report.comparisons}
    plain_by = {(c["reference"], c["candidate"]): c for c in plain.comparisons}
    assert by_share.keys() == plain_by.keys()
    present = f"{int(mask.sum())} present (mask) of {N * N}"
    for key in [("brian2", "brian2-step"), ("brian2-step", "lava-float"), ("lava-fixed", "emu-fixed")]:
        assert by_share[key]["compared_synapses"] == present
    assert by_share[("brian2", "brian2-step")]["per_synapse"]["synapses"] == int(mask.sum())
    # the largest error over the present synapses: recomputed here from the unmasked run
    a = plain.results["brian2"].trajectory[:, mask]
    b = plain.results["brian2-step"].trajectory[:, mask]
    assert by_share[("brian2", "brian2-step")]["max_abs_error_normalized"] == pytest.approx(
        np.abs(a - b).max() / 1.0, abs=1e-15)
    assert by_share[("lava-fixed", "emu-fixed")]["max_abs_error"] == 0.0
    report.write(str(tmp_path))
    stored = np.load(tmp_path / "trajectories.npz")
    assert np.array_equal(stored["mask"], mask)
    assert np.isnan(stored["lava-fixed"][:, ~mask]).all()  # float64 rule units with a mask
    assert np.array_equal(stored["lava-fixed"][:, mask], report.results["lava-fixed"].trajectory[:, mask])
    data = json.loads((tmp_path / "report.json").read_text())
    assert data["outcome"] == "passed"
    assert data["mask"]["present"] == int(mask.sum()) and data["mask"]["synapses"] == N * N


def test_update_counts_of_present_synapses_only():
    from neurodeploy.protocol import update_counts

    rule = load_rule(rule_path("stdp_pair"))
    trains = poisson(rule, 4, 3, 300, 30.0, 1)
    mask = np.array([[1, 0, 0, 0], [0, 1, 1, 0], [0, 0, 0, 1]], dtype=bool)
    counts = update_counts(rule, dataclasses.replace(trains, mask=mask))
    by_hand = [int(np.sum(trains.pre[j] | trains.post[i])) for i, j in zip(*np.nonzero(mask))]
    both = [int(np.sum(trains.pre[j] & trains.post[i])) for i, j in zip(*np.nonzero(mask))]
    assert counts["max_updates"] == max(by_hand) and counts["mean_updates"] == pytest.approx(np.mean(by_hand))
    assert counts["coincident_epochs"] == sum(both)


# --- the spike file ---------------------------------------------------------------------------------

@pytest.fixture
def rule():
    return load_rule(rule_path("stdp_pair"))


@pytest.fixture
def npz(tmp_path):
    def write(**arrays) -> str:
        path = tmp_path / "spikes.npz"
        np.savez(path, **arrays)
        return str(path)
    return write


PRE = np.zeros((2, 10), dtype=bool)
POST = np.zeros((3, 10), dtype=bool)


def spikes_error(path, rule) -> str:
    with pytest.raises(NeurodeployError) as info:
        load_spikes(path, rule)
    return str(info.value)


@pytest.mark.parametrize("mask, expected", [
    (np.ones((2, 3), dtype=bool), "spikes.npz: mask: must be a boolean array of shape (n_post, n_pre) = (3, 2) "
                                  "(got (2, 3))"),
    (np.ones(6, dtype=bool), "spikes.npz: mask: must be a boolean array of shape (n_post, n_pre) = (3, 2) (got (6,))"),
    (np.full((3, 2), 2), "spikes.npz: mask: must be boolean or 0/1 (got dtype int64)"),
    (np.full((3, 2), 0.5), "spikes.npz: mask: must be boolean or 0/1 (got dtype float64)"),
    (np.full((3, 2), "a"), "spikes.npz: mask: must be boolean or 0/1 (got dtype <U1)"),
    (np.zeros((3, 2), dtype=bool), "spikes.npz: mask: must keep at least one synapse (got all 3x2 False)"),
], ids=["transposed", "1-D", "value 2", "value 0.5", "strings", "empty"])
def test_mask_errors(npz, rule, mask, expected):
    assert spikes_error(npz(pre=PRE, post=POST, mask=mask), rule) == expected


def test_mask_is_read(npz, rule):
    mask = np.array([[1, 0], [0, 1], [1, 1]], dtype=np.int8)
    trains = load_spikes(npz(pre=PRE, post=POST, mask=mask), rule)
    assert trains.mask.dtype == bool and np.array_equal(trains.mask, mask == 1)
    everything = load_spikes(npz(pre=PRE, post=POST, mask=np.ones((3, 2))), rule)
    assert everything.mask is None  # all present: the all-to-all run, unchanged


def test_cli_mask_error_writes_nothing(capsys, tmp_path, npz):
    out = tmp_path / "out"
    spikes = npz(pre=PRE, post=POST, mask=np.zeros((2, 3), dtype=bool))
    with pytest.raises(SystemExit) as info:
        main(["verify", rule_path("stdp_pair"), "--out", str(out), "--spikes", spikes])
    captured = capsys.readouterr()
    assert info.value.code == 2 and captured.out == ""
    assert captured.err == ("neurodeploy: error: spikes.npz: mask: must be a boolean array of shape (n_post, n_pre) "
                            "= (3, 2) (got (2, 3))\n")
    assert not out.exists()


TRANSPOSED = ("neurodeploy: warning: spikes.npz: pre, post: read as 300 and 300 neurons x 5 steps (fewer steps "
              "than neurons): rasters are (neurons, steps); if they were saved (steps, neurons), save pre.T and "
              "post.T\n")


def test_transposed_rasters_warn(capsys, npz, rule):
    # the case: 5 neurons x 300 steps saved (steps, neurons)
    rng = np.random.default_rng(0)
    pre, post = rng.random((5, 300)) < 0.05, rng.random((5, 300)) < 0.05
    trains = load_spikes(npz(pre=pre.T, post=post.T), rule)
    assert (trains.n_pre, trains.n_post, trains.steps) == (300, 300, 5)
    assert capsys.readouterr().err == TRANSPOSED
    load_spikes(npz(pre=pre, post=post), rule)  # the right way round: silent
    assert capsys.readouterr().err == ""


def test_transposed_reading_confirmed_by_w0_or_mask(capsys, npz, rule):
    pre, post = np.zeros((300, 5), dtype=bool), np.zeros((300, 5), dtype=bool)
    load_spikes(npz(pre=pre, post=post, w0=np.full((300, 300), 0.5)), rule)
    load_spikes(npz(pre=pre, post=post, mask=~np.eye(300, dtype=bool)), rule)
    assert capsys.readouterr().err == ""


def test_one_raster_wide_is_no_warning(capsys, npz, rule):
    # a wide input layer, few outputs, a short run: fewer steps than pre neurons only
    load_spikes(npz(pre=np.zeros((400, 50), dtype=bool), post=np.zeros((2, 50), dtype=bool)), rule)
    assert capsys.readouterr().err == ""


def test_cli_transposed_warning_then_runs(capsys, tmp_path, npz):
    rng = np.random.default_rng(0)
    spikes = npz(pre=(rng.random((40, 8)) < 0.2), post=(rng.random((40, 8)) < 0.2))
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as info:
        main(["verify", rule_path("stdp_pair"), "--out", str(out), "--spikes", spikes, "--backends", "brian2,emu-float",
              "--quiet"])
    err = capsys.readouterr().err
    assert info.value.code in (0, 3)
    assert err.splitlines()[0] == ("neurodeploy: warning: spikes.npz: pre, post: read as 40 and 40 neurons x 8 steps "
                                   "(fewer steps than neurons): rasters are (neurons, steps); if they were saved "
                                   "(steps, neurons), save pre.T and post.T")
    assert (out / "report.json").exists()


# --- deploy(mask=...): a LearningSparse connection in a user's network ------------------------------

def _run_network(d, pre, post, sink_current: bool = False):
    from lava.magma.core.run_conditions import RunSteps
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.io.source import RingBuffer

    RingBuffer(data=pre.astype(float)).s_out.connect(d.conn.s_in)
    RingBuffer(data=post.astype(float)).s_out.connect(d.conn.s_in_bap)
    sink = Sink(shape=(post.shape[0],), buffer=pre.shape[1])
    d.conn.a_out.connect(sink.a_in)
    try:
        d.conn.run(condition=RunSteps(num_steps=pre.shape[1]), run_cfg=d.run_cfg())
        return d.weights(), np.asarray(sink.data.get())
    finally:
        d.conn.stop()


@pytest.mark.parametrize("mode", ["float", "fixed"])
def test_deploy_mask_absent_synapses_carry_no_current_and_never_learn(mode):
    """Only pre neuron 0 spikes, and the mask removes its synapses to posts 0 and 2: those posts get
    no current at all, while the all-to-all connection drives them; the present synapses learn
    exactly as in the all-to-all connection (bit for bit in fixed point)."""
    from lava.proc.sparse.process import LearningSparse

    rule = load_rule(rule_path("stdp_pair"))
    steps = 120
    rng = np.random.default_rng(4)
    pre = np.zeros((3, steps), dtype=bool)
    pre[0] = rng.random(steps) < 0.1
    post = rng.random((4, steps)) < 0.1
    mask = np.ones((4, 3), dtype=bool)
    mask[[0, 2], 0] = False
    masked = deploy(rule, shape=(4, 3), mode=mode, mask=mask)
    assert isinstance(masked.conn, LearningSparse)
    w_masked, current_masked = _run_network(masked, pre, post)
    w_dense, current_dense = _run_network(deploy(rule, shape=(4, 3), mode=mode), pre, post)
    assert np.all(current_masked[[0, 2]] == 0)
    assert np.all(current_dense[[0, 2]].sum(axis=1) > 0)  # the all-to-all connection does drive them
    np.testing.assert_array_equal(current_masked[[1, 3]], current_dense[[1, 3]])
    assert np.isnan(w_masked[~mask]).all()
    np.testing.assert_array_equal(w_masked[mask], w_dense[mask])
    assert np.ptp(w_dense[:, 0]) > 0  # the weights did move


@pytest.mark.parametrize("mask, message", [
    (np.ones((3, 4), dtype=bool), "deploy: mask: must be a boolean array of shape (n_post, n_pre) = (4, 3) "
                                  "(got (3, 4))"),
    (np.full((4, 3), 0.5), "deploy: mask: must be boolean or 0/1 (got dtype float64)"),
    (np.full((4, 3), "x"), "deploy: mask: must be boolean or 0/1 (got dtype <U1)"),
    (np.zeros((4, 3), dtype=bool), "deploy: mask: must keep at least one synapse (got all 4x3 False)"),
], ids=["transposed", "0.5", "strings", "empty"])
def test_deploy_mask_errors(mask, message):
    from neurodeploy import deploy as deploy_

    with pytest.raises(NeurodeployError) as info:
        deploy_(rule_path("stdp_pair"), shape=(4, 3), mask=mask)
    assert str(info.value) == message


def test_deploy_mask_all_present_is_the_dense_connection():
    from neurodeploy.lava.deployed.processes import BoundedLearningDense

    d = deploy(rule_path("stdp_pair"), shape=(2, 2), mask=np.ones((2, 2), dtype=np.int64))
    assert type(d.conn) is BoundedLearningDense


def test_cli_verify_with_a_mask(tmp_path, capsys):
    rule = load_rule(rule_path("stdp_pair"))
    trains = poisson(rule, 4, 4, 150, 40.0, 8)
    mask = ~np.eye(4, dtype=bool)
    spikes = tmp_path / "spikes.npz"
    np.savez(spikes, pre=trains.pre, post=trains.post, mask=mask)
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as info:
        main(["verify", rule_path("stdp_pair"), "--out", str(out), "--spikes", str(spikes),
              "--backends", "brian2,brian2-step,emu-float", "--quiet",
              "--fidelity", "0.5"])  # 40 Hz at dt = 1 ms: the engine's timing (tests/test_fidelity.py); the mask here
    printed = capsys.readouterr().out
    assert info.value.code == 0
    assert printed.splitlines()[0] == "rule stdp_pair: file:spikes.npz seed=None steps=150 synapses=4x4 (mask: 12 present)"
    assert "4x4 synapses (12 present: mask), t_epoch 1" in (out / "report.md").read_text()
    data = json.loads((out / "report.json").read_text())
    assert data["mask"]["present"] == 12 and data["outcome"] == "passed"
    stored = np.load(out / "trajectories.npz")
    plain = verify(rule, trains, backends=["brian2", "emu-float"])
    for backend in ("brian2", "emu-float"):
        assert np.isnan(stored[backend][:, ~mask]).all()
        assert np.array_equal(stored[backend][:, mask], plain.results[backend].trajectory[:, mask])


def test_compile_reads_a_mask_and_scales_the_same_traces(tmp_path, capsys):
    """The trace scales are per neuron: a mask leaves the fixed plan's impulses and dw unchanged."""
    rule = load_rule(rule_path("stdp_pair"))
    trains = poisson(rule, 4, 4, 400, 30.0, 5)
    np.savez(tmp_path / "plain.npz", pre=trains.pre, post=trains.post)
    np.savez(tmp_path / "masked.npz", pre=trains.pre, post=trains.post, mask=~np.eye(4, dtype=bool))
    plans = {}
    for name in ("plain", "masked"):
        with pytest.raises(SystemExit) as info:
            main(["compile", rule_path("stdp_pair"), "--target", "lava", "--out", str(tmp_path / name),
                  "--spikes", str(tmp_path / f"{name}.npz")])
        assert info.value.code == 0
        plans[name] = json.loads((tmp_path / name / "stdp_pair_plan.json").read_text())["fixed"]
    capsys.readouterr()
    assert plans["masked"]["dw"] == plans["plain"]["dw"]
    assert plans["masked"]["traces"] == plans["plain"]["traces"]


def test_masked_closed_loop_on_lava_equals_brian2_step():
    """A mask in the closed loop: Lava's LearningSparse drives the LIF through the present synapses only,
    as Brian2 connects only them (same post spikes, weights to 1e-12; the mask changes the spikes);
    the distribution verdict's ensemble runs on the emulator, which connects only them too, and passes."""
    from neurodeploy.protocol import closed_loop
    from neurodeploy.spec.loader import load_rule

    rule = load_rule(rule_path("stdp_pair"))
    trains = closed_loop(rule, 6, 3, 300, 40.0, 5.0, 20.0, 0.6, 2)
    mask = np.ones((3, 6), bool)
    mask[0, :3] = False
    mask[2, 5] = False
    masked = dataclasses.replace(trains, mask=mask)
    report = verify(rule, masked, ("brian2-step", "lava-float", "lava-fixed"))
    ref, cand = report.results["brian2-step"], report.results["lava-float"]
    assert np.array_equal(ref.info["post_spikes"], cand.info["post_spikes"])
    unmasked = verify(rule, trains, ("brian2-step",)).results["brian2-step"]
    assert not np.array_equal(unmasked.info["post_spikes"], ref.info["post_spikes"])
    assert np.array_equal(np.isnan(ref.trajectory), np.isnan(cand.trajectory))
    assert np.isnan(cand.trajectory[:, ~mask]).all()
    np.testing.assert_allclose(cand.trajectory[:, mask], ref.trajectory[:, mask], rtol=0, atol=1e-12)
    entries = [c for c in report.comparisons if c.get("share") == "distribution"]
    # the ensemble runs on the emulator, which connects only the mask's synapses (test_network_lava.py)
    assert entries and all(c["outcome"] == "passed" for c in entries)
