"""Joint image / mask augmentation and resizing, shared by the shard stream and AVSBench.

The transform works on a PIL picture and its boolean mask and returns ``uint8`` tensors: the
picture stays ``uint8`` until it reaches the device (:func:`normalize_images` there), which keeps
the loader fast and the worker-to-trainer traffic small.

Resize modes (:class:`ResizeConfig`):

- ``square``: every picture is resized to ``size`` x ``size`` (AVSBench's 224 x 224 frames);
- ``keep_aspect``: the longer side becomes ``size`` and the aspect ratio is kept; batches are
  padded (bottom / right, zeros) to a multiple of ``pad_multiple`` by :func:`pad_stack`, and every
  sample remembers its ``content_size`` so a prediction can be cropped back before it is scored.

Training augmentation (:class:`AugmentConfig`): a random crop keeping ``scale`` of the picture's
area (aspect ratio kept), a horizontal flip, and brightness / contrast / saturation jitter of the
picture only (PIL ``ImageEnhance`` arithmetic). Masks follow every geometric step and are
resized bilinearly then thresholded at one half, which keeps thin parts better than
nearest-neighbour resizing.

Speed: crops are whole pixels and every resize is PyTorch's antialiased bilinear uint8 kernel (the
filter of PIL's ``BILINEAR``, 2-4x faster); the picture may arrive as a reduced copy of the full
picture (JPEG DCT scaling, see :meth:`JointTransform.needed_size`), the mask at full resolution.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

ResizeMode = Literal["square", "keep_aspect"]


@dataclass
class ResizeConfig:
    """How pictures are sized for the model.

    Args:
        mode: ``square`` (resize to ``size`` x ``size``) or ``keep_aspect`` (longer side
            ``size``, padded per batch).
        size: the square side, or the longer side in ``keep_aspect`` mode.
        pad_multiple: batches are padded to a multiple of this (``keep_aspect`` mode).
    """

    mode: ResizeMode = "square"
    size: int = 224
    pad_multiple: int = 32

    def __post_init__(self) -> None:
        if self.mode not in ("square", "keep_aspect"):
            raise ValueError(f"resize mode must be 'square' or 'keep_aspect', got {self.mode!r}")
        if self.size <= 0 or self.pad_multiple <= 0:
            raise ValueError(
                f"size and pad_multiple must be positive, got {self.size}, {self.pad_multiple}"
            )

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        """``(h, w)`` a picture of ``height`` x ``width`` is resized to."""
        if self.mode == "square":
            return self.size, self.size
        scale = self.size / max(height, width)
        return max(1, round(height * scale)), max(1, round(width * scale))


@dataclass
class AugmentConfig:
    """Training augmentation (all off by default).

    Args:
        hflip: probability of a horizontal flip.
        scale: ``(min, max)`` fraction of the picture's area kept by a random crop (the aspect
            ratio is kept); ``(1, 1)`` disables cropping.
        color_jitter: strength ``s`` of brightness, contrast and saturation factors drawn from
            ``[1 - s, 1 + s]``; 0 disables it.
    """

    hflip: float = 0.0
    scale: tuple[float, float] = (1.0, 1.0)
    color_jitter: float = 0.0

    def __post_init__(self) -> None:
        self.scale = tuple(float(s) for s in self.scale)  # type: ignore[assignment]
        low, high = self.scale
        if not (0 < low <= high <= 1):
            raise ValueError(f"augment scale must satisfy 0 < min <= max <= 1, got {self.scale}")
        if not 0 <= self.hflip <= 1:
            raise ValueError(f"hflip must be a probability, got {self.hflip}")
        if not 0 <= self.color_jitter < 1:
            raise ValueError(f"color_jitter must be in [0, 1), got {self.color_jitter}")


@dataclass
class TransformedFrame:
    """A picture and mask ready for batching.

    Attributes:
        image: uint8 [3, h, w].
        mask: uint8 [h, w] in {0, 1} (None when no mask was given).
        content_size: ``(h, w)`` of the resized picture (before any batch padding).
        original_size: ``(H, W)`` of the picture as read.
        labels: int64 [h, w] label map (0 background), when one was given.
    """

    image: Tensor
    mask: Tensor | None
    content_size: tuple[int, int]
    original_size: tuple[int, int]
    labels: Tensor | None = None


class JointTransform:
    """Crop / flip / jitter (training) and resize a picture together with its mask."""

    def __init__(self, *, resize: ResizeConfig, augment: AugmentConfig | None = None) -> None:
        """Args:
        resize: target size and mode.
        augment: training augmentation; None for evaluation (resize only).
        """
        self.resize = resize
        self.augment = augment

    def needed_size(self, width: int, height: int) -> tuple[int, int]:
        """The smallest ``(width, height)`` copy of a ``width`` x ``height`` picture from which
        this transform loses nothing: even the smallest crop keeps at least the output's pixels.
        The decoder may hand :meth:`__call__` a reduced copy that large (JPEG DCT scaling)."""
        side = math.sqrt(self.augment.scale[0]) if self.augment is not None else 1.0
        crop_w, crop_h = width * side, height * side
        out_h, out_w = self.resize.output_size(round(crop_h), round(crop_w))
        ratio = min(1.0, max(out_w / crop_w, out_h / crop_h))
        return max(1, math.ceil(width * ratio)), max(1, math.ceil(height * ratio))

    def __call__(
        self,
        image: Image.Image,
        mask: np.ndarray | None,
        rng: random.Random,
        *,
        original_size: tuple[int, int] | None = None,
        labels: np.ndarray | None = None,
    ) -> TransformedFrame:
        """Transform one picture.

        Args:
            image: RGB picture (it may be a reduced copy of the full picture).
            mask: boolean [H, W] at the picture's full resolution, or None.
            rng: the random source of the augmentation (unused without augmentation).
            original_size: ``(H, W)`` of the full-resolution picture when ``image`` is a reduced
                copy (defaults to the mask's, else the picture's size).
            labels: an integer [H, W] label map at the mask's resolution (0 background), which
                follows the mask's crop and flip; each label's pixels are resized as the mask's
                (bilinear, kept at one half or more), so the labels never blend.
        """
        if mask is not None and mask.ndim != 2:
            raise ValueError(f"mask must be [H, W], got shape {mask.shape}")
        if original_size is None:
            original_size = mask.shape if mask is not None else (image.height, image.width)
        full_h, full_w = original_size
        # crop box in full-resolution coordinates (left, top, right, bottom)
        box = (0.0, 0.0, float(full_w), float(full_h))
        flip = False
        aug = self.augment
        if aug is not None:
            low, high = aug.scale
            if high < 1.0 or low < 1.0:
                side = math.sqrt(rng.uniform(low, high))
                crop_w, crop_h = full_w * side, full_h * side
                left = rng.uniform(0.0, full_w - crop_w)
                top = rng.uniform(0.0, full_h - crop_h)
                box = (left, top, left + crop_w, top + crop_h)
            flip = rng.random() < aug.hflip
        out_h, out_w = self.resize.output_size(round(box[3] - box[1]), round(box[2] - box[0]))
        if image.mode != "RGB":
            image = image.convert("RGB")
        pixels = torch.from_numpy(np.array(image, dtype=np.uint8)).permute(2, 0, 1)  # [3, h, w]
        # the crop in whole pixels of the (possibly reduced) picture
        sx, sy = image.width / full_w, image.height / full_h
        left, top = round(box[0] * sx), round(box[1] * sy)
        right = max(left + 1, min(image.width, round(box[2] * sx)))
        bottom = max(top + 1, min(image.height, round(box[3] * sy)))
        image_t = _resize_crop(pixels[:, top:bottom, left:right], (out_w, out_h))
        mask_t = labels_t = None
        # the same region in whole pixels of the full-resolution mask
        m_left, m_top = round(left / sx), round(top / sy)
        m_right = max(m_left + 1, round(right / sx))
        m_bottom = max(m_top + 1, round(bottom / sy))
        if mask is not None:
            mask_crop = torch.from_numpy(mask)[m_top:m_bottom, m_left:m_right]
            # bilinear then thresholded at one half: keeps thin parts better than nearest
            mask_t = _resize_crop(mask_crop.to(torch.uint8).mul_(255)[None], (out_w, out_h))
            mask_t = (mask_t[0] >= 128).to(torch.uint8)  # [h, w]
        if labels is not None:
            labels_crop = torch.from_numpy(np.asarray(labels, dtype=np.int64))
            labels_t = _resize_labels(labels_crop[m_top:m_bottom, m_left:m_right], (out_w, out_h))
        if flip:
            image_t = image_t.flip(-1)
            if mask_t is not None:
                mask_t = mask_t.flip(-1)
            if labels_t is not None:
                labels_t = labels_t.flip(-1)
        if aug is not None and aug.color_jitter > 0:
            image_t = _color_jitter(image_t, aug.color_jitter, rng)
        return TransformedFrame(
            image=image_t.contiguous(),
            mask=mask_t,
            content_size=(out_h, out_w),
            original_size=(int(full_h), int(full_w)),
            labels=labels_t,
        )


def _resize_labels(crop: Tensor, out_size: tuple[int, int]) -> Tensor:
    """int64 label map [h, w] → [out_h, out_w]: every label's pixels resized as a mask is
    (a pixel that two labels reach takes the one with more weight)."""
    out_w, out_h = out_size
    values = crop.unique()
    values = values[values > 0]
    if not values.numel():
        return torch.zeros((out_h, out_w), dtype=torch.int64)
    planes = (crop[None] == values[:, None, None]).to(torch.uint8).mul_(255)  # [K, h, w]
    weight, best = _resize_crop(planes, (out_w, out_h)).max(0)  # [out_h, out_w]
    return torch.where(weight >= 128, values[best], 0)


def _resize_crop(crop: Tensor, out_size: tuple[int, int]) -> Tensor:
    """uint8 [C, h, w] → [C, out_h, out_w]: antialiased bilinear, the filter of PIL's
    ``BILINEAR`` resize (PyTorch's vectorised uint8 kernel is 2-4x faster than PIL's here)."""
    out_w, out_h = out_size
    if crop.shape[-2:] == (out_h, out_w):
        return crop
    resized = F.interpolate(
        crop.unsqueeze(0), size=(out_h, out_w), mode="bilinear", antialias=True, align_corners=False
    )
    return resized[0]


def _luma(x: Tensor) -> Tensor:
    """PIL's RGB -> L (ITU-R 601-2 in 16-bit fixed point, rounded) of integer-valued [3, h, w]."""
    r, g, b = x.to(torch.int32)
    return ((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16).float()


def _color_jitter(image: Tensor, strength: float, rng: random.Random) -> Tensor:
    """Brightness, contrast and saturation factors from ``[1 - s, 1 + s]`` on uint8 [3, h, w],
    with PIL ``ImageEnhance``'s order and arithmetic (each step blends with a degenerate picture
    and truncates to 0..255): the same pixels as PIL, bar float rounding."""
    x = image.float()
    factors = [rng.uniform(1.0 - strength, 1.0 + strength) for _ in range(3)]
    x = (x * factors[0]).clamp_(0, 255).floor_()  # brightness: blend with black
    mean = torch.floor(_luma(x).mean() + 0.5)
    x = (mean + factors[1] * (x - mean)).clamp_(0, 255).floor_()  # contrast: with the mean grey
    grey = _luma(x)
    x = (grey + factors[2] * (x - grey)).clamp_(0, 255).floor_()  # saturation: with the grey
    return x.to(torch.uint8)


def pad_stack(tensors: Sequence[Tensor], multiple: int = 1) -> Tensor:
    """Stack ``[..., h_i, w_i]`` tensors into ``[N, ..., H, W]``, zero-padded at the bottom and
    right to the largest size rounded up to ``multiple``."""
    if not tensors:
        raise ValueError("nothing to stack")
    height = max(t.shape[-2] for t in tensors)
    width = max(t.shape[-1] for t in tensors)
    height = -(-height // multiple) * multiple
    width = -(-width // multiple) * multiple
    lead = tensors[0].shape[:-2]
    out = tensors[0].new_zeros((len(tensors), *lead, height, width))
    for i, t in enumerate(tensors):
        out[i, ..., : t.shape[-2], : t.shape[-1]] = t
    return out


def normalize_images(images: Tensor) -> Tensor:
    """uint8 [N, 3, H, W] (0..255) → float ImageNet-normalised [N, 3, H, W] (same device)."""
    if images.dtype != torch.uint8:
        raise TypeError(f"expected uint8 images, got {images.dtype}")
    mean = torch.tensor(IMAGENET_MEAN, device=images.device).view(1, 3, 1, 1) * 255.0
    std = torch.tensor(IMAGENET_STD, device=images.device).view(1, 3, 1, 1) * 255.0
    return (images.float() - mean) / std
