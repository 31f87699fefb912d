"""``bench/gpu_check.py``: every part of the prepared GPU run works on the CPU at tiny sizes
(``--smoke``), and the run keeps to its budget (skips what does not fit, ends what overruns)."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def load_gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "bench" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


gpu_check = load_gpu_check()
SMOKE_PARTS = [part.name for part in gpu_check.smoke_parts(Path("out"))]


def test_smoke_and_gpu_runs_have_the_same_parts_in_the_same_order():
    assert SMOKE_PARTS == [part.name for part in gpu_check.gpu_parts(Path("out"))]
    assert SMOKE_PARTS[-1] == "loader"  # the loader comparison comes last


@pytest.mark.slow
@pytest.mark.parametrize("part", SMOKE_PARTS)
def test_every_part_runs_on_the_cpu(part, tmp_path):
    rc = gpu_check.main(["--smoke", "--out", str(tmp_path), "--parts", part])
    summary = json.loads((tmp_path / "gpu_check.json").read_text())
    log = (tmp_path / "gpu_check.log").read_text()
    assert rc == 0, log[-3000:]
    assert [(p["name"], p["status"]) for p in summary["parts"]] == [(part, "ok")]
    if part.endswith(("_eager", "_compiled")):
        (result,) = json.loads((tmp_path / f"{part}.json").read_text())["results"]
        assert result["train_fps"] > 0 and result["infer_fps"] > 0 and result["ceiling_fps"] > 0
        assert result["memory_kind"] == "cpu_rss_peak" and result["train_peak_bytes"] > 0
        assert "SHRUNK backbones" in log
    elif part == "kernel":
        differences = re.search(r"largest \|triton - pytorch\|: output (\S+)", log)
        assert differences and float(differences.group(1)) < 1e-4
    elif part == "loader":
        assert re.search(r"in-memory [\d.]+, real loader with 0 workers [\d.]+", log)
    elif part == "triton_tests":
        assert "1 passed" in log


def test_parts_that_do_not_fit_the_budget_are_skipped(tmp_path):
    rc = gpu_check.main(["--out", str(tmp_path), "--budget", "0", "--parts", "kernel", "loader"])
    summary = json.loads((tmp_path / "gpu_check.json").read_text())
    assert rc == 1
    assert [p["name"] for p in summary["parts"]] == ["kernel", "loader"]
    assert all(p["status"].startswith("skipped") for p in summary["parts"])
    assert "== loader: skipped" in (tmp_path / "gpu_check.log").read_text()


def test_a_part_past_its_limit_is_ended_and_keeps_its_output(tmp_path):
    part = gpu_check.Part(
        "sleeper", ["-c", "print('measured 1.0', flush=True); import time; time.sleep(60)"], 3
    )
    with open(tmp_path / "log", "w", encoding="utf-8") as log:
        outcome = gpu_check.run_part(part, 3, log)
    assert outcome.status == "timed out" and outcome.seconds < 30
    assert "measured 1.0" in (tmp_path / "log").read_text()


def test_unknown_parts_are_refused(tmp_path, capsys):
    with pytest.raises(SystemExit):
        gpu_check.main(["--out", str(tmp_path), "--parts", "warp_drive"])
    assert "unknown part(s) ['warp_drive']" in capsys.readouterr().err
