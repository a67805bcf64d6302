#!/usr/bin/env python
"""Calibrate the fidelity verdict (neurodeploy/verdict/fidelity.py): false alarms and detection power.

False alarms: ``verify`` (brian2, brian2-step, emu-float, emu-fixed: the emulator is bit for bit the
Lava deployment) of the correct deployment on ``--trials`` Poisson protocols drawn with seeds never
used for tuning (``--seed-base`` + k); a trial fails when any fidelity entry fails.

Detection: wrong deployments: each parameter of the rule, in turn, x0 (dropped), x0.5, x2 and x-1
(sign), deployed on the float engine (emu-float of the mutated rule) and judged against brian2 of the
rule as written on the same spikes. A mutant *learns something else* when Brian2 itself, running the
mutated rule, fails the same judgement against the rule (the model's own sensitivity, not the
deployment's); detection is the fraction of those the verdict fails. Mutants that Brian2 says learn the
same (within the tolerance) are counted apart (equivalent mutants).

    PYTHONPATH=. .venv/bin/python scripts/fidelity_calibration.py [--rules stdp_pair,...] [--trials 100]
        [--seed-base 5000] [--detect-seeds 2] [--out build/fidelity_calibration.json]

Intervals: Clopper-Pearson 95%.
"""
import argparse
import json
import os
import sys
import time

import numpy as np
from scipy import stats

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from neurodeploy import verification  # noqa: E402
from neurodeploy.compile.compilation import compile_plans  # noqa: E402
from neurodeploy.backend import Recording  # noqa: E402
from neurodeploy.targets import load_all
from neurodeploy.protocol import make_trains, protocol_options  # noqa: E402
from neurodeploy.spec.loader import load_rule  # noqa: E402
from neurodeploy.verdict import FAILED  # noqa: E402
from neurodeploy.verdict.fidelity import DEFAULT_FIDELITY, final_change, judge  # noqa: E402

FACTORS = {"x0": 0.0, "x0.5": 0.5, "x2": 2.0, "sign": -1.0}
BACKENDS = ["brian2", "brian2-step", "emu-float", "emu-fixed"]


def interval(k: int, n: int) -> list:
    if n == 0:
        return [None, None]
    lo = 0.0 if k == 0 else float(stats.beta.ppf(0.025, k, n - k + 1))
    hi = 1.0 if k == n else float(stats.beta.ppf(0.975, k + 1, n - k))
    return [lo, hi]


def mutated(rule, name: str, factor: float):
    """The rule with parameter ``name`` times ``factor``, written into its file's text and loaded again
    (so every use of the parameter changes: traces' time constants, bounds, derived parameters)."""
    import re
    import tempfile

    import yaml

    data = yaml.safe_load(rule.text)
    value = data["parameters"][name]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        new = value * factor
    else:
        m = re.fullmatch(r"\s*([-+]?[0-9.]+(?:[eE][-+]?[0-9]+)?)\s+(.+)", str(value))
        new = f"{float(m.group(1)) * factor!r} {m.group(2)}" if m else f"({value}) * {factor!r}"
    data["parameters"][name] = new
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        yaml.safe_dump(data, f)
    try:
        return load_rule(f.name)
    finally:
        os.unlink(f.name)


def run(registry, name, rule, trains):
    plans = compile_plans(rule, trains, approximate=True) if name.startswith("emu") else {}
    return registry.get(name).run(rule, trains, plans, None, Recording(every=trains.steps))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rules", default="stdp_pair,stdp_nearest,stdp_multiplicative,ltp_ltd_soft")
    ap.add_argument("--trials", type=int, default=100)
    ap.add_argument("--seed-base", type=int, default=5000)
    ap.add_argument("--detect-seeds", type=int, default=2)
    ap.add_argument("--fidelity", type=float, default=DEFAULT_FIDELITY)
    ap.add_argument("--out", default="build/fidelity_calibration.json")
    a = ap.parse_args(argv)
    registry = load_all()
    out = {"fidelity": a.fidelity, "rules": {}}
    for name in a.rules.split(","):
        rule = load_rule(os.path.join("reference", "rules", f"{name}.yaml"))
        options = protocol_options("poisson", {}, "calibration")
        start = time.perf_counter()
        alarms, failures = 0, []
        for k in range(a.trials):
            seed = a.seed_base + k
            trains = make_trains(rule, "poisson", options, seed)
            report = verification.verify(rule, trains, BACKENDS, fidelity=a.fidelity)
            bad = [c for c in report.comparisons if c["share"] == "fidelity" and c["outcome"] == FAILED]
            if bad:
                alarms += 1
                failures.append({"seed": seed, "candidates": [c["candidate"] for c in bad],
                                 "messages": [c.get("message", "") for c in bad]})
        fa_seconds = time.perf_counter() - start
        detected, relevant, equivalent, missed = 0, 0, 0, []
        start = time.perf_counter()
        for k in range(a.detect_seeds):
            trains = make_trains(rule, "poisson", options, a.seed_base + 10_000 + k)
            last = trains.steps - 1
            w0 = np.asarray(trains.w0, dtype=float)
            ref = final_change(run(registry, "brian2", rule, trains), w0, last).reshape(-1)
            for p in rule.parameters:
                for label, factor in FACTORS.items():
                    try:
                        bad_rule = mutated(rule, p.name, factor)
                        model = final_change(run(registry, "brian2", bad_rule, trains), w0, last).reshape(-1)
                        deployed = final_change(run(registry, "emu-float", bad_rule, trains), w0, last).reshape(-1)
                    except Exception as exc:  # a mutant a backend refuses (e.g. a tau of 0): not a deployment
                        missed.append({"mutant": f"{p.name} {label}", "skipped": f"{type(exc).__name__}: {exc}"[:120]})
                        continue
                    if not (np.isfinite(model).all() and np.isfinite(deployed).all()):
                        continue
                    learns_else = judge(ref, model, a.fidelity, rule.weight.range)["outcome"] == FAILED
                    caught = judge(ref, deployed, a.fidelity, rule.weight.range)["outcome"] == FAILED
                    if learns_else:
                        relevant += 1
                        detected += caught
                        if not caught:
                            missed.append({"mutant": f"{p.name} {label}", "seed": a.seed_base + 10_000 + k})
                    else:
                        equivalent += 1
        out["rules"][name] = {
            "false_alarms": {"trials": a.trials, "failed": alarms, "rate": alarms / a.trials if a.trials else None,
                             "ci95": interval(alarms, a.trials), "seeds": [a.seed_base, a.seed_base + a.trials - 1],
                             "failures": failures, "seconds": round(fa_seconds, 1)},
            "detection": {"learn_something_else": relevant, "caught": detected,
                          "rate": detected / relevant if relevant else None, "ci95": interval(detected, relevant),
                          "equivalent_mutants": equivalent, "not_caught_or_skipped": missed,
                          "seconds": round(time.perf_counter() - start, 1)}}
        print(json.dumps({name: {k: {kk: vv for kk, vv in v.items() if kk not in ("failures", "not_caught_or_skipped")}
                                 for k, v in out["rules"][name].items()}}), flush=True)
    os.makedirs(os.path.dirname(a.out) or ".", exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
