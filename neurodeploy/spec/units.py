"""Quantities with units, and dimension checking of expressions.

A quantity is written ``"20 ms"``, ``"10 Hz"`` or a bare number (dimensionless);
the unit must be one of Brian2's named units (``brian2.units``), with Brian2's
scale and dimension. The names come from ``unit_table.py``, generated from the
installed Brian2 and checked against it by the tests, so loading and checking a
rule does not import Brian2 (1-2 s of start-up). Backends turn a
:class:`Dimension` into Brian2's own with :func:`to_brian2`.

Expressions are checked with :func:`dimensions_of`, which walks the sympy tree:
terms of a sum share a dimension, products multiply dimensions,
``exp``/``log`` need a dimensionless argument.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

from neurodeploy.errors import NeurodeployError, did_you_mean
from neurodeploy.spec.unit_table import DISPLAY, UNITS

#: Brian2's names of the SI base units, in the order of a dimension's exponents.
BASE_UNITS = ("metre", "kilogram", "second", "amp", "kelvin", "mole", "candle")


class Dimension:
    """Exponents of the seven SI base units (Brian2's order); immutable and hashable."""

    __slots__ = ("_dims",)

    def __init__(self, dims):
        dims = tuple(float(d) for d in dims)
        if len(dims) != len(BASE_UNITS):
            raise ValueError(f"a dimension has {len(BASE_UNITS)} exponents (got {len(dims)})")
        object.__setattr__(self, "_dims", dims)

    def __setattr__(self, name, value):
        raise AttributeError("Dimension is immutable")

    @property
    def exponents(self) -> tuple:
        return self._dims

    def is_dimensionless(self) -> bool:
        return not any(self._dims)

    def __mul__(self, other: "Dimension") -> "Dimension":
        return Dimension(a + b for a, b in zip(self._dims, other._dims))

    def __truediv__(self, other: "Dimension") -> "Dimension":
        return Dimension(a - b for a, b in zip(self._dims, other._dims))

    def __pow__(self, power) -> "Dimension":
        return Dimension(a * float(power) for a in self._dims)

    def __eq__(self, other) -> bool:
        return isinstance(other, Dimension) and self._dims == other._dims

    def __hash__(self) -> int:
        return hash(self._dims)

    def __repr__(self) -> str:
        """In base units as Brian2 writes it: ``metre ** 2 * kilogram * second ** -3``."""
        parts = []
        for name, exponent in zip(BASE_UNITS, self._dims):
            if exponent:
                shown = int(exponent) if exponent.is_integer() else exponent
                parts.append(name if shown == 1 else f"{name} ** {shown}")
        return " * ".join(parts) or "Dimension()"


DIMENSIONLESS = Dimension((0,) * len(BASE_UNITS))
SECOND = Dimension((0, 0, 1, 0, 0, 0, 0))


def to_brian2(dim: Dimension):
    """Brian2's ``Dimension`` object for ``dim`` (imports Brian2)."""
    import neurodeploy.brian2_setup  # noqa: F401 - before any other Brian2 import
    from brian2.units.fundamentalunits import get_or_create_dimension
    return get_or_create_dimension([int(d) if d.is_integer() else d for d in dim.exponents])


def unit_name(dim: Dimension) -> str:
    """The name Brian2 gives the unscaled unit of ``dim`` (``get_unit``): ``siemens``, ``metre2`` ..."""
    return DISPLAY.get(dim.exponents) or repr(dim)

_UNIT_FACTOR = r"[A-Za-z][A-Za-z0-9]*(\s*(\*\*|\^)\s*-?\d)?"
_QUANTITY = re.compile(
    r"^\s*(?P<number>[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?)\s*"
    rf"(?P<unit>{_UNIT_FACTOR}(\s*[*/]\s*{_UNIT_FACTOR})*)?\s*$"
)
_FACTOR = re.compile(r"([*/]?)\s*([A-Za-z][A-Za-z0-9]*)(?:\s*(?:\*\*|\^)\s*(-?\d))?")


@dataclass(frozen=True)
class Quantity:
    """A value in SI base units with its Brian2 dimension and the text it came from."""

    value: float  # in SI base units (seconds, volts, ...)
    dim: Dimension  # its dimension; DIMENSIONLESS for bare numbers
    text: str  # as the user wrote it, for messages and reports


def dim_name(dim: Dimension) -> str:
    """``'dimensionless'``, ``'second'``, ``'volt'`` ... (Brian2's name of the SI unit)."""
    if dim == DIMENSIONLESS:
        return "dimensionless"
    return unit_name(dim)


#: Common spellings Brian2 does not define as units.
_ALIASES = {"s": "second"}


def lookup_unit(name: str) -> tuple | None:
    """(scale in SI, Dimension) of the Brian2 unit called ``name`` (``ms``, ``Hz``, ``mV`` ...), or None."""
    entry = UNITS.get(_ALIASES.get(name, name))
    return None if entry is None else (entry[0], Dimension(entry[1]))


def parse_quantity(raw, source: str, field: str) -> Quantity:
    """``20 ms`` -> Quantity(0.02, second, '20 ms'); ``0.5`` -> dimensionless."""
    if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
        raise NeurodeployError(source, field, f"must be a number with an optional unit (got {_short(raw)})")
    if isinstance(raw, (int, float)):
        try:
            value = float(raw)
        except OverflowError:  # an integer beyond any float
            raise NeurodeployError(source, field, f"magnitude must be between {MIN_MAGNITUDE:g} and "
                                                  f"{MAX_MAGNITUDE:g} (got {_short(raw)})") from None
        if not math.isfinite(value):
            raise NeurodeployError(source, field, f"must be finite (got {_short(raw)})")
        _check_range(value, source, field, _short(raw))
        return Quantity(value, DIMENSIONLESS, repr(raw) if len(repr(raw)) <= 60 else _short(raw))
    match = _QUANTITY.match(raw)
    if match is None:
        raise NeurodeployError(source, field, f"must be a number with an optional unit such as '20 ms' (got {_short(raw)})")
    number = float(match.group("number"))
    if not math.isfinite(number):
        raise NeurodeployError(source, field, f"must be finite (got {_short(raw)})")
    unit_text = match.group("unit")
    if unit_text is None:
        _check_range(number, source, field, _short(raw))
        return Quantity(number, DIMENSIONLESS, raw.strip())
    scale, dim = 1.0, DIMENSIONLESS
    for operator, name, power in _FACTOR.findall(unit_text):  # ms, mV, second**2, s**-1 * Hz**-1, 1/s
        factor = lookup_unit(name)
        if factor is None:
            raise NeurodeployError(source, field, f"unknown unit '{name}'{did_you_mean(name, UNITS, 0.7)} (got {_short(raw)})")
        exponent = int(power) if power else 1
        if exponent == 0:
            raise NeurodeployError(source, field, f"unit exponent must not be 0 (got {_short(raw)})")
        exponent = -exponent if operator == "/" else exponent
        scale, dim = scale * factor[0] ** exponent, dim * factor[1] ** exponent
    value = number * scale
    if not math.isfinite(value):
        raise NeurodeployError(source, field, f"must be finite (got {_short(raw)})")
    _check_range(value, source, field, _short(raw))
    return Quantity(value, dim, raw.strip())


#: Magnitudes a quantity may have (in SI): beyond them float arithmetic over- or underflows.
MAX_MAGNITUDE, MIN_MAGNITUDE = 1e300, 1e-300


def _check_range(value: float, source: str, field: str, shown: str) -> None:
    if value != 0 and not MIN_MAGNITUDE <= abs(value) <= MAX_MAGNITUDE:
        raise NeurodeployError(source, field, f"magnitude must be between {MIN_MAGNITUDE:g} and {MAX_MAGNITUDE:g} "
                                              f"(got {shown})")


def _short(raw) -> str:
    text = repr(raw) if not isinstance(raw, str) else repr(raw)
    return text if len(text) <= 60 else text[:57] + "..."


class DimensionMismatch(Exception):
    """Raised by :func:`dimensions_of`; the message says which terms disagree."""


def dimensions_of(expr, dims: dict) -> Dimension:
    """Dimension of ``expr`` given the dimension of each free symbol (by name)."""
    import sympy

    if expr.is_Symbol:
        return dims[expr.name]
    if expr.is_Number:
        return DIMENSIONLESS
    if expr.is_Add:
        terms = expr.args
        first = dimensions_of(terms[0], dims)
        for term in terms[1:]:
            other = dimensions_of(term, dims)
            if other != first:
                raise DimensionMismatch(
                    f"adds '{terms[0]}' ({dim_name(first)}) and '{term}' ({dim_name(other)})")
        return first
    if expr.is_Mul:
        result = DIMENSIONLESS
        for factor in expr.args:
            result = result * dimensions_of(factor, dims)
        return result
    if expr.is_Pow:
        base = dimensions_of(expr.base, dims)
        if not expr.exp.is_number:  # a parameter exponent (w ** mu): both sides dimensionless
            exponent = dimensions_of(expr.exp, dims)
            if exponent != DIMENSIONLESS:
                raise DimensionMismatch(f"the exponent '{expr.exp}' must be dimensionless, it is {dim_name(exponent)}")
            if base != DIMENSIONLESS:
                raise DimensionMismatch(f"a parameter exponent needs a dimensionless base, '{expr.base}' "
                                        f"is {dim_name(base)}")
            return DIMENSIONLESS
        if base == DIMENSIONLESS:
            return DIMENSIONLESS
        return base ** float(expr.exp)
    if isinstance(expr, sympy.Abs):
        return dimensions_of(expr.args[0], dims)
    if isinstance(expr, (sympy.exp, sympy.log, sympy.Heaviside)):
        inner = dimensions_of(expr.args[0], dims)
        if inner != DIMENSIONLESS:
            raise DimensionMismatch(
                f"{type(expr).__name__.lower()}() needs a dimensionless argument, '{expr.args[0]}' is {dim_name(inner)}")
        return DIMENSIONLESS
    raise DimensionMismatch(f"cannot determine the unit of '{expr}'")
