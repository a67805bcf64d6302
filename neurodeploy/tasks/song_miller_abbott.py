"""Competitive Hebbian learning (Song, Miller & Abbott 2000, Nat Neurosci 3:919; van Rossum, Bi & Turrigiano
2000, J Neurosci 20:8812), the literature network of :mod:`neurodeploy.literature` judged as a task.

Network (:func:`network_dict`): ``n_inputs`` Poisson afferents at ``rate`` onto one Lava LIF (``tau_u``,
``tau_v``, ``threshold`` in units of the weight range) through plastic synapses starting at the rule's
``w_init``; the inputs (:func:`member`) are drawn from the member's seed. The rule: the library's additive
``stdp_pair`` (``multiplicative: 0``, the default: depression outweighs potentiation by 5 %, and the paper's
weights split towards both bounds) or ``stdp_multiplicative`` with ``alpha = 2`` (``multiplicative: 1``: one
interior mode). The parameters are :data:`neurodeploy.literature.SMA`'s (250 inputs at 40 Hz, threshold 300),
50 s by default (``--size paper``: the 200 s of docs/literature.md).

Metrics per run (:data:`METRICS`, the weights as fractions of the range): the fraction of the weights within
10 % of the range of ``w_min`` and of ``w_max`` (SMA's split: both large; van Rossum's: both near 0), the
weights' mean and standard deviation, and the post rate over the last ``tail`` of the run. The curve: the
final weights, and the post rate in 1 s bins; the figure is the paper's: the final weight distribution of
every run of each side pooled, and the rate over time.

At dt = 1 ms ``brian2`` (the rule as written: the pre pathway first, so a same-step pair only potentiates)
gains ``A_plus`` per coincident pair, which cancels the additive rule's depression bias (docs/literature.md);
the engine's order (``brian2-step``, Lava, the emulator) keeps it. The verdict judges against the model as
written and the chain names that timing; ``--finer-dt`` measures the remedy.
"""
from __future__ import annotations

import os

import numpy as np

from neurodeploy.batch import rule_with
from neurodeploy.errors import NeurodeployError
from neurodeploy.library import LIBRARY
from neurodeploy.network import network_from_dict, reseed
from neurodeploy.tasks.runner import Setup, numbers, template_trains

NAME = "song-miller-abbott"
TITLE = "Competitive Hebbian learning (Song, Miller & Abbott 2000), stdp_pair on one Lava LIF"
METRICS = ("near_low", "near_high", "w_mean", "w_sd", "rate_hz")
#: One synapse of the default 250 (the fractions near a bound), one 8-bit step (weights), 0.1 Hz.
MARGIN_FLOORS = {"near_low": 1 / 250, "near_high": 1 / 250, "w_mean": 1 / 255, "w_sd": 1 / 255, "rate_hz": 0.1}
#: Near a bound: within this fraction of the weight range (as :func:`neurodeploy.verdict.distribution.run_statistics`).
NEAR = 0.1
DEFAULTS = {"steps": 50_000, "n_inputs": 250, "rate": 40.0, "threshold": 300.0, "tau_u_ms": 5.0, "tau_v_ms": 20.0,
            "multiplicative": 0, "alpha": 2.0, "tail": 0.25, "every": 1000}
SIZES = {"paper": {"steps": 200_000}}
_INT = ("steps", "n_inputs", "multiplicative", "every")


def _check(p: dict) -> dict:
    """The parameters, validated: one line naming the field and the problem."""
    out = numbers(NAME, DEFAULTS, p, _INT)
    for key in ("steps", "n_inputs", "rate", "threshold", "tau_u_ms", "tau_v_ms", "alpha", "every"):
        if out[key] <= 0:
            raise NeurodeployError(NAME, key, f"must be > 0 (got {out[key]!r})")
    if out["multiplicative"] not in (0, 1):
        raise NeurodeployError(NAME, "multiplicative", f"must be 0 (additive) or 1 (got {out['multiplicative']!r})")
    if not 0 < out["tail"] <= 1:
        raise NeurodeployError(NAME, "tail", f"must be in (0, 1] (got {out['tail']!r})")
    if out["rate"] > 1000:
        raise NeurodeployError(NAME, "rate", f"must be <= 1000 Hz at dt = 1 ms (got {out['rate']!r})")
    if out["every"] > out["steps"]:
        raise NeurodeployError(NAME, "every", f"must be <= steps {out['steps']} (got {out['every']})")
    return out


def rule_for(p: dict):
    """The additive ``stdp_pair`` as the library has it, or ``stdp_multiplicative`` with ``alpha``."""
    if p["multiplicative"]:
        return rule_with(os.path.join(LIBRARY, "stdp_multiplicative.yaml"), {"alpha": float(p["alpha"])})
    return rule_with(os.path.join(LIBRARY, "stdp_pair.yaml"), {})


def network_dict(p: dict, rule) -> dict:
    return {"network": "song_miller_abbott", "steps": int(p["steps"]), "seed": 1,
            "populations": {"inputs": {"poisson": int(p["n_inputs"]), "rate": f"{p['rate']} Hz"},
                            "neuron": {"lif": 1, "tau_u": f"{p['tau_u_ms']} ms", "tau_v": f"{p['tau_v_ms']} ms",
                                       "threshold": float(p["threshold"])}},
            "projections": [{"from": "inputs", "to": "neuron", "plastic": True, "w0": float(rule.weight.w_init)}]}


def setup(rule=None, **overrides) -> Setup:
    """The rule (:func:`rule_for` unless given), the network, the template trains and the parameters."""
    p = _check(dict(DEFAULTS, **overrides))
    rule = rule or rule_for(p)
    net = network_from_dict(network_dict(p, rule), "song_miller_abbott", rule)
    return Setup(rule, net, template_trains(rule, net), p)


def member(setup: Setup, seed: int):
    """The afferents' Poisson trains drawn from ``seed``; the network fixed."""
    return reseed(setup.rule, setup.trains, seed)


def evaluate(setup: Setup, member, trajectory, spikes) -> tuple:
    """The :data:`METRICS` and the curve, a (2, M) array: row 0 the final weights (fractions of the range),
    row 1 the post rate (Hz) in 1 s bins, NaN-padded."""
    rule, p = setup.rule, setup.params
    w = (np.asarray(trajectory)[-1, 0, : setup.net.n_inputs] - rule.weight.w_min) / rule.weight.range
    spikes = np.asarray(spikes, dtype=bool)[0]
    steps = spikes.size
    first = int(steps - round(p["tail"] * steps))
    rate = float(spikes[first:].sum() / max(1, steps - first) / rule.dt)
    metrics = {"near_low": float(np.mean(w <= NEAR)), "near_high": float(np.mean(w >= 1 - NEAR)),
               "w_mean": float(w.mean()), "w_sd": float(w.std()), "rate_hz": rate}
    per_bin = max(1, int(round(1.0 / rule.dt)))
    bins = steps // per_bin
    rates = spikes[: bins * per_bin].reshape(bins, per_bin).sum(axis=1) / (per_bin * rule.dt)
    curve = np.full((2, max(len(w), bins)), np.nan)
    curve[0, : len(w)] = w
    curve[1, :bins] = rates
    return metrics, curve


def figure(fig, setup: Setup, runs: dict) -> None:
    """Left: the final weights of every run of each side pooled (the paper's Fig. 2: bimodal for the additive
    rule, one interior mode for the multiplicative one). Right: the post rate over time, each run."""
    axes = fig.subplots(1, 2)
    colours = ("k", "tab:red", "tab:blue", "tab:green")
    bins = np.linspace(0, 1, 26)
    for (label, items), colour in zip(runs.items(), colours):
        finals = [np.asarray(c, dtype=float)[0] for _, c in items]
        if finals:
            w = np.concatenate([f[~np.isnan(f)] for f in finals])
            axes[0].hist(w, bins=bins, histtype="step", color=colour, density=True, label=f"{label} ({len(items)} runs)")
        for k, (_, c) in enumerate(items):
            r = np.asarray(c, dtype=float)[1]
            r = r[~np.isnan(r)]
            axes[1].plot(np.arange(1, len(r) + 1), r, color=colour, alpha=0.5, label=label if k == 0 else None)
    axes[0].set_xlabel("final weight (fraction of the range)")
    axes[0].set_ylabel("density (all runs)")
    axes[0].legend(fontsize=7)
    axes[1].set_xlabel("time (s)")
    axes[1].set_ylabel("post rate (Hz, 1 s bins)")
    axes[1].legend(fontsize=7)
