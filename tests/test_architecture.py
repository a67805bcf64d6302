"""The house (issue 20): the layers contract holds (and fails an upward import), no import circle, the
compilation is made once per verify, and a refusal starts without the heavy dependencies."""
import os
import shutil
import subprocess
import sys

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
    out = subprocess.run([sys.executable, "-c", code, str(bad)], capture_output=True, text=True, timeout=60,
                         cwd=ROOT)
    heavy, _ = out.stdout.strip().rsplit(" ", 1)
    assert heavy == "[]", out.stdout + out.stderr
    cli = subprocess.run([sys.executable, "-m", "neurodeploy.cli", "verify", str(bad)], capture_output=True,
                         text=True, timeout=60, cwd=ROOT)
    assert cli.returncode == 2 and cli.stdout == "" and len(cli.stderr.strip().splitlines()) == 1, cli.stderr
    # no wall-time bound here (a loaded CI machine took 6.6 s once): the heavy imports above are the bound


@pytest.mark.parametrize("name", ["load_rule", "verify", "deploy", "deploy_network", "poisson", "load_network",
                                  "import_brian2", "from_synapses", "Compilation", "compile_rule",
                                  "CpuDeployment", "NetworkDeployment", "Report"])
def test_the_public_namespace_lists_and_resolves(name):
    import neurodeploy

    assert name in dir(neurodeploy)
    assert callable(getattr(neurodeploy, name))


HEAVY = ("brian2", "lava", "numba", "sympy", "matplotlib", "distributed", "scipy")


def _modules():
    import ast

    out = {}
    for dirpath, _, files in os.walk(os.path.join(ROOT, "neurodeploy")):
        for f in files:
            if f.endswith(".py"):
                path = os.path.join(dirpath, f)
                name = os.path.relpath(path, ROOT)[:-3].replace(os.sep, ".")
                name = name[:-9] if name.endswith(".__init__") else name
                out[name] = (path, ast.parse(open(path).read()))
    return out


def _imported(node, module, path, modules):
    """The modules an import statement names (absolute)."""
    import ast

    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    base = node.module or ""
    if node.level:
        parts = module.split(".")
        parts = parts if path.endswith("__init__.py") else parts[:-1]
        base = ".".join(parts[:len(parts) - node.level + 1] + ([node.module] if node.module else []))
    return [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]


def test_imports_inside_functions_only_for_heavy_dependencies():
    """Function-level imports of neurodeploy's own modules are for modules that load a heavy optional
    dependency (Brian2, Lava, numba, sympy, matplotlib, Dask, scipy) at their top: the layers have no
    circle, so nothing else needs to hide inside a function."""
    import ast

    modules = _modules()
    top = {}
    for name, (path, tree) in modules.items():
        statements = [n for n in tree.body] + [s for n in tree.body if isinstance(n, ast.Try)
                                               for s in n.body + [h for x in n.handlers for h in x.body]]
        top[name] = [t for n in statements if isinstance(n, (ast.Import, ast.ImportFrom))
                     for t in _imported(n, name, path, modules)]
    heavy = {}

    def is_heavy(name, seen=()):
        if name not in heavy:
            if name in seen:
                return False
            heavy[name] = any(t.split(".")[0] in HEAVY or (t in modules and t != name and is_heavy(t, seen + (name,)))
                              or (t.split(".")[0] == "neurodeploy" and t not in modules and t.rsplit(".", 1)[0] in
                                  modules and is_heavy(t.rsplit(".", 1)[0], seen + (name,)))
                              for t in top[name])
        return heavy[name]

    light = []
    for name, (path, tree) in modules.items():
        def visit(node, in_function, guarded):
            for child in ast.iter_child_nodes(node):
                if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    visit(child, True, False)
                elif isinstance(child, (ast.Try, ast.If)):
                    visit(child, in_function, True)
                elif isinstance(child, ast.ImportFrom) and in_function and not guarded:
                    for t in _imported(child, name, path, modules):
                        t = t if t in modules else t.rsplit(".", 1)[0]
                        if t.startswith("neurodeploy") and t in modules and not is_heavy(t):
                            light.append(f"{os.path.relpath(path, ROOT)}:{child.lineno} {t}")
                else:
                    visit(child, in_function, guarded)
        visit(tree, False, False)
    assert light == [], "\n".join(light)
