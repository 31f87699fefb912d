"""Byte-reproducible file writers: PNG, JPEG, JSON, CSV, zip, audio (wav / flac / ogg with a fixed
stream serial), mp4 through PyAV (FFmpeg's libraries, bit-exact mode), and tensor pickles without
memory addresses."""

from __future__ import annotations

import csv
import io
import json
import logging
import pickle
import zipfile
from pathlib import Path

import av
import numpy as np
import soundfile as sf
import torch
from PIL import Image

from avs_synth.audio.container import add_aac_stream, mux_audio
from avs_synth.sample_corpus.sounds import SAMPLE_RATE

log = logging.getLogger(__name__)


def write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def png_bytes(image: Image.Image, compress_level: int = 6) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG", optimize=False, compress_level=compress_level)
    return buf.getvalue()


def write_png(path: Path, image: Image.Image, compress_level: int = 6) -> None:
    write_bytes(path, png_bytes(image, compress_level))


def write_jpeg(path: Path, rgb: np.ndarray) -> None:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(
        buf, format="JPEG", quality=90, subsampling=2, optimize=False, progressive=False
    )
    write_bytes(path, buf.getvalue())


def write_json(path: Path, obj: object) -> None:
    write_bytes(path, json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode())


def write_csv(path: Path, header: list[str] | None, rows: list[list[object]]) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    if header is not None:
        writer.writerow(header)
    writer.writerows(rows)
    write_bytes(path, buf.getvalue().encode())


def write_zip(path: Path, members: list[tuple[str, bytes]]) -> None:
    """A zip with fixed timestamps and attributes (byte-identical for identical members)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in sorted(members):
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_STORED
            info.external_attr = 0o644 << 16
            info.create_system = 3
            zf.writestr(info, data)
    write_bytes(path, buf.getvalue())


_OGG_CRC_TABLE: list[int] | None = None


def _ogg_crc(data: bytes) -> int:
    global _OGG_CRC_TABLE
    if _OGG_CRC_TABLE is None:
        table = []
        for i in range(256):
            r = i << 24
            for _ in range(8):
                r = ((r << 1) ^ 0x04C11DB7) if r & 0x80000000 else (r << 1)
            table.append(r & 0xFFFFFFFF)
        _OGG_CRC_TABLE = table
    crc = 0
    t = _OGG_CRC_TABLE
    for b in data:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ t[((crc >> 24) & 0xFF) ^ b]
    return crc


def _fix_ogg_serial(data: bytes, serial: int) -> bytes:
    """Replace libsndfile's random Ogg stream serial number with ``serial`` (CRCs recomputed)."""
    out = bytearray()
    pos = 0
    while pos < len(data):
        if data[pos : pos + 4] != b"OggS":
            raise ValueError("not an Ogg stream")
        nseg = data[pos + 26]
        length = 27 + nseg + sum(data[pos + 27 : pos + 27 + nseg])
        page = bytearray(data[pos : pos + length])
        page[14:18] = serial.to_bytes(4, "little")
        page[22:26] = b"\0\0\0\0"
        page[22:26] = _ogg_crc(bytes(page)).to_bytes(4, "little")
        out += page
        pos += length
    return bytes(out)


def audio_bytes(samples: np.ndarray, fmt: str, serial: int) -> bytes:
    buf = io.BytesIO()
    if fmt == "wav":
        sf.write(buf, samples, SAMPLE_RATE, format="WAV", subtype="PCM_16")
    elif fmt == "flac":
        sf.write(buf, samples, SAMPLE_RATE, format="FLAC", subtype="PCM_16")
    elif fmt == "ogg":
        sf.write(buf, samples, SAMPLE_RATE, format="OGG", subtype="VORBIS")
        return _fix_ogg_serial(buf.getvalue(), serial)
    else:
        raise ValueError(f"unsupported audio format {fmt!r}")
    return buf.getvalue()


MP4_FPS = 4
MP4_SIZE = 64


def mp4_bytes(samples: np.ndarray) -> bytes:
    """A tiny black video with ``samples`` (int16, 16 kHz mono) as its AAC track, byte-identical
    for identical samples (FFmpeg's bit-exact flags, no metadata, one thread)."""
    buffer = io.BytesIO()
    seconds = len(samples) / SAMPLE_RATE
    bitexact = {"fflags": "+bitexact", "flags": "+bitexact"}
    with av.open(buffer, "w", format="mp4", options={"fflags": "+bitexact"}) as out:
        video = out.add_stream("mpeg4", rate=MP4_FPS, options={"flags": "+bitexact", "qscale": "5"})
        video.width = video.height = MP4_SIZE
        video.pix_fmt = "yuv420p"
        video.codec_context.thread_count = 1
        audio = add_aac_stream(out, rate=SAMPLE_RATE, channels=1, bit_rate=64_000, options=bitexact)
        mux_audio(out, audio, samples.astype(np.float32) / 32768.0)
        black = av.VideoFrame.from_ndarray(
            np.zeros((MP4_SIZE, MP4_SIZE, 3), dtype=np.uint8), format="rgb24"
        )
        for index in range(max(1, int(round(seconds * MP4_FPS)))):
            black.pts = index
            for packet in video.encode(black):
                out.mux(packet)
        for packet in video.encode(None):
            out.mux(packet)
    return buffer.getvalue()


def write_mp4(path: Path, samples: np.ndarray) -> None:
    """Write :func:`mp4_bytes` to ``path``."""
    write_bytes(path, mp4_bytes(samples))


def tensor_pickle_bytes(tensor: torch.Tensor) -> bytes:
    """``pickle.dumps(tensor)``, made byte-reproducible.

    Plain pickling of a torch tensor embeds ``str(storage._cdata)`` (a memory address) as the
    storage key of the legacy ``torch.save`` blob that carries the data, so equal tensors pickle
    to different bytes. Here the key is replaced by ``"0"``; the result still loads with plain
    ``pickle.load`` into an equal tensor.
    """
    t = tensor.detach().cpu().contiguous().clone()

    class _Pickler(pickle.Pickler):
        def reducer_override(self, obj):
            if not isinstance(obj, torch.storage.TypedStorage | torch.UntypedStorage):
                return NotImplemented
            fn, (blob,) = obj.__reduce__()
            untyped = obj._untyped_storage if isinstance(obj, torch.storage.TypedStorage) else obj
            key = str(untyped._cdata).encode()
            old = b"X" + len(key).to_bytes(4, "little") + key
            new = b"X" + (1).to_bytes(4, "little") + b"0"
            cut = len(blob) - untyped.nbytes() - 8  # the raw data (count + bytes) stays as is
            head, tail = blob[:cut], blob[cut:]
            if head.count(old) != 2:
                raise RuntimeError("unexpected layout of torch's legacy tensor serialisation")
            return fn, (head.replace(old, new) + tail,)

    buf = io.BytesIO()
    _Pickler(buf, protocol=pickle.DEFAULT_PROTOCOL).dump(t)
    return buf.getvalue()


def label_map_image(scene_labels: np.ndarray) -> Image.Image:
    return Image.fromarray(scene_labels.astype(np.uint8))
