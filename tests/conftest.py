import os
import signal

import numpy as np
import pytest

# A suite started in the background by a script inherits SIGINT ignored, and neurodeploy rightly keeps an
# ignored SIGINT ignored: the signal tests (in process, and the children they start, which inherit the
# disposition) need SIGINT at its default. Restored here, for the test process only.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RULES = os.path.join(ROOT, "reference", "rules")
#: A copy of reference/rules/stdp_pair.yaml without its prose, for tests that derive bad
#: inputs from it (kept here so that edits of the reference file do not change them).
GOOD_RULE_TEXT = """\
name: stdp_pair
parameters: {A_plus: 0.01, A_minus: 0.0105, tau_plus: 20 ms, tau_minus: 20 ms,
             w_min: 0, w_max: 1, w_init: 0.5}
traces:
  x: {of: pre,  tau: tau_plus,  jump: 1}
  y: {of: post, tau: tau_minus, jump: 1}
weight:
  on_pre:  -A_minus * y
  on_post:  A_plus * x
  bounds: [w_min, w_max]
  init: w_init
"""


def rule_path(name: str) -> str:
    return os.path.join(RULES, f"{name}.yaml")


@pytest.fixture
def write_rule(tmp_path):
    """Write a rule file from text; returns its path."""
    def write(text: str, name: str = "rule.yaml") -> str:
        path = tmp_path / name
        path.write_text(text)
        return str(path)
    return write


def raster(n: int, steps: int, spikes) -> np.ndarray:
    """Boolean raster with spikes at (neuron, step) pairs."""
    r = np.zeros((n, steps), dtype=bool)
    for i, t in spikes:
        r[i, t] = True
    return r


def saturating_plan(fixed):
    """``fixed`` with every trace impulse 127 (the 7-bit traces clip, the float realisation does not) and
    its constants rescaled to the new impulses as the engine's best: only the saturation is wrong."""
    import dataclasses

    from neurodeploy.verdict.quantization import nearest_representable

    scale = {t.name: 127.0 / t.impulse for t in fixed.traces}
    traces = tuple(dataclasses.replace(t, impulse=127.0, scale=t.scale * scale[t.name]) for t in fixed.traces)
    products = []
    for p in fixed.products:
        trace = next(t for t in fixed.traces if t.slot in p.factors)
        s, e, v = nearest_representable(p.requested / scale[trace.name])
        products.append(dataclasses.replace(p, mantissa=s, exponent=e, realised=v))
    products = tuple(products)
    return dataclasses.replace(fixed, traces=traces, products=products,
                               dw=" ".join(q.text for q in products if q.text).lstrip("+ "))
