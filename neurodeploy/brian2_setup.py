"""Brian2 as neurodeploy uses it: nothing left in the temp folder, and no signal handler of its own.

Importing Brian2 (``brian2/__init__.py``) opens a debug log ``brian_debug_*.log``
in the temp folder, installs an ``excepthook`` that keeps that log (and a copy
of the script, ``brian_script_*.py``) after any uncaught exception, and
replaces the SIGINT handler by one that turns Ctrl-C during ``Network.run``
into an early stop (and otherwise calls the handler it replaced, which may be
``SIG_IGN``, not callable). :func:`configure` undoes all three with Brian2's
own preferences (``logging.file_log``, ``logging.save_script``,
``logging.delete_log_on_exit``, ``core.stop_on_keyboard_interrupt``; see
``brian2/utils/logger.py``); every neurodeploy module that imports Brian2
imports this one first.
"""
from __future__ import annotations

import logging
import os
import signal
import sys


def _import_brian2() -> None:
    """Import Brian2 the first time. Brian2 does `from pylab import *` for interactive use and falls
    back to numpy when that fails; neurodeploy never uses that namespace, and pylab's matplotlib
    set-up is half of every command's start-up (~0.9 s): it is hidden while Brian2 imports (an
    `import pylab` later works as usual). Brian2 installs its SIGINT handler at import, which only the
    main thread may do: imported first in another thread (a Dask worker's task), that handler, which
    :func:`configure` removes anyway, is skipped instead of failing the import."""
    import threading

    hide_pylab = "pylab" not in sys.modules
    if hide_pylab:
        sys.modules["pylab"] = None
    original = signal.signal
    if threading.current_thread() is not threading.main_thread():
        signal.signal = lambda signum, handler: signal.getsignal(signum)
    try:
        import brian2  # noqa: F401 - runs Brian2's own set-up, which configure() undoes
    finally:
        signal.signal = original
        if hide_pylab:
            del sys.modules["pylab"]


if "brian2" not in sys.modules:
    _import_brian2()
import brian2  # noqa: F401,E402 - runs Brian2's own set-up, which configure() undoes
from brian2 import prefs
from brian2.utils.logger import BrianLogger

_done = False


def configure() -> None:
    """Idempotent: file logging and script copies off, the temp log removed, Ctrl-C a KeyboardInterrupt."""
    global _done
    if _done:
        return
    _done = True
    prefs.logging.file_log = False
    prefs.logging.save_script = False
    prefs.logging.delete_log_on_exit = True
    prefs.core.stop_on_keyboard_interrupt = False
    # a run stopped by a timeout or Ctrl-C leaves objects never added to a network: no warning for that
    BrianLogger.suppress_name("unused_brian_object")
    logger = logging.getLogger("brian2")
    if BrianLogger.file_handler is not None:  # opened at import, before these preferences could apply
        logger.removeHandler(BrianLogger.file_handler)
        BrianLogger.file_handler.close()
        BrianLogger.file_handler = None
    for attr in ("tmp_log", "tmp_script"):
        path = getattr(BrianLogger, attr, None)
        if path:
            for name in (path, f"{path}.1"):
                try:
                    os.remove(name)
                except OSError:
                    pass
            setattr(BrianLogger, attr, None)
    if sys.excepthook is not sys.__excepthook__ and getattr(sys.excepthook, "__module__", "") == "brian2.utils.logger":
        sys.excepthook = sys.__excepthook__
    handler = signal.getsignal(signal.SIGINT)
    if type(handler).__name__ == "_InterruptHandler" and type(handler).__module__ == "brian2":
        previous = handler.previous_handler  # what was there before Brian2 (SIG_IGN stays ignored)
        try:
            signal.signal(signal.SIGINT, previous if previous is not None else signal.default_int_handler)
        except (ValueError, TypeError):  # not the main thread, or not a valid handler
            pass


configure()
