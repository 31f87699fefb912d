"""Pieces shared by both typer apps: version option, logging set-up (third-party chatter kept out
unless ``--verbose``), one-line errors and the examples that end every command's help."""

from __future__ import annotations

import logging
import warnings
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
    if not verbose:
        quiet_third_party()


#: Libraries whose info logs and warnings are theirs, not the user's (shown with --verbose).
THIRD_PARTY_LOGGERS = ("fiftyone", "eta", "motor", "pymongo", "urllib3", "PIL", "matplotlib")


def quiet_third_party() -> None:
    """Keep the libraries' chatter (FiftyOne's warnings, MongoDB's and PIL's logs) out of the
    user's log: only their errors get through."""
    for name in THIRD_PARTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    for module in THIRD_PARTY_LOGGERS:
        warnings.filterwarnings("ignore", module=rf"{module}(\.|$)")


def fail(message: str) -> typer.Exit:
    """Print ``error: message`` (one line, red, on stderr); raise the returned exit (status 1)."""
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    return typer.Exit(code=1)


def examples(*lines: str) -> str:
    """A command's help epilog: its examples (one or two), shown after the options."""
    return "Examples:\n\n" + "\n\n".join(f"  {line}" for line in lines)


def os_error_text(error: OSError) -> str:
    """An OS error as one line for the user: ``path: No space left on device`` (no ``[Errno
    28]``, no quotes); errors raised with a message of our own keep it."""
    if error.strerror is None:
        return str(error)
    where = " -> ".join(str(f) for f in (error.filename, error.filename2) if f is not None)
    return f"{where}: {error.strerror}" if where else error.strerror


def parse_source_counts(text: str | None) -> tuple[tuple[int, float], ...]:
    """``1:0.5,2:0.5`` -> ``((1, 0.5), (2, 0.5))`` (ranges checked where used)."""
    if text is None:
        return ()
    out = []
    for part in text.split(","):
        count, sep, weight = part.partition(":")
        try:
            out.append((int(count), float(weight) if sep else 1.0))
        except ValueError:
            raise ValueError(f"--sources: {part!r} is not COUNT:WEIGHT (e.g. 2:0.3)") from None
    return tuple(out)
