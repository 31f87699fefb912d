"""`inspect_shards`: manifest, shard discovery, decoded samples, FiftyOne."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from avs_synth.building.config import BuildConfig, RunOptions
from avs_synth.building.inspect_shards import describe, find_shards, inspect_shards
from avs_synth.building.plan import make_plan
from avs_synth.building.run import execute_plan
from avs_synth.building.splits import SplitFractions
from tests.support.build_support import MATCHES, make_world

CONFIG = BuildConfig(fractions=SplitFractions(train=0.5, val=0.25, test=0.25), shard_size=5)


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
