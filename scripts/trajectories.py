"""Behaviour snapshot: every library rule's trajectories and verdict numbers, to compare a refactoring.

    .venv/bin/python scripts/trajectories.py build/trajectories-before      # write the snapshot
    .venv/bin/python scripts/trajectories.py build/trajectories-after --check build/trajectories-before

Runs ``neurodeploy.verify`` (public API) on each library rule's default protocol (seed 3) with
brian2, brian2-step, emu-float, emu-fixed (lava-cpu where the engine cannot run the rule), a
closed loop (stdp_pair) and the example network; stores every backend's trajectory (and post spikes)
and the report's numbers. ``--check``: trajectories bit for bit, report numbers equal (wall times
excluded). Exit 1 on a difference, naming it.
"""
import json
import os
import sys

import numpy as np

import neurodeploy
from neurodeploy.library import rule_files

TIMES = {"seconds", "verdict_seconds", "steps_per_second", "neurodeploy_version"}


def _strip(value):
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k not in TIMES}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def cases():
    from neurodeploy.protocol import make_trains

    for path in rule_files():
        rule = neurodeploy.load_rule(path)
        backends = ["brian2", "brian2-step", "emu-float", "emu-fixed", "lava-cpu"]
        yield rule.name, rule, None, backends
    rule = neurodeploy.load_rule("reference/rules/stdp_pair.yaml")
    yield "stdp_pair-closed", rule, make_trains(rule, "closed-loop", {"steps": 1500}, 3), \
        ["brian2", "brian2-step", "emu-float", "emu-fixed"]
    from neurodeploy.network import load_network, network_trains

    net = load_network("reference/networks/ei_recurrent.yaml", rule)
    yield "ei_recurrent", rule, network_trains(rule, net, 3, 1000), ["brian2", "brian2-step", "emu-float", "emu-fixed"]


def main(out, check=None):
    os.makedirs(out, exist_ok=True)
    bad = []
    for name, rule, trains, backends in cases():
        report = neurodeploy.verify(rule, trains, backends=backends, ensemble=32)
        data = _strip(json.loads(json.dumps(report.to_dict(), default=str)))
        arrays = {b: r.trajectory for b, r in report.results.items()}
        arrays.update({f"{b}:post": r.info["post_spikes"] for b, r in report.results.items() if "post_spikes" in r.info})
        np.savez(os.path.join(out, f"{name}.npz"), **arrays)
        with open(os.path.join(out, f"{name}.json"), "w") as f:
            json.dump(data, f, indent=1, sort_keys=True, default=str)
        print(name, report.outcome, sorted(arrays), flush=True)
        if check:
            old = np.load(os.path.join(check, f"{name}.npz"))
            for key in set(old.files) | set(arrays):
                if key not in old.files or key not in arrays:
                    bad.append(f"{name}: {key} only on one side")
                elif not np.array_equal(old[key], arrays[key], equal_nan=True):
                    bad.append(f"{name}: {key} differs")
            with open(os.path.join(check, f"{name}.json")) as f:
                before = json.load(f)
            after = json.loads(json.dumps(data, sort_keys=True, default=str))
            if before != after:
                keys = [k for k in set(before) | set(after) if before.get(k) != after.get(k)]
                bad.append(f"{name}: report differs in {sorted(keys)}")
    for line in bad:
        print("DIFFERENT:", line)
    return 1 if bad else 0


if __name__ == "__main__":
    args = sys.argv[1:]
    check = args[args.index("--check") + 1] if "--check" in args else None
    sys.exit(main(args[0], check))
