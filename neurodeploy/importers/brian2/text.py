"""The importer's shared vocabulary: Brian2's runtime names and constants, values with units and sympy
expressions as the rule file writes them, and the imported rule (a dict with notes)."""
from __future__ import annotations

import math

from neurodeploy.errors import NeurodeployError
from neurodeploy.spec.units import DIMENSIONLESS, Dimension, lookup_unit, parse_quantity, unit_name


#: Names Brian2 gives a meaning that a rule has no counterpart for.
_RUNTIME = {"t": "the time", "dt": "the time step", "i": "the presynaptic index", "j": "the postsynaptic index",
            "N": "the number of synapses", "N_incoming": "the number of synapses",
            "N_outgoing": "the number of synapses",
            "lastupdate": "the time of the last update", "lastspike": "the time of the last spike",
            "rand": "random numbers", "randn": "random numbers"}


#: Brian2's default constants (``brian2.core.namespace.DEFAULT_CONSTANTS``).
_CONSTANTS = {"pi": math.pi, "e": math.e}


def _brian2_builtin(name):
    """("constant" or "unit", value in SI, Dimension) when Brian2 reads ``name`` as one of its constants
    (``DEFAULT_CONSTANTS``: e, pi) or units (``DEFAULT_UNITS``, those the rule language has too), else None."""
    if name in _CONSTANTS:
        return "constant", _CONSTANTS[name], DIMENSIONLESS
    import neurodeploy.brian2_setup  # noqa: F401 - before any other Brian2 import
    from brian2.core.namespace import DEFAULT_UNITS

    if name in DEFAULT_UNITS and lookup_unit(name) is not None:
        return ("unit", *lookup_unit(name))
    return None


def _printer():
    import sympy
    from sympy.printing.str import StrPrinter

    class RulePrinter(StrPrinter):
        """sympy -> rule text: floats written exactly (``repr``), ``abs``, constants as numbers."""

        def _print_Float(self, expr):
            return repr(float(expr))

        def _print_Abs(self, expr):
            return f"abs({self._print(expr.args[0])})"

        def _print_Exp1(self, expr):
            return repr(math.e)

        def _print_Pi(self, expr):
            return repr(math.pi)

        def _print_Symbol(self, expr):
            return expr.name

        def _print_Heaviside(self, expr):
            return f"heaviside({self._print(expr.args[0])})"

    return RulePrinter({"order": "none"}), sympy


def rule_text(expr) -> str:
    printer, _ = _printer()
    return printer.doprint(expr)


def _value_of(raw, source, field):
    """(value in SI, Dimension) of a namespace value: a number, a Brian2 quantity, or (from a spec
    file) a number or quantity text such as ``'20 ms'``."""
    import numpy as np

    if isinstance(raw, bool) or raw is None:
        raise NeurodeployError(source, field, f"must be a number or a quantity (got {raw!r})")
    if isinstance(raw, str):
        q = parse_quantity(raw, source, field)
        return q.value, q.dim
    dim = DIMENSIONLESS
    if hasattr(raw, "dim") and hasattr(raw, "shape") and type(raw).__module__.startswith("brian2"):
        dim = Dimension(raw.dim._dims)
        raw = np.asarray(raw)
    if isinstance(raw, np.ndarray):
        if raw.shape != () or raw.dtype.kind not in "iuf":
            raise NeurodeployError(source, field, f"must be a single number or quantity (got an array of shape "
                                                  f"{raw.shape})")
        raw = raw.item()
    if isinstance(raw, np.generic):
        raw = raw.item()
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        raise NeurodeployError(source, field, f"must be a number or a quantity (got {type(raw).__name__})")
    return parse_quantity(raw, source, field).value, dim  # finite, within the loader's magnitudes


def quantity_text(value: float, dim: Dimension):
    """A number (dimensionless) or ``'<number> <unit>'`` that the rule loader reads back to exactly
    ``value``: Brian2's best unit (``20 ms``) when it is exact, else the SI unit (the shorter text)."""
    value = float(value)
    if dim == DIMENSIONLESS:
        return value
    import neurodeploy.brian2_setup  # noqa: F401 - before any other Brian2 import
    from brian2 import Quantity

    from neurodeploy.spec.units import to_brian2

    candidates = []
    try:
        best = Quantity(value, dim=to_brian2(dim)).get_best_unit()
        candidates.append((float(value / float(best)), str(best)))
    except Exception:  # noqa: BLE001 - any unit Brian2 cannot name: the SI one below
        pass
    candidates += [(value, unit_name(dim)), (value, repr(dim))]
    exact = []
    for number, unit in candidates:
        shown = repr(int(number)) if float(number).is_integer() and abs(number) < 1e15 else repr(number)
        text = f"{shown} {unit}"  # 20 ms, 0.5 ms
        try:
            q = parse_quantity(text, "", "")
        except NeurodeployError:
            continue
        if q.value == value and q.dim == dim:
            exact.append(text)
    return min(exact, key=len) if exact else f"{value!r} {repr(dim)}"


def _is_quantity(text) -> bool:
    try:
        parse_quantity(text, "", "")
    except NeurodeployError:
        return False
    return True


class ImportedRule(dict):
    """The rule as a dict (what :func:`neurodeploy.spec.loader.rule_from_dict` reads), with
    ``.notes``: what the import dropped (effect lines) or how it read a statement."""

    def __init__(self, data, notes=()):
        super().__init__(data)
        self.notes = list(notes)


#: run_regularly slots before the synapses' pathways and after them (Brian2's schedule:
#: start, groups, thresholds, synapses, resets, end).
_BEFORE_SYNAPSES = {"before_start", "start", "after_start", "before_groups", "groups", "after_groups",
                    "before_thresholds", "thresholds", "after_thresholds", "before_synapses"}


_AFTER_SYNAPSES = {"after_synapses", "before_resets", "resets", "after_resets", "before_end", "end", "after_end"}


def _first_line(exc) -> str:
    """The gist of a Brian2 or pyparsing error on one line (``Parsing failed:`` joined to its reason)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    if lines[0].endswith(":") and len(lines) > 1:
        return f"{lines[0]} {lines[1]}"
    return lines[0]
