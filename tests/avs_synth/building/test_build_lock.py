"""The per-partition build lock: which live claims refuse a build, and that a refused build
touches nothing of the live one's."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from avs_synth.building.build_lock import BuildLockError, claim_partition, folder_lock
from avs_synth.building.config import BuildConfig, RunOptions
from avs_synth.building.plan import make_plan
from avs_synth.building.run import execute_plan
from avs_synth.building.splits import SplitFractions
from tests.support.build_support import MATCHES, make_world

PLAN = "ab" * 32
OTHER = "cd" * 32


def _claim(out: Path, plan: str, partition: int, partitions: int):
    with folder_lock(out):
        return claim_partition(out, plan_hash=plan, partition=partition, num_partitions=partitions)


@pytest.mark.parametrize(
    ("live", "wanted", "refused"),
    [
        ((0, 1), (0, 1), "partition 0 of 1 of this plan is being built by pid"),
        ((0, 2), (1, 2), None),  # partitions of one plan share a folder
        ((0, 2), (2, 4), "partition 0 of 2"),  # positions 2, 6, ... are in both
        ((0, 2), (1, 4), None),
        ((1, 3), (0, 1), "shares shards with partition 0 of 1"),
    ],
)
def test_live_claims_of_the_same_plan(tmp_path, live, wanted, refused) -> None:
    held = _claim(tmp_path, PLAN, *live)
    try:
        if refused is None:
            _claim(tmp_path, PLAN, *wanted).release()
        else:
            with pytest.raises(BuildLockError, match=refused):
                _claim(tmp_path, PLAN, *wanted)
        with pytest.raises(
            BuildLockError, match=rf"^{tmp_path}: another build .*plan abababababababab\)"
        ):
            with folder_lock(tmp_path):
                claim_partition(
                    tmp_path, plan_hash=PLAN[:2] + OTHER[2:], partition=7, num_partitions=9
                )
    finally:
        held.release()
    assert not list(tmp_path.glob(".avs-synth-build-*.lock"))


def test_a_claim_left_by_a_killed_build_is_not_live(tmp_path) -> None:
    code = (
        "import os, sys; from pathlib import Path\n"
        "from avs_synth.building.build_lock import claim_partition, folder_lock\n"
        "out = Path(sys.argv[1])\n"
        "with folder_lock(out):\n"
        "    claim_partition(out, plan_hash='ab' * 32, partition=0, num_partitions=1)\n"
        "os._exit(0)  # as a kill: the lock file stays, its flock goes with the process\n"
    )
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=True)
    assert len(list(tmp_path.glob(".avs-synth-build-*.lock"))) == 1
    _claim(tmp_path, OTHER, 0, 1).release()
    assert not list(tmp_path.glob(".avs-synth-build-*.lock"))


def test_a_refused_build_deletes_no_live_temporary(tmp_path) -> None:
    records, clips = make_world(tmp_path / "world", pictures=6, clip_seconds=2)
    config = BuildConfig(fractions=SplitFractions(train=0.5, val=0.25, test=0.25), shard_size=4)
    plan = make_plan(records=records, clips=clips, matches=MATCHES, config=config)
    out = tmp_path / "out"
    out.mkdir()
    live = out / "train-000000.tar.tmp-424242"  # a live build's shard being written
    live.write_bytes(b"being written")
    held = _claim(out, plan.plan_hash, 0, 1)
    try:
        with pytest.raises(BuildLockError, match="partition 0 of 1 of this plan"):
            execute_plan(plan, config=config, out=out, run=RunOptions(progress=False))
        other = BuildConfig(**{**config.__dict__, "seed": 3})
        other_plan = make_plan(records=records, clips=clips, matches=MATCHES, config=other)
        with pytest.raises(BuildLockError, match="another build"):
            execute_plan(other_plan, config=other, out=out, run=RunOptions(progress=False))
        assert live.read_bytes() == b"being written"
        assert not (out / "plan.json").exists()
    finally:
        held.release()
    summary = execute_plan(plan, config=config, out=out, run=RunOptions(progress=False))
    assert summary.complete and not live.exists()  # no live owner now: a stale temporary
    assert json.loads((out / "plan.json").read_text())["plan_hash"] == plan.plan_hash
