"""`avs-train`: pretrain, fine-tune, evaluate and run AuTR.

Every command is a thin wrapper: it builds a :class:`~avs_model.runtime.train_config.TrainConfig` (a
shipped recipe or a YAML / JSON file, then the options given) and calls the library function.
Multi-GPU: ``torchrun --nproc_per_node=G -m avs_synth_cli.train pretrain ...``.

Why this module is long: typer declares each command's options in its signature, and the six
commands of one app share their option types and the config assembly; split, each module would
import them back from the others.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
import yaml

from avs_synth_cli.common import examples, parse_source_counts, setup
from avs_synth_cli.common import fail as _fail

app = typer.Typer(
    name="avs-train",
    help="Train, fine-tune, evaluate and run the AuTR audio-visual segmentation model.",
    no_args_is_help=True,
    add_completion=False,
)
app.callback()(setup)


def _split_names(values: list[str] | None) -> tuple[str, ...]:
    out: list[str] = []
    for value in values or []:
        out += [v.strip() for v in value.split(",") if v.strip()]
    return tuple(out)


def _build_config(config: str | None, updates: dict[str, Any], sets: list[str] | None):
    from avs_model.runtime.train_config import TrainConfig, load_train_config, resolve_model_config

    base = load_train_config(config) if config else TrainConfig()
    changes = {k: v for k, v in updates.items() if v is not None}
    for item in sets or []:
        if "=" not in item:
            raise ValueError(f"--set expects KEY=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        changes[key.strip()] = yaml.safe_load(value)
    resolved = base.with_updates(**changes) if changes else base
    resolve_model_config(resolved)  # a typo in the model or its overrides fails now, not later
    return resolved


ConfigOpt = Annotated[
    str | None,
    typer.Option(
        "--config",
        "-c",
        help="A recipe name (see avs_model/recipes) or a YAML/JSON TrainConfig file.",
    ),
]
OutOpt = Annotated[Path, typer.Option("--out", "-o", help="The run folder (checkpoints, logs).")]
ModelOpt = Annotated[
    str | None, typer.Option(help="Model preset (autr_tiny, autr_r50, autr_pvtv2_b5) or file.")
]
EpochsOpt = Annotated[float | None, typer.Option(help="Training epochs.")]
StepsOpt = Annotated[
    int | None, typer.Option(help="Stop after this many steps (overrides --epochs).")
]
BatchOpt = Annotated[
    int | None, typer.Option(help="Samples (pictures or videos) per step and rank.")
]
LrOpt = Annotated[float | None, typer.Option(help="AdamW learning rate.")]
SizeOpt = Annotated[int | None, typer.Option(help="Picture side (square) or longest side.")]
WorkersOpt = Annotated[int | None, typer.Option(help="Data loader workers per rank.")]
SeedOpt = Annotated[int | None, typer.Option(help="Random seed.")]
DeviceOpt = Annotated[str | None, typer.Option(help="auto, cpu, cuda.")]
PrecisionOpt = Annotated[
    Literal["auto", "bf16", "fp16", "fp32"] | None,
    typer.Option(help="auto: bf16 autocast on CUDA, fp32 on CPU."),
]
EvalEveryOpt = Annotated[
    int | None, typer.Option(help="Validate every N steps (default: every epoch).")
]
CkptEveryOpt = Annotated[int | None, typer.Option(help="Write last.pt every N steps.")]
InitOpt = Annotated[Path | None, typer.Option(help="Start from this checkpoint's weights.")]
ResumeOpt = Annotated[bool, typer.Option("--resume", help="Continue from OUT/last.pt.")]
NoTestOpt = Annotated[bool, typer.Option("--no-test", help="Skip the final test evaluation.")]
RandomInitOpt = Annotated[
    bool,
    typer.Option(
        "--random-init",
        help="Allow frozen parts (backbone, VGGish) without weight files, i.e. on random weights: "
        "for tests, demos and benchmarks only (the figures mean nothing).",
    ),
]
ClassHeadOpt = Annotated[
    bool,
    typer.Option(
        "--class-head",
        help="Give AuTR the class head (per-query logits over the shards' audio classes, trained "
        "Mask2Former-style on the class maps; shards built with --class-masks). Same as --set "
        "model_overrides.class_head.enabled=true.",
    ),
]
AudioTagsOpt = Annotated[
    bool,
    typer.Option(
        "--audio-tags",
        help="Give AuTR the audio-tagging head (a logit per audio class of the shards on the audio "
        "embedding, trained on the classes heard: every source of a mix; a toolkit loss, not the "
        "paper's). Same as --set model_overrides.audio_tags.enabled=true.",
    ),
]
SetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        help="Override any config field: --set optim.schedule=cosine "
        "(repeatable; values are YAML).",
    ),
]


def _common(
    model,
    random_init,
    epochs,
    max_steps,
    batch_size,
    lr,
    image_size,
    num_workers,
    seed,
    device,
    precision,
    eval_every,
    checkpoint_every,
) -> dict[str, Any]:
    return {
        "model": model,
        "model_overrides.random_init": True if random_init else None,
        "epochs": epochs,
        "max_steps": max_steps,
        "batch_size": batch_size,
        "optim.lr": lr,
        "data.resize.size": image_size,
        "data.num_workers": num_workers,
        "seed": seed,
        "device": device,
        "precision": precision,
        "eval.every_steps": eval_every,
        "checkpoint_every_steps": checkpoint_every,
    }


W = "$W"  # in the examples: the --set options naming the weight files (see the recipes README)


def _examples(*lines: str) -> str:
    """A command's help epilog: its examples, then what ``$W`` stands for where one uses it."""
    note = (
        "\n\n($W: --set model_overrides.backbone.pretrained_path=... --set "
        "model_overrides.audio.weights_path=..., the weight files; avs_model/recipes/README.md)"
    )
    return examples(*lines) + (note if any(W in line for line in lines) else "")


@app.command(
    epilog=_examples(
        f"avs-train pretrain --config pretrain_pvtv2 --shards shards/ --out runs/pt_pvtv2 {W}",
        "torchrun --nproc_per_node=8 -m avs_synth_cli.train pretrain --config pretrain_pvtv2 ...",
    )
)
def pretrain(
    shards: Annotated[
        str,
        typer.Option(
            help="Shard folder (manifest.json + *.tar) or a remote "
            "location (https://..., pipe:...; may contain {name})."
        ),
    ],
    out: OutOpt,
    config: ConfigOpt = None,
    model: ModelOpt = None,
    epochs: EpochsOpt = None,
    max_steps: StepsOpt = None,
    batch_size: BatchOpt = None,
    lr: LrOpt = None,
    image_size: SizeOpt = None,
    num_workers: WorkersOpt = None,
    seed: SeedOpt = None,
    device: DeviceOpt = None,
    precision: PrecisionOpt = None,
    eval_every: EvalEveryOpt = None,
    checkpoint_every: CkptEveryOpt = None,
    init: InitOpt = None,
    resume: ResumeOpt = False,
    no_test: NoTestOpt = False,
    random_init: RandomInitOpt = False,
    class_head: ClassHeadOpt = False,
    audio_tags: AudioTagsOpt = False,
    set_: SetOpt = None,
) -> None:
    """Pre-train AuTR on synthetic shards (val selects best.pt; test is scored at the end)."""
    from avs_model.training.engine import TrainingError
    from avs_model.training.pretrain import pretrain as run_pretrain

    try:
        train_config = _build_config(
            config,
            _common(
                model,
                random_init,
                epochs,
                max_steps,
                batch_size,
                lr,
                image_size,
                num_workers,
                seed,
                device,
                precision,
                eval_every,
                checkpoint_every,
            )
            | {
                "model_overrides.class_head.enabled": True if class_head else None,
                "model_overrides.audio_tags.enabled": True if audio_tags else None,
            },
            set_,
        )
        result = run_pretrain(
            train_config, shards=shards, out_dir=out, resume=resume, init=init, run_test=not no_test
        )
    except (FileNotFoundError, FileExistsError, ValueError, KeyError, TrainingError) as error:
        raise _fail(str(error)) from None
    _report_run(result)


@app.command(
    "pretrain-audio",
    epilog=_examples(
        "avs-train pretrain-audio --shards shards/ --out runs/audio --model autr_tiny",
        "avs-train pretrain --model autr_tiny --shards shards/ --out runs/pt "
        "--set model_overrides.audio.weights_path=runs/audio/audio_encoder.pt",
    ),
)
def pretrain_audio(
    shards: Annotated[str, typer.Option(help="Shard folder or remote location (its audio bank).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder of audio_encoder.pt.")],
    model: Annotated[
        str, typer.Option(help="The model whose small audio CNN to train (preset or file).")
    ] = "autr_tiny",
    steps: Annotated[int, typer.Option(help="Training steps.")] = 800,
    batch_size: Annotated[int, typer.Option(help="Audio examples per step.")] = 64,
    lr: Annotated[float, typer.Option(help="AdamW learning rate.")] = 1e-2,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    sources: Annotated[
        str | None,
        typer.Option(
            help="Classes mixed per example and their weights, e.g. 1:0.5,2:0.5 (default: the "
            "build's --sources, single sources for a build without)."
        ),
    ] = None,
    set_: SetOpt = None,
) -> None:
    """Pre-train the small audio CNN (autr_tiny's) by tagging the audio bank's windows, mixed as
    the build mixes them: a toolkit stage, not the paper's (its VGGish comes pre-trained on
    AudioSet). Load the result with
    --set model_overrides.audio.weights_path=OUT/audio_encoder.pt."""
    from avs_model.runtime.train_config import resolve_model_config
    from avs_model.training.audio_pretrain import AudioPretrainConfig
    from avs_model.training.audio_pretrain import pretrain_audio as run_stage

    try:
        model_config = _build_config(None, {"model": model}, set_)
        stage = AudioPretrainConfig(
            steps=steps,
            batch_size=batch_size,
            lr=lr,
            seed=seed,
            sources=parse_source_counts(sources) or None,
        )
        result = run_stage(
            stage, shards=shards, out_dir=out, audio=resolve_model_config(model_config).audio
        )
    except (FileNotFoundError, ValueError, KeyError) as error:
        raise _fail(str(error)) from None
    last = result.log[-1]
    typer.echo(
        f"wrote {result.path}: {len(result.classes)} classes, sources {list(result.sources)}, "
        f"last {min(stage.log_every, steps)} steps: loss {last['loss']:.3f}, exact match "
        f"{last['exact_match']:.2f} ({result.seconds:.0f} s)"
    )
    typer.echo(f"use it: --set model_overrides.audio.weights_path={result.path}")


@app.command(
    epilog=_examples(
        "avs-train finetune --config s4_pvtv2_frac10 --init runs/pt_pvtv2/best.pt "
        "--avsbench AVS --out runs/s4_10_pt",
        f"avs-train finetune --config ms3_pvtv2 --avsbench AVS --out runs/ms3 {W}",
    )
)
def finetune(
    out: OutOpt,
    avsbench: Annotated[
        Path | None,
        typer.Option(
            help="AVSBench folder (the release layout, or a folder "
            "with s4_meta_data.csv / ms3_meta_data.csv)."
        ),
    ] = None,
    data: Annotated[Path | None, typer.Option("--data", hidden=True)] = None,  # the old name
    subset: Annotated[
        Literal["s4", "ms3"] | None, typer.Option(help="AVSBench subset (default: the recipe's).")
    ] = None,
    fraction: Annotated[
        float | None,
        typer.Option(help="Keep round(n*f) train videos of each category (at least 1)."),
    ] = None,
    fraction_seed: Annotated[int | None, typer.Option(help="Seed of the fraction's hash.")] = None,
    categories: Annotated[
        list[str] | None, typer.Option(help="Train only on these S4 categories (comma-separated).")
    ] = None,
    exclude_categories: Annotated[
        list[str] | None,
        typer.Option(help="Leave these S4 categories out of training (comma-separated)."),
    ] = None,
    open_set: Annotated[
        Literal["seen", "unseen"] | None,
        typer.Option(help="Train on one half of the shipped open-set split."),
    ] = None,
    config: ConfigOpt = None,
    model: ModelOpt = None,
    epochs: EpochsOpt = None,
    max_steps: StepsOpt = None,
    batch_size: BatchOpt = None,
    lr: LrOpt = None,
    image_size: SizeOpt = None,
    num_workers: WorkersOpt = None,
    seed: SeedOpt = None,
    device: DeviceOpt = None,
    precision: PrecisionOpt = None,
    eval_every: EvalEveryOpt = None,
    checkpoint_every: CkptEveryOpt = None,
    init: InitOpt = None,
    resume: ResumeOpt = False,
    no_test: NoTestOpt = False,
    random_init: RandomInitOpt = False,
    set_: SetOpt = None,
) -> None:
    """Fine-tune on AVSBench S4 / MS3 (without --init: the paper's 'w/o P.T.' setting)."""
    from avs_model.training.engine import TrainingError
    from avs_model.training.finetune import finetune as run_finetune

    updates = _common(
        model,
        random_init,
        epochs,
        max_steps,
        batch_size,
        lr,
        image_size,
        num_workers,
        seed,
        device,
        precision,
        eval_every,
        checkpoint_every,
    )
    updates.update(
        {
            "avsbench.subset": subset,
            "avsbench.fraction": fraction,
            "avsbench.fraction_seed": fraction_seed,
            "avsbench.categories": list(_split_names(categories)) or None,
            "avsbench.exclude_categories": list(_split_names(exclude_categories)) or None,
            "avsbench.open_set": open_set,
        }
    )
    if (avsbench or data) is None:
        raise _fail("--avsbench AVSBENCH_FOLDER is required")
    try:
        train_config = _build_config(config, updates, set_)
        result = run_finetune(
            train_config,
            data_root=avsbench or data,
            out_dir=out,
            init=init,
            resume=resume,
            run_test=not no_test,
        )
    except (FileNotFoundError, FileExistsError, ValueError, KeyError, TrainingError) as error:
        raise _fail(str(error)) from None
    _report_run(result)


def _report_run(result) -> None:
    typer.echo(f"steps: {result.step}")
    typer.echo(f"last checkpoint: {result.last}")
    if result.best is not None:
        typer.echo(f"best checkpoint: {result.best} (val {result.best_metric:.4f})")
    if result.test is not None:
        test = result.test["ungated"]
        typer.echo(
            f"test M_J {test['M_J']:.4f}  M_F {test['M_F']:.4f}  "
            f"(see {result.out_dir / 'test_metrics.json'})"
        )


@app.command(
    epilog=_examples(
        "avs-train evaluate --ckpt runs/s4_10_pt/best.pt --avsbench AVS --subset s4 --out eval/s4",
        f"avs-train evaluate --untrained --config s4_pvtv2 --avsbench AVS {W}",
    )
)
def evaluate(
    ckpt: Annotated[Path | None, typer.Option(help="The checkpoint to score.")] = None,
    untrained: Annotated[
        bool,
        typer.Option(
            "--untrained",
            help="Score the untrained model of --config instead of a checkpoint: its pretrained "
            "parts, the rest initialised with its seed (the paper's '0 % w/o P.T.' row).",
        ),
    ] = False,
    config: ConfigOpt = None,
    seed: SeedOpt = None,
    random_init: RandomInitOpt = False,
    set_: SetOpt = None,
    shards: Annotated[str | None, typer.Option(help="Synthetic shards to score on.")] = None,
    avsbench: Annotated[Path | None, typer.Option(help="AVSBench folder to score on.")] = None,
    subset: Annotated[Literal["s4", "ms3"], typer.Option(help="AVSBench subset.")] = "s4",
    split: Annotated[
        Literal["test", "val", "train"],
        typer.Option(help="The split to score (train: synthetic shards only)."),
    ] = "test",
    batch_videos: Annotated[int, typer.Option(help="Videos per M_F batch (official S4: 4).")] = 4,
    gate_threshold: Annotated[
        float | None,
        typer.Option(help="Sounding-score gate of the gated figures (default: the checkpoint's)."),
    ] = None,
    categories: Annotated[
        list[str] | None, typer.Option(help="Score only these S4 categories (comma-separated).")
    ] = None,
    exclude_categories: Annotated[
        list[str] | None, typer.Option(help="Leave these S4 categories out (comma-separated).")
    ] = None,
    open_set: Annotated[
        Literal["seen", "unseen"] | None,
        typer.Option(help="Score only one half of the shipped open-set split."),
    ] = None,
    image_size: SizeOpt = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda.")] = "auto",
    num_workers: Annotated[int, typer.Option(help="Data loader workers.")] = 2,
    max_samples: Annotated[
        int | None, typer.Option(help="Score at most this many pictures / videos.")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Write metrics.json, per_category.png and page/index.html (best and worst "
            "frames per category, with their audio) here.",
        ),
    ] = None,
    page_frames: Annotated[
        int,
        typer.Option(min=0, help="Best and worst frames per category on the page (0: no page)."),
    ] = 3,
    json_output: Annotated[bool, typer.Option("--json", help="Print the JSON report.")] = False,
) -> None:
    """Score a checkpoint: M_J, M_F (with its batch size), batch-independent M_F, per category."""
    from avs_model.evaluation.evaluate import evaluate_checkpoint, format_report

    if untrained == (ckpt is not None):
        raise _fail("give --ckpt CHECKPOINT, or --untrained with --config (a recipe or file)")
    if not untrained and (config or seed is not None or random_init or set_):
        raise _fail("--config, --seed, --random-init and --set go with --untrained")
    try:
        untrained_config = None
        if untrained:
            if not config:
                raise ValueError("--untrained needs --config (a recipe or a TrainConfig file)")
            untrained_config = _build_config(
                config,
                {
                    "seed": seed,
                    "model_overrides.random_init": True if random_init else None,
                },
                set_,
            )
        report = evaluate_checkpoint(
            ckpt,
            untrained=untrained_config,
            shards=shards,
            avsbench=avsbench,
            subset=subset,
            split=split,
            batch_videos=batch_videos,
            gate_threshold=gate_threshold,
            categories=_split_names(categories),
            exclude_categories=_split_names(exclude_categories),
            open_set=open_set,
            image_size=image_size,
            device=device,
            num_workers=num_workers,
            max_samples=max_samples,
            out_dir=out,
            page_frames=page_frames,
        )
    except (FileNotFoundError, FileExistsError, ValueError, KeyError) as error:
        raise _fail(str(error)) from None
    typer.echo(
        json.dumps(report.to_dict(), indent=2, allow_nan=False)
        if json_output
        else format_report(report)
    )
    if report.json_path is not None:
        typer.echo(f"wrote {report.json_path}")
    if report.chart_path is not None:
        typer.echo(f"wrote {report.chart_path}")
    if report.page_path is not None:
        typer.echo(f"wrote {report.page_path}")


@app.command(
    epilog=_examples(
        "avs-train predict --ckpt runs/s4/best.pt video.mp4 --out pred/",
        "avs-train predict --ckpt runs/s4/best.pt frames/ --audio clip.wav --out pred/",
    )
)
def predict(
    ckpt: Annotated[Path, typer.Option(help="The checkpoint.")],
    inputs: Annotated[
        list[Path],
        typer.Argument(help="A video, or images / folders of frames (then give --audio)."),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")],
    audio: Annotated[Path | None, typer.Option(help="Audio file of the frames.")] = None,
    fps: Annotated[float, typer.Option(help="Frames per second (1: AVSBench's pairing).")] = 1.0,
    gate: Annotated[
        bool, typer.Option(help="Empty the mask of frames whose sounding score is below the gate.")
    ] = True,
    gate_threshold: Annotated[
        float | None, typer.Option(help="The gate (default: the checkpoint's).")
    ] = None,
    image_size: SizeOpt = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda.")] = "auto",
    video: Annotated[bool, typer.Option(help="Also encode overlay.mp4.")] = True,
    resampler: Annotated[
        Literal["avsbench", "bandlimited"],
        typer.Option(
            help="How the audio becomes 16 kHz: avsbench (exactly as AVSBench made its wavs) or "
            "bandlimited (sinc resampling)."
        ),
    ] = "avsbench",
) -> None:
    """Masks and overlays for a video, or for frames plus an audio file."""
    from avs_model.evaluation.predict import IMAGE_SUFFIXES
    from avs_model.evaluation.predict import predict as run_predict

    is_frames = len(inputs) > 1 or inputs[0].is_dir() or inputs[0].suffix.lower() in IMAGE_SUFFIXES
    try:
        report = run_predict(
            ckpt,
            out_dir=out,
            video=None if is_frames else inputs[0],
            frames=inputs if is_frames else (),
            audio=audio,
            fps=fps,
            gate_threshold=gate_threshold,
            gate=gate,
            image_size=image_size,
            device=device,
            write_video=video,
            resampler=resampler,
        )
    except (FileNotFoundError, ValueError, KeyError, RuntimeError) as error:
        raise _fail(str(error)) from None
    for frame in report.frames:
        state = "sounding" if frame.sounding else "gated"
        score = "  NaN" if frame.score is None else f"{frame.score:.3f}"
        typer.echo(
            f"frame {frame.index:4d}  t={frame.time_s:7.2f}s  score {score}  "
            f"{state:<8}  mask {frame.mask_fraction:.1%}  {frame.overlay}"
        )
    if report.video is not None:
        typer.echo(f"wrote {report.video}")
    typer.echo(f"wrote {report.predictions_json}")


@app.command(
    "print-config",
    epilog=_examples(
        "avs-train print-config --config s4_pvtv2_frac10 --set optim.lr=5e-5",
        "avs-train print-config --config demo_finetune_tiny > my_recipe.yaml",
    ),
)
def print_config(
    config: ConfigOpt = None,
    model: ModelOpt = None,
    random_init: RandomInitOpt = False,
    set_: SetOpt = None,
) -> None:
    """Show the resolved config as YAML: the TrainConfig (a file --config accepts), followed, as
    comments, by the model config it names (preset or file, plus model_overrides)."""
    from avs_model.runtime.train_config import resolve_model_config

    try:
        updates = {
            "model": model,
            "model_overrides.random_init": True if random_init else None,
        }
        train_config = _build_config(config, updates, set_)
        model_config = resolve_model_config(train_config)
    except (FileNotFoundError, ValueError) as error:
        raise _fail(str(error)) from None
    typer.echo(yaml.safe_dump(train_config.to_dict(), sort_keys=False).rstrip())
    typer.echo(f"# the model config that {train_config.model!r} resolves to:")
    for line in yaml.safe_dump(model_config.to_dict(), sort_keys=False).splitlines():
        typer.echo(f"#   {line}")


if __name__ == "__main__":  # torchrun -m avs_synth_cli.train ...
    app()
