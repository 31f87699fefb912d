"""AVSBench as a Dataset: fraction selection, category filters, frames, masks and audio."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from avs_model.data.augment import AugmentConfig, ResizeConfig
from avs_model.data.avsbench_dataset import (
    AVSBenchDataset,
    filter_categories,
    open_set_split,
    select_fraction,
)
from avs_model.training.finetune import EpochSampler, training_videos
from avs_synth.audio.decode import load_audio
from avs_synth.audio.logmel import waveform_to_examples
from avs_synth.records import AVSBenchVideo
from avs_synth.sources.avsbench import AVSBenchReader, load_log_mel
from tests.support.train_support import S4_CATEGORIES, write_mini_avsbench


@pytest.fixture(scope="module")
def bench(tmp_path_factory) -> Path:
    return write_mini_avsbench(tmp_path_factory.mktemp("avsbench"))


def _videos(counts: dict[str, int]) -> list[AVSBenchVideo]:
    return [
        AVSBenchVideo(
            subset="s4",
            name=f"{c}{i:03d}",
            split="train",
            category=c,
            frame_paths=(),
            mask_paths=(),
        )
        for c, n in counts.items()
        for i in range(n)
    ]


def test_fraction_keeps_rounded_count_per_category_at_least_one() -> None:
    videos = _videos({"a": 138, "b": 63, "c": 3})
    kept = select_fraction(videos, 0.1, seed=0)
    per = {c: sum(v.category == c for v in kept) for c in "abc"}
    assert per == {"a": 14, "b": 6, "c": 1}  # round(13.8), round(6.3), max(1, round(0.3))
    assert [v for v in videos if v in kept] == kept  # input order kept


def test_fraction_is_seeded_nested_and_order_independent() -> None:
    videos = _videos({"a": 50, "b": 20})
    ten = {v.name for v in select_fraction(videos, 0.1, seed=0)}
    thirty = {v.name for v in select_fraction(videos, 0.3, seed=0)}
    assert ten < thirty
    assert ten == {v.name for v in select_fraction(list(reversed(videos)), 0.1, seed=0)}
    assert ten != {v.name for v in select_fraction(videos, 0.1, seed=1)}
    assert len(select_fraction(videos, 1.0)) == 70
    with pytest.raises(ValueError, match="zero-shot"):
        select_fraction(videos, 0.0)


def test_open_set_split_covers_the_23_s4_categories() -> None:
    seen, unseen = open_set_split()
    assert len(seen) == 11 and len(unseen) == 12
    assert not set(seen) & set(unseen)
    assert "dog_barking" in seen + unseen and "typing_on_computer_keyboard" in seen + unseen


def test_category_filters(bench: Path) -> None:
    reader = AVSBenchReader(root=bench, subset="s4")
    train = reader.videos("train")
    only = filter_categories(train, include=["helicopter"], known=reader.categories)
    assert {v.category for v in only} == {"helicopter"} and len(only) == 4
    rest = filter_categories(train, exclude=["helicopter"], known=reader.categories)
    assert {v.category for v in rest} == {"dog_barking", "cat_meowing"}
    with pytest.raises(ValueError, match="unknown categories.*'helicoptr'"):
        filter_categories(train, include=["helicoptr"], known=reader.categories)
    chosen = training_videos(
        reader, fraction=0.5, fraction_seed=0, exclude_categories=["dog_barking"]
    )
    assert len(chosen) == 4 and {v.category for v in chosen} == {"helicopter", "cat_meowing"}


def test_s4_train_gives_the_annotated_frame_and_test_all_five(bench: Path) -> None:
    reader = AVSBenchReader(root=bench, subset="s4")
    train = AVSBenchDataset(
        videos=reader.videos("train"), resize=ResizeConfig(size=16), frames="annotated"
    )
    frames = train[0]
    assert len(frames) == 1
    frame = frames[0]
    assert frame.image.shape == (3, 16, 16) and frame.image.dtype == torch.uint8
    assert frame.mask is not None and set(frame.mask.unique().tolist()) == {0, 1}
    assert frame.audio.shape == (1, 96, 64) and frame.category in S4_CATEGORIES
    assert torch.equal(frame.audio, load_log_mel(reader.videos("train")[0])[0])
    every = AVSBenchDataset(
        videos=reader.videos("train"), resize=ResizeConfig(size=16), frames="all"
    )
    assert [f.mask is None for f in every[0]] == [False, True, True, True, True]
    test = AVSBenchDataset(
        videos=reader.videos("test"), resize=ResizeConfig(size=16), frames="all", with_gt=True
    )
    frames = test[1]
    assert len(frames) == 5 and all(f.gt_mask.shape == (32, 32) for f in frames)
    assert [f.key for f in frames] == [f"{reader.videos('test')[1].name}_{k}" for k in range(1, 6)]
    # the target mask follows the frame resize; the square is where the coloured pixels are
    colour = frames[0].image.float().std(0) > 30
    assert (frames[0].mask.bool() == colour).float().mean() > 0.9


def test_audio_from_wav_matches_the_frontend(bench: Path) -> None:
    reader = AVSBenchReader(root=bench, subset="s4")
    video = replace(reader.videos("val")[0], log_mel_path=None)
    dataset = AVSBenchDataset(videos=[video], resize=ResizeConfig(size=16), audio="auto")
    expected = waveform_to_examples(load_audio(video.wav_path), num_examples=5)
    assert torch.allclose(dataset.load_audio(video), expected)
    missing = replace(video, wav_path=None)
    with pytest.raises(FileNotFoundError, match=f"{video.name}.*no audio_wav"):
        AVSBenchDataset(videos=[missing], resize=ResizeConfig(size=16)).load_audio(missing)


def test_augmentation_is_shared_by_the_frames_of_a_video(bench: Path) -> None:
    reader = AVSBenchReader(root=bench, subset="ms3")
    dataset = AVSBenchDataset(
        videos=reader.videos("train"),
        resize=ResizeConfig(size=16),
        augment=AugmentConfig(hflip=0.5, scale=(0.5, 1.0)),
        seed=3,
    )
    frames = dataset[0]
    assert len(frames) == 5 and all(f.mask is not None for f in frames)  # MS3: all annotated
    dataset.set_epoch(1)
    again = dataset[0]
    assert any(not torch.equal(a.image, b.image) for a, b in zip(frames, again, strict=True))


def test_epoch_sampler_splits_ranks_and_resumes() -> None:
    full = list(EpochSampler(length=10, seed=0, epoch=2))
    assert sorted(full) == list(range(10))
    assert full != list(EpochSampler(length=10, seed=0, epoch=3))
    ranks = [list(EpochSampler(length=10, seed=0, epoch=2, rank=r, world_size=3)) for r in range(3)]
    assert [len(r) for r in ranks] == [4, 4, 4] and set(sum(ranks, [])) == set(range(10))
    assert list(EpochSampler(length=10, seed=0, epoch=2, start=4)) == full[4:]


def test_scoring_masks_are_read_as_the_official_loader_and_counted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import shutil

    import numpy as np
    from PIL import Image

    root = tmp_path / "bench"
    shutil.copytree(write_mini_avsbench(tmp_path / "src"), root)
    video = AVSBenchReader(root=root, subset="s4").videos("test")[0]
    grey = Image.open(video.mask_paths[0]).convert("L")
    grey_array = np.where(np.asarray(grey) > 0, 128, 0).astype(np.uint8)  # a grey sounding object
    Image.fromarray(grey_array).save(video.mask_paths[0])
    with caplog.at_level("INFO"):
        dataset = AVSBenchDataset(videos=[video], resize=ResizeConfig(size=16), with_gt=True)
    assert "1 of 5 ground-truth masks hold values other than 0 and 255" in caplog.text
    gt = dataset[0][0].gt_mask
    expected = np.array(Image.open(video.mask_paths[0]).convert("1"), dtype=bool)  # dithered
    assert gt is not None and np.array_equal(gt.numpy(), expected)
    assert 0 < gt.sum() < (grey_array > 0).sum()
