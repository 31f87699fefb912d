"""A worker process that dies (a segfault in a C library, the OOM killer) ends the build with
one clear error, not a BrokenProcessPool traceback; complete shards stay for the rerun."""

from __future__ import annotations

import os
import signal

import pytest

import avs_synth.building.run as run_module
from avs_synth.building.config import BuildConfig, RunOptions
from avs_synth.building.plan import make_plan
from avs_synth.building.run import BuildWorkerError, execute_plan
from avs_synth.building.splits import SplitFractions
from tests.support.build_support import MATCHES, make_world


def _killed(folder, name, config, out):
    os.kill(os.getpid(), signal.SIGKILL)


def test_a_dead_worker_is_one_error_naming_the_shard(tmp_path, monkeypatch) -> None:
    records, clips = make_world(tmp_path / "world", pictures=6, clip_seconds=2)
    config = BuildConfig(fractions=SplitFractions(train=0.5, val=0.25, test=0.25), shard_size=2)
    plan = make_plan(records=records, clips=clips, matches=MATCHES, config=config)
    out = tmp_path / "out"
    monkeypatch.setattr(run_module, "build_stored_unit", _killed)
    with pytest.raises(BuildWorkerError, match=rf"^a worker process died while building {out}/"):
        execute_plan(plan, config=config, out=out, run=RunOptions(workers=2, progress=False))
    assert not list(out.glob(".avs-synth-build-*.lock"))
    monkeypatch.undo()
    assert execute_plan(plan, config=config, out=out, run=RunOptions(progress=False)).complete
