"""Safe text for the emitted scripts: rule text only in escaped docstrings, comments and repr literals;
the rule header, the protocol constants and the functions both scripts share."""
from __future__ import annotations



from neurodeploy.brian2.model import (unit_text)
from neurodeploy.spec.ir import Rule
from neurodeploy.spec.units import _ALIASES, _QUANTITY, DIMENSIONLESS, Quantity, lookup_unit


#: The protocol the emitted scripts run when executed as scripts.
SCRIPT_PROTOCOL = {"n_pre": 10, "n_post": 10, "steps": 100, "rate": 10.0, "seed": 0}


#: A fixed-point trace at this value is saturated (7 bits).
TRACE_LIMIT = 127


def version() -> str:
    from neurodeploy.version import __version__
    return __version__


# -- safe text -------------------------------------------------------------------
def _python_expression(text: str, named: set) -> str | None:
    """``text`` (a parameter's definition, which the loader parsed with the rule language's whitelist)
    as Python for the script, when it is plain arithmetic of numbers and script variables (``named``);
    None otherwise (a function call, a name the script renames)."""
    import ast

    try:
        tree = ast.parse(" ".join(str(text).split()), mode="eval")
    except (SyntaxError, ValueError, RecursionError):
        return None
    allowed = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Constant, ast.Name, ast.Load, ast.Add, ast.Sub,
               ast.Mult, ast.Div, ast.Pow, ast.USub, ast.UAdd)
    for node in ast.walk(tree):
        if not isinstance(node, allowed) or (isinstance(node, ast.Name) and node.id not in named) or (
                isinstance(node, ast.Constant) and (isinstance(node.value, bool)
                                                    or not isinstance(node.value, (int, float)))):
            return None
    return ast.unparse(tree)


def _defined_first(parameters) -> list:
    """``parameters`` in file order, except that a parameter defined from others comes after them."""
    import re as _re

    names = {p.name for p in parameters}
    placed, order, pending = set(), [], list(parameters)
    while pending:
        progress = False
        for p in list(pending):
            needs = set(_re.findall(r"[A-Za-z_]\w*", p.expression or "")) & names - {p.name}
            if needs <= placed:
                order.append(p)
                placed.add(p.name)
                pending.remove(p)
                progress = True
        if not progress:  # cannot happen for a loaded rule (cycles are refused); keep file order
            return order + pending
    return order


def _clean(text) -> str:
    """``text`` without control characters other than newline and tab."""
    text = str(text).replace("\r\n", "\n").replace("\r", "\n")
    return "".join(c for c in text if c in "\n\t" or (c.isprintable() or c == " "))


def _doc(text) -> str:
    """``text`` made safe inside a triple-quoted (non-raw) docstring."""
    return _clean(text).replace("\\", "\\\\").replace('"""', '\\"\\"\\"')


def _comment(text, indent: str = "") -> list:
    """``text`` as ``# `` comment lines."""
    return [f"{indent}# {line}".rstrip() for line in _clean(text).split("\n")]


def _string_constant(name: str, text: str) -> list:
    """``NAME = '...'``, or one quoted line per line of a multi-line ``text``."""
    lines = text.split("\n")
    if len(lines) == 1:
        return [f"{name} = {text!r}"]
    return [f'{name} = "\\n".join(['] + [f"    {line!r}," for line in lines] + ["])"]


def _g(value: float) -> str:
    return f"{value:.6g}"


# -- Brian2 quantities as source ---------------------------------------------------
def _dim_source(dim) -> str:
    return f"get_or_create_dimension({list(int(d) if float(d).is_integer() else float(d) for d in dim._dims)!r})"


def _quantity_source(q: Quantity) -> tuple:
    """(Python expression, names to import from brian2.units) giving exactly ``q`` in Brian2."""
    if q.dim == DIMENSIONLESS:
        return repr(float(q.value)), set()
    match = _QUANTITY.match(q.text.split("=")[-1]) if q.text else None
    if match and match.group("unit"):
        unit_name = match.group("unit")
        unit = lookup_unit(unit_name)
        number = float(match.group("number"))
        if (unit is not None and unit_name not in _ALIASES and unit[1] == q.dim
                and float(number * unit[0]) == q.value):
            return f"{number!r} * {unit_name}", {unit_name}
    return f"Quantity({float(q.value)!r}, dim={_dim_source(q.dim)})", {"Quantity", "get_or_create_dimension"}


def _unit_name(dim) -> str:
    return unit_text(dim)


# -- rule text shared by both headers ----------------------------------------------
def _rule_lines(rule: Rule) -> list:
    wu = "" if rule.weight.dim == DIMENSIONLESS else f" ({_unit_name(rule.weight.dim)})"
    lines = ["Traces (exponential decay, jump at each spike of their neuron):"]
    for t in rule.traces:
        tau = t.tau_text or f"{_g(t.tau * 1e3)} ms"
        jump = t.jump_text or _g(t.jump)
        rest = f"({_g(t.rest)} - {t.name})" if t.rest else f"-{t.name}"
        if t.of == "synapse":
            event = f"{t.name} += {t.on_pre_text or 0} at each pre spike, += {t.on_post_text or 0} at each post spike"
        elif t.of == "reward":
            event = f"{t.name} += {jump} * reward every step"
        else:
            late = f" {_g(t.delay * 1e3)} ms after" if t.delay else " at"
            event = f"{t.name} += {jump}{late} each {t.of} spike"
        lines.append(f"    {t.name} ({t.of}): d{t.name}/dt = {rest} / tau_{t.name}, tau_{t.name} = {tau}; {event}")
    lo, hi = _g(rule.weight.w_min), _g(rule.weight.w_max)
    lines.append(f"Weight w{wu}, clipped to [{lo}, {hi}], initially {_g(rule.weight.w_init)}:")
    for side, text, expr in (("pre", rule.weight.on_pre_text, rule.weight.on_pre),
                             ("post", rule.weight.on_post_text, rule.weight.on_post)):
        lines.append(f"    at a {side} spike:  w = clip(w + ({text or expr}), {lo}, {hi})")
    if rule.weight.continuous != 0:
        lines.append(f"    every step dt:     w = clip(w + dt * ({rule.weight.continuous_text}), {lo}, {hi})")
    lines.append("The update reads the traces just before the spike's own jump. When a pre and a post")
    lines.append("spike fall in the same step, the pre update runs first.")
    if rule.parameters:
        lines.append("Parameters: " + ", ".join(f"{p.name} = {p.quantity.text}" for p in rule.parameters))
    lines.append(f"Time step dt = {_g(rule.dt * 1e3)} ms; learning epoch {rule.t_epoch} step(s).")
    return lines


def _header(rule: Rule, title: str) -> list:
    lines = [f"{rule.name} -- {title}, generated by neurodeploy {version()}.", "",
             f"Rule:      {rule.name} (from {rule.source or 'an in-memory rule'})"]
    if rule.description:
        desc = " ".join(rule.description.split())
        lines.append(f"About:     {desc}")
    if rule.citation:
        lines.append(f"Citation:  {' '.join(rule.citation.split())}")
    lines += ["", "The rule", "--------"] + _rule_lines(rule)
    return lines


def _protocol_constants(dt: float) -> list:
    p = SCRIPT_PROTOCOL
    return [
        "# -- time step and the input protocol run by main() ------------------------------",
        f"DT_SECONDS = {float(dt)!r}  # simulation time step, seconds",
        f"N_PRE, N_POST, STEPS = {p['n_pre']}, {p['n_post']}, {p['steps']}",
        f"RATE_HZ = {float(p['rate'])!r}  # Poisson rate of every neuron",
        f"SEED = {p['seed']}  # numpy.random.default_rng seed",
    ]


_POISSON_FUNCTION = '''\
def poisson_trains(n_pre=N_PRE, n_post=N_POST, steps=STEPS, rate_hz=RATE_HZ, seed=SEED):
    """Independent Bernoulli spikes, probability rate * dt per step.

    One generator: the pre raster (n_pre, steps) is drawn first, then the
    post raster (n_post, steps). Post spikes are imposed (no neuron model).
    """
    p = rate_hz * DT_SECONDS
    rng = np.random.default_rng(seed)
    pre = rng.random((n_pre, steps)) < p
    post = rng.random((n_post, steps)) < p
    return pre, post
'''


def _main_function(units: str) -> str:
    """The emitted scripts' entry point: 100 steps of Poisson input, print the final weights."""
    return f'''def main():
    pre, post = poisson_trains()
    w0 = np.full((N_POST, N_PRE), WEIGHT_INIT)
    trajectory = simulate(pre, post, w0)
    print(f"final weights after {{STEPS}} steps, (n_post, n_pre) = {{trajectory.shape[1:]}}{units}:")
    for row in trajectory[-1]:
        print(" ".join(f"{{value:.10g}}" for value in row))


if __name__ == "__main__":
    main()'''
