"""The rule file: its YAML schema, expression parser and unit handling.

Loading a file imports sympy only once its YAML is read and its structure checked, so a file
refused for its YAML is refused without the ~0.5 s sympy import."""

#: The functions a rule's expressions may call (``neurodeploy.spec.expr.FUNCTIONS`` implements them).
FUNCTION_NAMES = ("abs", "exp", "heaviside", "log", "sqrt")
