"""The Brian2 cpp_standalone build cache (NEURODEPLOY_CACHE/brian2-standalone/<key>/) runs only what it
built (issue 19): a product (``main``, an object file, ``make.deps``) whose sha256 is not the one recorded
after its build is rebuilt, never run; the key covers what changes the code or its compilation (the
model's code and constants, Brian2's version, the compiler and its flags); a cache that is not a directory
is one line; what would break or redirect a build inside the cache (a file named ``results``, links,
FIFOs) is removed."""
import json
import os
import subprocess

import numpy as np
import pytest

import neurodeploy.brian2_setup  # noqa: F401  (before brian2)
from conftest import rule_path
from neurodeploy.brian2 import backends as B
from neurodeploy.brian2 import standalone as S
from neurodeploy.targets import load_all
from neurodeploy.errors import NeurodeployError
from neurodeploy.protocol import poisson
from neurodeploy.spec.loader import load_rule


@pytest.fixture(scope="module")
def model():
    return B.reference_model(load_rule(rule_path("stdp_pair")))


def test_a_cache_that_is_not_a_directory_is_one_line(model, monkeypatch, tmp_path):
    """Was NotADirectoryError (a traceback)."""
    regular = tmp_path / "cache"
    regular.write_text("not a directory\n")
    monkeypatch.setenv("NEURODEPLOY_CACHE", str(regular))
    with pytest.raises(NeurodeployError) as info:
        S._standalone_dir(model)
    assert str(info.value) == (f"NEURODEPLOY_CACHE: must be a directory for the Brian2 build cache: it is a file, "
                               f"not a directory (got {regular})")
    monkeypatch.setenv("NEURODEPLOY_CACHE", str(regular / "below"))
    with pytest.raises(NeurodeployError) as info:
        S._standalone_dir(model)
    assert str(info.value) == (f"NEURODEPLOY_CACHE: cannot be created for the Brian2 build cache: Not a directory "
                               f"(got {regular / 'below'})")
    assert regular.read_text() == "not a directory\n"  # the user's file is left alone


def test_what_would_break_or_redirect_a_build_is_removed(model, monkeypatch, tmp_path):
    """A regular file named ``results`` (was FileExistsError at the run), a FIFO (Brian2 would block reading
    it), a link (Brian2 and main would write through it); a key directory that is a file."""
    monkeypatch.setenv("NEURODEPLOY_CACHE", str(tmp_path))
    build = S._standalone_dir(model)
    assert os.path.dirname(build) == str(tmp_path / "brian2-standalone") and os.path.isdir(build)
    outside = tmp_path / "outside"
    outside.mkdir()
    with open(os.path.join(build, "results"), "w") as handle:
        handle.write("x")
    os.makedirs(os.path.join(build, "code_objects"))
    os.mkfifo(os.path.join(build, "code_objects", "objects.cpp"))
    os.symlink(outside, os.path.join(build, "static_arrays"))
    os.symlink(outside / "main.cpp", os.path.join(build, "main.cpp"))
    with open(os.path.join(build, "run.cpp"), "w") as handle:
        handle.write("// kept: Brian2 compares and rewrites its sources itself\n")
    assert S._standalone_dir(model) == build
    assert sorted(os.listdir(build)) == ["code_objects", "run.cpp"]
    assert os.listdir(os.path.join(build, "code_objects")) == []
    import shutil

    shutil.rmtree(build)
    with open(build, "w") as handle:  # the key directory itself a file
        handle.write("x")
    assert S._standalone_dir(model) == build and os.path.isdir(build)


def test_the_key_covers_the_code_the_constants_brian2_and_the_compiler_flags(model, monkeypatch, tmp_path):
    """The key covered the model's strings and its constants' names: a new value, another Brian2 or other
    compiler flags shared a build directory (make does not see a new compiler or Brian2)."""
    import dataclasses

    import brian2 as b2

    monkeypatch.setenv("NEURODEPLOY_CACHE", str(tmp_path))
    first = S._standalone_dir(model)
    assert S._standalone_dir(model) == first  # the same inputs, the same build
    name = next(iter(model.namespace))
    other_value = dataclasses.replace(model, namespace=dict(model.namespace, **{name: model.namespace[name] * 2}))
    keys = {"value": S._standalone_dir(other_value)}
    monkeypatch.setattr(b2, "__version__", b2.__version__ + ".post1")
    keys["brian2"] = S._standalone_dir(model)
    monkeypatch.undo()
    monkeypatch.setenv("NEURODEPLOY_CACHE", str(tmp_path))
    prefs = b2.prefs.codegen.cpp
    before = list(prefs.extra_compile_args_gcc)
    prefs.extra_compile_args_gcc = before + ["-DNEURODEPLOY_TEST"]  # Brian2's preferences: set and restored
    try:
        keys["flags"] = S._standalone_dir(model)
    finally:
        prefs.extra_compile_args_gcc = before
    monkeypatch.setenv("CXX", "clang++")
    keys["compiler"] = S._standalone_dir(model)
    assert len({first, *keys.values()}) == 5, keys


class FakeMake:
    """subprocess.Popen for make: records which products exist when make starts, builds nothing."""

    seen = []

    def __init__(self, command, cwd=None, **kwargs):
        FakeMake.seen.append(sorted(os.listdir(cwd)))
        self.pid = 0

    def wait(self, timeout=None):
        return 0


def _write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as handle:
        handle.write(text)


def test_make_deletes_every_product_it_did_not_record(monkeypatch, tmp_path):
    """make trusts a product newer than its sources: a replaced ``main`` (newer mtime) was run. Before make,
    a product whose hash is not the recorded one (or never recorded, or not a regular file) is deleted
    (make rebuilds it); after make, the products' hashes are recorded."""
    import neurodeploy.brian2_setup  # noqa: F401
    import brian2 as b2

    monkeypatch.setattr(subprocess, "Popen", FakeMake)
    build = str(tmp_path / "build")
    _write(os.path.join(build, "main"), "built here")
    _write(os.path.join(build, "objects.o"), "object")
    _write(os.path.join(build, "code_objects", "c.o"), "object c")
    _write(os.path.join(build, "make.deps"), "deps")
    _write(os.path.join(build, "main.cpp"), "source")
    FakeMake.seen.clear()
    S._make(b2, build)  # nothing recorded yet (a build of an older neurodeploy): every product is rebuilt
    assert FakeMake.seen[-1] == ["code_objects", "main.cpp", "make.log"]
    for name, text in (("main", "built here"), ("objects.o", "object"), ("code_objects/c.o", "object c"),
                       ("make.deps", "deps")):  # what the (fake) make built
        _write(os.path.join(build, name), text)
    S._record_products(build)
    with open(os.path.join(build, S.BUILD_MANIFEST)) as handle:
        recorded = json.load(handle)["products"]
    assert sorted(recorded) == ["code_objects/c.o", "main", "make.deps", "objects.o"]
    S._make(b2, build)  # all verified: nothing deleted
    assert FakeMake.seen[-1] == ["code_objects", "main", "main.cpp", "make.deps", "make.log", S.BUILD_MANIFEST,
                                 "objects.o"]
    _write(os.path.join(build, "main"), "#!/bin/sh\necho replaced\n")  # replaced, newer than its sources
    os.utime(os.path.join(build, "main"), (2e9, 2e9))
    _write(os.path.join(build, "code_objects", "c.o"), "edited")
    os.remove(os.path.join(build, "make.deps"))
    os.makedirs(os.path.join(build, "make.deps"))  # not a regular file
    S._make(b2, build)
    assert FakeMake.seen[-1] == ["code_objects", "main.cpp", "make.log", S.BUILD_MANIFEST, "objects.o"]
    assert os.listdir(os.path.join(build, "code_objects")) == []


@pytest.mark.skipif(not B._can_compile(), reason="no make and C++ compiler")
def test_a_replaced_binary_in_the_cache_is_rebuilt_not_run(monkeypatch, tmp_path):
    """The audit's case end to end: ``main`` replaced in a cached build (newer mtime) and a regular file named
    ``results`` there; the next cpp_standalone run rebuilds main, does not run the replacement, and gives
    the first run's trajectory."""
    monkeypatch.setenv("NEURODEPLOY_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(B, "CODEGEN_TARGET", "cpp_standalone")
    rule = load_rule(rule_path("stdp_pair"))
    trains = poisson(rule, n_pre=2, n_post=2, steps=100, rate=30.0, seed=5)
    runner = load_all().get("brian2")
    first = runner.run(rule, trains, {})
    assert first.info["brian2_target"] == "cpp_standalone"
    (build,) = [p for p in (tmp_path / "cache" / "brian2-standalone").iterdir() if p.is_dir()]
    marker = tmp_path / "replacement-ran"
    main = build / "main"
    main.write_text(f"#!/bin/sh\ntouch '{marker}'\nexit 0\n")
    main.chmod(0o755)
    os.utime(main, (2e9, 2e9))  # newer than every source: make alone would keep it
    import shutil

    shutil.rmtree(build / "results")
    (build / "results").write_text("x")
    again = runner.run(rule, trains, {})
    assert not marker.exists(), "the replaced binary was run"
    assert (build / "results").is_dir() and main.read_bytes()[:4] == b"\x7fELF"
    np.testing.assert_array_equal(again.trajectory, first.trajectory)
