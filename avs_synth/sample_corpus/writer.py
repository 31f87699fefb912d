"""``avs-synth sample-corpus``: a small corpus in the REAL on-disk formats of every source.

The pictures are synthetic (:mod:`avs_synth.sample_corpus.scenes`) and the sounds too
(:mod:`avs_synth.sample_corpus.sounds`), but every file follows the layout and format of the real
release, so the readers in :mod:`avs_synth.sources`, the matching and the build run on it exactly
as on the real data. Categories carry their real ids and names
(:mod:`avs_synth.sample_corpus.categories`). One module writes each dataset's files
(``coco_lvis``, ``openimages``, ``vggsound``, ``avsbench``); this one orders them and writes
``corpus.json`` and ``README.md``.

Layout under ``OUT``::

    README.md, corpus.json              what was generated (counts, seed, categories, every
                                        picture / clip / video with its ground truth)
    coco/train2017/{id:012d}.jpg        the COCO pictures (LVIS shares them, as in reality)
    coco/val2017/{id:012d}.jpg
    coco/annotations/instances_train2017.json, instances_val2017.json
                                        COCO: polygons, iscrowd, an uncompressed-RLE crowd
    lvis/lvis_v1_train.json, lvis/lvis_v1_val.json
                                        LVIS v1 (coco_url; neg_category_ids: truly absent;
                                        not_exhaustive_category_ids: a present instance was left
                                        unannotated); LVIS val pictures come from COCO val2017
                                        and train2017, as in LVIS v1; a few COCO train pictures
                                        are not in LVIS
    openimages/{train,validation}/{ImageID}.jpg
    openimages/{split}-annotations-object-segmentation.csv
                                        MaskPath,ImageID,LabelName,BoxID,BoxXMin,BoxXMax,BoxYMin,
                                        BoxYMax,PredictedIoU,Clicks
    openimages/{split}-masks/{split}-masks-{0-9a-f}.zip
                                        mask PNGs {ImageID}_{mid without /}_{BoxID}.png, at
                                        another resolution than the picture, zipped by the first
                                        hex digit of the ImageID
    openimages/{split}-annotations-human-imagelabels.csv
                                        ImageID,Source,LabelName,Confidence (0 = verified absent)
    openimages/oidv7-class-descriptions.csv, openimages/classes-segmentation.txt
    vggsound/vggsound.csv               no header: youtube_id,start_seconds,label,split
    vggsound/clips/                     10 s, 16 kHz mono clips named {ytid}_{start:06d}.ext,
                                        {ytid}_{start}.ext or {ytid}_{start}_{end}.ext; wav
                                        (int16), flac, ogg, mp4 (AAC + a tiny black video, written
                                        by PyAV); one row per split has no file (as in real,
                                        incomplete downloads)
    avsbench/Single-source/s4_meta_data.csv (name,start,category,split)
    avsbench/Single-source/s4_data/visual_frames/{split}/{category}/{name}/{name}_{k}.png
    avsbench/Single-source/s4_data/gt_masks/{split}/{category}/{name}/{name}_{k}.png
                                        binary (0/255); train: frame 1 only; val/test: 1-5
    avsbench/Single-source/s4_data/audio_wav/{split}/{category}/{name}.wav (5 s, 16 kHz)
    avsbench/Single-source/s4_data/audio_log_mel/{split}/{category}/{name}.pkl
                                        pickle of a float32 tensor [5, 1, 96, 64] made with
                                        avs_synth.audio.logmel.waveform_to_examples from the wav
    avsbench/Multi-sources/ms3_meta_data.csv (video_id,split)
    avsbench/Multi-sources/ms3_data/visual_frames/{name}/{name}.mp4_{k}.png
    avsbench/Multi-sources/ms3_data/gt_masks/{split}/{name}/{name}_{k}.png (palette PNG)
    avsbench/Multi-sources/ms3_data/audio_wav/{split}/{name}.wav
    avsbench/Multi-sources/ms3_data/audio_log_mel/{split}/{name}.pkl
    truth/labelmaps/...                 not part of any dataset: uint8 label maps (0 background,
                                        i for the i-th object listed in corpus.json) of every
                                        picture and AVSBench frame, the drawn ground truth

Every picture holds 2-4 objects of different categories; every AVSBench frame holds the sounding
object(s) and silent objects of other categories, so segmentation needs the audio. Everything
is a pure function of ``seed`` and the size: two runs write byte-identical files (fixed zip
timestamps, fixed PNG / JPEG encoder settings, fixed Ogg serial numbers, bit-exact FFmpeg encoders
through PyAV).
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path

from avs_synth.sample_corpus.avsbench import write_avsbench
from avs_synth.sample_corpus.categories import CATEGORIES
from avs_synth.sample_corpus.coco_lvis import write_coco_and_lvis
from avs_synth.sample_corpus.file_writers import write_bytes
from avs_synth.sample_corpus.openimages import write_openimages
from avs_synth.sample_corpus.summary import SIZE_PRESETS, CorpusSize, CorpusSummary
from avs_synth.sample_corpus.vggsound import YouTubeIds, write_vggsound

log = logging.getLogger(__name__)


MANAGED = (
    "coco",
    "lvis",
    "openimages",
    "vggsound",
    "avsbench",
    "truth",
    "corpus.json",
    "README.md",
)


def _readme(summary: CorpusSummary) -> str:
    lines = [
        "# avs-synth sample corpus",
        "",
        "Synthetic pictures and sounds in the real on-disk formats of LVIS v1, COCO 2017, Open",
        "Images V7 (segmentation), VGGSound and AVSBench (S4, MS3), written by",
        f"`avs-synth sample-corpus` with seed {summary.seed}"
        + (f" and size `{summary.size_name}`." if summary.size_name else "."),
        "Category ids and names are the real ones; the pictures and sounds are not real data.",
        "`corpus.json` lists every picture, clip and video with its drawn ground truth;",
        "`truth/` holds label maps (0 = background, i = the i-th listed object).",
        "",
        "## Counts",
        "",
        "| what | count |",
        "|---|---|",
    ]
    lines += [f"| {k} | {v} |" for k, v in summary.counts().items()]
    lines += [
        "",
        "## Categories",
        "",
        "| key | LVIS id / name | COCO id / name | Open Images MID / name | VGGSound label | S4 |",
        "|---|---|---|---|---|---|",
    ]
    for c in CATEGORIES:
        coco = f"{c.coco_id} / {c.coco_name}" if c.coco_id is not None else "-"
        oi = f"{c.openimages_mid} / {c.openimages_name}" if c.openimages_mid else "-"
        if c.openimages_mid and not c.openimages_segmentable:
            oi += " (image labels only)"
        lines.append(
            f"| {c.key} | {c.lvis_id} / {c.lvis_name} | {coco} | {oi} | {c.vggsound_label} |"
            f" {c.s4_category or '-'} |"
        )
    lines += ["", "## Files", ""]
    lines += [f"- `{k}`: `{v}`" for k, v in sorted(summary.files.items())]
    return "\n".join(lines) + "\n"


def resolve_size(size: CorpusSize | str) -> tuple[str | None, CorpusSize]:
    """A preset name or a :class:`CorpusSize` → (name or None, size)."""
    if isinstance(size, CorpusSize):
        return None, size
    if size not in SIZE_PRESETS:
        raise ValueError(f"unknown corpus size {size!r}; choose one of {', '.join(SIZE_PRESETS)}")
    return size, SIZE_PRESETS[size]


def write_sample_corpus(
    out: Path,
    *,
    seed: int = 0,
    size: CorpusSize | str = "small",
    overwrite: bool = False,
    mp4: bool = True,
) -> CorpusSummary:
    """Write the sample corpus under ``out`` and return what was written.

    Args:
        out: the corpus root (created if needed).
        seed: every file is a pure function of the seed and the size.
        size: a preset name (``tiny``, ``small``, ``medium``) or a :class:`CorpusSize`.
        overwrite: replace a corpus already there (only the corpus's own top-level entries are
            removed); without it an existing corpus is an error.
        mp4: write an mp4 clip per VGGSound split (through PyAV).
    """
    size_name, corpus_size = resolve_size(size)
    out = Path(out)
    existing = [name for name in MANAGED if (out / name).exists()]
    if existing:
        if not overwrite:
            raise FileExistsError(
                f"{out} already holds a corpus ({', '.join(existing)}); pass overwrite=True"
                " (--overwrite on the command line)"
            )
        for name in existing:
            target = out / name
            if target.is_dir():
                shutil.rmtree(target)
            else:
                target.unlink()
    out.mkdir(parents=True, exist_ok=True)
    summary = CorpusSummary(root=out, seed=seed, size_name=size_name, size=corpus_size)
    yt_ids = YouTubeIds()
    stages = (
        ("COCO + LVIS", lambda: write_coco_and_lvis(out, seed, corpus_size, summary)),
        ("Open Images", lambda: write_openimages(out, seed, corpus_size, summary)),
        ("VGGSound", lambda: write_vggsound(out, seed, corpus_size, summary, yt_ids, mp4)),
        ("AVSBench", lambda: write_avsbench(out, seed, corpus_size, summary, yt_ids)),
    )
    for title, stage in stages:
        t0 = time.perf_counter()
        stage()
        log.info("sample corpus: %s written in %.1f s", title, time.perf_counter() - t0)
    summary.files["corpus_json"] = "corpus.json"
    summary.files["readme"] = "README.md"
    write_bytes(out / "corpus.json", json.dumps(summary.to_json(), indent=1).encode())
    write_bytes(out / "README.md", _readme(summary).encode())
    log.info("sample corpus at %s: %s", out, summary.counts())
    return summary
