"""neurodeploy: write a synaptic plasticity rule once, compile it to Brian2 and
Lava (Loihi 2 learning engine), and verify every backend against the reference.

Python API (the objects the CLI uses)::

    from neurodeploy import load_rule, poisson, verify
    rule = load_rule("reference/rules/stdp_pair.yaml")
    trains = poisson(rule, n_pre=10, n_post=10, steps=2000, rate=10.0, seed=3)   # rate: Hz or 10*brian2.Hz
    report = verify(rule, trains)            # runs all four backends (a path works too: verify("r.yaml"))
    report.passed, report.comparisons        # the numbers in report.json
    report.write("build/stdp_pair")          # trajectories.npz, report.json, report.md

    from neurodeploy import deploy           # a rule's connection for your own Lava network
    d = deploy("reference/rules/stdp_pair.yaml", shape=(4, 5), mode="fixed", traffic=10.0)

Every name loads on first use: importing neurodeploy (or any of its modules) stays cheap, and Brian2
and Lava load only when a run needs them.
"""
from neurodeploy.version import __version__  # noqa: F401

#: What a user calls: public name -> (module, attribute). ``dir(neurodeploy)`` lists these.
_PUBLIC = {
    "load_rule": ("neurodeploy.spec.loader", "load_rule"),
    "verify": ("neurodeploy.verification", "verify"),
    "Report": ("neurodeploy.report", "Report"),
    "deploy": ("neurodeploy.lava.deploy", "deploy"),
    "deploy_network": ("neurodeploy.lava.deploy", "deploy_network"),
    "Deployment": ("neurodeploy.lava.deploy", "Deployment"),
    "CpuDeployment": ("neurodeploy.lava.deploy", "CpuDeployment"),
    "NetworkDeployment": ("neurodeploy.lava.deploy", "NetworkDeployment"),
    "lif_params": ("neurodeploy.compile.loihi", "lif_params"),
    "compile_rule": ("neurodeploy.compile.compilation", "compile_rule"),
    "Compilation": ("neurodeploy.compile.compilation", "Compilation"),
    "poisson": ("neurodeploy.protocol", "poisson"),
    "load_spikes": ("neurodeploy.protocol", "load_spikes"),
    "make_trains": ("neurodeploy.protocol", "make_trains"),
    "SpikeTrains": ("neurodeploy.protocol", "SpikeTrains"),
    "load_network": ("neurodeploy.network", "load_network"),
    "from_synapses": ("neurodeploy.importers.brian2", "from_synapses"),
    "import_brian2": ("neurodeploy.importers.brian2", "import_brian2"),
    "NeurodeployError": ("neurodeploy.errors", "NeurodeployError"),
    "UnsupportedError": ("neurodeploy.errors", "UnsupportedError"),
    "DEFAULT_FIDELITY": ("neurodeploy.verdict.fidelity", "DEFAULT_FIDELITY"),
}
__all__ = list(_PUBLIC)


def __dir__():
    return sorted(set(globals()) | set(__all__))


def __getattr__(name):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'neurodeploy' has no attribute {name!r}")
    import importlib

    module, attribute = _PUBLIC[name]
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value  # once: later lookups are plain attributes
    return value
