"""Lowering, quantization plan and the Lava backends against the Brian2 step model."""
import itertools
import json
import os

import numpy as np
import pytest

from conftest import ROOT, raster, rule_path
from neurodeploy.cli import main
from neurodeploy.verification import verify
from neurodeploy.compile.compilation import compile_plans
from neurodeploy.compile.plan import EXPONENTS, MANTISSAS, TRACE_MAX, nearest_scale
from neurodeploy.protocol import SpikeTrains, default_trains, poisson
from neurodeploy.spec.loader import load_rule

GOLDEN = os.path.join(ROOT, "tests", "golden")


@pytest.mark.parametrize("name", ["stdp_pair", "ltp_ltd_soft"])
@pytest.mark.parametrize("mode", ["float", "fixed"])
def test_lowering_strings_golden(name, mode):
    rule = load_rule(rule_path(name))
    plan = compile_plans(rule, default_trains(rule))[mode]
    with open(os.path.join(GOLDEN, f"{name}_{mode}.dw")) as handle:
        assert plan.dw == handle.read().strip()


@pytest.mark.parametrize("value", [0.01, -0.0105, 0.0622, 1.0, 3.3, -7.9, 200.0, 1e-3, 0.3])
def test_nearest_scale_is_the_best_representable(value):
    s, e = nearest_scale(value)
    best = min(abs(m * 2.0 ** x - value) for m, x in itertools.product(MANTISSAS, EXPONENTS))
    assert abs(s * 2.0 ** e - value) == best
    assert -8 <= s <= 7 and -7 <= e <= 8


@pytest.mark.parametrize("name", ["stdp_pair", "ltp_ltd_soft"])
def test_plans_make_the_rule_constants(name):
    """Float: every constant exact. Fixed: whole impulses, peaks in range, constants within 1%."""
    rule = load_rule(rule_path(name))
    trains = default_trains(rule)
    plans = compile_plans(rule, trains)
    assert plans["float"].max_rel_error < 1e-12
    fixed = plans["fixed"]
    assert fixed.max_rel_error < 0.01
    for t in fixed.traces:
        assert t.impulse == int(t.impulse) and 1 <= t.impulse <= TRACE_MAX
        assert t.peak_lava <= TRACE_MAX
    # the realised constant, mapped back to rule units, is the rule's constant within the stated error
    for p in fixed.products:
        k = 1.0
        for f in p.factors:
            if f != "w":
                k *= next(t.scale for t in fixed.traces if t.slot == f)
        back = p.realised * 2.0 ** -p.shift * k * fixed.weight_scale ** (1 - p.factors.count("w"))
        assert back == pytest.approx(p.coefficient, rel=p.rel_error + 1e-12)


def test_lava_pair_timing_matches_brian2_step():
    """A single pair through Lava: the weight changes at the same step and by the same amount."""
    rule = load_rule(rule_path("stdp_pair"))
    trains = SpikeTrains(raster(1, 40, [(0, 5)]), raster(1, 40, [(0, 12)]), np.full((1, 1), 0.5), "pair")
    report = verify(rule, trains, ("brian2-step", "lava-float"))
    ref = report.results["brian2-step"].trajectory[:, 0, 0]
    got = report.results["lava-float"].trajectory[:, 0, 0]
    assert np.max(np.abs(ref - got)) < 1e-12
    assert got[11] == 0.5 and got[12] > 0.5


@pytest.mark.parametrize("name,seed", [("stdp_pair", 1), ("stdp_pair", 11), ("ltp_ltd_soft", 5)])
def test_all_four_backends_agree(name, seed):
    rule = load_rule(rule_path(name))
    trains = poisson(rule, 8, 6, 1000, 15.0, seed)
    report = verify(rule, trains)
    by_share = {c["share"]: c for c in report.comparisons}
    assert set(report.results) == {"brian2", "brian2-step", "lava-float", "lava-fixed"}
    assert by_share["lowering"]["max_abs_error_normalized"] <= 1e-9
    # the fixed-point chain: the realised constants and the rounding both hold
    assert by_share["constants"]["outcome"] == "passed" and by_share["rounding"]["outcome"] == "passed"
    quant = next(m for m in report.measured if m["share"] == "quantization")
    assert quant["rmse_normalized"] <= 0.02
    # lava-fixed is on the 8-bit grid of the plan
    w_lava = report.results["lava-fixed"].trajectory / report.plans["fixed"].weight_scale
    assert np.allclose(w_lava, np.rint(w_lava), atol=1e-9)
    assert report.passed


def test_verify_cli_defaults_stdp_pair(tmp_path, capsys):
    """The spine's acceptance run: defaults with --seed 3."""
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_info:
        main(["verify", rule_path("stdp_pair"), "--out", str(out), "--seed", "3"])
    assert exit_info.value.code == 0
    report = json.loads((out / "report.json").read_text())
    for key in ("rule", "steps", "n_pre", "n_post", "seed", "backends", "passed", "quantization_plan", "comparisons"):
        assert key in report
    assert (report["steps"], report["n_pre"], report["n_post"], report["seed"]) == (2000, 10, 10, 3)
    shares = {c["share"]: c for c in report["comparisons"]}
    assert shares["lowering"]["max_abs_error_normalized"] <= 1e-9
    # 2 fidelity + 5 links on the protocol, and the STDP window added (2 window + 2 window curve entries)
    assert report["outcome"] == "passed" and report["counts"] == {"passed": 11, "failed": 0, "not checked": 0}
    assert {"fidelity", "timing", "lowering", "constants", "rounding", "window", "window curve"} == set(shares)
    assert {c["candidate"] for c in report["comparisons"] if c["share"] == "window"} == {"emu-float", "emu-fixed"}
    fidelity = {c["candidate"]: c for c in report["comparisons"] if c["share"] == "fidelity"}
    assert set(fidelity) == {"lava-float", "lava-fixed"}  # each deployment judged against brian2
    assert all(c["reference"] == "brian2" and c["outcome"] == "passed" for c in fidelity.values())
    assert report["comparisons"][0]["share"] == "fidelity"  # the report opens with what is learned
    q = next(m for m in report["measured"] if m["share"] == "quantization")
    assert q["rmse_normalized"] <= 0.02
    with np.load(out / "trajectories.npz") as data:
        names = [n for n in data.files if ":" not in n]
        assert sorted(names) == sorted(["brian2", "brian2-step", "lava-float", "lava-fixed"])
        for name in names:
            assert data[name].shape == (2000, 10, 10)
        # fixed point as the Lava integers, the scale alongside
        assert data["lava-fixed"].dtype == np.int16 and data["lava-fixed:scale"] > 0
    assert "PASSED" in capsys.readouterr().out
    assert "Fixed point: constants" in (out / "report.md").read_text()


def test_same_seed_same_trajectories(tmp_path):
    rule = load_rule(rule_path("stdp_pair"))
    a = verify(rule, poisson(rule, 4, 3, 300, 20.0, 9))
    b = verify(rule, poisson(rule, 4, 3, 300, 20.0, 9))
    for name in a.results:
        assert np.array_equal(a.results[name].trajectory, b.results[name].trajectory), name
    a.write(str(tmp_path / "a"))
    b.write(str(tmp_path / "b"))
    with np.load(tmp_path / "a" / "trajectories.npz") as x, np.load(tmp_path / "b" / "trajectories.npz") as y:
        for name in x.files:
            assert np.array_equal(x[name], y[name])


def test_spikes_file_drives_all_backends(tmp_path):
    rule = load_rule(rule_path("stdp_pair"))
    rng = np.random.default_rng(4)
    pre, post = rng.random((3, 400)) < 0.03, rng.random((2, 400)) < 0.03
    w0 = rng.uniform(0.2, 0.8, (2, 3))
    np.savez(tmp_path / "spikes.npz", pre=pre, post=post, w0=w0)
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_info:
        main(["verify", rule_path("stdp_pair"), "--out", str(out), "--spikes", str(tmp_path / "spikes.npz"),
              "--backends", "brian2,brian2-step,lava-float"])
    assert exit_info.value.code == 0
    with np.load(out / "trajectories.npz") as data:
        assert data["brian2"].shape == (400, 2, 3)
        # before any spike the weights are the file's w0
        first = int(min(np.argmax(pre.any(0)), np.argmax(post.any(0))))
        assert np.allclose(data["lava-float"][max(first - 1, 0)], w0) or first == 0


def test_a_wider_mantissa_floors_finer_on_lavas_mac():
    """Lava's fixed-point product ``((w y S) >> shift) << (E + 7)`` over every 8-bit weight and 7-bit trace:
    ``-2^-6`` realised as ``-2 2^-7`` (what the plan now chooses for ltp_ltd_soft's ``x0 w y1``, shift 5)
    has at most the error of ``-1 2^-6`` everywhere and about half its mean bias (the same constant); with
    no shift (``x0 y1``: 11 bits) equal realisations give the same integers, so the narrow one is kept.
    The widening stops where the int32 MAC could overflow (four factors: 2^30 x |S|)."""
    from neurodeploy.compile.plan import product_shift, widest_mantissa

    w, y = np.meshgrid(np.arange(256), np.arange(128), indexing="ij")
    shift = product_shift(("w", "y1"), "fixed")
    assert shift == 5

    def mac(s, e, a, b):
        return ((a * b * s) >> shift) << (e + 7)

    exact = w * y * (-1) * 2.0 ** (-6 + 7 - shift)
    narrow, wide = mac(-1, -6, w, y) - exact, mac(-2, -7, w, y) - exact
    assert np.all(np.abs(wide) <= np.abs(narrow)) and np.any(np.abs(wide) < np.abs(narrow))
    assert abs(wide.mean()) < 0.55 * abs(narrow.mean())  # the floor of one bit finer: about half the bias
    assert nearest_scale(-2.0 ** -6, widest_mantissa(("w", "y1"), "fixed")) == (-2, -7)  # E >= -7 stops it
    assert nearest_scale(-2.0 ** -4, widest_mantissa(("w", "y1", "y1"), "fixed")) == (-8, -7)
    assert nearest_scale(2.0 ** -4, widest_mantissa(("w", "y1", "y1"), "fixed")) == (4, -6)  # S <= 7
    assert widest_mantissa(("y1",), "fixed") == 0 and nearest_scale(2.0 ** -4, 0) == (1, -4)
    y1 = np.arange(128)
    assert np.array_equal(((y1 * 1) >> 0) << (-4 + 7), ((y1 * 4) >> 0) << (-6 + 7))
    assert widest_mantissa(("w", "y1", "y2", "x1"), "fixed") == 1  # 2^30: S = 2 would reach 2^31
    assert widest_mantissa(("w", "y1"), "float") == 0
