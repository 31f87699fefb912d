"""``avs-synth import avs-synthetic``: the released dataset as this toolkit's shards."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import webdataset as wds
from typer.testing import CliRunner

from avs_model.data.augment import ResizeConfig
from avs_model.data.stream import eval_pipeline, make_loader, resolve_shards
from avs_synth import schema
from avs_synth.building.import_avs_synthetic import import_avs_synthetic
from avs_synth_cli.synth import app
from tests.support.avs_synthetic_support import AUDIOS, audio_samples, write_avs_synthetic


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> Path:
    return write_avs_synthetic(tmp_path_factory.mktemp("release") / "avss")


def test_import_writes_shards_the_stream_reads(release: Path, tmp_path: Path) -> None:
    report = import_avs_synthetic(release, tmp_path / "out", shard_size=3)
    assert report.samples == {"train": 8, "val": 2, "test": 2}
    assert report.bank_windows == {"dog": 3, "guitar": 2}
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["config"]["mask_mode"] == "instance"
    assert [s["name"] for s in manifest["splits"]["train"]["shards"]] == [
        "train-000000.tar",
        "train-000001.tar",
        "train-000002.tar",
    ]
    assert {s["audio_class"] for s in manifest["bank"]["shards"]} == {"dog", "guitar"}
    shards = resolve_shards(tmp_path / "out")
    assert shards.num_samples("val") == 2 and len(shards.bank_classes) == 2
    batches = list(
        make_loader(
            eval_pipeline(shards.urls("test"), resize=ResizeConfig(size=32), batch_size=2),
            num_workers=0,
        )
    )
    assert sum(len(b) for b in batches) == 2


def test_each_triplet_holds_example_1_of_its_wav_and_its_instance_mask(
    release: Path, tmp_path: Path
) -> None:
    import_avs_synthetic(release, tmp_path / "out")
    for sample in wds.WebDataset(str(tmp_path / "out" / "test-000000.tar"), shardshuffle=False):
        triplet = schema.decode_triplet(sample)
        name = triplet.meta.audio.vggsound_id
        expected = audio_samples(name)[15360:30960].astype(np.float32) / 32768
        assert np.array_equal(triplet.audio, expected)  # int16 / 32768, exactly
        assert triplet.meta.mask_mode == "instance" and triplet.meta.source == "avs-synthetic"
        assert triplet.meta.audio.youtube_id == name[:11]
        assert triplet.mask.any() and triplet.mask.shape == (48, 64)


def test_same_seed_same_bytes_and_avsbench_clips_excluded(release: Path, tmp_path: Path) -> None:
    import_avs_synthetic(release, tmp_path / "a", seed=3)
    import_avs_synthetic(release, tmp_path / "b", seed=3)
    assert _digests(tmp_path / "a") == _digests(tmp_path / "b")
    banned = {AUDIOS[3][0][:11], AUDIOS[7][1][:11]}
    report = import_avs_synthetic(release, tmp_path / "c", is_excluded=banned.__contains__)
    assert report.excluded["audio_names"] == 2
    assert report.bank_windows == {"dog": 2, "guitar": 1}
    manifest = json.loads((tmp_path / "c" / "manifest.json").read_text())
    assert manifest["exclusions"]["audio_names_excluded"] == 2
    rows = report.excluded["rows"]
    assert report.samples["val"] + report.samples["test"] == 4 - rows and rows >= 1
    for path in (tmp_path / "c").glob("*.tar"):
        for sample in wds.WebDataset(str(path), shardshuffle=False):
            meta = json.loads(sample[schema.META])
            assert meta["audio"]["youtube_id"] not in banned


def test_cli_import(release: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["import", "avs-synthetic", str(release), "--out", str(tmp_path / "out")]
    )
    assert result.exit_code == 0, result.output
    assert "train 8" in result.output and (tmp_path / "out" / "manifest.json").is_file()
    again = CliRunner().invoke(
        app, ["import", "avs-synthetic", str(release), "--out", str(tmp_path / "out")]
    )
    assert again.exit_code == 1 and "not empty" in again.output


def test_cli_import_leaves_out_avsbench_and_listed_videos(release: Path, tmp_path: Path) -> None:
    avsbench = tmp_path / "AVSBench" / "AVSBench_object" / "Single-source"
    avsbench.mkdir(parents=True)
    (avsbench / "s4_meta_data.csv").write_text(
        "name,start,category,split\ndogAAAAAAA1,0,dog,train\n"
    )
    listed = tmp_path / "exclude.txt"
    listed.write_text("# our held-out videos\ngtrBBBBBBB2_000050\n")
    args = ["import", "avs-synthetic", str(release), "--out", str(tmp_path / "out")]
    result = CliRunner().invoke(
        app, [*args, "--avsbench", str(tmp_path / "AVSBench"), "--exclude-clips", str(listed)]
    )
    assert result.exit_code == 0, result.output
    assert "excluded (AVSBench and --exclude-clips videos): audio_names 2" in result.output
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    exclusions = manifest["exclusions"]
    assert exclusions["avsbench"] is True and exclusions["audio_names_excluded"] == 2
    assert exclusions["ids_per_list"]["avsbench_s4"] == 1
    assert exclusions["ids_per_list"]["exclude_clips"] == 1
    assert exclusions["ids_per_list"]["packaged_s4"] > 4000
    for path in (tmp_path / "out").glob("*.tar"):
        for sample in wds.WebDataset(str(path), shardshuffle=False):
            youtube_id = json.loads(sample[schema.META])["audio"]["youtube_id"]
            assert youtube_id not in {"dogAAAAAAA1", "gtrBBBBBBB2"}
    kept = CliRunner().invoke(app, [*args[:-1], str(tmp_path / "kept"), "--keep-avsbench-clips"])
    assert kept.exit_code == 0, kept.output
    assert "audio_names" not in kept.output and "AVSBench clips are kept" in kept.output
    missing = CliRunner().invoke(app, [*args[:-1], str(tmp_path / "x"), "--avsbench", "nowhere"])
    assert missing.exit_code == 1 and "nowhere: AVSBench folder not found" in missing.output
