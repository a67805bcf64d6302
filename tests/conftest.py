import os

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RULES = os.path.join(ROOT, "reference", "rules")


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
