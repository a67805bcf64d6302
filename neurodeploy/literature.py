"""The literature network: many Poisson inputs onto one LIF neuron through plastic synapses.

Song, Miller & Abbott (2000) Nat Neurosci 3:919: with *additive* STDP whose
depression slightly outweighs potentiation (``A_minus tau_minus > A_plus tau_plus``,
``stdp_pair``), the inputs compete and the final weights split into two groups,
near ``w_min`` and near ``w_max`` (bimodal). van Rossum, Bi & Turrigiano (2000)
J Neurosci 20:8812: with *multiplicative* depression (``-alpha lambda w y``,
``stdp_multiplicative``) each weight relaxes to a stable point, ``w* ~ 1/alpha``
for uncorrelated inputs (potentiation ``lambda r_pre r_post tau`` against
depression ``alpha lambda w r_pre r_post tau``): one mode, far from both bounds.

The network is the ``closed-loop`` protocol (:func:`neurodeploy.protocol.closed_loop`):
Lava's LIF, ``n_pre`` Poisson inputs, one post neuron, every backend simulating the
neuron itself. Parameters (:data:`SMA`) were picked so that the split shows within a
run the tests can afford: 250 inputs at 40 Hz (10 input spikes per ms, as SMA's
1000 at 10 Hz), 200 s, threshold 300 x the weight range (the post neuron starts at
~50 Hz and settles at 10-20 Hz), ``tau_u`` 5 ms, ``tau_v`` 20 ms; ``alpha = 2`` for the
multiplicative rule (the library's ``alpha = 1`` puts ``w*`` at ``w_max``, where
no distribution can be told from a pile-up at the bound). The decision is the
independent criterion of :func:`modality`: the fraction of weights within 10% of
the range of each bound.

At ``dt = 1 ms`` the order of a pre and a post spike in the *same step* matters as much
as the rule's depression bias: ``brian2`` (the rule as written: pre pathway first,
so a coincident pair only potentiates) gains ``A_plus`` per coincident pair, which
cancels the 5% depression bias exactly (``A_plus dt / ((A_minus - A_plus) tau) = 1``
for the library's values), and the weights run away to ``w_max``; the learning
engine's order (``brian2-step``, Lava, the emulator: a coincident pair both
potentiates and depresses) keeps the bias. The plans are scaled on ``brian2-step``'s spikes (Brian2, the
engine's order) by default, and ``brian2`` is reported beside it: against the model as written the additive
deployment does not learn the same (docs/literature.md), and the deviation is that timing.
"""
from __future__ import annotations

import dataclasses
import time

import numpy as np

from neurodeploy.backend import Recording
from neurodeploy.library import LIBRARY
from neurodeploy.protocol import closed_loop
from neurodeploy.targets import load_all
from neurodeploy.verdict.distribution import run_statistics

#: The network's parameters (see the module docstring).
SMA = {"n_pre": 250, "rate": 40.0, "steps": 200_000, "threshold": 300.0, "tau_u_ms": 5.0, "tau_v_ms": 20.0,
       "seed": 1}
#: kind -> (library rule, parameter overrides)
RULES = {"additive": ("stdp_pair", {}), "multiplicative": ("stdp_multiplicative", {"alpha": 2.0})}
#: Bimodal: at least this fraction of the weights near a bound, and each bound holding at least BOTH_MIN.
BIMODAL_MIN, BOTH_MIN = 0.5, 0.05
#: Unimodal (interior): at most this fraction near the bounds.
UNIMODAL_MAX = 0.1


def network_rule(kind: str):
    """The rule of ``kind`` ("additive" or "multiplicative") with :data:`RULES`' overrides."""
    import os

    from neurodeploy.batch import rule_with

    name, overrides = RULES[kind]
    return rule_with(os.path.join(LIBRARY, name + ".yaml"), overrides)


def network_trains(rule, n_pre=SMA["n_pre"], rate=SMA["rate"], steps=SMA["steps"], threshold=SMA["threshold"],
                   seed=SMA["seed"], tau_u_ms=SMA["tau_u_ms"], tau_v_ms=SMA["tau_v_ms"]):
    """The closed loop: ``n_pre`` Poisson inputs at ``rate`` Hz onto one Lava LIF (weights start at w_init)."""

    return closed_loop(rule, n_pre, 1, steps, rate, tau_u_ms, tau_v_ms, threshold, seed)


def modality(stats: dict) -> str:
    """"bimodal", "unimodal" or "neither" from :func:`neurodeploy.verdict.distribution.run_statistics`."""
    near = stats["near_low"] + stats["near_high"]
    if near >= BIMODAL_MIN and min(stats["near_low"], stats["near_high"]) >= BOTH_MIN:
        return "bimodal"
    if near <= UNIMODAL_MAX:
        return "unimodal"
    return "neither"


def run_network(rule, trains, backends, reference: str = "brian2-step") -> dict:
    """Run ``trains`` on each backend; {backend: {"w": final weights (n_pre,), "stats", "modality",
    "seconds", "rate_hz"}}. The fixed and float plans are scaled on the post spikes ``reference``'s
    neuron made (as ``verify`` does in the closed loop); ``reference`` runs first."""
    from neurodeploy.compile.compilation import compile_plans

    registry = load_all()
    last = Recording(every=trains.steps)
    order = [reference] + [b for b in backends if b != reference] if reference in backends else list(backends)
    out, plans = {}, {}
    if not order[0].startswith("brian2"):  # an engine reference needs plans: first scaled on Poisson post spikes
        from neurodeploy.protocol import poisson

        guess = poisson(rule, trains.n_pre, trains.n_post, trains.steps, trains.rate / 4, trains.seed + 1).post
        plans = compile_plans(rule, dataclasses.replace(trains, post=guess), approximate=True)
        first = registry.get(order[0]).run(rule, trains, plans, recording=last)
        plans = compile_plans(rule, dataclasses.replace(trains, post=first.info["post_spikes"]), approximate=True)
    for name in order:
        start = time.perf_counter()
        result = registry.get(name).run(rule, trains, plans, recording=last)
        seconds = time.perf_counter() - start
        post = result.info["post_spikes"]
        if not plans:
            plans = compile_plans(rule, dataclasses.replace(trains, post=post), approximate=True)
        w = np.asarray(result.trajectory[-1]).reshape(-1)
        stats = run_statistics(rule, w, post)
        out[name] = {"w": w, "stats": stats, "modality": modality(stats), "seconds": seconds,
                     "rate_hz": stats["rate_hz"]}
    return out
