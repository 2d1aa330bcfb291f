"""The progress bar of ``logpipe parse`` (rich), imported only when stderr is a terminal."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

__all__ = ["RichProgress"]


class RichProgress:
    """A transient progress bar on stderr: bytes while reading, lines while writing."""

    def __init__(self, console: Console) -> None:
        self._console = console
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def start(self, description: str, total: int | None) -> None:
        self.stop()
        amount = DownloadColumn() if description == "reading" else MofNCompleteColumn()
        speed = TransferSpeedColumn() if description == "reading" else TimeElapsedColumn()
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            amount,
            speed,
            TimeRemainingColumn(),
            console=self._console,
            transient=True,
        )
        self._progress.start()
        self._task = self._progress.add_task(description, total=total)

    def update(self, completed: int) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, completed=completed)

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
            self._task = None
