"""The category table of the sample corpus: one row per object category with its REAL ids.

Every row ties one drawable object category to its entries in the real vocabularies: LVIS v1
(id, name, synonyms, synset, frequency bucket, definition), COCO 2017 (id, name, supercategory,
where COCO has the category), Open Images V7 (MID and display name, and whether the class is one
of the segmentable classes), the VGGSound label of the matching sound and the AVSBench S4
category (the VGGSound label with underscores). The ids and names are copied verbatim from the
public category lists (LVIS v1 ``lvis_v1_val.json``, COCO ``instances_val2017.json``, Open Images
``class-descriptions-boxable.csv``, VGGSound ``stat.csv``, AVSBench ``s4_meta_data.csv``; CC BY 4.0
where a licence is stated) so that readers and the category matching see real names.

The first ten rows are the ten S4 categories of the annotation-free AVS paper's zero-shot
evaluation; four more (helicopter, race car, male speech, violin) add labels with commas and
vehicles / people.
"""

from __future__ import annotations

from dataclasses import dataclass

from avs_synth.records import Category


@dataclass(frozen=True)
class CorpusCategory:
    """One object category of the sample corpus and its ids in each real vocabulary.

    Args:
        key: short internal name (``dog``); also names the drawing and sound recipes.
        lvis_id, lvis_name, lvis_synonyms, lvis_synset, lvis_frequency, lvis_def: the LVIS v1
            category, verbatim.
        coco_id, coco_name, coco_supercategory: the COCO 2017 category, None where COCO lacks it.
        openimages_mid, openimages_name: the Open Images class, None where Open Images lacks it.
        openimages_segmentable: True when the class is one of the Open Images segmentation
            classes (only those get mask annotations in the corpus).
        vggsound_label: the VGGSound label of the category's sound, verbatim (may hold a comma).
        s4_category: the AVSBench S4 category (``dog_barking``), None where S4 lacks it.
    """

    key: str
    lvis_id: int
    lvis_name: str
    lvis_synonyms: tuple[str, ...]
    lvis_synset: str
    lvis_frequency: str
    lvis_def: str
    coco_id: int | None
    coco_name: str | None
    coco_supercategory: str | None
    openimages_mid: str | None
    openimages_name: str | None
    openimages_segmentable: bool
    vggsound_label: str
    s4_category: str | None

    def lvis_category(self) -> Category:
        """The LVIS category as a :class:`~avs_synth.records.Category`."""
        return Category(
            source="lvis",
            category_id=str(self.lvis_id),
            name=self.lvis_name,
            synonyms=self.lvis_synonyms,
            synset=self.lvis_synset,
            frequency=self.lvis_frequency,
            definition=self.lvis_def,
        )

    def coco_category(self) -> Category | None:
        """The COCO category, None where COCO lacks it."""
        if self.coco_id is None or self.coco_name is None:
            return None
        return Category(source="coco", category_id=str(self.coco_id), name=self.coco_name)

    def openimages_category(self) -> Category | None:
        """The Open Images class, None where Open Images lacks it."""
        if self.openimages_mid is None or self.openimages_name is None:
            return None
        return Category(
            source="openimages", category_id=self.openimages_mid, name=self.openimages_name
        )

    def vggsound_category(self) -> Category:
        """The VGGSound class (its id is the label itself)."""
        return Category(
            source="vggsound", category_id=self.vggsound_label, name=self.vggsound_label
        )


CATEGORIES: tuple[CorpusCategory, ...] = (
    CorpusCategory(
        key="ambulance",
        lvis_id=8,
        lvis_name="ambulance",
        lvis_synonyms=("ambulance",),
        lvis_synset="ambulance.n.01",
        lvis_frequency="c",
        lvis_def="a vehicle that takes people to and from hospitals",
        coco_id=None,
        coco_name=None,
        coco_supercategory=None,
        openimages_mid="/m/012n7d",
        openimages_name="Ambulance",
        openimages_segmentable=True,
        vggsound_label="ambulance siren",
        s4_category="ambulance_siren",
    ),
    CorpusCategory(
        key="cat",
        lvis_id=225,
        lvis_name="cat",
        lvis_synonyms=("cat",),
        lvis_synset="cat.n.01",
        lvis_frequency="f",
        lvis_def="a domestic house cat",
        coco_id=17,
        coco_name="cat",
        coco_supercategory="animal",
        openimages_mid="/m/01yrx",
        openimages_name="Cat",
        openimages_segmentable=True,
        vggsound_label="cat meowing",
        s4_category="cat_meowing",
    ),
    CorpusCategory(
        key="dog",
        lvis_id=378,
        lvis_name="dog",
        lvis_synonyms=("dog",),
        lvis_synset="dog.n.01",
        lvis_frequency="f",
        lvis_def="a common domesticated dog",
        coco_id=18,
        coco_name="dog",
        coco_supercategory="animal",
        openimages_mid="/m/0bt9lr",
        openimages_name="Dog",
        openimages_segmentable=True,
        vggsound_label="dog barking",
        s4_category="dog_barking",
    ),
    CorpusCategory(
        key="bus",
        lvis_id=173,
        lvis_name="bus_(vehicle)",
        lvis_synonyms=(
            "bus_(vehicle)",
            "autobus",
            "charabanc",
            "double-decker",
            "motorbus",
            "motorcoach",
        ),
        lvis_synset="bus.n.01",
        lvis_frequency="f",
        lvis_def="a vehicle carrying many passengers; used for public transport",
        coco_id=6,
        coco_name="bus",
        coco_supercategory="vehicle",
        openimages_mid="/m/01bjv",
        openimages_name="Bus",
        openimages_segmentable=True,
        vggsound_label="driving buses",
        s4_category="driving_buses",
    ),
    CorpusCategory(
        key="horse",
        lvis_id=569,
        lvis_name="horse",
        lvis_synonyms=("horse",),
        lvis_synset="horse.n.01",
        lvis_frequency="f",
        lvis_def="a common horse",
        coco_id=19,
        coco_name="horse",
        coco_supercategory="animal",
        openimages_mid="/m/03k3r",
        openimages_name="Horse",
        openimages_segmentable=True,
        vggsound_label="horse clip-clop",
        s4_category="horse_clip-clop",
    ),
    CorpusCategory(
        key="lion",
        lvis_id=649,
        lvis_name="lion",
        lvis_synonyms=("lion",),
        lvis_synset="lion.n.01",
        lvis_frequency="c",
        lvis_def="large gregarious predatory cat of Africa and India",
        coco_id=None,
        coco_name=None,
        coco_supercategory=None,
        openimages_mid="/m/096mb",
        openimages_name="Lion",
        openimages_segmentable=True,
        vggsound_label="lions roaring",
        s4_category="lions_roaring",
    ),
    CorpusCategory(
        key="bird",
        lvis_id=99,
        lvis_name="bird",
        lvis_synonyms=("bird",),
        lvis_synset="bird.n.01",
        lvis_frequency="f",
        lvis_def="animal characterized by feathers and wings",
        coco_id=16,
        coco_name="bird",
        coco_supercategory="animal",
        openimages_mid="/m/015p6",
        openimages_name="Bird",
        openimages_segmentable=True,
        vggsound_label="mynah bird singing",
        s4_category="mynah_bird_singing",
    ),
    CorpusCategory(
        key="guitar",
        lvis_id=521,
        lvis_name="guitar",
        lvis_synonyms=("guitar",),
        lvis_synset="guitar.n.01",
        lvis_frequency="f",
        lvis_def=(
            "a stringed instrument usually having six strings; played by strumming or plucking"
        ),
        coco_id=None,
        coco_name=None,
        coco_supercategory=None,
        openimages_mid="/m/0342h",
        openimages_name="Guitar",
        openimages_segmentable=True,
        vggsound_label="playing acoustic guitar",
        s4_category="playing_acoustic_guitar",
    ),
    CorpusCategory(
        key="piano",
        lvis_id=798,
        lvis_name="piano",
        lvis_synonyms=("piano",),
        lvis_synset="piano.n.01",
        lvis_frequency="f",
        lvis_def=(
            "a keyboard instrument that is played by depressing keys that cause hammers to strike"
            " tuned strings and produce sounds"
        ),
        coco_id=None,
        coco_name=None,
        coco_supercategory=None,
        openimages_mid="/m/05r5c",
        openimages_name="Piano",
        openimages_segmentable=True,
        vggsound_label="playing piano",
        s4_category="playing_piano",
    ),
    CorpusCategory(
        key="computer_keyboard",
        lvis_id=296,
        lvis_name="computer_keyboard",
        lvis_synonyms=("computer_keyboard", "keyboard_(computer)"),
        lvis_synset="computer_keyboard.n.01",
        lvis_frequency="f",
        lvis_def="a keyboard that is a data input device for computers",
        coco_id=76,
        coco_name="keyboard",
        coco_supercategory="electronic",
        openimages_mid="/m/01m2v",
        openimages_name="Computer keyboard",
        openimages_segmentable=True,
        vggsound_label="typing on computer keyboard",
        s4_category="typing_on_computer_keyboard",
    ),
    CorpusCategory(
        key="helicopter",
        lvis_id=555,
        lvis_name="helicopter",
        lvis_synonyms=("helicopter",),
        lvis_synset="helicopter.n.01",
        lvis_frequency="c",
        lvis_def=(
            "an aircraft without wings that obtains its lift from the rotation of overhead blades"
        ),
        coco_id=None,
        coco_name=None,
        coco_supercategory=None,
        openimages_mid="/m/09ct_",
        openimages_name="Helicopter",
        # Not among the 300 challenge segmentation classes we could verify: image-level only.
        openimages_segmentable=False,
        vggsound_label="helicopter",
        s4_category="helicopter",
    ),
    CorpusCategory(
        key="race_car",
        lvis_id=862,
        lvis_name="race_car",
        lvis_synonyms=("race_car", "racing_car"),
        lvis_synset="racer.n.02",
        lvis_frequency="r",
        lvis_def="a fast car that competes in races",
        coco_id=None,
        coco_name=None,
        coco_supercategory=None,
        openimages_mid=None,
        openimages_name=None,
        openimages_segmentable=False,
        vggsound_label="race car, auto racing",
        s4_category="race_car",
    ),
    CorpusCategory(
        key="person",
        lvis_id=793,
        lvis_name="person",
        lvis_synonyms=("person", "baby", "child", "boy", "girl", "man", "woman", "human"),
        lvis_synset="person.n.01",
        lvis_frequency="f",
        lvis_def="a human being",
        coco_id=1,
        coco_name="person",
        coco_supercategory="person",
        openimages_mid="/m/04yx4",
        openimages_name="Man",
        openimages_segmentable=True,
        vggsound_label="male speech, man speaking",
        s4_category="male_speech",
    ),
    CorpusCategory(
        key="violin",
        lvis_id=1145,
        lvis_name="violin",
        lvis_synonyms=("violin", "fiddle"),
        lvis_synset="violin.n.01",
        lvis_frequency="r",
        lvis_def=("bowed stringed instrument that is the highest member of the violin family"),
        coco_id=None,
        coco_name=None,
        coco_supercategory=None,
        openimages_mid="/m/07y_7",
        openimages_name="Violin",
        # Not among the 300 challenge segmentation classes we could verify: image-level only.
        openimages_segmentable=False,
        vggsound_label="playing violin, fiddle",
        s4_category="playing_violin",
    ),
)

CATEGORY_KEYS: tuple[str, ...] = tuple(c.key for c in CATEGORIES)

_BY_KEY = {c.key: c for c in CATEGORIES}


def category_by_key(key: str) -> CorpusCategory:
    """The row with this ``key``; a KeyError names the known keys."""
    try:
        return _BY_KEY[key]
    except KeyError:
        known = ", ".join(CATEGORY_KEYS)
        raise KeyError(f"unknown corpus category {key!r}; known: {known}") from None


def category_table() -> list[dict[str, object]]:
    """The table as plain JSON-able dicts (written to ``corpus.json``)."""
    rows: list[dict[str, object]] = []
    for c in CATEGORIES:
        rows.append(
            {
                "key": c.key,
                "lvis_id": c.lvis_id,
                "lvis_name": c.lvis_name,
                "lvis_synonyms": list(c.lvis_synonyms),
                "lvis_synset": c.lvis_synset,
                "lvis_frequency": c.lvis_frequency,
                "coco_id": c.coco_id,
                "coco_name": c.coco_name,
                "openimages_mid": c.openimages_mid,
                "openimages_name": c.openimages_name,
                "openimages_segmentable": c.openimages_segmentable,
                "vggsound_label": c.vggsound_label,
                "s4_category": c.s4_category,
            }
        )
    return rows
