"""Does the audibility score find the seconds where a labelled source is silent? AUROC on the
sample corpus's drawn silent stretches.

    python bench/audibility_auroc.py [--clips-per-class 20] [--hop 0.25] [--work DIR]

Data: the VGGSound clips of a sample corpus (10 s each; 30 % of them have one muted stretch of
1-3 s where only the recording's faint noise floor, -62 to -50 dBFS, remains; ``corpus.json``
records it as ``silent_seconds``). Every 1 s window at ``--hop`` spacing is cut from the decoded
clip (16 kHz, band-limited resampler); a window wholly inside a muted stretch is inaudible, one
that does not touch any is audible (windows straddling a stretch's edge are left out).

Figures: the counts, the AUROC of :func:`avs_synth.audio.audibility.audibility` (the probability
that an audible window scores above an inaudible one, ties counting one half), and the AUROC of
its level and flatness terms alone. Target (issue 15): AUROC >= 0.95.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from avs_synth.audio.audibility import audibility
from avs_synth.audio.clip_reader import open_clip
from avs_synth.sample_corpus.summary import CorpusSize
from avs_synth.sample_corpus.writer import write_sample_corpus

WINDOW_S = 1.0
RATE = 16_000


def auroc(positive: list[float], negative: list[float]) -> float:
    """P(a positive scores above a negative), ties counting one half (the Mann-Whitney U)."""
    pos, neg = np.asarray(positive)[:, None], np.asarray(negative)[None, :]
    return float(((pos > neg).sum() + 0.5 * (pos == neg).sum()) / (pos.size * neg.size))


def labelled_windows(corpus: Path, hop_s: float) -> dict[str, list[list[float]]]:
    """Per label (``audible`` / ``inaudible``): ``[score, relative level, flatness gap]`` of
    every window of every clip file."""
    info = json.loads((corpus / "corpus.json").read_text())
    out: dict[str, list[list[float]]] = {"audible": [], "inaudible": []}
    for clip in info["clips"]:
        if clip["path"] is None:
            continue
        reader = open_clip(corpus / clip["path"], sample_rate=RATE, resampler="bandlimited")
        samples = reader.read(0, reader.frames).astype(np.float64)
        stretch = clip.get("silent_seconds")
        length = int(WINDOW_S * reader.rate)
        for start in np.arange(0.0, reader.frames / reader.rate - WINDOW_S + 1e-9, hop_s):
            end = start + WINDOW_S
            if stretch is None or end <= stretch[0] or start >= stretch[1]:
                label = "audible"
            elif stretch[0] <= start and end <= stretch[1]:
                label = "inaudible"
            else:
                continue
            first = int(round(start * reader.rate))
            a = audibility(samples[first : first + length], samples, reader.rate)
            out[label].append(
                [a.score, a.level_dbfs - a.clip_level_dbfs, a.flatness - a.clip_flatness]
            )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("runs/audibility_auroc"))
    parser.add_argument("--clips-per-class", type=int, default=20)
    parser.add_argument("--hop", type=float, default=0.25)
    args = parser.parse_args()
    start = time.perf_counter()
    corpus = args.work / "corpus"
    if not (corpus / "corpus.json").is_file():
        size = CorpusSize(
            lvis_train_images=4,
            lvis_val_images=2,
            coco_only_images=1,
            openimages_train_images=2,
            openimages_val_images=1,
            clips_per_class=args.clips_per_class,
            s4_videos_per_category=0,
            ms3_videos_per_split=0,
            s4_categories=0,
        )
        write_sample_corpus(corpus, size=size, mp4=False, overwrite=True)
    windows = labelled_windows(corpus, args.hop)
    audible, inaudible = (np.asarray(windows[k]) for k in ("audible", "inaudible"))
    stretches = sum(
        c.get("silent_seconds") is not None
        for c in json.loads((corpus / "corpus.json").read_text())["clips"]
        if c["path"]
    )
    print(
        f"sample corpus, {args.clips_per_class} clips per class per VGGSound split, "
        f"{stretches} clips with a muted stretch; 1 s windows every {args.hop:g} s: "
        f"{len(audible)} audible, {len(inaudible)} inaudible"
    )
    score = auroc(list(audible[:, 0]), list(inaudible[:, 0]))
    print(f"  AUROC audibility score             {score:.4f}")
    level = auroc(list(audible[:, 1]), list(inaudible[:, 1]))
    print(f"  AUROC level against the clip only  {level:.4f}")
    print(
        f"  AUROC flatness gap only (lower = audible) "
        f"{auroc(list(-audible[:, 2]), list(-inaudible[:, 2])):.4f}"
    )
    print(
        f"  score quantiles audible p5 {np.percentile(audible[:, 0], 5):.3f}, "
        f"inaudible p95 {np.percentile(inaudible[:, 0], 95):.3f}"
    )
    print(f"  target AUROC >= 0.95: {'met' if score >= 0.95 else 'NOT met'}")
    print(f"total time {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
