"""The sample corpus's AVSBench files: S4 and MS3 videos (frames, masks, wav, log-mel pickles)
and their metadata CSVs, with silent objects of other categories in every frame."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from PIL import Image

from avs_synth.audio.logmel import waveform_to_examples
from avs_synth.sample_corpus.categories import CATEGORIES, CorpusCategory, category_by_key
from avs_synth.sample_corpus.file_writers import (
    audio_bytes,
    label_map_image,
    tensor_pickle_bytes,
    write_bytes,
    write_csv,
    write_png,
)
from avs_synth.sample_corpus.scenes import draw_background, place_objects, render_frame
from avs_synth.sample_corpus.sounds import SAMPLE_RATE, synthesize_clip, to_int16
from avs_synth.sample_corpus.summary import (
    CorpusSize,
    CorpusSummary,
    CorpusVideo,
    DrawnInstance,
    item_rng,
)
from avs_synth.sample_corpus.vggsound import YouTubeIds

log = logging.getLogger(__name__)


S4_SPLITS = ("train", "val", "test")
AVS_SIZE = 224
AVS_FRAMES = 5
AVS_SECONDS = 5


def _avs_scene(
    r: np.random.Generator, sounding: list[str], pool: list[str]
) -> tuple[np.ndarray, list]:
    """Background and placed objects (sounding ones tagged) for a 5-frame 224x224 clip."""
    others = [c for c in pool if c not in sounding]
    for _ in range(12):
        n_other = int(r.integers(1, 4)) if len(sounding) == 1 else int(r.integers(1, 3))
        silent = [str(c) for c in r.choice(others, size=n_other, replace=False)]
        cats = list(sounding) + silent
        tags = [f"sounding-{i}" for i in range(len(sounding))] + [None] * len(silent)
        background = draw_background(r, AVS_SIZE, AVS_SIZE)
        objects = place_objects(
            r,
            height=AVS_SIZE,
            width=AVS_SIZE,
            categories=cats,
            tags=tags,
            size_range=(0.3, 0.5) if len(cats) <= 3 else (0.26, 0.4),
            num_frames=AVS_FRAMES,
            max_shift=3.0,
            gap=3,
        )
        placed = [o.tag for o in objects]
        if all(f"sounding-{i}" in placed for i in range(len(sounding))) and len(objects) >= 2:
            return background, objects
    raise RuntimeError(f"could not lay out an AVSBench frame for {sounding}")


def _mix_seconds(clips: list[np.ndarray], seconds: list[tuple[int, ...]]) -> np.ndarray:
    """Sum of 5-s clips, each gated (20 ms ramps) to the seconds in which it sounds."""
    n = AVS_SECONDS * SAMPLE_RATE
    out = np.zeros(n, dtype=np.float64)
    ramp = SAMPLE_RATE // 50
    for clip, active in zip(clips, seconds, strict=True):
        gate = np.zeros(n)
        for s in active:
            gate[(s - 1) * SAMPLE_RATE : s * SAMPLE_RATE] = 1.0
        kernel = np.ones(ramp) / ramp
        gate = np.convolve(gate, kernel, mode="same")
        out += clip.astype(np.float64) * gate
    peak = np.max(np.abs(out)) + 1e-9
    return (out / peak * 0.8).astype(np.float32)


def _write_avs_video(
    out: Path,
    *,
    r: np.random.Generator,
    subset: str,
    name: str,
    split: str,
    s4_category: str | None,
    sounding: list[str],
    pool: list[str],
    frame_rel: list[str],
    mask_rel: list[str | None],
    wav_rel: str,
    pkl_rel: str,
    start: int,
) -> CorpusVideo:
    background, objects = _avs_scene(r, sounding, pool)
    if subset == "s4":
        seconds = [tuple(range(1, AVS_FRAMES + 1))]
    else:
        seconds = [tuple(range(1, AVS_FRAMES + 1))]
        for _ in sounding[1:]:
            length = int(r.integers(2, AVS_FRAMES + 1))
            first = int(r.integers(1, AVS_FRAMES - length + 2))
            seconds.append(tuple(range(first, first + length)))
    tag_seconds = {f"sounding-{i}": s for i, s in enumerate(seconds)}
    label_rels = []
    instances: list[DrawnInstance] = []
    for k in range(AVS_FRAMES):
        scene = render_frame(background, objects, frame=k, polygons=False, noise_rng=r)
        write_png(out / frame_rel[k], Image.fromarray(scene.image), compress_level=1)
        lm_rel = f"truth/labelmaps/avsbench/{subset}/{split}/{name}/{name}_{k + 1}.png"
        write_png(out / lm_rel, label_map_image(scene.label_map()))
        label_rels.append(lm_rel)
        gt = np.zeros((AVS_SIZE, AVS_SIZE), dtype=bool)
        for obj in scene.objects:
            if obj.tag in tag_seconds and (k + 1) in tag_seconds[obj.tag]:
                gt |= obj.mask
        if mask_rel[k] is not None:
            if subset == "s4":
                img = Image.fromarray((gt * 255).astype(np.uint8))
            else:
                img = Image.frombytes("P", (AVS_SIZE, AVS_SIZE), gt.astype(np.uint8).tobytes())
                img.putpalette([0, 0, 0, 128, 0, 0] + [0, 0, 0] * 254)
            write_png(out / mask_rel[k], img)
        if k == 0:
            instances = [
                DrawnInstance(
                    label=i + 1,
                    category=obj.category,
                    area=obj.area,
                    bbox=obj.bbox,
                    sounding_seconds=tag_seconds.get(obj.tag or "", ()),
                )
                for i, obj in enumerate(scene.objects)
            ]
    clips = [
        synthesize_clip(category_by_key(c).vggsound_label, r, duration_s=AVS_SECONDS)
        for c in sounding
    ]
    wave = to_int16(clips[0] if subset == "s4" else _mix_seconds(clips, seconds))
    write_bytes(out / wav_rel, audio_bytes(wave, "wav", 0))
    examples = waveform_to_examples(wave, SAMPLE_RATE, num_examples=AVS_FRAMES)  # [5, 1, 96, 64]
    write_bytes(out / pkl_rel, tensor_pickle_bytes(examples.float()))
    return CorpusVideo(
        subset=subset,
        name=name,
        split=split,
        category=s4_category,
        sounding=tuple(sounding),
        frames=tuple(frame_rel),
        masks=tuple(mask_rel),
        label_maps=tuple(label_rels),
        wav=wav_rel,
        log_mel=pkl_rel,
        instances=tuple(instances),
        start=start,
    )


def write_avsbench(
    out: Path, seed: int, size: CorpusSize, summary: CorpusSummary, yt_ids: YouTubeIds
) -> None:
    keys = [c.key for c in CATEGORIES]
    s4_root = "avsbench/Single-source/s4_data"
    meta: list[list[object]] = []
    s4_cats: list[CorpusCategory] = [c for c in CATEGORIES if c.s4_category is not None]
    s4_cats = s4_cats[: size.s4_categories] if size.s4_categories is not None else s4_cats
    for split_index, split in enumerate(S4_SPLITS):
        for cat_index, cat in enumerate(s4_cats):
            for k in range(size.s4_videos_per_category):
                r = item_rng(seed, "s4", split_index, cat_index, k)
                name = yt_ids.new(r)
                start = int(r.choice([0, 0, 0, 0, 5, 2, 1, 3, 4]))
                c4 = cat.s4_category
                assert c4 is not None
                base = f"{split}/{c4}/{name}"
                frames = [f"{s4_root}/visual_frames/{base}/{name}_{j}.png" for j in range(1, 6)]
                masks: list[str | None] = [
                    f"{s4_root}/gt_masks/{base}/{name}_{j}.png"
                    if (split != "train" or j == 1)
                    else None
                    for j in range(1, 6)
                ]
                video = _write_avs_video(
                    out,
                    r=r,
                    subset="s4",
                    name=name,
                    split=split,
                    s4_category=c4,
                    sounding=[cat.key],
                    pool=keys,
                    frame_rel=frames,
                    mask_rel=masks,
                    wav_rel=f"{s4_root}/audio_wav/{split}/{c4}/{name}.wav",
                    pkl_rel=f"{s4_root}/audio_log_mel/{split}/{c4}/{name}.pkl",
                    start=start,
                )
                summary.videos.append(video)
                meta.append([name, start, c4, split])
    meta.sort(key=lambda row: (str(row[2]), str(row[0])))
    write_csv(
        out / "avsbench/Single-source/s4_meta_data.csv",
        ["name", "start", "category", "split"],
        meta,
    )
    summary.files["s4_meta"] = "avsbench/Single-source/s4_meta_data.csv"
    summary.files["s4_data"] = s4_root

    ms3_root = "avsbench/Multi-sources/ms3_data"
    ms3_meta: list[list[object]] = []
    for split_index, split in enumerate(S4_SPLITS):
        for k in range(size.ms3_videos_per_split):
            r = item_rng(seed, "ms3", split_index, k)
            name = yt_ids.new(r)
            sounding = [str(c) for c in r.choice(keys, size=2, replace=False)]
            frames = [f"{ms3_root}/visual_frames/{name}/{name}.mp4_{j}.png" for j in range(1, 6)]
            masks = [f"{ms3_root}/gt_masks/{split}/{name}/{name}_{j}.png" for j in range(1, 6)]
            video = _write_avs_video(
                out,
                r=r,
                subset="ms3",
                name=name,
                split=split,
                s4_category=None,
                sounding=sounding,
                pool=keys,
                frame_rel=frames,
                mask_rel=list(masks),
                wav_rel=f"{ms3_root}/audio_wav/{split}/{name}.wav",
                pkl_rel=f"{ms3_root}/audio_log_mel/{split}/{name}.pkl",
                start=0,
            )
            summary.videos.append(video)
            ms3_meta.append([name, split])
    write_csv(out / "avsbench/Multi-sources/ms3_meta_data.csv", ["video_id", "split"], ms3_meta)
    summary.files["ms3_meta"] = "avsbench/Multi-sources/ms3_meta_data.csv"
    summary.files["ms3_data"] = ms3_root
