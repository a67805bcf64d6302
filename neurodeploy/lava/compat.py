"""Importing Lava from any process.

Lava calls ``multiprocessing.set_start_method('fork')`` when its runtime is
first imported. That raises ``RuntimeError: context has already been set``
in a process whose start method is already chosen: a process-pool worker or
a Dask worker. Lava needs ``fork`` anyway, so :func:`import_lava` clears the
choice before the first import.
"""
from __future__ import annotations

import multiprocessing
import sys

_LAVA_MP = "lava.magma.runtime.message_infrastructure.multiprocessing"


def import_lava() -> None:
    if _LAVA_MP not in sys.modules:
        multiprocessing.context._default_context._actual_context = None
        import lava.magma.core.process.process  # noqa: F401
