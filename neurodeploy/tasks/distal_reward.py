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
(:func:`neurodeploy.verdict.distribution.two_sample`: Brunner-Munzel, family-wise alpha 1%), margins
from the fidelity tolerance of the reference ensemble only.
"""
from __future__ import annotations

import dataclasses
import time

import numpy as np

from neurodeploy.backend import Recording
from neurodeploy.compile.reward import DistalReward
from neurodeploy.emu.network import simulate_network
from neurodeploy.lava.backends import run_network
from neurodeploy.library import LIBRARY
from neurodeploy.network import network_from_dict, network_trains, reseed
from neurodeploy.spec.loader import load_rule
from neurodeploy.targets import load_all
from neurodeploy.verdict.distribution import two_sample

METRICS = ("rewarded_w", "rewarded_rank", "controls_w", "others_w_mean", "others_w_std", "rate_hz", "rewards")
DEFAULTS = {"steps": 10_000, "n_inputs": 50, "input_rate": 2.0, "cue_rate": 5.0, "n_exc": 4, "threshold": 3.0,
            "cue_w0": 0.5, "w0": 0.1, "noise": 40, "noise_rate": 10.0, "noise_weight": 0.25,
            "delay_min": 1000, "delay_max": 3000, "window": 10, "amount": 1.0}


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


def setup(rule=None, **overrides):
    """(rule, network, trains template with its reward schedule, parameters)."""

    p = dict(DEFAULTS, **overrides)
    rule = rule or load_rule(f"{LIBRARY}/rstdp.yaml")
    net = network_from_dict(network_dict(p), "distal_reward", rule)
    schedule = DistalReward(pre=0, post=0, window=p["window"], delay_min=p["delay_min"], delay_max=p["delay_max"],
                            amount=p["amount"], seed=0)
    trains = network_trains(rule, net, 0)
    trains = dataclasses.replace(trains, reward=np.zeros_like(trains.reward), reward_schedule=schedule)
    return rule, net, trains, p


def plastic_block(net, w):
    """(…, n_exc, n_plastic_sources) of a (…, n_lif, n_src) trajectory: the cue then the inputs."""
    return w[..., :, : 1 + net.population("inputs").n]


def metrics(rule, net, trains, w_final, spikes) -> dict:

    z = (plastic_block(net, np.asarray(w_final)) - rule.weight.w_min) / rule.weight.range
    rewarded = float(z[0, 0])
    flat = z.reshape(-1)
    others = flat[1:]
    schedule = trains.reward_schedule.fresh(net.n_lif, trains.steps)
    inputs = trains.pre[: net.n_inputs]
    for k in range(trains.steps):
        schedule.observe(k, np.concatenate([inputs[:, k], spikes[:, k]]), spikes[:, k])
    return {"rewarded_w": rewarded, "rewarded_rank": float(np.mean(others > rewarded)),
            "controls_w": float(z[1:, 0].mean()), "others_w_mean": float(others.mean()),
            "others_w_std": float(others.std()), "rate_hz": float(spikes.sum() / spikes.shape[0] / (trains.steps * rule.dt)),
            "rewards": float(len(schedule.events))}


def run_one(rule, net, trains, backend: str, plans: dict, seed: int, every: int = 100):

    member = reseed(rule, trains, seed)
    result = load_all().get(backend).run(rule, member, plans, recording=Recording(every=every))
    spikes = result.info["post_spikes"]
    return member, result.trajectory, spikes


def plans_for(rule, trains):
    """The plans scaled on the reference's own traffic (post spikes and rewards of a brian2 run)."""
    from neurodeploy.compile.compilation import compile_plans

    rng = np.random.default_rng(0)
    traffic = dataclasses.replace(trains, post=rng.random(trains.post.shape) < 0.005,
                                  reward=(rng.random(trains.reward.shape) < 0.0005) * 1.0)
    return compile_plans(rule, traffic, approximate=True)


def ensemble(rule, net, trains, backend, plans, seeds):
    rows, curves, seconds = [], [], time.perf_counter()
    for s in seeds:
        member, traj, spikes = run_one(rule, net, trains, backend, plans, s)
        m = metrics(rule, net, member, traj[-1], spikes)
        rows.append([m[k] for k in METRICS])
        z = (plastic_block(net, traj) - rule.weight.w_min) / rule.weight.range
        curves.append(z[:, 0, 0])
    return np.array(rows), np.array(curves), time.perf_counter() - seconds


def margins(reference: np.ndarray, tolerance: float) -> dict:
    """Per metric: ``tolerance`` x the reference ensemble's mean magnitude (weights: of the change from the
    start, at least one 8-bit step), from the reference only."""
    out = {}
    for k, name in enumerate(METRICS):
        out[name] = tolerance * float(np.mean(np.abs(reference[:, k]))) + (1 / 255 if name.endswith("_w") else 0)
    return out


def window_proof(rule, net, trains, plans, steps: int = 300) -> dict:
    """lava-fixed against emu-fixed on the first ``steps`` steps of seed 0: spikes and integers."""

    pre = trains.pre[: net.n_inputs, :steps]
    start = time.perf_counter()
    w_l, s_l = run_network(rule, net, plans["fixed"], trains.w0, pre, reward=trains.reward_schedule)
    lava_s = time.perf_counter() - start
    w_e, s_e = simulate_network(rule, net, plans["fixed"], trains.w0, pre, third_factor=trains.reward_schedule)
    equal = bool(np.array_equal(s_l, s_e) and np.array_equal(np.isnan(w_l), np.isnan(w_e))
                 and np.nanmax(np.abs(w_l - w_e)) == 0.0)
    return {"steps": steps, "bit_exact": equal, "lava_seconds": round(lava_s, 2)}


def run_task(out_dir: str, seeds: int = 4, candidate: str = "emu-fixed", reference: str = "brian2",
             tolerance: float = 0.2, lava_window: int = 300, **overrides) -> dict:
    import json
    import os


    rule, net, trains, p = setup(**overrides)
    plans = plans_for(rule, trains)
    ref_seeds = list(range(1, 1 + seeds))
    cand_seeds = list(range(1 + seeds, 1 + 2 * seeds))
    ref, ref_curves, ref_s = ensemble(rule, net, trains, reference, plans, ref_seeds)
    cand, cand_curves, cand_s = ensemble(rule, net, trains, candidate, plans, cand_seeds)
    test = two_sample(ref, cand, names=METRICS, margins=margins(ref, tolerance))
    proof = window_proof(rule, net, trains, plans, lava_window) if lava_window else None
    learned = {"reference": float(np.mean(ref[:, 1] == 0.0)), "candidate": float(np.mean(cand[:, 1] == 0.0))}
    report = {"task": "distal-reward", "parameters": p, "reference": reference, "candidate": candidate,
              "seeds": {"reference": ref_seeds, "candidate": cand_seeds},
              "metrics": {"reference": ref.tolist(), "candidate": cand.tolist(), "names": list(METRICS)},
              "rewarded_on_top": learned, "verdict": test["passed"], "test": test,
              "seconds": {reference: round(ref_s, 1), candidate: round(cand_s, 1)}, "lava_window": proof}
    os.makedirs(out_dir, exist_ok=True)
    _figure(os.path.join(out_dir, "distal_reward.png"), rule, ref_curves, cand_curves, ref, cand, reference, candidate)
    with open(os.path.join(out_dir, "report.json"), "w") as f:
        json.dump(report, f, indent=1, default=float)
    return report


def _figure(path, rule, ref_curves, cand_curves, ref, cand, reference, candidate):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    t = (np.arange(ref_curves.shape[1]) + 1) * 0.1
    for curves, colour, label in ((ref_curves, "k", reference), (cand_curves, "tab:red", candidate)):
        for k, c in enumerate(curves):
            axes[0].plot(t, c, color=colour, alpha=0.6, label=label if k == 0 else None)
    axes[0].set_xlabel("time (s)")
    axes[0].set_ylabel("rewarded synapse (fraction of w_max)")
    axes[0].legend()
    names = list(METRICS)
    k_ctrl, k_oth = names.index("controls_w"), names.index("others_w_mean")
    for data, colour, x0 in ((ref, "k", 0), (cand, "tab:red", 0.25)):
        for j, k in enumerate((0, k_ctrl, k_oth)):
            axes[1].scatter(np.full(len(data), j + x0), data[:, k], color=colour, s=12)
    axes[1].set_xticks([0.12, 1.12, 2.12], ["rewarded", "cue controls", "others (mean)"])
    axes[1].set_ylabel("final weight (fraction of w_max)")
    fig.suptitle("Distal reward (Izhikevich 2007, Fig. 1), rstdp, reduced")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
