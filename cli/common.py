"""Pieces shared by both typer apps: version option, logging set-up, one-line OS errors."""

from __future__ import annotations

import logging
from typing import Annotated

import typer
from rich.console import Console
from rich.logging import RichHandler

from avs_synth import __version__


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"avs-synth {__version__}")
        raise typer.Exit()


def setup(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False,
) -> None:
    """Configure logging for every command of an app: rich in a terminal; plain, timestamped,
    never wrapped lines when stderr is a file (a batch scheduler's log)."""
    if Console(stderr=True).is_terminal:
        handler: logging.Handler = RichHandler(show_path=False, rich_tracebacks=False)
        handler.setFormatter(logging.Formatter("%(message)s"))
    else:
        handler = logging.StreamHandler()
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S")
        )
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO, handlers=[handler], force=True
    )


def os_error_text(error: OSError) -> str:
    """An OS error as one line for the user: ``path: No space left on device`` (no ``[Errno
    28]``, no quotes); errors raised with a message of our own keep it."""
    if error.strerror is None:
        return str(error)
    where = " -> ".join(str(f) for f in (error.filename, error.filename2) if f is not None)
    return f"{where}: {error.strerror}" if where else error.strerror
