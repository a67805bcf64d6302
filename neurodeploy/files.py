"""Files written through a temporary name get the permissions of a normally created file."""
from __future__ import annotations

import os


def umask_mode(base: int = 0o666) -> int:
    """``base`` with the process's umask applied: what ``open(path, "w")`` would have created."""
    mask = os.umask(0o022)
    os.umask(mask)
    return base & ~mask


def follow_umask(path_or_fd) -> None:
    """``tempfile.mkstemp`` creates files with mode 600; give them the mode the umask asks for."""
    if isinstance(path_or_fd, int):
        os.fchmod(path_or_fd, umask_mode())
    else:
        os.chmod(path_or_fd, umask_mode())
