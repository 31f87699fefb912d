"""Run logs: a CSV file and TensorBoard event files, written by rank 0 only.

``metrics.csv`` is in long format, one row per value: ``time,step,epoch,split,metric,value``
(``split`` is ``train``, ``val`` or ``test``), so runs with different losses or metrics share one
schema and a resumed run simply appends. TensorBoard gets the same values as ``{split}/{metric}``
scalars (``tensorboard --logdir OUT/tensorboard``), and at each validation the first val frames
as images, ``val/prediction/{i}`` (the prediction tinted red, the ground truth outlined green, IoU
and sounding score written on the picture), the same frames every time, so one can watch them
improve.
"""

from __future__ import annotations

import csv
import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from avs_model.evaluation.gallery import GalleryFrame

logger = logging.getLogger(__name__)

CSV_NAME = "metrics.csv"
CSV_FIELDS = ("time", "step", "epoch", "split", "metric", "value")


class RunLog:
    """Appends scalars to ``OUT/metrics.csv`` and ``OUT/tensorboard/``."""

    def __init__(
        self,
        *,
        out_dir: Path,
        enabled: bool = True,
        tensorboard: bool = True,
        resume_step: int | None = None,
    ) -> None:
        """Args:
        out_dir: the run folder.
        enabled: False on ranks other than 0 (then nothing is written).
        tensorboard: also write TensorBoard event files.
        resume_step: the step a resumed run restarts from: rows logged after it by the
            interrupted run are dropped (CSV) or purged (TensorBoard), so no step appears twice.
        """
        self.out_dir = Path(out_dir)
        self.enabled = enabled
        self._writer = None
        self._csv_handle = None
        if not enabled:
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        csv_path = self.out_dir / CSV_NAME
        if resume_step is not None and csv_path.is_file():
            _truncate_after(csv_path, resume_step)
        new = not csv_path.exists() or csv_path.stat().st_size == 0
        self._csv_handle = open(csv_path, "a", newline="", encoding="utf-8")  # noqa: SIM115
        self._csv = csv.writer(self._csv_handle)
        if new:
            self._csv.writerow(CSV_FIELDS)
            self._csv_handle.flush()
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(
                log_dir=str(self.out_dir / "tensorboard"),
                purge_step=None if resume_step is None else resume_step + 1,
            )

    def log(self, values: Mapping[str, float], *, step: int, epoch: int, split: str) -> None:
        """Record ``values`` for ``split`` at ``step``."""
        if not self.enabled:
            return
        now = f"{time.time():.3f}"
        for name, value in values.items():
            self._csv.writerow((now, step, epoch, split, name, f"{float(value):.6g}"))
            if self._writer is not None:
                self._writer.add_scalar(f"{split}/{name}", float(value), global_step=step)
        self._csv_handle.flush()
        if self._writer is not None:
            self._writer.flush()

    def log_predictions(
        self, frames: Sequence[GalleryFrame], *, step: int, split: str = "val"
    ) -> None:
        """Prediction images of ``frames`` in TensorBoard as ``{split}/prediction/{i}``."""
        if not self.enabled or self._writer is None:
            return
        for i, frame in enumerate(frames):
            picture = np.asarray(frame.overlay(caption=True))  # [H, W, 3] uint8
            self._writer.add_image(
                f"{split}/prediction/{i}", picture, global_step=step, dataformats="HWC"
            )
        self._writer.flush()

    def close(self) -> None:
        if self._csv_handle is not None:
            self._csv_handle.close()
            self._csv_handle = None
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def __enter__(self) -> RunLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _truncate_after(path: Path, step: int) -> None:
    rows = read_metrics(path)
    kept = [r for r in rows if int(r["step"]) <= step]
    if len(kept) == len(rows):
        return
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_FIELDS)
        writer.writeheader()
        writer.writerows(kept)
    tmp.replace(path)
    logger.info(
        "dropped %d log rows after step %d (the interrupted run's)", len(rows) - len(kept), step
    )


def read_metrics(path: Path) -> list[dict[str, str]]:
    """The rows of a ``metrics.csv`` file as dicts."""
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))
