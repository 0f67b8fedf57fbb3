"""One ``ExitCode`` enum for every exit status of ``sohoa``: the numbers scripts depend on never change, every error
class refers to a member, and the command line returns members, never bare numbers."""

from __future__ import annotations

import ast
from pathlib import Path

from flows.audit import AuditTrailError
from flows.corrections import CorrectionsUnreadable, ReindexPending
from flows.scheduled import FixityProblemsFound
from ocr_models.engine import OcrTimeout
from schemas.errors import (
    ConfigError,
    DocumentError,
    ExitCode,
    NotFoundError,
    OcrError,
    SohoaError,
    ToolMissingError,
)

CLI = Path(__file__).resolve().parents[1] / "interfaces" / "cli"


def test_the_numbers_scripts_depend_on() -> None:
    assert {code.name: int(code) for code in ExitCode} == {
        "OK": 0, "ERROR": 1, "USAGE": 2, "SOME_FAILED": 3, "CONFIG": 4, "TOOL_MISSING": 5, "NOT_FOUND": 6,
        "PRESERVATION_PROBLEMS": 7, "INTERRUPTED": 130}


def test_every_error_class_exits_with_a_member() -> None:
    expected = {SohoaError: ExitCode.ERROR, ConfigError: ExitCode.CONFIG, ToolMissingError: ExitCode.TOOL_MISSING,
                NotFoundError: ExitCode.NOT_FOUND, DocumentError: ExitCode.ERROR, OcrError: ExitCode.ERROR,
                OcrTimeout: ExitCode.ERROR, AuditTrailError: ExitCode.PRESERVATION_PROBLEMS,
                CorrectionsUnreadable: ExitCode.PRESERVATION_PROBLEMS, ReindexPending: ExitCode.PRESERVATION_PROBLEMS,
                FixityProblemsFound: ExitCode.PRESERVATION_PROBLEMS}
    for cls, code in expected.items():
        assert type(cls.exit_code) is ExitCode and cls.exit_code is code, cls
    assert issubclass(OcrTimeout, SohoaError)


def _literal_exit_codes(source: str) -> list[int]:
    """Integer constants returned, or assigned to an ``exit_code``/``EXIT_*`` name."""
    found = []
    for node in ast.walk(ast.parse(source)):
        exit_name = isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and (t.id == "exit_code" or t.id.startswith("EXIT_")) for t in node.targets)
        value = getattr(node, "value", None) if exit_name or isinstance(node, ast.Return) else None
        if isinstance(value, ast.Constant) and type(value.value) is int:
            found.append(value.value)
    return found


def test_the_command_line_returns_members_not_numbers() -> None:
    assert sorted(_literal_exit_codes("def f():\n    return 130\nEXIT_USAGE = 2\n")) == [2, 130]  # the check itself
    offenders = {path.name: codes for path in sorted(CLI.glob("*.py"))
                 if (codes := _literal_exit_codes(path.read_text(encoding="utf-8")))}
    assert offenders == {}
