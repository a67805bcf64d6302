"""Standalone code generation: a rule compiled to scripts a person can read and deploy.

* :func:`emit_brian2` -- a Brian2 script (numpy and brian2 only) with the
  rule's parameters as named quantities and the same ``Synapses`` model as the
  ``brian2`` reference backend (:func:`~neurodeploy.brian2.model.reference_model`).
* :func:`emit_lava` -- a Lava script (numpy and lava only) with the plan's
  ``Loihi2FLearningRule`` written out literally (dw string, impulses, taus,
  epoch), the weight scale as a named constant, and the same ``LearningDense``
  wiring as :func:`neurodeploy.lava.backends.run_lava`. Its header states the
  traffic the trace scales assume (protocol, rate, seed, peak per trace); the
  fixed-point script warns at run time when a trace reaches 127. Constants under
  "parameters" each take effect when edited.
* :func:`emit_lava_cpu` -- for a rule the learning engine cannot express: a Lava
  script running the custom ``RuleSynapses`` process (imports neurodeploy),
  marked not deployable to the learning engine.
* :func:`write_compiled` -- writes them (and the plans and their traffic as JSON) atomically.

Both scripts drive the synapses with the default protocol (10 pre x 10 post,
100 steps of 10 Hz Poisson spikes, ``numpy.random.default_rng(0)``, pre drawn
before post, as :func:`neurodeploy.protocol.poisson`) when run, print the
final weights (n_post, n_pre) in rule units, and expose ``simulate(...)``
returning the weight after every step, (steps, n_post, n_pre).

Text from the rule file only ever reaches the scripts inside docstrings and
comments (escaped) or as ``repr`` literals; parameter names are identifiers
checked by the loader and are bound as module names only when they cannot
shadow anything the script uses.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile

import numpy as np

from neurodeploy.codegen.brian2_script import emit_brian2
from neurodeploy.codegen.lava_script import emit_lava, emit_lava_cpu, parameter_destinations, traffic_text
from neurodeploy.codegen.text import SCRIPT_PROTOCOL, TRACE_LIMIT, version
from neurodeploy.files import follow_umask
from neurodeploy.spec.ir import Rule

TARGETS = ("brian2", "lava")

__all__ = ["emit_brian2", "emit_lava", "emit_lava_cpu", "write_compiled", "plans_for", "plans_json", "traffic_text",
           "parameter_destinations", "SCRIPT_PROTOCOL", "TRACE_LIMIT", "TARGETS", "version"]


# -- plans and files -----------------------------------------------------------------
def plans_for(rule: Rule, trains=None) -> dict:
    """{"fixed": Plan, "float": Plan} scaled on ``trains`` (the default verify protocol if None)."""
    from neurodeploy.compile.compilation import compile_plans
    from neurodeploy.protocol import default_trains

    return compile_plans(rule, trains if trains is not None else default_trains(rule))


def _json_safe(value):
    """Non-finite floats -> None (strict JSON)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        return _json_safe(value.item())
    return value


def plans_json(plans: dict, mode: str | None = None, traffic: dict | None = None) -> str:
    """The plans as JSON; with ``mode``, which one the script runs, and ``traffic``, what they assume."""
    data = {m: p.to_dict() for m, p in plans.items()}
    if mode is not None:
        data["script_mode"] = mode
    if traffic is not None:
        data["traffic"] = dict(traffic, text=traffic_text(traffic))
    return json.dumps(_json_safe(data), indent=2, sort_keys=True, allow_nan=False) + "\n"


def write_atomic(path: str, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file in the same directory and ``os.replace``."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        follow_umask(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_compiled(rule: Rule, target: str, out_dir: str, trains=None, mode: str = "fixed") -> list:
    """Write the standalone script(s) for ``target`` into ``out_dir``; return the paths written.

    ``brian2``: ``<name>_brian2.py``. ``lava``: ``<name>_lava.py`` (the ``mode`` plan, fixed
    by default) and ``<name>_plan.json`` (fixed and float plans, the traffic they assume), the
    plans scaled on ``trains`` (default: :func:`neurodeploy.protocol.default_trains`, Poisson
    10 Hz). A rule the learning engine cannot express gets a ``lava-cpu`` script
    (:func:`emit_lava_cpu`) and no plan.
    """
    from neurodeploy.lava.deploy import describe_traffic
    from neurodeploy.compile.plan import engine_reason
    from neurodeploy.protocol import default_trains

    if target not in TARGETS:
        raise ValueError(f"unknown target {target!r} (choose from {', '.join(TARGETS)})")
    if mode not in ("fixed", "float"):
        raise ValueError(f"unknown mode {mode!r}")
    files = []
    if target == "brian2":
        files.append((f"{rule.name}_brian2.py", emit_brian2(rule)))
    elif engine_reason(rule) is not None:
        files.append((f"{rule.name}_lava.py", emit_lava_cpu(rule, engine_reason(rule))))
    else:
        trains = trains if trains is not None else default_trains(rule)
        plans = plans_for(rule, trains)
        traffic = describe_traffic(trains, plans[mode])
        files.append((f"{rule.name}_lava.py", emit_lava(rule, plans[mode], traffic)))
        files.append((f"{rule.name}_plan.json", plans_json(plans, mode, traffic)))
    os.makedirs(out_dir, exist_ok=True)
    paths = []
    for name, text in files:
        path = os.path.join(out_dir, name)
        write_atomic(path, text)
        paths.append(path)
    return paths
