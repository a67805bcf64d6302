"""The rule's traces recognised in the definition: decays (equations, by hand, run_regularly), jumps per
pathway, temporaries; each pathway's statements in Brian2's order."""
from __future__ import annotations

import ast
import re


from neurodeploy.importers.brian2.text import (rule_text)
from neurodeploy.spec.units import (Dimension, dim_name, parse_quantity)


class Traces:
    """The importer's traces (a part of :class:`neurodeploy.importers.brian2._Importer`)."""

    # traces ------------------------------------------------------------------------------------------
    def ode_trace(self, name):
        """(tau text, rest text or None) of ``dX/dt = (rest - X)/tau``, or None when not of this form."""
        code, _ = self.odes[name]
        field, statement = f"model.{name}", f"d{name}/dt = {code}"
        try:
            node = ast.parse(code.strip(), mode="eval").body
        except SyntaxError:
            return None
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            num, tau = node.left, ast.unparse(node.right)
            if name in {n.id for n in ast.walk(node.right) if isinstance(n, ast.Name)}:
                return None
            rest = None
            if isinstance(num, ast.UnaryOp) and isinstance(num.op, ast.USub):
                inner = num.operand
                if isinstance(inner, ast.Name) and inner.id == name:
                    rest = "0"
                elif (isinstance(inner, ast.BinOp) and isinstance(inner.op, ast.Sub)
                      and isinstance(inner.left, ast.Name) and inner.left.id == name):
                    rest = ast.unparse(inner.right)
            elif (isinstance(num, ast.BinOp) and isinstance(num.op, ast.Sub) and isinstance(num.right, ast.Name)
                  and num.right.id == name):
                rest = ast.unparse(num.left)
            if rest is not None and name not in {n.id for n in ast.walk(ast.parse(rest, mode="eval"))
                                                 if isinstance(n, ast.Name)}:
                return self._tau_rest(name, tau, rest, field, statement)
        # any other linear form: tau = -1/a, rest = -b/a from dX/dt = a X + b (sympy)
        expr = self.parse(code, field, statement)
        x = self.sympy.Symbol(name, real=True)
        x = next((s for s in expr.free_symbols if s.name == name), x)
        a = self.sympy.diff(expr, x)
        if a.free_symbols & {s for s in expr.free_symbols if s.name in self.variables} or a == 0:
            return None
        b = self.sympy.simplify(expr - a * x)
        if any(s.name in self.variables for s in b.free_symbols):
            return None
        return self._tau_rest(name, rule_text(-1 / a), rule_text(self.sympy.simplify(-b / a)), field, statement)

    def _tau_rest(self, name, tau, rest, field, statement):
        from neurodeploy.spec.units import SECOND

        tau_text, tau_dim = self.constant_text(tau, field, statement)
        if tau_dim != SECOND:
            self.fail(field, f"'{statement}': the time constant must be a time (got {tau}, {dim_name(tau_dim)})")
        rest_text, rest_dim = self.constant_text(rest, field, statement, want=self.dims[name])
        if rest_dim != self.dims[name]:
            self.fail(field, f"'{statement}': the rest value must have the unit of {name}, "
                             f"{dim_name(self.dims[name])} (got {rest}, {dim_name(rest_dim)})")
        if isinstance(rest_text, str) and rest_text in self.param_dims:  # a parameter's name
            rest_value = self.param_dims[rest_text][0]
        else:
            rest_value = parse_quantity(rest_text, "", "").value
        return tau_text, (None if rest_value == 0 else rest_text)

    def manual_decay(self, var, rhs, field, statement):
        """``X = X * exp(-(t - L)/tau)`` or ``X = rest + (X - rest) * exp(-(t - L)/tau)``:
        (L, tau text, rest text or None), or None when the statement is not a decay."""
        try:
            node = ast.parse(rhs.strip(), mode="eval").body
        except SyntaxError:
            return None

        def is_var(n):
            return isinstance(n, ast.Name) and n.id == var

        def decay_factor(n):
            if not (isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "exp"
                    and len(n.args) == 1):
                return None
            arg = n.args[0]  # -((t - L) / tau), -(t - L) / tau or (L - t) / tau
            neg = isinstance(arg, ast.UnaryOp) and isinstance(arg.op, ast.USub)
            body = arg.operand if neg else arg
            if not (isinstance(body, ast.BinOp) and isinstance(body.op, ast.Div)):
                return None
            diff = body.left
            if not neg and isinstance(diff, ast.UnaryOp) and isinstance(diff.op, ast.USub):
                neg, diff = True, diff.operand
            if neg and isinstance(diff, ast.Name) and diff.id == "dt":  # one step: run_regularly's decay
                return "dt", ast.unparse(body.right)
            if not (isinstance(diff, ast.BinOp) and isinstance(diff.op, ast.Sub) and isinstance(diff.left, ast.Name)
                    and isinstance(diff.right, ast.Name)):
                return None
            first, second = diff.left.id, diff.right.id
            if neg and first == "t":
                return second, ast.unparse(body.right)
            if not neg and second == "t":
                return first, ast.unparse(body.right)
            return None

        rest = None
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
            pair = (node.left, node.right)
            for a, b in (pair, pair[::-1]):
                if is_var(a) and decay_factor(b):
                    last, tau = decay_factor(b)
                    break
            else:
                return None
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add) and isinstance(node.right, ast.BinOp) \
                and isinstance(node.right.op, ast.Mult):
            rest = ast.unparse(node.left)
            diff, factor = node.right.left, node.right.right
            if not (isinstance(diff, ast.BinOp) and isinstance(diff.op, ast.Sub) and is_var(diff.left)
                    and ast.unparse(diff.right) == rest and decay_factor(factor)):
                return None
            last, tau = decay_factor(factor)
        else:
            return None
        if last == "dt":
            tau_text, rest_text = self._tau_rest(var, tau, rest or "0", field, statement)
            return last, tau_text, rest_text
        if last not in self.variables or self.dims[last] != Dimension((0, 0, 1, 0, 0, 0, 0)):
            self.fail(field, f"'{statement}': decays from '{last}', which must be a model variable in seconds "
                             f"set to t at the end of every pathway (got {last})")
        tau_text, rest_text = self._tau_rest(var, tau, rest or "0", field, statement)
        return last, tau_text, rest_text

    def _is_temporary(self, name, pathways):
        used = False
        for stmts in pathways.values():
            set_before = False
            for var, op, rhs, line in stmts:
                reads = re.search(rf"\b{re.escape(name)}\b", rhs) is not None
                if reads or (var == name and op != "="):
                    if not set_before:
                        return False
                    used = True
                if var == name and op == "=":
                    set_before = True
                    used = True
        return used

    def pathway(self, key, stmts):
        sympy = self.sympy
        field = self.paths[key][1]
        names = lambda e: {s.name for s in e.free_symbols}  # noqa: E731
        current = {}  # variable -> its value now, over the values before the spike
        jumps = []  # (trace, jump expression over the current values), in order
        delta, bounds, w_line = None, None, None
        for var, op, rhs, line in stmts:
            if var not in self.variables:
                if var in self.namespace and var not in self.target_variables:
                    self.fail(field, f"'{line}': assigns '{var}', a namespace value, not a variable of the "
                                     f"model (got {line!r})")
                group = "source" if var.endswith("_pre") else "target"
                self.notes.append(f"{field}: dropped '{line}': it changes the {group} group's '{var}' "
                                  f"(an effect of the synapse, not part of the rule)")
                continue
            if var in self.subexpressions:
                self.fail(field, f"'{line}': assigns the subexpression '{var}' (got {line!r})")
            changed_here = {s.name for s in current}
            for sub in self.subexpressions_read(rhs):
                event = sorted(v for v in self.depends_on(sub) if "event-driven" in self.odes.get(v, ("", ()))[1])
                if event:
                    self.fail(field, f"'{line}': reads the subexpression '{sub}' of the event-driven '{event[0]}', "
                                     f"which Brian2 2.9 evaluates before the pathway decays '{event[0]}': write "
                                     f"{sub}'s expression out instead (got {line!r})")
                stale = sorted(self.depends_on(sub) & changed_here)
                if stale:
                    self.fail(field, f"'{line}': reads the subexpression '{sub}' after '{stale[0]}' changed in this "
                                     f"pathway, where Brian2 2.9 uses {sub} from before the change (its documentation "
                                     f"says after): write {sub}'s expression out instead (got {line!r})")
            expr = self.parse(rhs, field, line)
            for n in names(expr):
                if n not in self.variables or n not in self.traces and n != self.weight and n not in self.temporaries:
                    self.resolve(n, field, line)
                elif n in self.temporaries and self.symbol(n) not in current:
                    self.fail(field, f"'{line}': reads '{n}' before this pathway sets it (got {line!r})")
            x = self.symbol(var)
            if var == self.weight:
                if delta is not None:
                    self.fail(field, f"'{line}': changes {var} a second time ('{w_line}' did): a rule changes the "
                                     f"weight once per spike (got {line!r})")
                w_line = line
                if op == "=" and isinstance(expr, sympy.Function) and type(expr).__name__ == "clip":
                    if len(expr.args) != 3:
                        self.fail(field, f"'{line}': clip takes (value, low, high) (got {line!r})")
                    inner, lo, hi = expr.args
                    bounds = (lo, hi)
                    change = inner - x
                elif op in ("+=", "-="):
                    change = expr if op == "+=" else -expr
                elif op == "=":
                    change = expr - x
                else:
                    self.fail(field, f"'{line}': only {var} = clip({var} + ..., low, high), {var} += ..., "
                                     f"{var} -= ... and {var} = ... change the weight (got {line!r})")
                if any(type(f).__name__ == "clip" for f in change.atoms(sympy.Function)):
                    self.fail(field, f"'{line}': clip only as {var} = clip({var} + change, low, high) (got {line!r})")
                delta = change.xreplace(current)
                current[x] = x + delta
                continue
            if var in self.traces:
                if any(s.name == var for s in current):
                    self.fail(field, f"'{line}': changes {var} a second time in one pathway: a trace jumps once "
                                     f"per spike (got {line!r})")
                jump = {"+=": expr, "-=": -expr, "=": expr - x, "*=": x * expr - x, "/=": x / expr - x}[op]
                read = names(jump) & (set(self.variables) - set(self.traces))
                if read:
                    self.fail(field, f"'{line}': a trace's jump may read traces and constants only, it reads "
                                     f"'{sorted(read)[0]}' (got {line!r})")
                jumps.append((var, jump, line))
                current[x] = (x + jump).xreplace(current)
                continue
            # a temporary
            if op != "=":
                self.fail(field, f"'{line}': '{var}' is not a trace nor the weight: only '{var} = ...' "
                                 f"(a value used later in the pathway) (got {line!r})")
            current[x] = expr.xreplace(current)
        if delta is not None and self.paths[key][3] > 0:
            self.fail(field, f"'{w_line}': changes the weight on a delayed pathway: a rule's delayed pathways only "
                             f"jump traces (got {w_line!r})")
        return {"delta": delta, "bounds": bounds, "line": w_line, "jumps": jumps}
