"""Parse user expressions into sympy through an ``ast`` whitelist.

Nothing the user writes reaches ``eval``, ``exec`` or ``sympify``: the text is
parsed by :func:`ast.parse` in ``eval`` mode and every node is rendered by a
``render_<Node>`` method; a node without such a method is refused. sympy
objects are built directly from the rendered children.

Allowed: numbers, names declared by the rule, ``+ - * / **`` (the exponent a
number literal of magnitude <= :data:`MAX_EXPONENT`, or one of the names the
caller allows as exponents: the rule's parameters), unary ``+``/``-`` and
calls of the functions in :data:`FUNCTIONS` by name. A Brian2 statement
(``w = clip(w + Apost, 0, wmax)``, ``Apre += dApre``) is refused with what to
write instead (:func:`brian2_hint`); an unknown name with the closest known one.
"""
from __future__ import annotations

import ast
import math
from typing import Mapping

import sympy

from neurodeploy.errors import NeurodeployError, did_you_mean
from neurodeploy.spec import FUNCTION_NAMES
from neurodeploy.spec.units import lookup_unit

#: Longest expression accepted, in characters.
MAX_LENGTH = 2000
#: Deepest nesting of parentheses accepted.
MAX_DEPTH = 64
#: Deepest expression tree accepted (a flat sum of n terms is n deep).
MAX_TREE_DEPTH = 300
#: Largest exponent magnitude in ``a ** n``.
MAX_EXPONENT = 16
#: Largest polynomial degree of an expression (``((x+1)**16)**16`` is 256).
MAX_DEGREE = 32
#: Largest magnitude of a constant (beyond it float arithmetic overflows).
MAX_MAGNITUDE = 1e300

#: Functions a rule may call; a Lava target may still refuse them.
FUNCTIONS = {
    "exp": sympy.exp,
    "log": sympy.log,
    "sqrt": sympy.sqrt,
    "abs": sympy.Abs,
    "heaviside": lambda a: sympy.Heaviside(a, 0),  # 1 where a > 0, else 0
}
if sorted(FUNCTIONS) != sorted(FUNCTION_NAMES):  # the loader reserves FUNCTION_NAMES without importing sympy
    raise ImportError("neurodeploy.spec.FUNCTION_NAMES and expr.FUNCTIONS disagree")


class _Refused(Exception):
    pass


class _Renderer:
    def __init__(self, names: Mapping[str, sympy.Symbol], exponents=()):
        self.names = names
        self.exponents = set(exponents)  # names that may be an exponent (parameters)

    def render(self, node: ast.AST, depth: int = 0) -> sympy.Expr:
        if depth > MAX_TREE_DEPTH:
            raise _Refused(f"more than {MAX_TREE_DEPTH} levels of operations")
        method = getattr(self, "render_" + type(node).__name__, None)
        if method is None:
            raise _Refused(f"{_describe(node)} is not allowed")
        result = method(node, depth + 1)
        if result.is_number:
            check_constant(result)
        if polynomial_degree(result) > MAX_DEGREE:
            raise _Refused(f"degree higher than {MAX_DEGREE}")
        return result

    def render_Expression(self, node, depth):
        return self.render(node.body, depth)

    def render_Constant(self, node, depth):
        value = node.value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _Refused(f"constant {value!r} is not a number")
        if isinstance(value, float) and not math.isfinite(value):
            raise _Refused(f"constant {value!r} is not finite")
        if isinstance(value, int):
            if abs(value) > 10**15:
                raise _Refused(f"integer {value} is too large")
            return sympy.Integer(value)
        return sympy.Float(value)

    def render_Name(self, node, depth):
        if node.id in self.names:
            return self.names[node.id]
        if node.id in FUNCTIONS:
            raise _Refused(f"function '{node.id}' must be called")
        known = ", ".join(sorted(self.names))
        hint = did_you_mean(node.id, self.names)
        if not hint and lookup_unit(node.id) is not None:  # 2 * ms: units belong to quantities
            hint = f", a unit: a unit follows a number, as in '2 {node.id}'"
        raise _Refused(f"unknown name '{node.id}'{hint} (known: {known})")

    def render_UnaryOp(self, node, depth):
        operand = self.render(node.operand, depth)
        if isinstance(node.op, ast.USub):
            return -operand
        if isinstance(node.op, ast.UAdd):
            return operand
        raise _Refused(f"operator '{_describe(node.op)}' is not allowed")

    def render_BinOp(self, node, depth):
        op = node.op
        if isinstance(op, ast.Pow):
            base = self.render(node.left, depth)
            exponent = _literal_number(node.right)
            if exponent is None and isinstance(node.right, ast.Name) and node.right.id in self.exponents \
                    and node.right.id in self.names:
                return sympy.Pow(base, self.names[node.right.id])  # units: spec.units.dimensions_of
            if exponent is None:
                raise _Refused("exponent must be a number or a parameter" if self.exponents
                               else "exponent must be a number literal")
            if abs(exponent) > MAX_EXPONENT:
                raise _Refused(f"exponent {exponent} is larger than {MAX_EXPONENT} in magnitude")
            if base.is_number:  # estimate before sympy computes it exactly
                check_constant(base)
                size = abs(float(base))
                if size == 0 and exponent < 0:
                    raise _Refused("division by zero")
                if size > 0 and abs(exponent * math.log10(size)) > math.log10(MAX_MAGNITUDE):
                    raise _Refused(f"constant larger than {MAX_MAGNITUDE:g}")
            if polynomial_degree(base) * abs(exponent) > MAX_DEGREE:
                raise _Refused(f"degree higher than {MAX_DEGREE}")
            return sympy.Pow(base, sympy.nsimplify(exponent))
        left = self.render(node.left, depth)
        right = self.render(node.right, depth)
        if isinstance(op, ast.Add):
            return left + right
        if isinstance(op, ast.Sub):
            return left - right
        if isinstance(op, ast.Mult):
            return left * right
        if isinstance(op, ast.Div):
            if right.is_zero:
                raise _Refused("division by zero")
            return left / right
        raise _Refused(f"operator '{_describe(op)}' is not allowed")

    def render_Call(self, node, depth):
        if not isinstance(node.func, ast.Name):
            raise _Refused(f"only {', '.join(sorted(FUNCTIONS))} may be called, by name ({_describe(node.func)} is not allowed)")
        name = node.func.id
        if name == "clip":
            raise _Refused("clip() is Brian2's; write only the change, bounds go in weight.bounds")
        if name not in FUNCTIONS:
            raise _Refused(f"function '{name}' is not allowed (allowed: {', '.join(sorted(FUNCTIONS))})")
        if node.keywords or len(node.args) != 1:
            raise _Refused(f"function '{name}' takes exactly one argument")
        argument = self.render(node.args[0], depth)
        if argument.is_number and name in ("exp",) and abs(float(argument)) > math.log(MAX_MAGNITUDE):
            raise _Refused(f"constant larger than {MAX_MAGNITUDE:g}")
        if argument.is_number and name in ("log", "sqrt") and float(argument) <= (0 if name == "log" else -1e-300):
            raise _Refused(f"{name}() of {argument} is not a finite real number")
        return FUNCTIONS[name](argument)


_DESCRIPTIONS = {
    ast.Attribute: "attribute access",
    ast.Subscript: "subscript",
    ast.Lambda: "lambda",
    ast.ListComp: "comprehension",
    ast.SetComp: "comprehension",
    ast.DictComp: "comprehension",
    ast.GeneratorExp: "comprehension",
    ast.Compare: "comparison",
    ast.BoolOp: "boolean operator",
    ast.IfExp: "conditional expression",
    ast.NamedExpr: "assignment",
    ast.Starred: "starred expression",
    ast.JoinedStr: "string",
    ast.List: "list",
    ast.Tuple: "tuple",
    ast.Dict: "dict",
    ast.Set: "set",
    ast.Mod: "%",
    ast.FloorDiv: "//",
    ast.MatMult: "@",
    ast.BitAnd: "&",
    ast.BitOr: "|",
    ast.BitXor: "^",
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.Invert: "~",
    ast.Not: "not",
}


def _describe(node: ast.AST) -> str:
    return _DESCRIPTIONS.get(type(node), type(node).__name__)


def check_constant(value: sympy.Expr) -> None:
    """Refuse a constant that is not a finite real number of magnitude <= MAX_MAGNITUDE."""
    if value.has(sympy.zoo, sympy.oo, -sympy.oo, sympy.nan) or not value.is_real:
        raise _Refused(f"{value} is not a finite real number")
    try:
        number = float(value)
    except (OverflowError, TypeError, ValueError):
        raise _Refused(f"constant larger than {MAX_MAGNITUDE:g}") from None
    if not math.isfinite(number) or abs(number) > MAX_MAGNITUDE:
        raise _Refused(f"constant larger than {MAX_MAGNITUDE:g}")


def polynomial_degree(expr: sympy.Expr) -> float:
    """An upper bound of the polynomial degree of ``expr`` in its symbols (functions count 1)."""
    if expr.is_Symbol:
        return 1
    if expr.is_number:
        return 0
    if expr.is_Add:
        return max(polynomial_degree(a) for a in expr.args)
    if expr.is_Mul:
        return sum(polynomial_degree(a) for a in expr.args)
    if expr.is_Pow:
        exponent = expr.exp
        return polynomial_degree(expr.base) * (abs(float(exponent)) if exponent.is_number else 1)
    return 1


def _literal_number(node: ast.AST):
    sign = 1
    while isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        if isinstance(node.op, ast.USub):
            sign = -sign
        node = node.operand
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) \
            and not isinstance(node.value, bool) and math.isfinite(node.value):
        return sign * node.value
    return None


def parse_expression(text, names: Mapping[str, sympy.Symbol], source: str, field: str,
                     exponents=(), target: str | None = None) -> sympy.Expr:
    """Parse ``text`` into a sympy expression over the symbols in ``names``.

    ``exponents``: the names that may be an exponent (``w ** mu``); ``target``: what the field
    changes (``w``, a trace's name), for the hint on a Brian2 statement.
    Raises :class:`NeurodeployError` ``source: field: <problem>`` for anything
    outside the whitelist.
    """
    if isinstance(text, bool) or not isinstance(text, (str, int, float)):
        raise NeurodeployError(source, field, f"must be an expression (got {type(text).__name__})")
    if not isinstance(text, str):
        text = repr(text)
    if len(text) > MAX_LENGTH:
        raise NeurodeployError(source, field, f"expression longer than {MAX_LENGTH} characters")
    depth = 0
    for char in text:
        depth += char == "("
        depth -= char == ")"
        if depth > MAX_DEPTH:
            raise NeurodeployError(source, field, f"nested deeper than {MAX_DEPTH} levels")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        hint = brian2_hint(text, target)
        if hint:
            raise NeurodeployError(source, field, f"{hint} (got {text!r})") from None
        col = f" at column {exc.offset}" if exc.offset else ""
        raise NeurodeployError(source, field, f"invalid syntax{col} (got {text!r})") from None
    except (ValueError, MemoryError, RecursionError):
        raise NeurodeployError(source, field, f"cannot be parsed (got {text!r})") from None
    try:
        return _Renderer(names, exponents).render(tree)
    except _Refused as exc:
        raise NeurodeployError(source, field, f"{exc} (got {text!r})") from None
    except RecursionError:
        raise NeurodeployError(source, field, f"more than {MAX_TREE_DEPTH} levels of operations") from None


def brian2_hint(text: str, target: str | None) -> str | None:
    """What to write instead of the Brian2 statements ``text`` (``w = clip(w + Apost, 0, wmax)``,
    ``w += Apost``, ``Apre += dApre``), or None when ``text`` is no assignment.

    ``target``: what the field changes (``w`` for ``weight.*``, the trace's name for its jump):
    the field holds only that change; bounds go in ``weight.bounds``, another trace's jump in
    ``traces.<name>.jump``."""
    try:
        tree = ast.parse("\n".join(part.strip() for part in text.strip().split(";")), mode="exec")
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None
    statements = tree.body
    if not statements or not all(isinstance(s, (ast.Assign, ast.AugAssign)) for s in statements):
        return None
    if target is None:  # a parameter's field: a value, not a statement
        value = ast.unparse(statements[0].value) if len(statements) == 1 and isinstance(statements[0], ast.Assign) \
            else ""
        return ("a statement; a parameter is a number, a quantity or an expression of other parameters"
                + (f" (write {value})" if value else ""))
    own, others, clipped = [], [], False
    for statement in statements:
        targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
        if len(targets) != 1 or not isinstance(targets[0], ast.Name):
            return None
        name = targets[0].id
        change, bounded = _change_of(statement, name)
        clipped = clipped or bounded
        (own if name == target else others).append((name, change))
    what = "the change of w" if target == "w" else f"the jump of {target}"
    parts = []
    if own:
        changes = [c for _, c in own]
        parts.append(f"write only {what}" + (f" ({changes[0]})" if len(changes) == 1 and changes[0] else ""))
    elif target is not None:
        parts.append(f"write only {what}")
    if clipped:
        parts.append("bounds go in weight.bounds")
    for name, change in others:
        if name == "w":
            parts.append("the change of w in weight.on_pre or weight.on_post" + (f" ({change})" if change else ""))
        else:
            parts.append(f"the jump of {name} in traces.{name}.jump" + (f" ({change})" if change else ""))
    return "a Brian2 statement; " + ", ".join(parts)


def _change_of(statement, name: str) -> tuple:
    """(the change the statement makes to ``name`` as text or "", whether it clips)."""
    if isinstance(statement, ast.AugAssign):
        if isinstance(statement.op, ast.Add):
            return ast.unparse(statement.value), False
        if isinstance(statement.op, ast.Sub):
            return f"-({ast.unparse(statement.value)})", False
        return "", False
    value, clipped = statement.value, False
    if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id == "clip" and value.args:
        value, clipped = value.args[0], True
    if isinstance(value, ast.BinOp) and isinstance(value.op, (ast.Add, ast.Sub)):
        left, right = value.left, value.right
        if isinstance(left, ast.Name) and left.id == name:
            text = ast.unparse(right)
            return (text if isinstance(value.op, ast.Add) else f"-({text})"), clipped
        if isinstance(right, ast.Name) and right.id == name and isinstance(value.op, ast.Add):
            return ast.unparse(left), clipped
    return "", clipped
