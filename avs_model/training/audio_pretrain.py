"""``avs-train pretrain-audio``: pre-train the small audio CNN by tagging the audio bank's windows.

A toolkit addition, not in the paper. The paper's audio encoder is VGGish, pre-trained on
AudioSet; the small CNN of the CPU presets (``autr_tiny``) starts from random weights, and the mask
losses alone teach it to tell the classes of a mix apart only slowly
(``bench/multi_source_awareness.py``). This stage gives it a head start on the build's own train
audio, without any picture:

- examples are drawn from the audio bank (the train clips' windows, one class per bank shard): a
  number of sources drawn from ``sources`` (by default the build's ``--sources``, so a
  single-source build's encoder never hears a mix), that many windows of distinct classes, mixed
  as the build mixes them (:func:`avs_synth.audio.mixing.mix_sources`: loudness-normalised, a
  random gain in ``[MIN_GAIN_DB, 0]`` dB each);
- the network and a linear head (a logit per class) learn binary cross-entropy against the
  classes mixed, summed over the classes, averaged over the batch; the log-mel is computed in
  float32 (``LogMelFrontend(exact=False)``: within 1e-4 of training's float64 frontend, and ~3x
  faster: in float64 it took half of a step's time);
- the bank is streamed (resampled shards, a reservoir of ``windows_per_class`` decoded windows
  per class), so a full VGGSound bank never has to fit in memory.

The result is ``audio_encoder.pt``: the network's weights with its kind and sizes, the class
table and the head, the settings, the data versions and the log. Training loads it with
``model_overrides.audio.weights_path``: the network, and with ``--audio-tags`` the tagging head's
rows of the classes this head knows. The val and test splits' audio is never read: the bank holds
train clips only.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
import webdataset as wds
from torch import nn

from avs_model.data.audio_bank import bank_stream, bank_window, decode_window
from avs_model.data.stream import SkipHandler, resolve_shards
from avs_model.modeling.audio_encoder import SMALL_CNN_FORMAT, SMALL_CNN_WEIGHTS, SmallAudioCNN
from avs_model.modeling.config import AudioEncoderConfig
from avs_model.runtime.checkpoint import save_atomically
from avs_synth.audio.logmel import EXAMPLE_SAMPLES, LogMelFrontend
from avs_synth.audio.mixing import MIN_GAIN_DB, mix_sources
from avs_synth.seeded_order import seeded_key

logger = logging.getLogger(__name__)


@dataclass
class AudioPretrainConfig:
    """The audio stage's settings.

    ``sources``: ``(count, share)`` pairs, the number of classes mixed in an example; None takes
    the build's ``sources`` from the manifest (``((1, 1.0),)`` when it has none).
    ``windows_per_class``: the reservoir's size per class; ``pull_every``: examples per window
    pulled from the bank's stream into it (decoding a window costs a fifth of an example's time).
    """

    steps: int = 800
    batch_size: int = 64
    lr: float = 1e-2
    weight_decay: float = 1e-4
    seed: int = 0
    sources: tuple[tuple[int, float], ...] | None = None
    windows_per_class: int = 32
    pull_every: int = 8
    log_every: int = 100


@dataclass
class AudioPretrainResult:
    """What the stage wrote and how it went."""

    path: Path
    classes: list[str]
    sources: tuple[tuple[int, float], ...]
    log: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0


class BankMixer:
    """Examples of the audio bank: ``(waveform, classes)``, a mix of windows of distinct classes.

    A reservoir holds up to ``windows_per_class`` decoded windows per class: first the leading
    windows of one seeded shard of each class (so every class is there from the first step), then
    each example pulls one more window from a resampled, shuffled stream over all the bank's
    shards every ``pull_every`` examples (a full class replaces a random window), so the windows
    held keep changing.
    """

    def __init__(
        self,
        bank_classes: dict[str, str],
        *,
        sources: Sequence[tuple[int, float]],
        seed: int,
        windows_per_class: int = 32,
        pull_every: int = 8,
    ) -> None:
        if not bank_classes:
            raise ValueError("the shards have no audio bank (bank-*.tar listed in the manifest)")
        by_class: dict[str, list[str]] = defaultdict(list)
        for url, audio_class in sorted(bank_classes.items()):
            by_class[audio_class].append(url)
        self.classes = sorted(by_class)
        counts = [count for count, _ in sources]
        if not sources or min(counts) < 1 or max(counts) > len(self.classes):
            raise ValueError(
                f"sources {list(sources)}: each count must be 1..{len(self.classes)} (the bank's "
                "classes)"
            )
        if any(share < 0 for _, share in sources) or sum(s for _, s in sources) <= 0:
            raise ValueError(f"sources {list(sources)}: the weights must be >= 0, not all 0")
        self.counts = counts
        self.weights = [share for _, share in sources]
        self.rng = random.Random(seeded_key(seed, "audio-pretrain"))
        self.capacity = windows_per_class
        self.pull_every = max(1, pull_every)
        self.drawn = 0
        self.held: dict[str, list[np.ndarray]] = defaultdict(list)
        self.handler = SkipHandler(what="audio bank")
        for audio_class in self.classes:
            url = self.rng.choice(by_class[audio_class])
            windows = wds.DataPipeline(
                wds.SimpleShardList([url]),
                wds.tarfile_to_samples(handler=self.handler),
                wds.map(bank_window, handler=self.handler),
            )
            for _, window in islice(windows, windows_per_class):
                self._hold(audio_class, window)
        if not any(self.held.values()):
            raise ValueError(
                f"no readable window of at least {EXAMPLE_SAMPLES} samples in the audio bank "
                f"({len(bank_classes)} shards: {min(bank_classes)}, ...)"
            )
        self.stream = bank_stream(
            sorted(bank_classes), seed=seed, handler=self.handler, shuffle=256
        )

    def _hold(self, audio_class: str, window: bytes) -> None:
        try:
            samples = decode_window(window)
        except (ValueError, RuntimeError) as error:  # skipped and counted, as in training
            self.handler(ValueError(f"an audio-bank window of {audio_class!r}: {error}"))
            return
        self.handler.passed(None)  # a run of bad windows ends here
        if len(samples) < EXAMPLE_SAMPLES:
            return
        slots = self.held[audio_class]
        if len(slots) < self.capacity:
            slots.append(samples[:EXAMPLE_SAMPLES])
        else:
            slots[self.rng.randrange(len(slots))] = samples[:EXAMPLE_SAMPLES]

    def example(self) -> tuple[np.ndarray, tuple[str, ...]]:
        """One mixed window and the classes in it."""
        if self.drawn % self.pull_every == 0:
            self._hold(*next(self.stream))
        self.drawn += 1
        held = [c for c in self.classes if self.held[c]]
        count = min(self.rng.choices(self.counts, weights=self.weights)[0], len(held))
        classes = tuple(self.rng.sample(held, count))
        windows = [self.rng.choice(self.held[c]) for c in classes]
        gains = [MIN_GAIN_DB * self.rng.random() for _ in classes]
        return mix_sources(windows, gains), classes

    def batches(self, size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Endless ``(waveforms [size, 15600], targets [size, classes])`` batches."""
        index = {c: i for i, c in enumerate(self.classes)}
        while True:
            waves, targets = [], torch.zeros(size, len(self.classes))
            for row in range(size):
                wave, classes = self.example()
                waves.append(wave)
                for audio_class in classes:
                    targets[row, index[audio_class]] = 1.0
            yield torch.from_numpy(np.stack(waves)), targets


def pretrain_audio(
    config: AudioPretrainConfig,
    *,
    shards: str | Path,
    out_dir: str | Path,
    audio: AudioEncoderConfig,
) -> AudioPretrainResult:
    """Pre-train the small audio CNN of ``audio`` on the audio bank of ``shards``; writes
    ``out_dir/audio_encoder.pt`` (atomically: a file that exists is complete)."""
    if audio.kind != "small_cnn":
        raise ValueError(
            f"pretrain-audio trains the small audio CNN (audio.kind small_cnn, e.g. autr_tiny); "
            f"{audio.kind!r} comes pre-trained: give its weights with audio.weights_path"
        )
    if config.steps < 1 or config.batch_size < 1:
        raise ValueError("steps and batch_size must be positive")
    shard_set = resolve_shards(shards)
    sources = config.sources or _build_sources(shard_set.manifest)
    mixer = BankMixer(
        shard_set.bank_classes,
        sources=sources,
        seed=config.seed,
        windows_per_class=config.windows_per_class,
        pull_every=config.pull_every,
    )
    torch.manual_seed(seeded_key(config.seed, "audio-pretrain-init"))
    network = SmallAudioCNN(channels=audio.small_channels, embed_dim=audio.embed_dim)
    head = nn.Linear(audio.embed_dim, len(mixer.classes))
    frontend = LogMelFrontend(exact=False)  # float32: ~3x faster, within ~1e-4 (see its module)
    parameters = [*network.parameters(), *head.parameters()]
    optimizer = torch.optim.AdamW(parameters, lr=config.lr, weight_decay=config.weight_decay)
    logger.info(
        "pretrain-audio: %d classes, sources %s, %d steps of %d",
        len(mixer.classes),
        list(sources),
        config.steps,
        config.batch_size,
    )
    log: list[dict[str, float]] = []
    running = {"loss": 0.0, "exact": 0.0, "n": 0}
    start = time.perf_counter()
    batches = mixer.batches(config.batch_size)
    for step in range(1, config.steps + 1):
        waves, targets = next(batches)
        with torch.no_grad():
            examples = frontend(waves)[:, None]  # [B, 1, 96, 64]
        logits = head(network(examples))
        loss = F.binary_cross_entropy_with_logits(logits, targets, reduction="sum") / len(targets)
        if not math.isfinite(loss.item()):
            raise ValueError(f"pretrain-audio: the loss is {loss.item()} at step {step}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        running["loss"] += loss.item()
        running["exact"] += ((logits > 0) == (targets > 0)).all(dim=1).float().mean().item()
        running["n"] += 1
        if step % config.log_every == 0 or step == config.steps:
            n = running["n"]
            entry = {
                "step": step,
                "loss": running["loss"] / n,
                "exact_match": running["exact"] / n,  # share of examples with every class right
            }
            log.append(entry)
            logger.info(
                "pretrain-audio step %d: loss %.3f, exact match %.2f",
                step,
                entry["loss"],
                entry["exact_match"],
            )
            running = {"loss": 0.0, "exact": 0.0, "n": 0}
    path = Path(out_dir) / SMALL_CNN_WEIGHTS
    record = {
        "format": SMALL_CNN_FORMAT,
        "kind": "small_cnn",
        "small_channels": audio.small_channels,
        "embed_dim": audio.embed_dim,
        "network": network.state_dict(),
        "classes": mixer.classes,
        "head": head.state_dict(),
        "config": asdict(config) | {"sources": [list(s) for s in sources]},
        "data": shard_set.data_versions(),
        "skipped_windows": mixer.handler.skipped,
        "log": log,
    }
    save_atomically(record, path)
    return AudioPretrainResult(
        path=path,
        classes=mixer.classes,
        sources=tuple(sources),
        log=log,
        seconds=time.perf_counter() - start,
    )


def _build_sources(manifest: dict[str, Any]) -> tuple[tuple[int, float], ...]:
    """The build's ``--sources`` (``((1, 1.0),)`` for a build without)."""
    listed = (manifest.get("config") or {}).get("sources")
    if not listed:
        return ((1, 1.0),)
    return tuple((int(count), float(share)) for count, share in listed)
