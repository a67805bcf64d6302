#!/usr/bin/env python
"""Calibrate the distributional verdict (neurodeploy/verdict/distribution.py) on the closed loop.

False alarms: the correct deployment (emu-fixed, the fixed plan; bit-exact with lava-fixed) against
the reference ensemble, in ``--trials`` trials on disjoint seed blocks that the verdict was never
tuned on (seeds 10000 + ...); each trial is one ``two_sample`` test of K reference runs against K
candidate runs. Detection: each product of the fixed plan doubled (mutation ``E+1``; ``--mutations all``:
every mutant of ``neurodeploy mutate``), K runs each, against a reference block; caught when the test fails.

    PYTHONPATH=. python scripts/distribution_calibration.py [--rule stdp_pair] [--trials 10] [--size 16]
        [--reference brian2] [--fidelity 0.2] [--network reference/networks/ei_recurrent.yaml]
        [--out build/distribution_calibration.json]

``--network``: the network protocol (the network file's populations and projections) instead of the
closed loop; the statistics are then per plastic projection and per LIF population.
"""
import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from neurodeploy.targets import load_all  # noqa: E402
from neurodeploy.compile.compilation import compile_plans  # noqa: E402
from neurodeploy.library import LIBRARY  # noqa: E402
from neurodeploy.network import load_network, network_trains, with_spikes  # noqa: E402
from neurodeploy.protocol import make_trains  # noqa: E402
from neurodeploy.spec.loader import load_rule  # noqa: E402
from neurodeploy.verdict import distribution as D  # noqa: E402
from neurodeploy.verdict.fidelity import DEFAULT_FIDELITY  # noqa: E402
from fidelity_calibration import interval  # noqa: E402  (Clopper-Pearson 95%, one definition)
from neurodeploy.verdict.mutate import mutants  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rule", default="stdp_pair")
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--size", type=int, default=D.ENSEMBLE)
    ap.add_argument("--reference", default="brian2")
    ap.add_argument("--fidelity", type=float, default=DEFAULT_FIDELITY)
    ap.add_argument("--candidate", default="emu-fixed")
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--network", default=None, help="a network file: calibrate on the network protocol")
    ap.add_argument("--mutations", default="E+1", help="comma-separated mutation kinds (neurodeploy mutate's), or all")
    ap.add_argument("--seed-base", type=int, default=10000)
    ap.add_argument("--out", default="build/distribution_calibration.json")
    args = ap.parse_args(argv)
    registry = load_all()
    rule = load_rule(os.path.join(LIBRARY, args.rule + ".yaml"))
    if args.network:
        trains = network_trains(rule, load_network(args.network, rule), seed=3, steps=args.steps)
    else:
        trains = make_trains(rule, "closed-loop", {"steps": args.steps}, seed=3)
    first = registry.get("brian2").run(rule, trains, {})  # as verify: plans scaled on brian2's spikes
    plans = compile_plans(rule, with_spikes(trains, first.info["post_spikes"]), approximate=True)
    names = D.statistic_names(trains)
    untested = {}
    fixed = args.candidate.endswith("-fixed")

    def margins(reference_block):  # as distribution_verdict: from the fidelity tolerance and the reference only
        return D.reference_margins(rule, trains, reference_block, names, args.fidelity, fixed)

    k, n = args.size, args.trials
    base = args.seed_base
    kinds = None if args.mutations == "all" else set(args.mutations.split(","))
    ref, ref_s = D.ensemble_statistics(rule, args.reference, trains, plans, range(base, base + n * k))
    cand, cand_s = D.ensemble_statistics(rule, args.candidate, trains, plans,
                                         range(base + n * k, base + 2 * n * k))
    alarms = []
    for t in range(n):
        block = ref[t * k:(t + 1) * k]
        test = D.two_sample(block, cand[t * k:(t + 1) * k], names=names, untested=untested, margins=margins(block))
        alarms.append(test["rejected"])
    caught = {}
    for label, kind, plan in mutants(plans["fixed"]):
        if kinds is not None and kind not in kinds:
            continue
        m, _ = D.ensemble_statistics(rule, args.candidate, trains, dict(plans, fixed=plan),
                                     range(base + 2 * n * k, base + 2 * n * k + k))
        test = D.two_sample(ref[:k], m, names=names, untested=untested, margins=margins(ref[:k]))
        caught[label] = {"caught": test["passed"] is False, "rejected": test["rejected"],
                         "p": {s: e["p_value"] for s, e in test["statistics"].items()}}
    out = {"rule": args.rule, "network": args.network, "steps": args.steps,
           "margins_first_block": margins(ref[:k]), "fidelity": args.fidelity, "size": k, "trials": n,
           "reference": args.reference,
           "candidate": args.candidate, "alpha": D.ALPHA,
           "false_alarms": sum(1 for a in alarms if a), "false_alarm_ci95": interval(sum(1 for a in alarms if a), n),
           "alarms": alarms,
           "mutants_caught": sum(1 for c in caught.values() if c["caught"]), "mutants": caught,
           "seconds_per_run": {args.reference: ref_s / (n * k), args.candidate: cand_s / (n * k)},
           "statistics_mean": {"reference": dict(zip(names, ref.mean(0).tolist())),
                               "candidate": dict(zip(names, cand.mean(0).tolist()))},
           "statistics_std": {"reference": dict(zip(names, ref.std(0, ddof=1).tolist())),
                              "candidate": dict(zip(names, cand.std(0, ddof=1).tolist()))}}
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(out, f, indent=1)
    print(json.dumps({k: v for k, v in out.items() if k not in ("alarms",)}, indent=1))


if __name__ == "__main__":
    main()
