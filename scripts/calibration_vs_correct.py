#!/usr/bin/env python
"""Judge each wrong deployment of a task calibration against the correct deployment instead of the reference.

``scripts/bench --tasks NAME`` judges every pool against the reference (``brian2``). Where the correct
deployment already fails there (a timing deviation of the model itself), a wrong deployment failing too says
nothing of the verdict's power. This re-judges the pools kept in the calibration's JSON (every run's
metrics): each wrong deployment against the correct one (its pool as the reference side, the margins from
it), with the same drawn picks and disjoint blocks as the calibration. No run is made.

    PYTHONPATH=. python scripts/calibration_vs_correct.py build/bench_tasks.json [--task NAME]
"""
import argparse
import json

import numpy as np

from neurodeploy.tasks.runner import clopper_pearson, judge, task_module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file")
    parser.add_argument("--task", default=None)
    a = parser.parse_args()
    with open(a.file) as f:
        data = json.load(f)
    for name, r in data["tasks"].items():
        if a.task not in (None, name) or "correct" not in r["deployments"]:
            continue
        task, n, pool = task_module(name), r["seeds_per_side"], r["pool"]
        rng = np.random.default_rng(0)  # the calibration's picks (neurodeploy.tasks.runner.calibrate)
        picks = [(rng.choice(pool, n, replace=False), rng.choice(pool, n, replace=False)) for _ in range(r["draws"])]
        correct = np.array(r["deployments"]["correct"]["rows"])
        print(f"{name}: pools of {pool}, {n} runs a side, {r['draws']} drawn verdicts")
        for label, d in r["deployments"].items():
            if label in ("null", "correct"):
                continue
            rows = np.array(d["rows"])
            drawn = [judge(task, correct[i], rows[j]) for i, j in picks]
            exact = [judge(task, correct[b * n:(b + 1) * n], rows[b * n:(b + 1) * n]) for b in range(pool // n)]
            caught = sum(v["passed"] is not True for v in drawn)
            blocks = sum(v["passed"] is not True for v in exact)
            by = {}
            for v in drawn:
                for m in v["rejected"] + v["unresolved"]:
                    by[m] = by.get(m, 0) + 1
            lo, hi = clopper_pearson(blocks, len(exact))
            top = ", ".join(f"{m} {k}" for m, k in sorted(by.items(), key=lambda kv: -kv[1])[:3])
            print(f"  {label} against the correct deployment: {caught / len(drawn):.1%} of drawn verdicts did not pass, "
                  f"{blocks} of {len(exact)} disjoint (95% CP {lo:.0%}..{hi:.0%}); by {top}")


if __name__ == "__main__":
    main()
