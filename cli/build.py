"""`avs-synth build` and `avs-synth inspect`: thin wrappers over :mod:`avs_synth.building.run` and
:mod:`avs_synth.building.inspect_shards`."""

from __future__ import annotations

import math
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from avs_synth.audio.tagger import TaggerConfig, load_tagger
from avs_synth.audio.windows import WindowConfig
from avs_synth.building.config import BuildConfig, BuildInputs, RunOptions, VisualInput
from avs_synth.building.inputs import BuildInputError, corpus_inputs
from avs_synth.building.run import build_dataset, dry_run
from avs_synth.building.s4_mask_areas import measure_s4_mask_areas
from avs_synth.building.splits import SplitFractions
from avs_synth.errors import DataFormatError
from avs_synth_cli.common import examples, os_error_text, parse_source_counts
from avs_synth_cli.common import fail as _fail


def _inputs(
    *,
    corpus: Path | None,
    lvis: list[Path],
    lvis_images: Path | None,
    coco: list[Path],
    coco_images: list[Path],
    openimages: Path | None,
    openimages_split: list[str],
    vggsound_csv: Path | None,
    vggsound_clips: Path | None,
    matches: Path | None,
    avsbench: Path | None,
    exclude_clips: list[Path],
) -> BuildInputs:
    if corpus is not None:
        if lvis or coco or openimages or vggsound_csv or vggsound_clips:
            raise BuildInputError(
                "--corpus sets every input: give it alone (with --matches, --avsbench, "
                "--exclude-clips)"
            )
        found = corpus_inputs(corpus, matches=matches)
        return replace(
            found, avsbench=avsbench or found.avsbench, exclude_clips=tuple(exclude_clips)
        )
    if lvis and lvis_images is None:
        raise BuildInputError("--lvis needs --lvis-images")
    if coco and len(coco_images) not in (1, len(coco)):
        raise BuildInputError("give one --coco-images for every --coco (or one for all)")
    if vggsound_csv is None or vggsound_clips is None:
        raise BuildInputError("--vggsound-csv and --vggsound-clips are required (or --corpus)")
    visual = [VisualInput(source="lvis", annotations=a, images_root=lvis_images) for a in lvis]
    images = coco_images * len(coco) if len(coco_images) == 1 else coco_images
    pairs = zip(coco, images, strict=True)
    visual += [VisualInput(source="coco", annotations=a, images_root=i) for a, i in pairs]
    if openimages is not None:
        visual += [
            VisualInput(source="openimages", root=openimages, split=s) for s in openimages_split
        ]
    return BuildInputs(
        visual=tuple(visual),
        vggsound_csv=vggsound_csv,
        vggsound_clips=vggsound_clips,
        matches=matches,
        avsbench=avsbench,
        exclude_clips=tuple(exclude_clips),
    )


def _kinds(text: str | None) -> tuple[str, ...]:
    """``absent,silence`` -> ``("absent", "silence")`` (checked by :class:`BuildConfig`)."""
    if text is None:
        return ()
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _tagger(
    model: Path | None, labels: Path | None, activation: str, window_s: float
) -> TaggerConfig | None:
    """The checked tagger of ``--tagger`` / ``--tagger-labels`` (None without them)."""
    if model is None and labels is None:
        return None
    if model is None or labels is None:
        raise BuildInputError("--tagger and --tagger-labels go together")
    rate = WindowConfig().sample_rate
    return load_tagger(
        model, labels, activation=activation, sample_rate=int(round(window_s * rate))
    )  # type: ignore[arg-type]


def _echo_dry_run(report: dict[str, Any]) -> None:
    """The plan of a dry run, as a few readable lines."""
    planned, shards = report["planned"], report["shards"]
    typer.echo(f"plan {report['plan_hash'][:16]} (dry run: nothing decoded or written)")
    for split in ("train", "val", "test"):
        typer.echo(
            f"{split}: {planned[split]} triplets in {shards[split]} shards, "
            f"{report['pictures'].get(split, 0)} pictures, {report['clips'].get(split, 0)} clips"
        )
    typer.echo(f"bank: {planned['bank']} clips in {shards['bank']} shards")
    per_class = report["planned_per_class"]
    labels = sorted({label for counts in per_class.values() for label in counts})
    if labels:
        width = max(len(label) for label in labels)
        typer.echo(f"{'audio class':<{width}}  train    val   test   bank")
        for label in labels:
            counts = [per_class.get(s, {}).get(label, 0) for s in ("train", "val", "test", "bank")]
            typer.echo(f"{label:<{width}}  " + " ".join(f"{n:>6}" for n in counts))
    dropped = report["dropped_while_planning"]
    if dropped:
        typer.echo("left out while planning: " + ", ".join(f"{r} {n}" for r, n in dropped.items()))
    exclusion = report["clip_exclusion"]
    if exclusion:
        rows, videos = exclusion["rows_excluded"], exclusion["videos_excluded_total"]
        lists = ", ".join(f"{k} {n}" for k, n in exclusion["ids_per_list"].items()) or "none"
        typer.echo(
            f"excluded clips: {rows['train']} train and {rows['test']} test rows of "
            f"{videos} videos ({exclusion['ids']} excluded ids: {lists})"
        )
        if not exclusion["avsbench"]:
            typer.echo("AVSBench clips are kept (--keep-avsbench-clips)")


BUILD_EXAMPLES = examples(
    "avs-synth build --corpus sample_corpus/ --out shards/ --workers 4",
    "avs-synth build --lvis LVIS/lvis_v1_train.json --lvis-images COCO --vggsound-csv "
    "VGGSound/vggsound.csv --vggsound-clips VGGSound/clips --avsbench AVS --out shards/",
)


def build(
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder of the shards.")],
    corpus: Annotated[
        Path | None,
        typer.Option(
            help="A folder in the sample-corpus layout (lvis/, coco/, openimages/, "
            "vggsound/): sets every input."
        ),
    ] = None,
    lvis: Annotated[
        list[Path] | None, typer.Option(help="LVIS annotation JSON (repeat for train and val).")
    ] = None,
    lvis_images: Annotated[
        Path | None, typer.Option(help="COCO images folder used by LVIS (holds train2017/).")
    ] = None,
    coco: Annotated[
        list[Path] | None, typer.Option(help="COCO instances JSON (repeatable).")
    ] = None,
    coco_images: Annotated[
        list[Path] | None,
        typer.Option(help="Images folder of each --coco file (train2017/, val2017/), in order."),
    ] = None,
    openimages: Annotated[Path | None, typer.Option(help="Open Images download folder.")] = None,
    openimages_split: Annotated[
        list[str] | None, typer.Option(help="Open Images split(s) to read (default: train).")
    ] = None,
    vggsound_csv: Annotated[Path | None, typer.Option(help="vggsound.csv.")] = None,
    vggsound_clips: Annotated[Path | None, typer.Option(help="Folder of VGGSound clips.")] = None,
    matches: Annotated[
        Path | None,
        typer.Option(help="Category matching table (default: the packaged matches.csv)."),
    ] = None,
    avsbench: Annotated[
        Path | None,
        typer.Option(
            help="AVSBench folder: the clips of its S4, MS3 and AVSBench-semantic videos are "
            "left out of every split and the bank (with --corpus: its avsbench/)."
        ),
    ] = None,
    exclude_clips: Annotated[
        list[Path] | None,
        typer.Option(
            help="File of YouTube ids (or {id}_{start} clip names, or their SHA-256) whose clips "
            "are left out (repeatable)."
        ),
    ] = None,
    keep_avsbench_clips: Annotated[
        bool,
        typer.Option(
            "--keep-avsbench-clips",
            help="Keep clips of AVSBench videos (the packaged S4 list and --avsbench are not "
            "applied): such a build contaminates AVSBench zero- and few-shot numbers.",
        ),
    ] = False,
    seed: Annotated[int, typer.Option(help="Seed of every choice.")] = 0,
    mask_mode: Annotated[
        Literal["semantic", "instance"],
        typer.Option(help="semantic: union of the class's instances; instance: one each."),
    ] = "semantic",
    min_mask_area: Annotated[
        float, typer.Option(help="Smallest mask, as a fraction of the image.")
    ] = 0.01,
    max_per_picture: Annotated[
        int, typer.Option(help="Most samples per picture (0: no limit).")
    ] = 1,
    max_per_category: Annotated[
        int, typer.Option(help="Most samples per audio class (0: no limit).")
    ] = 0,
    splits: Annotated[
        str, typer.Option(help="Fractions of pictures train,val,test.")
    ] = "0.9,0.05,0.05",
    window: Annotated[float, typer.Option(help="Audio window length in seconds.")] = 1.0,
    window_policy: Annotated[
        Literal["fixed", "loudest", "nonsilent"],
        typer.Option(
            help="fixed: at --window-start; loudest: the highest RMS; nonsilent: a seeded draw "
            "among the windows at or above --silence-db."
        ),
    ] = "nonsilent",
    window_hop: Annotated[
        float | None, typer.Option(help="Spacing of candidate windows (default: the length).")
    ] = None,
    window_start: Annotated[
        float, typer.Option(help="Window start for the fixed policy, in seconds.")
    ] = 0.0,
    silence_db: Annotated[
        float, typer.Option(help="Windows below this RMS level (dBFS) are silent.")
    ] = -45.0,
    resampler: Annotated[
        Literal["avsbench", "bandlimited"],
        typer.Option(
            help="How clips become 16 kHz audio: avsbench (exactly as AVSBench made its wavs: "
            "moviepy over FFmpeg, no anti-alias filter) or bandlimited (sinc resampling)."
        ),
    ] = "avsbench",
    negative_ratio: Annotated[
        float, typer.Option(help="Verified-absent negatives per positive (0: none).")
    ] = 0.0,
    negatives: Annotated[
        str | None,
        typer.Option(
            help="Negative kinds, comma-separated, sharing --negative-ratio equally and recorded "
            "in each json: absent (a verified-absent class of a group the picture holds), "
            "silence (zeros or a faint floor), noise (white or pink), offscreen (a verified-"
            "absent class of another group). Default: every verified-absent class, no kind."
        ),
    ] = None,
    noise_from: Annotated[
        Literal["synthetic", "ambience", "both"],
        typer.Option(
            help="Audio of noise negatives: synthetic (white or pink), ambience (a window of a "
            "clip of the shipped VGGSound ambience classes without a visual match: wind, rain, "
            "water, crowd), or both (a seeded half each)."
        ),
    ] = "synthetic",
    silence_from: Annotated[
        Literal["synthetic", "quiet", "both"],
        typer.Option(
            help="Audio of silence negatives: synthetic (zeros or a faint floor), quiet (a real "
            "clip's window below --quiet-db; a clip without one skips the sample), or both."
        ),
    ] = "synthetic",
    quiet_db: Annotated[
        float, typer.Option(help="A real window below this RMS level (dBFS) is near-silent.")
    ] = -50.0,
    sources: Annotated[
        str | None,
        typer.Option(
            help="Multi-source triplets: sounding-class counts and their weights, e.g. "
            "1:0.5,2:0.3,3:0.2; each picture gives one triplet whose count is drawn among those "
            "its classes allow, the windows mixed (RMS-normalised, seeded gains in the json), "
            "the mask their union, the picture's other matched categories named as silent."
        ),
    ] = None,
    mixes_per_picture: Annotated[
        int,
        typer.Option(
            help="With --sources: up to this many triplets per picture, each a distinct seeded "
            "set of its classes sounding (the same picture with different mixes and masks); "
            "needs --max-per-picture 0 or at least this."
        ),
    ] = 1,
    pan: Annotated[
        Literal["none", "linear", "constant-power"],
        typer.Option(
            help="Stereo multi-source mixes panned by each source's mask centroid: none, linear "
            "(VPO's L=(1-p)w, R=pw) or constant-power."
        ),
    ] = "none",
    class_masks: Annotated[
        bool,
        typer.Option(
            "--class-masks",
            help="Also write a class-indexed mask (KEY.classes.png: each sounding pixel its audio "
            "class's index in the manifest's audio_classes plus one, 0 background).",
        ),
    ] = False,
    crop: Annotated[
        Literal["none", "object"],
        typer.Option(
            help="object: crop each positive's picture around its sounding mask so the mask "
            "covers --crop-area of it (the whole mask always kept); none: whole pictures."
        ),
    ] = "none",
    crop_area: Annotated[
        float | None,
        typer.Option(
            help="The mask's share of an object-centric crop, in (0, 1). Default: drawn per "
            "sample from the area distribution of AVSBench S4's train masks when --avsbench is "
            "given (measured, recorded in the manifest), else 0.25."
        ),
    ] = None,
    min_audibility: Annotated[
        float | None,
        typer.Option(
            help="Score each clip window's audibility (level and spectral flatness against its "
            "clip's, 0-1), store it in the json and skip samples below this (0: score only)."
        ),
    ] = None,
    tagger: Annotated[
        Path | None,
        typer.Option(
            help="An audio tagger as a TorchScript file (torch.jit.save; no pickles) mapping a "
            "window [1, samples] to class scores [1, C]: its probability for each clip window's "
            "class is stored in the json (tagger_probability). Needs --tagger-labels and "
            "--min-audibility."
        ),
    ] = None,
    tagger_labels: Annotated[
        Path | None,
        typer.Option(help="The tagger's labels, one a line in output order (VGGSound labels)."),
    ] = None,
    tagger_activation: Annotated[
        Literal["sigmoid", "softmax", "none"],
        typer.Option(help="How the tagger's scores become probabilities."),
    ] = "sigmoid",
    audibility_from: Annotated[
        Literal["energy", "tagger", "both"],
        typer.Option(
            help="What --min-audibility compares: energy (level and flatness), tagger (its "
            "probability; windows of a class it lacks are skipped) or both (the smaller)."
        ),
    ] = "energy",
    frames: Annotated[
        int,
        typer.Option(
            help="Frames per sample: 1 makes stills; N > 1 makes clips (5: AVSBench's input): N "
            "crops of one picture along a seeded, smooth pan / zoom path (KEY.0.jpg .. "
            "KEY.{N-1}.jpg, masks KEY.{t}.mask.png following the crops) and N consecutive audio "
            "windows in one KEY.flac, window t with frame t. Not with --sources."
        ),
    ] = 1,
    onset_offset: Annotated[
        float,
        typer.Option(
            help="With --frames > 1: the probability that a positive clip's source starts or "
            "stops mid-clip; its silent frames get silence for audio and empty masks (in the "
            "json: clip.silent, clip.event)."
        ),
    ] = 0.0,
    max_side: Annotated[
        int | None, typer.Option(help="Resize pictures whose longer side exceeds this.")
    ] = None,
    jpeg_quality: Annotated[int, typer.Option(help="Quality of re-encoded JPEGs.")] = 95,
    shard_size: Annotated[int, typer.Option(help="Triplets per shard.")] = 1000,
    audio_bank: Annotated[bool, typer.Option(help="Write the audio bank of train windows.")] = True,
    bank_clips_per_shard: Annotated[int, typer.Option(help="Clips per audio-bank shard.")] = 100,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
    num_partitions: Annotated[int, typer.Option(help="Machines sharing the build.")] = 1,
    partition: Annotated[int, typer.Option(help="This machine's partition, from 0.")] = 0,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    dry_run_: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Plan only and print the counts per split, audio class and reason; nothing "
            "is decoded and --out is left untouched.",
        ),
    ] = False,
) -> None:
    """Build WebDataset shards of (image, mask, audio) triplets; rerun to resume."""
    numbers = {
        "--min-mask-area": min_mask_area,
        "--window": window,
        "--window-hop": window_hop,
        "--window-start": window_start,
        "--silence-db": silence_db,
        "--negative-ratio": negative_ratio,
        "--quiet-db": quiet_db,
        "--crop-area": crop_area,
        "--onset-offset": onset_offset,
    }
    for option, value in numbers.items():  # nan / inf pass every range check: refuse them here
        if value is not None and not math.isfinite(value):
            raise _fail(f"{option} must be a finite number, got {value}")
    try:
        inputs = _inputs(
            corpus=corpus,
            lvis=lvis or [],
            lvis_images=lvis_images,
            coco=coco or [],
            coco_images=coco_images or [],
            openimages=openimages,
            openimages_split=openimages_split or ["train"],
            vggsound_csv=vggsound_csv,
            vggsound_clips=vggsound_clips,
            matches=matches,
            avsbench=avsbench,
            exclude_clips=exclude_clips or [],
        )
        config = BuildConfig(
            seed=seed,
            mask_mode=mask_mode,
            min_mask_area=min_mask_area,
            max_per_picture=max_per_picture,
            max_per_category=max_per_category,
            fractions=SplitFractions.parse(splits),
            window=WindowConfig(
                window_s=window,
                policy=window_policy,
                hop_s=window_hop,
                fixed_start_s=window_start,
                silence_dbfs=silence_db,
            ),
            resampler=resampler,
            negative_ratio=negative_ratio,
            negatives=_kinds(negatives),
            noise_from=noise_from,
            silence_from=silence_from,
            quiet_dbfs=quiet_db,
            min_audibility=min_audibility,
            tagger=_tagger(tagger, tagger_labels, tagger_activation, window),
            audibility_from=audibility_from,
            sources=parse_source_counts(sources),
            mixes_per_picture=mixes_per_picture,
            class_masks=class_masks,
            crop=crop,
            crop_area_fraction=0.25 if crop_area is None else crop_area,
            crop_areas=(
                measure_s4_mask_areas(avsbench)
                if crop == "object" and crop_area is None and avsbench is not None
                else None
            ),
            pan=pan,
            frames=frames,
            onset_offset=onset_offset,
            max_side=max_side,
            jpeg_quality=jpeg_quality,
            shard_size=shard_size,
            audio_bank=audio_bank,
            bank_clips_per_shard=bank_clips_per_shard,
            exclude_avsbench=not keep_avsbench_clips,
        )
        if dry_run_:
            _echo_dry_run(dry_run(inputs=inputs, config=config))
            return
        run = RunOptions(
            workers=workers, num_partitions=num_partitions, partition=partition, progress=progress
        )
        summary = build_dataset(inputs=inputs, config=config, out=out, run=run)
    except (BuildInputError, DataFormatError, ValueError) as error:
        raise _fail(str(error)) from None
    except OSError as error:  # a full disk, a read-only or unwritable --out, a missing input
        raise _fail(os_error_text(error)) from None
    except KeyboardInterrupt:
        typer.secho(
            "interrupted: complete shards are kept; rerun the same command to resume", err=True
        )
        raise typer.Exit(code=130) from None
    if summary.complete:
        counts = ", ".join(f"{s} {n}" for s, n in summary.samples.items())
        typer.echo(f"built {out}: {counts} triplets, {summary.bank_windows} bank windows")
    else:
        typer.echo(f"partition {partition}/{num_partitions} complete in {out}")


INSPECT_EXAMPLES = examples(
    "avs-synth inspect shards/ --samples 5",
    "avs-synth inspect shards/ --html shards-page/  (then open shards-page/index.html)",
)


def inspect(
    shards: Annotated[list[Path], typer.Argument(help="A build folder, or .tar shards.")],
    samples: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="Triplets to decode and show (default 3); with --html, per split (default 50).",
        ),
    ] = None,
    html: Annotated[
        Path | None,
        typer.Option(
            "--html",
            help="Write a static page to this folder: each triplet's picture with its mask, an "
            "audio player, label, split and provenance; filterable by split and category.",
        ),
    ] = None,
    fiftyone: Annotated[
        bool, typer.Option("--fiftyone", help="Load the triplets into a FiftyOne dataset.")
    ] = False,
    dataset_name: Annotated[str, typer.Option(help="Name of the FiftyOne dataset.")] = "avs-synth",
    export_dir: Annotated[
        Path | None,
        typer.Option(help="Where FiftyOne's picture and audio files go (default: a temp dir)."),
    ] = None,
    max_samples: Annotated[
        int | None, typer.Option(help="Most triplets loaded into FiftyOne.")
    ] = None,
    launch: Annotated[bool, typer.Option(help="Open the FiftyOne app (with --fiftyone).")] = False,
) -> None:
    """Show a build's manifest and a few decoded samples; write them as a page, or browse them
    in FiftyOne. Unreadable shards and samples are named, and make the exit status 1."""
    from avs_synth.building.inspect_shards import (
        describe,
        inspect_shards,
        load_into_fiftyone,
        write_inspect_page,
    )

    try:
        found = inspect_shards(shards, num_samples=3 if samples is None else samples)
        for line in describe(found):
            typer.echo(line)
        problems = list(found.problems)
        if html is not None:
            page = write_inspect_page(shards, html, per_split=max(1, samples or 50))
            shown = ", ".join(f"{split} {n}" for split, n in page.per_split.items())
            typer.echo(f"wrote {page.index} ({shown} triplets)")
            for problem in page.problems:
                if problem not in problems:
                    typer.echo(f"unreadable: {problem}")
                    problems.append(problem)
    except (FileNotFoundError, FileExistsError, ValueError) as error:
        raise _fail(str(error)) from None
    if fiftyone:
        target = export_dir or Path(tempfile.mkdtemp(prefix="avs-synth-fiftyone-"))
        dataset = load_into_fiftyone(
            shards, export_dir=target, dataset_name=dataset_name, max_samples=max_samples
        )
        typer.echo(f"FiftyOne dataset {dataset.name!r}: {len(dataset)} samples (files in {target})")
        if launch:
            import fiftyone as fo

            session = fo.launch_app(dataset)
            session.wait()
    if problems:  # the first named here too: the error line alone says where to look
        raise _fail(
            f"{len(problems)} unreadable shards or samples (listed above); first: {problems[0]}"
        )
