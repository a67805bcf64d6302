"""neurodeploy: write a synaptic plasticity rule once, compile it to Brian2 and
Lava (Loihi 2 learning engine), and verify every backend against the reference.

Python API (the objects the CLI uses)::

    from neurodeploy import load_rule, poisson, verify
    rule = load_rule("reference/rules/stdp_pair.yaml")
    trains = poisson(rule, n_pre=10, n_post=10, steps=2000, rate=10.0, seed=3)
    report = verify(rule, trains)            # runs all four backends
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
    raise AttributeError(f"module 'neurodeploy' has no attribute {name!r}")
