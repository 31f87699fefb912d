"""Example instances as pictures while reviewing a pair.

Each example instance is cut from its picture around its box, its mask drawn over it
(:func:`~avs_synth.overlay.mask_overlay`); a pair's examples side by side make its *contact
sheet*. :class:`ExamplePictures` shows the sheet after each pair:

- ``inline``: in the terminal, where it speaks a graphics protocol (Sixel, or Kitty's terminal
  graphics protocol), through ``textual-image``;
- ``sheet``: a PNG per pair in a folder, whose path is printed (any terminal, SSH, tmux);
- ``auto`` (the default): inline when the terminal answers that it can, else the PNG.

A missing or unreadable example picture is a warning naming the file, and a grey tile on the
sheet, never an error.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image, ImageDraw, UnidentifiedImageError
from rich.console import Console
from rich.text import Text

from avs_synth.errors import DataFormatError
from avs_synth.masks import decode_mask
from avs_synth.matching.examples import CategoryExamples, ExampleInstance
from avs_synth.matching.table import MatchRow
from avs_synth.overlay import mask_overlay

__all__ = ["PictureMode", "ExamplePictures", "contact_sheet", "example_tile"]

logger = logging.getLogger(__name__)

PictureMode = Literal["auto", "inline", "sheet", "off"]
TILE_HEIGHT = 180
_MARGIN = 0.3  # context around the instance's box, as a fraction of the box
_CAPTION_HEIGHT = 16
_TITLE_HEIGHT = 22
_GAP = 6
_BACKGROUND = (250, 250, 248)


def _placeholder(text: str, height: int) -> Image.Image:
    tile = Image.new("RGB", (height, height), (150, 150, 150))
    ImageDraw.Draw(tile).multiline_text((6, height // 2 - 12), text, fill=(255, 255, 255))
    return tile


def example_tile(example: ExampleInstance, *, height: int = TILE_HEIGHT) -> Image.Image:
    """The instance cut from its picture around its box, with its mask, ``height`` pixels high.

    Raises:
        FileNotFoundError: the picture does not exist.
        DataFormatError: the picture cannot be read, or the instance's mask cannot be decoded.
    """
    path = example.image_path
    try:
        with Image.open(path) as opened:
            picture = opened.convert("RGB")
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: example picture not found") from None
    except (UnidentifiedImageError, OSError) as error:
        raise DataFormatError(path, f"unreadable picture ({error})") from None
    mask = decode_mask(
        example.instance.segmentation,
        example.height,
        example.width,
        source=f"{path}: instance {example.instance.instance_id}",
    )
    if mask.shape != (picture.height, picture.width):  # annotation size differs from the file
        mask = np.asarray(
            Image.fromarray(mask).resize(picture.size, Image.Resampling.NEAREST), dtype=bool
        )
    sx, sy = picture.width / example.width, picture.height / example.height
    x, y, w, h = (float(v) for v in example.instance.bbox)
    pad_x, pad_y = _MARGIN * w + 4, _MARGIN * h + 4
    left = max(0, math.floor((x - pad_x) * sx))
    top = max(0, math.floor((y - pad_y) * sy))
    right = min(picture.width, math.ceil((x + w + pad_x) * sx))
    bottom = min(picture.height, math.ceil((y + h + pad_y) * sy))
    if right <= left or bottom <= top:
        left, top, right, bottom = 0, 0, picture.width, picture.height
    crop = mask_overlay(picture.crop((left, top, right, bottom)), mask[top:bottom, left:right])
    width = max(1, round(crop.width * height / crop.height))
    return crop.resize((min(width, 3 * height), height), Image.Resampling.BILINEAR)


def contact_sheet(
    title: str, examples: Sequence[ExampleInstance], *, height: int = TILE_HEIGHT
) -> tuple[Image.Image, list[str]]:
    """The examples side by side under a title, each captioned with its file name.

    Returns:
        ``(sheet, problems)``: the picture, and one line per example that could not be shown
        (a missing or unreadable file: a grey tile stands in its place).
    """
    tiles: list[tuple[Image.Image, str]] = []
    problems: list[str] = []
    for example in examples:
        caption = f"{example.image_path.name} ({example.width}x{example.height})"
        try:
            tile = example_tile(example, height=height)
        except FileNotFoundError as error:
            problems.append(str(error))
            tile = _placeholder("picture not found", height)
        except DataFormatError as error:
            problems.append(str(error))
            tile = _placeholder("unreadable", height)
        tiles.append((tile, caption))
    width = max(320, sum(t.width for t, _ in tiles) + _GAP * (len(tiles) + 1) if tiles else 320)
    sheet = Image.new(
        "RGB", (width, _TITLE_HEIGHT + height + _CAPTION_HEIGHT + 2 * _GAP), _BACKGROUND
    )
    draw = ImageDraw.Draw(sheet)
    draw.text((_GAP, 5), title, fill=(20, 20, 20))
    x = _GAP
    for tile, caption in tiles:
        sheet.paste(tile, (x, _TITLE_HEIGHT))
        draw.text(
            (x, _TITLE_HEIGHT + height + 3), caption[: max(8, tile.width // 6)], fill=(60, 60, 60)
        )
        x += tile.width + _GAP
    return sheet, problems


def _sheet_name(row: MatchRow) -> str:
    readable = re.sub(
        r"[^A-Za-z0-9_-]+", "_", f"{row.source}-{row.visual_name}-{row.vggsound_label}"
    )
    digest = hashlib.sha1("\0".join(row.key).encode()).hexdigest()[:8]
    return f"{readable[:80]}-{digest}.png"


def terminal_shows_pictures() -> bool:
    """True when stdin and stdout are a terminal that answers it speaks Sixel or Kitty's
    graphics protocol (asked once, through ``textual-image``)."""
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        return False  # piped keys must not be read as the terminal's answer
    from textual_image import renderable

    return renderable.Image in (renderable.SixelImage, renderable.TGPImage)


class ExamplePictures:
    """Shows a pair's example pictures after the pair (pass as ``show_pictures`` to
    :class:`~avs_synth.matching.review.ReviewSession`).

    Args:
        console: where the pictures (or the sheet's path) go.
        sheets_dir: where contact sheets are written (created when first needed).
        mode: ``auto``, ``inline``, ``sheet`` or ``off`` (see the module docstring).
        height: tile height in pixels.
    """

    def __init__(
        self,
        *,
        console: Console,
        sheets_dir: Path,
        mode: PictureMode = "auto",
        height: int = TILE_HEIGHT,
    ) -> None:
        self.console = console
        self.sheets_dir = Path(sheets_dir)
        self.height = height
        self.inline = mode == "inline" or (mode == "auto" and terminal_shows_pictures())
        self.mode = mode

    def __call__(self, row: MatchRow, stats: CategoryExamples) -> None:
        if self.mode == "off" or not stats.examples:
            return
        title = f"{row.source} {row.visual_name} (id {row.visual_id})  <->  {row.vggsound_label}"
        sheet, problems = contact_sheet(title, stats.examples, height=self.height)
        for problem in problems:
            logger.warning("%s", problem)
            self.console.print(Text.assemble(("warning: ", "bold yellow"), problem))
        if self.inline:
            from textual_image.renderable import Image as TerminalImage

            self.console.print(TerminalImage(sheet, width=None, height=None))
            return
        self.sheets_dir.mkdir(parents=True, exist_ok=True)
        path = self.sheets_dir / _sheet_name(row)
        sheet.save(path, format="PNG")
        self.console.print(Text.assemble(("pictures: ", "dim"), str(path)))
