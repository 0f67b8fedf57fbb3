"""The live progress line of ``sohoa digitise`` and ``sohoa batch add|retry`` (``interfaces.cli.progress``)."""

from __future__ import annotations

import io
import time

import pytest

from interfaces.cli.progress import progress_line


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_redrawn_on_a_terminal_then_left_on_its_own_line(monkeypatch: pytest.MonkeyPatch) -> None:
    err = Terminal()
    monkeypatch.setattr("sys.stderr", err)
    calls = iter(range(1000))
    with progress_line(lambda: f"{next(calls)} trang", shown=True):
        time.sleep(1.2)
    lines = err.getvalue()
    assert lines.count("\r") >= 3 and lines.endswith(" trang\n")  # two redraws, then the final state


@pytest.mark.parametrize("terminal", [True, False])
def test_silent_when_hidden_or_not_a_terminal(monkeypatch: pytest.MonkeyPatch, terminal: bool) -> None:
    err = Terminal() if terminal else io.StringIO()
    monkeypatch.setattr("sys.stderr", err)
    with pytest.raises(KeyboardInterrupt), progress_line(lambda: "x", shown=not terminal):
        raise KeyboardInterrupt  # an interrupted run still leaves the terminal clean
    assert err.getvalue() == ""
