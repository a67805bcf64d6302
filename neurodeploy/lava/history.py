"""Where the recording Lava models write their weights: a ``.npy`` memory map per run.

Reading a large Var back from a Lava process is slow (``Var.get`` of 10^6 values
took 15 s), so the models write ``weights`` after every step into the file the
caller created (``numpy.lib.format.open_memmap``, shape (steps, n_post, n_pre))
and ``<path>.step.npy`` holds the last step written, for a progress bar.
"""
from __future__ import annotations

import numpy as np


class History:
    """Writer side of a run's weight history (opened in the Lava process)."""

    def __init__(self, path: str):
        self._weights = np.lib.format.open_memmap(path, mode="r+")
        self._step = np.lib.format.open_memmap(path + ".step.npy", mode="r+")

    def write(self, time_step: int, weights: np.ndarray) -> None:
        """Record the weights after step ``time_step`` (1-based, as Lava counts)."""
        index = time_step - 1
        if index < self._weights.shape[0]:
            self._weights[index] = weights
            self._step[0] = time_step
            if index == self._weights.shape[0] - 1:
                self._weights.flush()
