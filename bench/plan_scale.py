"""Planning at full size: CPU, wall time and peak memory of `avs-synth build` as inputs grow.

Generates (once per size, cached in ``--workdir``) LVIS v1 train, Open Images V7 segmentation
train and VGGSound inputs in their real formats, scaled together from the real sizes (LVIS train:
1.27 M instances on 100 k pictures, its json 1.1 GB; Open Images: 2.69 M masks on 944 k pictures;
VGGSound: 199 k rows): LVIS polygons of realistic length (the full-size json is >= 1.0 GB),
~12 % of the instances (and of the Open Images masks) in categories the packaged ``matches.csv``
accepts, Open Images masks as members of the 16 official zips, and the media (one 640x480 JPEG,
one 10-s FLAC clip) hard-linked under every name. Then, at each size, it runs

- ``avs-synth build --dry-run`` (the plan alone), and
- a capped write (``--max-per-category``, no audio bank) with 2 workers,

as subprocesses, sampling every process of the build's tree (``/proc``'s peak RSS and CPU
times), and prints per phase: CPU seconds, wall seconds and peak RSS of the parent, of the
planning process and of each worker; then the growth exponent of the plan's CPU time and peak
memory between the smallest and the largest size (log-log slope).

Usage::

    python bench/plan_scale.py [--sizes 100000,300000,1270000] [--workdir DIR] [--cap 20]

Targets (this 2-core machine): LVIS train + Open Images train + VGGSound planned in <= 3 GiB peak
RSS and <= 150 CPU-s; parent RSS while writing <= 1 GiB; growth exponent <= 1.05.
"""

from __future__ import annotations

import argparse
import csv
import errno
import io
import json
import math
import os
import shutil
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import psutil
import soundfile as sf
from PIL import Image

from avs_synth_category_maps import data_path

FULL_LVIS_INSTANCES = 1_270_000
FULL_LVIS_PICTURES = 100_000
FULL_OI_MASKS = 2_690_000
FULL_OI_PICTURES = 944_000
FULL_VGGSOUND_ROWS = 199_000
ACCEPTED_SHARE = 0.12
WIDTH, HEIGHT = 640, 480
HEX = "0123456789abcdef"


# --- inputs ----------------------------------------------------------------------------------


def _accepted(source: str) -> list[str]:
    with data_path("matches.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return sorted(
        {r["visual_id"] for r in rows if r["source"] == source and r["decision"] == "accepted"}
    )


def _polygon_pool(rng: np.random.Generator, size: int = 4096) -> list[tuple[str, str, float]]:
    """(segmentation json, bbox json, area) of star-shaped polygons, 2-decimal coordinates as
    LVIS writes them, 8-150 points (mean ~45: ~870 bytes an annotation, as in LVIS v1 train)."""
    pool = []
    for _ in range(size):
        n = int(np.clip(rng.gamma(3.0, 15.0), 8, 150))
        cx, cy = rng.uniform(80, WIDTH - 80), rng.uniform(80, HEIGHT - 80)
        radius = rng.uniform(10, 75) * (1 + 0.25 * rng.standard_normal(n)).clip(0.3, 1.6)
        t = np.sort(rng.uniform(0, 2 * math.pi, n))
        xs = np.clip(cx + radius * np.cos(t), 0, WIDTH - 1).round(2)
        ys = np.clip(cy + radius * np.sin(t), 0, HEIGHT - 1).round(2)
        coords = ", ".join(f"{x:.2f}, {y:.2f}" for x, y in zip(xs, ys, strict=True))
        area = 0.5 * abs(float(np.dot(xs, np.roll(ys, 1)) - np.dot(ys, np.roll(xs, 1))))
        x0, y0 = float(xs.min()), float(ys.min())
        bbox = f"[{x0:.2f}, {y0:.2f}, {float(xs.max()) - x0:.2f}, {float(ys.max()) - y0:.2f}]"
        pool.append((f"[[{coords}]]", bbox, round(area, 2)))
    return pool


_LINKS_PER_COPY = 60_000  # ext4 allows 65,000 links to one inode
_links: dict[Path, int] = {}


def _link(source: Path, target: Path) -> None:
    """Hard-link ``source`` (one of its copies: a file takes at most 65,000 links) to ``target``."""
    while True:
        count = _links.get(source, 0)
        copy = source.with_name(f"{source.stem}-{count // _LINKS_PER_COPY}{source.suffix}")
        if not copy.exists():
            shutil.copyfile(source, copy)
        try:
            os.link(copy, target)
        except FileExistsError:
            pass
        except OSError as error:
            if error.errno != errno.EMLINK:
                raise
            _links[source] = (count // _LINKS_PER_COPY + 1) * _LINKS_PER_COPY  # next copy
            continue
        _links[source] = count + 1
        return


def _write_lvis(root: Path, n: int, rng: np.random.Generator, media: Path) -> None:
    pictures = max(1, round(n * FULL_LVIS_PICTURES / FULL_LVIS_INSTANCES))
    with data_path("lvis_v1_categories.csv").open(newline="", encoding="utf-8") as handle:
        categories = list(csv.DictReader(handle))
    all_ids = [int(c["id"]) for c in categories]
    accepted = [int(v) for v in _accepted("lvis")]
    others = sorted(set(all_ids) - set(accepted))
    pool = _polygon_pool(rng)
    images_dir = root / "coco" / "train2017"
    images_dir.mkdir(parents=True, exist_ok=True)
    path = root / "lvis" / "lvis_v1_train.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    image_ids = rng.choice(np.arange(1, 600_000), size=pictures, replace=False)
    with path.open("w", encoding="utf-8") as out:
        out.write('{"info": {"description": "generated LVIS v1 train (bench/plan_scale.py)"}, ')
        out.write('"annotations": [')
        chunk = []
        owners = rng.integers(0, pictures, size=n)
        is_accepted = rng.random(n) < ACCEPTED_SHARE
        cats = np.where(
            is_accepted,
            rng.choice(accepted, size=n),
            rng.choice(others, size=n),
        )
        shapes = rng.integers(0, len(pool), size=n)
        for k in range(n):
            seg, bbox, area = pool[shapes[k]]
            chunk.append(
                f'{{"area": {area}, "id": {k + 1}, "segmentation": {seg}, '
                f'"image_id": {int(image_ids[owners[k]])}, "bbox": {bbox}, '
                f'"category_id": {int(cats[k])}}}'
            )
            if len(chunk) == 20_000:
                out.write((", " if k >= 20_000 else "") + ", ".join(chunk))
                chunk = []
        if chunk:
            out.write((", " if n > len(chunk) else "") + ", ".join(chunk))
        out.write('], "images": [')
        entries = []
        for image_id in image_ids.tolist():
            neg = rng.choice(all_ids, size=8, replace=False).tolist()
            nex = rng.choice(all_ids, size=2, replace=False).tolist()
            entries.append(
                f'{{"date_captured": "2013-11-14 16:28:13", "neg_category_ids": {neg}, '
                f'"id": {image_id}, "license": 3, "height": {HEIGHT}, "width": {WIDTH}, '
                f'"flickr_url": "http://farm3.staticflickr.com/2/{image_id}_z.jpg", '
                f'"coco_url": "http://images.cocodataset.org/train2017/{image_id:012d}.jpg", '
                f'"not_exhaustive_category_ids": {nex}}}'
            )
            _link(media / "picture.jpg", images_dir / f"{image_id:012d}.jpg")
        out.write(", ".join(entries))
        out.write('], "licenses": [{"url": "http://creativecommons.org/licenses/by/2.0/", ')
        out.write('"id": 3, "name": "Attribution License"}], "categories": ')
        out.write(
            json.dumps(
                [
                    {
                        "id": int(c["id"]),
                        "name": c["name"],
                        "synonyms": c["synonyms"].split("|"),
                        "synset": c["synset"],
                        "frequency": c["frequency"],
                        "def": c["def"],
                        "image_count": int(c["train_image_count"]),
                    }
                    for c in categories
                ]
            )
        )
        out.write("}")


def _png(size: int = 12) -> bytes:
    mask = np.zeros((size, size), dtype=np.uint8)
    mask[2:-2, 3:-3] = 255
    buffer = io.BytesIO()
    Image.fromarray(mask).convert("1").save(buffer, format="PNG")
    return buffer.getvalue()


def _write_openimages(root: Path, n: int, rng: np.random.Generator, media: Path) -> None:
    masks = max(1, round(n * FULL_OI_MASKS / FULL_LVIS_INSTANCES))
    pictures = max(1, round(n * FULL_OI_PICTURES / FULL_LVIS_INSTANCES))
    base = root / "openimages"
    (base / "train").mkdir(parents=True, exist_ok=True)
    with data_path("openimages_boxable_classes.csv").open(newline="", encoding="utf-8") as handle:
        classes = list(csv.DictReader(handle))
    mids = [c["mid"] for c in classes]
    accepted = [m for m in _accepted("openimages") if m in set(mids)]
    others = sorted(set(mids) - set(accepted))
    with (base / "oidv7-class-descriptions.csv").open("w", newline="", encoding="utf-8") as h:
        writer = csv.writer(h)
        writer.writerow(["LabelName", "DisplayName"])
        writer.writerows([c["mid"], c["display_name"]] for c in classes)
    unmatched = others[: 350 - len(accepted)]
    segmentable = sorted(set(accepted) | set(unmatched))
    (base / "classes-segmentation.txt").write_text("".join(m + "\n" for m in segmentable))
    raw = np.unique(rng.integers(0, 2**64 - 1, size=int(pictures * 1.01) + 8, dtype=np.uint64))
    ids = [f"{v:016x}" for v in rng.permutation(raw)[:pictures].tolist()]
    ids.sort()
    owners = np.sort(rng.integers(0, len(ids), size=masks))
    order = rng.permutation(masks)  # the CSV is not sorted by ImageID
    is_accepted = rng.random(masks) < ACCEPTED_SHARE
    labels = np.where(is_accepted, rng.choice(accepted, masks), rng.choice(unmatched, masks))
    boxes = np.sort(rng.uniform(0, 1, size=(masks, 2, 2)), axis=2).reshape(masks, 4).tolist()
    ious = rng.uniform(0.5, 1, size=masks).tolist()
    clicks = [  # a pool of realistic Clicks values (4-8 clicks), not tied to their box
        ";".join(f"{x:.5f} {y:.5f} {int(c)}" for x, y, c in rng.random((int(k), 3)).tolist())
        for k in rng.integers(4, 9, size=997)
    ]
    png = _png()
    (base / "train-masks").mkdir(parents=True, exist_ok=True)
    zips = {c: zipfile.ZipFile(base / "train-masks" / f"train-masks-{c}.zip", "w") for c in HEX}
    rows = []
    label_list, owner_list = labels.tolist(), owners.tolist()
    for k in order.tolist():
        image_id = ids[owner_list[k]]
        label = label_list[k]
        name = f"{image_id}_{label.replace('/', '')}_{k:08x}.png"
        x0, x1, y0, y1 = boxes[k]
        rows.append(
            f"{name},{image_id},{label},{k:08x},{x0:.6f},{x1:.6f},{y0:.6f},{y1:.6f},"
            f"{ious[k]:.5f},{clicks[k % len(clicks)]}\n"
        )
        info = zipfile.ZipInfo(name, date_time=(2019, 1, 1, 0, 0, 0))
        zips[image_id[0]].writestr(info, png, compress_type=zipfile.ZIP_STORED)
    for handle in zips.values():
        handle.close()
    with (base / "train-annotations-object-segmentation.csv").open("w", encoding="utf-8") as h:
        h.write("MaskPath,ImageID,LabelName,BoxID,BoxXMin,BoxXMax,BoxYMin,BoxYMax,")
        h.write("PredictedIoU,Clicks\n")
        h.writelines(rows)
    rows = []
    picks = rng.integers(0, len(mids), size=(len(ids), 6)).tolist()
    confident = (rng.random((len(ids), 6)) < 0.6).astype(int).tolist()
    with (base / "oidv7-train-annotations-human-imagelabels.csv").open("w", encoding="utf-8") as h:
        h.write("ImageID,Source,LabelName,Confidence\n")
        for image_id, chosen, sure in zip(ids, picks, confident, strict=True):
            h.writelines(
                f"{image_id},verification,{mids[m]},{c}\n"
                for m, c in zip(chosen, sure, strict=True)
            )
    with (base / "train-images-with-rotation.csv").open("w", encoding="utf-8") as h:
        h.write("ImageID,Subset,OriginalURL,OriginalLandingURL,License,AuthorProfileURL,Author,")
        h.write("Title,OriginalSize,OriginalMD5,Thumbnail300KURL,Rotation\n")
        for image_id in ids:
            h.write(
                f"{image_id},train,https://farm.example/{image_id}.jpg,"
                f"https://www.flickr.com/photos/x/{image_id},"
                "https://creativecommons.org/licenses/by/2.0/,https://www.flickr.com/people/x/,"
                f"Someone,Title {image_id},123456,md5==,https://thumb.example/{image_id}.jpg,0.0\n"
            )
            _link(media / "picture.jpg", base / "train" / f"{image_id}.jpg")


def _write_vggsound(root: Path, n: int, rng: np.random.Generator, media: Path) -> None:
    rows = max(1, round(n * FULL_VGGSOUND_ROWS / FULL_LVIS_INSTANCES))
    labels = data_path("vggsound_classes.txt").read_text(encoding="utf-8").splitlines()
    base = root / "vggsound"
    clips = base / "clips"
    clips.mkdir(parents=True, exist_ok=True)
    alphabet = list("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
    with (base / "vggsound.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        for k in range(rows):
            ytid = "".join(rng.choice(alphabet, 11))
            start = int(rng.integers(0, 30)) * 10
            split = "test" if rng.random() < 0.078 else "train"
            writer.writerow([ytid, start, labels[k % len(labels)], split])
            _link(media / "clip.flac", clips / f"{ytid}_{start:06d}.flac")


def generate(root: Path, n: int) -> Path:
    """Inputs at ``n`` LVIS instances (everything else scaled alike) under ``root``; each dataset
    is cached (a ``.done-{name}`` file marks it complete)."""
    media = root / "media"
    media.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    picture = rng.integers(0, 255, size=(HEIGHT // 8, WIDTH // 8, 3), dtype=np.uint8)
    Image.fromarray(picture).resize((WIDTH, HEIGHT)).save(media / "picture.jpg", quality=90)
    t = np.arange(160_000) / 16_000
    sound = 0.3 * np.sin(2 * np.pi * 440 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))
    sf.write(media / "clip.flac", sound.astype(np.float32), 16_000, format="FLAC")
    for name, write in (
        ("lvis", _write_lvis),
        ("openimages", _write_openimages),
        ("vggsound", _write_vggsound),
    ):
        done = root / f".done-{name}"
        if not done.exists():
            shutil.rmtree(root / name, ignore_errors=True)
            started = time.monotonic()
            write(root, n, np.random.default_rng(len(name)), media)
            done.write_text(f"generated in {time.monotonic() - started:.0f} s\n")
    return root


# --- measurement -----------------------------------------------------------------------------


class TreeMonitor:
    """Samples a process tree every ``interval`` s: peak RSS (``VmHWM``) and CPU per process."""

    def __init__(self, root_pid: int, interval: float = 0.05) -> None:
        self.root_pid = root_pid
        self.interval = interval
        self.stats: dict[int, dict[str, float]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        try:
            root = psutil.Process(self.root_pid)
            processes = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return
        for proc in processes:
            try:
                with open(f"/proc/{proc.pid}/status", encoding="ascii") as handle:
                    hwm = next(
                        int(line.split()[1]) * 1024 for line in handle if line.startswith("VmHWM")
                    )
                cpu = proc.cpu_times()
            except (psutil.NoSuchProcess, FileNotFoundError, StopIteration, ProcessLookupError):
                continue
            entry = self.stats.setdefault(
                proc.pid,
                {"first": time.monotonic(), "parent": float(proc.pid == self.root_pid)},
            )
            entry["peak_rss"] = max(entry.get("peak_rss", 0.0), float(hwm))
            entry["cpu"] = cpu.user + cpu.system
            entry["last"] = time.monotonic()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            time.sleep(self.interval)

    def __enter__(self) -> TreeMonitor:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _run_build(args: list[str]) -> tuple[float, dict[int, dict[str, float]], str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-c", "from avs_synth_cli.synth import app; app()", "build", *args]
    started = time.monotonic()
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    with TreeMonitor(process.pid) as monitor:
        output, _ = process.communicate()
    wall = time.monotonic() - started
    text = output.decode("utf-8", "replace")
    if process.returncode != 0:
        raise SystemExit(f"build failed ({process.returncode}):\n{text[-3000:]}")
    return wall, monitor.stats, text


def _inputs(root: Path) -> list[str]:
    return [
        "--lvis", str(root / "lvis" / "lvis_v1_train.json"),
        "--lvis-images", str(root / "coco"),
        "--openimages", str(root / "openimages"),
        "--vggsound-csv", str(root / "vggsound" / "vggsound.csv"),
        "--vggsound-clips", str(root / "vggsound" / "clips"),
        "--no-progress",
    ]  # fmt: skip


def _gib(value: float) -> str:
    return f"{value / 2**30:.2f} GiB"


def measure(root: Path, cap: int) -> dict[str, object]:
    """Plan (dry run) and capped write at one size; returns the figures."""
    figures: dict[str, object] = {}
    wall, stats, text = _run_build([*_inputs(root), "--out", str(root / "dry"), "--dry-run"])
    parent = [s for s in stats.values() if s["parent"]]
    children = [s for s in stats.values() if not s["parent"]]
    figures["plan"] = {
        "wall_s": wall,
        "cpu_s": sum(s["cpu"] for s in stats.values()),
        "peak_rss": max(s["peak_rss"] for s in stats.values()),
        "parent_peak_rss": parent[0]["peak_rss"] if parent else 0.0,
        "planner_peak_rss": max((s["peak_rss"] for s in children), default=0.0),
    }
    out = root / "write"
    shutil.rmtree(out, ignore_errors=True)
    wall, stats, text = _run_build(
        [
            *_inputs(root),
            "--out", str(out),
            "--max-per-category", str(cap),
            "--no-audio-bank",
            "--workers", "2",
        ]
    )  # fmt: skip
    parent = [s for s in stats.values() if s["parent"]][0]
    children = sorted((s for s in stats.values() if not s["parent"]), key=lambda s: s["first"])
    planner, workers = children[:1], children[1:]
    manifest = json.loads((out / "manifest.json").read_text())
    figures["write"] = {
        "wall_s": wall,
        "cpu_s": sum(s["cpu"] for s in stats.values()),
        "parent_peak_rss": parent["peak_rss"],
        "parent_cpu_s": parent["cpu"],
        "planner_peak_rss": planner[0]["peak_rss"] if planner else 0.0,
        "worker_peak_rss": [s["peak_rss"] for s in workers],
        "worker_cpu_s": [s["cpu"] for s in workers],
        "triplets": sum(manifest["splits"][s]["samples"] for s in ("train", "val", "test")),
    }
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,300000,1270000")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/avs_plan_scale"))
    parser.add_argument("--cap", type=int, default=20, help="--max-per-category of the write")
    args = parser.parse_args()
    sizes = [int(v) for v in args.sizes.split(",")]
    results = {}
    for n in sizes:
        started = time.monotonic()
        root = generate(args.workdir / f"n{n}", n)
        print(f"inputs at {n:,} LVIS instances: {root} ({time.monotonic() - started:.0f} s)")
        lvis = root / "lvis" / "lvis_v1_train.json"
        print(f"  LVIS json {lvis.stat().st_size / 1e9:.2f} GB", flush=True)
        results[n] = measure(root, args.cap)
        plan, write = results[n]["plan"], results[n]["write"]
        print(
            f"  plan (dry run): {plan['cpu_s']:.1f} CPU-s, {plan['wall_s']:.1f} s wall, peak RSS "
            f"{_gib(plan['peak_rss'])} (parent {_gib(plan['parent_peak_rss'])}, planner "
            f"{_gib(plan['planner_peak_rss'])})"
        )
        print(
            f"  capped write ({write['triplets']} triplets, 2 workers): {write['cpu_s']:.1f} "
            f"CPU-s, {write['wall_s']:.1f} s wall; parent peak RSS "
            f"{_gib(write['parent_peak_rss'])} ({write['parent_cpu_s']:.1f} CPU-s), planner "
            f"{_gib(write['planner_peak_rss'])}, workers "
            + ", ".join(
                f"{_gib(r)} / {c:.1f} CPU-s"
                for r, c in zip(write["worker_peak_rss"], write["worker_cpu_s"], strict=True)
            ),
            flush=True,
        )
    print("\n| LVIS instances | plan CPU-s | plan wall s | plan peak RSS | parent RSS writing |")
    print("|---:|---:|---:|---:|---:|")
    for n, r in results.items():
        p, w = r["plan"], r["write"]
        print(
            f"| {n:,} | {p['cpu_s']:.1f} | {p['wall_s']:.1f} | {_gib(p['peak_rss'])} | "
            f"{_gib(w['parent_peak_rss'])} |"
        )
    if len(sizes) >= 2:
        lo, hi = sizes[0], sizes[-1]
        scale = math.log(hi / lo)
        cpu = math.log(results[hi]["plan"]["cpu_s"] / results[lo]["plan"]["cpu_s"]) / scale
        rss = math.log(results[hi]["plan"]["peak_rss"] / results[lo]["plan"]["peak_rss"]) / scale
        print(f"\ngrowth exponent {lo:,} -> {hi:,}: plan CPU {cpu:.3f}, plan peak RSS {rss:.3f}")


if __name__ == "__main__":
    main()
