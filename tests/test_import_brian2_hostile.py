"""Hostile Brian2 definitions for the importer (issue 19), with the harness of ``tests/test_hostile.py``.

* Hostile specs given to ``neurodeploy import-brian2``: the rejection contract (exit 2, one line on
  stderr, nothing on stdout, nothing created or changed, within 2 s); the ones that used to hang or
  exhaust memory (a unit of ``9**9**9``: Brian2 evaluates units) only as child processes with a
  1 GiB address-space cap, so a regression cannot take the test run down.
* Hostile ``--out`` paths: refused before anything is read.
* Real SIGINT and SIGTERM while the command runs: 130/143, one line saying what it was doing,
  nothing written.
* A seeded fuzz of Brian2 expressions, units and subexpressions built from hostile parts (towers
  of powers, numbers past a float, text, truth values, comparisons, Brian2's constants and
  variables), imported in one capped child process: each either imports (and the rule loader
  reads it) or is refused with a one-line :class:`NeurodeployError`, each within a second.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from neurodeploy.errors import printable
from test_hostile import (CHILD_ADDRESS_SPACE, MAX_RSS_MB, MAX_SECONDS, ROOT, assert_rejected,
                          assert_untouched_rejection, run_child, run_in_process, tree)

from test_import_brian2 import SPEC  # noqa: E402  examples/synapses/STDP.py as an import spec
JUMP, UPDATE, UNIT = "Apre += dApre\n", "w = clip(w + Apre, 0, gmax)", "  w : 1\n"

#: name -> ((old, new) edits of SPEC..., the message after "neurodeploy: error: spec.yaml: ", or None: any).
HOSTILE_SPECS = {
    "unit_tower": ((UNIT, "  w : 9**9**9\n"),
                   "model.w: 'w : 9**9**9': an exponent must be a name or a number of magnitude at most 16 "
                   "(got 9 ** 9)"),
    "unit_huge_exponent": ((UNIT, "  w : 9**999999999\n"),
                           "model.w: 'w : 9**999999999': an exponent must be a name or a number of magnitude at "
                           "most 16 (got 999999999)"),
    "unit_float_overflow": ((UNIT, "  w : 1e200*1e200\n"),
                            "model.w: 'w : 1e200*1e200': a constant larger than 1e+300 (got 1e200*1e200)"),
    "power_tower_4": ((UPDATE, "w = clip(w + Apre * ((((2**16)**16)**16)**16), 0, gmax)"),
                      "on_post: 'w = clip(w + Apre * ((((2**16)**16)**16)**16), 0, gmax)': a constant larger than "
                      "1e+300 (got ((2**16)**16)**16)"),
    "power_tower_7": ((UPDATE, "w = clip(w + Apre * (((((((2**16)**16)**16)**16)**16)**16)**16), 0, gmax)"),
                      "on_post: 'w = clip(w + Apre * (((((((2**16)**16)**16)**16)**16)**16)**16), 0, gmax)': a "
                      "constant larger than 1e+300 (got ((2**16)**16)**16)"),
    "power_tower_float": ((JUMP, "Apre += ((((1.5**16)**16)**16)**16)**16 * dApre\n"),
                          "on_pre: 'Apre += ((((1.5**16)**16)**16)**16)**16 * dApre': a constant larger than "
                          "1e+300 (got ((1.5**16)**16)**16)"),
    "power_tower_exponent": ((JUMP, "Apre += dApre * 2**2**2**2**2\n"),
                             "on_pre: 'Apre += dApre * 2**2**2**2**2': an exponent must be a name or a number of "
                             "magnitude at most 16 (got 2 ** 2 ** 2 ** 2)"),
    "degree_tower": ((UPDATE, "w = clip(w + ((Apre**16)**16)**16, 0, gmax)"),
                     "on_post: 'w = clip(w + ((Apre**16)**16)**16, 0, gmax)': degree higher than 32 "
                     "(got (Apre**16)**16)"),
    "subexpression_tower": (("  w : 1\n", "  w : 1\n  g = (((((2**16)**16)**16)**16)**16) * gmax : 1\n"),
                            "model.g: 'g = (((((2**16)**16)**16)**16)**16) * gmax : 1': a constant larger than "
                            "1e+300 (got ((2**16)**16)**16)"),
    "exp_overflow": ((JUMP, "Apre += dApre * exp(exp(exp(100)))\n"),
                     "on_pre: 'Apre += dApre * exp(exp(exp(100)))': a constant larger than 1e+300 "
                     "(got exp(exp(100)))"),
    "float_literal_inf": ((JUMP, "Apre += 1e400\n"),
                          "on_pre: 'Apre += 1e400': a constant larger than 1e+300 (got 1e400)"),
    "text_jump": ((JUMP, "Apre += 'abc'\n"),
                  "on_pre: 'Apre += 'abc'': the constant 'abc' is not a number (got 'abc')"),
    "bytes_jump": ((JUMP, "Apre += b'abc' * dApre\n"),
                   "on_pre: 'Apre += b'abc' * dApre': the constant b'abc' is not a number (got b'abc')"),
    "none_jump": ((JUMP, "Apre += None\n"), "on_pre: 'Apre += None': the constant None is not a number (got None)"),
    "true_jump": ((JUMP, "Apre += True\n"), "on_pre: 'Apre += True': the constant True is not a number (got True)"),
    "comparison_jump": ((JUMP, "Apre += Apre > dApre\n"),
                        "on_pre: 'Apre += Apre > dApre': a comparison has no counterpart in a rule outside "
                        "int(a > b) (got Apre > dApre)"),
    "logic_update": ((UPDATE, "w = clip(w + (Apre or gmax), 0, gmax)"),
                     "on_post: 'w = clip(w + (Apre or gmax), 0, gmax)': a logical operator (or) has no counterpart "
                     "in a rule outside int(a > b) (got Apre or gmax)"),
    "the_time_in_the_namespace": (("gmax: 0.01,", "gmax: 0.01, t: 5,"), (JUMP, "Apre += dApre * t\n"),
                                  "on_pre: 'Apre += dApre * t': reads 't' (the time), which a rule cannot (got t)"),
    "parens_5000": ((JUMP, "Apre += " + "(" * 5000 + "dApre" + ")" * 5000 + "\n"), None),
    "flat_sum_10000": ((JUMP, "Apre += " + "+".join(["dApre"] * 10000) + "\n"), None),
}
#: Specs that used to hang or exhaust memory: only as capped child processes.
CHILD_ONLY = {"unit_tower", "unit_huge_exponent", "power_tower_7", "power_tower_float"}
#: Others also run as child processes (start-up included).
CHILD_TOO = ["power_tower_4", "text_jump", "exp_overflow", "flat_sum_10000"]


def write_spec(tmp_path, name):
    text = SPEC
    for old, new in HOSTILE_SPECS[name][:-1]:
        assert old in text, name
        text = text.replace(old, new, 1)
    assert len(text.encode()) < 65536, name  # the loader reads at most 64 KB
    folder = tmp_path / "specs"
    folder.mkdir(exist_ok=True)
    path = folder / "spec.yaml"
    path.write_text(text)
    return path


def expected(name):
    message = HOSTILE_SPECS[name][-1]
    return None if message is None else f"spec.yaml: {message}"


@pytest.mark.parametrize("name", sorted(set(HOSTILE_SPECS) - CHILD_ONLY))
def test_hostile_spec_in_process(name, tmp_path, capsys):
    spec = write_spec(tmp_path, name)
    assert_untouched_rejection(capsys, ["import-brian2", spec, "--out", tmp_path / "rule.yaml"], expected(name),
                               [tmp_path], f"import-brian2 {name}")


@pytest.mark.parametrize("name", sorted(CHILD_ONLY) + CHILD_TOO)
def test_hostile_spec_as_a_capped_child(name, tmp_path):
    spec = write_spec(tmp_path, name)
    before = tree(tmp_path)
    child = run_child(["import-brian2", spec, "--out", tmp_path / "rule.yaml"], f"import-brian2 {name}")
    # the contract of test_hostile's assert_child_rejected, with the time as CPU time: these refusals come
    # after Brian2 is imported (about 1.3 s of CPU), which a shared machine stretches past 2 s of wall time
    assert not child.timed_out, f"still running after {child.wall:.1f} s (killed)"
    assert_rejected(child.code, child.out, child.err, expected(name))
    assert child.rss_mb < MAX_RSS_MB, f"peak memory {child.rss_mb:.0f} MB"
    assert child.cpu <= MAX_SECONDS, f"took {child.cpu:.2f} s of CPU ({child.wall:.2f} s), python start-up included"
    assert tree(tmp_path) == before


def test_the_good_spec_imports(tmp_path, capsys):
    """Each hostile spec is this one with its edits: refused for them alone."""
    (tmp_path / "spec.yaml").write_text(SPEC)
    code, out, err, _ = run_in_process(capsys, ["import-brian2", tmp_path / "spec.yaml", "--out",
                                                tmp_path / "rule.yaml"], "import-brian2 good")
    assert (code, err) == (0, "") and (tmp_path / "rule.yaml").is_file()


# --- --out ----------------------------------------------------------------------------------------------------

def _out_case(kind, tmp_path):
    """(--out, --force?, the message) of each bad output file."""
    if kind == "name-300":
        out = tmp_path / ("n" * 300)
        return str(out), False, f"--out: name too long (300 bytes in one name, at most 255) (got {out})"
    if kind == "path-5000":
        out = str(tmp_path) + "/d" * 2500
        message = printable(f"path too long ({len(os.fsencode(out))} bytes, at most 4095) (got {out})", 600)
        return out, False, f"--out: {message}"  # a message is cut at 600 characters
    if kind == "trailing-slash":
        out = f"{tmp_path}/x.yaml/"
        return out, False, f"--out: ends with '/': a directory path, not a file (got {out})"
    if kind == "through-file":
        (tmp_path / "plain").write_text("x")
        out = tmp_path / "plain" / "x.yaml"
        return str(out), False, f"--out: its folder is not a directory (got {out})"
    if kind == "missing-folder":
        out = tmp_path / "nowhere" / "x.yaml"
        return str(out), False, f"--out: its folder does not exist (got {out})"
    if kind == "directory":
        return str(tmp_path), False, f"--out: is a directory, not a file (got {tmp_path})"
    if kind == "dangling-symlink-forced":
        os.symlink(tmp_path / "nowhere.yaml", tmp_path / "link.yaml")
        out = tmp_path / "link.yaml"
        return str(out), True, f"--out: exists and is not a regular file (got {out})"
    if kind == "existing":
        (tmp_path / "mine.yaml").write_text("mine\n")
        out = tmp_path / "mine.yaml"
        return str(out), False, f"--out: exists: use --force to replace it (got {out})"
    if kind == "proc":
        return "/proc/self/x.yaml", False, "--out: is inside a kernel file system, proc (got /proc/self/x.yaml)"
    if kind == "empty":
        return "", False, "--out: must be a file path (got '')"
    raise AssertionError(kind)


OUT_KINDS = ["name-300", "path-5000", "trailing-slash", "through-file", "missing-folder", "directory",
             "dangling-symlink-forced", "existing", "proc", "empty"]


@pytest.mark.parametrize("kind", OUT_KINDS)
def test_hostile_out_file(kind, tmp_path, capsys):
    spec_dir = tmp_path / "in"
    spec_dir.mkdir()
    (spec_dir / "spec.yaml").write_text(SPEC)
    work = tmp_path / "work"
    work.mkdir()
    out, force, message = _out_case(kind, work)
    args = ["import-brian2", spec_dir / "spec.yaml", "--out", out] + (["--force"] if force else [])
    assert_untouched_rejection(capsys, args, message, [tmp_path], f"import-brian2 --out {kind}")


# --- signals --------------------------------------------------------------------------------------------------

def _catches_sigterm(pid) -> bool:
    try:
        with open(f"/proc/{pid}/status") as status:
            caught = next(int(line.split()[1], 16) for line in status if line.startswith("SigCgt:"))
    except (OSError, StopIteration):
        return False
    return bool(caught & (1 << (signal.SIGTERM - 1)))


STAGE = re.compile(r"neurodeploy: (interrupted \(SIGINT\)|terminated \(SIGTERM\)) while import-brian2 was "
                   r"(checking --out|reading and converting spec\.yaml|writing \S+): nothing written\n")


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_during_import_brian2(sig, code, tmp_path):
    """A real signal once the command runs (Brian2 loading, the spec converting): its exit code, one line
    saying what import-brian2 was doing (was: Lava processes and reports), nothing written."""
    (tmp_path / "spec.yaml").write_text(SPEC)
    before = tree(tmp_path)
    proc = subprocess.Popen([sys.executable, "-m", "neurodeploy.cli", "import-brian2", str(tmp_path / "spec.yaml"),
                             "--out", str(tmp_path / "rule.yaml")], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.time() + 30
    while not _catches_sigterm(proc.pid) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)  # until neurodeploy's main() handles signals (before: Python's defaults)
    time.sleep(0.2)  # into the command: loading Brian2 takes about a second
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    if proc.returncode == 0:  # finished before the signal (a fast machine): nothing to see
        pytest.skip("import-brian2 finished before the signal")
    assert (proc.returncode, out) == (code, "")
    assert STAGE.fullmatch(err), err
    assert ("SIGINT" in err) == (sig == signal.SIGINT)
    assert tree(tmp_path) == before


# --- a seeded fuzz of expressions, units and subexpressions -----------------------------------------------------

FUZZ_CHILD = r"""
import json, math, random, resource, sys, time
limit = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
from neurodeploy.errors import NeurodeployError
from neurodeploy.importers.brian2 import from_strings

rng = random.Random(int(sys.argv[2]))
ATOMS = ["x", "y", "A", "tau", "e", "pi", "inf", "t", "dt", "i", "N", "lastupdate", "v_post", "unknown",
         "2", "16", "0", "0.5", "1e300", "1e-300", "1e308", "1e400", "9" * 30, "'abc'", "True", "None",
         "rand()", "exp(700)", "exp(x)", "log(0)", "sqrt(-1)", "abs(-3)", "int(x > y)", "sin(x)", "ms", "mV"]
OPS = ["+", "-", "*", "/", "**", "%", "//", ">", "and"]

def expr(depth):
    if depth <= 0 or rng.random() < 0.3:
        return rng.choice(ATOMS)
    kind = rng.random()
    if kind < 0.15:
        return f"-{expr(depth - 1)}"
    if kind < 0.3:
        return f"({expr(depth - 1)})**{rng.choice(['16', '2', '-16', '17', '0.5', 'x', '16**16'])}"
    if kind < 0.4:
        return f"{rng.choice(['exp', 'log', 'sqrt', 'abs', 'int', 'clip'])}({expr(depth - 1)})"
    return f"({expr(depth - 1)} {rng.choice(OPS)} {expr(depth - 1)})"

def unit():
    parts = [rng.choice(["metre", "second", "volt", "9", "16", "2", "1e200", "1", "0.5"])]
    for _ in range(rng.randint(0, 4)):
        parts.append(rng.choice(["*", "/", "**", "**-"]))
        parts.append(rng.choice(["metre", "second", "9", "16", "2", "1e200", "999999", "9**9"]))
    return "".join(parts)

M = "w : {u}\ndx/dt = -x/tau : 1 (event-driven)\ndy/dt = -y/tau : 1 (event-driven){sub}"
from_strings(M.format(u="1", sub=""), "x += 1\nw = clip(w + A*y, 0, 1)", "y += 1", {"tau": "20 ms", "A": 0.01},
             "warm")  # Brian2 and sympy imported: the times below are the cases'
results = []
for k in range(int(sys.argv[3])):
    where = k % 4
    e = expr(4)
    model, pre, post = M.format(u="1", sub=""), "x += 1\nw = clip(w + A*y, 0, 1)", "y += 1\nw = clip(w + A*x, 0, 1)"
    if where == 0:
        pre = f"x += {e}\nw = clip(w + A*y, 0, 1)"
    elif where == 1:
        post = f"y += 1\nw = clip(w + {e}, 0, 1)"
    elif where == 2:
        model, post = M.format(u="1", sub=f"\ng = {e} : 1"), "y += 1\nw = clip(w + g*x, 0, 1)"
    else:
        e = unit()
        model = M.format(u=e, sub="")
    start = time.perf_counter()
    try:
        from_strings(model, pre, post, {"tau": "20 ms", "A": 0.01}, "fuzz")
        outcome = "imported"
    except NeurodeployError as exc:
        outcome = "refused" if "\n" not in str(exc) and "\r" not in str(exc) else "refused over lines: " + str(exc)
    except Exception as exc:
        outcome = f"{type(exc).__name__}: {exc}"[:300]
    results.append({"where": where, "text": e[:300], "outcome": outcome, "seconds": time.perf_counter() - start})
print(json.dumps(results))
"""


def test_fuzzed_expressions_import_or_are_refused_in_one_line_at_once():
    """300 seeded hostile expressions (jumps, weight updates, subexpressions, units) in one child process
    under a 1 GiB cap: no traceback, no message over several lines, none slower than a second."""
    proc = subprocess.run([sys.executable, "-c", FUZZ_CHILD, str(CHILD_ADDRESS_SPACE), "19", "300"], cwd=ROOT,
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(results) == 300
    bad = [r for r in results if r["outcome"] not in ("imported", "refused")]
    assert not bad, bad[:5]
    slow = sorted((r for r in results if r["seconds"] > max(1.0, MAX_SECONDS / 2)), key=lambda r: -r["seconds"])
    assert not slow, slow[:5]
    counts = {o: sum(r["outcome"] == o for r in results) for o in ("imported", "refused")}
    assert counts["refused"] > 100 and counts["imported"] > 0, counts  # the fuzz reaches both outcomes
