"""Brian2 in: a Brian2 ``Synapses`` definition becomes a rule file.

::

    from neurodeploy.importers.brian2 import from_strings, from_synapses, to_yaml
    rule = from_strings(model, on_pre, on_post, namespace, name="stdp")   # a dict
    rule.notes                                   # what was dropped or changed, and why
    open("stdp.yaml", "w").write(to_yaml(rule))  # units kept as text: '20 ms'

The model equations are parsed by Brian2 (:class:`brian2.Equations`), each
pathway statement by :func:`brian2.parsing.statements.parse_statement`, each
expression by :func:`brian2.parsing.sympytools.str_to_sympy`; the rule's
expressions are printed back from sympy as text the rule loader's ``ast``
whitelist parses again. Nothing is evaluated.

What a definition may contain (anything else is refused, naming the statement
and why):

* the weight: one variable changed by the pathways, ``w : 1`` (any name, any
  unit), ``w = clip(w + expr, lo, hi)`` (the bounds), ``w += expr``/``w -= expr``
  (with ``bounds=`` given), or a continuous change, ``dw/dt = expr : 1 (clock-driven)`` or
  run_regularly ``w = clip(w + dt*(expr), lo, hi)`` after the synapses (the rule's
  ``continuous`` term: forward Euler, clipped every step);
* traces: ``dX/dt = -X/tau`` or ``(rest - X)/tau`` (``event-driven`` or
  ``clock-driven``: the rule decays them exactly either way), and variables
  ``X : unit`` decayed by hand at the start of every pathway,
  ``X = X * exp(-(t - L)/tau)`` (or ``rest + (X - rest) * exp(...)``) with
  ``L = t`` at the end (what :func:`neurodeploy.brian2.model.reference_model`
  writes), or by run_regularly code before the synapses, ``X = X * exp(-dt/tau)``.
  A trace belongs to the side whose pathway changes it
  (``X += c``, ``X -= c``, ``X = expr``: a jump, which may read that side's
  traces); one changed by both pathways is refused. Extra pathways
  (``on_pre={"pre": ..., "pre_d": ...}``) with one delay each may only jump
  traces: delayed jumps;
* temporaries: a ``x : unit`` variable set before it is read in a pathway
  (``post2bef = post2``), substituted;
* subexpressions (``G = H - gamma : Hz``), inlined (refused where Brian2 2.9
  evaluates them at the pathway's start: after a variable they read changed, or
  of an event-driven variable); ``int(a > b)`` is ``heaviside(a - b)``;
* effect lines on the target or source group (``ge += w``, ``v_post += w``):
  dropped, each with a note in ``.notes``.

The pathway's statements run in order as Brian2 runs them: a weight update
that reads a trace its own pathway already changed reads ``x + jump`` in the
rule (whose updates read the traces before the spike's jumps), so the rule is
the same map of the state.

Names are resolved as Brian2 resolves them (``Group._resolve``): the synapses'
own variables (the model's; Brian2's ``t``, ``dt``, ``i``, ``N`` ..., refused),
then the postsynaptic group's variables, which a ``Synapses`` reads without a
suffix (refused: per neuron; from a live object, or ``target_variables=``),
then Brian2's constants (``e``, ``pi``, written as their values) and units
(``mV``), then the namespace (the ``Synapses``' own ``namespace`` if it has one,
else the one given, else the caller's frame at ``level``); a namespace value
Brian2 does not read for that reason is noted. The presynaptic group's
variables are read only as ``x_pre`` (refused), never by a bare name. Namespace
values must be numbers or Brian2 quantities; each becomes a parameter with its
value (a unit name such as ``nS`` used in a kept expression becomes the
parameter ``nS: 1 nS``).

Nothing is evaluated before it is bounded: every expression and every unit of
the equations (Brian2 evaluates units with ``eval``) is read as an ``ast`` first
and refused when a literal exponent exceeds 16, a number 1e300 or the degree
32, the rule loader's limits.
"""
from __future__ import annotations

import re

from neurodeploy.errors import NeurodeployError
from neurodeploy.importers.brian2.emission import Emission, _equation_text, to_yaml
from neurodeploy.importers.brian2.parsing import Parsing
from neurodeploy.importers.brian2.resolution import Resolution
from neurodeploy.importers.brian2.text import ImportedRule, _value_of, quantity_text
from neurodeploy.importers.brian2.traces import Traces
from neurodeploy.spec.units import DIMENSIONLESS, unit_name

__all__ = ["import_brian2", "from_strings", "from_synapses", "from_spec", "to_yaml", "quantity_text", "ImportedRule", "SPEC_KEYS"]


# --- values and their text -------------------------------------------------------------------------


# --- expressions --------------------------------------------------------------------------------------


class _Importer(Parsing, Resolution, Traces, Emission):
    def __init__(self, model, on_pre, on_post, namespace, name, source, init, bounds, description, citation,
                 run_regularly=(), dt=None, delays=None, target_variables=()):
        import neurodeploy.brian2_setup  # noqa: F401 - before any other Brian2 import
        import sympy

        self.sympy = sympy
        self.source = source
        self.name = name
        self.namespace = dict(namespace or {})
        self.init, self.bounds_given = init, bounds
        self.description, self.citation = description, citation
        self.notes = []
        self.params = {}  # rule parameter name -> value (number or quantity text), in order of use
        self.param_dims = {}
        self.target_variables = frozenset(target_variables or ())
        self.shadowed = set()  # namespace names noted as not read (a Brian2 constant or unit comes first)
        self.paths = self._pathways(on_pre, on_post, delays)
        self.regular = self._regular_items(run_regularly)
        self.dt = dt
        self._equations(model)

    # errors
    def fail(self, field, message):
        raise NeurodeployError(self.source, field, message)


    def run(self) -> ImportedRule:
        pathways = {key: self.statements(key) for key in self.paths}
        regular_decays, self.continuous = self.regular_statements()
        # hand-decayed traces: leading decay statements, `L = t` last
        manual, last_vars, decayed = {}, set(), {}
        for side, stmts in pathways.items():
            k = 0
            decays = {}
            while k < len(stmts):
                var, op, rhs, line = stmts[k]
                found = self.manual_decay(var, rhs, self.paths[side][1], line) if op == "=" and var in self.variables \
                    else None
                if found is None or found[0] == "dt":
                    break
                decays[var] = found
                k += 1
            if decays:
                if not (stmts[-1][0] in {d[0] for d in decays.values()} and stmts[-1][1] == "="
                        and stmts[-1][2] == "t"):
                    last = next(iter(decays.values()))[0]
                    self.fail(self.paths[side][1], f"decays traces from '{last}' but does not end with '{last} = t' "
                                            f"(got {stmts[-1][3]!r})")
                last_vars.add(stmts[-1][0])
                stmts = stmts[k:-1]
            pathways[side] = stmts
            decayed[side] = set(decays)
            for var, found in decays.items():
                if var in manual and manual[var][1:] != found[1:]:
                    self.fail(self.paths[side][1], f"decays '{var}' differently in two pathways (got tau "
                                            f"{found[1]} and {manual[var][1]})")
                manual[var] = found
        if manual:
            for side in self.paths:
                if self.paths[side][2].strip() and decayed[side] != set(manual):
                    missing = sorted(set(manual) - decayed[side])[0]
                    self.fail(self.paths[side][1], f"does not decay '{missing}' before its statements (another "
                                                   f"pathway does): every pathway decays every hand-decayed trace "
                                                   f"(got {missing})")
        # traces from equations
        traces = {}
        for name in self.odes:
            form = self.ode_trace(name)
            if form is not None:
                traces[name] = form
        traces.update({v: found[1:] for v, found in manual.items()})
        for var, form in regular_decays.items():
            if var in traces:
                self.fail("run_regularly", f"decays '{var}', which decays already (its equation or its pathways) "
                                           f"(got {var})")
            traces[var] = form
        ode_weight = [n for n in self.odes if n not in traces]
        temporaries = set()
        # the weight: the variable (not a trace, not the time of the last update) the pathways change
        changed = {var for stmts in pathways.values() for var, *_ in stmts if var in self.variables}
        if self.continuous is not None:
            changed.add(self.continuous[0])
        candidates = [n for n in self.variables if n not in traces and n not in last_vars
                      and n not in self.subexpressions and (n in changed or n in self.odes)]
        # a variable set by `=` before any read in every pathway that uses it is a temporary
        for name in list(candidates):
            if name in self.odes:
                continue
            if self._is_temporary(name, pathways):
                temporaries.add(name)
                candidates.remove(name)
        unchanged = [n for n in self.variables if n not in traces and n not in last_vars and n not in changed
                     and n not in self.odes and n not in self.subexpressions and n not in temporaries]
        if "w" in unchanged or (unchanged and not candidates):
            name = "w" if "w" in unchanged else unchanged[0]
            unit = unit_name(self.dims[name]) if self.dims[name] != DIMENSIONLESS else 1
            self.fail(f"model.{name}", f"'{name}' never changes: no pathway changes it and it has no equation "
                                       f"(code run outside the pathways, such as run_regularly, is not read) "
                                       f"(got {name} : {unit})")
        if not candidates:
            self.fail("model", "no weight: a rule needs one variable that the pathways change (such as 'w : 1' "
                               f"and w = clip(w + ..., lo, hi)) (got {', '.join(self.variables) or 'none'})")
        if len(candidates) > 1:
            self.fail("model", f"more than one variable changes at spikes without decaying: a rule has one weight, "
                               f"and a trace decays (dX/dt = (rest - X)/tau, or by hand at the start of every pathway) "
                               f"(got {', '.join(candidates)})")
        weight = candidates[0]
        for name in ode_weight:
            if name != weight:
                code, _ = self.odes[name]
                self.fail(f"model.{name}", f"'d{name}/dt = {code}': a trace must decay, dX/dt = (rest - X)/tau "
                                           f"with constant rest and tau (got {code})")
        self.weight = weight
        self.traces, self.temporaries = traces, temporaries
        # walk each pathway in order
        results = {key: self.pathway(key, stmts) for key, stmts in pathways.items()}
        return self.assemble(results)


def from_strings(model: str, on_pre: str = "", on_post: str = "", namespace: dict | None = None,
                 name: str = "imported", *, init=None, bounds=None, description: str = "", citation: str = "",
                 source: str = "brian2", run_regularly=(), dt=None, delays: dict | None = None,
                 target_variables=()) -> ImportedRule:
    """The rule a Brian2 ``Synapses(model=..., on_pre=..., on_post=..., namespace=...)`` defines.

    ``on_pre``/``on_post``: code, or Brian2's several pathways, ``{"pre": code, "pre_d": code}``, each
    besides ``pre``/``post`` with its delay in ``delays`` (``{"pre_d": 13.7 * ms}``): it may only jump
    traces, which jump that long after the spike. ``run_regularly``: code, or (code, when), as given to
    ``Synapses.run_regularly``; ``dt``: the rule's time step.
    ``namespace``: name -> number, Brian2 quantity or quantity text (``'20 ms'``).
    ``init``: the weight's initial value (Brian2 sets it after the ``Synapses`` exists; default
    the middle of the bounds). ``bounds``: ``[low, high]`` for a weight the pathways never clip.
    ``target_variables``: the names of the postsynaptic group's variables, which Brian2 reads (without
    a suffix) before the namespace: a statement reading one is refused, one changing one is dropped.
    Returns an :class:`ImportedRule` (a dict for :func:`neurodeploy.spec.loader.rule_from_dict`, with
    ``.notes``); the rule has been loaded once, so the loader accepts it. Bad or unsupported input
    raises :class:`NeurodeployError` naming ``source``, the field and the statement."""
    from neurodeploy.spec.loader import rule_from_dict

    rule = _Importer(model, on_pre, on_post, namespace, name, source, init, bounds, description, citation,
                     run_regularly, dt, delays, target_variables).run()
    rule_from_dict(dict(rule), source)  # refuses what the rule language cannot hold, with the loader's reason
    return rule


def from_synapses(syn, name: str | None = None, namespace: dict | None = None, level: int = 0, *,
                  init=None, bounds=None, description: str = "", citation: str = "") -> ImportedRule:
    """The rule a live :class:`brian2.Synapses` defines: its equations, the code of its ``pre`` and
    ``post`` pathways, and its names resolved as Brian2 resolves them: the object's own
    ``namespace`` when it was given one; else ``namespace``; else the frame of the caller
    ``level`` levels up (0: the function calling ``from_synapses``), as ``run()`` does.
    ``init``: the initial weight (default the middle of the bounds). Other pathways are read with
    their delay (one per pathway); delays on ``pre``/``post`` are refused. run_regularly operations
    are read (their clock's dt becomes the rule's)."""
    import sys

    import numpy as np

    import neurodeploy.brian2_setup  # noqa: F401 - before any other Brian2 import
    from brian2 import Synapses

    if not isinstance(syn, Synapses):
        raise NeurodeployError("from_synapses", "", f"needs a brian2.Synapses (got {type(syn).__name__})")
    source = syn.name
    code = {"pre": {}, "post": {}}
    delays = {}
    for pathway in syn._pathways:
        path = pathway.objname
        if pathway.event != "spike":
            raise NeurodeployError(source, path, f"runs on the event '{pathway.event}': a rule's "
                                                 f"pathways run on spikes (got {pathway.event})")
        try:
            values = np.unique(np.asarray(pathway.delay[:], dtype=float))
        except Exception:  # noqa: BLE001 - no synapses and no delay set: none
            values = np.zeros(0)
        values = values if values.size else np.zeros(1)
        if values.size > 1:
            raise NeurodeployError(source, path, f"has delays that differ between synapses: a rule delays a "
                                                 f"trace's jumps by one time (got {values.min():g} s to "
                                                 f"{values.max():g} s)")
        delay = float(values[0])
        if path == pathway.prepost and delay != 0:
            raise NeurodeployError(source, path, f"has delays: a rule's jumps are not delayed per "
                                                 f"synapse (got {delay:g} s)")
        if path != pathway.prepost:
            delays[path] = f"{delay!r} second"
        code[pathway.prepost][path] = pathway.code
    # run_regularly operations (Brian2's CodeRunner objects the Synapses contains), in their order
    runners = [o for o in syn.contained_objects if type(o).__name__ == "CodeRunner"]
    regular = [(o.abstract_code, o.when) for o in sorted(runners, key=lambda o: o.order)]
    dt = None
    if runners:
        dts = {float(o.clock.dt) for o in runners}
        if len(dts) > 1:
            shown = ", ".join(f"{d:g} s" for d in sorted(dts))
            raise NeurodeployError(source, "run_regularly", f"runs on clocks of different dt: a rule has one "
                                                            f"time step (got {shown})")
        dt = dts.pop()
    elif any("clock-driven" in eq.flags or not eq.flags for eq in syn.equations.ordered
             if eq.type == "differential equation"):
        dt = float(syn.clock.dt)
    if syn.namespace:  # Brian2 then reads only the object's own namespace (and its units)
        names = dict(syn.namespace)
    elif namespace is not None:
        names = dict(namespace)
    else:
        frame = sys._getframe(level + 1)
        names = dict(frame.f_globals)
        names.update(frame.f_locals)
    # Brian2 keeps the event-driven equations apart from the others
    equations = {}
    for eq in list(syn.equations.ordered) + (list(syn.event_driven.ordered) if syn.event_driven else []):
        equations.setdefault(eq.varname, eq)
    model = "\n".join(_equation_text(eq) for eq in equations.values())
    return from_strings(model, code["pre"], code["post"], names,
                        name or re.sub(r"\W", "_", syn.name), init=init, bounds=bounds,
                        description=description, citation=citation, source=source, run_regularly=regular,
                        dt=None if dt is None else f"{dt!r} second", delays=delays,
                        target_variables=_target_variables(syn))


def _target_variables(syn) -> list:
    """The postsynaptic group's variables a ``Synapses`` reads by their bare name (Brian2 adds a reference
    to each, after the synapses' own variables, which keep theirs): ``v``, ``ge``, ``A`` ... (the clock's
    ``t``, ``dt`` are the synapses' own)."""
    from brian2.core.variables import Subexpression

    target = getattr(syn.target, "variables", {})
    names = []
    for name in target:
        if name.startswith("_") or name not in syn.variables or name in syn.equations.names:
            continue
        var = syn.variables[name]
        if type(getattr(var, "owner", None)).__name__ == "Clock":
            continue
        if var is target[name] or (isinstance(var, Subexpression) and isinstance(target[name], Subexpression)):
            names.append(name)
    return names


#: Keys of an import spec file (``neurodeploy import-brian2 SPEC.yaml``).
SPEC_KEYS = ("name", "model", "on_pre", "on_post", "namespace", "init", "bounds", "description", "citation")


def from_spec(path: str) -> ImportedRule:
    """The rule of an import spec file: YAML with ``model``, ``on_pre``, ``on_post``, ``namespace``
    (name -> number or quantity text such as ``'20 ms'``) and optional ``name``, ``init``,
    ``bounds``, ``description``, ``citation``. A Python file is refused: it is never run."""
    import os

    from neurodeploy.spec.loader import read_yaml

    source = os.path.basename(os.fspath(path)) or os.fspath(path)
    if source.endswith((".py", ".pyw", ".ipynb")):
        raise NeurodeployError(source, "", "a Python file is never run: copy the Synapses strings and namespace "
                                           "values into a YAML spec with keys model, on_pre, on_post, namespace "
                                           f"(got {source})")
    data, _ = read_yaml(path, source)
    return _from_spec_data(data, source)


def _from_spec_data(data, source: str) -> ImportedRule:
    import os

    if not isinstance(data, dict):
        raise NeurodeployError(source, "", f"must be a mapping with keys {', '.join(SPEC_KEYS)} "
                                           f"(got {'an empty file' if data is None else type(data).__name__})")
    for key in data:
        if key not in SPEC_KEYS:
            raise NeurodeployError(source, str(key), f"unknown field (allowed: {', '.join(SPEC_KEYS)})")
    if "model" not in data:
        raise NeurodeployError(source, "model", "missing")
    for key in ("model", "on_pre", "on_post", "name", "description", "citation"):
        if key in data and not isinstance(data[key], str):
            raise NeurodeployError(source, key, f"must be text (got {type(data[key]).__name__})")
    namespace = data.get("namespace") or {}
    if not isinstance(namespace, dict):
        raise NeurodeployError(source, "namespace", f"must be a mapping of names to values (got "
                                                    f"{type(namespace).__name__})")
    for key in namespace:
        if not isinstance(key, str) or not key.isidentifier():
            raise NeurodeployError(source, f"namespace.{key}", f"must be a name (got {key!r})")
        _value_of(namespace[key], source, f"namespace.{key}")
    bounds = data.get("bounds")
    if bounds is not None and (not isinstance(bounds, list) or len(bounds) != 2):
        raise NeurodeployError(source, "bounds", f"must be a list [low, high] (got {bounds!r})")
    name = data.get("name") or re.sub(r"\W", "_", os.path.splitext(source)[0]) or "imported"  # my-stdp.yaml: my_stdp
    return from_strings(data["model"], data.get("on_pre", ""), data.get("on_post", ""), namespace, name,
                        init=data.get("init"), bounds=bounds, description=data.get("description", ""),
                        citation=data.get("citation", ""), source=source)


def import_brian2(source, **options) -> ImportedRule:
    """A Brian2 model made into a rule (a mapping with the rule file's content and ``.notes``; verify,
    deploy and ``to_yaml`` take it): ``source`` is an import spec file's path (:func:`from_spec`), a spec's
    content as a mapping (its keys as the file's), or a live ``brian2.Synapses`` (:func:`from_synapses`,
    ``options`` go to it)."""
    import os
    from collections.abc import Mapping

    if isinstance(source, (str, os.PathLike)):
        if options:
            raise NeurodeployError(os.fspath(source), "", f"a spec file takes no options (got {sorted(options)})")
        return from_spec(source)
    if isinstance(source, Mapping):
        if options:
            raise NeurodeployError("spec", "", f"a spec mapping takes no options (got {sorted(options)})")
        return _from_spec_data(dict(source), "spec")
    if type(source).__name__ == "Synapses" or hasattr(source, "equations"):
        return from_synapses(source, **options)
    raise NeurodeployError("import_brian2", "source", "must be an import spec file, a spec mapping or a "
                                                      f"brian2.Synapses (got {type(source).__name__})")
