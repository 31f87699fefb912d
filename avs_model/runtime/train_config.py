"""The training configuration: plain dataclasses, one YAML / JSON file per experiment.

A :class:`TrainConfig` names the model (a preset of :mod:`avs_model.modeling.config` or a model
config file, plus overrides), the data settings, the optimiser, the evaluation and, for
fine-tuning, the AVSBench subset. It is saved inside every checkpoint (``TrainConfig.to_dict``) and
read back with :meth:`TrainConfig.from_dict`, which rejects unknown keys by name so that a typo in
a recipe is an error rather than a silently ignored setting.

The paper's settings ship as recipes (``avs_model/recipes/*.yaml``); :func:`load_train_config`
takes a path or the name of a shipped recipe.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import types
import typing
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any, Literal

import yaml

from avs_model.data.augment import AugmentConfig, ResizeConfig

if typing.TYPE_CHECKING:
    from avs_model.modeling.config import AuTRConfig

Precision = Literal["auto", "bf16", "fp16", "fp32"]
Schedule = Literal["constant", "cosine", "step"]


@dataclass
class DataConfig:
    """How samples are read and prepared.

    Args:
        resize: picture size for the model.
        augment: training augmentation (evaluation only resizes).
        num_workers: DataLoader worker processes per rank.
        shuffle_buffer: samples in the stream's shuffle buffer (shards).
        repair_audio: give every synthetic train sample a fresh audio window of its class from
            the audio bank.
        remix_audio: with ``repair_audio``, re-mix every multi-source train triplet (``avs-synth
            build --sources``, mono) from fresh bank windows of its sources' classes at their
            recorded gains (False: a mix keeps its own audio).
        audio_buffer_per_class: windows kept per class by the re-pairing buffer.
        audio_refill_per_sample: bank windows pulled into the buffer for every train sample.
        random_audio_offset: in training, take the VGGish example at a random offset inside
            a window longer than one example (else at its start).
        samples_per_epoch: synthetic train samples per epoch (None: the manifest's count).
        max_eval_samples: evaluate on at most this many samples / videos per split (None: all).
        avsbench_audio: ``auto`` (log-mel pkl when present, else wav), ``log_mel`` or ``wav``.
        max_consecutive_failures: unreadable samples or shards in a row after which the shard
            stream gives up with an error naming the shards (bad ones are skipped and counted).
    """

    resize: ResizeConfig = field(default_factory=ResizeConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    num_workers: int = 2
    shuffle_buffer: int = 1000
    repair_audio: bool = True
    remix_audio: bool = False
    audio_buffer_per_class: int = 16
    audio_refill_per_sample: int = 2
    random_audio_offset: bool = True
    samples_per_epoch: int | None = None
    max_eval_samples: int | None = None
    avsbench_audio: Literal["auto", "log_mel", "wav"] = "auto"
    max_consecutive_failures: int = 100


@dataclass
class OptimConfig:
    """AdamW and its learning-rate schedule.

    Args:
        lr: peak learning rate.
        weight_decay: AdamW weight decay.
        betas: AdamW betas.
        backbone_lr_scale: the visual backbone's learning rate is ``lr * backbone_lr_scale``.
        schedule: ``constant`` (the paper), ``cosine`` (to 0 at the last step) or ``step``.
        warmup_steps: linear warm-up from 0.
        step_milestones: for ``step``: fractions of the run at which the rate is multiplied by
            ``step_gamma``.
        step_gamma: the ``step`` schedule's factor.
        clip_grad_norm: gradient clipping by global norm (None: off).
    """

    lr: float = 1e-4
    weight_decay: float = 5e-4
    betas: tuple[float, float] = (0.9, 0.999)
    backbone_lr_scale: float = 1.0
    schedule: Schedule = "constant"
    warmup_steps: int = 0
    step_milestones: tuple[float, ...] = (0.8,)
    step_gamma: float = 0.1
    clip_grad_norm: float | None = 0.1


@dataclass
class EvalConfig:
    """Periodic evaluation and checkpoint selection.

    Args:
        every_steps: evaluate on the val split every this many steps (None: every epoch).
        batch_videos: videos per M_F batch (the official S4 test uses 4).
        batch_pictures: synthetic pictures (or clips) per model batch. Each is still scored as
            its own metrics batch and its mask depends on it alone, so the figures do not change
            with it (to float rounding); in ``keep_aspect`` mode pictures of different shapes
            would be padded to one size, which changes what the model sees, so there it is 1.
        gate_threshold: the sounding-score gate of the gated figures.
        select_metric: val metric that picks ``best.pt``: ``M_J`` or ``M_F_per_frame`` (the old
            names ``miou`` and ``fmeasure_per_frame`` are still read).
    """

    every_steps: int | None = None
    batch_videos: int = 4
    batch_pictures: int = 8
    gate_threshold: float = 0.5
    select_metric: str = "M_J"

    def __post_init__(self) -> None:
        if self.batch_pictures < 1:
            raise ValueError(f"batch_pictures must be at least 1, got {self.batch_pictures}")
        self.select_metric = _OLD_METRIC_NAMES.get(self.select_metric, self.select_metric)
        if self.select_metric not in ("M_J", "M_F_per_frame"):
            raise ValueError(
                f"select_metric must be one of ['M_J', 'M_F_per_frame'], got {self.select_metric!r}"
            )


_OLD_METRIC_NAMES = {"miou": "M_J", "fmeasure_per_frame": "M_F_per_frame"}


@dataclass
class AVSBenchConfig:
    """The AVSBench data of a fine-tuning run.

    Args:
        subset: ``s4`` or ``ms3``.
        fraction: fraction of each category's train videos kept (``round(n * f)``, at least 1).
        fraction_seed: seed of the hash that picks the kept videos.
        categories: train only on these S4 categories (empty: all).
        exclude_categories: leave these S4 categories out of training.
        open_set: ``seen`` / ``unseen``: train on that half of the shipped open-set split
            (``recipes/open_set_split.txt``); evaluation reports both halves.
    """

    subset: Literal["s4", "ms3"] = "s4"
    fraction: float = 1.0
    fraction_seed: int = 0
    categories: tuple[str, ...] = ()
    exclude_categories: tuple[str, ...] = ()
    open_set: Literal["seen", "unseen"] | None = None

    def __post_init__(self) -> None:
        if not 0 < self.fraction <= 1:
            raise ValueError(
                f"fraction must be in (0, 1], got {self.fraction}; the 0 % rows train nothing: "
                "score the pre-trained checkpoint (avs-train evaluate --ckpt, 'with P.T.') or the "
                "untrained model (avs-train evaluate --untrained --config ..., 'w/o P.T.')"
            )


@dataclass
class TrainConfig:
    """One experiment.

    Args:
        name: run name (used in logs).
        model: an :mod:`avs_model.modeling.config` preset name (``autr_tiny``, ``autr_r50``,
            ``autr_pvtv2_b5``) or the path of a model config file.
        model_overrides: nested dict merged into the model config (``{"transformer":
            {"num_queries": 3}}``).
        seed: seed of the model initialisation, the augmentation and the data order.
        epochs: training epochs (an epoch is one pass over the train split's sample count).
        max_steps: stop after this many optimiser steps (overrides ``epochs``).
        batch_size: samples per step per rank (pictures, or AVSBench videos).
        precision: ``auto`` (bf16 autocast on CUDA, fp32 on CPU), ``bf16``, ``fp16``, ``fp32``.
        device: ``auto`` (CUDA when available), ``cpu``, ``cuda``, ``cuda:1``...
        log_every_steps: write train losses every this many steps.
        checkpoint_every_steps: write ``last.pt`` every this many steps (and every epoch).
        compile: wrap the model with ``torch.compile``.
        compile_mode: its mode: ``default``, ``reduce-overhead`` (CUDA graphs: for fixed
            shapes, e.g. square 224 px batches), ``max-autotune``, ``max-autotune-no-cudagraphs``.
        compile_dynamic: its ``dynamic``: None (torch's default: specialise, then recompile with
            dynamic shapes when a size changes), false (one specialised graph per size; fixed
            sizes), true (dynamic from the start; pictures of varying size).
        data, optim, eval, avsbench: see their classes.
    """

    name: str = "run"
    model: str = "autr_tiny"
    model_overrides: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    epochs: float = 10.0
    max_steps: int | None = None
    batch_size: int = 1
    precision: Precision = "auto"
    device: str = "auto"
    log_every_steps: int = 20
    checkpoint_every_steps: int = 500
    compile: bool = False
    compile_mode: Literal[
        "default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"
    ] = "default"
    compile_dynamic: bool | None = None
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    avsbench: AVSBenchConfig = field(default_factory=AVSBenchConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (tuples become lists; JSON / YAML / checkpoint friendly)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str | None = None) -> TrainConfig:
        """Rebuild from :meth:`to_dict`'s output (or a recipe file's mapping); ``source`` (the
        file) prefixes error messages."""
        return _build(cls, data, source, "")

    def with_updates(self, **changes: Any) -> TrainConfig:
        """A copy with dotted-path updates, e.g. ``with_updates(**{"optim.lr": 1e-5})``; paths
        under ``model_overrides`` may name new keys (``model_overrides.backbone.frozen``)."""
        data = self.to_dict()
        for dotted, value in changes.items():
            node = data
            *parents, leaf = dotted.split(".")
            free = parents[:1] == ["model_overrides"]  # a free-form nested dict
            for depth, part in enumerate(parents):
                if free and part not in node:
                    node[part] = {}
                if part not in node or not isinstance(node[part], dict):
                    known = [k for k, v in node.items() if isinstance(v, dict)]
                    where = ".".join(parents[:depth] + [part])
                    raise ValueError(f"unknown config section {where!r}{_closest(part, known)}")
                node = node[part]
            if leaf not in node and not free:
                prefix = ".".join(parents) + "." if parents else ""
                raise ValueError(
                    f"unknown config field {dotted!r}{_closest(leaf, node, prefix=prefix)}"
                )
            node[leaf] = list(value) if isinstance(value, tuple) else value
        return TrainConfig.from_dict(data)


def _closest(name: str, known: Iterable[str], *, prefix: str = "") -> str:
    """`` (did you mean 'x'?)`` for the known name closest to ``name``, else ``""``."""
    match = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f" (did you mean {prefix + match[0]!r}?)" if match else ""


def _build(cls: type, data: Any, source: str | None, prefix: str) -> Any:
    at = f"{source}: " if source else ""
    if not isinstance(data, dict):
        where = prefix.rstrip(".") or "the config"
        raise ValueError(f"{at}{where} must be a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        where = f" in section {prefix.rstrip('.')!r}" if prefix else ""
        hint = _closest(unknown[0], names)
        raise ValueError(f"{at}unknown config keys {unknown}{where}{hint}; known: {sorted(names)}")
    kwargs = {}
    for name, value in data.items():
        kwargs[name] = _convert(hints[name], value, source, f"{prefix}{name}")
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{at}{prefix.rstrip('.') or 'config'}: {error}") from None


def _convert(hint: Any, value: Any, source: str | None, path: str) -> Any:
    at = f"{source}: " if source else ""
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, source, f"{path}.")
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if value is None:
            return None
        return _convert(args[0], value, source, path) if len(args) == 1 else value
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ValueError(f"{at}{path} must be a list, got {value!r}")
        return tuple(value)
    if origin is Literal:
        allowed = typing.get_args(hint)
        if value not in allowed:
            raise ValueError(f"{at}{path} must be one of {list(allowed)}, got {value!r}")
        return value
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is float and isinstance(value, str):
        try:  # YAML reads "5e-5" (no dot) as a string
            return float(value)
        except ValueError:
            pass
    if hint in (int, float, str, bool) and not isinstance(value, hint):
        raise ValueError(f"{at}{path} must be {hint.__name__}, got {value!r}")
    return value


RECIPES = files("avs_model") / "recipes"


def recipe_path(name: str) -> Path:
    """The path of a shipped recipe (``s4_finetune`` or ``s4_finetune.yaml``)."""
    stem = name[:-5] if name.endswith(".yaml") else name
    path = Path(str(RECIPES / f"{stem}.yaml"))
    if not path.is_file():
        known = sorted(p.name[:-5] for p in Path(str(RECIPES)).glob("*.yaml"))
        raise FileNotFoundError(
            f"no recipe {name!r}{_closest(stem, known)}; shipped recipes: {', '.join(known)}"
        )
    return path


def load_train_config(path_or_recipe: str | Path) -> TrainConfig:
    """Read a :class:`TrainConfig` from a YAML / JSON file, or a shipped recipe by name."""
    path = Path(path_or_recipe)
    if not path.is_file():
        if path.suffix in ("", ".yaml") and path.parent == Path("."):
            path = recipe_path(str(path_or_recipe))
        else:
            raise FileNotFoundError(f"{path}: config file not found")
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as error:
        raise ValueError(f"{path}: cannot parse the config: {error}") from None
    return TrainConfig.from_dict(data or {}, source=str(path))


def save_train_config(config: TrainConfig, path: Path) -> None:
    """Write the config as YAML (readable back by :func:`load_train_config`)."""
    path.write_text(yaml.safe_dump(config.to_dict(), sort_keys=False), encoding="utf-8")


def resolve_model_config(config: TrainConfig) -> AuTRConfig:
    """The :class:`~avs_model.modeling.config.AuTRConfig` a train config names (preset or file, plus
    ``model_overrides``)."""
    from avs_model.modeling.config import PRESETS, AuTRConfig, load_config, merge_nested, preset

    if config.model in PRESETS:
        base = preset(config.model)
    elif Path(config.model).is_file():
        base = load_config(config.model)
    else:
        raise ValueError(
            f"model {config.model!r} is neither a preset ({sorted(PRESETS)}) nor a config file"
        )
    if not config.model_overrides:
        return base
    return AuTRConfig.from_dict(merge_nested(base.to_dict(), config.model_overrides))
