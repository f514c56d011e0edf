"""The start's progress on a terminal: one line per start step (starting a service with its database migrations,
building the test guest) with a spinner while it runs and its time once done, drawn by Rich. The service logs
keep printing above it. Off a terminal (a pipe, `up -d`'s log file, the tests) each step is a log line instead."""

from __future__ import annotations

import logging
import sys
from typing import IO

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

log = logging.getLogger("pocketstack.launcher")


class StartProgress:
    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(file=sys.stderr)
        self.live = self.console.is_terminal
        self._progress: Progress | None = None
        self._current: TaskID | None = None
        self._streams: list[tuple[logging.StreamHandler[IO[str]], IO[str]]] = []

    def step(self, text: str) -> None:
        """A start step begins (the previous one is done)."""
        if not self.live:
            log.info("%s", text)
            return
        if self._progress is None:
            self._progress = Progress(SpinnerColumn(finished_text="[green]✓"), TextColumn("{task.description}"),
                                      TimeElapsedColumn(), console=self.console, redirect_stderr=True,
                                      redirect_stdout=True, transient=False)
            self._progress.start()
            self._follow_logs()
        self._finish_current()
        self._current = self._progress.add_task(text, total=1)

    def done(self) -> None:
        """Every step is done: the lines stay, the spinner stops."""
        if self._progress is None:
            return
        self._finish_current()
        self._progress.stop()
        for handler, stream in self._streams:
            handler.setStream(stream)
        self._streams.clear()
        self._progress = None

    def _finish_current(self) -> None:
        if self._progress is not None and self._current is not None:
            self._progress.update(self._current, completed=1)

    def _follow_logs(self) -> None:
        """The terminal log handlers write through Rich's redirected stderr, so log lines print above the steps."""
        for handler in logging.getLogger().handlers:
            if type(handler) is logging.StreamHandler and handler.stream in (sys.__stderr__, sys.__stdout__):
                self._streams.append((handler, handler.stream))
                handler.setStream(sys.stderr)
