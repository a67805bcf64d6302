"""The compilation of a rule for the learning engine, made once per rule and traffic.

:func:`compile_rule` makes a :class:`Compilation`: the rule, its lowering onto the engine's products,
the float and fixed plans scaled on the traffic, the engine's verdict on the rule with its reasons,
and the trace statistics and update counts the scales came from. It is made at the bottom of the
house and handed down: ``verify`` makes one per traffic (a closed loop's second one is scaled on the
spikes its neurons made, :meth:`Compilation.on_spikes`) and hands it to every backend (where they
take ``plans``: a Compilation is the mapping mode -> Plan), to the verdict and to the report;
``deploy`` takes one instead of a rule. Nothing above it lowers or scales the rule again.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from neurodeploy.compile.loihi import unsupported_reason
from neurodeploy.compile.lowering import EngineRule, lower
from neurodeploy.compile.plan import (Plan, approximation_reason, engine_reason, inexact_reason, make_plan,
                                      tag_peaks)
from neurodeploy.errors import UnsupportedError
from neurodeploy.protocol import SpikeTrains, trace_stats, update_counts
from neurodeploy.spec.ir import Rule


@dataclass(frozen=True, eq=False)
class Compilation(Mapping):
    """One rule compiled for one traffic. As a mapping it is ``mode -> Plan`` ("float", "fixed"; empty
    when the engine cannot run the rule even through the lowering's approximations)."""

    rule: Rule  # the rule as written
    trains: SpikeTrains | None  # the traffic the scales came from (None: unscaled plans)
    plans: dict  # mode -> Plan of the rule as the lowering approximates it (exact where it is exact)
    lowering: EngineRule | None  # the approximated lowering the plans realise (None: refused)
    engine: str | None  # None when the engine runs the rule exactly, else why not (engine_reason)
    approximation: dict  # mode -> None when the approximated rule runs in that mode, else why not
    refusal: str | None  # why there are no plans (None: there are)
    traces: dict = field(default_factory=dict)  # rule trace -> its statistics on the traffic (trace_stats)
    counts: dict = field(default_factory=dict)  # weight updates per synapse on the traffic (update_counts)

    # -- the mapping mode -> Plan ---------------------------------------------------------------
    def __getitem__(self, mode: str) -> Plan:
        return self.plans[mode]

    def __iter__(self):
        return iter(self.plans)

    def __len__(self) -> int:
        return len(self.plans)

    def __repr__(self) -> str:
        traffic = "unscaled" if self.trains is None else f"scaled on {self.trains.protocol} ({self.trains.steps} steps)"
        runs = ", ".join(self.plans) or f"no plans: {self.refusal}"
        return f"<Compilation of {self.rule.name}: {runs}; {traffic}>"

    # -- what the engine can run ----------------------------------------------------------------
    @property
    def approximations(self) -> tuple:
        """The lowering's approximations (:class:`~neurodeploy.compile.lowering.Approximation`); () when exact."""
        return () if self.lowering is None else self.lowering.approximations

    @property
    def approximated(self) -> bool:
        """The engine runs the rule only through the lowering's approximations."""
        return self.engine is not None and any(r is None for r in self.approximation.values())

    def mode_reason(self, mode: str) -> str | None:
        """Why the learning engine cannot run the rule in ``mode`` (None when it can), as
        :func:`neurodeploy.compile.loihi.unsupported_reason` says it."""
        return unsupported_reason(self.rule, mode)

    def exact_plans(self) -> dict:
        """The plans, refused (UnsupportedError with the reason) unless the engine runs the rule exactly
        (no approximation of the lowering) and every float constant is exact: what ``deploy`` accepts.
        (For a rule the engine runs exactly, the approximating lowering is the exact one.)"""
        if self.engine is not None:
            raise UnsupportedError(self.engine)
        if self.refusal is not None:
            raise UnsupportedError(self.refusal)
        reason = inexact_reason(self.plans["float"]) if "float" in self.plans else None
        if reason is not None:
            raise UnsupportedError(reason)
        return dict(self.plans)

    def on_spikes(self, spikes) -> "Compilation":
        """The compilation for the traffic with these post ``spikes`` (a closed loop's or network's plans,
        on the spikes a neuron made): a new traffic, so a new compilation."""
        from neurodeploy.network import with_spikes

        return compile_rule(self.rule, with_spikes(self.trains, spikes))


def compile_rule(rule: Rule, trains: SpikeTrains | None = None, traces: dict | None = None) -> Compilation:
    """Compile ``rule`` (a loaded rule) for the traffic ``trains`` (None: plans with the default scales).
    ``traces``: :func:`~neurodeploy.protocol.trace_stats` of ``trains`` when already computed."""
    engine = engine_reason(rule)
    approximation = {m: approximation_reason(rule, m) for m in ("float", "fixed")} if engine is not None else \
        {"float": None, "fixed": None}
    if trains is not None:
        traces = trace_stats(rule, trains) if traces is None else traces
        counts = update_counts(rule, trains)
    else:
        traces, counts = {}, {}
    try:
        lowering = lower(rule, approximate=True)
        plans = _scaled(lowering, rule, trains, traces, counts)
        refusal = None
        if "float" in plans and inexact_reason(plans["float"]) is not None:
            plans, refusal = {}, inexact_reason(plans["float"])
    except UnsupportedError as exc:
        lowering, plans, refusal = None, {}, str(exc)
    return Compilation(rule, trains, plans, lowering, engine, approximation, refusal, traces, counts)


def _scaled(engine: EngineRule, rule: Rule, trains, traces: dict, counts: dict) -> dict:
    peaks, scale_counts = None, None
    if trains is not None:
        peaks = dict({name: s["peak"] for name, s in traces.items()}, **tag_peaks(rule, trains))
        scale_counts = dict(counts, trace_means={name: s["mean"] for name, s in traces.items()})
    modes = ("fixed",) if engine.fixed_only else ("float", "fixed")
    try:
        return {mode: make_plan(engine, mode, peaks, scale_counts) for mode in modes}
    except (OverflowError, ZeroDivisionError, ValueError) as exc:
        raise UnsupportedError(f"the rule's constants are outside what the learning engine can scale ({exc})") from None


def compile_plans(rule: Rule, trains: SpikeTrains | None = None, stats: dict | None = None,
                  approximate: bool = False) -> dict:
    """Float and fixed plans for ``rule``, scaled on ``trains`` (``stats``: their
    :func:`~neurodeploy.protocol.trace_stats`, if already computed).

    Raises UnsupportedError with the reason when the learning engine cannot express the rule,
    or cannot realise every float constant exactly (as :func:`neurodeploy.compile.plan.engine_reason`).
    ``approximate``: plans of the rule as the lowering approximates it (:attr:`Plan.approximations`;
    no float plan when the approximation is fixed-point only)."""
    plans = scale_plans(rule, trains, stats, approximate)
    reason = inexact_reason(plans["float"]) if "float" in plans else None
    if reason is not None:
        raise UnsupportedError(reason)
    return plans


def scale_plans(rule: Rule, trains: SpikeTrains | None = None, stats: dict | None = None,
                approximate: bool = False) -> dict:
    """:func:`compile_plans` without the exactness check (a plan whose float constants are
    approximate still runs on Lava and its emulator)."""
    engine = lower(rule, approximate)
    counts = {}
    if trains is not None:
        stats = stats if stats is not None else trace_stats(rule, trains)
        counts = update_counts(rule, trains)
    return _scaled(engine, rule, trains, stats or {}, counts)
