"""The one error type neurodeploy raises for bad user input.

Every message has the form ``<file>: <field>: <problem> (got <value>)`` so a
user can find the offending line without a traceback. The CLI prints
``str(error)`` on one line and exits with code 2.
"""
from __future__ import annotations

import unicodedata


def printable(text, limit: int = 600) -> str:
    """``text`` safe for one terminal line: control and format characters (newlines,
    ANSI escapes, bidirectional overrides) escaped, at most ``limit`` characters."""
    text = str(text)
    out = []
    for char in text:
        if unicodedata.category(char)[0] in ("C", "Z") and char != " ":
            out.append(char.encode("unicode_escape").decode("ascii"))
        else:
            out.append(char)
    text = "".join(out)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class NeurodeployError(Exception):
    """Bad input: a rule file, a spike file, a plan or a command-line value.

    Parameters
    ----------
    source:
        The file (base name) or option the problem is in, e.g. ``stdp_pair.yaml``.
    field:
        Dotted path of the field inside ``source``, e.g. ``traces.x.tau``;
        empty when the problem concerns the whole file.
    message:
        What is wrong, in a few words, e.g. ``must be > 0 (got 0 ms)``.
    """

    def __init__(self, source: str, field: str, message: str):
        self.source = source
        self.field = field
        self.message = message
        parts = [printable(p, limit) for p, limit in ((source, 200), (field, 200), (message, 600)) if p]
        super().__init__(": ".join(parts))

    def with_source(self, source: str) -> "NeurodeployError":
        """The same error, attributed to ``source`` (used when the parser did not know the file)."""
        return NeurodeployError(source, self.field, self.message)


class UnsupportedError(Exception):
    """A rule uses something a target cannot realise; the message names the term and the reason."""


def did_you_mean(name, candidates, cutoff: float = 0.6) -> str:
    """``", did you mean 'tau'?"`` when one of ``candidates`` is close to ``name`` (difflib), else ``""``.

    A spelling that differs only in case wins (``hz`` -> ``Hz``); otherwise the closest of
    :func:`difflib.get_close_matches` (ratio >= ``cutoff``), with case, then without."""
    import difflib

    if not isinstance(name, str) or not name:
        return ""
    candidates = [c for c in candidates if isinstance(c, str) and c != name]
    folded = sorted(c for c in candidates if c.lower() == name.lower())[:2]  # ms or mS
    match = folded or difflib.get_close_matches(name, candidates, n=1, cutoff=cutoff)
    if not match:  # MSEC -> msecond: compare without case
        lowered = {}
        for c in sorted(candidates, key=lambda c: (c != c.lower(), c)):  # msecond before Msecond
            lowered.setdefault(c.lower(), c)
        match = [lowered[m] for m in difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=cutoff)]
    return (", did you mean " + " or ".join(f"'{m}'" for m in match) + "?") if match else ""
