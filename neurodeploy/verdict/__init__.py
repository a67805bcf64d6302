"""The verdict: what a verify run checked, with which tolerance, and whether it held.

Every comparison ends in one of three outcomes:

* ``passed``: it was checked against a tolerance derived independently of the
  candidate (closed form, the engine's limits, the ensemble's statistics);
* ``failed``: it was checked and did not hold;
* ``not checked``: nothing could be judged (no tolerance can be derived, the
  tolerance would exceed :data:`MAX_TOLERANCE` of the weight range, the
  trajectories part for a reason no tolerance models), with the reason.

A run is ``passed`` when at least one comparison passed and none failed (and
every backend asked finished), ``failed`` when any comparison or backend
failed, and ``not checked`` when nothing was checked. The CLI exits 0, 1 and
:data:`EXIT_NOT_CHECKED` for these.

Modules: :mod:`.timing` (brian2 -> brian2-step, per synapse),
:mod:`.quantization` (the fixed-point chain: constants, rounding),
:mod:`.mutate` (the mutation self-test that measures the verdict's detection
power and false-alarm rate).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

PASSED, FAILED, NOT_CHECKED = "passed", "failed", "not checked"
OUTCOMES = (PASSED, FAILED, NOT_CHECKED)
#: Exit code of ``verify`` when nothing was checked (0 passed, 1 failed, 2 bad input).
EXIT_NOT_CHECKED = 3
EXIT_CODES = {PASSED: 0, FAILED: 1, NOT_CHECKED: EXIT_NOT_CHECKED}
#: No comparison whose tolerance exceeds this fraction of the weight range is reported as passed.
MAX_TOLERANCE = 0.1


@dataclass(frozen=True)
class Comparison:
    """One entry of the verdict, typed: a row of report.json's ``comparisons`` (``Report.entries``).

    ``share`` names what it judges: ``fidelity`` (the learned change against brian2), ``curve``,
    ``window``, ``distribution`` (closed loops and networks), or a link of the chain that explains a
    deviation (``timing``, ``lowering``, ``constants``, ``rounding``, ``emulation-*``, ``approximation``)."""

    reference: str  # the run judged against (brian2: the model as written)
    candidate: str  # the deployment (or link) judged
    share: str  # what is judged (above)
    outcome: str  # PASSED, FAILED or NOT_CHECKED
    message: str  # the one line a report prints
    tolerance: object  # the tolerance it was judged with (a number, a dict of them, or None)
    details: Mapping  # every field of the entry as report.json has it (numbers, attribution, remedy)

    @property
    def passed(self) -> bool:
        return self.outcome == PASSED

    @classmethod
    def from_entry(cls, entry: Mapping) -> "Comparison":
        return cls(str(entry.get("reference")), str(entry.get("candidate")), str(entry.get("share")),
                   entry["outcome"], str(entry.get("message") or ""), entry.get("tolerance"),
                   MappingProxyType(dict(entry)))

    def __repr__(self) -> str:
        return f"<Comparison {self.reference} -> {self.candidate} ({self.share}): {self.outcome}>"


def outcome_of(passed: bool | None) -> str:
    return NOT_CHECKED if passed is None else (PASSED if passed else FAILED)


def overall(comparisons, failed_backends=()) -> str:
    """The run's outcome from its comparisons' outcomes and the backends that did not finish."""
    outcomes = [c["outcome"] for c in comparisons]
    if failed_backends or FAILED in outcomes:
        return FAILED
    if any(c.get("share") == "learning" and c["outcome"] == NOT_CHECKED for c in comparisons):
        return NOT_CHECKED  # nothing was learned on the protocol: agreement on constant weights tests nothing
    if any(c.get("share") == "fidelity" and c["outcome"] == NOT_CHECKED for c in comparisons):
        # a deployment whose learning was not judged against the model (the reference did not run): the
        # question the run answers is open, however well its links agree with each other
        return NOT_CHECKED
    return PASSED if PASSED in outcomes else NOT_CHECKED


def counts(comparisons) -> dict:
    return {o: sum(1 for c in comparisons if c["outcome"] == o) for o in OUTCOMES}
