#!/usr/bin/env python
"""Re-judge a null false-alarm run (``neurodeploy task NAME --false-alarms N --null``) on resamples.

The run's ``false_alarms.json`` keeps every verdict's runs (metrics per run). This pools them and judges
``--verdicts`` verdicts of runs drawn at random from the pool without replacement (i.i.d. by construction:
the level of the verdict itself on the task's own distribution of metrics, free of any dependence between
seeds), and prints, for a metric (``--metric``, default the first) thresholded at ``--above``, how the
verdicts' sides split: the variance of the count per side against the binomial one, the lag-1
autocorrelation over seed order, and the splits of k or more against their binomial expectation.

    PYTHONPATH=. python scripts/null_resample.py build/pattern_null/false_alarms.json [--verdicts 1000]
        [--metric hit_rate --above 0.3] [--seed 12345]
"""
import argparse
import json

import numpy as np
from scipy.stats import binom

from neurodeploy.tasks import runner


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file")
    parser.add_argument("--verdicts", type=int, default=1000)
    parser.add_argument("--metric", default=None)
    parser.add_argument("--above", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=12345)
    a = parser.parse_args()
    with open(a.file) as f:
        d = json.load(f)
    task = runner.task_module(d["task"])
    sides = [np.array(v[side]) for v in d["runs"] for side in ("reference", "candidate")]
    n = d["seeds_per_side"]
    pool = np.concatenate(sides)
    rng = np.random.default_rng(a.seed)
    alarms = failed = 0
    for _ in range(a.verdicts):
        idx = rng.choice(len(pool), 2 * n, replace=False)
        t = runner.judge(task, pool[idx[:n]], pool[idx[n:]])
        alarms += t["passed"] is not True
        failed += t["passed"] is False
    print(f"{d['task']}: {a.verdicts} verdicts of runs drawn i.i.d. from the {len(pool)} pooled: {alarms} did not "
          f"pass ({alarms / a.verdicts:.2%}), {failed} FAILED")
    k = task.METRICS.index(a.metric) if a.metric else 0
    counts = np.array([(s[:, k] > a.above).sum() for s in sides])
    ind = np.concatenate([s[:, k] > a.above for s in sides]).astype(float)
    p = ind.mean()
    print(f"{task.METRICS[k]} > {a.above}: {p:.1%} of the runs; count per side variance {counts.var():.3g} "
          f"(binomial {n * p * (1 - p):.3g}); lag-1 autocorrelation over seeds {np.corrcoef(ind[:-1], ind[1:])[0, 1]:.3g}")
    diff = np.abs(counts[0::2] - counts[1::2])
    # P(|X - Y| >= j) for X, Y ~ Binomial(n, p) independent, exactly
    pmf = binom.pmf(np.arange(n + 1), n, p)
    joint = np.abs(np.subtract.outer(np.arange(n + 1), np.arange(n + 1)))
    for j in range(max(1, n // 2), n + 1):
        expected = pmf @ (joint >= j).astype(float) @ pmf * len(diff)
        print(f"  splits by {j} or more: {(diff >= j).sum()} (binomial expectation {expected:.3g})")


if __name__ == "__main__":
    main()
