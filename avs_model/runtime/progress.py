"""The progress bar of long loops (training and evaluation): rich, on stderr, only in a terminal.

When stderr is not a terminal (a log file, a batch scheduler), the bar is off and the training
loop writes plain log lines instead (:func:`interactive` tells which).
"""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn


def interactive() -> bool:
    """Whether stderr is a terminal (rich's own test, so FORCE_TERMINAL and the like apply)."""
    return Console(stderr=True).is_terminal


def progress_bar(*, enabled: bool) -> Progress:
    """A rich progress bar on stderr (disabled on ranks other than 0, when not asked for, and when
    stderr is not a terminal)."""
    console = Console(stderr=True)
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not enabled or not console.is_terminal,
    )
