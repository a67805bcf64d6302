"""The rule library's support matrix: the CLI, the JSON, and the documentation's copy (docs/rules.md)."""
import json
import os

import pytest

from conftest import ROOT
from neurodeploy.cli import main
from neurodeploy.library import MATRIX_BEGIN, MATRIX_END, matrix_markdown, rule_files, support_matrix


def test_docs_matrix_is_current():
    with open(os.path.join(ROOT, "docs", "rules.md")) as handle:
        text = handle.read()
    current = text.split(MATRIX_BEGIN, 1)[1].split(MATRIX_END, 1)[0].strip()
    assert current == matrix_markdown(support_matrix()), "regenerate with: neurodeploy rules --markdown"


def test_rules_json(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["rules", "--json"])
    assert exit_info.value.code == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == [os.path.basename(p)[:-5] for p in rule_files()]
    for row in rows:
        assert set(row) == {"name", "citation", "backends", "unsupported", "approximations", "measured"}
        assert row["citation"]
        assert {"brian2", "brian2-step"} <= set(row["backends"])
        assert not set(row["backends"]) & set(row["unsupported"])


def test_at_least_nine_rules_on_the_learning_engine():
    """Issue 13: at least 9 of the 12 library rules run on the learning engine (exactly or through a
    stated, measured approximation); each approximated rule has its measured share."""
    rows = support_matrix()
    engine = [r["name"] for r in rows if {"lava-fixed", "emu-fixed"} <= set(r["backends"])]
    assert len(rows) == 12 and len(engine) >= 9, engine
    approximated = {r["name"]: r for r in rows if r["approximations"]}
    assert set(approximated) == {"rstdp", "stdp_nearest"}
    for r in approximated.values():
        assert r["measured"]["max_abs_error_normalized"] is not None
