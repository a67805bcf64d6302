"""The progress bar: drawn on a terminal after a delay, per backend and step; silent with --quiet."""
import io

import pytest

from conftest import rule_path
from neurodeploy.cli import main
from neurodeploy.verification import verify
from neurodeploy.progress import Progress
from neurodeploy.protocol import poisson
from neurodeploy.spec.loader import load_rule


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_bar_reports_steps_of_every_backend():
    rule = load_rule(rule_path("stdp_pair"))
    trains = poisson(rule, 3, 3, 6000, 10.0, 1)
    stream = Terminal()
    verify(rule, trains, ("brian2-step", "lava-fixed"), progress=Progress(stream, delay=0.0), lava_steps=0)
    text = stream.getvalue()
    for name in ("brian2-step", "lava-fixed"):
        assert f"running {name}: 6000 steps, 3x3 synapses" in text
        assert f"{name:<12} [{'#' * 30}] 100.0% 6000/6000 steps" in text
    # intermediate steps came from the running Lava model, not only the end
    partial = [line for line in text.replace("\r", "\n").splitlines()
               if line.startswith("lava-fixed   [") and "6000/6000" not in line]
    assert partial


def test_no_bar_off_a_terminal_and_none_with_quiet(tmp_path, capsys):
    stream = io.StringIO()
    rule = load_rule(rule_path("stdp_pair"))
    verify(rule, poisson(rule, 2, 2, 300, 10.0, 1), ("brian2",), progress=Progress(stream, delay=0.0))
    assert stream.getvalue() == "running brian2: 300 steps, 2x2 synapses\n"
    with pytest.raises(SystemExit):
        main(["verify", rule_path("stdp_pair"), "--out", str(tmp_path / "o"), "--steps", "200",
              "--backends", "brian2", "--quiet"])
    assert capsys.readouterr().err == ""
