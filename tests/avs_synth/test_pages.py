"""Static pages: escaping of hostile data, safe links, atomic replacement, and a real browser."""

from __future__ import annotations

import wave

import numpy as np
import pytest
from PIL import Image

from avs_synth.overlay import MASK_COLOR, OUTLINE_COLOR, mask_overlay, outline_of
from avs_synth.pages import PageFilter, PageItem, PageWriter
from tests.support.browser import check_page

HOSTILE = '<script>window.pwned = 1</script>" onerror="window.pwned = 2'
FILTERS = (PageFilter("split", "split"), PageFilter("category", "category"))


def picture(value: int = 120) -> Image.Image:
    return Image.fromarray(np.full((30, 40, 3), value, dtype=np.uint8))


def write(folder, items: int = 3, *, category: str = "dog barking", link: str = "") -> None:
    with PageWriter(folder, title=f"test {category}", filters=FILTERS, summary=["a", "b"]) as page:
        for n in range(items):
            mask = np.zeros((30, 40), dtype=bool)
            mask[5:20, 10 + n : 30] = True
            page.add(
                PageItem(
                    title=f"{category} {n}",
                    picture=page.picture(mask_overlay(picture(), mask)),
                    plain_picture=page.picture(picture()),
                    audio=page.audio(np.sin(np.arange(8000) / 5.0) * 0.3, 16000),
                    facts=(("category", category), ("n", str(n))),
                    links=(("source", link),) if link else (),
                    filters=(("split", "train" if n % 2 else "val"), ("category", category)),
                    badge="negative" if n == 2 else None,
                )
            )


def test_overlay_tints_the_mask_and_outlines_the_second_mask() -> None:
    mask = np.zeros((30, 40), dtype=bool)
    mask[10:20, 10:20] = True
    truth = np.zeros((60, 80), dtype=bool)  # another resolution: resized to the picture
    truth[0:40, 0:40] = True
    out = np.asarray(mask_overlay(picture(100), mask, outline=truth))
    assert tuple(out[0, 25]) == (100, 100, 100)  # outside both
    assert tuple(out[10, 15]) == MASK_COLOR  # the mask's outline
    inside = out[15, 15].astype(int)
    assert inside[0] > 150 and inside[1] < 100  # tinted red
    assert tuple(out[19, 5]) == OUTLINE_COLOR  # the ground truth's edge (row 19 of 30)
    assert outline_of(mask).sum() == 36
    small = mask_overlay(Image.new("RGB", (400, 100)), None, max_side=200, caption="t=1s")
    assert small.size == (200, 50)


def test_page_files_and_hostile_text(tmp_path) -> None:
    folder = tmp_path / "page"
    write(folder, category=HOSTILE, link="javascript:alert(1)")
    text = (folder / "index.html").read_text()
    assert "<script>window.pwned" not in text and "&lt;script&gt;window.pwned" in text
    assert 'href="javascript' not in text and "source: javascript:alert(1)" in text
    assert sorted(p.name for p in (folder / "media").iterdir()) == [
        f"{n:05d}.{ext}" for n, ext in zip(range(1, 10), ["jpg", "jpg", "wav"] * 3, strict=True)
    ]
    with wave.open(str(folder / "media" / "00003.wav")) as handle:
        assert (handle.getframerate(), handle.getnchannels(), handle.getnframes()) == (
            16000,
            1,
            8000,
        )
    write(folder, items=1)  # a second page replaces the first whole
    assert len(list((folder / "media").iterdir())) == 3
    assert {p.name for p in folder.iterdir()} == {"index.html", "media"}


def test_a_failed_write_leaves_the_old_page_and_a_foreign_index_is_refused(tmp_path) -> None:
    folder = tmp_path / "page"
    write(folder, items=2)
    before = (folder / "index.html").read_text()
    with pytest.raises(RuntimeError, match="disk full"):
        with PageWriter(folder, title="new", filters=FILTERS) as page:
            page.picture(picture())
            raise RuntimeError("disk full")
    assert (folder / "index.html").read_text() == before
    assert {p.name for p in folder.iterdir()} == {"index.html", "media"}  # no temp folder left
    other = tmp_path / "site"
    other.mkdir()
    (other / "index.html").write_text("<html>my own page</html>")
    with pytest.raises(FileExistsError, match="not written by avs-synth"):
        PageWriter(other, title="x")
    with pytest.raises(ValueError, match="not a file of this page"):
        with PageWriter(tmp_path / "p2", title="x") as page:
            page.add(PageItem(title="t", picture="/etc/passwd"))


def test_the_page_works_in_a_real_browser(tmp_path) -> None:
    folder = tmp_path / "page"
    write(folder, category=HOSTILE, link="https://example.org/a?b=1&c=2")
    choose_train = (
        '(() => { const s = document.querySelector("select[data-filter=split]");'
        ' s.value = "train"; s.dispatchEvent(new Event("change"));'
        ' return [document.querySelectorAll(".card:not([hidden])").length,'
        ' document.getElementById("count").textContent, window.pwned === undefined]; })()'
    )
    check = check_page(
        folder / "index.html",
        tmp_path / "page.png",
        expressions=(choose_train,),
        profile=tmp_path / "profile",
    )
    assert (check.images, check.audio) == (6, 3)
    assert check.broken_images == [] and check.broken_audio == []
    assert check.durations == [0.5, 0.5, 0.5]
    assert check.errors == []
    assert check.results == [[1, "1 of 3 shown", True]]
    with Image.open(check.screenshot) as shot:
        assert shot.size == (1280, 900)
