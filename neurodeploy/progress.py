"""A progress bar on stderr for backend runs.

``Progress(stream)`` is called by the harness: ``start(name, steps)`` when a
backend starts, ``update(step)`` from the backend as it goes (Brian2's
``report`` callback, a step counter the Lava model writes), ``finish()`` at
the end. The bar appears only after :data:`DELAY` seconds (short runs stay
quiet) and only on a terminal; elsewhere (logs, CI) one line per backend is
printed when it starts. ``Progress(quiet=True)`` (``--quiet``) prints nothing.

Every call but ``finish()`` is also a safe point for signals (:func:`check_signals`, main
thread only): a Ctrl-C whose KeyboardInterrupt Python dropped is raised at the next one.
"""
from __future__ import annotations

import sys
import threading
import time

#: Seconds before a bar is drawn.
DELAY = 2.0
WIDTH = 30


class Progress:
    def __init__(self, stream=None, delay: float = DELAY, quiet: bool = False):
        self.stream = stream if stream is not None else sys.stderr
        self.delay = delay
        self.quiet = quiet
        self.tty = not quiet and bool(getattr(self.stream, "isatty", lambda: False)())
        self._lock = threading.Lock()
        self.name, self.steps, self.started, self._drawn, self._last = "", 0, 0.0, False, 0.0

    def message(self, text: str) -> None:
        check_signals()
        if self.quiet:
            return
        with self._lock:
            self._clear()
            self.stream.write(text + "\n")
            self.stream.flush()

    def start(self, name: str, steps: int, detail: str = "") -> None:
        self.message(f"running {name}: {detail}" if detail else f"running {name}")
        with self._lock:
            self.name, self.steps, self.started, self._drawn, self._last = name, steps, time.monotonic(), False, 0.0

    def update(self, step: int) -> None:
        check_signals()
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


# --- signals: raised where they land, delivered again where Python drops them ----------------------
#
# A handler that raises (KeyboardInterrupt for SIGINT, Terminated for SIGTERM) stops a run wherever
# it is, and every ``finally`` (Lava's stop()) runs. But Python runs a signal handler between any
# two bytecodes, also inside a weakref callback or a ``__del__``, and an exception raised there is
# *ignored*: printed as "Exception ignored in ..." (``sys.unraisablehook``) and the run goes on.
# Brian2 tracks its objects in weak sets (``brian2/core/tracking.py``, ``InstanceTrackerSet.remove``
# runs whenever one is collected): a Ctrl-C during the many short Brian2 runs of a distribution
# verdict landed there about half the time, and the command then wrote its report and exited 0.
# So :func:`catch_signals` remembers each signal it turns into an exception, and an exception of that
# kind that reaches ``sys.unraisablehook`` is not printed but its signal is raised again (it lands on
# the next bytecode outside the callback); :func:`check_signals` is a safe point that raises a signal
# received whose exception was lost any other way (a ``Progress`` call is one; a command calls it
# before and after writing its results).

_raises: dict = {}  # signal number -> the exception its handler raises
_received: list = []  # signals received while catch_signals() is in force, before results_complete()
# done: results_complete() (or restored); in_flight: an exception of ours is on its way up (as far as we
# know: the unraisable hook says when it was dropped); redelivering: the signal our thread is raising again
# once: a signal while an exception of ours is in flight is ignored (a pool worker: its unwinding, Lava's
# stop() included, must not be cut short by the parent's terminate() after a SIGTERM to the whole group)
_state = {"done": False, "in_flight": False, "redelivering": None, "once": False}


def _handler(signum, frame):
    if _state["done"]:  # after results_complete(): too late to stop anything, not recorded
        return
    if _state["redelivering"] == signum:
        _state["redelivering"] = None
        if _state["in_flight"]:  # raised at a safe point meanwhile: once is enough
            return
    elif _state["once"] and _state["in_flight"]:
        return
    _received.append(signum)
    _state["in_flight"] = True
    raise _raises[signum]()


def _deliver_again(signum) -> None:
    import _thread

    time.sleep(0.002)
    if _state["done"] or _state["in_flight"] or signum not in _raises:
        return
    _state["redelivering"] = signum
    _thread.interrupt_main(signum)  # the main thread runs the handler at its next bytecode


def _signal_of(exc_type):
    for signum, kind in _raises.items():
        if isinstance(exc_type, type) and issubclass(exc_type, kind):
            return signum
    return None


def catch_signals(raises: dict, once: bool = False):
    """Make each signal of ``raises`` (signal number -> exception class) raise its exception in the main
    thread, and never be lost (see above). Returns a function that restores the previous handlers
    and ``sys.unraisablehook``. Signals that are ignored (``SIG_IGN``: a background job's SIGINT) stay
    ignored. ``once``: while the exception is on its way up, further signals are ignored (one unwinding,
    never cut short)."""
    import _thread
    import signal

    _raises.clear()
    _received.clear()
    _state.update(done=False, in_flight=False, redelivering=None, once=bool(once))
    previous = {}
    for signum, kind in raises.items():
        if signal.getsignal(signum) is signal.SIG_IGN:
            continue
        _raises[signum] = kind
        previous[signum] = signal.signal(signum, _handler)
    hook = sys.unraisablehook

    def unraisable(info):
        signum = _signal_of(info.exc_type)
        if signum is None or signum not in _received or _state["done"]:
            hook(info)
            return
        # dropped where Python ignores exceptions (a weakref callback, __del__): deliver it again, from
        # another thread and a moment later, once the callback has returned (raised here, in the hook,
        # it would be dropped once more); should it land in a callback again, this repeats
        _state["in_flight"] = False
        # a bare thread: threading.Thread.start() would wait here for the thread to start, and on a loaded
        # machine the redelivered signal could land in that wait, inside this hook, and be dropped again
        # ("Exception ignored in sys.unraisablehook")
        _thread.start_new_thread(_deliver_again, (signum,))

    sys.unraisablehook = unraisable

    def restore():
        _state["done"] = True
        sys.unraisablehook = hook
        for signum, handler in previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        _raises.clear()

    return restore


def check_signals() -> None:
    """A safe point: raise the exception of a signal received (its own raise may have been lost).
    Only in the main thread (the handlers' thread); no-op without :func:`catch_signals`."""
    if _received and not _state["done"] and threading.current_thread() is threading.main_thread():
        signum = _received[-1]
        if signum in _raises:
            _state["in_flight"] = True  # a redelivery on its way is not raised again
            raise _raises[signum]()


def unwound() -> None:
    """The exception of a signal has been handled (with ``catch_signals(..., once=True)``: a pool
    worker's run has unwound): the next signal raises again."""
    _state["in_flight"] = False


def results_complete() -> None:
    """The command's results are written and announced: a signal from now on is too late to stop
    anything and raises nothing (the command ends with its own exit code)."""
    _state["done"] = True
