"""The shard schema: every encoder round-trips through its decoder, bytes are deterministic."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from avs_synth import schema
from avs_synth.schema import (
    AudioWindowMeta,
    BankWindowMeta,
    InstanceRef,
    TripletMeta,
    VisualCategoryRef,
)


def _audio_meta() -> AudioWindowMeta:
    return AudioWindowMeta(
        vggsound_id="a-b_c_000030",
        youtube_id="a-b_c",
        start_seconds=30,
        label="male speech, man speaking",
        vggsound_split="test",
        window_start_s=2.0,
        window_s=1.0,
        sample_rate=16000,
        num_samples=16000,
        policy="nonsilent",
        rms_dbfs=-21.5,
    )


def _triplet_meta() -> TripletMeta:
    return TripletMeta(
        key="lvis-42-a003",
        split="test",
        audio_class="male speech, man speaking",
        negative=False,
        mask_mode="semantic",
        categories=(VisualCategoryRef(source="lvis", id="793", name="man"),),
        source="lvis",
        image_id="42",
        image_file="000000000042.jpg",
        width=64,
        height=48,
        original_width=64,
        original_height=48,
        image_reencoded=False,
        instance_ids=("7", "9"),
        instances=(
            InstanceRef(id="7", category_id="793", bbox=(1.0, 2.0, 3.0, 4.0), area=10.0),
            InstanceRef(id="9", category_id="793", bbox=(5.0, 6.0, 7.0, 8.0), area=20.5),
        ),
        bbox=(1, 2, 11, 12),
        area=30,
        area_fraction=0.009766,
        audio=_audio_meta(),
        license="CC BY 2.0",
        attribution="https://flickr.example/42",
    )


def test_triplet_meta_round_trip_and_canonical_json():
    meta = _triplet_meta()
    data = schema.encode_meta(meta)
    assert schema.decode_triplet_meta(data) == meta
    assert data.endswith(b"\n") and data == schema.encode_meta(schema.decode_triplet_meta(data))
    text = data.decode()
    assert text.index('"area"') < text.index('"audio"') < text.index('"width"')  # sorted keys
    assert meta.category == "man"


def test_bank_meta_round_trip():
    meta = BankWindowMeta(
        key="a-b_c_000030-s000032000", audio_class="dog barking", audio=_audio_meta()
    )
    assert schema.decode_bank_meta(schema.encode_meta(meta)) == meta


def test_mask_png_is_one_bit_and_round_trips():
    rng = np.random.default_rng(0)
    mask = rng.random((37, 53)) > 0.6
    data = schema.encode_mask(mask)
    with Image.open(io.BytesIO(data)) as image:
        assert image.mode == "1" and image.size == (53, 37) and image.format == "PNG"
    decoded = schema.decode_mask(data)
    assert decoded.dtype == bool and np.array_equal(decoded, mask)
    assert schema.encode_mask(mask) == data


def test_mask_must_be_2d():
    with pytest.raises(ValueError, match="mask must be"):
        schema.encode_mask(np.zeros((2, 3, 1), dtype=bool))


def test_audio_flac_round_trip_keeps_length_and_values():
    t = np.arange(16000) / 16000.0
    samples = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    data = schema.encode_audio(samples, 16000)
    assert data[:4] == b"fLaC"
    info = sf.info(io.BytesIO(data))
    assert info.subtype == "PCM_16" and info.channels == 1
    decoded, rate = schema.decode_audio(data)
    assert rate == 16000 and decoded.shape == (16000,) and decoded.dtype == np.float32
    assert np.max(np.abs(decoded - samples)) <= 1 / 32768 + 1e-7
    assert schema.encode_audio(samples, 16000) == data


def test_image_decode_keeps_raw_pixel_grid():
    image = Image.new("RGB", (20, 10), (200, 10, 10))
    data = schema.encode_image(image)
    decoded = schema.decode_image(data)
    assert decoded.size == (20, 10) and decoded.mode == "RGB"
    assert abs(int(np.asarray(decoded)[5, 5, 0]) - 200) <= 3


def test_reduced_decode_picks_the_coarsest_dct_scale_that_is_large_enough():
    rng = np.random.default_rng(0)
    pixels = (rng.random((480, 640, 3)) * 255).astype(np.uint8)
    data = schema.encode_image(Image.fromarray(pixels))
    image, full = schema.decode_image_reduced(data, lambda w, h: (w // 3, h // 3))
    assert full == (480, 640) and image.size == (320, 240) and image.mode == "RGB"  # scale 1/2
    image, _ = schema.decode_image_reduced(data, lambda w, h: (80, 60))
    assert image.size == (80, 60)  # 1/8
    image, _ = schema.decode_image_reduced(data, lambda w, h: (w, h))
    assert image.size == (640, 480)
    # the reduced decode is the picture at that scale, not another picture
    small, _ = schema.decode_image_reduced(data, lambda w, h: (160, 120))
    reference = Image.fromarray(pixels).resize((160, 120), Image.BOX)
    diff = np.abs(np.asarray(small, dtype=float) - np.asarray(reference, dtype=float)).mean()
    assert diff < 8
    # a grey JPEG comes back RGB; PNG pictures are decoded at full size whatever is asked
    grey = io.BytesIO()
    Image.fromarray(pixels[..., 0]).save(grey, format="JPEG")
    assert schema.decode_image_reduced(grey.getvalue(), None)[0].mode == "RGB"
    png = io.BytesIO()
    Image.fromarray(pixels).save(png, format="PNG")
    image, full = schema.decode_image_reduced(png.getvalue(), lambda w, h: (80, 60))
    assert image.size == (640, 480) and full == (480, 640)


def test_decode_triplet_from_members():
    meta = _triplet_meta()
    mask = np.zeros((48, 64), dtype=bool)
    mask[2:14, 1:12] = True
    sample = {
        schema.KEY: meta.key,
        schema.IMAGE: schema.encode_image(Image.new("RGB", (64, 48))),
        schema.MASK: schema.encode_mask(mask),
        schema.AUDIO: schema.encode_audio(np.zeros(16000, dtype=np.float32)),
        schema.META: schema.encode_meta(meta),
    }
    triplet = schema.decode_triplet(sample)
    assert triplet.key == meta.key and triplet.meta == meta
    assert np.array_equal(triplet.mask, mask) and triplet.audio.shape == (16000,)
    del sample[schema.AUDIO]
    with pytest.raises(KeyError, match="flac"):
        schema.decode_triplet(sample)


def test_shard_names_and_safe_keys():
    assert schema.shard_name("train", 12) == "train-000012.tar"
    assert schema.shard_name("bank", 0) == "bank-000000.tar"
    with pytest.raises(ValueError):
        schema.shard_name("../x", 0)
    assert schema.safe_key_part("../../etc/pass.wd") == "______etc_pass_wd"
    assert schema.safe_key_part("a-B_9") == "a-B_9"
