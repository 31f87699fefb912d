"""``--noise-from`` / ``--silence-from``: silence and noise negatives cut from real clips (ambience
classes without a visual match; near-silent stretches found in the worker), recorded and
reproducible."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import webdataset as wds
from typer.testing import CliRunner

from avs_synth import schema
from avs_synth.audio.ambience import shipped_ambience_classes
from avs_synth.audio.negative_audio import level_dbfs
from avs_synth.building.config import BuildConfig
from avs_synth.building.inspect_shards import describe, inspect_shards
from avs_synth.building.splits import SplitFractions
from avs_synth_cli.synth import app
from tests.support.build_support import build_sample, sample_corpus, write_clip

AMBIENCE = ("wind noise", "raining")


def _config(**changes) -> BuildConfig:
    settings = dict(
        fractions=SplitFractions(train=0.6, val=0.2, test=0.2),
        min_mask_area=0.0,
        max_per_picture=0,
        negative_ratio=1.0,
        negatives=("silence", "noise"),
        shard_size=6,
        audio_bank=False,
    )
    return BuildConfig(**(settings | changes))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """The sample corpus plus clips of two ambience classes (train and test) and one of a class
    that no picture matches and that is not on the ambience list."""
    root = tmp_path_factory.mktemp("ambience")
    shutil.copytree(sample_corpus(tmp_path_factory), root, dirs_exist_ok=True)
    vgg = root / "corpus" / "vggsound"
    rows = []
    for n, (label, split) in enumerate(
        (label, split)
        for label in (*AMBIENCE, "dog growling")
        for split in ("train",) * 2 + ("test",) * 4
    ):
        yid = f"amb{n:08d}"
        write_clip(vgg / "clips" / f"{yid}_000000.flac", [0.1, 0.08, 0.12], seed=n)
        rows.append(f'{yid},0,"{label}",{split}\n')
    with open(vgg / "vggsound.csv", "a", encoding="utf-8") as handle:
        handle.writelines(rows)
    return root


def _samples(out: Path) -> list[schema.DecodedTriplet]:
    urls = [str(p) for p in sorted(out.glob("*.tar"))]
    return [schema.decode_triplet(s) for s in wds.WebDataset(urls, shardshuffle=False)]


def _digests(out: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(out.glob("*.tar"))}


@pytest.fixture(scope="module")
def ambience_build(corpus: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ambience-build") / "out"
    assert build_sample(corpus, _config(noise_from="ambience", silence_from="quiet"), out)
    return out


def test_noise_negatives_are_ambience_windows_recorded_in_the_json(ambience_build: Path) -> None:
    noise = [s for s in _samples(ambience_build) if s.meta.negative_kind == "noise"]
    assert noise
    for s in noise:
        assert s.meta.audio_class == "(noise)" and not s.mask.any()
        assert s.meta.audio.policy == "vggsound-ambience"
        assert s.meta.audio.label in AMBIENCE  # not "dog growling": not on the list
        assert s.meta.audio.vggsound_id.startswith("amb")
        assert s.meta.audio.rms_dbfs == pytest.approx(level_dbfs(s.audio), abs=0.5)
        assert -30 < level_dbfs(s.audio) < -15
    manifest = json.loads((ambience_build / "manifest.json").read_text())
    record = manifest["config"]["noise_from"]
    assert record["source"] == "ambience"
    # the shipped list less the classes the matches table pairs with a picture's category
    assert set(AMBIENCE) <= set(record["ambience_classes"])
    assert set(record["ambience_classes"]) == set(shipped_ambience_classes()) - set(
        c["label"] for c in manifest["audio_classes"]
    )
    assert manifest["config"]["silence_from"] == {"source": "quiet", "quiet_dbfs": -50.0}


def test_silence_negatives_are_real_quiet_windows_or_skipped_and_counted(
    ambience_build: Path,
) -> None:
    silence = [s for s in _samples(ambience_build) if s.meta.negative_kind == "silence"]
    assert silence  # the corpus's clips hold muted stretches at -62 to -50 dBFS
    for s in silence:
        assert s.meta.audio.policy == "vggsound-quiet" and s.meta.audio.vggsound_id
        assert -120 < s.meta.audio.rms_dbfs < -50.0
        assert level_dbfs(s.audio) < -49.0
    manifest = json.loads((ambience_build / "manifest.json").read_text())
    report = json.loads((ambience_build / "report.json").read_text())
    per_kind = {
        k: sum(c["per_kind"].get(k, 0) for c in manifest["splits"].values())
        for k in ("silence", "noise")
    }
    assert per_kind["silence"] == len(silence)
    skipped = report["skipped"].get("no_quiet_window", 0)
    assert skipped > 0  # most clips have no muted second: skipped, counted
    written = sum(report["written"][s] for s in ("train", "val", "test"))
    planned = sum(report["planned"][s] for s in ("train", "val", "test"))
    assert planned - written == sum(report["skipped"].values())


def test_real_negatives_are_byte_identical_across_workers(
    ambience_build: Path, corpus: Path, tmp_path: Path
) -> None:
    out = tmp_path / "two"
    build_sample(corpus, _config(noise_from="ambience", silence_from="quiet"), out, workers=2)
    assert _digests(out) == _digests(ambience_build)


def test_both_mixes_synthetic_and_real_by_a_seeded_coin(corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "both"
    build_sample(corpus, _config(noise_from="both", silence_from="both"), out)
    policies = {s.meta.audio.policy for s in _samples(out) if s.meta.negative}
    assert "vggsound-ambience" in policies
    assert policies & {"synthetic-white", "synthetic-pink"}
    assert policies & {"synthetic-zeros", "synthetic-floor"}


def test_without_ambience_clips_noise_negatives_fall_short_and_are_counted(
    tmp_path_factory, tmp_path: Path
) -> None:
    plain = sample_corpus(tmp_path_factory)  # no ambience class in its VGGSound
    out = tmp_path / "short"
    build_sample(plain, _config(negatives=("noise",), noise_from="ambience"), out)
    report = json.loads((out / "report.json").read_text())
    assert report["dropped_while_planning"]["negatives_short_noise"] > 0
    assert not [s for s in _samples(out) if s.meta.negative]


def test_config_refuses_real_sources_without_their_kind() -> None:
    with pytest.raises(ValueError, match="noise_from applies"):
        BuildConfig(negative_ratio=1.0, negatives=("silence",), noise_from="ambience")
    with pytest.raises(ValueError, match="silence_from applies"):
        BuildConfig(negative_ratio=1.0, negatives=("noise",), silence_from="quiet")
    with pytest.raises(ValueError, match="quiet_dbfs"):
        BuildConfig(negative_ratio=1.0, negatives=("silence",), quiet_dbfs=3.0)
    with pytest.raises(ValueError, match="noise_from must be"):
        BuildConfig(negative_ratio=1.0, negatives=("noise",), noise_from="brown")  # type: ignore[arg-type]


def test_inspect_names_the_real_sources(ambience_build: Path) -> None:
    lines = describe(inspect_shards([ambience_build], num_samples=0))
    assert any(line.startswith("noise negatives: ambience (ambience classes: ") for line in lines)
    assert "silence negatives: quiet (real windows below -50 dBFS)" in lines


def test_cli_forwards_the_options_and_refuses_bad_ones(corpus: Path, tmp_path: Path) -> None:
    base = ["build", "--corpus", str(corpus / "corpus"), "--negative-ratio", "1"]
    result = CliRunner().invoke(
        app, [*base, "--out", str(tmp_path / "a"), "--negatives", "silence", "--noise-from", "both"]
    )
    assert result.exit_code == 1 and "noise_from applies" in result.output
    result = CliRunner().invoke(
        app, [*base, "--out", str(tmp_path / "b"), "--negatives", "noise", "--noise-from", "pink"]
    )
    assert result.exit_code == 2  # a fixed choice, refused by typer
    result = CliRunner().invoke(
        app,
        [
            *base,
            "--out",
            str(tmp_path / "c"),
            "--negatives",
            "silence",
            "--silence-from",
            "quiet",
            "--quiet-db",
            "nan",
        ],
    )
    assert result.exit_code == 1 and "--quiet-db must be a finite number" in result.output
    out = tmp_path / "d"
    result = CliRunner().invoke(
        app,
        [
            *base,
            "--out",
            str(out),
            "--negatives",
            "noise,silence",
            "--noise-from",
            "ambience",
            "--silence-from",
            "quiet",
            "--quiet-db",
            "-55",
            "--no-progress",
            "--no-audio-bank",
        ],
    )
    assert result.exit_code == 0, result.output
    config = json.loads((out / "manifest.json").read_text())["config"]
    assert config["noise_from"]["source"] == "ambience"
    assert config["silence_from"] == {"source": "quiet", "quiet_dbfs": -55.0}
