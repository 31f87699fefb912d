"""Example pictures in review: tiles with the instance's mask, contact sheets, inline Sixel."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image
from rich.console import Console

from avs_synth.matching.examples import CategoryExamples, ExampleInstance
from avs_synth.matching.review_pictures import (
    ExamplePictures,
    contact_sheet,
    example_tile,
    terminal_shows_pictures,
)
from avs_synth.matching.table import MatchRow
from avs_synth.overlay import MASK_COLOR
from avs_synth.records import Instance, PolygonSegmentation

ROW = MatchRow("coco", "18", "dog", "dog barking", 100.0, "exact:name", "pending", "")


def example(tmp_path, name="a.jpg", *, write=True) -> ExampleInstance:
    path = tmp_path / name
    if write:
        Image.new("RGB", (200, 100), (30, 90, 200)).save(path)
    polygon = PolygonSegmentation(((50.0, 20.0, 110.0, 20.0, 110.0, 80.0, 50.0, 80.0),))
    return ExampleInstance(
        path, 200, 100, Instance("7", "18", "dog", (50.0, 20.0, 60.0, 60.0), 3600.0, polygon)
    )


def test_a_tile_is_the_instance_with_its_mask(tmp_path) -> None:
    tile = np.asarray(example_tile(example(tmp_path), height=100))
    # the box (50, 20) 60 x 60 with 22-px margins (30 % + 4 px), cut at the picture's top edge:
    # x 28-132, y 0-100
    assert tile.shape == (100, 104, 3)
    assert tuple(tile[50, 50]) != (30, 90, 200) and tile[50, 50, 0] > 120  # inside: tinted
    assert tuple(tile[3, 3]) == (30, 90, 200)  # the margin: the picture itself
    assert tuple(tile[50, 22]) == MASK_COLOR == tuple(tile[20, 50])  # the mask's outline


def test_a_missing_picture_is_a_grey_tile_and_a_problem(tmp_path) -> None:
    examples = [example(tmp_path), example(tmp_path, "gone.jpg", write=False)]
    sheet, problems = contact_sheet("coco dog <-> dog barking", examples, height=80)
    assert problems == [f"{tmp_path / 'gone.jpg'}: example picture not found"]
    assert sheet.height == 22 + 80 + 16 + 12
    pixels = np.asarray(sheet)
    assert (pixels[22 + 40, 6 + 80 + 6 + 10] == 150).all()  # the grey tile after the first


def test_sheets_are_written_and_their_paths_printed(tmp_path) -> None:
    console = Console(record=True, width=300, color_system=None)
    stats = CategoryExamples("coco", "18", examples=[example(tmp_path)])
    show = ExamplePictures(console=console, sheets_dir=tmp_path / "sheets", mode="sheet")
    show(ROW, stats)
    sheets = list((tmp_path / "sheets").glob("*.png"))
    assert len(sheets) == 1 and sheets[0].name.startswith("coco-dog-dog_barking-")
    assert f"pictures: {sheets[0]}" in console.export_text()
    with Image.open(sheets[0]) as sheet:
        assert sheet.height == 22 + 180 + 16 + 12


def test_inline_pictures_go_to_the_terminal_as_sixel(tmp_path, monkeypatch) -> None:
    from textual_image import renderable

    monkeypatch.setattr(renderable, "Image", renderable.SixelImage)
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120)
    stats = CategoryExamples("coco", "18", examples=[example(tmp_path)])
    ExamplePictures(console=console, sheets_dir=tmp_path / "sheets", mode="inline")(ROW, stats)
    assert "\x1bP" in out.getvalue() and "\x1b\\" in out.getvalue()  # a Sixel DCS sequence
    assert not (tmp_path / "sheets").exists()
    assert not terminal_shows_pictures()  # the test's stdin is not a terminal
