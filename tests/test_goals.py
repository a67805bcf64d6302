"""The chip-scale goals' own pieces (``neurodeploy.goals``): what they count and the Lava tile proof."""
import numpy as np

from neurodeploy import goals


def test_touched_updates_counts_the_synapses_the_kernel_updates():
    rng = np.random.default_rng(1)
    pre, post = rng.random((7, 50)) < 0.2, rng.random((5, 50)) < 0.2
    brute = 35  # step 0: every synapse
    for t in range(1, 50):
        brute += int(np.sum(post[:, t][:, None] | pre[:, t][None, :]))
    assert goals.touched_updates(pre, post) == brute


def test_tiles_lie_inside_and_reach_the_far_corner():
    tiles = goals.choose_tiles(1200, 1000, 48, 4)
    assert tiles[0] == (0, 0, 48) and tiles[-1] == (1152, 952, 48) and len(tiles) == 4
    assert goals.choose_tiles(10, 30, 48, 3) == [(0, 0, 10), (0, 10, 10), (0, 20, 10)]


def test_lava_on_tiles_equals_the_emulator_on_the_whole_connection():
    """Goal 2 at a small size: lava-fixed on two 6x6 tiles of a 30x25 connection with the whole
    connection's plan, 120 steps, equal bit for bit to the emulator run on the whole connection."""
    out = goals._work_tiles({"n_post": 30, "n_pre": 25, "steps": 400, "window": 120, "side": 6, "count": 2})
    assert out["random_streams_prefix"]
    assert [(t["posts"], t["pres"]) for t in out["tiles"]] == [([0, 5], [0, 5]), ([24, 29], [19, 24])]
    assert all(t["weights_moved"] > 0 for t in out["tiles"])
    assert out["all_bit_exact"], [t["first_difference"] for t in out["tiles"]]
