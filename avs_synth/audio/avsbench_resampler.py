"""The AVSBench resampler: 16 kHz audio made exactly as AVSBench made its wavs.

AVSBench wrote its 16 kHz wavs with moviepy 1.0.3, ``AudioFileClip(video).write_audiofile(wav,
fps=16000)``. What that does, step by step (checked against moviepy itself by the tests):

1. FFmpeg decodes the first audio stream to 44.1 kHz stereo int16 (``-ar 44100 -ac 2``: FFmpeg's
   own resampler where the rate differs, a mono stream spread to both channels at -3 dB), cut at
   the stream's declared duration.
2. moviepy reads that stream through a buffer of ``min(nframes + 1, 200000)`` frames and, for
   output sample ``k``, takes frame ``np.round(44100 * k / 16000)``: no anti-alias filter, so
   content above 8 kHz folds down. Each refill of the buffer keeps one frame too many (its
   ``conserved = ... + 1``), so every later pick comes one frame earlier than asked, one more
   frame per refill (a refill every ~2.3 s after the first 4.5 s); near the end a pick past the
   stream repeats the buffer's last frame. About 44 % of the samples of a 10-s clip are the
   ``np.round`` frame itself.
3. Values are clipped to +-0.99, times 32768, truncated to int16 (so +-32440 at most), and written
   as ``int(16000 * duration)`` stereo samples, where ``duration`` is the container's duration as
   FFmpeg prints it (rounded to 1/100 s).
4. VGGish reads the wav as ``int16 / 32768`` and averages the two channels.

:class:`MoviepyClip` does all of it in-process with PyAV (no ``ffmpeg`` program), for any stretch
of the output: it decodes from the clip's start, as moviepy's FFmpeg does (a seek would change the
decoded samples of lossy codecs, see :mod:`avs_synth.audio.container`), only as far as the
stretch needs, and to the stream's end only for stretches near it (where the stream's exact length
decides the picks). A 16-bit WAV / FLAC at 44.1 kHz is read by stretches instead, since FFmpeg
passes its samples through unchanged.
"""

from __future__ import annotations

import bisect
import math
from pathlib import Path

import av
import numpy as np
import soundfile as sf

from avs_synth.audio.audio_checks import AudioReadError, check_finite
from avs_synth.audio.container import frame_planes, open_audio, plausible_seconds

__all__ = [
    "AVSBENCH_RATE",
    "DECODE_RATE",
    "MoviepyClip",
    "MoviepyReplay",
    "avsbench_waveform",
    "ffmpeg_printed_duration",
    "moviepy_picks",
]

AVSBENCH_RATE = 16_000
"""The rate of AVSBench's wavs (``write_audiofile(fps=16000)``)."""
DECODE_RATE = 44_100
"""The rate moviepy has FFmpeg decode at (``AudioFileClip``'s default ``fps``)."""
READER_BUFFER = 200_000
"""``AudioFileClip``'s default ``buffersize`` (frames at 44.1 kHz)."""
WRITE_CHUNK = 2_000
"""``write_audiofile``'s default ``buffersize`` (output samples per chunk)."""
CLIP_LEVEL = 32_440
"""``int16(0.99 * 32768)``: moviepy's clipping level after quantisation."""
_GATHER = 16_384
"""Decoded samples handed to FFmpeg's resampler at once (fewer calls, the same samples)."""


def ffmpeg_printed_duration(duration_us: int) -> float:
    """A container duration (microseconds) as moviepy reads it from FFmpeg's ``Duration:`` line.

    FFmpeg prints ``HH:MM:SS.cc`` after adding 5 ms and truncating to centiseconds; moviepy's
    ``cvsecs`` parses it back as ``SS.cc + 60 * MM + 3600 * HH`` in float.
    """
    rounded = duration_us + 5000
    seconds, micro = divmod(rounded, 1_000_000)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    parts = [float(f"{seconds:02d}.{100 * micro // 1_000_000:02d}"), float(minutes), float(hours)]
    return sum(factor * part for factor, part in zip((1, 60, 3600), parts, strict=True))


class MoviepyReplay:
    """Which 44.1 kHz frame each output sample of ``write_audiofile(fps=16000)`` takes.

    A replay of moviepy 1.0.3's ``FFMPEG_AudioReader`` (``buffer_around``, ``get_frame``) and
    ``AudioClip.iter_chunks``, on frame numbers instead of samples: the buffer always holds a
    contiguous run of stream frames, kept as its first frame and length. Chunks are replayed once,
    as far as asked, and their buffer states kept (four integers a chunk), so any stretch of a
    long file costs only its own chunks.

    Args:
        duration_s: the duration moviepy read (:func:`ffmpeg_printed_duration`).
        stream_frames: the length of the decoded 44.1 kHz stream.

    Raises:
        ValueError: (from :meth:`picks`) moviepy itself would fail on this clip: an empty stream,
            or a read pattern that makes it re-open FFmpeg at a seek point.
    """

    def __init__(self, duration_s: float, stream_frames: int) -> None:
        self.duration_s = duration_s
        self.stream_frames = stream_frames
        nframes = int(DECODE_RATE * duration_s)
        self.size = min(nframes + 1, READER_BUFFER)
        self.total = int(AVSBENCH_RATE * duration_s)
        chunks = self.total // WRITE_CHUNK + 1
        self.bounds = np.linspace(0, self.total, chunks + 1, endpoint=True, dtype=int)
        # the constructor: buffer_startframe = 1, then buffer_around(1): seek + read_chunk
        start_frame = max(0, 1 - self.size // 2)
        self._read_to = start_frame  # the FFmpeg pipe's position in frames asked for (``pos``)
        first, got = self._read(self.size)
        self._now = (start_frame, first, got)
        self._states = np.zeros((chunks, 4), dtype=np.int64)  # start, first, length, read_to
        self._done = 0

    def _read(self, count: int) -> tuple[int, int]:
        """``read_chunk(count)``: the first stream frame read and the frames got."""
        first = min(self._read_to, self.stream_frames)
        got = max(0, min(count, self.stream_frames - self._read_to))
        self._read_to += count
        return first, got

    @staticmethod
    def _wanted(lo: int, hi: int) -> np.ndarray:
        """``np.round(fps * tt)`` for ``tt = (1.0 / 16000) * np.arange(lo, hi)``, as moviepy
        computes it (the float order matters at the .5 ties)."""
        return np.round(DECODE_RATE * ((1.0 / AVSBENCH_RATE) * np.arange(lo, hi))).astype(np.int64)

    def _advance(self, last_chunk: int) -> None:
        size = self.size
        for chunk in range(self._done, last_chunk + 1):
            lo, hi = int(self.bounds[chunk]), int(self.bounds[chunk + 1])
            start_frame, buf_first, buf_len = self._now
            if hi > lo:
                if (1.0 / AVSBENCH_RATE) * (hi - 1) >= self.duration_s:
                    raise ValueError("moviepy would write silence here (a time past the duration)")
                # the chunk's first and last picks (Python floats round half to even, as NumPy)
                fr_min = round(DECODE_RATE * ((1.0 / AVSBENCH_RATE) * lo))
                fr_max = round(DECODE_RATE * ((1.0 / AVSBENCH_RATE) * (hi - 1)))
                around = None
                if not 0 <= fr_min - start_frame < buf_len:
                    around = fr_min
                elif not 0 <= fr_max - start_frame < buf_len:
                    around = fr_max
                if around is not None:  # buffer_around(around)
                    new_start = max(0, around - size // 2)
                    current_end = start_frame + size
                    if not new_start < current_end < new_start + size:
                        raise ValueError("moviepy would re-open FFmpeg at a seek point here")
                    conserved = current_end - new_start + 1  # moviepy's one frame too many
                    kept = min(conserved, buf_len)
                    _, got = self._read(size - conserved)
                    buf_first, buf_len = buf_first + buf_len - kept, kept + got
                    start_frame = new_start
            self._now = (start_frame, buf_first, buf_len)
            self._states[chunk] = (start_frame, buf_first, buf_len, self._read_to)
        self._done = max(self._done, last_chunk + 1)

    def picks(self, start: int, stop: int) -> tuple[np.ndarray, int]:
        """The stream frames output samples ``start .. stop - 1`` take (int64), and how far into
        the stream moviepy had read by then (a stream shorter than that changes them)."""
        start, stop = max(0, start), min(self.total, stop)
        if stop <= start:
            return np.zeros(0, dtype=np.int64), 0
        first_chunk = int(np.searchsorted(self.bounds, start, side="right")) - 1
        last_chunk = int(np.searchsorted(self.bounds, stop - 1, side="right")) - 1
        self._advance(last_chunk)
        out = []
        half = self.size // 2
        for chunk in range(first_chunk, last_chunk + 1):
            lo = max(int(self.bounds[chunk]), start)
            hi = min(int(self.bounds[chunk + 1]), stop)
            if hi <= lo:
                continue
            start_frame, buf_first, buf_len, _ = (int(v) for v in self._states[chunk])
            if buf_len == 0:
                raise ValueError("the audio stream is empty")
            index = self._wanted(lo, hi) - start_frame
            if buf_len < half:
                index = index - (half - buf_len + 1)
            index = np.where(index >= buf_len, buf_len - 1, index)  # "repeat the last frame"
            if (index < -buf_len).any():
                raise ValueError("moviepy would fail reading its buffer here")
            index = np.where(index < 0, index + buf_len, index)  # NumPy's negative indexing
            out.append(buf_first + index)
        return np.concatenate(out), int(self._states[last_chunk, 3])


def moviepy_picks(duration_s: float, stream_frames: int) -> np.ndarray:
    """Every frame :class:`MoviepyReplay` picks for the whole output (int64)."""
    replay = MoviepyReplay(duration_s, stream_frames)
    return replay.picks(0, replay.total)[0]


class _Pcm44k:
    """The 44.1 kHz stereo int16 stream FFmpeg gives moviepy, decoded from the start as needed.

    Every frame is decoded (a lossy decoder's state runs from the start). A 44.1 kHz float stream
    only needs FFmpeg's sample conversion, so its frames are kept as decoded and only the
    stretches asked for are converted; any other stream goes through FFmpeg's resampler as it is
    decoded.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._container, self._stream = open_audio(path)
        self._frames = self._container.decode(self._stream)
        context = self._stream.codec_context
        self.rate = int(context.sample_rate)
        self.channels = int(context.channels)
        self.duration_us = self._container.duration
        self.declared_in = _declared_samples(self._stream, self.rate)
        self._direct = (  # FFmpeg would only convert: done here in NumPy, identically
            self.rate == DECODE_RATE
            and context.format is not None
            and context.format.name in ("flt", "fltp")
            and self.channels in (1, 2)
        )
        self._resampler = av.AudioResampler(format="s16", layout="stereo", rate=DECODE_RATE)
        self._size = 0  # frames out
        self._consumed = 0  # input samples decoded
        self.ended = False
        self._template: av.AudioFrame | None = None
        # direct: each decoded frame's planes and first position; else converted int16 parts
        self._starts: list[int] = []
        self._raw: list[tuple[list[np.ndarray], bool]] = []
        self._parts: list[np.ndarray] = []
        self._pcm = np.zeros((0, 2), dtype=np.int16)

    @property
    def declared_out(self) -> int | None:
        """The stream's declared length at 44.1 kHz (None: not declared)."""
        if self.declared_in is None:
            return None
        return int(round(self.declared_in * DECODE_RATE / self.rate))

    @property
    def size(self) -> int:
        """Frames decoded so far."""
        return self._size

    @property
    def length_declared_exactly(self) -> bool:
        """True when the declared duration gives the stream's length before it is decoded: a
        44.1 kHz stream is cut at exactly that many samples (a lossy codec pads its last frame
        beyond it); a stream that turns out shorter is still caught by :meth:`take`."""
        return self._direct and self.declared_in is not None

    def ensure(self, frames: float) -> None:
        """Decode until ``frames`` frames are out (or the stream ends)."""
        pending: list[list[np.ndarray]] = []
        pending_samples = 0
        try:
            while self._size + pending_samples * DECODE_RATE / self.rate < frames + 64:
                frame = None if self.ended else next(self._frames, None)
                if frame is not None and self.declared_in is not None:
                    if self._consumed >= self.declared_in:
                        frame = None  # cut at the declared duration, as the ffmpeg CLI does
                if frame is None:
                    if not self.ended:
                        self._push(pending)
                        pending, pending_samples = [], 0
                        if not self._direct:
                            self._collect(self._resampler.resample(None))
                        self.ended = True
                    break
                samples = frame.samples
                if self.declared_in is not None and self._consumed + samples > self.declared_in:
                    samples = self.declared_in - self._consumed
                data = _first_samples(frame_planes(frame), frame, samples)
                self._consumed += samples
                if self._direct:
                    self._starts.append(self._size)
                    self._raw.append((data, frame.format.is_planar))
                    self._size += samples
                    continue
                self._check_finite(data, frame)
                self._template = frame
                pending.append(data)
                pending_samples += samples
                if pending_samples >= _GATHER:
                    self._push(pending)
                    pending, pending_samples = [], 0
            self._push(pending)
        except av.error.FFmpegError as error:
            raise AudioReadError(self.path, f"cannot decode audio: {error}") from None

    def _check_finite(self, planes: list[np.ndarray], frame_or_planar) -> None:
        """Refuse NaN / infinite float samples (FFmpeg would turn them into noise)."""
        if not planes or planes[0].dtype.kind != "f":
            return
        planar = getattr(getattr(frame_or_planar, "format", None), "is_planar", frame_or_planar)
        channels = 1 if planar else self.channels
        for plane in planes:
            check_finite(self.path, plane.reshape(-1, channels), first=0)

    def take(self, frames: np.ndarray) -> np.ndarray | None:
        """The stream's frames at ``frames`` (int16 [n, 2]); None when the stream ends before
        the last of them (its length is then known: :attr:`ended`)."""
        first, need = int(frames.min()), int(frames.max()) + 1
        self.ensure(need)
        if self._size < need:
            return None
        if not self._direct:
            if self._parts:
                self._pcm = np.concatenate([self._pcm, *self._parts])
                self._parts = []
            return self._pcm[frames]
        lo = bisect.bisect_right(self._starts, first) - 1
        hi = bisect.bisect_left(self._starts, need)
        pieces = self._raw[lo:hi]
        planar = pieces[0][1]
        planes = [np.concatenate([p[0][k] for p in pieces]) for k in range(len(pieces[0][0]))]
        self._check_finite(planes, planar)
        block = self._convert_direct(planes, planar=planar)
        return block[frames - self._starts[lo]]

    def _push(self, pending: list[list[np.ndarray]]) -> None:
        """Hand decoded frames (their :func:`frame_planes`) to FFmpeg's resampler as one frame."""
        if not pending:
            return
        template = self._template
        assert template is not None
        planes = [np.concatenate([piece[k] for piece in pending]) for k in range(len(pending[0]))]
        frame = av.AudioFrame.from_ndarray(
            np.stack(planes), format=template.format.name, layout=template.layout.name
        )
        frame.sample_rate = self.rate
        self._collect(self._resampler.resample(frame))

    def _convert_direct(self, planes: list[np.ndarray], *, planar: bool) -> np.ndarray:
        """What FFmpeg's swresample does to 44.1 kHz float audio for ``-ac 2 -f s16le``: a mono
        channel times ``(float)M_SQRT1_2`` into both channels, then ``lrintf(x * 32768)``
        clipped to int16 (round half to even, no dither)."""
        samples = np.stack(planes, axis=1) if planar else planes[0].reshape(-1, self.channels)
        if self.channels == 1:
            samples = np.repeat(samples * np.float32(0.70710678118654752), 2, axis=1)
        scaled = np.rint(samples.astype(np.float32) * np.float32(32768.0))
        return np.clip(scaled, -32768, 32767).astype(np.int16)

    def _collect(self, frames: list[av.AudioFrame]) -> None:
        for out in frames:
            part = out.to_ndarray().reshape(-1, 2)
            self._parts.append(part)
            self._size += len(part)

    def close(self) -> None:
        self._container.close()


def _first_samples(planes: list[np.ndarray], frame: av.AudioFrame, count: int) -> list[np.ndarray]:
    """The first ``count`` samples of :func:`frame_planes` (planar or packed)."""
    per_plane = count if frame.format.is_planar else count * frame.layout.nb_channels
    return [plane[:per_plane] for plane in planes]


def _declared_samples(stream: av.audio.stream.AudioStream, rate: int) -> int | None:
    if stream.duration is None or stream.time_base is None:
        return None
    return int(round(float(stream.duration * stream.time_base) * rate))


class _SeekablePcm44k:
    """The same stream for a 16-bit WAV / FLAC at 44.1 kHz, read by stretches with soundfile.

    Lossless 16-bit PCM at 44.1 kHz goes through FFmpeg unchanged, except that a mono stream is
    spread to both channels at -3 dB in FFmpeg's int16 arithmetic: ``(x * 23170 + 16384) >> 15``
    (``23170 = round(32768 / sqrt(2))``). Reading a stretch directly is exact and avoids decoding
    from the start.
    """

    def __init__(self, path: Path, handle: sf.SoundFile) -> None:
        self.path = path
        self._handle = handle
        self.channels = handle.channels
        container, _ = open_audio(path)  # the duration exactly as FFmpeg computes it
        with container:
            self.duration_us = container.duration
        self.size = int(handle.frames)
        self.ended = True
        self.declared_out = self.size
        self.length_declared_exactly = True
        self._block_first = 0
        self._block = np.zeros((0, 2), dtype=np.int16)

    @staticmethod
    def accepts(handle: sf.SoundFile) -> bool:
        return (
            handle.samplerate == DECODE_RATE
            and handle.subtype == "PCM_16"
            and handle.channels in (1, 2)
            and handle.format in ("WAV", "FLAC")
            and handle.frames > 0
        )

    def ensure(self, frames: float) -> np.ndarray:
        return self.take(np.arange(min(self.size, frames), dtype=np.int64))

    def take(self, frames: np.ndarray) -> np.ndarray:
        if len(frames) == 0:
            return np.zeros((0, 2), dtype=np.int16)
        first, last = int(frames.min()), int(frames.max())
        if not (self._block_first <= first and last < self._block_first + len(self._block)):
            self._block_first, self._block = first, self._read(first, last + 1 - first)
        return self._block[frames - self._block_first]

    def _read(self, first: int, count: int) -> np.ndarray:
        try:
            self._handle.seek(first)
            data = self._handle.read(frames=count, dtype="int16", always_2d=True)
        except (sf.LibsndfileError, RuntimeError, TypeError) as error:
            raise AudioReadError(self.path, f"cannot decode audio: {error}") from None
        if len(data) < count:
            raise AudioReadError(self.path, "the file holds fewer samples than its header says")
        if self.channels == 1:
            spread = ((data[:, 0].astype(np.int32) * 23170 + 16384) >> 15).astype(np.int16)
            data = np.stack([spread, spread], axis=1)
        return data

    def close(self) -> None:
        self._handle.close()


def _open_pcm44k(path: Path) -> _Pcm44k | _SeekablePcm44k:
    if path.suffix.lower() in (".wav", ".flac"):
        try:
            handle = sf.SoundFile(str(path))
        except (sf.LibsndfileError, RuntimeError, TypeError):
            handle = None
        if handle is not None:
            if _SeekablePcm44k.accepts(handle):
                return _SeekablePcm44k(path, handle)
            handle.close()
    return _Pcm44k(path)


class MoviepyClip:
    """A clip as AVSBench's 16 kHz wav of it (a :class:`ClipReader` at 16 kHz, mono).

    ``read(start, n)`` gives samples ``start .. start + n`` of what moviepy's wav, read by
    VGGish (channel mean of ``int16 / 32768``), holds: see the module docstring.

    Args:
        path: any file FFmpeg decodes (video container, wav, flac, ...).

    Raises:
        FileNotFoundError, AudioReadError: the file is missing, cannot be decoded, has no
            duration, or moviepy itself would fail on it.
    """

    rate = AVSBENCH_RATE

    def __init__(self, *, path: Path) -> None:
        self.path = Path(path)
        self._pcm = _open_pcm44k(self.path)
        if self._pcm.duration_us is None:
            self._pcm.close()
            raise AudioReadError(self.path, "has no duration (moviepy cannot read it)")
        self.duration_s = ffmpeg_printed_duration(int(self._pcm.duration_us))
        self._replay: MoviepyReplay | None = None
        if self.duration_s > plausible_seconds(self.path):  # a header that may lie: check it
            self._pcm.ensure(math.inf)
            held = self._pcm.size / DECODE_RATE
            if self.duration_s > 1.05 * held + 1.0:
                self._pcm.close()
                raise AudioReadError(
                    self.path,
                    f"declares {self.duration_s:.0f} s but holds {held:.1f} s of audio; the "
                    "header is corrupt",
                )
        self.frames = int(AVSBENCH_RATE * self.duration_s)

    def _stream_length(self) -> int:
        """The decoded stream's length: exact once decoded to its end, else as declared."""
        if self._pcm.ended:
            return self._pcm.size
        declared = self._pcm.declared_out
        if declared is None:
            self._pcm.ensure(math.inf)
            return self._pcm.size
        return declared

    def _replay_now(self) -> MoviepyReplay:
        length = self._stream_length()
        if self._replay is None or self._replay.stream_frames != length:
            self._replay = MoviepyReplay(self.duration_s, length)
        return self._replay

    def _picks(self, start: int, stop: int) -> tuple[np.ndarray, int]:
        try:
            return self._replay_now().picks(start, stop)
        except ValueError as error:
            raise AudioReadError(self.path, str(error)) from None

    def read(self, start: int, length: int) -> np.ndarray:
        start = max(0, start)
        stop = min(self.frames, start + length)
        if stop <= start:
            return np.zeros(0, dtype=np.float32)
        frames, horizon = self._picks(start, stop)
        near_end = horizon + WRITE_CHUNK * 3 >= self._stream_length()
        if near_end and not self._pcm.ended and not self._pcm.length_declared_exactly:
            self._pcm.ensure(math.inf)  # near the end: the exact length decides the picks
            frames, horizon = self._picks(start, stop)
        taken = self._pcm.take(frames)
        if taken is None:  # the stream is shorter than declared: its real length decides
            frames, _ = self._picks(start, stop)
            taken = self._pcm.take(frames)
            assert taken is not None
        chosen = np.clip(taken, -CLIP_LEVEL, CLIP_LEVEL).astype(np.int32)
        return ((chosen[:, 0] + chosen[:, 1]) / np.float32(65536.0)).astype(np.float32)

    def stereo_int16(self) -> np.ndarray:
        """The whole wav moviepy writes: int16 ``[frames, 2]`` at 16 kHz."""
        self._pcm.ensure(math.inf)  # the exact length first
        frames, _ = self._picks(0, self.frames)
        taken = self._pcm.take(frames)
        assert taken is not None
        return np.clip(taken, -CLIP_LEVEL, CLIP_LEVEL).astype(np.int16)

    def close(self) -> None:
        """Close the file."""
        self._pcm.close()


def avsbench_waveform(path: str | Path) -> np.ndarray:
    """The whole clip as AVSBench's wav of it, read as VGGish reads it: float32 mono, 16 kHz."""
    clip = MoviepyClip(path=Path(path))
    try:
        return clip.read(0, clip.frames)
    finally:
        clip.close()
