"""The unit table the loader uses without Brian2 is Brian2's own: every named unit has Brian2's
scale and dimension, every dimension Brian2's display name, and parsed quantities equal Brian2's
arithmetic bit for bit."""
import itertools
import os
import re
import subprocess
import sys

import pytest

import neurodeploy.brian2_setup  # noqa: F401
from brian2 import units as b2units
from brian2.units.fundamentalunits import Unit, get_dimensions, get_or_create_dimension, get_unit

from neurodeploy.errors import NeurodeployError
from neurodeploy.spec.gen_unit_table import table_source
from neurodeploy.spec.unit_table import UNITS
from neurodeploy.spec.units import DIMENSIONLESS, Dimension, dim_name, parse_quantity, to_brian2

B2_NAMES = sorted(n for n in dir(b2units) if not n.startswith("_") and isinstance(getattr(b2units, n), Unit))


def test_table_is_generated_from_the_installed_brian2():
    with open(sys.modules["neurodeploy.spec.unit_table"].__file__, encoding="utf-8") as handle:
        assert handle.read() == table_source(), "run scripts/gen_unit_table"


def test_every_brian2_unit_and_no_other():
    assert sorted(UNITS) == B2_NAMES
    for name in B2_NAMES:
        unit = getattr(b2units, name)
        q = parse_quantity(f"1 {name}", "r.yaml", "f")
        assert q.value == float(unit), name
        assert to_brian2(q.dim) is unit.dim, name


@pytest.mark.parametrize("text", ["20 ms", "3.5 mV", "2 nS", "10 Hz", "1e-3 siemens/cm**2", "4 mV/ms",
                                  "7 ms**-1", "0.3 s", "2 mmolar", "5 uA / cm ** 2", "1 kHz * ms", "6 um2",
                                  "1.25 pF/um^2", "9 mV / second ** 2", "0.1 nS / Hz"])
def test_quantities_equal_brian2_arithmetic(text):
    q = parse_quantity(text, "r.yaml", "f")
    number, _, unit_text = text.partition(" ")
    expected = float(number)
    unit = 1
    for op, name, power in re.findall(r"([*/]?)\s*([A-Za-z][A-Za-z0-9]*)(?:\s*(?:\*\*|\^)\s*(-?\d))?",
                                                     unit_text):
        factor = b2units.second if name == "s" else getattr(b2units, name)
        e = int(power) if power else 1
        unit = unit * factor ** (-e if op == "/" else e)
    assert q.value == expected * float(unit)
    assert to_brian2(q.dim) is get_dimensions(unit)


def test_dimension_names_are_brian2s():
    # every dimension with exponents -3..3 over metre, kilogram, second, amp (2401 dimensions)
    for m, kg, s, a in itertools.product(range(-3, 4), repeat=4):
        exps = (m, kg, s, a, 0, 0, 0)
        ours = Dimension(exps)
        theirs = get_or_create_dimension(exps)
        expected = "dimensionless" if theirs.is_dimensionless else repr(get_unit(theirs))
        assert dim_name(ours) == expected, exps
        assert (ours == DIMENSIONLESS) == theirs.is_dimensionless


def test_unknown_unit_is_refused_with_one_line():
    with pytest.raises(NeurodeployError) as info:
        parse_quantity("3 parsec", "r.yaml", "parameters.d")
    assert str(info.value) == "r.yaml: parameters.d: unknown unit 'parsec' (got '3 parsec')"


def test_loading_a_rule_does_not_import_brian2_and_yaml_errors_do_not_import_sympy(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: &x 1\nb: *x\n")
    code = ("import sys; from neurodeploy.spec.loader import load_rule\n"
            "load_rule('reference/rules/stdp_triplet.yaml')\n"
            "assert 'brian2' not in sys.modules, 'brian2 imported'\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=os.path.dirname(os.path.dirname(__file__)))
    code = ("import sys\nfrom neurodeploy.errors import NeurodeployError\nfrom neurodeploy.spec.loader import load_rule\n"
            f"try:\n    load_rule({str(bad)!r})\nexcept NeurodeployError:\n    pass\n"
            "assert 'sympy' not in sys.modules and 'brian2' not in sys.modules, sorted(sys.modules)\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_backend_names_checked_without_importing_backends_are_the_registered_ones():
    from neurodeploy.backend import ORDER
    from neurodeploy.targets import load_all
    assert sorted(load_all().names()) == sorted(ORDER)
