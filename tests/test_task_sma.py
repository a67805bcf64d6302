"""The Song-Miller-Abbott task (neurodeploy/tasks/song_miller_abbott.py): the literature network judged by the
task runner. Independent expectations: the metrics of hand-made weights and rasters computed by hand here; the
inputs' rate against the binomial law of a Poisson train; the rules against the library files."""
import os

import numpy as np
import pytest

from neurodeploy.errors import NeurodeployError
from neurodeploy.library import LIBRARY
from neurodeploy.spec.loader import load_rule
from neurodeploy.tasks import TASKS, runner
from neurodeploy.tasks import song_miller_abbott as task


def test_registered_with_the_literature_parameters():
    from neurodeploy.literature import SMA

    assert TASKS[task.NAME] == "neurodeploy.tasks.song_miller_abbott"
    for key, value in (("n_pre", "n_inputs"), ("rate", "rate"), ("threshold", "threshold"),
                       ("tau_u_ms", "tau_u_ms"), ("tau_v_ms", "tau_v_ms")):
        assert SMA[key] == task.DEFAULTS[value]
    assert task.SIZES["paper"]["steps"] == SMA["steps"]
    assert len(task.METRICS) >= 1 and runner.default_seeds(task) >= runner.min_seeds(len(task.METRICS))


def test_the_rules_are_the_library_files():
    additive = task.rule_for(task.DEFAULTS)
    library = load_rule(os.path.join(LIBRARY, "stdp_pair.yaml"))
    assert additive.parameters == library.parameters
    mult = task.rule_for(dict(task.DEFAULTS, multiplicative=1, alpha=3.0))
    values = {q.name: q.quantity.value for q in mult.parameters}
    assert mult.name == "stdp_multiplicative" and values["alpha"] == 3.0 and values["lambda_"] == 0.01


def test_evaluate_on_hand_made_weights_and_spikes():
    setup = runner.task_setup(task, steps=4000, n_inputs=10, every=1000)
    r = setup.rule.weight
    z = np.array([0.0, 0.05, 0.1, 0.3, 0.5, 0.5, 0.7, 0.9, 0.95, 1.0])  # fractions of the range
    trajectory = np.zeros((4, 1, 11))
    trajectory[-1, 0, :10] = r.w_min + z * r.range
    spikes = np.zeros((1, 4000), dtype=bool)
    spikes[0, :2000:100] = True  # 20 spikes in the first half: none in the last quarter
    spikes[0, 3000::50] = True  # 20 spikes in the last quarter (1 s): 20 Hz
    m, curve = task.evaluate(setup, task.member(setup, 1), trajectory, spikes)
    assert m["near_low"] == pytest.approx(3 / 10) and m["near_high"] == pytest.approx(3 / 10)
    assert m["w_mean"] == pytest.approx(z.mean()) and m["w_sd"] == pytest.approx(z.std())
    assert m["rate_hz"] == pytest.approx(20.0)
    assert np.allclose(curve[0, :10], z)
    assert np.allclose(curve[1, :4], [10.0, 10.0, 0.0, 20.0])  # 1 s bins


def test_the_inputs_are_poisson_at_the_rate_and_come_from_the_seed():
    setup = runner.task_setup(task, steps=20_000)
    a, b = task.member(setup, 3), task.member(setup, 4)
    n_in = setup.net.n_inputs
    count = a.pre[:n_in].sum()
    trials = n_in * setup.params["steps"]
    p = task.DEFAULTS["rate"] * setup.rule.dt
    assert abs(count - trials * p) < 5 * np.sqrt(trials * p * (1 - p))
    assert np.array_equal(a.pre, task.member(setup, 3).pre) and not np.array_equal(a.pre, b.pre)
    assert not a.pre[n_in:].any()  # the LIF row: each backend's neuron makes it


@pytest.mark.parametrize("override, message", [
    ({"steps": 0}, "song-miller-abbott: steps: must be > 0 (got 0)"),
    ({"multiplicative": 2}, "song-miller-abbott: multiplicative: must be 0 (additive) or 1 (got 2)"),
    ({"tail": 0}, "song-miller-abbott: tail: must be in (0, 1] (got 0)"),
    ({"rate": float("nan")}, "song-miller-abbott: rate: must be a finite number (got nan)"),
    ({"every": 10 ** 6}, "song-miller-abbott: every: must be <= steps 50000 (got 1000000)"),
    ({"nope": 1}, "song-miller-abbott: nope: unknown parameter (known: alpha, every, multiplicative, n_inputs, rate, "
                  "steps, tail, tau_u_ms, tau_v_ms, threshold)"),
])
def test_bad_parameters_refused_by_one_line(override, message):
    with pytest.raises(NeurodeployError) as info:
        task.setup(**override)
    assert str(info.value) == message
