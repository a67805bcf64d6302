#!/usr/bin/env python
"""Wrong network deployments against the distribution verdict: each a change to what is deployed (a LIF
threshold or decay, a static weight or its sign, a mask, the initial weights), the candidate ensemble
(emu-fixed, bit for bit lava-fixed) run on the changed network, the reference ensemble (brian2) on the
network as written; caught when the verdict fails. Each mutant's effect is printed in units of the
verdict's resolution (margin + the smallest difference the ensembles resolve at the Bonferroni level,
from the reference's spread), so that "every mutant whose effect exceeds the resolution is caught" can
be read off.

    PYTHONPATH=. .venv/bin/python scripts/network_mutants.py [--network reference/networks/ei_recurrent.yaml]
        [--steps 1000] [--size 16] [--out build/network_mutants.json]
"""
import argparse
import copy
import json
import os
import sys
import tempfile

import numpy as np
import yaml
from scipy import stats

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from neurodeploy.targets import load_all  # noqa: E402
from neurodeploy.compile.compilation import compile_plans  # noqa: E402
from neurodeploy.network import load_network, network_trains, with_spikes  # noqa: E402
from neurodeploy.spec.loader import load_rule  # noqa: E402
from neurodeploy.verdict import distribution as D  # noqa: E402
from neurodeploy.verdict.fidelity import DEFAULT_FIDELITY  # noqa: E402


def mutations(data: dict) -> list:
    """(label, changed network dict) for the deployment mutants of ``data``."""
    out = []

    def change(label, fn):
        d = copy.deepcopy(data)
        fn(d)
        out.append((label, d))

    pops = data["populations"]
    for name, p in pops.items():
        if "lif" in p:
            change(f"{name} threshold x1.25", lambda d, n=name: d["populations"][n].update(
                threshold=d["populations"][n]["threshold"] * 1.25))
            change(f"{name} threshold x0.8", lambda d, n=name: d["populations"][n].update(
                threshold=d["populations"][n]["threshold"] * 0.8))
            for key in ("tau_v", "tau_u"):
                value, unit = str(p[key]).split()
                change(f"{name} {key} x2", lambda d, n=name, k=key, v=value, u=unit: d["populations"][n].update(
                    {k: f"{float(v) * 2:g} {u}"}))
    for k, pr in enumerate(data["projections"]):
        tag = f"{pr['from']}->{pr['to']}"
        if not pr.get("plastic"):
            change(f"{tag} weight sign", lambda d, k=k: d["projections"][k].update(weight=-d["projections"][k]["weight"]))
            change(f"{tag} weight x2", lambda d, k=k: d["projections"][k].update(weight=2 * d["projections"][k]["weight"]))
        change(f"{tag} mask p x0.5", lambda d, k=k: d["projections"][k].update(p=d["projections"][k]["p"] * 0.5))
        if pr.get("plastic"):
            change(f"{tag} w0 0.5 -> 0.6", lambda d, k=k: d["projections"][k].update(w0=0.6))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rule", default="stdp_pair")
    ap.add_argument("--network", default="reference/networks/ei_recurrent.yaml")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--size", type=int, default=D.ENSEMBLE)
    ap.add_argument("--seed", type=int, default=60000)
    ap.add_argument("--fidelity", type=float, default=DEFAULT_FIDELITY)
    ap.add_argument("--out", default="build/network_mutants.json")
    a = ap.parse_args(argv)
    rule = load_rule(os.path.join("reference", "rules", f"{a.rule}.yaml"))
    with open(a.network) as f:
        data = yaml.safe_load(f)
    net = load_network(a.network, rule)
    trains = network_trains(rule, net, seed=3, steps=a.steps)
    first = load_all().get("brian2").run(rule, trains, {})
    plans = compile_plans(rule, with_spikes(trains, first.info["post_spikes"]), approximate=True)
    names = D.statistic_names(trains)
    k = a.size
    ref, _ = D.ensemble_statistics(rule, "brian2", trains, plans, range(a.seed, a.seed + k))
    margins = D.reference_margins(rule, trains, ref, names, a.fidelity, True)
    m = sum(1 for j in range(len(names)) if np.ptp(ref[:, j]) > 0)
    # the resolution: margin + the difference Welch's t resolves at alpha/m with the reference's spread on both sides
    q = float(stats.t.ppf(1 - D.ALPHA / max(1, m), 2 * k - 2))
    resolution = {n: margins[n] + q * float(np.std(ref[:, j], ddof=1)) * np.sqrt(2 / k) for j, n in enumerate(names)}
    rows, results = [], {}
    correct, _ = D.ensemble_statistics(rule, "emu-fixed", trains, plans, range(a.seed + k, a.seed + 2 * k))
    t = D.two_sample(ref, correct, names=names, margins=margins)
    results["(correct deployment)"] = {"caught": t["passed"] is False, "rejected": t["rejected"]}
    for label, d in mutations(data):
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False, dir=os.path.dirname(a.network)) as f:
            yaml.safe_dump(d, f)
        try:
            mnet = load_network(f.name, rule)
        except Exception as exc:  # a change the loader refuses is not a deployment
            results[label] = {"skipped": str(exc)[:160]}
            continue
        finally:
            os.unlink(f.name)
        mtrains = network_trains(rule, mnet, seed=3, steps=a.steps)
        if D.statistic_names(mtrains) != names:
            results[label] = {"skipped": "changes the network's statistics (a projection without synapses)"}
            continue
        try:
            cand, _ = D.ensemble_statistics(rule, "emu-fixed", mtrains, plans, range(a.seed + k, a.seed + 2 * k))
        except Exception as exc:  # the deployment refuses it (e.g. a static weight beyond 8 bits): not deployed
            results[label] = {"skipped": f"refused by the deployment: {exc}"[:200]}
            continue
        t = D.two_sample(ref, cand, names=names, margins=margins)
        effect = {n: abs(float(cand[:, j].mean() - ref[:, j].mean())) / resolution[n] for j, n in enumerate(names)
                  if resolution[n] > 0}
        biggest = max(effect, key=effect.get)
        results[label] = {"caught": t["passed"] is False, "rejected": t["rejected"],
                          "largest_effect_in_resolutions": effect[biggest], "statistic": biggest}
        print(label, results[label], flush=True)
    above = [r for r in results.values() if r.get("largest_effect_in_resolutions", 0) > 1]
    out = {"rule": a.rule, "network": a.network, "steps": a.steps, "size": k, "fidelity": a.fidelity,
           "margins": margins, "resolution": resolution, "mutants": results,
           "above_resolution": len(above), "above_resolution_caught": sum(1 for r in above if r["caught"]),
           "all_caught": sum(1 for lbl, r in results.items() if r.get("caught") and lbl != "(correct deployment)"),
           "all_judged": sum(1 for lbl, r in results.items() if "caught" in r and lbl != "(correct deployment)")}
    os.makedirs(os.path.dirname(a.out) or ".", exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(out, f, indent=1)
    print(json.dumps({k: v for k, v in out.items() if k not in ("mutants",)}, indent=1))


if __name__ == "__main__":
    main()
