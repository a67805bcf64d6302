"""Property tests (issue 6): the expression parser and the rule loader never fail with anything
but :class:`NeurodeployError`, whatever they are given.

(a) ``parse_expression`` on arbitrary text and on grammar-generated expressions (nested
    arithmetic over the known names, numbers, calls, and operators that are not allowed);
(b) ``rule_from_dict`` on arbitrary YAML-like data and on the good ``stdp_pair`` rule with one
    field replaced, deleted or added;
(c) ``load_rule`` on arbitrary bytes and on the good rule file with bytes flipped.

Every example runs under a time budget (SIGALRM): taking longer counts as a failure ("hang"),
like an exception other than NeurodeployError ("crash"). Settings are fixed (``derandomize``,
no example database) so CI sees the same examples every time. The number of examples run per
test is printed at the end of the module (shown even without ``-s``).

A refusal must be a one-line message without control or format characters and at most
:data:`MAX_MESSAGE` characters long (the source, the field and the problem are each capped).

There are no known bugs left: every failure fails the test. (Former bugs -- nested exp of a float,
x / 0.0, integers beyond float range, names with line breaks printed raw -- have a regression test
each at the end of the module.) If a new bug must be tolerated for a while, recognise its examples
in :func:`check` and count them in ``KNOWN_HITS`` (printed at the end), and add a strict-xfail test
with a minimal example.
"""
from __future__ import annotations

import collections
import math
import signal
import unicodedata

import pytest
import sympy
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from neurodeploy.errors import NeurodeployError
from neurodeploy.spec.ir import Rule
from neurodeploy.spec.expr import parse_expression
from neurodeploy.spec.loader import load_rule, read_yaml, rule_from_dict

from conftest import GOOD_RULE_TEXT as GOOD_TEXT  # noqa: E402
GOOD_BYTES = GOOD_TEXT.encode()
GOOD = yaml.safe_load(GOOD_TEXT)

#: Seconds one example may take before it counts as a hang.
BUDGET = 3.0

SETTINGS = dict(deadline=None, derandomize=True, database=None, print_blob=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large, HealthCheck.filter_too_much])

#: Longest message of a NeurodeployError: source (200) + field (200) + problem (600) + 2 separators.
MAX_MESSAGE = 200 + 200 + 600 + 2 * len(": ")

#: Examples run, by test; known-bug hits, by signature (none today).
EXAMPLES = collections.Counter()
OUTCOMES = collections.Counter()
KNOWN_HITS = collections.Counter()


# --- running one example -----------------------------------------------------------------------

class _OverBudget(BaseException):
    """Raised by SIGALRM; a BaseException so that no ``except Exception`` in sympy swallows it."""


def _alarm(signum, frame):
    raise _OverBudget()


def outcome(function, *args):
    """('ok', value) | ('refused', NeurodeployError) | ('crash', exception) | ('hang', None)."""
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, BUDGET)
    try:
        return "ok", function(*args)
    except NeurodeployError as exc:
        return "refused", exc
    except _OverBudget:
        return "hang", None
    except RecursionError as exc:  # a RecursionError is an Exception: report it like any crash
        return "crash", exc
    except Exception as exc:  # noqa: BLE001 - the property is about exactly this
        return "crash", exc
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def check(test, kind, value, text=None, expect_type=None):
    """Count the outcome of one example; fail on a crash, a hang, or a refusal whose message is bad.
    ``text`` is the input as text, for the failure message."""
    EXAMPLES[test] += 1
    OUTCOMES[(test, kind)] += 1
    if kind in ("ok", "refused"):
        if kind == "ok" and expect_type is not None:
            assert isinstance(value, expect_type), f"returned {type(value).__name__}: {value!r}"[:500]
        if kind == "refused":
            message = str(value)
            assert message, "empty message"
            bad = sorted({hex(ord(c)) for c in message if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp")})
            assert not bad, f"control characters {bad} in {message[:500]!r}"
            assert len(message.splitlines()) == 1, f"message spans several lines: {message[:500]!r}"
            assert len(message) <= MAX_MESSAGE, f"message of {len(message)} characters: {message[:300]!r}..."
        return
    shown = "" if text is None else f" (input {text[:300]!r})"
    if kind == "hang":
        raise AssertionError(f"took longer than {BUDGET} s{shown}")
    raise AssertionError(f"{type(value).__name__}: {str(value)[:2000]}{shown}") from value


@pytest.fixture(scope="module", autouse=True)
def _print_counts(request):
    yield
    lines = ["", "hypothesis examples run (test: n, outcomes)"]
    for test, n in sorted(EXAMPLES.items()):
        kinds = ", ".join(f"{k} {OUTCOMES[(test, k)]}" for k in ("ok", "refused", "crash", "hang") if OUTCOMES[(test, k)])
        lines.append(f"  {test}: {n} ({kinds})")
    lines.append(f"  total: {sum(EXAMPLES.values())}")
    for signature, n in KNOWN_HITS.most_common():
        lines.append(f"  known bug hit {n}x: {signature}")
    text = "\n".join(lines)
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line(text)
    else:  # pragma: no cover
        print(text)


# --- (a) the expression parser -----------------------------------------------------------------

NAMES = ["A_plus", "A_minus", "tau_plus", "tau_minus", "w_min", "w_max", "w_init", "x", "y", "w"]
SYMBOLS = {n: sympy.Symbol(n, real=True) for n in NAMES}

identifiers = st.sampled_from(NAMES * 6 + ["z", "exp", "log", "open", "__import__", "__builtins__", "os",
                                           "True", "None", "self", "_", "dt", "x0", "xx", "W"])
numbers = st.one_of(
    st.integers(-1000, 1000).map(str),
    st.floats(-1e3, 1e3, allow_nan=False).map(repr),
    st.sampled_from(["0", "0.0", "-0.0", "1e308", "1e-320", "1e999", "10000000000000000", "999999999999999",
                     "1j", "0x1F", "0o17", "0b101", "1_000", ".5", "5.", "1e-5", "2.5e2"]),
)
leaves = st.one_of(identifiers, numbers, st.sampled_from(["'s'", "b'x'", "...", "f'{w}'", "[]", "()", "{}"]))
ALLOWED_BINARY = ["+", "-", "*", "/", "**"]
OTHER_BINARY = ["%", "//", "@", "&", "|", "^", "<<", ">>", "<", "==", "and", "or", "is", "in", "if 1 else"]
UNARY = ["-", "+", "-", "~", "not "]
FUNCTIONS = ["exp", "log", "sqrt", "abs"]
OTHER_CALLABLE = ["open", "eval", "__import__", "getattr", "max", "w", "(lambda: 1)"]


#: How one node combines its (one or two) children; the allowed forms are listed three times, so
#: that most generated expressions get deep into the renderer instead of failing at the top.
_ALLOWED_FORMS = ["binary", "binary_parenthesised", "sign", "function", "power"]
_FORMS = _ALLOWED_FORMS * 3 + ["other_binary", "unary", "any_call", "suffix", "lambda", "comprehension", "fstring",
                               "walrus"]
_SUFFIXES = [".__class__", ".real", "[0]", "[::-1]", "()", ".__subclasses__()"]


def _combine(t):
    form, kids, op, other_op, unary, function, callable_, exponent, suffix = t
    a, b = kids[0], kids[-1]
    return {
        "binary": f"{a} {op} {b}",
        "binary_parenthesised": f"({a}){op}({b})",
        "sign": f"{unary[0] if unary in '-+' else '-'}({a})",
        "function": f"{function}({a})",
        "power": f"({a})**{exponent}",
        "other_binary": f"{a} {other_op} {b}",
        "unary": f"{unary}{a}",
        "any_call": f"{callable_}({', '.join(kids)})",
        "suffix": f"{a}{suffix}",
        "lambda": f"lambda: {a}",
        "comprehension": f"[{a} for _ in x]",
        "fstring": f"f'{{{a}}}'",
        "walrus": f"(q := {a})",
    }[form]


def _extend(children):
    # `children` appears once: hypothesis builds the repr of nested strategies, which grows
    # exponentially when a level mentions its children several times
    return st.tuples(st.sampled_from(_FORMS), st.lists(children, min_size=1, max_size=2),
                     st.sampled_from(ALLOWED_BINARY), st.sampled_from(OTHER_BINARY), st.sampled_from(UNARY),
                     st.sampled_from(FUNCTIONS), st.sampled_from(FUNCTIONS + OTHER_CALLABLE),
                     st.integers(-20, 20) | st.sampled_from([0.5, -1.5, 16, 17, 1e-300]),
                     st.sampled_from(_SUFFIXES)).map(_combine)


expressions = st.recursive(leaves, _extend, max_leaves=14)


def parse_and_print(text):
    """parse_expression, then str() of the result: every command prints expressions (check, the
    lowering's messages, generated code), so an expression that cannot be printed is a failure too."""
    expr = parse_expression(text, SYMBOLS, "r.yaml", "weight.on_post")
    str(expr)
    return expr


@settings(max_examples=3000, **SETTINGS)
@given(st.text(max_size=120))
@example("x" + "+x" * 1000)
@example("(" * 70 + ")" * 70)
@example("-" * 1999 + "x")
@example("\x00")
@example("1e999")
@example("2**10**10")
def test_parse_expression_arbitrary_text(text):
    kind, value = outcome(parse_and_print, text)
    check("parse_expression(st.text)", kind, value, text=text, expect_type=sympy.Basic)


@settings(max_examples=3000, **SETTINGS)
@given(expressions)
def test_parse_expression_grammar(text):
    kind, value = outcome(parse_and_print, text)
    check("parse_expression(grammar)", kind, value, text=text, expect_type=sympy.Basic)


@settings(max_examples=500, **SETTINGS)
@given(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.binary(max_size=10),
                 st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2)))
def test_parse_expression_non_text(value):
    kind, result = outcome(parse_expression, value, SYMBOLS, "r.yaml", "weight.on_post")
    check("parse_expression(non-text)", kind, result, text=repr(value), expect_type=sympy.Basic)


# --- (b) the rule loader on YAML-like data --------------------------------------------------------

quantity_text = st.builds(lambda n, u: f"{n} {u}".strip(),
                          st.one_of(st.integers(-10**6, 10**6), st.floats(allow_nan=True, allow_infinity=True),
                                    st.sampled_from(["1e400", "0", "-0", ".5", "1e-400"])),
                          st.sampled_from(["", "ms", "second", "mV", "Hz", "nA", "ksecond", "parsec", "Unit", "ms2"]))
interesting_text = st.one_of(
    quantity_text, expressions, st.sampled_from(NAMES + ["pre", "post", "both", "stdp_pair", "", " ", "\n", "a b"]),
    st.text(max_size=30))
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), interesting_text,
                    st.sampled_from([10 ** 400, -(10 ** 400), 2 ** 1024, 1e308, -1e308, 5e-324, -0.0]))
keys = st.one_of(st.sampled_from(["name", "parameters", "traces", "weight", "simulation", "description", "citation",
                                  "of", "tau", "jump", "on_pre", "on_post", "bounds", "init", "dt", "t_epoch", "x", "y",
                                  "A_plus", "w", "exp"]),
                 st.text(max_size=8), st.integers(-3, 3), st.booleans(), st.none())
yaml_like = st.recursive(scalars, lambda c: st.one_of(st.lists(c, max_size=4), st.dictionaries(keys, c, max_size=5)),
                         max_leaves=25)

#: Top-level shapes close to a rule, so that the loader gets past its first checks.
rule_like = st.fixed_dictionaries(
    {"name": st.one_of(st.just("r"), scalars)},
    optional={
        "parameters": st.one_of(st.dictionaries(st.sampled_from(NAMES[:7] + ["p", "q", "w", "exp", "1a"]),
                                                scalars, max_size=6), yaml_like),
        "traces": st.one_of(st.dictionaries(st.sampled_from(["x", "y", "A_plus", "w", "t"]), st.one_of(
            st.fixed_dictionaries({"of": st.one_of(st.sampled_from(["pre", "post"]), scalars),
                                   "tau": st.one_of(st.sampled_from(["20 ms", "tau_plus", "1 ms", "0.5 ms"]), scalars)},
                                  optional={"jump": scalars}), yaml_like), max_size=3), yaml_like),
        "weight": st.one_of(st.fixed_dictionaries(
            {"bounds": st.one_of(st.just([0, 1]), st.lists(scalars, max_size=3), yaml_like)},
            optional={"on_pre": st.one_of(expressions, scalars), "on_post": st.one_of(expressions, scalars),
                      "init": scalars}), yaml_like),
        "simulation": st.one_of(st.fixed_dictionaries({}, optional={"dt": scalars, "t_epoch": scalars}), yaml_like),
        "description": scalars,
    })


def _paths(value, prefix=()):
    """Every path into the good rule: ('weight', 'bounds', 0), ..."""
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, prefix + (i,))


PATHS = [p for p in _paths(GOOD) if p]


def _copy(value):
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def mutate(path, how, new, extra_key):
    data = _copy(GOOD)
    parent = data
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    if how == "replace":
        parent[last] = new
    elif how == "delete":
        if isinstance(parent, dict):
            del parent[last]
        else:
            parent.pop(last)
    else:  # "add": a new key next to the field (or a new list element)
        if isinstance(parent, dict):
            parent[extra_key] = new
        else:
            parent.append(new)
    return data


mutations = st.builds(mutate, st.sampled_from(PATHS), st.sampled_from(["replace"] * 6 + ["delete", "add"]),
                      st.one_of(yaml_like, interesting_text, expressions), keys)


def test_good_rule_loads():
    assert isinstance(rule_from_dict(_copy(GOOD), "r.yaml"), Rule)


@settings(max_examples=1500, **SETTINGS)
@given(st.one_of(yaml_like, rule_like))
def test_rule_from_arbitrary_data(data):
    kind, value = outcome(rule_from_dict, data, "r.yaml")
    check("rule_from_dict(arbitrary)", kind, value, text=repr(data), expect_type=Rule)


@settings(max_examples=2000, **SETTINGS)
@given(mutations)
def test_rule_from_mutated_good_rule(data):
    kind, value = outcome(rule_from_dict, data, "r.yaml")
    check("rule_from_dict(mutated stdp_pair)", kind, value, text=repr(data), expect_type=Rule)


# --- (c) the file reader on arbitrary bytes --------------------------------------------------------

def flip(edits):
    raw = bytearray(GOOD_BYTES)
    for position, operation, byte in edits:
        i = position % (len(raw) + 1)
        if operation == "insert":
            raw[i:i] = bytes([byte])
        elif operation == "delete" and raw:
            del raw[min(i, len(raw) - 1)]
        elif raw:
            raw[min(i, len(raw) - 1)] = byte
    return bytes(raw)


edited_good = st.builds(flip, st.lists(st.tuples(st.integers(0, 10**6), st.sampled_from(["insert", "delete", "set"]),
                                                 st.sampled_from(list(b"{}[]:,-&*!|>'\"#%@`\t\n \x00\xff\xc3") +
                                                                 list(range(256)))), min_size=1, max_size=8))
yaml_text = st.builds(lambda parts: "".join(parts).encode("utf-8", "surrogatepass"), st.lists(st.one_of(
    st.sampled_from(["name: r\n", "traces:\n", "  x: {of: pre, tau: 20 ms}\n", "weight:\n", "  bounds: [0, 1]\n",
                     "  on_post: x\n", "&a ", "*a", "!!python/object:os.system ", "- ", "? ", ": ", "{", "}", "[", "]",
                     "---\n", "...\n", "%YAML 1.1\n", "%TAG ! tag:x,2000:\n", "!!binary ", "|\n", ">\n", "'", '"',
                     "\t", "\ufeff", "\u2028", "#", "\n"]),
    st.text(max_size=10)), max_size=25))


@pytest.fixture
def rule_path(tmp_path):
    return tmp_path / "r.yaml"


def _load_bytes(path, raw):
    path.write_bytes(raw)
    return load_rule(str(path))


@settings(max_examples=1500, **SETTINGS)
@given(st.one_of(st.binary(max_size=400), edited_good, yaml_text))
def test_load_rule_arbitrary_bytes(rule_path, raw):
    kind, value = outcome(_load_bytes, rule_path, raw)
    check("load_rule(bytes)", kind, value, text=raw.decode("utf-8", "replace"), expect_type=Rule)


@settings(max_examples=500, **SETTINGS)
@given(st.one_of(st.binary(max_size=400), edited_good, yaml_text))
def test_read_yaml_arbitrary_bytes(rule_path, raw):
    rule_path.write_bytes(raw)
    kind, value = outcome(read_yaml, str(rule_path), "r.yaml")
    check("read_yaml(bytes)", kind, value, text=raw.decode("utf-8", "replace"), expect_type=tuple)


# --- former known bugs, one minimal example each (regression tests) ---------------------------------

def refusal(function, *args) -> str:
    """The message of the NeurodeployError ``function(*args)`` raises (within the budget)."""
    kind, value = outcome(function, *args)
    assert kind == "refused", f"{kind}: {value!r}"[:500]
    return str(value)


def test_nested_exp_overflow_is_refused():
    """Was: sympy evaluated exp of a huge Float eagerly, OverflowError out of parse_expression."""
    assert refusal(parse_expression, "exp(exp(exp(exp(10.0))))", SYMBOLS, "r.yaml", "f") == \
        "r.yaml: f: constant larger than 1e+300 (got 'exp(exp(exp(exp(10.0))))')"


def test_nested_exp_of_float_is_refused():
    """Was: exp(exp(exp(10.0))) accepted as a Float with a ~10**9565 exponent, ~2 minutes to print."""
    assert refusal(parse_and_print, "exp(exp(exp(10.0)))") == \
        "r.yaml: weight.on_post: constant larger than 1e+300 (got 'exp(exp(exp(10.0)))')"


def test_float_division_by_zero_is_refused():
    """Was: Float(0.0) == 0 is False in sympy, the division-by-zero check missed 0.0 (ZeroDivisionError)."""
    assert refusal(parse_and_print, "0.0 / 0.0") == "r.yaml: weight.on_post: division by zero (got '0.0 / 0.0')"


def test_huge_int_parameter_is_refused():
    """Was: math.isfinite(10**400) raised OverflowError in units.parse_quantity."""
    data = mutate(("parameters", "A_plus"), "replace", 10 ** 400, None)
    assert refusal(rule_from_dict, data, "r.yaml") == \
        "r.yaml: parameters.A_plus: magnitude must be between 1e-300 and 1e+300 (got 100000000000000000000000000000000000000000000000000000000...)"


def test_newline_in_name_is_escaped():
    """Was: a name with a newline was printed raw, the message spanned two lines."""
    data = mutate(("traces", "y"), "add", {"of": "post", "tau": "20 ms"}, "a\nb")
    assert refusal(rule_from_dict, data, "r.yaml") == \
        "r.yaml: traces.a\\nb: must be an identifier such as 'tau_plus' (got 'a\\nb')"


def test_budget_catches_a_hang():
    """The SIGALRM budget itself works (so a hang fails a property instead of stalling CI)."""
    def spin():
        while True:
            math.sqrt(2)
    assert outcome(spin)[0] == "hang"


# --- (d) a network file's reward: section (the third factor decided from the network's spikes) ----

REWARD_NET = {"network": "fuzz", "steps": 200, "seed": 1,
              "populations": {"cue": {"poisson": 1, "rate": "5 Hz"},
                              "exc": {"lif": 2, "tau_u": "5 ms", "tau_v": "20 ms", "threshold": 2}},
              "projections": [{"from": "cue", "to": "exc", "plastic": True, "w0": 0.5}]}
_any = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(), st.text(max_size=12),
                 st.sampled_from(["cue", "exc", "exc[0]", "exc[2]", "cue[0]", "10 ms", "-1 s", "3 s", "1 mV",
                                  "1e999 ms", "nan ms"]),
                 st.lists(st.sampled_from(["100 ms", "1 s", "0 ms", "x", 1]), max_size=3))
_good_reward = {"distal": {"pre": "cue", "post": "exc[1]", "window": "10 ms", "delay": ["100 ms", "150 ms"],
                            "amount": 1.0, "seed": 3},
                 "rate": {"population": "exc", "target": 2, "period": "50 ms", "delay": "20 ms", "amount": 0.5}}


def _edited(kind, field, value, drop):
    body = dict(_good_reward[kind])
    if drop:
        body.pop(field, None)
    else:
        body[field] = value
    return {kind: body}


rewards = st.one_of(
    _any,
    st.builds(_edited, st.sampled_from(["distal", "rate"]),
              st.sampled_from(["pre", "post", "window", "delay", "amount", "seed", "population", "target", "period",
                               "extra"]), _any, st.booleans()),
    st.sampled_from([{kind: body} for kind, body in _good_reward.items()]),
    st.dictionaries(st.text(max_size=8), _any, max_size=2))


@settings(max_examples=1000, **SETTINGS)
@given(rewards)
def test_network_reward_section_arbitrary(reward):
    """Any reward: section (one field of a good one changed or dropped, arbitrary data) loads or is refused in
    one line naming the field: never a crash, never a hang."""
    from neurodeploy.network import network_from_dict

    kind, value = outcome(network_from_dict, dict(REWARD_NET, reward=reward), "net.yaml", _rstdp())
    check("network_from_dict(reward)", kind, value, text=repr(reward))


_RSTDP = []


def _rstdp():
    """The library's rstdp, loaded once."""
    if not _RSTDP:
        from neurodeploy.library import LIBRARY

        _RSTDP.append(load_rule(f"{LIBRARY}/rstdp.yaml"))
    return _RSTDP[0]
