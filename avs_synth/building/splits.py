"""Train / val / test splits: by picture for images, by VGGSound split for clips.

- A picture is identified by :func:`picture_key`: LVIS and COCO share pictures and image ids, so
  both map to ``coco:{image_id}``; each picture is taken from one source only (the first source
  read, LVIS before COCO; see :func:`avs_synth.building.plan.make_plan`).
- Pictures are ordered by their seeded key and cut at the fractions (exact counts, rounded), so
  no picture is in two splits.
- Train audio comes from VGGSound's train split, val and test audio from its test split; the
  test clips of each class are cut between val and test in the ratio of their fractions, so no
  clip is in two splits.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from avs_synth.records import AudioClip, ImageRecord
from avs_synth.schema import SPLITS
from avs_synth.seeded_order import seeded_sorted


@dataclass(frozen=True)
class SplitFractions:
    """Fractions of the pictures in each split (they must sum to 1).

    Args:
        train: fraction for training (audio from VGGSound train).
        val: fraction for validation (audio from VGGSound test).
        test: fraction for testing (audio from VGGSound test).
    """

    train: float = 0.9
    val: float = 0.05
    test: float = 0.05

    def __post_init__(self) -> None:
        values = (self.train, self.val, self.test)
        if any(v < 0 for v in values):
            raise ValueError(f"split fractions must be >= 0, got {values}")
        if abs(sum(values) - 1.0) > 1e-6:
            raise ValueError(f"split fractions must sum to 1, got {values} (sum {sum(values)})")

    def as_dict(self) -> dict[str, float]:
        return {"train": self.train, "val": self.val, "test": self.test}

    @classmethod
    def parse(cls, text: str) -> SplitFractions:
        """``"0.9,0.05,0.05"`` (train, val, test) → SplitFractions."""
        parts = [p.strip() for p in text.split(",")]
        if len(parts) != 3:
            raise ValueError(f"split fractions need three numbers train,val,test, got {text!r}")
        try:
            train, val, test = (float(p) for p in parts)
        except ValueError:
            raise ValueError(f"split fractions must be numbers, got {text!r}") from None
        return cls(train=train, val=val, test=test)


def picture_key(record: ImageRecord) -> str:
    """The identity of the underlying picture (LVIS and COCO share ``coco:{image_id}``)."""
    if record.source in ("lvis", "coco"):
        return f"coco:{record.image_id}"
    return f"{record.source}:{record.image_id}"


def _cut_counts(n: int, fractions: list[float]) -> list[int]:
    counts = [int(round(f * n)) for f in fractions[:-1]]
    while sum(counts) > n:  # rounding up twice can overshoot by one
        counts[counts.index(max(counts))] -= 1
    return [*counts, n - sum(counts)]


def assign_pictures(keys: Iterable[str], fractions: SplitFractions, *, seed: int) -> dict[str, str]:
    """Picture key → split: keys in seeded order, cut at the (rounded) fractions."""
    ordered = seeded_sorted(set(keys), seed=seed, identity=lambda k: k, salt="picture-split")
    counts = _cut_counts(len(ordered), [fractions.train, fractions.val, fractions.test])
    out: dict[str, str] = {}
    begin = 0
    for split, count in zip(SPLITS, counts, strict=True):
        for key in ordered[begin : begin + count]:
            out[key] = split
        begin += count
    return out


def assign_clips(
    clips: Iterable[AudioClip], fractions: SplitFractions, *, seed: int
) -> dict[str, str]:
    """Clip id → split: VGGSound train clips to train; each class's test clips cut between val
    and test in the ratio ``val : test`` (in seeded order). Clips of no split are left out."""
    out: dict[str, str] = {}
    test_by_class: dict[str, list[AudioClip]] = defaultdict(list)
    for clip in clips:
        if clip.split == "train":
            if fractions.train > 0:
                out[clip.clip_id] = "train"
        else:
            test_by_class[clip.label].append(clip)
    held_out = fractions.val + fractions.test
    if held_out <= 0:
        return out
    for label in sorted(test_by_class):
        ordered = seeded_sorted(
            test_by_class[label], seed=seed, identity=lambda c: c.clip_id, salt="clip-split"
        )
        n_val = int(round(len(ordered) * fractions.val / held_out))
        for index, clip in enumerate(ordered):
            out[clip.clip_id] = "val" if index < n_val else "test"
    return out
