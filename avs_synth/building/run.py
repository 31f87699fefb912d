"""`avs-synth build`: plan the triplets, write the shards in parallel, resumably, partitionably.

- Plan first (:func:`avs_synth.building.plan.make_plan`): a deterministic list of shards. The
  plan is made in a child process that reads the inputs lean (instances of the matched
  categories only, their geometry in an annotation index) and stores the plan in a temporary
  folder (:mod:`avs_synth.building.plan_store`), then exits: the parent, and the workers it
  starts, never hold the inputs or the plan, only a few fields per shard; each worker reads its
  shard's triplets from the folder.
- ``dry_run`` stops there: counts per split, audio class and reason, nothing decoded or written.
- ``plan.json`` in the output folder records the plan hash; a rerun with another plan is refused
  (so a resumed build never mixes shards of two plans), and so is a build beside a live one of
  another plan or of the same shards (:mod:`avs_synth.building.build_lock`).
- Each shard is a unit of work, built by one worker
  (:func:`avs_synth.building.shard_builder.build_unit`) into a temporary file and renamed into
  place; complete shards are skipped on a rerun, so a crashed or interrupted build resumes where
  it stopped, with the same bytes.
- ``--num-partitions K --partition i`` builds the shards with ``position % K == i``; the
  partitions' outputs are disjoint and their union is the single-machine build.
- Once every shard is complete (in this run or with those of other partitions in the same
  folder), ``manifest.json`` and ``report.json`` are written and a summary is logged.
"""

from __future__ import annotations

import gc
import json
import logging
import multiprocessing
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from avs_synth import __version__
from avs_synth.building.build_lock import claim_partition, folder_lock
from avs_synth.building.config import BuildConfig, BuildInputs, RunOptions
from avs_synth.building.inputs import (
    BuildInputError,
    check_inputs,
    read_accepted_matches,
    read_clips,
    read_exclusion,
    read_image_records,
)
from avs_synth.building.manifest import make_manifest, make_report
from avs_synth.building.plan import BuildPlan, make_plan
from avs_synth.building.plan_store import StoredPlan, UnitHeader, load_unit, store_plan
from avs_synth.building.shard_builder import (
    build_unit,
    clear_stop,
    is_complete,
    parts_path,
    read_parts,
    request_stop,
    stop_requested,
)
from avs_synth.building.shard_writer import remove_stale_temps, write_atomic
from avs_synth.schema import BANK, MANIFEST_NAME, PLAN_NAME, REPORT_NAME, SPLITS, encode_json

logger = logging.getLogger(__name__)


class PlanMismatchError(BuildInputError):
    """The output folder holds shards of another plan."""


class BuildWorkerError(BuildInputError):
    """A worker process died without a result (killed, out of memory)."""


@dataclass
class BuildSummary:
    """What a build run did.

    Args:
        out: the output folder.
        plan_hash: the plan's hash.
        units_total: shards in the plan.
        units_mine: shards of this partition.
        units_built: shards written by this run.
        units_kept: shards of this partition already complete (resumed).
        complete: every shard of the plan is in place and the manifest is written.
        samples: triplets written per split (complete builds only).
        bank_windows: audio-bank windows written (complete builds only).
        skipped: skipped samples by reason (complete builds only).
        seconds: wall time of the run.
    """

    out: Path
    plan_hash: str
    units_total: int
    units_mine: int
    units_built: int
    units_kept: int
    complete: bool
    samples: dict[str, int] = field(default_factory=dict)
    bank_windows: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


def _worker_init() -> None:
    signal.signal(signal.SIGINT, request_stop)
    clear_stop()
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover - torch is a dependency
        pass


@contextmanager
def _stop_between_samples() -> Iterator[None]:
    """Ctrl-C during the build stops it at the next sample boundary (see ``request_stop``)."""
    clear_stop()
    try:
        previous = signal.signal(signal.SIGINT, request_stop)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        clear_stop()


def _pool_context() -> multiprocessing.context.BaseContext:
    # fork starts workers without re-importing torch; elsewhere spawn is the safe choice.
    method = "fork" if sys.platform.startswith("linux") else "spawn"
    return multiprocessing.get_context(method)


def _check_plan_file(out: Path, plan: StoredPlan, config: BuildConfig) -> None:
    path = out / PLAN_NAME
    record = {
        "plan_hash": plan.plan_hash,
        "tool_version": __version__,
        "units": [u.name for u in plan.units],
        "config": config.as_dict(),
    }
    if path.is_file():
        try:
            existing = json.loads(path.read_text(encoding="utf-8")).get("plan_hash")
        except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
            existing = None
        if existing != plan.plan_hash:
            raise PlanMismatchError(
                f"{out} holds a build of another plan (hash {existing}, this one "
                f"{plan.plan_hash}): use another --out, or delete the folder to start over"
            )
    write_atomic(path, encode_json(record))


def _progress(enabled: bool):
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("[bold]building[/] {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        disable=not enabled,
    )


def build_stored_unit(folder: Path, name: str, config: BuildConfig, out: Path) -> dict[str, Any]:
    """What a worker runs: read unit ``name`` of the plan stored in ``folder`` and write it."""
    return build_unit(load_unit(folder, name), config, out)


def _run_units(
    units: list[UnitHeader], *, folder: Path, config: BuildConfig, out: Path, run: RunOptions
) -> None:
    total = sum(u.planned for u in units)
    if run.workers == 1 or len(units) <= 1:
        with _stop_between_samples(), _progress(run.progress) as progress:
            task = progress.add_task("samples", total=total)
            for unit in units:
                build_stored_unit(folder, unit.name, config, out)
                progress.advance(task, unit.planned)
        return
    # The pool is made and fed before the progress bar starts its refresh thread (fork).
    executor = ProcessPoolExecutor(
        max_workers=min(run.workers, len(units)),
        mp_context=_pool_context(),
        initializer=_worker_init,
    )
    try:
        with _stop_between_samples():
            pending = {
                executor.submit(build_stored_unit, folder, unit.name, config, out): unit
                for unit in units
            }
            with _progress(run.progress) as progress:
                task = progress.add_task("samples", total=total)
                while pending:
                    done, _ = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                    if stop_requested():
                        raise KeyboardInterrupt
                    for future in done:
                        unit = pending.pop(future)
                        try:
                            future.result()  # a worker's exception ends the build
                        except BrokenProcessPool:
                            raise BuildWorkerError(
                                f"a worker process died while building {out / unit.name} "
                                "(killed, or out of memory?): complete shards are kept, rerun "
                                "to resume"
                            ) from None
                        progress.advance(task, unit.planned)
    except BaseException:
        # Workers got the same Ctrl-C and stop at their next sample; queued shards are dropped.
        executor.shutdown(wait=True, cancel_futures=True)
        raise
    executor.shutdown(wait=True)


def execute_plan(
    plan: BuildPlan | StoredPlan,
    *,
    config: BuildConfig,
    out: Path,
    run: RunOptions | None = None,
    category_map: Mapping[str, Any] | None = None,
) -> BuildSummary:
    """Write this partition's missing shards, then the manifest once every shard is in place.

    Args:
        plan: the plan (from :func:`make_plan`, stored in a temporary folder first, or already
            stored by :func:`plan_from_inputs`).
        config: the configuration the plan was made with.
        out: the output folder (created).
        run: workers, partition and progress settings.
        category_map: what the manifest records about the matching table.

    Raises:
        PlanMismatchError: ``out`` holds a build of another plan.
        BuildLockError: a live build writes another plan, or the same shards, into ``out``.
        BuildWorkerError: a worker process died (killed, out of memory).
    """
    if isinstance(plan, BuildPlan):
        with tempfile.TemporaryDirectory(prefix="avs-synth-plan-") as folder:
            stored = store_plan(plan, Path(folder))
            return execute_plan(stored, config=config, out=out, run=run, category_map=category_map)
    run = run or RunOptions()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with folder_lock(out):
        claim = claim_partition(
            out,
            plan_hash=plan.plan_hash,
            partition=run.partition,
            num_partitions=run.num_partitions,
        )
        try:
            _check_plan_file(out, plan, config)
        except BaseException:
            claim.release()
            raise
    try:
        return _execute_claimed(plan, config=config, out=out, run=run, category_map=category_map)
    except OSError as error:
        if error.filename is not None or error.strerror is None:
            raise
        # a write that failed without naming its file (a full disk): name the output folder
        raise OSError(error.errno, error.strerror, str(out)) from None
    finally:
        with folder_lock(out):
            claim.release()


def _execute_claimed(
    plan: StoredPlan,
    *,
    config: BuildConfig,
    out: Path,
    run: RunOptions,
    category_map: Mapping[str, Any] | None,
) -> BuildSummary:
    started = time.monotonic()
    mine = [u for u in plan.units if u.position % run.num_partitions == run.partition]
    for unit in mine:  # temporaries of an interrupted run (this partition's shards only)
        remove_stale_temps(out / unit.name)
        remove_stale_temps(parts_path(out, unit.name))
    todo = [u for u in mine if not is_complete(out, u.name)]
    kept = len(mine) - len(todo)
    if kept:
        logger.info("resuming: %d of %d shards already complete", kept, len(mine))
    _run_units(todo, folder=plan.folder, config=config, out=out, run=run)
    summary = BuildSummary(
        out=out,
        plan_hash=plan.plan_hash,
        units_total=len(plan.units),
        units_mine=len(mine),
        units_built=len(todo),
        units_kept=kept,
        complete=False,
    )
    missing = [u.name for u in plan.units if not is_complete(out, u.name)]
    if missing:
        logger.info(
            "partition %d/%d done; %d shards of other partitions are not in %s yet: rerun "
            "without --partition (or with any) once they are, to write the manifest",
            run.partition,
            run.num_partitions,
            len(missing),
            out,
        )
    else:
        parts = [read_parts(out, u.name) for u in plan.units]
        manifest = make_manifest(
            plan=plan, config=config, parts=parts, category_map=category_map or {}
        )
        report = make_report(plan=plan, parts=parts)
        write_atomic(out / MANIFEST_NAME, encode_json(manifest))
        write_atomic(out / REPORT_NAME, encode_json(report))
        summary.complete = True
        summary.samples = {s: manifest["splits"][s]["samples"] for s in SPLITS}
        summary.bank_windows = manifest["bank"]["windows"]
        summary.skipped = report["skipped"]
    summary.seconds = time.monotonic() - started
    _log_summary(summary, plan)
    return summary


def _log_summary(summary: BuildSummary, plan: StoredPlan) -> None:
    logger.info(
        "%d shards built, %d kept (partition share %d of %d) in %.1f s",
        summary.units_built,
        summary.units_kept,
        summary.units_mine,
        summary.units_total,
        summary.seconds,
    )
    if not summary.complete:
        return
    logger.info(
        "triplets: %s; audio bank: %d windows",
        ", ".join(f"{s} {n}" for s, n in summary.samples.items()),
        summary.bank_windows,
    )
    if summary.skipped:
        logger.info(
            "skipped samples: %s",
            ", ".join(f"{r} {n}" for r, n in sorted(summary.skipped.items())),
        )
    if plan.dropped:
        logger.info(
            "left out while planning: %s",
            ", ".join(f"{r} {n}" for r, n in sorted(plan.dropped.items())),
        )
    logger.info("manifest: %s", summary.out / MANIFEST_NAME)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """The cyclic garbage collector off: planning makes millions of long-lived objects and no
    cycles, and each full collection would rescan all of them (about a fifth of the plan's CPU
    time while the units are encoded). Free them before the block ends."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def plan_from_inputs(
    inputs: BuildInputs, config: BuildConfig, folder: Path | None = None
) -> tuple[StoredPlan, dict[str, Any]]:
    """Read every input and plan the build into ``folder`` (the annotation indexes and the
    units; None: a new temporary folder, ``plan.folder``, which the caller may delete once the
    plan is executed); returns the stored plan and the category-map record."""
    if folder is None:
        folder = Path(tempfile.mkdtemp(prefix="avs-synth-plan-"))
    check_inputs(inputs)
    matches, map_info = read_accepted_matches(inputs.matches)
    if not matches:
        raise BuildInputError(f"{map_info['file']}: no accepted rows in the category matches")
    with _collector_paused():
        exclusion = read_exclusion(inputs, config)
        clips = read_clips(inputs.vggsound_csv, inputs.vggsound_clips)
        reader_skipped: Counter[str] = Counter()
        categories: dict[str, set[str]] = {}
        for m in matches:
            categories.setdefault(m.source, set()).add(m.visual_id)
        unused: Counter[str] = Counter()
        records = read_image_records(
            inputs.visual,
            skipped=reader_skipped,
            categories=categories,
            negatives=config.negative_ratio > 0,
            index_dir=Path(folder),
            unused=unused,
        )
        plan = make_plan(
            records=records, clips=clips, matches=matches, config=config, exclusion=exclusion
        )
        plan.dropped.update(reader_skipped)
        for source, count in unused.items():  # read, checked, of no use to this plan
            plan.sources.setdefault(source, {})["records"] = (
                plan.sources.get(source, {}).get("records", 0) + count
            )
        logger.info(
            "plan: %d shards, %s",
            len(plan.units),
            ", ".join(
                f"{s} {sum(u.planned for u in plan.units if u.split == s)}"
                for s in (*SPLITS, "bank")
            ),
        )
        stored = store_plan(plan, Path(folder))
        # freed here, by reference counting: alive when the collector restarts, they would make
        # its next collection walk every one of them
        del plan, clips, records
    return stored, map_info


def _plan_in_child(
    inputs: BuildInputs, config: BuildConfig, folder: Path
) -> tuple[StoredPlan, dict[str, Any]]:
    """:func:`plan_from_inputs` in a child process, so that its memory is gone once it is done."""
    with ProcessPoolExecutor(max_workers=1, mp_context=_pool_context()) as executor:
        try:
            return executor.submit(plan_from_inputs, inputs, config, folder).result()
        except BrokenProcessPool:
            raise BuildInputError(
                "the planning process stopped without a result (killed, or out of memory?)"
            ) from None


def build_dataset(
    *, inputs: BuildInputs, config: BuildConfig, out: Path, run: RunOptions | None = None
) -> BuildSummary:
    """Plan and write the dataset (see the module docstring).

    Raises:
        BuildInputError: a missing input, no accepted match, or ``out`` holding another plan.
        DataFormatError: an input file in an unknown or broken format.
    """
    with tempfile.TemporaryDirectory(prefix="avs-synth-plan-") as folder:
        plan, map_info = _plan_in_child(inputs, config, Path(folder))
        return execute_plan(plan, config=config, out=out, run=run, category_map=map_info)


def dry_run(*, inputs: BuildInputs, config: BuildConfig) -> dict[str, Any]:
    """Plan only (in a temporary folder, removed after): what a build would write, and why the
    rest is left out; nothing is decoded and no output folder is touched.

    Returns:
        ``plan_hash``, ``shards`` and ``planned`` per split (and ``bank``), ``planned_per_class``
        (split → audio class → triplets; bank: clips), ``pictures`` and ``clips`` per split,
        ``sources``, ``dropped_while_planning`` by reason, ``clip_exclusion``, ``category_map``.
    """
    with tempfile.TemporaryDirectory(prefix="avs-synth-plan-") as folder:
        plan, map_info = _plan_in_child(inputs, config, Path(folder))
    return {
        "plan_hash": plan.plan_hash,
        "shards": {s: sum(1 for u in plan.units if u.split == s) for s in (*SPLITS, BANK)},
        "planned": {s: sum(u.planned for u in plan.units if u.split == s) for s in (*SPLITS, BANK)},
        "planned_per_class": plan.planned_per_class,
        "pictures": plan.pictures,
        "clips": plan.clips,
        "sources": plan.sources,
        "dropped_while_planning": dict(sorted(plan.dropped.items())),
        "clip_exclusion": plan.exclusion,
        "category_map": map_info,
    }
