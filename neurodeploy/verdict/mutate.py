"""The mutation self-test: how much the fixed-point verdict detects, and how often it cries wolf.

Detection power: every constant of the fixed plan is broken in turn (one
mutant each): exponent ``E+1`` and ``E-1`` (the constant doubled, halved; at
an end of the exponent range the mantissa doubled or, when even, halved),
mantissa one step further out and one step further in (``|S| + 1``,
``|S| - 1``; ``S = ±1`` further in drops the term), sign flipped; and, as an
*order* mutant, the product's dependency swapped (``x0`` <-> ``y0``).
Mutants that no 4-bit mantissa / exponent can express are skipped, as are
products the plan already drops (mantissa 0). Each mutant runs the
quantization chain (:mod:`.quantization`) on the bit-exact emulator; it is
*caught* when a link fails, and *caught by the trajectories* when the
behavioural part of a link (not only the structural check of the constants)
fails.

False alarms: the unmutated plan, re-planned on each of ``seeds`` spike
trains drawn with seeds the verdict was never tuned on (``seed + 1 ..``),
through the same chain; the fraction that fails.
"""
from __future__ import annotations

import dataclasses
import numbers
import time

from neurodeploy.verdict import FAILED, PASSED
from neurodeploy.verdict.quantization import ENSEMBLE_SIZE, quantization_chain
from neurodeploy.compile.loihi import supplied_traces
from neurodeploy.emu.engine import simulate

MUTATIONS = ("E+1", "E-1", "S+1", "S-1", "sign", "dependency")


def _mutated_product(p, kind):
    s, e = p.mantissa, p.exponent
    sign = 1 if s > 0 else -1
    if kind == "E+1":  # the constant doubled (at the top exponent: the mantissa doubled)
        e, s = (e + 1, s) if e < 8 else (e, 2 * s)
    elif kind == "E-1":  # halved (at the bottom exponent, an even mantissa halved: a widened one)
        if e > -7:
            e -= 1
        elif s % 2 == 0:
            s //= 2
        else:
            return None
    elif kind == "S+1":
        s = s + sign
    elif kind == "S-1":
        s = s - sign
    elif kind == "sign":
        s = -s
        if s == 8 and e < 8:  # -8 x 2^e negated: 8 does not fit 4 bits, 4 x 2^(e+1) is the same constant
            s, e = 4, e + 1
    elif kind == "dependency":
        swap = {"x0": "y0", "y0": "x0"}
        if p.dependency not in swap:
            return None
        return dataclasses.replace(p, dependency=swap[p.dependency])
    if not (-8 <= s <= 7 and -7 <= e <= 8):
        return None
    return dataclasses.replace(p, mantissa=s, exponent=e, realised=s * 2.0 ** e)


def mutated_plan(plan, k: int, kind: str):
    """``plan`` with its product ``k`` mutated by ``kind`` (:data:`MUTATIONS`), its dw/dt strings rebuilt;
    None where the mutant does not exist (no 4-bit mantissa / exponent expresses it)."""
    q = _mutated_product(plan.products[k], kind)
    if q is None:
        return None
    products = plan.products[:k] + (q,) + plan.products[k + 1:]
    dw = " ".join(x.text for x in products if x.text and x.target == "dw").lstrip("+ ") or "0 * x0"
    dt = " ".join(x.text for x in products if x.text and x.target == "dt").lstrip("+ ")
    return dataclasses.replace(plan, products=products, dw=dw, dt=dt)


def mutants(plan) -> list:
    """(label, kind, mutated plan) for every constant of ``plan`` and every mutation that exists."""
    out = []
    for k, p in enumerate(plan.products):
        if p.mantissa == 0:
            continue
        for kind in MUTATIONS:
            mutated = mutated_plan(plan, k, kind)
            if mutated is not None:
                out.append((f"{p.term}: {kind}", kind, mutated))
    return out


def _behavioural(entries) -> bool:
    constants, rounding = entries
    if rounding["outcome"] == FAILED:
        return True
    return constants["outcome"] == FAILED and not constants["max_abs_error_normalized"] <= constants["tolerance"]["max_abs"]


def single_run(rule, plan, trains):
    """The fixed-point run lava-fixed would make (emu-fixed, Lava's seed), supplied traces included."""

    supplied = supplied_traces(rule, plan, trains) if plan.three_factor else None
    return simulate(plan, plan.weights_to_lava(trains.w0), trains.pre, trains.post, scale=plan.weight_scale,
                    supplied=supplied)


def self_test(rule, trains_for_seed, seed: int, seeds: int = 100, k: int = ENSEMBLE_SIZE, progress=None) -> dict:
    """Mutation score on the trains of ``seed`` and false-alarm rate over ``seeds`` other seeds.

    ``trains_for_seed(s)`` returns the protocol's spike trains for seed ``s``. With ``seeds`` 0 the
    false-alarm rate is None (not measured, never 0: ``neurodeploy mutate`` refuses ``--seeds 0``)."""
    if isinstance(seeds, bool) or not isinstance(seeds, numbers.Integral) or seeds < 0:
        raise ValueError(f"seeds must be a whole number >= 0 (got {seeds!r})")
    from neurodeploy.compile.compilation import compile_plans

    start = time.perf_counter()
    trains = trains_for_seed(seed)
    plans = compile_plans(rule, trains, approximate=True)
    results = []
    for label, kind, plan in mutants(plans["fixed"]):
        single = single_run(rule, plan, trains)
        entries = quantization_chain(rule, dict(plans, fixed=plan), trains, single, k)
        caught = [e["share"] for e in entries if e["outcome"] == FAILED]
        results.append({"mutant": label, "kind": kind, "caught": bool(caught), "caught_by": caught,
                        "caught_by_trajectories": bool(caught) and _behavioural(entries),
                        "constants_error": entries[0]["max_abs_error_normalized"],
                        "constants_tolerance": entries[0]["tolerance"]["max_abs"]})
        if progress:
            progress(f"mutant {label}: {'caught by ' + ', '.join(caught) if caught else 'NOT caught'}")
    unmutated = quantization_chain(rule, plans, trains, single_run(rule, plans["fixed"], trains), k)
    alarms = []
    for s in range(seed + 1, seed + 1 + seeds):
        t = trains_for_seed(s)
        p = compile_plans(rule, t, approximate=True)
        fixed = p["fixed"]
        entries = quantization_chain(rule, p, t, single_run(rule, fixed, t), k)
        if any(e["outcome"] == FAILED for e in entries):
            alarms.append({"seed": s, "failed": [f"{e['share']}: {e.get('message')}" for e in entries
                                                 if e["outcome"] == FAILED]})
        if progress and (s - seed) % 10 == 0:
            progress(f"false-alarm seeds: {s - seed}/{seeds}, {len(alarms)} failed")
    caught = sum(r["caught"] for r in results)
    return {
        "rule": rule.name, "seed": seed, "ensemble_size": k, "mutants": len(results), "caught": caught,
        "caught_by_trajectories": sum(r["caught_by_trajectories"] for r in results),
        "mutation_score": caught / len(results) if results else None,
        "unmutated_outcomes": {e["share"]: e["outcome"] for e in unmutated},
        "unmutated_passed": all(e["outcome"] == PASSED for e in unmutated),
        "smallest_detected_rel_error": {c["term"]: c["smallest_detected_rel_error"] for c in unmutated[0]["constants"]},
        "false_alarm_seeds": seeds, "false_alarms": len(alarms),
        "false_alarm_rate": len(alarms) / seeds if seeds else None, "false_alarm_details": alarms[:10],
        "results": results, "seconds": round(time.perf_counter() - start, 2),
    }


def render(summary: dict) -> str:
    lines = [f"rule {summary['rule']}: mutation self-test on seed {summary['seed']} "
             f"(ensemble {summary['ensemble_size']} rounding seeds)", "",
             f"{'mutant':<40} {'caught by':<22} trajectories"]
    for r in summary["results"]:
        lines.append(f"{r['mutant']:<40} {', '.join(r['caught_by']) or 'NOT CAUGHT':<22} "
                     f"{'yes' if r['caught_by_trajectories'] else 'no'}")
    score = summary["mutation_score"]
    lines += ["", "smallest relative error of each constant the trajectories alone detect (unmutated plan):"]
    for term, e in summary["smallest_detected_rel_error"].items():
        lines.append(f"  {term}: " + ("not exercised by these trains (or dropped)" if e is None else f"{100 * e:.3g}%"))
    lines += ["",
              f"mutants caught: {summary['caught']}/{summary['mutants']}"
              + (f" ({100 * score:.1f}%)" if score is not None else "")
              + f", by the trajectories {summary['caught_by_trajectories']}/{summary['mutants']}",
              "false alarms of the unmutated plan: " + (
                  f"{summary['false_alarms']}/{summary['false_alarm_seeds']} seeds" if summary["false_alarm_seeds"]
                  else "not checked (no seeds)")]
    return "\n".join(lines)
