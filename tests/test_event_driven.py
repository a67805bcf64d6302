"""The event-driven compiled loops (int16 weights, row sweeps, per-neuron factor parts) against the
numpy implementation, which updates the touched synapses by whole-matrix numpy operations.

Both are the emulator of Lava's engine; the numpy path is the one ``tests/test_emulator.py`` proves
equal to Lava (and the kernel against Lava on a tile: ``tests/test_scale.py``-style Lava runs are slow,
one tile here). Every library rule the engine expresses, fixed (stochastic rounding of traces and
weights) and float, random initial weights, rates high enough that traces and weights saturate.
"""
import numpy as np
import pytest

from conftest import rule_path
from neurodeploy.emu import kernel, simulate
from neurodeploy.errors import UnsupportedError
from neurodeploy.compile.compilation import compile_plans
from neurodeploy.protocol import SpikeTrains, poisson
from neurodeploy.spec.loader import load_rule

#: The spike-driven library rules (the continuous ones, u products every step, are compared kernel
#: against numpy with raised learning rates in ``tests/test_emulator.py``).
RULES = ("stdp_pair", "ltp_ltd_soft", "stdp_multiplicative", "stdp_nearest", "stdp_triplet")


def _trains(rule, n_pre, n_post, steps, rate, seed):
    trains = poisson(rule, n_pre, n_post, steps, rate, seed)
    w0 = np.random.default_rng(seed).uniform(rule.weight.w_min, rule.weight.w_max, trains.w0.shape)
    return SpikeTrains(trains.pre, trains.post, w0, "poisson", seed, rate)


@pytest.mark.parametrize("mode", ["fixed", "float"])
@pytest.mark.parametrize("name", RULES)
def test_event_driven_kernel_equals_numpy_path(monkeypatch, name, mode):
    if kernel.numba is None:
        pytest.skip("numba is not installed")
    rule = load_rule(rule_path(name))
    trains = _trains(rule, 37, 23, 800, 40.0, 5)
    try:
        plan = compile_plans(rule, trains)[mode]
    except UnsupportedError as exc:
        pytest.skip(f"{name}: not on the engine ({exc})")
    w0 = plan.weights_to_lava(trains.w0)
    rows = np.arange(0, 800, 13)
    picked = np.arange(0, 37 * 23, 7)
    compiled = simulate(plan, w0, trains.pre, trains.post, record_rows=rows)
    compiled_sel = simulate(plan, w0, trains.pre, trains.post, record_rows=rows, record_synapses=picked)
    monkeypatch.setattr(kernel, "numba", None)
    plain = simulate(plan, w0, trains.pre, trains.post, record_rows=rows)
    assert np.ptp(plain[-1] - plain[0]) > 0, "the weights must move for the comparison to mean anything"
    assert np.array_equal(compiled, plain), \
        f"first difference at (row, post, pre) {np.argwhere(compiled != plain)[0].tolist()}"
    assert np.array_equal(compiled_sel, plain.reshape(rows.size, -1)[:, picked])


def test_event_driven_kernel_equals_numpy_path_at_limits(monkeypatch):
    """At 250 Hz traces saturate at 127 and weights sit at the 8-bit limits; sparse spiking (2 Hz)
    leaves most steps without a spike: both ends of the event-driven path."""
    if kernel.numba is None:
        pytest.skip("numba is not installed")
    rule = load_rule(rule_path("stdp_pair"))
    for rate in (250.0, 2.0):
        trains = _trains(rule, 31, 17, 1500, rate, 8)
        plan = compile_plans(rule, trains)["fixed"]
        w0 = plan.weights_to_lava(trains.w0)
        compiled = simulate(plan, w0, trains.pre, trains.post, record_every=10)
        monkeypatch.setattr(kernel, "numba", None)
        plain = simulate(plan, w0, trains.pre, trains.post, record_every=10)
        monkeypatch.undo()
        assert np.ptp(plain[-1] - plain[0]) > 0
        assert np.array_equal(compiled, plain)
        if rate > 100:
            assert np.any(plain == plan.w_lava_bounds[0]) or np.any(plain == plan.w_lava_bounds[1])


@pytest.mark.parametrize("name", ["stdp_pair", "stdp_multiplicative"])
def test_sparse_emulator_equals_dense_on_present_synapses(name):
    """The sparse emulator (present synapses only, CSR) follows the dense emulator's trajectory of
    every present synapse bit for bit; a 30 % mask, random order of the synapse list."""
    if kernel.numba is None:
        pytest.skip("numba is not installed")
    from neurodeploy.emu.sparse import SparseConnection, simulate_sparse

    rule = load_rule(rule_path(name))
    trains = _trains(rule, 41, 29, 700, 35.0, 11)
    plan = compile_plans(rule, trains)["fixed"]
    rng = np.random.default_rng(4)
    rows, cols = np.nonzero(rng.random((29, 41)) < 0.3)
    perm = rng.permutation(rows.size)
    rows, cols = rows[perm], cols[perm]
    w0 = plan.weights_to_lava(trains.w0)
    steps = np.arange(0, 700, 9)
    dense = simulate(plan, w0, trains.pre, trains.post, record_rows=steps)
    conn = SparseConnection(rows, cols, 29, 41)
    sparse = simulate_sparse(plan, conn, w0[rows, cols], trains.pre, trains.post, record_rows=steps)
    assert np.ptp(dense[-1] - dense[0]) > 0
    assert np.array_equal(sparse, dense[:, rows, cols])
    ordered = SparseConnection.from_mask(np.isin(np.arange(29 * 41), rows * 41 + cols).reshape(29, 41))
    i_sorted, j_sorted = np.divmod(np.sort(rows * 41 + cols), 41)  # the mask's synapses in CSR order
    assert np.array_equal(simulate_sparse(plan, ordered, w0[i_sorted, j_sorted], trains.pre, trains.post,
                                          record_rows=steps), dense[:, i_sorted, j_sorted])
    some = np.arange(0, rows.size, 5)
    assert np.array_equal(simulate_sparse(plan, conn, w0[rows, cols], trains.pre, trains.post, record_rows=steps,
                                          record_synapses=some), dense[:, rows[some], cols[some]])
