"""`inspect_shards`: manifest, shard discovery, decoded samples, FiftyOne."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tarfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from avs_synth.building.config import BuildConfig, RunOptions
from avs_synth.building.inspect_shards import (
    ShardReadError,
    describe,
    find_shards,
    inspect_shards,
    iter_triplets,
    write_inspect_page,
)
from avs_synth.building.plan import make_plan
from avs_synth.building.run import execute_plan
from avs_synth.building.splits import SplitFractions
from avs_synth_cli.synth import app as synth_app
from tests.support.browser import check_page
from tests.support.build_support import MATCHES, make_world

CONFIG = BuildConfig(fractions=SplitFractions(train=0.5, val=0.25, test=0.25), shard_size=5)
"""Shards of 5 triplets: train, val and test each span several shards."""


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    root = tmp_path_factory.mktemp("inspect")
    records, clips = make_world(root / "in")
    plan = make_plan(records=records, clips=clips, matches=MATCHES, config=CONFIG)
    execute_plan(plan, config=CONFIG, out=root / "out", run=RunOptions(progress=False))
    return root / "out"


def test_inspect_a_build_folder(out):
    found = inspect_shards([out], num_samples=4)
    assert found.manifest is not None and found.manifest["seed"] == 0
    assert [p.name for p in found.shards][:2] == ["train-000000.tar", "train-000001.tar"]
    assert all(p.name.startswith("bank-") for p in found.bank_shards) and found.bank_shards
    assert len(found.samples) == 4
    first = found.samples[0]
    assert first.shard == "train-000000.tar" and first.split == "train"
    assert first.image_size == (64, 48) and first.audio_seconds == 1.0
    assert 0 < first.mask_area_fraction < 1
    lines = describe(found)
    train = found.manifest["splits"]["train"]
    assert f"train: {train['samples']} triplets" in lines[1]
    assert lines[-4].startswith(f"- {first.key} [train]")


def test_inspect_single_shards_and_errors(out, tmp_path):
    shard = out / "val-000000.tar"
    manifest, triplets, bank = find_shards([shard, out / "bank-000000.tar"])
    assert manifest is None and triplets == [shard] and bank == [out / "bank-000000.tar"]
    found = inspect_shards([shard], num_samples=100)
    assert {s.split for s in found.samples} == {"val"}
    assert len(found.samples) == sum(1 for _ in found.samples) <= CONFIG.shard_size
    with pytest.raises(FileNotFoundError, match="not a build folder"):
        inspect_shards([tmp_path / "x.txt"])
    with pytest.raises(FileNotFoundError, match="no shards"):
        inspect_shards([tmp_path])
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(ValueError, match="malformed manifest"):
        find_shards([tmp_path])


@pytest.mark.slow
def test_fiftyone_loads_the_triplets(out, tmp_path):
    env = {
        **os.environ,
        "FIFTYONE_DATABASE_DIR": str(tmp_path / "db"),
        "FIFTYONE_DO_NOT_TRACK": "true",
        "FIFTYONE_DATABASE_VALIDATION": "false",
        "OMP_NUM_THREADS": "1",
    }
    arguments = [
        "inspect",
        str(out),
        "--samples",
        "0",
        "--fiftyone",
        "--dataset-name",
        "avs-test",
        "--export-dir",
        str(tmp_path / "files"),
        "--max-samples",
        "5",
    ]
    code = (
        "from avs_synth_cli.synth import app\n"
        f"app({arguments!r}, standalone_mode=False)\n"
        "import fiftyone as fo; d = fo.load_dataset('avs-test'); s = d.first()\n"
        "print(len(d), s.ground_truth.mask.ndim, s.split in s.tags, s.audio_class)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert "FiftyOne dataset 'avs-test': 5 samples" in result.stdout
    count, ndim, tagged, *label = result.stdout.strip().splitlines()[-1].split()
    assert (count, ndim, tagged) == ("5", "2", "True") and " ".join(label) in (
        "dog barking",
        "cat meowing",
    )
    assert len(list((tmp_path / "files").glob("*.jpg"))) == 5
    assert len(list((tmp_path / "files").glob("*.flac"))) == 5


def test_the_page_shows_each_split_with_provenance_in_a_real_browser(out, tmp_path) -> None:
    report = write_inspect_page([out], tmp_path / "page", per_split=3)
    assert report.per_split == {"train": 3, "val": 3, "test": 3} and report.problems == []
    text = report.index.read_text()
    assert text.count('<figure class="card"') == 9
    first = next(iter_triplets(sorted(out.glob("val-*.tar"))))[1].meta
    assert f"{first.source} image {first.image_id} ({first.image_file})" in text
    assert f"VGGSound {first.audio.vggsound_id} (test)" in text
    youtube = first.audio.start_seconds + int(first.audio.window_start_s)
    assert f"watch?v={first.audio.youtube_id}&amp;t={youtube}s" in text
    assert "CC BY 2.0" in text  # the licence, where the source gives one
    pick_val_dogs = (
        "(() => { const pick = (f, v) => { const s = document.querySelector("
        "`select[data-filter=${f}]`); s.value = v; s.dispatchEvent(new Event('change')); };"
        " pick('split', 'val'); pick('category', 'dog barking');"
        " return Array.from(document.querySelectorAll('.card:not([hidden])'))"
        ".map((c) => [c.dataset.split, c.dataset.category]); })()"
    )
    check = check_page(
        report.index,
        tmp_path / "inspect.png",
        expressions=(pick_val_dogs,),
        profile=tmp_path / "profile",
    )
    assert (check.images, check.audio) == (18, 9)  # each picture with and without its mask
    assert check.broken_images == [] and check.broken_audio == [] and check.errors == []
    assert check.durations == [1.0] * 9
    shown = check.results[0]
    assert shown and all(card == ["val", "dog barking"] for card in shown)


def _damaged_copies(out, folder):
    """The build's shards with one truncated, one garbage, one whose sample does not decode."""
    folder.mkdir()
    for shard in out.glob("*.tar"):
        shutil.copy(shard, folder / shard.name)
    train = sorted(folder.glob("train-*.tar"))
    data = train[0].read_bytes()
    train[0].write_bytes(data[: len(data) // 2])
    train[1].write_bytes(b"this is not a tar file" * 40)
    with tarfile.open(train[2]) as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar.getmembers()]
    with tarfile.open(train[2], "w") as tar:
        for member, content in members:
            if member.name.endswith(".json") and member.name == members[3][0].name:
                content = b"{not json"
                member.size = len(content)
            tar.addfile(member, io.BytesIO(content))
    return train


def test_damaged_shards_are_named_and_skipped(out, tmp_path) -> None:
    train = _damaged_copies(out, tmp_path / "damaged")
    found = inspect_shards([tmp_path / "damaged"], num_samples=100)
    assert len(found.problems) == 3, found.problems
    truncated, garbage, undecodable = found.problems
    assert truncated.startswith(f"{train[0]}") and "truncated" in truncated
    assert garbage.startswith(f"{train[1]}: unreadable tar")
    assert undecodable.startswith(f"{train[2]}[") and "does not decode" in undecodable
    assert found.samples  # the readable samples are still shown
    with pytest.raises(ShardReadError, match="unreadable tar"):
        list(iter_triplets([train[1]]))

    result = CliRunner().invoke(
        synth_app, ["inspect", str(tmp_path / "damaged"), "--samples", "100"]
    )
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    assert f"unreadable: {train[1]}: unreadable tar" in result.output
    assert "error: 3 unreadable shards or samples (listed above)" in result.output

    report = write_inspect_page([tmp_path / "damaged"], tmp_path / "page", per_split=100)
    assert len(report.problems) == 3 and report.per_split["val"] > 0


def test_inspect_html_from_the_command_line(out, tmp_path) -> None:
    result = CliRunner().invoke(
        synth_app, ["inspect", str(out), "--samples", "2", "--html", str(tmp_path / "page")]
    )
    assert result.exit_code == 0, result.output
    assert f"wrote {tmp_path / 'page' / 'index.html'} (train 2, val 2, test 2 triplets)" in (
        result.output
    )
    assert result.output.count("\n- ") == 2  # the text summary shows --samples triplets
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "index.html").write_text("my page")
    result = CliRunner().invoke(synth_app, ["inspect", str(out), "--html", str(tmp_path / "mine")])
    assert result.exit_code == 1 and "not written by avs-synth" in result.output
    assert (tmp_path / "mine" / "index.html").read_text() == "my page"


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.binary(max_size=4096))
def test_any_bytes_as_a_shard_are_reported_never_raised(tmp_path, data) -> None:
    shard = tmp_path / "train-000000.tar"
    shard.write_bytes(data)
    problems: list[str] = []
    samples = list(iter_triplets([shard], problems=problems))
    assert samples == [] and len(problems) == 1 and problems[0].startswith(str(shard))


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(fraction=st.floats(min_value=0.0, max_value=1.0))
def test_a_shard_cut_anywhere_is_reported_or_whole(out, tmp_path, fraction) -> None:
    original = out / "val-000000.tar"
    whole = [t.key for _, t in iter_triplets([original])]
    data = original.read_bytes()
    shard = tmp_path / "val-000000.tar"
    shard.write_bytes(data[: int(fraction * len(data))])
    problems: list[str] = []
    keys = [t.key for _, t in iter_triplets([shard], problems=problems)]
    assert keys == whole[: len(keys)]  # what is read is right
    assert problems or keys == whole  # and a cut never passes for a complete shard
