"""Read a rule file (YAML) into a :class:`~neurodeploy.spec.ir.Rule`.

The schema::

    name: stdp_pair                       # identifier
    description: ...                      # optional
    citation: ...                         # optional
    parameters: {A_plus: 0.01, tau_plus: 20 ms, ...}
    traces:
      x: {of: pre, tau: tau_plus, jump: 1}
      u: {of: pre, tau: tau_f, jump: U * (1 - u)}     # a jump may read its side's traces
      R: {of: pre, tau: tau_d, rest: 1, jump: -u * R} # relaxes to 1
      c_pre: {of: pre, tau: tau_ca, jump: C_pre, delay: 13.7 ms}
      c: {of: synapse, tau: tau_c, on_pre: -A_minus * y, on_post: A_plus * x}
      d: {of: reward, tau: tau_d, jump: 0.5}          # jumps by 0.5 * reward
    weight:
      on_pre:  -A_minus * y               # change of w at a pre spike
      on_post:  A_plus * x                # change of w at a post spike
      continuous: c * d                   # dw/dt, every step
      bounds: [w_min, w_max]
      init: w_init                        # default: middle of the bounds
    simulation: {dt: 1 ms, t_epoch: 1}    # optional

YAML anchors/aliases and duplicated keys are refused; every problem is a
:class:`NeurodeployError` ``<file>: <field>: <problem>``.
"""
from __future__ import annotations

import math
import os
import re

import yaml

from neurodeploy.errors import NeurodeployError, did_you_mean
from neurodeploy.spec.ir import KINDS, POST, PRE, REWARD, SYNAPSE, Parameter, Rule, Trace, WeightRule
from neurodeploy.spec import FUNCTION_NAMES
from neurodeploy.spec.units import (_QUANTITY, DIMENSIONLESS, SECOND, DimensionMismatch, Quantity, _check_range,
                                    dim_name, dimensions_of, parse_quantity)

#: Largest rule or plan file read, in bytes (a real rule is ~1 KB; PyYAML's
#: pure-Python loader needs ~1 s for a 64 KB list of numbers).
MAX_FILE_BYTES = 16 * 1024
#: Deepest nesting of YAML flow collections ``[`` / ``{`` accepted (PyYAML's
#: scanner is quadratic in it; a rule nests 2 deep).
MAX_FLOW_DEPTH = 32

_IDENT = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
#: Longest rule, parameter or trace name: rule names become file names.
MAX_NAME = 64
#: Words of the rule language itself: the weight and the functions. Every other identifier
#: means exactly the rule's value: generated Brian2 code prefixes each rule name
#: (:data:`neurodeploy.brian2.model.PREFIX`), so none can mean a Brian2 unit,
#: constant, function or group variable, and sympy symbols are built by name, never parsed.
RESERVED = {"w"} | set(FUNCTION_NAMES)
_TOP = ("name", "description", "citation", "parameters", "traces", "weight", "simulation")



class _StrictLoader(yaml.SafeLoader):
    """SafeLoader without aliases (no 'billion laughs') and without duplicate keys."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.constructor.ConstructorError(
                None, None, "anchors and aliases are not allowed", event.start_mark)
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicated = key in seen
                seen.add(key)
            except TypeError:
                raise yaml.constructor.ConstructorError(
                    None, None, "keys must be plain values", key_node.start_mark) from None
            if duplicated:
                raise yaml.constructor.ConstructorError(
                    None, None, "duplicated key", key_node.start_mark)
        return super().construct_mapping(node, deep=deep)


#: What PyYAML quotes in its messages that is grammar, not the file's content: token names
#: ('<block end>', '<scalar>') and the indicators (',', ']', ...).
_YAML_TOKEN = re.compile(r"<[a-z ]+>|[\],\[{}:?|>!&*#%@`\"'-]")


def yaml_problem(problem) -> str:
    """PyYAML's description of a syntax error without anything taken from the file.

    A YAML error never quotes the file: a tag, a key or a character of the file
    becomes a description (the line number says where), so that an error about a
    file that is not a rule (named by mistake, or by a hostile plan) cannot print
    part of it."""
    problem = str(problem or "")
    if problem.startswith("could not determine a constructor for the tag"):
        return "tags (!name) are not allowed"
    if problem.startswith("duplicated key"):
        return "duplicated key"

    def token(match):
        inner = match.group(1)
        return match.group(0) if _YAML_TOKEN.fullmatch(inner) else ""

    problem = re.sub(r"'((?:[^'\\]|\\.)*)'", token, problem)
    problem = re.sub(r"\s+", " ", problem).replace(" ,", ",").strip()
    return re.sub(r",? but (found|got)$", "", problem)


def read_yaml(path: str, source: str):
    """Parse the YAML file at ``path``; errors name ``source``."""
    if os.path.isdir(path):
        raise NeurodeployError(source, "", "is a directory, not a file")
    if not os.path.exists(path):
        raise NeurodeployError(source, "", "no such file")
    if not os.path.isfile(path):  # a device, a FIFO, a socket: reading could block or never end
        raise NeurodeployError(source, "", "not a regular file")
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise NeurodeployError(source, "", f"cannot be read ({exc.strerror or exc.__class__.__name__})") from None
    if len(raw) > MAX_FILE_BYTES:
        raise NeurodeployError(source, "", f"file too large (more than {MAX_FILE_BYTES} bytes)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise NeurodeployError(source, "", f"not UTF-8 text (byte {exc.start})") from None
    depth = deepest = 0
    for char in text:  # brackets inside quoted strings count too: harmless at this limit
        if char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    if deepest > MAX_FLOW_DEPTH:
        raise NeurodeployError(source, "", f"invalid YAML: brackets nested deeper than {MAX_FLOW_DEPTH} levels")
    return parse_yaml(text, source, _StrictLoader), text


def parse_yaml(text: str, source: str, loader):
    """``text`` parsed with ``loader`` (a SafeLoader subclass); every problem one line naming ``source``."""
    import yaml

    try:
        return yaml.load(text, Loader=loader)  # noqa: S506 - SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}" if mark else ""
        raise NeurodeployError(source, "", f"invalid YAML{where}: {yaml_problem(exc.problem or exc.context)}") from None
    except (yaml.YAMLError, RecursionError):
        raise NeurodeployError(source, "", "invalid YAML") from None
    except ValueError as exc:  # e.g. an integer longer than Python converts
        reason = "a number has too many digits" if "digits" in str(exc) else "a value cannot be converted"
        raise NeurodeployError(source, "", f"invalid YAML: {reason}") from None


def load_rule(path: str) -> Rule:
    """Load and validate the rule file at ``path``."""
    source = os.path.basename(os.fspath(path)) or os.fspath(path)
    data, text = read_yaml(path, source)
    if data is None:
        raise NeurodeployError(source, "", "file is empty")
    return rule_from_dict(data, source, text)


def _mapping(value, source, field, required=True):
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        raise NeurodeployError(source, field, f"must be a mapping (got {type(value).__name__})")
    return value


def _check_keys(mapping, allowed, source, prefix):
    for key in mapping:
        if key not in allowed:
            where = f"{prefix}.{key}" if prefix else str(key)
            raise NeurodeployError(source, where, f"unknown field{did_you_mean(str(key), allowed)} (allowed: {', '.join(allowed)})")


def _identifier(name, source, field):
    if not isinstance(name, str) or not _IDENT.match(name):
        raise NeurodeployError(source, field, f"must be an identifier such as 'tau_plus' (got {name!r})")
    if len(name) > MAX_NAME:
        raise NeurodeployError(source, field, f"must be at most {MAX_NAME} characters (got {len(name)})")
    if name in RESERVED:
        raise NeurodeployError(source, field, f"'{name}' is reserved (reserved: {', '.join(sorted(RESERVED))})")
    if name.endswith(("_pre", "_post")):
        raise NeurodeployError(source, field, f"names ending in _pre or _post are reserved by Brian2 (got {name!r})")
    if name.startswith("nd_"):
        raise NeurodeployError(source, field, f"names starting with nd_ are reserved for generated code (got {name!r})")
    return name


def _text(value, source, field):
    if value is None:
        return ""
    if not isinstance(value, str):
        raise NeurodeployError(source, field, f"must be text (got {type(value).__name__})")
    return value.strip()


def rule_from_dict(data, source: str, text: str = "") -> Rule:
    """Validate the parsed YAML ``data`` of ``source`` and build the IR."""
    import sympy

    from neurodeploy.spec.expr import parse_expression
    data = _mapping(data, source, "")
    _check_keys(data, _TOP, source, "")
    for required in ("name", "traces", "weight"):
        if required not in data:
            raise NeurodeployError(source, required, "missing")
    name = data["name"]
    if not isinstance(name, str) or not _IDENT.match(name):
        raise NeurodeployError(source, "name", f"must be an identifier such as 'stdp_pair' (got {name!r})")
    if len(name) > MAX_NAME:
        raise NeurodeployError(source, "name", f"must be at most {MAX_NAME} characters: it names the generated "
                                               f"files (got {len(name)})")

    # parameters -------------------------------------------------------------
    traces_given = data.get("traces") if isinstance(data.get("traces"), dict) else {}
    params = _parameters(_mapping(data.get("parameters"), source, "parameters", required=False),
                         [t for t in traces_given if isinstance(t, str)], source)

    def quantity(raw, field):
        if isinstance(raw, str) and raw.strip() in params:
            q = params[raw.strip()].quantity
            return Quantity(q.value, q.dim, f"{raw.strip()} = {q.text}")
        if isinstance(raw, str) and raw.strip().isidentifier() and did_you_mean(raw.strip(), params):
            raise NeurodeployError(source, field, f"unknown parameter '{raw.strip()}'"
                                                  f"{did_you_mean(raw.strip(), params)} (got {raw!r})")
        return parse_quantity(raw, source, field)

    param_symbols = {p: sympy.Symbol(p, real=True) for p in params}
    param_dims = {p: params[p].quantity.dim for p in params}

    def parsed(raw, field, symbols, dims, target=None):
        """(sympy expression, its unit) of ``raw`` over ``symbols``; a unit clash names ``field``."""
        expr = parse_expression(raw, symbols, source, field, exponents=params, target=target)
        try:
            return expr, dimensions_of(expr, dims)
        except DimensionMismatch as exc:
            raise NeurodeployError(source, field, f"{exc} (got {raw!r})") from None

    def constant(raw, field, target=None):
        """A value given as a number, a quantity or an expression of parameters (``target``: the trace
        whose jump it is, for the hint on a Brian2 statement)."""
        if isinstance(raw, (int, float)) and not isinstance(raw, bool) or (isinstance(raw, str) and _looks_quantity(raw)):
            return parse_quantity(raw, source, field)
        expr, dim = parsed(raw, field, param_symbols, param_dims, target=target)
        try:
            value = expr.xreplace({param_symbols[p]: sympy.Float(params[p].value) for p in params})
        except (OverflowError, ValueError, ZeroDivisionError):
            raise NeurodeployError(source, field, f"must be a finite real constant (got {raw!r})") from None
        if not value.is_number:
            raise NeurodeployError(source, field, f"must be a constant (got {raw!r})")
        try:
            number = float(value)
        except (TypeError, ValueError, OverflowError):
            raise NeurodeployError(source, field, f"must be a finite real constant (got {raw!r})") from None
        if not math.isfinite(number) or abs(number) > 1e300:
            raise NeurodeployError(source, field, f"must be a finite real constant (got {raw!r})")
        return Quantity(number, dim, str(raw))

    # traces -----------------------------------------------------------------
    traces_raw = _mapping(data["traces"], source, "traces")
    kinds = {}
    for tname, spec in traces_raw.items():
        where = f"traces.{tname}"
        _identifier(tname, source, where)
        if tname in params:
            raise NeurodeployError(source, where, f"'{tname}' is already a parameter")
        spec = _mapping(spec, source, where)
        _check_keys(spec, _TRACE_KEYS, source, where)
        for key in ("of", "tau"):
            if key not in spec:
                raise NeurodeployError(source, f"{where}.{key}", "missing")
        if spec["of"] not in KINDS:
            raise NeurodeployError(source, f"{where}.of", f"must be one of {', '.join(KINDS)}{did_you_mean(spec['of'], KINDS)} (got {spec['of']!r})")
        kinds[tname] = spec["of"]
        allowed = _TRACE_KEYS_OF[spec["of"]]
        for key in spec:
            if key not in allowed:
                raise NeurodeployError(source, f"{where}.{key}", f"not a field of a {spec['of']} trace"
                                                                 f"{did_you_mean(key, allowed)} (allowed: {', '.join(allowed)})")
    trace_symbols = {t: sympy.Symbol(t, real=True) for t in kinds}
    w_symbol = sympy.Symbol("w", real=True)

    weight = _mapping(data["weight"], source, "weight")
    _check_keys(weight, ("on_pre", "on_post", "continuous", "bounds", "init"), source, "weight")
    if "bounds" not in weight:
        raise NeurodeployError(source, "weight.bounds", "missing")
    bounds = weight["bounds"]
    if not isinstance(bounds, list) or len(bounds) != 2:
        raise NeurodeployError(source, "weight.bounds", f"must be a list [lower, upper] (got {bounds!r})")
    lo = quantity(bounds[0], "weight.bounds")
    hi = quantity(bounds[1], "weight.bounds")
    if lo.dim != hi.dim:
        raise NeurodeployError(source, "weight.bounds", f"bounds have different units ({dim_name(lo.dim)} and {dim_name(hi.dim)})")
    w_dim = lo.dim

    def expression(raw, field, names, dims, want=None, what="of w", target="w"):
        """Parse ``raw`` over ``names``; check it is finite and (if ``want``) has that unit."""
        symbols = dict(param_symbols)
        symbols.update({n: trace_symbols.get(n, w_symbol) for n in names})
        expr, dim = parsed(raw, field, symbols, dims, target)
        try:
            numeric = expr.xreplace({param_symbols[p]: sympy.Float(params[p].value) for p in params})
            finite = _finite_everywhere(numeric)
        except (OverflowError, ValueError, ZeroDivisionError, TypeError):
            finite = False
        if not finite:
            raise NeurodeployError(source, field, f"has no finite real value with these parameters (got {raw!r})")
        if want is not None and expr != 0 and dim != want:
            raise NeurodeployError(source, field, f"must have the unit {what}, {dim_name(want)} (got {dim_name(dim)} from {raw!r})")
        return expr, dim

    # units of the traces: that of `rest` if given, else that of a constant jump,
    # else dimensionless (a state-dependent jump must then agree)
    dims = dict(param_dims)
    for tname, spec in traces_raw.items():
        if "rest" in spec:
            dims[tname] = quantity(spec["rest"], f"traces.{tname}.rest").dim
        elif spec["of"] != SYNAPSE and not _reads_traces(spec.get("jump", 1), kinds):
            dims[tname] = constant(spec.get("jump", 1), f"traces.{tname}.jump", tname).dim
        else:
            dims[tname] = None
    dims["w"] = w_dim
    for tname in kinds:  # synapse traces: unit of their increments, read over the others
        if dims[tname] is None and kinds[tname] == SYNAPSE:
            known = {k: v for k, v in dims.items() if v is not None}
            for key in ("on_pre", "on_post"):
                raw = traces_raw[tname].get(key)
                if raw is not None:
                    try:
                        dims[tname] = dimensions_of(parse_expression(raw, {**param_symbols, **trace_symbols, "w": w_symbol},
                                                                     source, f"traces.{tname}.{key}"),
                                                    {**known, tname: DIMENSIONLESS})
                    except (DimensionMismatch, KeyError):
                        continue
                    break
    dims = {k: (DIMENSIONLESS if v is None else v) for k, v in dims.items()}

    traces = []
    for tname, spec in traces_raw.items():
        where = f"traces.{tname}"
        kind = kinds[tname]
        tau = quantity(spec["tau"], f"{where}.tau")
        if tau.dim != SECOND:
            raise NeurodeployError(source, f"{where}.tau", f"must be a time (got {tau.text}, {dim_name(tau.dim)})")
        extra = {}
        if "rest" in spec:
            rest = quantity(spec["rest"], f"{where}.rest")
            extra["rest"], extra["rest_text"] = rest.value, rest.text
        if "delay" in spec:
            delay = quantity(spec["delay"], f"{where}.delay")
            if delay.dim != SECOND:
                raise NeurodeployError(source, f"{where}.delay", f"must be a time (got {delay.text}, {dim_name(delay.dim)})")
            extra["delay"], extra["delay_text"] = delay.value, delay.text
        jump_value, jump_text = 0.0, ""
        if kind == SYNAPSE:
            for key in ("on_pre", "on_post"):
                if key in spec:
                    expr, _ = expression(spec[key], f"{where}.{key}", list(kinds) + ["w"], dims, dims[tname], f"of {tname}",
                                         tname)
                    extra[key], extra[f"{key}_text"] = expr, str(spec[key])
        else:
            raw = spec.get("jump", 1)
            if _reads_traces(raw, kinds):
                side = [n for n, k in kinds.items() if k == kind]
                if kind == REWARD:
                    raise NeurodeployError(source, f"{where}.jump", f"must be a constant: a reward trace jumps by jump * reward (got {raw!r})")
                expr, _ = expression(raw, f"{where}.jump", list(kinds), dims, dims[tname], f"of {tname}", tname)
                _reads_only(expr, side, kinds, source, f"{where}.jump", f"may read only {kind}synaptic traces")
                extra["jump_expr"] = expr
                jump_text = str(raw)
            else:
                jump = constant(raw, f"{where}.jump", tname)
                if jump.dim != dims[tname] and "rest" in spec:
                    raise NeurodeployError(source, f"{where}.rest",
                                           f"must have the unit of the jump, {dim_name(jump.dim)} (got {spec['rest']})")
                if jump.dim != dims[tname]:
                    raise NeurodeployError(source, f"{where}.jump", f"must have the unit of {tname}, {dim_name(dims[tname])} (got {jump.text})")
                jump_value, jump_text = jump.value, jump.text
        try:
            traces.append(Trace(tname, kind, tau.value, jump_value, tau.text, jump_text, dims[tname], **extra))
        except NeurodeployError as exc:
            raise exc.with_source(source) from None

    # weight -----------------------------------------------------------------
    if "init" in weight:
        init = quantity(weight["init"], "weight.init")
        if init.dim != w_dim:
            raise NeurodeployError(source, "weight.init", f"must have the unit of the bounds, {dim_name(w_dim)} (got {init.text})")
        w_init, init_text = init.value, init.text
    else:
        init_text = ""
        w_init = 0.5 * (lo.value + hi.value)

    updates = {}
    names = list(kinds) + ["w"]
    for key in ("on_pre", "on_post", "continuous"):
        raw = weight.get(key, 0)
        want, what = (w_dim, "of w") if key != "continuous" else (w_dim / SECOND, "of w per second")
        expr, _ = expression(raw, f"weight.{key}", names, dims, want, what)
        updates[key] = (expr, str(raw))
    if all(updates[k][0] == 0 for k in updates):
        raise NeurodeployError(source, "weight", "needs on_pre, on_post or continuous")

    # simulation -------------------------------------------------------------
    sim = _mapping(data.get("simulation"), source, "simulation", required=False)
    _check_keys(sim, ("dt", "t_epoch"), source, "simulation")
    dt = 1e-3
    if "dt" in sim:
        dtq = parse_quantity(sim["dt"], source, "simulation.dt")
        if dtq.dim != SECOND:
            raise NeurodeployError(source, "simulation.dt", f"must be a time (got {dtq.text})")
        dt = dtq.value
    try:
        return Rule(
            name=name,
            source=source,
            parameters=tuple(params.values()),
            traces=tuple(traces),
            weight=WeightRule(updates["on_pre"][0], updates["on_post"][0], lo.value, hi.value, w_init,
                              updates["on_pre"][1], updates["on_post"][1], w_dim,
                              updates["continuous"][0], updates["continuous"][1], (lo.text, hi.text), init_text),
            dt=dt,
            t_epoch=sim.get("t_epoch", 1),
            description=_text(data.get("description"), source, "description"),
            citation=_text(data.get("citation"), source, "citation"),
            text=text,
        )
    except NeurodeployError as exc:
        raise exc.with_source(source) from None


def _parameters(raw_params: dict, trace_names: list, source: str) -> dict:
    """Name -> :class:`Parameter`: a number or quantity (``20 ms``) as written, or an expression of
    other parameters (``-A_plus * tau_plus / tau_minus * 1.05``) in any order, evaluated with its unit.

    Refused: a cycle (named), a reference to a trace or ``w``, an unknown name, a unit clash and a
    result that is not a finite real number within the magnitudes a quantity may have."""
    import sympy

    from neurodeploy.spec.expr import parse_expression

    given, texts = {}, {}
    for pname, raw in raw_params.items():
        _identifier(pname, source, f"parameters.{pname}")
        if isinstance(raw, str) and not _QUANTITY.match(raw):
            texts[pname] = raw.strip()
        else:
            given[pname] = parse_quantity(raw, source, f"parameters.{pname}")
    if not texts:
        return {p: Parameter(p, q) for p, q in given.items()}
    symbols = {p: sympy.Symbol(p, real=True) for p in raw_params}
    order = list(raw_params)
    needs = {}  # the parameters each expression names, from its words: cycles are found before any parsing
    for pname, text in texts.items():
        field = f"parameters.{pname}"
        words = _WORD.findall(text)
        for name in words:
            if name == "w":
                raise NeurodeployError(source, field, f"must be a constant: 'w' is the weight (got {text!r})")
            if name in trace_names and name not in symbols:
                raise NeurodeployError(source, field, f"must be a constant: '{name}' is a trace (got {text!r})")
        needs[pname] = sorted({n for n in words if n in symbols}, key=order.index)

    ordered = []  # derived parameters, each after those it reads (depth first, in file order, no recursion)
    done = set(given)
    for first in texts:
        if first in done:
            continue
        stack, path = [(first, iter(needs[first]))], [first]
        while stack:
            pname, pending = stack[-1]
            name = next(pending, None)
            if name is None:
                ordered.append(pname)
                done.add(pname)
                stack.pop()
                path.pop()
            elif name in path:
                cycle = path[path.index(name):] + [name]
                raise NeurodeployError(source, f"parameters.{cycle[0]}",
                                       f"defined in a cycle: {' -> '.join(cycle)} (got {texts[cycle[0]]!r})")
            elif name not in done:
                stack.append((name, iter(needs[name])))
                path.append(name)

    exprs = {p: parse_expression(texts[p], symbols, source, f"parameters.{p}", exponents=symbols) for p in texts}
    values = dict(given)
    for pname in ordered:
        field, text, reads = f"parameters.{pname}", texts[pname], needs[pname]
        try:
            dim = dimensions_of(exprs[pname], {n: values[n].dim for n in reads})
        except DimensionMismatch as exc:
            raise NeurodeployError(source, field, f"{exc} (got {text!r})") from None
        try:
            value = exprs[pname].xreplace({symbols[n]: sympy.Float(values[n].value) for n in reads})
            number = float(value) if value.is_number and value.is_real is not False else math.nan
        except (OverflowError, TypeError, ValueError, ZeroDivisionError):
            number = math.nan
        if not math.isfinite(number) or value.has(sympy.zoo, sympy.oo, -sympy.oo, sympy.nan, sympy.I):
            raise NeurodeployError(source, field, f"is not a finite real number with these parameters (got {text!r})")
        _check_range(number, source, field, repr(text))
        values[pname] = Quantity(number, dim, text)
    return {p: Parameter(p, values[p], texts.get(p, "")) for p in raw_params}


_TRACE_KEYS = ("of", "tau", "jump", "rest", "delay", "on_pre", "on_post")
_TRACE_KEYS_OF = {
    PRE: ("of", "tau", "jump", "rest", "delay"),
    POST: ("of", "tau", "jump", "rest", "delay"),
    REWARD: ("of", "tau", "jump", "rest"),
    SYNAPSE: ("of", "tau", "rest", "on_pre", "on_post"),
}
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
#: A name in an expression (not the exponent letter of a number such as 1e-3).
_WORD = re.compile(r"(?<![\w.])[A-Za-z_]\w*")


def _reads_traces(raw, kinds) -> bool:
    """Does the (unparsed) jump text name a trace?"""
    return isinstance(raw, str) and any(name in kinds for name in _NAME.findall(raw))


def _reads_only(expr, allowed, kinds, source, field, message):
    for symbol in expr.free_symbols:
        if symbol.name in kinds and symbol.name not in allowed:
            raise NeurodeployError(source, field, f"{message} ('{symbol.name}' is a {kinds[symbol.name]} trace)")


def _finite_everywhere(expr) -> bool:
    """No infinite, complex or overflowing constant anywhere in ``expr`` (parameters substituted)."""
    import sympy

    if expr.has(sympy.zoo, sympy.oo, -sympy.oo, sympy.nan, sympy.I):
        return False
    for sub in sympy.preorder_traversal(expr):
        if sub.is_number:
            try:
                value = float(sub)
            except (OverflowError, TypeError, ValueError):
                return False
            if not math.isfinite(value) or abs(value) > 1e300:
                return False
    return True


_NUMBER_UNIT = re.compile(r"^\s*[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?\s*[A-Za-z]*\s*$")


def _looks_quantity(raw: str) -> bool:
    """'20 ms', '1', '0.5' are quantities; 'A_plus * 2' is an expression."""
    return bool(_NUMBER_UNIT.match(raw)) and not raw.strip().isidentifier()
