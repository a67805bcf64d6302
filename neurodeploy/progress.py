"""A progress bar on stderr for backend runs.

``Progress(stream)`` is called by the harness: ``start(name, steps)`` when a
backend starts, ``update(step)`` from the backend as it goes (Brian2's
``report`` callback, a step counter the Lava model writes), ``finish()`` at
the end. The bar appears only after :data:`DELAY` seconds (short runs stay
quiet) and only on a terminal; elsewhere (logs, CI) one line per backend is
printed when it starts. ``--quiet`` passes no Progress at all.
"""
from __future__ import annotations

import sys
import threading
import time

#: Seconds before a bar is drawn.
DELAY = 2.0
WIDTH = 30


class Progress:
    def __init__(self, stream=None, delay: float = DELAY):
        self.stream = stream if stream is not None else sys.stderr
        self.delay = delay
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._lock = threading.Lock()
        self.name, self.steps, self.started, self._drawn, self._last = "", 0, 0.0, False, 0.0

    def message(self, text: str) -> None:
        with self._lock:
            self._clear()
            self.stream.write(text + "\n")
            self.stream.flush()

    def start(self, name: str, steps: int, detail: str = "") -> None:
        self.message(f"running {name}: {detail}" if detail else f"running {name}")
        with self._lock:
            self.name, self.steps, self.started, self._drawn, self._last = name, steps, time.monotonic(), False, 0.0

    def update(self, step: int) -> None:
        if not self.tty:
            return
        now = time.monotonic()
        with self._lock:
            if now - self.started < self.delay or now - self._last < 0.2 or not self.steps:
                return
            self._last = now
            fraction = min(1.0, max(0.0, step / self.steps))
            filled = int(round(WIDTH * fraction))
            elapsed = now - self.started
            self.stream.write(f"\r{self.name:<12} [{'#' * filled}{'.' * (WIDTH - filled)}] "
                              f"{100 * fraction:5.1f}% {step}/{self.steps} steps, {elapsed:.0f} s")
            self.stream.flush()
            self._drawn = True

    def finish(self) -> None:
        with self._lock:
            if self._drawn:
                self.update_done()

    def update_done(self) -> None:
        self.stream.write(f"\r{self.name:<12} [{'#' * WIDTH}] 100.0% {self.steps}/{self.steps} steps, "
                          f"{time.monotonic() - self.started:.0f} s\n")
        self.stream.flush()
        self._drawn = False

    def _clear(self) -> None:
        if self._drawn:
            self.stream.write("\n")
            self._drawn = False
