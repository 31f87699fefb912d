"""The plan on disk, and plans of records whose picture size is read by the worker."""

from __future__ import annotations

import math
from dataclasses import replace

from avs_synth.building.config import BuildConfig
from avs_synth.building.plan import make_plan
from avs_synth.building.plan_store import decode_unit, encode_unit, store_plan
from avs_synth.records import (
    ImageRecord,
    MaskFileSegmentation,
    NormalizedBox,
    PolygonSegmentation,
    StoredSegmentation,
)
from tests.support.build_support import MATCHES, make_world, write_jpeg


def test_units_round_trip_through_their_files(tmp_path):
    records, clips = make_world(tmp_path, pictures=8)
    config = BuildConfig(shard_size=3, negative_ratio=0.5, max_per_picture=0)
    plan = make_plan(records=records, clips=clips, matches=MATCHES, config=config)
    stored = store_plan(plan, tmp_path / "plan")
    assert [u.name for u in stored.units] == [u.name for u in plan.units]
    assert [u.planned for u in stored.units] == [u.planned for u in plan.units]
    assert stored.summary() == plan.summary()
    for unit in plan.units:
        assert stored.load_unit(unit.name) == unit
    assert sum(sum(c.values()) for s, c in stored.planned_per_class.items() if s != "bank") == sum(
        u.planned for u in plan.units if u.split != "bank"
    )
    # every kind of reference and value survives, NaN and infinities included
    spec = plan.units[0].triplets[0]
    inst = spec.instances[0] if spec.instances else None
    if inst is not None:
        odd = [
            replace(inst, segmentation=PolygonSegmentation(((math.nan, math.inf, -0.0, 1e-310),))),
            replace(inst, segmentation=StoredSegmentation(tmp_path / "i.bin", 7, 33)),
            replace(
                inst,
                bbox=NormalizedBox(0.1, 0.7, 0.2, 0.3),
                segmentation=MaskFileSegmentation(archive=tmp_path / "z.zip", member="m", offset=9),
            ),
        ]
        unit = replace(plan.units[0], triplets=(replace(spec, instances=tuple(odd), width=None),))
        back = decode_unit(encode_unit(unit)).triplets[0]
        assert back.width is None and back.instances[1:] == tuple(odd[1:])
        values = back.instances[0].segmentation.polygons[0]
        assert math.isnan(values[0]) and values[1:] == (math.inf, -0.0, 1e-310)


def test_normalised_boxes_decide_like_pixel_boxes_even_at_the_threshold(tmp_path):
    """A record without size (Open Images, read for a build) is planned as the same record with
    its size; at the threshold itself the picture's header is read to decide."""
    path = write_jpeg(tmp_path / "p.jpg", 64, 48, seed=1)
    _, clips = make_world(tmp_path / "w", pictures=2)
    box = NormalizedBox(0.25, 0.75, 0.0, 0.5)  # exactly a quarter of the picture
    matches = [replace(m, source="openimages") for m in MATCHES if m.source == "lvis"]

    def record(sized: bool) -> ImageRecord:
        from avs_synth.records import Instance

        bbox, area = box.to_pixels(64, 48) if sized else (box, box.area_fraction)
        inst = Instance(
            instance_id="m.png",
            category_id="3",
            category_name="dog",
            bbox=bbox,
            area=area,
            segmentation=MaskFileSegmentation(path=tmp_path / "m.png"),
        )
        return ImageRecord(
            source="openimages",
            image_id="0a",
            path=path,
            width=64 if sized else None,
            height=48 if sized else None,
            instances=(inst,),
        )

    outcomes = []
    for threshold in (0.25, 0.25 * (1 + 1e-12), 0.25 * (1 - 1e-12), 0.1, 0.3):
        config = BuildConfig(min_mask_area=threshold, fractions=BuildConfig().fractions)
        plans = [
            make_plan(records=[record(sized)], clips=clips, matches=matches, config=config)
            for sized in (True, False)
        ]
        assert plans[0].dropped == plans[1].dropped, threshold
        assert sum(u.planned for u in plans[0].units) == sum(u.planned for u in plans[1].units)
        outcomes.append(plans[1].dropped.get("small_mask", 0))
    assert outcomes == [0, 1, 0, 0, 1]
