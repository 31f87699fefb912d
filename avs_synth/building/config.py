"""What `avs-synth build` reads and how it builds: plain dataclasses, recorded in the manifest."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from avs_synth.audio.decode import RESAMPLERS, Resampler
from avs_synth.audio.tagger import TaggerConfig
from avs_synth.audio.windows import WindowConfig
from avs_synth.building.framing import MaskAreaHistogram, draw_area_fraction
from avs_synth.building.splits import SplitFractions
from avs_synth.schema import MAX_FRAMES, NEGATIVE_KINDS

MaskMode = Literal["semantic", "instance"]
MASK_MODES: tuple[str, ...] = get_args(MaskMode)
CropMode = Literal["none", "object"]
PanMode = Literal["none", "linear", "constant-power"]
PAN_MODES: tuple[str, ...] = get_args(PanMode)
CROP_MODES: tuple[str, ...] = get_args(CropMode)
NoiseFrom = Literal["synthetic", "ambience", "both"]
NOISE_FROM: tuple[str, ...] = get_args(NoiseFrom)
SilenceFrom = Literal["synthetic", "quiet", "both"]
SILENCE_FROM: tuple[str, ...] = get_args(SilenceFrom)
AudibilityFrom = Literal["energy", "tagger", "both"]
AUDIBILITY_FROM: tuple[str, ...] = get_args(AudibilityFrom)
MAX_SOURCES = 4


@dataclass(frozen=True)
class VisualInput:
    """One visual dataset to read; inputs are read in the order given (LVIS first wins).

    Args:
        source: ``lvis``, ``coco`` or ``openimages``.
        annotations: the LVIS / COCO instances JSON.
        images_root: the LVIS / COCO images folder.
        root: the Open Images folder.
        split: the Open Images split (``train``, ``validation``, ``test``).
    """

    source: Literal["lvis", "coco", "openimages"]
    annotations: Path | None = None
    images_root: Path | None = None
    root: Path | None = None
    split: str | None = None


@dataclass(frozen=True)
class BuildInputs:
    """Every input of a build.

    Args:
        visual: the visual datasets, in reading order (put LVIS before COCO: a picture they share
            is taken from the first).
        vggsound_csv: ``vggsound.csv`` (``youtube_id,start_seconds,label,split``).
        vggsound_clips: the folder of clip files.
        matches: the category matching table (None: the packaged ``category_maps/matches.csv``).
        avsbench: the user's AVSBench folder, whose S4 / MS3 / AVSBench-semantic YouTube ids are
            excluded from the audio (with the packaged S4 list; see ``exclude_avsbench``).
        exclude_clips: files of further YouTube ids (or clip names, or their SHA-256) to exclude.
    """

    visual: tuple[VisualInput, ...]
    vggsound_csv: Path
    vggsound_clips: Path
    matches: Path | None = None
    avsbench: Path | None = None
    exclude_clips: tuple[Path, ...] = ()


@dataclass(frozen=True)
class BuildConfig:
    """How the triplets are made (everything here changes the output and is in the plan hash).

    Args:
        seed: the seed of every choice (splits, clips, windows, caps, negatives).
        mask_mode: ``semantic`` (union of all matched instances in the picture; the paper's) or
            ``instance`` (one sample per instance).
        min_mask_area: smallest mask, as a fraction of the image area.
        max_per_picture: most samples per picture (0: no limit).
        max_per_category: most samples per audio class over all splits (0: no limit).
        fractions: split fractions over pictures.
        window: the audio window settings.
        resampler: how clips become 16 kHz windows: ``avsbench`` (exactly as AVSBench made its
            wavs; the default, for builds evaluated on AVSBench) or ``bandlimited``.
        negative_ratio: negatives per positive in each split (0: none).
        negatives: the negative kinds to make (:data:`avs_synth.schema.NEGATIVE_KINDS`), sharing
            ``negative_ratio`` equally, each recorded in the json; empty (the default): every
            verified-absent pairing, no kind recorded (the build before negative kinds).
        noise_from: where ``noise`` negatives' audio comes from: ``synthetic`` (white or pink
            noise, :mod:`avs_synth.audio.negative_audio`), ``ambience`` (a window of a clip of an
            ambience class, :mod:`avs_synth.audio.ambience`; a split without such a clip has no
            noise negatives, counted as ``negatives_short_noise``) or ``both`` (a seeded half of
            them each; synthetic where the split has no ambience clip).
        silence_from: where ``silence`` negatives' audio comes from: ``synthetic`` (digital zeros
            or a faint synthetic floor), ``quiet`` (a real clip's window below ``quiet_dbfs``,
            found by the worker; a clip without one skips the sample, counted as
            ``no_quiet_window``) or ``both`` (a seeded half of them each).
        quiet_dbfs: the RMS level (dB full scale) a real window must stay below to be a
            ``quiet`` silence negative.
        sources: multi-source triplets: ``((count, weight), ...)``, e.g. ``((1, 0.5), (2, 0.3),
            (3, 0.2))``: each picture gives one triplet whose number of sounding classes is drawn
            with these weights among the counts the picture allows (semantic mode only); empty
            (the default): one class per triplet, the build before the option.
        mixes_per_picture: with ``sources``, each picture gives up to this many triplets, each
            a distinct seeded set of its classes sounding (:mod:`avs_synth.building.sounding_sets`;
            a picture with fewer sets gives fewer), so the same picture comes with different
            mixes and masks; 1 (the default): one triplet per picture, as before the option.
            ``max_per_picture`` must not cap them (0 or at least this).
        pan: stereo mixes of multi-source triplets: ``linear`` (VPO's ``L = (1 - p) w``,
            ``R = p w``, ``p`` the source mask's centroid over the width) or ``constant-power``
            (``L = cos(p pi / 2) w``, ``R = sin(p pi / 2) w``); ``none``: mono.
        class_masks: write a class-indexed mask beside the binary one (``classes.png``: each
            sounding pixel its audio class's index in the manifest's table plus one).
        crop: ``object``: crop each positive's picture around its sounding mask (a multi-source
            triplet's: the union of its sources' masks, every source kept inside;
            :mod:`avs_synth.building.framing`) so that the mask covers ``crop_area_fraction``
            of it (pictures where it already does are kept whole); ``none``: no crop.
        crop_area_fraction: the mask's share of an object-centric crop, in (0, 1).
        crop_areas: draw each crop's share from this histogram instead (the S4 train masks',
            measured by :func:`avs_synth.building.s4_mask_areas.measure_s4_mask_areas`); None:
            ``crop_area_fraction`` for every crop.
        min_audibility: score every clip window's audibility
            (:mod:`avs_synth.audio.audibility`), store it in the json and skip samples below this
            (counted as ``inaudible``; 0 scores without filtering); None: not scored.
        tagger: also store each clip window's probability for its class from this audio tagger
            (:mod:`avs_synth.audio.tagger`; needs ``min_audibility``); None: no tagger.
        audibility_from: what ``min_audibility`` compares: ``energy`` (the level / flatness
            score), ``tagger`` (the tagger's probability; a window whose class the tagger lacks
            is skipped, counted as ``tagger_lacks_class``) or ``both`` (the smaller).
        frames: frames per sample: 1 (the default) makes stills; N > 1 makes clips of N frames
            cut from one picture along a smooth pan / zoom crop path, with N consecutive audio
            windows (one per frame; :mod:`avs_synth.building.clip_path`), AVSBench's input shape
            for N = 5.
        onset_offset: with ``frames`` > 1, the probability that a positive clip's source starts
            (``onset``) or stops (``offset``) mid-clip: its silent frames' audio is silence and
            their masks are empty. With ``crop object`` a positive clip's path moves inside its
            object-centric crop.
        max_side: resize pictures whose longer side exceeds this (None: keep original bytes).
        jpeg_quality: JPEG quality of re-encoded pictures.
        shard_size: triplets per shard.
        audio_bank: write the audio bank beside the train shards.
        bank_clips_per_shard: clips per audio-bank shard (each shard holds one audio class).
        exclude_avsbench: leave out every clip of a video of AVSBench (the packaged S4 list and
            the ids of ``BuildInputs.avsbench``); False keeps them (the build then contaminates
            AVSBench zero- and few-shot numbers).
    """

    seed: int = 0
    mask_mode: MaskMode = "semantic"
    min_mask_area: float = 0.01
    max_per_picture: int = 1
    max_per_category: int = 0
    fractions: SplitFractions = field(default_factory=SplitFractions)
    window: WindowConfig = field(default_factory=WindowConfig)
    resampler: Resampler = "avsbench"
    negative_ratio: float = 0.0
    negatives: tuple[str, ...] = ()
    noise_from: NoiseFrom = "synthetic"
    silence_from: SilenceFrom = "synthetic"
    quiet_dbfs: float = -50.0
    sources: tuple[tuple[int, float], ...] = ()
    mixes_per_picture: int = 1
    pan: PanMode = "none"
    class_masks: bool = False
    crop: CropMode = "none"
    crop_area_fraction: float = 0.25
    crop_areas: MaskAreaHistogram | None = None
    min_audibility: float | None = None
    tagger: TaggerConfig | None = None
    audibility_from: AudibilityFrom = "energy"
    frames: int = 1
    onset_offset: float = 0.0
    max_side: int | None = None
    jpeg_quality: int = 95
    shard_size: int = 1000
    audio_bank: bool = True
    bank_clips_per_shard: int = 100
    exclude_avsbench: bool = True

    def __post_init__(self) -> None:
        if self.mask_mode not in MASK_MODES:
            raise ValueError(f"mask mode must be one of {MASK_MODES}, got {self.mask_mode!r}")
        if not 0.0 <= self.min_mask_area < 1.0:
            raise ValueError(f"min_mask_area must be in [0, 1), got {self.min_mask_area}")
        if self.max_per_picture < 0 or self.max_per_category < 0:
            raise ValueError("max_per_picture and max_per_category must be >= 0 (0: no limit)")
        if self.negative_ratio < 0:
            raise ValueError(f"negative_ratio must be >= 0, got {self.negative_ratio}")
        unknown = [k for k in self.negatives if k not in NEGATIVE_KINDS]
        if unknown or len(set(self.negatives)) != len(self.negatives):
            raise ValueError(
                f"negatives must be distinct kinds of {NEGATIVE_KINDS}, got {self.negatives}"
            )
        if self.negatives and self.negative_ratio <= 0:
            raise ValueError("negative kinds need a negative_ratio > 0 (negatives per positive)")
        self._check_negative_audio()
        counts = [k for k, _ in self.sources]
        if self.sources and (
            len(set(counts)) != len(counts)
            or not all(1 <= k <= MAX_SOURCES for k in counts)
            or not all(w > 0 for _, w in self.sources)
        ):
            raise ValueError(
                f"sources must be distinct counts in [1, {MAX_SOURCES}] with positive weights, "
                f"got {self.sources}"
            )
        if self.sources and self.mask_mode != "semantic":
            raise ValueError("multi-source triplets (sources) need the semantic mask mode")
        self._check_mixes()
        if self.pan not in PAN_MODES:
            raise ValueError(f"pan must be one of {PAN_MODES}, got {self.pan!r}")
        if self.pan != "none" and not self.sources:
            raise ValueError("pan applies to multi-source triplets: give sources too")
        if self.crop not in CROP_MODES:
            raise ValueError(f"crop must be none or object, got {self.crop!r}")
        if not 0.0 < self.crop_area_fraction < 1.0:
            raise ValueError(f"crop_area_fraction must be in (0, 1), got {self.crop_area_fraction}")
        if self.crop_areas is not None and self.crop != "object":
            raise ValueError("crop_areas (a mask-area distribution) applies to crop object")
        if self.min_audibility is not None and not 0.0 <= self.min_audibility <= 1.0:
            raise ValueError(f"min_audibility must be in [0, 1], got {self.min_audibility}")
        if self.audibility_from not in AUDIBILITY_FROM:
            raise ValueError(
                f"audibility_from must be one of {AUDIBILITY_FROM}, got {self.audibility_from!r}"
            )
        if self.tagger is not None and self.min_audibility is None:
            raise ValueError("a tagger scores windows for min_audibility: give min_audibility too")
        if self.audibility_from != "energy" and self.tagger is None:
            raise ValueError(f"audibility_from {self.audibility_from!r} needs a tagger")
        self._check_frames()
        if self.max_side is not None and self.max_side < 16:
            raise ValueError(f"max_side must be at least 16 pixels, got {self.max_side}")
        if not 1 <= self.jpeg_quality <= 100:
            raise ValueError(f"jpeg_quality must be in [1, 100], got {self.jpeg_quality}")
        if self.resampler not in RESAMPLERS:
            raise ValueError(f"resampler must be one of {RESAMPLERS}, got {self.resampler!r}")
        if self.resampler == "avsbench" and self.window.sample_rate != 16_000:
            raise ValueError("the avsbench resampler makes 16 kHz windows (window sample_rate)")
        if self.shard_size < 1 or self.bank_clips_per_shard < 1:
            raise ValueError("shard_size and bank_clips_per_shard must be >= 1")

    def _check_negative_audio(self) -> None:
        if self.noise_from not in NOISE_FROM:
            raise ValueError(f"noise_from must be one of {NOISE_FROM}, got {self.noise_from!r}")
        if self.silence_from not in SILENCE_FROM:
            raise ValueError(
                f"silence_from must be one of {SILENCE_FROM}, got {self.silence_from!r}"
            )
        if self.noise_from != "synthetic" and "noise" not in self.negatives:
            raise ValueError("noise_from applies to noise negatives: add noise to negatives")
        if self.silence_from != "synthetic" and "silence" not in self.negatives:
            raise ValueError("silence_from applies to silence negatives: add silence to negatives")
        if not -120.0 < self.quiet_dbfs < 0.0:
            raise ValueError(f"quiet_dbfs must be in (-120, 0) dBFS, got {self.quiet_dbfs}")

    def _check_mixes(self) -> None:
        """``mixes_per_picture``: at least 1, above 1 only with ``sources``, not capped."""
        if self.mixes_per_picture < 1:
            raise ValueError(f"mixes_per_picture must be >= 1, got {self.mixes_per_picture}")
        if self.mixes_per_picture == 1:
            return
        if not self.sources:
            raise ValueError("mixes_per_picture applies to multi-source triplets: give sources")
        if 0 < self.max_per_picture < self.mixes_per_picture:
            raise ValueError(
                f"max_per_picture {self.max_per_picture} would cap the {self.mixes_per_picture} "
                "mixes per picture: give max_per_picture 0 (no cap) or at least mixes_per_picture"
            )

    def _check_frames(self) -> None:
        """The clip options (``frames``, ``onset_offset``) and what they combine with."""
        if not 1 <= self.frames <= MAX_FRAMES:
            raise ValueError(f"frames must be in [1, {MAX_FRAMES}], got {self.frames}")
        if not 0.0 <= self.onset_offset <= 1.0:
            raise ValueError(f"onset_offset is a probability in [0, 1], got {self.onset_offset}")
        if self.onset_offset > 0 and self.frames < 2:
            raise ValueError("onset_offset applies to clips: give frames of 2 or more")
        if self.frames == 1:
            return
        if self.sources:
            raise ValueError(
                "clips (frames > 1) of multi-source triplets (sources) are not supported yet"
            )
        frame_samples = self.window.window_s * self.window.sample_rate
        if abs(frame_samples - round(frame_samples)) > 1e-6:
            raise ValueError(
                "clips need a window length of a whole number of samples (window_s * sample_rate)"
            )

    def crop_fraction(self, key: str) -> float:
        """The mask's aimed share of the sample ``key``'s object-centric crop: drawn per sample
        from ``crop_areas`` when given, ``crop_area_fraction`` otherwise."""
        if self.crop_areas is None:
            return self.crop_area_fraction
        return draw_area_fraction(self.crop_areas, seed=self.seed, key=key)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every setting (a tagger by file name and digest: absolute paths
        differ between machines)."""
        settings = asdict(self)
        if self.tagger is not None:
            settings["tagger"]["path"] = self.tagger.path.name
        return settings


@dataclass(frozen=True)
class RunOptions:
    """How a build runs (no effect on the bytes written).

    Args:
        workers: worker processes (1: build in this process).
        num_partitions: machines sharing the build (each builds every K-th shard).
        partition: this machine's partition in ``[0, num_partitions)``.
        progress: show a progress bar.
    """

    workers: int = 1
    num_partitions: int = 1
    partition: int = 0
    progress: bool = True

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ValueError(f"workers must be >= 1, got {self.workers}")
        if self.num_partitions < 1 or not 0 <= self.partition < self.num_partitions:
            raise ValueError(
                f"partition must be in [0, {self.num_partitions}), got {self.partition}"
            )
