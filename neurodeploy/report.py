"""A verify report: the record of one run (:class:`Report`), the files it writes (trajectories.npz,
report.json, report.md, figures), and its human-readable renderings (the stdout table, report.md)."""
from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field

import numpy as np

from neurodeploy.version import __version__
from neurodeploy.backend import RunResult
from neurodeploy.compile.compilation import Compilation, compile_rule
from neurodeploy.files import _atomic
from neurodeploy.protocol import SpikeTrains
from neurodeploy.spec.ir import Rule
from neurodeploy.verdict import EXIT_CODES, FAILED, NOT_CHECKED, PASSED, Comparison, counts, overall
from neurodeploy.verdict.fidelity import DEFAULT_FIDELITY


def _pct(value) -> str:
    return "n/a" if value is None else f"{100 * value:.3g}%"


def _sci(value) -> str:
    return "n/a" if value is None else f"{value:.3g}"


def summary_table(data: dict) -> str:
    """The table `verify` prints: one line per backend, one per comparison."""
    lines = [f"rule {data['rule']}: {data['protocol']} seed={data['seed']} steps={data['steps']} "
             f"synapses={data['n_post']}x{data['n_pre']}"
             + (f" (mask: {data['mask']['present']} present)" if data.get("mask") else ""), ""]
    lines += fidelity_lines(data) + [""]
    if data.get("engine") is not None:
        lines += [f"learning engine: cannot run this rule: {data['engine']}", ""]
    lines.append(f"{'backend':<12} {'ran':<4} {'seconds':>8} {'steps/s':>9}  note")
    for b in data["backends"]:
        if b["ran"]:
            lines.append(f"{b['name']:<12} {'yes':<4} {b['seconds']:>8.2f} {b['steps_per_second']:>9.0f}")
        else:
            lines.append(f"{b['name']:<12} {'no':<4} {'':>8} {'':>9}  {b['reason']}")
    lines.append("")
    lines.append("where it comes from: the links, each judged on its own (errors over every step, / the weight range)")
    lines.append(f"{'comparison':<34} {'share':<15} {'max|err|/range':>15} {'rmse/range':>11} "
                 f"{'tolerance (max, rmse)':>22}  result")
    for c in data["comparisons"]:
        if c["share"] in ("fidelity", "learning", "window"):
            continue
        tol = c["tolerance"] or {"max_abs": None, "rmse": None}
        verdict = _verdict(c)
        if c.get("warnings"):
            verdict += " [" + "; ".join(c["warnings"]) + "]"
        lines.append(f"{c['reference'] + ' -> ' + c['candidate']:<34} {c['share']:<15} "
                     f"{_sci(c['max_abs_error_normalized']):>15} {_sci(c['rmse_normalized']):>11} "
                     f"{_sci(tol['max_abs']) + ', ' + _sci(tol['rmse']):>22}  {verdict}")
    lines += _measured_lines(data)
    lines += _distribution_lines(data)
    lines += _spike_lines(data)
    lines += ["", "ran: " + "; ".join(f"{k} {v}" for k, v in data.get("steps_ran", {}).items())]
    lines.append("")
    lines.append(outcome_line(data))
    return "\n".join(lines)


def _signed(value) -> str:
    return "n/a" if value is None else f"{value:+.3g}"


def fidelity_lines(data: dict) -> list:
    """The first lines of a report: does each deployment learn what the model (brian2) learns?"""
    nothing = [c for c in data["comparisons"] if c["share"] == "learning"]
    if nothing:
        return ["Does the deployment learn what the model learns? NOT CHECKED: " + nothing[0]["message"]]
    entries = [c for c in data["comparisons"] if c["share"] == "fidelity"]
    dist = [c for c in data["comparisons"] if c["share"] == "distribution"]
    if not entries and not dist:
        return ["Does the deployment learn what the model learns? not judged here (no deployment and brian2 "
                "ran the whole protocol on the same spikes)"]
    out = []
    if entries:
        f = next((c["tolerance"]["fidelity"] for c in entries if c.get("tolerance")), data.get("fidelity", 0.2))
        out.append("Does the deployment learn what the model learns? Judged against brian2 (the model as written), "
                   f"on the learned change dw = w(end) - w(0) of every synapse, fidelity tolerance {f:g}: "
                   f"gain within 1 +- {f:g}, net change within {f:g} of the model's per-synapse change, "
                   f"correlation >= {1 - f:g}.")
    for c in entries:
        word = {"passed": "YES", "failed": "NO", "not checked": "NOT JUDGED"}[c["outcome"]]
        head = f"  {c['candidate']}: {word}"
        if c.get("gain") is None:
            out.append(head + f" ({c.get('message', '')})")
            continue
        r, k = c["reference_learned"], c["candidate_learned"]
        out.append(head + f": learns {100 * c['gain']:.0f}% of the model's change (gain {c['gain']:.3g}); net change "
                   f"{_signed(k['net'])} vs the model's {_signed(r['net'])} ({c['net_error']:.2g} of its per-synapse "
                   f"change, rms {r['rms']:.3g}); correlation {_sci(c['correlation'])}; over {c['compared_synapses']} "
                   f"synapses, steps 0..{c['compared_steps'][1]}")
        if c.get("stands_for"):
            out.append(f"    (for {c['stands_for']})")
        if c["judged_on"] != f"{c['candidate']}'s run":
            one = c.get("single_run") or {}
            out.append(f"    judged on {c['judged_on']}; one run: gain {_sci(one.get('gain'))}, net change "
                       f"{_signed((one.get('candidate_learned') or {}).get('net'))}, scatter "
                       f"{_sci(one.get('scatter'))} of the change per synapse (rounding noise, not judged)")
        if c["outcome"] == "failed":
            if c.get("reason"):
                out.append(f"    why: {c['reason']}")
            out.append(f"    {c['message']}")
        for point in c.get("same_step_points") or []:
            out.append(f"    at dt = {point['x']:g} ms (pre and post in one step): the model learns "
                       f"{_signed(point['reference'])}, the deployment {_signed(point['candidate'])}: the simulators' "
                       "orders of same-step spikes differ (Brian2 runs on_pre first); shown, not judged")
        shares = c.get("attribution") or []
        if shares:
            out.append("    deviation (rms " + f"{c['scatter']:.2g} of the change per synapse) from: " + ", ".join(
                f"{s['link']} {abs(100 * s['share']):.0f}%" if abs(s['share']) < 0.005 else f"{s['link']} {100 * s['share']:.0f}%"
                for s in shares))
    for c in [c for c in data["comparisons"] if c["share"] == "window"]:
        word = {"passed": "YES", "failed": "NO", "not checked": "NOT JUDGED"}[c["outcome"]]
        gain = f"gain {c['gain']:.3g}, correlation {_sci(c.get('correlation'))}" if c.get("gain") is not None else ""
        out.append(f"  {c['candidate']} on the STDP window (added: random trains mix LTP and LTD): {word}"
                   + (f" ({gain})" if gain else "") + (f": {c['message']}" if c.get("message") else ""))
        for point in c.get("same_step_points") or []:
            out.append(f"    at dt = 0 (one step): the model {_signed(point['reference'])}, the deployment "
                       f"{_signed(point['candidate'])} (the simulators' same-step orders; shown, not judged)")
    for c in dist:
        out.append(f"  {c['candidate']} (network/closed loop, in distribution against {c['reference']}): "
                   f"{ {'passed': 'YES', 'failed': 'NO', 'not checked': 'NOT JUDGED'}[c['outcome']]}"
                   + (f" ({c['message']})" if c.get("message") else ""))
    return out


def _as_markdown(lines: list) -> list:
    """Indented report lines as a markdown list (two spaces: an item; four: a sub-item)."""
    return [("  - " + line[4:]) if line.startswith("    ") else ("- " + line[2:]) if line.startswith("  ") else line
            for line in lines]


def _distribution_lines(data: dict) -> list:
    from neurodeploy.verdict.distribution import describe

    out = []
    for c in data["comparisons"]:
        if c["share"] == "distribution" and c.get("test"):
            out += ["", f"distribution ({c['reference']} -> {c['candidate']}, final weights in units of the range, "
                        f"post rate in Hz):"] + ["  " + line for line in describe(c)]
    return out


def _measured_lines(data: dict) -> list:
    if not data.get("measured"):
        return []
    out = ["", "measured (judged link by link above, not as a whole):"]
    for m in data["measured"]:
        out.append(f"  {m['reference'] + ' -> ' + m['candidate']:<32} {m['share']:<15} "
                   f"{_sci(m['max_abs_error_normalized']):>15} {_sci(m['rmse_normalized']):>11}")
    return out


def _verdict(c: dict) -> str:
    word = {"passed": "pass", "failed": "FAIL", "not checked": "not checked"}[c["outcome"]]
    return word + (f" ({c['message']})" if c.get("message") else "")


def outcome_line(data: dict) -> str:
    """PASSED / FAILED / NOT CHECKED with the comparison counts."""
    n = data["counts"]
    word = {"passed": "PASSED", "failed": "FAILED", "not checked": "NOT CHECKED (nothing was checked)"}[data["outcome"]]
    return f"{word}: {n['passed']} passed, {n['failed']} failed, {n['not checked']} not checked"


def _spike_lines(data: dict) -> list:
    """Closed loop: post spikes per backend, and where each compared pair's spike trains part."""
    counts = data["protocol_stats"].get("post_spikes")
    if not isinstance(counts, dict):
        return []
    seconds = data["steps"] * data["dt_ms"] * 1e-3
    lines = ["", "post spikes (closed loop): " + ", ".join(
        f"{name} {n} ({n / data['n_post'] / seconds:.1f} Hz)" for name, n in counts.items())]
    for c in data["comparisons"]:
        spikes = c.get("post_spikes")
        if spikes:
            first = spikes["first_difference_step"]
            lines.append(f"  {c['reference']} -> {c['candidate']}: " + (
                "identical" if first is None else
                f"first differ at step {first}, {spikes['steps_that_differ']} steps differ, "
                f"rate {spikes['rate_hz'][0]:.2f} vs {spikes['rate_hz'][1]:.2f} Hz"))
    return lines


def network_lines(net: dict) -> list:
    """A network's populations and projections (report.json's ``network``), as markdown lines."""
    lines = [f"`{net['network']}` ({net['file']}, connectivity drawn from seed {net['structure_seed']}; "
             "sources are the inputs then the LIF populations, in this order):", ""]
    for p in net["populations"]:
        if p["kind"] == "poisson":
            lines.append(f"- {p['name']}: {p['n']} Poisson inputs at {p['rate_hz']:g} Hz")
        else:
            lines.append(f"- {p['name']}: {p['n']} LIF, tau_u {p['tau_u_ms']:g} ms, tau_v {p['tau_v_ms']:g} ms, "
                         f"threshold {p['threshold']:g} x the weight range")
    for pr in net["projections"]:
        lines.append(f"- {pr['from']} -> {pr['to']}: {'plastic' if pr['plastic'] else 'static'}, p {pr['p']:g}, "
                     f"{pr['synapses']} synapses")
    return lines


def plan_table(plan: dict) -> str:
    """The quantization plan as markdown tables."""
    out = [f"weight scale: {plan['weight_scale']:.6g} rule units per Lava unit; sign mode {plan['sign_mode']}; "
           f"Lava weight bounds {plan['w_lava_bounds']}", "",
           f"dw = `{plan['dw']}`", "",
           "| rule term | dependency | factors | asked S*2^E | realised | S | E | rel. error | shift |",
           "|---|---|---|---|---|---|---|---|---|"]
    for p in plan["products"]:
        out.append(f"| `{p['term']}` | {p['dependency']} | {' '.join(p['factors']) or '-'} | {p['requested']:.6g} | "
                   f"{p['realised']:.6g} | {p['mantissa']} | {p['exponent']} | {_pct(p['rel_error'])} | {p['shift']} |")
    out += ["", "| trace | Lava | tau (steps) | impulse | scale k | peak on protocol | peak in Lava units |",
            "|---|---|---|---|---|---|---|"]
    for t in plan["traces"]:
        out.append(f"| {t['name']} | {t['slot']} | {t['tau_steps']:.4g} | {t['impulse']:.6g} | {t['scale']:.6g} | "
                   f"{t['peak']:.4g} | {t['peak_lava']:.4g} |")
    out += ["", f"the plan's own deviation estimate (normalized; not used by the verdict): max "
                f"{_pct(plan['band'].get('max_abs'))}, rmse {_pct(plan['band'].get('rmse'))}"]
    if plan.get("rewrites"):
        out += ["", "Rewritten for the engine (exact):"] + [f"- {n}" for n in plan["rewrites"]]
    if plan["notes"]:
        out += ["", "Approximations:"] + [f"- {n}" for n in plan["notes"]]
    return "\n".join(out)


_FIGURE_TITLES = {"trajectories.png": "Weight trajectories", "errors.png": "Error over time per comparison",
                  "curve.png": "Protocol curve", "quantization.png": "Quantization error and predicted band"}


def _curve_table(curve: dict) -> list:
    names = [k for k in curve if k not in ("x", "x_label")]
    out = ["", "## Curve", "", f"| {curve['x_label']} | " + " | ".join(names) + " |",
           "|---|" + "---|" * len(names)]
    for k, x in enumerate(curve["x"]):
        out.append(f"| {x:g} | " + " | ".join(f"{curve[n][k]:.5g}" for n in names) + " |")
    return out


def _info(info: dict) -> str:
    if info.get("deployable") is False:
        info = {k: v for k, v in info.items() if k != "deployable"}
        return ", ".join(["not deployable to the learning engine (a CPU process in Lava)"]
                         + [f"{k}={v}" for k, v in info.items()])
    return ", ".join(f"{k}={v}" for k, v in info.items())


def render_markdown(data: dict, figures=()) -> str:
    out = [f"# neurodeploy verify: {data['rule']}", "",
           f"- rule file: `{data['rule_file']}`" + (f" ({data['citation']})" if data.get("citation") else ""),
           f"- protocol: {data['protocol']}, seed {data['seed']}, rate {data['rate_hz']} Hz, "
           f"{data['steps']} steps of {data['dt_ms']:g} ms, {data['n_post']}x{data['n_pre']} synapses"
           + (f" ({data['mask']['present']} present: mask)" if data.get("mask") else "") + ", "
           f"t_epoch {data['t_epoch']}",
           f"- result: **{outcome_line(data)}**", ""] + _as_markdown(fidelity_lines(data)) + ["",
           f"- learning engine: {'runs this rule' if data.get('engine') is None else 'cannot run this rule: ' + data['engine']}"
           + (" through approximations: " + "; ".join(data["engine_approximations"])
              if data.get("engine_approximations") else ""),
           "",
           "## Backends", "", "| backend | ran | seconds | steps/s | note |", "|---|---|---|---|---|"]
    for b in data["backends"]:
        if b["ran"]:
            out.append(f"| {b['name']} | yes | {b['seconds']:.2f} | {b['steps_per_second']:.0f} | "
                       f"{_info(b['info'])} |")
        else:
            out.append(f"| {b['name']} | no | | | {b['reason']} |")
    out += ["", "## Error budget", "",
            "Errors are over every step and synapse, divided by the weight range.", "",
            "| reference | candidate | share | max abs error | rmse | tolerance max | tolerance rmse | result |",
            "|---|---|---|---|---|---|---|---|"]
    for c in data["comparisons"]:
        if c["share"] in ("fidelity", "learning", "window"):
            continue
        tol = c["tolerance"] or {"max_abs": None, "rmse": None}
        verdict = _verdict(c)
        out.append(f"| {c['reference']} | {c['candidate']} | {c['share']} | {_sci(c['max_abs_error_normalized'])} | "
                   f"{_sci(c['rmse_normalized'])} | {_sci(tol['max_abs'])} | {_sci(tol['rmse'])} | "
                   f"{verdict}"
                   f"{' (' + '; '.join(c['warnings']) + ')' if c.get('warnings') else ''} |")
    out += _details(data)
    stats = data["protocol_stats"]
    out += ["", f"Coincident pre/post epochs (where `brian2` and the learning engine order differ): "
                f"{stats['coincident_epochs']}; weight updates per synapse: max {stats['max_updates']}, "
                f"mean {stats['mean_updates']:.1f}."]
    dist = _distribution_lines(data)
    if dist:
        out += ["", "## Distribution (closed loop, spikes part)", "", "```"] + [line for line in dist if line] + ["```"]
    spikes = _spike_lines(data)
    if spikes:
        n = data.get("neuron", {})
        what = (f"Each backend simulates the postsynaptic LIF (Lava's; tau_u {n.get('tau_u_ms', 0):g} ms, "
                f"tau_v {n.get('tau_v_ms', 0):g} ms, threshold {n.get('threshold', 0):g} x the weight range). ")
        if data.get("network"):
            what = "Each backend simulates the network's LIF populations (Lava's LIF; see Network above). "
            out += ["", "## Network", ""] + network_lines(data["network"])
        out += ["", "## Post spikes (closed loop)", "", what +
                "Once two backends' spike trains part, their weights part for that reason too: such "
                "comparisons are shown, not checked step by step (the engine backends are judged in "
                "distribution: see above); the lowering must give identical spikes.", "", "```"]
        out += [line for line in spikes if line] + ["```"]
    sat = stats.get("fixed_point_saturation")
    if sat:
        out += ["", "Fixed-point limits: traces at 127 (neuron-steps): "
                + (", ".join(f"{k} {v}" for k, v in sat["trace_steps"].items()) or "none")
                + f"; lava-fixed weights at the rule's bounds {sat['weight_at_limit']['at_rule_bound']}, "
                  f"at other 8-bit limits {sat['weight_at_limit']['at_other_limit']} (synapse-steps); "
                  f"products that may overflow the accumulator: {', '.join(sat['accumulator_may_overflow']) or 'none'}."]
    if data.get("curve"):
        out += _curve_table(data["curve"])
    if figures:
        out += ["", "## Figures"]
        for name in figures:
            out += ["", f"![{_FIGURE_TITLES.get(name, name)}]({name})"]
    for mode, plan in data["quantization_plan"].items():
        out += ["", f"## Quantization plan: {mode}", "", plan_table(plan)]
    return "\n".join(out) + "\n"


def _details(data: dict) -> list:
    """The verdict's details: per-synapse timing, the constants and rounding links."""
    out = []
    for c in data["comparisons"]:
        if c["share"] == "timing" and c.get("per_synapse"):
            p = c["per_synapse"]
            out += ["", "## Timing, per synapse", "",
                    f"{p['synapses']} synapses: {p['checked_exactly']} without conflicting epochs checked to 1e-9, "
                    f"{p['checked_with_bound']} checked against their own bound (largest {_sci(p['largest_bound_checked'])}), "
                    f"{p['not_checked']} not checked (bound above 0.1 of the range or not modelled); "
                    f"per conflicting epoch at most {_sci(p['per_event_bound'])} (rule units), "
                    f"at most {p['conflicting_epochs_max']} conflicting epochs on one synapse."
                    + (f" With t_epoch > 1 these bounds hold at each epoch's last step "
                       f"({p['epoch_sampling']['epoch_end_rows']} recorded steps); at its other steps "
                       f"({p['epoch_sampling']['within_epoch_rows']}) a synapse's bound adds its pending updates (at most "
                       f"{p['epoch_sampling']['pending_updates_max']} x {_sci(p['epoch_sampling']['whole_update_bound'])}; "
                       f"largest {_sci(p['epoch_sampling']['largest_within_epoch_bound'])})."
                       if p.get("epoch_sampling") else "")]
        if c["share"] == "approximation":
            out += ["", "## Approximations", "",
                    f"The rule as the lowering approximated it, run exactly in floating point ({c['candidate']}), "
                    f"against {c['reference']}: {_sci(c['max_abs_error_normalized'])} of the range (rmse "
                    f"{_sci(c['rmse_normalized'])}); {c['outcome']}: {c.get('message', '')}", ""]
            out += [f"- {a}" for a in c.get("approximations", [])]
        if c["share"] == "constants" and c.get("tolerance") is None:
            out += ["", "## Fixed point: constants", "", f"Not checked: {c.get('message', '')}"]
        elif c["share"] == "constants":
            out += ["", "## Fixed point: constants", "",
                    f"The fixed plan's constants run in floating point against the exact rule: "
                    f"{_sci(c['max_abs_error_normalized'])} of the range; the engine's best constants (recomputed "
                    f"from the lowering, the plan's weight scale and impulses) give "
                    f"{_sci(c['best_realisation_error_normalized'])}; tolerance {_sci(c['tolerance']['max_abs'])}.", "",
                    "| term | requested S*2^E | engine's best | realised | best rel. error | rel. error | "
                    "sensitivity | smallest detected rel. error |", "|---|---|---|---|---|---|---|---|"]
            for k in c["constants"]:
                det = k["smallest_detected_rel_error"]
                out.append(f"| `{k['term']}` | {k['requested']:.6g} | {k['engine_best']:.6g} | {k['realised']:.6g} | "
                           f"{_pct(k['best_rel_error'])} | {_pct(k['rel_error'])} | {_sci(k['sensitivity'])} | "
                           f"{'not exercised' if det is None else _pct(det)} |")
            if c.get("structural_problems"):
                out += ["", "Structural problems:"] + [f"- {p}" for p in c["structural_problems"]]
        if c["share"] == "rounding" and c.get("q") is not None:
            env = c.get("envelope")
            out += ["", "## Fixed point: rounding", "",
                    f"emu-fixed with {c['ensemble_size']} rounding seeds; at {c['checkpoints']} checkpoints, "
                    f"{c['synapse_steps_tested']} synapse-steps tested ({c['synapse_steps_left_out_at_limit']} left out: "
                    f"an 8-bit limit reached); Student-t quantile q = {c['q']:.3g} for a family-wise false-alarm "
                    f"rate {c['alpha']:g}; largest floor bias allowed {c['floor_bias_max_lava']:.3g} Lava units; "
                    f"largest ensemble sd {_sci(c['ensemble_sd_max_normalized'])} of the range."
                    + (f" The single run ({c.get('single_run')}) stays within {env['max_deviation_in_widths']:.3g} of "
                       f"the envelope's half-width." if env else "")]
    return out


@dataclass
class Report:
    rule: Rule
    trains: SpikeTrains
    results: dict  # backend name -> RunResult
    skipped: dict  # backend name -> reason
    plans: dict  # "float"/"fixed" -> Plan
    comparisons: list
    stats: dict = field(default_factory=dict)
    failed: dict = field(default_factory=dict)  # backend name -> why it did not finish
    curve: dict | None = None  # curve protocols: {"x", "x_label", backend: [dw per x]}
    measured: list = field(default_factory=list)  # total errors, reported and not judged
    steps_ran: dict = field(default_factory=dict)  # what each backend and internal run simulated, in words
    recording: dict = field(default_factory=dict)  # what was recorded: every K-th step, which synapses
    proof: list = field(default_factory=list)  # what was proven on which steps (windowed Lava runs)
    seconds: dict = field(default_factory=dict)  # wall time per phase: where the time goes
    fidelity: float = DEFAULT_FIDELITY  # the fidelity tolerance the run was judged with

    @property
    def outcome(self) -> str:
        """passed, failed or not checked (:func:`neurodeploy.verdict.overall`)."""
        return overall(self.comparisons, self.failed)

    @property
    def passed(self) -> bool:
        return self.outcome == PASSED

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.outcome]

    def __repr__(self) -> str:
        t = self.trains
        c = counts(self.comparisons)
        return (f"<Report {self.rule.name}: {t.protocol} seed {t.seed}, {t.steps} steps, {t.n_post}x{t.n_pre} "
                f"synapses: {self.outcome.upper()} ({c[PASSED]} passed, {c[FAILED]} failed, "
                f"{c[NOT_CHECKED]} not checked)>")

    @property
    def entries(self) -> tuple:
        """The comparisons as typed records (:class:`neurodeploy.verdict.Comparison`), fidelity first."""
        return tuple(Comparison.from_entry(c) for c in self.comparisons)

    def summary(self) -> str:
        """What ``neurodeploy verify`` prints: the fidelity verdict's answer, the backends, every link."""
        return summary_table(self.to_dict())

    def _repr_html_(self) -> str:
        """A notebook's view: the answer (the fidelity lines), then one table row per comparison."""
        from html import escape

        data = self.to_dict()
        rows = "".join(f"<tr><td>{escape(str(c['reference']))} &rarr; {escape(str(c['candidate']))}</td>"
                       f"<td>{escape(str(c['share']))}</td><td><b>{escape(c['outcome'])}</b></td>"
                       f"<td>{escape(str(c.get('message') or ''))}</td></tr>" for c in data["comparisons"])
        answer = escape("\n".join(fidelity_lines(data)))
        return (f"<div><p><b>{escape(self.rule.name)}</b>: {escape(self.trains.protocol)} seed {self.trains.seed}, "
                f"{self.trains.steps} steps &mdash; <b>{escape(self.outcome.upper())}</b></p>"
                f"<pre>{answer}</pre><table><tr><th>comparison</th><th>share</th><th>outcome</th>"
                f"<th>message</th></tr>{rows}</table></div>")

    def figures(self) -> dict:
        """The report's figures as ``matplotlib.figure.Figure`` objects: file name -> figure
        (trajectories.png, errors.png, curve.png, quantization.png where they apply), as :meth:`write`
        saves them."""
        from neurodeploy.plots import figures

        return figures(self.to_dict(), {name: res.trajectory for name, res in self.results.items()},
                       rows={name: res.rows for name, res in self.results.items()})

    def to_dict(self) -> dict:
        compilation = self.plans if isinstance(self.plans, Compilation) else compile_rule(self.rule)
        engine, approximated = compilation.engine, ()
        if compilation.approximated:
            engine, approximated = None, compilation.approximations

        backends = []
        for name, res in self.results.items():
            info = {k: v for k, v in res.info.items() if k != "post_spikes"}  # rasters go to the .npz
            backends.append({"name": name, "ran": True, "seconds": round(res.seconds, 3),
                             "steps_per_second": round(res.steps_per_second, 1), "info": info,
                             "steps": [0, int(res.steps_run)], "recorded_rows": int(res.rows.size),
                             "window": res.steps_run < self.trains.steps,
                             "stored_as": ("int16 Lava units" if name in FIXED_BACKENDS and "fixed" in self.plans
                                           else "float64 rule units")})
        for name, reason in self.skipped.items():
            backends.append({"name": name, "ran": False, "reason": reason})
        for name, reason in self.failed.items():
            backends.append({"name": name, "ran": False, "failed": True, "reason": reason})
        t = self.trains
        return {
            "neurodeploy_version": __version__,
            "rule": self.rule.name, "rule_file": self.rule.source, "citation": self.rule.citation,
            "protocol": t.protocol, "seed": t.seed, "rate_hz": t.rate,
            "steps": t.steps, "n_pre": t.n_pre, "n_post": t.n_post,
            "dt_ms": self.rule.dt * 1e3, "t_epoch": self.rule.t_epoch,
            "weight_range": [self.rule.weight.w_min, self.rule.weight.w_max],
            "outcome": self.outcome, "passed": self.passed, "counts": counts(self.comparisons),
            "fidelity": self.fidelity,
            "steps_ran": self.steps_ran, "measured": self.measured,
            "recording": self.recording, "proof": self.proof, "seconds": self.seconds,
            "engine": engine,  # None: the learning engine runs the rule (exactly, or through the approximations)
            "engine_approximations": [a.detail for a in approximated],
            "backends": backends,
            "comparisons": self.comparisons,
            "protocol_stats": self.stats,
            "quantization_plan": {m: p.to_dict() for m, p in self.plans.items()},
            **({"curve": self.curve} if self.curve is not None else {}),
            **({"neuron": self.trains.neuron} if self.trains.neuron is not None else {}),
            **({"network": self.trains.network.to_dict()} if self.trains.network is not None else {}),
            **({"mask": {"present": int(t.mask.sum()), "synapses": int(t.mask.size),
                         "absent": "NaN in trajectories.npz (mask alongside); left out of every comparison"}}
               if t.mask is not None else {}),
        }

    def write(self, out_dir: str) -> list:
        """Write trajectories.npz, report.json and report.md atomically into ``out_dir``."""
        from neurodeploy.report import render_markdown

        os.makedirs(out_dir, exist_ok=True)
        start = time.perf_counter()
        data = self.to_dict()
        paths = []
        arrays = {name: res.trajectory for name, res in self.results.items()}
        stored = {}
        for name, res in self.results.items():
            stored[name], _ = _storage(name, res, self.plans)
            if name in FIXED_BACKENDS and "fixed" in self.plans:
                stored[f"{name}:scale"] = np.float64(self.plans["fixed"].weight_scale)
            if not (res.rows.size == res.steps_run == self.trains.steps):
                stored[f"{name}:steps"] = res.rows
        first = next(iter(self.results.values()), None)
        if first is not None and first.posts is not None:
            stored["synapses:post"] = first.posts
        if first is not None and first.pres is not None:
            stored["synapses:pre"] = first.pres
        if self.trains.mask is not None:  # the synapses that exist; the others are NaN in every trajectory
            stored["mask"] = self.trains.mask
        # closed loop: each backend's post spikes, "<backend>:post_spikes" (n_post, steps)
        rasters = {f"{name}:post_spikes": res.info["post_spikes"] for name, res in self.results.items()
                   if "post_spikes" in res.info}
        paths.append(_atomic(out_dir, "trajectories.npz", lambda f: np.savez(f, **stored, **rasters), binary=True))
        data["seconds"] = dict(data["seconds"], **{"write trajectories.npz": round(time.perf_counter() - start, 3)})
        start = time.perf_counter()
        rows = {name: res.rows for name, res in self.results.items()}
        from neurodeploy.plots import write_plots

        for name in ("trajectories.png", "errors.png", "curve.png", "quantization.png"):  # none stale
            if os.path.isfile(os.path.join(out_dir, name)):
                os.unlink(os.path.join(out_dir, name))
        figures = write_plots(data, arrays, out_dir, rows=rows)
        paths += [os.path.join(out_dir, f) for f in figures]
        data["seconds"]["figures"] = round(time.perf_counter() - start, 3)
        paths.append(_atomic(out_dir, "report.md", lambda f: f.write(render_markdown(data, figures))))
        # report.json last: its presence means the others are complete
        paths.append(_atomic(out_dir, "report.json",
                             lambda f: f.write(json.dumps(_jsonable(data), indent=2, sort_keys=True) + "\n")))
        return paths


FIXED_BACKENDS = ("lava-fixed", "emu-fixed")


def _storage(name: str, res: RunResult, plans: dict) -> tuple:
    """(array, description) of a backend's trajectory as stored: fixed point as the Lava integers
    (int16; ``<backend>:scale`` rule units per Lava unit alongside), else float64 rule units."""
    if name in FIXED_BACKENDS and "fixed" in plans:
        lava = np.rint(res.trajectory / plans["fixed"].weight_scale)
        if np.all(np.isfinite(lava)) and lava.size and np.abs(lava).max() < 2 ** 15:
            return lava.astype(np.int16), "int16 Lava units (times <backend>:scale = rule units)"
    return res.trajectory, "float64 rule units"


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    return value
