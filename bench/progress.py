"""The progress display of a long benchmark (rich): one bar, what runs now, notes above it."""
from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
from rich.progress import Progress as _RichProgress


class Progress:
    """`with Progress(total=phases) as p: p.describe(...); p.advance(); p.note(...)`."""

    def __init__(self, total: int, console: Console | None = None):
        self._bar = _RichProgress(TextColumn("{task.description}"), BarColumn(),
                                  MofNCompleteColumn(), TimeElapsedColumn(),
                                  console=console or Console(), transient=False,
                                  refresh_per_second=2)  # the bench must not steal the CPU it measures
        self._task = self._bar.add_task("starting", total=total)

    def __enter__(self) -> "Progress":
        self._bar.start()
        return self

    def __exit__(self, *exc) -> None:
        self._bar.stop()

    def describe(self, text: str) -> None:
        self._bar.update(self._task, description=text)

    def advance(self, steps: int = 1) -> None:
        self._bar.advance(self._task, steps)

    def note(self, text: str) -> None:
        """A line printed above the bar (rich markup allowed)."""
        self._bar.console.print(text)
