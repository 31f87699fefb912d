"""The prepared GPU run (issue 16, "measure where it counts"): every speed figure in one script of
at most ``--budget`` seconds (8 minutes by default), each appended to ``OUT`` as it is measured.

    python bench/gpu_check.py --out "$OUT"            # on the lent GPU machine
    python bench/gpu_check.py --smoke --out DIR       # every part on the CPU at tiny sizes (CI)

Parts, in this order, each a fresh process with its own time limit (a part that would not fit in
what is left of the budget is skipped and says so; a part that fails does not stop the others):

1. ``triton_tests``: the fused deformable attention's tests (values and gradients against the
   ``grid_sample`` reference) run on the GPU itself;
2. ``kernel``: ``bench/deformable_attention_speed.py``: the fused kernel against the reference at
   AuTR-R50's sizes, forward and forward + backward;
3. ``r50_eager``, ``pvt_eager``: ``bench/model_speed.py`` for ``autr_r50`` and ``autr_pvtv2_b5``
   (train and inference frames/s, their bare backbone's ceiling, peak memory), eager;
4. ``r50_compiled``, ``pvt_compiled``: the same under ``torch.compile`` (default mode);
5. ``dinov2_eager``, ``sam_eager``: the foundation presets at their own size (448 / 512 px), eager;
6. ``loader``: ``bench/loader_throughput.py --compare-only``: training with the real loader
   against one batch kept in memory (target >= 90 %).

Measured on one H200 (2026-11-29): the parts took 35, 10, 21, 28, 137, > 150 (``pvt_compiled``
compiles for longer than its first limit of 150 s), 40, 59 and 58 s: all of them need about 10
minutes, so with the default budget the last parts are skipped; ``--budget 600`` runs them all, and
``--parts`` re-runs what a short run skipped.

``OUT/gpu_check.log`` receives every line of every part as it is printed (so a run cut short
keeps what it measured); ``OUT/<part>.json`` the model figures; ``OUT/gpu_check.json`` the status
and seconds of every part, rewritten after each. ``--parts`` runs a subset, in the order given.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TRITON_TESTS = "tests/avs_model/modeling/test_triton_deformable_attention.py"
SPEED = "bench/model_speed.py"


@dataclass
class Part:
    """One step of the run: a command, its time limit and the least time worth starting it."""

    name: str
    command: list[str]
    limit_s: float
    minimum_s: float = 20.0


def model_speed(name: str, preset: str, out: Path, *extra: str) -> list[str]:
    return [SPEED, "--presets", preset, "--no-isolate", "--json", str(out / f"{name}.json"), *extra]


def gpu_parts(out: Path) -> list[Part]:
    compiled = ("--compile", "--steps", "30", "--warmup", "5")
    return [
        Part("triton_tests", ["-m", "pytest", "-q", "-p", "no:cacheprovider", TRITON_TESTS], 120),
        Part("kernel", ["bench/deformable_attention_speed.py"], 60),
        Part("r50_eager", model_speed("r50_eager", "autr_r50", out), 75),
        Part("pvt_eager", model_speed("pvt_eager", "autr_pvtv2_b5", out), 90),
        Part("r50_compiled", model_speed("r50_compiled", "autr_r50", out, *compiled), 150, 60),
        Part("pvt_compiled", model_speed("pvt_compiled", "autr_pvtv2_b5", out, *compiled), 240, 60),
        Part("dinov2_eager", model_speed("dinov2_eager", "autr_dinov2_b", out), 75),
        Part("sam_eager", model_speed("sam_eager", "autr_sam_b", out), 75),
        Part("loader", ["bench/loader_throughput.py", "--compare-only"], 150, 60),
    ]


def smoke_parts(out: Path) -> list[Part]:
    """The same parts on the CPU: tiny pictures, one frame, one step, few-block backbones of the
    same families (``model_speed.py --shrink``), Triton interpreted."""
    tiny = ("--device", "cpu", "--clips", "1", "--frames", "1", "--steps", "1", "--warmup", "1")
    tiny += ("--ceiling-batch", "1", "--threads", "1", "--shrink")
    compiled = ("--compile", "--compile-backend", "eager")  # dynamo's capture, no code generated
    return [
        Part(
            "triton_tests",
            ["-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "pixel_centres", TRITON_TESTS],
            240,
        ),
        Part("kernel", ["bench/deformable_attention_speed.py", "--smoke"], 240),
        Part("r50_eager", model_speed("r50_eager", "autr_r50", out, *tiny, "--size", "64"), 240),
        Part(
            "pvt_eager", model_speed("pvt_eager", "autr_pvtv2_b5", out, *tiny, "--size", "64"), 240
        ),
        Part(
            "r50_compiled",
            model_speed("r50_compiled", "autr_r50", out, *tiny, "--size", "64", *compiled),
            240,
        ),
        Part(
            "pvt_compiled",
            model_speed("pvt_compiled", "autr_pvtv2_b5", out, *tiny, "--size", "64", *compiled),
            240,
        ),
        Part(
            "dinov2_eager",
            model_speed("dinov2_eager", "autr_dinov2_b", out, *tiny, "--size", "56"),
            240,
        ),
        Part("sam_eager", model_speed("sam_eager", "autr_sam_b", out, *tiny, "--size", "64"), 240),
        Part(
            "loader",
            "bench/loader_throughput.py --compare-only --device cpu --preset autr_tiny "
            "--corpus-size tiny --steps 2 --batch-size 2 --compare-workers 0 --size 64".split(),
            240,
        ),
    ]


@dataclass
class Outcome:
    """What became of a part."""

    name: str
    status: str  # "ok", "failed (rc N)", "timed out", "skipped: ..."
    seconds: float


def run_part(part: Part, limit_s: float, log) -> Outcome:
    """Run one part, its output appended line by line to ``log`` and echoed to stdout."""
    header = f"\n== {part.name} ({time.strftime('%H:%M:%S')}, limit {limit_s:.0f} s): "
    log.write(header + " ".join(part.command) + "\n")
    log.flush()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    start = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, *part.command],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group: a timeout ends its workers too
    )

    def pump() -> None:
        for line in process.stdout:
            log.write(line)
            log.flush()
            sys.stdout.write(line)
            sys.stdout.flush()

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        rc = process.wait(timeout=limit_s)
        status = "ok" if rc == 0 else f"failed (rc {rc})"
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        status = "timed out"
    reader.join(timeout=10)
    seconds = time.monotonic() - start
    log.write(f"-- {part.name}: {status} after {seconds:.1f} s\n")
    log.flush()
    return Outcome(part.name, status, seconds)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--out", type=Path, default=os.environ.get("OUT"), help="result folder (default $OUT)"
    )
    parser.add_argument("--budget", type=float, default=480.0, help="seconds for all parts")
    parser.add_argument("--smoke", action="store_true", help="CPU, tiny sizes, no time budget")
    parser.add_argument("--parts", nargs="+", help="run only these parts, in this order")
    args = parser.parse_args(argv)
    if args.out is None:
        parser.error("--out is required when $OUT is not set")
    args.out.mkdir(parents=True, exist_ok=True)
    parts = smoke_parts(args.out) if args.smoke else gpu_parts(args.out)
    if args.parts:
        by_name = {p.name: p for p in parts}
        unknown = [name for name in args.parts if name not in by_name]
        if unknown:
            parser.error(f"unknown part(s) {unknown}; parts: {list(by_name)}")
        parts = [by_name[name] for name in args.parts]
    deadline = None if args.smoke else time.monotonic() + args.budget
    outcomes: list[Outcome] = []
    with open(args.out / "gpu_check.log", "a", encoding="utf-8") as log:
        log.write(f"\n### gpu_check {'smoke ' if args.smoke else ''}{time.ctime()}\n")
        for part in parts:
            limit = part.limit_s
            if deadline is not None:
                left = deadline - time.monotonic()
                if left < part.minimum_s:
                    outcomes.append(Outcome(part.name, f"skipped: {left:.0f} s left", 0.0))
                    log.write(f"\n== {part.name}: skipped, {left:.0f} s of the budget left\n")
                    continue
                limit = min(limit, left)
            outcomes.append(run_part(part, limit, log))
            summary = {"smoke": args.smoke, "parts": [asdict(o) for o in outcomes]}
            (args.out / "gpu_check.json").write_text(json.dumps(summary, indent=2))
        log.write("\n".join(f"## {o.name}: {o.status} ({o.seconds:.0f} s)" for o in outcomes))
        log.write("\n")
    summary = {"smoke": args.smoke, "parts": [asdict(o) for o in outcomes]}
    (args.out / "gpu_check.json").write_text(json.dumps(summary, indent=2))
    for o in outcomes:
        print(f"{o.name:14s} {o.status} ({o.seconds:.0f} s)")
    return 0 if all(o.status == "ok" for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
