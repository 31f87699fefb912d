"""A build's ``manifest.json`` in words, for ``avs-synth inspect`` (text and page): the counts per
split, kind, number of sources and clip event, and the options that shaped the samples (negative
audio, crops, tagger, clips); a malformed manifest is one line saying what is missing.
"""

from __future__ import annotations

from typing import Any

from avs_synth import schema


def _manifest_lines(m: dict[str, Any]) -> list[str]:
    cmap = str(m.get("category_map", {}).get("sha256", "?"))[:12]
    lines = [
        f"{m['tool']['name']} {m['tool']['version']}, seed {m['seed']}, "
        f"plan {m['plan']['plan_hash'][:12]}, category map {cmap}"
    ]
    for split in schema.SPLITS:
        info = m["splits"][split]
        per_class = ", ".join(f"{k}: {v}" for k, v in info["per_category"].items())
        kinds = ", ".join(f"{k} {v}" for k, v in info.get("per_kind", {}).items())
        mixes = ", ".join(f"{k}: {v}" for k, v in info.get("per_num_sources", {}).items())
        kinds += f"; positives by number of sources {mixes}" if mixes else ""
        events = ", ".join(f"{k} {v}" for k, v in info.get("per_clip_event", {}).items())
        kinds += f"; positive clips by event {events}" if events else ""
        kinds = kinds.removeprefix("; ")
        lines.append(
            f"{split}: {info['samples']} triplets ({info['negatives']} negatives"
            f"{': ' + kinds if kinds else ''}) in "
            f"{len(info['shards'])} shards; {per_class or 'no classes'}"
        )
    lines.append(f"bank: {m['bank']['windows']} windows in {len(m['bank']['shards'])} shards")
    config = m["config"]
    if config.get("sources"):
        counts = ", ".join(f"{k}: {w:g}" for k, w in config["sources"])
        lines.append(
            f"sources: counts and weights {counts}, pan {config.get('pan', 'none')}, up to "
            f"{config.get('mixes_per_picture', 1)} mixes per picture"
        )
    return (
        lines
        + _negative_audio_lines(config)
        + _crop_lines(config)
        + _tagger_lines(config)
        + _clip_lines(config)
    )


def _clip_lines(config: dict[str, Any]) -> list[str]:
    """The clips' frames and path, when the build made clips."""
    clips = config.get("clips")
    if not clips:
        return []
    return [
        f"clips: {clips['frames']} frames of {clips['frame_s']:g} s each along a pan / zoom "
        f"path ({clips['path']}); onset / offset probability {clips['onset_offset']}"
    ]


def _tagger_lines(config: dict[str, Any]) -> list[str]:
    """The audio tagger that scored the windows, when the build had one."""
    tagger = config.get("tagger")
    if not tagger:
        return []
    return [
        f"tagger: {tagger['file']} (sha256 {tagger['sha256'][:12]}, {tagger['activation']}, "
        f"{len(tagger['audio_classes_tagged'])} audio classes scored); min_audibility "
        f"{config['filters'].get('min_audibility')} on {config['filters'].get('audibility_from')}"
    ]


def _crop_lines(config: dict[str, Any]) -> list[str]:
    """The object-centric framing, when the build cropped."""
    crop = config.get("crop")
    if not crop:
        return []
    areas = crop.get("area_distribution")
    if areas is None:
        return [f"crop: {crop['mode']}, the mask {crop['area_fraction']:g} of each crop"]
    edges, counts = areas["bin_edges"], areas["counts"]
    bins = ", ".join(f"{edges[i]:g}-{edges[i + 1]:g}: {n}" for i, n in enumerate(counts) if n)
    return [
        f"crop: {crop['mode']}, the mask's share of each crop drawn from {areas['source']} "
        f"({areas['masks']} masks; {areas['empty']} empty and {areas['skipped']} unreadable "
        f"left out): {bins}"
    ]


def _negative_audio_lines(config: dict[str, Any]) -> list[str]:
    """Where silence / noise negatives' audio comes from, when the build took real clips."""
    lines = []
    noise = config.get("noise_from")
    if noise:
        classes = ", ".join(noise["ambience_classes"]) or "none"
        lines.append(f"noise negatives: {noise['source']} (ambience classes: {classes})")
    silence = config.get("silence_from")
    if silence:
        lines.append(
            f"silence negatives: {silence['source']} (real windows below "
            f"{silence['quiet_dbfs']:g} dBFS)"
        )
    return lines


def describe_manifest(manifest: dict[str, Any] | None) -> list[str]:
    """The manifest's counts in words (one line saying what is missing for a malformed one)."""
    if manifest is None:
        return []
    try:
        return _manifest_lines(manifest)
    except (KeyError, TypeError, AttributeError, IndexError) as error:
        return [f"{schema.MANIFEST_NAME}: malformed (missing or wrong field {error})"]
