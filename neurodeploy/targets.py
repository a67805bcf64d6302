"""The target registry, filled: importing every target package (Brian2, Lava, the emulator) so that its
backends register in :data:`neurodeploy.backend.REGISTRY`."""
from __future__ import annotations

from neurodeploy.backend import REGISTRY

def load_all():
    """Import the backend modules so they register (Brian2 and Lava imports are slow: done lazily)."""
    from neurodeploy.brian2 import backends as brian2_backends  # noqa: F401
    from neurodeploy.lava import backends  # noqa: F401
    from neurodeploy.emu import backends as _emu  # noqa: F401
    return REGISTRY
