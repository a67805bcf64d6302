"""Distal reward (Izhikevich 2007, Cereb Cortex 17:2443, Fig. 1), reduced to Lava LIF neurons and the
library's ``rstdp`` rule (parameters from the author's daspnet.m).

Network (:func:`network_dict`): a cue input (``cue``, one Poisson neuron) and ``inputs`` (Poisson) onto
``exc`` LIF neurons through plastic rstdp synapses (all to all: Lava 0.10's LearningSparse cannot run a
three-factor rule), and a static random drive from ``noise`` (Poisson, p 0.3) that makes the LIF neurons
differ. The rewarded synapse is ``cue -> exc[0]``: each time ``exc[0]`` fires 1..10 ms after the cue,
dopamine (a unit reward into the rule's ``da`` trace, every neuron) follows 1-3 s later
(:class:`neurodeploy.compile.reward.DistalReward`). Its controls: the cue's synapses onto the other LIF
neurons (same presynaptic train, same start) and every other plastic synapse.

Metrics per run (:data:`METRICS`): the rewarded synapse's final weight and rank (fraction of the other
plastic synapses above it), the controls' mean weight, the others' mean and spread, the post rate and the
number of rewards. The verdict: reference (``brian2``) and deployment (``emu-fixed``, bit for bit
``lava-fixed``, proven on a window) as ensembles over input seeds, one two-sample test per metric
(:func:`neurodeploy.verdict.distribution.two_sample`: Brunner-Munzel by permutation, family-wise alpha 1%), margins
from the fidelity tolerance of the reference ensemble only.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from neurodeploy.compile.reward import DistalReward
from neurodeploy.errors import NeurodeployError
from neurodeploy.library import LIBRARY
from neurodeploy.network import network_from_dict, reseed
from neurodeploy.spec.loader import load_rule
from neurodeploy.tasks.runner import Setup, template_trains

NAME = "distal-reward"
TITLE = "Distal reward (Izhikevich 2007, Fig. 1), rstdp on Lava LIF neurons, reduced"
METRICS = ("rewarded_w", "rewarded_rank", "controls_w", "others_w_mean", "rate_hz", "rewards")
#: Weights are fractions of the range: a margin of at least one 8-bit step; a count: at least one event.
MARGIN_FLOORS = {"rewarded_w": 1 / 255, "controls_w": 1 / 255, "others_w_mean": 1 / 255, "rewards": 1.0}
DEFAULTS = {"steps": 20_000, "n_inputs": 50, "input_rate": 2.0, "cue_rate": 5.0, "n_exc": 4, "threshold": 9.0,
            "cue_w0": 0.5, "w0": 0.1, "noise": 40, "noise_rate": 10.0, "noise_weight": 0.25,
            "delay_min": 1000, "delay_max": 3000, "window": 10, "amount": 1.0, "every": 100}
SIZES = {"paper": {"steps": 600_000}}


def network_dict(p: dict) -> dict:
    return {"network": "distal_reward", "steps": int(p["steps"]), "seed": 1,
            "populations": {"cue": {"poisson": 1, "rate": f"{p['cue_rate']} Hz"},
                            "inputs": {"poisson": int(p["n_inputs"]), "rate": f"{p['input_rate']} Hz"},
                            "noise": {"poisson": int(p["noise"]), "rate": f"{p['noise_rate']} Hz"},
                            "exc": {"lif": int(p["n_exc"]), "tau_u": "5 ms", "tau_v": "20 ms",
                                    "threshold": float(p["threshold"])}},
            "projections": [{"from": "cue", "to": "exc", "plastic": True, "w0": float(p["cue_w0"])},
                            {"from": "inputs", "to": "exc", "plastic": True, "w0": float(p["w0"])},
                            {"from": "noise", "to": "exc", "weight": float(p["noise_weight"]), "p": 0.3}]}


def setup(rule=None, **overrides) -> Setup:
    """The rule (the library's ``rstdp``), the network, the template trains with the reward schedule."""

    unknown = sorted(set(overrides) - set(DEFAULTS))
    if unknown:
        raise NeurodeployError(NAME, unknown[0], f"unknown parameter (known: {', '.join(sorted(DEFAULTS))})")
    for key, value in overrides.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise NeurodeployError(NAME, key, f"must be a finite number >= 0 (got {value!r})")
    p = dict(DEFAULTS, **overrides)
    rule = rule or load_rule(f"{LIBRARY}/rstdp.yaml")
    net = network_from_dict(network_dict(p), "distal_reward", rule)
    schedule = DistalReward(pre=0, post=0, window=int(p["window"]), delay_min=int(p["delay_min"]),
                            delay_max=int(p["delay_max"]), amount=float(p["amount"]), seed=0)
    trains = template_trains(rule, net)
    trains = dataclasses.replace(trains, reward=np.zeros_like(trains.reward), reward_schedule=schedule)
    return Setup(rule, net, trains, p)


def member(setup: Setup, seed: int):
    """The inputs (cue, inputs, noise: Poisson) drawn from ``seed``; the network and the schedule fixed."""
    return reseed(setup.rule, setup.trains, seed)


def plastic_block(net, w):
    """(…, n_exc, n_plastic_sources) of a (…, n_lif, n_src) trajectory: the cue then the inputs."""
    return w[..., :, : 1 + net.population("inputs").n]


def evaluate(setup: Setup, member, trajectory, spikes) -> tuple:
    """The metrics (fractions of the weight range) and the rewarded synapse's weight over time."""
    rule, net = setup.rule, setup.net
    z = (plastic_block(net, np.asarray(trajectory)) - rule.weight.w_min) / rule.weight.range
    final = z[-1]
    rewarded = float(final[0, 0])
    others = final.reshape(-1)[1:]
    schedule = member.reward_schedule.fresh(net.n_lif, member.steps)
    inputs = member.pre[: net.n_inputs]
    for k in range(member.steps):
        schedule.observe(k, np.concatenate([inputs[:, k], spikes[:, k]]), spikes[:, k])
    metrics = {"rewarded_w": rewarded, "rewarded_rank": float(np.mean(others > rewarded)),
               "controls_w": float(final[1:, 0].mean()), "others_w_mean": float(others.mean()),
               "rate_hz": float(spikes.sum() / spikes.shape[0] / (member.steps * rule.dt)),
               "rewards": float(len(schedule.events))}
    return metrics, z[:, 0, 0]


def figure(fig, setup: Setup, runs: dict) -> None:
    """Left: the rewarded synapse over time; right: final weights, rewarded vs the cue's controls vs the others."""
    axes = fig.subplots(1, 2)
    every = int(setup.params["every"]) * setup.rule.dt
    colours = ("k", "tab:red", "tab:blue", "tab:green")
    for (label, items), colour in zip(runs.items(), colours):
        for k, (_, curve) in enumerate(items):
            t = (np.arange(len(curve)) + 1) * every
            axes[0].plot(t, curve, color=colour, alpha=0.6, label=label if k == 0 else None)
    axes[0].set_xlabel("time (s)")
    axes[0].set_ylabel("rewarded synapse (fraction of w_max)")
    axes[0].legend()
    for j, ((label, items), colour) in enumerate(zip(runs.items(), colours)):
        for i, name in enumerate(("rewarded_w", "controls_w", "others_w_mean")):
            axes[1].scatter(np.full(len(items), i + 0.25 * j), [m[name] for m, _ in items], color=colour, s=12,
                            label=label if i == 0 else None)
    axes[1].set_xticks([0.12, 1.12, 2.12], ["rewarded", "cue controls", "others (mean)"])
    axes[1].set_ylabel("final weight (fraction of w_max)")
    axes[1].legend()
