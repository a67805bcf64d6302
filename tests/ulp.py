"""Comparing floats computed by two different code paths: a bound in ulps, not bit for bit.

Two implementations of the same arithmetic that group or order it differently (Brian2's generated numpy
code, whose optimiser pulls loop-invariant constants out of a product, against neurodeploy's numpy
stepper; sympy's printing order; a compiler's contraction) round differently in the last bits, by an
amount that depends on the values, the installed code generators and the CPU's instructions (numpy's
AVX-512 ``exp``/``log`` differ from the C library's). Such paths are compared with
:func:`assert_within_ulp` and a stated bound; the same code run twice stays bit for bit
(``np.array_equal``), and so does integer (fixed-point) arithmetic.
"""
from __future__ import annotations

import numpy as np


def ulp_distance(actual, desired) -> np.ndarray:
    """Elementwise ``|actual - desired|`` in units in the last place (``np.spacing``) of the larger
    magnitude of the two: 0 where equal (NaN where both are NaN included), inf where only one is NaN
    or infinite."""
    a = np.asarray(actual, dtype=float)
    b = np.asarray(desired, dtype=float)
    a, b = np.broadcast_arrays(a, b)
    same = (a == b) | (np.isnan(a) & np.isnan(b))
    finite = np.isfinite(a) & np.isfinite(b)
    with np.errstate(invalid="ignore"):
        spacing = np.spacing(np.maximum(np.abs(a), np.abs(b)))
        out = np.where(finite, np.abs(a - b) / np.where(finite, spacing, 1.0), np.inf)
    return np.where(same, 0.0, out)


def assert_within_ulp(actual, desired, bound, what: str = "") -> float:
    """Assert that every element of ``actual`` is within ``bound`` ulps of ``desired`` (``bound``: a
    number, or an array broadcast against them, e.g. one bound per trajectory row). Returns the
    largest distance in ulps (for reporting)."""
    distance = ulp_distance(actual, desired)
    limit = np.broadcast_to(np.asarray(bound, dtype=float), distance.shape)
    over = distance > limit
    if over.any():
        k = tuple(int(v) for v in np.argwhere(over)[0])
        a, b = np.asarray(actual, dtype=float), np.asarray(desired, dtype=float)
        raise AssertionError(f"{what + ': ' if what else ''}{int(over.sum())} of {distance.size} elements beyond "
                             f"their ulp bound; first at {k}: {np.broadcast_to(a, distance.shape)[k]!r} vs "
                             f"{np.broadcast_to(b, distance.shape)[k]!r}, {distance[k]:g} ulp > {limit[k]:g}")
    return float(distance.max()) if distance.size else 0.0
