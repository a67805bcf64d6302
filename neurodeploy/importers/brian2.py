"""Brian2 in: a Brian2 ``Synapses`` definition becomes a rule file.

::

    from neurodeploy.importers.brian2 import from_strings, from_synapses, to_yaml
    rule = from_strings(model, on_pre, on_post, namespace, name="stdp")   # a dict
    rule.notes                                   # what was dropped or changed, and why
    open("stdp.yaml", "w").write(to_yaml(rule))  # units kept as text: '20 ms'

The model equations are parsed by Brian2 (:class:`brian2.Equations`), each
pathway statement by :func:`brian2.parsing.statements.parse_statement`, each
expression by :func:`brian2.parsing.sympytools.str_to_sympy`; the rule's
expressions are printed back from sympy as text the rule loader's ``ast``
whitelist parses again. Nothing is evaluated.

What a definition may contain (anything else is refused, naming the statement
and why):

* the weight: one variable changed by the pathways, ``w : 1`` (any name, any
  unit), ``w = clip(w + expr, lo, hi)`` (the bounds), ``w += expr``/``w -= expr``
  (with ``bounds=`` given), or a continuous change, ``dw/dt = expr : 1 (clock-driven)`` or
  run_regularly ``w = clip(w + dt*(expr), lo, hi)`` after the synapses (the rule's
  ``continuous`` term: forward Euler, clipped every step);
* traces: ``dX/dt = -X/tau`` or ``(rest - X)/tau`` (``event-driven`` or
  ``clock-driven``: the rule decays them exactly either way), and variables
  ``X : unit`` decayed by hand at the start of every pathway,
  ``X = X * exp(-(t - L)/tau)`` (or ``rest + (X - rest) * exp(...)``) with
  ``L = t`` at the end (what :func:`neurodeploy.brian2.model.reference_model`
  writes), or by run_regularly code before the synapses, ``X = X * exp(-dt/tau)``.
  A trace belongs to the side whose pathway changes it
  (``X += c``, ``X -= c``, ``X = expr``: a jump, which may read that side's
  traces); one changed by both pathways is refused. Extra pathways
  (``on_pre={"pre": ..., "pre_d": ...}``) with one delay each may only jump
  traces: delayed jumps;
* temporaries: a ``x : unit`` variable set before it is read in a pathway
  (``post2bef = post2``), substituted;
* subexpressions (``G = H - gamma : Hz``), inlined (refused where Brian2 2.9
  evaluates them at the pathway's start: after a variable they read changed, or
  of an event-driven variable); ``int(a > b)`` is ``heaviside(a - b)``;
* effect lines on the target or source group (``ge += w``, ``v_post += w``):
  dropped, each with a note in ``.notes``.

The pathway's statements run in order as Brian2 runs them: a weight update
that reads a trace its own pathway already changed reads ``x + jump`` in the
rule (whose updates read the traces before the spike's jumps), so the rule is
the same map of the state.

Names are resolved as Brian2 resolves them (``Group._resolve``): the synapses'
own variables (the model's; Brian2's ``t``, ``dt``, ``i``, ``N`` ..., refused),
then the postsynaptic group's variables, which a ``Synapses`` reads without a
suffix (refused: per neuron; from a live object, or ``target_variables=``),
then Brian2's constants (``e``, ``pi``, written as their values) and units
(``mV``), then the namespace (the ``Synapses``' own ``namespace`` if it has one,
else the one given, else the caller's frame at ``level``); a namespace value
Brian2 does not read for that reason is noted. The presynaptic group's
variables are read only as ``x_pre`` (refused), never by a bare name. Namespace
values must be numbers or Brian2 quantities; each becomes a parameter with its
value (a unit name such as ``nS`` used in a kept expression becomes the
parameter ``nS: 1 nS``).

Nothing is evaluated before it is bounded: every expression and every unit of
the equations (Brian2 evaluates units with ``eval``) is read as an ``ast`` first
and refused when a literal exponent exceeds 16, a number 1e300 or the degree
32, the rule loader's limits.
"""
from __future__ import annotations

import ast
import math
import re

import yaml

from neurodeploy.errors import NeurodeployError
from neurodeploy.spec.units import (DIMENSIONLESS, Dimension, dim_name, lookup_unit, parse_quantity,
                                    unit_name)

#: Names Brian2 gives a meaning that a rule has no counterpart for.
_RUNTIME = {"t": "the time", "dt": "the time step", "i": "the presynaptic index", "j": "the postsynaptic index",
            "N": "the number of synapses", "N_incoming": "the number of synapses",
            "N_outgoing": "the number of synapses",
            "lastupdate": "the time of the last update", "lastspike": "the time of the last spike",
            "rand": "random numbers", "randn": "random numbers"}
#: Brian2's default constants (``brian2.core.namespace.DEFAULT_CONSTANTS``).
_CONSTANTS = {"pi": math.pi, "e": math.e}
_STATEMENT_OPS = ("=", "+=", "-=", "*=", "/=")


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


class ImportedRule(dict):
    """The rule as a dict (what :func:`neurodeploy.spec.loader.rule_from_dict` reads), with
    ``.notes``: what the import dropped (effect lines) or how it read a statement."""

    def __init__(self, data, notes=()):
        super().__init__(data)
        self.notes = list(notes)


# --- values and their text -------------------------------------------------------------------------

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


# --- expressions --------------------------------------------------------------------------------------

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


class _TooLarge(Exception):
    """What :class:`_Sizes` refuses, as the message's reason."""


class _Sizes:
    """Bounds of a Brian2 expression (or unit) read from its ``ast`` alone, before sympy or Brian2
    evaluates it: literal exponents of magnitude at most ``MAX_EXPONENT``, a polynomial degree of at most
    ``MAX_DEGREE`` and numbers (what sympy folds to one) of magnitude at most ``MAX_MAGNITUDE``, the rule
    loader's limits (:mod:`neurodeploy.spec.expr`). :meth:`of` returns (degree, log10 of a bound of the
    magnitude, or None when the node is not a number sympy folds); it raises :class:`_TooLarge`. Text,
    truth values and comparisons outside ``int(a > b)`` are refused too: they are no number."""

    def __init__(self, text):
        from neurodeploy.spec.expr import MAX_DEGREE, MAX_EXPONENT, MAX_MAGNITUDE

        self.text = text

        self.max_degree, self.max_exponent = MAX_DEGREE, MAX_EXPONENT
        self.max_magnitude = MAX_MAGNITUDE
        self.max_log = math.log10(MAX_MAGNITUDE)

    def shown(self, node) -> str:
        """``node`` as written (``1e400``, not ``1e309``)."""
        return ast.get_source_segment(self.text, node) or ast.unparse(node)

    def number(self, log, node):
        if log is not None and log > self.max_log:
            raise _TooLarge(f"a constant larger than {self.max_magnitude:g} (got {self.shown(node)})")
        return log

    def degree(self, degree, node):
        if degree > self.max_degree:
            raise _TooLarge(f"degree higher than {self.max_degree} (got {self.shown(node)})")
        return degree

    def of(self, node, in_int=False):
        if isinstance(node, ast.Constant):
            value = node.value
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise _TooLarge(f"the constant {value!r} is not a number (got {self.shown(node)})")
            if isinstance(value, int):
                log = value.bit_length() * math.log10(2) if value else -math.inf
            else:
                log = math.log10(abs(value)) if value else -math.inf
            return 0, self.number(log, node)
        if isinstance(node, ast.Name):
            if node.id in _CONSTANTS:  # e, pi: numbers
                return 0, math.log10(_CONSTANTS[node.id])
            return 1, None
        if isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.Not) and not in_int:
                raise _TooLarge(f"a logical operator (not) has no counterpart in a rule outside int(a > b) "
                                f"(got {self.shown(node)})")
            return self.of(node.operand, in_int)
        if isinstance(node, (ast.Compare, ast.BoolOp)):
            if not in_int:
                what = "a comparison" if isinstance(node, ast.Compare) else \
                    f"a logical operator ({'and' if isinstance(node.op, ast.And) else 'or'})"
                raise _TooLarge(f"{what} has no counterpart in a rule outside int(a > b) (got {self.shown(node)})")
            parts = [self.of(n, in_int) for n in ([node.left] + node.comparators if isinstance(node, ast.Compare)
                                                  else node.values)]
            return self.degree(max(d for d, _ in parts), node), None
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
            return self.power(node, in_int)
        if isinstance(node, ast.BinOp):
            (dl, ml), (dr, mr) = self.of(node.left, in_int), self.of(node.right, in_int)
            numbers = ml is not None and mr is not None
            op = node.op
            if isinstance(op, (ast.Add, ast.Sub)):
                return self.degree(max(dl, dr), node), self.number(max(ml, mr) + math.log10(2) if numbers else None,
                                                                    node)
            if isinstance(op, ast.Mult):
                return self.degree(dl + dr, node), self.number(ml + mr if numbers else None, node)
            if isinstance(op, (ast.Div, ast.FloorDiv)):
                log = None if not numbers or mr == -math.inf else (-math.inf if ml == -math.inf else ml - mr)
                return self.degree(dl + dr, node), self.number(log, node)
            if isinstance(op, ast.Mod):
                return self.degree(dl + dr, node), self.number(mr if numbers else None, node)
            return self.degree(dl + dr, node), None  # Brian2 refuses the others
        if isinstance(node, ast.Call):
            name = node.func.id if isinstance(node.func, ast.Name) else None
            parts = [self.of(arg, in_int or name == "int") for arg in node.args]
            parts += [self.of(k.value, in_int) for k in node.keywords]
            degree = 1 if any(d for d, _ in parts) else 0
            logs = [m for _, m in parts]
            if not parts or any(m is None for m in logs):
                return degree, None
            log = max(logs)
            if name == "exp":  # exp(a) <= e**|a|; the loader refuses |a| > log(MAX_MAGNITUDE) as the same
                if log > math.log10(math.log(self.max_magnitude)):
                    raise _TooLarge(f"a constant larger than {self.max_magnitude:g} (got {self.shown(node)})")
                log = 10 ** log * math.log10(math.e)
            return degree, self.number(log, node)
        # anything else Brian2 refuses; its parts are bounded all the same
        parts = [self.of(n, in_int) for n in ast.iter_child_nodes(node) if isinstance(n, ast.expr)]
        return max((d for d, _ in parts), default=0), None

    def power(self, node, in_int):
        exponent, sign = node.right, 1
        while isinstance(exponent, ast.UnaryOp) and isinstance(exponent.op, (ast.USub, ast.UAdd)):
            sign = -sign if isinstance(exponent.op, ast.USub) else sign
            exponent = exponent.operand
        degree, log = self.of(node.left, in_int)
        if isinstance(exponent, ast.Name) and exponent.id not in _CONSTANTS:
            return degree, None  # symbolic (a parameter exponent): the rule loader decides
        if not (isinstance(exponent, ast.Constant) and isinstance(exponent.value, (int, float))
                and not isinstance(exponent.value, bool) and abs(exponent.value) <= self.max_exponent):
            raise _TooLarge(f"an exponent must be a name or a number of magnitude at most {self.max_exponent} "
                            f"(got {ast.unparse(node.right)})")
        value = sign * exponent.value
        degree = self.degree(degree * abs(value), node)
        if value == 0:
            return degree, None if log is None else 0.0  # x ** 0 is 1
        if log is None or (log == -math.inf and value < 0):
            return degree, None  # 0 ** -1 is sympy's zoo: an infinite value, refused as such
        return degree, self.number(-math.inf if log == -math.inf else log * value, node)


def rule_text(expr) -> str:
    printer, _ = _printer()
    return printer.doprint(expr)


_ALLOWED_FUNCS = ("exp", "log", "sqrt", "Abs", "Heaviside")


class _Importer:
    def __init__(self, model, on_pre, on_post, namespace, name, source, init, bounds, description, citation,
                 run_regularly=(), dt=None, delays=None, target_variables=()):
        import neurodeploy.brian2_setup  # noqa: F401 - before any other Brian2 import
        import sympy

        self.sympy = sympy
        self.source = source
        self.name = name
        self.namespace = dict(namespace or {})
        self.init, self.bounds_given = init, bounds
        self.description, self.citation = description, citation
        self.notes = []
        self.params = {}  # rule parameter name -> value (number or quantity text), in order of use
        self.param_dims = {}
        self.target_variables = frozenset(target_variables or ())
        self.shadowed = set()  # namespace names noted as not read (a Brian2 constant or unit comes first)
        self.paths = self._pathways(on_pre, on_post, delays)
        self.regular = self._regular_items(run_regularly)
        self.dt = dt
        self._equations(model)

    # errors
    def fail(self, field, message):
        raise NeurodeployError(self.source, field, message)

    # equations -------------------------------------------------------------------------------------
    def _equations(self, model):
        from brian2 import Equations
        from brian2.equations.equations import DIFFERENTIAL_EQUATION, PARAMETER, SUBEXPRESSION

        if not isinstance(model, str):
            self.fail("model", f"must be Brian2 equations as text (got {type(model).__name__})")
        self.check_equation_sizes(model)
        try:
            eqs = Equations(model)
        except Exception as exc:  # noqa: BLE001 - Brian2's parser raises several types
            self.fail("model", f"not Brian2 equations: {_first_line(exc)} (got {model.strip()!r})")
        self.dims, self.odes, self.subexpressions, self.variables = {}, {}, {}, []
        for name, eq in eqs.items():
            flags = set(eq.flags) - {"event-driven", "clock-driven", "constant"}
            if flags:
                self.fail(f"model.{name}", f"flag ({', '.join(sorted(flags))}) has no counterpart in a rule "
                                           f"(got {eq!s})")
            if eq.var_type != "float":
                self.fail(f"model.{name}", f"must be a real variable (got {eq.var_type} in {eq!s})")
            self.variables.append(name)
            self.dims[name] = Dimension(eq.dim._dims)
            if eq.type == DIFFERENTIAL_EQUATION:
                self.odes[name] = (eq.expr.code, eq.flags)
            elif eq.type == SUBEXPRESSION:
                self.subexpressions[name] = eq.expr.code
            elif eq.type != PARAMETER:  # pragma: no cover - Brian2 has no other kind
                self.fail(f"model.{name}", f"unsupported equation (got {eq!s})")
        for name in self.variables:
            if name in _RUNTIME or name in _CONSTANTS:
                self.fail(f"model.{name}", f"'{name}' names {_RUNTIME.get(name, 'a constant')} in Brian2 (got {name})")

    def check_equation_sizes(self, model):
        """Bound each equation's unit and expression (:meth:`check_sizes`) before ``Equations`` evaluates
        the units (Brian2 runs ``eval`` on them: ``w : 9**9**9`` would never finish), read with Brian2's
        own grammar, which evaluates nothing."""
        from brian2.equations.equations import DIFFERENTIAL_EQUATION, EQUATIONS, SUBEXPRESSION

        try:
            parsed = EQUATIONS.parseString(model, parseAll=True)
        except Exception:  # noqa: BLE001 - Equations says what is wrong
            return
        for eq in parsed:
            content = dict(eq.items())
            name, unit, code = content["identifier"], content["unit"].strip(), content.get("expression")
            kind = eq.getName()
            if kind == DIFFERENTIAL_EQUATION:
                statement = f"d{name}/dt = {code.strip()} : {unit}"
            elif kind == SUBEXPRESSION:
                statement = f"{name} = {code.strip()} : {unit}"
            else:
                statement = f"{name} : {unit}"
            self.check_sizes(unit, f"model.{name}", statement)
            if code is not None:
                self.check_sizes(code, f"model.{name}", statement)

    # names -------------------------------------------------------------------------------------------
    def parse(self, text, field, statement):
        """sympy expression of Brian2 code ``text``; subexpressions inlined; every name checked."""
        sympy = self.sympy
        expr = self.sympy_of(text, field, statement)
        steps = {f: self.step(f, field, statement, text) for f in expr.atoms(sympy.Function)
                 if type(f).__name__ == "int_"}
        expr = expr.xreplace(steps)
        for _ in range(len(self.subexpressions) + 1):
            subs = {s: self.parse_sub(s.name) for s in expr.free_symbols if s.name in self.subexpressions}
            if not subs:
                break
            expr = expr.xreplace(subs)
        for f in expr.atoms(sympy.Function):
            if type(f).__name__ not in _ALLOWED_FUNCS + ("clip",):
                self.fail(field, f"'{statement}': function {type(f).__name__}() has no counterpart in a rule "
                                 f"(allowed: exp, log, sqrt, abs, int(a > b), and clip for the weight) (got {text!r})")
        if expr.has(sympy.oo, -sympy.oo, sympy.zoo, sympy.nan):
            self.fail(field, f"'{statement}': an infinite value has no counterpart in a rule (got {text!r})")
        return expr

    def check_sizes(self, text, field, statement):
        """Refuse, before sympy or Brian2 evaluates anything, what would take too long or too much memory
        (``9**9**9``, ``((((2**16)**16)**16)**16)**16``) and what is not a number (``'abc'``, ``True``, a
        comparison outside ``int(a > b)``), with the rule loader's bounds (:mod:`neurodeploy.spec.expr`).
        Returns the names ``text`` reads."""
        try:
            tree = ast.parse(text.strip(), mode="eval")
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            return set()  # str_to_sympy (or Brian2's parser) says what is wrong
        try:
            _Sizes(text.strip()).of(tree.body)
        except _TooLarge as exc:
            self.fail(field, f"'{statement}': {exc}")
        except RecursionError:
            self.fail(field, f"'{statement}': nested too deeply (got {text.strip()!r})")
        return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}

    def sympy_of(self, text, field, statement):
        """``str_to_sympy(text)`` once :meth:`check_sizes` has bounded it; Brian2's constants ``e`` and
        ``pi`` (which ``str_to_sympy`` reads as sympy's ``E`` and ``pi``) as their float values."""
        from brian2.parsing.sympytools import str_to_sympy

        sympy = self.sympy
        names = self.check_sizes(text, field, statement)
        for name in sorted(names & set(_CONSTANTS)):
            self.resolve(name, field, statement)  # a group's variable of that name is refused
        try:
            expr = str_to_sympy(text)
        except Exception as exc:  # noqa: BLE001
            self.fail(field, f"'{statement}': not a Brian2 expression: {_first_line(exc)} (got {text!r})")
        if not isinstance(expr, sympy.Expr):  # text, a truth value, a comparison
            self.fail(field, f"'{statement}': not a number (got {text!r})")
        return self.plain(expr.xreplace({sympy.E: sympy.Float(math.e), sympy.pi: sympy.Float(math.pi)}))

    def step(self, f, field, statement, text):
        """Brian2's ``int(a > b)`` (``int(b < a)``) is the rule's ``heaviside(a - b)``."""
        sympy = self.sympy
        arg = f.args[0]
        if isinstance(arg, sympy.StrictGreaterThan):
            return sympy.Heaviside(arg.lhs - arg.rhs, 0)
        if isinstance(arg, sympy.StrictLessThan):
            return sympy.Heaviside(arg.rhs - arg.lhs, 0)
        self.fail(field, f"'{statement}': int() only of a strict comparison, int(a > b), the rule's heaviside(a - b) "
                         f"(got {text!r})")

    def parse_sub(self, name):
        code = self.subexpressions[name]
        return self.sympy_of(code, f"model.{name}", f"{name} = {code}")

    def plain(self, expr):
        """Every symbol as ``Symbol(name, real=True)``, whatever assumptions Brian2 gave it."""
        return expr.xreplace({s: self.symbol(s.name) for s in expr.free_symbols})

    def resolve(self, name, field, statement):
        """Make the non-variable ``name`` a rule parameter, resolved in Brian2's order (``Group._resolve``):
        the synapses' own variables (the model's, and Brian2's ``t``, ``dt``, ``i``, ...), then the
        postsynaptic group's variables (a ``Synapses`` reads those without a suffix), then Brian2's
        constants (``e``, ``pi``: their values, written as numbers), units and functions, and only then the
        namespace. The presynaptic group's variables are read only as ``name_pre``."""
        if name in self.params:
            return
        if name in self.variables:
            self.fail(field, f"'{statement}': reads '{name}', a variable of the synapses that is neither a trace nor "
                             f"the weight: a rule has no other per-synapse value (got {name})")
        if name in _RUNTIME:
            self.fail(field, f"'{statement}': reads '{name}' ({_RUNTIME[name]}), which a rule cannot "
                             f"(got {name})")
        if name in self.target_variables:
            self.fail(field, f"'{statement}': reads '{name}', a variable of the target group (Brian2 reads a name "
                             f"the postsynaptic group defines before the namespace): a rule reads only its traces, "
                             f"its weight and constants (got {name})")
        if name.endswith(("_pre", "_post")):
            group = "source" if name.endswith("_pre") else "target"
            self.fail(field, f"'{statement}': reads '{name}', a variable of the {group} group: a rule reads only "
                             f"its traces, its weight and constants (got {name})")
        builtin = _brian2_builtin(name)
        if builtin is not None:
            kind, value, dim = builtin
            self._note_shadowed(name, kind, value, dim)
            if kind == "constant":
                return  # written as its value (see sympy_of)
        elif name in self.namespace:
            value, dim = _value_of(self.namespace[name], self.source, f"namespace.{name}")
        else:
            self.fail(field, f"'{statement}': '{name}' is not a variable of the model nor in the namespace "
                             f"(got {name})")
        self.params[name] = quantity_text(value, dim)
        self.param_dims[name] = (value, dim)

    def _note_shadowed(self, name, kind, value, dim):
        """A namespace value that Brian2 does not read because its constant or unit of that name comes first
        (Brian2 warns): noted once."""
        if name not in self.namespace or name in self.shadowed:
            return
        self.shadowed.add(name)
        try:
            given = _value_of(self.namespace[name], self.source, f"namespace.{name}")
        except NeurodeployError:
            return  # not a number: Brian2 ignores it
        if given == (value, dim):
            return
        shown = repr(value) if kind == "constant" else quantity_text(value, dim)
        self.notes.append(f"namespace.{name}: not used: Brian2 reads '{name}' as its {kind} {shown}, which comes "
                          f"before the namespace's {quantity_text(*given)}")

    def numeric(self, expr, field, statement):
        """(value, Dimension) of a constant expression over the namespace."""
        from neurodeploy.spec.units import DimensionMismatch, dimensions_of

        sympy = self.sympy
        for s in expr.free_symbols:
            if s.name in self.variables:
                self.fail(field, f"'{statement}': must be a constant, it reads the variable '{s.name}' "
                                 f"(got {rule_text(expr)})")
            self.resolve(s.name, field, statement)
        try:
            dim = dimensions_of(expr, {n: d for n, (_, d) in self.param_dims.items()})
            value = float(expr.xreplace({s: sympy.Float(self.param_dims[s.name][0]) for s in expr.free_symbols}))
        except (DimensionMismatch, TypeError, ValueError) as exc:
            self.fail(field, f"'{statement}': not a constant quantity: {exc} (got {rule_text(expr)})")
        if not math.isfinite(value):
            self.fail(field, f"'{statement}': must be finite (got {rule_text(expr)})")
        return value, dim

    def constant_text(self, text, field, statement, want=None):
        """Rule text of a constant: the parameter's name when it is one, else its value as a quantity."""
        expr = self.parse(text, field, statement)
        if expr.is_Symbol and expr.name not in self.variables:
            self.resolve(expr.name, field, statement)
            return expr.name, self.param_dims[expr.name][1]
        value, dim = self.numeric(expr, field, statement)
        if value == 0 and want is not None:
            dim = want
        return quantity_text(value, dim), dim

    # traces ------------------------------------------------------------------------------------------
    def ode_trace(self, name):
        """(tau text, rest text or None) of ``dX/dt = (rest - X)/tau``, or None when not of this form."""
        code, _ = self.odes[name]
        field, statement = f"model.{name}", f"d{name}/dt = {code}"
        try:
            node = ast.parse(code.strip(), mode="eval").body
        except SyntaxError:
            return None
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            num, tau = node.left, ast.unparse(node.right)
            if name in {n.id for n in ast.walk(node.right) if isinstance(n, ast.Name)}:
                return None
            rest = None
            if isinstance(num, ast.UnaryOp) and isinstance(num.op, ast.USub):
                inner = num.operand
                if isinstance(inner, ast.Name) and inner.id == name:
                    rest = "0"
                elif (isinstance(inner, ast.BinOp) and isinstance(inner.op, ast.Sub)
                      and isinstance(inner.left, ast.Name) and inner.left.id == name):
                    rest = ast.unparse(inner.right)
            elif (isinstance(num, ast.BinOp) and isinstance(num.op, ast.Sub) and isinstance(num.right, ast.Name)
                  and num.right.id == name):
                rest = ast.unparse(num.left)
            if rest is not None and name not in {n.id for n in ast.walk(ast.parse(rest, mode="eval"))
                                                 if isinstance(n, ast.Name)}:
                return self._tau_rest(name, tau, rest, field, statement)
        # any other linear form: tau = -1/a, rest = -b/a from dX/dt = a X + b (sympy)
        expr = self.parse(code, field, statement)
        x = self.sympy.Symbol(name, real=True)
        x = next((s for s in expr.free_symbols if s.name == name), x)
        a = self.sympy.diff(expr, x)
        if a.free_symbols & {s for s in expr.free_symbols if s.name in self.variables} or a == 0:
            return None
        b = self.sympy.simplify(expr - a * x)
        if any(s.name in self.variables for s in b.free_symbols):
            return None
        return self._tau_rest(name, rule_text(-1 / a), rule_text(self.sympy.simplify(-b / a)), field, statement)

    def _tau_rest(self, name, tau, rest, field, statement):
        from neurodeploy.spec.units import SECOND

        tau_text, tau_dim = self.constant_text(tau, field, statement)
        if tau_dim != SECOND:
            self.fail(field, f"'{statement}': the time constant must be a time (got {tau}, {dim_name(tau_dim)})")
        rest_text, rest_dim = self.constant_text(rest, field, statement, want=self.dims[name])
        if rest_dim != self.dims[name]:
            self.fail(field, f"'{statement}': the rest value must have the unit of {name}, "
                             f"{dim_name(self.dims[name])} (got {rest}, {dim_name(rest_dim)})")
        if isinstance(rest_text, str) and rest_text in self.param_dims:  # a parameter's name
            rest_value = self.param_dims[rest_text][0]
        else:
            rest_value = parse_quantity(rest_text, "", "").value
        return tau_text, (None if rest_value == 0 else rest_text)

    def manual_decay(self, var, rhs, field, statement):
        """``X = X * exp(-(t - L)/tau)`` or ``X = rest + (X - rest) * exp(-(t - L)/tau)``:
        (L, tau text, rest text or None), or None when the statement is not a decay."""
        try:
            node = ast.parse(rhs.strip(), mode="eval").body
        except SyntaxError:
            return None

        def is_var(n):
            return isinstance(n, ast.Name) and n.id == var

        def decay_factor(n):
            if not (isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "exp"
                    and len(n.args) == 1):
                return None
            arg = n.args[0]  # -((t - L) / tau), -(t - L) / tau or (L - t) / tau
            neg = isinstance(arg, ast.UnaryOp) and isinstance(arg.op, ast.USub)
            body = arg.operand if neg else arg
            if not (isinstance(body, ast.BinOp) and isinstance(body.op, ast.Div)):
                return None
            diff = body.left
            if not neg and isinstance(diff, ast.UnaryOp) and isinstance(diff.op, ast.USub):
                neg, diff = True, diff.operand
            if neg and isinstance(diff, ast.Name) and diff.id == "dt":  # one step: run_regularly's decay
                return "dt", ast.unparse(body.right)
            if not (isinstance(diff, ast.BinOp) and isinstance(diff.op, ast.Sub) and isinstance(diff.left, ast.Name)
                    and isinstance(diff.right, ast.Name)):
                return None
            first, second = diff.left.id, diff.right.id
            if neg and first == "t":
                return second, ast.unparse(body.right)
            if not neg and second == "t":
                return first, ast.unparse(body.right)
            return None

        rest = None
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
            pair = (node.left, node.right)
            for a, b in (pair, pair[::-1]):
                if is_var(a) and decay_factor(b):
                    last, tau = decay_factor(b)
                    break
            else:
                return None
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add) and isinstance(node.right, ast.BinOp) \
                and isinstance(node.right.op, ast.Mult):
            rest = ast.unparse(node.left)
            diff, factor = node.right.left, node.right.right
            if not (isinstance(diff, ast.BinOp) and isinstance(diff.op, ast.Sub) and is_var(diff.left)
                    and ast.unparse(diff.right) == rest and decay_factor(factor)):
                return None
            last, tau = decay_factor(factor)
        else:
            return None
        if last == "dt":
            tau_text, rest_text = self._tau_rest(var, tau, rest or "0", field, statement)
            return last, tau_text, rest_text
        if last not in self.variables or self.dims[last] != Dimension((0, 0, 1, 0, 0, 0, 0)):
            self.fail(field, f"'{statement}': decays from '{last}', which must be a model variable in seconds "
                             f"set to t at the end of every pathway (got {last})")
        tau_text, rest_text = self._tau_rest(var, tau, rest or "0", field, statement)
        return last, tau_text, rest_text

    # pathways ------------------------------------------------------------------------------------------
    def statements(self, key):
        from brian2.parsing.statements import parse_statement

        _, field, code, _ = self.paths[key]
        if not isinstance(code, str):
            self.fail(field, f"must be Brian2 statements as text (got {type(code).__name__})")
        out = []
        for line in re.split(r"[\n;]", code):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            try:
                var, op, expr, _ = parse_statement(line)
            except Exception as exc:  # noqa: BLE001
                self.fail(field, f"'{line}': not a Brian2 statement: {_first_line(exc)} (got {line!r})")
            if op not in _STATEMENT_OPS:
                self.fail(field, f"'{line}': the operator {op} has no counterpart in a rule (got {line!r})")
            out.append((var.strip(), op, expr.strip(), line))
        return out

    def _pathways(self, on_pre, on_post, delays):
        """Pathway key -> (side, field, code, delay in s): ``pre`` and ``post``, and for ``on_pre``/``on_post``
        given as dicts (Brian2's several pathways), ``pre:<name>`` with its delay from ``delays``."""
        delays = dict(delays or {})
        paths = {}
        for side, given in (("pre", on_pre), ("post", on_post)):
            if isinstance(given, dict):
                for name, code in given.items():
                    if name == side:
                        paths[side] = (side, f"on_{side}", code, 0.0)
                        continue
                    field = f"on_{side}.{name}"
                    if name not in delays:
                        self.fail(field, f"a pathway besides '{side}' needs its delay (delays={{'{name}': ...}}): "
                                         f"a rule's extra pathways are delayed jumps (got no delay)")
                    value, dim = _value_of(delays.pop(name), self.source, f"delays.{name}")
                    if dim != Dimension((0, 0, 1, 0, 0, 0, 0)) or value <= 0:
                        self.fail(f"delays.{name}", f"must be a time > 0 (got {quantity_text(value, dim)})")
                    paths[f"{side}:{name}"] = (side, field, code, value)
            else:
                paths[side] = (side, f"on_{side}", given or "", 0.0)
            paths.setdefault(side, (side, f"on_{side}", "", 0.0))
        if delays:
            name = next(iter(delays))
            self.fail(f"delays.{name}", f"names no pathway of on_pre or on_post (got {name})")
        return paths

    def _regular_items(self, items):
        """[(code, when)] of ``run_regularly``: code text, or (code, when[, order]); Brian2's default
        slot is ``start``."""
        if isinstance(items, str):
            items = [items]
        out = []
        for k, item in enumerate(items or ()):
            code, when = (item, "start") if isinstance(item, str) else (item[0], item[1] if len(item) > 1 else "start")
            if not isinstance(code, str) or not isinstance(when, str):
                self.fail(f"run_regularly[{k}]", f"must be code text or (code, when) (got {item!r})")
            out.append((code, when))
        return out

    def regular_statements(self):
        """Per-step decays {trace: (tau, rest)} (before the synapses) and the weight's continuous term
        (var, d(var)/dt, bounds, line) (after them) of the run_regularly code."""
        from brian2.parsing.statements import parse_statement

        decays, continuous = {}, None
        for k, (code, when) in enumerate(self.regular):
            field = f"run_regularly[{k}]"
            before = when in _BEFORE_SYNAPSES
            after = when in _AFTER_SYNAPSES
            for line in re.split(r"[\n;]", code):
                line = line.split("#", 1)[0].strip()
                if not line:
                    continue
                try:
                    var, op, rhs, _ = parse_statement(line)
                except Exception as exc:  # noqa: BLE001
                    self.fail(field, f"'{line}': not a Brian2 statement: {_first_line(exc)} (got {line!r})")
                var, rhs = var.strip(), rhs.strip()
                found = self.manual_decay(var, rhs, field, line) if op == "=" and var in self.variables else None
                if found is not None and found[0] == "dt":
                    if not before:
                        self.fail(field, f"'{line}': a trace decays before the synapses' pathways run (when "
                                         f"'groups' or 'start'); here it runs at '{when}' (got {when})")
                    decays[var] = found[1:]
                    continue
                expr = self.parse(rhs, field, line) if var in self.variables else None
                if expr is not None and continuous is None and op in ("=", "+="):
                    dt = self.symbol("dt")
                    x = self.symbol(var)
                    bounds = None
                    if op == "=" and isinstance(expr, self.sympy.Function) and type(expr).__name__ == "clip" \
                            and len(expr.args) == 3:
                        inner, lo, hi = expr.args
                        bounds = (lo, hi)
                        change = inner - x
                    else:
                        change = expr if op == "+=" else expr - x
                    rate = change / dt
                    if dt not in rate.free_symbols and (change != 0):
                        if not after:
                            self.fail(field, f"'{line}': the weight's continuous change runs after the synapses' "
                                             f"pathways (when 'end'); here it runs at '{when}' (got {when})")
                        continuous = (var, rate, bounds, line)
                        continue
                self.fail(field, f"'{line}': run_regularly code may only decay a trace, X = X * exp(-dt/tau), "
                                 f"or change the weight by dt * rate, w = clip(w + dt*(...), low, high) "
                                 f"(got {line!r})")
        return decays, continuous

    def run(self) -> ImportedRule:
        pathways = {key: self.statements(key) for key in self.paths}
        regular_decays, self.continuous = self.regular_statements()
        # hand-decayed traces: leading decay statements, `L = t` last
        manual, last_vars, decayed = {}, set(), {}
        for side, stmts in pathways.items():
            k = 0
            decays = {}
            while k < len(stmts):
                var, op, rhs, line = stmts[k]
                found = self.manual_decay(var, rhs, self.paths[side][1], line) if op == "=" and var in self.variables \
                    else None
                if found is None or found[0] == "dt":
                    break
                decays[var] = found
                k += 1
            if decays:
                if not (stmts[-1][0] in {d[0] for d in decays.values()} and stmts[-1][1] == "="
                        and stmts[-1][2] == "t"):
                    last = next(iter(decays.values()))[0]
                    self.fail(self.paths[side][1], f"decays traces from '{last}' but does not end with '{last} = t' "
                                            f"(got {stmts[-1][3]!r})")
                last_vars.add(stmts[-1][0])
                stmts = stmts[k:-1]
            pathways[side] = stmts
            decayed[side] = set(decays)
            for var, found in decays.items():
                if var in manual and manual[var][1:] != found[1:]:
                    self.fail(self.paths[side][1], f"decays '{var}' differently in two pathways (got tau "
                                            f"{found[1]} and {manual[var][1]})")
                manual[var] = found
        if manual:
            for side in self.paths:
                if self.paths[side][2].strip() and decayed[side] != set(manual):
                    missing = sorted(set(manual) - decayed[side])[0]
                    self.fail(self.paths[side][1], f"does not decay '{missing}' before its statements (another "
                                                   f"pathway does): every pathway decays every hand-decayed trace "
                                                   f"(got {missing})")
        # traces from equations
        traces = {}
        for name in self.odes:
            form = self.ode_trace(name)
            if form is not None:
                traces[name] = form
        traces.update({v: found[1:] for v, found in manual.items()})
        for var, form in regular_decays.items():
            if var in traces:
                self.fail("run_regularly", f"decays '{var}', which decays already (its equation or its pathways) "
                                           f"(got {var})")
            traces[var] = form
        ode_weight = [n for n in self.odes if n not in traces]
        temporaries = set()
        # the weight: the variable (not a trace, not the time of the last update) the pathways change
        changed = {var for stmts in pathways.values() for var, *_ in stmts if var in self.variables}
        if self.continuous is not None:
            changed.add(self.continuous[0])
        candidates = [n for n in self.variables if n not in traces and n not in last_vars
                      and n not in self.subexpressions and (n in changed or n in self.odes)]
        # a variable set by `=` before any read in every pathway that uses it is a temporary
        for name in list(candidates):
            if name in self.odes:
                continue
            if self._is_temporary(name, pathways):
                temporaries.add(name)
                candidates.remove(name)
        unchanged = [n for n in self.variables if n not in traces and n not in last_vars and n not in changed
                     and n not in self.odes and n not in self.subexpressions and n not in temporaries]
        if "w" in unchanged or (unchanged and not candidates):
            name = "w" if "w" in unchanged else unchanged[0]
            unit = unit_name(self.dims[name]) if self.dims[name] != DIMENSIONLESS else 1
            self.fail(f"model.{name}", f"'{name}' never changes: no pathway changes it and it has no equation "
                                       f"(code run outside the pathways, such as run_regularly, is not read) "
                                       f"(got {name} : {unit})")
        if not candidates:
            self.fail("model", "no weight: a rule needs one variable that the pathways change (such as 'w : 1' "
                               f"and w = clip(w + ..., lo, hi)) (got {', '.join(self.variables) or 'none'})")
        if len(candidates) > 1:
            self.fail("model", f"more than one variable changes at spikes without decaying: a rule has one weight, "
                               f"and a trace decays (dX/dt = (rest - X)/tau, or by hand at the start of every pathway) "
                               f"(got {', '.join(candidates)})")
        weight = candidates[0]
        for name in ode_weight:
            if name != weight:
                code, _ = self.odes[name]
                self.fail(f"model.{name}", f"'d{name}/dt = {code}': a trace must decay, dX/dt = (rest - X)/tau "
                                           f"with constant rest and tau (got {code})")
        self.weight = weight
        self.traces, self.temporaries = traces, temporaries
        # walk each pathway in order
        results = {key: self.pathway(key, stmts) for key, stmts in pathways.items()}
        return self.assemble(results)

    def _is_temporary(self, name, pathways):
        used = False
        for stmts in pathways.values():
            set_before = False
            for var, op, rhs, line in stmts:
                reads = re.search(rf"\b{re.escape(name)}\b", rhs) is not None
                if reads or (var == name and op != "="):
                    if not set_before:
                        return False
                    used = True
                if var == name and op == "=":
                    set_before = True
                    used = True
        return used

    def subexpressions_read(self, code):
        return [n for n in dict.fromkeys(re.findall(r"[A-Za-z_]\w*", code)) if n in self.subexpressions]

    def depends_on(self, sub, seen=()):
        """The model variables subexpression ``sub`` reads, through other subexpressions too."""
        out = set()
        for n in re.findall(r"[A-Za-z_]\w*", self.subexpressions[sub]):
            if n in self.subexpressions and n not in seen:
                out |= self.depends_on(n, seen + (sub,))
            elif n in self.variables:
                out.add(n)
        return out

    def symbol(self, name):
        return self.sympy.Symbol(name, real=True)

    def pathway(self, key, stmts):
        sympy = self.sympy
        field = self.paths[key][1]
        names = lambda e: {s.name for s in e.free_symbols}  # noqa: E731
        current = {}  # variable -> its value now, over the values before the spike
        jumps = []  # (trace, jump expression over the current values), in order
        delta, bounds, w_line = None, None, None
        for var, op, rhs, line in stmts:
            if var not in self.variables:
                if var in self.namespace and var not in self.target_variables:
                    self.fail(field, f"'{line}': assigns '{var}', a namespace value, not a variable of the "
                                     f"model (got {line!r})")
                group = "source" if var.endswith("_pre") else "target"
                self.notes.append(f"{field}: dropped '{line}': it changes the {group} group's '{var}' "
                                  f"(an effect of the synapse, not part of the rule)")
                continue
            if var in self.subexpressions:
                self.fail(field, f"'{line}': assigns the subexpression '{var}' (got {line!r})")
            changed_here = {s.name for s in current}
            for sub in self.subexpressions_read(rhs):
                event = sorted(v for v in self.depends_on(sub) if "event-driven" in self.odes.get(v, ("", ()))[1])
                if event:
                    self.fail(field, f"'{line}': reads the subexpression '{sub}' of the event-driven '{event[0]}', "
                                     f"which Brian2 2.9 evaluates before the pathway decays '{event[0]}': write "
                                     f"{sub}'s expression out instead (got {line!r})")
                stale = sorted(self.depends_on(sub) & changed_here)
                if stale:
                    self.fail(field, f"'{line}': reads the subexpression '{sub}' after '{stale[0]}' changed in this "
                                     f"pathway, where Brian2 2.9 uses {sub} from before the change (its documentation "
                                     f"says after): write {sub}'s expression out instead (got {line!r})")
            expr = self.parse(rhs, field, line)
            for n in names(expr):
                if n not in self.variables or n not in self.traces and n != self.weight and n not in self.temporaries:
                    self.resolve(n, field, line)
                elif n in self.temporaries and self.symbol(n) not in current:
                    self.fail(field, f"'{line}': reads '{n}' before this pathway sets it (got {line!r})")
            x = self.symbol(var)
            if var == self.weight:
                if delta is not None:
                    self.fail(field, f"'{line}': changes {var} a second time ('{w_line}' did): a rule changes the "
                                     f"weight once per spike (got {line!r})")
                w_line = line
                if op == "=" and isinstance(expr, sympy.Function) and type(expr).__name__ == "clip":
                    if len(expr.args) != 3:
                        self.fail(field, f"'{line}': clip takes (value, low, high) (got {line!r})")
                    inner, lo, hi = expr.args
                    bounds = (lo, hi)
                    change = inner - x
                elif op in ("+=", "-="):
                    change = expr if op == "+=" else -expr
                elif op == "=":
                    change = expr - x
                else:
                    self.fail(field, f"'{line}': only {var} = clip({var} + ..., low, high), {var} += ..., "
                                     f"{var} -= ... and {var} = ... change the weight (got {line!r})")
                if any(type(f).__name__ == "clip" for f in change.atoms(sympy.Function)):
                    self.fail(field, f"'{line}': clip only as {var} = clip({var} + change, low, high) (got {line!r})")
                delta = change.xreplace(current)
                current[x] = x + delta
                continue
            if var in self.traces:
                if any(s.name == var for s in current):
                    self.fail(field, f"'{line}': changes {var} a second time in one pathway: a trace jumps once "
                                     f"per spike (got {line!r})")
                jump = {"+=": expr, "-=": -expr, "=": expr - x, "*=": x * expr - x, "/=": x / expr - x}[op]
                read = names(jump) & (set(self.variables) - set(self.traces))
                if read:
                    self.fail(field, f"'{line}': a trace's jump may read traces and constants only, it reads "
                                     f"'{sorted(read)[0]}' (got {line!r})")
                jumps.append((var, jump, line))
                current[x] = (x + jump).xreplace(current)
                continue
            # a temporary
            if op != "=":
                self.fail(field, f"'{line}': '{var}' is not a trace nor the weight: only '{var} = ...' "
                                 f"(a value used later in the pathway) (got {line!r})")
            current[x] = expr.xreplace(current)
        if delta is not None and self.paths[key][3] > 0:
            self.fail(field, f"'{w_line}': changes the weight on a delayed pathway: a rule's delayed pathways only "
                             f"jump traces (got {w_line!r})")
        return {"delta": delta, "bounds": bounds, "line": w_line, "jumps": jumps}

    # the rule ----------------------------------------------------------------------------------------
    def assemble(self, results):
        sympy = self.sympy
        w = self.weight
        sides = {}
        for key in self.paths:
            side, field = self.paths[key][:2]
            for var, jump, line in results[key]["jumps"]:
                if var in sides and sides[var][0] != side:
                    self.fail(field, f"'{line}': {var} also jumps at {sides[var][0]} spikes: a trace of a "
                                     f"rule belongs to one side (per-synapse states that both spikes change, "
                                     f"such as eligibility traces, are not imported) (got {line!r})")
                if var in sides:
                    self.fail(field, f"'{line}': {var} jumps in two pathways: a trace jumps once per spike, "
                                     f"at one delay (got {line!r})")
                sides[var] = (side, jump)
        for name in self.traces:
            if name not in sides:
                self.fail(f"model.{name}", f"never jumps: neither pathway changes it, so it stays at its rest value "
                                           f"(got {name})")
        rename = {self.symbol(w): sympy.Symbol("w", real=True)} if w != "w" else {}
        if w != "w" and "w" in self.variables + list(self.params):
            self.fail("model", f"the weight '{w}' becomes 'w' in the rule, a name the model also uses (got w)")

        def text(expr, field):
            expr = expr.xreplace(rename)
            for s in expr.free_symbols:
                if s.name not in self.traces and s.name != "w":
                    self.resolve(s.name, field, rule_text(expr))
            return rule_text(expr)

        traces = {}
        for key in sorted(self.paths, key=lambda k: (self.paths[k][0] != "pre", self.paths[k][3])):
            side, field, _, delay = self.paths[key]
            for var, jump, line in results[key]["jumps"]:
                tau, rest = self.traces[var]
                entry = {"of": side, "tau": tau}
                if jump.is_Number:
                    entry["jump"] = float(jump)
                elif jump.is_Symbol and jump.name not in self.variables:
                    self.resolve(jump.name, field, line)
                    entry["jump"] = jump.name
                elif not any(s.name in self.variables for s in jump.free_symbols):  # a constant: its value
                    entry["jump"] = quantity_text(*self.numeric(jump, field, line))
                    jump = self.sympy.Float(1.0)
                else:
                    entry["jump"] = text(jump, field)
                if rest is not None:
                    entry["rest"] = rest
                    self.notes.append(f"traces.{var}: starts at its rest value {rest} in the rule (Brian2 starts "
                                      f"a variable at 0 unless it is set)")
                elif self.dims[var] != DIMENSIONLESS and not jump.is_Number and not jump.is_Symbol:
                    entry["rest"] = quantity_text(0.0, self.dims[var])  # the trace's unit, for a state-dependent jump
                if delay > 0:
                    entry["delay"] = quantity_text(delay, Dimension((0, 0, 1, 0, 0, 0, 0)))
                traces[var] = entry
        weight = {}
        for side in ("pre", "post"):
            if results[side]["delta"] is not None:
                weight[f"on_{side}"] = text(results[side]["delta"], f"on_{side}")
        if self.continuous is not None:
            var, rate, cbounds, line = self.continuous
            if var != w:
                self.fail("run_regularly", f"'{line}': changes '{var}', not the weight '{w}' (got {var})")
            if w in self.odes:
                self.fail("run_regularly", f"'{line}': '{w}' has an equation already (got {line!r})")
            weight["continuous"] = text(rate, "run_regularly")
            results["regular"] = {"delta": rate, "bounds": cbounds, "line": line}
        if w in self.odes:
            code, flags = self.odes[w]
            if "event-driven" in flags:
                self.fail(f"model.{w}", f"'d{w}/dt = {code}': an event-driven weight equation has no counterpart "
                                        f"(got event-driven)")
            weight["continuous"] = text(self.parse(code, f"model.{w}", f"d{w}/dt = {code}"), f"model.{w}")
            self.notes.append(f"model.{w}: d{w}/dt = {code} is the rule's continuous term: the rule integrates it by "
                              f"forward Euler after each step's spikes and clips it to the bounds (Brian2's state "
                              f"updater runs before the spikes, unclipped)")
        # bounds
        clipped = {s: results[s]["bounds"] for s in ("pre", "post", "regular")
                   if s in results and results[s]["delta"] is not None}
        found = {b for b in clipped.values() if b is not None}
        if len(found) > 1:
            self.fail("on_post", f"clips {w} to other bounds than on_pre: a rule has one pair of bounds "
                                 f"(got {', '.join(f'[{rule_text(lo)}, {rule_text(hi)}]' for lo, hi in found)})")
        if found and None in clipped.values():
            side = next(s for s, b in clipped.items() if b is None)
            line = results[side]["line"]
            self.fail("run_regularly" if side == "regular" else f"on_{side}",
                      f"'{line}': changes {w} without clip while the other pathway clips it: a rule clips every "
                      f"change to its bounds (got {line!r})")
        if found:
            lo, hi = found.pop()
            if self.bounds_given is not None:
                self.fail("bounds", f"the pathways clip {w} already (got {self.bounds_given!r})")
            bounds = [self.bound_text(b) for b in (lo, hi)]
        elif self.bounds_given is not None:
            bounds = [self.bound_text(b, given=True) for b in self.bounds_given]
            self.notes.append(f"weight.bounds: {w} is not clipped in Brian2; the rule clips it to the given "
                              f"bounds [{bounds[0]}, {bounds[1]}]")
        else:
            self.fail("model", f"'{w}' is never clipped: a rule's weight has bounds; write "
                               f"{w} = clip({w} + ..., low, high) or give bounds (got no clip)")
        weight["bounds"] = bounds
        if self.init is not None:
            weight["init"] = self.bound_text(self.init, given=True, field="init")
        # parameters: only those the rule names, in order of use
        used = set()
        for entry in traces.values():
            for key in ("tau", "jump", "rest"):
                value = entry.get(key, "")
                if isinstance(value, str) and not _is_quantity(value):
                    used |= set(re.findall(r"[A-Za-z_]\w*", value))
        for key in ("on_pre", "on_post", "continuous"):
            used |= set(re.findall(r"[A-Za-z_]\w*", weight.get(key, "")))
        used |= {b for b in bounds + [weight.get("init")] if isinstance(b, str)}
        order = {n: k for k, n in enumerate(self.namespace)}
        params = {n: self.params[n] for n in sorted(self.params, key=lambda n: order.get(n, len(order))) if n in used}
        data = {"name": self.name}
        if self.description:
            data["description"] = self.description
        if self.citation:
            data["citation"] = self.citation
        data["parameters"] = params
        data["traces"] = traces
        data["weight"] = weight
        if self.dt is not None:
            value, dim = _value_of(self.dt, self.source, "dt")
            data["simulation"] = {"dt": quantity_text(value, dim)}
        return ImportedRule(data, self.notes)

    def bound_text(self, b, given=False, field="bounds"):
        if given:
            if isinstance(b, (int, float, str)) and not isinstance(b, bool):
                if isinstance(b, str) and b in self.namespace:
                    self.resolve(b, field, b)
                    if b in self.params:
                        return b
                    value, dim = _brian2_builtin(b)[1:]  # Brian2's constant of that name
                    return quantity_text(value, dim)
                value, dim = _value_of(b, self.source, field)
            else:
                value, dim = _value_of(b, self.source, field)
            return quantity_text(value, dim)
        if b.is_Symbol and b.name not in self.variables:
            self.resolve(b.name, "bounds", b.name)
            return b.name
        value, dim = self.numeric(b, "bounds", rule_text(b))
        if value == 0:
            dim = self.dims[self.weight]
        return quantity_text(value, dim)


#: run_regularly slots before the synapses' pathways and after them (Brian2's schedule:
#: start, groups, thresholds, synapses, resets, end).
_BEFORE_SYNAPSES = {"before_start", "start", "after_start", "before_groups", "groups", "after_groups",
                    "before_thresholds", "thresholds", "after_thresholds", "before_synapses"}
_AFTER_SYNAPSES = {"after_synapses", "before_resets", "resets", "after_resets", "before_end", "end", "after_end"}


def _is_quantity(text) -> bool:
    try:
        parse_quantity(text, "", "")
    except NeurodeployError:
        return False
    return True


def _first_line(exc) -> str:
    """The gist of a Brian2 or pyparsing error on one line (``Parsing failed:`` joined to its reason)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    if lines[0].endswith(":") and len(lines) > 1:
        return f"{lines[0]} {lines[1]}"
    return lines[0]


def from_strings(model: str, on_pre: str = "", on_post: str = "", namespace: dict | None = None,
                 name: str = "imported", *, init=None, bounds=None, description: str = "", citation: str = "",
                 source: str = "brian2", run_regularly=(), dt=None, delays: dict | None = None,
                 target_variables=()) -> ImportedRule:
    """The rule a Brian2 ``Synapses(model=..., on_pre=..., on_post=..., namespace=...)`` defines.

    ``on_pre``/``on_post``: code, or Brian2's several pathways, ``{"pre": code, "pre_d": code}``, each
    besides ``pre``/``post`` with its delay in ``delays`` (``{"pre_d": 13.7 * ms}``): it may only jump
    traces, which jump that long after the spike. ``run_regularly``: code, or (code, when), as given to
    ``Synapses.run_regularly``; ``dt``: the rule's time step.
    ``namespace``: name -> number, Brian2 quantity or quantity text (``'20 ms'``).
    ``init``: the weight's initial value (Brian2 sets it after the ``Synapses`` exists; default
    the middle of the bounds). ``bounds``: ``[low, high]`` for a weight the pathways never clip.
    ``target_variables``: the names of the postsynaptic group's variables, which Brian2 reads (without
    a suffix) before the namespace: a statement reading one is refused, one changing one is dropped.
    Returns an :class:`ImportedRule` (a dict for :func:`neurodeploy.spec.loader.rule_from_dict`, with
    ``.notes``); the rule has been loaded once, so the loader accepts it. Bad or unsupported input
    raises :class:`NeurodeployError` naming ``source``, the field and the statement."""
    from neurodeploy.spec.loader import rule_from_dict

    rule = _Importer(model, on_pre, on_post, namespace, name, source, init, bounds, description, citation,
                     run_regularly, dt, delays, target_variables).run()
    rule_from_dict(dict(rule), source)  # refuses what the rule language cannot hold, with the loader's reason
    return rule


def from_synapses(syn, name: str | None = None, namespace: dict | None = None, level: int = 0, *,
                  init=None, bounds=None, description: str = "", citation: str = "") -> ImportedRule:
    """The rule a live :class:`brian2.Synapses` defines: its equations, the code of its ``pre`` and
    ``post`` pathways, and its names resolved as Brian2 resolves them: the object's own
    ``namespace`` when it was given one; else ``namespace``; else the frame of the caller
    ``level`` levels up (0: the function calling ``from_synapses``), as ``run()`` does.
    ``init``: the initial weight (default the middle of the bounds). Other pathways are read with
    their delay (one per pathway); delays on ``pre``/``post`` are refused. run_regularly operations
    are read (their clock's dt becomes the rule's)."""
    import sys

    import numpy as np

    import neurodeploy.brian2_setup  # noqa: F401 - before any other Brian2 import
    from brian2 import Synapses

    if not isinstance(syn, Synapses):
        raise NeurodeployError("from_synapses", "", f"needs a brian2.Synapses (got {type(syn).__name__})")
    source = syn.name
    code = {"pre": {}, "post": {}}
    delays = {}
    for pathway in syn._pathways:
        path = pathway.objname
        if pathway.event != "spike":
            raise NeurodeployError(source, path, f"runs on the event '{pathway.event}': a rule's "
                                                 f"pathways run on spikes (got {pathway.event})")
        try:
            values = np.unique(np.asarray(pathway.delay[:], dtype=float))
        except Exception:  # noqa: BLE001 - no synapses and no delay set: none
            values = np.zeros(0)
        values = values if values.size else np.zeros(1)
        if values.size > 1:
            raise NeurodeployError(source, path, f"has delays that differ between synapses: a rule delays a "
                                                 f"trace's jumps by one time (got {values.min():g} s to "
                                                 f"{values.max():g} s)")
        delay = float(values[0])
        if path == pathway.prepost and delay != 0:
            raise NeurodeployError(source, path, f"has delays: a rule's jumps are not delayed per "
                                                 f"synapse (got {delay:g} s)")
        if path != pathway.prepost:
            delays[path] = f"{delay!r} second"
        code[pathway.prepost][path] = pathway.code
    # run_regularly operations (Brian2's CodeRunner objects the Synapses contains), in their order
    runners = [o for o in syn.contained_objects if type(o).__name__ == "CodeRunner"]
    regular = [(o.abstract_code, o.when) for o in sorted(runners, key=lambda o: o.order)]
    dt = None
    if runners:
        dts = {float(o.clock.dt) for o in runners}
        if len(dts) > 1:
            shown = ", ".join(f"{d:g} s" for d in sorted(dts))
            raise NeurodeployError(source, "run_regularly", f"runs on clocks of different dt: a rule has one "
                                                            f"time step (got {shown})")
        dt = dts.pop()
    elif any("clock-driven" in eq.flags or not eq.flags for eq in syn.equations.ordered
             if eq.type == "differential equation"):
        dt = float(syn.clock.dt)
    if syn.namespace:  # Brian2 then reads only the object's own namespace (and its units)
        names = dict(syn.namespace)
    elif namespace is not None:
        names = dict(namespace)
    else:
        frame = sys._getframe(level + 1)
        names = dict(frame.f_globals)
        names.update(frame.f_locals)
    # Brian2 keeps the event-driven equations apart from the others
    equations = {}
    for eq in list(syn.equations.ordered) + (list(syn.event_driven.ordered) if syn.event_driven else []):
        equations.setdefault(eq.varname, eq)
    model = "\n".join(_equation_text(eq) for eq in equations.values())
    return from_strings(model, code["pre"], code["post"], names,
                        name or re.sub(r"\W", "_", syn.name), init=init, bounds=bounds,
                        description=description, citation=citation, source=source, run_regularly=regular,
                        dt=None if dt is None else f"{dt!r} second", delays=delays,
                        target_variables=_target_variables(syn))


def _target_variables(syn) -> list:
    """The postsynaptic group's variables a ``Synapses`` reads by their bare name (Brian2 adds a reference
    to each, after the synapses' own variables, which keep theirs): ``v``, ``ge``, ``A`` ... (the clock's
    ``t``, ``dt`` are the synapses' own)."""
    from brian2.core.variables import Subexpression

    target = getattr(syn.target, "variables", {})
    names = []
    for name in target:
        if name.startswith("_") or name not in syn.variables or name in syn.equations.names:
            continue
        var = syn.variables[name]
        if type(getattr(var, "owner", None)).__name__ == "Clock":
            continue
        if var is target[name] or (isinstance(var, Subexpression) and isinstance(target[name], Subexpression)):
            names.append(name)
    return names


def _equation_text(eq) -> str:
    """A Brian2 ``SingleEquation`` as model text that ``Equations`` parses again (``str(eq)`` writes
    units such as ``V``, which the parser refuses)."""
    from brian2.equations.equations import DIFFERENTIAL_EQUATION, SUBEXPRESSION
    from brian2.units.fundamentalunits import get_unit

    unit = {"boolean": "boolean", "integer": "integer"}.get(eq.var_type)
    if unit is None:
        unit = "1" if eq.dim is None or not any(eq.dim._dims) else repr(get_unit(eq.dim))
    flags = f" ({', '.join(eq.flags)})" if eq.flags else ""
    if eq.type == DIFFERENTIAL_EQUATION:
        return f"d{eq.varname}/dt = {eq.expr.code} : {unit}{flags}"
    if eq.type == SUBEXPRESSION:
        return f"{eq.varname} = {eq.expr.code} : {unit}{flags}"
    return f"{eq.varname} : {unit}{flags}"


def to_yaml(rule: dict, header: str = "") -> str:
    """YAML text of an imported rule; its notes (and ``header``) as comments at the top."""
    from neurodeploy.errors import printable

    # comments stay comments: control characters (a carriage return would end one) are escaped
    lines = [f"# {printable(line, 2000)}" for line in header.splitlines()] if header else []
    lines += [f"# note: {printable(note, 2000)}" for note in getattr(rule, "notes", [])]

    class Dumper(yaml.SafeDumper):
        pass

    def flow(dumper, data):
        return dumper.represent_mapping("tag:yaml.org,2002:map", data.items(), flow_style=True)

    class Flow(dict):
        pass

    Dumper.add_representer(Flow, flow)
    data = dict(rule)
    data["traces"] = {k: Flow(v) for k, v in data["traces"].items()}
    body = yaml.dump(data, Dumper=Dumper, sort_keys=False, width=1000, allow_unicode=True)
    return "\n".join(lines + [body.rstrip()]) + "\n"


#: Keys of an import spec file (``neurodeploy import-brian2 SPEC.yaml``).
SPEC_KEYS = ("name", "model", "on_pre", "on_post", "namespace", "init", "bounds", "description", "citation")


def from_spec(path: str) -> ImportedRule:
    """The rule of an import spec file: YAML with ``model``, ``on_pre``, ``on_post``, ``namespace``
    (name -> number or quantity text such as ``'20 ms'``) and optional ``name``, ``init``,
    ``bounds``, ``description``, ``citation``. A Python file is refused: it is never run."""
    import os

    from neurodeploy.spec.loader import read_yaml

    source = os.path.basename(os.fspath(path)) or os.fspath(path)
    if source.endswith((".py", ".pyw", ".ipynb")):
        raise NeurodeployError(source, "", "a Python file is never run: copy the Synapses strings and namespace "
                                           "values into a YAML spec with keys model, on_pre, on_post, namespace "
                                           f"(got {source})")
    data, _ = read_yaml(path, source)
    if not isinstance(data, dict):
        raise NeurodeployError(source, "", f"must be a mapping with keys {', '.join(SPEC_KEYS)} "
                                           f"(got {'an empty file' if data is None else type(data).__name__})")
    for key in data:
        if key not in SPEC_KEYS:
            raise NeurodeployError(source, str(key), f"unknown field (allowed: {', '.join(SPEC_KEYS)})")
    if "model" not in data:
        raise NeurodeployError(source, "model", "missing")
    for key in ("model", "on_pre", "on_post", "name", "description", "citation"):
        if key in data and not isinstance(data[key], str):
            raise NeurodeployError(source, key, f"must be text (got {type(data[key]).__name__})")
    namespace = data.get("namespace") or {}
    if not isinstance(namespace, dict):
        raise NeurodeployError(source, "namespace", f"must be a mapping of names to values (got "
                                                    f"{type(namespace).__name__})")
    for key in namespace:
        if not isinstance(key, str) or not key.isidentifier():
            raise NeurodeployError(source, f"namespace.{key}", f"must be a name (got {key!r})")
        _value_of(namespace[key], source, f"namespace.{key}")
    bounds = data.get("bounds")
    if bounds is not None and (not isinstance(bounds, list) or len(bounds) != 2):
        raise NeurodeployError(source, "bounds", f"must be a list [low, high] (got {bounds!r})")
    name = data.get("name") or re.sub(r"\W", "_", os.path.splitext(source)[0])  # my-stdp.yaml: my_stdp
    return from_strings(data["model"], data.get("on_pre", ""), data.get("on_post", ""), namespace, name,
                        init=data.get("init"), bounds=bounds, description=data.get("description", ""),
                        citation=data.get("citation", ""), source=source)
