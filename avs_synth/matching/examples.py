"""What the user's data holds for each visual category: instance counts and a few example
instances, shown beside each pair under review (in the terminal, in an export, in the FiftyOne
App).
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from avs_synth.records import ImageRecord, Instance

__all__ = ["CategoryExamples", "ExampleInstance", "collect_examples", "missing_example_files"]


@dataclass(frozen=True)
class ExampleInstance:
    """One annotated instance shown as an example of a category."""

    image_path: Path
    width: int
    height: int
    instance: Instance


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


@dataclass
class CategoryExamples:
    """What the user's data holds for one visual category.

    Args:
        source, category_id: the category.
        n_images: images with at least one instance.
        n_instances: instances (crowd ones included).
        n_crowd: crowd / group-of instances (not used as sounding masks).
        areas: areas in pixels of the non-crowd instances.
        examples: the first few non-crowd instances, one per image.
    """

    source: str
    category_id: str
    n_images: int = 0
    n_instances: int = 0
    n_crowd: int = 0
    areas: list[float] = field(default_factory=list)
    examples: list[ExampleInstance] = field(default_factory=list)

    @property
    def median_area(self) -> float | None:
        return statistics.median(self.areas) if self.areas else None

    def summary(self) -> str:
        """``"412 instances in 230 images (3 crowd), median area 5,120 px"``."""
        if not self.n_instances:
            return "no instances in the given data"
        text = f"{_count(self.n_instances, 'instance')} in {_count(self.n_images, 'image')}"
        if self.n_crowd:
            text += f" ({self.n_crowd:,} crowd)"
        if self.median_area is not None:
            text += f", median area {self.median_area:,.0f} px"
        return text


def collect_examples(
    records: Iterable[ImageRecord],
    *,
    wanted: set[tuple[str, str]] | None = None,
    max_examples: int = 3,
) -> dict[tuple[str, str], CategoryExamples]:
    """Count instances per category and keep a few examples.

    Args:
        records: images from any reader (LVIS, COCO, Open Images).
        wanted: ``(source, category_id)`` pairs to collect (all when None).
        max_examples: examples kept per category (non-crowd, one per image).
    """
    found: dict[tuple[str, str], CategoryExamples] = {}
    for record in records:
        counted: set[tuple[str, str]] = set()
        shown: set[tuple[str, str]] = set()
        for instance in record.instances:
            key = (record.source, instance.category_id)
            if wanted is not None and key not in wanted:
                continue
            stats = found.get(key)
            if stats is None:
                stats = found[key] = CategoryExamples(record.source, instance.category_id)
            stats.n_instances += 1
            stats.n_crowd += instance.is_crowd
            if not instance.is_crowd:
                stats.areas.append(float(instance.area))
            if key not in counted:
                stats.n_images += 1
                counted.add(key)
            if not instance.is_crowd and key not in shown and len(stats.examples) < max_examples:
                stats.examples.append(
                    ExampleInstance(record.path, record.width, record.height, instance)
                )
                shown.add(key)
    return found


def missing_example_files(
    examples: Iterable[CategoryExamples],
) -> dict[str, list[Path]]:
    """The example pictures that do not exist, per source (``{"coco": [paths]}``)."""
    missing: dict[str, list[Path]] = {}
    for stats in examples:
        for example in stats.examples:
            if not example.image_path.is_file():
                missing.setdefault(stats.source, []).append(example.image_path)
    return missing
