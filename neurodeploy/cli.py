"""The ``neurodeploy`` command: check, compile, verify.

Bad input ends with one line on stderr, ``neurodeploy: error: <file>: <field>:
<problem>``, exit code 2, and nothing written.
"""
from __future__ import annotations

import os
import sys

import click

from neurodeploy.errors import NeurodeployError, UnsupportedError

from neurodeploy.protocol import DEFAULT_POISSON as DEFAULTS


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
    click.echo(f"  on_pre : {rule.weight.on_pre_text or 0}")
    click.echo(f"  on_post: {rule.weight.on_post_text or 0}")
    click.echo(f"  bounds : [{rule.weight.w_min:g}, {rule.weight.w_max:g}], init {rule.weight.w_init:g}")
    for t in rule.traces:
        click.echo(f"  trace {t.name}: of {t.of}, tau {t.tau_text}, jump {t.jump_text}")
    trains = default_trains(rule)
    try:
        plans = compile_plans(rule, trains)
        lava_reason = None
    except UnsupportedError as exc:
        plans, lava_reason = {}, str(exc)
    click.echo("backends:")
    for name in registry.names():
        reason = registry.get(name).unsupported_reason(rule)
        if reason is None and name.startswith("lava") and lava_reason:
            reason = lava_reason
        click.echo(f"  {name:<12} " + ("yes" if reason is None else f"no: not deployable to the learning engine: {reason}"))
    for mode, plan in plans.items():
        click.echo(f"\nlearning-engine plan ({mode}; peaks from the default protocol: poisson "
                   f"{DEFAULTS['n_pre']}x{DEFAULTS['n_post']}, {DEFAULTS['rate']:g} Hz, {DEFAULTS['steps']} steps, "
                   f"seed {DEFAULTS['seed']}):")
        click.echo(plan_table(plan.to_dict()))


@cli.command("compile")
@click.argument("rule_file", type=click.Path(dir_okay=True))
@click.option("--target", type=click.Choice(["brian2", "lava"]), required=True, help="What to generate.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Output directory.")
def compile_cmd(rule_file, target, out_dir):
    """Write standalone Python for RULE_FILE: DIR/<rule>_brian2.py or DIR/<rule>_lava.py (+ _plan.json)."""
    from neurodeploy.codegen import write_compiled
    from neurodeploy.lava.lowering import lower

    rule = _load(rule_file)
    if target == "lava":
        try:
            lower(rule)
        except UnsupportedError as exc:
            raise NeurodeployError(rule.source, "weight", f"not deployable to the learning engine: {exc}") from None
    for path in write_compiled(rule, target, out_dir):
        click.echo(path)


def _backends(value):
    from neurodeploy.backends import load_all
    from neurodeploy.harness import DEFAULT_BACKENDS

    if value is None:
        return DEFAULT_BACKENDS
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


def _positive(name, value, upper=None):
    if value < 1 or (upper is not None and value > upper):
        limit = f" and at most {upper}" if upper else ""
        raise NeurodeployError(name, "", f"must be at least 1{limit} (got {value})")


@cli.command()
@click.argument("rule_file", type=click.Path(dir_okay=True))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Output directory.")
@click.option("--protocol", type=click.Choice(["poisson"]), default="poisson", show_default=True)
@click.option("--steps", type=int, default=DEFAULTS["steps"], show_default=True, help="Time steps.")
@click.option("--n-pre", type=int, default=DEFAULTS["n_pre"], show_default=True, help="Presynaptic neurons.")
@click.option("--n-post", type=int, default=DEFAULTS["n_post"], show_default=True, help="Postsynaptic neurons.")
@click.option("--rate", type=float, default=DEFAULTS["rate"], show_default=True, help="Poisson rate (Hz).")
@click.option("--seed", type=int, default=DEFAULTS["seed"], show_default=True, help="Seed of the spike trains.")
@click.option("--spikes", type=click.Path(dir_okay=True), default=None,
              help="NPZ with pre (n_pre, steps), post (n_post, steps) rasters and optional w0 (n_post, n_pre).")
@click.option("--backends", default=None, help="Comma-separated subset of brian2,brian2-step,lava-float,lava-fixed.")
def verify(rule_file, out_dir, protocol, steps, n_pre, n_post, rate, seed, spikes, backends):
    """Run RULE_FILE on every backend with the same spike trains and compare the weight trajectories."""
    from neurodeploy.harness import verify as run_verify
    from neurodeploy.protocol import load_spikes, poisson
    from neurodeploy.report import summary_table

    rule = _load(rule_file)
    names = _backends(backends)
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise NeurodeployError("--out", "", f"exists and is not a directory (got {out_dir})")
    if spikes is not None:
        trains = load_spikes(spikes, rule)
    else:
        _positive("--steps", steps, 10_000_000)
        _positive("--n-pre", n_pre, 100_000)
        _positive("--n-post", n_post, 100_000)
        if not (rate > 0 and rate * rule.dt <= 1):
            raise NeurodeployError("--rate", "", f"must be > 0 and at most 1/dt = {1 / rule.dt:g} Hz (got {rate:g})")
        trains = poisson(rule, n_pre, n_post, steps, rate, seed)
    report = run_verify(rule, trains, names, progress=lambda msg: click.echo(f"running {msg}", err=True))
    report.write(out_dir)
    click.echo(summary_table(report.to_dict()))
    click.echo(f"wrote {os.path.join(out_dir, 'report.json')}, report.md, trajectories.npz")
    sys.exit(0 if report.passed else 1)


def main(argv=None):
    """Entry point: one-line errors, exit 2 on bad input or usage."""
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        click.echo(cli.get_help(click.Context(cli, info_name="neurodeploy")))
        sys.exit(2)
    try:
        cli.main(args=argv, prog_name="neurodeploy", standalone_mode=False)
    except NeurodeployError as exc:
        click.echo(f"neurodeploy: error: {exc}", err=True)
        sys.exit(2)
    except click.UsageError as exc:
        message = exc.format_message().replace("\n", " ")
        click.echo(f"neurodeploy: error: {message}", err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        click.echo("neurodeploy: interrupted", err=True)
        sys.exit(130)
    except KeyboardInterrupt:
        click.echo("neurodeploy: interrupted", err=True)
        sys.exit(130)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    sys.exit(0)


if __name__ == "__main__":
    main()
