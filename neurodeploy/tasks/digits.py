"""Unsupervised digits (Diehl & Cook 2015, Front Comput Neurosci 9:99), reduced to Lava LIF neurons, lateral
inhibition and a competitive Hebbian rule from the library; scikit-learn's 8x8 digits (shipped in
``neurodeploy/tasks/data/digits.npz``).

Network (:func:`network_dict`): 64 Poisson inputs (``pixels``, one per pixel: rate = intensity / 16 x
``rate_max``) onto ``n_exc`` LIF neurons (``exc``) through plastic synapses (all to all), and a static
inhibitory ``exc -> exc`` projection (every other neuron, no autapses): the neuron that fires first silences
the others (winner take all). The rule is the library's ``oja`` (``dw/dt = eta y (x - beta y w)``, rates from
5 ms traces) with a larger learning rate: a neuron learns only while it fires (``y > 0``), and then its weights
move towards the pixels it sees and decay in proportion to themselves, so the inputs that are dark while it
fires lose weight (Diehl & Cook's ``x_tar`` does this in their rule). The initial weights are random
(uniform in ``[0, w0_max x w_max]``, one draw shared by every run): identical neurons would fire together
and learn the same thing. They start above what the rule learns (about ``x / (beta (nu + 1 / (2 tau)))``
for a pixel rate ``x`` and an output rate ``nu``), so a neuron that has not won yet responds more than one
that has, and every neuron gets its turn.

What the engine cannot express (so it is left out): Diehl & Cook's **adaptive threshold** (theta grows by
0.05 mV at each spike and decays over 10^7 ms), which makes a neuron that wins too often give way, and their
conductance synapses and refractory period. neurodeploy's networks are Lava's ``LIF`` on every backend
(Brian2, emulator, Lava: bit exact); Lava has an adaptive-threshold neuron (``lava.proc.atrlif.ATRLIF``:
a threshold that jumps at a spike and decays back, plus a refractory state), but it is not a neuron the
networks can build, and it would have to be realised bit for bit in the Brian2 reference and the
emulator too. Without it the competition is the inhibition and the over-large initial weights only.

One run (one member): ``n_train`` training digits, then ``n_label`` labelling digits, then ``n_test`` held-out
digits, each shown for ``present_ms`` and followed by ``rest_ms`` of silence; training and labelling digits are
drawn from the first :data:`N_TRAIN_SPLIT` images, the test digits from the rest (never shown before in that
run). Labelling and testing happen at the end of the same run with plasticity still on: the runner runs one
spike train per member through each backend, and the learning engine has no switch that stops learning
part way (a second run from the learned weights would be a second deployment). Each neuron's label is the
class of its highest mean spike count over the labelling block (no spike: no label); a test digit's class
is the label whose neurons have the highest mean count on it (no spike, or no labelled neuron: wrong).
"""
from __future__ import annotations

import dataclasses
import math
import os
from statistics import NormalDist

import numpy as np

from neurodeploy.errors import did_you_mean, NeurodeployError
from neurodeploy.library import LIBRARY
from neurodeploy.network import network_from_dict
from neurodeploy.spec.loader import read_yaml, rule_from_dict
from neurodeploy.tasks.runner import Setup, template_trains

NAME = "digits"
TITLE = "Unsupervised digits (Diehl & Cook 2015, reduced: lateral inhibition, no adaptive threshold), oja"
#: Four metrics: with five, the family-wise test would need 7 runs a side (the runner's ``min_seeds``).
METRICS = ("accuracy", "labels_used", "rate_hz", "w_contrast")
DEFAULTS = {"n_exc": 20, "n_train": 150, "n_label": 50, "n_test": 60, "present_ms": 100, "rest_ms": 50,
            "rate_max": 64.0, "threshold": 5.0, "inhibition": 0.5, "w0_max": 1.0, "w0_seed": 7,
            "eta": 1.2e-4, "beta": 4.0, "t_epoch": 1, "every": 1000}
SIZES = {"paper": {"n_exc": 100, "n_train": 1000, "n_label": 200, "n_test": 300}}
#: Absolute margin floors: one test digit of accuracy at the defaults' 60, one label, one spike per neuron
#: over a default run (0.026 Hz, rounded up to 0.05 Hz), one 8-bit weight step (1/255 of the range).
MARGIN_FLOORS = {"accuracy": 1 / 60, "labels_used": 1.0, "rate_hz": 0.05, "w_contrast": 1 / 255}

#: The images 0..N_TRAIN_SPLIT-1 are the training (and labelling) split, the rest (597) held out.
N_TRAIN_SPLIT = 1200
N_CLASSES = 10
_DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "digits.npz")


def load_digits() -> tuple:
    """(images uint8 (1797, 8, 8) in 0..16, labels uint8 (1797,)): scikit-learn's ``load_digits``, shipped."""
    with np.load(_DATA) as data:
        return data["images"], data["labels"]


def pixel_rates(images: np.ndarray, rate_max: float) -> np.ndarray:
    """Poisson rates (Hz) of pixel intensities 0..16: ``intensity / 16 * rate_max``, flattened (..., 64)."""
    images = np.asarray(images, dtype=float)
    return images.reshape(images.shape[:-2] + (-1,)) / 16.0 * float(rate_max)


def network_dict(p: dict) -> dict:
    steps = schedule_steps(p)
    return {"network": "digits", "steps": steps, "seed": 1,
            "populations": {"pixels": {"poisson": 64, "rate": f"{p['rate_max']} Hz"},
                            "exc": {"lif": int(p["n_exc"]), "tau_u": "5 ms", "tau_v": "20 ms",
                                    "threshold": float(p["threshold"])}},
            "projections": [{"from": "pixels", "to": "exc", "plastic": True},
                            {"from": "exc", "to": "exc", "weight": -float(p["inhibition"])}]}


def schedule_steps(p: dict) -> int:
    return int((p["n_train"] + p["n_label"] + p["n_test"]) * (p["present_ms"] + p["rest_ms"]))


def task_rule(p: dict):
    """The library's ``oja`` with the task's ``eta`` and ``beta`` and its learning epoch ``t_epoch``."""
    source = "oja.yaml"
    data, text = read_yaml(os.path.join(LIBRARY, source), source)
    data = dict(data, parameters=dict(data["parameters"], eta=f"{p['eta']!r} second", beta=float(p["beta"])),
                simulation=dict(data.get("simulation") or {}, t_epoch=int(p["t_epoch"])))
    return rule_from_dict(data, source, text)


def initial_weights(p: dict, rule, net) -> np.ndarray:
    """(n_lif, n_src) rule units: uniform in [0, w0_max x w_max] on the plastic block (oja's bounds are
    [-1, 1]: the weights start excitatory)."""
    rng = np.random.default_rng(int(p["w0_seed"]))
    mask = net.plastic_mask()
    z = rng.uniform(0.0, float(p["w0_max"]), size=mask.shape)
    return np.where(mask, z * rule.weight.w_max, 0.0)


_INTS = {"n_exc": (1, 1000), "n_train": (1, N_TRAIN_SPLIT), "n_label": (1, N_TRAIN_SPLIT),
         "n_test": (1, 1797 - N_TRAIN_SPLIT), "present_ms": (1, 10_000), "rest_ms": (0, 10_000),
         "w0_seed": (0, 2 ** 32 - 1), "every": (1, 10_000_000), "t_epoch": (1, 63)}
_POSITIVE = ("rate_max", "threshold", "eta", "beta")


def check_params(p: dict) -> dict:
    """The task's parameters validated (one-line errors naming the parameter), before any simulation."""
    if "steps" in p:
        raise NeurodeployError("--steps", "", f"not for digits: a run lasts (n_train + n_label + n_test) x "
                                              f"(present_ms + rest_ms) steps ({schedule_steps(dict(DEFAULTS))} at "
                                              "the defaults); change those instead")
    for key in p:
        if key not in DEFAULTS:
            raise NeurodeployError("digits", key, f"unknown parameter{did_you_mean(key, list(DEFAULTS))} "
                                                  f"(parameters: {', '.join(DEFAULTS)})")
    for key, (lo, hi) in _INTS.items():
        v = p[key]
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not lo <= v <= hi:
            raise NeurodeployError("digits", key, f"must be a whole number between {lo} and {hi} (got {v!r})")
    for key in _POSITIVE + ("inhibition", "w0_max"):
        v = p[key]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise NeurodeployError("digits", key, f"must be a finite number (got {v!r})")
        if key in _POSITIVE and not v > 0:
            raise NeurodeployError("digits", key, f"must be > 0 (got {v!r})")
    if p["inhibition"] < 0:
        raise NeurodeployError("digits", "inhibition", f"must be >= 0, the inhibitory weight's magnitude in "
                                                       f"units of the weight range (got {p['inhibition']!r})")
    if not 0 <= p["w0_max"] <= 1:
        raise NeurodeployError("digits", "w0_max", f"must be between 0 and 1, a fraction of w_max (got {p['w0_max']!r})")
    if p["n_train"] + p["n_label"] > N_TRAIN_SPLIT:
        raise NeurodeployError("digits", "n_label", f"n_train + n_label must be at most the {N_TRAIN_SPLIT} "
                                                    f"training images (got {p['n_train']} + {p['n_label']})")
    return p


def setup(rule=None, **overrides):
    p = check_params(dict(DEFAULTS, **overrides))
    rule = rule or task_rule(p)
    if p["rate_max"] * rule.dt > 1:
        raise NeurodeployError("digits", "rate_max", f"must be at most one spike per step, {1 / rule.dt:g} Hz at "
                                                     f"the rule's dt (got {p['rate_max']!r})")
    net = network_from_dict(network_dict(p), "digits", rule)
    trains = template_trains(rule, net)
    trains = dataclasses.replace(trains, w0=initial_weights(p, rule, net))
    return Setup(rule, net, trains, p)


def presentation(setup, seed: int) -> dict:
    """The run's digits: indices into the data set per block, and each presentation's first step."""
    p = setup.params
    rng = np.random.default_rng(seed)
    train_pool = rng.permutation(N_TRAIN_SPLIT)
    n_train, n_label, n_test = int(p["n_train"]), int(p["n_label"]), int(p["n_test"])
    images, _ = load_digits()
    test_pool = N_TRAIN_SPLIT + rng.permutation(len(images) - N_TRAIN_SPLIT)
    order = np.concatenate([train_pool[:n_train], train_pool[n_train:n_train + n_label], test_pool[:n_test]])
    period = int(p["present_ms"] + p["rest_ms"])
    return {"order": order, "starts": np.arange(order.size) * period, "length": int(p["present_ms"]),
            "blocks": (n_train, n_label, n_test)}


def member(setup, seed: int):
    """The template with its pixel rows drawn from ``seed``: the digits of :func:`presentation` as Poisson
    spikes (rate per pixel :func:`pixel_rates`), silence in the rests."""
    rule, net, trains, p = setup.rule, setup.net, setup.trains, setup.params
    show = presentation(setup, seed)
    images, _ = load_digits()
    rates = pixel_rates(images[show["order"]], p["rate_max"])  # (presentations, 64)
    steps = trains.steps
    rate = np.zeros((64, steps))
    for k, start in enumerate(show["starts"]):
        rate[:, start:start + show["length"]] = rates[k][:, None]
    rng = np.random.default_rng([seed, 64])
    pre = np.zeros_like(trains.pre)
    pre[:64] = rng.random((64, steps)) < rate * rule.dt
    return dataclasses.replace(trains, pre=pre, seed=seed)


def responses(spikes: np.ndarray, starts: np.ndarray, length: int) -> np.ndarray:
    """(presentations, n_lif) spike counts in each presentation window ``[start, start + length)``."""
    spikes = np.asarray(spikes, dtype=bool)
    return np.stack([spikes[:, s:s + length].sum(axis=1) for s in starts]) if len(starts) else \
        np.zeros((0, spikes.shape[0]), dtype=int)


def assign_labels(counts: np.ndarray, labels: np.ndarray, n_classes: int = N_CLASSES) -> np.ndarray:
    """Each neuron's class: the highest mean count over the presentations of each class (ties: the lowest
    class; a neuron with no spike: -1). ``counts`` (presentations, neurons)."""
    counts = np.asarray(counts, dtype=float)
    labels = np.asarray(labels)
    means = np.zeros((n_classes, counts.shape[1]))
    for c in range(n_classes):
        rows = labels == c
        if rows.any():
            means[c] = counts[rows].mean(axis=0)
    out = np.argmax(means, axis=0)
    return np.where(counts.sum(axis=0) > 0, out, -1)


def classify(counts: np.ndarray, neuron_labels: np.ndarray, n_classes: int = N_CLASSES) -> np.ndarray:
    """Each presentation's class: the label whose neurons have the highest mean count (ties: the lowest
    class); -1 where no labelled neuron fired."""
    counts = np.asarray(counts, dtype=float)
    neuron_labels = np.asarray(neuron_labels)
    score = np.full((counts.shape[0], n_classes), -np.inf)
    for c in range(n_classes):
        cols = neuron_labels == c
        if cols.any():
            score[:, c] = counts[:, cols].mean(axis=1)
    fired = (counts[:, neuron_labels >= 0].sum(axis=1) > 0) if (neuron_labels >= 0).any() else \
        np.zeros(counts.shape[0], dtype=bool)
    return np.where(fired, np.argmax(score, axis=1), -1)


def wilson(k: int, n: int, confidence: float = 0.95) -> tuple:
    """Wilson's score interval of a proportion k/n."""
    if n <= 0:
        return (0.0, 1.0)
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    phat = k / n
    centre = (phat + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(phat * (1 - phat) / n + z * z / (4 * n * n))
    return (max(0.0, centre - half), min(1.0, centre + half))


def receptive_fields(setup, w) -> np.ndarray:
    """(n_exc, 8, 8): the pixel weights of each neuron, fraction of the rule's w_max."""
    z = np.asarray(w)[:, :64] / setup.rule.weight.w_max
    return z.reshape(-1, 8, 8)


def evaluate(setup, member, trajectory, spikes) -> tuple:
    """The run's :data:`METRICS` (and ``answered``: the fraction of test digits that got a class, reported
    only) and its curve: the final receptive fields (n_exc x 64, fraction of w_max) then the n_exc labels."""
    p = setup.params
    show = presentation(setup, member.seed)
    _, labels = load_digits()
    n_train, n_label, n_test = show["blocks"]
    counts = responses(spikes, show["starts"], show["length"])
    y = labels[show["order"]]
    lab = slice(n_train, n_train + n_label)
    test = slice(n_train + n_label, n_train + n_label + n_test)
    neuron_labels = assign_labels(counts[lab], y[lab])
    guess = classify(counts[test], neuron_labels)
    rf = receptive_fields(setup, np.asarray(trajectory)[-1])
    flat = rf.reshape(rf.shape[0], -1)
    steps = np.asarray(spikes).shape[1]
    m = {"accuracy": float(np.mean(guess == y[test])),
         "answered": float(np.mean(guess >= 0)),  # reported, not judged
         "labels_used": float(len(set(neuron_labels[neuron_labels >= 0].tolist()))),
         "rate_hz": float(np.asarray(spikes).sum() / np.asarray(spikes).shape[0] / (steps * setup.rule.dt)),
         "w_contrast": float(np.mean(flat.max(axis=1) - flat.min(axis=1)))}
    return m, np.concatenate([flat.reshape(-1), neuron_labels.astype(float)])


def mosaic(rf: np.ndarray, cols: int = 10) -> np.ndarray:
    """(n, 8, 8) receptive fields tiled ``cols`` to a row: one NaN pixel between them, two between rows."""
    n = rf.shape[0]
    rows = math.ceil(n / cols)
    out = np.full((rows * 10 - 2, cols * 9 - 1), np.nan)
    for k in range(n):
        r, c = divmod(k, cols)
        out[r * 10:r * 10 + 8, c * 9:c * 9 + 8] = rf[k]
    return out


def figure(fig, setup, runs: dict) -> None:
    """Left: the learned receptive fields of each backend's first run (8x8 pixel weights, fraction of
    w_max; each neuron's label above it). Right: the held-out accuracy of every run and, per backend, the
    pooled accuracy with its Wilson 95% interval."""
    n_exc, n_test = int(setup.params["n_exc"]), int(setup.params["n_test"])
    labels = [b for b in runs if runs[b]]
    grid = fig.add_gridspec(max(1, len(labels)), 2, width_ratios=(3, 1))
    cols = min(n_exc, 10)
    for b, label in enumerate(labels):
        curve = np.asarray(runs[label][0][1])
        rf = curve[:n_exc * 64].reshape(n_exc, 8, 8)
        neuron_labels = curve[n_exc * 64:].astype(int)
        ax = fig.add_subplot(grid[b, 0])
        ax.imshow(mosaic(rf, cols), cmap="gray_r", vmin=0, vmax=max(1e-9, float(np.nanmax(rf))))
        for k, c in enumerate(neuron_labels):
            r, q = divmod(k, cols)
            ax.text(q * 9 + 3.5, r * 10 - 0.6, "-" if c < 0 else str(c), ha="center", va="bottom", fontsize=6,
                    color="tab:red")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_ylabel(f"{label}: first run", fontsize=8)
    ax = fig.add_subplot(grid[:, 1])
    for b, label in enumerate(labels):
        acc = np.array([m["accuracy"] for m, _ in runs[label]])
        ax.scatter(np.full(acc.size, b), acc, s=12, color="k", label="runs" if b == 0 else None)
        k, n = int(round(acc.sum() * n_test)), acc.size * n_test
        lo, hi = wilson(k, n)
        ax.errorbar(b + 0.25, k / n, yerr=[[k / n - lo], [hi - k / n]], fmt="o", color="tab:red", capsize=3,
                    label="pooled, Wilson 95%" if b == 0 else None)
    ax.axhline(0.1, color="0.6", ls=":", label="chance")
    ax.set_xticks(range(len(labels)), labels, fontsize=7)
    ax.set_xlim(-0.5, len(labels) - 0.25)
    ax.set_ylim(0, 1)
    ax.set_ylabel("held-out accuracy")
    ax.legend(fontsize=6, loc="upper right")
