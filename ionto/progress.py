"""A progress bar for long commands, as a callback the workers report to.

Examples
--------
>>> with progress_bar("counting", unit="items", enabled=False) as advance:
...     advance(5, 10)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from data_schemas.callbacks import ProgressCallback


@contextmanager
def progress_bar(
    description: str, *, unit: str, enabled: bool = True
) -> Iterator[ProgressCallback]:
    """A rich progress bar on stderr; yields a ``(done, total)`` callback.

    Only a terminal gets the bar: logs and pipes (cron, CI, a subprocess) stay clean.

    Parameters
    ----------
    description : str
        What is being done, shown left of the bar.
    unit : str
        What is counted (``"files"``, ``"patients"``).
    enabled : bool
        False gives a silent callback (for tests and ``--json`` output).
    """
    console = Console(stderr=True)
    if not enabled or not console.is_terminal:
        yield lambda done, total: None
        return
    columns = (
        TextColumn("{task.description}", style="bold", markup=False),  # text, not markup
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(unit),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task(description, total=None)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        yield advance
