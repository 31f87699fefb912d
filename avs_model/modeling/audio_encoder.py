"""The audio encoder: waveform or log-mel example → one embedding per frame.

Audio enters as VGGish log-mel examples [N, 1, 96, 64] or as 16 kHz waveforms [N, S]
(S >= 15,600); a waveform goes through ``avs_synth.audio.logmel``'s frontend and its first
example is used. The network is VGGish (default, frozen) or a small trainable CNN for CPU
experiments.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from avs_model.modeling.weights import WeightFile, read_weight_file
from avs_synth.audio.logmel import EXAMPLE_FRAMES, EXAMPLE_SAMPLES, NUM_MEL_BANDS, LogMelFrontend

SMALL_CNN_WEIGHTS = "audio_encoder.pt"
"""The file ``avs-train pretrain-audio`` writes (:mod:`avs_model.training.audio_pretrain`)."""
SMALL_CNN_FORMAT = "avs-synth audio encoder"


@dataclass(frozen=True)
class TagHeadInit:
    """A tagging head trained with the audio encoder (``avs-train pretrain-audio``): AuTR's
    audio-tagging head starts from its rows for the classes both tables hold."""

    classes: list[str]
    weight: Tensor  # [len(classes), embed_dim]
    bias: Tensor  # [len(classes)]


class SmallAudioCNN(nn.Module):
    """A small CNN over a log-mel example: 3 stride-2 convs, mean pool, linear + ReLU."""

    def __init__(self, *, channels: int = 32, embed_dim: int = 128) -> None:
        """Args:
        channels: width of the last conv (the first two have channels/4 and channels/2).
        embed_dim: size of the output embedding.
        """
        super().__init__()
        widths = [max(channels // 4, 4), max(channels // 2, 4), channels]
        layers: list[nn.Module] = []
        in_channels = 1
        for width in widths:
            layers += [
                nn.Conv2d(in_channels, width, kernel_size=3, stride=2, padding=1),
                nn.GroupNorm(min(4, width), width),
                nn.ReLU(inplace=True),
            ]
            in_channels = width
        self.features = nn.Sequential(*layers)
        self.proj = nn.Sequential(nn.Linear(channels, embed_dim), nn.ReLU(inplace=True))
        self.channels = channels
        self.embed_dim = embed_dim

    def forward(self, x: Tensor) -> Tensor:
        x = self.features(x).mean(dim=(2, 3))  # [N, C]
        return self.proj(x)


class AudioEncoder(nn.Module):
    """Audio [N, 1, 96, 64] log-mel examples or [N, S] waveforms → embeddings [N, D]."""

    def __init__(
        self,
        *,
        network: nn.Module,
        embed_dim: int,
        frozen: bool,
        weights: WeightFile | None = None,
        tag_init: TagHeadInit | None = None,
    ) -> None:
        """Args:
        network: maps [N, 1, 96, 64] log-mel examples to [N, embed_dim] (VGGish, SmallAudioCNN).
        embed_dim: size of the network's embedding.
        frozen: no gradients, eval mode and no autograd graph for the network.
        weights: the file the network was loaded from (None: random init).
        tag_init: the tagging head trained with the network, if any (see :class:`TagHeadInit`).
        """
        super().__init__()
        self.weights = weights
        self.tag_init = tag_init
        self.frontend = LogMelFrontend()
        self.network = network
        self.embed_dim = embed_dim
        self.frozen = frozen
        if frozen:
            self.network.requires_grad_(False)
            self.network.eval()

    def train(self, mode: bool = True) -> AudioEncoder:
        super().train(mode)
        if self.frozen:
            self.network.eval()
        return self

    def log_mel_examples(self, audio: Tensor) -> Tensor:
        """Audio (either form) → log-mel examples [N, 1, 96, 64]."""
        if audio.ndim == 4 and tuple(audio.shape[1:]) == (1, EXAMPLE_FRAMES, NUM_MEL_BANDS):
            return audio
        if audio.ndim == 2:
            if audio.shape[1] < EXAMPLE_SAMPLES:
                raise ValueError(
                    f"waveforms need at least {EXAMPLE_SAMPLES} samples (one VGGish example at "
                    f"16 kHz), got {audio.shape[1]}"
                )
            with torch.no_grad():
                log_mel = self.frontend(audio[:, :EXAMPLE_SAMPLES])  # [N, 96, 64]
            return log_mel[:, None]  # [N, 1, 96, 64]
        raise ValueError(
            "audio must be log-mel examples [N, 1, 96, 64] or 16 kHz waveforms [N, S], "
            f"got shape {tuple(audio.shape)}"
        )

    def forward(self, audio: Tensor) -> Tensor:
        examples = self.log_mel_examples(audio)
        if self.frozen:
            with torch.no_grad():
                return self.network(examples)
        return self.network(examples)


def load_small_cnn_weights(
    network: SmallAudioCNN, path: str | Path
) -> tuple[WeightFile, TagHeadInit | None]:
    """Load ``audio_encoder.pt`` (from ``avs-train pretrain-audio``; or a folder holding one) into
    ``network``; returns the file read with its sha256, and the stage's tagging head (its class
    table and layer). Errors name the file and what does not fit."""
    path = Path(path).expanduser()
    if path.is_dir():
        path = path / SMALL_CNN_WEIGHTS
    record = read_weight_file(path, "audio encoder weights")
    if not isinstance(record, dict) or record.get("format") != SMALL_CNN_FORMAT:
        raise ValueError(
            f"{path}: not an audio encoder file of avs-train pretrain-audio (no format "
            f"{SMALL_CNN_FORMAT!r})"
        )
    sizes = {"small_channels": network.channels, "embed_dim": network.embed_dim}
    stored = {k: record.get(k) for k in sizes}
    if record.get("kind") != "small_cnn" or stored != sizes:
        raise ValueError(
            f"{path}: holds a {record.get('kind')} with {stored}, the model's small CNN has "
            f"{sizes} (audio.small_channels, audio.embed_dim)"
        )
    try:
        network.load_state_dict(record["network"])
    except (KeyError, RuntimeError, TypeError) as error:
        raise ValueError(f"{path}: its network does not fit the small CNN: {error}") from None
    head = record.get("head")
    tags = None
    if head is not None and record.get("classes"):
        tags = TagHeadInit(list(record["classes"]), head["weight"], head["bias"])
    return WeightFile.of(path), tags
