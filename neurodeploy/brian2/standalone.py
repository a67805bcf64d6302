"""Brian2's cpp_standalone builds: an interruptible make, and the build cache (one directory per model and
toolchain, products verified by sha256 before make trusts them)."""
from __future__ import annotations

import contextlib
import functools
import os
import signal

import numpy as np

from neurodeploy.brian2.model import Brian2Model


def _make(b2, build_dir: str, check=lambda: None) -> None:
    """Compile a cpp_standalone project as Brian2's ``compile_source`` does on Unix (``make`` with the
    preferences' arguments), but interruptible: make runs in its own session, so a Ctrl-C (or SIGTERM)
    reaches this process as KeyboardInterrupt (Terminated), which stops make and its compilers and
    propagates (exit 130 / 143), instead of os.system ignoring it and Brian2 reporting a failed build.
    ``check`` (a held ``--timeout``) is called while make runs.

    make trusts a product (``main``, an object file, ``make.deps``) that is newer than its sources: before
    make, every product whose sha256 is not the one recorded after the build that made it is deleted
    (make rebuilds it), and after a successful build the products' hashes are recorded
    (:func:`_verify_products`, :func:`_record_products`): what runs is what was built here."""
    import shlex
    import subprocess

    prefs = b2.prefs.devices.cpp_standalone
    # Brian2's default make arguments are ['-j']: as many compilers at once as there are files (dozens of
    # cc1plus, ~100 MB each): bounded here by the machine's cores
    command = shlex.split(prefs.make_cmd_unix) + [f"-j{os.cpu_count() or 1}" if a == "-j" else a
                                                  for a in prefs.extra_make_args_unix]
    _verify_products(build_dir)
    log = os.path.join(build_dir, "make.log")
    _remove(log)  # a directory, a link or a FIFO there: make's log is written afresh
    with open(log, "w") as out:
        proc = subprocess.Popen(command, cwd=build_dir, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            while True:
                try:
                    code = proc.wait(timeout=0.25)
                    break
                except subprocess.TimeoutExpired:
                    check()
        except BaseException:  # KeyboardInterrupt, Terminated, a timeout: stop the whole build, then propagate
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            proc.wait()
            raise
    if code != 0:
        with open(log, errors="replace") as handle:
            tail = handle.read()[-2000:]
        raise RuntimeError(f"Brian2 cpp_standalone build failed (make exit {code}, log {log}):\n{tail}")
    _record_products(build_dir)


#: The record of a build's products (relative path -> sha256), in its build directory.
BUILD_MANIFEST = "neurodeploy-build.json"


#: The directories Brian2 writes a cpp_standalone project's files into (and main its results).
BUILD_SUBDIRS = ("brianlib", "code_objects", "results", "static_arrays")


def _is_product(relpath: str) -> bool:
    """What make makes (and trusts by time stamp): the program, the object files, the dependency list."""
    return relpath in ("main", "make.deps") or relpath.endswith(".o")


def _sha256(path: str) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _remove(path: str) -> None:
    """Remove whatever is at ``path`` (a file, a link, a FIFO, a directory tree), if anything."""
    import shutil

    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def _products(build_dir: str) -> dict:
    """relative path -> absolute path of every product name found in ``build_dir`` (whatever its kind)."""
    found = {}
    for top, dirs, files in os.walk(build_dir):
        for name in dirs + files:
            full = os.path.join(top, name)
            rel = os.path.relpath(full, build_dir)
            if _is_product(rel):
                found[rel] = full
    return found


def _read_manifest(build_dir: str) -> dict:
    """The recorded products (relative path -> sha256); empty when missing or unreadable (then every
    product is rebuilt)."""
    import json

    path = os.path.join(build_dir, BUILD_MANIFEST)
    if os.path.islink(path) or not os.path.isfile(path):
        return {}
    try:
        with open(path) as handle:
            data = json.load(handle)
        products = data["products"]
        return {str(k): str(v) for k, v in products.items()} if isinstance(products, dict) else {}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def _verify_products(build_dir: str) -> None:
    """Delete every product of ``build_dir`` that is not a regular file whose sha256 is the one recorded
    after the build that made it (replaced, edited, left by an interrupted build, or never recorded):
    make then rebuilds it from the sources Brian2 has just written."""
    recorded = _read_manifest(build_dir)
    for rel, full in _products(build_dir).items():
        regular = os.path.isfile(full) and not os.path.islink(full)
        if not regular or recorded.get(rel) != _sha256(full):
            _remove(full)


def _record_products(build_dir: str) -> None:
    """Record the sha256 of every product of the build that just succeeded (atomically)."""
    import json

    products = {rel: _sha256(full) for rel, full in sorted(_products(build_dir).items())
                if os.path.isfile(full) and not os.path.islink(full)}
    path = os.path.join(build_dir, BUILD_MANIFEST)
    temporary = f"{path}.{os.getpid()}.tmp"
    with open(temporary, "w") as handle:
        json.dump({"products": products}, handle, indent=0, sort_keys=True)
    _remove(path)
    os.replace(temporary, path)


def _cache_root() -> str:
    """The cache directory (NEURODEPLOY_CACHE, default ``~/.cache/neurodeploy``), created if needed; one
    line (NeurodeployError) when it is not a directory or cannot be made one."""
    from neurodeploy.errors import NeurodeployError

    configured = os.environ.get("NEURODEPLOY_CACHE")
    root = configured or os.path.join(os.path.expanduser("~"), ".cache", "neurodeploy")
    source, hint = ("NEURODEPLOY_CACHE", "") if configured else ("cache", "; set NEURODEPLOY_CACHE to a directory")
    if os.path.lexists(root) and not os.path.isdir(root):
        kind = "a dangling symbolic link" if os.path.islink(root) else "a file, not a directory"
        raise NeurodeployError(source, "", f"must be a directory for the Brian2 build cache: it is {kind}{hint} "
                                           f"(got {root})")
    try:
        os.makedirs(root, exist_ok=True)
    except OSError as exc:
        raise NeurodeployError(source, "", f"cannot be created for the Brian2 build cache: "
                                           f"{exc.strerror or type(exc).__name__}{hint} (got {root})") from None
    return root


def _own_dir(path: str, links: bool = False) -> None:
    """``path`` (inside the cache) as a directory: anything else there (a file, a dangling link; a link
    unless ``links``) is removed."""
    if (os.path.islink(path) and not links) or (os.path.lexists(path) and not os.path.isdir(path)):
        _remove(path)
    os.makedirs(path, exist_ok=True)


def _repair(build_dir: str) -> None:
    """Remove what no build makes and what would break or redirect one: links, FIFOs, sockets and devices
    anywhere in ``build_dir`` (Brian2 would read or write through them), and anything but a directory
    where Brian2 expects its directories (a file named ``results``). Safe while another process builds
    there: no build makes any of these."""
    import stat

    for name in BUILD_SUBDIRS:
        path = os.path.join(build_dir, name)
        if os.path.lexists(path) and (os.path.islink(path) or not os.path.isdir(path)):
            _remove(path)
    for lock in (build_dir + ".lock",):  # the caller's lock file: a regular file
        if os.path.lexists(lock) and (os.path.islink(lock) or not os.path.isfile(lock)):
            _remove(lock)
    for top, dirs, files in os.walk(build_dir):
        for name in dirs + files:
            full = os.path.join(top, name)
            try:
                mode = os.lstat(full).st_mode
            except FileNotFoundError:
                continue
            if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                _remove(full)
        dirs[:] = [d for d in dirs if os.path.isdir(os.path.join(top, d))]


@functools.lru_cache(maxsize=None)
def _compiler(cxx: tuple) -> tuple:
    """The C++ compiler make runs (``$(CXX)``): its path and ``--version``; the CPU (``-march=native``)."""
    import platform
    import shutil
    import subprocess

    found = shutil.which(cxx[0])
    try:
        version = subprocess.run(list(cxx) + ["--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        version = ""
    cpu = ""
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as handle:
            cpu = "\n".join(sorted({line.strip() for line in handle if line.startswith(("model name", "flags"))}))
    return os.path.realpath(found) if found else None, version, platform.machine(), cpu


#: The Brian2 preferences that reach the makefile (flags, macros, paths, libraries), the code or the run.
TOOLCHAIN_PREFS = ("codegen.cpp.extra_compile_args", "codegen.cpp.extra_compile_args_gcc",
                   "codegen.cpp.extra_compile_args_msvc", "codegen.cpp.extra_link_args", "codegen.cpp.define_macros",
                   "codegen.cpp.include_dirs", "codegen.cpp.library_dirs", "codegen.cpp.runtime_library_dirs",
                   "codegen.cpp.libraries", "codegen.cpp.headers", "devices.cpp_standalone.openmp_threads",
                   "devices.cpp_standalone.make_cmd_unix", "devices.cpp_standalone.run_cmd_unix")


def _toolchain() -> tuple:
    """What changes the compiled code besides the generated sources: Brian2's version, its compiler
    choice and flags (``-march=native``: the CPU too), the preferences of :data:`TOOLCHAIN_PREFS`, the
    C++ compiler make runs and its version (:func:`_compiler`)."""
    import shlex

    import brian2 as b2
    from brian2.codegen.cpp_prefs import get_compiler_and_args

    chosen = {}
    for name in TOOLCHAIN_PREFS:
        with contextlib.suppress(KeyError, AttributeError):
            chosen[name] = repr(b2.prefs[name])
    cxx = tuple(shlex.split(os.environ.get("CXX", "g++")) or ["g++"])
    return b2.__version__, repr(get_compiler_and_args()), sorted(chosen.items()), cxx, _compiler(cxx)


def _build_key(model: Brian2Model) -> str:
    """The build directory's name: a hash of everything that changes the generated code or how it is
    compiled: the model's code, its constants by name and exact value (Brian2 writes them into the code),
    and :func:`_toolchain`."""
    import hashlib

    constants = sorted((name, np.asarray(value, dtype=float).tobytes().hex(), str(getattr(value, "dim", "")))
                       for name, value in model.namespace.items())
    code = (model.model, model.on_pre, model.on_post, model.regular, model.delayed, model.reward)
    return hashlib.sha256(repr((code, constants, _toolchain())).encode()).hexdigest()[:16]


def _standalone_dir(model: Brian2Model) -> str:
    """The build directory of ``model`` in the cache (NEURODEPLOY_CACHE), a real directory, with anything
    that would break or redirect a build removed (:func:`_repair`); what make built there is verified by
    :func:`_make` before it runs."""
    root = _cache_root()
    parent = os.path.join(root, "brian2-standalone")
    _own_dir(parent, links=True)  # e.g. moved to a larger disk
    path = os.path.join(parent, _build_key(model))
    _own_dir(path)
    _repair(path)
    return path
