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
"""
__version__ = "0.1.0"

from neurodeploy.errors import NeurodeployError, UnsupportedError  # noqa: E402,F401
# The deployment API (numpy only until a connection is built). ``neurodeploy.deploy`` is the
# function; its module stays importable as ``from neurodeploy.deploy import Deployment``.
from neurodeploy.deploy import Deployment, deploy, lif_params  # noqa: E402,F401


#: What a user calls (``dir(neurodeploy)`` lists these; the heavy ones load on first use).
__all__ = ["load_rule", "verify", "Report", "deploy", "deploy_network", "Deployment", "lif_params",
           "poisson", "load_spikes", "SpikeTrains", "load_network", "from_synapses", "import_brian2",
           "NeurodeployError", "UnsupportedError", "DEFAULT_FIDELITY"]


def __dir__():
    return sorted(set(globals()) | set(__all__))


def __getattr__(name):
    # Lazy: importing neurodeploy stays cheap; Brian2 and Lava load on first use.
    if name == "load_rule":
        from neurodeploy.spec.loader import load_rule
        return load_rule
    if name in ("poisson", "load_spikes", "SpikeTrains"):
        from neurodeploy import protocol
        return getattr(protocol, name)
    if name in ("verify", "Report"):
        from neurodeploy import harness
        return getattr(harness, name)
    if name == "deploy_network":
        from neurodeploy.deploy import deploy_network
        return deploy_network
    if name == "load_network":
        from neurodeploy.network import load_network
        return load_network
    if name in ("from_synapses", "import_brian2"):
        from neurodeploy.importers import brian2 as importer
        return importer.from_synapses if name == "from_synapses" else importer.from_spec
    if name == "DEFAULT_FIDELITY":
        from neurodeploy.verdict.fidelity import DEFAULT_FIDELITY
        return DEFAULT_FIDELITY
    raise AttributeError(f"module 'neurodeploy' has no attribute {name!r}")
