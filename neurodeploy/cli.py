"""The ``neurodeploy`` command: check, compile, verify.

Bad input ends with one line on stderr, ``neurodeploy: error: <file>: <field>:
<problem>``, exit code 2, and nothing written.
"""
from __future__ import annotations

import contextlib
import math
import os
import signal
import sys

import click

from neurodeploy.errors import NeurodeployError, UnsupportedError, did_you_mean

from neurodeploy.protocol import DEFAULT_POISSON as DEFAULTS
from neurodeploy.protocol import PROTOCOLS
from neurodeploy import cluster
from neurodeploy.backend import ORDER
from neurodeploy.compile.loihi import unsupported_reason
from neurodeploy.files import _atomic, follow_umask, locked, publish, remove_tree, staging_dir, unpublish
from neurodeploy.library import matrix_markdown, support_matrix
from neurodeploy.network import check_size, network_from_dict, network_trains
from neurodeploy.progress import catch_signals, check_signals, Progress, results_complete
from neurodeploy.running import WorkerLost
from neurodeploy.protocol import default_trains, load_spikes, make_trains
from neurodeploy.spec.loader import load_rule
from neurodeploy.targets import load_all
from neurodeploy.verdict import EXIT_NOT_CHECKED
from neurodeploy.verdict.distribution import not_shown
from neurodeploy.verdict.fidelity import check_tolerance, DEFAULT_FIDELITY
from neurodeploy.verdict.mutate import render, self_test
from neurodeploy.verdict.quantization import ENSEMBLE_SIZE
from neurodeploy.tasks import TASKS
from neurodeploy.tasks.runner import (CANDIDATE, WRONG, false_alarms, finer_setup, min_p, min_seeds, run_task,
                                      task_module, task_setup)

#: Largest --timeout, in seconds (a year).
MAX_TIMEOUT = 31_536_000


def _load(path):
    return load_rule(path)


def check_out_dir(out_dir: str, option: str = "--out") -> None:
    """Refuse an output path that cannot become a writable directory, before anything runs or is written.

    Nothing is created: the directory itself, or its nearest existing ancestor, must be a
    directory we can create files in (probed with a temporary file, removed at once)."""
    import errno
    import tempfile

    if not isinstance(out_dir, str) or not out_dir.strip():
        raise NeurodeployError(option, "", f"must be a directory path (got {out_dir!r})")
    if "\0" in out_dir:
        raise NeurodeployError(option, "", f"must not contain a NUL character (got {out_dir!r})")
    path = os.path.abspath(out_dir)
    longest = max(len(os.fsencode(part)) for part in path.split(os.sep))
    if longest > 255:
        raise NeurodeployError(option, "", f"name too long ({longest} bytes in one name, at most 255) (got {out_dir})")
    if len(os.fsencode(path)) > 4095:
        raise NeurodeployError(option, "", f"path too long ({len(os.fsencode(path))} bytes, at most 4095) (got {out_dir})")
    if os.path.lexists(path) and not os.path.exists(path):
        raise NeurodeployError(option, "", f"is a dangling symbolic link (got {out_dir})")
    if os.path.exists(path) and not os.path.isdir(path):
        raise NeurodeployError(option, "", f"exists and is not a directory (got {out_dir})")
    probe_in = path
    while not os.path.lexists(probe_in):
        probe_in = os.path.dirname(probe_in)
    if not os.path.isdir(probe_in):
        raise NeurodeployError(option, "", f"cannot be created: {os.path.basename(probe_in) or probe_in} is not a "
                                           f"directory (got {out_dir})")
    real = os.path.realpath(probe_in)
    if real == "/proc" or real.startswith(("/proc/", "/sys/")) or real == "/sys":
        raise NeurodeployError(option, "", f"is inside a kernel file system, {real.split(os.sep)[1]} (got {out_dir})")
    try:
        fd, probe = tempfile.mkstemp(prefix=".neurodeploy-probe.", dir=probe_in)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        what = "cannot be written to" if probe_in == path else "cannot be created"
        reason = exc.strerror or errno.errorcode.get(exc.errno, exc.__class__.__name__)
        raise NeurodeployError(option, "", f"{what}: {reason} (got {out_dir})") from None


def make_out_dir(out_dir: str, option: str = "--out") -> list:
    """Create ``out_dir`` (after :func:`check_out_dir`); returns the directories created, deepest last."""
    created = []
    path = os.path.abspath(out_dir)
    todo = []
    while not os.path.lexists(path):
        todo.append(path)
        path = os.path.dirname(path)
    try:
        for folder in reversed(todo):
            os.mkdir(folder)
            created.append(folder)
    except OSError as exc:
        remove_if_empty(created)
        raise NeurodeployError(option, "", f"cannot be created: {exc.strerror} (got {out_dir})") from None
    return created


def remove_if_empty(created: list) -> None:
    """Remove the directories we created (deepest first) as long as they are empty."""
    for folder in reversed(created):
        try:
            os.rmdir(folder)
        except OSError:
            return


def _check_timeout(timeout):
    if timeout is not None and not (math.isfinite(timeout) and 0 < timeout <= MAX_TIMEOUT):
        raise NeurodeployError("--timeout", "", f"must be a number of seconds > 0 and at most {MAX_TIMEOUT} "
                                                f"(got {timeout:g})")


@contextlib.contextmanager
def _spread(spread):
    """verify --scheduler: the rounding ensemble's members over threads (an int) or a Dask scheduler (an address)."""
    if spread is None:
        yield
        return

    if isinstance(spread, int):
        with cluster.use(spread):
            yield
        return
    from distributed import Client

    with Client(spread) as client, cluster.use(client):
        yield


def _check_scheduler(address: str, seconds: float = 3.0) -> None:
    """The Dask scheduler must answer a TCP connection within ``seconds``, before anything is created."""
    import socket
    from urllib.parse import urlsplit

    text = address if "://" in address else f"tcp://{address}"
    try:
        parts = urlsplit(text)
        host, port = parts.hostname, parts.port
    except ValueError:
        host = port = None
    if parts.scheme not in ("tcp", "tls") or not host or not port:
        raise NeurodeployError("--scheduler", "", f"must be an address such as tcp://host:8786 (got {address})")
    try:
        with socket.create_connection((host, port), timeout=seconds):
            pass
    except OSError as exc:
        reason = "no answer" if isinstance(exc, socket.timeout) else (exc.strerror or exc.__class__.__name__)
        raise NeurodeployError("--scheduler", "", f"cannot reach the scheduler within {seconds:g} s: {reason} "
                               f"(got {address})") from None
    import logging

    import asyncio

    from distributed.comm import connect

    async def handshake():
        comm = await connect(text, timeout=seconds)
        await comm.close()

    quiet = [logging.getLogger(name) for name in ("distributed", "tornado", "asyncio")]
    levels = [logger.level for logger in quiet]
    for logger in quiet:
        logger.setLevel(logging.CRITICAL + 1)
    try:  # something answers on that port: it must be a Dask scheduler
        asyncio.run(asyncio.wait_for(handshake(), seconds + 1))
    except Exception as exc:  # noqa: BLE001 - whatever the other end did, it is not a scheduler
        raise NeurodeployError("--scheduler", "", f"no Dask scheduler answered within {seconds:g} s "
                               f"({exc.__class__.__name__}) (got {address})") from None
    finally:
        for logger, level in zip(quiet, levels):
            logger.setLevel(level)




@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="neurodeploy")
def cli():
    """Compile synaptic plasticity rules to Brian2 and Lava, and verify them."""


@cli.command()
@click.argument("rule_file", type=click.Path(dir_okay=True))
def check(rule_file):
    """Validate RULE_FILE; show backends, the learning-engine string and the fixed-point plan."""
    from neurodeploy.compile.compilation import compile_plans
    from neurodeploy.report import plan_table

    rule = _load(rule_file)
    registry = load_all()
    click.echo(f"{rule.source}: rule '{rule.name}' is valid" + (f" ({rule.citation})" if rule.citation else ""))
    from neurodeploy.brian2.model import unit_text
    from neurodeploy.compile.plan import engine_reason

    unit = "" if unit_text(rule.weight.dim) == "1" else f" {unit_text(rule.weight.dim)}"
    for p in rule.parameters:
        if p.expression:  # defined from other parameters: show what it evaluates to
            value = f"{p.value:g}" + ("" if unit_text(p.quantity.dim) == "1" else f" {unit_text(p.quantity.dim)}")
            click.echo(f"  parameter {p.name} = {p.expression} = {value}")
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
@click.option("--json", "as_json", is_flag=True,
              help="A JSON list of {name, citation, backends, unsupported, approximations, measured}.")
@click.option("--markdown", is_flag=True, help="The matrix as the markdown table of docs/rules.md.")
def rules(as_json, markdown):
    """The built-in rule library: which backend runs which rule, and why not."""
    import json


    rows = support_matrix()
    if as_json:
        keys = ("name", "citation", "backends", "unsupported", "approximations", "measured")
        click.echo(json.dumps([{k: r[k] for k in keys} for r in rows], indent=2))
    elif markdown:
        click.echo(matrix_markdown(rows))
    else:
        for r in rows:
            click.echo(f"{r['name']} ({r['file']}): {r['citation']}")
            click.echo(f"  runs on: {', '.join(r['backends'])}")
            for backend, reason in r["unsupported"].items():
                click.echo(f"  not on {backend}: {reason}")
            for detail in r["approximations"]:
                click.echo(f"  on the learning engine approximated: {detail}")


@cli.command("compile")
@click.argument("rule_file", type=click.Path(dir_okay=True))
@click.option("--target", type=click.Choice(["brian2", "lava"]), required=True, help="What to generate.")
@click.option("--out", "out_dir", required=True, type=str, help="Output directory.")
@click.option("--mode", type=click.Choice(["fixed", "float"]), default=None,
              help="lava: the plan the script runs, Loihi's fixed point (default) or Lava's float model.")
@click.option("--protocol", type=click.Choice(list(PROTOCOLS)), default=None,
              help="lava: the traffic the trace scales assume (default: poisson, 10 Hz).")
@click.option("--seed", type=int, default=None, help=f"lava: seed of that traffic (default {DEFAULTS['seed']}).")
@click.option("--spikes", type=click.Path(dir_okay=True), default=None,
              help="lava: scale on recorded rasters instead (NPZ with pre, post, as verify --spikes).")
def compile_cmd(rule_file, target, out_dir, mode, protocol, seed, spikes, **options):
    """Write standalone Python for RULE_FILE: DIR/<rule>_brian2.py or DIR/<rule>_lava.py (+ _plan.json).

    The Lava plan's trace scales assume a traffic (--rate, --protocol and its options, --seed,
    or --spikes); the plan JSON and the script's header state it. A rule the learning engine
    cannot express gets a lava-cpu script (the RuleSynapses process), not deployable."""
    rule = _load(rule_file)  # before the imports below (Brian2's alone takes ~1 s): bad input fails fast
    from neurodeploy.codegen import write_compiled
    from neurodeploy.compile.plan import engine_reason

    given = {k: v for k, v in options.items() if v is not None}
    traffic = dict({"--protocol": protocol, "--seed": seed, "--spikes": spikes},
                   **{f"--{k.replace('_', '-')}": v for k, v in given.items()})
    traffic = {k: v for k, v in traffic.items() if v is not None}
    if target == "brian2":
        for option, value in dict({"--mode": mode}, **traffic).items():
            if value is not None:
                raise NeurodeployError(option, "", f"only for --target lava: the Brian2 script runs the rule as "
                                                   f"written, with no scaling (got {value})")
    trains = None
    if target == "lava" and engine_reason(rule) is not None:
        for option, value in dict({"--mode": mode}, **traffic).items():
            if value is not None:
                raise NeurodeployError(option, "", f"rule '{rule.name}' is not deployable to the learning engine "
                                                   f"(a lava-cpu script, no plan to scale) (got {value})")
    elif target == "lava":
        mode = mode or "fixed"
        reason = unsupported_reason(rule, mode)
        if reason is not None:
            raise NeurodeployError(rule.source, "weight", reason)
        if rule.has_reward:
            raise NeurodeployError(rule.source, "traces", "three-factor rules (a reward trace) have no standalone "
                                   "learning-engine script yet: deploy them with neurodeploy.lava.deploy (mode float)")
        if spikes is not None:
            others = [k for k in traffic if k != "--spikes"]
            if others:
                raise NeurodeployError("--spikes", "", f"cannot be combined with other traffic options (got {others[0]})")
            trains = load_spikes(spikes, rule)
        elif traffic:
            name = protocol or "poisson"
            if name == "closed-loop":
                raise NeurodeployError("--protocol", "", "closed-loop makes its post spikes while it runs; "
                                       "the plan scales on given spikes: use poisson or --spikes (got closed-loop)")
            trains = make_trains(rule, name, given, DEFAULTS["seed"] if seed is None else seed, prefix="--")
    check_out_dir(out_dir)
    for path in write_compiled(rule, target, out_dir, trains=trains, mode=mode or "fixed"):
        click.echo(path)


def _backends(value):

    if value is None:
        return None  # the rule's default (neurodeploy.verification.default_backends)
    names = [v.strip() for v in value.split(",") if v.strip()]
    if not names:
        raise NeurodeployError("--backends", "", "needs at least one backend name")
    for name in names:
        if name not in ORDER:
            raise NeurodeployError("--backends", "", f"unknown backend '{name}'{did_you_mean(name, ORDER)} (known: {', '.join(ORDER)})")
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


# compile takes the protocol options too (the traffic its Lava plan assumes); on a built
# command each option is appended, so in their order
for _o in _OPTIONS.values():
    compile_cmd = _protocol_option(_o)(compile_cmd)


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
@click.option("--out", "out_dir", required=True, type=str, help="Output directory.")
@click.option("--protocol", type=click.Choice(list(PROTOCOLS) + ["network"]), default="poisson", show_default=True,
              help="Spike trains; 'network' (set by --network): a network file's populations and projections.")
@click.option("--network", "network_file", type=click.Path(dir_okay=True), default=None,
              help="Network file (YAML: populations, projections): verify the rule learning in it "
                   "(protocol 'network'; --steps overrides the file's steps, --seed draws its inputs).")
@_with_protocol_options
@click.option("--seed", type=int, default=DEFAULTS["seed"], show_default=True, help="Seed of the spike trains.")
@click.option("--spikes", type=click.Path(dir_okay=True), default=None,
              help="NPZ with pre (n_pre, steps), post (n_post, steps) rasters, optional w0 (n_post, n_pre) "
                   "and reward ((steps,) or (n_post, steps)) for rules with a third factor.")
@click.option("--backends", default=None, help="Comma-separated backends (default: brian2,brian2-step,lava-float,lava-fixed; "
                   "brian2,brian2-step,lava-cpu where the learning engine cannot express the rule).")
@click.option("--timeout", type=float, default=None,
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
@click.option("--fidelity", type=float, default=None,
              help="Fidelity tolerance, 0..1: each deployment's learned change (dw per synapse) must match "
                   "brian2's within this fraction: gain 1 +- F, net change within F of the per-synapse "
                   "change, correlation >= 1 - F (default 0.2).")
@click.option("--window/--no-window", default=True,
              help="On random trains (poisson, correlated, a spike file), add the rule's STDP window "
                   "(brian2 against the deployments' emulator twins) for spike-timing rules (default: on).")
@click.option("--scheduler", default=None,
              help="Spread the verdict's rounding ensemble over a Dask cluster (its scheduler's address, needs "
                   "neurodeploy[cluster]) or 'local' (this machine's cores, threads); the same report.")
@click.option("--quiet", is_flag=True, help="No progress on stderr.")
def verify(rule_file, out_dir, protocol, network_file, seed, spikes, backends, timeout, ensemble, record_every,
           record_synapses, lava_steps, fidelity, window, quiet, scheduler=None, **options):
    """Run RULE_FILE on every backend with the same spike trains and compare the weight trajectories."""
    from neurodeploy.verification import verify as run_verify
    from neurodeploy.report import summary_table

    network = None
    if network_file is not None:  # a file that cannot be read is refused before the rule is loaded
        from neurodeploy.network import read_network

        network = read_network(network_file)
    rule = _load(rule_file)
    names = _backends(backends)
    _check_timeout(timeout)
    if seed < 0:
        raise NeurodeployError("--seed", "", f"must be a whole number >= 0 (got {seed})")

    try:
        fidelity = DEFAULT_FIDELITY if fidelity is None else check_tolerance(fidelity)
    except ValueError as exc:
        raise NeurodeployError("--fidelity", "", str(exc)) from None
    check_out_dir(out_dir)
    if scheduler == "local":
        import os as _os

        spread = _os.cpu_count() or 1  # threads: the compiled ensemble releases the GIL
    elif scheduler:
        try:
            import distributed  # noqa: F401
        except ImportError:
            raise NeurodeployError("--scheduler", "", "needs the cluster extra: pip install 'neurodeploy[cluster]'") from None
        _check_scheduler(scheduler)
        spread = scheduler
    else:
        spread = None
    given = {k: v for k, v in options.items() if v is not None}
    if protocol == "network" or network_file is not None:
        trains = _network_trains(rule, protocol, network, spikes, given, seed)
    elif spikes is not None:
        if given:
            raise NeurodeployError("--spikes", "", f"cannot be combined with protocol options (got --{next(iter(given)).replace('_', '-')})")
        trains = load_spikes(spikes, rule)
    else:
        trains = make_trains(rule, protocol, given, seed, prefix="--")
    synapses = _synapse_spec(record_synapses, trains)
    check_out_dir(out_dir)  # again: the spike file may have taken a while

    created = make_out_dir(out_dir)
    with lock_out_dir(out_dir, created):  # one run at a time in a directory: a second one is refused
        _remove_stale(out_dir, REPORT_FILES)  # input is good: now the run starts, no old report survives it
        stage, moved = None, []
        try:
            progress = Progress(quiet=quiet)
            with _spread(spread):
                report = run_verify(rule, trains, names, progress=progress, timeout=timeout,
                                    ensemble=ensemble, record_every=record_every, record_synapses=synapses,
                                    lava_steps=lava_steps, fidelity=fidelity)
            if window:  # random trains mix LTP and LTD: the rule's window, on the emulator twins
                from neurodeploy.verification import add_window

                add_window(report, progress, timeout)
            check_signals()  # a Ctrl-C that Python dropped (a Brian2 weakref callback) ends the run here
            # written aside, then moved in (report.json last): a clean-up removes only this run's files
            stage = staging_dir(out_dir, "verify")
            report.write(stage)
            check_signals()
            publish(stage, out_dir, "report.json", moved)
            stage = None
            click.echo(summary_table(report.to_dict()))
            click.echo(f"wrote {os.path.join(out_dir, 'report.json')}, report.md, trajectories.npz")
            check_signals()
            results_complete()  # written and announced: a signal from now on cannot unwrite it
        except BaseException:  # interrupted, even while writing: no partial report, no empty directory
            if stage is not None:
                remove_tree(stage)
            unpublish(out_dir, moved)  # only the files this run moved in, and only if still those
            raise
    sys.exit(report.exit_code)  # 0 passed, 1 failed, 3 nothing checked


#: What verify writes into its --out directory (all of them removed before a run starts).
REPORT_FILES = ("report.json", "report.md", "trajectories.npz", "trajectories.png", "errors.png", "curve.png",
                "quantization.png")


@contextlib.contextmanager
def lock_out_dir(out_dir: str, created=()):
    """Hold the lock of an output directory (:func:`neurodeploy.files.locked`) while a run writes into
    it: two runs never interleave in one directory, the second is refused in one line (exit 2). On
    leaving, the directories in ``created`` (:func:`make_out_dir`) are removed if empty (one that
    another run holds is not: its lock file is in it)."""

    try:
        with locked(out_dir):
            yield
    finally:
        remove_if_empty(list(created))


def _network_trains(rule, protocol, network, spikes, given, seed):
    """verify's protocol 'network': the network file's trains (validated before anything runs);
    ``network``: :func:`neurodeploy.network.read_network` of the file, or None."""

    if network is None:
        raise NeurodeployError("--protocol", "", "network needs --network FILE (a network file: populations, projections)")
    if protocol not in ("poisson", "network"):  # poisson: the default, not chosen
        raise NeurodeployError("--network", "", f"is the protocol 'network': it cannot be combined with --protocol {protocol}")
    if spikes is not None:
        raise NeurodeployError("--network", "", "cannot be combined with --spikes (the network's inputs are Poisson, "
                                                "drawn from --seed)")
    extra = [k for k in given if k != "steps"]
    if extra:
        raise NeurodeployError("--network", "", f"takes only --steps of the protocol options "
                                                f"(got --{extra[0].replace('_', '-')})")
    network = network_from_dict(*network, rule)
    steps = given.get("steps", network.steps)
    if "steps" in given:
        check_size(network, steps, "--steps", "")
    else:
        check_size(network, steps, network.source, "steps")
    return network_trains(rule, network, seed, steps)


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
@click.option("--out", "out_dir", default=None, type=str, help="Write DIR/mutation.json.")
@click.option("--quiet", is_flag=True, help="No progress on stderr.")
def mutate(rule_file, protocol, seed, seeds, ensemble, out_dir, quiet, **options):
    """Mutation self-test of the fixed-point verdict: break every constant of the fixed plan
    (E+-1, S+-1, sign, dependency) and count the mutants caught; run the unmutated plan on
    SEEDS other spike trains and count the false alarms. Emulator only (no Lava process).

    Exit 0 when at least 90% of the mutants are caught and at most 1% of the seeds fail,
    1 otherwise, 3 when the plan has no constant to mutate; --seeds must be at least 1."""
    import json

    from neurodeploy.report import _jsonable

    if seeds < 1:  # no false-alarm seed: the verdict's false-alarm rate would be unmeasured, not 0
        raise NeurodeployError("--seeds", "", f"must be at least 1: the false-alarm rate needs seeds to run on "
                                              f"(got {seeds})")
    rule = _load(rule_file)
    reason = unsupported_reason(rule, "fixed")  # the rules lava-fixed runs, approximations included
    if reason is not None:
        raise NeurodeployError(rule.source, "weight", f"no fixed-point plan to mutate: {reason}")
    if seed < 0:
        raise NeurodeployError("--seed", "", f"must be a whole number >= 0 (got {seed})")
    if out_dir is not None:
        check_out_dir(out_dir)
    given = {k: v for k, v in options.items() if v is not None}
    make_trains(rule, protocol, given, seed, prefix="--")  # bad options exit 2 before anything runs
    summary = self_test(rule, lambda s: make_trains(rule, protocol, given, s, prefix="--"), seed, seeds,
                        ENSEMBLE_SIZE if ensemble is None else ensemble,
                        progress=lambda msg: _mutate_progress(msg, quiet))
    summary["protocol"], summary["options"] = protocol, given
    check_signals()  # a signal whose exception Python dropped: nothing shown or written
    click.echo(render(summary))
    if out_dir is not None:
        from neurodeploy.files import identity, unpublish

        created = make_out_dir(out_dir)
        moved = []
        try:  # one file, written atomically: no lock (a verify running in DIR never writes mutation.json)
            path = _atomic(out_dir, "mutation.json",
                           lambda f: f.write(json.dumps(_jsonable(summary), indent=2, sort_keys=True) + "\n"))
            moved.append(("mutation.json", identity(path)))
            click.echo(f"wrote {path}")
            check_signals()
        except BaseException:  # interrupted: not this run's mutation.json either, no empty directory
            unpublish(out_dir, moved)
            remove_if_empty(created)
            raise
    results_complete()
    sys.exit(mutation_exit_code(summary))


def _mutate_progress(message: str, quiet: bool) -> None:

    check_signals()  # each mutant and every 10 seeds: a safe point for a signal Python dropped
    if not quiet:
        click.echo(message, err=True)


def mutation_exit_code(summary: dict) -> int:
    """mutate's exit code: 0 when at least 90% of the mutants are caught and at most 1% of the seeds
    fail, 1 otherwise, 3 (not checked) when there was no mutant or no false-alarm seed to count."""

    score, rate = summary["mutation_score"], summary["false_alarm_rate"]
    if score is None or rate is None:
        return EXIT_NOT_CHECKED
    return 0 if score >= 0.9 and rate <= 0.01 else 1


def _remove_stale(out_dir, names):
    """An old report must not survive a run that fails or is interrupted: remove it first."""
    for name in names:
        path = os.path.join(out_dir, name)
        if os.path.isfile(path):
            os.unlink(path)


@cli.command()
@click.argument("plan_file", type=click.Path(dir_okay=True))
@click.option("--out", "out_dir", required=True, type=str, help="Output directory.")
@click.option("--jobs", type=click.IntRange(1, 256), default=1, show_default=True, help="Local worker processes.")
@click.option("--force", is_flag=True, help="Redo runs whose inputs have not changed.")
@click.option("--scheduler", default=None, help="Address of a Dask distributed scheduler (needs neurodeploy[cluster]).")
@click.option("--allow-outside-rules", is_flag=True,
              help="Let the plan's rules be any path (absolute, or with '..'), not only files under the plan's "
                   "directory and library rules.")
@click.option("--quiet", is_flag=True, help="No progress on stderr.")
def run(plan_file, out_dir, jobs, force, scheduler, allow_outside_rules, quiet):
    """Compile and verify every run of PLAN_FILE; write DIR/summary.json and DIR/summary.md."""
    from neurodeploy.batch import load_plan, render_summary, run_plan

    check_out_dir(out_dir)
    if scheduler:
        try:
            import distributed  # noqa: F401
        except ImportError:
            raise NeurodeployError("--scheduler", "", "needs the cluster extra: pip install 'neurodeploy[cluster]'") from None
    _, specs = load_plan(plan_file, allow_outside=allow_outside_rules)  # a broken plan exits 2 before anything is written
    if scheduler:
        _check_scheduler(scheduler)
    if jobs > len(specs) and not scheduler:
        click.echo(f"neurodeploy: --jobs {jobs}: using {len(specs)} worker{'s' if len(specs) != 1 else ''}, "
                   f"one per run of the plan", err=True)
        jobs = len(specs)
    check_out_dir(out_dir)
    summary = run_plan(plan_file, out_dir, jobs=jobs, force=force, scheduler=scheduler,
                       progress=None if quiet else (lambda msg: click.echo(msg, err=True)),
                       allow_outside=allow_outside_rules)

    results_complete()  # the summary is written: a signal from now on is too late to stop anything
    click.echo(render_summary(summary.to_dict()))
    click.echo(f"wrote {os.path.join(out_dir, 'summary.json')}, summary.md")
    sys.exit(summary.exit_code)  # 0 all passed, 1 a run failed, 3 a run checked nothing


@cli.command("import-brian2")
@click.argument("spec_file", type=click.Path(dir_okay=True))
@click.option("--out", "out_file", required=True, type=str, help="The rule file to write.")
@click.option("--force", is_flag=True, help="Replace --out if it exists.")
def import_brian2(spec_file, out_file, force):
    """Make a rule file from a Brian2 Synapses definition: SPEC_FILE (YAML) holds its model,
    on_pre, on_post and namespace (numbers or '20 ms' strings), optional name, init, bounds."""
    import tempfile
    import threading


    received = []

    def interrupted(signum, frame):
        received.append(signum)
        raise KeyboardInterrupt() if signum == signal.SIGINT else Terminated()

    def check_received():  # a safe point: a signal whose exception something swallowed still stops the command
        if received:
            raise KeyboardInterrupt() if received[-1] == signal.SIGINT else Terminated()

    # the command answers its own signals, saying what it was doing (there is no Lava process nor report)
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            if signal.getsignal(signum) is not signal.SIG_IGN:  # a background job's SIGINT stays ignored
                previous[signum] = signal.signal(signum, interrupted)
    spec_name = os.path.basename(os.fspath(spec_file)) or os.fspath(spec_file)
    existed, tmp = False, None
    doing = "checking --out"  # what an interrupt stops, for its message; None once the rule is written
    try:
        _check_out_file(out_file, force)
        existed = os.path.lexists(out_file)
        doing = f"reading and converting {spec_name}"
        from neurodeploy.importers.brian2 import from_spec, to_yaml

        rule = from_spec(spec_file)
        text = to_yaml(rule, header=f"Imported from the Brian2 definition in {spec_name} by neurodeploy import-brian2")
        check_received()
        doing = f"writing {out_file}"
        try:
            fd, tmp = tempfile.mkstemp(prefix=".import-brian2.", dir=os.path.dirname(os.path.abspath(out_file)))
            follow_umask(fd)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:  # the rule loader reads UTF-8
                handle.write(text)
            check_received()
            os.replace(tmp, out_file)
            tmp = None
        except OSError as exc:  # what the checks could not foresee (a full disk, a race): one line
            raise NeurodeployError("--out", "", f"cannot be written: {exc.strerror or type(exc).__name__} "
                                                f"(got {out_file})") from None
        doing = None
        click.echo(out_file)
        for note in rule.notes:
            click.echo(f"note: {note}")
    except (KeyboardInterrupt, Terminated) as exc:
        what = "interrupted (SIGINT)" if isinstance(exc, KeyboardInterrupt) else "terminated (SIGTERM)"
        if doing is None:
            click.echo(f"neurodeploy: {what} after import-brian2 wrote {out_file}", err=True)
        else:
            kept = f", {out_file} unchanged" if existed else ""
            click.echo(f"neurodeploy: {what} while import-brian2 was {doing}: nothing written{kept}", err=True)
        sys.exit(130 if isinstance(exc, KeyboardInterrupt) else 143)
    finally:
        if tmp is not None and os.path.lexists(tmp):
            os.unlink(tmp)
        for signum, handler in previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)


def _check_out_file(out_file: str, force: bool) -> None:
    """A file path we may write: its folder exists; an existing file only with --force; names the
    file system accepts (the checks of :func:`check_out_dir`), before anything is read or written."""
    if not isinstance(out_file, str) or not out_file.strip():
        raise NeurodeployError("--out", "", f"must be a file path (got {out_file!r})")
    if "\0" in out_file:
        raise NeurodeployError("--out", "", f"must not contain a NUL character (got {out_file!r})")
    path = os.path.abspath(out_file)
    if os.path.isdir(path):
        raise NeurodeployError("--out", "", f"is a directory, not a file (got {out_file})")
    if out_file.endswith(("/", os.sep)):  # abspath drops the slash: x.yaml/ is no file name
        raise NeurodeployError("--out", "", f"ends with '/': a directory path, not a file (got {out_file})")
    longest = max(len(os.fsencode(part)) for part in path.split(os.sep))
    if longest > 255:
        raise NeurodeployError("--out", "", f"name too long ({longest} bytes in one name, at most 255) (got {out_file})")
    if len(os.fsencode(path)) > 4095:
        raise NeurodeployError("--out", "", f"path too long ({len(os.fsencode(path))} bytes, at most 4095) "
                                            f"(got {out_file})")
    if os.path.lexists(path):
        if not force:
            raise NeurodeployError("--out", "", f"exists: use --force to replace it (got {out_file})")
        if not os.path.isfile(path):
            raise NeurodeployError("--out", "", f"exists and is not a regular file (got {out_file})")
    folder = os.path.dirname(path)
    if not os.path.isdir(folder):
        if os.path.lexists(folder):
            raise NeurodeployError("--out", "", f"its folder is not a directory (got {out_file})")
        raise NeurodeployError("--out", "", f"its folder does not exist (got {out_file})")
    real = os.path.realpath(folder)
    if real in ("/proc", "/sys") or real.startswith(("/proc/", "/sys/")):
        raise NeurodeployError("--out", "", f"is inside a kernel file system, {real.split(os.sep)[1]} (got {out_file})")
    if not os.access(folder, os.W_OK):
        raise NeurodeployError("--out", "", f"its folder cannot be written to (got {out_file})")


class Terminated(BaseException):
    """SIGTERM, raised in the main thread so that every ``finally`` (Lava's stop()) runs."""


@cli.command("task")
@click.argument("name", type=click.Choice(list(TASKS)))
@click.option("--out", "out_dir", required=True, help="output directory (report.json and the task's figure)")
@click.option("--seeds", type=click.IntRange(2, 1000), default=None,
              help="runs per ensemble (default 10; at least the fewest with which the verdict can fail)")
@click.option("--size", default=None, help="a named larger size of the task (e.g. paper)")
@click.option("--steps", type=click.IntRange(100, 10_000_000), default=None, help="steps per run")
@click.option("--candidate", type=click.Choice(["emu-fixed", "emu-float"]), default=CANDIDATE, show_default=True,
              help="the deployment judged (the emulator, bit for bit lava-fixed / lava-float)")
@click.option("--wrong/--no-wrong", default=False, show_default=True,
              help="also run the deliberately wrong deployments (x2, sign, lif-tau_v), each must fail")
@click.option("--lava-window", type=click.IntRange(0, 100_000), default=300, show_default=True,
              help="steps of lava-fixed proven equal to emu-fixed (0: none)")
@click.option("--false-alarms", "false_alarm_verdicts", type=click.IntRange(0, 10_000), default=0,
              help="instead: judge the correct deployment this many times on untuned seeds (the false-alarm rate)")
@click.option("--first-seed", "first_seed", type=click.IntRange(0, 2**31 - 1), default=None,
              help="with --false-alarms: the first of its disjoint seeds (default 1000; the defaults' runs use 0-20)")
@click.option("--null", "null", is_flag=True,
              help="with --false-alarms: judge the deployment against itself on disjoint seeds (every FAILED "
                   "verdict is then a false alarm of the verdict: its own rate, on the emulator)")
@click.option("--explain", is_flag=True,
              help="run the chain brian2-step -> emu-float -> emu-fixed even when the verdict passes (always when it fails)")
@click.option("--finer-dt", "finer_dt", type=click.IntRange(2, 8), default=None,
              help="also measure the task at dt / K (the remedy of a timing deviation): reference and deployment "
                   "ensembles there, judged against the model as written")
@click.option("--jobs", type=click.IntRange(1, 256), default=None,
              help="worker processes for the ensembles' runs (default: this machine's cores; the numbers are the "
                   "same for any --jobs)")
@click.option("--quiet", is_flag=True, help="no progress lines")
def task(name, out_dir, seeds, size, steps, candidate, wrong, lava_window, false_alarm_verdicts, first_seed, null,
         explain, finer_dt, jobs, quiet):
    """Run a literature learning task on the reference (brian2) and the deployment (emu-fixed = lava-fixed),
    judged in the task's own metrics."""
    import json

    module = task_module(name)
    needed = min_seeds(len(module.METRICS))
    if seeds is not None and seeds < needed:
        raise NeurodeployError("--seeds", "", f"{seeds} runs a side cannot show a difference in "
                                              f"{len(module.METRICS)} metrics (the smallest p-value is "
                                              f"{min_p(seeds, seeds):.2g}); use at least {needed}")
    if size is not None and size not in getattr(module, "SIZES", {}):
        raise NeurodeployError("--size", "", f"unknown size {size!r} for {name} (sizes: "
                               f"{', '.join(getattr(module, 'SIZES', {})) or 'none'})")
    if null and not false_alarm_verdicts:
        raise NeurodeployError("--null", "", "only with --false-alarms N (it judges the deployment against itself)")
    if first_seed is not None and not false_alarm_verdicts:
        raise NeurodeployError("--first-seed", "", "only with --false-alarms N (the seeds of its verdicts)")
    if false_alarm_verdicts:  # options of one task run that --false-alarms would not use: refused, not ignored
        source = click.get_current_context().get_parameter_source
        unused = [flag for flag, given in (("--wrong", wrong), ("--explain", explain), ("--finer-dt", finer_dt),
                                           ("--lava-window", source("lava_window") is click.core.ParameterSource.COMMANDLINE))
                  if given]
        if unused:
            raise NeurodeployError(unused[0], "", "not with --false-alarms N (it judges verdicts only: no wrong "
                                                  "deployments, chain, finer dt or Lava window)")
    if finer_dt:  # a task at a finer step it cannot take: refused before anything is written
        finer_setup(module, task_setup(module, size, **({} if steps is None else {"steps": steps})), finer_dt)
    check_out_dir(out_dir)
    jobs = jobs or len(os.sched_getaffinity(0))
    say = (lambda message: None) if quiet else (lambda message: click.echo(message, err=True))
    overrides = {} if steps is None else {"steps": steps}
    created = make_out_dir(out_dir)
    with lock_out_dir(out_dir, created):
        stage, moved = None, []
        files = ("report.json", name.replace("-", "_") + ".png") if not false_alarm_verdicts else ("false_alarms.json",)
        _remove_stale(out_dir, files)
        try:
            stage = staging_dir(out_dir, "task")
            if false_alarm_verdicts:
                result = false_alarms(module, false_alarm_verdicts, seeds, candidate=candidate, progress=say,
                                      size=size, jobs=jobs, null=null,
                                      first_seed=1000 if first_seed is None else first_seed, **overrides)
                with open(os.path.join(stage, "false_alarms.json"), "w") as f:
                    json.dump(result, f, indent=1)
                check_signals()
                publish(stage, out_dir, "false_alarms.json", moved)
                stage = None
                lo, hi = result["clopper_pearson_95"]
                judged = (f"{candidate} against itself (the verdict's own false alarms)" if null
                          else "the correct deployment")
                click.echo(f"{name}: {result['not_passed']} of {result['verdicts']} verdicts of {judged} did not "
                           f"pass ({result['failed']} FAILED, {result['not_shown']} NOT SHOWN; {result['rate']:.1%}, "
                           f"95% interval {lo:.1%}..{hi:.1%}, one-sided 95% bound {result['one_sided_95_upper']:.2%}), "
                           f"{result['seeds_per_side']} runs a side")
                click.echo(f"wrote {os.path.join(out_dir, 'false_alarms.json')}")
                results_complete()
                report = None  # exit 0 below, after the lock is let go (a SystemExit here unpublished the file)
            else:
                report = run_task(module, stage, seeds=seeds, candidate=candidate, lava_window=lava_window,
                                  wrong=WRONG if wrong else (), size=size, progress=say, explain=explain, jobs=jobs,
                                  finer_dt=finer_dt, **overrides)
                check_signals()
                publish(stage, out_dir, "report.json", moved)
                stage = None
                click.echo(task_summary(report))
                click.echo(f"wrote {os.path.join(out_dir, 'report.json')}, {report['figure']}")
                results_complete()
        except BaseException:
            if stage is not None:
                remove_tree(stage)
            unpublish(out_dir, moved)
            raise
    sys.exit(0 if report is None else {True: 0, False: 1}.get(report["verdict"], EXIT_NOT_CHECKED))


def task_summary(report: dict) -> str:
    """The task report in lines: per metric reference -> deployment, the wrong deployments, the proof."""
    import numpy as np

    ref, cand = np.array(report["metrics"]["reference"]), np.array(report["metrics"]["candidate"])
    seeds = report["seeds"]
    lines = [f"{report['title']}",
             f"{report['task']}: {report['reference']} (seeds {seeds['reference'][0]}..{seeds['reference'][-1]}) vs "
             f"{report['candidate']} (seeds {seeds['candidate'][0]}..{seeds['candidate'][-1]}), "
             f"{len(seeds['reference'])} runs each, tolerance {report['tolerance']:g} of the reference"
             + "".join(f"; {b} on {', '.join(t)}" for b, t in (report.get("brian2_targets") or {}).items())]
    for k, m in enumerate(report["metrics"]["names"]):
        st = report["test"]["statistics"][m]
        p = "constant" if st["p_value"] is None else f"p = {st['p_value']:.3g}"
        flag = "  DIFFERS" if m in report["test"]["rejected"] else ""
        lines.append(f"  {m:<16} {ref[:, k].mean():.4g} +- {ref[:, k].std():.2g} -> {cand[:, k].mean():.4g} +- "
                     f"{cand[:, k].std():.2g}  (margin {report['margins'][m]:.3g}, {p}){flag}")
    for label, w in report["wrong_deployments"].items():
        if "skipped" in w:
            lines.append(f"  wrong deployment {label}: skipped ({w['skipped']})")
        else:
            lines.append(f"  wrong deployment {label} ({w['what']}): "
                         + (f"FAILED, caught by {', '.join(w['caught_by'])}" if w["failed"] else "PASSED (not caught)"))
    if report.get("chain"):
        lines.append("  where it comes from (the deployment's seeds, each link against the reference):")
        for link in report["chain"]["links"]:
            verdict = {True: "passes", False: "fails", None: "not shown" if link.get("unresolved") else
                       "not checked"}[link["passed"]]
            judged = list(report["test"]["rejected"]) + list(report["test"].get("unresolved", []))
            shares = ", ".join(f"{m} {link['share'][m]:+.0%}" for m in judged if link["share"].get(m) is not None)
            lines.append(f"    {link['backend']:<12} {verdict:<11} {link['what']}" + (f" [share: {shares}]" if shares else ""))
        lines.append(f"  remedy: {report['chain']['remedy']}")
    if report.get("finer_dt"):
        f = report["finer_dt"]
        said = {True: "PASSED", False: "FAILED", None: "NOT CHECKED"}
        v = f["verdicts"]
        lines.append(f"  measured at dt = {f['dt_ms']:g} ms (--finer-dt {f['k']}; thresholds x{f['k']}): the deployment vs "
                     f"the model as written {said[v['deployment_vs_model_as_written']['passed']]}"
                     + (f" ({', '.join(v['deployment_vs_model_as_written']['rejected'])})"
                        if v['deployment_vs_model_as_written']['rejected'] else "")
                     + f"; vs {report['reference']} at {f['dt_ms']:g} ms "
                     f"{said[v['deployment_vs_reference_at_finer_dt']['passed']]}; {report['reference']} at "
                     f"{f['dt_ms']:g} ms vs as written {said[v['reference_at_finer_dt_vs_as_written']['passed']]}")
    if report["lava_window"]:
        w = report["lava_window"]
        lines.append(f"  lava-fixed = emu-fixed on the first {w['steps']} steps ({w['post_spikes']} LIF spikes): "
                     f"{'yes' if w['bit_exact'] else 'NO'}")
    if report["verdict"] is None and report["test"].get("unresolved"):
        lines.append("NOT SHOWN: " + not_shown(report["test"]))
    elif report["verdict"] is None:
        lines.append("NOT CHECKED: every metric is constant and equal on both sides")
    else:
        lines.append("PASSED: the deployment learns the task as the reference does" if report["verdict"] else
                     "FAILED: " + ", ".join(report["test"]["rejected"]) + " differ(s) beyond the tolerance")
    return "\n".join(lines)


def main(argv=None):
    """Entry point: one-line errors, exit 2 on bad input or usage, 130/143 on SIGINT/SIGTERM.

    SIGINT raises KeyboardInterrupt and SIGTERM :class:`Terminated` wherever they land, and neither is
    ever lost (:func:`neurodeploy.progress.catch_signals`: where Python drops the exception, in a
    weakref callback of Brian2's, the signal is raised again); SIGINT ignored (a background job) stays
    ignored."""

    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        click.echo(cli.get_help(click.Context(cli, info_name="neurodeploy")))
        sys.exit(2)
    restore = catch_signals({signal.SIGTERM: Terminated, signal.SIGINT: KeyboardInterrupt})
    try:
        try:
            try:
                cli.main(args=argv, prog_name="neurodeploy", standalone_mode=False)
            except Exception as exc:  # an interrupt or a timeout wrapped by Brian2 is handled as itself
                # a signal that landed inside compiled code (numba's dispatcher: "SystemError: ... returned
                # a result with an exception set") or anything else raised because of it: the signal
                check_signals()
                if type(exc).__name__ != "BrianObjectException":
                    raise
                from neurodeploy.brian2.backends import unwrap

                original = unwrap(exc)
                if original is exc or not isinstance(original, (KeyboardInterrupt, Terminated)):
                    raise
                raise original from None
            except (SystemExit, click.exceptions.Exit):
                check_signals()  # ended although a signal came before its results were complete: that signal
                raise
            check_signals()
        except click.exceptions.Abort:  # click's name for a KeyboardInterrupt
            raise KeyboardInterrupt() from None
    except NeurodeployError as exc:
        click.echo(f"neurodeploy: error: {exc}", err=True)
        sys.exit(2)
    except click.UsageError as exc:
        message = exc.format_message().replace("\n", " ")
        click.echo(f"neurodeploy: error: {message}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        click.echo("neurodeploy: interrupted (SIGINT): every Lava process stopped, no report written", err=True)
        sys.exit(130)
    except Terminated:
        click.echo("neurodeploy: terminated (SIGTERM): every Lava process stopped, no report written", err=True)
        sys.exit(143)
    except WorkerLost:  # a worker process of --jobs, not this one, got SIGTERM: the run is incomplete
        click.echo("neurodeploy: terminated (SIGTERM of a worker process): every Lava process stopped, "
                   "no report written", err=True)
        sys.exit(143)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    finally:
        restore()
    sys.exit(0)


if __name__ == "__main__":
    main()
