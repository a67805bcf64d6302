"""How many runs share one cpp_standalone build (read by :func:`neurodeploy.brian2.backends.choose_target`).

The build directory is kept per model, so an ensemble of ``n`` runs of one model pays its build once:
:func:`builds_shared_by` sets ``n`` around the ensemble (the task runner), and the target choice divides
the build's cost by it. A light module (no Brian2 import), so that a front door can set it without
loading Brian2."""
from __future__ import annotations

import contextlib

#: Runs of one model that share its build (1: every run pays the whole build).
BUILD_SHARED_BY = 1


@contextlib.contextmanager
def builds_shared_by(runs: int):
    """Within the block :func:`neurodeploy.brian2.backends.choose_target` divides the build's cost by
    ``runs`` (an ensemble of ``runs`` runs of one model: the first builds, the others reuse the kept build).
    Worker processes forked inside the block inherit it."""
    global BUILD_SHARED_BY
    before = BUILD_SHARED_BY
    BUILD_SHARED_BY = max(1, int(runs))
    try:
        yield
    finally:
        BUILD_SHARED_BY = before
