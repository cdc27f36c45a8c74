"""Progress reporting: a rich progress bar on stderr when asked for, nothing otherwise."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol


class Progress(Protocol):
    def advance(self, steps: float = 1, description: str | None = None) -> None: ...


class _Silent:
    def advance(self, steps: float = 1, description: str | None = None) -> None:
        return None


class _Bar:
    def __init__(self, progress: object, task: object) -> None:
        self._progress = progress
        self._task = task

    def advance(self, steps: float = 1, description: str | None = None) -> None:
        kwargs = {} if description is None else {"description": description}
        self._progress.update(self._task, advance=steps, **kwargs)  # type: ignore[attr-defined]


@contextmanager
def progress_bar(description: str, total: float | None, *, show: bool) -> Iterator[Progress]:
    """Yield an object with ``advance``; draws a bar with ETA on stderr only when ``show``."""
    if not show:
        yield _Silent()
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.progress import Progress as RichProgress

    console = Console(stderr=True)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with RichProgress(*columns, console=console, transient=False) as bar:
        task = bar.add_task(description, total=total)
        yield _Bar(bar, task)
