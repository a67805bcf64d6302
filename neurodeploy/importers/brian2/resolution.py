"""Names resolved as Brian2 resolves them (the synapses' variables, the target group's, Brian2's constants and
units, the namespace), and values with their units."""
from __future__ import annotations

import math


from neurodeploy.errors import NeurodeployError
from neurodeploy.importers.brian2.text import (_RUNTIME, _brian2_builtin,
                                             _value_of, quantity_text, rule_text)


class Resolution:
    """The importer's resolution (a part of :class:`neurodeploy.importers.brian2._Importer`)."""

    def resolve(self, name, field, statement):
        """Make the non-variable ``name`` a rule parameter, resolved in Brian2's order (``Group._resolve``):
        the synapses' own variables (the model's, and Brian2's ``t``, ``dt``, ``i``, ...), then the
        postsynaptic group's variables (a ``Synapses`` reads those without a suffix), then Brian2's
        constants (``e``, ``pi``: their values, written as numbers), units and functions, and only then the
        namespace. The presynaptic group's variables are read only as ``name_pre``."""
        if name in self.params:
            return
        if name in self.variables:
            self.fail(field, f"'{statement}': reads '{name}', a variable of the synapses that is neither a trace nor "
                             f"the weight: a rule has no other per-synapse value (got {name})")
        if name in _RUNTIME:
            self.fail(field, f"'{statement}': reads '{name}' ({_RUNTIME[name]}), which a rule cannot "
                             f"(got {name})")
        if name in self.target_variables:
            self.fail(field, f"'{statement}': reads '{name}', a variable of the target group (Brian2 reads a name "
                             f"the postsynaptic group defines before the namespace): a rule reads only its traces, "
                             f"its weight and constants (got {name})")
        if name.endswith(("_pre", "_post")):
            group = "source" if name.endswith("_pre") else "target"
            self.fail(field, f"'{statement}': reads '{name}', a variable of the {group} group: a rule reads only "
                             f"its traces, its weight and constants (got {name})")
        builtin = _brian2_builtin(name)
        if builtin is not None:
            kind, value, dim = builtin
            self._note_shadowed(name, kind, value, dim)
            if kind == "constant":
                return  # written as its value (see sympy_of)
        elif name in self.namespace:
            value, dim = _value_of(self.namespace[name], self.source, f"namespace.{name}")
        else:
            self.fail(field, f"'{statement}': '{name}' is not a variable of the model nor in the namespace "
                             f"(got {name})")
        self.params[name] = quantity_text(value, dim)
        self.param_dims[name] = (value, dim)

    def _note_shadowed(self, name, kind, value, dim):
        """A namespace value that Brian2 does not read because its constant or unit of that name comes first
        (Brian2 warns): noted once."""
        if name not in self.namespace or name in self.shadowed:
            return
        self.shadowed.add(name)
        try:
            given = _value_of(self.namespace[name], self.source, f"namespace.{name}")
        except NeurodeployError:
            return  # not a number: Brian2 ignores it
        if given == (value, dim):
            return
        shown = repr(value) if kind == "constant" else quantity_text(value, dim)
        self.notes.append(f"namespace.{name}: not used: Brian2 reads '{name}' as its {kind} {shown}, which comes "
                          f"before the namespace's {quantity_text(*given)}")

    def numeric(self, expr, field, statement):
        """(value, Dimension) of a constant expression over the namespace."""
        from neurodeploy.spec.units import DimensionMismatch, dimensions_of

        sympy = self.sympy
        for s in expr.free_symbols:
            if s.name in self.variables:
                self.fail(field, f"'{statement}': must be a constant, it reads the variable '{s.name}' "
                                 f"(got {rule_text(expr)})")
            self.resolve(s.name, field, statement)
        try:
            dim = dimensions_of(expr, {n: d for n, (_, d) in self.param_dims.items()})
            value = float(expr.xreplace({s: sympy.Float(self.param_dims[s.name][0]) for s in expr.free_symbols}))
        except (DimensionMismatch, TypeError, ValueError) as exc:
            self.fail(field, f"'{statement}': not a constant quantity: {exc} (got {rule_text(expr)})")
        if not math.isfinite(value):
            self.fail(field, f"'{statement}': must be finite (got {rule_text(expr)})")
        return value, dim

    def constant_text(self, text, field, statement, want=None):
        """Rule text of a constant: the parameter's name when it is one, else its value as a quantity."""
        expr = self.parse(text, field, statement)
        if expr.is_Symbol and expr.name not in self.variables:
            self.resolve(expr.name, field, statement)
            return expr.name, self.param_dims[expr.name][1]
        value, dim = self.numeric(expr, field, statement)
        if value == 0 and want is not None:
            dim = want
        return quantity_text(value, dim), dim
