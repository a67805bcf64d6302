#!/usr/bin/env python
"""Write reference/fidelity.json (what each library rule's deployments learn at its published
parameters) from the demo's reports, build/<rule>/report.json (``./scripts/demo`` first, or
``neurodeploy verify reference/rules/<rule>.yaml --out build/<rule> --seed 3``), and print the markdown table of
docs/verdict.md.

    .venv/bin/python scripts/fidelity_matrix.py [--build build]
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from neurodeploy.library import FIDELITY_MATRIX, fidelity_outcomes, rule_files  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default="build")
    a = ap.parse_args(argv)
    matrix, rows = {}, []
    for path in rule_files():
        name = os.path.basename(path)[:-5]
        with open(os.path.join(a.build, name, "report.json")) as f:
            report = json.load(f)
        got = fidelity_outcomes(report)
        matrix[name] = got
        for backend, e in got.items():
            rows.append(f"| {name} | {backend} | {'yes' if e['faithful'] else '**no**'} | {e['why'] or ''} | "
                        f"{e['remedy'] or ('' if e['faithful'] else 'none measured')} |")
    with open(FIDELITY_MATRIX, "w") as f:
        json.dump(matrix, f, indent=2, sort_keys=True)
        f.write("\n")
    print("| rule | deployment | learns what the model learns | why not | measured remedy |")
    print("|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
