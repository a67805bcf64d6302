"""The rule file emitted: the imported pieces assembled into the rule's fields (parameters, traces, weight
updates, bounds) and written as YAML with units as text."""
from __future__ import annotations

import re

import yaml

from neurodeploy.importers.brian2.text import (ImportedRule, _brian2_builtin,
                                             _is_quantity, _value_of, quantity_text, rule_text)
from neurodeploy.spec.units import (DIMENSIONLESS, Dimension)


def _equation_text(eq) -> str:
    """A Brian2 ``SingleEquation`` as model text that ``Equations`` parses again (``str(eq)`` writes
    units such as ``V``, which the parser refuses)."""
    from brian2.equations.equations import DIFFERENTIAL_EQUATION, SUBEXPRESSION
    from brian2.units.fundamentalunits import get_unit

    unit = {"boolean": "boolean", "integer": "integer"}.get(eq.var_type)
    if unit is None:
        unit = "1" if eq.dim is None or not any(eq.dim._dims) else repr(get_unit(eq.dim))
    flags = f" ({', '.join(eq.flags)})" if eq.flags else ""
    if eq.type == DIFFERENTIAL_EQUATION:
        return f"d{eq.varname}/dt = {eq.expr.code} : {unit}{flags}"
    if eq.type == SUBEXPRESSION:
        return f"{eq.varname} = {eq.expr.code} : {unit}{flags}"
    return f"{eq.varname} : {unit}{flags}"


def to_yaml(rule: dict, header: str = "") -> str:
    """YAML text of an imported rule; its notes (and ``header``) as comments at the top."""
    from neurodeploy.errors import printable

    # comments stay comments: control characters (a carriage return would end one) are escaped
    lines = [f"# {printable(line, 2000)}" for line in header.splitlines()] if header else []
    lines += [f"# note: {printable(note, 2000)}" for note in getattr(rule, "notes", [])]

    class Dumper(yaml.SafeDumper):
        pass

    def flow(dumper, data):
        return dumper.represent_mapping("tag:yaml.org,2002:map", data.items(), flow_style=True)

    class Flow(dict):
        pass

    Dumper.add_representer(Flow, flow)
    data = dict(rule)
    data["traces"] = {k: Flow(v) for k, v in data["traces"].items()}
    body = yaml.dump(data, Dumper=Dumper, sort_keys=False, width=1000, allow_unicode=True)
    return "\n".join(lines + [body.rstrip()]) + "\n"


class Emission:
    """The importer's emission (a part of :class:`neurodeploy.importers.brian2._Importer`)."""

    # the rule ----------------------------------------------------------------------------------------
    def assemble(self, results):
        sympy = self.sympy
        w = self.weight
        sides = {}
        for key in self.paths:
            side, field = self.paths[key][:2]
            for var, jump, line in results[key]["jumps"]:
                if var in sides and sides[var][0] != side:
                    self.fail(field, f"'{line}': {var} also jumps at {sides[var][0]} spikes: a trace of a "
                                     f"rule belongs to one side (per-synapse states that both spikes change, "
                                     f"such as eligibility traces, are not imported) (got {line!r})")
                if var in sides:
                    self.fail(field, f"'{line}': {var} jumps in two pathways: a trace jumps once per spike, "
                                     f"at one delay (got {line!r})")
                sides[var] = (side, jump)
        for name in self.traces:
            if name not in sides:
                self.fail(f"model.{name}", f"never jumps: neither pathway changes it, so it stays at its rest value "
                                           f"(got {name})")
        rename = {self.symbol(w): sympy.Symbol("w", real=True)} if w != "w" else {}
        if w != "w" and "w" in self.variables + list(self.params):
            self.fail("model", f"the weight '{w}' becomes 'w' in the rule, a name the model also uses (got w)")

        def text(expr, field):
            expr = expr.xreplace(rename)
            for s in expr.free_symbols:
                if s.name not in self.traces and s.name != "w":
                    self.resolve(s.name, field, rule_text(expr))
            return rule_text(expr)

        traces = {}
        for key in sorted(self.paths, key=lambda k: (self.paths[k][0] != "pre", self.paths[k][3])):
            side, field, _, delay = self.paths[key]
            for var, jump, line in results[key]["jumps"]:
                tau, rest = self.traces[var]
                entry = {"of": side, "tau": tau}
                if jump.is_Number:
                    entry["jump"] = float(jump)
                elif jump.is_Symbol and jump.name not in self.variables:
                    self.resolve(jump.name, field, line)
                    entry["jump"] = jump.name
                elif not any(s.name in self.variables for s in jump.free_symbols):  # a constant: its value
                    entry["jump"] = quantity_text(*self.numeric(jump, field, line))
                    jump = self.sympy.Float(1.0)
                else:
                    entry["jump"] = text(jump, field)
                if rest is not None:
                    entry["rest"] = rest
                    self.notes.append(f"traces.{var}: starts at its rest value {rest} in the rule (Brian2 starts "
                                      f"a variable at 0 unless it is set)")
                elif self.dims[var] != DIMENSIONLESS and not jump.is_Number and not jump.is_Symbol:
                    entry["rest"] = quantity_text(0.0, self.dims[var])  # the trace's unit, for a state-dependent jump
                if delay > 0:
                    entry["delay"] = quantity_text(delay, Dimension((0, 0, 1, 0, 0, 0, 0)))
                traces[var] = entry
        weight = {}
        for side in ("pre", "post"):
            if results[side]["delta"] is not None:
                weight[f"on_{side}"] = text(results[side]["delta"], f"on_{side}")
        if self.continuous is not None:
            var, rate, cbounds, line = self.continuous
            if var != w:
                self.fail("run_regularly", f"'{line}': changes '{var}', not the weight '{w}' (got {var})")
            if w in self.odes:
                self.fail("run_regularly", f"'{line}': '{w}' has an equation already (got {line!r})")
            weight["continuous"] = text(rate, "run_regularly")
            results["regular"] = {"delta": rate, "bounds": cbounds, "line": line}
        if w in self.odes:
            code, flags = self.odes[w]
            if "event-driven" in flags:
                self.fail(f"model.{w}", f"'d{w}/dt = {code}': an event-driven weight equation has no counterpart "
                                        f"(got event-driven)")
            weight["continuous"] = text(self.parse(code, f"model.{w}", f"d{w}/dt = {code}"), f"model.{w}")
            self.notes.append(f"model.{w}: d{w}/dt = {code} is the rule's continuous term: the rule integrates it by "
                              f"forward Euler after each step's spikes and clips it to the bounds (Brian2's state "
                              f"updater runs before the spikes, unclipped)")
        # bounds
        clipped = {s: results[s]["bounds"] for s in ("pre", "post", "regular")
                   if s in results and results[s]["delta"] is not None}
        found = {b for b in clipped.values() if b is not None}
        if len(found) > 1:
            self.fail("on_post", f"clips {w} to other bounds than on_pre: a rule has one pair of bounds "
                                 f"(got {', '.join(f'[{rule_text(lo)}, {rule_text(hi)}]' for lo, hi in found)})")
        if found and None in clipped.values():
            side = next(s for s, b in clipped.items() if b is None)
            line = results[side]["line"]
            self.fail("run_regularly" if side == "regular" else f"on_{side}",
                      f"'{line}': changes {w} without clip while the other pathway clips it: a rule clips every "
                      f"change to its bounds (got {line!r})")
        if found:
            lo, hi = found.pop()
            if self.bounds_given is not None:
                self.fail("bounds", f"the pathways clip {w} already (got {self.bounds_given!r})")
            bounds = [self.bound_text(b) for b in (lo, hi)]
        elif self.bounds_given is not None:
            bounds = [self.bound_text(b, given=True) for b in self.bounds_given]
            self.notes.append(f"weight.bounds: {w} is not clipped in Brian2; the rule clips it to the given "
                              f"bounds [{bounds[0]}, {bounds[1]}]")
        else:
            self.fail("model", f"'{w}' is never clipped: a rule's weight has bounds; write "
                               f"{w} = clip({w} + ..., low, high) or give bounds (got no clip)")
        weight["bounds"] = bounds
        if self.init is not None:
            weight["init"] = self.bound_text(self.init, given=True, field="init")
        # parameters: only those the rule names, in order of use
        used = set()
        for entry in traces.values():
            for key in ("tau", "jump", "rest"):
                value = entry.get(key, "")
                if isinstance(value, str) and not _is_quantity(value):
                    used |= set(re.findall(r"[A-Za-z_]\w*", value))
        for key in ("on_pre", "on_post", "continuous"):
            used |= set(re.findall(r"[A-Za-z_]\w*", weight.get(key, "")))
        used |= {b for b in bounds + [weight.get("init")] if isinstance(b, str)}
        order = {n: k for k, n in enumerate(self.namespace)}
        params = {n: self.params[n] for n in sorted(self.params, key=lambda n: order.get(n, len(order))) if n in used}
        data = {"name": self.name}
        if self.description:
            data["description"] = self.description
        if self.citation:
            data["citation"] = self.citation
        data["parameters"] = params
        data["traces"] = traces
        data["weight"] = weight
        if self.dt is not None:
            value, dim = _value_of(self.dt, self.source, "dt")
            data["simulation"] = {"dt": quantity_text(value, dim)}
        return ImportedRule(data, self.notes)

    def bound_text(self, b, given=False, field="bounds"):
        if given:
            if isinstance(b, (int, float, str)) and not isinstance(b, bool):
                if isinstance(b, str) and b in self.namespace:
                    self.resolve(b, field, b)
                    if b in self.params:
                        return b
                    value, dim = _brian2_builtin(b)[1:]  # Brian2's constant of that name
                    return quantity_text(value, dim)
                value, dim = _value_of(b, self.source, field)
            else:
                value, dim = _value_of(b, self.source, field)
            return quantity_text(value, dim)
        if b.is_Symbol and b.name not in self.variables:
            self.resolve(b.name, "bounds", b.name)
            return b.name
        value, dim = self.numeric(b, "bounds", rule_text(b))
        if value == 0:
            dim = self.dims[self.weight]
        return quantity_text(value, dim)
