"""AuTR overfits one picture heard two ways: the audio alone decides which object is segmented.

One batch holds the same 64 px picture twice (a red square and a blue disc on grey). Frame 0
hears a 440 Hz tone and its ground truth is the square; frame 1 hears a 3 kHz tone and its ground
truth is the disc. ``autr_tiny`` (random init) trained on it for 200 AdamW steps with the real
criterion must give M_J >= 0.9 on both frames, through ``select_sounding_mask`` and
``metrics.mask_iou``: since the pictures are identical, only the audio can tell the frames apart.
"""

from __future__ import annotations

import math

import pytest
import torch

from avs_model.evaluation.inference import select_sounding_mask
from avs_model.evaluation.metrics import mask_iou, mask_iou_per_frame
from avs_model.modeling.build import build_model
from avs_model.modeling.config import preset
from avs_model.modeling.criterion import build_criterion
from avs_synth.audio.logmel import SAMPLE_RATE, waveform_to_examples

SIZE = 64
STEPS = 200
IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406])[:, None, None]
IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225])[:, None, None]


def two_object_picture() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A normalised picture [3, S, S] and the bool masks [S, S] of its square and its disc."""
    yy, xx = torch.meshgrid(torch.arange(SIZE), torch.arange(SIZE), indexing="ij")
    square = (yy >= 8) & (yy < 28) & (xx >= 6) & (xx < 30)
    disc = (yy - 44) ** 2 + (xx - 44) ** 2 <= 12**2
    picture = torch.full((3, SIZE, SIZE), 0.5)
    picture[:, square] = torch.tensor([0.9, 0.1, 0.1])[:, None]
    picture[:, disc] = torch.tensor([0.1, 0.2, 0.9])[:, None]
    return (picture - IMAGENET_MEAN) / IMAGENET_STD, square, disc


def tone_examples(frequencies_hz: list[float]) -> torch.Tensor:
    """One VGGish log-mel example [n, 1, 96, 64] per one-second pure tone."""
    t = torch.arange(SAMPLE_RATE, dtype=torch.float32) / SAMPLE_RATE
    waves = torch.stack([0.5 * torch.sin(2 * math.pi * f * t) for f in frequencies_hz])
    return waveform_to_examples(waves)[:, 0]


@pytest.mark.slow
@pytest.mark.timeout(900)  # ~1-2 min alone; a few times that on a loaded 2-core machine
def test_autr_tiny_overfits_one_picture_with_two_audios():
    torch.manual_seed(0)
    picture, square, disc = two_object_picture()
    images = picture[None].repeat(2, 1, 1, 1)  # the same picture twice
    audio = tone_examples([440.0, 3000.0])
    assert (audio[0] - audio[1]).abs().mean() > 1.0  # the two audios really differ
    gt = torch.stack([square, disc])  # [2, S, S]: audio A -> square, audio B -> disc
    targets = {"masks": gt.float(), "valid": torch.ones(2, dtype=torch.bool)}

    config = preset("autr_tiny")
    assert config.image_size == SIZE
    model = build_model(config).train()
    criterion = build_criterion(config.loss)
    optimizer = torch.optim.AdamW(model.trainable_parameters(), lr=1e-3, weight_decay=0.0)
    first_loss = None
    for _ in range(STEPS):
        losses = criterion(model(images, audio), targets)
        loss = criterion.weighted_total(losses)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        first_loss = loss.item() if first_loss is None else first_loss
    assert loss.item() < 0.05 * first_loss

    model.eval()
    with torch.no_grad():
        logits, scores = select_sounding_mask(model(images, audio), size=(SIZE, SIZE))
    per_frame = mask_iou_per_frame(logits, gt)
    assert per_frame[0] >= 0.9 and per_frame[1] >= 0.9, per_frame.tolist()
    assert mask_iou(logits, gt) >= 0.9
    assert (scores > 0.5).all(), scores.tolist()  # each frame's chosen query says "sounding"
    predicted = logits.sigmoid() > 0.5
    # the model uses the audio: same picture, two different masks, each on its own object
    assert (predicted[0] ^ predicted[1]).sum() > 0.5 * (square.sum() + disc.sum())
    assert (predicted[0] & disc).sum() < 0.05 * disc.sum()
    assert (predicted[1] & square).sum() < 0.05 * square.sum()
