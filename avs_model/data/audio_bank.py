"""Re-pairing train audio: every synthetic train sample gets a fresh window of its audio class.

The build stores, beside the train shards, an audio bank (``bank-*.tar``; one audio class per
shard, samples ``{key}.flac`` + ``{key}.json``, see :mod:`avs_synth.schema`; the manifest lists
each bank shard's class). Without re-pairing a picture would always be heard with the same
window; with it, each pass pairs it with another window of the same class, which is what makes
the model listen to the class rather than memorise the pairing.

:class:`AudioRepairing` is a WebDataset pipeline stage. It keeps a per-class buffer
(:class:`ClassAudioBuffer`, windows kept as FLAC bytes and decoded when drawn) fed by a resampled
stream over the audio bank, and draws (removes) a random buffered window of the sample's class for
every train sample:

- when the bank's shards are known by class (the manifest lists them), each class has its own
  resampled, shuffled stream, opened the first time the class is asked for; a draw first tops
  the class's buffer up from its stream, so windows of many clips mix in the buffer. At most
  ``max_open_streams`` class streams stay open (the least recently used one is closed; it is
  reopened, on a freshly drawn shard, when needed again);
- otherwise one stream reads ``num_streams`` bank shards at once, round-robin, and every window
  goes to its class's buffer; a class missing from its buffer makes the stage read up to
  ``max_pulls`` more windows.

If no window of the class can be had, the last window drawn for the class is reused, and a class
never seen keeps the sample's own audio. Both cases are counted (:attr:`AudioRepairing.stats`) and
logged once per class. Negatives whose audio is no class's (``silence``, ``noise``;
:data:`KEEP_OWN_AUDIO`) always keep their own window. Multi-source triplets (a mix of several
classes' windows) keep their own mix, or with ``remix`` are re-mixed: a fresh window of each
source's class, mixed with the source's recorded gain as the build mixes
(:func:`avs_synth.audio.mixing.mix_sources`, mono); a source class without a fresh window keeps
the sample's own mix.
"""

from __future__ import annotations

import logging
import random
from collections import OrderedDict, defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import webdataset as wds

from avs_synth import schema
from avs_synth.audio.mixing import mix_sources
from avs_synth.seeded_order import seeded_key

logger = logging.getLogger(__name__)

Window = bytes  # a FLAC-encoded window, decoded when drawn

KEEP_OWN_AUDIO: frozenset[str] = frozenset({"silence", "noise"})
"""Negative kinds whose audio belongs to no audio class: never re-paired."""


class ClassAudioBuffer:
    """Up to ``capacity`` audio windows per class; a full class replaces a random window."""

    def __init__(self, *, capacity: int, rng: random.Random) -> None:
        """Args:
        capacity: windows kept per class.
        rng: the random source of draws and replacements.
        """
        if capacity <= 0:
            raise ValueError(f"capacity must be positive, got {capacity}")
        self.capacity = capacity
        self.rng = rng
        self._windows: dict[str, list[Any]] = defaultdict(list)

    def add(self, audio_class: str, window: Any) -> None:
        """Store ``window`` for ``audio_class``."""
        slots = self._windows[audio_class]
        if len(slots) < self.capacity:
            slots.append(window)
        else:
            slots[self.rng.randrange(len(slots))] = window

    def draw(self, audio_class: str) -> Any | None:
        """Remove and return a random window of ``audio_class`` (None when it has none)."""
        slots = self._windows.get(audio_class)
        if not slots:
            return None
        index = self.rng.randrange(len(slots))
        slots[index], slots[-1] = slots[-1], slots[index]
        return slots.pop()

    def drop(self, audio_class: str) -> None:
        """Forget the windows of ``audio_class``."""
        self._windows.pop(audio_class, None)

    def __len__(self) -> int:
        return sum(len(v) for v in self._windows.values())

    def count(self, audio_class: str) -> int:
        return len(self._windows.get(audio_class, ()))


@dataclass
class RepairStats:
    """What the re-pairing stage did (per worker).

    Attributes:
        fresh: samples given a new window of their class.
        reused: samples given a window already used for their class (the stream lagged).
        own: samples that kept their own window (their class is not in the bank).
        classless: negatives kept with their own window because their audio has no class
            (``silence``, ``noise``).
        mixed: multi-source triplets kept with their own mix.
        remixed: multi-source triplets re-mixed from fresh windows of their sources' classes.
        pulled: bank windows read.
        missing_classes: classes not found in the bank.
    """

    fresh: int = 0
    reused: int = 0
    own: int = 0
    classless: int = 0
    mixed: int = 0
    remixed: int = 0
    pulled: int = 0
    missing_classes: set[str] = field(default_factory=set)


def bank_stream(
    urls: Sequence[str], *, seed: int, handler: Any, shuffle: int = 0
) -> Iterator[tuple[str, Window]]:
    """An endless stream of ``(audio_class, flac_bytes)`` from bank shards, resampled (and
    shuffled in a buffer of ``shuffle`` windows, which mixes the clips of a shard)."""
    stages: list[Any] = [
        wds.ResampledShards(list(urls), seed=seed, deterministic=True, worker_seed=lambda: 0),
        wds.tarfile_to_samples(handler=handler),
    ]
    if shuffle > 1:
        stages.append(wds.shuffle(shuffle, shuffle, rng=random.Random(seed)))
    stages.append(wds.map(bank_window, handler=handler))
    if hasattr(handler, "passed"):  # a window got through: the run of failures ends
        stages.append(wds.map(handler.passed))
    return iter(wds.DataPipeline(*stages))


def bank_window(sample: dict[str, Any]) -> tuple[str, Window]:
    try:
        meta = schema.decode_bank_meta(sample[schema.META])
        audio = sample[schema.AUDIO]
    except Exception as error:
        where = f"{sample.get('__url__', '?')}[{sample.get(schema.KEY, '?')}]"
        raise ValueError(f"{where}: unreadable audio-bank window: {error}") from None
    return meta.audio_class, audio


def decode_window(window: Window, what: str = "audio-bank window") -> np.ndarray:
    """FLAC bytes → float32 samples at 16 kHz (``what`` names them in the error otherwise)."""
    samples, rate = schema.decode_audio(window)
    if rate != schema.SAMPLE_RATE:
        raise ValueError(f"{what} at {rate} Hz, expected {schema.SAMPLE_RATE}")
    return samples


class AudioRepairing:
    """WebDataset stage: replace each decoded sample's ``audio`` with a bank window of its class.

    The stage reads and writes the decoded-sample dicts of :mod:`avs_model.data.stream`
    (``audio``: float32 samples, ``audio_class``: the class name, ``negative_kind``: see
    :data:`KEEP_OWN_AUDIO`, ``num_sources``: classes mixed in the audio, ``sources``: a mix's
    ``(audio class, gain dB)`` per source).
    """

    def __init__(
        self,
        *,
        bank_urls: Sequence[str],
        bank_classes: Mapping[str, str] | None = None,
        capacity: int = 16,
        refill_per_sample: int = 2,
        max_pulls: int = 512,
        num_streams: int = 4,
        max_open_streams: int = 64,
        seed: int = 0,
        handler: Any = wds.reraise_exception,
        remix: bool = False,
    ) -> None:
        """Args:
        bank_urls: the bank shards (paths or anything WebDataset opens).
        bank_classes: shard URL → its audio class (from the manifest); None: unknown.
        capacity: windows kept per class.
        refill_per_sample: windows read into the buffers before each draw.
        max_pulls: mixed stream only: extra windows read at most to find a missing class.
        num_streams: mixed stream only: bank shards read at once (round-robin).
        max_open_streams: per-class streams only: most class streams open at once.
        seed: base seed; mixed with the rank and DataLoader worker so each reads its own stream.
        handler: the WebDataset error handler of the bank streams.
        remix: re-mix multi-source triplets from fresh windows (False: keep their own mix).
        """
        if not bank_urls:
            raise ValueError("audio re-pairing needs at least one audio-bank shard")
        self.bank_urls = list(bank_urls)
        self.by_class: dict[str, list[str]] | None = None
        if bank_classes is not None:
            self.by_class = defaultdict(list)
            for url in self.bank_urls:
                if url not in bank_classes:
                    raise ValueError(f"no audio class known for bank shard {url}")
                self.by_class[bank_classes[url]].append(url)
        self.capacity = capacity
        self.refill_per_sample = max(1, refill_per_sample)
        self.max_pulls = max_pulls
        self.num_streams = max(1, num_streams)
        self.max_open_streams = max(1, max_open_streams)
        self.seed = seed
        self.handler = handler
        self.remix = remix
        self.stats = RepairStats()

    def __call__(self, samples: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        rank, _, worker, _ = wds.utils.pytorch_worker_info()
        rng = random.Random(seeded_key(self.seed, "bank-draw", rank, worker))
        buffer = ClassAudioBuffer(capacity=self.capacity, rng=rng)
        draw = (
            self._per_class(buffer, rank, worker)
            if self.by_class
            else self._mixed(buffer, rank, worker)
        )
        last: dict[str, Window] = {}
        stats = self.stats
        for sample in samples:
            if sample.get("negative_kind") in KEEP_OWN_AUDIO:
                stats.classless += 1
                yield sample
                continue
            if sample.get("num_sources", 1) > 1:
                mix = self._remixed(sample, draw) if self.remix else None
                if mix is None:
                    stats.mixed += 1
                else:
                    stats.remixed += 1
                    sample["audio"] = mix
                yield sample
                continue
            audio_class = sample["audio_class"]
            window = draw(audio_class)
            if window is not None:
                stats.fresh += 1
                last[audio_class] = window
            elif audio_class in last:
                stats.reused += 1
                window = last[audio_class]
            else:
                stats.own += 1
                if audio_class not in stats.missing_classes:
                    stats.missing_classes.add(audio_class)
                    logger.warning(
                        "audio class %r is not in the audio bank; its samples keep their own audio",
                        audio_class,
                    )
                yield sample
                continue
            sample["audio"] = decode_window(window)
            yield sample

    @staticmethod
    def _remixed(sample: dict[str, Any], draw) -> np.ndarray | None:
        """The mix of a fresh window of each source's class at its recorded gain, or None
        (a class without a fresh window, or windows of different lengths)."""
        sources = sample.get("sources") or ()
        windows = [draw(audio_class) for audio_class, _ in sources]
        if not windows or any(w is None for w in windows):
            return None
        decoded = [decode_window(w) for w in windows]
        if len({len(w) for w in decoded}) != 1:
            return None
        return mix_sources(decoded, [gain for _, gain in sources])

    def _per_class(self, buffer: ClassAudioBuffer, rank: int, worker: int):
        assert self.by_class is not None
        streams: OrderedDict[str, Iterator[tuple[str, Window]]] = OrderedDict()
        opened: dict[str, int] = defaultdict(int)

        def stream_of(audio_class: str) -> Iterator[tuple[str, Window]]:
            if audio_class in streams:
                streams.move_to_end(audio_class)
                return streams[audio_class]
            if len(streams) >= self.max_open_streams:
                closed, _ = streams.popitem(last=False)
                buffer.drop(closed)
            opened[audio_class] += 1
            seed = (
                seeded_key(self.seed, "bank-class", audio_class, rank, worker, opened[audio_class])
                % 2**31
            )
            streams[audio_class] = bank_stream(
                self.by_class[audio_class],
                seed=seed,
                handler=self.handler,
                shuffle=4 * self.capacity,
            )
            return streams[audio_class]

        def draw(audio_class: str) -> Window | None:
            if audio_class not in self.by_class:
                return None
            stream = stream_of(audio_class)
            # fill the buffer on first use, then top it up: windows from several clips mix
            need = self.capacity if buffer.count(audio_class) == 0 else self.refill_per_sample
            for _ in range(need):
                found, window = next(stream)
                buffer.add(found, window)
                self.stats.pulled += 1
            return buffer.draw(audio_class)

        return draw

    def _mixed(self, buffer: ClassAudioBuffer, rank: int, worker: int):
        streams = [
            bank_stream(
                self.bank_urls,
                seed=seeded_key(self.seed, "bank-stream", rank, worker, i) % 2**31,
                handler=self.handler,
            )
            for i in range(self.num_streams)
        ]
        turn = [0]

        def pull() -> str:
            stream = streams[turn[0] % len(streams)]
            turn[0] += 1
            audio_class, window = next(stream)
            buffer.add(audio_class, window)
            self.stats.pulled += 1
            return audio_class

        def draw(audio_class: str) -> Window | None:
            for _ in range(self.refill_per_sample):
                pull()
            window = buffer.draw(audio_class)
            pulls = 0
            while window is None and pulls < self.max_pulls:
                pulls += 1
                if pull() == audio_class:
                    window = buffer.draw(audio_class)
            return window

        return draw
