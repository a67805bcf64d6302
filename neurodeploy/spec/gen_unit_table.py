"""Write ``neurodeploy/spec/unit_table.py`` from the installed Brian2 (``scripts/gen_unit_table``)."""
from __future__ import annotations

import os


def table_source() -> str:
    """The text of ``unit_table.py`` for the installed Brian2."""
    import neurodeploy.brian2_setup  # noqa: F401 - before any other Brian2 import
    import brian2
    from brian2 import units as b2units
    from brian2.units.fundamentalunits import (Unit, additional_unit_register, standard_unit_register,
                                               user_unit_register)

    names = sorted(n for n in dir(b2units) if not n.startswith("_") and isinstance(getattr(b2units, n), Unit))
    out = ['"""Brian2\'s named units (``brian2.units``): scale in SI and dimension exponents',
           "(metre, kilogram, second, amp, kelvin, mole, candle), and the name Brian2 gives the unscaled",
           "unit of a dimension (``get_unit``).",
           "",
           f"Generated from brian2 {brian2.__version__} by ``scripts/gen_unit_table``; ``tests/test_units.py``",
           "checks it against the installed Brian2. It lets the rule loader check units without importing",
           'Brian2 (a rejected file is reported in well under a second)."""',
           "",
           "UNITS = {"]
    for n in names:
        unit = getattr(b2units, n)
        out.append(f"    {n!r}: ({float(unit)!r}, {tuple(unit.dim._dims)!r}),")
    out += ["}", "", "DISPLAY = {"]
    seen = set()
    for register in (standard_unit_register, user_unit_register, additional_unit_register):
        for dim, by_scale in register.units_for_dimensions.items():
            key = tuple(dim._dims)
            if 1.0 in by_scale and key not in seen:
                seen.add(key)
                out.append(f"    {key!r}: {repr(by_scale[1.0])!r},")
    out += ["}", ""]
    return "\n".join(out)


def main() -> None:
    path = os.path.join(os.path.dirname(__file__), "unit_table.py")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(table_source())
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
