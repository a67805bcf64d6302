"""The public Python API fit for a notebook (issue 20): one namespace, paths or objects, Brian2 quantities,
progress as the CLI shows it, a report with summary(), _repr_html_, typed comparisons and figures, and
deployments with the same members where they mean the same thing."""
import os

import numpy as np
import pytest

import neurodeploy
from conftest import rule_path

BACKENDS = ["brian2-step", "emu-float", "emu-fixed"]


@pytest.fixture(scope="module")
def report():
    rule = neurodeploy.load_rule(rule_path("stdp_pair"))
    trains = neurodeploy.poisson(rule, n_pre=4, n_post=3, steps=600, rate=20.0, seed=2)
    return neurodeploy.verify(rule, trains, BACKENDS, ensemble=8)


def test_verify_takes_a_path_and_quantities():
    from brian2 import Hz

    trains = neurodeploy.poisson(rule_path("stdp_pair"), n_pre=2, n_post=2, steps=300, rate=20 * Hz, seed=1)
    assert trains.rate == pytest.approx(20.0)
    by_path = neurodeploy.verify(rule_path("stdp_pair"), trains, ["emu-float"])
    by_rule = neurodeploy.verify(neurodeploy.load_rule(rule_path("stdp_pair")), trains, ["emu-float"])
    assert np.array_equal(by_path.results["emu-float"].trajectory, by_rule.results["emu-float"].trajectory)


def test_the_report_reads_in_a_notebook(report):
    text = repr(report)
    assert text.startswith("<Report stdp_pair: poisson seed 2, 600 steps, 3x4 synapses: ")
    assert len(text) < 200 and "\n" not in text
    summary = report.summary()
    assert summary.splitlines()[0].startswith("rule stdp_pair: poisson seed=2 steps=600")
    assert "brian2-step" in summary and "emu-fixed" in summary
    html = report._repr_html_()
    assert html.startswith("<div>") and html.count("<tr>") == len(report.comparisons) + 1


def test_comparisons_are_typed_records(report):
    from neurodeploy.verdict import FAILED, NOT_CHECKED, PASSED, Comparison

    entries = report.entries
    assert len(entries) == len(report.comparisons) > 0
    for entry, raw in zip(entries, report.comparisons):
        assert isinstance(entry, Comparison)
        assert (entry.reference, entry.candidate, entry.share, entry.outcome) == \
            (raw["reference"], raw["candidate"], raw["share"], raw["outcome"])
        assert entry.outcome in (PASSED, FAILED, NOT_CHECKED) and entry.passed == (raw["outcome"] == PASSED)
        assert dict(entry.details) == raw
        with pytest.raises(TypeError):
            entry.details["outcome"] = "x"  # read only: the report's numbers are not edited through it


def test_figures_are_returned_and_are_what_write_saves(report, tmp_path):
    from matplotlib.figure import Figure

    figures = report.figures()
    assert "trajectories.png" in figures and all(isinstance(f, Figure) for f in figures.values())
    written = report.write(str(tmp_path))
    assert sorted(f for f in os.listdir(tmp_path) if f.endswith(".png")) == sorted(figures)
    assert any(p.endswith("report.json") for p in written)
    lines = figures["trajectories.png"].axes[0].get_lines()
    assert {line.get_label() for line in lines} == set(BACKENDS)


def test_progress_as_the_cli_shows_it(capsys):
    trains = neurodeploy.poisson(rule_path("stdp_pair"), n_pre=2, n_post=2, steps=200, rate=20.0, seed=1)
    neurodeploy.verify(rule_path("stdp_pair"), trains, ["emu-float"], progress=True)
    err = capsys.readouterr().err
    assert "running emu-float: 200 steps, 2x2 synapses" in err


def test_deploy_takes_the_compilation_a_verify_judged(report):
    """What users deploy is what was verified: deploy(report.plans) builds the very plan judged."""
    d = neurodeploy.deploy(report.plans, shape=(3, 4), mode="fixed")
    assert d.plan is report.plans["fixed"]
    with pytest.raises(neurodeploy.NeurodeployError) as info:
        neurodeploy.deploy(report.plans, shape=(3, 4), traffic=10.0)
    assert str(info.value) == ("stdp_pair.yaml: traffic: a compilation is already scaled on its traffic (poisson): "
                               "pass the rule to scale on other traffic (got 10.0)")


@pytest.mark.parametrize("member", ["run", "stop", "run_cfg", "weights", "neurons", "mode"])
def test_the_deployments_share_their_members(member):
    from neurodeploy import CpuDeployment, Deployment, NetworkDeployment

    for cls in (Deployment, CpuDeployment, NetworkDeployment):
        assert hasattr(cls, member), (cls.__name__, member)


def test_a_cpu_deployment_gives_its_lif_constants():
    """CpuDeployment.lif_params: a float LIF in rule units (what CPU_SCALE stood for, in the source only)."""
    from neurodeploy.compile.loihi import CPU_SCALE, lif_params

    d = neurodeploy.deploy(rule_path("synaptic_scaling"), shape=(2, 3), mode="cpu")
    assert d.lif_params(5.0, 10.0, 0.5) == lif_params("float", 5.0, 10.0, 0.5, CPU_SCALE) == \
        {"du": 0.2, "dv": 0.1, "vth": 0.5, "bias_mant": 0.0}


def test_import_brian2_takes_a_spec_file_a_mapping_or_synapses_and_verify_takes_the_result(tmp_path):
    """One door for Brian2 models; its result (the rule file's content) goes straight to verify, and the
    three ways in give one rule."""
    import yaml

    import neurodeploy.brian2_setup  # noqa: F401
    import brian2 as b2

    spec = {"name": "stdp_doc", "model": "w : 1\ndapre/dt = -apre/taupre : 1 (event-driven)\n"
                                         "dapost/dt = -apost/taupost : 1 (event-driven)",
            "on_pre": "apre += 0.01\nw = clip(w + apost, 0, 1)",
            "on_post": "apost += -0.0105\nw = clip(w + apre, 0, 1)",
            "namespace": {"taupre": "20 ms", "taupost": "20 ms"}}
    path = tmp_path / "stdp_doc.yaml"
    path.write_text(yaml.safe_dump(spec))
    from_file = neurodeploy.import_brian2(str(path))
    from_mapping = neurodeploy.import_brian2(spec)
    assert dict(from_mapping) == dict(from_file)
    group = b2.NeuronGroup(2, "v : 1", threshold="v > 1")
    syn = b2.Synapses(group, group, spec["model"], on_pre=spec["on_pre"], on_post=spec["on_post"],
                      namespace={"taupre": 20 * b2.ms, "taupost": 20 * b2.ms})
    from_live = neurodeploy.import_brian2(syn, name="stdp_doc")
    assert from_live["weight"] == from_file["weight"] and from_live["traces"] == from_file["traces"]
    trains = neurodeploy.poisson(from_file, n_pre=2, n_post=2, steps=200, rate=20.0, seed=1)
    report = neurodeploy.verify(from_file, trains, ["brian2-step", "emu-float"])
    assert report.rule.name == "stdp_doc" and "emu-float" in report.results
    with pytest.raises(neurodeploy.NeurodeployError) as info:
        neurodeploy.import_brian2(42)
    assert str(info.value) == ("import_brian2: source: must be an import spec file, a spec mapping or a "
                               "brian2.Synapses (got int)")


def test_brian2_quantities_where_the_yaml_takes_units():
    """Times and rates as Brian2 quantities give the numbers the plain arguments give."""
    from brian2 import Hz, ms

    from neurodeploy.compile.loihi import lif_params

    d = neurodeploy.deploy(rule_path("stdp_pair"), shape=(2, 2), mode="fixed", traffic=10 * Hz)
    plain = neurodeploy.deploy(rule_path("stdp_pair"), shape=(2, 2), mode="fixed", traffic=10.0)
    assert d.plan == plain.plan
    assert d.lif_params(5 * ms, 10 * ms, 0.5) == d.lif_params(5.0, 10.0, 0.5)  # dt: the rule's 1 ms step
    assert lif_params("float", 4 * ms, 8 * ms, 0.5, d.plan, dt=0.5 * ms) == lif_params("float", 8, 16, 0.5, d.plan)
    with pytest.raises(neurodeploy.NeurodeployError) as info:
        lif_params("fixed", 5 * ms, 10.0, 0.5, d.plan)
    assert str(info.value) == "deploy: tau_v: must be a time with its unit like the others (e.g. 1*ms) (got 10.0)"
