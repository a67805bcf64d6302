"""The target registry, filled: importing every target package (Brian2, Lava, the emulator) so that its
backends register in :data:`neurodeploy.backend.REGISTRY`."""
from __future__ import annotations

from neurodeploy.backend import REGISTRY
from neurodeploy.emu import backends as _emu  # noqa: F401 - registers emu-float, emu-fixed
from neurodeploy.lava import backends as _lava  # noqa: F401 - registers lava-float, lava-fixed, lava-cpu (Lava loads on use)


def load_all():
    """The registry with every backend registered (Brian2's import is slow: done here, on first use)."""
    from neurodeploy.brian2 import backends as _brian2  # noqa: F401 - registers brian2, brian2-step
    return REGISTRY
