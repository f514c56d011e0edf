"""The start's progress lines: on a terminal one line per step, done ones with a tick and their time, log lines
printed above them; off a terminal each step is a log line and nothing is drawn."""

from __future__ import annotations

import io
import logging

from rich.console import Console

from pocketstack.progress import StartProgress


def test_steps_on_a_terminal_are_drawn_with_ticks_and_logs_print_above(caplog) -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=100, color_system=None)
    progress = StartProgress(console)
    assert progress.live
    progress.step("starting identity (database migrations first)")
    logging.getLogger("pocketstack.test").warning("a log line while a step runs")
    progress.step("starting image (database migrations first)")
    progress.done()
    text = out.getvalue()
    assert "starting identity" in text and "starting image" in text
    assert text.count("✓") >= 2  # both steps done once the cloud is ready
    progress.done()  # a second stop (the launcher's finally) does nothing


def test_off_a_terminal_each_step_is_a_log_line(caplog) -> None:
    progress = StartProgress(Console(file=io.StringIO(), force_terminal=False))
    assert not progress.live
    with caplog.at_level(logging.INFO, logger="pocketstack.launcher"):
        progress.step("starting compute (database migrations first)")
        progress.done()
    assert [r.getMessage() for r in caplog.records] == ["starting compute (database migrations first)"]
