"""Parse user expressions into sympy through an ``ast`` whitelist.

Nothing the user writes reaches ``eval``, ``exec`` or ``sympify``: the text is
parsed by :func:`ast.parse` in ``eval`` mode and every node is rendered by a
``render_<Node>`` method; a node without such a method is refused. sympy
objects are built directly from the rendered children.

Allowed: numbers, names declared by the rule, ``+ - * / **`` (the exponent a
number literal of magnitude <= :data:`MAX_EXPONENT`), unary ``+``/``-`` and
calls of the functions in :data:`FUNCTIONS` by name.
"""
from __future__ import annotations

import ast
import math
from typing import Mapping

import sympy

from neurodeploy.errors import NeurodeployError

#: Longest expression accepted, in characters.
MAX_LENGTH = 2000
#: Deepest nesting of parentheses accepted.
MAX_DEPTH = 64
#: Deepest expression tree accepted (a flat sum of n terms is n deep).
MAX_TREE_DEPTH = 300
#: Largest exponent magnitude in ``a ** n``.
MAX_EXPONENT = 16

#: Functions a rule may call; a Lava target may still refuse them.
FUNCTIONS = {
    "exp": sympy.exp,
    "log": sympy.log,
    "sqrt": sympy.sqrt,
    "abs": sympy.Abs,
}


class _Refused(Exception):
    pass


class _Renderer:
    def __init__(self, names: Mapping[str, sympy.Symbol]):
        self.names = names

    def render(self, node: ast.AST, depth: int = 0) -> sympy.Expr:
        if depth > MAX_TREE_DEPTH:
            raise _Refused(f"more than {MAX_TREE_DEPTH} levels of operations")
        method = getattr(self, "render_" + type(node).__name__, None)
        if method is None:
            raise _Refused(f"{_describe(node)} is not allowed")
        return method(node, depth + 1)

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
        raise _Refused(f"unknown name '{node.id}' (known: {known})")

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
            if exponent is None:
                raise _Refused("exponent must be a number literal")
            if abs(exponent) > MAX_EXPONENT:
                raise _Refused(f"exponent {exponent} is larger than {MAX_EXPONENT} in magnitude")
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
            if right == 0:
                raise _Refused("division by zero")
            return left / right
        raise _Refused(f"operator '{_describe(op)}' is not allowed")

    def render_Call(self, node, depth):
        if not isinstance(node.func, ast.Name):
            raise _Refused(f"only {', '.join(sorted(FUNCTIONS))} may be called, by name ({_describe(node.func)} is not allowed)")
        name = node.func.id
        if name not in FUNCTIONS:
            raise _Refused(f"function '{name}' is not allowed (allowed: {', '.join(sorted(FUNCTIONS))})")
        if node.keywords or len(node.args) != 1:
            raise _Refused(f"function '{name}' takes exactly one argument")
        return FUNCTIONS[name](self.render(node.args[0], depth))


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


def parse_expression(text, names: Mapping[str, sympy.Symbol], source: str, field: str) -> sympy.Expr:
    """Parse ``text`` into a sympy expression over the symbols in ``names``.

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
        col = f" at column {exc.offset}" if exc.offset else ""
        raise NeurodeployError(source, field, f"invalid syntax{col} (got {text!r})") from None
    except (ValueError, MemoryError, RecursionError):
        raise NeurodeployError(source, field, f"cannot be parsed (got {text!r})") from None
    try:
        return _Renderer(names).render(tree)
    except _Refused as exc:
        raise NeurodeployError(source, field, f"{exc} (got {text!r})") from None
    except RecursionError:
        raise NeurodeployError(source, field, f"more than {MAX_TREE_DEPTH} levels of operations") from None
