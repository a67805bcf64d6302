"""The unsupervised-digits task (issue #21, Diehl & Cook 2015 reduced): the shipped data, the Poisson rates from
pixels, labelling and classification on hand-made responses, the Wilson interval against scipy, bad
parameters, and the reference (brian2) beating chance at a small size."""
import hashlib

import numpy as np
import pytest

from neurodeploy.errors import NeurodeployError
from neurodeploy.tasks import digits as D

SHA256 = "87ff0c9e40dc7e2c0e34e7257799c2e3f3aec1a016363bb11cad869ec428a826"


def test_shipped_data_is_sklearns_digits():
    images, labels = D.load_digits()
    assert images.shape == (1797, 8, 8) and images.dtype == np.uint8 and labels.shape == (1797,)
    assert images.min() == 0 and images.max() == 16
    # the class counts of the UCI test set as scikit-learn documents them
    assert np.bincount(labels).tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
    assert hashlib.sha256(images.tobytes() + labels.tobytes()).hexdigest() == SHA256
    datasets = pytest.importorskip("sklearn.datasets")
    ref = datasets.load_digits()
    assert np.array_equal(images.reshape(1797, 64), ref.data.astype(np.uint8))
    assert np.array_equal(ref.data, ref.data.astype(np.uint8))  # integers: nothing lost in uint8
    assert np.array_equal(labels, ref.target)


def test_pixel_rates_and_member_spikes():
    rates = D.pixel_rates(np.array([[[0, 4, 8, 16]]]), 64.0)
    assert rates.tolist() == [[0.0, 16.0, 32.0, 64.0]]
    s = D.setup(n_train=20, n_label=10, n_test=10, present_ms=100, rest_ms=50)
    m = D.member(s, 3)
    show = D.presentation(s, 3)
    images, _ = D.load_digits()
    expected = np.zeros((64, m.steps))
    for k, start in enumerate(show["starts"]):
        expected[:, start:start + 100] = images[show["order"][k]].reshape(64, 1) / 16 * 64.0 * s.rule.dt
    pre = m.pre[:64]
    assert not pre[expected == 0].any()  # dark pixels and the rests are silent
    n = expected.sum()  # Poisson: total count within 5 sigma of its mean
    assert abs(pre.sum() - n) < 5 * np.sqrt(n)
    bright = expected == 64.0 * s.rule.dt
    assert abs(pre[bright].mean() - 0.064) < 5 * np.sqrt(0.064 / bright.sum())
    assert not m.pre[64:].any()  # the LIF rows are made by the backends
    assert np.array_equal(D.member(s, 3).pre, m.pre)  # same seed, same spikes
    assert not np.array_equal(D.member(s, 4).pre, m.pre)
    # the blocks: training and labelling digits from the training split, the test digits held out, no repeat
    order = show["order"]
    assert len(set(order.tolist())) == order.size == 40
    assert (order[:30] < D.N_TRAIN_SPLIT).all() and (order[30:] >= D.N_TRAIN_SPLIT).all()


def test_labels_and_accuracy_on_hand_made_responses():
    # 4 neurons, 6 labelling presentations of classes 0, 0, 1, 1, 2, 2
    counts = np.array([[5, 0, 1, 0],
                       [3, 0, 0, 0],
                       [0, 4, 2, 0],
                       [1, 2, 2, 0],
                       [0, 0, 3, 0],
                       [0, 1, 3, 0]])
    classes = np.array([0, 0, 1, 1, 2, 2])
    # means per class: neuron 0: 4, 0.5, 0 -> 0; neuron 1: 0, 3, 0.5 -> 1; neuron 2: 0.5, 2, 3 -> 2; neuron 3: silent
    labels = D.assign_labels(counts, classes, n_classes=3)
    assert labels.tolist() == [0, 1, 2, -1]
    test = np.array([[2, 1, 0, 9],    # class 0 (neuron 3 unlabelled: ignored)
                     [0, 3, 4, 0],    # class 2
                     [1, 1, 0, 0],    # tie of 0 and 1: the lowest, 0
                     [0, 0, 0, 5]])   # only the unlabelled neuron: no answer
    guess = D.classify(test, labels, n_classes=3)
    assert guess.tolist() == [0, 2, 0, -1]
    # two neurons of one label: their mean, not their sum
    guess = D.classify(np.array([[4, 0, 3]]), np.array([0, 0, 1]), n_classes=2)
    assert guess.tolist() == [1]  # mean 2 < 3


def test_wilson_interval_equals_scipys():
    stats = pytest.importorskip("scipy.stats")
    for k, n in ((0, 10), (3, 10), (30, 60), (59, 60), (120, 360), (7, 7)):
        ci = stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
        lo, hi = D.wilson(k, n)
        assert lo == pytest.approx(ci.low, abs=1e-12) and hi == pytest.approx(ci.high, abs=1e-12)


@pytest.mark.parametrize("overrides, field", [
    ({"n_exc": 0}, "n_exc"), ({"n_train": 2.5}, "n_train"), ({"n_test": 598}, "n_test"),
    ({"n_train": 1000, "n_label": 300}, "n_label"), ({"rate_max": 2000.0}, "rate_max"),
    ({"eta": 0}, "eta"), ({"inhibition": -1.0}, "inhibition"), ({"w0_max": 1.5}, "w0_max"),
    ({"treshold": 3.0}, "treshold")])
def test_bad_parameters_are_refused_naming_the_field(overrides, field):
    with pytest.raises(NeurodeployError) as err:
        D.setup(**overrides)
    assert err.value.field == field and "\n" not in str(err.value)
    if field == "treshold":
        assert "did you mean 'threshold'" in str(err.value)


def test_steps_are_refused_with_what_sets_them():
    with pytest.raises(NeurodeployError) as err:
        D.setup(steps=500)
    assert err.value.source == "--steps" and "n_train + n_label + n_test" in str(err.value)
    assert D.setup(n_train=10, n_label=5, n_test=5, present_ms=20, rest_ms=5).trains.steps == 20 * 25


def test_reference_learns_digits_above_chance():
    """brian2 at a small size (80 training, 30 labelling, 30 held-out digits, 21,000 steps): the accuracy's
    Wilson 95% interval lies above chance (10%), and above what the same network gives without learning
    (the initial random weights kept: eta 1e-12; emu-float, equal to brian2 for this network)."""
    from neurodeploy.backend import Recording
    from neurodeploy.targets import load_all

    small = dict(n_train=80, n_label=30, n_test=30)
    s = D.setup(**small)
    registry = load_all()
    correct = {}
    for label, backend, setup in (("learned", "brian2", s), ("frozen", "emu-float", D.setup(eta=1e-12, **small))):
        k = 0
        for seed in (1, 2):
            m = D.member(setup, seed)
            plans = {} if backend == "brian2" else _float_plans(setup, m)
            r = registry.get(backend).run(setup.rule, m, plans, recording=Recording(every=m.steps))
            metrics, curve = D.evaluate(setup, m, r.trajectory, r.info["post_spikes"])
            assert curve.shape == (20 * 65,)
            k += round(metrics["accuracy"] * 30)
        correct[label] = k
    lo, hi = D.wilson(correct["learned"], 60)
    assert lo > 0.1, correct
    assert correct["learned"] > correct["frozen"], correct


def _float_plans(setup, member):
    from neurodeploy.compile.compilation import compile_plans

    rng = np.random.default_rng(0)
    import dataclasses

    return compile_plans(setup.rule, dataclasses.replace(member, post=rng.random(member.post.shape) < 0.01),
                         approximate=True)
