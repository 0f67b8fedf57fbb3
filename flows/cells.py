"""Text put in front of people: spreadsheet cells and terminal lines built from values others typed.

``neutralise_formula``: cells written to files people open in a spreadsheet (CSV, XLSX) must stay text, never
formulas. A cell whose text starts with ``=``, ``+``, ``-`` or ``@`` (or a tab, carriage return or line feed,
which some importers strip before looking) is read by Excel and LibreOffice as a formula:
``=HYPERLINK("http://x","y")`` typed as a login name would become a live link in an inspector's spreadsheet
(CSV/formula injection). OWASP's remedy: prefix such a cell with a single quote, so it is taken as text. Full-width
forms (``＝``, ``＋``, ``－``, ``＠``, typed with East Asian input methods and accepted as formula starts by some
spreadsheet versions) and the same triggers behind leading blanks (which an importer may trim) are treated alike.

``visible_text``: a value printed on a terminal line, with control and format characters (line breaks, ESC,
bidi overrides) shown as escapes, so it cannot start a forged line or recolour the screen.
"""

from __future__ import annotations

from storage.audit import escape_controls as visible_text

FORMULA_TRIGGERS = frozenset("=+-@\t\r\n\uff1d\uff0b\uff0d\uff20")
_LEADING_BLANKS = " \u00a0\u3000\t\r\n\x0b\x0c"


def neutralise_formula(value: str) -> str:
    """``value`` as a cell that no spreadsheet reads as a formula: prefixed with ``'`` when it could start one."""
    if not value:
        return value
    if value[0] in FORMULA_TRIGGERS or value.lstrip(_LEADING_BLANKS)[:1] in FORMULA_TRIGGERS:
        return "'" + value
    return value


__all__ = ["FORMULA_TRIGGERS", "neutralise_formula", "visible_text"]
