"""`avs-synth match` and `avs-synth review-matches`: thin wrappers over
:mod:`avs_synth.matching.candidates`, :mod:`avs_synth.matching.table`,
:mod:`avs_synth.matching.review` and :mod:`avs_synth.matching.review_fiftyone`."""

from __future__ import annotations

import hashlib
import itertools
import logging
import sys
import tempfile
from enum import Enum
from pathlib import Path
from typing import Annotated

import click
import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from avs_synth.errors import DataFormatError
from avs_synth.matching.candidates import MatchConfig, match_categories
from avs_synth.matching.examples import (
    CategoryExamples,
    collect_examples,
    missing_example_files,
)
from avs_synth.matching.review import ReviewSession, pending_rows, render_review_list
from avs_synth.matching.review_scripted import accept_above, export_review, import_decisions
from avs_synth.matching.table import (
    count_by_source,
    read_matches,
    shipped_matches,
    update_match_table,
)
from avs_synth.matching.vocabulary import (
    VocabularyConfig,
    find_openimages_class_files,
    load_audio_classes,
    load_visual_categories,
)
from avs_synth_cli.common import examples, os_error_text
from avs_synth_cli.common import fail as _fail

logger = logging.getLogger(__name__)


def _print_counts(console: Console, rows, title: str) -> None:
    table = Table(title=title)
    for column in ("source", "candidates", "accepted", "(by the rule)", "rejected", "pending"):
        table.add_column(column, justify="right" if column != "source" else "left")
    totals = {k: 0 for k in ("candidates", "accepted", "automatic", "rejected", "pending")}
    for source, counts in count_by_source(rows).items():
        if not counts["candidates"]:
            continue
        table.add_row(
            source,
            *(
                str(counts[k])
                for k in ("candidates", "accepted", "automatic", "rejected", "pending")
            ),
        )
        for k in totals:
            totals[k] += counts[k]
    table.add_row("all", *(str(totals[k]) for k in totals), style="bold")
    console.print(table)


MATCH_EXAMPLES = examples(
    "avs-synth match --out matches.csv",
    "avs-synth match --lvis LVIS/lvis_v1_val.json --vggsound-csv VGGSound/vggsound.csv "
    "--out matches.csv",
)


def match(
    out: Annotated[
        Path,
        typer.Option("--out", "-o", help="The matches table to write (created or updated)."),
    ] = Path("matches.csv"),
    lvis: Annotated[
        Path | None,
        typer.Option(help="LVIS annotation JSON (its categories; lvis_v1_val.json is enough)."),
    ] = None,
    coco: Annotated[
        Path | None, typer.Option(help="COCO annotation JSON (its categories).")
    ] = None,
    openimages: Annotated[
        Path | None,
        typer.Option(
            help="Open Images folder holding the class descriptions and classes-segmentation.txt."
        ),
    ] = None,
    openimages_classes: Annotated[
        Path | None,
        typer.Option(help="Open Images class-descriptions CSV (instead of --openimages)."),
    ] = None,
    openimages_seg_classes: Annotated[
        Path | None,
        typer.Option(help="Open Images classes-segmentation.txt: keep only these classes."),
    ] = None,
    vggsound_csv: Annotated[
        Path | None, typer.Option(help="vggsound.csv or a label list (one label a line).")
    ] = None,
    vggsound: Annotated[Path | None, typer.Option("--vggsound", hidden=True)] = None,  # old name
    shipped: Annotated[
        bool,
        typer.Option(help="Match the shipped vocabularies when no visual / audio file is given."),
    ] = True,
    seed: Annotated[
        bool,
        typer.Option(
            help="When --out does not exist yet, start from the decisions of the shipped map."
        ),
    ] = True,
    fuzzy_threshold: Annotated[
        float, typer.Option(help="rapidfuzz ratio (0-100) for spelling-variant candidates.")
    ] = 88.0,
) -> None:
    """Find candidate pairs of visual categories and VGGSound classes; keep human decisions."""
    try:
        if openimages is not None:
            if openimages_classes is not None:
                raise _fail("give --openimages or --openimages-classes, not both")
            openimages_classes, found_seg = find_openimages_class_files(openimages)
            openimages_seg_classes = openimages_seg_classes or found_seg
        config = VocabularyConfig(
            lvis=lvis,
            coco=coco,
            openimages_classes=openimages_classes,
            openimages_segmentation=openimages_seg_classes,
            vggsound=vggsound_csv or vggsound,
            use_shipped=shipped,
        )
        visual = load_visual_categories(config)
        audio = load_audio_classes(config)
        candidates = match_categories(
            visual, audio, config=MatchConfig(fuzzy_threshold=fuzzy_threshold)
        )
        seeded = seed and not out.exists()
        report = update_match_table(out, candidates, seed=shipped_matches() if seeded else None)
    except (DataFormatError, ValueError) as error:
        raise _fail(str(error)) from None
    except OSError as error:
        raise _fail(os_error_text(error)) from None
    console = Console()
    kept = (
        f"{report.kept_human} reviewed decisions taken from the shipped map"
        if seeded
        else f"{report.kept_human} human decisions kept, {report.kept_orphans} hand-added pairs "
        f"kept, {report.dropped} stale rows dropped"
    )
    console.print(
        f"{len(visual)} visual categories x {len(audio)} VGGSound classes -> {out}: "
        f"{len(report.rows)} candidate pairs, {kept}."
    )
    _print_counts(console, report.rows, "Candidate pairs")


def _read_key() -> str:
    """One key: from the terminal without Enter, else the next non-blank character of stdin."""
    if sys.stdin.isatty():
        return click.getchar()
    while True:
        ch = sys.stdin.read(1)
        if ch not in (" ", "\t", "\r", "\n"):
            return ch


def _read_line(prompt: str) -> str:
    if sys.stdin.isatty():
        return typer.prompt(prompt.rstrip(": "), default="", show_default=False)
    typer.echo(prompt, nl=False)
    line = sys.stdin.readline()
    while line == "\n":  # the rest of the line that held the key
        line = sys.stdin.readline()
    typer.echo(line.strip())
    return line.strip()


def _examples(
    *,
    lvis: Path | None,
    lvis_images: Path | None,
    coco: Path | None,
    coco_images: Path | None,
    openimages: Path | None,
    openimages_split: str,
    wanted: set[tuple[str, str]],
    max_examples: int,
    max_images: int | None,
) -> dict[tuple[str, str], CategoryExamples] | None:
    readers = []
    if lvis is not None:
        if lvis_images is None:
            raise ValueError("--lvis needs --lvis-images")
        from avs_synth.sources.lvis import LVISReader

        readers.append(LVISReader(annotations=lvis, images_root=lvis_images))
    if coco is not None:
        if coco_images is None:
            raise ValueError("--coco needs --coco-images")
        from avs_synth.sources.coco import COCOReader

        readers.append(COCOReader(annotations=coco, images_root=coco_images))
    if openimages is not None:
        from avs_synth.sources.openimages import OpenImagesReader

        readers.append(OpenImagesReader(root=openimages, split=openimages_split))
    if not readers:
        return None
    found: dict[tuple[str, str], CategoryExamples] = {}
    for reader in readers:
        images = itertools.islice(reader.images(), max_images)
        found.update(collect_examples(images, wanted=wanted, max_examples=max_examples))
    return found


class Pictures(str, Enum):
    """How example pictures are shown (see :mod:`avs_synth.matching.review_pictures`)."""

    auto = "auto"
    inline = "inline"
    sheet = "sheet"
    off = "off"


_IMAGES_OPTION = {"lvis": "--lvis-images", "coco": "--coco-images", "openimages": "--openimages"}


def _warn_missing(console: Console, examples: dict[tuple[str, str], CategoryExamples]) -> None:
    """A warning per dataset whose example pictures are not where the options say."""
    for source, paths in missing_example_files(examples.values()).items():
        shown = sum(len(s.examples) for s in examples.values() if s.source == source)
        console.print(
            Text.assemble(
                ("warning: ", "bold yellow"),
                f"{len(paths)} of {shown} {source} example pictures not found (first: "
                f"{paths[0]}); {_IMAGES_OPTION[source]} is the dataset's root folder "
                "(for COCO and LVIS the one holding train2017/ and val2017/).",
            )
        )


def _default_sheets(matches: Path) -> Path:
    digest = hashlib.sha1(str(matches.resolve()).encode()).hexdigest()[:10]
    return Path(tempfile.gettempdir()) / f"avs-synth-review-{digest}"


REVIEW_EXAMPLES = examples(
    "avs-synth review-matches --matches matches.csv --coco "
    "COCO/annotations/instances_val2017.json --coco-images COCO",
    "avs-synth review-matches --matches matches.csv --accept-above 95",
)


def review_matches(
    matches: Annotated[Path, typer.Option("--matches", help="The matches table to review.")] = Path(
        "matches.csv"
    ),
    lvis: Annotated[
        Path | None, typer.Option(help="LVIS annotation JSON, for example instances.")
    ] = None,
    lvis_images: Annotated[
        Path | None, typer.Option(help="Images folder of --lvis (holding train2017/, val2017/).")
    ] = None,
    coco: Annotated[
        Path | None, typer.Option(help="COCO annotation JSON, for example instances.")
    ] = None,
    coco_images: Annotated[
        Path | None,
        typer.Option(
            help="The COCO root (holding train2017/, val2017/), as in build; the split's "
            "folder itself also works."
        ),
    ] = None,
    openimages: Annotated[
        Path | None, typer.Option(help="Open Images folder, for example instances.")
    ] = None,
    openimages_split: Annotated[
        str, typer.Option(help="Open Images split to take examples from.")
    ] = "validation",
    max_examples: Annotated[
        int, typer.Option(min=0, help="Example instances shown per category.")
    ] = 3,
    max_images: Annotated[
        int | None,
        typer.Option(min=1, help="Scan at most this many images per dataset for examples."),
    ] = None,
    list_: Annotated[
        bool, typer.Option("--list", help="Print the pairs to review and exit.")
    ] = False,
    all_rows: Annotated[
        bool,
        typer.Option(
            "--all",
            help="With --list / --export: every row. Interactive / --app: also the rule's "
            "automatic acceptances.",
        ),
    ] = False,
    export: Annotated[
        Path | None,
        typer.Option(help="Write the pairs to review (with example counts and paths) to a CSV."),
    ] = None,
    import_: Annotated[
        Path | None,
        typer.Option("--import", help="Read the decisions of an edited --export CSV."),
    ] = None,
    accept_above_score: Annotated[
        float | None,
        typer.Option(
            "--accept-above",
            min=0,
            max=100,
            help="Accept every pending pair scoring at least this (0-100), without review.",
        ),
    ] = None,
    app: Annotated[
        bool,
        typer.Option(
            "--app", help="Review example instances in the FiftyOne App; tag them accept/reject."
        ),
    ] = False,
    address: Annotated[str, typer.Option(help="Address the FiftyOne App listens on.")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(help="Port of the FiftyOne App.")] = 5151,
    pictures: Annotated[
        Pictures,
        typer.Option(
            help="Example pictures while reviewing: auto (in the terminal where it can show "
            "them, else a PNG per pair), inline, sheet (PNG) or off.",
        ),
    ] = Pictures.auto,
    sheets: Annotated[
        Path | None,
        typer.Option(help="Folder of the PNG contact sheets (default: a folder in the temp dir)."),
    ] = None,
) -> None:
    """Review candidate pairs: interactively (keys a/r/s/u/n/q), as a list, or by script."""
    console = Console()
    try:
        rows = read_matches(matches)
        if import_ is not None:
            changed = import_decisions(matches, import_)
            console.print(f"{changed} decisions read from {import_} into {matches}.")
            return
        if accept_above_score is not None:
            changed = accept_above(matches, accept_above_score)
            console.print(
                f"{changed} pending pairs scoring >= {accept_above_score:g} accepted in {matches}."
            )
            return
        todo = (
            rows
            if (all_rows and (list_ or export))
            else pending_rows(rows, include_automatic=all_rows)
        )
        wanted = {(row.source, row.visual_id) for row in todo}
        examples = _examples(
            lvis=lvis,
            lvis_images=lvis_images,
            coco=coco,
            coco_images=coco_images,
            openimages=openimages,
            openimages_split=openimages_split,
            wanted=wanted,
            max_examples=max_examples,
            max_images=max_images,
        )
        if examples is not None:
            _warn_missing(console, examples)
        if list_ or export is not None:
            if export is not None:
                export_review(todo, export, examples=examples)
                console.print(f"{len(todo)} pairs written to {export}.")
            if list_:
                render_review_list(
                    todo,
                    console,
                    examples=examples,
                    title="All pairs" if all_rows else "Pairs to review",
                )
            return
        if app:
            if examples is None:
                raise ValueError("--app needs example data: give --lvis, --coco or --openimages")
            from avs_synth.matching.review_fiftyone import launch_review_app

            def wait(url: str) -> None:
                console.print(
                    f"FiftyOne App at [bold]{url}[/bold]. Tag samples 'accept' or 'reject', "
                    "then press Enter here to save the decisions."
                )
                input()

            found = launch_review_app(
                matches,
                examples,
                wait=wait,
                address=address,
                port=port,
                include_automatic=all_rows,
            )
            console.print(
                f"{len(found.decisions)} pairs decided in the App"
                + (
                    f", {len(found.conflicts)} tagged both ways (left pending)"
                    if found.conflicts
                    else ""
                )
                + "."
            )
            return
        from avs_synth.matching.review_pictures import ExamplePictures

        session = ReviewSession(
            table_path=matches,
            read_key=_read_key,
            read_line=_read_line,
            console=console,
            examples=examples,
            include_automatic=all_rows,
            show_pictures=ExamplePictures(
                console=console,
                sheets_dir=sheets or _default_sheets(matches),
                mode=pictures.value,  # type: ignore[arg-type]
            ),
        )
        summary = session.run()
    except (DataFormatError, ValueError) as error:
        raise _fail(str(error)) from None
    except OSError as error:
        raise _fail(os_error_text(error)) from None
    if summary.interrupted:
        raise typer.Exit(code=130)
