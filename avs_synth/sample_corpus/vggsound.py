"""The sample corpus's VGGSound files: ``vggsound.csv`` and clips in wav / flac / ogg / mp4, named
as real downloads are, with realistic YouTube ids."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from avs_synth.sample_corpus.categories import CATEGORIES
from avs_synth.sample_corpus.file_writers import audio_bytes, write_bytes, write_csv, write_mp4
from avs_synth.sample_corpus.sounds import synthesize_clip_with_stretch, to_int16
from avs_synth.sample_corpus.summary import CorpusClip, CorpusSize, CorpusSummary, item_rng

log = logging.getLogger(__name__)


CLIP_SECONDS = 10

_YT_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_YT_LAST = "AEIMQUYcgkosw048"  # the 11th character carries only 4 bits


class YouTubeIds:
    """Unique, realistic 11-character YouTube ids; every fourth one holds ``-`` or ``_``."""

    def __init__(self) -> None:
        self.used: set[str] = set()

    def new(self, rng: np.random.Generator) -> str:
        while True:
            chars = [_YT_ALPHABET[i] for i in rng.integers(0, 64, size=10)]
            chars.append(_YT_LAST[int(rng.integers(0, 16))])
            if len(self.used) % 4 == 0:
                chars[int(rng.integers(0, 10))] = "-" if rng.random() < 0.5 else "_"
            if len(self.used) % 9 == 0:
                chars[0] = "-"
            yid = "".join(chars)
            if yid not in self.used:
                self.used.add(yid)
                return yid


def write_vggsound(
    out: Path,
    seed: int,
    size: CorpusSize,
    summary: CorpusSummary,
    yt_ids: YouTubeIds,
    mp4: bool,
) -> None:
    formats = ("wav", "flac", "wav", "ogg", "wav", "flac")
    patterns = ("{y}_{s:06d}", "{y}_{s}", "{y}_{s}_{e}")
    rows: list[list[object]] = []
    counter = 0
    audio_cats = CATEGORIES[: size.vggsound_categories] if size.vggsound_categories else CATEGORIES
    for split_index, split in enumerate(("train", "test")):
        for cat_index, cat in enumerate(audio_cats):
            for k in range(size.clips_per_class):
                r = item_rng(seed, f"vggsound-{split}", cat_index, k)
                yid = yt_ids.new(r)
                start = int(r.choice([0, 0, 10, 30, int(r.integers(1, 300))]))
                silent = bool(r.random() < 0.3)
                missing = k == 1 and cat_index == 3 + split_index
                fmt: str | None = formats[counter % len(formats)]
                if mp4 and k == 0 and cat_index == 5 + split_index:
                    fmt = "mp4"
                stem = patterns[counter % len(patterns)].format(y=yid, s=start, e=start + 10)
                counter += 1
                clip_samples, stretch = synthesize_clip_with_stretch(
                    cat.vggsound_label, r, duration_s=CLIP_SECONDS, silent_stretch=silent
                )
                samples = to_int16(clip_samples)
                rel: str | None = None
                if missing:
                    fmt = None
                else:
                    rel = f"vggsound/clips/{stem}.{fmt}"
                    if fmt == "mp4":
                        write_mp4(out / rel, samples)
                        summary.mp4_written = True
                    else:
                        serial = int(r.integers(1, 2**31))
                        write_bytes(out / rel, audio_bytes(samples, fmt, serial))
                rows.append([yid, start, cat.vggsound_label, split])
                summary.clips.append(
                    CorpusClip(
                        youtube_id=yid,
                        start_seconds=start,
                        label=cat.vggsound_label,
                        category=cat.key,
                        split=split,
                        path=rel,
                        audio_format=fmt,
                        silent_stretch=silent,
                        silent_seconds=stretch,
                    )
                )
    rows.sort(key=lambda row: (str(row[0]), int(row[1])))
    write_csv(out / "vggsound" / "vggsound.csv", None, rows)
    summary.files["vggsound_csv"] = "vggsound/vggsound.csv"
    summary.files["vggsound_clips"] = "vggsound/clips"
