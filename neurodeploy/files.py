"""Files written through a temporary name get the permissions of a normally created file."""
from __future__ import annotations

import contextlib
import os
import tempfile


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


# --- one run per output directory, and a run's files all or nothing ---------------------------------

#: The lock file of an output directory while a run uses it (removed at the end).
LOCK_NAME = ".neurodeploy.lock"


class DirectoryInUse(Exception):
    """Another neurodeploy run holds the output directory's lock; ``pid`` is its process (or None)."""

    def __init__(self, folder: str, pid):
        super().__init__(folder)
        self.folder, self.pid = folder, pid


class DirectoryLock:
    """An exclusive ``fcntl.flock`` on ``<folder>/.neurodeploy.lock`` (the folder exists), taken at once
    or refused (:class:`DirectoryInUse`): two runs never interleave in one output directory. The file
    holds the owner's pid; :meth:`release` removes it while still locked, so a run that opened the old
    file before that finds it gone once it gets the lock and opens the new one (the inode check)."""

    def __init__(self, folder: str):
        import fcntl

        self.path = os.path.join(folder, LOCK_NAME)
        for _ in range(100):
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, umask_mode())
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                pid = _read_pid(fd)
                os.close(fd)
                raise DirectoryInUse(folder, pid) from None
            except BaseException:
                os.close(fd)
                raise
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)  # the file was removed (and maybe made again) after we opened it: open it again
        else:
            raise DirectoryInUse(folder, None)
        self.fd = fd
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())

    def release(self) -> None:
        if self.fd is None:
            return
        try:
            if os.stat(self.path).st_ino == os.fstat(self.fd).st_ino:
                os.unlink(self.path)
        except FileNotFoundError:
            pass
        finally:
            os.close(self.fd)
            self.fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()


def _read_pid(fd: int):
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        return int(text) if text.isdigit() else None
    except OSError:
        return None


def identity(path: str):
    """(device, inode) of ``path`` (not following a link), or None: what a run wrote, to remove only that."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def staging_dir(folder: str, prefix: str) -> str:
    """A new hidden directory inside ``folder`` (same file system: its content moves out by rename),
    with the mode a normally created directory gets."""
    import tempfile

    path = tempfile.mkdtemp(prefix=f".{prefix}.", suffix=".partial", dir=folder)
    os.chmod(path, umask_mode(0o777))
    return path


def publish(stage: str, folder: str, last: str, moved: list) -> None:
    """Move every file of ``stage`` into ``folder`` (replacing files of the same name), ``last`` last
    (its presence says the others are complete), then remove ``stage``. Each file moved is appended
    to ``moved`` as (name, identity) at once, so that an interrupted caller can :func:`unpublish`."""
    names = sorted(os.listdir(stage), key=lambda n: (n == last, n))
    for name in names:
        final = os.path.join(folder, name)
        os.replace(os.path.join(stage, name), final)
        moved.append((name, identity(final)))
    os.rmdir(stage)


def unpublish(folder: str, moved: list) -> None:
    """Remove what :func:`publish` moved into ``folder``, each only if it is still the file moved there."""
    for name, ident in reversed(moved):
        path = os.path.join(folder, name)
        if ident is not None and identity(path) == ident:
            try:
                os.unlink(path)
            except OSError:
                pass


def remove_tree(path: str) -> None:
    """Remove a directory a run made for itself (a staging directory), whatever it holds."""
    import shutil

    shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def locked(folder: str, option: str = "--out"):
    """Hold ``folder``'s :class:`DirectoryLock` (the folder exists); another run holding it is bad input,
    one line: :class:`neurodeploy.errors.NeurodeployError` naming ``option``."""
    from neurodeploy.errors import NeurodeployError

    try:
        lock = DirectoryLock(folder)
    except DirectoryInUse as exc:
        who = f"another neurodeploy run (pid {exc.pid})" if exc.pid else "another neurodeploy run"
        raise NeurodeployError(option, "", f"is in use by {who}: wait for it to end or choose another "
                                           f"directory (got {folder})") from None
    except OSError as exc:
        raise NeurodeployError(option, "", f"cannot be locked: {exc.strerror} (got {folder})") from None
    try:
        yield lock
    finally:
        lock.release()


def _atomic(out_dir: str, name: str, write, binary: bool = False) -> str:
    final = os.path.join(out_dir, name)
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", dir=out_dir)
    try:
        follow_umask(fd)  # mkstemp's 600 -> the mode a normal file gets
        with os.fdopen(fd, "wb" if binary else "w") as handle:
            write(handle)
        os.replace(tmp, final)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return final


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
