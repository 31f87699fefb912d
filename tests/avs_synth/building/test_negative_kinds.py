"""``--negatives``: kinds of negative triplets on the sample corpus, recorded and reproducible."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import webdataset as wds
from typer.testing import CliRunner

from avs_synth import schema
from avs_synth.audio.negative_audio import level_dbfs
from avs_synth.building.config import BuildConfig
from avs_synth.building.inspect_shards import describe, inspect_shards, write_inspect_page
from avs_synth.building.splits import SplitFractions
from avs_synth.matching.vocabulary import shipped_vggsound_groups
from avs_synth_cli.synth import app
from tests.support.build_support import build_sample, built_fixture

KINDS = ("absent", "silence", "noise", "offscreen")
CONFIG = BuildConfig(
    fractions=SplitFractions(train=0.6, val=0.2, test=0.2),
    min_mask_area=0.0,
    max_per_picture=0,
    negative_ratio=1.0,
    negatives=KINDS,
    shard_size=6,
    bank_clips_per_shard=4,
)


built = built_fixture(CONFIG, "kinds")


def _samples(out: Path) -> list[schema.DecodedTriplet]:
    urls = [str(p) for p in sorted(out.glob("t*.tar")) + sorted(out.glob("val-*.tar"))]
    return [schema.decode_triplet(s) for s in wds.WebDataset(urls, shardshuffle=False)]


def _digests(out: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(out.glob("*.tar"))}


def test_every_kind_is_made_recorded_and_counted(built: Path) -> None:
    manifest = json.loads((built / "manifest.json").read_text())
    assert manifest["config"]["negatives"] == list(KINDS)
    samples = _samples(built)
    negatives = [s for s in samples if s.meta.negative]
    assert {s.meta.negative_kind for s in negatives} == set(KINDS)
    for split, counts in manifest["splits"].items():
        mine = [s for s in negatives if s.meta.split == split]
        assert counts["per_kind"] == {k: sum(s.meta.kind == k for s in mine) for k in KINDS}
        # an equal share of negative_ratio x positives per kind, when the pools allow it
        share = round(counts["positives"] / len(KINDS))
        assert counts["per_kind"]["silence"] == share and counts["per_kind"]["noise"] == share
    for s in negatives:
        assert not s.mask.any() and s.meta.area == 0 and s.meta.bbox is None
    for s in (s for s in samples if not s.meta.negative):
        assert s.meta.negative_kind is None and s.meta.kind == "positive"


def test_class_less_negatives_carry_synthesized_audio(built: Path) -> None:
    for s in _samples(built):
        kind = s.meta.negative_kind
        if kind not in ("silence", "noise"):
            continue
        assert s.meta.audio_class == f"({kind})" and s.meta.audio.vggsound_id == ""
        assert s.meta.categories == ()
        level = level_dbfs(s.audio)
        assert s.meta.audio.rms_dbfs == pytest.approx(level, abs=0.5)
        if kind == "silence":
            assert level < -55 and s.meta.audio.policy in ("synthetic-zeros", "synthetic-floor")
        else:
            assert -31 < level < -11 and s.meta.audio.policy in (
                "synthetic-white",
                "synthetic-pink",
            )


def test_absent_and_offscreen_follow_the_vggsound_groups(built: Path) -> None:
    groups = shipped_vggsound_groups()
    samples = _samples(built)
    positives_by_picture: dict[str, set[str]] = {}
    for s in samples:
        if not s.meta.negative:
            positives_by_picture.setdefault(s.meta.image_id, set()).add(s.meta.audio_class)
    checked = 0
    for s in samples:
        if s.meta.negative_kind not in ("absent", "offscreen"):
            continue
        assert s.meta.audio.vggsound_id and s.meta.audio_class == s.meta.audio.label
        held = {groups.get(c, "others") for c in positives_by_picture.get(s.meta.image_id, ())}
        mine = groups.get(s.meta.audio_class, "others")
        if s.meta.negative_kind == "offscreen":
            assert mine not in held  # no sounding picture's class shares its group
        elif held:
            checked += mine in held
    assert checked > 0


def test_kinds_are_byte_identical_across_workers(built: Path, corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "two"
    build_sample(corpus, CONFIG, out, workers=2)
    assert _digests(out) == _digests(built)


def test_a_build_without_kinds_records_none(corpus: Path, tmp_path: Path) -> None:
    config = BuildConfig(
        fractions=SplitFractions(train=0.6, val=0.2, test=0.2),
        min_mask_area=0.0,
        negative_ratio=0.5,
        shard_size=50,
        audio_bank=False,
    )
    out = tmp_path / "plain"
    build_sample(corpus, config, out)
    manifest = json.loads((out / "manifest.json").read_text())
    assert "negatives" not in manifest["config"]
    assert all("per_kind" not in counts for counts in manifest["splits"].values())
    samples = _samples(out)
    assert any(s.meta.negative for s in samples)
    for s in samples:
        raw = json.loads(schema.encode_meta(s.meta))
        assert "negative_kind" not in raw
        assert s.meta.kind == ("absent" if s.meta.negative else "positive")


def test_config_and_cli_refuse_bad_kinds(corpus: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="distinct kinds"):
        BuildConfig(negative_ratio=1.0, negatives=("silence", "quiet"))
    with pytest.raises(ValueError, match="distinct kinds"):
        BuildConfig(negative_ratio=1.0, negatives=("noise", "noise"))
    with pytest.raises(ValueError, match="negative_ratio > 0"):
        BuildConfig(negatives=("noise",))
    result = CliRunner().invoke(
        app,
        [
            "build",
            "--corpus",
            str(corpus / "corpus"),
            "--out",
            str(tmp_path / "x"),
            "--negative-ratio",
            "1",
            "--negatives",
            "silence,loud",
        ],
    )
    assert result.exit_code != 0 and "distinct kinds" in result.output


def test_decoded_metadata_without_the_optional_field_reads_as_absent() -> None:
    d = {
        "key": "k",
        "split": "test",
        "audio_class": "dog barking",
        "negative": True,
        "mask_mode": "semantic",
        "categories": [],
        "source": "lvis",
        "image_id": "1",
        "image_file": "1.jpg",
        "width": 4,
        "height": 4,
        "original_width": 4,
        "original_height": 4,
        "image_reencoded": False,
        "instance_ids": [],
        "instances": [],
        "bbox": None,
        "area": 0,
        "area_fraction": 0.0,
        "audio": {
            "vggsound_id": "a_000000",
            "youtube_id": "a",
            "start_seconds": 0,
            "label": "dog barking",
            "vggsound_split": "test",
            "window_start_s": 0.0,
            "window_s": 1.0,
            "sample_rate": 16000,
            "num_samples": 16000,
            "policy": "fixed",
            "rms_dbfs": -20.0,
        },
        "schema_version": 1,
    }
    decoded = schema.decode_triplet_meta(json.dumps(d).encode())
    assert decoded.negative_kind is None and decoded.kind == "absent"
    assert np.isclose(decoded.audio.rms_dbfs, -20.0)
    assert json.loads(schema.encode_meta(decoded)) == d | {"attribution": None, "license": None}


def test_inspect_shows_the_kinds(built: Path, tmp_path: Path) -> None:
    found = inspect_shards([built], num_samples=1000)
    lines = describe(found)
    assert any("negatives: absent " in line and "silence" in line for line in lines)
    silence = [line for line in lines if "(negative: silence)" in line]
    assert silence and all(line.endswith("synthesized") for line in silence)
    assert any("(negative: offscreen)" in line for line in lines)
    write_inspect_page([built], tmp_path / "page", per_split=100)
    html = (tmp_path / "page" / "index.html").read_text()
    for text in ("negative: noise", "yes (silence)", "synthesized (noise), no clip", "offscreen"):
        assert text in html
