"""Human-readable renderings of a verify report: the stdout table and report.md."""
from __future__ import annotations


def _pct(value) -> str:
    return "n/a" if value is None else f"{100 * value:.3g}%"


def _sci(value) -> str:
    return "n/a" if value is None else f"{value:.3g}"


def summary_table(data: dict) -> str:
    """The table `verify` prints: one line per backend, one per comparison."""
    lines = [f"rule {data['rule']}: {data['protocol']} seed={data['seed']} steps={data['steps']} "
             f"synapses={data['n_post']}x{data['n_pre']}", ""]
    if data.get("engine") is not None:
        lines += [f"learning engine: cannot run this rule: {data['engine']}", ""]
    lines.append(f"{'backend':<12} {'ran':<4} {'seconds':>8} {'steps/s':>9}  note")
    for b in data["backends"]:
        if b["ran"]:
            lines.append(f"{b['name']:<12} {'yes':<4} {b['seconds']:>8.2f} {b['steps_per_second']:>9.0f}")
        else:
            lines.append(f"{b['name']:<12} {'no':<4} {'':>8} {'':>9}  {b['reason']}")
    lines.append("")
    lines.append(f"{'comparison':<26} {'share':<13} {'max|err|/range':>15} {'rmse/range':>11} "
                 f"{'tolerance (max, rmse)':>22}  result")
    for c in data["comparisons"]:
        tol = c["tolerance"] or {"max_abs": None, "rmse": None}
        verdict = _verdict(c)
        if c.get("warnings"):
            verdict += " [" + "; ".join(c["warnings"]) + "]"
        lines.append(f"{c['reference'] + ' -> ' + c['candidate']:<26} {c['share']:<13} "
                     f"{_sci(c['max_abs_error_normalized']):>15} {_sci(c['rmse_normalized']):>11} "
                     f"{_sci(tol['max_abs']) + ', ' + _sci(tol['rmse']):>22}  {verdict}")
    lines += _spike_lines(data)
    lines.append("")
    lines.append("PASSED" if data["passed"] else "FAILED")
    return "\n".join(lines)


def _verdict(c: dict) -> str:
    if not c["passed"]:
        return "FAIL" + (f" ({c['message']})" if c.get("message") else "")
    if c["tolerance"] is not None:
        return "pass"
    return "shown" + (f" ({c['message']})" if c.get("message") else " (no predicted band)")


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
    out += ["", f"predicted deviation band (normalized): max {_pct(plan['band'].get('max_abs'))}, "
                f"rmse {_pct(plan['band'].get('rmse'))}"]
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
           f"{data['steps']} steps of {data['dt_ms']:g} ms, {data['n_post']}x{data['n_pre']} synapses, "
           f"t_epoch {data['t_epoch']}",
           f"- result: **{'PASSED' if data['passed'] else 'FAILED'}**",
           f"- learning engine: {'runs this rule' if data.get('engine') is None else 'cannot run this rule: ' + data['engine']}",
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
        tol = c["tolerance"] or {"max_abs": None, "rmse": None}
        verdict = _verdict(c)
        out.append(f"| {c['reference']} | {c['candidate']} | {c['share']} | {_sci(c['max_abs_error_normalized'])} | "
                   f"{_sci(c['rmse_normalized'])} | {_sci(tol['max_abs'])} | {_sci(tol['rmse'])} | "
                   f"{verdict}"
                   f"{' (' + '; '.join(c['warnings']) + ')' if c.get('warnings') else ''} |")
    stats = data["protocol_stats"]
    out += ["", f"Coincident pre/post epochs (where `brian2` and the learning engine order differ): "
                f"{stats['coincident_epochs']}; weight updates per synapse: max {stats['max_updates']}, "
                f"mean {stats['mean_updates']:.1f}."]
    spikes = _spike_lines(data)
    if spikes:
        n = data.get("neuron", {})
        out += ["", "## Post spikes (closed loop)", "",
                f"Each backend simulates the postsynaptic LIF (Lava's; tau_u {n.get('tau_u_ms', 0):g} ms, "
                f"tau_v {n.get('tau_v_ms', 0):g} ms, threshold {n.get('threshold', 0):g} x the weight range). "
                "Once two backends' spike trains part, their weights part for that reason too: such "
                "comparisons are shown, not checked; the lowering must give identical spikes.", "", "```"]
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
