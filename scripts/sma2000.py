#!/usr/bin/env python
"""Song, Miller & Abbott (2000) / van Rossum, Bi & Turrigiano (2000): the weight distribution that
additive STDP (bimodal) and multiplicative depression (unimodal) learn, per backend.

Runs the literature network (:mod:`neurodeploy.literature`: 250 Poisson inputs at 40 Hz onto one Lava
LIF, 200 s) with ``stdp_pair`` and ``stdp_multiplicative`` (alpha 2) on each backend, decides each
final distribution by the fraction of weights within 10% of each bound, proves emu-fixed equal to
lava-fixed bit for bit on the first ``--lava-steps`` steps of the same network, and writes
``build/sma2000.json`` and the figure ``build/sma2000.png`` (a histogram per rule and backend).

    PYTHONPATH=. python scripts/sma2000.py [--steps 200000] [--backends brian2-step,brian2,emu-fixed]
        [--lava-steps 300] [--out build]
"""
import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from neurodeploy import literature as L  # noqa: E402


def lava_window(rule, trains, plans_from, steps):
    """emu-fixed against lava-fixed on the first ``steps`` steps of the network: identical?"""
    import dataclasses

    from neurodeploy.targets import load_all
    from neurodeploy.compile.compilation import compile_plans

    registry = load_all()
    short = dataclasses.replace(trains, pre=trains.pre[:, :steps], post=trains.post[:, :steps])
    first = registry.get(plans_from).run(rule, short, {})
    plans = compile_plans(rule, dataclasses.replace(short, post=first.info["post_spikes"]), approximate=True)
    start = time.perf_counter()
    lava = registry.get("lava-fixed").run(rule, short, plans)
    lava_s = time.perf_counter() - start
    emu = registry.get("emu-fixed").run(rule, short, plans)
    return {"steps": steps, "identical_weights": bool(np.array_equal(lava.trajectory, emu.trajectory)),
            "identical_spikes": bool(np.array_equal(lava.info["post_spikes"], emu.info["post_spikes"])),
            "post_spikes": int(lava.info["post_spikes"].sum()), "lava_seconds": round(lava_s, 2)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=L.SMA["steps"])
    ap.add_argument("--backends", default="brian2-step,brian2,emu-fixed")
    ap.add_argument("--lava-steps", type=int, default=300)
    ap.add_argument("--out", default="build")
    args = ap.parse_args(argv)
    backends = args.backends.split(",")
    results = {}
    for kind in ("additive", "multiplicative"):
        rule = L.network_rule(kind)
        trains = L.network_trains(rule, steps=args.steps)
        res = L.run_network(rule, trains, backends, reference=backends[0])
        results[kind] = {"rule": L.RULES[kind][0], "overrides": L.RULES[kind][1],
                         "backends": {b: {"modality": r["modality"], "seconds": round(r["seconds"], 2),
                                          **{k: round(v, 4) for k, v in r["stats"].items()},
                                          "histogram": np.histogram(r["w"], 20, (0, 1))[0].tolist()}
                                      for b, r in res.items()}}
        results[kind]["_w"] = {b: r["w"] for b, r in res.items()}
        if args.lava_steps:
            results[kind]["lava_window"] = lava_window(rule, trains, "brian2-step", args.lava_steps)
        for b, r in results[kind]["backends"].items():
            print(f"{kind:<15} {b:<12} {r['modality']:<9} near w_min {r['near_low']:.3f} near w_max "
                  f"{r['near_high']:.3f} mean {r['w_mean']:.3f} post {r['rate_hz']:.1f} Hz  {r['seconds']:.1f} s",
                  flush=True)
        if "lava_window" in results[kind]:
            print(f"{kind:<15} lava-fixed == emu-fixed on {args.lava_steps} steps: {results[kind]['lava_window']}")
    os.makedirs(args.out, exist_ok=True)
    figure(results, backends, os.path.join(args.out, "sma2000.png"), args.steps)
    out = {"network": dict(L.SMA, steps=args.steps), "criterion": {
        "near": "within 10% of the range of a bound", "bimodal": f"near both >= {L.BIMODAL_MIN}, each >= {L.BOTH_MIN}",
        "unimodal": f"near both <= {L.UNIMODAL_MAX}"},
        "results": {k: {kk: vv for kk, vv in v.items() if kk != "_w"} for k, v in results.items()}}
    with open(os.path.join(args.out, "sma2000.json"), "w") as f:
        json.dump(out, f, indent=1)
    print(f"wrote {args.out}/sma2000.json, {args.out}/sma2000.png")


def figure(results, backends, path, steps):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(backends), figsize=(3.2 * len(backends), 5.5), squeeze=False, sharex=True)
    for row, kind in enumerate(("additive", "multiplicative")):
        for col, b in enumerate(backends):
            ax = axes[row, col]
            ax.hist(results[kind]["_w"][b], bins=20, range=(0, 1), color="C0" if row == 0 else "C1")
            r = results[kind]["backends"][b]
            ax.set_title(f"{results[kind]['rule']} on {b}\n{r['modality']}: {r['near_low']:.2f} | {r['near_high']:.2f} "
                         f"near bounds, {r['rate_hz']:.0f} Hz", fontsize=8)
            ax.axvspan(0, 0.1, color="0.9", zorder=0)
            ax.axvspan(0.9, 1, color="0.9", zorder=0)
            if row == 1:
                ax.set_xlabel("final weight / w_max")
    fig.suptitle(f"Song, Miller & Abbott 2000 / van Rossum, Bi & Turrigiano 2000: {L.SMA['n_pre']} inputs at "
                 f"{L.SMA['rate']:g} Hz, {steps / 1000:g} s", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
