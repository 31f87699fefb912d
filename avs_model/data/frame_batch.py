"""One frame ready for the model, and the batch the train / eval loops consume.

Both data sources (the synthetic shard stream and AVSBench) turn a sample into a list of
:class:`FrameSample` (one for a synthetic picture, one or five for an AVSBench video) and
:func:`collate_frames` flattens a list of those lists into a :class:`FrameBatch`: frames are
folded into the batch (N = B * T), as the model expects.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from avs_model.data.augment import pad_stack


@dataclass
class FrameSample:
    """One frame.

    Attributes:
        image: uint8 [3, h, w] (resized, augmented).
        mask: uint8 [h, w] in {0, 1} at the image's size, or None for an unannotated frame.
        audio: float [1, 96, 64], the frame's VGGish log-mel example.
        content_size: ``(h, w)`` of the picture inside any batch padding.
        gt_mask: bool [Hg, Wg] at the ground truth's own resolution (evaluation), or None.
        category: the frame's category (S4 category, synthetic audio class) or ``""``.
        key: an identifier (sample key, ``{video}_{k}``).
        negative_kind: a synthetic negative's kind (``absent``, ``silence``, ``noise``,
            ``offscreen``; see :mod:`avs_synth.schema`), ``""`` for a positive or an AVSBench
            frame.
        class_map: int64 [h, w] class-indexed label map at the image's size (0 background,
            ``k + 1`` for class k of the manifest's ``audio_classes``), when the data has one and
            the stream was asked for it.
        gt_class_map: int64 [Hg, Wg] the same at the ground truth's resolution (evaluation).
        heard: the audio classes heard in the frame's audio (every source of a mix; ``()`` for
            silence), or None where unknown (AVSBench); the audio-tagging head's targets.
    """

    image: Tensor
    mask: Tensor | None
    audio: Tensor
    content_size: tuple[int, int]
    gt_mask: Tensor | None = None
    category: str = ""
    key: str = ""
    negative_kind: str = ""
    class_map: Tensor | None = None
    gt_class_map: Tensor | None = None
    heard: tuple[str, ...] | None = None


@dataclass
class FrameBatch:
    """N frames, padded to one size.

    Attributes:
        images: uint8 [N, 3, H, W].
        masks: uint8 [N, H, W] training targets (zeros where unannotated or padded).
        valid: bool [N], annotated frames.
        audio: float [N, 1, 96, 64].
        content_sizes: N ``(h, w)`` before padding.
        gt_masks: N bool [Hg_i, Wg_i] ground truths at their resolution (None in training).
        categories, keys: N strings.
        frames_per_sample: frames of each collated sample (T; 1 for pictures).
        negative_kinds: N strings, each frame's negative kind (``""``: none recorded).
        class_maps: int64 [N, H, W] label maps (0 where padded), when every frame has one.
        gt_class_maps: N int64 [Hg_i, Wg_i] label maps at the ground truth's resolution, when
            every frame has one (evaluation).
        heard: N tuples of the audio classes heard, None where unknown.
    """

    images: Tensor
    masks: Tensor
    valid: Tensor
    audio: Tensor
    content_sizes: list[tuple[int, int]]
    gt_masks: list[Tensor] | None
    categories: list[str]
    keys: list[str]
    frames_per_sample: int
    negative_kinds: list[str] = field(default_factory=list)
    class_maps: Tensor | None = None
    gt_class_maps: list[Tensor] | None = None
    heard: list[tuple[str, ...] | None] = field(default_factory=list)

    def __len__(self) -> int:
        return self.images.shape[0]

    def to(self, device: torch.device, non_blocking: bool = True) -> FrameBatch:
        """The tensors moved to ``device`` (ground truths for scoring stay on the CPU)."""
        return FrameBatch(
            images=self.images.to(device, non_blocking=non_blocking),
            masks=self.masks.to(device, non_blocking=non_blocking),
            valid=self.valid.to(device, non_blocking=non_blocking),
            audio=self.audio.to(device, non_blocking=non_blocking),
            content_sizes=self.content_sizes,
            gt_masks=self.gt_masks,
            categories=self.categories,
            keys=self.keys,
            frames_per_sample=self.frames_per_sample,
            negative_kinds=self.negative_kinds,
            class_maps=None
            if self.class_maps is None
            else self.class_maps.to(device, non_blocking=non_blocking),
            gt_class_maps=self.gt_class_maps,
            heard=self.heard,
        )

    def head(self, samples: int) -> FrameBatch:
        """The batch of its first ``samples`` collated samples (their frames)."""
        n = samples * self.frames_per_sample

        def first(values):
            return None if values is None else values[:n]

        return FrameBatch(
            images=self.images[:n],
            masks=self.masks[:n],
            valid=self.valid[:n],
            audio=self.audio[:n],
            content_sizes=self.content_sizes[:n],
            gt_masks=first(self.gt_masks),
            categories=self.categories[:n],
            keys=self.keys[:n],
            frames_per_sample=self.frames_per_sample,
            negative_kinds=self.negative_kinds[:n],
            class_maps=first(self.class_maps),
            gt_class_maps=first(self.gt_class_maps),
            heard=self.heard[:n],
        )

    def pin_memory(self) -> FrameBatch:
        """Page-locked copies (called by the DataLoader when ``pin_memory=True``)."""
        self.images = self.images.pin_memory()
        self.masks = self.masks.pin_memory()
        self.valid = self.valid.pin_memory()
        self.audio = self.audio.pin_memory()
        if self.class_maps is not None:
            self.class_maps = self.class_maps.pin_memory()
        return self


def collate_frames(
    samples: Sequence[Sequence[FrameSample]], *, pad_multiple: int = 1
) -> FrameBatch:
    """Flatten per-sample frame lists into one padded :class:`FrameBatch`."""
    if not samples:
        raise ValueError("no samples to collate")
    lengths = {len(frames) for frames in samples}
    if len(lengths) != 1:
        raise ValueError(f"samples have different frame counts {sorted(lengths)}")
    frames = [frame for sample in samples for frame in sample]
    images = pad_stack([f.image for f in frames], pad_multiple)  # [N, 3, H, W]
    masks = pad_stack(
        [f.mask if f.mask is not None else f.image.new_zeros(f.image.shape[-2:]) for f in frames],
        pad_multiple,
    )  # [N, H, W]
    has_gt = [f.gt_mask is not None for f in frames]
    class_maps = [f.class_map for f in frames]
    gt_class_maps = [f.gt_class_map for f in frames]
    return FrameBatch(
        images=images,
        masks=masks,
        valid=torch.tensor([f.mask is not None for f in frames], dtype=torch.bool),
        audio=torch.stack([f.audio for f in frames]).float(),  # [N, 1, 96, 64]
        content_sizes=[tuple(f.content_size) for f in frames],
        gt_masks=[f.gt_mask for f in frames] if all(has_gt) else None,
        categories=[f.category for f in frames],
        keys=[f.key for f in frames],
        frames_per_sample=lengths.pop(),
        negative_kinds=[f.negative_kind for f in frames],
        class_maps=pad_stack(class_maps, pad_multiple)
        if all(m is not None for m in class_maps)
        else None,
        gt_class_maps=gt_class_maps if all(m is not None for m in gt_class_maps) else None,
        heard=[f.heard for f in frames],
    )
