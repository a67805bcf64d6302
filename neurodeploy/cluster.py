"""The verdict's rounding ensemble spread over threads or a Dask cluster.

The K members of :func:`neurodeploy.emu.engine.simulate_batch` differ only in their random streams,
so any split of the seeds gives the same members: each group runs as its own batched call (on a
worker thread, or a Dask worker) and the groups are joined in seed order (weights) and by the minimum
(the first step at a limit). The compiled kernels release the GIL, so threads of one process run in
parallel; a Dask cluster (``distributed.Client``) gets the spike rasters and initial weights scattered
once to every worker. Measured on 2 cores (``scripts/bench --goals``, goal 4): no speed-up on one machine
(the batched kernel is bound by memory: a synapse's K members share a cache line, so split members
make every thread read every line, and Dask adds the transfers); it pays off where each worker brings
its own memory.

``use(spread)`` sets what every ``simulate_batch`` of the process uses (``neurodeploy verify
--scheduler``); ``spread``: ``None`` (one call here), an int (threads), or a ``distributed.Client``.
"""
from __future__ import annotations

import contextlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np


def groups(k: int, parts: int) -> list:
    """Seed index ranges of ``parts`` (at most ``k``) nearly equal groups, in order."""
    parts = max(1, min(int(parts), k))
    edges = np.linspace(0, k, parts + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:]) if b > a]


def _part(plan, w0_lava, pre, post, seeds, kwargs):
    from neurodeploy.emu.engine import simulate_batch

    return simulate_batch(plan, w0_lava, pre, post, seeds, spread=False, **kwargs)


def _workers(client) -> int:
    return max(1, sum(w.get("nthreads", 1) for w in client.scheduler_info()["workers"].values()))


def spread_batch(spread, plan, w0_lava, pre, post, seeds, **kwargs) -> tuple:
    """``simulate_batch(plan, w0_lava, pre, post, seeds, **kwargs)`` with its members split over
    ``spread`` (threads: an int; a ``distributed.Client``): the same (weights, first), bit for bit."""
    seeds = list(seeds)
    if isinstance(spread, (int, np.integer)):
        parts = groups(len(seeds), int(spread))
        with ThreadPoolExecutor(max_workers=len(parts)) as pool:
            results = list(pool.map(lambda g: _part(plan, w0_lava, pre, post, seeds[g[0]:g[1]], kwargs), parts))
    else:  # a Dask client: the big arrays go to every worker once
        client = spread
        parts = groups(len(seeds), _workers(client))
        big = client.scatter([np.asarray(w0_lava), np.asarray(pre), np.asarray(post)], broadcast=True)
        futures = [client.submit(_part, plan, big[0], big[1], big[2], seeds[a:b], kwargs, pure=False)
                   for a, b in parts]
        results = client.gather(futures)
    weights = np.concatenate([r[0] for r in results], axis=0)
    first = results[0][1]
    for r in results[1:]:
        first = np.minimum(first, r[1])
    return weights, first


@contextlib.contextmanager
def use(spread):
    """Within the block every ``simulate_batch`` spreads its members over ``spread`` (see the module)."""
    from neurodeploy.emu import engine

    before = engine.BATCH_SPREAD
    engine.BATCH_SPREAD = spread
    try:
        yield spread
    finally:
        engine.BATCH_SPREAD = before


def local_cluster(threads: int | None = None):
    """An in-process Dask cluster of one worker with ``threads`` threads (default: the cores)."""
    import os

    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=1, threads_per_worker=threads or os.cpu_count() or 1, processes=False,
                           dashboard_address=None)
    return Client(cluster), cluster
