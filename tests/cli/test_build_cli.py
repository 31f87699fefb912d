"""`avs-synth build` / `inspect` from the command line: a corpus build, fail-fast errors, path
escapes, a real SIGKILL and resume."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from avs_synth_cli.synth import app
from tests.support.build_support import sample_corpus

runner = CliRunner()
ARGS = [
    "--shard-size",
    "3",
    "--bank-clips-per-shard",
    "2",
    "--min-mask-area",
    "0",
    "--max-per-picture",
    "0",
    "--negative-ratio",
    "0.3",
    "--splits",
    "0.6,0.2,0.2",
    "--no-progress",
]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return sample_corpus(tmp_path_factory)


def _corpus_args(corpus: Path) -> list[str]:
    return ["--corpus", str(corpus / "corpus"), "--matches", str(corpus / "matches.csv")]


def _digests(out: Path) -> dict[str, str]:
    return {
        p.relative_to(out).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(out.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def reference(corpus, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cli_reference") / "out"
    result = runner.invoke(app, ["build", *_corpus_args(corpus), "--out", str(out), *ARGS])
    assert result.exit_code == 0, result.output
    assert f"built {out}" in result.output
    return out


def test_build_then_inspect(reference):
    result = runner.invoke(app, ["inspect", str(reference), "--samples", "2"])
    assert result.exit_code == 0, result.output
    manifest = json.loads((reference / "manifest.json").read_text())
    train = manifest["splits"]["train"]
    assert f"train: {train['samples']} triplets ({train['negatives']} negatives)" in result.output
    assert result.output.count("\n- ") == 2 and "audio 1.000 s from" in result.output
    shard = sorted(reference.glob("test-*.tar"))[0]
    result = runner.invoke(app, ["inspect", str(shard), "--samples", "1"])
    assert result.exit_code == 0 and "1 triplet shards, 0 bank shards" in result.output


def test_missing_inputs_fail_fast_with_one_line(corpus, tmp_path):
    out = tmp_path / "out"
    result = runner.invoke(app, ["build", "--corpus", str(tmp_path / "nowhere"), "--out", str(out)])
    assert result.exit_code == 1
    assert result.output.strip() == f"error: {tmp_path / 'nowhere'}: corpus folder not found"
    c = corpus / "corpus"
    result = runner.invoke(
        app,
        [
            "build",
            "--coco",
            str(c / "coco/annotations/instances_val2017.json"),
            "--coco-images",
            str(c / "coco/val2017"),
            "--vggsound-csv",
            str(tmp_path / "vgg.csv"),
            "--vggsound-clips",
            str(c / "vggsound/clips"),
            "--matches",
            str(corpus / "matches.csv"),
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 1
    assert result.output.strip() == f"error: {tmp_path / 'vgg.csv'}: VGGSound CSV file not found"
    bad = tmp_path / "matches.csv"
    bad.write_text("source,visual_id\nlvis,3\n")
    result = runner.invoke(
        app, ["build", *_corpus_args(corpus)[:2], "--matches", str(bad), "--out", str(out)]
    )
    assert result.exit_code == 1 and str(bad) in result.output and "header must be" in result.output
    result = runner.invoke(
        app, ["build", *_corpus_args(corpus), "--out", str(out), "--window-policy", "middle"]
    )
    # a fixed choice (issue 13): typer refuses it with the choices listed, exit status 2
    squeezed = "".join(result.output.replace("│", " ").split())
    assert result.exit_code == 2 and "'middle'isnotoneof'fixed','loudest','nonsilent'" in squeezed
    assert not out.exists() or not any(out.glob("*.tar"))


def test_file_names_escaping_the_images_folder_are_refused(corpus, tmp_path):
    c = corpus / "corpus"
    secret = tmp_path / "secret.jpg"
    shutil.copy(next((c / "coco" / "val2017").glob("*.jpg")), secret)
    images = tmp_path / "images"
    shutil.copytree(c / "coco" / "val2017", images)
    annotations = json.loads((c / "coco/annotations/instances_val2017.json").read_text())
    common = [
        "--vggsound-csv",
        str(c / "vggsound/vggsound.csv"),
        "--vggsound-clips",
        str(c / "vggsound/clips"),
        "--matches",
        str(corpus / "matches.csv"),
        "--no-progress",
    ]
    for n, name in enumerate(["../secret.jpg", "link.jpg"]):
        if name == "link.jpg":
            (images / "link.jpg").symlink_to(secret)
        annotations["images"][0]["file_name"] = name
        ann = tmp_path / f"instances_{n}.json"
        ann.write_text(json.dumps(annotations))
        out = tmp_path / f"out{n}"
        result = runner.invoke(
            app,
            ["build", "--coco", str(ann), "--coco-images", str(images), *common, "--out", str(out)],
        )
        assert result.exit_code == 1, result.output
        assert f"refusing file name '{name}'" in result.output and str(ann) in result.output
        assert not any(out.glob("*.tar")) if out.exists() else True


def _command(corpus: Path, out: Path) -> list[str]:
    return [
        sys.executable,
        "-c",
        "from avs_synth_cli.synth import app; app()",
        "build",
        *_corpus_args(corpus),
        "--out",
        str(out),
        *ARGS,
        "--workers",
        "2",
    ]


def _start(corpus: Path, out: Path, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        _command(corpus, out),
        env=env,
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _wait_for_shards(process: subprocess.Popen, out: Path, count: int) -> None:
    deadline = time.monotonic() + 120
    while len(list(out.glob("*.tar"))) < count:
        assert process.poll() is None, process.stdout.read()
        assert time.monotonic() < deadline, "no shard appeared"
        time.sleep(0.01)


def _check_partial(out: Path, expected: dict[str, str]) -> int:
    assert not (out / "manifest.json").exists(), "the build finished before the interruption"
    finished = sorted(p.name for p in out.glob("*.tar"))
    assert len(finished) < sum(1 for k in expected if k.endswith(".tar"))
    for name in finished:  # every tar under its final name is complete
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == expected[name]
    return len(finished)


@pytest.mark.slow
def test_ctrl_c_and_sigkill_then_rerun_give_the_uninterrupted_bytes(corpus, reference, tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    expected = _digests(reference)
    # Ctrl-C (SIGINT to the process group): stops at a sample boundary, removes its temporaries
    process = _start(corpus, out, env)
    _wait_for_shards(process, out, 2)
    os.killpg(process.pid, signal.SIGINT)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 130, output
    assert "rerun the same command to resume" in output and "Traceback" not in output
    assert not list(out.rglob("*.tmp-*"))
    done = _check_partial(out, expected)
    # a real kill of the whole process group, workers included
    process = _start(corpus, out, env)
    _wait_for_shards(process, out, done + 2)
    os.killpg(process.pid, signal.SIGKILL)
    process.communicate()
    assert process.returncode == -signal.SIGKILL
    _check_partial(out, expected)
    result = subprocess.run(_command(corpus, out), env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "already complete" in result.stdout + result.stderr
    assert _digests(out) == expected
    assert not list(out.rglob("*.tmp-*"))
