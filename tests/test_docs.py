"""The documentation: the site builds with no warning, the README's first screen is what it promises, and
every example block is run (by sybil, from the root conftest.py, or by the test its skip directive names)."""
import os
import re
import subprocess
import sys

import pytest

from conftest import ROOT

DOCS = os.path.join(ROOT, "docs")
SKIP = re.compile(r'^<!--\s*skip:\s*next\s+"(?P<reason>[^"]*)"\s*-->', re.M)
RUN_BY = re.compile(r"run and checked by (?P<file>tests/[\w/]+\.py)::(?P<test>\w+)$")


def pages():
    for folder, _, files in os.walk(DOCS):
        if "_build" in folder:
            continue
        for name in sorted(files):
            if name.endswith(".md"):
                yield os.path.join(folder, name)


def test_docs_build_without_warnings(tmp_path):
    """sphinx-build -W --keep-going: a broken cross-reference, a bad heading level, a docstring that does not
    parse, an API name that no longer exists (autodoc) or a CLI that no longer loads (sphinx-click) fails."""
    pytest.importorskip("sphinx")
    pytest.importorskip("myst_parser")
    pytest.importorskip("sphinx_click")
    result = subprocess.run([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", DOCS,
                             str(tmp_path / "html")], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr
    html = (tmp_path / "html" / "cli.html").read_text(encoding="utf-8")
    # the CLI reference is generated from click: every command and one option of each
    for command in ("check", "compile", "import-brian2", "verify", "mutate", "run", "rules"):
        assert f'id="neurodeploy-{command}"' in html, command
    for option in ("verify-fidelity", "run-allow-outside-rules", "compile-target"):
        assert f'id="cmdoption-neurodeploy-{option}"' in html, option
    api = (tmp_path / "html" / "api.html").read_text(encoding="utf-8")
    for name in ("load_rule", "verify", "deploy", "deploy_network", "poisson", "load_network", "from_synapses",
                 "import_brian2", "DEFAULT_FIDELITY"):
        assert f'id="neurodeploy.{name}"' in api, name


def test_every_page_is_in_a_toctree():
    """A page outside every toctree is built but unreachable; Sphinx only warns for it, so check by name."""
    with open(os.path.join(DOCS, "index.md"), encoding="utf-8") as handle:
        index = handle.read()
    listed = set(re.findall(r"^([\w/]+)$", index, re.M))
    for path in pages():
        name = os.path.relpath(path, DOCS)[:-3]
        if name != "index":
            assert name in listed, f"{name}.md is in no toctree of docs/index.md"


def test_skipped_blocks_name_the_test_that_runs_them():
    """A block sybil skips is either captured output (said so) or run by a named test that exists and reads
    that very page."""
    found = 0
    for path in list(pages()) + [os.path.join(ROOT, "README.md")]:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
        for match in SKIP.finditer(text):
            reason = match.group("reason")
            run_by = RUN_BY.match(reason)
            assert run_by, f"{path}: a skipped block must say which test runs it (got {reason!r})"
            with open(os.path.join(ROOT, run_by.group("file")), encoding="utf-8") as handle:
                source = handle.read()
            assert re.search(rf"^def {run_by.group('test')}\(", source, re.M), reason
            page = os.path.relpath(path, ROOT)
            assert f'"{os.path.basename(page)}"' in source or page in source, f"{reason} does not read {page}"
            found += 1
    assert found >= 4


def test_readme_first_screen():
    """What the tool does, what "Loihi" means here, the set-up commands with their durations, one verdict
    in plain words and one figure, before the first link into the docs (within ~150 lines)."""
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as handle:
        text = handle.read()
    first_link = re.search(r"(?<!!)\[[^\]]*\]\(docs/", text)  # a link, not the figure
    head = text[:first_link.start()]
    assert head.count("\n") < 150
    assert "Lava's simulator of Loihi 2" in head
    assert "./scripts/demo" in head and "4 min 38 s" in head
    assert "./scripts/test" in head and "24 min 41 s" in head
    assert "![" in head and "](docs/_static/stdp_pair_trajectories.png)" in head
    assert os.path.exists(os.path.join(DOCS, "_static", "stdp_pair_trajectories.png"))
    assert "```console\n$ neurodeploy verify" in text and "In plain words" in text
    for link in re.findall(r"\]\((docs/[^)#]+)", text):
        assert os.path.exists(os.path.join(ROOT, link)), link


def _root_conftest():
    import importlib.util

    spec = importlib.util.spec_from_file_location("neurodeploy_root_conftest", os.path.join(ROOT, "conftest.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_fast_tier_lists_name_what_exists():
    """The fast tier's lists (root conftest.py) must not rot: every module exists and every single test named
    is defined in its module, so a renamed test cannot slip back into the fast tier unnoticed."""
    root = _root_conftest()
    for path in root.SLOW_MODULES:
        assert os.path.exists(os.path.join(ROOT, path)), path
    for prefix in root.SLOW_TESTS:
        path, name = prefix.split("::")
        with open(os.path.join(ROOT, path), encoding="utf-8") as handle:
            assert re.search(rf"^def {name}\(", handle.read(), re.M), prefix
    assert root.is_slow("tests/test_hostile.py::test_corpus_subprocess[rules/latin1.yaml]")
    assert not root.is_slow("tests/test_hostile.py::test_corpus_in_process[rules/latin1.yaml]")
    assert root.is_slow("README.md::line:37,column:1") and not root.is_slow("docs/rules.md::line:5,column:1")
