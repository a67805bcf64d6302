"""Brian2's strings read: the equations, the pathways' statements and expressions parsed into sympy, each bounded
(:class:`_Sizes`) before anything is evaluated."""
from __future__ import annotations

import ast
import math
import re


from neurodeploy.importers.brian2.text import (_AFTER_SYNAPSES, _BEFORE_SYNAPSES, _CONSTANTS, _RUNTIME, _first_line, _value_of, quantity_text)
from neurodeploy.spec.units import (Dimension)


_STATEMENT_OPS = ("=", "+=", "-=", "*=", "/=")


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


_ALLOWED_FUNCS = ("exp", "log", "sqrt", "Abs", "Heaviside")


class Parsing:
    """The importer's parsing (a part of :class:`neurodeploy.importers.brian2._Importer`)."""

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
