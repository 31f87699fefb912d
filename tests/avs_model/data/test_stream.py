"""The shard stream: named stages, re-pairing from the audio bank, evaluation passes, bad data."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import webdataset as wds
from PIL import Image

from avs_model.data.audio_bank import AudioRepairing, ClassAudioBuffer
from avs_model.data.augment import AugmentConfig, JointTransform, ResizeConfig, normalize_images
from avs_model.data.stream import (
    StreamError,
    decode_sample,
    eval_pipeline,
    make_loader,
    resolve_shards,
    train_pipeline,
)
from avs_synth import schema
from avs_synth.audio.mixing import mix_sources
from avs_synth.building.config import BuildConfig
from avs_synth.building.splits import SplitFractions
from avs_synth.errors import DataFormatError
from tests.support.build_support import build_sample, sample_corpus
from tests.support.train_support import build_shards


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> Path:
    return build_shards(tmp_path_factory.mktemp("pipeline"))


def _bank_windows(shards: Path) -> dict[str, list[np.ndarray]]:
    out: dict[str, list[np.ndarray]] = {}
    for sample in wds.WebDataset(
        sorted(str(p) for p in shards.glob("bank-*.tar")), shardshuffle=False
    ):
        meta = schema.decode_bank_meta(sample[schema.META])
        out.setdefault(meta.audio_class, []).append(schema.decode_audio(sample[schema.AUDIO])[0])
    return out


def test_resolve_local_and_templated_locations(shards: Path) -> None:
    local = resolve_shards(shards)
    assert [len(local.splits[s]) for s in ("train", "val", "test")] == [6, 3, 3]
    assert len(local.bank) == 4 and local.num_samples("train") == 21
    assert local.data_versions()["samples"] == {"train": 21, "val": 12, "test": 9}
    piped = resolve_shards(f"pipe:cat {shards}/{{name}}")
    assert piped.splits["val"][0] == f"pipe:cat {shards}/val-000000.tar"
    assert piped.bank == [f"pipe:cat {shards}/bank-{i:06d}.tar" for i in range(4)]
    with pytest.raises(FileNotFoundError, match="nowhere: shard folder not found"):
        resolve_shards(shards / "nowhere")
    with pytest.raises(FileNotFoundError, match="manifest"):
        resolve_shards(f"pipe:cat {shards}/missing/{{name}}")


def test_train_stream_batches(shards: Path) -> None:
    pipeline = train_pipeline(
        resolve_shards(shards),
        resize=ResizeConfig(size=32),
        augment=AugmentConfig(hflip=0.5, scale=(0.6, 1.0), color_jitter=0.2),
        batch_size=4,
        batches_per_epoch=3,
        seed=0,
        shuffle_buffer=8,
    )
    batches = list(make_loader(pipeline, num_workers=0))
    assert len(batches) == 3  # with_epoch
    batch = batches[0]
    assert batch.images.shape == (4, 3, 32, 32) and batch.images.dtype == torch.uint8
    assert batch.masks.shape == (4, 32, 32) and set(batch.masks.unique().tolist()) <= {0, 1}
    assert batch.valid.all() and batch.audio.shape == (4, 1, 96, 64)
    assert torch.isfinite(batch.audio).all() and batch.gt_masks is None
    assert set(sum((b.categories for b in batches), [])) <= {"dog barking", "cat meowing"}
    again = list(
        make_loader(
            train_pipeline(
                resolve_shards(shards),
                resize=ResizeConfig(size=32),
                augment=AugmentConfig(),
                batch_size=4,
                batches_per_epoch=3,
                seed=0,
                shuffle_buffer=8,
            ),
            num_workers=0,
        )
    )
    assert [b.keys for b in again] == [b.keys for b in batches]  # seeded order
    images = normalize_images(batch.images)
    assert images.dtype == torch.float32 and abs(float(images.mean())) < 3


@pytest.mark.parametrize("by_class", [True, False], ids=["class-streams", "mixed-stream"])
def test_repairing_draws_fresh_windows_of_the_sample_class(shards: Path, by_class: bool) -> None:
    bank = _bank_windows(shards)
    shard_set = resolve_shards(shards)
    assert set(shard_set.bank_classes.values()) == set(bank)
    stage = AudioRepairing(
        bank_urls=shard_set.bank,
        bank_classes=shard_set.bank_classes if by_class else None,
        capacity=4,
        refill_per_sample=1,
        num_streams=2,
        seed=0,
    )
    own = np.zeros(16000, dtype=np.float32)
    samples = [{"audio_class": c, "audio": own} for c in ["dog barking", "cat meowing"] * 6]
    samples.append({"audio_class": "lion roaring", "audio": own})
    out = list(stage(iter(samples)))
    for sample in out[:-1]:
        assert any(np.array_equal(sample["audio"], w) for w in bank[sample["audio_class"]])
    dog = [s["audio"] for s in out[:-1] if s["audio_class"] == "dog barking"]
    assert len({w.tobytes() for w in dog}) >= 3  # not one window over and over
    assert out[-1]["audio"] is own  # a class missing from the bank keeps its own audio
    assert stage.stats.own == 1 and stage.stats.fresh + stage.stats.reused == 12
    assert stage.stats.missing_classes == {"lion roaring"}
    if by_class:
        assert stage.stats.fresh == 12 and stage.stats.pulled <= 2 * 4 + 10 * 1


def test_class_buffer_replaces_and_pops() -> None:
    buffer = ClassAudioBuffer(capacity=2, rng=random.Random(0))
    for value in range(5):
        buffer.add("a", np.full(3, value))
    assert buffer.count("a") == 2 and len(buffer) == 2
    drawn = {int(buffer.draw("a")[0]), int(buffer.draw("a")[0])}
    assert len(drawn) == 2 and buffer.draw("a") is None and buffer.draw("b") is None


def test_eval_pass_reads_every_sample_once_at_gt_resolution(shards: Path) -> None:
    urls = resolve_shards(shards).urls("val")
    pipeline = eval_pipeline(
        urls, resize=ResizeConfig(mode="keep_aspect", size=40, pad_multiple=16), batch_size=5
    )
    batches = list(make_loader(pipeline, num_workers=2))
    keys = sum((b.keys for b in batches), [])
    assert len(keys) == 12 and len(set(keys)) == 12
    batch = batches[0]
    assert batch.images.shape[-2:] == (32, 48)  # 30 x 40 content padded to multiples of 16
    assert batch.content_sizes[0] == (30, 40)
    assert all(g.shape == (48, 64) and g.dtype == torch.bool for g in batch.gt_masks)
    assert (batch.images[:, :, 30:, :] == 0).all() and (batch.masks[:, 30:, :] == 0).all()


def test_bad_shards_and_samples_are_skipped(
    shards: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    garbage = tmp_path / "val-000009.tar"
    garbage.write_bytes(b"this is not a tar file" * 40)
    broken = tmp_path / "val-000008.tar"
    shutil.copy(shards / "val-000000.tar", broken)
    data = bytearray(broken.read_bytes())
    start = data.find(b"\xff\xd8")  # the first JPEG's bytes
    data[start : start + 400] = b"\0" * 400
    broken.write_bytes(bytes(data))
    urls = [str(garbage), str(broken), *resolve_shards(shards).urls("val")[1:]]
    pipeline = eval_pipeline(urls, resize=ResizeConfig(size=32), batch_size=4)
    keys = sum((b.keys for b in make_loader(pipeline, num_workers=0)), [])
    assert len(keys) == 11 and "coco-22-a001" not in keys  # only the broken picture is lost
    assert "skipped a bad sample or shard" in caplog.text
    assert "val-000008.tar[coco-22-a001]: cannot decode" in caplog.text
    assert "val-000009.tar" in caplog.text


def test_audio_kept_as_flac_is_decoded_only_when_not_re_paired(shards: Path) -> None:
    from avs_model.data.stream import AudioExample, SkipHandler, decode_sample

    url = resolve_shards(shards).urls("train")[0]
    sample = next(iter(wds.WebDataset(url, shardshuffle=False)))
    lazy = decode_sample(sample, decode_audio=False)
    assert lazy["audio"] is None and lazy["audio_flac"] == sample[schema.AUDIO]
    eager = decode_sample(sample)
    broken = dict(lazy, audio_flac=b"fLaC not really", key="k2", where="shard.tar[k2]")
    handler = SkipHandler()
    out = list(AudioExample(random_offset=False, handler=handler)(iter([dict(lazy), broken])))
    assert [s["key"] for s in out] == [lazy["key"]] and handler.skipped == 1  # counted, skipped
    reference = next(AudioExample(random_offset=False)(iter([eager])))["audio"]
    torch.testing.assert_close(out[0]["audio"], reference)  # the same log-mel as eager decoding


def test_joint_transform_keeps_mask_on_the_object() -> None:
    pixels = np.zeros((40, 60, 3), dtype=np.uint8)
    mask = np.zeros((40, 60), dtype=bool)
    mask[5:20, 2:20] = True
    pixels[mask] = (255, 0, 0)
    transform = JointTransform(
        resize=ResizeConfig(size=30), augment=AugmentConfig(hflip=1.0, scale=(0.7, 0.9))
    )
    for seed in range(5):
        frame = transform(Image.fromarray(pixels), mask, random.Random(seed))
        red = frame.image[0].float() > 128
        agree = (red == frame.mask.bool()).float().mean()
        assert frame.image.shape == (3, 30, 30) and agree > 0.95
        if frame.mask.any():
            assert frame.mask.nonzero()[:, 1].float().mean() > 15  # flipped to the right half


def test_needed_size_keeps_every_output_pixel_of_the_smallest_crop() -> None:
    square = JointTransform(resize=ResizeConfig(size=224), augment=AugmentConfig(scale=(0.64, 1)))
    assert square.needed_size(1024, 576) == (498, 280)  # 224 / 0.8 on the short side
    assert square.needed_size(200, 150) == (200, 150)  # never larger than the picture
    aspect = JointTransform(resize=ResizeConfig(mode="keep_aspect", size=640))
    assert aspect.needed_size(2048, 1536) == (640, 480)
    assert aspect.needed_size(640, 480) == (640, 480)


@pytest.mark.parametrize("augment", [None, AugmentConfig(hflip=0.5, scale=(0.6, 1.0))])
def test_transform_of_a_reduced_copy_matches_the_full_picture(augment) -> None:
    yy, xx = np.mgrid[0:480, 0:640]
    pixels = np.stack([xx * 255 // 640, yy * 255 // 480, (xx + yy) % 256], -1).astype(np.uint8)
    mask = (xx - 300) ** 2 + (yy - 200) ** 2 < 120**2
    data = schema.encode_image(Image.fromarray(pixels), quality=98)
    transform = JointTransform(resize=ResizeConfig(size=96), augment=augment)
    full, full_size = schema.decode_image_reduced(data, None)
    reduced, _ = schema.decode_image_reduced(data, transform.needed_size)
    assert reduced.width < full.width  # the decode really was reduced
    for seed in range(4):
        a = transform(full, mask, random.Random(seed), original_size=full_size)
        b = transform(reduced, mask, random.Random(seed), original_size=full_size)
        assert a.image.shape == b.image.shape == (3, 96, 96)
        assert (a.image[:2].float() - b.image[:2].float()).abs().mean() < 4  # smooth channels
        assert (a.mask != b.mask).float().mean() < 0.01
        if augment is None:
            assert b.content_size == (96, 96) and b.original_size == (480, 640)


def test_color_jitter_follows_pil_image_enhance() -> None:
    from PIL import ImageEnhance

    from avs_model.data.augment import _color_jitter

    rng = np.random.default_rng(1)
    pixels = (rng.random((32, 48, 3)) * 255).astype(np.uint8)
    for seed in range(4):
        got = _color_jitter(torch.from_numpy(pixels).permute(2, 0, 1), 0.4, random.Random(seed))
        draw = random.Random(seed)
        image = Image.fromarray(pixels)
        for enhancer in (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color):
            image = enhancer(image).enhance(draw.uniform(0.6, 1.4))
        expected = torch.from_numpy(np.array(image)).permute(2, 0, 1)
        diff = (got.int() - expected.int()).abs()
        assert diff.max() <= 1 and (diff > 0).float().mean() < 0.01  # equal here, bar rounding


def _corrupt_copy(shards: Path, target: Path, pattern: str) -> None:
    """``target``: a copy of ``shards`` whose ``pattern`` shards are all garbage."""
    shutil.copytree(shards, target)
    for path in target.glob(pattern):
        path.write_bytes(b"not a tar file" * 64)


@pytest.mark.parametrize("broken", ["train-*.tar", "bank-*.tar"])
@pytest.mark.parametrize("workers", [0, 1])
def test_a_stream_of_only_broken_shards_gives_up_naming_them(
    shards: Path, tmp_path: Path, broken: str, workers: int
) -> None:
    _corrupt_copy(shards, tmp_path / "s", broken)
    pipeline = train_pipeline(
        resolve_shards(tmp_path / "s"),
        resize=ResizeConfig(size=32),
        augment=AugmentConfig(),
        batch_size=2,
        batches_per_epoch=5,
        seed=0,
        shuffle_buffer=4,
        max_consecutive_failures=20,
    )
    what = "train shards" if broken.startswith("train") else "audio-bank shards"
    with pytest.raises(StreamError) as caught:
        next(iter(make_loader(pipeline, num_workers=workers)))
    message = str(caught.value)
    assert message.startswith(f"gave up reading the {what} [")
    assert "20 samples or shards in a row could not be read" in message
    assert "\n" not in message and "Traceback" not in message  # one line, even from a worker


def test_manifest_shard_names_must_be_shard_names(shards: Path, tmp_path: Path) -> None:
    folder = tmp_path / "remote"
    shutil.copytree(shards, folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["splits"]["train"]["shards"][0]["name"] = "train-000000.tar; touch INJECTED"
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DataFormatError, match="is not .*NNNNNN.tar: refused"):
        resolve_shards(f"pipe:cat {folder}/{{name}}")
    assert not (Path.cwd() / "INJECTED").exists() and not (folder / "INJECTED").exists()
    manifest["splits"]["train"]["shards"][0]["name"] = "../../etc/passwd"
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DataFormatError):
        resolve_shards(f"file://{folder}/{{name}}")
    with pytest.raises(DataFormatError):  # a local folder's manifest is checked too
        resolve_shards(folder)
    # a local folder ignores files that are not shard names
    shutil.copy(shards / "manifest.json", folder / "manifest.json")
    (folder / "train-0001; rm x.tar").write_bytes(b"")
    assert all(
        schema.SHARD_NAME.fullmatch(Path(u).name) for u in resolve_shards(folder).urls("train")
    )


def test_negative_kinds_reach_the_batches_and_class_less_audio_is_kept(tmp_path: Path) -> None:
    shards = build_shards(tmp_path, negatives=("absent", "silence", "noise"))
    shard_set = resolve_shards(shards)
    kinds: dict[str, str] = {}
    for split in ("train", "val", "test"):
        pipeline = eval_pipeline(shard_set.urls(split), resize=ResizeConfig(size=32), batch_size=3)
        for batch in make_loader(pipeline, num_workers=0):
            assert len(batch.negative_kinds) == len(batch)
            for key, kind, gt in zip(batch.keys, batch.negative_kinds, batch.gt_masks, strict=True):
                assert (kind == "") == bool(gt.any())
                kinds[key] = kind
    assert set(kinds.values()) == {"", "absent", "silence", "noise"}
    assert all(
        k.endswith(("-silence", "-noise")) == (v in ("silence", "noise")) for k, v in kinds.items()
    )
    stage = AudioRepairing(
        bank_urls=shard_set.bank, bank_classes=shard_set.bank_classes, capacity=2, seed=0
    )
    own = np.zeros(16000, dtype=np.float32)
    samples = [
        {"audio_class": "(silence)", "negative_kind": "silence", "audio": own},
        {"audio_class": "(noise)", "negative_kind": "noise", "audio": own},
        {"audio_class": "dog barking", "negative_kind": "absent", "audio": own},
        {"audio_class": "dog barking", "negative_kind": "", "num_sources": 2, "audio": own},
    ]
    out = list(stage(iter(samples)))
    assert out[0]["audio"] is own and out[1]["audio"] is own
    assert out[2]["audio"] is not own  # an absent negative hears a fresh window of its class
    assert out[3]["audio"] is own  # a multi-source mix is kept
    assert stage.stats.classless == 2 and stage.stats.mixed == 1
    assert stage.stats.missing_classes == set()


def test_remixing_mixes_fresh_windows_of_each_source_at_its_gain(shards: Path) -> None:
    bank = _bank_windows(shards)
    shard_set = resolve_shards(shards)
    own = np.zeros(16000, dtype=np.float32)
    sources = (("dog barking", 0.0), ("cat meowing", -4.5))
    samples = [
        {"audio_class": "dog barking", "num_sources": 2, "sources": sources, "audio": own},
        {
            "audio_class": "dog barking",
            "num_sources": 2,
            "sources": (("dog barking", 0.0), ("lion roaring", -1.0)),
            "audio": own,
        },
    ]
    stage = AudioRepairing(
        bank_urls=shard_set.bank, bank_classes=shard_set.bank_classes, capacity=2, remix=True
    )
    out = list(stage(iter(samples)))
    mixes = [
        mix_sources([dog, cat], [0.0, -4.5])
        for dog in bank["dog barking"]
        for cat in bank["cat meowing"]
    ]
    assert out[0]["audio"] is not own
    assert any(np.array_equal(out[0]["audio"], mix) for mix in mixes)
    assert out[1]["audio"] is own  # a source class missing from the bank: the own mix is kept
    assert stage.stats.remixed == 1 and stage.stats.mixed == 1


def test_remixing_a_real_multi_source_build(tmp_path_factory) -> None:
    corpus = sample_corpus(tmp_path_factory)
    out = tmp_path_factory.mktemp("remix") / "out"
    config = BuildConfig(
        fractions=SplitFractions(train=0.6, val=0.2, test=0.2),
        min_mask_area=0.0,
        max_per_picture=0,
        sources=((2, 1.0),),
        shard_size=6,
        bank_clips_per_shard=4,
    )
    build_sample(corpus, config, out)
    shard_set = resolve_shards(out)
    decoded = [
        decode_sample(sample)
        for sample in wds.WebDataset(shard_set.urls("train"), shardshuffle=False)
    ]
    mixes = [s for s in decoded if s["num_sources"] == 2]
    assert mixes and all(len(s["sources"]) == 2 for s in mixes)
    assert all(s["sources"][0][0] == s["audio_class"] for s in mixes)
    stage = AudioRepairing(
        bank_urls=shard_set.bank, bank_classes=shard_set.bank_classes, remix=True
    )
    before = [s["audio"] for s in mixes]
    remixed = list(stage(iter(mixes)))
    assert stage.stats.remixed == len(mixes) and stage.stats.mixed == 0
    assert all(
        a.shape == b["audio"].shape and not np.array_equal(a, b["audio"])
        for a, b in zip(before, remixed, strict=True)
    )
    with pytest.raises(ValueError, match="set repair_audio too"):
        train_pipeline(
            shard_set,
            resize=ResizeConfig(size=32),
            augment=AugmentConfig(),
            batch_size=2,
            batches_per_epoch=1,
            seed=0,
            repair_audio=False,
            remix_audio=True,
        )
