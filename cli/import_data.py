"""`avs-synth import avs-synthetic`: a thin wrapper over
:mod:`avs_synth.building.import_avs_synthetic`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from avs_synth.errors import DataFormatError
from avs_synth_cli.common import examples, os_error_text
from avs_synth_cli.common import fail as _fail

app = typer.Typer(
    name="import",
    help="Convert a released dataset into this toolkit's shards.",
    no_args_is_help=True,
    add_completion=False,
)


@app.command(
    "avs-synthetic",
    epilog=examples(
        "avs-synth import avs-synthetic AVS-Synthetic/ --out shards_avss/",
        "avs-synth import avs-synthetic AVS-Synthetic/ --out shards_avss/ --exclude-clips "
        "avsbench_ids.txt",
    ),
)
def avs_synthetic(
    root: Annotated[
        Path,
        typer.Argument(
            help="The AVS-Synthetic folder (annotations.csv, images/, masks/, audios/, "
            "category_for_vggsound_audios.pkl)."
        ),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="A new or empty output folder.")],
    seed: Annotated[int, typer.Option(help="Seed of each train row's own audio draw.")] = 0,
    shard_size: Annotated[int, typer.Option(help="Triplets per shard.")] = 1000,
    exclude_clips: Annotated[
        Path | None,
        typer.Option(help="A file of YouTube ids (one per line) whose audio must not be used."),
    ] = None,
) -> None:
    """Convert the paper's released AVS-Synthetic into shards, bank and manifest."""
    from avs_synth.building.import_avs_synthetic import import_avs_synthetic

    try:
        banned: set[str] = set()
        if exclude_clips is not None:
            banned = {
                line.strip()
                for line in exclude_clips.read_text(encoding="utf-8-sig").splitlines()
                if line.strip() and not line.startswith("#")
            }
        report = import_avs_synthetic(
            root,
            out,
            seed=seed,
            shard_size=shard_size,
            is_excluded=banned.__contains__,
            exclusion_source={"exclude_clips": str(exclude_clips) if exclude_clips else None},
        )
    except (DataFormatError, ValueError) as error:
        raise _fail(str(error)) from None
    except OSError as error:
        raise _fail(os_error_text(error)) from None
    typer.echo(
        "samples: "
        + ", ".join(f"{split} {n}" for split, n in report.samples.items())
        + f"; bank windows: {sum(report.bank_windows.values())}"
    )
    if report.skipped:
        typer.echo("skipped: " + ", ".join(f"{k} {v}" for k, v in sorted(report.skipped.items())))
    if report.excluded:
        typer.echo(
            "excluded (AVSBench clips): "
            + ", ".join(f"{k} {v}" for k, v in report.excluded.items())
        )
    typer.echo(f"wrote {report.out} (manifest.json, report.json)")
