"""The documentation's examples run in the test suite (sybil), so that none of them rots; and the fast
tier (``./scripts/test --quick``: ``pytest -m "not slow"``), whose ``slow`` marks are assigned here.

Collected: ``README.md`` and ``docs/**/*.md`` (``testpaths`` in pyproject.toml). Every page runs in a
fresh temporary directory holding a link to ``reference/`` (so examples read as if run from a clone's
root and write nothing into it); the blocks of one page share one namespace, in order.

- ```` ```python ```` blocks are executed; a block of ``>>>`` lines is a doctest (its output must match, with
  the flags below).
- ```` ```console ```` blocks are shell sessions: each ``$ neurodeploy ...`` line runs the command (in this
  process, through ``neurodeploy.cli.main``) and its output (stdout and stderr, as a terminal shows them)
  must match the lines below it, ``...`` matching anything and runs of white space equal
  (doctest's ELLIPSIS and NORMALIZE_WHITESPACE). The exit code must be 0 unless the line ends with
  ``# exit N``. ``$ ls DIR`` lists a directory, one name a line.
- ```` ```yaml ```` blocks are parsed; a complete rule, network file, Brian2 import spec or batch plan is loaded as
  neurodeploy loads it (a fragment is only parsed). ``<!-- write: NAME -->`` just before a block writes
  it to the page's directory instead, for the blocks after it (which may show it refused).
- ``<!-- skip: next "reason" -->`` skips the next block with that reason (sybil's own directive):
  captured output of a long run, or a block run and checked by a named test in ``tests/``
  (``tests/test_docs.py`` checks that such a test exists and reads the page).
- ```` ```sh ```` (synopses, set-up commands) and ```` ```text ```` (captured output, illustrations) are
  shown, not run.

This file sits at the repository's root: a second ``conftest.py`` in docs/ would replace the tests'
``conftest`` module, which some tests import at run time.
"""
import contextlib
import doctest
import io
import os
import re
import shlex
import shutil
import tempfile

import pytest

ROOT = os.path.dirname(os.path.abspath(__file__))

# --- the fast tier ---------------------------------------------------------------------------------------------
#: Left out of the fast tier, as a whole: the modules whose tests are long (durations measured with
#: ``pytest --durations`` on the 2-core machine, docs/development.md) or run Lava at length.
SLOW_MODULES = {
    "tests/test_properties.py",            # hypothesis: 152 s
    "tests/test_interrupts.py",            # signals into child processes and builds: 120 s
    "tests/test_brian2_targets.py",        # cpp_standalone builds: 68 s
    "tests/test_build_cache.py",           # cpp_standalone builds: 54 s
    "tests/test_import_brian2_hostile.py", # capped child processes: 56 s
    "tests/test_distribution.py",          # ensembles of closed loops: 36 s
    "tests/test_literature.py",            # the 200 s network on the emulator: 16 s
    # not measured test by test: they verify on Lava, in networks or at scale, at length
    "tests/test_rule_library.py",          # every library rule verified on Lava (the demo's checks)
    "tests/test_approximations.py",
    "tests/test_batch.py",
    "tests/test_network_lava.py",
    "tests/test_network_verdict.py",
    "tests/test_reproducibility.py",
    "tests/test_scale.py",
    "README.md",                           # the verify run on Lava (~15 s)
    "docs/tutorials/brian2_to_lava.md",    # Lava
    "docs/tutorials/networks.md",          # Lava, and the distribution ensembles
}
#: Single tests (node id prefixes: every parameter) measured over ~3 s, in modules otherwise fast.
SLOW_TESTS = (
    "tests/test_task_digits.py::test_reference_learns_digits_above_chance",                    # 19 s (43 s under load 8)
    "tests/test_step_semantics.py::test_numpy_and_brian2_step_semantics_agree",                # 49 s
    "tests/test_step_semantics.py::test_brian2_step_equals_the_stepper_to_ulps_per_step",      # 3-4 s each
    "tests/test_network_brian2.py::test_cpp_standalone_network_equals_numpy",                  # 42 s
    "tests/test_network_brian2.py::test_network_plasticity_equals_the_open_loop_on_its_own_spikes",  # ~4 s each
    "tests/test_progress.py::test_bar_reports_steps_of_every_backend",                         # 17 s
    "tests/test_codegen.py::test_lava_script_runs_and_equals_run_lava",                        # 4 s each
    "tests/test_codegen.py::test_brian2_script_runs_and_prints_the_final_weights",             # 3.6 s each
    "tests/test_names.py::test_renamed_rules_give_bit_identical_trajectories",                 # 3-4 s each
    "tests/test_import_brian2.py::test_library_round_trip_runs_the_identical_trajectory",      # ~4 s each
    "tests/test_import_brian2.py::test_song_miller_abbott_stdp_example",                       # 4 s
    "tests/test_codegen_params.py::test_edited_w_init_changes_main",                           # 4.5 s
    "tests/test_hostile.py::test_corpus_subprocess",                                           # 60 children, 1-3 s each
    "tests/test_inputs.py::test_masked_closed_loop_on_lava_equals_brian2_step",                # 29 s
    "tests/test_inputs.py::test_mask_present_synapses_equal_the_unmasked_run",                 # the fixture runs: 15 s
    "tests/test_inputs.py::test_mask_brian2_connects_only_the_mask",                           # the same fixture
    "tests/test_inputs.py::test_mask_verdict_compares_present_synapses_only",                  # the same fixture
    "tests/test_inputs.py::test_cli_verify_with_a_mask",                                       # 4 s
    "tests/test_inputs.py::test_cli_transposed_warning_then_runs",                             # 4 s
    "tests/test_epochs.py::test_timing_share_passes_a_correct_deployment_at_longer_epochs",    # 26 s each
    "tests/test_epochs.py::test_timing_share_fails_a_wrong_candidate_at_longer_epochs",        # 7 s each
    "tests/test_epochs.py::test_step_semantics_equal_the_engine",                              # 1-12 s each
    "tests/test_protocols.py::test_closed_loop_end_to_end",                                    # 27 s
    "tests/test_protocols.py::test_hfs_potentiates_and_lfs_depresses_pair_stdp",               # 16 s
    "tests/test_protocols.py::test_window_matches_closed_form_on_every_backend",               # 9 s
    "tests/test_verdict.py::test_closed_loop_plans_on_the_neurons_own_spikes",                 # 14 s
    "tests/test_lava.py::test_verify_cli_defaults_stdp_pair",                                  # 12 s
    "tests/test_lava.py::test_all_four_backends_agree",                                        # 5-9 s each
    "tests/test_lava.py::test_same_seed_same_trajectories",                                    # 8 s
    "tests/test_lava.py::test_spikes_file_drives_all_backends",                                # 3.5 s
    "tests/test_deploy.py::test_cpu_script_runs_and_an_edit_takes_effect",                     # 15 s
    "tests/test_deploy.py::test_float_script_runs",                                            # 9 s
    "tests/test_deploy.py::test_user_network_equals_verify",                                   # 4-8 s each
    "tests/test_deploy.py::test_fixed_script_runs_and_an_edit_takes_effect",                   # 7 s
    "tests/test_deploy.py::test_three_factor_deployment_supplies_the_traces",                  # 6 s
    "tests/test_deploy.py::test_docs_deploy_example_runs",                                     # 5 s
    "tests/test_deploy.py::test_fixed_script_warns_when_a_trace_saturates",                    # 4 s
    "tests/test_deploy.py::test_cpu_deployment_equals_the_engine_order_reference",             # 3 s
    "tests/test_event_driven.py::test_sparse_emulator_equals_dense_on_present_synapses",       # 9 s
    "tests/test_cluster.py::test_dask_cluster_gives_the_local_verdict",                        # 4 s
    "tests/test_goals.py::test_lava_on_tiles_equals_the_emulator_on_the_whole_connection",     # 3 s
)


def is_slow(nodeid: str) -> bool:
    """Whether the test ``nodeid`` (relative to the repository's root) is left out of the fast tier."""
    path = nodeid.split("::", 1)[0]
    return path in SLOW_MODULES or any(nodeid == test or nodeid.startswith(test + "[") for test in SLOW_TESTS)


def pytest_collection_modifyitems(config, items):
    for item in items:
        if is_slow(item.nodeid):
            item.add_marker(pytest.mark.slow)


try:  # sybil is in the "docs" extra; without it the documents are simply not collected
    from sybil import Sybil
    from sybil.parsers.markdown import PythonCodeBlockParser, SkipParser
    from sybil.parsers.markdown.lexers import FencedCodeBlockLexer
except ImportError:  # pragma: no cover - a machine without the docs extra
    Sybil = None

FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
WRITE = re.compile(r"<!--\s*write:\s*(?P<name>[\w./-]+)\s*-->\s*$")
EXIT = re.compile(r"#\s*exit\s+(?P<code>\d+)\s*$")


def _setup(namespace):
    namespace["_docs_cwd"] = os.getcwd()
    where = tempfile.mkdtemp(prefix="neurodeploy-docs-")
    os.symlink(os.path.join(ROOT, "reference"), os.path.join(where, "reference"))
    namespace["_docs_dir"] = where
    os.environ.setdefault("MPLBACKEND", "Agg")
    os.chdir(where)


def _teardown(namespace):
    os.chdir(namespace["_docs_cwd"])
    shutil.rmtree(namespace["_docs_dir"], ignore_errors=True)


def _run_neurodeploy(args):
    """Run ``neurodeploy ARGS`` in this process: (exit code, stdout and stderr interleaved)."""
    from neurodeploy.cli import main

    out = io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            main(args)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return code, out.getvalue()


def _ls(args):
    if len(args) != 1:
        raise ValueError(f"ls takes one directory in the documentation's examples (got {args})")
    return 0, "".join(f"{name}\n" for name in sorted(os.listdir(args[0])))


def _commands(source):
    """Split a console block into (command line, expected output) pairs."""
    pairs, command, want = [], None, []
    lines = source.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("$ "):
            if command is not None:
                pairs.append((command, "\n".join(want)))
            command, want = line[2:], []
            while command.endswith("\\") and i + 1 < len(lines):
                i += 1
                command = command[:-1] + " " + lines[i].strip()
        elif command is None:
            raise ValueError(f"a console block must start with '$ ' (got {line!r})")
        else:
            want.append(line)
        i += 1
    if command is not None:
        pairs.append((command, "\n".join(want)))
    return pairs


def evaluate_console(example):
    checker = doctest.OutputChecker()
    for command, want in _commands(example.parsed):
        expected_code = 0
        match = EXIT.search(command)
        if match:
            expected_code = int(match.group("code"))
        argv = shlex.split(command, comments=True)
        program, args = argv[0], argv[1:]
        if program == "neurodeploy":
            code, got = _run_neurodeploy(args)
        elif program == "ls":
            code, got = _ls(args)
        else:
            raise ValueError(f"the documentation's console examples run neurodeploy or ls (got {program!r})")
        want_text = want.strip() + "\n" if want.strip() else ""
        if not checker.check_output(want_text, got, FLAGS):
            diff = checker.output_difference(doctest.Example(command, want_text), got, FLAGS)
            raise AssertionError(f"$ {command}\n{diff}")
        if code != expected_code:
            raise AssertionError(f"$ {command}\nexit code {code}, expected {expected_code}; output:\n{got}")


def _load_yaml_document(text, name):
    """Load a complete rule, network file or import spec as neurodeploy does; a fragment is only parsed."""
    import yaml

    data = yaml.safe_load(text)
    if not isinstance(data, dict):
        return
    if {"name", "weight"} <= set(data):
        from neurodeploy import load_rule
        load_rule(name)
    elif {"network", "populations", "projections"} <= set(data):
        from neurodeploy import load_network, load_rule
        load_network(name, load_rule(os.path.join(ROOT, "reference", "rules", "stdp_pair.yaml")))
    elif {"model", "namespace"} <= set(data):
        from neurodeploy import import_brian2
        import_brian2(name)
    elif {"rules", "protocols"} <= set(data):
        from neurodeploy.batch import load_plan
        load_plan(name)


def evaluate_yaml(example):
    before = example.document.text[:example.region.start].rstrip().splitlines()
    match = WRITE.search(before[-1]) if before else None
    if match:
        with open(match.group("name"), "w", encoding="utf-8") as handle:
            handle.write(example.parsed)
        return  # written for the blocks after it, which say what neurodeploy makes of it
    fd, path = tempfile.mkstemp(suffix=".yaml", dir=os.getcwd())
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(example.parsed)
        _load_yaml_document(example.parsed, path)
    finally:
        os.unlink(path)


class _Block:
    """A fenced block of one language, evaluated by ``evaluate``."""

    def __init__(self, language, evaluate):
        self.lexer = FencedCodeBlockLexer(language=language)
        self.evaluate = evaluate

    def __call__(self, document):
        for region in self.lexer(document):
            region.parsed = str(region.lexemes["source"])
            region.evaluator = self.evaluate
            yield region


if Sybil is not None:
    pytest_collect_file = Sybil(
        parsers=[PythonCodeBlockParser(doctest_optionflags=FLAGS), _Block("console", evaluate_console), _Block("yaml", evaluate_yaml),
                 SkipParser()],
        patterns=["README.md", "docs/*.md", "docs/*/*.md"],
        setup=_setup,
        teardown=_teardown,
    ).pytest()
