"""The ``neurodeploy`` command: check, compile, verify.

Bad input ends with one line on stderr, ``neurodeploy: error: <file>: <field>:
<problem>``, exit code 2, and nothing written.
"""
from __future__ import annotations

import os
import signal
import sys

import click

from neurodeploy.errors import NeurodeployError, UnsupportedError

from neurodeploy.protocol import DEFAULT_POISSON as DEFAULTS
from neurodeploy.protocol import PROTOCOLS


def _load(path):
    from neurodeploy.spec.loader import load_rule
    return load_rule(path)




@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="neurodeploy")
def cli():
    """Compile synaptic plasticity rules to Brian2 and Lava, and verify them."""


@cli.command()
@click.argument("rule_file", type=click.Path(dir_okay=True))
def check(rule_file):
    """Validate RULE_FILE; show backends, the learning-engine string and the fixed-point plan."""
    from neurodeploy.backends import load_all
    from neurodeploy.harness import compile_plans
    from neurodeploy.protocol import default_trains
    from neurodeploy.report import plan_table

    rule = _load(rule_file)
    registry = load_all()
    click.echo(f"{rule.source}: rule '{rule.name}' is valid" + (f" ({rule.citation})" if rule.citation else ""))
    from neurodeploy.backends.brian2_model import unit_text
    from neurodeploy.lava.plan import engine_reason

    unit = "" if unit_text(rule.weight.dim) == "1" else f" {unit_text(rule.weight.dim)}"
    click.echo(f"  on_pre : {rule.weight.on_pre_text or 0}")
    click.echo(f"  on_post: {rule.weight.on_post_text or 0}")
    if rule.weight.continuous != 0:
        click.echo(f"  dw/dt  : {rule.weight.continuous_text}")
    click.echo(f"  bounds : [{rule.weight.w_min:g}, {rule.weight.w_max:g}]{unit}, init {rule.weight.w_init:g}{unit}")
    for t in rule.traces:
        if t.of == "synapse":
            change = f"on_pre {t.on_pre_text or 0}, on_post {t.on_post_text or 0}"
        else:
            change = f"jump {t.jump_text}" + (" x reward" if t.of == "reward" else "")
        extra = (f", rest {t.rest:g}" if t.rest else "") + (f", delay {t.delay * 1e3:g} ms" if t.delay else "")
        click.echo(f"  trace {t.name}: of {t.of}, tau {t.tau_text}, {change}{extra}")
    trains = default_trains(rule)
    plans = {}
    if engine_reason(rule) is None:  # the plans only of a rule the engine runs
        try:
            plans = compile_plans(rule, trains)
        except UnsupportedError:
            plans = {}
    click.echo("backends:")
    for name in registry.names():
        reason = registry.get(name).unsupported_reason(rule)
        click.echo(f"  {name:<12} " + ("yes" if reason is None else f"no: {reason}"))
    for mode, plan in plans.items():
        click.echo(f"\nlearning-engine plan ({mode}; peaks from the default protocol: poisson "
                   f"{DEFAULTS['n_pre']}x{DEFAULTS['n_post']}, {DEFAULTS['rate']:g} Hz, {DEFAULTS['steps']} steps, "
                   f"seed {DEFAULTS['seed']}):")
        click.echo(plan_table(plan.to_dict()))


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="A JSON list of {name, citation, backends, unsupported}.")
@click.option("--markdown", is_flag=True, help="The matrix as the README's markdown table.")
def rules(as_json, markdown):
    """The built-in rule library: which backend runs which rule, and why not."""
    import json

    from neurodeploy.library import matrix_markdown, support_matrix

    rows = support_matrix()
    if as_json:
        click.echo(json.dumps([{k: r[k] for k in ("name", "citation", "backends", "unsupported")} for r in rows],
                              indent=2))
    elif markdown:
        click.echo(matrix_markdown(rows))
    else:
        for r in rows:
            click.echo(f"{r['name']} ({r['file']}): {r['citation']}")
            click.echo(f"  runs on: {', '.join(r['backends'])}")
            for backend, reason in r["unsupported"].items():
                click.echo(f"  not on {backend}: {reason}")


@cli.command("compile")
@click.argument("rule_file", type=click.Path(dir_okay=True))
@click.option("--target", type=click.Choice(["brian2", "lava"]), required=True, help="What to generate.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Output directory.")
def compile_cmd(rule_file, target, out_dir):
    """Write standalone Python for RULE_FILE: DIR/<rule>_brian2.py or DIR/<rule>_lava.py (+ _plan.json)."""
    from neurodeploy.codegen import write_compiled
    from neurodeploy.lava.plan import engine_reason

    rule = _load(rule_file)
    if target == "lava":  # the same test as the lava backends: lowered, and every float constant exact
        reason = engine_reason(rule)
        if reason is not None:
            raise NeurodeployError(rule.source, "weight", f"not deployable to the learning engine: {reason}")
    for path in write_compiled(rule, target, out_dir):
        click.echo(path)


def _backends(value):
    from neurodeploy.backends import load_all

    if value is None:
        return None  # the rule's default (neurodeploy.harness.default_backends)
    registry = load_all()
    names = [v.strip() for v in value.split(",") if v.strip()]
    if not names:
        raise NeurodeployError("--backends", "", "needs at least one backend name")
    for name in names:
        if name not in registry:
            raise NeurodeployError("--backends", "", f"unknown backend '{name}' (known: {', '.join(registry.names())})")
    if len(set(names)) != len(names):
        raise NeurodeployError("--backends", "", f"names a backend twice (got {value!r})")
    return tuple(names)


def _protocol_option(option):
    kind = str if option.type is tuple else option.type
    return click.option(f"--{option.name.replace('_', '-')}", option.name, type=kind, default=None,
                        help=f"{option.help} (protocol default: " + ", ".join(
                            f"{p} {o.default}" for p, opts in PROTOCOLS.items() for o in opts if o.name == option.name) + ")")


_OPTIONS = {}
for _opts in PROTOCOLS.values():
    for _o in _opts:
        _OPTIONS.setdefault(_o.name, _o)


def _with_protocol_options(command):
    for option in reversed(list(_OPTIONS.values())):
        command = _protocol_option(option)(command)
    return command


def _index_list(text: str, n: int, what: str, spec: str) -> list:
    out = []
    for part in text.split(","):
        part = part.strip()
        try:
            lo, _, hi = part.partition("-")
            lo, hi = int(lo), int(hi) if hi else int(lo)
        except ValueError:
            raise NeurodeployError("--record-synapses", "", f"{what} indices must be numbers or ranges a-b (got {spec})") from None
        if not 0 <= lo <= hi < n:
            raise NeurodeployError("--record-synapses", "", f"{what} indices must be in 0..{n - 1} (got {spec})")
        out.extend(range(lo, hi + 1))
    return out


def _synapse_spec(spec, trains):
    """--record-synapses: None, 'all', an int N, or (posts, pres) index lists."""
    if spec is None or spec.strip() == "all":
        return None if spec is None else "all"
    if "/" in spec:
        posts, pres = spec.split("/", 1)
        return (_index_list(posts, trains.n_post, "post", spec), _index_list(pres, trains.n_pre, "pre", spec))
    try:
        n = int(spec)
    except ValueError:
        raise NeurodeployError("--record-synapses", "", f"must be 'all', a count or POSTS/PRES (got {spec})") from None
    if n < 1:
        raise NeurodeployError("--record-synapses", "", f"must be at least 1 (got {spec})")
    return n


@cli.command()
@click.argument("rule_file", type=click.Path(dir_okay=True))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Output directory.")
@click.option("--protocol", type=click.Choice(list(PROTOCOLS)), default="poisson", show_default=True)
@_with_protocol_options
@click.option("--seed", type=int, default=DEFAULTS["seed"], show_default=True, help="Seed of the spike trains.")
@click.option("--spikes", type=click.Path(dir_okay=True), default=None,
              help="NPZ with pre (n_pre, steps), post (n_post, steps) rasters, optional w0 (n_post, n_pre) "
                   "and reward ((steps,) or (n_post, steps)) for rules with a third factor.")
@click.option("--backends", default=None, help="Comma-separated backends (default: brian2,brian2-step,lava-float,lava-fixed; "
                   "brian2,brian2-step,lava-cpu where the learning engine cannot express the rule).")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Seconds per backend; a backend that exceeds it is stopped and reported as failed.")
@click.option("--ensemble", type=click.IntRange(2, 4096), default=None,
              help="Rounding seeds of the fixed-point verdict's emu-fixed ensemble (default 32).")
@click.option("--record-every", type=click.IntRange(min=1), default=None,
              help="Record (and compare) every K-th step and the last (default: every step up to 4e6 values "
                   "per backend, else the smallest K within that).")
@click.option("--record-synapses", default=None,
              help="Synapses recorded and compared: 'all', N (an evenly spaced sub-grid of about N) or "
                   "POSTS/PRES index lists with ranges, e.g. '0-9/0-99' (default: all up to 10000, else 10000).")
@click.option("--lava-steps", type=click.IntRange(min=0), default=None,
              help="Lava backends run only the protocol's first N steps (0: all; default: 2e7 synapse-steps, "
                   "1000..2000 steps); the emulator then runs the whole protocol.")
@click.option("--quiet", is_flag=True, help="No progress on stderr.")
def verify(rule_file, out_dir, protocol, seed, spikes, backends, timeout, ensemble, record_every, record_synapses,
           lava_steps, quiet, **options):
    """Run RULE_FILE on every backend with the same spike trains and compare the weight trajectories."""
    from neurodeploy.harness import verify as run_verify
    from neurodeploy.protocol import load_spikes, make_trains
    from neurodeploy.report import summary_table

    rule = _load(rule_file)
    names = _backends(backends)
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise NeurodeployError("--out", "", f"exists and is not a directory (got {out_dir})")
    given = {k: v for k, v in options.items() if v is not None}
    if spikes is not None:
        if given:
            raise NeurodeployError("--spikes", "", f"cannot be combined with protocol options (got --{next(iter(given)).replace('_', '-')})")
        trains = load_spikes(spikes, rule)
    else:
        trains = make_trains(rule, protocol, given, seed, prefix="--")
    _remove_stale(out_dir, ("report.json", "report.md", "trajectories.npz"))  # input is good: now the run starts
    from neurodeploy.progress import Progress

    report = run_verify(rule, trains, names, progress=None if quiet else Progress(), timeout=timeout,
                        ensemble=ensemble, record_every=record_every,
                        record_synapses=_synapse_spec(record_synapses, trains), lava_steps=lava_steps)
    report.write(out_dir)
    click.echo(summary_table(report.to_dict()))
    click.echo(f"wrote {os.path.join(out_dir, 'report.json')}, report.md, trajectories.npz")
    sys.exit(report.exit_code)  # 0 passed, 1 failed, 3 nothing checked


@cli.command()
@click.argument("rule_file", type=click.Path(dir_okay=True))
@click.option("--protocol", type=click.Choice(list(PROTOCOLS)), default="poisson", show_default=True)
@_with_protocol_options
@click.option("--seed", type=int, default=DEFAULTS["seed"], show_default=True,
              help="Seed of the spike trains the mutants run on.")
@click.option("--seeds", type=click.IntRange(0, 10000), default=100, show_default=True,
              help="Other seeds (seed+1 ...) on which the unmutated plan must pass (the false-alarm rate).")
@click.option("--ensemble", type=click.IntRange(2, 4096), default=None,
              help="Rounding seeds of the fixed-point verdict's emu-fixed ensemble (default 32).")
@click.option("--out", "out_dir", default=None, type=click.Path(file_okay=False),
              help="Write DIR/mutation.json.")
@click.option("--quiet", is_flag=True, help="No progress on stderr.")
def mutate(rule_file, protocol, seed, seeds, ensemble, out_dir, quiet, **options):
    """Mutation self-test of the fixed-point verdict: break every constant of the fixed plan
    (E+-1, S+-1, sign, dependency) and count the mutants caught; run the unmutated plan on
    SEEDS other spike trains and count the false alarms. Emulator only (no Lava process).

    Exit 0 when at least 90% of the mutants are caught and at most 1% of the seeds fail,
    1 otherwise, 3 when the plan has no constant to mutate."""
    import json

    from neurodeploy.harness import _atomic, _jsonable
    from neurodeploy.lava.plan import engine_reason
    from neurodeploy.protocol import make_trains
    from neurodeploy.verdict import EXIT_NOT_CHECKED
    from neurodeploy.verdict.mutate import render, self_test
    from neurodeploy.verdict.quantization import ENSEMBLE_SIZE

    rule = _load(rule_file)
    reason = engine_reason(rule)
    if reason is not None or rule.has_reward:
        raise NeurodeployError(rule.source, "weight", "no fixed-point plan to mutate: "
                               + (reason or "three-factor rules are planned in floating point only"))
    if out_dir is not None and os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise NeurodeployError("--out", "", f"exists and is not a directory (got {out_dir})")
    given = {k: v for k, v in options.items() if v is not None}
    make_trains(rule, protocol, given, seed, prefix="--")  # bad options exit 2 before anything runs
    summary = self_test(rule, lambda s: make_trains(rule, protocol, given, s, prefix="--"), seed, seeds,
                        ENSEMBLE_SIZE if ensemble is None else ensemble,
                        progress=None if quiet else (lambda msg: click.echo(msg, err=True)))
    summary["protocol"], summary["options"] = protocol, given
    click.echo(render(summary))
    if out_dir is not None:
        os.makedirs(out_dir, exist_ok=True)
        path = _atomic(out_dir, "mutation.json",
                       lambda f: f.write(json.dumps(_jsonable(summary), indent=2, sort_keys=True) + "\n"))
        click.echo(f"wrote {path}")
    if summary["mutation_score"] is None:
        sys.exit(EXIT_NOT_CHECKED)
    ok = summary["mutation_score"] >= 0.9 and (summary["false_alarm_rate"] or 0.0) <= 0.01
    sys.exit(0 if ok else 1)


def _remove_stale(out_dir, names):
    """An old report must not survive a run that fails or is interrupted: remove it first."""
    for name in names:
        path = os.path.join(out_dir, name)
        if os.path.isfile(path):
            os.unlink(path)


@cli.command()
@click.argument("plan_file", type=click.Path(dir_okay=True))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Output directory.")
@click.option("--jobs", type=click.IntRange(1, 256), default=1, show_default=True, help="Local worker processes.")
@click.option("--force", is_flag=True, help="Redo runs whose inputs have not changed.")
@click.option("--scheduler", default=None, help="Address of a Dask distributed scheduler (needs neurodeploy[cluster]).")
@click.option("--quiet", is_flag=True, help="No progress on stderr.")
def run(plan_file, out_dir, jobs, force, scheduler, quiet):
    """Compile and verify every run of PLAN_FILE; write DIR/summary.json and DIR/summary.md."""
    from neurodeploy.batch import load_plan, render_summary, run_plan

    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise NeurodeployError("--out", "", f"exists and is not a directory (got {out_dir})")
    if scheduler:
        try:
            import distributed  # noqa: F401
        except ImportError:
            raise NeurodeployError("--scheduler", "", "needs the cluster extra: pip install 'neurodeploy[cluster]'") from None
    load_plan(plan_file)  # a broken plan exits 2 before anything is written
    summary = run_plan(plan_file, out_dir, jobs=jobs, force=force, scheduler=scheduler,
                       progress=None if quiet else (lambda msg: click.echo(msg, err=True)))
    click.echo(render_summary(summary.to_dict()))
    click.echo(f"wrote {os.path.join(out_dir, 'summary.json')}, summary.md")
    sys.exit(summary.exit_code)  # 0 all passed, 1 a run failed, 3 a run checked nothing


class Terminated(BaseException):
    """SIGTERM, raised in the main thread so that every ``finally`` (Lava's stop()) runs."""


def _on_sigterm(signum, frame):
    raise Terminated()


def main(argv=None):
    """Entry point: one-line errors, exit 2 on bad input or usage, 130/143 on SIGINT/SIGTERM."""
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        click.echo(cli.get_help(click.Context(cli, info_name="neurodeploy")))
        sys.exit(2)
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        cli.main(args=argv, prog_name="neurodeploy", standalone_mode=False)
    except NeurodeployError as exc:
        click.echo(f"neurodeploy: error: {exc}", err=True)
        sys.exit(2)
    except click.UsageError as exc:
        message = exc.format_message().replace("\n", " ")
        click.echo(f"neurodeploy: error: {message}", err=True)
        sys.exit(2)
    except (KeyboardInterrupt, click.exceptions.Abort):
        click.echo("neurodeploy: interrupted (SIGINT): every Lava process stopped, no report written", err=True)
        sys.exit(130)
    except Terminated:
        click.echo("neurodeploy: terminated (SIGTERM): every Lava process stopped, no report written", err=True)
        sys.exit(143)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    finally:
        signal.signal(signal.SIGTERM, previous)
    sys.exit(0)


if __name__ == "__main__":
    main()
