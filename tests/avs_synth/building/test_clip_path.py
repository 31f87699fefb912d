"""A clip's crop path and silent frames: seeded, smooth, always holding the sounding mask."""

from __future__ import annotations

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from avs_synth.building.clip_path import (
    MIN_SCALE,
    crop_path,
    ease_in_out,
    frame_size,
    silent_frames,
)


def _holds(box, inner) -> bool:
    x, y, w, h = box
    mx, my, mw, mh = inner
    return x <= mx and y <= my and x + w >= mx + mw and y + h >= my + mh


def test_ease_in_out_starts_and_stops_gently() -> None:
    assert ease_in_out(0.0) == 0.0 and ease_in_out(1.0) == 1.0 and ease_in_out(0.5) == 0.5
    assert ease_in_out(0.1) < 0.1 and ease_in_out(0.9) > 0.9  # slow at both ends
    values = [ease_in_out(u / 10) for u in range(11)]
    assert values == sorted(values)


def test_the_path_moves_smoothly_from_a_seeded_start_to_a_seeded_end() -> None:
    boxes = crop_path(640, 480, (300, 200, 40, 30), 5, seed=0, key="k")
    assert len(boxes) == 5 and boxes == crop_path(640, 480, (300, 200, 40, 30), 5, seed=0, key="k")
    assert boxes != crop_path(640, 480, (300, 200, 40, 30), 5, seed=0, key="other")
    assert boxes != crop_path(640, 480, (300, 200, 40, 30), 5, seed=1, key="k")
    for x, y, w, h in boxes:
        assert 0 <= x and 0 <= y and x + w <= 640 and y + h <= 480
        assert w >= MIN_SCALE * 640 - 1 and abs(w / h - 640 / 480) < 0.02
        assert _holds((x, y, w, h), (300, 200, 40, 30))
    # ease-in-out: the middle step is the largest, the first and last the smallest
    steps = [abs(b[0] - a[0]) + abs(b[2] - a[2]) for a, b in zip(boxes, boxes[1:], strict=False)]
    assert max(steps[1:3]) >= max(steps[0], steps[3])
    assert crop_path(640, 480, (300, 200, 40, 30), 1, seed=0, key="k") == boxes[:1]


def test_a_mask_as_large_as_the_picture_gives_the_whole_picture() -> None:
    assert set(crop_path(64, 48, (0, 0, 64, 48), 5, seed=3, key="k")) == {(0, 0, 64, 48)}


@settings(max_examples=200, deadline=None)
@given(
    width=st.integers(8, 2000),
    height=st.integers(8, 2000),
    data=st.data(),
    frames=st.integers(1, 10),
    seed=st.integers(0, 2**31),
)
def test_every_frame_holds_the_whole_mask_inside_the_picture(width, height, data, frames, seed):
    mx = data.draw(st.integers(0, width - 1))
    my = data.draw(st.integers(0, height - 1))
    mw = data.draw(st.integers(1, width - mx))
    mh = data.draw(st.integers(1, height - my))
    boxes = crop_path(width, height, (mx, my, mw, mh), frames, seed=seed, key="key")
    assert len(boxes) == frames
    for box in boxes:
        x, y, w, h = box
        assert w >= 1 and h >= 1 and x >= 0 and y >= 0 and x + w <= width and y + h <= height
        assert _holds(box, (mx, my, mw, mh))
    fw, fh = frame_size(boxes, None)
    assert fw == min(b[2] for b in boxes) and fh == min(b[3] for b in boxes)


def test_frame_size_never_enlarges_and_honours_max_side() -> None:
    boxes = ((0, 0, 400, 300), (10, 10, 380, 280))
    assert frame_size(boxes, None) == (380, 280)
    assert frame_size(boxes, 190) == (190, 140)
    assert frame_size(boxes, 1000) == (380, 280)


def test_silent_frames_are_a_seeded_onset_or_offset() -> None:
    assert silent_frames(5, 0.0, seed=0, key="k") == ("none", (False,) * 5)
    assert silent_frames(1, 1.0, seed=0, key="k") == ("none", (False,))
    events: Counter[str] = Counter()
    boundaries: Counter[int] = Counter()
    for n in range(400):
        event, silent = silent_frames(5, 1.0, seed=0, key=f"k{n}")
        assert silent == silent_frames(5, 1.0, seed=0, key=f"k{n}")[1]
        assert any(silent) and not all(silent)
        quiet = [t for t, s in enumerate(silent) if s]
        if event == "onset":  # silent first, then sounding to the end
            assert quiet == list(range(len(quiet)))
        else:
            assert event == "offset" and quiet == list(range(5 - len(quiet), 5))
        events[event] += 1
        boundaries[len(quiet)] += 1
    assert 150 < events["onset"] < 250 and set(boundaries) == {1, 2, 3, 4}
    some = [silent_frames(5, 0.3, seed=0, key=f"k{n}")[0] != "none" for n in range(1000)]
    assert 250 < sum(some) < 350
