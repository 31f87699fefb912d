"""`avs-synth build` under faults: a full disk, a read-only output folder, two builds into one
folder at once. Each ends in one line naming the path (never a traceback), and nothing under a
final name is half written."""

from __future__ import annotations

import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tests.support.build_support import sample_corpus

ARGS = ["--shard-size", "3", "--bank-clips-per-shard", "2", "--min-mask-area", "0"]
ARGS += ["--max-per-picture", "0", "--splits", "0.6,0.2,0.2", "--no-progress"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return sample_corpus(tmp_path_factory)


def _build(corpus: Path, out: Path, *extra: str, prelude: str = "") -> list[str]:
    return [
        sys.executable,
        "-c",
        prelude + "from avs_synth_cli.synth import app; app()",
        "build",
        "--corpus",
        str(corpus / "corpus"),
        "--matches",
        str(corpus / "matches.csv"),
        "--out",
        str(out),
        *ARGS,
        *extra,
    ]


def _unshare_works() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=64k none /mnt"],
        capture_output=True,
    )
    return probe.returncode == 0


def _in_a_mount(command: list[str], folder: Path, options: str, copy: Path) -> list[str]:
    """``command`` in a private mount namespace where ``folder`` is a tmpfs mounted with
    ``options`` (an unprivileged user namespace: no root needed, nothing seen outside); what it
    holds afterwards is copied to ``copy``."""
    script = (
        'mount -t tmpfs -o "$1" none "$2" || exit 9; dir=$2; copy=$3; shift 3; "$@"; rc=$?; '
        'cp -a "$dir/." "$copy"; exit $rc'
    )
    return ["unshare", "-rm", "sh", "-c", script, "sh", options, str(folder), str(copy), *command]


def _one_line_error(result: subprocess.CompletedProcess) -> str:
    output = (result.stdout + result.stderr).strip()
    assert result.returncode == 1, output
    assert "Traceback" not in output and "Errno" not in output, output
    lines = [line for line in output.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, output
    return lines[0]


def _complete_tars_only(out: Path) -> None:
    """Every tar under its final name reads to its end, and no manifest claims a complete
    build; no temporary is left behind."""
    for shard in out.glob("*.tar"):
        with tarfile.open(shard) as tar:
            assert tar.getmembers()
    assert not (out / "manifest.json").exists()
    assert not list(out.rglob("*.tmp-*"))


def test_a_full_disk_ends_in_one_line_and_leaves_no_half_written_shard(corpus, tmp_path):
    out, seen = tmp_path / "out", tmp_path / "seen"
    out.mkdir()
    seen.mkdir()
    if _unshare_works():  # a real ENOSPC: a 1 MB tmpfs
        command = _in_a_mount(_build(corpus, out), out, "size=1m", seen)
        reason, limit = "No space left on device", None
    else:  # a size-limited file: writes past 1 MB fail with EFBIG (Python ignores SIGXFSZ)
        command, reason, seen = _build(corpus, out), "File too large", out

        def limit() -> None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))

    result = subprocess.run(command, capture_output=True, text=True, timeout=240, preexec_fn=limit)
    line = _one_line_error(result)
    assert line.startswith(f"error: {out}") and line.endswith(reason), line
    _complete_tars_only(seen)
    assert list(seen.glob("*.tar")), "the disk filled before the first shard: no shard checked"


_READ_ONLY = """import builtins, errno, os
_open = builtins.open
def _refusing(file, mode="r", *args, **kwargs):
    if any(m in mode for m in "wax+") and os.fspath(file).startswith("{out}"):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fspath(file))
    return _open(file, mode, *args, **kwargs)
builtins.open = _refusing
"""


def test_a_read_only_output_folder_ends_in_one_line(corpus, tmp_path):
    out, seen = tmp_path / "out", tmp_path / "seen"
    out.mkdir()
    seen.mkdir()
    if os.geteuid() != 0:
        out.chmod(0o555)
        command, reason = _build(corpus, out), "Permission denied"
    elif _unshare_works():
        command, reason = _in_a_mount(_build(corpus, out), out, "ro", seen), "Read-only file system"
    else:  # root without user namespaces: every write under OUT refused as EROFS would be
        command, reason = (
            _build(corpus, out, prelude=_READ_ONLY.format(out=out)),
            "Permission denied",
        )
    result = subprocess.run(command, capture_output=True, text=True, timeout=240)
    line = _one_line_error(result)
    assert line.startswith(f"error: {out}") and line.endswith(reason), line
    out.chmod(0o755)
    assert not list(out.iterdir()) and not list(seen.iterdir())


def _digests(out: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(out.glob("*.tar"))}


@pytest.mark.slow
def test_two_builds_of_different_plans_into_one_folder(corpus, tmp_path):
    """Started at once, with different seeds: one builds, the other stops with one line, and
    the folder holds one plan's shards, as its plan.json and manifest say."""
    out = tmp_path / "out"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    runs = [
        subprocess.Popen(
            _build(corpus, out, "--seed", str(seed)),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for seed in (0, 1)
    ]
    results = []
    for process in runs:
        stdout, stderr = process.communicate(timeout=280)
        results.append(
            subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
        )
    codes = sorted(r.returncode for r in results)
    assert codes == [0, 1], [r.stderr for r in results]
    loser = next(r for r in results if r.returncode == 1)
    line = _one_line_error(loser)
    assert f"error: {out}" in line
    assert "another build" in line or "another plan" in line, line
    winner = results.index(next(r for r in results if r.returncode == 0))
    plan = json.loads((out / "plan.json").read_text())
    manifest = json.loads((out / "manifest.json").read_text())
    assert plan["plan_hash"] == manifest["plan"]["plan_hash"]
    assert plan["config"]["seed"] == winner
    alone = tmp_path / "alone"
    done = subprocess.run(
        _build(corpus, alone, "--seed", str(winner)), env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert _digests(out) == _digests(alone)
    assert not list(out.glob(".avs-synth-build-*.lock"))  # claims are given back
