"""`avs-synth import avs-synthetic`: a thin wrapper over
:mod:`avs_synth.building.import_avs_synthetic`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from avs_synth.building.avsbench_exclusion import load_exclusion
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
        "avs-synth import avs-synthetic AVS-Synthetic/ --out shards_avss/ --avsbench AVSBench/",
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
    avsbench: Annotated[
        Path | None,
        typer.Option(
            help="AVSBench folder: the audio of its S4, MS3 and AVSBench-semantic videos is not "
            "used (the packaged S4 list applies without it)."
        ),
    ] = None,
    exclude_clips: Annotated[
        list[Path] | None,
        typer.Option(
            help="File of YouTube ids (or {id}_{start} clip names, or their SHA-256) whose audio "
            "is not used (repeatable)."
        ),
    ] = None,
    keep_avsbench_clips: Annotated[
        bool,
        typer.Option(
            "--keep-avsbench-clips",
            help="Keep the audio of AVSBench videos (the packaged S4 list and --avsbench are not "
            "applied): such shards contaminate AVSBench zero- and few-shot numbers.",
        ),
    ] = False,
) -> None:
    """Convert the paper's released AVS-Synthetic into shards, bank and manifest.

    Audio of AVSBench videos is left out by default, as in `avs-synth build`: the release's
    VGGSound audios include clips of AVSBench videos.
    """
    from avs_synth.building.import_avs_synthetic import import_avs_synthetic

    try:
        exclusion = load_exclusion(
            avsbench=not keep_avsbench_clips,
            avsbench_root=avsbench,
            exclude_files=exclude_clips or (),
        )
        report = import_avs_synthetic(
            root,
            out,
            seed=seed,
            shard_size=shard_size,
            is_excluded=exclusion.excludes,
            exclusion_source=exclusion.summary(),
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
    excluded = ", ".join(f"{k} {v}" for k, v in report.excluded.items()) or "none"
    typer.echo(f"excluded (AVSBench and --exclude-clips videos): {excluded}")
    if keep_avsbench_clips:
        typer.echo("AVSBench clips are kept (--keep-avsbench-clips)")
    typer.echo(f"wrote {report.out} (manifest.json, report.json)")
