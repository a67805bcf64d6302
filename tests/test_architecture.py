"""The house (issue 20): the layers contract holds (and fails an upward import), no import circle, the
compilation is made once per verify, and a refusal starts without the heavy dependencies."""
import os
import shutil
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LINT = os.path.join(os.path.dirname(sys.executable), "lint-imports")


def _lint(package_parent: str, config: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=package_parent)
    return subprocess.run([LINT, "--config", config, "--no-cache"], capture_output=True, text=True, env=env,
                          cwd=package_parent, timeout=300)


def test_the_layers_contract_holds():
    out = _lint(ROOT, os.path.join(ROOT, "pyproject.toml"))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "1 kept, 0 broken" in out.stdout


def test_an_upward_import_breaks_the_contract(tmp_path):
    """The contract can fail: the compilation importing the verdict (inside a function, where the old
    circle hid its imports) is reported, naming both modules."""
    shutil.copytree(os.path.join(ROOT, "neurodeploy"), tmp_path / "neurodeploy",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(os.path.join(ROOT, "pyproject.toml"), tmp_path / "pyproject.toml")
    with open(tmp_path / "neurodeploy" / "compile" / "plan.py", "a") as f:
        f.write("\n\ndef _upward():\n    from neurodeploy.verdict.fidelity import DEFAULT_FIDELITY\n"
                "    return DEFAULT_FIDELITY\n")
    out = _lint(str(tmp_path), str(tmp_path / "pyproject.toml"))
    assert out.returncode != 0
    assert "0 kept, 1 broken" in out.stdout
    assert "neurodeploy.compile.plan -> neurodeploy.verdict.fidelity" in out.stdout


def test_no_import_circle():
    """No two modules import each other, directly or through others (function-level imports included)."""
    import grimp

    graph = grimp.build_graph("neurodeploy", cache_dir=None)
    index, low, stack, on, circles = {}, {}, [], set(), []

    def visit(v):  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.find_modules_directly_imported_by(v):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    sys.setrecursionlimit(max(10000, sys.getrecursionlimit()))
    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    # the package's own __init__ maps public names to modules lazily (importlib): no static import
    assert circles == []


def test_one_verify_compiles_once(monkeypatch):
    """Following a rule through one verify: the trace statistics, the lowering and the plans are made
    once (one compile_rule; make_plan once per mode; trace_stats once; the lowering once per flavour),
    and the report holds that compilation."""
    import neurodeploy
    from neurodeploy.compile import compilation, lowering, plan
    from neurodeploy.protocol import poisson

    calls = {"compile_rule": 0, "make_plan": 0, "trace_stats": 0}

    def counting(module, name):
        original = getattr(module, name)

        def wrapper(*args, **kwargs):
            calls[name] += 1
            return original(*args, **kwargs)
        monkeypatch.setattr(module, name, wrapper)

    import neurodeploy.verification as verification

    rule = neurodeploy.load_rule(os.path.join(ROOT, "reference", "rules", "stdp_pair.yaml"))
    rule = type(rule)(**{**rule.__dict__, "name": "stdp_pair_once"})  # a rule no earlier test lowered
    lowering.lower.cache_clear()
    plan.engine_reason.cache_clear()
    plan.approximation_reason.cache_clear()
    counting(verification, "compile_rule")
    counting(compilation, "make_plan")
    counting(compilation, "trace_stats")
    trains = poisson(rule, n_pre=4, n_post=3, steps=400, rate=20.0, seed=1)
    report = verification.verify(rule, trains, ["brian2-step", "emu-float", "emu-fixed"], ensemble=8)
    assert calls == {"compile_rule": 1, "make_plan": 2, "trace_stats": 1}
    info = lowering.lower.cache_info()
    assert info.misses <= 2  # the exact lowering (the engine's verdict) and the approximating one
    assert isinstance(report.plans, compilation.Compilation) and report.plans.trains is trains
    assert set(report.plans) == {"float", "fixed"}


def test_a_refusal_starts_without_brian2_lava_or_numba(tmp_path):
    """A bad rule file is refused (exit 2, one line) before Brian2, Lava, numba or sympy's heavy parts
    load: the start-up of a refusal stays a fraction of a second."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nparameters: {A: 1\n")
    code = ("import sys, time; t = time.perf_counter()\n"
            "from neurodeploy.cli import main\n"
            "try:\n    main(['verify', sys.argv[1]])\n"
            "except SystemExit as e:\n    pass\n"
            "except Exception as e:\n    print(type(e).__name__, file=sys.stderr)\n"
            "heavy = sorted(m for m in ('brian2', 'lava', 'numba', 'matplotlib') if m in sys.modules)\n"
            "print(heavy, time.perf_counter() - t)\n")
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code, str(bad)], capture_output=True, text=True, timeout=60,
                         cwd=ROOT)
    elapsed = time.perf_counter() - start
    heavy, _ = out.stdout.strip().rsplit(" ", 1)
    assert heavy == "[]", out.stdout + out.stderr
    cli = subprocess.run([sys.executable, "-m", "neurodeploy.cli", "verify", str(bad)], capture_output=True,
                         text=True, timeout=60, cwd=ROOT)
    assert cli.returncode == 2 and cli.stdout == "" and len(cli.stderr.strip().splitlines()) == 1, cli.stderr
    assert elapsed < 5.0  # generous: the bound is the heavy imports above; bench measures the time


@pytest.mark.parametrize("name", ["load_rule", "verify", "deploy", "deploy_network", "poisson", "load_network",
                                  "import_brian2", "from_synapses", "Compilation", "compile_rule",
                                  "CpuDeployment", "NetworkDeployment", "Report"])
def test_the_public_namespace_lists_and_resolves(name):
    import neurodeploy

    assert name in dir(neurodeploy)
    assert callable(getattr(neurodeploy, name))
