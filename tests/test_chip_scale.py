"""Chip scale: the rounding link block by block, and the fixed-point chain on a sample of post neurons.

The expectation of the blockwise rounding link is its previous, whole-connection implementation (kept
below verbatim as ``_old_floor_bias`` / ``_old_rounding_link``): the same entry, bit for bit, at one
block and at many (the rmse to 1e-12: a sum in another order). The sampled chain's expectation is the
full chain: its rows are the full run's rows (synapses do not interact), and the fidelity verdict,
judged on the recorded synapses, is unchanged.
"""
import dataclasses
import math

import numpy as np
import pytest

from conftest import rule_path, saturating_plan
from neurodeploy.backend import recorded_rows
from neurodeploy.compile.compilation import compile_plans
from neurodeploy.compile.lowering import lower
from neurodeploy.emu.batch import simulate_batch
from neurodeploy.emu.engine import _parse, shift_of, simulate
from neurodeploy.protocol import make_trains, poisson
from neurodeploy.spec.loader import load_rule
from neurodeploy.verdict import FAILED, MAX_TOLERANCE, NOT_CHECKED, PASSED
from neurodeploy.verdict import quantization
from neurodeploy.verdict.quantization import (ALPHA, CHECKPOINTS, ENSEMBLE_SIZE, SIGMA_FLOOR, constants_link,
                                              ensemble_seeds,
                                              rounding_blocks, rounding_link)


# -- the previous implementation (whole connection at once), verbatim ------------------------------------------
def _old_floor_bias(plan, trains, rule, rows) -> np.ndarray:
    """Largest downward bias (Lava units) of shifted products' floors up to each recorded row: (rows, n_post, n_pre)."""

    lava_rule, products = _parse(plan, 7)
    e = rule.t_epoch
    steps = trains.steps
    epoch_end = np.zeros(steps, dtype=bool)
    epoch_end[e - 1::e] = True

    def cum_epochs(raster):
        n_epochs = -(-steps // e)
        pad = n_epochs * e - steps
        fired = np.pad(raster, ((0, 0), (0, pad))).reshape(raster.shape[0], n_epochs, e).any(axis=2)
        # count at step t: epochs ended by t with a spike
        per_step = np.zeros((raster.shape[0], steps), dtype=np.int64)
        ends = np.flatnonzero(epoch_end)
        per_step[:, ends] = fired[:, :ends.size]
        return np.cumsum(per_step, axis=1)[:, rows]

    out = np.zeros((rows.size, trains.n_post, trains.n_pre))
    cum_pre = cum_post = None
    for p in products:
        shift = shift_of(p)
        if not shift:
            continue
        per_eval = (1 - 2.0 ** -shift) * 2.0 ** (p.s_exp - 7)
        if p.dependency == "x0":
            cum_pre = cum_epochs(trains.pre) if cum_pre is None else cum_pre
            out += per_eval * cum_pre.T[:, None, :]
        elif p.dependency == "y0":
            cum_post = cum_epochs(trains.post) if cum_post is None else cum_post
            out += per_eval * cum_post.T[:, :, None]
        else:  # u epochs: every 2^k-th (Lava's uk: int(t / t_epoch) % 2^k == 0)
            k = lava_rule.decimate_exponent or 0
            u_end = epoch_end & ((np.arange(1, steps + 1) // e) % 2 ** k == 0)
            out += per_eval * np.cumsum(u_end)[rows][:, None, None]
    return out


def _old_rounding_link(rule, plan, trains, context, single=None, k: int = ENSEMBLE_SIZE, supplied=None) -> dict:
    """The rounding link: ``k`` emu-fixed runs against R, and ``single`` (a fixed run) in the envelope.

    The ``k`` runs are one batched emulator call (:func:`neurodeploy.emu.batch.simulate_batch`),
    recorded at the checkpoints only; ``single``: a :class:`~neurodeploy.backend.RunResult` (rule
    units; its recorded steps and synapses) or a (steps, n_post, n_pre) array of every step;
    ``supplied``: the y traces a three-factor plan gets from the post side (integers; the same in every run)."""
    from scipy import stats


    R, stride = context["R"], context["stride"]
    s_w, w_range = plan.weight_scale, rule.weight.range
    lo, hi = plan.w_lava_bounds
    w0 = plan.weights_to_lava(trains.w0)
    R_lava = R / s_w
    touched = (R_lava <= lo + 1e-9) | (R_lava >= hi - 1e-9)
    touched = np.maximum.accumulate(touched, axis=0)
    seeds = ensemble_seeds(trains.seed, k)
    rows_all = recorded_rows(trains.steps, stride)
    pick = np.unique(np.linspace(0, R.shape[0] - 1, min(CHECKPOINTS, R.shape[0])).round().astype(int))
    members, first = simulate_batch(plan, w0, trains.pre, trains.post, seeds, record_rows=rows_all[pick],
                                    limits=(lo, hi), supplied=supplied)
    mean_p = np.empty(members.shape[1:])
    var_p = np.zeros(members.shape[1:])
    for r in range(members.shape[1]):  # one checkpoint at a time: K x synapses float64
        m = members[:, r].astype(float)
        mean_p[r] = m.mean(axis=0)
        if k > 1:
            var_p[r] = m.var(axis=0, ddof=1)
    del members
    ok = ~(touched[pick] | (first[None] <= rows_all[pick][:, None, None]))
    if trains.mask is not None:
        ok &= trains.mask[None]  # only the synapses that exist
    single_lava = None
    if single is not None:
        if isinstance(single, np.ndarray):
            s_rows, s_traj, posts, pres = np.arange(single.shape[0]), single, None, None
        else:
            s_rows, s_traj, posts, pres = single.rows, single.trajectory, single.posts, single.pres
        s_lava = np.rint(s_traj / s_w)
        at = np.maximum.accumulate((s_lava <= lo) | (s_lava >= hi), axis=0)
        idx = np.searchsorted(s_rows, rows_all[pick])
        idx_c = np.minimum(idx, s_rows.size - 1)
        has = (idx < s_rows.size) & (s_rows[idx_c] == rows_all[pick])  # checkpoints the single run recorded
        grid = np.ix_(np.arange(trains.n_post) if posts is None else posts,
                      np.arange(trains.n_pre) if pres is None else pres)
        single_lava = np.full(ok.shape, np.nan)
        single_at = np.zeros(ok.shape, dtype=bool)
        for r in np.flatnonzero(has):
            single_lava[r][grid] = s_lava[idx_c[r]]
            single_at[r][grid] = at[idx_c[r]]
        ok &= ~single_at
    mean, var = mean_p, var_p
    bias = _old_floor_bias(plan, trains, rule, rows_all[pick])
    env_ok = None if single_lava is None else ok & ~np.isnan(single_lava)
    n_tests = int(ok.sum()) + (0 if env_ok is None else int(env_ok.sum()))
    entry = {"reference": "float: fixed constants", "candidate": f"emu-fixed x{k}",
             "share": "rounding", "ensemble_size": k, "compared_every": stride,
             "checkpoints": int(pick.size), "synapse_steps_tested": int(ok.sum()),
             "synapse_steps_left_out_at_limit": int((~ok).sum()), "alpha": ALPHA,
             "ensemble_run": "one batched emulator call (simulate_batch)"}
    if n_tests == 0:
        entry.update(outcome=NOT_CHECKED, passed=False, tolerance=None, max_abs_error_normalized=None,
                     rmse_normalized=None, message="every synapse reached an 8-bit limit: nothing left to test")
        return entry
    q = float(stats.t.ppf(1 - ALPHA / (2 * n_tests), k - 1))
    sd = np.sqrt(var + SIGMA_FLOOR ** 2)
    se = sd / math.sqrt(k)
    d = mean - R_lava[pick]
    # inside [-bias - q se, q se]: distance beyond, in standard errors
    over = np.maximum(d - q * se, -bias - q * se - d)
    z_mean = np.where(ok, np.where(d > 0, d / se, np.maximum(0, -d - bias) / se), 0.0)
    mean_fail = ok & (over > 0)
    entry.update(
        max_abs_error_normalized=float(np.max(np.abs(d[ok]))) * s_w / w_range,
        rmse_normalized=float(np.sqrt(np.mean(d[ok] ** 2))) * s_w / w_range,
        tolerance={"max_abs": float(np.max((q * se + bias)[ok])) * s_w / w_range, "rmse": None,
                   "kind": f"ensemble mean within q={q:.3g} standard errors (+ floor bias)"},
        q=q, largest_z_mean=float(z_mean.max()), floor_bias_max_lava=float(bias.max()) if bias.size else 0.0,
        ensemble_sd_max_normalized=float(np.sqrt(var).max()) * s_w / w_range)
    if rows_all[pick][-1] == trains.steps - 1:  # the final step: for curves (popped by the harness)
        entry["_final"] = {"mean": mean[-1] * s_w, "k": k,
                           "se": np.sqrt(var[-1] + SIGMA_FLOOR ** 2) / math.sqrt(k) * s_w}
    problems = []
    if mean_fail.any():
        r, i, j = np.argwhere(mean_fail)[np.argmax(np.where(mean_fail, over, -np.inf)[mean_fail])]
        problems.append(f"ensemble mean off the realised-constants run at step {rows_all[pick][r]} synapse ({i}, {j}): "
                        f"{d[r, i, j]:+.3g} Lava units, bound [{-bias[r, i, j] - q * se[r, i, j]:.3g}, "
                        f"{q * se[r, i, j]:.3g}] ({int(mean_fail.sum())} synapse-steps)")
    if single_lava is not None:
        width = q * sd * math.sqrt(1 + 1 / k)
        dev = np.nan_to_num(np.abs(single_lava - mean))
        env_fail = env_ok & (dev > width)
        entry["envelope"] = {"max_deviation_in_widths": float(np.max(np.where(env_ok, dev / width, 0))),
                             "synapse_steps_outside": int(env_fail.sum()), "synapse_steps_tested": int(env_ok.sum())}
        if env_fail.any():
            r, i, j = np.argwhere(env_fail)[0]
            problems.append(f"the single fixed run leaves the ensemble's envelope at step {rows_all[pick][r]} synapse "
                            f"({i}, {j}): {dev[r, i, j]:.3g} Lava units from the mean, width {width[r, i, j]:.3g}")
    if problems:
        entry.update(outcome=FAILED, message="; ".join(problems))
    elif entry["tolerance"]["max_abs"] > MAX_TOLERANCE:
        entry.update(outcome=NOT_CHECKED, message=f"the ensemble's bound {entry['tolerance']['max_abs']:.3g} is above "
                                                  f"{MAX_TOLERANCE:g} of the range (tolerance too wide)")
    else:
        entry["outcome"] = PASSED
    entry["passed"] = entry["outcome"] == PASSED
    return entry



# -- the blockwise rounding link equals it ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def pair():
    return load_rule(rule_path("stdp_pair"))


def _saturating(rule, plans):
    """Impulses of 127 (the 7-bit traces clip, the float realisation does not): the ensemble mean fails."""
    return saturating_plan(plans["fixed"])


def _case(rule, name):
    """(plan, trains, single) of a case: passing, a single run off the envelope (an array), a recorded
    sub-grid (a RunResult), a mask, a saturating plan (the mean fails)."""
    from neurodeploy.backend import RunResult

    trains = poisson(rule, 9, 12, 1500, 20.0 if name == "saturating" else 10.0, 4)
    if name == "mask":
        trains = dataclasses.replace(trains, mask=np.random.default_rng(1).random((12, 9)) < 0.6)
    plans = compile_plans(rule, trains)
    plan = _saturating(rule, plans) if name == "saturating" else plans["fixed"]
    single = simulate(plan, plan.weights_to_lava(trains.w0), trains.pre, trains.post, scale=plan.weight_scale)
    if name == "off the envelope":
        single[700:, 4, 7] += 12 * plan.weight_scale
        single[900:, 10, 2] -= 12 * plan.weight_scale
    if name == "sub-grid":
        rows = recorded_rows(trains.steps, 7)
        posts, pres = np.array([1, 5, 6, 11]), np.array([0, 3, 8])
        single = RunResult("emu-fixed", single[rows][:, posts][:, :, pres], 1.0, {}, rows=rows, posts=posts, pres=pres)
    return plan, trains, single


def _same(old: dict, new: dict, exact_rmse: bool = True):
    assert set(old) == set(new), set(old) ^ set(new)
    for key, value in old.items():
        if key == "ensemble_run":
            continue
        if key == "rmse_normalized" and not exact_rmse:
            assert math.isclose(new[key], value, rel_tol=1e-12), (new[key], value)
        elif key == "_final":
            assert all(np.array_equal(value[k], new[key][k]) for k in value)
        else:
            assert new[key] == value, (key, new[key], value)
    assert list(old) == list(new)  # the report's order of fields


@pytest.mark.parametrize("name", ["passing", "off the envelope", "sub-grid", "mask", "saturating"])
def test_blockwise_rounding_link_equals_the_whole_connection(pair, name):
    plan, trains, single = _case(pair, name)
    _, context = constants_link(pair, lower(pair, approximate=True), plan, trains)
    old = _old_rounding_link(pair, plan, trains, context, single, 16)
    assert len(rounding_blocks(trains.n_post, trains.n_pre, 16, CHECKPOINTS)) == 1  # the test sizes: one block
    whole = rounding_link(pair, plan, trains, context, single, 16)
    _same(old, whole)
    assert whole["ensemble_run"] == old["ensemble_run"]
    for rows in (1, 5):  # blocks of 1 and of 5 post neurons (12 posts: 12 blocks, and 5 + 5 + 2)
        per_row = trains.n_pre * (16 * (2 + 2 * whole["checkpoints"] + 8) + 8 * 16 * whole["checkpoints"])
        blocks = rounding_blocks(trains.n_post, trains.n_pre, 16, whole["checkpoints"], rows * per_row)
        assert [b - a for a, b in blocks] == ([1] * 12 if rows == 1 else [5, 5, 2])
        _same(old, rounding_link(pair, plan, trains, context, single, 16, block_bytes=rows * per_row), exact_rmse=False)
    expected = {"passing": PASSED, "off the envelope": FAILED, "sub-grid": PASSED, "mask": PASSED,
                "saturating": FAILED}[name]
    assert old["outcome"] == expected, old.get("message")


# -- the chain on a sample of post neurons -----------------------------------------------------------------------

def test_chain_posts_keep_the_recorded_ones_within_the_budget(pair):
    trains = poisson(pair, 30, 40, 1000, 10.0, 2)
    assert quantization.chain_posts(trains, [3], budget=30 * 40 * 1000) is None  # within the budget: every post
    rows = quantization.chain_posts(trains, [3, 17, 17, 38], budget=30 * 1000 * 10)
    assert set([3, 17, 38]) <= set(rows.tolist()) and 10 <= rows.size <= 13 and np.all(np.diff(rows) > 0)
    assert quantization.chain_posts(trains, np.arange(40), budget=30 * 1000 * 10) is None  # every post kept


def test_sampled_chain_leaves_the_fidelity_verdict_unchanged(pair, monkeypatch):
    """verify with the chain's budget lowered to 10 of 40 post neurons: the fidelity verdict (judged on the
    recorded synapses) is the full chain's, number for number; the links say what they sampled."""
    from neurodeploy.verification import verify

    trains = poisson(pair, 30, 40, 2000, 10.0, 5)

    def run():
        report = verify(pair, trains, backends=["brian2", "emu-fixed"], record_synapses=120)
        return {c["share"]: c for c in report.comparisons}, report

    full, _ = run()
    monkeypatch.setattr(quantization, "CHAIN_SYNAPSE_STEPS", 30 * 2000 * 10)
    sampled, _ = run()
    fid_full, fid = full["fidelity"], sampled["fidelity"]
    for key in ("gain", "net_error", "correlation", "scatter", "candidate_learned", "attribution", "tolerance",
                "outcome", "synapses"):
        assert fid[key] == fid_full[key], key
    assert "sampled" not in full["rounding"] and "sampled" not in full["constants"]
    for share in ("constants", "rounding"):
        s = sampled[share]["sampled"]
        assert s["of_posts"] == 40 and s["pres"] == 30 and 10 <= s["posts"] < 40 and s["synapses"] == 30 * s["posts"]
    assert sampled["rounding"]["outcome"] == full["rounding"]["outcome"] == "passed"
    assert sampled["rounding"]["synapse_steps_tested"] < full["rounding"]["synapse_steps_tested"]


@pytest.mark.parametrize("epoch", [1, 3])
def test_update_counts_by_hand(pair, epoch):
    """The per-synapse update counts (a sparse product since this round) against a loop over synapses."""
    from neurodeploy.protocol import update_counts

    rule = dataclasses.replace(pair, t_epoch=epoch)
    trains = poisson(rule, 20, 30, 1001, 40.0, 7)
    pad = -trains.steps % epoch

    def epochs(raster):
        return np.pad(raster, ((0, 0), (0, pad))).reshape(raster.shape[0], -1, epoch).any(axis=2)

    pre, post = epochs(trains.pre), epochs(trains.post)
    updates = [int(np.sum(pre[j] | post[i])) for i in range(30) for j in range(20)]
    both = [int(np.sum(pre[j] & post[i])) for i in range(30) for j in range(20)]
    counts = update_counts(rule, trains)
    assert counts["max_updates"] == max(updates) and counts["mean_updates"] == pytest.approx(np.mean(updates), rel=1e-12)
    assert counts["coincident_epochs"] == sum(both) and counts["max_coincident_per_synapse"] == max(both)
    assert counts["epochs"] == pre.shape[1]
