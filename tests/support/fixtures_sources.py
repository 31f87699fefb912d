"""Tiny writers of real dataset files (PNG, JPEG, zip, JSON) shared by the source-reader tests."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image


def png_bytes(array: np.ndarray, *, mode: str = "L", palette: list[int] | None = None) -> bytes:
    """Encode ``array`` ([H, W] uint8) as a PNG of ``mode`` (``L``, ``1`` or ``P``)."""
    array = np.asarray(array, dtype=np.uint8)
    if mode == "1":
        image = Image.fromarray(array > 0).convert("1")
    elif mode == "P":
        image = Image.fromarray(array).convert("L").convert("P")
        image.putdata(array.flatten().tolist())
        image.putpalette(palette or [0, 0, 0, 128, 0, 0, 0, 128, 0] + [0] * (256 * 3 - 9))
    else:
        image = Image.fromarray(array).convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def write_png(path: Path, array: np.ndarray, *, mode: str = "L") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png_bytes(array, mode=mode))
    return path


def write_jpeg(path: Path, width: int, height: int, *, value: int = 128) -> Path:
    """A flat grey JPEG of the given size."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (width, height), (value, value, value)).save(path, format="JPEG")
    return path


def write_zip(path: Path, members: dict[str, bytes]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def write_json(path: Path, obj: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=1), encoding="utf-8")
    return path
