"""The verdict's rounding ensemble spread over threads or a Dask cluster.

The K members of :func:`neurodeploy.emu.batch.simulate_batch` differ only in their random streams,
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

from neurodeploy.emu import batch
from neurodeploy.emu.batch import groups, spread_batch  # noqa: F401 (the spread, where it runs)


@contextlib.contextmanager
def use(spread):
    """Within the block every ``simulate_batch`` spreads its members over ``spread`` (see the module)."""
    before = batch.BATCH_SPREAD
    batch.BATCH_SPREAD = spread
    try:
        yield spread
    finally:
        batch.BATCH_SPREAD = before


def local_cluster(threads: int | None = None):
    """An in-process Dask cluster of one worker with ``threads`` threads (default: the cores)."""
    import os

    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=1, threads_per_worker=threads or os.cpu_count() or 1, processes=False,
                           dashboard_address=None)
    return Client(cluster), cluster
