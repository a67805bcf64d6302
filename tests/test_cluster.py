"""The verdict's rounding ensemble over threads and a Dask cluster: the same members, the same report.

(``run`` plans over a Dask cluster, identical to the local run: ``tests/test_batch.py``.)
"""
import numpy as np
import pytest

from conftest import rule_path
from neurodeploy import cluster
from neurodeploy.emu import simulate, simulate_batch
from neurodeploy.verification import verify
from neurodeploy.compile.compilation import compile_plans
from neurodeploy.protocol import poisson
from neurodeploy.spec.loader import load_rule
from neurodeploy.verdict.quantization import ensemble_seeds


def _setup(steps=600):
    rule = load_rule(rule_path("stdp_pair"))
    trains = poisson(rule, 11, 7, steps, 40.0, 6)
    plan = compile_plans(rule, trains)["fixed"]
    return rule, trains, plan, plan.weights_to_lava(trains.w0)


def test_groups_cover_the_seeds_in_order():
    assert cluster.groups(7, 3) == [(0, 2), (2, 5), (5, 7)]
    assert cluster.groups(2, 8) == [(0, 1), (1, 2)]
    assert cluster.groups(5, 1) == [(0, 5)]


def test_threads_give_the_members_of_one_call():
    rule, trains, plan, w0 = _setup()
    seeds = ensemble_seeds(6, 5)
    rows = [0, 299, 599]
    here = simulate_batch(plan, w0, trains.pre, trains.post, seeds, record_rows=rows)
    spread = simulate_batch(plan, w0, trains.pre, trains.post, seeds, record_rows=rows, spread=3)
    assert np.array_equal(here[0], spread[0]) and np.array_equal(here[1], spread[1])
    single = simulate(plan, w0, trains.pre, trains.post, rng_seed=seeds[4][0], conn_seed=seeds[4][1])
    assert np.array_equal(spread[0][4].astype(float), single[rows])  # the last group's last member
    assert np.ptp(single) > 0


def _facts(report):
    """The report without its clocks."""
    data = report.to_dict()
    for c in data["comparisons"]:
        c.pop("verdict_seconds", None)
    return [(c["share"], c.get("outcome"), c.get("max_abs_error_normalized"), c.get("largest_z_mean"),
             c.get("ensemble_size")) for c in data["comparisons"]]


def test_dask_cluster_gives_the_local_verdict():
    """A LocalCluster of 2 in-process workers: the batched members, then a whole verify, equal to local."""
    distributed = pytest.importorskip("distributed")
    rule, trains, plan, w0 = _setup()
    seeds = ensemble_seeds(6, 4)
    local = simulate_batch(plan, w0, trains.pre, trains.post, seeds, record_rows=[599])
    small = poisson(rule, 6, 5, 400, 30.0, 2)
    expected = _facts(verify(rule, small, ["emu-fixed"], ensemble=6))
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as lc, distributed.Client(lc) as client:
        remote = simulate_batch(plan, w0, trains.pre, trains.post, seeds, record_rows=[599], spread=client)
        with cluster.use(client):
            got = _facts(verify(rule, small, ["emu-fixed"], ensemble=6))
    assert np.array_equal(local[0], remote[0]) and np.array_equal(local[1], remote[1])
    assert any(share == "rounding" and size == 6 for share, _, _, _, size in got)
    assert got == expected


def test_verify_refuses_a_scheduler_it_cannot_reach(tmp_path, capsys):
    """verify --scheduler: a bad address or a closed port is one line, exit 2, before anything is created."""
    import socket

    from neurodeploy.cli import main

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for address, text in (("no scheduler", "--scheduler: must be an address such as tcp://host:8786 (got no scheduler)"),
                          (f"tcp://127.0.0.1:{port}", "--scheduler: cannot reach the scheduler within 3 s: Connection "
                                                     f"refused (got tcp://127.0.0.1:{port})")):
        with pytest.raises(SystemExit) as exit_info:
            main(["verify", rule_path("stdp_pair"), "--out", str(tmp_path / "out"), "--scheduler", address, "--quiet"])
        assert exit_info.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err == [f"neurodeploy: error: {text}"]
        assert not (tmp_path / "out").exists()
