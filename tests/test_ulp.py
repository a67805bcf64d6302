"""The ulp helper (tests/ulp.py) that compares two different code paths' floats against a stated bound."""
from __future__ import annotations

import numpy as np
import pytest

from ulp import assert_within_ulp, ulp_distance


def test_ulp_distance_counts_units_in_the_last_place():
    x = np.array([1.0, 0.001, 1e300, 0.0, -2.5])
    assert ulp_distance(x, x).tolist() == [0.0] * 5
    assert ulp_distance(np.nextafter(x, np.inf), x).tolist() == pytest.approx([1, 1, 1, 1, 1])
    three = np.nextafter(np.nextafter(np.nextafter(1.0, 2), 2), 2)
    assert ulp_distance(three, 1.0) == 3.0
    assert ulp_distance(1.0 + 2 ** -52, 1.0) == 1.0
    # at a power of two the spacing of the larger magnitude counts
    assert ulp_distance(np.nextafter(1.0, 0), 1.0) == 0.5


def test_ulp_distance_of_nan_and_inf():
    assert ulp_distance(np.nan, np.nan) == 0.0
    assert ulp_distance(np.nan, 1.0) == np.inf and ulp_distance(1.0, np.inf) == np.inf
    assert ulp_distance(np.inf, np.inf) == 0.0


def test_assert_within_ulp_states_the_first_element_beyond_its_bound():
    a = np.full((3, 2), 0.5)
    b = a.copy()
    b[2, 1] = np.nextafter(np.nextafter(0.5, 1), 1)  # 2 ulp of 0.5
    assert assert_within_ulp(a, b, 2) == 2.0
    with pytest.raises(AssertionError, match=r"^x: 1 of 6 elements beyond their ulp bound; first at \(2, 1\): "
                                             r"0\.5 vs 0\.5000000000000002, 2 ulp > 1$"):
        assert_within_ulp(a, b, 1, "x")
    rows = np.array([0, 0, 2])[:, None]  # one bound per row
    assert assert_within_ulp(a, b, rows) == 2.0
    with pytest.raises(AssertionError):
        assert_within_ulp(a, b, np.array([0, 0, 1])[:, None])
    with pytest.raises(AssertionError):
        assert_within_ulp(a, np.full((3, 2), np.nan), 1e300)
